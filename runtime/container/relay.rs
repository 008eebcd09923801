//! The monitor's event loop: moves the container's output into its log and to
//! attached clients, clients' input into the container, terminal resizes to
//! the pty, until the container's pid 1 has exited and its output is drained.
//!
//! One thread, `poll(2)`, non-blocking fds and bounded buffers: a client that
//! stops reading is dropped rather than allowed to stall the container.
//!
//! Order of stdout and stderr: two pipes keep no order between them, and
//! when both hold data by the time we wake, `poll(2)` cannot say which was
//! written first (reading stdout first put a later stdout line before an
//! earlier stderr line, and `docker logs --tail 1` showed the wrong one).
//! The pipes sit in an edge-triggered epoll set instead, itself one fd of
//! the poll set: epoll reports ready fds in the order they became ready
//! (its ready list is a queue), so each pipe's pending output is logged in
//! the order its first write arrived. Writes that alternate faster than we
//! wake can still interleave differently, as they can in dockerd (one
//! goroutine per pipe); a single reader with readiness order is as close
//! as two pipes allow.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};

use super::attach::{self, ControlRequest};
use super::logs::{LogWriter, Stream};
use super::sys;

/// Output a slow client may fall behind by before it is dropped.
const CLIENT_BUFFER_LIMIT: usize = 4 << 20;
/// Input waiting for the container to read it, at most.
const STDIN_BUFFER_LIMIT: usize = 1 << 20;
/// How long output may still drain after pid 1 exited.
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Where the container's output comes from.
pub enum Output {
    /// Separate stdout and stderr pipes.
    Pipes { stdout: OwnedFd, stderr: OwnedFd },
    /// The master side of the container's terminal.
    Terminal { master: OwnedFd },
}

/// An attached client.
struct Client {
    stream: UnixStream,
    stdout: bool,
    stderr: bool,
    /// Reading input from this client (until it ends it).
    stdin: bool,
    close_stdin: bool,
    out: VecDeque<u8>,
}

/// The event loop's state.
pub struct Relay {
    pub listener: UnixListener,
    pub output: Output,
    /// Write end of the container's stdin (for a terminal: a dup of the master).
    pub stdin: Option<File>,
    pub log: LogWriter,
    pub pidfd: OwnedFd,
    clients: Vec<Client>,
    pending_stdin: VecDeque<u8>,
    close_stdin_after_flush: bool,
    open_sources: [bool; 2],
    /// Pid 1 has exited (its pidfd stays readable from then on).
    exited: bool,
    /// The output pipes, edge-triggered, in the order they became ready
    /// (`None` for a terminal, or if epoll could not be set up).
    ready_order: Option<Epoll>,
}

impl Relay {
    pub fn new(
        listener: UnixListener,
        output: Output,
        stdin: Option<File>,
        log: LogWriter,
        pidfd: OwnedFd,
    ) -> Self {
        let open_sources = match output {
            Output::Pipes { .. } => [true, true],
            Output::Terminal { .. } => [true, false],
        };
        Self {
            listener,
            output,
            stdin,
            log,
            pidfd,
            clients: Vec::new(),
            pending_stdin: VecDeque::new(),
            close_stdin_after_flush: false,
            open_sources,
            exited: false,
            ready_order: None,
        }
    }

    /// The edge-triggered epoll set of the two output pipes (data: the
    /// source index).
    fn pipes_epoll(&self) -> Option<Epoll> {
        let Output::Pipes { stdout, stderr } = &self.output else {
            return None;
        };
        ready_order(stdout, stderr)
    }

    /// Uses the epoll set made by [`ready_order`] before the container
    /// started: registered while the pipes were still empty, it has seen
    /// the first writes in their order (one made after would list pipes
    /// that already hold data in registration order: stdout first).
    pub fn set_ready_order(&mut self, epoll: Option<Epoll>) {
        self.ready_order = epoll;
    }

    fn tty(&self) -> bool {
        matches!(self.output, Output::Terminal { .. })
    }

