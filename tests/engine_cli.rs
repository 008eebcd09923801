//! The Engine API through the real docker CLI: what `docker` prints and how
//! it exits, command by command, as a learner would type them.

mod common;

use std::path::Path;
use std::time::Duration;

use common::engine::{eventually, Engine};

#[test]
fn version_info_and_df_answer_like_dockerd() {
    let e = Engine::start();
    let version = e.ok(&["version"]);
    assert!(version.contains("Server: Berth"), "{version}");
    assert!(version.contains("API version:      1.50"), "{version}");
    let info = e.ok(&[
        "info",
        "--format",
        "{{.Containers}} {{.Images}} {{.OSType}} {{.Swarm.LocalNodeState}}",
    ]);
    assert_eq!(info.trim(), "0 1 linux inactive");
    let df = e.ok(&["system", "df"]);
    assert!(df.starts_with("TYPE"), "{df}");
    assert!(df.contains("Images"), "{df}");
}

#[test]
fn run_prints_output_and_passes_the_exit_code() {
    let e = Engine::start();
    let run = e.docker(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(run.code, 3);
    assert_eq!(run.stdout, "out\n");
    assert_eq!(run.stderr, "err\n");
    assert_eq!(e.ok(&["ps", "-aq"]), "", "--rm removed the container");
}

#[test]
fn run_flags_reach_the_container() {
    let e = Engine::start();
    let env_file = e.data.path().join("env.list");
    std::fs::write(&env_file, "FROM_FILE=yes\n# comment\n").unwrap();
    let out = e.ok(&[
        "run",
        "--rm",
        "-e",
        "GREETING=hello",
        "--env-file",
        env_file.to_str().unwrap(),
        "-w",
        "/tmp/work",
        "-u",
        "nobody",
        "--hostname",
        "boat",
        "--label",
        "lesson=3",
        "busybox",
        "sh",
        "-c",
        "echo $GREETING $FROM_FILE; pwd; id -un; hostname",
    ]);
    assert_eq!(out, "hello yes\n/tmp/work\nnobody\nboat\n");
    let entry = e.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "busybox",
        "from",
        "entrypoint",
    ]);
    assert_eq!(entry, "from entrypoint\n");
    let limits = e.ok(&[
        "run", "--rm", "-m", "64m", "--cpus", "0.5", "--pids-limit", "30", "busybox", "sh", "-c",
        "cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max",
    ]);
    let values: Vec<&str> = limits.split_whitespace().collect();
    assert!(values.contains(&"67108864"), "{limits}");
    assert!(values.contains(&"30"), "{limits}");
    assert!(values.contains(&"50000"), "{limits}");
}

#[test]
fn piped_stdin_reaches_run_dash_i() {
    let e = Engine::start();
    let run = e.docker_stdin(
        &[
            "run",
            "--rm",
            "-i",
            "busybox",
            "sh",
            "-c",
            "tr a-z A-Z; echo done",
        ],
        b"hello\nworld\n",
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "HELLO\nWORLD\ndone\n");
}

