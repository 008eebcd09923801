//! The app preview: a learner's published ports served through a proxy on
//! another origin (its own listener, `--preview-listen`), so a learner's app
//! cannot act as the learner on the classroom's origin.
//!
//! `/s/{session}/{host-port}/{path}` forwards to the container publishing
//! `host-port` in one of the session's node scopes, connecting from the
//! scope's host namespace. The browser's classroom cookie (cookies ignore
//! ports) proves whose session it is; it is never forwarded to the app.
//!
//! Plain requests are one HTTP/1.0 exchange each (this file); requests to
//! switch protocols, WebSocket above all, are passed through ([`upgrade`]).

mod upgrade;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use berth_runtime::container::Runtime;
use berth_runtime::net::Proto;

use crate::classroom::Classroom;
use crate::error::AppError;

/// Largest request body forwarded, and largest answer read back.
const MAX_BODY: usize = 16 << 20;

/// A published port of a session.
#[derive(Debug, Clone)]
pub struct PublishedPort {
    pub node: String,
    pub scope: String,
    pub container: String,
    pub container_port: u16,
    pub host_port: u16,
}

/// The TCP ports published by running containers of `scopes` (node, scope).
pub fn published(runtime: &Runtime, scopes: &[(String, String)]) -> Vec<PublishedPort> {
    let mut out = Vec::new();
    for (node, scope) in scopes {
        for c in runtime.list(scope) {
            let name = c.snapshot().name;
            for p in runtime.net().published(&c.id) {
                if p.port.proto == Proto::Tcp {
                    out.push(PublishedPort {
                        node: node.clone(),
                        scope: scope.clone(),
                        container: name.clone(),
                        container_port: p.port.number,
                        host_port: p.host_port,
                    });
                }
            }
        }
    }
    out.sort_by_key(|p| p.host_port);
    out
}

/// The preview's origin as the learner's browser reaches it: the classroom's
/// host with the preview's port. `None` when there is no preview.
pub fn base_url(c: &Classroom, headers: &HeaderMap) -> Option<String> {
    let listen = c.config.preview_listen?;
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    let name = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    Some(format!("http://{name}:{}", listen.port()))
}

/// The preview's routes.
pub fn router(classroom: Arc<Classroom>) -> Router {
    Router::new()
        .route("/s/{session}/{port}", any(redirect_slash))
        .route("/s/{session}/{port}/", any(forward_root))
        .route("/s/{session}/{port}/{*rest}", any(forward))
        .with_state(classroom)
}

