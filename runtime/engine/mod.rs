//! The Docker Engine API: HTTP/1.1 on Unix sockets, answering the real
//! `docker` CLI as dockerd does.
//!
//! - [`http`]: bodies, Docker's error shape, query strings and filters.
//! - [`body`]: large request bodies spooled to disk under the scope's budget.
//! - [`router`]: every route in one table, versioned paths, `/_ping`.
//! - [`system`], [`containers`], [`exec`], [`images`]: the handlers.
//! - [`streams`]: hijacked connections (attach, exec) and log streams.
//! - [`convert`]: Docker's JSON shapes of containers.
//! - [`networks`]: `/networks` and the network parts of container JSON.
//! - [`volumes`]: the `/volumes` routes.
//! - [`plugins`]: the `/plugins` routes (none installed).
//!
//! A [`Scope`] is what one socket serves: its own names and references. The
//! [`Engine`] is shared by all scopes of one process.

pub mod body;
pub mod build;
pub mod containers;
pub mod convert;
pub mod detach;
pub mod distribution;
pub mod exec;
pub mod glob;
pub mod http;
pub mod images;
pub mod networks;
pub mod paths;
pub mod plugins;
pub mod quota;
pub mod router;
pub mod service_spec;
pub mod streams;
pub mod swarm;
pub mod swarm_objects;
pub mod system;
pub mod update;
pub mod volumes;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

use crate::container::Runtime;

/// One scope: the objects one `docker` CLI sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The scope's name: `host` for `berth daemon`, a node's ID in a session.
    pub name: String,
}

/// The Engine API of one process, over one runtime.
pub struct Engine {
    pub runtime: Arc<Runtime>,
    pub(crate) execs: Mutex<HashMap<String, Arc<exec::ExecInstance>>>,
    /// Attaches waiting for their container to start, by container ID.
    pub(crate) pending: Mutex<HashMap<String, Vec<streams::PendingAttach>>>,
    /// How pulls and pushes reach registries (see [`distribution`]).
    pub(crate) registry: RwLock<distribution::RegistrySettings>,
    /// The classroom registry served by this process (`berth serve`), whose
    /// tokens sessions are granted; unset for `berth daemon`.
    pub classroom_registry: std::sync::OnceLock<crate::registry::Server>,
    /// Swarm clusters whose nodes are this engine's scopes.
    pub swarm: Arc<crate::swarm::Swarms>,
    /// Per-scope limits (`berth serve` sets them; none for `berth daemon`).
    pub limits: std::sync::OnceLock<ScopeLimits>,
}

/// What one scope (a learner's node) may hold or ask at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeLimits {
    /// Containers, running or not.
    pub containers: usize,
    /// API requests being handled at once (streams count only while their
    /// handler runs, not while they stream).
    pub requests: usize,
}

impl Engine {
    pub fn new(runtime: Arc<Runtime>) -> Arc<Self> {
        Arc::new(Self {
            execs: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            registry: RwLock::new(distribution::RegistrySettings::default()),
            classroom_registry: std::sync::OnceLock::new(),
            limits: std::sync::OnceLock::new(),
            swarm: crate::swarm::Swarms::open(runtime.data_dir().root().join("swarm")),
            runtime,
        })
    }