#[test]
fn missing_image_takes_dockers_unable_to_find_path() {
    let e = Engine::start();
    let run = e.docker(&["run", "--rm", "nosuchimage"]);
    assert_eq!(run.code, 125, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("Unable to find image 'nosuchimage:latest' locally"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("busybox:latest"),
        "the error names what the classroom has: {}",
        run.stderr
    );
}

#[test]
fn detached_lifecycle_create_start_stop_restart_pause_kill_rm() {
    let e = Engine::start();
    let id = e.ok(&["create", "--name", "web", "busybox", "sleep", "300"]);
    assert_eq!(id.trim().len(), 64);
    assert_eq!(
        e.ok(&["inspect", "-f", "{{.State.Status}}", "web"]).trim(),
        "created"
    );
    assert_eq!(e.ok(&["start", "web"]).trim(), "web");
    assert_eq!(
        e.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.Running}}",
            "web"
        ])
        .trim(),
        "running true"
    );
    assert_eq!(e.ok(&["pause", "web"]).trim(), "web");
    assert!(e
        .ok(&["ps", "--format", "{{.Status}}"])
        .contains("(Paused)"));
    let paused_again = e.docker(&["pause", "web"]);
    assert_eq!(paused_again.code, 1);
    assert!(
        paused_again.stderr.contains("is already paused"),
        "{}",
        paused_again.stderr
    );
    assert_eq!(e.ok(&["unpause", "web"]).trim(), "web");
    let rm_running = e.docker(&["rm", "web"]);
    assert_eq!(rm_running.code, 1);
    assert!(
        rm_running.stderr.contains("cannot remove container \"/web\": container is running: stop the container before removing or force remove"),
        "{}",
        rm_running.stderr
    );
    // sleep ignores SIGTERM as pid 1: stop waits the grace period, then kills.
    let started = std::time::Instant::now();
    assert_eq!(e.ok(&["stop", "-t", "1", "web"]).trim(), "web");
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(
        e.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "web"
        ])
        .trim(),
        "exited 137"
    );
    assert_eq!(
        e.ok(&["stop", "web"]).trim(),
        "web",
        "stopping a stopped container is fine"
    );
    assert_eq!(e.ok(&["restart", "-t", "0", "web"]).trim(), "web");
    assert_eq!(
        e.ok(&["inspect", "-f", "{{.State.Status}}", "web"]).trim(),
        "running"
    );
    assert_eq!(e.ok(&["kill", "-s", "TERM", "web"]).trim(), "web");
    assert_eq!(e.ok(&["kill", "web"]).trim(), "web");
    assert!(eventually(Duration::from_secs(5), || e
        .ok(&["inspect", "-f", "{{.State.Status}}", "web"])
        .trim()
        == "exited"));
    let not_running = e.docker(&["kill", "web"]);
    assert_eq!(not_running.code, 1);
    assert!(
        not_running.stderr.contains("is not running"),
        "{}",
        not_running.stderr
    );
    assert_eq!(e.ok(&["rename", "web", "web2"]).trim(), "");
    assert_eq!(e.ok(&["rm", "web2"]).trim(), "web2");
    assert_eq!(e.ok(&["ps", "-aq"]), "");
}

#[test]
fn stop_sends_sigterm_first_and_a_trap_exits_cleanly() {
    let e = Engine::start();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "polite",
        "busybox",
        "sh",
        "-c",
        "trap 'echo bye; exit 3' TERM; while true; do sleep 0.1; done",
    ]);
    let started = std::time::Instant::now();
    e.ok(&["stop", "polite"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no need to wait for SIGKILL"
    );
    assert_eq!(
        e.ok(&["inspect", "-f", "{{.State.ExitCode}}", "polite"])
            .trim(),
        "3"
    );
    assert_eq!(e.ok(&["logs", "polite"]), "bye\n");
}

#[test]
fn wait_returns_the_exit_code_and_start_attach_streams() {
    let e = Engine::start();
    e.ok(&[
        "create",
        "--name",
        "job",
        "busybox",
        "sh",
        "-c",
        "echo working; exit 4",
    ]);
    let attached = e.docker(&["start", "-a", "job"]);
    assert_eq!(attached.stdout, "working\n");
    assert_eq!(attached.code, 4);
    assert_eq!(e.ok(&["wait", "job"]).trim(), "4");
    let input = e.docker_stdin(&["start", "-a", "-i", "job"], b"");
    assert_eq!(input.code, 4);
}

#[test]
fn ps_lists_filters_and_formats() {
    let e = Engine::start();
    e.ok(&[
        "run", "-d", "--name", "a1", "--label", "tier=web", "busybox", "sleep", "300",
    ]);
    e.ok(&[
        "run", "-d", "--name", "b1", "--label", "tier=db", "busybox", "sleep", "300",
    ]);
    e.ok(&["run", "--name", "done1", "busybox", "true"]);
    let running = e.ok(&["ps", "--format", "{{.Names}}"]);
    assert_eq!(running, "b1\na1\n", "newest first, running only");
    let all = e.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(all.contains("done1 Exited (0)"), "{all}");
    assert_eq!(e.ok(&["ps", "-q"]).lines().count(), 2);
    assert_eq!(
        e.ok(&["ps", "-a", "-n", "1", "--format", "{{.Names}}"]),
        "done1\n"
    );
    assert_eq!(
        e.ok(&["ps", "--filter", "label=tier=web", "--format", "{{.Names}}"]),
        "a1\n"
    );
    assert_eq!(
        e.ok(&["ps", "--filter", "label=tier", "-q"])
            .lines()
            .count(),
        2
    );
    assert_eq!(
        e.ok(&[
            "ps",
            "-a",
            "--filter",
            "status=exited",
            "--format",
            "{{.Names}}"
        ]),
        "done1\n"
    );
    assert_eq!(
        e.ok(&["ps", "--filter", "name=b", "--format", "{{.Names}}"]),
        "b1\n"
    );
    assert_eq!(
        e.ok(&["ps", "--filter", "ancestor=busybox", "-q"])
            .lines()
            .count(),
        2
    );
    let table = e.ok(&["ps"]);
    assert!(
        table.starts_with("CONTAINER ID   IMAGE     COMMAND       CREATED"),
        "{table}"
    );
    assert!(table.contains("\"sleep 300\""), "{table}");
    assert!(table.contains("Up "), "{table}");
    let bad = e.docker(&["ps", "--filter", "colour=red"]);
    assert_eq!(bad.code, 1);
    assert!(
        bad.stderr.contains("invalid filter 'colour'"),
        "{}",
        bad.stderr
    );
}

