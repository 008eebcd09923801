//! Escapes: bind sources. A learner's `-v SRC:DST` names a path of the lab,
//! which the learner changes at will while the engine resolves and mounts
//! it; and the capabilities a learner's container holds.
//!
//! The swap races run a loop in the lab (through the lab's own terminal, as
//! the learner would) that flips a directory with a symlink to `/`, while the
//! learner's docker CLI mounts that directory again and again for a bounded
//! time. Judged by host state: the canary's directory name (in the host's
//! world-readable /var/tmp) and its secret never show, and nothing appears
//! beside the secret.

use std::time::{Duration, Instant};

use super::common::classroom::Term;
use super::{Canary, Lab};

const PROMPT: &str = "root@node1:~# ";
const LONG: Duration = Duration::from_secs(60);
/// How long each race runs (the suite's bound is 20 s).
const RACE: Duration = Duration::from_secs(15);

/// The lab's shell, at its prompt.
async fn shell(lab: &Lab) -> Term {
    let mut t = lab.classroom.terminal(&lab.token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    t
}

/// Starts `script` looping in the background of the lab's shell.
fn start_loop(rt: &tokio::runtime::Runtime, term: &mut Term, script: &str) {
    let line = format!("( while :; do {script}; done ) >/dev/null 2>&1 & echo $! > /tmp/swap.pid");
    let out = rt.block_on(term.run(&line, LONG));
    assert!(out.is_some(), "the loop did not start: {:?}", term.text());
}

fn stop_loop(rt: &tokio::runtime::Runtime, term: &mut Term) {
    let _ = rt.block_on(term.run("kill $(cat /tmp/swap.pid)", LONG));
}

/// The canary's directory as a path below `/` (what the lab's `/` swapped
/// in for a directory would show it as), and its name.
fn canary_below_root(canary: &Canary) -> (String, String) {
    let rel = canary
        .path()
        .strip_prefix("/")
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let name = canary
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    (rel, name)
}

/// Runs `docker run --rm -v <spec> busybox sh -c <cmd>` until `RACE` passes;
/// panics as soon as the output shows the secret, or the command's own
/// output (not an error message, which may quote the learner's path) the
/// canary directory's name.
fn mount_repeatedly(lab: &Lab, canary: &Canary, spec: &str, cmd: &str) -> usize {
    let (_, name) = canary_below_root(canary);
    let deadline = Instant::now() + RACE;
    let mut tries = 0;
    while Instant::now() < deadline {
        let run = lab.docker(&["run", "--rm", "-v", spec, "busybox", "sh", "-c", cmd]);
        canary.assert_not_in(&format!("{}{}", run.stdout, run.stderr));
        assert!(
            !run.stdout.contains(&name),
            "try {tries}: the host's /var/tmp showed through the bind: {}",
            run.stdout
        );
        tries += 1;
    }
    tries
}

#[test]
fn a_bind_source_swapped_for_a_link_to_root_never_mounts_the_hosts_root() {
    let lab = Lab::new();
    let canary = Canary::new();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut term = rt.block_on(shell(&lab));
    start_loop(
        &rt,
        &mut term,
        "rm -rf /swap; mkdir /swap; rm -rf /swap; ln -s / /swap",
    );
    let tries = mount_repeatedly(
        &lab,
        &canary,
        "/swap:/x",
        "ls /x/var/tmp; cat /x/var/tmp/berth-canary-*/secret; true",
    );
    stop_loop(&rt, &mut term);
    assert!(tries > 0);
    canary.assert_untouched();
}

/// Puts the static probe at `/probe` in the lab, as a learner could (by
/// typing it in); the host side of the lab's root is found by a marker the
/// lab's shell makes.
fn probe_into_lab(lab: &Lab, rt: &tokio::runtime::Runtime, term: &mut Term) {
    let marker = format!(".lab-{}", std::process::id());
    rt.block_on(term.run(&format!("touch /{marker}"), LONG))
        .expect("marker");
    let containers = lab.classroom.data_dir().join("containers");
    let rootfs = std::fs::read_dir(&containers)
        .unwrap()
        .map(|e| e.unwrap().path().join("rootfs"))
        .find(|r| r.join(&marker).exists())
        .expect("the lab's root");
    std::fs::copy(super::common::probe().join("probe"), rootfs.join("probe")).unwrap();
}

#[test]
fn a_missing_bind_source_is_made_inside_the_lab_even_while_its_parent_is_swapped() {
    let lab = Lab::new();
    let canary = Canary::new();
    let (rel, _) = canary_below_root(&canary);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut term = rt.block_on(shell(&lab));
    probe_into_lab(&lab, &rt, &mut term);
    // `/a` is by turns a directory holding the canary's path and a link to
    // `/` (exchanged atomically, as fast as the lab can); `-v
    // /a/<canary dir>/made` makes `made` where `/a/<canary dir>` resolved.
    // Made through the link on the host, it would sit beside the secret.
    // The swapper removes `made` again each time, to keep the engine making it.
    let setup = format!(
        "mkdir -p /a/{rel} && ln -s / /b && (/probe swap /a /b /a/{rel}/made /b/{rel}/made \
         >/dev/null 2>&1 &)"
    );
    rt.block_on(term.run(&setup, LONG)).expect("swapper");
    let tries = mount_repeatedly(&lab, &canary, &format!("/a/{rel}/made:/x"), "ls /x; true");
    let _ = rt.block_on(term.run("killall probe", LONG));
    assert!(tries > 0);
    canary.assert_untouched();
}

/// The capability bits of a `/proc/<pid>/status` line such as `CapBnd`.
fn cap_bits(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line.split_whitespace().nth(1).unwrap(), 16).unwrap()
}

