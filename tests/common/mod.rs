//! Test fixtures: a `berth` with its own data directory, driven like a user would.
#![allow(dead_code)]

pub mod classroom;
pub mod course;
pub mod engine;
pub mod lab;
pub mod postgres;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// One data directory and the `berth` binary that uses it.
pub struct Berth {
    pub data: tempfile::TempDir,
}

/// What a command printed and how it ended.
#[derive(Debug)]
pub struct Run {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            code: o.status.code().unwrap_or(-1),
        }
    }
}

impl Berth {
    pub fn new() -> Self {
        Self {
            data: tempfile::Builder::new()
                .prefix("berth-test-")
                .tempdir_in("/var/tmp")
                .expect("temp data dir"),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.data.path()
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_berth"));
        cmd.env("BERTH_DATA_DIR", self.data.path())
            .stdin(Stdio::null());
        cmd
    }

    /// `berth <args>`, waited for.
    pub fn berth(&self, args: &[&str]) -> Run {
        self.command()
            .args(args)
            .output()
            .expect("run berth")
            .into()
    }

    /// `berth run --rm --scope <scope> <args>`.
    pub fn run_in(&self, scope: &str, args: &[&str]) -> Run {
        let mut all = vec!["run", "--rm", "--scope", scope];
        all.extend_from_slice(args);
        self.berth(&all)
    }

    /// `berth run --rm <args>` in the default scope.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_in("host", args)
    }

    /// Mount points under this data directory, as the host sees them.
    pub fn mounts(&self) -> Vec<String> {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let dir = self.data.path().to_string_lossy().into_owned();
        info.lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&dir))
            .map(String::from)
            .collect()
    }

    /// Container directories left in the data directory.
    pub fn containers(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.data.path().join("containers"))
            .map(|d| d.map(|e| e.unwrap().path()).collect())
            .unwrap_or_default()
    }
}

/// Cgroup directories of `scope` on this host (any version).
pub fn cgroups_of(scope: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let dir = entry.path().join("berth").join(scope);
        if let Ok(children) = std::fs::read_dir(&dir) {
            found.extend(children.flatten().map(|c| c.path()).filter(|p| p.is_dir()));
        }
    }
    let v2 = Path::new("/sys/fs/cgroup/berth").join(scope);
    if let Ok(children) = std::fs::read_dir(v2) {
        found.extend(children.flatten().map(|c| c.path()).filter(|p| p.is_dir()));
    }
    found
}

/// A unique scope name for one test, so cgroup listings do not mix.
pub fn unique_scope(test: &str) -> String {
    format!("{test}-{}", std::process::id())
}

/// The static `probe` helper (tests/fixtures/probe.c), built once per test binary.
pub fn probe() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = std::env::temp_dir().join(format!("berth-probe-{}", std::process::id()));
            std::fs::create_dir_all(&out).unwrap();
            let bin = out.join("probe");
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/probe.c");
            let status = Command::new("gcc")
                .args(["-static", "-O1", "-o"])
                .arg(&bin)
                .arg(src)
                .status()
                .expect("gcc (build-essential) is needed to build the probe");
            assert!(status.success(), "building probe failed");
            out
        })
        .clone()
}
