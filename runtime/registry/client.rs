//! The engine's registry client: manifests and blobs of one repository on
//! any Distribution API registry, with Basic or Bearer (Docker Hub's token
//! flow: `401` + `WWW-Authenticate: Bearer realm=…,service=…` → a token from
//! the realm for `repository:<repo>:pull,push`).
//!
//! Errors keep Docker's words: a registry's OCI error is `manifest unknown:
//! manifest unknown`, an unreachable registry is `Get "http://…/v2/": dial
//! tcp …: connect: connection refused`.
//!
//! With an [`Egress`] policy (a classroom's sessions), every request —
//! the registry's own, its token realm's, every redirect hop's, an upload
//! `Location`'s — is checked before it is sent: each `scheme://host:port` gets
//! its own HTTP client pinned to the addresses [`Egress::resolve`] checked
//! (its resolver refuses every other name, proxies are off), and redirects
//! are followed here, hop by hop, rather than by reqwest.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{
    HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, LOCATION, WWW_AUTHENTICATE,
};
use reqwest::{Method, StatusCode, Url};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::net::egress::{Egress, EgressError};

/// Manifest media types the client accepts, preferred first.
pub const MANIFEST_TYPES: &[&str] = &[
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
];

/// Errors talking to a registry.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry could not be reached at all.
    #[error("{method} \"{url}\": {reason}")]
    Unreachable {
        method: String,
        url: String,
        reason: String,
    },
    /// The registry answered with an OCI error (`code` lower-cased with
    /// spaces, as Docker prints it).
    #[error("{code}: {message}")]
    Registry {
        status: u16,
        code: String,
        message: String,
    },
    /// The egress policy refused the address (see [`Egress`]).
    #[error("{method} \"{url}\": {source}")]
    Refused {
        method: String,
        url: String,
        source: EgressError,
    },
    /// Login failed.
    #[error("login attempt to {url} failed with status: {status}")]
    LoginFailed { url: String, status: String },
    /// Content that does not match its digest.
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl ClientError {
    /// The OCI error code (`MANIFEST_UNKNOWN`), if the registry sent one.
    pub fn code(&self) -> Option<String> {
        match self {
            ClientError::Registry { code, .. } => Some(code.to_uppercase().replace(' ', "_")),
            _ => None,
        }
    }
}

/// Credentials from `docker login` (the CLI sends them with each request).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Credentials {
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: String,
    #[serde(default, rename = "identitytoken")]
    pub identity_token: String,
    #[serde(default, rename = "registrytoken")]
    pub registry_token: String,
    #[serde(default, rename = "serveraddress")]
    pub server_address: String,
}

impl Credentials {
    /// Decodes the CLI's `X-Registry-Auth` header (base64url JSON).
    pub fn from_header(value: &str) -> Option<Self> {
        let value = value.trim();
        let engines = [
            &base64::engine::general_purpose::URL_SAFE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            &base64::engine::general_purpose::STANDARD,
        ];
        let bytes = engines.iter().find_map(|e| e.decode(value).ok())?;
        let creds: Credentials = serde_json::from_slice(&bytes).ok()?;
        (!creds.username.is_empty()
            || !creds.registry_token.is_empty()
            || !creds.identity_token.is_empty())
        .then_some(creds)
    }
}

/// Where a repository lives.
#[derive(Debug, Clone)]
pub struct Remote {
    /// `http://127.0.0.1:5000` or `https://registry-1.docker.io`.
    pub base: Url,
    /// The repository's path on that registry (`s1/app`, `library/busybox`).
    pub repo: String,
    /// A bearer token to send as is (the classroom registry's scope token).
    pub token: Option<String>,
    /// Extra trusted CA certificates (PEM).
    pub ca_pem: Option<Vec<u8>>,
    /// Where the client may connect: `None` is anywhere (`berth daemon`,
    /// the classroom registry itself).
    pub egress: Option<Arc<Egress>>,
}

/// A manifest fetched from a registry.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

/// A client for one repository, authenticated once for its actions.
pub struct RepoClient {
    http: Http,
    remote: Remote,
    auth: Option<HeaderValue>,
}