const CAP_CHOWN: u64 = 1 << 0;
const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
const CAP_NET_RAW: u64 = 1 << 13;
const CAP_MKNOD: u64 = 1 << 27;

#[test]
fn learner_containers_lack_net_raw_and_mknod_and_ping_sockets_still_work() {
    let lab = Lab::new();
    let status = lab.ok(&["run", "--rm", "busybox", "cat", "/proc/self/status"]);
    for field in ["CapBnd", "CapEff", "CapPrm"] {
        let bits = cap_bits(&status, field);
        assert_eq!(bits & CAP_NET_RAW, 0, "{field} holds NET_RAW: {status}");
        assert_eq!(bits & CAP_MKNOD, 0, "{field} holds MKNOD: {status}");
        assert_ne!(bits & CAP_CHOWN, 0, "{field} lost CHOWN: {status}");
        assert_ne!(bits & CAP_NET_BIND_SERVICE, 0, "{field}: {status}");
    }
    // `docker exec` gets the container's set, not more.
    lab.ok(&["run", "-d", "--name", "idle", "busybox", "sleep", "60"]);
    let exec = lab.ok(&["exec", "idle", "cat", "/proc/self/status"]);
    assert_eq!(cap_bits(&exec, "CapBnd") & (CAP_NET_RAW | CAP_MKNOD), 0);
    lab.ok(&["rm", "-f", "idle"]);

    // Unprivileged ICMP sockets (net.ipv4.ping_group_range) answer an echo;
    // raw and packet sockets are refused. The probe goes in with `docker cp`.
    lab.ok(&[
        "create",
        "--name",
        "probe",
        "busybox",
        "/probe",
        "icmp_raw",
        "packet",
        "icmp_dgram",
        "ping_lo",
    ]);
    let probe = super::common::probe().join("probe");
    lab.ok(&["cp", probe.to_str().unwrap(), "probe:/probe"]);
    let out = lab.ok(&["start", "-a", "probe"]);
    assert_eq!(
        out, "icmp_raw EPERM\npacket EPERM\nicmp_dgram ok\nping_lo ok\n",
        "{out}"
    );
    lab.ok(&["rm", "probe"]);
    let range = lab.ok(&[
        "run",
        "--rm",
        "busybox",
        "cat",
        "/proc/sys/net/ipv4/ping_group_range",
    ]);
    // Every group of the container: in its user namespace, the gids it maps.
    let range: Vec<u64> = range
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(range[0], 0, "{range:?}");
    assert!(range[1] >= 65535, "{range:?}");
    // Device nodes are refused.
    let mknod = lab.docker(&[
        "run",
        "--rm",
        "busybox",
        "mknod",
        "/tmp/null",
        "c",
        "1",
        "3",
    ]);
    assert_ne!(mknod.code, 0, "mknod worked: {mknod:?}");
    assert!(
        mknod.stderr.contains("Operation not permitted"),
        "{mknod:?}"
    );
    // Asking for it back is refused, with the classroom's reason.
    let add = lab.docker(&["run", "--rm", "--cap-add", "NET_RAW", "busybox", "true"]);
    assert_ne!(add.code, 0);
    assert!(
        add.stderr
            .contains("capability NET_RAW is not allowed in this classroom"),
        "{add:?}"
    );

    // The lab itself is the learner's container too.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut term = rt.block_on(shell(&lab));
    let lab_status = rt
        .block_on(term.run("cat /proc/self/status", LONG))
        .expect("status");
    let bits = cap_bits(&lab_status, "CapBnd");
    assert_eq!(bits & (CAP_NET_RAW | CAP_MKNOD), 0, "{lab_status}");
}
