//! The lesson pages and their API: the catalogue at `/`, a lesson beside
//! the terminal at `/lessons/{slug}`, checks, progress and the session's
//! published ports (as preview links).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::pages::{self, Catalogue, CatalogueEntry, LessonPage, Neighbour, NoLesson};
use super::render::{esc, to_html};
use super::{Lesson, Library};
use crate::classroom::{Classroom, LiveSession};
use crate::error::AppError;
use crate::grading::Verdict;

#[derive(Clone)]
struct Ctx {
    classroom: Arc<Classroom>,
    library: Arc<Library>,
}

/// The lesson routes (state included), to merge beside the classroom's.
/// A reset lab is brought to the start of the lesson opened last.
pub fn router(classroom: Arc<Classroom>) -> Router {
    let library = Arc::new(Library::open(&classroom.config.lessons));
    let lib = library.clone();
    let _ = classroom.after_reset.set(Box::new(move |c, live, old| {
        let lib = lib.clone();
        Box::pin(async move {
            let last = c.store.last_setup(&old).ok().flatten();
            if let Some((lesson, _, _)) = last.and_then(|slug| lib.find(&slug)) {
                super::setup::open_lesson(&c, &live, &lesson).await;
            }
        })
    }));
    Router::new()
        .route("/", get(catalogue))
        .route("/lessons/{slug}", get(lesson_page))
        .route("/lessons/{slug}/{file}", get(picture))
        .route("/api/lessons", get(lesson_list))
        .route("/api/lessons/{slug}/check", post(check))
        .route("/api/progress", get(progress))
        .route("/api/ports", get(ports))
        .with_state(Ctx { classroom, library })
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == crate::routes::COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The session of the request's cookie, if it is live.
pub fn live_of(c: &Classroom, headers: &HeaderMap) -> Option<Arc<LiveSession>> {
    c.by_token(&token_of(headers)?)
}

fn session_of(c: &Classroom, headers: &HeaderMap) -> Result<Arc<LiveSession>, AppError> {
    let token = token_of(headers)
        .ok_or_else(|| AppError::unauthorized("no session: open the classroom to start one"))?;
    c.by_token(&token)
        .ok_or_else(|| AppError::not_found("no such session: it ended or never existed"))
}

/// Exercises passed by the learner: `(lesson, exercise) -> first pass time`.
fn passes(c: &Classroom, live: Option<&LiveSession>) -> BTreeMap<(String, String), String> {
    live.and_then(|l| c.store.passes(l.learner).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|(lesson, ex, at)| ((lesson, ex), at))
        .collect()
}

fn done_count(lesson: &Lesson, passed: &BTreeMap<(String, String), String>) -> usize {
    lesson
        .exercises
        .iter()
        .filter(|e| passed.contains_key(&(lesson.slug.clone(), e.id.clone())))
        .count()
}

async fn catalogue(State(x): State<Ctx>, headers: HeaderMap) -> Html<String> {
    let live = live_of(&x.classroom, &headers);
    let passed = passes(&x.classroom, live.as_deref());
    let lessons = x.library.lessons();
    let entries = lessons
        .iter()
        .map(|l| {
            let done = done_count(l, &passed);
            let total = l.exercises.len();
            CatalogueEntry {
                slug: l.slug.clone(),
                title: l.meta.title.clone(),
                summary: l.meta.summary.clone(),
                minutes: l.meta.minutes,
                done,
                total,
                state: if total > 0 && done == total {
                    "done"
                } else if done > 0 {
                    "started"
                } else {
                    "new"
                },
            }
        })
        .collect();
    Html(pages::render(&Catalogue {
        lessons: entries,
        live: live.is_some(),
    }))
}

async fn lesson_page(
    State(x): State<Ctx>,
    Path(slug): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some((lesson, prev, next)) = x.library.find(&slug) else {
        return (
            StatusCode::NOT_FOUND,
            Html(pages::render(&NoLesson { slug })),
        )
            .into_response();
    };
    let live = live_of(&x.classroom, &headers);
    if let Some(live) = &live {
        super::setup::open_lesson(&x.classroom, live, &lesson).await;
    }
    let passed = passes(&x.classroom, live.as_deref());
    let mut body = to_html(&lesson);
    // Exercises already passed start green.
    for e in &lesson.exercises {
        if passed.contains_key(&(lesson.slug.clone(), e.id.clone())) {
            body = body.replace(
                &format!("class=\"exercise\" id=\"exercise-{}\"", esc(&e.id)),
                &format!("class=\"exercise passed\" id=\"exercise-{}\"", esc(&e.id)),
            );
        }
    }
    let neighbour = |l: Option<Lesson>| {
        l.map(|l| Neighbour {
            slug: l.slug,
            title: l.meta.title,
        })
    };
    // A front's images are its runners' (loaded from the same packs).
    let missing_images = if x.classroom.runners.get().is_some() {
        Vec::new()
    } else {
        x.classroom
            .sessions
            .engine
            .runtime
            .images()
            .missing(berth_runtime::session::BASE_SCOPE, &lesson.meta.images)
    };
    Html(pages::render(&LessonPage {
        slug: lesson.slug.clone(),
        title: lesson.meta.title.clone(),
        summary: lesson.meta.summary.clone(),
        minutes: lesson.meta.minutes,
        body,
        prev: neighbour(prev),
        next: neighbour(next),
        missing_images,
    }))
    .into_response()
}

/// A picture of a lesson (`/lessons/{slug}/layers.svg`): only an `.svg`
/// the lesson's markdown shows, checked again as it is served, as an image
/// that may not run anything (see [`super::pictures`]).
async fn picture(State(x): State<Ctx>, Path((slug, file)): Path<(String, String)>) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "no such picture").into_response();
    let Some((lesson, _, _)) = x.library.find(&slug) else {
        return not_found();
    };
    let shown = super::pictures::pictures(&lesson.body)
        .iter()
        .any(|p| p.dest == file);
    if !shown || !super::pictures::is_picture_name(&file) {
        return not_found();
    }
    let path = lesson.dir.join(&file);
    let text = tokio::task::spawn_blocking(move || -> Option<String> {
        use std::io::Read;
        // Never a symlink out of the lesson folder, never more than the cap.
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if !meta.is_file() {
            return None;
        }
        let mut s = String::new();
        std::fs::File::open(&path)
            .ok()?
            .take(super::pictures::MAX_PICTURE_BYTES + 1)
            .read_to_string(&mut s)
            .ok()?;
        Some(s)
    })
    .await
    .ok()
    .flatten();
    let Some(text) = text else {
        return not_found();
    };
    if let Err(why) = super::pictures::check_svg(&text) {
        tracing::warn!(lesson = %slug, picture = %file, %why, "picture refused");
        return not_found();
    }
    (
        [
            (header::CONTENT_TYPE, super::pictures::CONTENT_TYPE),
            (header::CONTENT_SECURITY_POLICY, super::pictures::CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        text,
    )
        .into_response()
}

async fn lesson_list(State(x): State<Ctx>, headers: HeaderMap) -> Json<serde_json::Value> {
    let live = live_of(&x.classroom, &headers);
    let passed = passes(&x.classroom, live.as_deref());
    let lessons = x.library.lessons();
    // The current lab's ID, here or on a runner.
    let session = live.as_ref().and_then(|l| {
        l.remote()
            .map(|r| r.id)
            .or_else(|| l.lab().map(|lab| lab.session.id.clone()))
    });
    // Where a lesson's setup stands in this session: null when it never
    // started, else running, done or "failed: …".
    let setup = |slug: &str| -> Option<String> {
        let outcome = x
            .classroom
            .store
            .setup_outcome(session.as_ref()?, slug)
            .ok()??;
        Some(match outcome.as_deref() {
            None => "running".to_string(),
            Some("ok") => "done".to_string(),
            Some(e) => format!("failed: {e}"),
        })
    };
    Json(json!(lessons
        .iter()
        .map(|l| json!({
            "slug": l.slug,
            "setup": setup(&l.slug),
            "title": l.meta.title,
            "summary": l.meta.summary,
            "minutes": l.meta.minutes,
            "nodes": l.meta.nodes,
            "exercises": l.exercises.iter().map(|e| json!({
                "id": e.id,
                "title": e.title,
                "passed_at": passed.get(&(l.slug.clone(), e.id.clone())),
            })).collect::<Vec<_>>(),
        }))
        .collect::<Vec<_>>()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct CheckRequest {
    /// One exercise; all of the lesson's when absent.
    exercise: Option<String>,
}

/// Runs the checks of one exercise (or all) against the learner's node.
pub async fn grade(
    classroom: &Arc<Classroom>,
    live: &Arc<LiveSession>,
    lesson: &Lesson,
    exercise: Option<&str>,
) -> Result<serde_json::Value, AppError> {
    let exercises: Vec<_> = match exercise {
        Some(id) => vec![lesson
            .exercise(id)
            .ok_or_else(|| AppError::not_found(format!("no such exercise: {id}")))?
            .clone()],
        None => lesson.exercises.clone(),
    };
    let mut out = Vec::new();
    for ex in exercises {
        let node = ex.node.clone().unwrap_or_else(|| "node1".into());
        // Here, or on the lab's runner when this classroom is a front.
        let verdicts: Vec<Verdict> = classroom.check(live, &node, ex.checks.clone()).await?;
        let passed = verdicts.iter().all(|v| v.passed);
        let detail = serde_json::to_string(&verdicts).unwrap_or_default();
        classroom
            .store
            .record_result(live.learner, &lesson.slug, &ex.id, passed, &detail)
            .map_err(AppError::internal)?;
        out.push(json!({
            "exercise": ex.id,
            "node": node,
            "passed": passed,
            "checks": verdicts,
        }));
    }
    live.touch();
    Ok(json!({ "lesson": lesson.slug, "exercises": out }))
}

async fn check(
    State(x): State<Ctx>,
    Path(slug): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, AppError> {
    let live = session_of(&x.classroom, &headers)?;
    let request: CheckRequest = if body.is_empty() {
        CheckRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AppError::bad_request(format!("invalid request: {e}")))?
    };
    let (lesson, _, _) = x
        .library
        .find(&slug)
        .ok_or_else(|| AppError::not_found(format!("no such lesson: {slug}")))?;
    // A check of a lesson never opened in this lab still finds its nodes.
    if x.classroom.runners.get().is_some() {
        x.classroom
            .ensure_remote_nodes(&live, lesson.node_count())
            .await
            .map_err(|e| AppError::new(StatusCode::CONFLICT, e.to_string()))?;
    } else {
        x.classroom
            .ensure_nodes(&live, lesson.node_count())
            .await
            .map_err(|e| AppError::new(StatusCode::CONFLICT, e.to_string()))?;
    }
    Ok(Json(
        grade(&x.classroom, &live, &lesson, request.exercise.as_deref()).await?,
    ))
}

async fn progress(State(x): State<Ctx>, headers: HeaderMap) -> Result<Response, AppError> {
    let live = session_of(&x.classroom, &headers)?;
    let passed = passes(&x.classroom, Some(&live));
    let lessons = x.library.lessons();
    let list: Vec<serde_json::Value> = lessons
        .iter()
        .map(|l| {
            json!({
                "lesson": l.slug,
                "title": l.meta.title,
                "done": done_count(l, &passed),
                "total": l.exercises.len(),
                "exercises": l.exercises.iter().map(|e| json!({
                    "id": e.id,
                    "passed": passed.contains_key(&(l.slug.clone(), e.id.clone())),
                    "passed_at": passed.get(&(l.slug.clone(), e.id.clone())),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let name = live.name.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let mut r = Json(json!({
        "learner": { "id": live.learner, "name": name },
        "session": live.id,
        "lessons": list,
    }))
    .into_response();
    r.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        header::HeaderValue::from_static("inline; filename=\"progress.json\""),
    );
    Ok(r)
}

/// The session's published ports, each with its preview link.
async fn ports(
    State(x): State<Ctx>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, AppError> {
    let live = session_of(&x.classroom, &headers)?;
    let lab = live
        .lab()
        .ok_or_else(|| AppError::new(StatusCode::CONFLICT, "the lab is being reset".into()))?;
    let runtime = x.classroom.sessions.engine.runtime.clone();
    let scopes: Vec<(String, String)> = lab
        .session
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.scope.clone()))
        .collect();
    let found = tokio::task::spawn_blocking(move || crate::preview::published(&runtime, &scopes))
        .await
        .map_err(AppError::internal)?;
    let base = crate::preview::base_url(&x.classroom, &headers);
    Ok(Json(json!(found
        .into_iter()
        .map(|p| json!({
            "node": p.node,
            "container": p.container,
            "container_port": p.container_port,
            "host_port": p.host_port,
            "url": base.as_ref().map(|b| format!("{b}/s/{}/{}/", live.id, p.host_port)),
        }))
        .collect::<Vec<_>>())))
}
