//! The editor's file API: a lab node's files under its home directory
//! (`/root`), listed, read, written, renamed, removed, uploaded (a tar,
//! which the browser builds from dropped files and folders) and downloaded
//! (a file, or a folder as a tar).
//!
//! Every route takes the node from the path and a `path` relative to the
//! home directory from the query. A path is refused here when it is
//! absolute, climbs with `..` or holds a NUL byte; the operation itself runs
//! in the runtime's helper inside the lab's namespaces
//! (`berth_runtime::container::files`), so a symlink in the lab resolves in
//! the lab and what is written belongs to the lab's user. Auth is the
//! session cookie, and the origin is checked as for the terminal's socket.

use std::io::Read;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use berth_runtime::container::files::{lab_path, FileError, FileErrorKind};
use berth_runtime::container::{Container, Runtime};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::json;

use crate::classroom::Classroom;
use crate::error::AppError;

/// The lab's home directory, the root of the editor's tree.
pub const HOME: &str = "/root";
/// The largest file the editor opens or saves.
pub const MAX_EDIT: u64 = 1 << 20;

/// The file routes (state included), to merge beside the classroom's.
pub fn router(classroom: Arc<Classroom>) -> Router {
    Router::new()
        .route("/api/files/{node}/list", get(list))
        .route("/api/files/{node}/stat", get(stat))
        .route("/api/files/{node}/read", get(read))
        .route("/api/files/{node}/write", post(write))
        .route("/api/files/{node}/mkdir", post(mkdir))
        .route("/api/files/{node}/rename", post(rename))
        .route("/api/files/{node}/delete", post(delete))
        .route("/api/files/{node}/upload", post(upload))
        .route("/api/files/{node}/download", get(download))
        .with_state(classroom)
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Query_ {
    path: String,
    to: Option<String>,
    /// The version the editor read; a save is refused if the file moved on.
    version: Option<String>,
    /// Create a new file: refused if the path exists.
    new: Option<bool>,
}

/// File operations one session may run at once: each is a helper process
/// and a blocking thread, so a page (or a script) firing requests in a loop
/// waits for its own turn instead of filling the host with processes.
const PER_SESSION: usize = 4;

/// The permits of each session, by session id (entries of ended sessions
/// are dropped when nobody holds them).
fn permits(session: &str) -> Arc<tokio::sync::Semaphore> {
    static ALL: std::sync::OnceLock<
        std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>,
    > = std::sync::OnceLock::new();
    let mut all = ALL
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    if all.len() > 256 {
        all.retain(|_, s| Arc::strong_count(s) > 1);
    }
    all.entry(session.to_string())
        .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(PER_SESSION)))
        .clone()
}

/// The lab of a request, with the session's permit to run one operation.
struct Lab {
    rt: Arc<Runtime>,
    container: Arc<Container>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// The lab container of `node` in the request's session, after the origin
/// and cookie checks, once the session may run another operation; the
/// session counts as active.
async fn lab_of(c: &Classroom, headers: &HeaderMap, node: &str) -> Result<Lab, AppError> {
    let (rt, container, id) = find_lab(c, headers, node)?;
    let permit = permits(&id)
        .acquire_owned()
        .await
        .map_err(AppError::internal)?;
    Ok(Lab {
        rt,
        container,
        _permit: permit,
    })
}

fn find_lab(
    c: &Classroom,
    headers: &HeaderMap,
    node: &str,
) -> Result<(Arc<Runtime>, Arc<Container>, String), AppError> {
    crate::routes::same_origin(c, headers)?;
    let live = crate::lessons::web::live_of(c, headers)
        .ok_or_else(|| AppError::unauthorized("no session: open the classroom to start one"))?;
    let lab = live
        .lab()
        .ok_or_else(|| AppError::new(StatusCode::CONFLICT, "the lab is being reset".into()))?;
    let node = lab
        .session
        .node(node)
        .ok_or_else(|| AppError::not_found(format!("no such node: {node}")))?;
    live.touch();
    Ok((
        c.sessions.engine.runtime.clone(),
        node.lab.clone(),
        live.id.clone(),
    ))
}

fn resolve(rel: &str) -> Result<String, AppError> {
    lab_path(HOME, rel).ok_or_else(|| {
        AppError::bad_request(format!(
            "invalid path {rel:?}: paths are relative to {HOME}, without `..`"
        ))
    })
}

fn file_error(e: FileError) -> AppError {
    let status = match e.kind {
        FileErrorKind::NotFound => StatusCode::NOT_FOUND,
        FileErrorKind::NotADirectory | FileErrorKind::NotAFile | FileErrorKind::Invalid => {
            StatusCode::BAD_REQUEST
        }
        FileErrorKind::Exists | FileErrorKind::Changed => StatusCode::CONFLICT,
        FileErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        FileErrorKind::NoSpace => StatusCode::INSUFFICIENT_STORAGE,
        FileErrorKind::Failed => StatusCode::INTERNAL_SERVER_ERROR,
    };
    // The helper names paths as the lab sees them; say them as the editor does.
    let message = e.message.replace(&format!("{HOME}/"), "");
    AppError::new(status, message)
}

/// Runs blocking helper work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(AppError::internal)?
}

