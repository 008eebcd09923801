//! The map's routes: the learner's own map (by the session cookie, like
//! every `/api/` route: no route names a session, so no learner can ask
//! for another's), and the stream an instructor's views use, after the
//! workshop's own checks (see `workshop::web`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::stream::{self, Stream};
use futures_util::StreamExt;
use serde_json::json;

use super::watch::{MapError, Viewer};
use crate::classroom::{Classroom, LiveSession};
use crate::error::AppError;

/// An instructor's page showing one learner's map (see `web/map.html`).
pub const PAGE: &str = include_str!("../../../web/map.html");

/// The learner's map routes.
pub fn router(classroom: Arc<Classroom>) -> Router {
    Router::new()
        .route("/api/map", get(model))
        .route("/api/map/stream", get(learner_stream))
        .with_state(classroom)
}

fn session_of(c: &Classroom, headers: &HeaderMap) -> Result<Arc<LiveSession>, AppError> {
    crate::lessons::web::live_of(c, headers)
        .ok_or_else(|| AppError::unauthorized("no session: open the classroom to start one"))
}

/// The model now, as JSON (what the stream sends, once).
async fn model(
    State(c): State<Arc<Classroom>>,
    headers: HeaderMap,
) -> Result<Json<super::model::Model>, AppError> {
    let live = session_of(&c, &headers)?;
    let maps = c.maps.clone();
    let m = tokio::task::spawn_blocking(move || maps.snapshot(&live))
        .await
        .map_err(AppError::internal)?;
    Ok(Json(m))
}

async fn learner_stream(State(c): State<Arc<Classroom>>, headers: HeaderMap) -> Response {
    match session_of(&c, &headers) {
        Ok(live) => stream(&c, &live, &headers),
        Err(e) => e.into_response(),
    }
}

/// The map of `live` as server-sent events: `hello` (where preview links
/// go), then `model` with the whole model each time it changes (the page
/// compares it with the last one itself).
pub fn stream(c: &Classroom, live: &Arc<LiveSession>, headers: &HeaderMap) -> Response {
    let viewer = match c.maps.view(live) {
        Ok(v) => v,
        Err(e @ MapError::TooManyViewers) => {
            return AppError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()).into_response()
        }
    };
    let hello = json!({
        "session": live.id,
        "preview": crate::preview::base_url(c, headers),
    })
    .to_string();
    Sse::new(events(viewer, hello))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

fn events(viewer: Viewer, hello: String) -> impl Stream<Item = Result<Event, Infallible>> {
    let rx = viewer.watcher.subscribe();
    let first = Event::default().event("hello").data(hello);
    stream::once(async move { Ok(first) }).chain(stream::unfold(
        (viewer, rx, 0u64),
        |(viewer, mut rx, seen)| async move {
            loop {
                let snapshot = rx.borrow_and_update().clone();
                if snapshot.rev > seen {
                    let event = Event::default()
                        .event("model")
                        .id(snapshot.rev.to_string())
                        .data(&*snapshot.json);
                    return Some((Ok(event), (viewer, rx, snapshot.rev)));
                }
                rx.changed().await.ok()?;
            }
        },
    ))
}
