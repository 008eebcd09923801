//! `--cap-add` / `--cap-drop` through the real docker CLI: the sets a
//! container's processes (and its execs) hold, Docker's words for bad names,
//! and what a classroom learner may not add (judged by host state).

mod common;

use common::engine::Engine;
use common::lab::{Canary, Lab};

/// The `CapEff` line of `/proc/self/status` in `docker <args> grep ...`.
fn cap_eff(out: &str) -> &str {
    out.lines()
        .find_map(|l| l.strip_prefix("CapEff:\t"))
        .unwrap_or_else(|| panic!("no CapEff in {out:?}"))
}

// A learner's default: Docker's set without NET_RAW (bit 13) and MKNOD (27).
const LEARNER_DEFAULT: &str = "00000000a00405fb";

#[test]
fn cap_drop_takes_capabilities_away_in_the_container_and_its_execs() {
    let lab = Lab::new();
    let chown = lab.docker(&[
        "run",
        "--rm",
        "--cap-drop",
        "CHOWN",
        "busybox",
        "chown",
        "1",
        "/tmp",
    ]);
    assert_ne!(chown.code, 0, "{}", chown.stdout);
    assert!(
        chown.stderr.contains("Operation not permitted"),
        "{}",
        chown.stderr
    );
    // Without the drop, root in the container may chown.
    lab.ok(&["run", "--rm", "busybox", "chown", "1", "/tmp"]);

    let status = ["grep", "^Cap", "/proc/self/status"];
    let all = lab.ok(&[
        &["run", "--rm", "--cap-drop", "ALL", "busybox"][..],
        &status,
    ]
    .concat());
    assert_eq!(cap_eff(&all), "0000000000000000", "{all}");
    assert!(all.contains("CapBnd:\t0000000000000000"), "{all}");
    let plain = lab.ok(&[&["run", "--rm", "busybox"][..], &status].concat());
    assert_eq!(cap_eff(&plain), LEARNER_DEFAULT, "{plain}");

    // An exec holds the container's set, not the default one.
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "capbox",
        "--cap-drop",
        "chown",
        "--cap-add",
        "sys_ptrace",
        "busybox",
        "sleep",
        "60",
    ]);
    let exec = lab.ok(&[&["exec", "capbox"][..], &status].concat());
    // CHOWN (bit 0) gone, SYS_PTRACE (bit 19) there.
    assert_eq!(cap_eff(&exec), "00000000a00c05fa", "{exec}");
    let chown = lab.docker(&["exec", "capbox", "chown", "1", "/tmp"]);
    assert_ne!(chown.code, 0);
    assert!(
        chown.stderr.contains("Operation not permitted"),
        "{}",
        chown.stderr
    );
    let inspect = lab.ok(&[
        "inspect",
        "-f",
        "{{.HostConfig.CapAdd}} {{.HostConfig.CapDrop}}",
        "capbox",
    ]);
    assert_eq!(inspect.trim(), "[CAP_SYS_PTRACE] [CAP_CHOWN]");
    lab.ok(&["rm", "-f", "capbox"]);
}

#[test]
fn an_allowed_cap_add_shows_in_the_effective_set() {
    let lab = Lab::new();
    let out = lab.ok(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_PTRACE",
        "busybox",
        "grep",
        "^CapEff",
        "/proc/self/status",
    ]);
    assert_eq!(cap_eff(&out), "00000000a00c05fb", "{out}");
    // Only what was added back after dropping everything.
    let out = lab.ok(&[
        "run",
        "--rm",
        "--cap-drop",
        "all",
        "--cap-add",
        "cap_kill",
        "busybox",
        "grep",
        "^CapEff",
        "/proc/self/status",
    ]);
    assert_eq!(cap_eff(&out), "0000000000000020", "{out}");
}