async fn list(
    State(c): State<Arc<Classroom>>,
    Path(node): Path<String>,
    Query(q): Query<Query_>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Lab {
        rt,
        container: lab,
        _permit,
    } = lab_of(&c, &headers, &node).await?;
    let path = resolve(&q.path)?;
    let listing = blocking(move || rt.file_list(&lab, &path).map_err(file_error)).await?;
    Ok(Json(listing).into_response())
}

async fn stat(
    State(c): State<Arc<Classroom>>,
    Path(node): Path<String>,
    Query(q): Query<Query_>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Lab {
        rt,
        container: lab,
        _permit,
    } = lab_of(&c, &headers, &node).await?;
    let path = resolve(&q.path)?;
    let info = blocking(move || rt.file_stat(&lab, &path).map_err(file_error)).await?;
    Ok(Json(info).into_response())
}

/// A text file for the editor: its state and content (UTF-8, at most
/// [`MAX_EDIT`] bytes).
async fn read(
    State(c): State<Arc<Classroom>>,
    Path(node): Path<String>,
    Query(q): Query<Query_>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Lab {
        rt,
        container: lab,
        _permit,
    } = lab_of(&c, &headers, &node).await?;
    let path = resolve(&q.path)?;
    let shown = q.path.clone();
    let (info, bytes) = blocking(move || {
        let mut bytes = Vec::new();
        let info = rt
            .file_read(&lab, &path, Some(MAX_EDIT), &mut bytes)
            .map_err(file_error)?;
        Ok((info, bytes))
    })
    .await?;
    let content = String::from_utf8(bytes).map_err(|_| {
        AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("{shown} is not a text file (not UTF-8): download it instead"),
        )
    })?;
    Ok(Json(json!({ "info": info, "content": content })).into_response())
}

async fn write(
    State(c): State<Arc<Classroom>>,
    Path(node): Path<String>,
    Query(q): Query<Query_>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AppError> {
    let Lab {
        rt,
        container: lab,
        _permit,
    } = lab_of(&c, &headers, &node).await?;
    let path = resolve(&q.path)?;
    let bytes = axum::body::to_bytes(body, MAX_EDIT as usize)
        .await
        .map_err(|_| {
            AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the editor saves files up to {MAX_EDIT} bytes"),
            )
        })?;
    let create_new = q.new.unwrap_or(false);
    let info = blocking(move || {
        rt.file_write(&lab, &path, q.version, create_new, &mut &bytes[..])
            .map_err(file_error)
    })
    .await?;
    Ok(Json(info).into_response())
}