    /// Adds a client that asked for something.
    pub fn add(&mut self, stream: UnixStream, request: ControlRequest) {
        match request {
            ControlRequest::Attach {
                stdin,
                stdout,
                stderr,
                close_stdin,
            } => {
                let _ = stream.set_nonblocking(true);
                self.clients.push(Client {
                    stream,
                    stdout,
                    stderr,
                    stdin: stdin && self.stdin.is_some(),
                    close_stdin,
                    out: VecDeque::new(),
                });
            }
            ControlRequest::Resize { rows, cols } => {
                if let Output::Terminal { master } = &self.output {
                    let _ = sys::set_window_size(master.as_raw_fd(), rows, cols);
                }
            }
        }
    }

    /// Runs until pid 1 has exited (`reap` collects its exit code once the
    /// pidfd says so) and its output is drained and logged; returns the code.
    /// Clients stay connected until [`Relay::finish`].
    pub fn run(&mut self, mut reap: impl FnMut() -> i32) -> i32 {
        set_nonblocking(&self.listener);
        match &self.output {
            Output::Pipes { stdout, stderr } => {
                set_nonblocking(stdout);
                set_nonblocking(stderr);
            }
            Output::Terminal { master } => set_nonblocking(master),
        }
        if let Some(stdin) = &self.stdin {
            set_nonblocking(stdin);
        }
        if self.ready_order.is_none() {
            self.ready_order = self.pipes_epoll();
        }
        let mut exited_at: Option<Instant> = None;
        let mut code = 255;
        loop {
            if let Some(at) = exited_at {
                if self.open_sources == [false, false] || at.elapsed() > DRAIN_TIME {
                    break;
                }
            }
            let timeout = if exited_at.is_some() {
                PollTimeout::from(100u16)
            } else {
                PollTimeout::NONE
            };
            let ready = self.poll_once(timeout);
            if ready.pid_exited && exited_at.is_none() {
                self.exited = true;
                code = reap();
                exited_at = Some(Instant::now());
            }
        }
        let _ = self.log.flush();
        code
    }