#[test]
fn healthchecks_show_in_ps_and_inspect_and_change_state() {
    let e = Engine::start();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "doc",
        "--health-cmd",
        "test -f /tmp/ok",
        "--health-interval",
        "200ms",
        "--health-retries",
        "2",
        "busybox",
        "sleep",
        "300",
    ]);
    assert!(e
        .ok(&["ps", "--format", "{{.Status}}"])
        .contains("(health: starting)"));
    assert_eq!(
        e.ok(&["ps", "--filter", "health=starting", "-q"])
            .lines()
            .count(),
        1
    );
    assert!(eventually(Duration::from_secs(10), || e
        .ok(&["inspect", "-f", "{{.State.Health.Status}}", "doc"])
        .trim()
        == "unhealthy"));
    e.ok(&["exec", "doc", "touch", "/tmp/ok"]);
    assert!(eventually(Duration::from_secs(10), || e
        .ok(&["inspect", "-f", "{{.State.Health.Status}}", "doc"])
        .trim()
        == "healthy"));
    assert!(e
        .ok(&["ps", "--format", "{{.Status}}"])
        .contains("(healthy)"));
    let log = e.ok(&[
        "inspect",
        "-f",
        "{{range .State.Health.Log}}{{.ExitCode}} {{end}}",
        "doc",
    ]);
    assert!(log.trim().ends_with('0') && log.contains('1'), "{log}");
}

#[test]
fn restart_policies_bring_containers_back() {
    let e = Engine::start();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "busybox",
        "sh",
        "-c",
        "exit 1",
    ]);
    assert!(eventually(Duration::from_secs(15), || {
        e.ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "flaky",
        ])
        .trim()
            == "2 exited"
    }));
    e.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "busybox",
        "sh",
        "-c",
        "sleep 0.2",
    ]);
    assert!(eventually(Duration::from_secs(10), || {
        e.ok(&["inspect", "-f", "{{.RestartCount}}", "always"])
            .trim()
            .parse::<u32>()
            .unwrap_or(0)
            >= 2
    }));
    e.ok(&["stop", "always"]);
    let count = e.ok(&["inspect", "-f", "{{.RestartCount}}", "always"]);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        e.ok(&[
            "inspect",
            "-f",
            "{{.RestartCount}} {{.State.Status}}",
            "always"
        ])
        .trim(),
        format!("{} exited", count.trim())
    );
    let bad = e.docker(&["run", "--restart", "sometimes", "busybox", "true"]);
    assert_eq!(bad.code, 125);
}

#[test]
fn logs_tail_timestamps_and_follow() {
    let e = Engine::start();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "talker",
        "busybox",
        "sh",
        "-c",
        "for i in 1 2 3 4 5; do echo line $i; done; echo oops >&2; sleep 1; echo late",
    ]);
    assert!(eventually(Duration::from_secs(5), || e
        .docker(&["logs", "talker"])
        .stdout
        .contains("line 5")));
    let tail = e.docker(&["logs", "--tail", "2", "talker"]);
    assert_eq!(tail.stdout, "line 5\n");
    assert_eq!(tail.stderr, "oops\n");
    let stamped = e.ok(&["logs", "-t", "--tail", "1", "talker"]);
    assert!(
        stamped.starts_with("20") && stamped.contains("Z line") || stamped.is_empty(),
        "{stamped}"
    );
    let follow = e.docker(&["logs", "-f", "talker"]);
    assert!(
        follow.stdout.ends_with("line 5\nlate\n"),
        "follow ends when the container does: {}",
        follow.stdout
    );
    let none = e.docker(&["logs", "--since", "2099-01-01T00:00:00Z", "talker"]);
    assert_eq!(none.stdout, "");
}