/// The HTTP clients of one [`RepoClient`].
struct Http {
    /// Without a policy: one client, redirects followed by reqwest.
    open: Option<reqwest::Client>,
    /// With a policy: one client per `scheme://host:port`, pinned to the
    /// addresses checked for it.
    pinned: tokio::sync::Mutex<HashMap<String, reqwest::Client>>,
    egress: Option<Arc<Egress>>,
    ca_pem: Option<Vec<u8>>,
}

/// Redirects followed at most, as Go's client.
const MAX_REDIRECTS: usize = 10;

/// The resolver of a pinned client: every name was resolved and checked
/// before the client was made, so any other lookup is refused.
struct NoLookups;

impl reqwest::dns::Resolve for NoLookups {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let name = name.as_str().to_string();
        Box::pin(async move {
            Err::<reqwest::dns::Addrs, _>(
                format!("lookup {name}: not checked by the egress policy").into(),
            )
        })
    }
}

/// Manifests and configs read at most: a registry the learner runs could
/// send JSON without end.
const DOC_LIMIT: usize = 8 << 20;

/// A response body of at most [`DOC_LIMIT`] bytes.
async fn bounded(resp: reqwest::Response, what: &str) -> Result<Vec<u8>, ClientError> {
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ClientError::Invalid(format!("reading {what}: {e}")))?;
        if out.len() + chunk.len() > DOC_LIMIT {
            return Err(ClientError::Invalid(format!(
                "{what} is larger than {DOC_LIMIT} bytes"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `sha256:` and 64 lowercase hex digits.
pub fn is_sha256(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

fn sha256_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Go's way of describing a failed dial, from reqwest's error chain.
fn unreachable(method: &Method, url: &Url, e: &reqwest::Error) -> ClientError {
    let host = url.host_str().unwrap_or("");
    let port = url.port_or_known_default().unwrap_or(0);
    let mut reason = None;
    let mut source: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = source {
        let text = s.to_string();
        if text.contains("dns error") || text.contains("failed to lookup") {
            reason = Some(format!("dial tcp: lookup {host}: no such host"));
            break;
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            reason = Some(match io.kind() {
                std::io::ErrorKind::ConnectionRefused => {
                    format!("dial tcp {host}:{port}: connect: connection refused")
                }
                std::io::ErrorKind::TimedOut => format!("dial tcp {host}:{port}: i/o timeout"),
                _ => format!("dial tcp {host}:{port}: {}", io.to_string().to_lowercase()),
            });
        }
        source = s.source();
    }
    let reason = reason.unwrap_or_else(|| {
        if e.is_timeout() {
            format!("dial tcp {host}:{port}: i/o timeout")
        } else {
            let mut text = e.to_string();
            let mut s = std::error::Error::source(e);
            while let Some(inner) = s {
                text = format!("{text}: {inner}");
                s = inner.source();
            }
            text
        }
    });
    ClientError::Unreachable {
        method: go_method(method),
        url: url.to_string(),
        reason,
    }
}

/// `Get`, `Head`, `Put`: how Go's client names a method in its errors.
fn go_method(method: &Method) -> String {
    let m = method.as_str();
    m.chars().next().map(|c| c.to_string()).unwrap_or_default() + &m[1..].to_lowercase()
}

/// An egress refusal (or failed lookup) of a request, in Go's shape.
fn refused(method: &Method, url: &Url, e: EgressError) -> ClientError {
    match e {
        EgressError::NoSuchHost(_) => ClientError::Unreachable {
            method: go_method(method),
            url: url.to_string(),
            reason: e.to_string(),
        },
        EgressError::Refused { .. } => ClientError::Refused {
            method: go_method(method),
            url: url.to_string(),
            source: e,
        },
    }
}

/// Reads an OCI error body into a [`ClientError::Registry`].
async fn registry_error(resp: reqwest::Response) -> ClientError {
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<OciError>,
    }
    #[derive(Deserialize)]
    struct OciError {
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errors>(&body)
        .ok()
        .and_then(|e| e.errors.into_iter().next())
    {
        Some(e) => ClientError::Registry {
            status: status.as_u16(),
            code: e.code.to_lowercase().replace('_', " "),
            message: e.message,
        },
        None => {
            let (code, message) = match status {
                StatusCode::UNAUTHORIZED => ("unauthorized", "authentication required".to_string()),
                StatusCode::FORBIDDEN => (
                    "denied",
                    "requested access to the resource is denied".to_string(),
                ),
                StatusCode::NOT_FOUND => ("not found", "not found".to_string()),
                _ => ("unknown", format!("unexpected status {status}")),
            };
            ClientError::Registry {
                status: status.as_u16(),
                code: code.into(),
                message,
            }
        }
    }
}

/// `key="value"` pairs of a `WWW-Authenticate` challenge.
fn challenge_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        let Some(eq) = rest.find('=') else { break };
        let key = rest[..eq].trim().to_lowercase();
        rest = &rest[eq + 1..];
        let value;
        if let Some(quoted) = rest.strip_prefix('"') {
            let end = quoted.find('"').unwrap_or(quoted.len());
            value = quoted[..end].to_string();
            rest = quoted.get(end + 1..).unwrap_or("");
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            value = rest[..end].trim().to_string();
            rest = &rest[end..];
        }
        out.push((key, value));
    }
    out
}

impl Http {
    fn new(remote: &Remote) -> Result<Self, ClientError> {
        let open = match &remote.egress {
            Some(_) => None,
            None => Some(
                Self::builder(remote.ca_pem.as_deref())?
                    .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
                    .build()
                    .map_err(|e| ClientError::Invalid(format!("http client: {e}")))?,
            ),
        };
        Ok(Self {
            open,
            pinned: Default::default(),
            egress: remote.egress.clone(),
            ca_pem: remote.ca_pem.clone(),
        })
    }

    fn builder(ca_pem: Option<&[u8]>) -> Result<reqwest::ClientBuilder, ClientError> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .user_agent(concat!("berth/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = ca_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Invalid(format!("registry CA: {e}")))?
            {
                b = b.add_root_certificate(cert);
            }
        }
        Ok(b)
    }

    /// The client for a request to `url`: under a policy, one that
    /// connects only to the addresses checked for its host and port.
    async fn client_for(&self, method: &Method, url: &Url) -> Result<reqwest::Client, ClientError> {
        let Some(egress) = &self.egress else {
            return Ok(self.open.clone().expect("an open client without a policy"));
        };
        let host = url.host_str().unwrap_or("");
        let port = url.port_or_known_default().unwrap_or(0);
        let key = format!("{}://{host}:{port}", url.scheme());
        let mut pinned = self.pinned.lock().await;
        if let Some(c) = pinned.get(&key) {
            return Ok(c.clone());
        }
        let addrs = egress
            .resolve(host, port)
            .await
            .map_err(|e| refused(method, url, e))?;
        let mut b = Self::builder(self.ca_pem.as_deref())?
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(NoLookups));
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.parse::<std::net::IpAddr>().is_err() {
            // The name connects to exactly the addresses checked.
            b = b.resolve_to_addrs(bare, &addrs);
        }
        let client = b
            .build()
            .map_err(|e| ClientError::Invalid(format!("http client: {e}")))?;
        pinned.insert(key, client.clone());
        Ok(client)
    }

    /// Sends a request; under a policy, follows redirects itself so that
    /// each hop is checked like the first.
    async fn execute(
        &self,
        mut method: Method,
        mut url: Url,
        mut headers: HeaderMap,
        mut body: Option<reqwest::Body>,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, ClientError> {
        for _ in 0..=MAX_REDIRECTS {
            let client = self.client_for(&method, &url).await?;
            let mut req = client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(t) = timeout {
                req = req.timeout(t);
            }
            let sent_body = body.is_some();
            if let Some(b) = body.take() {
                req = req.body(b);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| unreachable(&method, &url, &e))?;
            if self.egress.is_none() || !resp.status().is_redirection() || sent_body {
                return Ok(resp);
            }
            let Some(next) = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|l| url.join(l).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https"))
            else {
                return Ok(resp);
            };
            let status = resp.status();
            if (status == StatusCode::SEE_OTHER
                || status == StatusCode::MOVED_PERMANENTLY
                || status == StatusCode::FOUND)
                && method != Method::HEAD
            {
                method = Method::GET;
            }
            if next.origin() != url.origin() {
                // Credentials stay with the host they were meant for.
                headers.remove(AUTHORIZATION);
                headers.remove(reqwest::header::COOKIE);
            }
            url = next;
        }
        Err(ClientError::Unreachable {
            method: go_method(&method),
            url: url.to_string(),
            reason: format!("stopped after {MAX_REDIRECTS} redirects"),
        })
    }
}

impl RepoClient {
    /// Connects and authenticates for `actions` (`pull` or `pull,push`).
    pub async fn connect(
        remote: Remote,
        creds: Option<&Credentials>,
        actions: &str,
    ) -> Result<Self, ClientError> {
        let http = Http::new(&remote)?;
        let mut client = Self {
            http,
            auth: remote
                .token
                .as_ref()
                .and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok()),
            remote,
        };
        let url = client.url("/v2/");
        let resp = client.ping(url.clone()).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            let challenge = resp
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            let scope = format!("repository:{}:{actions}", client.remote.repo);
            client.auth = Some(client.answer(&challenge, creds, &scope, &url).await?);
        } else if !resp.status().is_success() && resp.status() != StatusCode::NOT_FOUND {
            return Err(registry_error(resp).await);
        }
        Ok(client)
    }

    /// Checks credentials against the registry (`docker login`).
    pub async fn login(remote: Remote, creds: &Credentials) -> Result<(), ClientError> {
        let http = Http::new(&remote)?;
        // The classroom registry knows the scope by its token, whatever
        // the learner typed.
        let auth = remote
            .token
            .as_ref()
            .and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok());
        let client = Self { http, auth, remote };
        let url = client.url("/v2/");
        let resp = client.ping(url.clone()).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(());
        }
        let challenge = resp
            .headers()
            .get(WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let auth = client.answer(&challenge, Some(creds), "", &url).await?;
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let resp = client.send(Method::GET, url.clone(), headers).await?;
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(ClientError::LoginFailed {
                url: url.to_string(),
                status: resp.status().to_string(),
            })
        }
    }

    /// The `Authorization` header answering a challenge.
    async fn answer(
        &self,
        challenge: &str,
        creds: Option<&Credentials>,
        scope: &str,
        url: &Url,
    ) -> Result<HeaderValue, ClientError> {
        let basic = |c: &Credentials| {
            let raw = format!("{}:{}", c.username, c.password);
            HeaderValue::from_str(&format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(raw)
            ))
            .ok()
        };
        let unauthorized = || ClientError::Registry {
            status: 401,
            code: "unauthorized".into(),
            message: "authentication required".into(),
        };
        let (kind, params) = challenge.split_once(' ').unwrap_or((challenge, ""));
        if kind.eq_ignore_ascii_case("basic") {
            return creds.and_then(basic).ok_or_else(unauthorized);
        }
        if !kind.eq_ignore_ascii_case("bearer") {
            return Err(unauthorized());
        }
        if let Some(token) = creds.map(|c| &c.registry_token).filter(|t| !t.is_empty()) {
            return HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| unauthorized());
        }
        let params = challenge_params(params);
        let get = |k: &str| {
            params
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        let realm = get("realm").ok_or_else(unauthorized)?;
        let mut realm_url = Url::parse(&realm)
            .map_err(|_| ClientError::Invalid(format!("bad token realm {realm}")))?;
        {
            let mut q = realm_url.query_pairs_mut();
            if let Some(service) = get("service") {
                q.append_pair("service", &service);
            }
            if !scope.is_empty() {
                q.append_pair("scope", scope);
            }
        }
        let mut headers = HeaderMap::new();
        if let Some(b) = creds.filter(|c| !c.username.is_empty()).and_then(basic) {
            headers.insert(AUTHORIZATION, b);
        }
        let resp = self.send(Method::GET, realm_url, headers).await?;
        if !resp.status().is_success() {
            if resp.status() == StatusCode::UNAUTHORIZED {
                return Err(ClientError::LoginFailed {
                    url: url.to_string(),
                    status: resp.status().to_string(),
                });
            }
            return Err(registry_error(resp).await);
        }
        #[derive(Deserialize)]
        struct Token {
            #[serde(default)]
            token: String,
            #[serde(default)]
            access_token: String,
        }
        let body = resp.bytes().await.unwrap_or_default();
        let t: Token = serde_json::from_slice(&body)
            .map_err(|e| ClientError::Invalid(format!("token response: {e}")))?;
        let token = if t.token.is_empty() {
            t.access_token
        } else {
            t.token
        };
        HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| unauthorized())
    }

    /// `GET /v2/`, bounded in time so an offline classroom fails fast
    /// (the connect timeout does not cover name resolution).
    async fn ping(&self, url: Url) -> Result<reqwest::Response, ClientError> {
        let mut headers = HeaderMap::new();
        if let Some(auth) = &self.auth {
            headers.insert(AUTHORIZATION, auth.clone());
        }
        self.http
            .execute(
                Method::GET,
                url,
                headers,
                None,
                Some(Duration::from_secs(15)),
            )
            .await
    }

    fn url(&self, path: &str) -> Url {
        let mut u = self.remote.base.clone();
        u.set_path(path);
        u
    }

    fn repo_url(&self, rest: &str) -> Url {
        self.url(&format!("/v2/{}/{rest}", self.remote.repo))
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        headers: HeaderMap,
    ) -> Result<reqwest::Response, ClientError> {
        self.send_body(method, url, headers, None).await
    }

    async fn send_body(
        &self,
        method: Method,
        url: Url,
        mut headers: HeaderMap,
        body: Option<reqwest::Body>,
    ) -> Result<reqwest::Response, ClientError> {
        if let Some(auth) = &self.auth {
            headers.entry(AUTHORIZATION).or_insert(auth.clone());
        }
        self.http.execute(method, url, headers, body, None).await
    }

    /// The manifest `reference` (a tag or digest) names.
    pub async fn manifest(&self, reference: &str) -> Result<Manifest, ClientError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_str(&MANIFEST_TYPES.join(", ")).expect("ascii"),
        );
        let resp = self
            .send(
                Method::GET,
                self.repo_url(&format!("manifests/{reference}")),
                headers,
            )
            .await?;
        if !resp.status().is_success() {
            return Err(registry_error(resp).await);
        }
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let bytes = bounded(resp, "manifest").await?;
        let digest = sha256_of(&bytes);
        if reference.starts_with("sha256:") && digest != reference {
            return Err(ClientError::Invalid(format!(
                "manifest verification failed for digest {reference}"
            )));
        }
        let media_type = if media_type.is_empty() || media_type == "application/json" {
            serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.get("mediaType")
                        .and_then(|m| m.as_str())
                        .map(String::from)
                })
                .unwrap_or_default()
        } else {
            media_type
        };
        Ok(Manifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// The digest `reference` names, from a `HEAD` (which Docker Hub does
    /// not count against its pull limits); `None` when the registry does not
    /// say (then a `GET` answers, with the registry's error if there is one).
    pub async fn head_manifest(&self, reference: &str) -> Result<Option<String>, ClientError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_str(&MANIFEST_TYPES.join(", ")).expect("ascii"),
        );
        let resp = self
            .send(
                Method::HEAD,
                self.repo_url(&format!("manifests/{reference}")),
                headers,
            )
            .await?;
        if !resp.status().is_success() {
            return Ok(None);
        }
        Ok(resp
            .headers()
            .get("Docker-Content-Digest")
            .and_then(|v| v.to_str().ok())
            .filter(|d| is_sha256(d))
            .map(String::from))
    }

    /// `GET blobs/<digest>`, with the registry's error when it is not there.
    async fn get_blob(&self, digest: &str) -> Result<reqwest::Response, ClientError> {
        let resp = self
            .send(
                Method::GET,
                self.repo_url(&format!("blobs/{digest}")),
                HeaderMap::new(),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(registry_error(resp).await);
        }
        Ok(resp)
    }

    /// A small blob (a config), verified against its digest.
    pub async fn blob_bytes(&self, digest: &str) -> Result<Vec<u8>, ClientError> {
        let resp = self.get_blob(digest).await?;
        let bytes = bounded(resp, &format!("blob {digest}")).await?;
        if sha256_of(&bytes) != digest {
            return Err(ClientError::Invalid(format!(
                "filesystem layer verification failed for digest {digest}"
            )));
        }
        Ok(bytes)
    }

    /// Downloads a blob into `dest`, checking its digest; `progress` gets
    /// the bytes received so far.
    pub async fn download(
        &self,
        digest: &str,
        dest: &Path,
        progress: &(dyn Fn(u64) + Send + Sync),
    ) -> Result<u64, ClientError> {
        let resp = self.get_blob(digest).await?;
        let io = |context: &str| {
            let context = context.to_string();
            move |source| ClientError::Io { context, source }
        };
        let file = tokio::fs::File::create(dest)
            .await
            .map_err(io("create download"))?;
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut hash = Sha256::new();
        let mut got = 0u64;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|e| ClientError::Invalid(format!("downloading {digest}: {e}")))?;
            hash.update(&chunk);
            out.write_all(&chunk).await.map_err(io("write download"))?;
            got += chunk.len() as u64;
            progress(got);
        }
        out.flush().await.map_err(io("write download"))?;
        let actual = format!("sha256:{}", hex::encode(hash.finalize()));
        if actual != digest {
            let _ = tokio::fs::remove_file(dest).await;
            return Err(ClientError::Invalid(format!(
                "filesystem layer verification failed for digest {digest}"
            )));
        }
        Ok(got)
    }

    /// `host:port/repo`: where this client pushes and pulls.
    pub fn source(&self) -> String {
        format!(
            "{}{}/{}",
            self.remote.base.host_str().unwrap_or(""),
            self.remote
                .base
                .port()
                .map(|p| format!(":{p}"))
                .unwrap_or_default(),
            self.remote.repo
        )
    }

    /// Asks the registry to mount a blob from repository `from` of the same
    /// registry; `false` when it would rather have an upload.
    pub async fn mount(&self, digest: &str, from: &str) -> Result<bool, ClientError> {
        let mut url = self.repo_url("blobs/uploads/");
        url.query_pairs_mut()
            .append_pair("mount", digest)
            .append_pair("from", from);
        let resp = self.send(Method::POST, url, HeaderMap::new()).await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(true);
        }
        // An upload was started instead: cancel it.
        if let Some(location) = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()) {
            if let Ok(u) = self.remote.base.join(location) {
                let _ = self.send(Method::DELETE, u, HeaderMap::new()).await;
            }
        }
        Ok(false)
    }

    /// Whether the registry has the blob in this repository.
    pub async fn has_blob(&self, digest: &str) -> Result<bool, ClientError> {
        let resp = self
            .send(
                Method::HEAD,
                self.repo_url(&format!("blobs/{digest}")),
                HeaderMap::new(),
            )
            .await?;
        match resp.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(registry_error(resp).await),
        }
    }

    /// Uploads a blob: `POST` an upload, then `PUT` the content with its digest.
    pub async fn upload(
        &self,
        digest: &str,
        source: Upload,
        progress: Arc<dyn Fn(u64) + Send + Sync>,
    ) -> Result<(), ClientError> {
        let resp = self
            .send(
                Method::POST,
                self.repo_url("blobs/uploads/"),
                HeaderMap::new(),
            )
            .await?;
        if resp.status() != StatusCode::ACCEPTED && !resp.status().is_success() {
            return Err(registry_error(resp).await);
        }
        let location = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| ClientError::Invalid("upload has no Location".into()))?
            .to_string();
        let mut url =
            self.remote.base.join(&location).map_err(|e| {
                ClientError::Invalid(format!("bad upload location {location}: {e}"))
            })?;
        url.query_pairs_mut().append_pair("digest", digest);
        let (body, len) = match source {
            Upload::Bytes(b) => {
                let len = b.len() as u64;
                (reqwest::Body::from(b), len)
            }
            Upload::File(path) => {
                let file =
                    tokio::fs::File::open(&path)
                        .await
                        .map_err(|source| ClientError::Io {
                            context: format!("open {}", path.display()),
                            source,
                        })?;
                let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
                let mut sent = 0u64;
                let stream =
                    tokio_util::io::ReaderStream::with_capacity(file, 1 << 18).map(move |chunk| {
                        if let Ok(c) = &chunk {
                            sent += c.len() as u64;
                            progress(sent);
                        }
                        chunk
                    });
                (reqwest::Body::wrap_stream(stream), len)
            }
        };
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        headers.insert(reqwest::header::CONTENT_LENGTH, HeaderValue::from(len));
        let resp = self
            .send_body(Method::PUT, url, headers, Some(body))
            .await?;
        if !resp.status().is_success() {
            return Err(registry_error(resp).await);
        }
        Ok(())
    }

    /// Puts a manifest under `reference` (a tag); returns its digest.
    pub async fn put_manifest(
        &self,
        reference: &str,
        bytes: Vec<u8>,
        media_type: &str,
    ) -> Result<String, ClientError> {
        let digest = sha256_of(&bytes);
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(media_type)
                .map_err(|_| ClientError::Invalid("bad media type".into()))?,
        );
        let resp = self
            .send_body(
                Method::PUT,
                self.repo_url(&format!("manifests/{reference}")),
                headers,
                Some(reqwest::Body::from(Bytes::from(bytes))),
            )
            .await?;
        if !resp.status().is_success() {
            return Err(registry_error(resp).await);
        }
        Ok(digest)
    }
}

