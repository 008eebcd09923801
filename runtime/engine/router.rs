//! Every route of the Engine API in one table. Paths may carry a version
//! prefix (`/v1.50/containers/json`) or none; image names keep their slashes
//! and colons (`/images/localhost:5000/app/push`).

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, StatusCode};

use super::http::{empty, ApiError, Body, Query, Reply, API_VERSION};
use super::{
    build, containers, distribution, exec, images, networks, swarm, system, volumes, Engine, Scope,
};

/// What a handler gets: the engine, the scope, the request.
pub struct Ctx {
    pub engine: Arc<Engine>,
    pub scope: Arc<Scope>,
    pub query: Query,
}

/// Answers one request; never fails (errors become Docker's error replies).
pub async fn route(engine: Arc<Engine>, scope: Arc<Scope>, req: Request<Incoming>) -> Reply {
    let hide = hidden_root(&engine, &scope);
    let changes = !matches!(*req.method(), Method::GET | Method::HEAD);
    let (runtime, name) = (engine.runtime.clone(), scope.name.clone());
    let mut reply = match dispatch(engine, scope, req).await {
        Ok(r) => r,
        Err(e) => e.reply(),
    };
    if changes {
        reply = tell_changed(runtime, name, reply);
    }
    if let Some(root) = hide {
        hide_host_paths(&mut reply, &root);
    }
    let h = reply.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert(
        "Server",
        HeaderValue::from_static(concat!(
            "Docker/berth-",
            env!("CARGO_PKG_VERSION"),
            " (linux)"
        )),
    );
    reply
}

/// Says the scope changed once a request that may change it is answered:
/// at once for a whole answer, when the stream ends for a streamed one (a
/// pull or a build makes its image at the end). Watchers of state (the lab
/// map) learn of networks, volumes and images this way, which emit no
/// events of their own.
fn tell_changed(runtime: Arc<crate::container::Runtime>, scope: String, reply: Reply) -> Reply {
    let (parts, body) = reply.into_parts();
    let body = match body {
        Body::Stream(mut rx) => {
            let (tx, out) = tokio::sync::mpsc::channel(8);
            tokio::spawn(async move {
                while let Some(chunk) = rx.recv().await {
                    if tx.send(chunk).await.is_err() {
                        break;
                    }
                }
                runtime.events().changed(&scope);
            });
            Body::Stream(out)
        }
        whole => {
            runtime.events().changed(&scope);
            whole
        }
    };
    Reply::from_parts(parts, body)
}

/// The data directory's path as a learner's scope must not see it (in
/// container inspect's `LogPath`, `GraphDriver`, mount sources, error
/// messages), or `None` for `berth daemon`, which shows real paths as
/// dockerd does.
fn hidden_root(engine: &Engine, scope: &Scope) -> Option<Vec<u8>> {
    let runtime = &engine.runtime;
    let learner = runtime
        .scope_settings(&scope.name)
        .is_some_and(|s| s.bind_root.is_some());
    learner.then(|| {
        runtime
            .data_dir()
            .root()
            .as_os_str()
            .as_encoded_bytes()
            .to_vec()
    })
}

/// Rewrites `root` to Docker's own `/var/lib/docker` in a whole (not
/// streamed) answer, so the host's layout stays the host's business.
fn hide_host_paths(reply: &mut Reply, root: &[u8]) {
    const DOCKER_ROOT: &[u8] = b"/var/lib/docker";
    if root.len() < 2 {
        return;
    }
    let super::http::Body::Full(Some(bytes)) = reply.body_mut() else {
        return;
    };
    if !bytes.windows(root.len()).any(|w| w == root) {
        return;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut rest: &[u8] = bytes;
    while let Some(at) = rest.windows(root.len()).position(|w| w == root) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(DOCKER_ROOT);
        rest = &rest[at + root.len()..];
    }
    out.extend_from_slice(rest);
    let len = out.len();
    *bytes = out.into();
    if let Ok(v) = HeaderValue::from_str(&len.to_string()) {
        reply.headers_mut().insert(hyper::header::CONTENT_LENGTH, v);
    }
}

/// Splits `/v1.50/rest` into (Some("1.50"), "/rest").
fn strip_version(path: &str) -> (Option<&str>, &str) {
    if let Some(rest) = path.strip_prefix("/v") {
        let end = rest.find('/').unwrap_or(rest.len());
        let version = &rest[..end];
        if !version.is_empty() && version.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return (Some(version), &rest[end..]);
        }
    }
    (None, path)
}

