//! The control socket of a running container's monitor (`attach.sock` in the
//! container's directory): clients attach to its stdio or resize its terminal.
//!
//! A client connects, writes one JSON [`ControlRequest`] line, and then, for
//! an attach, reads the container's output and writes its input. Without a
//! terminal the output is framed as Docker multiplexes it (an 8-byte header:
//! stream 1 or 2, three zero bytes, big-endian length); with a terminal it is
//! the raw byte stream.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The socket's name inside the container directory.
pub const SOCKET_NAME: &str = "attach.sock";

/// What a client asks of the monitor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Stream output and/or accept input.
    Attach {
        stdin: bool,
        stdout: bool,
        stderr: bool,
        /// Close the container's stdin when this client's input ends.
        close_stdin: bool,
    },
    /// Set the terminal's window size.
    Resize { rows: u16, cols: u16 },
}

/// Stream numbers in Docker's multiplexed framing.
pub const STDOUT: u8 = 1;
pub const STDERR: u8 = 2;

/// One frame of Docker's multiplexed stream.
pub fn frame(stream: u8, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + data.len());
    out.extend_from_slice(&[stream, 0, 0, 0]);
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// Splits complete frames off the front of `buf`: (stream, payload) pairs.
pub fn split_frames(buf: &mut Vec<u8>) -> Vec<(u8, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut start = 0;
    while buf.len() - start >= 8 {
        let len =
            u32::from_be_bytes(buf[start + 4..start + 8].try_into().expect("4 bytes")) as usize;
        if buf.len() - start - 8 < len {
            break;
        }
        frames.push((buf[start], buf[start + 8..start + 8 + len].to_vec()));
        start += 8 + len;
    }
    buf.drain(..start);
    frames
}

/// The control socket of the container in `dir`.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(SOCKET_NAME)
}

/// Connects to the control socket in `dir` (whose path may be longer than a
/// socket address allows: the connection goes through an fd of the directory).
pub fn connect(dir: &Path, request: &ControlRequest) -> io::Result<UnixStream> {
    let dir_fd = std::fs::File::open(dir)?;
    use std::os::fd::AsRawFd;
    let short = format!("/proc/self/fd/{}/{SOCKET_NAME}", dir_fd.as_raw_fd());
    let mut stream = UnixStream::connect(short)?;
    let mut line = serde_json::to_vec(request).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_wait_for_whole_payloads() {
        let mut buf = frame(STDOUT, b"hello");
        buf.extend(frame(STDERR, b"oops"));
        let mut partial = buf.split_off(buf.len() - 2);
        let frames = split_frames(&mut buf);
        assert_eq!(frames, vec![(STDOUT, b"hello".to_vec())]);
        buf.append(&mut partial);
        assert_eq!(split_frames(&mut buf), vec![(STDERR, b"oops".to_vec())]);
        assert!(buf.is_empty());
        assert_eq!(&frame(STDERR, b"ab")[..8], &[2, 0, 0, 0, 0, 0, 0, 2]);
    }
}
