//! Abuse: daemon-side resources. What one learner's containers, attaches and
//! execs cost the host stays bounded, and is given back.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Lab;

/// User plus system CPU time of `pid` so far, in clock ticks.
fn cpu_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("process is alive");
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split(' ').collect();
    // Fields 14 and 15 of stat(5), counted after the command name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn parent_of(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    after_comm.split(' ').nth(1).unwrap().parse().unwrap()
}

/// The host pid of the monitor (`berth __init`) of container `name`: the
/// parent of its pid 1.
fn monitor_of(lab: &Lab, name: &str) -> i32 {
    let pid: i32 = lab
        .ok(&["inspect", "-f", "{{.State.Pid}}", name])
        .trim()
        .parse()
        .unwrap();
    let monitor = parent_of(pid);
    let cmdline = std::fs::read(format!("/proc/{monitor}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&cmdline).contains("__init"),
        "parent of the container's pid 1 is not its monitor"
    );
    monitor
}

/// Panics when `pid` uses more than a sliver of CPU over two seconds: an idle
/// monitor sleeps in poll(2); a spinning one burns about a core.
fn assert_idle(pid: i32, what: &str) {
    let before = cpu_ticks(pid);
    std::thread::sleep(Duration::from_secs(2));
    let used = cpu_ticks(pid) - before;
    assert!(
        used <= 10,
        "{what}: the monitor used {used} ticks of CPU in 2 s while nothing happened"
    );
}

/// `docker attach` to a container, then the client vanishes (a closed laptop
/// lid, a killed terminal): the container's monitor must go back to sleep,
/// not spin on the hung-up socket. With a terminal and without.
#[test]
fn a_hung_up_attach_leaves_the_monitor_idle() {
    let lab = Lab::new();
    let ticker = "while true; do echo tick; sleep 0.2; done";
    lab.ok(&[
        "run", "-d", "-t", "--name", "tty", "busybox", "sh", "-c", ticker,
    ]);
    lab.ok(&[
        "run", "-d", "--name", "plain", "busybox", "sh", "-c", ticker,
    ]);
    for name in ["tty", "plain"] {
        let monitor = monitor_of(&lab, name);
        assert_idle(monitor, &format!("{name}: before any attach"));
        for round in 0..2 {
            let mut attach = Command::new("docker")
                .env("DOCKER_HOST", format!("unix://{}", lab.socket.display()))
                .env(
                    "DOCKER_CONFIG",
                    lab.classroom.data.path().join("docker-cli"),
                )
                .env_remove("DOCKER_CONTEXT")
                .args(["attach", "--no-stdin", name])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("docker attach");
            // Attached once the container's output comes through.
            let out = attach.stdout.take().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(out).read_line(&mut line);
                let _ = tx.send(line);
            });
            let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
            attach.kill().unwrap();
            let end = attach.wait_with_output().unwrap();
            assert!(
                line.contains("tick"),
                "{name}, attach {round}: saw {line:?}, {}",
                String::from_utf8_lossy(&end.stderr)
            );
            // The next tick finds the client gone, whichever side notices.
            std::thread::sleep(Duration::from_millis(500));
            assert_idle(
                monitor,
                &format!("{name}: after the attach client was killed"),
            );
        }
        assert_eq!(
            lab.ok(&["inspect", "-f", "{{.State.Running}}", name])
                .trim(),
            "true"
        );
    }
}