#[test]
fn exec_runs_inside_with_flags_and_exit_codes() {
    let e = Engine::start();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "box",
        "-e",
        "FROM_RUN=1",
        "busybox",
        "sleep",
        "300",
    ]);
    assert_eq!(e.ok(&["exec", "box", "sh", "-c", "echo $FROM_RUN"]), "1\n");
    assert_eq!(
        e.ok(&[
            "exec",
            "-e",
            "X=2",
            "-w",
            "/tmp",
            "-u",
            "nobody",
            "box",
            "sh",
            "-c",
            "echo $X; pwd; id -u"
        ]),
        "2\n/tmp\n65534\n"
    );
    assert_eq!(e.docker(&["exec", "box", "sh", "-c", "exit 42"]).code, 42);
    let missing = e.docker(&["exec", "box", "nosuchcmd"]);
    assert_eq!(missing.code, 127, "{}", missing.stderr);
    assert!(
        missing.stdout.contains("executable file not found")
            || missing.stderr.contains("executable file not found")
    );
    e.ok(&["exec", "-d", "box", "sh", "-c", "echo detached > /tmp/d"]);
    assert!(eventually(Duration::from_secs(5), || e
        .docker(&["exec", "box", "cat", "/tmp/d"])
        .stdout
        == "detached\n"));
    let piped = e.docker_stdin(&["exec", "-i", "box", "wc", "-l"], b"a\nb\nc\n");
    assert_eq!(piped.stdout.trim(), "3");
    e.ok(&["stop", "-t", "0", "box"]);
    let stopped = e.docker(&["exec", "box", "true"]);
    assert_eq!(stopped.code, 1);
    assert!(
        stopped.stderr.contains("is not running"),
        "{}",
        stopped.stderr
    );
}

#[test]
fn top_stats_diff_and_commit() {
    let e = Engine::start();
    e.ok(&[
        "run",
        "-d",
        "--name",
        "app",
        "busybox",
        "sh",
        "-c",
        "echo hi > /tmp/new.txt; rm /etc/group; sleep 300",
    ]);
    assert!(eventually(Duration::from_secs(5), || e
        .ok(&["diff", "app"])
        .contains("A /tmp/new.txt")));
    let top = e.ok(&["top", "app"]);
    assert!(top.starts_with("UID"), "{top}");
    assert!(top.contains("sleep 300"), "{top}");
    let stats = e.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}}",
        "app",
    ]);
    assert_eq!(stats.trim(), "app 1", "sh replaced itself with sleep");
    let diff = e.ok(&["diff", "app"]);
    assert!(
        diff.contains("C /tmp\n") && diff.contains("D /etc/group\n"),
        "{diff}"
    );
    // The engine's own mount points (/etc/hostname, /etc/resolv.conf) are not changes.
    assert!(
        !diff.contains("hostname") && !diff.contains("resolv.conf"),
        "{diff}"
    );
    let id = e.ok(&[
        "commit",
        "-m",
        "with a file",
        "-c",
        "CMD [\"cat\", \"/tmp/new.txt\"]",
        "app",
        "snap:v1",
    ]);
    assert!(id.trim().starts_with("sha256:"), "{id}");
    assert_eq!(e.ok(&["run", "--rm", "snap:v1"]), "hi\n");
    let history = e.ok(&["history", "--format", "{{.Comment}}", "snap:v1"]);
    assert_eq!(history.lines().next(), Some("with a file"));
    assert_eq!(
        e.ok(&[
            "image",
            "inspect",
            "-f",
            "{{len .RootFS.Layers}}",
            "snap:v1"
        ])
        .trim(),
        "2"
    );
}

