//! The runner's side of the runner API: a lab per request of the front,
//! its terminals, its checks, its registry grants. Every route needs the
//! shared secret; the router is served on the runner's own listener, never
//! beside the learners' pages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::auth::Secret;
use super::protocol::{
    CheckAnswer, CheckRequest, CreateSession, EnsureNodes, Health, Namespace, Prewarm, Refusal,
    SessionInfo, Setup, SetupOutcome, PREFIX,
};
use crate::classroom::{Classroom, ClassroomError, LiveSession};
use crate::error::AppError;
use crate::lessons::Library;
use crate::terminal::socket::{self, Access};

/// Largest WebSocket message the front may pass on (as the browser's).
const MAX_MESSAGE: usize = 64 * 1024;

/// The runner's state: its classroom and the front's label of each session.
#[derive(Clone)]
pub struct Runner {
    classroom: Arc<Classroom>,
    /// The lessons (the same as the front's), for their setup.
    library: Arc<Library>,
    labels: Arc<Mutex<HashMap<String, String>>>,
}

/// The runner API's routes, behind the secret.
pub fn router(classroom: Arc<Classroom>, secret: Secret) -> Router {
    let state = Runner {
        library: Arc::new(Library::open(&classroom.config.lessons)),
        classroom,
        labels: Arc::default(),
    };
    let api = Router::new()
        .route("/health", get(health))
        .route("/sessions", get(list).post(create))
        .route("/sessions/{id}", axum::routing::delete(end))
        .route("/sessions/{id}/nodes", post(nodes))
        .route("/sessions/{id}/check", post(check))
        .route("/sessions/{id}/grant", post(grant))
        .route("/sessions/{id}/setup", post(setup))
        .route("/sessions/{id}/terminal/{node}", get(terminal))
        .route("/registry/shared", post(open_shared))
        .route("/prewarm", post(prewarm))
        .with_state(state);
    Router::new()
        .nest(PREFIX, api)
        .layer(middleware::from_fn_with_state(secret, authorize))
}

async fn authorize(State(secret): State<Secret>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if secret.accepts(given) {
        next.run(request).await
    } else {
        AppError::unauthorized("the runner secret is missing or wrong").into_response()
    }
}

impl Runner {
    fn session(&self, id: &str) -> Result<Arc<LiveSession>, AppError> {
        self.classroom
            .by_id(id)
            .ok_or_else(|| AppError::not_found(format!("no such session: {id}")))
    }

    fn info(&self, live: &LiveSession) -> SessionInfo {
        let label = self
            .labels
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&live.id)
            .cloned()
            .unwrap_or_default();
        SessionInfo {
            id: live.id.clone(),
            label,
            nodes: live.node_names(),
        }
    }
}

async fn health(State(r): State<Runner>) -> Json<Health> {
    Json(Health {
        sessions: r.classroom.count(),
        max_sessions: r.classroom.config.max_sessions,
        pool: r.classroom.pooled(),
    })
}

async fn list(State(r): State<Runner>) -> Json<Vec<SessionInfo>> {
    Json(r.classroom.all().iter().map(|s| r.info(s)).collect())
}

async fn create(State(r): State<Runner>, Json(req): Json<CreateSession>) -> Response {
    match r.classroom.admit(None).await {
        Ok(live) => {
            // Labels are the front's cookie tokens: hex, bounded.
            let label: String = req.label.chars().take(128).collect();
            r.labels
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(live.id.clone(), label);
            (StatusCode::CREATED, Json(r.info(&live))).into_response()
        }
        Err(ClassroomError::Full { retry_after }) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Refusal {
                message: "the runner is full".into(),
                retry_after: Some(retry_after),
            }),
        )
            .into_response(),
        Err(e) => AppError::internal(e).into_response(),
    }
}

async fn end(State(r): State<Runner>, Path(id): Path<String>) -> Result<StatusCode, AppError> {
    let live = r.session(&id)?;
    r.classroom.end(&live, "ended by the front").await;
    r.labels
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&id);
    Ok(StatusCode::NO_CONTENT)
}