fn version_ok(version: &str) -> Result<(), ApiError> {
    let parse = |v: &str| -> Option<(u32, u32)> {
        let (a, b) = v.split_once('.')?;
        Some((a.parse().ok()?, b.parse().ok()?))
    };
    let max = parse(API_VERSION).expect("valid constant");
    match parse(version) {
        Some(v) if v <= max => Ok(()),
        Some(_) => Err(ApiError::bad_request(format!(
            "client version {version} is too new. Maximum supported API version is {API_VERSION}"
        ))),
        None => Err(ApiError::bad_request(format!(
            "invalid API version: {version}"
        ))),
    }
}

async fn dispatch(
    engine: Arc<Engine>,
    scope: Arc<Scope>,
    req: Request<Incoming>,
) -> Result<Reply, ApiError> {
    let (version, path) = strip_version(req.uri().path());
    if let Some(v) = version {
        version_ok(v)?;
    }
    // Names in the path arrive percent-encoded (`test%2001` for a network
    // named `test 01`): each is looked up or validated as decoded text.
    let path = percent_decode(path);
    let method = req.method().clone();
    let ctx = Ctx {
        engine,
        scope,
        query: Query::parse(req.uri().query()),
    };
    let segs = segments(&path);
    if let Err(refused) = super::quota::check(&ctx, &method, &segs).await {
        super::quota::discard(req.into_body()).await;
        return Err(refused);
    }
    use Method as M;
    match (&method, segs.as_slice()) {
        (&M::GET | &M::HEAD, ["_ping"]) => Ok(swarm::ping(&ctx, system::ping(&method))),
        (&M::GET, ["version"]) => system::version(&ctx),
        (&M::GET, ["info"]) => system::info(&ctx),
        (&M::GET, ["events"]) => system::events(&ctx),
        (&M::GET, ["system", "df"]) => system::df(&ctx),
        (&M::POST, ["auth"]) => distribution::login(&ctx, req).await,

        (&M::POST, ["containers", "create"]) => containers::create(&ctx, req).await,
        (&M::GET, ["containers", "json"]) => containers::list(&ctx),
        (&M::POST, ["containers", "prune"]) => containers::prune(&ctx).await,
        (&M::GET, ["containers", id, "json"]) => containers::inspect(&ctx, id),
        (&M::POST, ["containers", id, "start"]) => containers::start(&ctx, id).await,
        (&M::POST, ["containers", id, "stop"]) => containers::stop(&ctx, id).await,
        (&M::POST, ["containers", id, "restart"]) => containers::restart(&ctx, id).await,
        (&M::POST, ["containers", id, "kill"]) => containers::kill(&ctx, id).await,
        (&M::POST, ["containers", id, "pause"]) => containers::pause(&ctx, id).await,
        (&M::POST, ["containers", id, "unpause"]) => containers::unpause(&ctx, id).await,
        (&M::POST, ["containers", id, "wait"]) => containers::wait(&ctx, id),
        (&M::POST, ["containers", id, "rename"]) => containers::rename(&ctx, id),
        (&M::POST, ["containers", id, "update"]) => super::update::update(&ctx, id, req).await,
        (&M::POST, ["containers", id, "resize"]) => containers::resize(&ctx, id),
        (&M::POST, ["containers", id, "attach"]) => containers::attach(&ctx, id, req).await,
        (&M::GET, ["containers", id, "logs"]) => containers::logs(&ctx, id),
        (&M::GET, ["containers", id, "top"]) => containers::top(&ctx, id),
        (&M::GET, ["containers", id, "stats"]) => containers::stats(&ctx, id).await,
        (&M::GET, ["containers", id, "changes"]) => containers::changes(&ctx, id),
        (&M::HEAD, ["containers", id, "archive"]) => containers::archive_stat(&ctx, id).await,
        (&M::GET, ["containers", id, "archive"]) => containers::archive_get(&ctx, id).await,
        (&M::PUT, ["containers", id, "archive"]) => containers::archive_put(&ctx, id, req).await,
        (&M::DELETE, ["containers", id]) => containers::remove(&ctx, id).await,
        (&M::DELETE, ["containers", parent, alias]) => {
            containers::remove_link(&ctx, parent, alias).await
        }
        (&M::POST, ["containers", id, "exec"]) => exec::create(&ctx, id, req).await,
        (&M::POST, ["exec", id, "start"]) => exec::start(&ctx, id, req).await,
        (&M::POST, ["exec", id, "resize"]) => exec::resize(&ctx, id),
        (&M::GET, ["exec", id, "json"]) => exec::inspect(&ctx, id),
        (&M::GET, ["networks"]) => networks::list(&ctx),
        (&M::POST, ["networks", "create"]) => networks::create(&ctx, req).await,
        (&M::POST, ["networks", "prune"]) => networks::prune(&ctx).await,
        (&M::GET, ["networks", id]) => networks::inspect(&ctx, id),
        (&M::DELETE, ["networks", id]) => networks::remove(&ctx, id).await,
        (&M::POST, ["networks", id, "connect"]) => networks::connect(&ctx, id, req).await,
        (&M::POST, ["networks", id, "disconnect"]) => networks::disconnect(&ctx, id, req).await,
        (&M::GET, ["swarm"]) => swarm::inspect(&ctx),
        (&M::POST, ["swarm", "init"]) => swarm::init(&ctx, req).await,
        (&M::POST, ["swarm", "join"]) => swarm::join(&ctx, req).await,
        (&M::POST, ["swarm", "leave"]) => swarm::leave(&ctx).await,
        (&M::POST, ["swarm", "update"]) => swarm::update(&ctx, req).await,
        (&M::GET, ["swarm", "unlockkey"]) => swarm::unlock_key(&ctx),
        (&M::GET, ["nodes"]) => swarm::nodes(&ctx),
        (&M::GET, ["nodes", id]) => swarm::node(&ctx, id),
        (&M::POST, ["nodes", id, "update"]) => swarm::node_update(&ctx, id, req).await,
        (&M::DELETE, ["nodes", id]) => swarm::node_remove(&ctx, id),
        (&M::GET, ["services"]) => swarm::services(&ctx),
        (&M::POST, ["services", "create"]) => swarm::create(&ctx, req).await,
        (&M::GET, ["services", id]) => swarm::service(&ctx, id),
        (&M::POST, ["services", id, "update"]) => swarm::update_service(&ctx, id, req).await,
        (&M::DELETE, ["services", id]) => swarm::remove_service(&ctx, id),
        (&M::GET, ["services", id, "logs"]) => swarm::logs(&ctx, id),
        (&M::GET, ["tasks"]) => swarm::tasks(&ctx),
        (&M::GET, ["secrets"]) => {
            super::swarm_objects::list(&ctx, super::swarm_objects::Kind::Secret)
        }
        (&M::POST, ["secrets", "create"]) => {
            super::swarm_objects::create(&ctx, super::swarm_objects::Kind::Secret, req).await
        }
        (&M::GET, ["secrets", id]) => {
            super::swarm_objects::inspect(&ctx, super::swarm_objects::Kind::Secret, id)
        }
        (&M::DELETE, ["secrets", id]) => {
            super::swarm_objects::remove(&ctx, super::swarm_objects::Kind::Secret, id)
        }
        (&M::POST, ["secrets", id, "update"]) => {
            super::swarm_objects::update(&ctx, super::swarm_objects::Kind::Secret, id, req).await
        }
        (&M::GET, ["configs"]) => {
            super::swarm_objects::list(&ctx, super::swarm_objects::Kind::Config)
        }
        (&M::POST, ["configs", "create"]) => {
            super::swarm_objects::create(&ctx, super::swarm_objects::Kind::Config, req).await
        }
        (&M::GET, ["configs", id]) => {
            super::swarm_objects::inspect(&ctx, super::swarm_objects::Kind::Config, id)
        }
        (&M::DELETE, ["configs", id]) => {
            super::swarm_objects::remove(&ctx, super::swarm_objects::Kind::Config, id)
        }
        (&M::POST, ["configs", id, "update"]) => {
            super::swarm_objects::update(&ctx, super::swarm_objects::Kind::Config, id, req).await
        }
        (&M::GET, ["tasks", id]) => swarm::task(&ctx, id),
        (&M::GET, ["volumes"]) => volumes::list(&ctx),
        (&M::POST, ["volumes", "create"]) => volumes::create(&ctx, req).await,
        (&M::POST, ["volumes", "prune"]) => volumes::prune(&ctx).await,
        (&M::GET, ["volumes", name]) => volumes::inspect(&ctx, name),
        (&M::DELETE, ["volumes", name]) => volumes::remove(&ctx, name).await,
        (&M::GET, ["plugins"]) => super::plugins::list(&ctx),
        (&M::GET, ["plugins", "privileges"]) => super::plugins::privileges(&ctx),
        (&M::POST, ["plugins", "pull"]) => super::plugins::pull(),
        (&M::POST, ["plugins", "create"]) => super::plugins::create(&ctx, req).await,
        (&M::GET, ["plugins", .., "json"]) if segs.len() >= 3 => {
            super::plugins::inspect(&ctx, &inner(&segs, 1, 1))
        }
        (&M::DELETE, ["plugins", ..]) if segs.len() >= 2 => {
            super::plugins::remove(&ctx, &inner(&segs, 1, 0))
        }
        (&M::POST, ["plugins", .., "set"]) if segs.len() >= 3 => {
            super::plugins::set(&ctx, &inner(&segs, 1, 1), req).await
        }
        (&M::POST, ["plugins", .., "enable"]) if segs.len() >= 3 => {
            super::plugins::enable(&ctx, &inner(&segs, 1, 1))
        }
        (&M::POST, ["plugins", .., "disable"]) if segs.len() >= 3 => {
            super::plugins::disable(&ctx, &inner(&segs, 1, 1))
        }
        (&M::POST, ["plugins", .., "push" | "upgrade"]) if segs.len() >= 3 => {
            super::plugins::push_or_upgrade(&ctx, &inner(&segs, 1, 1))
        }
        (&M::POST, ["commit"]) => images::commit(&ctx, req).await,
        (&M::POST, ["build"]) => build::build(&ctx, req).await,

        (&M::GET, ["distribution", .., "json"]) => {
            let name = inner(&segs, 1, 1);
            distribution::inspect(&ctx, &name, req.headers()).await
        }
        (&M::GET, ["images", "json"]) => images::list(&ctx),
        (&M::POST, ["images", "create"]) => images::create(&ctx, req).await,
        (&M::POST, ["images", "load"]) => images::load(&ctx, req).await,
        (&M::GET, ["images", "get"]) => images::save(&ctx, None),
        (&M::POST, ["images", "prune"]) => images::prune(&ctx),
        (_, ["images", ..]) if segs.len() >= 2 => {
            let rest = inner(&segs, 1, 0);
            images::by_name(&ctx, &method, &rest, req).await
        }
        _ => Err(ApiError::new(StatusCode::NOT_FOUND, "page not found")),
    }
}

