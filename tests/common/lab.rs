//! A learner's lab as the escape and abuse suites drive it: a classroom
//! session's Engine API socket used by the real docker CLI, and a root-only
//! host canary to judge by.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::classroom::Classroom;
use super::Run;

/// A classroom with one learner's session, and the docker CLI pointed at the
/// session's node socket (what the learner's `docker` in the lab talks to).
pub struct Lab {
    pub classroom: Classroom,
    pub token: String,
    pub session: String,
    pub socket: PathBuf,
}

impl Default for Lab {
    fn default() -> Self {
        Self::new()
    }
}

impl Lab {
    pub fn new() -> Self {
        Self::with_args(&[])
    }

    /// A lab of a classroom started with extra `berth serve` flags.
    pub fn with_args(args: &[&str]) -> Self {
        let classroom = Classroom::start(args);
        let (token, status) = classroom.new_session();
        let session = status["id"].as_str().expect("session id").to_string();
        let socket = classroom
            .data_dir()
            .join("sessions")
            .join(&session)
            .join("node1")
            .join("docker.sock");
        let deadline = Instant::now() + Duration::from_secs(60);
        let lab = Self {
            classroom,
            token,
            session,
            socket,
        };
        while Instant::now() < deadline {
            if lab.socket.exists() && lab.docker(&["version"]).code == 0 {
                return lab;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "session socket {} never answered\n{}",
            lab.socket.display(),
            lab.classroom.log()
        );
    }

    /// `docker <args>` against the session's socket.
    pub fn docker(&self, args: &[&str]) -> Run {
        self.cli().args(args).output().expect("run docker").into()
    }

    /// `docker <args>` with `input` on stdin.
    pub fn docker_stdin(&self, args: &[&str], input: &[u8]) -> Run {
        use std::io::Write;
        let mut child = self
            .cli()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker");
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("wait docker");
        let _ = writer.join();
        out.into()
    }

    /// `docker <args>`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let run = self.docker(args);
        assert_eq!(
            run.code, 0,
            "docker {args:?} failed: {}\n{}",
            run.stderr, run.stdout
        );
        run.stdout
    }

    /// `docker <args>` with stdin written by `feed` as the CLI reads it
    /// (uploads too large to hold in the test's memory).
    pub fn docker_feed(
        &self,
        args: &[&str],
        feed: impl FnOnce(&mut dyn std::io::Write) + Send + 'static,
    ) -> Run {
        let mut child = self
            .cli()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run docker");
        let mut stdin = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || feed(&mut stdin));
        let out = child.wait_with_output().expect("wait docker");
        let _ = writer.join();
        out.into()
    }

    /// The pid of the classroom's `berth serve` (found by its data directory).
    pub fn server_pid(&self) -> u32 {
        let data = self.classroom.data_dir();
        let data = data.to_string_lossy();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            if args.iter().any(|a| a == "serve") && args.iter().any(|a| *a == *data) {
                return pid;
            }
        }
        panic!("no berth serve process for {data}");
    }

    fn cli(&self) -> Command {
        let mut cmd = Command::new("docker");
        cmd.env("DOCKER_HOST", format!("unix://{}", self.socket.display()))
            .env(
                "DOCKER_CONFIG",
                self.classroom.data.path().join("docker-cli"),
            )
            .env_remove("DOCKER_CONTEXT")
            .stdin(Stdio::null());
        cmd
    }
}

/// A root-only host secret: a 0600 file in a 0700 directory outside any
/// data directory. A learner must never read, change or remove it.
pub struct Canary {
    pub dir: tempfile::TempDir,
    pub file: PathBuf,
    pub secret: String,
}

impl Default for Canary {
    fn default() -> Self {
        Self::new()
    }
}

impl Canary {
    pub fn new() -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("berth-canary-")
            .tempdir_in("/var/tmp")
            .expect("canary dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        let secret = format!("canary-{}-{}", std::process::id(), rand_suffix());
        let file = dir.path().join("secret");
        std::fs::write(&file, &secret).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        Self { dir, file, secret }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Panics unless the canary is still there, unchanged, and alone in its
    /// directory (nothing was created beside it).
    pub fn assert_untouched(&self) {
        let text = std::fs::read_to_string(&self.file).expect("canary still exists");
        assert_eq!(text, self.secret, "canary file changed");
        let names: Vec<_> = std::fs::read_dir(self.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("secret")],
            "canary dir changed"
        );
    }

    /// Panics if `text` holds the secret.
    pub fn assert_not_in(&self, text: &str) {
        assert!(
            !text.contains(&self.secret),
            "the host canary leaked to the learner: {text}"
        );
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64
}
