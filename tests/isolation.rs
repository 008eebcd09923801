//! Runtime core I: a busybox container is isolated the way Docker isolates
//! one, and more (a private uid range). Each test looks from inside.

mod common;

use common::{cgroups_of, probe, unique_scope, Berth};

fn ok(run: &common::Run) -> &str {
    assert_eq!(run.code, 0, "exit {}: stderr: {}", run.code, run.stderr);
    &run.stdout
}

#[test]
fn container_has_its_own_hostname() {
    let b = Berth::new();
    assert_eq!(
        ok(&b.run(&["--hostname", "box", "busybox", "hostname"])).trim(),
        "box"
    );
    let default = b.run(&["busybox", "hostname"]);
    let name = ok(&default).trim();
    assert_eq!(name.len(), 12, "default hostname is the short ID: {name}");
    assert!(name.chars().all(|c| c.is_ascii_hexdigit()));
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_ne!(host.trim(), "box", "the host's name did not change");
}

#[test]
fn entrypoint_is_pid_1_and_ps_sees_only_the_container() {
    let b = Berth::new();
    // `; echo end` keeps sh from replacing itself with ps.
    let out = b.run(&[
        "busybox",
        "sh",
        "-c",
        "echo pid=$$; sleep 5 & sleep 0.2; ps -o pid,comm; echo end",
    ]);
    let text = ok(&out);
    assert!(text.starts_with("pid=1\n"), "{text}");
    let procs: Vec<&str> = text.lines().skip(2).filter(|l| *l != "end").collect();
    assert_eq!(procs.len(), 3, "only sh, sleep and ps: {text}");
    assert!(procs[0].trim_start().starts_with("1 sh"), "{text}");
    let cmdline = b.run(&["busybox", "cat", "/proc/1/cmdline"]);
    assert_eq!(ok(&cmdline), "cat\0/proc/1/cmdline\0");
}

#[test]
fn root_maps_to_a_private_unprivileged_range_per_scope() {
    let b = Berth::new();
    let map = |scope: &str| {
        let out = b.run_in(scope, &["busybox", "cat", "/proc/self/uid_map"]);
        let fields: Vec<u64> = ok(&out)
            .split_whitespace()
            .map(|f| f.parse().unwrap())
            .collect();
        assert_eq!(fields.len(), 3, "one mapping line: {fields:?}");
        fields
    };
    let a = map("session-a");
    let b_map = map("session-b");
    assert_eq!(a[0], 0, "container root is mapped");
    assert!(a[1] >= 100_000, "host id {} is not a system uid", a[1]);
    assert_eq!(a[2], 65536);
    assert_ne!(a[1], b_map[1], "two sessions share a range");
    assert!(a[1].abs_diff(b_map[1]) >= 65536, "ranges overlap");
    assert_eq!(map("session-a"), a, "a scope keeps its range");
    let whoami = b.run(&["busybox", "id"]);
    assert!(
        ok(&whoami).starts_with("uid=0(root) gid=0(root)"),
        "{}",
        whoami.stdout
    );
}

#[test]
fn privileged_syscalls_fail_with_eperm() {
    let b = Berth::new();
    let probe_dir = probe();
    let volume = format!("{}:/probe:ro", probe_dir.display());
    let out = b.run(&[
        "-v",
        &volume,
        "busybox",
        "/probe/probe",
        "mount",
        "unshare",
        "unshare_user",
        "keyctl",
        "add_key",
        "mknod",
        "af_alg",
        "clone3",
        "sethostname",
        "af_unix",
        "getpid",
    ]);
    let text = ok(&out);
    for (op, want) in [
        ("mount", "EPERM"),
        ("unshare", "EPERM"),
        ("unshare_user", "EPERM"),
        ("keyctl", "EPERM"),
        ("add_key", "EPERM"),
        ("mknod", "EPERM"),
        ("af_alg", "EPERM"),
        ("clone3", "ENOSYS"),
        ("sethostname", "EPERM"),
        ("af_unix", "ok"),
        ("getpid", "ok"),
    ] {
        assert!(
            text.lines().any(|l| l == format!("{op} {want}")),
            "{op}: expected {want}, got:\n{text}"
        );
    }
    // And through busybox's own applets, as a learner would try.
    let mount = b.run(&["busybox", "mount", "-t", "tmpfs", "none", "/mnt"]);
    assert_ne!(mount.code, 0);
    assert!(
        mount.stderr.contains("permission denied"),
        "{}",
        mount.stderr
    );
    let mknod = b.run(&["busybox", "mknod", "/tmp/sda", "b", "8", "0"]);
    assert_ne!(mknod.code, 0);
    assert!(
        mknod.stderr.contains("Operation not permitted"),
        "{}",
        mknod.stderr
    );
}

