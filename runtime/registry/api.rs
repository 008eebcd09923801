//! The registry's HTTP API (OCI Distribution v2): routes, authorization,
//! and OCI error bodies (`{"errors":[{"code":"BLOB_UNKNOWN",…}]}`).
//!
//! Repository names contain slashes, so everything under `/v2/` goes to one
//! handler that splits the path from its end (`…/manifests/<ref>`,
//! `…/blobs/uploads/<id>`, `…/blobs/<digest>`, `…/tags/list`).

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use base64::Engine as _;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use super::storage::{parse_digest, valid_name, valid_tag};
use super::{Access, RegistryError as E, Server};

/// Largest manifest accepted (distribution's limit is 4 MiB).
const MANIFEST_LIMIT: usize = 4 << 20;

impl E {
    fn code(&self) -> (&'static str, StatusCode) {
        match self {
            E::BlobUnknown(_) => ("BLOB_UNKNOWN", StatusCode::NOT_FOUND),
            E::UploadUnknown(_) => ("BLOB_UPLOAD_UNKNOWN", StatusCode::NOT_FOUND),
            E::UploadInvalid(_) => ("BLOB_UPLOAD_INVALID", StatusCode::BAD_REQUEST),
            E::DigestInvalid(_) => ("DIGEST_INVALID", StatusCode::BAD_REQUEST),
            E::ManifestUnknown(_) => ("MANIFEST_UNKNOWN", StatusCode::NOT_FOUND),
            E::ManifestInvalid(_) => ("MANIFEST_INVALID", StatusCode::BAD_REQUEST),
            E::ManifestBlobUnknown(_) => ("MANIFEST_BLOB_UNKNOWN", StatusCode::BAD_REQUEST),
            E::NameInvalid(_) => ("NAME_INVALID", StatusCode::BAD_REQUEST),
            E::NameUnknown(_) => ("NAME_UNKNOWN", StatusCode::NOT_FOUND),
            E::TagInvalid(_) => ("TAG_INVALID", StatusCode::BAD_REQUEST),
            E::Unauthorized => ("UNAUTHORIZED", StatusCode::UNAUTHORIZED),
            E::Denied => ("DENIED", StatusCode::FORBIDDEN),
            E::Unsupported => ("UNSUPPORTED", StatusCode::METHOD_NOT_ALLOWED),
            E::Io { .. } => ("UNKNOWN", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The short message distribution gives each code.
    fn message(&self) -> &'static str {
        match self {
            E::BlobUnknown(_) | E::ManifestBlobUnknown(_) => "blob unknown to registry",
            E::UploadUnknown(_) => "blob upload unknown to registry",
            E::UploadInvalid(_) => "blob upload invalid",
            E::DigestInvalid(_) => "provided digest did not match uploaded content",
            E::ManifestUnknown(_) => "manifest unknown",
            E::ManifestInvalid(_) => "manifest invalid",
            E::NameInvalid(_) => "invalid repository name",
            E::NameUnknown(_) => "repository name not known to registry",
            E::TagInvalid(_) => "manifest tag did not match URI",
            E::Unauthorized => "authentication required",
            E::Denied => "requested access to the resource is denied",
            E::Unsupported => "The operation is unsupported.",
            E::Io { .. } => "unknown error",
        }
    }
}

impl IntoResponse for E {
    fn into_response(self) -> Response {
        let (code, status) = self.code();
        if status.is_server_error() {
            tracing::error!(error = %self, "registry request failed");
        }
        let detail = match &self {
            E::Io { .. } | E::Unauthorized | E::Denied | E::Unsupported => Value::Null,
            other => json!(other.to_string()),
        };
        let body = json!({"errors": [{"code": code, "message": self.message(), "detail": detail}]});
        let mut r = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Berth registry\""),
            );
        }
        r
    }
}

type ApiResult = Result<Response, E>;

/// The routes, with `server` as their state.
pub fn router(server: Server) -> Router {
    Router::new()
        .route("/v2", get(check))
        .route("/v2/", get(check))
        .route("/v2/_catalog", get(catalog))
        .route("/v2/{*rest}", any(dispatch))
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::map_response(api_version))
        .with_state(server)
}

async fn api_version(mut r: Response) -> Response {
    r.headers_mut().insert(
        "Docker-Distribution-API-Version",
        HeaderValue::from_static("registry/2.0"),
    );
    r
}

/// The token a request carries: `Bearer <token>` or Basic with the token as password.
fn token_of(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    if let Some(t) = value.strip_prefix("Bearer ") {
        return Some(t.trim().to_string());
    }
    let basic = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(basic.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':').map(|(_, p)| p.to_string())
}

