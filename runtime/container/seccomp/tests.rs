//! Profile contents, compilation, and a real filter in a child process.
#![allow(unsafe_code)]

use std::process::Command;

use nix::errno::Errno;
use oci_spec::runtime::{LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};

use super::*;

fn caps(list: &[&str]) -> Vec<String> {
    list.iter().map(|c| c.to_string()).collect()
}

fn default_caps_profile() -> LinuxSeccomp {
    docker_default(&caps(DOCKER_DEFAULT_CAPS))
}

/// Entries naming `name`, as (action, errnoRet, has conditions).
fn entries(p: &LinuxSeccomp, name: &str) -> Vec<(LinuxSeccompAction, Option<u32>, bool)> {
    p.syscalls()
        .iter()
        .flatten()
        .filter(|s| s.names().iter().any(|n| n == name))
        .map(|s| (s.action(), s.errno_ret(), s.args().is_some()))
        .collect()
}

fn allowed_always(p: &LinuxSeccomp, name: &str) -> bool {
    entries(p, name)
        .iter()
        .any(|(a, _, cond)| *a == LinuxSeccompAction::ScmpActAllow && !cond)
}

#[test]
fn default_action_is_eperm() {
    let p = default_caps_profile();
    assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
    assert_eq!(p.default_errno_ret(), Some(libc::EPERM as u32));
}

#[test]
fn default_caps_allow_the_everyday_calls_and_chroot() {
    let p = default_caps_profile();
    for name in [
        "read", "write", "execve", "clone", "fork", "openat", "chroot", "ptrace", "seccomp",
    ] {
        assert!(!entries(&p, name).is_empty(), "{name} should be named");
    }
    for name in [
        "write",
        "execve",
        "chroot",
        "ptrace",
        "name_to_handle_at",
        "pidfd_open",
    ] {
        assert!(allowed_always(&p, name), "{name} should be allowed");
    }
    assert!(ALLOWED.len() > 330, "allowlist has {} names", ALLOWED.len());
}

#[test]
fn default_caps_block_the_escape_calls() {
    let p = default_caps_profile();
    let blocked = [
        "mount",
        "umount2",
        "unshare",
        "setns",
        "pivot_root",
        "keyctl",
        "add_key",
        "request_key",
        "userfaultfd",
        "kexec_load",
        "io_uring_setup",
        "io_uring_enter",
        "io_uring_register",
        "bpf",
        "perf_event_open",
        "syslog",
        "acct",
        "swapon",
        "init_module",
        "quotactl",
        "uselib",
        "ustat",
        "sysfs",
        "_sysctl",
        "vm86",
        "fanotify_init",
        "sethostname",
        "open_by_handle_at",
        "fsopen",
        "fsconfig",
        "move_mount",
        "open_tree",
        "reboot",
        "kcmp",
    ];
    for name in blocked {
        assert!(entries(&p, name).is_empty(), "{name} should not be named");
    }
}

#[test]
fn socket_refuses_af_alg_and_af_vsock() {
    let p = default_caps_profile();
    let rules: Vec<_> = p
        .syscalls()
        .iter()
        .flatten()
        .filter(|s| s.names() == &["socket".to_string()])
        .map(|s| {
            let a = s.args().as_ref().unwrap()[0];
            (a.index(), a.op(), a.value())
        })
        .collect();
    use LinuxSeccompOperator::*;
    assert_eq!(
        rules,
        vec![(0, ScmpCmpLt, 38), (0, ScmpCmpEq, 39), (0, ScmpCmpGt, 40)]
    );
}

#[test]
fn personality_allows_five_values() {
    let p = default_caps_profile();
    let values: Vec<u64> = p
        .syscalls()
        .iter()
        .flatten()
        .filter(|s| s.names() == &["personality".to_string()])
        .map(|s| s.args().as_ref().unwrap()[0].value())
        .collect();
    assert_eq!(values, vec![0, 8, 0x20000, 0x20008, 0xffff_ffff]);
}