async fn mkdir(
    State(c): State<Arc<Classroom>>,
    Path(node): Path<String>,
    Query(q): Query<Query_>,
    headers: HeaderMap,
) -> Result<StatusCode, AppError> {
    let Lab {
        rt,
        container: lab,
        _permit,
    } = lab_of(&c, &headers, &node).await?;
    let path = resolve(&q.path)?;
    blocking(move || rt.file_mkdir(&lab, &path).map_err(file_error)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rename(
    State(c): State<Arc<Classroom>>,
    Path(node): Path<String>,
    Query(q): Query<Query_>,
    headers: HeaderMap,
) -> Result<StatusCode, AppError> {
    let Lab {
        rt,
        container: lab,
        _permit,
    } = lab_of(&c, &headers, &node).await?;
    let from = resolve(&q.path)?;
    let to = resolve(q.to.as_deref().unwrap_or(""))?;
    if from == HOME || to == HOME {
        return Err(AppError::bad_request(
            "the home directory cannot be renamed",
        ));
    }
    blocking(move || rt.file_rename(&lab, &from, &to).map_err(file_error)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete(
    State(c): State<Arc<Classroom>>,
    Path(node): Path<String>,
    Query(q): Query<Query_>,
    headers: HeaderMap,
) -> Result<StatusCode, AppError> {
    let Lab {
        rt,
        container: lab,
        _permit,
    } = lab_of(&c, &headers, &node).await?;
    let path = resolve(&q.path)?;
    if path == HOME {
        return Err(AppError::bad_request(
            "the home directory cannot be deleted",
        ));
    }
    blocking(move || rt.file_remove(&lab, &path).map_err(file_error)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A request body read by a blocking thread as it arrives, at most `limit`
/// bytes (more fails the read).
struct BodyReader {
    rx: std::sync::mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl BodyReader {
    fn spawn(body: Body, limit: u64) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        tokio::spawn(async move {
            let mut stream = body.into_data_stream();
            let mut total = 0u64;
            let mut reading = true;
            while let Some(chunk) = stream.next().await {
                // Once the reader is gone (the helper failed), the rest is
                // read and dropped, so the browser gets the answer instead
                // of a connection reset mid-upload; `limit` bounds it.
                if !reading {
                    total += chunk.map_or(0, |b| b.len() as u64);
                    if total > limit {
                        return;
                    }
                    continue;
                }
                let item = match chunk {
                    Ok(b) => {
                        total += b.len() as u64;
                        if total > limit {
                            Err(format!(
                                "the upload is larger than the lab's disk ({limit} bytes)"
                            ))
                        } else {
                            Ok(b)
                        }
                    }
                    Err(e) => Err(format!("read upload: {e}")),
                };
                let stop = item.is_err();
                // A full channel waits here (on a blocking-pool thread's
                // pace); a dropped reader ends the copy.
                let tx2 = tx.clone();
                let sent = tokio::task::spawn_blocking(move || tx2.send(item).is_ok())
                    .await
                    .unwrap_or(false);
                if stop {
                    return;
                }
                reading = sent;
            }
        });
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(Ok(b)) => self.current = b,
                Ok(Err(e)) => return Err(std::io::Error::other(e)),
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A tar of files and folders unpacked into the directory `path`.
async fn upload(
    State(c): State<Arc<Classroom>>,
    Path(node): Path<String>,
    Query(q): Query<Query_>,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, AppError> {
    let Lab {
        rt,
        container: lab,
        _permit,
    } = lab_of(&c, &headers, &node).await?;
    let path = resolve(&q.path)?;
    // The kernel stops the write at the session's disk budget; this only
    // ends a body that could never fit sooner.
    let limit = c.sessions.limits.disk_bytes.max(MAX_EDIT);
    let mut reader = BodyReader::spawn(body, limit);
    blocking(move || rt.file_unpack(&lab, &path, &mut reader).map_err(file_error)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A sink for a blocking writer that feeds a streaming response.
struct ChannelWriter(tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A file as itself, or a folder as a tar.
async fn download(
    State(c): State<Arc<Classroom>>,
    Path(node): Path<String>,
    Query(q): Query<Query_>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Lab {
        rt,
        container: lab,
        _permit: permit,
    } = lab_of(&c, &headers, &node).await?;
    let path = resolve(&q.path)?;
    let (rt2, lab2, path2) = (rt.clone(), lab.clone(), path.clone());
    let info = blocking(move || rt2.file_stat(&lab2, &path2).map_err(file_error)).await?;
    let is_dir = info.kind == berth_runtime::container::files::FileKind::Dir;
    let base = if path == HOME { "home" } else { &info.name };
    let name = if is_dir {
        format!("{base}.tar")
    } else {
        base.to_string()
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    tokio::task::spawn_blocking(move || {
        // The stream counts against the session's operations until it ends.
        let _permit = permit;
        let mut out = ChannelWriter(tx.clone());
        let result = if is_dir {
            rt.archive_get(&lab, &format!("{path}/."), &mut out)
                .map_err(|e| e.to_string())
        } else {
            rt.file_read(&lab, &path, None, &mut out)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        if let Err(e) = result {
            // Cuts the response short so the browser shows a failed download.
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    let mut r = Response::new(Body::from_stream(stream));
    let mime = if is_dir {
        "application/x-tar"
    } else {
        "application/octet-stream"
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    let safe: String = name
        .chars()
        .map(|ch| {
            if ch.is_ascii_graphic() && ch != '"' && ch != '\\' {
                ch
            } else {
                '_'
            }
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{safe}\"")) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}
