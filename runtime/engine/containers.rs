//! `/containers/...`: create, list, inspect and the lifecycle verbs, wait,
//! attach, logs, top, stats, changes, archive, prune.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::json;

use super::convert::{self, CreateRequest};
use super::http::{empty, json, parse_json, read_body, stream, ApiError, ApiResult};
use super::router::{no_content, Ctx};
use super::streams;
use super::Engine;
use crate::container::lifecycle::parse_signal;
use crate::container::state::Status;
use crate::container::{Container, WaitCondition};

/// Looks a container up in the request's scope.
pub fn find(ctx: &Ctx, id: &str) -> Result<Arc<Container>, ApiError> {
    Ok(ctx.engine.runtime.get(&ctx.scope.name, id)?)
}

/// Runs blocking runtime work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    // A handful at a time: 100 concurrent `docker run`s would otherwise put
    // hundreds of runnable threads (forks, mounts, netlink, disk) beside the
    // async workers, which then get a sliver of the CPU each and every
    // session's terminal and `/healthz` stall. Waiting here costs a parked
    // task, not a thread.
    let _permit = heavy_work()
        .acquire()
        .await
        .map_err(|e| ApiError::internal(format!("task failed: {e}")))?;
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
}

/// Like [`blocking`] for work that mostly sleeps (a stop waits up to its
/// timeout for the container to exit): it takes no slot of the bounded
/// work, so `docker stop -t 3600` cannot hold one for an hour.
pub async fn waiting<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
}

/// Blocking handler work allowed at once, process-wide: four per CPU.
fn heavy_work() -> &'static tokio::sync::Semaphore {
    static HEAVY: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    HEAVY.get_or_init(|| {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new((cpus * 4).max(8))
    })
}

