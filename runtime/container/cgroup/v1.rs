//! cgroup v1: one directory per controller, each under its own mount
//! (`<root>/memory/<path>`, `<root>/pids/<path>`, …).

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::fs::{self, make_dirs, remove_dirs};
use super::{CgroupError, Limits, Stats, FREEZE_TIMEOUT};

/// Controllers a container gets a directory in, when the host mounts them.
pub const CONTROLLERS: &[&str] = &["memory", "pids", "cpu", "cpuacct", "freezer", "devices"];

/// Docker's device rules: deny everything, then allow null, zero, full,
/// random, urandom, tty, console, ptmx and the pty slaves.
pub const DEVICE_RULES: &[(&str, &str)] = &[
    ("devices.deny", "a"),
    ("devices.allow", "c 1:3 rwm"),
    ("devices.allow", "c 1:5 rwm"),
    ("devices.allow", "c 1:7 rwm"),
    ("devices.allow", "c 1:8 rwm"),
    ("devices.allow", "c 1:9 rwm"),
    ("devices.allow", "c 5:0 rwm"),
    ("devices.allow", "c 5:1 rwm"),
    ("devices.allow", "c 5:2 rwm"),
    ("devices.allow", "c 136:* rwm"),
];

/// Files that only exist with optional kernel features; skipped if absent.
const OPTIONAL: &[&str] = &["memory.memsw.limit_in_bytes"];

/// A write of `value` to `file` in `controller`'s directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    /// The controller whose directory holds the file.
    pub controller: &'static str,
    /// The control file.
    pub file: &'static str,
    /// What to write.
    pub value: String,
}

fn w(controller: &'static str, file: &'static str, value: impl ToString) -> Write {
    Write {
        controller,
        file,
        value: value.to_string(),
    }
}

/// The control-file writes that apply `limits`, in order (memory before
/// memsw, period before quota, as the kernel requires).
pub fn limit_writes(limits: &Limits) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(m) = limits.memory_limit() {
        out.push(w("memory", "memory.limit_in_bytes", m));
        let swap = limits.memory_swap_limit().unwrap_or(-1);
        out.push(w("memory", "memory.memsw.limit_in_bytes", swap));
    }
    if let Some(p) = limits.pids_limit() {
        out.push(w("pids", "pids.max", p));
    }
    if limits.cpu_period.is_some() || limits.cpu_quota_limit().is_some() {
        out.push(w(
            "cpu",
            "cpu.cfs_period_us",
            limits.cpu_period_or_default(),
        ));
        out.push(w(
            "cpu",
            "cpu.cfs_quota_us",
            limits.cpu_quota_limit().unwrap_or(-1),
        ));
    }
    if let Some(s) = limits.cpu_shares_clamped() {
        out.push(w("cpu", "cpu.shares", s));
    }
    out.extend(
        DEVICE_RULES
            .iter()
            .map(|(file, rule)| w("devices", file, rule)),
    );
    out
}

/// A v1 cgroup: its directory in each mounted controller.
#[derive(Debug)]
pub(super) struct V1 {
    dirs: Vec<(&'static str, PathBuf)>,
}

impl V1 {
    pub(super) fn create(root: &Path, path: &str, limits: &Limits) -> Result<Self, CgroupError> {
        let mut made = Vec::new();
        let mut dirs = Vec::new();
        for &c in CONTROLLERS {
            let croot = root.join(c);
            if !croot.is_dir() {
                continue;
            }
            match make_dirs(&croot, path) {
                Ok(m) => made.extend(m),
                Err(e) => {
                    remove_dirs(&made);
                    return Err(e);
                }
            }
            dirs.push((c, croot.join(path)));
        }
        let cg = Self { dirs };
        cg.apply(limits).inspect_err(|_| remove_dirs(&made))?;
        Ok(cg)
    }

    pub(super) fn open(root: &Path, path: &str) -> Result<Self, CgroupError> {
        let dirs: Vec<_> = CONTROLLERS
            .iter()
            .map(|&c| (c, root.join(c).join(path)))
            .filter(|(_, d)| d.is_dir())
            .collect();
        if dirs.is_empty() {
            return Err(CgroupError::NotFound {
                path: root.join("*").join(path),
            });
        }
        Ok(Self { dirs })
    }

