//! v2 logic against a temporary directory imitating cgroupfs, plus a real
//! run on a cgroup2 mount when the host has one (hybrid hosts mount an
//! empty one at `/sys/fs/cgroup/unified`).

use std::path::Path;

use super::*;

fn fake_root() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids\n",
    )
    .unwrap();
    dir
}

fn v2(root: &Path) -> Hierarchy {
    Hierarchy::V2 {
        root: root.to_owned(),
    }
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn limits() -> Limits {
    Limits {
        memory: Some(64 << 20),
        memory_swap: None,
        cpu_quota: Some(50_000),
        cpu_period: Some(100_000),
        cpu_shares: Some(512),
        pids: Some(100),
    }
}

#[test]
fn create_enables_controllers_down_the_path_and_writes_limits() {
    let root = fake_root();
    let r = root.path();
    let cg = Cgroup::create(&v2(r), "berth/s1/c1", &limits()).unwrap();
    for parent in ["", "berth", "berth/s1"] {
        let file = r.join(parent).join("cgroup.subtree_control");
        assert_eq!(read(file), "+cpu +memory +pids", "in {parent:?}");
    }
    let leaf = r.join("berth/s1/c1");
    assert!(!leaf.join("cgroup.subtree_control").exists());
    assert_eq!(read(leaf.join("memory.max")), "67108864");
    assert_eq!(
        read(leaf.join("memory.swap.max")),
        "0",
        "no swap unless asked"
    );
    assert_eq!(read(leaf.join("pids.max")), "100");
    assert_eq!(read(leaf.join("cpu.max")), "50000 100000");
    assert_eq!(read(leaf.join("cpu.weight")), "20");
    assert_eq!(cg.paths(), vec![leaf]);
}

#[test]
fn limit_writes_for_unlimited_values() {
    let l = Limits {
        memory: Some(64 << 20),
        memory_swap: Some(-1),
        cpu_period: Some(50_000),
        ..Default::default()
    };
    let writes: Vec<_> = v2::limit_writes(&l)
        .into_iter()
        .map(|w| (w.file, w.value))
        .collect();
    let expect = [
        ("memory.max", "67108864"),
        ("memory.swap.max", "max"),
        ("cpu.max", "max 50000"),
    ];
    assert_eq!(writes, expect.map(|(f, v)| (f, v.to_owned())));
    assert!(v2::limit_writes(&Limits::default()).is_empty());
    let swap = Limits {
        memory: Some(64 << 20),
        memory_swap: Some(96 << 20),
        ..Default::default()
    };
    assert_eq!(v2::limit_writes(&swap)[1].value, (32 << 20).to_string());
}

#[test]
fn bad_limits_and_missing_controllers_create_nothing() {
    let root = fake_root();
    let bad = Limits {
        memory: Some(1 << 20),
        ..Default::default()
    };
    let err = Cgroup::create(&v2(root.path()), "berth/s1/c1", &bad).unwrap_err();
    assert!(matches!(err, CgroupError::MemoryTooLow));
    std::fs::write(root.path().join("cgroup.controllers"), "memory\n").unwrap();
    let err = Cgroup::create(&v2(root.path()), "berth/s1/c1", &limits()).unwrap_err();
    assert!(
        matches!(err, CgroupError::MissingController { controller: "pids" }),
        "{err}"
    );
    assert!(!root.path().join("berth").exists());
    let err = Cgroup::create(&v2(root.path()), "../escape", &Limits::default()).unwrap_err();
    assert!(matches!(err, CgroupError::InvalidPath { .. }));
}

#[test]
fn stats_and_oom_are_parsed_from_the_files() {
    let root = fake_root();
    let cg = Cgroup::create(&v2(root.path()), "c1", &Limits::default()).unwrap();
    let leaf = root.path().join("c1");
    assert!(!cg.oom_killed().unwrap(), "no memory.events: no OOM");
    let files = [
        ("memory.current", "1048576\n"),
        ("memory.max", "max\n"),
        ("memory.peak", "2097152\n"),
        (
            "cpu.stat",
            "usage_usec 1234\nuser_usec 1000\nsystem_usec 234\n",
        ),
        ("pids.current", "3\n"),
        ("pids.max", "100\n"),
        ("memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n"),
    ];
    for (f, text) in files {
        std::fs::write(leaf.join(f), text).unwrap();
    }
    let stats = cg.stats().unwrap();
    let expect = Stats {
        memory_usage: 1 << 20,
        memory_limit: None,
        memory_max_usage: Some(2 << 20),
        cpu_usage_ns: 1_234_000,
        pids_current: 3,
        pids_limit: Some(100),
    };
    assert_eq!(stats, expect);
    assert!(cg.oom_killed().unwrap());
    std::fs::write(leaf.join("cpu.stat"), "nothing here\n").unwrap();
    assert!(matches!(cg.stats(), Err(CgroupError::Parse { .. })));
}

#[test]
fn freeze_waits_for_cgroup_events() {
    let root = fake_root();
    let cg = Cgroup::create(&v2(root.path()), "c1", &Limits::default()).unwrap();
    let leaf = root.path().join("c1");
    std::fs::write(leaf.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    cg.freeze().unwrap();
    assert_eq!(read(leaf.join("cgroup.freeze")), "1");
    std::fs::write(leaf.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    cg.thaw().unwrap();
    assert_eq!(read(leaf.join("cgroup.freeze")), "0");
    let open = Cgroup::open(&v2(root.path()), "c1").unwrap();
    assert_eq!(open.paths(), vec![leaf]);
    assert!(matches!(
        Cgroup::open(&v2(root.path()), "nope"),
        Err(CgroupError::NotFound { .. })
    ));
}

/// The real thing, on the host's cgroup2 mount: add, freeze, kill, remove.
#[test]
fn real_cgroup2_lifecycle() {
    let Some(root) = super::tests_v1::real_root("unified", nix::sys::statfs::CGROUP2_SUPER_MAGIC)
    else {
        return;
    };
    let h = v2(&root);
    let top = format!("berth-test-{}-v2", std::process::id());
    let _cleanup = Cleanup(h.clone(), root.join(&top), format!("{top}/c1"));
    let cg = Cgroup::create(&h, &format!("{top}/c1"), &Limits::default()).unwrap();
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    cg.add_process(pid).unwrap();
    assert_eq!(cg.procs().unwrap(), vec![pid]);
    cg.freeze().unwrap();
    cg.thaw().unwrap();
    assert!(cg.stats().is_ok());
    let paths = cg.paths();
    cg.destroy().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
    assert!(paths.iter().all(|p| !p.exists()), "left behind: {paths:?}");
}

/// Removes the real test cgroup even when the test fails half-way.
struct Cleanup(Hierarchy, std::path::PathBuf, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(cg) = Cgroup::open(&self.0, &self.2) {
            let _ = cg.destroy();
        }
        let _ = std::fs::remove_dir(&self.1);
    }
}
