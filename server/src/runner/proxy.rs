//! A terminal WebSocket carried from the learner's browser through the
//! front to the session's runner. The messages pass unchanged (the typed
//! terminal protocol of [`crate::terminal::protocol`] is the runner's to
//! speak); the front only adds the runner secret and restarts the
//! learner's idle timer when they type.

use std::sync::Arc;

use axum::extract::ws::{self, WebSocket};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self as tung, Message};

use super::pool::RunnerPool;

/// Connects to the runner's terminal at `url`; the error's text when it
/// cannot (the runner is down, the session or node is gone).
pub async fn connect(
    pool: &RunnerPool,
    url: &str,
) -> Result<
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    String,
> {
    let mut request = url.into_client_request().map_err(|e| e.to_string())?;
    request.headers_mut().insert(
        super::auth::HEADER,
        pool.secret()
            .header_value()
            .parse()
            .map_err(|_| "the runner secret is not a valid header".to_string())?,
    );
    let config = tung::protocol::WebSocketConfig::default()
        .max_message_size(Some(1 << 20))
        .max_frame_size(Some(1 << 20));
    let (stream, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
        .await
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Relays between the browser's `socket` and the runner's `upstream`
/// until either closes; `typed` runs on each message from the browser.
pub async fn relay(
    socket: WebSocket,
    upstream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    typed: Arc<dyn Fn() + Send + Sync>,
) {
    let (mut btx, mut brx) = socket.split();
    let (mut utx, mut urx) = upstream.split();
    let up = async {
        while let Some(Ok(m)) = brx.next().await {
            let out = match m {
                ws::Message::Text(t) => {
                    typed();
                    Message::Text(t.as_str().into())
                }
                ws::Message::Binary(b) => {
                    typed();
                    Message::Binary(b)
                }
                ws::Message::Ping(p) => Message::Ping(p),
                ws::Message::Pong(p) => Message::Pong(p),
                ws::Message::Close(_) => break,
            };
            if utx.send(out).await.is_err() {
                break;
            }
        }
        let _ = utx.send(Message::Close(None)).await;
    };
    let down = async {
        while let Some(Ok(m)) = urx.next().await {
            let out = match m {
                Message::Text(t) => ws::Message::Text(t.as_str().into()),
                Message::Binary(b) => ws::Message::Binary(b),
                Message::Ping(p) => ws::Message::Ping(p),
                Message::Pong(p) => ws::Message::Pong(p),
                Message::Close(c) => {
                    let _ = btx
                        .send(ws::Message::Close(c.map(|c| ws::CloseFrame {
                            code: c.code.into(),
                            reason: c.reason.as_str().into(),
                        })))
                        .await;
                    return;
                }
                Message::Frame(_) => continue,
            };
            if btx.send(out).await.is_err() {
                return;
            }
        }
        // The runner went away without a close: tell the browser.
        let _ = btx
            .send(ws::Message::Close(Some(ws::CloseFrame {
                code: 1011,
                reason: "the lab's runner went away".into(),
            })))
            .await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}