/// What an upload sends.
pub enum Upload {
    Bytes(Vec<u8>),
    File(std::path::PathBuf),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_parse_with_commas_in_quotes() {
        let p = challenge_params(
            r#"realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a:pull,push""#,
        );
        assert_eq!(
            p[0],
            ("realm".into(), "https://auth.docker.io/token".into())
        );
        assert_eq!(p[1], ("service".into(), "registry.docker.io".into()));
        assert_eq!(p[2], ("scope".into(), "repository:a:pull,push".into()));
    }

    /// A loopback HTTP server answering every request with `answer`;
    /// counts the connections it gets.
    async fn server(answer: String) -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let contacts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = contacts.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let answer = answer.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let _ = s.write_all(answer.as_bytes()).await;
                });
            }
        });
        (port, contacts)
    }

    fn remote(port: u16, egress: Option<Egress>) -> Remote {
        Remote {
            base: format!("http://127.0.0.1:{port}").parse().unwrap(),
            repo: "x".into(),
            token: None,
            ca_pem: None,
            egress: egress.map(Arc::new),
        }
    }

    #[tokio::test]
    async fn token_realms_and_redirects_are_checked_like_the_registry() {
        let (target, contacts) =
            server("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".into()).await;
        // A registry the operator allowed, whose realm is the host's loopback.
        let (realm_reg, _) = server(format!(
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{target}/token\",service=\"x\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ))
        .await;
        let allow = |port: u16| Some(Egress::new([format!("127.0.0.1:{port}")]));
        let e = RepoClient::connect(remote(realm_reg, allow(realm_reg)), None, "pull")
            .await
            .err()
            .expect("a refused realm");
        assert!(matches!(e, ClientError::Refused { .. }), "{e}");
        assert!(
            e.to_string()
                .starts_with(&format!("Get \"http://127.0.0.1:{target}/token?"))
                && e.to_string()
                    .contains("refused: 127.0.0.1 is an address of the Berth host"),
            "{e}"
        );
        // A registry redirecting to the cloud's metadata service.
        let (redirect_reg, _) = server(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                .into(),
        )
        .await;
        let e = RepoClient::connect(remote(redirect_reg, allow(redirect_reg)), None, "pull")
            .await
            .err()
            .expect("a refused redirect");
        assert!(
            e.to_string()
                .contains("169.254.169.254 is a link-local address"),
            "{e}"
        );
        // And a redirect back to the host's loopback.
        let (loop_reg, _) = server(format!(
            "HTTP/1.1 302 Found\r\nLocation: http://localhost:{target}/v2/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        ))
        .await;
        let e = RepoClient::connect(remote(loop_reg, allow(loop_reg)), None, "pull")
            .await
            .err()
            .expect("a refused redirect");
        assert!(matches!(e, ClientError::Refused { .. }), "{e}");
        assert_eq!(contacts.load(std::sync::atomic::Ordering::SeqCst), 0);
        // Without a policy (`berth daemon`) the realm is asked, as dockerd would.
        let _ = RepoClient::connect(remote(realm_reg, None), None, "pull").await;
        assert_eq!(contacts.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn registry_auth_header_decodes() {
        let json = r#"{"username":"u","password":"p","serveraddress":"localhost:5000"}"#;
        let header = base64::engine::general_purpose::URL_SAFE.encode(json);
        let c = Credentials::from_header(&header).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        assert!(
            Credentials::from_header(&base64::engine::general_purpose::URL_SAFE.encode("{}"))
                .is_none()
        );
    }
}
