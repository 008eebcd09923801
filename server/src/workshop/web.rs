//! The workshop routes, one table; thin handlers: who is asking, call
//! [`Workshops`], format.

use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::auth::{self, Instructor};
use super::{board, pages, parse_time, rfc3339, unix_now, WorkshopError, WorkshopPlan, Workshops};
use crate::classroom::{Classroom, LiveSession};
use crate::error::AppError;
use crate::routes::same_origin;
use crate::store::workshops::WorkshopRow;
use crate::terminal::socket::{self, Access};

/// Largest WebSocket message a browser may send.
const MAX_MESSAGE: usize = 64 * 1024;

type Shared = State<Arc<Workshops>>;

/// The workshop routes (state included), to merge beside the classroom's.
pub fn router(classroom: Arc<Classroom>) -> Router {
    let workshops = Workshops::new(classroom);
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
        handle.spawn(workshops.clone().prewarm_forever());
    }
    Router::new()
        .route("/instructor", get(console))
        .route("/api/instructor/login", post(login))
        .route("/api/instructor/logout", post(logout))
        .route("/api/instructor", get(whoami))
        .route("/api/instructors", post(add_instructor))
        .route("/api/workshops", post(create).get(list))
        .route("/api/workshops/join", post(join))
        .route("/api/workshops/{id}", get(detail).delete(delete))
        .route("/api/workshops/{id}/board", get(board_json))
        .route("/api/workshops/{id}/board.csv", get(board_csv))
        .route("/api/workshops/{id}/demo", post(start_demo))
        .route("/api/workshops/{id}/registry", post(open_registry))
        .route("/ws/workshops/{id}/board", get(board_socket))
        .route("/ws/workshops/{id}/demo/{node}", get(demo_socket))
        .route("/api/workshops/{id}/demo/map", get(demo_map))
        .route(
            "/api/workshops/{id}/learners/{learner}/map",
            get(shoulder_map),
        )
        .route(
            "/ws/workshops/{id}/learners/{learner}/terminal/{node}",
            get(shoulder_socket),
        )
        .route("/workshops/{id}/board", get(board_page))
        .route(
            "/workshops/{id}/learners/{learner}/map",
            get(shoulder_map_page),
        )
        .route("/workshops/{id}/cards", get(cards_page))
        .route("/workshops/{id}/present", get(present_page))
        .route("/join", get(join_form))
        .route("/w/{code}", get(learner_page))
        .route("/api/workshop", get(my_workshop))
        .route("/ws/workshop/presenter", get(presenter_socket))
        .route("/workshop-assets/{file}", get(asset))
        .with_state(workshops)
}

fn base_url(c: &Classroom, headers: &HeaderMap) -> String {
    if let Some(b) = &c.config.base_url {
        return b.trim_end_matches('/').to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:8080");
    let scheme = if c.config.tls.is_some() {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}")
}

fn set_cookie(c: &Classroom, name: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = if c.config.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}"
    ))
    .expect("cookie values are hex")
}

/// The learner's live session, from the classroom cookie.
fn learner(x: &Workshops, headers: &HeaderMap) -> Option<Arc<LiveSession>> {
    x.classroom
        .by_token(&auth::cookie(headers, crate::routes::COOKIE)?)
}

fn instructor_and_workshop(
    x: &Workshops,
    headers: &HeaderMap,
    id: i64,
) -> Result<(Instructor, WorkshopRow), AppError> {
    let who = x.instructor(headers)?;
    let w = x.owned(&who, id)?;
    Ok((who, w))
}

