//! `/images/...` and `/commit`: list, inspect, history, tag, remove, prune,
//! save, load, import.

use std::io::Write;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};

use super::body::{decompressed, spool_body, BodyLimit};
use super::containers::blocking;
use super::http::{json, read_body, stream, ApiError, ApiResult, Sink};
use super::router::Ctx;

/// A blocking `Write` that feeds a streamed response.
pub struct ChannelWriter {
    tx: Sink,
}

impl ChannelWriter {
    pub fn new(tx: Sink) -> Self {
        Self { tx }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.tx
            .blocking_send(Bytes::copy_from_slice(buf))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away"))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `docker images` entries of the scope.
pub fn summaries(ctx: &Ctx) -> Result<Vec<Value>, ApiError> {
    let list = ctx
        .engine
        .runtime
        .images()
        .list_all(&ctx.scope.name, ctx.query.flag("all"))?;
    Ok(list
        .into_iter()
        .map(|i| {
            json!({
                "Id": i.id,
                "ParentId": "",
                "RepoTags": i.repo_tags,
                "RepoDigests": i.repo_digests,
                "Created": i.created,
                "Size": i.size,
                "SharedSize": -1,
                "VirtualSize": i.size,
                "Labels": i.labels,
                "Containers": -1,
            })
        })
        .collect())
}

/// `GET /images/json?all=&filters=`.
pub fn list(ctx: &Ctx) -> ApiResult {
    let filters = ctx.query.filters()?;
    filters.only(&["reference", "dangling", "label", "before", "since"])?;
    let mut out = summaries(ctx)?;
    let references = filters.values("reference");
    if !references.is_empty() {
        // Only the matching names of each image are listed, as dockerd does.
        for image in out.iter_mut() {
            let mut kept = Vec::new();
            for tag in image["RepoTags"].as_array().into_iter().flatten() {
                let Some(name) = tag.as_str() else { continue };
                for r in references {
                    if reference_matches(r, name)? {
                        kept.push(tag.clone());
                        break;
                    }
                }
            }
            image["RepoTags"] = Value::Array(kept);
        }
        out.retain(|i| i["RepoTags"].as_array().is_some_and(|t| !t.is_empty()));
    }
    if let Some(d) = filters.values("dangling").first() {
        let want = d == "true" || d == "1";
        out.retain(|i| i["RepoTags"].as_array().is_none_or(|t| t.is_empty()) == want);
    }
    if !filters.values("label").is_empty() {
        out.retain(|i| {
            let labels = serde_json::from_value(i["Labels"].clone()).unwrap_or_default();
            filters.labels_match(&labels)
        });
    }
    out.sort_by_key(|i| std::cmp::Reverse(i["Created"].as_i64().unwrap_or(0)));
    Ok(json(StatusCode::OK, &Value::Array(out)))
}

/// Docker's `reference` filter (`FamiliarMatch`): the pattern against
/// `name:tag`, then against the name alone, with Go's `path.Match`.
fn reference_matches(pattern: &str, tag: &str) -> Result<bool, ApiError> {
    let (repo, _) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    let glob = |name| {
        // dockerd answers 500 with the same words; 400 keeps a typo out of the error log.
        super::glob::path_match(pattern, name).map_err(|e| ApiError::bad_request(e.to_string()))
    };
    Ok(glob(tag)? || glob(repo)?)
}

/// Routes `/images/{name}[/json|/history|/tag|/push|/get]` where the name
/// may contain slashes.
pub async fn by_name(ctx: &Ctx, method: &Method, rest: &str, req: Request<Incoming>) -> ApiResult {
    for (suffix, m) in [
        ("/json", Method::GET),
        ("/history", Method::GET),
        ("/tag", Method::POST),
        ("/get", Method::GET),
        ("/push", Method::POST),
    ] {
        if let Some(name) = rest.strip_suffix(suffix) {
            if *method == m {
                return match suffix {
                    "/json" => inspect(ctx, name),
                    "/history" => history(ctx, name),
                    "/tag" => tag(ctx, name),
                    "/get" => save(ctx, Some(name)),
                    _ => super::distribution::push(ctx, name, req.headers()).await,
                };
            }
        }
    }
    if *method == Method::DELETE {
        return remove(ctx, rest, req).await;
    }
    Err(ApiError::not_found("page not found"))
}

fn inspect(ctx: &Ctx, name: &str) -> ApiResult {
    let v = ctx.engine.runtime.images().inspect(&ctx.scope.name, name)?;
    Ok(json(StatusCode::OK, &v))
}

fn history(ctx: &Ctx, name: &str) -> ApiResult {
    let v = ctx.engine.runtime.images().history(&ctx.scope.name, name)?;
    Ok(json(StatusCode::OK, &v))
}

fn tag(ctx: &Ctx, name: &str) -> ApiResult {
    let repo = ctx
        .query
        .get("repo")
        .ok_or_else(|| ApiError::bad_request("repository name must have at least one component"))?;
    let target = match ctx.query.get("tag").filter(|t| !t.is_empty()) {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    ctx.engine
        .runtime
        .images()
        .tag(&ctx.scope.name, name, &target)?;
    Ok(super::http::empty(StatusCode::CREATED))
}

async fn remove(ctx: &Ctx, name: &str, _req: Request<Incoming>) -> ApiResult {
    let force = ctx.query.flag("force");
    let runtime = ctx.engine.runtime.clone();
    let scope = ctx.scope.name.clone();
    let name = name.to_string();
    let report = blocking(move || {
        let image = runtime.images().resolve(&scope, &name)?;
        // An image a container uses cannot go (unless forced, and then only
        // its name goes).
        let users: Vec<String> = runtime
            .list(&scope)
            .iter()
            .filter(|c| c.lock().image_id == image.id)
            .map(|c| c.id.clone())
            .collect();
        runtime
            .images()
            .remove(&scope, &name, force, &users)
            .map_err(ApiError::from)
    })
    .await?;
    let list: Vec<Value> = report
        .into_iter()
        .map(|(kind, what)| json!({ kind: what }))
        .collect();
    Ok(json(StatusCode::OK, &Value::Array(list)))
}

/// `POST /images/prune`: images no tag and no container refers to.
pub fn prune(ctx: &Ctx) -> ApiResult {
    let runtime = &ctx.engine.runtime;
    let scope = &ctx.scope.name;
    let filters = ctx.query.filters()?;
    let all = filters
        .values("dangling")
        .first()
        .is_some_and(|d| d == "false" || d == "0");
    let in_use: Vec<String> = runtime
        .list(scope)
        .iter()
        .map(|c| c.lock().image_id.clone())
        .collect();
    let (deleted, reclaimed) = runtime.images().prune(scope, all, &in_use)?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "ImagesDeleted": deleted.iter().map(|d| json!({"Deleted": d})).collect::<Vec<_>>(),
            "SpaceReclaimed": reclaimed,
        }),
    ))
}

