//! `POST /build`: Docker's classic builder endpoint. The body is the build
//! context; the answer is a JSON-lines stream of `{"stream": …}` progress,
//! `{"aux": {"ID": …}}` with the image, and `{"errorDetail": …}` on failure.
//!
//! Problems found before the first step (a malformed Dockerfile, a missing
//! Dockerfile, a bad tag) are plain HTTP errors, as dockerd answers them.

use std::collections::BTreeMap;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::Request;
use serde_json::{json, Value};

use super::body::{check_tar, decompressed, spool_body, BodyLimit};
use super::containers::blocking;
use super::http::{stream, ApiError, ApiResult, Sink};
use super::router::Ctx;
use crate::build::builder::{check_tags, parse};
use crate::build::dockerignore::clean;
use crate::build::{BuildContext, BuildOptions, Builder, Failure};
use crate::container::names::new_id;

/// The largest build context accepted (`berth daemon`; a session's is what
/// its disk budget has left), as sent and as unpacked.
const MAX_CONTEXT: u64 = 2 << 30;
/// The most files a build context may hold: each costs an inode.
const MAX_CONTEXT_FILES: usize = 1 << 18;
/// The largest Dockerfile (and `.dockerignore`): both are read into memory.
const MAX_DOCKERFILE: u64 = 4 << 20;

/// A JSON map query value (`buildargs`, `labels`); `null` values (an
/// `--build-arg NAME` the client had no value for) are left out.
fn json_map(ctx: &Ctx, key: &str) -> Result<BTreeMap<String, String>, ApiError> {
    let Some(raw) = ctx.query.get(key).filter(|v| !v.is_empty()) else {
        return Ok(BTreeMap::new());
    };
    let value: BTreeMap<String, Option<String>> = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid {key} parameter: {e}")))?;
    Ok(value
        .into_iter()
        .filter_map(|(k, v)| Some((k, v?)))
        .collect())
}

fn failure_error(f: Failure) -> ApiError {
    if f.bad_request {
        ApiError::bad_request(f.message)
    } else {
        ApiError::internal(f.message)
    }
}

/// One JSON line of the progress stream.
fn line(value: &Value) -> Bytes {
    let mut bytes = serde_json::to_vec(value).unwrap_or_default();
    bytes.extend_from_slice(b"\r\n");
    Bytes::from(bytes)
}

/// How `RUN` steps are networked: `networkmode` (the default bridge, `none`,
/// `host` or one of the scope's own networks, checked as `docker run
/// --network` is) and `extrahosts` (`name:ip` entries, repeated or joined
/// with commas).
fn step_networking(ctx: &Ctx) -> Result<crate::net::ContainerNetworking, ApiError> {
    let mode = ctx.query.get("networkmode").unwrap_or("");
    if mode.starts_with("container:") {
        return Err(ApiError::bad_request(format!(
            "network mode {mode:?} is not supported by the builder"
        )));
    }
    let mut extra_hosts = Vec::new();
    for entry in ctx
        .query
        .all("extrahosts")
        .into_iter()
        .flat_map(|v| v.split(','))
        .filter(|e| !e.is_empty())
    {
        if extra_hosts.len() >= MAX_EXTRA_HOSTS {
            return Err(ApiError::bad_request(format!(
                "too many extra hosts: at most {MAX_EXTRA_HOSTS}"
            )));
        }
        extra_hosts
            .push(crate::net::endpoint::parse_extra_host(entry).map_err(ApiError::bad_request)?);
    }
    let networking = crate::net::ContainerNetworking {
        mode: if mode == "default" { "" } else { mode }.to_string(),
        extra_hosts,
        ..Default::default()
    };
    super::networks::check_networks(ctx, &networking)?;
    Ok(networking)
}

/// `cachefrom` (a JSON list of image references): the images named that
/// the scope has and their lineage; `None` when the list is absent or empty.
fn cache_from(ctx: &Ctx) -> Result<Option<std::collections::HashSet<String>>, ApiError> {
    let Some(raw) = ctx.query.get("cachefrom").filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let names: Vec<String> = serde_json::from_str(raw)
        .map_err(|e| ApiError::bad_request(format!("invalid cachefrom parameter: {e}")))?;
    if names.is_empty() {
        return Ok(None);
    }
    if names.len() > MAX_CACHE_FROM {
        return Err(ApiError::bad_request(format!(
            "too many cache-from images: at most {MAX_CACHE_FROM}"
        )));
    }
    let images = ctx.engine.runtime.images();
    let mut allowed = std::collections::HashSet::new();
    for name in &names {
        // A name the scope does not have adds nothing (dockerd skips it too).
        if let Ok(image) = images.resolve(&ctx.scope.name, name) {
            allowed.extend(images.lineage(&ctx.scope.name, &image.id));
        }
    }
    Ok(Some(allowed))
}

/// The most `cachefrom` images a build takes.
const MAX_CACHE_FROM: usize = 64;

/// The most `extrahosts` entries a build takes (each is a line of every
/// step's `/etc/hosts`).
const MAX_EXTRA_HOSTS: usize = 256;