fn workshop_json(x: &Workshops, w: &WorkshopRow, headers: &HeaderMap) -> serde_json::Value {
    let base = base_url(&x.classroom, headers);
    let learners = x
        .classroom
        .store
        .workshop_learners(w.id)
        .unwrap_or_default();
    json!({
        "id": w.id,
        "code": w.code,
        "title": w.title,
        "lessons": w.lessons,
        "starts_at": rfc3339(w.starts_at),
        "ends_at": rfc3339(w.ends_at),
        "seats": w.seats,
        "joined": learners.len(),
        "join_url": format!("{base}/w/{}", w.code),
        "board_url": format!("{base}/workshops/{}/board", w.id),
        "cards_url": format!("{base}/workshops/{}/cards", w.id),
        "present_url": format!("{base}/workshops/{}/present", w.id),
        "shared_registry": w.shared_registry.then(|| super::registry_namespace(&w.code)),
        "demo": x.demo(w.id).is_some(),
        "learners": learners.iter().map(|l| json!({
            "id": l.id,
            "name": l.name,
            "joined_at": rfc3339(l.joined_at),
            "live": x.classroom.by_token(&l.token).is_some(),
        })).collect::<Vec<_>>(),
    })
}

fn parse_body<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, AppError> {
    if body.is_empty() {
        return Ok(T::default());
    }
    serde_json::from_slice(body).map_err(|e| AppError::bad_request(format!("invalid request: {e}")))
}

async fn console() -> Html<&'static str> {
    Html(pages::INSTRUCTOR)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct LoginRequest {
    username: Option<String>,
    password: Option<String>,
    admin_token: Option<String>,
}

/// 429 with `Retry-After`: too many failures from this address.
fn throttled(what: &str, retry_after: u64) -> Response {
    let mut r = AppError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!("too many {what} from this address: try again in {retry_after} s"),
    )
    .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

async fn login(
    State(x): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    if let Err(wait) = x.login_failures.check(addr.ip()) {
        return Ok(throttled("failed logins", wait));
    }
    let r: LoginRequest = parse_body(&body)?;
    let attempt = x
        .login(
            r.username.as_deref(),
            r.password.as_deref(),
            r.admin_token.as_deref(),
        )
        .await;
    if matches!(attempt, Err(WorkshopError::BadLogin)) {
        let _ = x.login_failures.take(addr.ip());
    }
    let (who, cookie) = attempt?;
    let mut resp = Json(json!({ "name": who.name, "admin": who.is_admin() })).into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            &x.classroom,
            auth::COOKIE,
            &cookie,
            auth::LOGIN_LIFETIME.as_secs(),
        ),
    );
    Ok(resp)
}

async fn logout(State(x): Shared, headers: HeaderMap) -> Response {
    if let Some(c) = auth::cookie(&headers, auth::COOKIE) {
        x.logins.close(&c);
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(&x.classroom, auth::COOKIE, "", 0),
    );
    r
}

async fn whoami(State(x): Shared, headers: HeaderMap) -> Result<Json<serde_json::Value>, AppError> {
    let who = x.instructor(&headers)?;
    Ok(Json(json!({ "name": who.name, "admin": who.is_admin() })))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct NewInstructor {
    username: String,
    password: String,
}

async fn add_instructor(
    State(x): Shared,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let who = x.instructor(&headers)?;
    let r: NewInstructor = parse_body(&body)?;
    let id = x.add_instructor(&who, &r.username, &r.password).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "username": r.username.trim() })),
    )
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CreateRequest {
    title: String,
    lessons: Vec<String>,
    /// RFC 3339; now when absent.
    starts_at: Option<String>,
    /// RFC 3339; three hours after the start when absent.
    ends_at: Option<String>,
    seats: i64,
}

async fn create(
    State(x): Shared,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let who = x.instructor(&headers)?;
    let r: CreateRequest = parse_body(&body)?;
    let starts_at = r
        .starts_at
        .as_deref()
        .map(parse_time)
        .transpose()?
        .unwrap_or_else(unix_now);
    let ends_at = r
        .ends_at
        .as_deref()
        .map(parse_time)
        .transpose()?
        .unwrap_or(starts_at + 3 * 3600);
    let w = x.create(
        &who,
        WorkshopPlan {
            title: r.title,
            lessons: r.lessons,
            starts_at,
            ends_at,
            seats: r.seats,
        },
    )?;
    Ok((StatusCode::CREATED, Json(workshop_json(&x, &w, &headers))).into_response())
}