#[test]
fn clone_is_masked_and_clone3_is_enosys_without_sys_admin() {
    let p = default_caps_profile();
    let clone: Vec<_> = p
        .syscalls()
        .iter()
        .flatten()
        .filter(|s| s.names() == &["clone".to_string()])
        .collect();
    assert_eq!(clone.len(), 1);
    let arg = clone[0].args().as_ref().unwrap()[0];
    assert_eq!(arg.op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
    assert_eq!((arg.value(), arg.value_two()), (0x7E02_0000, Some(0)));
    let enosys = (
        LinuxSeccompAction::ScmpActErrno,
        Some(libc::ENOSYS as u32),
        false,
    );
    assert_eq!(entries(&p, "clone3"), vec![enosys]);
}

#[test]
fn sys_admin_unlocks_mount_and_namespaces() {
    let p = docker_default(&caps(&["sys_admin", "CAP_SYS_PTRACE"]));
    for name in [
        "mount", "umount2", "unshare", "setns", "clone", "clone3", "kcmp",
    ] {
        assert!(allowed_always(&p, name), "{name} should be allowed");
    }
    assert!(entries(&p, "clone3")
        .iter()
        .all(|(a, _, _)| *a == LinuxSeccompAction::ScmpActAllow));
    assert!(
        entries(&p, "chroot").is_empty(),
        "no CAP_SYS_CHROOT, no chroot"
    );
}

#[test]
fn default_program_compiles_into_two_small_filters() {
    let prog = default_program();
    // Base filter (EPERM default) and the clone3 ENOSYS filter.
    assert_eq!(prog.filter_count(), 2);
    assert!(prog.filters.iter().all(|f| !f.is_empty() && f.len() < 4096));
    let json = serde_json::to_string(prog).unwrap();
    let back: SeccompProgram = serde_json::from_str(&json).unwrap();
    assert_eq!(&back, prog);
}

#[test]
fn every_operator_and_action_compiles() {
    let json = r#"{
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            {"names": ["kill"], "action": "SCMP_ACT_KILL_PROCESS", "args": [
                {"index": 0, "value": 1, "op": "SCMP_CMP_NE"},
                {"index": 1, "value": 2, "op": "SCMP_CMP_LT"},
                {"index": 2, "value": 3, "op": "SCMP_CMP_LE"},
                {"index": 3, "value": 4, "op": "SCMP_CMP_GE"},
                {"index": 4, "value": 5, "op": "SCMP_CMP_GT"},
                {"index": 5, "value": 6, "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["tkill"], "action": "SCMP_ACT_TRAP"},
            {"names": ["tgkill"], "action": "SCMP_ACT_LOG"},
            {"names": ["no_such_call", "chown32"], "action": "SCMP_ACT_KILL"}
        ]
    }"#;
    let profile: LinuxSeccomp = serde_json::from_str(json).unwrap();
    let prog = compile(&profile).unwrap();
    // Default ALLOW: no base filter; one per action that has known calls.
    assert_eq!(prog.filter_count(), 4);
}

#[test]
fn notify_and_bad_arg_index_are_errors() {
    let notify = r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#;
    let profile: LinuxSeccomp = serde_json::from_str(notify).unwrap();
    assert!(matches!(
        compile(&profile),
        Err(SeccompError::UnsupportedAction { .. })
    ));
    let bad = r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["kill"],
        "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#;
    let profile: LinuxSeccomp = serde_json::from_str(bad).unwrap();
    let err = compile(&profile).unwrap_err();
    assert_eq!(
        err.to_string(),
        "seccomp rule for kill: argument index 6 is out of range 0-5"
    );
}

const PROBE_ENV: &str = "BERTH_SECCOMP_PROBE";

/// Runs the test `name` of this binary in a fresh process with the probe
/// variable set, so its filter cannot leak into other tests.
fn run_probe(name: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &format!("container::seccomp::tests::{name}")])
        .args(["--nocapture", "--test-threads=1"])
        .env(PROBE_ENV, "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "probe failed:\n{text}");
    assert!(
        text.contains("seccomp probe ok"),
        "probe did not run:\n{text}"
    );
}

#[test]
fn default_filter_blocks_escapes_in_a_child_process() {
    run_probe("probe_child");
}

#[test]
fn custom_profile_arg_rules_in_a_child_process() {
    run_probe("probe_custom_child");
}

/// A permissive profile whose `getpriority` rules exercise 64-bit GE,
/// MASKED_EQ and per-rule errno values.
#[test]
fn probe_custom_child() {
    if std::env::var_os(PROBE_ENV).is_none() {
        return;
    }
    let json = r#"{
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13,
             "args": [{"index": 0, "value": 100, "op": "SCMP_CMP_GE"}]},
            {"names": ["getpriority"], "action": "SCMP_ACT_ERRNO", "errnoRet": 14,
             "args": [{"index": 1, "value": 240, "valueTwo": 48, "op": "SCMP_CMP_MASKED_EQ"}]}
        ]
    }"#;
    let profile: LinuxSeccomp = serde_json::from_str(json).unwrap();
    install(&compile(&profile).unwrap()).unwrap();
    let getpriority = |which, who| raw_syscall(libc::SYS_getpriority, which, who, 0);
    assert_eq!(getpriority(100, 0), Err(Errno::EACCES), "GE");
    assert_eq!(
        getpriority(1 << 32, 0),
        Err(Errno::EACCES),
        "GE compares 64 bits"
    );
    assert_eq!(getpriority(0, 0x35), Err(Errno::EFAULT), "MASKED_EQ");
    assert!(getpriority(0, 0).is_ok(), "PRIO_PROCESS of self");
    assert!(raw_syscall(libc::SYS_getppid, 0, 0, 0).is_ok());
    println!("seccomp probe ok");
}

