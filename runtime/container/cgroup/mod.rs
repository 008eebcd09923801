//! Cgroups: a container's resource limits, freezing, stats and cleanup, on
//! cgroup v1 (one mount per controller) and v2 (the unified hierarchy).
//!
//! Every function takes its root as a [`Hierarchy`], so the v2 logic tests
//! against a temporary directory imitating cgroupfs, and the v1 logic runs
//! for real on a hybrid host. Which files get which values is data
//! ([`v1::limit_writes`], [`v2::limit_writes`]) that tests inspect directly.
//!
//! No `unsafe` here: signals go through nix.

mod fs;
mod limits;
#[cfg(test)]
mod tests_v1;
#[cfg(test)]
mod tests_v2;
pub mod v1;
pub mod v2;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use limits::{Limits, CPU_SHARES_RANGE, DEFAULT_CPU_PERIOD, MIN_MEMORY};

/// How long freezing (or thawing) may take before we give up.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

impl CgroupError {
    /// Whether the error is a refused limit (the user's mistake, HTTP 400).
    pub fn is_invalid_limits(&self) -> bool {
        matches!(
            self,
            CgroupError::MemoryTooLow
                | CgroupError::SwapBelowMemory
                | CgroupError::SwapWithoutMemory
                | CgroupError::CpuQuotaTooLow
                | CgroupError::CpuPeriodOutOfRange
        )
    }
}

/// Where the host mounts cgroups.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// Errors creating, driving or removing a cgroup. Limit errors carry
/// Docker's own messages, since users see them as `docker run` errors.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// Memory below 6 MiB (Docker's check).
    #[error("Minimum memory limit allowed is 6MB")]
    MemoryTooLow,
    /// Memory+swap below memory (Docker's check).
    #[error("Minimum memoryswap limit should be larger than memory limit, see usage")]
    SwapBelowMemory,
    /// Memory+swap without memory (Docker's check).
    #[error("You should always set the Memory limit when using Memoryswap limit, see usage")]
    SwapWithoutMemory,
    /// CFS quota under 1 ms (Docker's check).
    #[error("CPU cfs quota can not be less than 1ms (i.e. 1000)")]
    CpuQuotaTooLow,
    /// CFS period outside 1 ms..1 s (Docker's check).
    #[error("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1 second (i.e. 1000000)")]
    CpuPeriodOutOfRange,
    /// An absolute path or one with `..` or `.`.
    #[error("cgroup path {path:?} must be relative and stay below the root")]
    InvalidPath { path: String },
    /// A limit needs a controller the host does not offer.
    #[error("cgroup controller {controller} is not available")]
    MissingController { controller: &'static str },
    /// [`Cgroup::open`] found no directory.
    #[error("cgroup {path} does not exist")]
    NotFound { path: PathBuf },
    /// `statfs` of the cgroup mount failed.
    #[error("detecting the cgroup version at {path}: {source}")]
    Detect { path: PathBuf, source: nix::Error },
    /// Reading, writing, creating or removing `path` failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// A control file held something unexpected.
    #[error("parsing {path}: unexpected {text:?}")]
    Parse { path: PathBuf, text: String },
    /// The kernel did not reach the freezer state in time.
    #[error("timed out waiting for {path} to change freezer state")]
    FreezeTimeout { path: PathBuf },
    /// Tasks survived SIGKILL past the wait.
    #[error("cgroup {path} still has processes {pids:?} after SIGKILL")]
    NotEmpty { path: PathBuf, pids: Vec<i32> },
}

/// Which cgroup version the host runs, and where it is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hierarchy {
    /// One mount per controller: `<root>/memory`, `<root>/pids`, …
    V1 { root: PathBuf },
    /// The unified hierarchy mounted at `root`.
    V2 { root: PathBuf },
}

impl Hierarchy {
    /// `/sys/fs/cgroup` on cgroup2 → [`Hierarchy::V2`]; anything else (a
    /// tmpfs of v1 mounts, as on hybrid hosts) → [`Hierarchy::V1`].
    pub fn detect() -> Result<Self, CgroupError> {
        let root = PathBuf::from(DEFAULT_ROOT);
        let fs = nix::sys::statfs::statfs(&root).map_err(|source| CgroupError::Detect {
            path: root.clone(),
            source,
        })?;
        Ok(
            if fs.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC {
                Self::V2 { root }
            } else {
                Self::V1 { root }
            },
        )
    }
}