#[test]
fn kernel_knobs_are_read_only_and_secrets_masked() {
    let b = Berth::new();
    let out = b.run(&[
        "busybox",
        "sh",
        "-c",
        "echo 1 > /proc/sys/kernel/panic && echo sys-written; \
         echo h > /proc/sysrq-trigger && echo sysrq-written; \
         echo kcore=$([ -e /proc/kcore ] && wc -c < /proc/kcore || echo absent); \
         echo keys=$(wc -c < /proc/keys); \
         echo timer=$(ls /proc/timer_list 2>/dev/null | wc -l)$(cat /proc/timer_list | wc -c); \
         touch /sys/kernel/x 2>/dev/null && echo sys-writable; \
         echo done",
    ]);
    let text = ok(&out);
    assert!(!text.contains("sys-written"), "{text}");
    assert!(!text.contains("sysrq-written"), "{text}");
    assert!(!text.contains("sys-writable"), "{text}");
    // /proc/kcore is masked where the kernel has it (not every VM kernel does).
    assert!(
        text.contains("kcore=0\n") || text.contains("kcore=absent\n"),
        "{text}"
    );
    assert!(text.contains("keys=0\n"), "{text}");
    assert!(
        out.stderr.contains("Read-only file system"),
        "{}",
        out.stderr
    );
    assert!(text.ends_with("done\n"));
}

#[test]
fn capabilities_are_dockers_default_set() {
    let b = Berth::new();
    let out = b.run(&["busybox", "grep", "^Cap", "/proc/self/status"]);
    let text = ok(&out);
    // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP
    // NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE SETFCAP
    assert!(text.contains("CapEff:\t00000000a80425fb"), "{text}");
    assert!(text.contains("CapBnd:\t00000000a80425fb"), "{text}");
    assert!(text.contains("CapInh:\t0000000000000000"), "{text}");
    assert!(text.contains("CapAmb:\t0000000000000000"), "{text}");
    let nobody = b.run(&[
        "-u",
        "nobody",
        "busybox",
        "grep",
        "^CapEff",
        "/proc/self/status",
    ]);
    assert_eq!(ok(&nobody).trim(), "CapEff:\t0000000000000000");
    let nnp = b.run(&["busybox", "grep", "^NoNewPrivs", "/proc/self/status"]);
    assert_eq!(ok(&nnp).trim(), "NoNewPrivs:\t1");
    let seccomp = b.run(&["busybox", "grep", "^Seccomp:", "/proc/self/status"]);
    assert_eq!(ok(&seccomp).trim(), "Seccomp:\t2");
}

