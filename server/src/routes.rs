//! Every route in one table, and the thin handlers: parse, call the
//! classroom, format.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::classroom::{Classroom, ClassroomError, LiveSession};
use crate::error::AppError;
use crate::terminal::socket::{self, Access};
use crate::{assets, pages};

/// The cookie holding a session's token.
pub const COOKIE: &str = "berth_session";
/// Largest WebSocket message a browser may send.
const MAX_MESSAGE: usize = 64 * 1024;

/// The classroom's routes.
pub fn app(classroom: Arc<Classroom>) -> Router {
    Router::new()
        .route("/terminal", get(index))
        .route("/start", get(start_page))
        .route("/healthz", get(healthz))
        .route("/resume/{token}", get(resume))
        .route(
            "/api/session",
            post(create_session).get(session_status).delete(end_session),
        )
        .route("/api/session/extend", post(extend))
        .route("/api/session/reset", post(reset))
        .route("/ws/terminal/{node}", get(terminal))
        .route("/assets/{*file}", get(asset))
        .with_state(classroom.clone())
        .merge(crate::lessons::web::router(classroom.clone()))
        .merge(crate::files::router(classroom.clone()))
        .merge(crate::map::web::router(classroom.clone()))
        .merge(crate::workshop::web::router(classroom))
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn session_of(c: &Classroom, headers: &HeaderMap) -> Result<Arc<LiveSession>, AppError> {
    let token = token_of(headers)
        .ok_or_else(|| AppError::unauthorized("no session: open the classroom to start one"))?;
    c.by_token(&token)
        .ok_or_else(|| AppError::not_found("no such session: it ended or never existed"))
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

fn cookie(c: &Classroom, token: &str) -> HeaderValue {
    let secure = if c.config.tls.is_some() {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        c.config.max_lifetime.as_secs()
    ))
    .expect("token is hex")
}

fn status_json(c: &Classroom, live: &LiveSession, headers: &HeaderMap) -> serde_json::Value {
    let (left, why) = live.remaining(&c.config);
    let nodes = live.node_names();
    json!({
        "id": live.id,
        "name": *live.name.lock().unwrap_or_else(|p| p.into_inner()),
        "nodes": nodes,
        "resume_url": format!("{}/resume/{}", base_url(c, headers), live.token),
        "ends_in_secs": left.as_secs(),
        "ends_because": why,
        "idle_timeout_secs": c.config.idle_timeout.as_secs(),
        "frozen": *live.frozen.lock().unwrap_or_else(|p| p.into_inner()),
        "lost": live.lost(),
    })
}

async fn index() -> Html<&'static str> {
    Html(pages::CLASSROOM)
}

async fn healthz(State(c): State<Arc<Classroom>>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "sessions": c.count(),
        "max_sessions": c.config.max_sessions,
        "pool": c.pooled(),
        // A front's runners: which answer, how loaded (the operator's view).
        "runners": c.runners.get().map(|pool| pool.runners.iter().map(|r| {
            let h = r.health();
            json!({
                "up": r.is_up(),
                "sessions": h.as_ref().map(|h| h.sessions),
                "max_sessions": h.as_ref().map(|h| h.max_sessions),
            })
        }).collect::<Vec<_>>()),
    }))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CreateRequest {
    name: Option<String>,
}

fn refused(e: ClassroomError, html: bool) -> Response {
    match e {
        ClassroomError::Full { retry_after } => {
            let mut r = if html {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Html(pages::full(retry_after)),
                )
                    .into_response()
            } else {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(json!({
                        "message": format!("the classroom is full — retrying in {retry_after} s"),
                        "retry_after": retry_after,
                    })),
                )
                    .into_response()
            };
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            r
        }
        ClassroomError::RateLimited { retry_after } => {
            let mut r = AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many new sessions from this address: try again in {retry_after} s"),
            )
            .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            r
        }
        other => AppError::internal(other).into_response(),
    }
}

async fn create_session(
    State(c): State<Arc<Classroom>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let request: CreateRequest = if body.is_empty() {
        CreateRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return AppError::bad_request(format!("invalid request: {e}")).into_response()
            }
        }
    };
    match c.start(addr.ip(), request.name).await {
        Ok(live) => {
            let mut r =
                (StatusCode::CREATED, Json(status_json(&c, &live, &headers))).into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, cookie(&c, &live.token));
            r
        }
        Err(e) => refused(e, false),
    }
}

