//! `docker pull`, `docker push` and `docker login`: the Engine API side of
//! the registry client, with Docker's JSON progress lines.
//!
//! Which registry a reference names: `registry.local:5000` is the classroom
//! registry (its address and the scope's namespace come from
//! [`RegistrySettings`]; `registry.local:5000/app` is `<namespace>/app`
//! there), loopback hosts and the configured insecure registries speak plain
//! HTTP, everything else HTTPS (with CAs from `<certs_dir>/<host>/ca.crt`,
//! as Docker's `certs.d`). Docker Hub is `registry-1.docker.io`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::header::HeaderMap;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use super::http::{json, read_body, stream, ApiError, ApiResult, Sink};
use super::router::Ctx;
use super::Engine;
use crate::image::{ImageStore, Reference};
use crate::registry::cache::{identity, Flight, PullCache, Stage};
use crate::registry::client::{ClientError, Credentials, Manifest, Remote, RepoClient, Upload};

/// The name every scope reaches the classroom registry by.
pub const CLASSROOM_REGISTRY: &str = "registry.local:5000";

/// A scope's place on the classroom registry.
#[derive(Debug, Clone, Default)]
pub struct ScopeRegistry {
    /// Its namespace (`registry.local:5000/app` is `<namespace>/app`).
    pub namespace: String,
    /// The token the classroom registry knows the namespace by, if it checks.
    pub token: Option<String>,
}

/// How this engine reaches registries.
#[derive(Debug, Clone)]
pub struct RegistrySettings {
    /// Where the classroom registry listens (`127.0.0.1:5000`).
    pub classroom: String,
    /// Registries spoken to over plain HTTP besides the classroom's and loopback.
    pub insecure: Vec<String>,
    /// Extra CAs per registry: `<certs_dir>/<host[:port]>/ca.crt`.
    pub certs_dir: PathBuf,
    /// Namespaces of the classroom registry every scope names unprefixed.
    pub shared: Vec<String>,
    /// Each scope's namespace; a scope not listed uses its own name.
    pub scopes: HashMap<String, ScopeRegistry>,
    /// Where connections for a scope may go (`berth serve`'s sessions);
    /// `None` is anywhere, as dockerd (`berth daemon`).
    pub egress: Option<Arc<crate::net::egress::Egress>>,
    /// Docker Hub mirrors asked first (`--registry-mirror`), as dockerd.
    pub mirrors: Vec<String>,
    /// The operator's credentials for upstreams (`--registry-auth`), used
    /// for pulls a learner makes without their own.
    pub auth: OperatorAuth,
    /// What every session's pulls share.
    pub cache: Arc<PullCache>,
}

/// Credentials per registry from a Docker `config.json`; never printed.
#[derive(Clone, Default)]
pub struct OperatorAuth(Arc<HashMap<String, Credentials>>);

impl std::fmt::Debug for OperatorAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut hosts: Vec<&String> = self.0.keys().collect();
        hosts.sort();
        f.debug_tuple("OperatorAuth").field(&hosts).finish()
    }
}

/// `docker.io` for Docker Hub's names, `host[:port]` otherwise.
fn registry_key(server: &str) -> String {
    let host = server
        .trim()
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("");
    match host {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".into()
        }
        other => other.to_string(),
    }
}

impl OperatorAuth {
    /// Reads the `auths` of a Docker `config.json` (`auth` is base64 of
    /// `user:password`, or `username`/`password`, or `identitytoken`).
    pub fn from_config(text: &str) -> Result<Self, String> {
        use base64::Engine as _;
        #[derive(serde::Deserialize)]
        struct Config {
            #[serde(default)]
            auths: HashMap<String, Entry>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            #[serde(default)]
            auth: String,
            #[serde(default)]
            username: String,
            #[serde(default)]
            password: String,
            #[serde(default)]
            identitytoken: String,
        }
        // The file's own words never reach an error: it holds secrets.
        let config: Config = serde_json::from_str(text)
            .map_err(|e| format!("not a Docker config.json (line {})", e.line()))?;
        let mut out = HashMap::new();
        for (server, e) in config.auths {
            let (mut username, mut password) = (e.username, e.password);
            if !e.auth.is_empty() {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(e.auth.trim())
                    .map_err(|_| format!("the auth of {server} is not base64"))?;
                let raw = String::from_utf8(raw)
                    .map_err(|_| format!("the auth of {server} is not text"))?;
                let (u, p) = raw
                    .split_once(':')
                    .ok_or_else(|| format!("the auth of {server} is not user:password"))?;
                username = u.to_string();
                password = p.to_string();
            }
            out.insert(
                registry_key(&server),
                Credentials {
                    username,
                    password,
                    identity_token: e.identitytoken,
                    server_address: server.clone(),
                    ..Default::default()
                },
            );
        }
        Ok(Self(Arc::new(out)))
    }