/// `POST /build?t=&dockerfile=&q=&nocache=&buildargs=&labels=&target=`.
pub async fn build(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    if ctx.query.get("version") == Some("2") {
        return Err(ApiError::bad_request(
            "BuildKit is not supported by this engine: build with the classic builder (DOCKER_BUILDKIT=0)",
        ));
    }
    if let Some(remote) = ctx.query.get("remote").filter(|r| !r.is_empty()) {
        return Err(ApiError::bad_request(format!(
            "remote build contexts are not supported (offline engine): {remote}"
        )));
    }
    let tags: Vec<String> = ctx.query.all("t").into_iter().map(String::from).collect();
    let tags = check_tags(&tags).map_err(failure_error)?;
    let options = BuildOptions {
        scope: ctx.scope.name.clone(),
        tags,
        build_args: json_map(ctx, "buildargs")?,
        labels: json_map(ctx, "labels")?,
        target: ctx
            .query
            .get("target")
            .filter(|t| !t.is_empty())
            .map(String::from),
        no_cache: ctx.query.flag("nocache"),
        networking: step_networking(ctx)?,
        cache_from: cache_from(ctx)?,
    };
    let quiet = ctx.query.flag("q");
    let dockerfile = ctx.query.get("dockerfile").unwrap_or("").to_string();
    let runtime = ctx.engine.runtime.clone();
    // The upload waits in the shared tmp, held to what the budget has left;
    // the unpacked context goes on the session's filesystem and counts.
    let tmp = runtime.data_dir().tmp_dir();
    let limit = BodyLimit::of(ctx, MAX_CONTEXT).await;
    let body = spool_body(req.into_body(), &tmp, &limit).await?;
    let dir = runtime
        .scratch_dir(&ctx.scope.name)
        .join(format!("build-{}", &new_id()[..16]));
    // Unpack and parse first: their errors are the request's errors.
    let (context, file) = blocking(move || {
        let body = open_context(body, &tmp, &limit, &dockerfile)?;
        let (context, text) =
            BuildContext::unpack(body, &dir, &dockerfile).map_err(failure_error)?;
        let file = parse(&text).map_err(failure_error)?;
        Ok((context, file))
    })
    .await?;
    if let Some(t) = &options.target {
        if file.stage_named(t).is_none() {
            return Err(ApiError::bad_request(format!(
                "failed to reach build target {t} in Dockerfile"
            )));
        }
    }
    let (reply, tx) = stream("application/json");
    tokio::task::spawn_blocking(move || {
        run_build(&runtime, &options, &context, &file, quiet, &tx);
    });
    Ok(reply)
}

/// The spooled context, inflated and measured: what it unpacks to fits
/// `limit` and the Dockerfile fits in memory. Blocking.
fn open_context(
    body: super::body::Spooled,
    tmp: &std::path::Path,
    limit: &BodyLimit,
    dockerfile: &str,
) -> Result<std::io::BufReader<std::fs::File>, ApiError> {
    use std::io::{Read, Seek};
    let plain = decompressed(body, tmp, limit, "build context")?;
    let len = plain.len();
    let io = |e: std::io::Error| ApiError::internal(format!("read build context: {e}"));
    let mut file = plain.into_file().map_err(io)?;
    let mut head = Vec::with_capacity(512);
    (&mut file).take(512).read_to_end(&mut head).map_err(io)?;
    file.rewind().map_err(io)?;
    let tar = head.len() >= 262 && &head[257..262] == b"ustar";
    if tar {
        let name = clean(dockerfile.trim_start_matches('/'));
        let small = |path: &str| {
            let path = clean(path.trim_start_matches('/'));
            path == name || path == "Dockerfile" || path == "dockerfile" || path == ".dockerignore"
        };
        check_tar(
            &mut file,
            limit,
            "build context",
            MAX_CONTEXT_FILES,
            &small,
            MAX_DOCKERFILE,
        )?;
    } else if len > MAX_DOCKERFILE {
        return Err(ApiError::new(
            hyper::StatusCode::PAYLOAD_TOO_LARGE,
            format!("Dockerfile is larger than {} MiB", MAX_DOCKERFILE >> 20),
        ));
    }
    Ok(std::io::BufReader::with_capacity(1 << 16, file))
}

/// Runs the build, writing its progress to `tx`.
fn run_build(
    runtime: &std::sync::Arc<crate::container::Runtime>,
    options: &BuildOptions,
    context: &BuildContext,
    file: &crate::build::Dockerfile,
    quiet: bool,
    tx: &Sink,
) {
    let send = |v: Value| {
        let _ = tx.blocking_send(line(&v));
    };
    for w in &file.warnings {
        if !quiet {
            send(json!({"stream": format!("[WARNING]: {}\n", w.message)}));
        }
    }
    let mut out = |text: String| {
        if !quiet {
            send(json!({"stream": text}));
        }
    };
    let gone = || tx.is_closed();
    let built = Builder::new(runtime, options, context, file, &mut out)
        .and_then(|b| b.cancel_when(&gone).build());
    let built = built.and_then(|built| {
        for tag in &built.tags {
            runtime
                .images()
                .tag(&options.scope, &built.id, tag)
                .map_err(Failure::from)?;
        }
        Ok(built)
    });
    match built {
        Ok(built) => {
            if quiet {
                send(json!({"stream": format!("{}\n", built.id)}));
                return;
            }
            send(json!({"aux": {"ID": built.id}}));
            let hex = built.id.strip_prefix("sha256:").unwrap_or(&built.id);
            send(json!({"stream": format!("Successfully built {}\n", &hex[..12])}));
            for tag in &built.tags {
                send(json!({"stream": format!("Successfully tagged {tag}\n")}));
            }
        }
        Err(f) => {
            let mut detail = json!({"message": f.message});
            if let Some(code) = f.code {
                detail["code"] = json!(code);
            }
            send(json!({"errorDetail": detail, "error": f.message}));
        }
    }
}