#[test]
fn fork_bomb_stops_at_the_pids_limit_and_the_host_keeps_working() {
    let b = Berth::new();
    let scope = unique_scope("forkbomb");
    let mut bomb = b
        .command()
        .args([
            "run",
            "--rm",
            "--scope",
            &scope,
            "--pids-limit",
            "50",
            "busybox",
            "sh",
            "-c",
        ])
        .arg("bomb() { bomb | bomb & }; bomb 2>/dev/null; exec sleep 4")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait (on a loaded machine the start can take a while) for the
    // container's pids cgroup, then for the bomb to hit the limit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let pids_dir = loop {
        let found = cgroups_of(&scope)
            .into_iter()
            .find(|p| p.join("pids.max").exists());
        if let Some(dir) = found {
            break dir;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the container has no pids cgroup after 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let refusals = || -> (u64, String) {
        let events = std::fs::read_to_string(pids_dir.join("pids.events")).unwrap_or_default();
        let n = events
            .trim()
            .trim_start_matches("max ")
            .parse()
            .unwrap_or(0);
        (n, events)
    };
    let until = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while refusals().0 == 0 && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let current: u64 = std::fs::read_to_string(pids_dir.join("pids.current"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(current <= 50, "pids.current {current} over the limit");
    let (refused, events) = refusals();
    assert!(refused > 0, "the bomb hit the limit: {events}");
    // The host still forks and runs programs.
    let host = std::process::Command::new("sh")
        .args(["-c", "for i in 1 2 3 4 5; do /bin/true; done; echo alive"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&host.stdout), "alive\n");
    let status = bomb.wait().unwrap();
    assert_eq!(status.code(), Some(0), "pid 1 (sleep) ended normally");
    assert!(cgroups_of(&scope).is_empty(), "cgroups removed");
}

#[test]
fn memory_hog_is_oom_killed_and_reported() {
    let b = Berth::new();
    let out = b.run(&[
        "-m",
        "16m",
        "busybox",
        "sh",
        "-c",
        "a=xxxxxxxxxxxxxxxx; while true; do a=\"$a$a\"; done",
    ]);
    assert_eq!(out.code, 137, "killed by SIGKILL: {}", out.stderr);
    assert!(out.stderr.contains("OOMKilled"), "{}", out.stderr);
}

#[test]
fn bad_input_gets_clear_errors_and_leaves_nothing() {
    let b = Berth::new();
    let scope = unique_scope("badinput");
    // Warm up: the busybox bootstrap itself is allowed to leave its image.
    ok(&b.run_in(&scope, &["busybox", "true"]));
    let mounts_before = b.mounts();
    assert!(cgroups_of(&scope).is_empty());
    let cases: [(&[&str], &str, i32); 6] = [
        (&["nosuchimage"], "No such image: nosuchimage", 125),
        (&["Bad:Ref!"], "invalid reference format", 125),
        (
            &["busybox", "nosuchcmd"],
            "exec: \"nosuchcmd\": executable file not found in $PATH",
            127,
        ),
        (
            &["busybox", "/no/such/file"],
            "no such file or directory",
            127,
        ),
        (
            &["-m", "1k", "busybox", "true"],
            "Minimum memory limit allowed is 6MB",
            125,
        ),
        (
            &["-u", "ghost", "busybox", "true"],
            "unable to find user ghost",
            125,
        ),
    ];
    for (args, message, code) in cases {
        let out = b.run_in(&scope, args);
        assert_eq!(out.code, code, "{args:?}: {}", out.stderr);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert_eq!(b.mounts(), mounts_before, "{args:?} left mounts");
        assert!(cgroups_of(&scope).is_empty(), "{args:?} left cgroups");
        assert!(b.containers().is_empty(), "{args:?} left container files");
    }
}

#[test]
fn no_command_is_dockers_error() {
    let b = Berth::new();
    let rootfs = tempfile::tempdir().unwrap();
    std::fs::create_dir(rootfs.path().join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.path().join("bin/busybox")).unwrap();
    let tar = rootfs.path().join("../rootfs-nocmd.tar");
    let st = std::process::Command::new("tar")
        .arg("-C")
        .arg(rootfs.path())
        .arg("-cf")
        .arg(&tar)
        .arg("bin")
        .status()
        .unwrap();
    assert!(st.success());
    ok(&b.berth(&["image", "import", tar.to_str().unwrap(), "nocmd:v1"]));
    let out = b.run(&["nocmd:v1"]);
    assert_eq!(out.code, 125);
    assert!(
        out.stderr.contains("No command specified"),
        "{}",
        out.stderr
    );
    let _ = std::fs::remove_file(tar);
}