    /// Serves `scope` on `listener` until the task is dropped.
    pub async fn serve(self: Arc<Self>, scope: Scope, listener: UnixListener) {
        let scope = Arc::new(scope);
        if self.swarm.lock().cluster_of(&scope.name).is_some() {
            self.swarm.start(&self);
        }
        let _served = crate::swarm::Served::new(&self.swarm, &scope.name);
        let requests = self.limits.get().map(|l| l.requests);
        let permits = Arc::new(tokio::sync::Semaphore::new(
            requests.unwrap_or(tokio::sync::Semaphore::MAX_PERMITS),
        ));
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let engine = self.clone();
            let scope = scope.clone();
            let permits = permits.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let engine = engine.clone();
                    let scope = scope.clone();
                    let permits = permits.clone();
                    async move {
                        // One session's flood of requests waits its turn
                        // instead of taking every worker of the daemon.
                        // Waits and follows that last as long as a
                        // container does (`docker run` holds a wait and an
                        // attach for its whole life) hold no permit: only
                        // work in flight counts.
                        // A burst waits its turn for a while (a parked
                        // task, not a thread) before it is refused.
                        let permit = if long_poll(req.uri()) {
                            None
                        } else {
                            match tokio::time::timeout(PERMIT_QUEUE, permits.acquire_owned()).await
                            {
                                Ok(Ok(p)) => Some(p),
                                _ => {
                                    if let Some(id) = start_of(req.method(), req.uri()) {
                                        containers::refused_start(&engine, &scope.name, id).await;
                                    }
                                    return Ok(http::ApiError::new(
                                        hyper::StatusCode::TOO_MANY_REQUESTS,
                                        format!(
                                            "session limit of {} concurrent requests reached: wait for some to finish",
                                            requests.unwrap_or_default()
                                        ),
                                    )
                                    .reply());
                                }
                            }
                        };
                        let reply = router::route(engine, scope, req).await;
                        drop(permit);
                        Ok::<_, std::convert::Infallible>(reply)
                    }
                });
                let conn = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades();
                if let Err(e) = conn.await {
                    tracing::debug!(error = %e, "connection ended");
                }
            });
        }
    }
}

/// How long a request waits for one of its session's request permits
/// before it is refused.
const PERMIT_QUEUE: std::time::Duration = std::time::Duration::from_secs(10);

/// The container a `POST /containers/{id}/start` starts.
fn start_of<'a>(method: &hyper::Method, uri: &'a hyper::Uri) -> Option<&'a str> {
    if method != hyper::Method::POST {
        return None;
    }
    let path = uri.path().strip_prefix('/')?;
    let path = match path.strip_prefix('v') {
        Some(rest) if rest.starts_with(|c: char| c.is_ascii_digit()) => rest.split_once('/')?.1,
        _ => path,
    };
    match path.split('/').collect::<Vec<_>>().as_slice() {
        ["containers", id, "start"] if !id.is_empty() => Some(id),
        _ => None,
    }
}

/// Requests that last as long as a container, a follow or a stream does
/// (not work the daemon is doing): exempt from the per-session request cap.
fn long_poll(uri: &hyper::Uri) -> bool {
    let path = uri.path();
    let query = uri.query().unwrap_or("");
    let flag = |name: &str| {
        query
            .split('&')
            .any(|kv| kv == format!("{name}=1") || kv == format!("{name}=true"))
    };
    path.ends_with("/wait")
        || path.ends_with("/attach")
        || path.ends_with("/events")
        || (path.ends_with("/logs") && flag("follow"))
        || (path.ends_with("/stats")
            && !query.contains("stream=0")
            && !query.contains("stream=false"))
        || (path.contains("/exec/") && path.ends_with("/start"))
}

/// Binds a Unix socket at `path` (replacing a stale one), readable by root only
/// unless the caller widens it.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            std::fs::remove_file(path)?;
        }
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    UnixListener::bind(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_is_known_with_or_without_a_version() {
        let post = hyper::Method::POST;
        let uri = |s: &str| s.parse::<hyper::Uri>().unwrap();
        let u = uri("/v1.47/containers/abc/start");
        assert_eq!(start_of(&post, &u), Some("abc"));
        let u = uri("/containers/web/start?detachKeys=x");
        assert_eq!(start_of(&post, &u), Some("web"));
        for other in [
            "/v1.47/containers/abc/stop",
            "/volumes/start",
            "/containers//start",
        ] {
            assert_eq!(start_of(&post, &uri(other)), None, "{other}");
        }
        assert_eq!(
            start_of(&hyper::Method::GET, &uri("/containers/abc/start")),
            None
        );
    }
}
