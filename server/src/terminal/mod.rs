//! A node's terminal: the shell's pty, read by one pump task into a ring of
//! recent output that any number of viewers (WebSockets) follow.
//!
//! - [`protocol`]: the typed messages on the socket.
//! - [`ring`]: recent output by absolute offset (replay on reconnect).
//! - [`socket`]: one viewer's WebSocket loop.
//!
//! Flow control: the pump reads the pty only while some viewer has room in
//! its window (or, with no viewer, until a ring's worth has piled up), so a
//! `yes` flood is paced by the browser that shows it and server memory stays
//! bounded (the ring, one frame per viewer, a bounded input queue). A viewer
//! that cannot keep up while another can is skipped ahead with a notice.

pub mod protocol;
pub mod ring;
pub mod socket;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use berth_runtime::container::ExecProcess;
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, watch};

use protocol::WINDOW;
use ring::Ring;

/// Output kept for replay.
pub const RING_BYTES: usize = 256 * 1024;
/// Input bytes queued for a shell that is not reading.
const INPUT_QUEUE: usize = 64 * 1024;

/// What viewers ask of the pump.
#[derive(Debug)]
enum Command {
    Input(Vec<u8>),
    Resize(u16, u16),
}

#[derive(Debug)]
struct State {
    ring: Ring,
    exit: Option<i32>,
    /// Viewer → offset it acknowledged.
    viewers: HashMap<u64, u64>,
    next_viewer: u64,
    /// `ring.end()` when the last viewer left.
    idle_mark: u64,
    /// The size last asked of the pty (rows, cols), once a viewer asked.
    size: Option<(u16, u16)>,
}

/// One shell on a terminal and its viewers.
#[derive(Debug)]
pub struct Terminal {
    pub node: String,
    state: Mutex<State>,
    /// Bumped when output arrives or the shell exits.
    output: watch::Sender<u64>,
    /// Bumped when a viewer acknowledges, joins or leaves.
    demand: watch::Sender<u64>,
    commands: mpsc::Sender<Command>,
}

impl Terminal {
    /// Takes over a shell started with a terminal and starts its pump.
    pub fn spawn(node: &str, mut process: ExecProcess) -> std::io::Result<Arc<Self>> {
        let pty = process
            .terminal
            .take()
            .ok_or_else(|| std::io::Error::other("the shell has no terminal"))?;
        set_nonblocking(&pty)?;
        // `AsyncFd::new` is deprecated for types that do not own their fd;
        // a `File` owns it, and the safe constructor is all we may use here.
        #[allow(deprecated)]
        let pty = AsyncFd::new(pty)?;
        let (commands, rx) = mpsc::channel(256);
        let term = Arc::new(Self {
            node: node.to_string(),
            state: Mutex::new(State {
                ring: Ring::new(RING_BYTES),
                exit: None,
                viewers: HashMap::new(),
                next_viewer: 0,
                idle_mark: 0,
                size: None,
            }),
            output: watch::channel(0).0,
            demand: watch::channel(0).0,
            commands,
        });
        tokio::spawn(pump(term.clone(), pty, process, rx));
        Ok(term)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The shell's exit code once it has exited.
    pub fn exit_code(&self) -> Option<i32> {
        self.lock().exit
    }

    /// Output offsets held: (oldest, newest+1).
    pub fn span(&self) -> (u64, u64) {
        let s = self.lock();
        (s.ring.start(), s.ring.end())
    }

    /// Shows a notice from the classroom in the terminal (all viewers).
    pub fn notice(&self, text: &str) {
        let end = {
            let mut s = self.lock();
            s.ring
                .push(format!("\r\n\x1b[1;33m[berth] {text}\x1b[0m\r\n").as_bytes());
            s.ring.end()
        };
        self.output.send_replace(end);
    }

    /// Queues input for the shell; `false` when the queue is full.
    pub fn input(&self, data: Vec<u8>) -> bool {
        self.commands.try_send(Command::Input(data)).is_ok()
    }

    /// Sizes the pty (when that is not its size already).
    pub fn resize(&self, rows: u16, cols: u16) {
        let mut s = self.lock();
        if s.size == Some((rows, cols)) {
            return;
        }
        if self.commands.try_send(Command::Resize(rows, cols)).is_ok() {
            s.size = Some((rows, cols));
        }
    }

    /// Registers a viewer; it starts at the oldest byte held (replay).
    fn join(&self) -> (u64, u64) {
        let mut s = self.lock();
        let id = s.next_viewer;
        s.next_viewer += 1;
        let start = s.ring.start();
        s.viewers.insert(id, start);
        drop(s);
        self.demand.send_modify(|v| *v += 1);
        (id, start)
    }

    fn ack(&self, viewer: u64, offset: u64) {
        if let Some(a) = self.lock().viewers.get_mut(&viewer) {
            *a = (*a).max(offset);
        }
        self.demand.send_modify(|v| *v += 1);
    }

    fn leave(&self, viewer: u64) {
        let mut s = self.lock();
        s.viewers.remove(&viewer);
        if s.viewers.is_empty() {
            s.idle_mark = s.ring.end();
        }
        drop(s);
        self.demand.send_modify(|v| *v += 1);
    }

    /// Whether the pump should read more output now.
    fn wants_output(&self) -> bool {
        let s = self.lock();
        let end = s.ring.end();
        if s.viewers.is_empty() {
            end - s.idle_mark < RING_BYTES as u64
        } else {
            s.viewers
                .values()
                .any(|acked| end.saturating_sub(*acked) < 2 * WINDOW)
        }
    }
}

fn set_nonblocking(f: &File) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = fcntl(f.as_raw_fd(), FcntlArg::F_GETFL)?;
    fcntl(
        f.as_raw_fd(),
        FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
    )?;
    Ok(())
}

