//! cgroup v2: one directory in the unified hierarchy; controllers are
//! enabled for children through each parent's `cgroup.subtree_control`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::fs::{self, make_dirs, remove_dirs};
use super::{CgroupError, Limits, Stats, FREEZE_TIMEOUT};

/// Controllers a container's cgroup gets, when the root offers them.
pub const CONTROLLERS: &[&str] = &["cpu", "memory", "pids"];

/// Files that only exist with optional kernel features; skipped if absent.
const OPTIONAL: &[&str] = &["memory.swap.max"];

/// A write of `value` to `file`; `controller` must be enabled for it.
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

/// The control-file writes that apply `limits`. v2's `memory.swap.max`
/// counts swap alone, so it is memory-swap minus memory.
pub fn limit_writes(limits: &Limits) -> Vec<Write> {
    let mut out = Vec::new();
    if let Some(m) = limits.memory_limit() {
        out.push(w("memory", "memory.max", m));
        let swap = match limits.memory_swap_limit() {
            Some(s) => (s - m).to_string(),
            None => "max".to_owned(),
        };
        out.push(w("memory", "memory.swap.max", swap));
    }
    if let Some(p) = limits.pids_limit() {
        out.push(w("pids", "pids.max", p));
    }
    if limits.cpu_period.is_some() || limits.cpu_quota_limit().is_some() {
        let quota = limits
            .cpu_quota_limit()
            .map_or("max".to_owned(), |q| q.to_string());
        out.push(w(
            "cpu",
            "cpu.max",
            format!("{quota} {}", limits.cpu_period_or_default()),
        ));
    }
    if let Some(weight) = limits.cpu_weight() {
        out.push(w("cpu", "cpu.weight", weight));
    }
    out
}

/// A v2 cgroup: one directory.
#[derive(Debug)]
pub(super) struct V2 {
    dir: PathBuf,
}

impl V2 {
    pub(super) fn create(root: &Path, path: &str, limits: &Limits) -> Result<Self, CgroupError> {
        let offered = fs::read(&root.join("cgroup.controllers")).unwrap_or_default();
        let enabled: Vec<&'static str> = CONTROLLERS
            .iter()
            .copied()
            .filter(|c| offered.split_whitespace().any(|o| o == *c))
            .collect();
        let writes = limit_writes(limits);
        if let Some(missing) = writes.iter().find(|w| !enabled.contains(&w.controller)) {
            return Err(CgroupError::MissingController {
                controller: missing.controller,
            });
        }
        let made = make_dirs(root, path)?;
        let cg = Self {
            dir: root.join(path),
        };
        let setup = || -> Result<(), CgroupError> {
            let subtree: Vec<String> = enabled.iter().map(|c| format!("+{c}")).collect();
            if !subtree.is_empty() {
                // Every ancestor from the root down to the leaf's parent.
                let mut dir = root.to_path_buf();
                for part in Path::new(path).components() {
                    fs::write(&dir.join("cgroup.subtree_control"), &subtree.join(" "))?;
                    dir.push(part);
                }
            }
            for write in &writes {
                let file = cg.dir.join(write.file);
                if OPTIONAL.contains(&write.file) && !file.exists() && is_cgroupfs(&cg.dir) {
                    continue;
                }
                fs::write(&file, &write.value)?;
            }
            Ok(())
        };
        setup().inspect_err(|_| remove_dirs(&made))?;
        Ok(cg)
    }

    /// Writes `limits` into the existing cgroup (`docker update`).
    pub(super) fn apply(&self, limits: &Limits) -> Result<(), CgroupError> {
        for write in limit_writes(limits) {
            let file = self.dir.join(write.file);
            if OPTIONAL.contains(&write.file) && !file.exists() && is_cgroupfs(&self.dir) {
                continue;
            }
            fs::write(&file, &write.value)?;
        }
        Ok(())
    }

    pub(super) fn open(root: &Path, path: &str) -> Result<Self, CgroupError> {
        let dir = root.join(path);
        if !dir.is_dir() {
            return Err(CgroupError::NotFound { path: dir });
        }
        Ok(Self { dir })
    }

    pub(super) fn paths(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    pub(super) fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        fs::write(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    pub(super) fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        fs::read_pids(&self.dir.join("cgroup.procs"))
    }

    pub(super) fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let want = u64::from(frozen);
        fs::write(&self.dir.join("cgroup.freeze"), &want.to_string())?;
        let events = self.dir.join("cgroup.events");
        let done = fs::poll(FREEZE_TIMEOUT, || {
            fs::read(&events).ok().and_then(|t| fs::keyed(&t, "frozen")) == Some(want)
        });
        if done {
            return Ok(());
        }
        if frozen {
            let _ = fs::write(&self.dir.join("cgroup.freeze"), "0");
        }
        Err(CgroupError::FreezeTimeout { path: events })
    }

    pub(super) fn stats(&self) -> Result<Stats, CgroupError> {
        let file = |name: &str| self.dir.join(name);
        // A controller the root does not offer leaves its files out.
        let opt = |name: &str| -> Result<Option<u64>, CgroupError> {
            let f = file(name);
            if f.exists() {
                fs::read_u64(&f).map(Some)
            } else {
                Ok(None)
            }
        };
        let limit = |name: &str| -> Result<Option<u64>, CgroupError> {
            let f = file(name);
            if f.exists() {
                fs::read_limit(&f)
            } else {
                Ok(None)
            }
        };
        Ok(Stats {
            memory_usage: opt("memory.current")?.unwrap_or(0),
            memory_limit: limit("memory.max")?,
            memory_max_usage: opt("memory.peak")?,
            cpu_usage_ns: fs::read_keyed(&file("cpu.stat"), "usage_usec")? * 1000,
            pids_current: opt("pids.current")?.unwrap_or(0),
            pids_limit: limit("pids.max")?,
        })
    }

    pub(super) fn oom_killed(&self) -> Result<bool, CgroupError> {
        let file = self.dir.join("memory.events");
        if !file.exists() {
            return Ok(false);
        }
        Ok(fs::keyed(&fs::read(&file)?, "oom_kill").unwrap_or(0) > 0)
    }

    /// Kills what remains (`cgroup.kill` on Linux ≥ 5.14, otherwise freeze,
    /// SIGKILL each, thaw), waits for the cgroup to empty, removes it.
    pub(super) fn destroy(self) -> Result<(), CgroupError> {
        if !self.procs()?.is_empty() {
            let kill_file = self.dir.join("cgroup.kill");
            if kill_file.exists() {
                fs::write(&kill_file, "1")?;
            } else {
                let frozen = self.set_frozen(true).is_ok();
                for pid in self.procs()? {
                    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
                if frozen {
                    self.set_frozen(false)?;
                }
            }
            let emptied = fs::poll(Duration::from_secs(5), || {
                self.procs().map(|p| p.is_empty()).unwrap_or(false)
            });
            if !emptied {
                return Err(CgroupError::NotEmpty {
                    pids: self.procs()?,
                    path: self.dir,
                });
            }
        }
        fs::rmdir(&self.dir)
    }
}

/// Whether `dir` is on a cgroup2 filesystem (tests use a plain directory,
/// where optional files are written anyway so they can be checked).
fn is_cgroupfs(dir: &Path) -> bool {
    nix::sys::statfs::statfs(dir)
        .map(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}