impl Server {
    /// Whether the request may read (or write) repository `name`.
    fn authorize(&self, headers: &HeaderMap, name: &str, write: bool) -> Result<(), E> {
        let access = self.access.read().unwrap_or_else(|p| p.into_inner());
        let Access::Tokens(tokens) = &*access else {
            return Ok(());
        };
        let grant = token_of(headers)
            .and_then(|t| tokens.get(&t).cloned())
            .ok_or(E::Unauthorized)?;
        let ns = &grant.namespace;
        if name == ns || name.starts_with(&format!("{ns}/")) {
            return Ok(());
        }
        let first = name.split('/').next().unwrap_or("");
        let shared = self.shared.read().unwrap_or_else(|p| p.into_inner());
        if !write && shared.contains(first) {
            return Ok(());
        }
        if shared.contains(first) && name.contains('/') {
            let also = self.also.read().unwrap_or_else(|p| p.into_inner());
            let token = token_of(headers).unwrap_or_default();
            if also.get(&token).is_some_and(|a| a.contains(first)) {
                return Ok(());
            }
        }
        Err(E::Denied)
    }

    fn authenticated(&self, headers: &HeaderMap) -> Result<(), E> {
        match &*self.access.read().unwrap_or_else(|p| p.into_inner()) {
            Access::Open => Ok(()),
            Access::Tokens(tokens) => token_of(headers)
                .filter(|t| tokens.contains_key(t))
                .map(|_| ())
                .ok_or(E::Unauthorized),
        }
    }
}

/// `GET /v2/`: the API is here (and the credentials, if any, are good).
async fn check(State(server): State<Server>, headers: HeaderMap) -> ApiResult {
    server.authenticated(&headers)?;
    Ok(axum::Json(json!({})).into_response())
}

fn page(items: Vec<String>, query: &Query) -> (Vec<String>, Option<String>) {
    let after: Vec<String> = match query.get("last") {
        Some(last) => items.into_iter().filter(|i| i.as_str() > last).collect(),
        None => items,
    };
    match query.get("n").and_then(|n| n.parse::<usize>().ok()) {
        Some(n) if n < after.len() => {
            let last = after[n.saturating_sub(1)].clone();
            (after.into_iter().take(n).collect(), Some(last))
        }
        _ => (after, None),
    }
}