/// Serves the preview on `listener` until `shutdown` resolves.
pub async fn run(
    listener: tokio::net::TcpListener,
    classroom: Arc<Classroom>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(classroom).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

async fn redirect_slash(Path((session, port)): Path<(String, String)>) -> Response {
    axum::response::Redirect::permanent(&format!("/s/{session}/{port}/")).into_response()
}

async fn forward_root(
    State(c): State<Arc<Classroom>>,
    Path((session, port)): Path<(String, u16)>,
    req: Request,
) -> Result<Response, AppError> {
    proxy(c, session, port, String::new(), req).await
}

async fn forward(
    State(c): State<Arc<Classroom>>,
    Path((session, port, rest)): Path<(String, u16, String)>,
    req: Request,
) -> Result<Response, AppError> {
    proxy(c, session, port, rest, req).await
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
    "host",
    "cookie",
    "content-length",
];

async fn proxy(
    c: Arc<Classroom>,
    session: String,
    port: u16,
    rest: String,
    req: Request,
) -> Result<Response, AppError> {
    let headers = req.headers().clone();
    let live = crate::lessons::web::live_of(&c, &headers).ok_or_else(|| {
        AppError::unauthorized("no classroom session: open the classroom in this browser first")
    })?;
    if live.id != session {
        return Err(AppError::new(
            StatusCode::FORBIDDEN,
            "this preview belongs to another session".into(),
        ));
    }
    let lab = live
        .lab()
        .ok_or_else(|| AppError::new(StatusCode::CONFLICT, "the lab is being reset".into()))?;
    let scopes: Vec<(String, String)> = lab
        .session
        .nodes
        .iter()
        .map(|n| (n.name.clone(), n.scope.clone()))
        .collect();
    let runtime = c.sessions.engine.runtime.clone();
    let target = match req.uri().query() {
        Some(q) => format!("/{rest}?{q}"),
        None => format!("/{rest}"),
    };
    live.touch();
    let connect = move || {
        let p = published(&runtime, &scopes)
            .into_iter()
            .find(|p| p.host_port == port)
            .ok_or_else(|| {
                AppError::not_found(format!(
                    "no container of this session publishes port {port}"
                ))
            })?;
        runtime
            .connect_published(&p.scope, &p.container, p.container_port)
            .map_err(|e| AppError::new(StatusCode::BAD_GATEWAY, e.to_string()))
    };
    if upgrade::is_upgrade(&headers) {
        let stream = tokio::task::spawn_blocking(connect)
            .await
            .map_err(AppError::internal)??;
        return upgrade::pass(req, stream, &target, port)
            .await
            .map_err(|e| {
                AppError::new(
                    StatusCode::BAD_GATEWAY,
                    format!("the app did not answer: {e}"),
                )
            });
    }
    let method = req.method().clone();
    let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
        .await
        .map_err(|_| {
            AppError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large for the preview".into(),
            )
        })?;
    let answer = tokio::task::spawn_blocking(move || {
        let stream = connect()?;
        exchange(stream, &method, &target, &headers, &body, port).map_err(|e| {
            AppError::new(
                StatusCode::BAD_GATEWAY,
                format!("the app did not answer: {e}"),
            )
        })
    })
    .await
    .map_err(AppError::internal)??;
    Ok(answer)
}

/// One HTTP/1.0 exchange with the app.
fn exchange(
    mut s: std::net::TcpStream,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    body: &[u8],
    port: u16,
) -> std::io::Result<Response> {
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut req =
        format!("{method} {target} HTTP/1.0\r\nHost: localhost:{port}\r\nConnection: close\r\n");
    for (k, v) in headers {
        if HOP_BY_HOP.contains(&k.as_str()) {
            continue;
        }
        if let Ok(v) = v.to_str() {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.take(MAX_BODY as u64).read_to_end(&mut raw)?;
    let (split, gap) =
        head_end(&raw).ok_or_else(|| std::io::Error::other("no HTTP header in the answer"))?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + gap..].to_vec();
    let mut lines = head.split('\n').map(|l| l.trim_end_matches('\r'));
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("no HTTP status line in the answer"))?;
    let mut r = Response::new(axum::body::Body::from(body));
    *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let k = k.trim().to_ascii_lowercase();
        if HOP_BY_HOP.contains(&k.as_str()) || k == "set-cookie" {
            continue;
        }
        if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::from_str(v.trim())) {
            r.headers_mut().append(k, v);
        }
    }
    Ok(r)
}

/// Where an answer's header ends and how long the blank line is: CGI
/// scripts behind busybox httpd end their header lines with a bare `\n`,
/// as browsers accept.
fn head_end(raw: &[u8]) -> Option<(usize, usize)> {
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = raw.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(c), Some(l)) if l < c => Some((l, 2)),
        (Some(c), _) => Some((c, 4)),
        (None, Some(l)) => Some((l, 2)),
        (None, None) => None,
    }
}

#[cfg(test)]
mod head_tests {
    use super::head_end;

    #[test]
    fn a_header_ends_at_a_crlf_or_a_bare_lf_blank_line() {
        let plain = b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<h1>x</h1>";
        assert_eq!(head_end(plain), Some((40, 4)));
        // busybox httpd's CGI answer: its status line, then the script's LF lines.
        let cgi = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\n\nabc123\n";
        assert_eq!(head_end(cgi), Some((41, 2)));
        assert_eq!(&cgi[41 + 2..], b"abc123\n");
        assert_eq!(head_end(b"HTTP/1.0 200 OK\r\n"), None);
    }
}