/// The path's segments, leading slashes dropped.
/// `%XX` escapes of a URL path decoded (`+` stays: it is not a space in a
/// path); a malformed escape is kept as it is.
fn percent_decode(path: &str) -> String {
    if !path.contains('%') {
        return path.to_string();
    }
    let b = path.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn segments(path: &str) -> Vec<&str> {
    path.trim_start_matches('/').split('/').collect()
}

/// The segments between the first `skip_front` and the last `skip_back`,
/// joined again (an image name keeps its slashes); empty when there are none.
/// Taken from the segments, not by slicing the path at fixed offsets, which
/// panicked on `/distribution/json`.
fn inner(segs: &[&str], skip_front: usize, skip_back: usize) -> String {
    let end = segs.len().saturating_sub(skip_back);
    segs.get(skip_front..end)
        .map(|s| s.join("/"))
        .unwrap_or_default()
}

/// `204 No Content`.
pub fn no_content() -> Reply {
    empty(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_stripped_and_checked() {
        assert_eq!(
            strip_version("/v1.50/containers/json"),
            (Some("1.50"), "/containers/json")
        );
        assert_eq!(strip_version("/_ping"), (None, "/_ping"));
        assert_eq!(strip_version("/volumes"), (None, "/volumes"));
        assert!(version_ok("1.41").is_ok());
        let e = version_ok("1.52").unwrap_err();
        assert_eq!(
            e.message,
            "client version 1.52 is too new. Maximum supported API version is 1.50"
        );
    }

    #[test]
    fn names_come_from_segments() {
        assert_eq!(inner(&segments("/distribution/json"), 1, 1), "");
        assert_eq!(
            inner(&segments("/distribution/localhost:5000/a/b/json"), 1, 1),
            "localhost:5000/a/b"
        );
        assert_eq!(inner(&segments("//images/x/y/json"), 1, 0), "x/y/json");
        assert_eq!(inner(&segments("/"), 1, 1), "");
    }

    proptest::proptest! {
        /// Whatever path a client sends, taking it apart does not panic.
        #[test]
        fn any_path_parses(path in "\\PC{0,64}", raw in proptest::collection::vec(0u8..=255, 0..64)) {
            for path in [path, String::from_utf8_lossy(&raw).into_owned()] {
                let (version, rest) = strip_version(&path);
                if let Some(v) = version {
                    let _ = version_ok(v);
                }
                let segs = segments(rest);
                for front in 0..3 {
                    for back in 0..3 {
                        let _ = inner(&segs, front, back);
                    }
                }
                let _ = Query::parse(Some(&path)).filters();
            }
        }
    }
}
