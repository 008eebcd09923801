//! Regression tests for what the CLI differential (docker CLI 28 and
//! docker-py against dockerd and against `berth daemon`) found differing,
//! each through the real client that found it, named after what broke.
//! Docker 28 is the reference where 20.10 words things otherwise.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::engine::Engine;

#[test]
fn docker_py_run_with_remove_reads_the_log_config() {
    let e = Engine::start();
    let run = e.python(
        r#"
import docker
c = docker.from_env()
print(c.containers.run("busybox", "echo hi", remove=True).decode().strip())
"#,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout.trim(), "hi");
    assert!(e.ok(&["ps", "-aq"]).trim().is_empty(), "removed");
    // The CLI sees the daemon's default driver, as with dockerd.
    e.ok(&["create", "--name", "quiet", "busybox", "true"]);
    assert_eq!(
        e.ok(&["inspect", "-f", "{{.HostConfig.LogConfig.Type}}", "quiet"])
            .trim(),
        "json-file"
    );
}

#[test]
fn docker_py_stats_without_stream_answers_once() {
    let e = Engine::start();
    e.ok(&["run", "-d", "--name", "busy", "busybox", "sleep", "60"]);
    // `stream=False` reaches the daemon as `stream=False` (Go's ParseBool).
    let run = e.python(
        r#"
import docker
c = docker.from_env(timeout=20)
s = c.containers.get("busy").stats(stream=False)
print(s["name"], "memory_stats" in s, "cpu_stats" in s)
"#,
    );
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout.trim(), "/busy True True");
}