async fn list(State(x): Shared, headers: HeaderMap) -> Result<Json<serde_json::Value>, AppError> {
    let who = x.instructor(&headers)?;
    let all = x
        .classroom
        .store
        .workshops(who.id)
        .map_err(WorkshopError::from)?;
    Ok(Json(json!(all
        .iter()
        .map(|w| workshop_json(&x, w, &headers))
        .collect::<Vec<_>>())))
}

async fn detail(
    State(x): Shared,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    let (_, w) = instructor_and_workshop(&x, &headers, id)?;
    Ok(Json(workshop_json(&x, &w, &headers)))
}

async fn delete(
    State(x): Shared,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    let (_, w) = instructor_and_workshop(&x, &headers, id)?;
    let ended = x.delete(&w).await?;
    Ok(Json(json!({ "deleted": w.id, "labs_ended": ended })))
}

async fn board_json(
    State(x): Shared,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<board::Board>, AppError> {
    let (_, w) = instructor_and_workshop(&x, &headers, id)?;
    Ok(Json(x.board(&w)?))
}

async fn board_csv(
    State(x): Shared,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let (_, w) = instructor_and_workshop(&x, &headers, id)?;
    let b = x.board(&w)?;
    let disposition = format!("attachment; filename=\"workshop-{}.csv\"", w.code);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        board::csv(&b),
    )
        .into_response())
}

async fn start_demo(
    State(x): Shared,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    let (who, w) = instructor_and_workshop(&x, &headers, id)?;
    let demo = x.start_demo(&w, &who).await?;
    let nodes: Vec<String> = demo
        .lab()
        .map(|l| l.session.nodes.iter().map(|n| n.name.clone()).collect())
        .unwrap_or_default();
    Ok(Json(json!({ "session": demo.id, "nodes": nodes })))
}

async fn open_registry(
    State(x): Shared,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, AppError> {
    let (_, w) = instructor_and_workshop(&x, &headers, id)?;
    let ns = x.open_registry(&w)?;
    Ok(Json(json!({
        "namespace": ns,
        "pull": format!("docker pull registry.local:5000/{ns}/<name>"),
        "push": format!("docker push registry.local:5000/{ns}/<name>"),
    })))
}

async fn board_socket(
    State(x): Shared,
    headers: HeaderMap,
    Path(id): Path<i64>,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    same_origin(&x.classroom, &headers)?;
    let (_, w) = instructor_and_workshop(&x, &headers, id)?;
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |s| board::serve(x, w, s)))
}

fn terminal_of(live: &LiveSession, node: &str) -> Result<Arc<crate::terminal::Terminal>, AppError> {
    let lab = live
        .lab()
        .ok_or_else(|| AppError::new(StatusCode::CONFLICT, "the lab is being reset".into()))?;
    lab.terminal(node)
        .ok_or_else(|| AppError::not_found(format!("no such node: {node}")))
}

/// The demo lab's map (the projector's), as the learner's map stream.
async fn demo_map(
    State(x): Shared,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    let (_, w) = instructor_and_workshop(&x, &headers, id)?;
    let demo = x.demo(w.id).ok_or(WorkshopError::NotYet(
        "no demo lab yet: start one first".into(),
    ))?;
    Ok(crate::map::web::stream(&x.classroom, &demo, &headers))
}

/// A learner's map for the instructor's shoulder view: only a learner of
/// a workshop the instructor owns.
async fn shoulder_map(
    State(x): Shared,
    headers: HeaderMap,
    Path((id, learner)): Path<(i64, i64)>,
) -> Result<Response, AppError> {
    let (_, w) = instructor_and_workshop(&x, &headers, id)?;
    let live = x.learner_session(&w, learner)?;
    Ok(crate::map::web::stream(&x.classroom, &live, &headers))
}