#[test]
fn unknown_capabilities_are_refused_with_dockers_words() {
    let lab = Lab::new();
    for (flag, field) in [("--cap-add", "CapAdd"), ("--cap-drop", "CapDrop")] {
        let out = lab.docker(&["run", "--rm", flag, "FOO", "busybox", "true"]);
        assert_eq!(out.code, 125, "{}", out.stdout);
        assert!(
            out.stderr.contains(&format!(
                "Error response from daemon: invalid {field}: unknown capability: \"CAP_FOO\""
            )),
            "{}",
            out.stderr
        );
    }
    assert_eq!(lab.ok(&["ps", "-aq"]).trim(), "");
}

#[test]
fn a_learner_cannot_add_host_powers_or_use_them() {
    let lab = Lab::new();
    let canary = Canary::new();
    let path = canary.path().display().to_string();
    // With SYS_ADMIN a container could mount, make namespaces and reach the
    // canary's filesystem; the classroom refuses it before anything runs.
    let attack = format!(
        "mkdir -p /m; mount -t proc proc /m; cat /m/1/root{path} {path}; \
         unshare -m -U true && echo unshared"
    );
    for cap in [
        "SYS_ADMIN",
        "cap_sys_admin",
        "ALL",
        "NET_ADMIN",
        "NET_RAW",
        "SYS_MODULE",
    ] {
        let out = lab.docker(&[
            "run",
            "--rm",
            "--cap-add",
            cap,
            "busybox",
            "sh",
            "-c",
            &attack,
        ]);
        assert_eq!(out.code, 125, "{cap}: {}", out.stdout);
        let shown = cap.to_ascii_uppercase();
        let shown = shown.strip_prefix("CAP_").unwrap_or(&shown);
        assert!(
            out.stderr.contains(&format!(
                "Error response from daemon: capability {shown} is not allowed in this classroom"
            )),
            "{cap}: {}",
            out.stderr
        );
        canary.assert_not_in(&out.stdout);
        canary.assert_not_in(&out.stderr);
    }
    let privileged = lab.docker(&[
        "run",
        "--rm",
        "--privileged",
        "busybox",
        "sh",
        "-c",
        &attack,
    ]);
    assert_eq!(privileged.code, 125, "{}", privileged.stdout);
    assert!(
        privileged
            .stderr
            .contains("--privileged is not allowed in this classroom"),
        "{}",
        privileged.stderr
    );
    // `--pid host` would show the host's processes: refused as well
    // (`berth daemon` allows both, as dockerd: tests/fidelity2.rs).
    let host_pid = lab.docker(&[
        "run",
        "--rm",
        "--pid",
        "host",
        "busybox",
        "cat",
        "/proc/1/comm",
    ]);
    assert_eq!(host_pid.code, 125, "{}", host_pid.stdout);
    assert!(
        host_pid
            .stderr
            .contains("--pid host is not allowed in this classroom"),
        "{}",
        host_pid.stderr
    );
    // Nothing was created, and an allowed add still cannot mount.
    assert_eq!(lab.ok(&["ps", "-aq"]).trim(), "");
    let allowed = lab.docker(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_PTRACE",
        "busybox",
        "sh",
        "-c",
        &attack,
    ]);
    canary.assert_not_in(&allowed.stdout);
    canary.assert_not_in(&allowed.stderr);
    assert!(!allowed.stdout.contains("unshared"), "{}", allowed.stdout);
    canary.assert_untouched();
}

#[test]
fn the_host_daemon_follows_docker_for_cap_add() {
    let engine = Engine::start();
    let out = engine.ok(&[
        "run",
        "--rm",
        "--cap-add",
        "SYS_ADMIN",
        "busybox",
        "sh",
        "-c",
        "grep ^CapEff /proc/self/status; mkdir /m && mount -t tmpfs none /m && echo mounted",
    ]);
    // Docker's default set plus SYS_ADMIN (bit 21), and its seccomp profile
    // then lets mount through, as Docker's does.
    assert_eq!(cap_eff(&out), "00000000a82425fb", "{out}");
    assert!(out.contains("mounted"), "{out}");
    let plain = engine.docker(&[
        "run", "--rm", "busybox", "mount", "-t", "tmpfs", "none", "/mnt",
    ]);
    assert_ne!(plain.code, 0, "{}", plain.stdout);
}
