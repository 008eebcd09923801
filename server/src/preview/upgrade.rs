//! WebSocket (and any other `Upgrade`) through the preview: the request is
//! passed to the app as is (less the classroom's cookie); when the app
//! answers `101 Switching Protocols` the browser gets that answer and both
//! connections are joined byte for byte until either side closes.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Headers never passed on: the classroom's cookie, and what belongs to
/// the browser's connection to the preview alone.
const DROPPED: &[&str] = &[
    "cookie",
    "host",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "content-length",
];

/// Largest answer head read from the app.
const MAX_HEAD: usize = 64 << 10;

/// Whether `headers` ask to switch protocols.
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

/// The request as the app is sent it.
fn request_head(req: &Request, target: &str, port: u16) -> String {
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nHost: localhost:{port}\r\n",
        req.method()
    );
    for (k, v) in req.headers() {
        if DROPPED.contains(&k.as_str()) {
            continue;
        }
        if let Ok(v) = v.to_str() {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    head
}

/// Reads the app's answer head; the head and any bytes after it.
async fn read_head(app: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&buf[..end]).into_owned(), rest));
        }
        if buf.len() > MAX_HEAD {
            return Err(std::io::Error::other("the answer's head is too large"));
        }
        let n = app.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::other("the app closed the connection"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Sends `req` to the app on `app` and answers with what it says; on `101`
/// joins the browser's upgraded connection to the app's.
pub async fn pass(
    mut req: Request,
    app: std::net::TcpStream,
    target: &str,
    port: u16,
) -> std::io::Result<Response> {
    app.set_nonblocking(true)?;
    let mut app = TcpStream::from_std(app)?;
    let _ = app.set_nodelay(true);
    let head = request_head(&req, target, port);
    tokio::time::timeout(Duration::from_secs(30), async {
        app.write_all(head.as_bytes()).await?;
        read_head(&mut app).await
    })
    .await
    .map_err(|_| std::io::Error::other("the app did not answer in 30 s"))?
    .map(|(answer, early)| {
        let mut lines = answer.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse::<u16>().ok())
            .and_then(|c| StatusCode::from_u16(c).ok())
            .unwrap_or(StatusCode::BAD_GATEWAY);
        let mut r = Response::new(Body::empty());
        *r.status_mut() = status;
        for line in lines {
            let Some((k, v)) = line.split_once(':') else {
                continue;
            };
            let k = k.trim().to_ascii_lowercase();
            if k == "set-cookie" || (status != StatusCode::SWITCHING_PROTOCOLS && k == "connection")
            {
                continue;
            }
            if let (Ok(k), Ok(v)) = (HeaderName::try_from(k), HeaderValue::from_str(v.trim())) {
                r.headers_mut().append(k, v);
            }
        }
        if status == StatusCode::SWITCHING_PROTOCOLS {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                let Ok(browser) = upgrade.await else {
                    return;
                };
                let mut browser = TokioIo::new(browser);
                if !early.is_empty() && browser.write_all(&early).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut browser, &mut app).await;
            });
        } else {
            // Not switching: the app's answer is whatever it sent, up to
            // its close (a refused upgrade is short).
            *r.body_mut() = Body::from_stream(futures_util::stream::once(async move {
                let mut body = early;
                let _ = tokio::time::timeout(
                    Duration::from_secs(30),
                    (&mut app).take(16 << 20).read_to_end(&mut body),
                )
                .await;
                Ok::<_, std::io::Error>(body)
            }));
            r.headers_mut().remove(header::CONTENT_LENGTH);
            r.headers_mut().remove(header::TRANSFER_ENCODING);
        }
        r
    })
}