async fn demo_socket(
    State(x): Shared,
    headers: HeaderMap,
    Path((id, node)): Path<(i64, String)>,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    same_origin(&x.classroom, &headers)?;
    let (_, w) = instructor_and_workshop(&x, &headers, id)?;
    let demo = x.demo(w.id).ok_or(WorkshopError::NotYet(
        "no demo lab yet: start one first".into(),
    ))?;
    let term = terminal_of(&demo, &node)?;
    let activity = x.classroom.activity(&demo, &node);
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |s| socket::serve(term, s, Access::Write, activity)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ShoulderQuery {
    /// `help`: the instructor may type (the learner is told).
    mode: Option<String>,
}

/// Tells the learner when the instructor stops helping.
struct Helping {
    x: Arc<Workshops>,
    workshop: i64,
    learner: i64,
    term: Arc<crate::terminal::Terminal>,
}

impl Drop for Helping {
    fn drop(&mut self) {
        self.x
            .live(self.workshop)
            .helping
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.learner);
        self.term
            .notice("your instructor stopped typing in this terminal");
    }
}

async fn shoulder_socket(
    State(x): Shared,
    headers: HeaderMap,
    Path((id, learner, node)): Path<(i64, i64, String)>,
    Query(q): Query<ShoulderQuery>,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    same_origin(&x.classroom, &headers)?;
    let (who, w) = instructor_and_workshop(&x, &headers, id)?;
    let live = x.learner_session(&w, learner)?;
    let term = terminal_of(&live, &node)?;
    let activity = x.classroom.activity(&live, &node);
    let help = q.mode.as_deref() == Some("help");
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |s| async move {
            if !help {
                return socket::serve(term, s, Access::ReadOnly, activity).await;
            }
            // The page's notice first, then the terminal's: whoever reads
            // the terminal's notice finds the page's too.
            x.live(w.id)
                .helping
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(learner, who.name.clone());
            term.notice(&format!(
                "your instructor ({}) can now type in this terminal to help you",
                who.name
            ));
            let _helping = Helping {
                x: x.clone(),
                workshop: w.id,
                learner,
                term: term.clone(),
            };
            socket::serve(term, s, Access::Write, activity).await
        }))
}

async fn board_page(
    State(x): Shared,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Response, AppError> {
    match instructor_and_workshop(&x, &headers, id) {
        Ok(_) => Ok(Html(pages::BOARD).into_response()),
        Err(_) if x.instructor(&headers).is_err() => {
            Ok(Redirect::to("/instructor").into_response())
        }
        Err(e) => Err(e),
    }
}

/// A learner's lab map, for the instructor (the board links it).
async fn shoulder_map_page(
    State(x): Shared,
    headers: HeaderMap,
    Path((id, learner)): Path<(i64, i64)>,
) -> Result<Html<&'static str>, AppError> {
    let (_, w) = instructor_and_workshop(&x, &headers, id)?;
    x.learner_session(&w, learner)?;
    Ok(Html(crate::map::web::PAGE))
}

async fn present_page(
    State(x): Shared,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Html<&'static str>, AppError> {
    instructor_and_workshop(&x, &headers, id)?;
    Ok(Html(pages::PRESENT))
}

async fn cards_page(
    State(x): Shared,
    headers: HeaderMap,
    Path(id): Path<i64>,
) -> Result<Html<String>, AppError> {
    let (_, w) = instructor_and_workshop(&x, &headers, id)?;
    Ok(Html(pages::cards(&w, &base_url(&x.classroom, &headers))))
}

async fn join_form() -> Html<String> {
    Html(pages::join_form(None, None))
}

