//! The terminal WebSocket's messages, apart from the transport.
//!
//! Browser → server: JSON text frames ([`ClientMessage`]); a binary frame is
//! raw input bytes (a large paste). Server → browser: binary frames are
//! terminal output; JSON text frames are [`ServerMessage`]s.
//!
//! Flow control: the browser acknowledges output once xterm has drawn it
//! (`ack` with the cumulative byte count, skipped bytes included); the
//! server keeps at most [`WINDOW`] unacknowledged bytes in flight per viewer.

use serde::{Deserialize, Serialize};

/// Unacknowledged output bytes a viewer may have in flight.
pub const WINDOW: u64 = 64 * 1024;
/// Largest output frame.
pub const MAX_FRAME: usize = 16 * 1024;

/// What a browser sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Keystrokes or pasted text (UTF-8).
    Input { data: String },
    /// The terminal's new size.
    Resize { rows: u16, cols: u16 },
    /// Output processed so far on this connection, bytes (skips included).
    Ack { bytes: u64 },
    /// Start a new shell after the old one exited.
    Restart,
    /// Application-level keepalive (the browser cannot send WebSocket pings).
    Ping,
}

/// What the server sends besides output bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// First message: which terminal, how much is replayed, the window.
    Hello {
        node: String,
        replay: u64,
        window: u64,
        read_only: bool,
    },
    /// `bytes` of output were dropped for this viewer (it fell too far behind).
    Skipped {
        bytes: u64,
    },
    /// The shell exited; `restart` starts another.
    Exit {
        code: i32,
    },
    /// A message the server could not use, or a refusal.
    Error {
        message: String,
    },
    Pong,
}

impl ServerMessage {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{\"type\":\"error\"}".into())
    }
}

/// Parses a text frame, with a message fit to send back when it is not one.
pub fn parse(text: &str) -> Result<ClientMessage, String> {
    serde_json::from_str(text).map_err(|e| format!("invalid message: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_named() {
        assert_eq!(
            parse(r#"{"type":"resize","rows":24,"cols":80}"#).unwrap(),
            ClientMessage::Resize { rows: 24, cols: 80 }
        );
        assert_eq!(
            parse(r#"{"type":"input","data":"ls\r"}"#).unwrap(),
            ClientMessage::Input {
                data: "ls\r".into()
            }
        );
        assert!(parse("not json")
            .unwrap_err()
            .starts_with("invalid message"));
        assert!(parse(r#"{"type":"launch_missiles"}"#).is_err());
        assert!(parse(r#"{"type":"resize","rows":-1,"cols":80}"#).is_err());
        assert_eq!(
            ServerMessage::Exit { code: 0 }.to_json(),
            r#"{"type":"exit","code":0}"#
        );
    }
}
