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
    /// More `berth daemon` arguments (`--registry ADDR`).
    extra: Vec<String>,
}

impl Engine {
    /// Starts a daemon with its own data dir and scope.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a daemon with more `berth daemon` arguments.
    pub fn start_with(extra: &[&str]) -> Self {
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
            extra: extra.iter().map(|s| s.to_string()).collect(),
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
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth daemon");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while UnixStream::connect(&self.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "daemon did not listen: {}",
                self.log()
            );
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

    /// `docker <args>` of another docker CLI binary (Debian's 20.10, say).
    pub fn docker_with(&self, binary: &Path, args: &[&str]) -> Run {
        let mut other = Command::new(binary);
        other
            .env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env("DOCKER_CONFIG", self.data.path().join("cli-config"))
            .env("DOCKER_BUILDKIT", "0")
            .stdin(Stdio::null())
            .args(args);
        other.output().expect("run docker").into()
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

    /// Runs a Python `script` with docker-py (`import docker`) as the
    /// client of this engine (`docker.from_env()` finds it).
    pub fn python(&self, script: &str) -> Run {
        python_against(&self.socket, script)
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
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
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
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .chars()
                    .all(|c| c.is_ascii_digit())
            })
            .filter(|e| {
                let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
                let cwd = std::fs::read_link(e.path().join("cwd")).unwrap_or_default();
                cmd.starts_with(b"berth\0")
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

/// Debian's 20.10 docker CLI: `BERTH_DOCKER_2010` (scripts/test.sh unpacks
/// it), else /usr/bin/docker when that is a 20.10 CLI.
pub fn docker_2010() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BERTH_DOCKER_2010") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from("/usr/bin/docker");
    let version = Command::new(&p).arg("--version").output().ok()?;
    String::from_utf8_lossy(&version.stdout)
        .contains("version 20.")
        .then_some(p)
}

/// The path of a file in the test fixtures.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The Python that has docker-py: `$BERTH_PYTHON` (scripts/test.sh makes a
/// virtualenv with it), else the host's `python3`.
pub fn python_with_docker_py() -> PathBuf {
    std::env::var_os("BERTH_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// Runs a Python `script` whose `docker.from_env()` talks to `socket`.
pub fn python_against(socket: &Path, script: &str) -> Run {
    let mut child = Command::new(python_with_docker_py())
        .arg("-")
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env_remove("DOCKER_TLS_VERIFY")
        .env_remove("DOCKER_CERT_PATH")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap().into()
}