async fn learner_page(State(x): Shared, headers: HeaderMap, Path(code): Path<String>) -> Response {
    let code = super::normalize_code(&code);
    let w = match x.classroom.store.workshop_by_code(&code) {
        Ok(Some(w)) => w,
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Html(pages::join_form(
                    None,
                    Some(&format!(
                        "No workshop has the code {code}. Check the code on your card."
                    )),
                )),
            )
                .into_response()
        }
    };
    match learner(&x, &headers).map(|l| x.membership(&l)) {
        Some(Ok(mine)) if mine.id == w.id => Html(pages::LEARNER).into_response(),
        _ => Html(pages::join_form(Some(&w), None)).into_response(),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct JoinRequest {
    code: String,
    name: String,
}

async fn join(
    State(x): Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    if let Err(wait) = x.join_failures.check(addr.ip()) {
        return Ok(throttled("wrong workshop codes", wait));
    }
    let r: JoinRequest = parse_body(&body)?;
    let attempt = x.join(&r.code, &r.name).await;
    if matches!(
        attempt,
        Err(WorkshopError::WrongCode(_) | WorkshopError::NoSuchWorkshop)
    ) {
        let _ = x.join_failures.take(addr.ip());
    }
    let (w, live) = attempt?;
    let mut resp = (
        StatusCode::CREATED,
        Json(json!({
            "workshop": { "id": w.id, "code": w.code, "title": w.title },
            "learner": live.learner,
            "session": live.id,
            "url": format!("{}/w/{}", base_url(&x.classroom, &headers), w.code),
        })),
    )
        .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        set_cookie(
            &x.classroom,
            crate::routes::COOKIE,
            &live.token,
            x.classroom.config.max_lifetime.as_secs(),
        ),
    );
    Ok(resp)
}

/// The learner's workshop: title, lessons, the demo, who is helping.
async fn my_workshop(
    State(x): Shared,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, AppError> {
    let live = learner(&x, &headers)
        .ok_or_else(|| AppError::unauthorized("no session: join with the workshop's code"))?;
    let w = x.membership(&live)?;
    if w.shared_registry {
        // A reset lab has new node tokens: grant them the namespace too.
        x.grant_namespace(&w.code, &live);
    }
    let lessons: Vec<serde_json::Value> = w
        .lessons
        .iter()
        .filter_map(|s| x.library.find(s))
        .map(|(l, _, _)| json!({ "slug": l.slug, "title": l.meta.title, "url": format!("/lessons/{}", l.slug) }))
        .collect();
    let helping = x
        .live(w.id)
        .helping
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(&live.learner)
        .cloned();
    Ok(Json(json!({
        "workshop": { "id": w.id, "code": w.code, "title": w.title,
                      "starts_at": rfc3339(w.starts_at), "ends_at": rfc3339(w.ends_at) },
        "learner": { "id": live.learner, "name": *live.name.lock().unwrap_or_else(|p| p.into_inner()) },
        "lessons": lessons,
        "demo": x.demo(w.id).is_some(),
        "helping": helping,
        "shared_registry": w.shared_registry.then(|| super::registry_namespace(&w.code)),
    })))
}

async fn presenter_socket(
    State(x): Shared,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    same_origin(&x.classroom, &headers)?;
    let live = learner(&x, &headers)
        .ok_or_else(|| AppError::unauthorized("no session: join with the workshop's code"))?;
    let w = x.membership(&live)?;
    let demo = x.demo(w.id).ok_or(WorkshopError::NotYet(
        "the instructor has not started a demo yet".into(),
    ))?;
    let term = terminal_of(&demo, "node1")?;
    let activity = x.classroom.activity(&demo, "node1");
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |s| socket::serve(term, s, Access::ReadOnly, activity)))
}

async fn asset(Path(file): Path<String>) -> Response {
    match pages::asset(&file) {
        Some((bytes, mime)) => ([(header::CONTENT_TYPE, mime)], bytes).into_response(),
        None => AppError::not_found(format!("no such file: {file}")).into_response(),
    }
}