/// `GET /images/get?names=` or `/images/{name}/get`: a `docker save` tar.
pub fn save(ctx: &Ctx, name: Option<&str>) -> ApiResult {
    let names: Vec<String> = match name {
        Some(n) => vec![n.to_string()],
        None => ctx
            .query
            .all("names")
            .into_iter()
            .map(String::from)
            .collect(),
    };
    let runtime = ctx.engine.runtime.clone();
    let scope = ctx.scope.name.clone();
    for n in &names {
        runtime.images().resolve(&scope, n)?;
    }
    let (reply, tx) = stream("application/x-tar");
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let _ = runtime.images().save(&scope, &refs, ChannelWriter::new(tx));
    });
    Ok(reply)
}

/// The largest `docker load`/`import` body (`berth daemon`; a session's is
/// what its disk budget has left), as sent and once inflated.
const MAX_IMAGE_BODY: u64 = 8 << 30;

fn spooled_error(e: std::io::Error) -> ApiError {
    ApiError::internal(format!("read request body: {e}"))
}

/// `POST /images/load`: a `docker save` or OCI layout tar in the body.
pub async fn load(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let runtime = ctx.engine.runtime.clone();
    let tmp = runtime.data_dir().tmp_dir();
    let limit = BodyLimit::of(ctx, MAX_IMAGE_BODY).await;
    let body = spool_body(req.into_body(), &tmp, &limit).await?;
    let scope = ctx.scope.name.clone();
    let loaded = blocking(move || {
        let body = decompressed(body, &tmp, &limit, "image archive")?;
        let file = body.into_file().map_err(spooled_error)?;
        runtime
            .images()
            .load(&scope, std::io::BufReader::with_capacity(1 << 16, file))
            .map_err(ApiError::from)
    })
    .await;
    let mut out = Vec::new();
    // dockerd answers 200 once the body is read and reports a bad archive in
    // the JSON stream (docker-py raises ImageLoadError from it; the CLI
    // prints it and fails).
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(e) => {
            let message = e.message;
            out.extend(
                serde_json::to_vec(&json!({"errorDetail": {"message": message}, "error": message}))
                    .unwrap_or_default(),
            );
            out.push(b'\n');
            Vec::new()
        }
    };
    for name in loaded {
        let line = if name.starts_with("sha256:") {
            format!("Loaded image ID: {name}\n")
        } else {
            format!("Loaded image: {name}\n")
        };
        out.extend(serde_json::to_vec(&json!({"stream": line})).unwrap_or_default());
        out.push(b'\n');
    }
    let mut r = super::http::Reply::new(super::http::Body::Full(Some(out.into())));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