/// Without JavaScript: make a session and go to the classroom, or the
/// "full" page that retries by itself.
async fn start_page(
    State(c): State<Arc<Classroom>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
) -> Response {
    match c.start(addr.ip(), None).await {
        Ok(live) => {
            let mut r = Redirect::to("/").into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, cookie(&c, &live.token));
            r
        }
        Err(e) => refused(e, true),
    }
}

async fn session_status(
    State(c): State<Arc<Classroom>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, AppError> {
    let live = session_of(&c, &headers)?;
    Ok(Json(status_json(&c, &live, &headers)))
}

async fn extend(
    State(c): State<Arc<Classroom>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, AppError> {
    let live = session_of(&c, &headers)?;
    live.touch();
    Ok(Json(status_json(&c, &live, &headers)))
}

async fn reset(
    State(c): State<Arc<Classroom>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, AppError> {
    let live = session_of(&c, &headers)?;
    c.reset(&live).await.map_err(AppError::internal)?;
    Ok(Json(status_json(&c, &live, &headers)))
}

async fn end_session(
    State(c): State<Arc<Classroom>>,
    headers: HeaderMap,
) -> Result<StatusCode, AppError> {
    let live = session_of(&c, &headers)?;
    c.end(&live, "ended by the learner").await;
    Ok(StatusCode::NO_CONTENT)
}

async fn resume(State(c): State<Arc<Classroom>>, Path(token): Path<String>) -> Response {
    match c.by_token(&token) {
        Some(live) => {
            let mut r = Redirect::to("/").into_response();
            r.headers_mut()
                .insert(header::SET_COOKIE, cookie(&c, &live.token));
            r
        }
        None => AppError::not_found("no such session: it ended or never existed").into_response(),
    }
}

/// Refuses a WebSocket opened by a page of another site (browsers send
/// `Origin`; cookies alone would let any site open the instructor's sockets).
pub fn same_origin(c: &Classroom, headers: &HeaderMap) -> Result<(), AppError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return Ok(());
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or(origin);
    // Behind a proxy the Host may differ: the public URL counts too.
    let public = c
        .config
        .base_url
        .as_deref()
        .is_some_and(|b| b.trim_end_matches('/').eq_ignore_ascii_case(origin));
    if public || origin_host.eq_ignore_ascii_case(host) {
        Ok(())
    } else {
        Err(AppError::new(
            StatusCode::FORBIDDEN,
            format!("cross-site WebSocket refused (origin {origin})"),
        ))
    }
}

async fn terminal(
    State(c): State<Arc<Classroom>>,
    Path(node): Path<String>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    same_origin(&c, &headers)?;
    let live = session_of(&c, &headers)?;
    if let Some(pool) = c.runners.get() {
        return remote_terminal(&c, pool, &live, &node, ws).await;
    }
    let lab = live
        .lab()
        .ok_or_else(|| AppError::new(StatusCode::CONFLICT, "the lab is being reset".into()))?;
    let term = lab
        .terminal(&node)
        .ok_or_else(|| AppError::not_found(format!("no such node: {node}")))?;
    let activity = c.activity(&live, &node);
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| socket::serve(term, socket, Access::Write, activity)))
}

/// A terminal of a lab a runner holds: the browser's socket relayed to
/// the runner's (connected before the upgrade, so a gone lab is an HTTP
/// answer the page can show, not a socket that closes at once).
async fn remote_terminal(
    c: &Arc<Classroom>,
    pool: &Arc<crate::runner::RunnerPool>,
    live: &Arc<LiveSession>,
    node: &str,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    let Some(remote) = live.remote() else {
        return Err(AppError::new(
            StatusCode::GONE,
            live.lost()
                .unwrap_or_else(|| "the lab is being reset".into()),
        ));
    };
    if !remote.nodes.iter().any(|n| n == node) {
        return Err(AppError::not_found(format!("no such node: {node}")));
    }
    let url = pool.terminal_url(remote.runner, &remote.id, node);
    let upstream = crate::runner::proxy::connect(pool, &url)
        .await
        .map_err(|e| {
            tracing::warn!(session = %live.id, error = %e, "the lab's runner refused its terminal");
            AppError::new(StatusCode::BAD_GATEWAY, format!("the lab's runner: {e}"))
        })?;
    let l = live.clone();
    let _ = c;
    Ok(ws.max_message_size(MAX_MESSAGE).on_upgrade(move |socket| {
        crate::runner::proxy::relay(socket, upstream, Arc::new(move || l.touch()))
    }))
}

async fn asset(Path(file): Path<String>) -> Response {
    match assets::get(&file) {
        Some((bytes, mime)) => ([(header::CONTENT_TYPE, mime)], bytes).into_response(),
        None => AppError::not_found(format!("no such file: {file}")).into_response(),
    }
}