#[test]
fn top_with_ps_options_shows_the_columns_asked_for() {
    let e = Engine::start();
    e.ok(&["run", "-d", "--name", "sleeper", "busybox", "sleep", "60"]);
    let top = e.ok(&["top", "sleeper", "-o", "pid,comm"]);
    let mut lines = top.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["PID", "COMMAND"], "{top}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(row.len(), 2, "{top}");
    assert!(row[0].parse::<u32>().is_ok(), "{top}");
    assert_eq!(row[1], "sleep", "{top}");
    // The default stays `-ef`'s columns.
    let default = e.ok(&["top", "sleeper"]);
    assert!(
        default.starts_with("UID") && default.contains("CMD") && default.contains("sleep 60"),
        "{default}"
    );
    // A format ps does not know is refused, not ignored.
    let bad = e.docker(&["top", "sleeper", "-o", "pid,nosuchfield"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("nosuchfield"), "{}", bad.stderr);
}

#[test]
fn run_rm_of_a_missing_command_prints_only_dockers_error() {
    let e = Engine::start();
    let run = e.docker(&["run", "--rm", "busybox", "nosuchcommand"]);
    assert_eq!(run.code, 127, "{}", run.stderr);
    assert!(
        run.stderr.starts_with(
            "docker: Error response from daemon: failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: exec: \"nosuchcommand\": executable file not found in $PATH: unknown\n"
        ),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("Error waiting"), "{}", run.stderr);
    assert!(e.ok(&["ps", "-aq"]).trim().is_empty(), "--rm removed it");
}

#[test]
fn dockerfile_parse_errors_use_docker_28s_words() {
    let e = Engine::start();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\nFORM x\n").unwrap();
    let build = e.docker(&["build", ctx.path().to_str().unwrap()]);
    assert_ne!(build.code, 0);
    assert!(
        build
            .stderr
            .contains("dockerfile parse error on line 2: unknown instruction: FORM"),
        "{}",
        build.stderr
    );
}

#[test]
fn build_labels_are_echoed_as_written() {
    let e = Engine::start();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM busybox\n").unwrap();
    let out = e.ok(&[
        "build",
        "--label",
        "com.docker.compose.image.builder=classic",
        "--label",
        "a=b c",
        "-t",
        "labelled",
        ctx.path().to_str().unwrap(),
    ]);
    // One step per label, sorted, as the classic builder's NewLabelCommand.
    assert!(out.contains("Step 2/3 : LABEL a=b c\n"), "{out}");
    assert!(
        out.contains("Step 3/3 : LABEL com.docker.compose.image.builder=classic\n"),
        "{out}"
    );
    let labels = e.ok(&["inspect", "-f", "{{json .Config.Labels}}", "labelled"]);
    assert!(labels.contains(r#""a":"b c""#), "{labels}");
    assert!(
        labels.contains(r#""com.docker.compose.image.builder":"classic""#),
        "{labels}"
    );
}

#[test]
fn rmi_of_a_built_image_deletes_its_unused_parents() {
    let e = Engine::start();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM busybox\nRUN echo a > /a\nENV X=1\nRUN echo b > /b\n",
    )
    .unwrap();
    e.ok(&["build", "-t", "layered", ctx.path().to_str().unwrap()]);
    let before = e.ok(&["images", "-aq"]).lines().count();
    assert_eq!(before, 4, "busybox, two parents, the image");
    let rmi = e.ok(&["rmi", "layered"]);
    assert_eq!(
        rmi.lines()
            .filter(|l| l.starts_with("Deleted: sha256:"))
            .count(),
        3,
        "{rmi}"
    );
    assert_eq!(e.ok(&["images", "-aq"]).lines().count(), 1);
}

#[test]
fn daemon_binds_a_root_only_dir_as_dockerd_does() {
    let e = Engine::start();
    let dir = tempfile::Builder::new()
        .prefix("berth-bind-")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(dir.path().join("in.txt"), "from the host\n").unwrap();
    std::fs::set_permissions(
        dir.path().join("in.txt"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let bind = format!("{}:/app", dir.path().display());
    let out = e.ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "cat /app/in.txt && echo made > /app/out.txt",
    ]);
    assert_eq!(out, "from the host\n");
    let made = std::fs::metadata(dir.path().join("out.txt")).unwrap();
    assert_eq!((made.uid(), made.gid()), (0, 0), "written as host root");
}

#[test]
fn daemon_userns_remap_default_maps_root_to_dockremap() {
    let e = Engine::start_with(&["--userns-remap", "default"]);
    let subuid = std::fs::read_to_string("/etc/subuid").unwrap();
    let base: u32 = subuid
        .lines()
        .find_map(|l| l.strip_prefix("dockremap:"))
        .and_then(|r| r.split(':').next())
        .and_then(|s| s.parse().ok())
        .expect("dockerd's dockremap user and range");
    let dir = tempfile::Builder::new()
        .prefix("berth-remap-")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let bind = format!("{}:/app", dir.path().display());
    e.ok(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo made > /app/out.txt",
    ]);
    let made = std::fs::metadata(dir.path().join("out.txt")).unwrap();
    assert_eq!(made.uid(), base, "container root is dockremap's first id");
    // And a root-only dir is out of its reach, as with dockerd's remapping.
    let private = tempfile::Builder::new()
        .prefix("berth-remap-private-")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(private.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let bind = format!("{}:/app", private.path().display());
    let denied = e.docker(&["run", "--rm", "-v", &bind, "busybox", "ls", "/app"]);
    assert_ne!(denied.code, 0, "{}", denied.stdout);
    assert!(
        denied.stderr.contains("Permission denied"),
        "{}",
        denied.stderr
    );
}

#[test]
fn daemon_refuses_a_remap_user_without_ranges() {
    let data = tempfile::Builder::new()
        .prefix("berth-remap-bad-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .args(["daemon", "--socket"])
        .arg(data.path().join("d.sock"))
        .args(["--userns-remap", "nosuchuser:nosuchgroup"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no user \"nosuchuser\""), "{err}");
}

#[test]
fn port_lists_and_serves_ipv6_beside_ipv4() {
    use std::io::{Read, Write};
    let e = Engine::start();
    e.ok(&[
        "run", "-d", "--name", "web", "-p", "38181:80", "busybox", "httpd", "-f", "-p", "80", "-h",
        "/etc",
    ]);
    assert_eq!(
        e.ok(&["port", "web"]),
        "80/tcp -> 0.0.0.0:38181\n80/tcp -> [::]:38181\n"
    );
    // The [::] line is a real listener: HTTP over IPv6 loopback answers.
    let answered = common::engine::eventually(std::time::Duration::from_secs(10), || {
        let Ok(mut s) = std::net::TcpStream::connect("[::1]:38181") else {
            return false;
        };
        let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
        let _ = s.write_all(b"GET /passwd HTTP/1.0\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.starts_with("HTTP/1.") && out.contains(" 200 ")
    });
    assert!(answered, "no answer on [::1]:38181");
    e.ok(&["rm", "-f", "web"]);
    assert!(
        std::net::TcpStream::connect("[::1]:38181").is_err(),
        "the IPv6 listener went with the container"
    );
}

#[test]
fn inspect_info_version_and_df_have_the_fields_sdks_read() {
    let e = Engine::start();
    let run = e.python(include_str!("fixtures/api_fields.py"));
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(run.stdout.trim(), "all present");
}
