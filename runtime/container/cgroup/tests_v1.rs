//! v1 for real, as root on a host with v1 controllers mounted; each test
//! returns early elsewhere.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use super::*;

/// `/sys/fs/cgroup/<sub>` if we are root and it is the filesystem `magic`.
pub(super) fn real_root(sub: &str, magic: nix::sys::statfs::FsType) -> Option<PathBuf> {
    let root = Path::new(DEFAULT_ROOT);
    let fs = nix::sys::statfs::statfs(&root.join(sub)).ok()?;
    let ok = nix::unistd::geteuid().is_root() && fs.filesystem_type() == magic;
    if !ok {
        eprintln!("skipping: no {sub} cgroup mount we can use");
    }
    ok.then(|| root.join(sub))
}

fn v1_root() -> Option<PathBuf> {
    let memory = real_root("memory", nix::sys::statfs::CGROUP_SUPER_MAGIC)?;
    memory.parent().map(Path::to_owned)
}

/// A test's own top-level directory name, removed from every controller on drop.
struct Top(PathBuf, String);

impl Top {
    fn new(root: &Path, test: &str) -> Self {
        Self(
            root.to_owned(),
            format!("berth-test-{}-{test}", std::process::id()),
        )
    }
    fn path(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.1)
    }
    fn exists_anywhere(&self) -> bool {
        v1::CONTROLLERS
            .iter()
            .any(|c| self.0.join(c).join(&self.1).exists())
    }
}

impl Drop for Top {
    /// Cleans up after a failed test too: kills and removes the leaf first.
    fn drop(&mut self) {
        let h = Hierarchy::V1 {
            root: self.0.clone(),
        };
        if let Ok(cg) = Cgroup::open(&h, &self.path("c1")) {
            let _ = cg.destroy();
        }
        for c in v1::CONTROLLERS {
            let _ = std::fs::remove_dir(self.0.join(c).join(&self.1));
        }
    }
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

fn state(child: &Child) -> String {
    let status = read(format!("/proc/{}/status", child.id()));
    let line = status.lines().find(|l| l.starts_with("State:")).unwrap();
    line["State:".len()..].trim().to_owned()
}

#[test]
fn real_v1_lifecycle() {
    let Some(root) = v1_root() else { return };
    let h = Hierarchy::V1 { root: root.clone() };
    let top = Top::new(&root, "life");
    let limits = Limits {
        memory: Some(64 << 20),
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        cpu_shares: Some(512),
        pids: Some(50),
        ..Default::default()
    };
    let cg = Cgroup::create(&h, &top.path("c1"), &limits).unwrap();
    let dir = |c: &str| root.join(c).join(top.path("c1"));
    assert_eq!(
        read(dir("memory").join("memory.limit_in_bytes")),
        "67108864"
    );
    if dir("memory").join("memory.memsw.limit_in_bytes").exists() {
        assert_eq!(
            read(dir("memory").join("memory.memsw.limit_in_bytes")),
            "67108864"
        );
    }
    assert_eq!(read(dir("pids").join("pids.max")), "50");
    assert_eq!(read(dir("cpu").join("cpu.cfs_quota_us")), "50000");
    assert_eq!(read(dir("cpu").join("cpu.cfs_period_us")), "100000");
    assert_eq!(read(dir("cpu").join("cpu.shares")), "512");
    let devices = read(dir("devices").join("devices.list"));
    assert!(
        devices.contains("c 1:3 rwm") && devices.contains("c 136:* rwm"),
        "{devices}"
    );
    assert!(!devices.contains("a *:* rwm"), "{devices}");

    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let pid = child.id() as i32;
    cg.add_process(pid).unwrap();
    assert_eq!(cg.procs().unwrap(), vec![pid]);
    cg.freeze().unwrap();
    assert_eq!(read(dir("freezer").join("freezer.state")), "FROZEN");
    let frozen = state(&child);
    cg.thaw().unwrap();
    assert_eq!(read(dir("freezer").join("freezer.state")), "THAWED");
    // Just thawed, the task may still be running on its way back to sleep.
    let asleep = fs::poll(std::time::Duration::from_secs(2), || {
        state(&child).starts_with('S')
    });
    assert!(asleep, "thawed sleep is sleeping: {}", state(&child));
    assert!(
        frozen.starts_with('D') || frozen.starts_with('t'),
        "frozen: {frozen}"
    );

    let stats = cg.stats().unwrap();
    assert_eq!((stats.pids_current, stats.pids_limit), (1, Some(50)));
    assert_eq!(stats.memory_limit, Some(64 << 20));
    assert!(stats.memory_max_usage.is_some());
    assert!(!cg.oom_killed().unwrap());

    let paths = cg.paths();
    assert_eq!(paths.len(), v1::CONTROLLERS.len());
    let reopened = Cgroup::open(&h, &top.path("c1")).unwrap();
    assert_eq!(reopened.paths(), paths);
    cg.destroy().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    let left: Vec<_> = paths.iter().filter(|p| p.exists()).collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn detect_finds_v1_on_a_hybrid_host() {
    let Some(root) = v1_root() else { return };
    assert_eq!(Hierarchy::detect().unwrap(), Hierarchy::V1 { root });
}

#[test]
fn real_v1_bad_limits_make_nothing() {
    let Some(root) = v1_root() else { return };
    let h = Hierarchy::V1 { root: root.clone() };
    let top = Top::new(&root, "bad");
    let bad = Limits {
        memory: Some(64 << 20),
        memory_swap: Some(32 << 20),
        ..Default::default()
    };
    assert!(matches!(
        Cgroup::create(&h, &top.path("c1"), &bad),
        Err(CgroupError::SwapBelowMemory)
    ));
    assert!(!top.exists_anywhere());
}

/// The kernel refuses pids.max ≥ 2^22 after the memory limits went in: the
/// half-made cgroup, parents included, must disappear.
#[test]
fn real_v1_failure_half_way_removes_what_it_made() {
    let Some(root) = v1_root() else { return };
    let h = Hierarchy::V1 { root: root.clone() };
    let top = Top::new(&root, "half");
    let limits = Limits {
        memory: Some(64 << 20),
        pids: Some(1 << 40),
        ..Default::default()
    };
    let err = Cgroup::create(&h, &top.path("c1"), &limits).unwrap_err();
    assert!(err.to_string().contains("pids.max"), "{err}");
    assert!(!top.exists_anywhere());
}