/// `POST /images/create`: `fromSrc=-` imports the body as a rootfs; a pull
/// (`fromImage=`) needs a registry, which comes with the registry issue.
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    if ctx.query.get("fromSrc") == Some("-") {
        let repo = ctx.query.get("repo").unwrap_or("").to_string();
        let tag = ctx.query.get("tag").unwrap_or("").to_string();
        let changes: Vec<String> = ctx
            .query
            .all("changes")
            .into_iter()
            .map(String::from)
            .collect();
        let message = ctx.query.get("message").unwrap_or("").to_string();
        let runtime = ctx.engine.runtime.clone();
        let tmp = runtime.data_dir().tmp_dir();
        let limit = BodyLimit::of(ctx, MAX_IMAGE_BODY).await;
        let body = spool_body(req.into_body(), &tmp, &limit).await?;
        let scope = ctx.scope.name.clone();
        let id = blocking(move || {
            let body = decompressed(body, &tmp, &limit, "imported image")?;
            let file = body.into_file().map_err(spooled_error)?;
            let reference = if repo.is_empty() {
                None
            } else if tag.is_empty() {
                Some(repo)
            } else {
                Some(format!("{repo}:{tag}"))
            };
            runtime
                .images()
                .import(
                    &scope,
                    std::io::BufReader::with_capacity(1 << 16, file),
                    reference.as_deref(),
                    &changes,
                    &message,
                )
                .map_err(ApiError::from)
        })
        .await?;
        let line = json!({"status": id});
        let mut out = serde_json::to_vec(&line).unwrap_or_default();
        out.push(b'\n');
        let mut r = super::http::Reply::new(super::http::Body::Full(Some(out.into())));
        r.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        return Ok(r);
    }
    super::distribution::pull(ctx, req.headers()).await
}

/// `POST /commit?container=&repo=&tag=&comment=&author=&changes=`.
pub async fn commit(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let container = ctx
        .query
        .get("container")
        .ok_or_else(|| ApiError::bad_request("container is required"))?;
    let c = super::containers::find(ctx, container)?;
    let body = read_body(req.into_body(), 1 << 20).await?;
    let config: Option<Value> = if body.iter().all(|b| b.is_ascii_whitespace()) {
        None
    } else {
        Some(
            serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?,
        )
    };
    let options = crate::image::CommitOptions {
        repo: ctx.query.get("repo").unwrap_or("").to_string(),
        tag: ctx.query.get("tag").unwrap_or("").to_string(),
        comment: ctx.query.get("comment").unwrap_or("").to_string(),
        author: ctx.query.get("author").unwrap_or("").to_string(),
        changes: ctx
            .query
            .all("changes")
            .into_iter()
            .map(String::from)
            .collect(),
        config,
        pause: ctx
            .query
            .get("pause")
            .is_none_or(|p| p != "0" && p != "false"),
    };
    let runtime = ctx.engine.runtime.clone();
    let id = blocking(move || runtime.commit(&c, options).map_err(ApiError::from)).await?;
    Ok(json(StatusCode::CREATED, &json!({"Id": id})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_filters_match_like_docker() {
        let m = |p: &str, t: &str| reference_matches(p, t).unwrap();
        assert!(m("busybox", "busybox:latest"));
        assert!(m("busybox:latest", "busybox:latest"));
        assert!(!m("busy", "busybox:latest"));
        assert!(m("busy*", "busybox:latest"));
        assert!(m("*:v1", "web:v1"));
        // `*` stays within one path component, as Go's path.Match.
        assert!(!m("*", "learner/web:v1"));
        assert!(m("*/*", "learner/web:v1"));
        assert!(m("learner/w?b", "learner/web:v1"));
        let tag = format!("{}:latest", "a".repeat(60));
        assert!(!m(&format!("{}b", "*a".repeat(13)), &tag));
        assert!(m(&format!("{}*", "*a".repeat(13)), &tag));
        assert_eq!(
            reference_matches("web[", "web:v1").unwrap_err().message,
            "syntax error in pattern"
        );
    }
}