    pub(super) fn apply(&self, limits: &Limits) -> Result<(), CgroupError> {
        for write in limit_writes(limits) {
            let Some(dir) = self.dir(write.controller) else {
                if write.controller == "devices" {
                    continue; // no devices controller mounted: nothing to restrict
                }
                return Err(CgroupError::MissingController {
                    controller: write.controller,
                });
            };
            let file = dir.join(write.file);
            if OPTIONAL.contains(&write.file) && !file.exists() {
                continue;
            }
            fs::write(&file, &write.value)?;
        }
        Ok(())
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, d)| d.as_path())
    }

    fn need(&self, controller: &'static str) -> Result<&Path, CgroupError> {
        self.dir(controller)
            .ok_or(CgroupError::MissingController { controller })
    }

    /// Distinct directories (co-mounted controllers share one).
    pub(super) fn paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for (_, d) in &self.dirs {
            let real = std::fs::canonicalize(d).unwrap_or_else(|_| d.clone());
            if !out
                .iter()
                .any(|o| std::fs::canonicalize(o).unwrap_or_else(|_| o.clone()) == real)
            {
                out.push(d.clone());
            }
        }
        out
    }

    pub(super) fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        for d in self.paths() {
            fs::write(&d.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    pub(super) fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        let mut all = Vec::new();
        for d in self.paths() {
            all.extend(fs::read_pids(&d.join("cgroup.procs"))?);
        }
        all.sort_unstable();
        all.dedup();
        Ok(all)
    }

    pub(super) fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let state = self.need("freezer")?.join("freezer.state");
        let want = if frozen { "FROZEN" } else { "THAWED" };
        fs::write(&state, want)?;
        // FREEZING means some task has not stopped yet; ask again until it has.
        let done = fs::poll(FREEZE_TIMEOUT, || {
            let now = fs::read(&state).map(|s| s.trim() == want).unwrap_or(false);
            if !now {
                let _ = fs::write(&state, want);
            }
            now
        });
        if done {
            return Ok(());
        }
        if frozen {
            let _ = fs::write(&state, "THAWED");
        }
        Err(CgroupError::FreezeTimeout { path: state })
    }

    pub(super) fn stats(&self) -> Result<Stats, CgroupError> {
        let mem = self.need("memory")?;
        let pids = self.need("pids")?;
        Ok(Stats {
            memory_usage: fs::read_u64(&mem.join("memory.usage_in_bytes"))?,
            memory_limit: fs::read_limit(&mem.join("memory.limit_in_bytes"))?,
            memory_max_usage: Some(fs::read_u64(&mem.join("memory.max_usage_in_bytes"))?),
            cpu_usage_ns: fs::read_u64(&self.need("cpuacct")?.join("cpuacct.usage"))?,
            pids_current: fs::read_u64(&pids.join("pids.current"))?,
            pids_limit: fs::read_limit(&pids.join("pids.max"))?,
        })
    }

    pub(super) fn oom_killed(&self) -> Result<bool, CgroupError> {
        let file = self.need("memory")?.join("memory.oom_control");
        Ok(fs::keyed(&fs::read(&file)?, "oom_kill").unwrap_or(0) > 0)
    }

    /// Kills what remains (frozen first, so nothing forks away), waits for
    /// the cgroup to empty, then removes every leaf directory.
    pub(super) fn destroy(self) -> Result<(), CgroupError> {
        if !self.procs()?.is_empty() {
            let frozen = self.dir("freezer").is_some() && self.set_frozen(true).is_ok();
            for pid in self.procs()? {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            if frozen {
                self.set_frozen(false)?;
            }
            let emptied = fs::poll(Duration::from_secs(5), || {
                self.procs().map(|p| p.is_empty()).unwrap_or(false)
            });
            if !emptied {
                let path = self.paths().remove(0);
                return Err(CgroupError::NotEmpty {
                    path,
                    pids: self.procs()?,
                });
            }
        }
        for d in self.paths() {
            fs::rmdir(&d)?;
        }
        Ok(())
    }
}