    /// The credentials for `host[:port]`, if the operator gave any.
    pub fn get(&self, host: &str) -> Option<&Credentials> {
        self.0.get(&registry_key(host))
    }

    /// How many registries it has credentials for.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it has none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self {
            classroom: "127.0.0.1:5000".into(),
            insecure: Vec::new(),
            certs_dir: PathBuf::from("/etc/berth/certs.d"),
            shared: Vec::new(),
            scopes: HashMap::new(),
            egress: None,
            mirrors: Vec::new(),
            auth: OperatorAuth::default(),
            cache: Arc::new(PullCache::default()),
        }
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    host == "localhost" || host == "127.0.0.1" || host == "[::1]"
}

impl RegistrySettings {
    /// Where `reference`'s repository lives, as `scope` names it.
    pub fn remote(&self, scope: &str, reference: &Reference) -> Result<Remote, ApiError> {
        let domain = reference.domain.as_str();
        let bad = |e: String| ApiError::internal(format!("registry address: {e}"));
        if domain == CLASSROOM_REGISTRY || domain == "registry.local" {
            let mine = self
                .scopes
                .get(scope)
                .cloned()
                .unwrap_or_else(|| ScopeRegistry {
                    namespace: scope.to_string(),
                    token: None,
                });
            let first = reference.path.split('/').next().unwrap_or("");
            let repo = if self.shared.iter().any(|s| s == first) {
                reference.path.clone()
            } else {
                format!("{}/{}", mine.namespace, reference.path)
            };
            return Ok(Remote {
                base: format!("http://{}", self.classroom)
                    .parse()
                    .map_err(|e| bad(format!("{e}")))?,
                repo,
                token: mine.token,
                ca_pem: None,
                // The classroom registry is Berth's own (reached only by
                // this name, with the scope's token).
                egress: None,
            });
        }
        Ok(Remote {
            base: self
                .base_url(domain)
                .parse()
                .map_err(|e| bad(format!("{e}")))?,
            repo: reference.path.clone(),
            token: None,
            ca_pem: std::fs::read(self.certs_dir.join(domain).join("ca.crt")).ok(),
            egress: self.egress.clone(),
        })
    }

    /// Adds a Docker Hub mirror (`http://` or `https://` and a host).
    pub fn add_mirror(&mut self, url: &str) -> Result<(), String> {
        let parsed: reqwest::Url = url.parse().map_err(|e| format!("not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err("want http:// or https:// and a host".into());
        }
        self.mirrors.push(url.trim_end_matches('/').to_string());
        Ok(())
    }

    /// The mirrors a Docker Hub `reference` is asked at first, in order.
    fn mirror_remotes(&self, reference: &Reference) -> Vec<Remote> {
        if !matches!(reference.domain.as_str(), "docker.io" | "index.docker.io") {
            return Vec::new();
        }
        self.mirrors
            .iter()
            .filter_map(|m| {
                let base: reqwest::Url = m.parse().ok()?;
                let host = registry_key(m);
                Some(Remote {
                    base,
                    repo: reference.path.clone(),
                    token: None,
                    ca_pem: std::fs::read(self.certs_dir.join(&host).join("ca.crt")).ok(),
                    // The operator named it: it may be on their network.
                    egress: None,
                })
            })
            .collect()
    }

    fn base_url(&self, domain: &str) -> String {
        if domain == "docker.io" || domain == "index.docker.io" {
            "https://registry-1.docker.io".into()
        } else if is_loopback(domain) || self.insecure.iter().any(|i| i == domain) {
            format!("http://{domain}")
        } else {
            format!("https://{domain}")
        }
    }
}

impl Engine {
    /// Replaces how this engine reaches registries.
    pub fn set_registry(&self, settings: RegistrySettings) {
        *self.registry.write().unwrap_or_else(|p| p.into_inner()) = settings;
    }

