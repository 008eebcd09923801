//! An Engine API fixture: `berth daemon` on a temporary socket and data dir,
//! driven through the real `docker` CLI, so tests read like a lesson.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::Run;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A running `berth daemon` and the docker CLI pointed at it.
pub struct Engine {
    pub data: tempfile::TempDir,
    pub socket: PathBuf,
    pub scope: String,
    child: Option<Child>,
}

impl Engine {
    /// Starts a daemon with its own data dir and scope.
    pub fn start() -> Self {
        let data = tempfile::Builder::new()
            .prefix("berth-engine-")
            .tempdir_in("/var/tmp")
            .expect("temp data dir");
        let socket = data.path().join("docker.sock");
        let scope = format!(
            "t{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut engine = Self {
            data,
            socket,
            scope,
            child: None,
        };
        engine.spawn();
        engine
    }

    fn spawn(&mut self) {
        let log = std::fs::File::create(self.data.path().join("daemon.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--data-dir")
            .arg(self.data.path().join("data"))
            .arg("daemon")
            .arg("--socket")
            .arg(&self.socket)
            .arg("--scope")
            .arg(&self.scope)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&self.socket).is_err() {
            assert!(Instant::now() < deadline, "daemon did not listen: {}", self.log());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("daemon.log")).unwrap_or_default()
    }

    /// Stops the daemon (SIGTERM) and starts it again on the same data dir.
    pub fn restart(&mut self) {
        self.stop_daemon();
        self.spawn();
    }

    /// Kills the daemon without letting it clean up (a crash).
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the daemon again after [`Engine::crash`].
    pub fn start_again(&mut self) {
        self.spawn();
    }

    fn stop_daemon(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.path().join("data")
    }

    /// A `docker` command against this engine.
    pub fn cli(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", self.data.path().join("cli-config"))
            .env_remove("DOCKER_BUILDKIT")
            .stdin(Stdio::null());
        cmd
    }

    /// `docker <args>`, waited for.
    pub fn docker(&self, args: &[&str]) -> Run {
        self.cli().args(args).output().expect("run docker").into()
    }

    /// `docker <args>` that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.docker(args);
        assert_eq!(
            run.code, 0,
            "docker {args:?} failed ({}): {}{}",
            run.code, run.stdout, run.stderr
        );
        run.stdout
    }

    /// `docker <args>` with `input` on stdin.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        let mut child = self
            .cli()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap().into()
    }

    /// A raw HTTP/1.1 request on the socket; returns (status line, body).
    pub fn http(&self, request: &str) -> (String, String) {
        use std::io::Read;
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text.lines().next().unwrap_or("").to_string();
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
        (status, body)
    }

    /// Host cgroup directories of this engine's scope.
    pub fn cgroups(&self) -> Vec<PathBuf> {
        super::cgroups_of(&self.scope)
    }

    /// Mounts under this engine's data dir.
    pub fn mounts(&self) -> Vec<String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let dir = self.data.path().to_string_lossy().into_owned();
        info.lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .map(String::from)
            .collect()
    }

    /// Monitor processes (`berth __init`) left running for this data dir.
    pub fn monitors(&self) -> usize {
        let dir = self.data_dir();
        std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().chars().all(|c| c.is_ascii_digit()))
            .filter(|e| {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
                cmd.starts_with(env!("CARGO_BIN_EXE_berth").as_bytes())
                    && String::from_utf8_lossy(&cmd).contains("__init")
                    && cwd.starts_with(&dir)
            })
            .count()
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Containers outlive the daemon by design; a test cleans up after itself.
        if self.child.is_some() {
            let ids = self.docker(&["ps", "-aq"]).stdout;
            for id in ids.split_whitespace() {
                let _ = self.docker(&["rm", "-f", id]);
            }
        }
        self.stop_daemon();
    }
}

/// Waits until `f` holds (polling), at most `limit`.
pub fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// The path of a file in the test fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}
