//! A private PostgreSQL for a test or a benchmark: Debian's server binaries
//! (`/usr/lib/postgresql/*/bin`), a fresh cluster in a temp dir, listening
//! on 127.0.0.1 at a free port with password (SCRAM) authentication and its
//! socket in that dir, run as `nobody` when we are root (PostgreSQL refuses
//! to run as root). Stopped and removed on drop. `psql` judges what is
//! stored, from outside the server under test.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "s3cret-pg-Pa55word";

pub struct Postgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
    child: Option<Child>,
    log: PathBuf,
    owner: Option<(u32, u32)>,
    durable: bool,
}

/// The newest installed server's bin directory.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, b)| b)
}

/// Whether PostgreSQL's server is installed; under scripts/test.sh
/// (`BERTH_FULL_SUITE`) it must be.
pub fn available() -> bool {
    let there = bin_dir().is_some();
    if !there {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "scripts/setup.sh installs postgresql (/usr/lib/postgresql/*/bin is missing)"
        );
        eprintln!("skipping: scripts/setup.sh installs postgresql");
    }
    there
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// nobody's uid and gid.
fn nobody() -> (u32, u32) {
    let u = nix::unistd::User::from_name("nobody")
        .unwrap()
        .expect("a nobody user");
    (u.uid.as_raw(), u.gid.as_raw())
}

impl Postgres {
    /// Starts a cluster; `durable` keeps fsync on (benchmarks), tests turn
    /// it off.
    pub fn start(durable: bool) -> Self {
        let bin = bin_dir().expect("PostgreSQL installed (scripts/setup.sh)");
        let dir = tempfile::Builder::new()
            .prefix("berth-pg-")
            .tempdir_in("/var/tmp")
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
        let owner = nix::unistd::geteuid().is_root().then(nobody);
        let data = dir.path().join("data");
        let run = dir.path().join("run");
        for d in [&data, &run] {
            std::fs::create_dir(d).unwrap();
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, PASSWORD).unwrap();
        if let Some((uid, gid)) = owner {
            for p in [&data, &run, &pwfile] {
                std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
            }
        }
        let mut pg = Self {
            port: free_port(),
            log: dir.path().join("postgres.log"),
            dir,
            bin,
            child: None,
            owner,
            durable,
        };
        let out = pg
            .command("initdb")
            .args(["-D", data.to_str().unwrap(), "-U", "berth", "-E", "UTF8"])
            .args(["--locale=C", "--auth=scram-sha-256", "--no-sync"])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        pg.launch(durable);
        pg
    }

    fn command(&self, tool: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(tool));
        cmd.current_dir(self.dir.path()).stdin(Stdio::null());
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn launch(&mut self, durable: bool) {
        self.launch_retrying(durable, 0)
    }

    fn launch_retrying(&mut self, durable: bool, mut retries: u32) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let mut cmd = self.command("postgres");
        cmd.args(["-D", self.dir.path().join("data").to_str().unwrap()])
            .args(["-p", &self.port.to_string()])
            .args(["-k", self.dir.path().join("run").to_str().unwrap()])
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=300",
            ])
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if !durable {
            cmd.args(["-c", "fsync=off", "-c", "full_page_writes=off"]);
        }
        self.child = Some(cmd.spawn().expect("start postgres"));
        let start = Instant::now();
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .unwrap();
            if ready.success() {
                return;
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                // The free port was taken between picking and binding it
                // (tests run side by side): try another one.
                if self.server_log().contains("Address already in use") && retries < 5 {
                    retries += 1;
                    self.port = free_port();
                    return self.launch_retrying(durable, retries);
                }
                panic!("postgres exited ({status}): {}", self.server_log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "postgres did not start: {}",
                self.server_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the server (a fast shutdown), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGINT,
            );
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.launch(self.durable);
    }

    pub fn server_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A URL of database `db` (made when missing), with the password.
    pub fn url(&self, db: &str) -> String {
        let exists = self.psql(
            "postgres",
            &format!("SELECT 1 FROM pg_database WHERE datname = '{db}'"),
        );
        if exists.trim().is_empty() {
            self.psql("postgres", &format!("CREATE DATABASE \"{db}\""));
        }
        format!("postgres://berth:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// What `psql` prints for `sql` in `db` (unaligned, tuples only, `|`
    /// between columns); panics when psql fails.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(["-X", "-At", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "berth",
                "-d",
                db,
            ])
            .args(["-c", sql])
            .env("PGPASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