    /// Gives clients what they are still owed, briefly, then lets them see EOF.
    pub fn finish(&mut self) {
        let deadline = Instant::now() + Duration::from_millis(500);
        for c in &mut self.clients {
            let _ = c.stream.set_nonblocking(false);
            let _ = c.stream.set_write_timeout(Some(
                deadline
                    .saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ));
            let (a, b) = c.out.as_slices();
            let _ = c.stream.write_all(a).and_then(|_| c.stream.write_all(b));
            let _ = c.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// One `poll(2)` round. Only fds with something to wait for are in the
    /// set: `POLLHUP` and `POLLERR` are reported whether asked for or not, so
    /// a closed output pipe, a container that closed its stdin, or a client
    /// that hung up would otherwise wake every round and spin a core.
    fn poll_once(&mut self, timeout: PollTimeout) -> Ready {
        let mut fds: Vec<PollFd> = Vec::new();
        let mut slots: Vec<Slot> = Vec::new();
        if !self.exited {
            // Readable for good once pid 1 is gone: waited on until then only.
            fds.push(PollFd::new(self.pidfd.as_fd(), PollFlags::POLLIN));
            slots.push(Slot::Pid);
        }
        fds.push(PollFd::new(self.listener.as_fd(), PollFlags::POLLIN));
        slots.push(Slot::Listener);
        match (&self.output, &self.ready_order) {
            (Output::Pipes { .. }, Some(epoll)) => {
                if self.open_sources != [false, false] {
                    fds.push(PollFd::new(epoll.0.as_fd(), PollFlags::POLLIN));
                    slots.push(Slot::Ordered);
                }
            }
            (Output::Pipes { stdout, stderr }, None) => {
                for (idx, fd) in [stdout.as_fd(), stderr.as_fd()].into_iter().enumerate() {
                    if self.open_sources[idx] {
                        fds.push(PollFd::new(fd, PollFlags::POLLIN));
                        slots.push(Slot::Source(idx));
                    }
                }
            }
            (Output::Terminal { master }, _) => {
                if self.open_sources[0] {
                    fds.push(PollFd::new(master.as_fd(), PollFlags::POLLIN));
                    slots.push(Slot::Source(0));
                }
            }
        }
        if let Some(stdin) = &self.stdin {
            if !self.pending_stdin.is_empty() {
                fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLOUT));
                slots.push(Slot::Stdin);
            }
        }
        for (i, c) in self.clients.iter().enumerate() {
            let mut f = PollFlags::empty();
            if c.stdin {
                f |= PollFlags::POLLIN;
            }
            if !c.out.is_empty() {
                f |= PollFlags::POLLOUT;
            }
            // Always in the set, even with nothing asked: its hang-up is how
            // a client that only watched output is noticed and let go.
            fds.push(PollFd::new(c.stream.as_fd(), f));
            slots.push(Slot::Client(i));
        }
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(_) => return Ready::default(),
        }
        let revents: Vec<PollFlags> = fds
            .iter()
            .map(|f| f.revents().unwrap_or(PollFlags::empty()))
            .collect();
        drop(fds);
        let readable = PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR;
        let gone = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
        let mut ready = Ready::default();
        let mut drop_clients = Vec::new();
        for (slot, r) in slots.into_iter().zip(revents) {
            if r.is_empty() {
                continue;
            }
            match slot {
                Slot::Pid => ready.pid_exited = true,
                Slot::Listener => self.accept(),
                Slot::Ordered => self.read_in_ready_order(),
                Slot::Source(idx) => {
                    if r.intersects(readable) {
                        self.read_source(idx);
                    }
                    if r.contains(PollFlags::POLLNVAL) {
                        self.open_sources[idx] = false;
                    }
                }
                Slot::Stdin => {
                    if r.contains(PollFlags::POLLOUT) {
                        self.write_stdin();
                    }
                    if r.intersects(gone) {
                        // The container closed its end: nothing more to give it.
                        self.pending_stdin.clear();
                        self.stdin = None;
                    }
                }
                Slot::Client(i) => {
                    if r.intersects(readable) && self.clients[i].stdin {
                        // Take what it sent before hanging up.
                        self.read_client(i);
                    }
                    if r.contains(PollFlags::POLLOUT) && !self.flush_client(i) {
                        drop_clients.push(i);
                    }
                    if r.intersects(gone) {
                        drop_clients.push(i);
                    }
                }
            }
        }
        drop_clients.sort_unstable();
        drop_clients.dedup();
        for i in drop_clients.into_iter().rev() {
            self.clients.remove(i);
        }
        ready
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            // The request line comes right after connecting.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            if !reader.buffer().is_empty() {
                // Input sent together with the request line goes in first.
                let early = reader.buffer().to_vec();
                self.queue_stdin(&early);
            }
            drop(reader);
            if let Ok(request) = serde_json::from_str::<ControlRequest>(&line) {
                self.add(stream, request);
            }
        }
    }

    /// Reads the pipes that became ready, first ready first (each to
    /// `EAGAIN`, as edge triggering needs).
    fn read_in_ready_order(&mut self) {
        let mut events = [EpollEvent::empty(); 2];
        let n = match &self.ready_order {
            Some(epoll) => epoll.wait(&mut events, 0u8).unwrap_or(0),
            None => 0,
        };
        for event in &events[..n] {
            let idx = event.data() as usize;
            if idx < 2 && self.open_sources[idx] {
                self.read_source(idx);
            }
        }
    }

    fn read_source(&mut self, idx: usize) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = {
                let fd = match (&self.output, idx) {
                    (Output::Pipes { stdout, .. }, 0) => stdout.as_raw_fd(),
                    (Output::Pipes { stderr, .. }, _) => stderr.as_raw_fd(),
                    (Output::Terminal { master }, _) => master.as_raw_fd(),
                };
                nix::unistd::read(fd, &mut buf)
            };
            match n {
                Ok(0) | Err(nix::errno::Errno::EIO) => {
                    // EOF (for a terminal: EIO once every slave fd is closed).
                    self.open_sources[idx] = false;
                    return;
                }
                Ok(n) => self.deliver(idx, &buf[..n]),
                Err(nix::errno::Errno::EAGAIN) => return,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => {
                    self.open_sources[idx] = false;
                    return;
                }
            }
        }
    }

    fn deliver(&mut self, idx: usize, data: &[u8]) {
        let stream = if idx == 0 {
            Stream::Stdout
        } else {
            Stream::Stderr
        };
        let _ = self.log.write(stream, data);
        let tty = self.tty();
        let mut overflow = Vec::new();
        for (i, c) in self.clients.iter_mut().enumerate() {
            let wanted = if idx == 0 { c.stdout } else { c.stderr };
            if !wanted {
                continue;
            }
            if tty {
                c.out.extend(data);
            } else {
                let num = if idx == 0 {
                    attach::STDOUT
                } else {
                    attach::STDERR
                };
                c.out.extend(attach::frame(num, data));
            }
            if c.out.len() > CLIENT_BUFFER_LIMIT {
                overflow.push(i);
            }
        }
        for i in overflow.into_iter().rev() {
            self.clients.remove(i);
        }
        for i in 0..self.clients.len() {
            self.flush_client(i);
        }
    }

    /// Writes what client `i` is owed; false when it is gone.
    fn flush_client(&mut self, i: usize) -> bool {
        let c = &mut self.clients[i];
        while !c.out.is_empty() {
            let (a, _) = c.out.as_slices();
            match c.stream.write(a) {
                Ok(0) => return false,
                Ok(n) => {
                    c.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return false,
            }
        }
        true
    }

    fn read_client(&mut self, i: usize) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match self.clients[i].stream.read(&mut buf) {
                Ok(0) => {
                    self.clients[i].stdin = false;
                    if self.clients[i].close_stdin {
                        if self.pending_stdin.is_empty() {
                            self.stdin = None;
                        } else {
                            self.close_stdin_after_flush = true;
                        }
                    }
                    return;
                }
                Ok(n) => {
                    let data = buf[..n].to_vec();
                    self.queue_stdin(&data);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => {
                    self.clients[i].stdin = false;
                    return;
                }
            }
        }
    }

    fn queue_stdin(&mut self, data: &[u8]) {
        if self.stdin.is_none() || self.pending_stdin.len() + data.len() > STDIN_BUFFER_LIMIT {
            return;
        }
        self.pending_stdin.extend(data);
        self.write_stdin();
    }

    fn write_stdin(&mut self) {
        let Some(stdin) = &mut self.stdin else {
            self.pending_stdin.clear();
            return;
        };
        while !self.pending_stdin.is_empty() {
            let (a, _) = self.pending_stdin.as_slices();
            match stdin.write(a) {
                Ok(n) => {
                    self.pending_stdin.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    self.pending_stdin.clear();
                    self.stdin = None;
                    return;
                }
            }
        }
        if self.close_stdin_after_flush {
            self.stdin = None;
        }
    }
}

/// What an entry of the poll set stands for.
#[derive(Clone, Copy)]
enum Slot {
    Pid,
    Listener,
    /// The epoll set of both output pipes.
    Ordered,
    Source(usize),
    Stdin,
    Client(usize),
}

#[derive(Default)]
struct Ready {
    pid_exited: bool,
}

fn set_nonblocking(fd: &impl AsFd) {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let raw = fd.as_fd().as_raw_fd();
    if let Ok(flags) = fcntl(raw, FcntlArg::F_GETFL) {
        let _ = fcntl(
            raw,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        );
    }
}

/// An edge-triggered epoll set of a container's stdout and stderr pipes
/// (data: 0 and 1), to make before the container can write: epoll's ready
/// list then holds the pipes in the order their first write arrived.
pub fn ready_order(stdout: &impl AsFd, stderr: &impl AsFd) -> Option<Epoll> {
    let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC).ok()?;
    let flags = EpollFlags::EPOLLIN | EpollFlags::EPOLLET;
    epoll.add(stdout, EpollEvent::new(flags, 0)).ok()?;
    epoll.add(stderr, EpollEvent::new(flags, 1)).ok()?;
    Some(epoll)
}