    /// How this engine reaches registries.
    pub fn registry_settings(&self) -> RegistrySettings {
        self.registry
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

fn credentials(headers: &HeaderMap) -> Option<Credentials> {
    headers
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok())
        .and_then(Credentials::from_header)
}

/// What the scope has, named when a registry cannot be reached.
fn classroom_images(ctx: &Ctx) -> String {
    let have: Vec<String> = ctx
        .engine
        .runtime
        .images()
        .list(&ctx.scope.name)
        .map(|l| l.into_iter().flat_map(|i| i.repo_tags).collect())
        .unwrap_or_default();
    if have.is_empty() {
        "none".into()
    } else {
        have.join(", ")
    }
}

/// Docker's words for a failed pull.
fn pull_error(ctx: &Ctx, reference: &Reference, e: ClientError) -> ApiError {
    let code = e.code();
    match (&e, code.as_deref()) {
        (ClientError::Refused { .. }, _) => ApiError::new(StatusCode::FORBIDDEN, e.to_string()),
        (ClientError::Unreachable { .. }, _) => ApiError::internal(format!(
            "{e} (the registry is unreachable; images this classroom has: {})",
            classroom_images(ctx)
        )),
        (_, Some("MANIFEST_UNKNOWN")) => {
            ApiError::not_found(format!("manifest for {} not found: {e}", reference.familiar()))
        }
        (_, Some("NAME_UNKNOWN")) => {
            ApiError::not_found(format!("repository {} not found: {e}", reference.familiar_repo()))
        }
        (_, Some("DENIED" | "UNAUTHORIZED")) | (ClientError::LoginFailed { .. }, _) => ApiError::not_found(format!(
            "pull access denied for {}, repository does not exist or may require 'docker login': {e}",
            reference.familiar_repo()
        )),
        _ => ApiError::internal(e.to_string()),
    }
}

/// One JSON progress line.
async fn send(tx: &Sink, line: Value) {
    let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
    bytes.push(b'\r');
    bytes.push(b'\n');
    let _ = tx.send(bytes.into()).await;
}

/// A streamed JSON progress answer fed by `job`; its error becomes the
/// stream's last line, where the CLI prints it.
fn progress_stream<F, Fut>(job: F) -> super::http::Reply
where
    F: FnOnce(Sink) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), String>> + Send,
{
    let (reply, tx) = stream("application/json");
    tokio::spawn(async move {
        if let Err(message) = job(tx.clone()).await {
            send(
                &tx,
                json!({"errorDetail": {"message": message}, "error": message}),
            )
            .await;
        }
    });
    reply
}

fn status(id: &str, status: &str) -> Value {
    json!({"status": status, "progressDetail": {}, "id": id})
}

/// `units.HumanSize`: decimal units, four significant digits.
fn human(n: u64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i < units.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let digits = if v >= 100.0 {
        1
    } else if v >= 10.0 {
        2
    } else {
        3
    };
    let s = format!("{:.*}", digits, v)
        .trim_end_matches('0')
        .trim_end_matches('.')
        .to_string();
    format!("{s}{}", units[i])
}

fn progress(id: &str, what: &str, current: u64, total: u64) -> Value {
    let pct = if total > 0 {
        ((current as f64 / total as f64) * 50.0) as usize
    } else {
        0
    }
    .min(50);
    let bar = format!(
        "[{}>{}] {:>8}/{}",
        "=".repeat(pct),
        " ".repeat(50 - pct),
        human(current),
        human(total)
    );
    json!({"status": what, "progressDetail": {"current": current, "total": total}, "progress": bar, "id": id})
}

fn short(digest: &str) -> String {
    digest
        .strip_prefix("sha256:")
        .unwrap_or(digest)
        .chars()
        .take(12)
        .collect()
}

/// Sends progress lines at most every 100 ms from a sync callback.
fn throttled(
    tx: Sink,
    id: String,
    what: &'static str,
    total: u64,
) -> Arc<dyn Fn(u64) + Send + Sync> {
    let last = std::sync::Mutex::new(Instant::now() - Duration::from_secs(1));
    Arc::new(move |current| {
        let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
        if last.elapsed() >= Duration::from_millis(100) || current == total {
            *last = Instant::now();
            let mut bytes =
                serde_json::to_vec(&progress(&id, what, current, total)).unwrap_or_default();
            bytes.extend_from_slice(b"\r\n");
            let _ = tx.try_send(bytes.into());
        }
    })
}

/// A manifest's config and layers: `(digest, size)`.
struct ImageManifest {
    config: String,
    layers: Vec<(String, u64)>,
}

fn parse_manifest(bytes: &[u8]) -> Result<ImageManifest, String> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| format!("invalid manifest: {e}"))?;
    if v.get("schemaVersion").and_then(Value::as_i64) == Some(1) {
        return Err("schema 1 manifests are not supported".into());
    }
    let config = v
        .pointer("/config/digest")
        .and_then(Value::as_str)
        .ok_or("manifest has no config")?
        .to_string();
    let layers = v
        .get("layers")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .map(|d| {
                    (
                        d.get("digest")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        d.get("size").and_then(Value::as_u64).unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(ImageManifest { config, layers })
}

/// The platform's entry of an index (`linux/<host arch>`), if `bytes` is one.
fn pick_platform(bytes: &[u8]) -> Option<Result<String, String>> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let list = v.get("manifests")?.as_array()?;
    let arch = crate::image::host_arch();
    let found = list.iter().find(|m| {
        m.pointer("/platform/os").and_then(Value::as_str) == Some("linux")
            && m.pointer("/platform/architecture").and_then(Value::as_str) == Some(arch)
    });
    Some(
        found
            .and_then(|m| m.get("digest").and_then(Value::as_str).map(String::from))
            .ok_or_else(|| {
                format!("no matching manifest for linux/{arch} in the manifest list entries")
            }),
    )
}

/// `POST /images/create?fromImage=&tag=`: pulls from a registry.
pub async fn pull(ctx: &Ctx, headers: &HeaderMap) -> ApiResult {
    let image = ctx.query.get("fromImage").unwrap_or("");
    let tag = ctx.query.get("tag").unwrap_or("");
    let text = if tag.starts_with("sha256:") {
        format!("{image}@{tag}")
    } else if !tag.is_empty() && !image.contains('@') {
        format!("{image}:{tag}")
    } else {
        image.to_string()
    };
    let reference = Reference::parse(&text)?;
    let creds = credentials(headers);
    let job = prepare_pull(&ctx.engine, &ctx.scope.name, &reference, creds.as_ref())
        .await
        .map_err(|e| match e {
            PullError::Api(e) => e,
            PullError::Client(e) => pull_error(ctx, &reference, e),
        })?;
    Ok(progress_stream(move |tx| async move { job.run(&tx).await }))
}

/// `GET /distribution/{name}/json`: the registry's descriptor of `name`
/// and its platforms (the CLI pins a service's image to the digest).
pub async fn inspect(ctx: &Ctx, name: &str, headers: &HeaderMap) -> ApiResult {
    let reference = Reference::parse(name)?;
    let remote = ctx
        .engine
        .registry_settings()
        .remote(&ctx.scope.name, &reference)?;
    let creds = credentials(headers);
    let fail = |e| pull_error(ctx, &reference, e);
    let client = RepoClient::connect(remote, creds.as_ref(), "pull")
        .await
        .map_err(fail)?;
    let wanted = reference
        .digest
        .clone()
        .or(reference.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let top = client.manifest(&wanted).await.map_err(fail)?;
    let v: Value = serde_json::from_slice(&top.bytes).unwrap_or(Value::Null);
    let platforms: Vec<Value> = match v.get("manifests").and_then(Value::as_array) {
        Some(list) => list
            .iter()
            .filter_map(|m| m.get("platform"))
            .map(|p| json!({"architecture": p["architecture"], "os": p["os"]}))
            .collect(),
        None => {
            let parsed = parse_manifest(&top.bytes).map_err(ApiError::internal)?;
            let config = client.blob_bytes(&parsed.config).await.map_err(fail)?;
            let c: Value = serde_json::from_slice(&config).unwrap_or(Value::Null);
            vec![json!({"architecture": c["architecture"], "os": c["os"]})]
        }
    };
    Ok(json(
        StatusCode::OK,
        &json!({
            "Descriptor": {"mediaType": top.media_type, "digest": top.digest, "size": top.bytes.len()},
            "Platforms": platforms,
        }),
    ))
}

enum PullError {
    Api(ApiError),
    Client(ClientError),
}

impl From<ApiError> for PullError {
    fn from(e: ApiError) -> Self {
        PullError::Api(e)
    }
}

impl From<ClientError> for PullError {
    fn from(e: ClientError) -> Self {
        PullError::Client(e)
    }
}

/// Reads `reference`'s manifest and config: what a pull then downloads.
/// Docker Hub's references are asked at the mirrors first, then at Docker
/// Hub when none answers.
async fn prepare_pull(
    engine: &Arc<Engine>,
    scope: &str,
    reference: &Reference,
    creds: Option<&Credentials>,
) -> Result<PullJob, PullError> {
    let settings = engine.registry_settings();
    let direct = settings.remote(scope, reference)?;
    for mirror in settings.mirror_remotes(reference) {
        let base = mirror.base.to_string();
        match resolve_pull(engine, &settings, scope, mirror, reference, creds, false).await {
            Ok(job) => return Ok(job),
            Err(e) => {
                let why = match e {
                    PullError::Api(e) => e.message,
                    PullError::Client(e) => e.to_string(),
                };
                tracing::warn!(mirror = %base, error = %why, "registry mirror failed; asking the registry");
            }
        }
    }
    let classroom = matches!(
        reference.domain.as_str(),
        CLASSROOM_REGISTRY | "registry.local"
    );
    resolve_pull(
        engine, &settings, scope, direct, reference, creds, classroom,
    )
    .await
}

/// A manifest of `key` by digest: the one kept, or fetched (and verified)
/// once however many pulls ask at the same time.
async fn cached_manifest(
    cache: &PullCache,
    client: &RepoClient,
    key: &str,
    digest: &str,
) -> Result<Manifest, ClientError> {
    let lock = cache.doc_lock(key, digest);
    let _held = lock.lock().await;
    if let Some(bytes) = cache.doc(key, digest) {
        return Ok(manifest_of(bytes.to_vec(), digest));
    }
    let m = client.manifest(digest).await?;
    cache.set_doc(key, &m.digest, m.bytes.clone());
    Ok(m)
}

/// A kept manifest with its media type read from its JSON.
fn manifest_of(bytes: Vec<u8>, digest: &str) -> Manifest {
    let media_type = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("mediaType").and_then(Value::as_str).map(String::from))
        .unwrap_or_default();
    Manifest {
        bytes,
        media_type,
        digest: digest.to_string(),
    }
}

async fn resolve_pull(
    engine: &Arc<Engine>,
    settings: &RegistrySettings,
    scope: &str,
    remote: Remote,
    reference: &Reference,
    creds: Option<&Credentials>,
    classroom: bool,
) -> Result<PullJob, PullError> {
    let cache = settings.cache.clone();
    let host = remote.base.host_str().unwrap_or("").to_string();
    let host = match remote.base.port() {
        Some(p) => format!("{host}:{p}"),
        None => host,
    };
    // Who the upstream is asked as: the learner's own login, else the
    // operator's account for that registry, else nobody.
    let operator = if classroom {
        None
    } else {
        settings
            .auth
            .get(&host)
            .or_else(|| settings.auth.get(&reference.domain))
    };
    let who = match (creds, operator, &remote.token) {
        (_, _, Some(token)) => identity("token", token),
        (Some(c), _, _) => identity(
            "login",
            &format!(
                "{}\n{}\n{}\n{}\n{}",
                host, c.username, c.password, c.identity_token, c.registry_token
            ),
        ),
        (None, Some(_), _) => identity("operator", ""),
        (None, None, _) => identity("anonymous", ""),
    };
    let creds = creds.or(operator);
    let client = RepoClient::connect(remote, creds, "pull").await?;
    let key = client.source();
    let wanted = reference
        .digest
        .clone()
        .or(reference.tag.clone())
        .unwrap_or_else(|| "latest".into());
    let top = if reference.digest.is_some() {
        // The repository must let this pull see the digest: a `HEAD`
        // proves it when the manifest is kept.
        if cache.doc(&key, &wanted).is_some()
            && client.head_manifest(&wanted).await?.as_deref() == Some(wanted.as_str())
        {
            cached_manifest(&cache, &client, &key, &wanted).await?
        } else {
            let m = client.manifest(&wanted).await?;
            cache.set_doc(&key, &m.digest, m.bytes.clone());
            m
        }
    } else {
        // A tag resolved under the same identity within the time to live
        // is not asked again (never the classroom registry's: it is here,
        // and its tags change as learners push).
        let known = if classroom {
            None
        } else {
            cache.tag(&who, &key, &wanted)
        };
        let fresh = known.is_some();
        let digest = match known {
            Some(d) => Some(d),
            None => client.head_manifest(&wanted).await?,
        };
        match digest {
            Some(d) => {
                let m = cached_manifest(&cache, &client, &key, &d).await?;
                // Only an upstream answer starts the time to live again.
                if !fresh {
                    cache.set_tag(&who, &key, &wanted, &m.digest);
                }
                m
            }
            None => {
                let m = client.manifest(&wanted).await?;
                cache.set_doc(&key, &m.digest, m.bytes.clone());
                cache.set_tag(&who, &key, &wanted, &m.digest);
                m
            }
        }
    };
    let manifest = match pick_platform(&top.bytes) {
        Some(Ok(child)) => cached_manifest(&cache, &client, &key, &child).await?,
        Some(Err(e)) => return Err(ApiError::not_found(e).into()),
        None => top.clone(),
    };
    let parsed = parse_manifest(&manifest.bytes).map_err(ApiError::internal)?;
    let config = {
        let lock = cache.doc_lock(&key, &parsed.config);
        let _held = lock.lock().await;
        match cache.doc(&key, &parsed.config) {
            Some(c) => c.to_vec(),
            None => {
                let c = client.blob_bytes(&parsed.config).await?;
                cache.set_doc(&key, &parsed.config, c.clone());
                c
            }
        }
    };
    let (image_config, _) = crate::image::parse_config_bytes(&config).map_err(ApiError::from)?;
    let diff_ids: Vec<String> = image_config.rootfs().diff_ids().to_vec();
    if diff_ids.len() != parsed.layers.len() {
        return Err(ApiError::internal(format!(
            "image config has {} layers, its manifest {}",
            diff_ids.len(),
            parsed.layers.len()
        ))
        .into());
    }
    let mut names = Vec::new();
    if reference.digest.is_none() {
        names.push(reference.familiar());
    }
    names.push(format!("{}@{}", reference.familiar_repo(), top.digest));
    Ok(PullJob {
        client,
        cache,
        key,
        store_owner: engine.clone(),
        scope: scope.to_string(),
        path: reference.path.clone(),
        wanted,
        layers: parsed.layers.into_iter().zip(diff_ids).collect(),
        config,
        names,
        shown: reference.familiar(),
        digest: top.digest,
    })
}

/// Pulls `image` into `scope` with no progress shown (a swarm node fetching
/// a task's image). The error in words, for the task's status.
pub async fn pull_quietly(engine: &Arc<Engine>, scope: &str, image: &str) -> Result<(), String> {
    let reference = Reference::parse(image).map_err(|e| e.to_string())?;
    let job = prepare_pull(engine, scope, &reference, None)
        .await
        .map_err(|e| match e {
            PullError::Api(e) => e.message,
            PullError::Client(e) => e.to_string(),
        })?;
    // Progress lines go nowhere; the receiver is dropped at once.
    let (tx, _) = tokio::sync::mpsc::channel(1);
    job.run(&tx).await
}

struct PullJob {
    client: RepoClient,
    cache: Arc<PullCache>,
    /// `host:port/repo`: what the cache knows the repository by.
    key: String,
    store_owner: Arc<Engine>,
    scope: String,
    path: String,
    wanted: String,
    /// `((compressed digest, size), diff ID)`, lowest first.
    layers: Vec<((String, u64), String)>,
    config: Vec<u8>,
    names: Vec<String>,
    shown: String,
    digest: String,
}

impl PullJob {
    fn store(&self) -> &ImageStore {
        self.store_owner.runtime.images()
    }

    /// Whether a layer is here for this pull: stored, and downloaded from
    /// this very repository (which let this pull read its manifest).
    fn have(&self, digest: &str, diff_id: &str) -> bool {
        self.cache.fetched(&self.key, digest) && self.store().has_layer(diff_id)
    }

    /// Downloads, verifies and unpacks one layer, telling followers how far
    /// it got.
    async fn download(
        &self,
        tx: &Sink,
        digest: &str,
        size: u64,
        diff_id: &str,
        guard: &crate::registry::cache::FlightGuard,
    ) -> Result<(), String> {
        let id = short(digest);
        if self.have(digest, diff_id) {
            // Another pull finished it between our look and this flight.
            send(tx, status(&id, "Download complete")).await;
            return Ok(());
        }
        let dest = self.store().download_path();
        let report = throttled(tx.clone(), id.clone(), "Downloading", size);
        let shared = |n: u64| {
            report(n);
            guard.report(Stage::Downloading(n));
        };
        let got = match self.client.download(digest, &dest, &shared).await {
            Ok(g) => g,
            Err(e) => {
                let _ = std::fs::remove_file(&dest);
                return Err(e.to_string());
            }
        };
        send(tx, status(&id, "Verifying Checksum")).await;
        send(tx, status(&id, "Download complete")).await;
        guard.report(Stage::Extracting(got));
        send(tx, progress(&id, "Extracting", got, got)).await;
        let engine = self.store_owner.clone();
        let (d, diff, source) = (
            digest.to_string(),
            diff_id.to_string(),
            self.client.source(),
        );
        tokio::task::spawn_blocking(move || {
            engine
                .runtime
                .images()
                .add_pulled_layer(&dest, &d, &diff, &source)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }

    /// Shows another pull's download of a layer as if it were this one's.
    async fn follow(
        &self,
        tx: &Sink,
        digest: &str,
        size: u64,
        mut rx: tokio::sync::watch::Receiver<Stage>,
    ) -> Result<(), String> {
        let id = short(digest);
        let report = throttled(tx.clone(), id.clone(), "Downloading", size);
        let mut extracting = false;
        loop {
            let stage = rx.borrow_and_update().clone();
            match stage {
                Stage::Downloading(0) => send(tx, status(&id, "Waiting")).await,
                Stage::Downloading(n) => report(n),
                Stage::Extracting(_) | Stage::Done if !extracting => {
                    extracting = true;
                    let got = if let Stage::Extracting(g) = stage {
                        g
                    } else {
                        size
                    };
                    report(got);
                    send(tx, status(&id, "Verifying Checksum")).await;
                    send(tx, status(&id, "Download complete")).await;
                    send(tx, progress(&id, "Extracting", got, got)).await;
                    if stage == Stage::Done {
                        return Ok(());
                    }
                }
                Stage::Extracting(_) => {}
                Stage::Done => return Ok(()),
                Stage::Failed(e) => return Err(e),
            }
            // A leader gone leaves its last word, read on the next turn.
            if rx.changed().await.is_err()
                && !matches!(*rx.borrow(), Stage::Done | Stage::Failed(_))
            {
                return Err("download abandoned".into());
            }
        }
    }

    async fn run(self, tx: &Sink) -> Result<(), String> {
        send(
            tx,
            json!({"status": format!("Pulling from {}", self.path), "id": self.wanted}),
        )
        .await;
        let mut missing = Vec::new();
        for ((digest, size), diff_id) in &self.layers {
            if self.have(digest, diff_id) {
                send(tx, status(&short(digest), "Already exists")).await;
            } else if !missing
                .iter()
                .any(|(_, _, d): &(String, u64, String)| d == diff_id)
            {
                send(tx, status(&short(digest), "Pulling fs layer")).await;
                missing.push((digest.clone(), *size, diff_id.clone()));
            }
        }
        for (digest, size, diff_id) in missing {
            match self.cache.flight(&self.key, &digest) {
                Flight::Lead(guard) => {
                    let done = self.download(tx, &digest, size, &diff_id, &guard).await;
                    guard.report(match &done {
                        Ok(()) => Stage::Done,
                        Err(e) => Stage::Failed(e.clone()),
                    });
                    done?;
                }
                Flight::Follow(rx) => self.follow(tx, &digest, size, rx).await?,
            }
            send(tx, status(&short(&digest), "Pull complete")).await;
        }
        let (_, up_to_date) = self
            .store()
            .add_pulled_image(&self.scope, &self.config, &self.names)
            .map_err(|e| e.to_string())?;
        send(tx, json!({"status": format!("Digest: {}", self.digest)})).await;
        let line = if up_to_date {
            format!("Status: Image is up to date for {}", self.shown)
        } else {
            format!("Status: Downloaded newer image for {}", self.shown)
        };
        send(tx, json!({"status": line})).await;
        Ok(())
    }
}

/// Docker's words for a failed push.
fn push_error(e: ClientError) -> ApiError {
    if let ClientError::Refused { .. } = e {
        return ApiError::new(StatusCode::FORBIDDEN, e.to_string());
    }
    match e.code().as_deref() {
        Some("DENIED") | Some("UNAUTHORIZED") => {
            ApiError::new(StatusCode::FORBIDDEN, e.to_string())
        }
        _ => ApiError::internal(e.to_string()),
    }
}

/// `POST /images/{name}/push?tag=`: pushes one tag, or every tag of the repository.
pub async fn push(ctx: &Ctx, name: &str, headers: &HeaderMap) -> ApiResult {
    let reference = Reference::parse(name)?;
    let repo = reference.familiar_repo();
    let store = ctx.engine.runtime.images();
    let tag = ctx
        .query
        .get("tag")
        .filter(|t| !t.is_empty())
        .map(String::from)
        .or_else(|| {
            // A name that carries its tag (`app:v1`) pushes that tag.
            name.rsplit_once(':')
                .filter(|(_, t)| !t.contains('/'))
                .map(|_| reference.tag.clone().unwrap_or_default())
        });
    let tags: Vec<(String, String)> = match &tag {
        Some(t) => {
            let full = format!("{repo}:{t}");
            match store.resolve_id(&ctx.scope.name, &full) {
                Ok(id) => vec![(t.clone(), id)],
                Err(_) => Vec::new(),
            }
        }
        None => store.repo_tags(&ctx.scope.name, &repo)?,
    };
    if tags.is_empty() {
        let shown = match &tag {
            Some(t) => format!("{repo}:{t}"),
            None => repo.clone(),
        };
        return Err(ApiError::not_found(format!(
            "An image does not exist locally with the tag: {shown}"
        )));
    }
    let remote = ctx
        .engine
        .registry_settings()
        .remote(&ctx.scope.name, &reference)?;
    let creds = credentials(headers);
    let client = RepoClient::connect(remote, creds.as_ref(), "pull,push")
        .await
        .map_err(push_error)?;
    let job = PushJob {
        client,
        engine: ctx.engine.clone(),
        scope: ctx.scope.name.clone(),
        repo,
        tags,
    };
    Ok(progress_stream(move |tx| async move { job.run(&tx).await }))
}

struct PushJob {
    client: RepoClient,
    engine: Arc<Engine>,
    scope: String,
    repo: String,
    tags: Vec<(String, String)>,
}

const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

impl PushJob {
    async fn run(self, tx: &Sink) -> Result<(), String> {
        send(
            tx,
            json!({"status": format!("The push refers to repository [{}]", self.repo)}),
        )
        .await;
        for (tag, id) in &self.tags {
            self.push_one(tx, tag, id).await?;
        }
        Ok(())
    }

    async fn push_one(&self, tx: &Sink, tag: &str, id: &str) -> Result<(), String> {
        let store = self.engine.runtime.images();
        let cache = self.engine.registry_settings().cache;
        let config = store.config_bytes(id).map_err(|e| e.to_string())?;
        let (image_config, _) =
            crate::image::parse_config_bytes(&config).map_err(|e| e.to_string())?;
        let diff_ids: Vec<String> = image_config.rootfs().diff_ids().to_vec();
        for d in diff_ids.iter().rev() {
            send(tx, status(&short(d), "Preparing")).await;
        }
        let mut layers = Vec::new();
        for diff_id in diff_ids.iter().rev() {
            let sid = short(diff_id);
            let engine = self.engine.clone();
            let d = diff_id.clone();
            let layer =
                tokio::task::spawn_blocking(move || engine.runtime.images().compressed_layer(&d))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?;
            let here = self.client.source();
            let exists = self
                .client
                .has_blob(&layer.digest)
                .await
                .map_err(|e| e.to_string())?;
            let mut mounted = None;
            if !exists {
                let (host, repo) = here.split_once('/').unwrap_or(("", ""));
                for from in layer.sources.iter().rev() {
                    let Some((h, r)) = from.split_once('/') else {
                        continue;
                    };
                    if h == host
                        && r != repo
                        && self.client.mount(&layer.digest, r).await.unwrap_or(false)
                    {
                        mounted = Some(r.to_string());
                        break;
                    }
                }
            }
            if exists {
                send(tx, status(&sid, "Layer already exists")).await;
            } else if let Some(from) = mounted {
                send(tx, status(&sid, &format!("Mounted from {from}"))).await;
            } else {
                let report = throttled(tx.clone(), sid.clone(), "Pushing", layer.size);
                self.client
                    .upload(&layer.digest, Upload::File(layer.path.clone()), report)
                    .await
                    .map_err(|e| e.to_string())?;
                send(tx, status(&sid, "Pushed")).await;
            }
            store
                .add_layer_source(diff_id, &here)
                .map_err(|e| e.to_string())?;
            // The repository holds the blob now: a pull of it may use ours.
            cache.mark_fetched(&here, &layer.digest);
            layers.push(layer);
        }
        layers.reverse();
        if !self.client.has_blob(id).await.map_err(|e| e.to_string())? {
            self.client
                .upload(id, Upload::Bytes(config.clone()), Arc::new(|_| {}))
                .await
                .map_err(|e| e.to_string())?;
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": config.len(),
                "digest": id,
            },
            "layers": layers.iter().map(|l| json!({
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": l.size,
                "digest": l.digest,
            })).collect::<Vec<_>>(),
        });
        let bytes = serde_json::to_vec_pretty(&manifest).unwrap_or_default();
        let size = bytes.len();
        let digest = self
            .client
            .put_manifest(tag, bytes, DOCKER_MANIFEST)
            .await
            .map_err(|e| e.to_string())?;
        // A tag pushed through Berth is seen by the next pull at once.
        cache.forget_tags(&self.client.source());
        store
            .add_repo_digest(&self.scope, &format!("{}@{digest}", self.repo), id)
            .map_err(|e| e.to_string())?;
        send(
            tx,
            json!({"status": format!("{tag}: digest: {digest} size: {size}")}),
        )
        .await;
        send(
            tx,
            json!({"progressDetail": {}, "aux": {"Tag": tag, "Digest": digest, "Size": size}}),
        )
        .await;
        Ok(())
    }
}

/// `POST /auth`: checks credentials against a registry (`docker login`).
pub async fn login(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let body = read_body(req.into_body(), 1 << 16).await?;
    let creds: Credentials = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let server = creds.server_address.trim();
    let host = server
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("");
    let host = if host.is_empty() || host == "index.docker.io" {
        "docker.io"
    } else {
        host
    };
    let reference = Reference::parse(&format!("{host}/login-check"))
        .or_else(|_| Reference::parse("login-check"))?;
    let remote = ctx
        .engine
        .registry_settings()
        .remote(&ctx.scope.name, &reference)?;
    match RepoClient::login(remote, &creds).await {
        Ok(()) => Ok(json(
            StatusCode::OK,
            &json!({"Status": "Login Succeeded", "IdentityToken": ""}),
        )),
        Err(e @ ClientError::LoginFailed { .. }) => {
            Err(ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()))
        }
        Err(e @ ClientError::Refused { .. }) => {
            Err(ApiError::new(StatusCode::FORBIDDEN, e.to_string()))
        }
        Err(e) => Err(ApiError::internal(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_docker() {
        assert_eq!(human(0), "0B");
        assert_eq!(human(1_500), "1.5kB");
        assert_eq!(human(52_428_800), "52.43MB");
    }

    #[test]
    fn the_classroom_name_maps_into_the_scope_namespace() {
        let mut s = RegistrySettings {
            classroom: "127.0.0.1:5999".into(),
            ..Default::default()
        };
        s.shared.push("workshop".into());
        let r = |t: &str| s.remote("s1", &Reference::parse(t).unwrap()).unwrap();
        let app = r("registry.local:5000/app:v1");
        assert_eq!(
            (app.base.as_str(), app.repo.as_str()),
            ("http://127.0.0.1:5999/", "s1/app")
        );
        assert_eq!(r("registry.local:5000/workshop/base").repo, "workshop/base");
        assert_eq!(r("localhost:5000/app").base.scheme(), "http");
        assert_eq!(r("ghcr.io/x/y").base.scheme(), "https");
        assert_eq!(r("busybox").base.as_str(), "https://registry-1.docker.io/");
    }
}