async fn nodes(
    State(r): State<Runner>,
    Path(id): Path<String>,
    Json(req): Json<EnsureNodes>,
) -> Result<Json<SessionInfo>, AppError> {
    let live = r.session(&id)?;
    // The lessons ask for a handful; never let a request ask for thousands.
    let count = req.count.min(crate::lessons::MAX_NODES);
    r.classroom
        .ensure_nodes(&live, count)
        .await
        .map_err(|e| AppError::new(StatusCode::CONFLICT, e.to_string()))?;
    Ok(Json(r.info(&live)))
}

async fn check(
    State(r): State<Runner>,
    Path(id): Path<String>,
    Json(req): Json<CheckRequest>,
) -> Result<Json<CheckAnswer>, AppError> {
    let live = r.session(&id)?;
    let verdicts = r.classroom.check(&live, &req.node, req.checks).await?;
    Ok(Json(CheckAnswer { verdicts }))
}

/// Runs a lesson's setup in the lab and answers when it has ended.
async fn setup(
    State(r): State<Runner>,
    Path(id): Path<String>,
    Json(req): Json<Setup>,
) -> Result<Json<SetupOutcome>, AppError> {
    let live = r.session(&id)?;
    let (lesson, _, _) = r
        .library
        .find(&req.lesson)
        .ok_or_else(|| AppError::not_found(format!("no such lesson: {}", req.lesson)))?;
    crate::lessons::setup::open_lesson(&r.classroom, &live, &lesson).await;
    let lab = live
        .lab()
        .ok_or_else(|| AppError::new(StatusCode::CONFLICT, "the lab is being reset".into()))?;
    // A setup pulls and builds: minutes at most (the front waits as long).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(600);
    loop {
        let got = r
            .classroom
            .store
            .setup_outcome(&lab.session.id, &lesson.slug)
            .map_err(AppError::internal)?;
        match got {
            Some(Some(outcome)) => return Ok(Json(SetupOutcome { outcome })),
            None => {
                return Err(AppError::new(
                    StatusCode::CONFLICT,
                    "the lesson's setup did not start".into(),
                ))
            }
            Some(None) if tokio::time::Instant::now() >= deadline => {
                return Err(AppError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    "the lesson's setup is still running".into(),
                ))
            }
            Some(None) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}

async fn grant(
    State(r): State<Runner>,
    Path(id): Path<String>,
    Json(req): Json<Namespace>,
) -> Result<StatusCode, AppError> {
    let live = r.session(&id)?;
    valid_namespace(&req.namespace)?;
    r.classroom.grant_namespace(&live, &req.namespace);
    Ok(StatusCode::NO_CONTENT)
}

async fn open_shared(
    State(r): State<Runner>,
    Json(req): Json<Namespace>,
) -> Result<StatusCode, AppError> {
    valid_namespace(&req.namespace)?;
    r.classroom.open_namespace(&req.namespace);
    Ok(StatusCode::NO_CONTENT)
}

async fn prewarm(State(r): State<Runner>, Json(req): Json<Prewarm>) -> StatusCode {
    r.classroom
        .prewarm_for_workshops(req.labs.min(r.classroom.config.max_sessions));
    StatusCode::NO_CONTENT
}

async fn terminal(
    State(r): State<Runner>,
    Path((id, node)): Path<(String, String)>,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    let live = r.session(&id)?;
    let lab = live
        .lab()
        .ok_or_else(|| AppError::new(StatusCode::CONFLICT, "the lab is being reset".into()))?;
    let term = lab
        .terminal(&node)
        .ok_or_else(|| AppError::not_found(format!("no such node: {node}")))?;
    let activity = r.classroom.activity(&live, &node);
    Ok(ws
        .max_message_size(MAX_MESSAGE)
        .on_upgrade(move |socket| socket::serve(term, socket, Access::Write, activity)))
}

/// A workshop namespace as the front names them (`ws-` and the join code).
fn valid_namespace(ns: &str) -> Result<(), AppError> {
    let ok = ns.len() <= 64
        && ns.starts_with("ws-")
        && ns[3..]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok && ns.len() > 3 {
        Ok(())
    } else {
        Err(AppError::bad_request(format!(
            "invalid registry namespace: {ns}"
        )))
    }
}