/// Resource use of a cgroup, as `docker stats` needs it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Memory in use, bytes.
    pub memory_usage: u64,
    /// Memory limit, bytes (`None`: unlimited).
    pub memory_limit: Option<u64>,
    /// Peak memory use, bytes (`None`: the kernel does not report it).
    pub memory_max_usage: Option<u64>,
    /// CPU time used, nanoseconds.
    pub cpu_usage_ns: u64,
    /// Tasks in the cgroup.
    pub pids_current: u64,
    /// Task limit (`None`: unlimited).
    pub pids_limit: Option<u64>,
}

#[derive(Debug)]
enum Inner {
    V1(v1::V1),
    V2(v2::V2),
}

/// One container's cgroup, in whichever hierarchy the host runs.
#[derive(Debug)]
pub struct Cgroup {
    inner: Inner,
}

impl Cgroup {
    /// Creates the cgroup at `path` (relative, e.g. `berth/<scope>/<id>`),
    /// making missing parents, and applies `limits`.
    ///
    /// Limits are checked first, so bad ones create nothing. On v2 the
    /// parents get `+cpu +memory +pids` (those the root offers) in their
    /// `cgroup.subtree_control`; on v1 a directory is made in every mounted
    /// controller and the device rules are Docker's. A failure half-way
    /// removes the directories this call made.
    pub fn create(h: &Hierarchy, path: &str, limits: &Limits) -> Result<Self, CgroupError> {
        limits.validate()?;
        fs::check_relative(path)?;
        let inner = match h {
            Hierarchy::V1 { root } => Inner::V1(v1::V1::create(root, path, limits)?),
            Hierarchy::V2 { root } => Inner::V2(v2::V2::create(root, path, limits)?),
        };
        Ok(Self { inner })
    }

    /// Opens an existing cgroup (after a daemon restart, say).
    pub fn open(h: &Hierarchy, path: &str) -> Result<Self, CgroupError> {
        fs::check_relative(path)?;
        let inner = match h {
            Hierarchy::V1 { root } => Inner::V1(v1::V1::open(root, path)?),
            Hierarchy::V2 { root } => Inner::V2(v2::V2::open(root, path)?),
        };
        Ok(Self { inner })
    }

    /// Applies new `limits` to the cgroup as it is (`docker update` of a
    /// running container); checked first, as at creation.
    pub fn apply(&self, limits: &Limits) -> Result<(), CgroupError> {
        limits.validate()?;
        match &self.inner {
            Inner::V1(c) => c.apply(limits),
            Inner::V2(c) => c.apply(limits),
        }
    }

    /// Moves process `pid` into the cgroup (in every v1 controller).
    pub fn add_process(&self, pid: i32) -> Result<(), CgroupError> {
        match &self.inner {
            Inner::V1(c) => c.add_process(pid),
            Inner::V2(c) => c.add_process(pid),
        }
    }

    /// The processes in the cgroup, sorted.
    pub fn procs(&self) -> Result<Vec<i32>, CgroupError> {
        match &self.inner {
            Inner::V1(c) => c.procs(),
            Inner::V2(c) => c.procs(),
        }
    }

    /// Freezes every task, returning once the kernel reports the cgroup
    /// frozen (v1 `freezer.state` FROZEN, v2 `cgroup.events` frozen 1).
    pub fn freeze(&self) -> Result<(), CgroupError> {
        self.set_frozen(true)
    }

    /// Thaws the cgroup, returning once the kernel reports it thawed.
    pub fn thaw(&self) -> Result<(), CgroupError> {
        self.set_frozen(false)
    }

    fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        match &self.inner {
            Inner::V1(c) => c.set_frozen(frozen),
            Inner::V2(c) => c.set_frozen(frozen),
        }
    }

    /// Memory, CPU and task counters.
    pub fn stats(&self) -> Result<Stats, CgroupError> {
        match &self.inner {
            Inner::V1(c) => c.stats(),
            Inner::V2(c) => c.stats(),
        }
    }

    /// Whether the kernel's OOM killer has killed a task in this cgroup.
    pub fn oom_killed(&self) -> Result<bool, CgroupError> {
        match &self.inner {
            Inner::V1(c) => c.oom_killed(),
            Inner::V2(c) => c.oom_killed(),
        }
    }

    /// The directories this cgroup owns (one per v1 controller; one on v2).
    pub fn paths(&self) -> Vec<PathBuf> {
        match &self.inner {
            Inner::V1(c) => c.paths(),
            Inner::V2(c) => c.paths(),
        }
    }

    /// SIGKILLs whatever remains, waits (bounded) until the cgroup is empty
    /// and removes its directories. Parents such as `berth/<scope>` stay.
    pub fn destroy(self) -> Result<(), CgroupError> {
        match self.inner {
            Inner::V1(c) => c.destroy(),
            Inner::V2(c) => c.destroy(),
        }
    }
}