/// `GET /v2/_catalog?n=&last=`: the repositories the caller may read.
async fn catalog(State(server): State<Server>, headers: HeaderMap, req: Request) -> ApiResult {
    server.authenticated(&headers)?;
    let query = Query::parse(req.uri().query());
    let repos: Vec<String> = server
        .storage
        .repositories()
        .into_iter()
        .filter(|r| server.authorize(&headers, r, false).is_ok())
        .collect();
    let (repos, last) = page(repos, &query);
    let mut r = axum::Json(json!({ "repositories": repos })).into_response();
    if let (Some(last), Some(n)) = (last, query.get("n")) {
        if let Ok(v) =
            HeaderValue::from_str(&format!("</v2/_catalog?n={n}&last={last}>; rel=\"next\""))
        {
            r.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(r)
}

/// A decoded query string.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Self {
        Query(
            form_urlencoded::parse(q.unwrap_or("").as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What a path under `/v2/` names.
#[derive(Debug, PartialEq)]
enum Target<'a> {
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Upload(&'a str, &'a str),
    Blob(&'a str, &'a str),
}

fn target(rest: &str) -> Option<Target<'_>> {
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Target::Tags(name));
    }
    if let Some(i) = rest.rfind("/manifests/") {
        return Some(Target::Manifest(
            &rest[..i],
            &rest[i + "/manifests/".len()..],
        ));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads")
        .or_else(|| rest.strip_suffix("/blobs/uploads/"))
    {
        return Some(Target::Upload(name, ""));
    }
    if let Some(i) = rest.rfind("/blobs/uploads/") {
        return Some(Target::Upload(
            &rest[..i],
            &rest[i + "/blobs/uploads/".len()..],
        ));
    }
    if let Some(i) = rest.rfind("/blobs/") {
        return Some(Target::Blob(&rest[..i], &rest[i + "/blobs/".len()..]));
    }
    None
}

async fn dispatch(State(server): State<Server>, req: Request) -> ApiResult {
    let path = req.uri().path().to_string();
    let rest = path.strip_prefix("/v2/").unwrap_or("");
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    let headers = req.headers().clone();
    let body = req.into_body();
    let Some(t) = target(rest) else {
        return Ok(StatusCode::NOT_FOUND.into_response());
    };
    let name = match &t {
        Target::Tags(n) | Target::Manifest(n, _) | Target::Upload(n, _) | Target::Blob(n, _) => *n,
    };
    if !valid_name(name) {
        return Err(E::NameInvalid(name.to_string()));
    }
    let write = !matches!(method, Method::GET | Method::HEAD);
    server.authorize(&headers, name, write)?;
    let s = &server;
    match (method, t) {
        (Method::GET, Target::Tags(_)) => tags(s, name, &query),
        (m @ (Method::GET | Method::HEAD), Target::Manifest(_, r)) => {
            get_manifest(s, name, r, m == Method::HEAD)
        }
        (Method::PUT, Target::Manifest(_, r)) => put_manifest(s, name, r, &headers, body).await,
        (Method::DELETE, Target::Manifest(_, r)) => {
            s.storage.delete_manifest(name, r)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        (Method::POST, Target::Upload(_, "")) => {
            start_upload(s, name, &headers, &query, body).await
        }
        (Method::PATCH, Target::Upload(_, id)) => patch_upload(s, name, id, &headers, body).await,
        (Method::PUT, Target::Upload(_, id)) => put_upload(s, name, id, &query, body).await,
        (Method::GET, Target::Upload(_, id)) => {
            let size = s
                .storage
                .upload_size(id)
                .ok_or_else(|| E::UploadUnknown(id.to_string()))?;
            Ok(upload_reply(StatusCode::NO_CONTENT, name, id, size))
        }
        (Method::DELETE, Target::Upload(_, id)) => {
            s.storage.cancel_upload(id)?;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        (m @ (Method::GET | Method::HEAD), Target::Blob(_, d)) => {
            get_blob(s, name, d, m == Method::HEAD).await
        }
        (Method::DELETE, Target::Blob(_, d)) => {
            s.storage.unlink_blob(name, d)?;
            Ok(StatusCode::ACCEPTED.into_response())
        }
        _ => Err(E::Unsupported),
    }
}

fn tags(server: &Server, name: &str, query: &Query) -> ApiResult {
    if !server.storage.repo_exists(name) {
        return Err(E::NameUnknown(name.to_string()));
    }
    let (tags, last) = page(server.storage.tags(name), query);
    let mut r = axum::Json(json!({"name": name, "tags": tags})).into_response();
    if let (Some(last), Some(n)) = (last, query.get("n")) {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "</v2/{name}/tags/list?n={n}&last={last}>; rel=\"next\""
        )) {
            r.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(r)
}

fn set(r: &mut Response, key: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(key, v);
    }
}

fn digest_header() -> header::HeaderName {
    header::HeaderName::from_static("docker-content-digest")
}

fn get_manifest(server: &Server, name: &str, reference: &str, head: bool) -> ApiResult {
    let m = server.storage.manifest(name, reference)?;
    let len = m.bytes.len();
    let mut r = if head {
        Response::new(Body::empty())
    } else {
        Response::new(Body::from(m.bytes))
    };
    set(&mut r, header::CONTENT_TYPE, &m.media_type);
    set(&mut r, header::CONTENT_LENGTH, &len.to_string());
    set(&mut r, digest_header(), &m.digest);
    set(&mut r, header::ETAG, &format!("\"{}\"", m.digest));
    Ok(r)
}

async fn put_manifest(
    server: &Server,
    name: &str,
    reference: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let tag = match parse_digest(reference) {
        Some(_) => None,
        None if valid_tag(reference) => Some(reference),
        None => return Err(E::TagInvalid(reference.to_string())),
    };
    let bytes = axum::body::to_bytes(body, MANIFEST_LIMIT)
        .await
        .map_err(|e| E::ManifestInvalid(e.to_string()))?;
    let value: Value =
        serde_json::from_slice(&bytes).map_err(|e| E::ManifestInvalid(e.to_string()))?;
    if value.get("schemaVersion").and_then(Value::as_i64) != Some(2) {
        return Err(E::ManifestInvalid("schemaVersion must be 2".into()));
    }
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|t| !t.is_empty() && *t != "application/json")
        .map(String::from)
        .or_else(|| {
            value
                .get("mediaType")
                .and_then(Value::as_str)
                .map(String::from)
        })
        .unwrap_or_else(|| "application/vnd.oci.image.manifest.v1+json".into());
    if let Some(list) = value.get("manifests").and_then(Value::as_array) {
        for m in list {
            let d = m.get("digest").and_then(Value::as_str).unwrap_or("");
            if server.storage.manifest(name, d).is_err() {
                return Err(E::ManifestBlobUnknown(d.to_string()));
            }
        }
    } else {
        let mut blobs = vec![value.get("config").cloned().unwrap_or(Value::Null)];
        blobs.extend(
            value
                .get("layers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
        );
        for b in blobs {
            let foreign = b
                .get("mediaType")
                .and_then(Value::as_str)
                .is_some_and(|t| t.contains("foreign") || t.contains("nondistributable"));
            let d = b.get("digest").and_then(Value::as_str).unwrap_or("");
            if parse_digest(d).is_none() {
                return Err(E::ManifestInvalid(format!("invalid digest {d:?}")));
            }
            if !foreign && server.storage.blob_in_repo(name, d).is_none() {
                return Err(E::ManifestBlobUnknown(d.to_string()));
            }
        }
    }
    if tag.is_none() {
        let actual = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
        if actual != reference {
            return Err(E::DigestInvalid(format!(
                "manifest digest {actual} is not {reference}"
            )));
        }
    }
    let storage = server.storage.clone();
    let (n, t) = (name.to_string(), tag.map(String::from));
    let digest = tokio::task::spawn_blocking(move || {
        storage.put_manifest(&n, &bytes, &media_type, t.as_deref())
    })
    .await
    .map_err(|e| E::Io {
        context: "store manifest".into(),
        source: std::io::Error::other(e.to_string()),
    })??;
    let mut r = StatusCode::CREATED.into_response();
    set(
        &mut r,
        header::LOCATION,
        &format!("/v2/{name}/manifests/{digest}"),
    );
    set(&mut r, digest_header(), &digest);
    Ok(r)
}

fn upload_reply(status: StatusCode, name: &str, id: &str, size: u64) -> Response {
    let mut r = status.into_response();
    set(
        &mut r,
        header::LOCATION,
        &format!("/v2/{name}/blobs/uploads/{id}"),
    );
    set(
        &mut r,
        header::RANGE,
        &format!("0-{}", size.saturating_sub(1)),
    );
    set(
        &mut r,
        header::HeaderName::from_static("docker-upload-uuid"),
        id,
    );
    set(&mut r, header::CONTENT_LENGTH, "0");
    r
}

fn blob_created(name: &str, digest: &str) -> Response {
    let mut r = StatusCode::CREATED.into_response();
    set(
        &mut r,
        header::LOCATION,
        &format!("/v2/{name}/blobs/{digest}"),
    );
    set(&mut r, digest_header(), digest);
    set(&mut r, header::CONTENT_LENGTH, "0");
    r
}

/// Appends a request body to upload `id`, hashing as it goes.
async fn append(server: &Server, id: &str, body: Body) -> Result<(), E> {
    let path = server
        .storage
        .upload_path(id)
        .ok_or_else(|| E::UploadUnknown(id.to_string()))?;
    let file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .await
        .map_err(|_| E::UploadUnknown(id.to_string()))?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
    let mut stream = body.into_data_stream();
    let io = |source| E::Io {
        context: format!("write upload {id}"),
        source,
    };
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                // An interrupted upload: what arrived stays, the client may resume.
                let _ = out.flush().await;
                return Err(E::UploadInvalid(e.to_string()));
            }
        };
        if let Err(e) = out.write_all(&chunk).await {
            server.storage.upload_desynced(id);
            return Err(io(e));
        }
        server.storage.upload_appended(id, &chunk);
    }
    out.flush().await.map_err(|e| {
        server.storage.upload_desynced(id);
        io(e)
    })
}