/// `POST /containers/create?name=`.
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    if let Some(limits) = ctx.engine.limits.get() {
        if ctx.engine.runtime.list(&ctx.scope.name).len() >= limits.containers {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "session limit of {} containers reached: remove containers with docker rm or docker container prune",
                    limits.containers
                ),
            ));
        }
    }
    let body = read_body(req.into_body(), 1 << 20).await?;
    let request: CreateRequest = parse_json(&body)?;
    let anonymous: Vec<String> = request
        .volumes
        .iter()
        .flatten()
        .map(|(k, _)| k.clone())
        .collect();
    let mut config = convert::config_from_request(request)?;
    let anonymous = super::volumes::anonymous_targets(&mut config, anonymous)?;
    super::networks::check_networks(ctx, &config.networking)?;
    super::volumes::check_bind_sources(ctx, &config)?;
    let name = ctx
        .query
        .get("name")
        .filter(|n| !n.is_empty())
        .map(String::from);
    let runtime = ctx.engine.runtime.clone();
    let scope = ctx.scope.name.clone();
    let container = blocking(move || {
        runtime.create_volumes(&scope, &mut config, &anonymous)?;
        runtime
            .create(&scope, name.as_deref(), config)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(json(
        StatusCode::CREATED,
        &json!({"Id": container.id, "Warnings": []}),
    ))
}

/// `GET /containers/json?all=&limit=&filters=`.
pub fn list(ctx: &Ctx) -> ApiResult {
    let filters = ctx.query.filters()?;
    filters.only(&[
        "status", "name", "id", "label", "ancestor", "health", "exited", "before", "since",
    ])?;
    let all = ctx.query.flag("all");
    let limit = ctx.query.int("limit")?.filter(|l| *l > 0);
    let runtime = &ctx.engine.runtime;
    let statuses = filters.values("status");
    for s in statuses {
        if ![
            "created",
            "restarting",
            "running",
            "removing",
            "paused",
            "exited",
            "dead",
        ]
        .contains(&s.as_str())
        {
            return Err(ApiError::bad_request(format!(
                "invalid filter 'status={s}'"
            )));
        }
    }
    let ancestors: Vec<String> = filters
        .values("ancestor")
        .iter()
        .filter_map(|a| {
            runtime
                .images()
                .resolve(&ctx.scope.name, a)
                .ok()
                .map(|i| i.id)
        })
        .collect();
    let mut out = Vec::new();
    for c in runtime.list(&ctx.scope.name) {
        let r = c.snapshot();
        let status = r.state.status.as_str();
        let show_all = all || !statuses.is_empty() || limit.is_some();
        if !show_all
            && !matches!(
                r.state.status,
                Status::Running | Status::Paused | Status::Restarting
            )
        {
            continue;
        }
        if !statuses.is_empty() && !statuses.iter().any(|s| s == status) {
            continue;
        }
        if !filters.values("name").is_empty()
            && !filters
                .values("name")
                .iter()
                .any(|n| r.name.contains(n.trim_start_matches('/')))
        {
            continue;
        }
        if !filters.values("id").is_empty()
            && !filters
                .values("id")
                .iter()
                .any(|i| r.id.starts_with(i.as_str()))
        {
            continue;
        }
        if !filters.values("ancestor").is_empty() && !ancestors.contains(&r.image_id) {
            continue;
        }
        let exited_matches = r.state.status == Status::Exited
            && filters
                .values("exited")
                .iter()
                .any(|e| e.parse() == Ok(r.state.exit_code));
        if !filters.values("exited").is_empty() && !exited_matches {
            continue;
        }
        if !filters.values("health").is_empty() {
            let h = r
                .state
                .health
                .as_ref()
                .map(|h| h.status.as_str())
                .unwrap_or("none");
            if !filters.values("health").iter().any(|f| f == h) {
                continue;
            }
        }
        let summary = convert::summary(runtime, &r);
        if !filters
            .labels_match(&serde_json::from_value(summary["Labels"].clone()).unwrap_or_default())
        {
            continue;
        }
        let mut summary = summary;
        if ctx.query.flag("size") {
            summary["SizeRw"] = json!(convert::writable_size(runtime, &r.id));
        }
        out.push(summary);
        if limit.is_some_and(|l| out.len() as i64 >= l) {
            break;
        }
    }
    Ok(json(StatusCode::OK, &serde_json::Value::Array(out)))
}

/// `GET /containers/{id}/json`.
pub fn inspect(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    let r = c.snapshot();
    let mut v = convert::inspect(&ctx.engine.runtime, &r);
    if ctx.query.flag("size") {
        let rw = convert::writable_size(&ctx.engine.runtime, &r.id);
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(rw);
    }
    Ok(json(StatusCode::OK, &v))
}

/// `POST /containers/{id}/start`: 204, or 304 when already running.
pub async fn start(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    if c.snapshot().state.running() && c.snapshot().state.status != Status::Restarting {
        if c.snapshot().state.status == Status::Paused {
            return Err(ApiError::conflict(
                "cannot start a paused container, try unpause instead",
            ));
        }
        return Ok(empty(StatusCode::NOT_MODIFIED));
    }
    if let Err(e) = streams::start_with_pending_attach(&ctx.engine, c.clone()).await {
        remove_unstarted(&ctx.engine, c).await;
        return Err(e);
    }
    Ok(no_content())
}

/// Like dockerd: a `--rm` container that cannot start is removed, so a
/// client waiting for its removal returns (`docker run --rm` whose start
/// fails waits for exactly that, forever otherwise).
async fn remove_unstarted(engine: &Arc<Engine>, c: Arc<Container>) {
    if !c.snapshot().config.auto_remove || c.snapshot().state.running() {
        return;
    }
    let runtime = engine.runtime.clone();
    let _ = waiting(move || {
        let record = c.snapshot();
        if runtime.remove(&c, true).is_ok() {
            runtime.remove_anonymous_volumes(&record);
        }
        Ok(())
    })
    .await;
}

/// A `POST /containers/{id}/start` refused before its handler ran (the
/// session's request cap): the same clean-up as a failed start.
pub async fn refused_start(engine: &Arc<Engine>, scope: &str, id: &str) {
    if let Ok(c) = engine.runtime.get(scope, id) {
        remove_unstarted(engine, c).await;
    }
}

fn timeout(ctx: &Ctx) -> Result<Option<i64>, ApiError> {
    ctx.query.int("t").and_then(|t| match t {
        Some(t) => Ok(Some(t)),
        None => ctx.query.int("timeout"),
    })
}

/// `POST /containers/{id}/stop?t=`: 204, or 304 when not running.
pub async fn stop(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    let t = timeout(ctx)?;
    let runtime = ctx.engine.runtime.clone();
    let stopped = waiting(move || runtime.stop(&c, t).map_err(ApiError::from)).await?;
    Ok(if stopped {
        no_content()
    } else {
        empty(StatusCode::NOT_MODIFIED)
    })
}

/// `POST /containers/{id}/restart?t=`.
pub async fn restart(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    let t = timeout(ctx)?;
    let runtime = ctx.engine.runtime.clone();
    waiting(move || runtime.restart(&c, t).map_err(ApiError::from)).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/kill?signal=` (KILL when absent).
pub async fn kill(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    let signal = match ctx.query.get("signal").filter(|s| !s.is_empty()) {
        Some(s) => parse_signal(s).map_err(|e| ApiError::bad_request(e.to_string()))?,
        None => nix::sys::signal::Signal::SIGKILL,
    };
    let runtime = ctx.engine.runtime.clone();
    blocking(move || runtime.kill(&c, signal).map_err(ApiError::from)).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/pause`.
pub async fn pause(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    let runtime = ctx.engine.runtime.clone();
    blocking(move || runtime.pause(&c).map_err(ApiError::from)).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/unpause`.
pub async fn unpause(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    let runtime = ctx.engine.runtime.clone();
    blocking(move || runtime.unpause(&c).map_err(ApiError::from)).await?;
    Ok(no_content())
}

/// `POST /containers/{id}/wait?condition=`: headers at once, the status when
/// the condition is met.
pub fn wait(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    let condition = match ctx.query.get("condition").unwrap_or("") {
        "" | "not-running" => WaitCondition::NotRunning,
        "next-exit" => WaitCondition::NextExit,
        "removed" => WaitCondition::Removed,
        other => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: \"{other}\""
            )))
        }
    };
    let runtime = ctx.engine.runtime.clone();
    let (reply, tx) = stream("application/json");
    tokio::spawn(async move {
        // The condition is taken now, before anything else can happen.
        let waiter = tokio::task::spawn_blocking(move || {
            let code = runtime.wait(&c, condition);
            // A removed container answers without its error, as dockerd's
            // SetRemoved clears it: `docker run --rm` whose start failed
            // prints the start error only, not "Error waiting for container".
            let error = if condition == WaitCondition::Removed {
                String::new()
            } else {
                c.snapshot().state.error
            };
            (code, error)
        });
        tokio::select! {
            done = waiter => {
                if let Ok((code, error)) = done {
                    let err = if error.is_empty() { serde_json::Value::Null } else { json!({"Message": error}) };
                    let body = json!({"StatusCode": code, "Error": err});
                    let mut line = serde_json::to_vec(&body).unwrap_or_default();
                    line.push(b'\n');
                    let _ = tx.send(line.into()).await;
                }
            }
            _ = tx.closed() => {}
        }
    });
    Ok(reply)
}

/// `POST /containers/{id}/rename?name=`.
pub fn rename(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    let name = ctx
        .query
        .get("name")
        .ok_or_else(|| ApiError::bad_request("name is required"))?;
    ctx.engine.runtime.rename(&c, name)?;
    Ok(no_content())
}

/// `POST /containers/{id}/resize?h=&w=`.
pub fn resize(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    let r = c.snapshot();
    if !r.state.running() {
        return Err(ApiError::conflict(format!(
            "Container {} is not running",
            r.id
        )));
    }
    let h = ctx.query.int("h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = ctx.query.int("w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let dir = ctx.engine.runtime.dir_of(&r.id);
    crate::container::attach::connect(
        &dir.root,
        &crate::container::attach::ControlRequest::Resize { rows: h, cols: w },
    )
    .map_err(|e| ApiError::internal(format!("resize: {e}")))?;
    Ok(json(StatusCode::OK, &json!({})))
}

/// `POST /containers/{id}/attach`: the hijacked stream.
pub async fn attach(ctx: &Ctx, id: &str, req: Request<Incoming>) -> ApiResult {
    let c = find(ctx, id)?;
    streams::attach(ctx, c, req)
}

/// `GET /containers/{id}/logs`.
pub fn logs(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    streams::logs(ctx, c)
}

/// `DELETE /containers/{id}?force=&v=`.
pub async fn remove(ctx: &Ctx, id: &str) -> ApiResult {
    if ctx.query.flag("link") {
        return Err(ApiError::bad_request(
            "Conflict, cannot remove the default link name.",
        ));
    }
    let c = find(ctx, id)?;
    let force = ctx.query.flag("force");
    let volumes = ctx.query.flag("v");
    let runtime = ctx.engine.runtime.clone();
    blocking(move || {
        let record = c.snapshot();
        runtime.remove(&c, force).map_err(ApiError::from)?;
        if volumes {
            runtime.remove_anonymous_volumes(&record);
        }
        Ok(())
    })
    .await?;
    Ok(no_content())
}

/// `DELETE /containers/{name}/{alias}?link=1`: removes a legacy link.
pub async fn remove_link(ctx: &Ctx, parent: &str, alias: &str) -> ApiResult {
    if !ctx.query.flag("link") {
        return Err(ApiError::not_found(format!(
            "No such container: {parent}/{alias}"
        )));
    }
    let c = find(ctx, parent)?;
    let runtime = ctx.engine.runtime.clone();
    let alias = alias.to_string();
    let name = parent.to_string();
    blocking(move || {
        if runtime.remove_link(&c, &alias)? {
            Ok(())
        } else {
            Err(ApiError::not_found(format!(
                "Could not find entity for /{name}/{alias}"
            )))
        }
    })
    .await?;
    Ok(no_content())
}

/// `POST /containers/prune`: removes every stopped container of the scope.
pub async fn prune(ctx: &Ctx) -> ApiResult {
    let filters = ctx.query.filters()?;
    let runtime = ctx.engine.runtime.clone();
    let scope = ctx.scope.name.clone();
    let (deleted, reclaimed) = blocking(move || {
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for c in runtime.list(&scope) {
            let r = c.snapshot();
            if r.state.running() || !filters.labels_match(&r.config.labels) {
                continue;
            }
            let size = convert::writable_size(&runtime, &r.id);
            if runtime.remove(&c, false).is_ok() {
                deleted.push(r.id);
                reclaimed += size;
            }
        }
        Ok((deleted, reclaimed))
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        &json!({"ContainersDeleted": deleted, "SpaceReclaimed": reclaimed}),
    ))
}

/// `GET /containers/{id}/top?ps_args=`.
pub fn top(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    let ps_args = ctx.query.get("ps_args").unwrap_or("").to_string();
    let (titles, rows) = ctx.engine.runtime.top(&c, &ps_args)?;
    Ok(json(
        StatusCode::OK,
        &json!({"Titles": titles, "Processes": rows}),
    ))
}

/// `GET /containers/{id}/stats?stream=0`.
pub async fn stats(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    streams::stats(ctx, c).await
}

/// `GET /containers/{id}/changes`.
pub fn changes(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    let changes = ctx.engine.runtime.changes(&c)?;
    let list: Vec<serde_json::Value> = changes
        .iter()
        .map(|ch| json!({"Path": ch.path, "Kind": ch.kind as u8}))
        .collect();
    Ok(json(StatusCode::OK, &serde_json::Value::Array(list)))
}

/// The `X-Docker-Container-Path-Stat` header of a path.
fn path_stat_header(stat: &crate::container::archive::PathStat) -> hyper::header::HeaderValue {
    use base64::Engine as _;
    let text = serde_json::to_vec(stat).unwrap_or_default();
    hyper::header::HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(text))
        .unwrap_or_else(|_| hyper::header::HeaderValue::from_static(""))
}

fn archive_path(ctx: &Ctx) -> Result<String, ApiError> {
    match ctx.query.get("path") {
        Some(p) if !p.is_empty() => Ok(p.to_string()),
        _ => Err(ApiError::bad_request("path cannot be empty")),
    }
}

/// `HEAD /containers/{id}/archive?path=`: the stat of a path, in a header.
pub async fn archive_stat(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    let path = archive_path(ctx)?;
    let runtime = ctx.engine.runtime.clone();
    let stat = blocking(move || runtime.archive_stat(&c, &path).map_err(ApiError::from)).await?;
    let mut r = empty(StatusCode::OK);
    r.headers_mut()
        .insert("X-Docker-Container-Path-Stat", path_stat_header(&stat));
    Ok(r)
}

/// `GET /containers/{id}/archive?path=`: a path as a tar stream.
pub async fn archive_get(ctx: &Ctx, id: &str) -> ApiResult {
    let c = find(ctx, id)?;
    let path = archive_path(ctx)?;
    let runtime = ctx.engine.runtime.clone();
    let (c2, path2) = (c.clone(), path.clone());
    let stat = blocking(move || runtime.archive_stat(&c2, &path2).map_err(ApiError::from)).await?;
    let (mut reply, tx) = stream("application/x-tar");
    reply
        .headers_mut()
        .insert("X-Docker-Container-Path-Stat", path_stat_header(&stat));
    let runtime = ctx.engine.runtime.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = runtime.archive_get(&c, &path, super::images::ChannelWriter::new(tx)) {
            tracing::warn!(error = %e, "docker cp from a container failed midway");
        }
    });
    Ok(reply)
}

/// The largest `docker cp` upload (`berth daemon`; a session's is what its
/// disk budget has left).
const MAX_ARCHIVE_BODY: u64 = 4 << 30;

/// `PUT /containers/{id}/archive?path=&copyUIDGID=`: a tar extracted into a
/// directory of the container.
pub async fn archive_put(ctx: &Ctx, id: &str, req: Request<Incoming>) -> ApiResult {
    let c = find(ctx, id)?;
    let path = archive_path(ctx)?;
    let copy_uid_gid = matches!(ctx.query.get("copyUIDGID"), Some("1" | "true"));
    let runtime = ctx.engine.runtime.clone();
    let tmp = runtime.data_dir().tmp_dir();
    let limit = super::body::BodyLimit::of(ctx, MAX_ARCHIVE_BODY).await;
    let body = super::body::spool_body(req.into_body(), &tmp, &limit).await?;
    blocking(move || {
        let file = body
            .into_file()
            .map_err(|e| ApiError::internal(format!("read request body: {e}")))?;
        runtime
            .archive_put(&c, &path, copy_uid_gid, file)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(empty(StatusCode::OK))
}