fn raw_syscall(
    nr: libc::c_long,
    a: libc::c_long,
    b: libc::c_long,
    c: libc::c_long,
) -> Result<libc::c_long, Errno> {
    // SAFETY: the calls probed here take only integers, or null pointers the
    // kernel checks; none touches this process's memory.
    let rc = unsafe { libc::syscall(nr, a, b, c) };
    if rc == -1 {
        Err(Errno::last())
    } else {
        Ok(rc)
    }
}

#[test]
fn probe_child() {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    if std::env::var_os(PROBE_ENV).is_none() {
        return;
    }
    install(default_program()).unwrap();

    let ns = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS);
    assert_eq!(ns, Err(Errno::EPERM), "unshare");
    let flags = nix::mount::MsFlags::empty();
    let mount = nix::mount::mount(Some("none"), "/tmp", Some("tmpfs"), flags, None::<&str>);
    assert_eq!(mount, Err(Errno::EPERM), "mount");
    // KEYCTL_GET_KEYRING_ID (0) of KEY_SPEC_SESSION_KEYRING (-3).
    assert_eq!(
        raw_syscall(libc::SYS_keyctl, 0, -3, 0),
        Err(Errno::EPERM),
        "keyctl"
    );
    assert_eq!(
        raw_syscall(libc::SYS_clone3, 0, 0, 0),
        Err(Errno::ENOSYS),
        "clone3"
    );
    let newuser = libc::c_long::from(libc::CLONE_NEWUSER | libc::SIGCHLD);
    let cloned = raw_syscall(libc::SYS_clone, newuser, 0, 0);
    if cloned == Ok(0) {
        // SAFETY: in the accidental child, leave at once without unwinding.
        unsafe { libc::_exit(0) };
    }
    assert_eq!(cloned, Err(Errno::EPERM), "clone(CLONE_NEWUSER)");
    assert_eq!(
        raw_syscall(libc::SYS_personality, 0x0040_0000, 0, 0),
        Err(Errno::EPERM)
    );
    assert!(
        raw_syscall(libc::SYS_personality, 0xffff_ffff, 0, 0).is_ok(),
        "personality query"
    );
    let alg = socket(
        AddressFamily::Alg,
        SockType::SeqPacket,
        SockFlag::empty(),
        None,
    );
    assert_eq!(alg.err(), Some(Errno::EPERM), "socket(AF_ALG)");
    let vsock = socket(
        AddressFamily::Vsock,
        SockType::Stream,
        SockFlag::empty(),
        None,
    );
    assert_eq!(vsock.err(), Some(Errno::EPERM), "socket(AF_VSOCK)");

    assert!(socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::empty(),
        None
    )
    .is_ok());
    assert_eq!(nix::unistd::getpid().as_raw(), std::process::id() as i32);
    // glibc tries clone3 for posix_spawn and threads, then falls back to clone.
    assert!(
        Command::new("/bin/true").status().unwrap().success(),
        "fork + exec"
    );
    assert_eq!(std::thread::spawn(|| 7).join().unwrap(), 7, "thread");
    println!("seccomp probe ok");
}