async fn start_upload(
    server: &Server,
    name: &str,
    headers: &HeaderMap,
    query: &Query,
    body: Body,
) -> ApiResult {
    if let (Some(digest), Some(from)) = (query.get("mount"), query.get("from")) {
        if parse_digest(digest).is_some()
            && valid_name(from)
            && server.authorize(headers, from, false).is_ok()
            && server.storage.blob_in_repo(from, digest).is_some()
        {
            server.storage.link_blob(name, digest)?;
            return Ok(blob_created(name, digest));
        }
    }
    let id = server.storage.start_upload()?;
    if let Some(digest) = query.get("digest") {
        append(server, &id, body).await?;
        finish(server, name, &id, digest).await?;
        return Ok(blob_created(name, digest));
    }
    Ok(upload_reply(StatusCode::ACCEPTED, name, &id, 0))
}

async fn patch_upload(
    server: &Server,
    name: &str,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult {
    let size = server
        .storage
        .upload_size(id)
        .ok_or_else(|| E::UploadUnknown(id.to_string()))?;
    if let Some(range) = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
    {
        let start = range
            .split('-')
            .next()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if start != Some(size) {
            let mut r =
                E::UploadInvalid(format!("range {range} does not start at {size}")).into_response();
            *r.status_mut() = StatusCode::RANGE_NOT_SATISFIABLE;
            return Ok(r);
        }
    }
    append(server, id, body).await?;
    let size = server.storage.upload_size(id).unwrap_or(0);
    Ok(upload_reply(StatusCode::ACCEPTED, name, id, size))
}

async fn finish(server: &Server, name: &str, id: &str, digest: &str) -> Result<(), E> {
    if parse_digest(digest).is_none() {
        let _ = server.storage.cancel_upload(id);
        return Err(E::DigestInvalid(format!("invalid digest {digest:?}")));
    }
    let storage = server.storage.clone();
    let (n, i, d) = (name.to_string(), id.to_string(), digest.to_string());
    tokio::task::spawn_blocking(move || storage.finish_upload(&n, &i, &d))
        .await
        .map_err(|e| E::Io {
            context: "finish upload".into(),
            source: std::io::Error::other(e.to_string()),
        })??;
    Ok(())
}

async fn put_upload(server: &Server, name: &str, id: &str, query: &Query, body: Body) -> ApiResult {
    let digest = query.get("digest").unwrap_or("").to_string();
    append(server, id, body).await?;
    finish(server, name, id, &digest).await?;
    Ok(blob_created(name, &digest))
}

async fn get_blob(server: &Server, name: &str, digest: &str, head: bool) -> ApiResult {
    if parse_digest(digest).is_none() {
        return Err(E::DigestInvalid(format!("invalid digest {digest:?}")));
    }
    let size = server
        .storage
        .blob_in_repo(name, digest)
        .ok_or_else(|| E::BlobUnknown(digest.to_string()))?;
    let mut r = if head {
        Response::new(Body::empty())
    } else {
        let file = tokio::fs::File::open(server.storage.blob_path(digest))
            .await
            .map_err(|_| E::BlobUnknown(digest.to_string()))?;
        Response::new(Body::from_stream(
            tokio_util::io::ReaderStream::with_capacity(file, 1 << 18),
        ))
    };
    set(&mut r, header::CONTENT_TYPE, "application/octet-stream");
    set(&mut r, header::CONTENT_LENGTH, &size.to_string());
    set(&mut r, digest_header(), digest);
    set(&mut r, header::ETAG, &format!("\"{digest}\""));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_from_their_end() {
        assert_eq!(target("s1/app/tags/list"), Some(Target::Tags("s1/app")));
        assert_eq!(
            target("a/manifests/latest"),
            Some(Target::Manifest("a", "latest"))
        );
        assert_eq!(
            target("a/b/blobs/uploads/"),
            Some(Target::Upload("a/b", ""))
        );
        assert_eq!(
            target("a/blobs/uploads/abc"),
            Some(Target::Upload("a", "abc"))
        );
        assert_eq!(
            target("a/blobs/sha256:00"),
            Some(Target::Blob("a", "sha256:00"))
        );
        assert_eq!(target("a/whatever"), None);
    }

    #[test]
    fn a_shared_namespace_is_read_by_all_and_written_by_those_granted_it() {
        let dir = tempfile::tempdir().unwrap();
        let server = Server::open(dir.path(), super::super::Access::Open).unwrap();
        for (token, ns) in [("t-a", "s-a"), ("t-b", "s-b"), ("t-x", "s-x")] {
            server.grant(
                token,
                super::super::Grant {
                    namespace: ns.into(),
                },
            );
        }
        server.open_shared("ws-abc");
        server.grant_also("t-a", "ws-abc");
        server.grant_also("t-b", "ws-abc");
        let bearer = |t: &str| {
            let mut h = HeaderMap::new();
            h.insert(
                header::AUTHORIZATION,
                format!("Bearer {t}").parse().unwrap(),
            );
            h
        };
        let ok =
            |t: &str, name: &str, write: bool| server.authorize(&bearer(t), name, write).is_ok();
        assert!(ok("t-a", "ws-abc/app", true));
        assert!(ok("t-b", "ws-abc/app", false));
        assert!(ok("t-x", "ws-abc/app", false), "shared: everyone reads");
        assert!(!ok("t-x", "ws-abc/app", true), "not granted: no writing");
        assert!(
            !ok("t-a", "s-b/app", false),
            "private namespaces stay private"
        );
        server.revoke("t-a");
        assert!(
            !ok("t-a", "ws-abc/app", true),
            "a revoked token loses it all"
        );
    }
}
