//! Guards in front of every route, as axum middleware:
//! - failed join-code and login attempts are throttled per client address
//!   (a code of six letters from 31 is guessable at full speed; a room of
//!   learners behind one NAT joining with the right code is never slowed,
//!   because only failures count);
//! - a WebSocket upgrade is accepted only from the page's own origin, so a
//!   site a learner visits cannot open their terminal with their cookie.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::ratelimit::RateLimiter;

/// Failed attempts a client address may make per minute.
pub const FAILED_ATTEMPTS_PER_MINUTE: u32 = 20;

/// The guards' state: one per listener.
#[derive(Debug)]
pub struct Guards {
    failures: RateLimiter,
    /// The classroom's public origin's authority (`host:port`) when it is
    /// served behind a proxy under another name.
    base_authority: Option<String>,
}

impl Guards {
    pub fn new(base_url: Option<&str>) -> Arc<Self> {
        Arc::new(Self {
            failures: RateLimiter::new(FAILED_ATTEMPTS_PER_MINUTE),
            base_authority: base_url.and_then(authority).map(str::to_ascii_lowercase),
        })
    }
}

/// `host[:port]` of `scheme://host[:port][/...]`.
fn authority(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let end = rest.find('/').unwrap_or(rest.len());
    Some(&rest[..end]).filter(|a| !a.is_empty())
}

/// Routes where a wrong guess is an attempt at a secret.
fn guessable(method: &Method, path: &str) -> bool {
    (method == Method::POST && (path == "/api/workshops/join" || path == "/api/instructor/login"))
        || (method == Method::GET && path.starts_with("/w/"))
}

fn refused(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "message": message }))).into_response()
}

fn client(req: &Request) -> IpAddr {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// Whether the request's `Origin` (if any) is the page's own: the `Host` it
/// was sent to, or the configured base URL. Clients that are not browsers
/// send no `Origin` and are not at risk of cross-site use.
fn same_origin(headers: &HeaderMap, base: Option<&str>) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Some(from) = origin.to_str().ok().and_then(authority) else {
        return false;
    };
    let from = from.to_ascii_lowercase();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase);
    host.as_deref() == Some(from.as_str()) || base == Some(from.as_str())
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// The middleware: origin check on upgrades, throttling on guessable routes.
pub async fn guard(State(g): State<Arc<Guards>>, req: Request, next: Next) -> Response {
    if is_upgrade(req.headers()) && !same_origin(req.headers(), g.base_authority.as_deref()) {
        let origin = req
            .headers()
            .get(header::ORIGIN)
            .and_then(|o| o.to_str().ok())
            .unwrap_or("")
            .to_string();
        return refused(
            StatusCode::FORBIDDEN,
            format!("cross-origin WebSocket refused: {origin} is not this classroom's origin"),
        );
    }
    if !guessable(req.method(), req.uri().path()) {
        return next.run(req).await;
    }
    let ip = client(&req);
    if let Err(wait) = g.failures.check(ip) {
        let mut r = refused(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed attempts from your address: try again in {wait} s"),
        );
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait.max(1)));
        return r;
    }
    let response = next.run(req).await;
    if matches!(
        response.status(),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::NOT_FOUND
    ) {
        let _ = g.failures.take(ip);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn origins_match_the_host_or_the_base_url() {
        let own = headers(&[
            ("host", "class.example:8080"),
            ("origin", "http://class.example:8080"),
        ]);
        assert!(same_origin(&own, None));
        let other = headers(&[
            ("host", "class.example:8080"),
            ("origin", "https://evil.example"),
        ]);
        assert!(!same_origin(&other, None));
        let proxied = headers(&[
            ("host", "10.0.0.5:8080"),
            ("origin", "https://class.example"),
        ]);
        assert!(same_origin(&proxied, Some("class.example")));
        let null = headers(&[("host", "a"), ("origin", "null")]);
        assert!(!same_origin(&null, None), "an opaque origin is refused");
        assert!(
            same_origin(&headers(&[("host", "a")]), None),
            "no Origin: not a browser"
        );
    }

    #[test]
    fn only_secret_guessing_routes_are_throttled() {
        assert!(guessable(&Method::POST, "/api/workshops/join"));
        assert!(guessable(&Method::POST, "/api/instructor/login"));
        assert!(guessable(&Method::GET, "/w/ABCDEF"));
        assert!(!guessable(&Method::GET, "/api/workshops/join"));
        assert!(!guessable(&Method::POST, "/api/session"));
    }
}
