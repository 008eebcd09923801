//! One viewer's WebSocket: replay, then follow the output within the
//! window, pass input and resizes on, keep the connection alive.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{SinkExt, StreamExt};

use super::protocol::{self, ClientMessage, ServerMessage, MAX_FRAME, WINDOW};
use super::Terminal;

/// How often the server pings; a viewer silent for three periods is gone.
pub const PING_EVERY: Duration = Duration::from_secs(15);

/// What a viewer may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Types and resizes.
    Write,
    /// Watches only (an instructor looking over a shoulder, a projector).
    ReadOnly,
}

/// What a viewer's socket reports back to its session.
pub trait Activity: Send + Sync {
    /// The learner typed (the idle timer restarts).
    fn touched(&self);
    /// The shell exited and the viewer asks for another.
    fn restart(&self) -> futures_util::future::BoxFuture<'static, Option<Arc<Terminal>>>;
}

/// Serves one viewer of `term` until the socket closes.
pub async fn serve(
    mut term: Arc<Terminal>,
    socket: WebSocket,
    access: Access,
    activity: Arc<dyn Activity>,
) {
    let (mut tx, mut rx) = socket.split();
    // This viewer's size. With several viewers of different sizes (a second
    // tab, the instructor helping), the one that types gets its size back
    // first, so the shell wraps where that viewer's xterm does.
    let mut size: Option<(u16, u16)> = None;
    'terminal: loop {
        let (viewer, start) = term.join();
        let _joined = Joined {
            term: term.clone(),
            viewer,
        };
        let mut output = term.output.subscribe();
        let hello = ServerMessage::Hello {
            node: term.node.clone(),
            replay: term.span().1 - start,
            window: WINDOW,
            read_only: access == Access::ReadOnly,
        };
        if tx
            .send(Message::Text(hello.to_json().into()))
            .await
            .is_err()
        {
            return;
        }
        // Offsets: `sent` is the next byte to send; `base` maps the
        // viewer's cumulative ack count onto offsets.
        let base = start;
        let mut sent = start;
        let mut acked = start;
        let mut exit_sent = false;
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.tick().await;
        let mut silent_pings = 0u32;
        let outcome: Option<Arc<Terminal>> = loop {
            // Send what the window allows.
            while sent - acked < WINDOW {
                let (chunk, skipped, end) = {
                    let s = term.lock();
                    let skipped = s.ring.start().saturating_sub(sent);
                    let from = sent + skipped;
                    let room = (WINDOW - (sent - acked)) as usize;
                    (
                        s.ring.read(from, room.min(MAX_FRAME)),
                        skipped,
                        s.ring.end(),
                    )
                };
                if skipped > 0 {
                    sent += skipped;
                    let m = ServerMessage::Skipped { bytes: skipped };
                    if tx.send(Message::Text(m.to_json().into())).await.is_err() {
                        break 'terminal;
                    }
                }
                if chunk.is_empty() {
                    let _ = end;
                    break;
                }
                sent += chunk.len() as u64;
                if tx.send(Message::Binary(chunk.into())).await.is_err() {
                    break 'terminal;
                }
            }
            if !exit_sent && sent >= term.span().1 {
                if let Some(code) = term.exit_code() {
                    exit_sent = true;
                    let m = ServerMessage::Exit { code };
                    if tx.send(Message::Text(m.to_json().into())).await.is_err() {
                        break 'terminal;
                    }
                }
            }
            tokio::select! {
                changed = output.changed(), if sent - acked < WINDOW => {
                    if changed.is_err() { break None; }
                }
                _ = ping.tick() => {
                    silent_pings += 1;
                    if silent_pings > 3 {
                        break 'terminal;
                    }
                    if tx.send(Message::Ping(Vec::new().into())).await.is_err() {
                        break 'terminal;
                    }
                }
                msg = rx.next() => {
                    let Some(Ok(msg)) = msg else { break 'terminal };
                    silent_pings = 0;
                    let reply = match msg {
                        Message::Text(text) => match protocol::parse(&text) {
                            Ok(ClientMessage::Ack { bytes }) => {
                                acked = (base + bytes).min(sent).max(acked);
                                term.ack(viewer, acked);
                                None
                            }
                            Ok(ClientMessage::Ping) => Some(ServerMessage::Pong),
                            Ok(ClientMessage::Input { data }) => write(&term, access, &*activity, size, data.into_bytes()),
                            Ok(ClientMessage::Resize { rows, cols }) => {
                                if access == Access::Write && rows > 0 && cols > 0 {
                                    size = Some((rows, cols));
                                    term.resize(rows, cols);
                                }
                                None
                            }
                            Ok(ClientMessage::Restart) => {
                                if access == Access::ReadOnly {
                                    Some(ServerMessage::Error { message: "this terminal is read-only".into() })
                                } else if term.exit_code().is_none() {
                                    Some(ServerMessage::Error { message: "the shell is still running".into() })
                                } else {
                                    match activity.restart().await {
                                        Some(t) => break Some(t),
                                        None => Some(ServerMessage::Error { message: "could not start a new shell".into() }),
                                    }
                                }
                            }
                            Err(message) => Some(ServerMessage::Error { message }),
                        },
                        Message::Binary(data) => write(&term, access, &*activity, size, data.to_vec()),
                        Message::Close(_) => break 'terminal,
                        Message::Ping(_) | Message::Pong(_) => None,
                    };
                    if let Some(m) = reply {
                        if tx.send(Message::Text(m.to_json().into())).await.is_err() {
                            break 'terminal;
                        }
                    }
                }
            }
        };
        drop(_joined);
        match outcome {
            Some(next) => term = next,
            None => break,
        }
    }
    let _ = tx
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: "".into(),
        })))
        .await;
}

/// Leaves the terminal however the loop ends.
struct Joined {
    term: Arc<Terminal>,
    viewer: u64,
}

impl Drop for Joined {
    fn drop(&mut self) {
        self.term.leave(self.viewer);
    }
}

fn write(
    term: &Terminal,
    access: Access,
    activity: &dyn Activity,
    size: Option<(u16, u16)>,
    data: Vec<u8>,
) -> Option<ServerMessage> {
    if access == Access::ReadOnly {
        return Some(ServerMessage::Error {
            message: "this terminal is read-only".into(),
        });
    }
    activity.touched();
    if let Some((rows, cols)) = size {
        term.resize(rows, cols);
    }
    if term.input(data) {
        None
    } else {
        Some(ServerMessage::Error {
            message: "input dropped: the shell is not reading".into(),
        })
    }
}