/// Reads the pty into the ring and writes queued input, until the shell
/// ends; then records its exit code.
async fn pump(
    term: Arc<Terminal>,
    pty: AsyncFd<File>,
    mut process: ExecProcess,
    mut commands: mpsc::Receiver<Command>,
) {
    let mut demand = term.demand.subscribe();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let want = term.wants_output();
        tokio::select! {
            ready = pty.readable(), if want => {
                let Ok(mut guard) = ready else { break };
                match guard.try_io(|f| f.get_ref().read(&mut buf)) {
                    Ok(Ok(0)) | Ok(Err(_)) => break, // EOF or EIO: the shell is gone
                    Ok(Ok(n)) => {
                        let end = {
                            let mut s = term.lock();
                            s.ring.push(&buf[..n]);
                            s.ring.end()
                        };
                        term.output.send_replace(end);
                    }
                    Err(_would_block) => {}
                }
            }
            ready = pty.writable(), if !pending.is_empty() => {
                let Ok(mut guard) = ready else { break };
                match guard.try_io(|f| f.get_ref().write(&pending)) {
                    Ok(Ok(n)) => { pending.drain(..n); }
                    Ok(Err(_)) => break,
                    Err(_would_block) => {}
                }
            }
            cmd = commands.recv() => match cmd {
                Some(Command::Input(data)) => {
                    // Beyond the queue's bound, input is dropped: a shell
                    // that reads nothing cannot make us hold more.
                    let room = INPUT_QUEUE.saturating_sub(pending.len());
                    pending.extend_from_slice(&data[..data.len().min(room)]);
                }
                Some(Command::Resize(rows, cols)) => {
                    let _ = berth_runtime::container::exec::set_window_size(
                        pty.get_ref().as_raw_fd(), rows.max(1), cols.max(1));
                }
                None => break,
            },
            _ = demand.changed(), if !want => {}
        }
    }
    drop(pty);
    let code = tokio::task::spawn_blocking(move || process.wait())
        .await
        .unwrap_or(255);
    term.lock().exit = Some(code);
    term.output.send_modify(|v| *v += 0);
}