/// A container that closes its own output (`exec >&- 2>&-`) while it keeps
/// running leaves hung-up pipes: the monitor must not spin on them.
#[test]
fn a_container_that_closes_its_output_leaves_the_monitor_idle() {
    let lab = Lab::new();
    lab.ok(&[
        "run",
        "-d",
        "--name",
        "quiet",
        "busybox",
        "sh",
        "-c",
        "echo started; exec >&- 2>&-; sleep 1000",
    ]);
    let monitor = monitor_of(&lab, "quiet");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !lab.ok(&["logs", "quiet"]).contains("started") {
        assert!(Instant::now() < deadline, "container never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_idle(monitor, "after the container closed its stdout and stderr");
}

/// The filter: on a 60-character name, a pattern of thirteen `*a`
/// and a `b` took a recursive matcher exponential time and pinned the
/// server's workers. It answers, with Docker's result, and so does a bad
/// pattern (Go's words).
#[test]
fn a_many_star_image_filter_answers() {
    let lab = Lab::new();
    let name = "a".repeat(60);
    lab.ok(&["tag", "busybox", &name]);
    let pattern = format!("reference={}b", "*a".repeat(13));
    for _ in 0..3 {
        let out = lab.ok(&[
            "images",
            "--format",
            "{{.Repository}}",
            "--filter",
            &pattern,
        ]);
        assert_eq!(out.trim(), "", "nothing ends in b");
    }
    let out = lab.ok(&[
        "images",
        "--format",
        "{{.Repository}}",
        "--filter",
        &format!("reference={}*", "*a".repeat(13)),
    ]);
    assert_eq!(out.trim(), name);
    let bad = lab.docker(&["images", "--filter", "reference=web["]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("syntax error in pattern"),
        "{}",
        bad.stderr
    );
    assert_eq!(
        lab.classroom.http("GET", "/healthz", None, None).status,
        200
    );
}

/// A session holds at most `--max-containers-per-session` containers; the
/// next `docker create` is refused in Docker's words and works again once
/// one is removed.
#[test]
fn a_sessions_containers_are_capped() {
    let lab = Lab::with_args(&["--max-containers-per-session", "3"]);
    let mut made = 0;
    let refused = loop {
        let run = lab.docker(&["create", "busybox", "true"]);
        if run.code != 0 {
            break run;
        }
        made += 1;
        assert!(made <= 3, "more containers than the limit");
    };
    assert!(
        refused.stderr.contains(
            "Error response from daemon: session limit of 3 containers reached: remove containers with docker rm or docker container prune"
        ),
        "{}",
        refused.stderr
    );
    lab.ok(&["container", "prune", "-f"]);
    lab.ok(&["create", "busybox", "true"]);
}

/// Requests one session has in its handlers at once are capped: two uploads
/// that never finish hold both slots, the third request is refused with a
/// clear message, and the session answers again once they are gone.
#[test]
fn a_sessions_concurrent_requests_are_capped() {
    use std::io::Write as _;
    let lab = Lab::with_args(&["--max-requests-per-session", "2"]);
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = std::os::unix::net::UnixStream::connect(&lab.socket).unwrap();
        s.write_all(
            b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        )
        .unwrap();
        stalled.push(s);
    }
    // The stalled uploads are in their handlers once a third is refused.
    let deadline = Instant::now() + Duration::from_secs(20);
    let refused = loop {
        let run = lab.docker(&["ps"]);
        if run.code != 0 {
            break run;
        }
        assert!(Instant::now() < deadline, "never refused");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        refused
            .stderr
            .contains("session limit of 2 concurrent requests reached"),
        "{}",
        refused.stderr
    );
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(20);
    while lab.docker(&["ps"]).code != 0 {
        assert!(
            Instant::now() < deadline,
            "the session never answered again"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `docker run --rm` whose start is refused by the request cap must not
/// leave its CLI waiting forever: the CLI then waits for the container's
/// removal (as dockerd removes a `--rm` container that failed to start), so
/// a refused start removes it too. (200 concurrent `docker run --rm` in one
/// session had wedged a hundred CLIs this way.)
#[test]
fn a_refused_start_of_a_rm_container_removes_it() {
    use std::io::{Read as _, Write as _};
    let lab = Lab::with_args(&["--max-requests-per-session", "2"]);
    let id = lab
        .ok(&["create", "--rm", "busybox", "true"])
        .trim()
        .to_string();
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = std::os::unix::net::UnixStream::connect(&lab.socket).unwrap();
        s.write_all(
            b"POST /containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{",
        )
        .unwrap();
        stalled.push(s);
    }
    // Both slots are held once a plain request is refused.
    let deadline = Instant::now() + Duration::from_secs(40);
    while lab.docker(&["ps"]).code == 0 {
        assert!(Instant::now() < deadline, "never refused");
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut s = std::os::unix::net::UnixStream::connect(&lab.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(
        format!("POST /v1.47/containers/{id}/start HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
    drop(stalled);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let run = lab.docker(&["ps", "-aq", "--no-trunc"]);
        if run.code == 0 {
            assert!(
                !run.stdout.contains(&id),
                "the refused --rm container is still there"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the session never answered again"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every cgroup `pid` is in, one line per hierarchy (`/proc/PID/cgroup`).
fn cgroups_of(pid: i32) -> Vec<String> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.rsplit(':').next().unwrap_or("").to_string())
        .filter(|p| !p.is_empty() && p != "/")
        .collect()
}

/// A container's monitor lives in its session's cgroup (a `monitors` leaf
/// beside the containers), so 300 `docker run -d` cost the learner's memory
/// budget, not the host's; and the session's end takes it all away.
#[test]
fn a_containers_monitor_counts_against_its_session() {
    let lab = Lab::new();
    lab.ok(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "300"]);
    let monitor = monitor_of(&lab, "sleeper");
    let groups = cgroups_of(monitor);
    assert!(!groups.is_empty(), "monitor {monitor} has no cgroup");
    for g in &groups {
        assert!(
            g.contains(&format!("/{}/", lab.session)) && g.ends_with("/monitors"),
            "monitor {monitor} is in {g}, outside the session's cgroup"
        );
    }
    // `docker pause` freezes the container, never its monitor.
    lab.ok(&["pause", "sleeper"]);
    let state = std::fs::read_to_string(format!("/proc/{monitor}/stat")).unwrap();
    let after_comm = &state[state.rfind(')').unwrap() + 2..];
    assert_ne!(&after_comm[..1], "D", "monitor frozen with its container");
    lab.ok(&["unpause", "sleeper"]);
    // The session ends: its monitors and cgroups go with it.
    let r = lab
        .classroom
        .http("DELETE", "/api/session", Some(&lab.token), None);
    assert!(r.status < 300, "end session: {} {}", r.status, r.body);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && (std::path::Path::new(&format!("/proc/{monitor}")).exists()
            || !crate::common::classroom::session_cgroups(&lab.session).is_empty())
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !std::path::Path::new(&format!("/proc/{monitor}")).exists(),
        "monitor {monitor} outlived its session"
    );
    assert_eq!(
        crate::common::classroom::session_cgroups(&lab.session),
        Vec::<std::path::PathBuf>::new(),
        "the session's cgroups outlived it"
    );
}