#[test]
fn images_tag_rmi_prune_save_load_import() {
    let e = Engine::start();
    let images = e.ok(&["images"]);
    assert!(
        images.starts_with("REPOSITORY   TAG       IMAGE ID       CREATED       SIZE"),
        "{images}"
    );
    assert!(images.contains("busybox      latest"), "{images}");
    e.ok(&["tag", "busybox", "myimg:v2"]);
    e.ok(&["tag", "busybox:latest", "localhost:5000/me/app:1"]);
    let tags = e.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(
        tags.contains("myimg:v2") && tags.contains("localhost:5000/me/app:1"),
        "{tags}"
    );
    assert_eq!(e.ok(&["images", "-q", "myimg"]).lines().count(), 1);
    assert_eq!(e.ok(&["rmi", "myimg:v2"]).trim(), "Untagged: myimg:v2");
    e.ok(&["create", "--name", "user", "busybox", "true"]);
    let id = e.ok(&["images", "-q", "busybox"]).trim().to_string();
    let in_use = e.docker(&["rmi", &id]);
    assert_eq!(in_use.code, 1);
    assert!(
        in_use.stderr.contains("conflict: unable to delete"),
        "{}",
        in_use.stderr
    );
    let archive = e.data.path().join("bb.tar");
    e.ok(&["save", "-o", archive.to_str().unwrap(), "busybox"]);
    let other = Engine::start();
    other.ok(&["rmi", "busybox"]);
    assert!(other.ok(&["images", "-q"]).is_empty());
    let loaded = other.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert_eq!(loaded.trim(), "Loaded image: busybox:latest");
    assert_eq!(
        other.ok(&["images", "-q", "busybox"]).trim(),
        id,
        "same image ID after save/load"
    );
    assert_eq!(
        other.ok(&["run", "--rm", "busybox", "echo", "loaded"]),
        "loaded\n"
    );
    // import: a rootfs tarball becomes a one-layer image.
    let rootfs = e.data.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox")).unwrap();
    let tarball = e.data.path().join("rootfs.tar");
    assert!(std::process::Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg("bin")
        .status()
        .unwrap()
        .success());
    e.ok(&[
        "import",
        "-c",
        "CMD [\"/bin/busybox\", \"echo\", \"imported\"]",
        tarball.to_str().unwrap(),
        "imp:1",
    ]);
    assert_eq!(e.ok(&["run", "--rm", "imp:1"]), "imported\n");
    e.ok(&["rm", "user"]);
    e.ok(&["tag", "imp:1", "imp:2"]);
    e.ok(&["rmi", "imp:1"]);
    let pruned = e.ok(&["image", "prune", "-a", "-f"]);
    assert!(pruned.contains("Deleted"), "{pruned}");
    let missing = e.docker(&["rmi", "nosuch"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("No such image: nosuch:latest"),
        "{}",
        missing.stderr
    );
}

#[test]
fn errors_use_dockers_words() {
    let e = Engine::start();
    let cases: &[(&[&str], &str)] = &[
        (&["inspect", "ghost"], "No such object: ghost"),
        (&["logs", "ghost"], "No such container: ghost"),
        (&["stop", "ghost"], "No such container: ghost"),
        (
            &["run", "--name", "bad name", "busybox", "true"],
            "Invalid container name (bad name)",
        ),
        (
            &["run", "-m", "1k", "busybox", "true"],
            "Minimum memory limit allowed is 6MB",
        ),
        (
            &["run", "--ipc", "host", "busybox", "true"],
            "not allowed in this classroom",
        ),
    ];
    for (args, message) in cases {
        let run = e.docker(args);
        assert_ne!(run.code, 0, "{args:?}");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    e.ok(&["create", "--name", "taken", "busybox", "true"]);
    let conflict = e.docker(&["run", "--name", "taken", "busybox", "true"]);
    assert_eq!(conflict.code, 125, "docker run exits 125 on daemon errors");
    assert!(
        conflict
            .stderr
            .contains("Conflict. The container name \"/taken\" is already in use by container"),
        "{}",
        conflict.stderr
    );
    let rm_f_missing = e.docker(&["rm", "-f", "ghost"]);
    assert_eq!(
        rm_f_missing.code, 0,
        "rm -f of a missing container is not fatal"
    );
    // A `--rm` container whose command cannot start is still removed, and
    // the CLI returns instead of waiting forever for the removal.
    let missing = e.docker(&["run", "--rm", "--name", "nocmd", "busybox", "nosuchcmd"]);
    assert_eq!(missing.code, 127, "{}", missing.stderr);
    assert!(
        missing
            .stderr
            .contains("executable file not found in $PATH"),
        "{}",
        missing.stderr
    );
    assert!(!e
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .contains("nocmd"));
}

#[test]
fn container_prune_removes_stopped_ones() {
    let e = Engine::start();
    e.ok(&["run", "--name", "old1", "busybox", "true"]);
    e.ok(&["run", "--name", "old2", "busybox", "true"]);
    e.ok(&["run", "-d", "--name", "live", "busybox", "sleep", "300"]);
    let out = e.ok(&["container", "prune", "-f"]);
    assert!(out.contains("Deleted Containers:"), "{out}");
    assert_eq!(e.ok(&["ps", "-a", "--format", "{{.Names}}"]), "live\n");
}

#[test]
fn the_engine_survives_abuse() {
    let e = Engine::start();
    let (status, body) = e.http("POST /v1.50/containers/create HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{not json");
    assert!(status.contains("400"), "{status}");
    assert!(body.contains("invalid JSON"), "{body}");
    let (status, body) =
        e.http("GET /v1.50/no/such/endpoint HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(status.contains("404"), "{status}");
    assert!(body.contains("{\"message\":\"page not found\"}"), "{body}");
    let (status, body) =
        e.http("GET /v9.99/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    assert!(
        status.contains("400") && body.contains("is too new"),
        "{status} {body}"
    );
    // A client that goes away in the middle of a followed log.
    e.ok(&[
        "run",
        "-d",
        "--name",
        "chatty",
        "busybox",
        "sh",
        "-c",
        "while true; do echo spam; sleep 0.01; done",
    ]);
    let mut follower = e
        .cli()
        .args(["logs", "-f", "chatty"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    follower.kill().unwrap();
    let _ = follower.wait();
    assert_eq!(
        e.ok(&["inspect", "-f", "{{.State.Running}}", "chatty"])
            .trim(),
        "true"
    );
    assert!(e
        .ok(&["version", "--format", "{{.Server.Version}}"])
        .starts_with("0."));
}

#[test]
fn two_hundred_concurrent_runs_all_succeed_and_leave_nothing() {
    let e = Engine::start();
    let before_mounts = e.mounts();
    let handles: Vec<_> = (0..200)
        .map(|i| {
            let mut cmd = e.cli();
            cmd.args(["run", "--rm", "busybox", "true"]);
            std::thread::spawn(move || (i, cmd.output().unwrap()))
        })
        .collect();
    let mut failures = Vec::new();
    for h in handles {
        let (i, out) = h.join().unwrap();
        if !out.status.success() {
            failures.push((i, String::from_utf8_lossy(&out.stderr).into_owned()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(3)]
    );
    assert!(eventually(Duration::from_secs(10), || e
        .ok(&["ps", "-aq"])
        .is_empty()));
    assert_eq!(e.mounts(), before_mounts, "no mounts left");
    assert!(e.cgroups().is_empty(), "no cgroups left: {:?}", e.cgroups());
    assert_eq!(e.monitors(), 0, "no monitor processes left");
    let containers = std::fs::read_dir(e.data_dir().join("containers"))
        .unwrap()
        .count();
    assert_eq!(containers, 0, "no container state left");
}

#[test]
fn engine_restart_finds_every_container_as_it_left_them() {
    let mut e = Engine::start();
    e.ok(&["create", "--name", "c-created", "busybox", "true"]);
    e.ok(&[
        "run",
        "-d",
        "--name",
        "c-running",
        "busybox",
        "sleep",
        "300",
    ]);
    e.ok(&["run", "-d", "--name", "c-paused", "busybox", "sleep", "300"]);
    e.ok(&["pause", "c-paused"]);
    assert_eq!(
        e.docker(&["run", "--name", "c-exited", "busybox", "sh", "-c", "exit 6"])
            .code,
        6
    );
    e.ok(&["run", "-d", "--name", "c-dies", "busybox", "sleep", "300"]);
    let doomed_pid: i32 = e
        .ok(&["inspect", "-f", "{{.State.Pid}}", "c-dies"])
        .trim()
        .parse()
        .unwrap();
    e.crash();
    // While the engine is down, one container's process dies.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(doomed_pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    e.start_again();
    let states = e.ok(&["ps", "-a", "--format", "{{.Names}} {{.State}}"]);
    for want in [
        "c-created created",
        "c-running running",
        "c-paused paused",
        "c-exited exited",
        "c-dies exited",
    ] {
        assert!(
            states.lines().any(|l| l == want),
            "{want} missing from:\n{states}"
        );
    }
    assert_eq!(
        e.ok(&["inspect", "-f", "{{.State.ExitCode}}", "c-exited"])
            .trim(),
        "6"
    );
    assert_eq!(
        e.ok(&["inspect", "-f", "{{.State.ExitCode}}", "c-dies"])
            .trim(),
        "137"
    );
    assert_eq!(
        e.ok(&["exec", "c-running", "echo", "still here"]),
        "still here\n"
    );
    e.ok(&["unpause", "c-paused"]);
    e.ok(&["stop", "-t", "0", "c-running"]);
    assert_eq!(
        e.ok(&["inspect", "-f", "{{.State.Status}}", "c-running"])
            .trim(),
        "exited"
    );
    e.restart();
    assert_eq!(
        e.ok(&["inspect", "-f", "{{.State.Status}}", "c-paused"])
            .trim(),
        "running"
    );
}

#[test]
fn docker_cp_copies_both_ways_running_and_stopped() {
    let e = Engine::start();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("a.txt"), "hello from the host\n").unwrap();
    std::fs::create_dir(host.path().join("site")).unwrap();
    std::fs::write(host.path().join("site/index.html"), "<h1>hi</h1>\n").unwrap();
    let p = |name: &str| host.path().join(name).to_string_lossy().into_owned();
    e.ok(&["run", "-d", "--name", "box", "busybox", "sleep", "300"]);

    // Host → running container: a file into a directory, a directory under a new name.
    e.ok(&["cp", &p("a.txt"), "box:/tmp/"]);
    assert_eq!(
        e.ok(&["exec", "box", "cat", "/tmp/a.txt"]),
        "hello from the host\n"
    );
    e.ok(&["cp", &p("site"), "box:/srv"]);
    assert_eq!(
        e.ok(&["exec", "box", "cat", "/srv/index.html"]),
        "<h1>hi</h1>\n"
    );
    // Files copied in belong to the container's root, not to a host uid.
    assert_eq!(
        e.ok(&["exec", "box", "stat", "-c", "%u:%g", "/srv/index.html"])
            .trim(),
        "0:0"
    );

    // Container → host: a file, a directory, and a stream to stdout.
    e.ok(&[
        "exec",
        "box",
        "sh",
        "-c",
        "mkdir -p /data/sub && echo made-inside > /data/sub/f",
    ]);
    e.ok(&["cp", "box:/data", &p("out")]);
    assert_eq!(
        std::fs::read_to_string(host.path().join("out/sub/f")).unwrap(),
        "made-inside\n"
    );
    e.ok(&["cp", "box:/etc/passwd", &p("passwd")]);
    assert!(std::fs::read_to_string(host.path().join("passwd"))
        .unwrap()
        .starts_with("root:x:0:0:"));
    let tar = e
        .cli()
        .args(["cp", "box:/tmp/a.txt", "-"])
        .output()
        .unwrap();
    assert!(tar.status.success());
    let names: Vec<String> = tar::Archive::new(&tar.stdout[..])
        .entries()
        .unwrap()
        .map(|en| en.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["a.txt"]);

    // A symlink inside cannot lead a copy out to the host's files.
    e.ok(&["exec", "box", "ln", "-s", "/etc", "/tmp/escape"]);
    std::fs::write(host.path().join("berth-cp-probe"), "x").unwrap();
    e.ok(&["cp", &p("berth-cp-probe"), "box:/tmp/escape/"]);
    assert!(
        !Path::new("/etc/berth-cp-probe").exists(),
        "copied onto the host's /etc"
    );
    assert_eq!(e.ok(&["exec", "box", "cat", "/etc/berth-cp-probe"]), "x");

    // Missing paths use Docker's words.
    let missing = e.docker(&["cp", "box:/no/such/file", &p("x")]);
    assert_ne!(missing.code, 0);
    assert!(
        missing
            .stderr
            .contains("Could not find the file /no/such/file in container box"),
        "{}",
        missing.stderr
    );

    // A stopped container's files can be copied too, both ways.
    e.ok(&["stop", "-t", "0", "box"]);
    e.ok(&["cp", &p("a.txt"), "box:/a-while-stopped.txt"]);
    e.ok(&["cp", "box:/tmp/a.txt", &p("from-stopped.txt")]);
    assert_eq!(
        std::fs::read_to_string(host.path().join("from-stopped.txt")).unwrap(),
        "hello from the host\n"
    );
    e.ok(&["start", "box"]);
    assert_eq!(
        e.ok(&["exec", "box", "cat", "/a-while-stopped.txt"]),
        "hello from the host\n"
    );
    assert_eq!(
        e.ok(&["exec", "box", "stat", "-c", "%u", "/a-while-stopped.txt"])
            .trim(),
        "0"
    );
}

#[test]
fn init_forwards_signals_reaps_and_passes_the_exit_code() {
    let e = Engine::start();
    // pid 1 is the init; the command runs as its child.
    let ps = e.ok(&["run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm"]);
    let rows: Vec<Vec<&str>> = ps
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["1", "docker-init"], "{ps}");
    assert_eq!(rows[1], ["2", "ps"], "{ps}");
    assert!(
        !ps.contains("/work") && !ps.contains("target/"),
        "no host path inside: {ps}"
    );
    // The exit code passes through, and a command that is missing still says so.
    assert_eq!(
        e.docker(&["run", "--rm", "--init", "busybox", "sh", "-c", "exit 7"])
            .code,
        7
    );
    assert_eq!(
        e.docker(&["run", "--rm", "--init", "busybox", "nosuchcmd"])
            .code,
        127
    );
    // `sleep` as pid 1 ignores SIGTERM; under the init it gets it and dies at once.
    e.ok(&[
        "run", "-d", "--init", "--name", "sleeper", "busybox", "sleep", "300",
    ]);
    e.ok(&["stop", "-t", "30", "sleeper"]);
    assert_eq!(
        e.ok(&[
            "inspect",
            "-f",
            "{{.State.ExitCode}} {{.HostConfig.Init}}",
            "sleeper"
        ])
        .trim(),
        "143 true"
    );
    // Orphans are reaped: no zombie stays behind the exited background job.
    e.ok(&[
        "run",
        "-d",
        "--init",
        "--name",
        "parent",
        "busybox",
        "sh",
        "-c",
        "(sleep 0.2 &); exec sleep 300",
    ]);
    std::thread::sleep(Duration::from_millis(800));
    let states = e.ok(&["exec", "parent", "ps", "-o", "stat,comm"]);
    assert!(
        !states.lines().any(|l| l.trim_start().starts_with('Z')),
        "zombie left: {states}"
    );
}

#[test]
fn events_report_the_lifecycle_past_and_live() {
    let e = Engine::start();
    let since = e.ok(&["version", "-f", "{{.Server.Os}}"]); // the engine answers
    assert_eq!(since.trim(), "linux");
    // Live: a follower sees what happens after it starts.
    let follower = e
        .cli()
        .args([
            "events",
            "--filter",
            "container=evt",
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    e.ok(&["run", "--name", "evt", "busybox", "true"]);
    e.ok(&["rm", "evt"]);
    std::thread::sleep(Duration::from_millis(300));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(follower.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let live = String::from_utf8(follower.wait_with_output().unwrap().stdout).unwrap();
    let actions: Vec<&str> = live.lines().collect();
    for expected in [
        "container create evt",
        "container start evt",
        "container die evt",
        "container destroy evt",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected:?} missing from {actions:?}"
        );
    }
    // Past: --since/--until replay the same history and end. The CLI sends
    // `until` in whole seconds: wait for the second of the events to pass.
    std::thread::sleep(Duration::from_millis(1100));
    let past = e.ok(&[
        "events",
        "--since",
        "10m",
        "--until",
        "0s",
        "--filter",
        "event=die",
        "--format",
        "{{.Actor.Attributes.name}} {{.Actor.Attributes.exitCode}}",
    ]);
    assert_eq!(past.trim(), "evt 0");
}

/// `docker kill` returns once the container has stopped, as dockerd's does:
/// a `docker start` right after finds it exited and runs it again.
#[test]
fn kill_returns_once_the_container_stopped_so_start_right_after_works() {
    let e = Engine::start();
    e.ok(&["run", "-d", "--name", "ticker", "busybox", "sleep", "3600"]);
    e.ok(&["exec", "ticker", "sh", "-c", "echo kept > /tmp/note"]);
    assert_eq!(e.ok(&["kill", "ticker"]).trim(), "ticker");
    assert_eq!(
        e.ok(&[
            "inspect",
            "-f",
            "{{.State.Status}} {{.State.ExitCode}}",
            "ticker"
        ])
        .trim(),
        "exited 137"
    );
    assert_eq!(e.ok(&["start", "ticker"]).trim(), "ticker");
    assert_eq!(e.ok(&["exec", "ticker", "cat", "/tmp/note"]).trim(), "kept");
    e.ok(&["rm", "-f", "ticker"]);
}
