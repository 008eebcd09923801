//! The classroom end to end: `berth serve`, sessions over HTTP, the lab's
//! terminal over the WebSocket, the real docker CLI inside the lab.

mod common;

use std::time::Duration;

use common::classroom::{mounts_with, session_cgroups, Classroom, NextFrame};
use tokio_tungstenite::tungstenite::Message;

const PROMPT: &str = "root@node1:~# ";
const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_runs_docker_in_the_lab_and_sees_scrollback_after_reconnecting() {
    let c = Classroom::start(&[]);
    let (token, status) = c.new_session();
    assert_eq!(status["nodes"], serde_json::json!(["node1"]));
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    t.type_text("docker run --rm busybox echo hi\r").await;
    assert!(
        t.wait_for("\nhi\r\n", LONG).await,
        "no hi: {:?}\n{}",
        t.text(),
        c.log()
    );
    drop(t);

    // A new connection replays what the shell printed.
    let mut again = c.terminal(&token, "node1").await;
    assert!(
        again.wait_for("\nhi\r\n", LONG).await,
        "no scrollback: {:?}",
        again.text()
    );
    assert_eq!(again.messages[0]["type"], "hello");
    // UTF-8 and colours pass through untouched.
    let utf8 = again
        .run(
            "printf 'h\\303\\251llo \\342\\234\\223 \\033[31mred\\033[0m\\n'",
            LONG,
        )
        .await
        .unwrap();
    assert!(utf8.contains("héllo ✓ \u{1b}[31mred\u{1b}[0m"), "{utf8:?}");
    // The same shell: its history remembers the command.
    let out = again
        .run("history | tail -n 3", LONG)
        .await
        .expect("history");
    assert!(out.contains("docker run --rm busybox echo hi"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sessions_cannot_see_each_others_containers_files_ports_or_processes() {
    let c = Classroom::start(&[]);
    let (a_token, _) = c.new_session();
    let (b_token, _) = c.new_session();
    let mut a = c.terminal(&a_token, "node1").await;
    let mut b = c.terminal(&b_token, "node1").await;
    assert!(a.wait_for(PROMPT, LONG).await && b.wait_for(PROMPT, LONG).await);

    let out = a
        .run("docker run -d --name secret-web busybox sleep 1000 >/dev/null && docker ps --format '{{.Names}}'", LONG)
        .await
        .unwrap();
    assert!(out.contains("secret-web"), "A sees its container: {out}");
    a.run(
        "echo for-a-only > /root/a.txt; httpd -p 8080 -h /root",
        LONG,
    )
    .await
    .unwrap();
    let bound = a
        .run("docker run --rm -v $PWD:/app busybox cat /app/a.txt", LONG)
        .await
        .unwrap();
    assert!(
        bound.contains("for-a-only"),
        "-v $PWD binds the lab's directory: {bound}"
    );
    // A missing source directory is made in the lab, writable by the
    // container's root (the session's root), as Docker makes it.
    let made = a
        .run(
            "docker run --rm -v /root/made:/data busybox touch /data/x && ls /root/made",
            LONG,
        )
        .await
        .unwrap();
    assert!(
        made.contains('x'),
        "a new bind directory is writable: {made}"
    );
    let served = a
        .run("wget -qO- http://127.0.0.1:8080/a.txt", LONG)
        .await
        .unwrap();
    assert!(
        served.contains("for-a-only"),
        "A's port answers in A: {served}"
    );

    let ps = b
        .run("docker ps -a --format '{{.Names}}'", LONG)
        .await
        .unwrap();
    assert!(!ps.contains("secret-web"), "B sees A's container: {ps}");
    let inspect = b.run("docker inspect secret-web 2>&1", LONG).await.unwrap();
    assert!(
        inspect.contains("No such object") || inspect.contains("No such container"),
        "{inspect}"
    );
    let file = b.run("cat /root/a.txt 2>&1", LONG).await.unwrap();
    assert!(file.contains("No such file"), "B reads A's file: {file}");
    let procs = b.run("ps -o args", LONG).await.unwrap();
    assert!(
        !procs.contains("sleep 1000") && !procs.contains("httpd"),
        "B sees A's processes: {procs}"
    );
    let port = b
        .run(
            "wget -qO- -T 2 http://127.0.0.1:8080/a.txt 2>&1; echo rc=$?",
            LONG,
        )
        .await
        .unwrap();
    assert!(
        !port.contains("for-a-only") && !port.contains("rc=0"),
        "B reaches A's port: {port}"
    );
    let host = b
        .run(
            "docker run --rm -v /:/host busybox ls /host/var/tmp 2>&1 | grep -c berth-classroom",
            LONG,
        )
        .await
        .unwrap();
    assert_eq!(
        host.trim(),
        "0",
        "a bind of / must not show the host: {host}"
    );

    // `docker run -p` in a lab publishes in the node's own namespace: the lab
    // reaches it on localhost, the host does not, and another session can
    // publish the same port.
    let published = a
        .run(
            "docker run -d --name pub -p 8090:80 busybox httpd -f -p 80 -h /etc >/dev/null; sleep 1; wget -qO- http://127.0.0.1:8090/passwd",
            LONG,
        )
        .await
        .unwrap();
    assert!(
        published.contains("root:x:0:0"),
        "A's published port answers in A: {published}"
    );
    assert!(
        std::net::TcpStream::connect("127.0.0.1:8090").is_err(),
        "a lab's published port must not listen on the host"
    );
    let again = b
        .run(
            "docker run -d --name pub -p 8090:80 busybox httpd -f -p 80 -h /etc >/dev/null && echo started-in-b",
            LONG,
        )
        .await
        .unwrap();
    assert!(
        again.contains("started-in-b"),
        "B publishes the same port: {again}"
    );
}

/// Everything the host holds for one session: mounts, cgroups, the pinned
/// namespace, the session directory.
fn traces(c: &Classroom, session: &str) -> Vec<String> {
    let dir = c.data_dir().join("sessions").join(session);
    let mut t: Vec<String> = mounts_with(&dir.to_string_lossy())
        .into_iter()
        .map(|m| format!("mount {m}"))
        .collect();
    t.extend(
        session_cgroups(session)
            .into_iter()
            .map(|p| format!("cgroup {}", p.display())),
    );
    if dir.exists() {
        t.push(format!("dir {}", dir.display()));
    }
    t
}

fn container_mounts(c: &Classroom) -> usize {
    // A session's containers live on its own filesystem
    // (`sessions/<id>/disk/containers/<id>`).
    mounts_with(&c.data_dir().join("containers").to_string_lossy()).len()
        + mounts_with(&c.data_dir().join("sessions").to_string_lossy())
            .iter()
            .filter(|m| m.contains("/disk/containers/"))
            .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_and_timeout_remove_every_mount_cgroup_and_namespace() {
    let c = Classroom::start(&["--idle-timeout", "4s"]);
    let (token, status) = c.new_session();
    let first = status["id"].as_str().unwrap().to_string();
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await);
    t.run("docker run -d busybox sleep 1000", LONG)
        .await
        .unwrap();
    let before = traces(&c, &first);
    assert!(before.iter().any(|l| l.starts_with("cgroup")), "{before:?}");
    assert!(
        before.iter().any(|l| l.contains("/netns")),
        "pinned namespace listed: {before:?}"
    );
    assert!(
        container_mounts(&c) >= 2,
        "lab and container rootfs mounted"
    );

    let r = c.http("POST", "/api/session/reset", Some(&token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        traces(&c, &first),
        Vec::<String>::new(),
        "reset left traces"
    );
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await);
    let ps = t.run("docker ps -q | wc -l", LONG).await.unwrap();
    assert_eq!(ps.trim(), "0", "a reset lab starts empty");
    drop(t);
    let after_reset = c.data_dir().join("sessions");
    let second: Vec<String> = std::fs::read_dir(&after_reset)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(second.len(), 1, "{second:?}");

    // No typing: the idle timeout ends the session and removes it all.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(
        traces(&c, &second[0]),
        Vec::<String>::new(),
        "timeout left traces"
    );
    assert_eq!(container_mounts(&c), 0, "no container rootfs stays mounted");
    let r = c.http("GET", "/api/session", Some(&token), None);
    assert_eq!(r.status, 404, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_full_classroom_page_appears_at_the_limit() {
    let c = Classroom::start(&["--max-sessions", "1"]);
    let _first = c.new_session();
    let r = c.http("POST", "/api/session", None, None);
    assert_eq!(r.status, 503);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("the classroom is full — retrying in"));
    assert!(r.header("retry-after").is_some());
    let page = c.http("GET", "/start", None, None);
    assert_eq!(page.status, 503);
    assert!(
        page.body.contains("The classroom is full — retrying in"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("http-equiv=\"refresh\""),
        "the page retries by itself"
    );
    let health = c.http("GET", "/healthz", None, None).json();
    assert_eq!(health["sessions"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_creation_is_rate_limited_per_client() {
    // One a minute: the second request, however slow the first lab was to
    // make, comes well within the minute.
    let c = Classroom::start(&["--sessions-per-minute", "1"]);
    c.new_session();
    let r = c.http("POST", "/api/session", None, None);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .contains("too many new sessions"));
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_frames_and_unknown_sessions_get_clean_errors() {
    let c = Classroom::start(&[]);
    assert_eq!(c.try_terminal(None, "node1").await.err().unwrap().0, 401);
    let (code, body) = c
        .try_terminal(Some("0123456789abcdef"), "node1")
        .await
        .err()
        .unwrap();
    assert_eq!(code, 404);
    assert!(body.contains("no such session"), "{body}");
    let r = c.http("GET", "/api/session", Some("nope"), None);
    assert_eq!(r.status, 404);
    let r = c.http("POST", "/api/session", None, Some("{not json"));
    assert_eq!(r.status, 400);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("invalid request"));

    let (token, _) = c.new_session();
    assert_eq!(
        c.try_terminal(Some(&token), "node9").await.err().unwrap().0,
        404
    );
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await);
    for garbage in [
        "not json",
        r#"{"type":"launch"}"#,
        r#"{"type":"resize","rows":"x"}"#,
    ] {
        t.send_raw(Message::Text(garbage.into())).await;
        let mut got = None;
        while got.is_none() {
            match t.next(LONG).await {
                Some(Message::Text(m)) if m.contains("\"error\"") => got = Some(m.to_string()),
                Some(_) => {}
                None => panic!("no answer to {garbage}"),
            }
        }
        assert!(got.unwrap().contains("invalid message"), "{garbage}");
    }
    // The terminal still works after the garbage.
    let out = t.run("echo still-here", LONG).await.expect("shell answers");
    assert!(out.contains("still-here"));
    // A frame past the size limit closes the socket instead of being buffered.
    t.send_raw(Message::Binary(vec![b'x'; 200_000].into()))
        .await;
    let mut closed = false;
    for _ in 0..100 {
        match t.next(Duration::from_secs(5)).await {
            Some(Message::Close(_)) | None => {
                closed = true;
                break;
            }
            _ => {}
        }
    }
    assert!(closed, "an oversize frame closes the connection");
    assert_eq!(
        c.http("GET", "/healthz", None, None).status,
        200,
        "the server lives on"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_sweeps_sessions_left_by_a_crash() {
    let mut c = Classroom::start(&[]);
    let (token, status) = c.new_session();
    let id = status["id"].as_str().unwrap().to_string();
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await);
    t.run("docker run -d busybox sleep 1000", LONG)
        .await
        .unwrap();
    drop(t);
    c.crash();
    assert!(
        !traces(&c, &id).is_empty(),
        "a crash leaves the session behind"
    );
    c.spawn();
    assert_eq!(
        traces(&c, &id),
        Vec::<String>::new(),
        "the sweep removed it"
    );
    assert_eq!(container_mounts(&c), 0);
    assert_eq!(
        c.http("GET", "/api/session", Some(&token), None).status,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_in_one_lab_leaves_another_lab_answering() {
    let c = Classroom::start(&[
        "--session-memory-mb",
        "256",
        "--session-pids",
        "128",
        "--session-cpus",
        "0.5",
        "--session-disk-mb",
        "64",
    ]);
    let (a_token, a_status) = c.new_session();
    let (b_token, _) = c.new_session();
    let mut a = c.terminal(&a_token, "node1").await;
    let mut b = c.terminal(&b_token, "node1").await;
    assert!(a.wait_for(PROMPT, LONG).await && b.wait_for(PROMPT, LONG).await);

    // A `yes` flood, a disk filler, a memory hog and a fork bomb, at once.
    a.type_text(
        "dd if=/dev/zero of=/root/fill bs=1M count=2000 & yes & tail /dev/zero & f(){ f|f& }; f\r",
    )
    .await;
    // A's viewer keeps reading (acknowledging) in the background.
    let flood = tokio::spawn(async move {
        let mut got = 0usize;
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if a.next(Duration::from_secs(1)).await.is_some() {
                got += 1;
            }
            if a.received > a.acked {
                a.acked = a.received;
                let ack = serde_json::json!({"type": "ack", "bytes": a.acked}).to_string();
                a.send_raw(Message::Text(ack.into())).await;
            }
        }
        (got, a)
    });
    for i in 0..5 {
        let out = b
            .run(&format!("echo alive-{i}"), Duration::from_secs(20))
            .await
            .unwrap_or_else(|| panic!("lab B stopped answering at {i}: {:?}", b.text()));
        assert!(out.contains(&format!("alive-{i}")));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let docker = b
        .run("docker run --rm busybox echo from-b", LONG)
        .await
        .expect("B's docker works");
    assert!(docker.contains("from-b"), "{docker}");
    let (frames, a) = flood.await.unwrap();
    assert!(
        frames > 10,
        "A's flood reached its viewer ({frames} frames)"
    );
    assert!(
        a.text().contains("No space left on device"),
        "the disk filler was stopped at A's budget: {}\n{}",
        a.text()
            .chars()
            .rev()
            .take(600)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>(),
        c.log()
    );
    let status = c.http("GET", "/api/session", Some(&a_token), None).json();
    // The write was stopped at the budget; the lab itself goes on (`rm`
    // frees the space again), it is not frozen.
    assert!(status["frozen"].is_null(), "{status}");
    let health = c.http("GET", "/healthz", None, None);
    assert_eq!(health.status, 200);

    // Ending the abused session removes all of it.
    let id = a_status["id"].as_str().unwrap().to_string();
    let r = c.http("DELETE", "/api/session", Some(&a_token), None);
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        traces(&c, &id),
        Vec::<String>::new(),
        "teardown after abuse left traces"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_viewers_share_one_shell_and_a_flood_waits_for_acknowledgements() {
    let c = Classroom::start(&[]);
    let (token, _) = c.new_session();
    let mut one = c.terminal(&token, "node1").await;
    let mut two = c.terminal(&token, "node1").await;
    assert!(one.wait_for(PROMPT, LONG).await && two.wait_for(PROMPT, LONG).await);
    one.type_text("echo shared-$((6*7))\r").await;
    assert!(
        two.wait_for("shared-42", LONG).await,
        "the second viewer sees the first one's command"
    );
    drop(two);

    // A flood with a viewer that stops acknowledging: the server sends at
    // most one window, then waits; an acknowledgement lets more through.
    one.type_text("yes flood\r").await;
    let start = one.received;
    let window = one.messages[0]["window"].as_u64().unwrap();
    let mut unacked = 0u64;
    while let Some(m) = tokio::time::timeout(Duration::from_secs(3), one.ws.next_frame())
        .await
        .ok()
        .flatten()
    {
        if let Message::Binary(b) = m {
            unacked += b.len() as u64;
        }
    }
    let acked_before = one.acked;
    assert!(unacked > 0, "the flood arrives");
    assert!(
        (one.received - acked_before) + unacked <= window,
        "more than a window in flight: {unacked} (+{}) > {window}",
        one.received - acked_before
    );
    let _ = start;
    one.received += unacked;
    one.acked = one.received;
    let ack = serde_json::json!({"type": "ack", "bytes": one.acked}).to_string();
    one.send_raw(Message::Text(ack.into())).await;
    let before = one.received;
    assert!(one.next(Duration::from_secs(5)).await.is_some());
    assert!(
        one.received > before,
        "an acknowledgement lets output flow again"
    );
    one.type_text("\u{3}").await; // Ctrl-C stops the flood
    assert!(one.wait_for(PROMPT, LONG).await);
    let out = one
        .run("echo after-flood", LONG)
        .await
        .expect("shell answers after Ctrl-C");
    assert!(out.contains("after-flood"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_has_a_name_a_resume_link_an_extension_and_one_uid_range() {
    let c = Classroom::start(&["--prewarm", "1", "--nodes", "2"]);
    // The pool fills in the background.
    for _ in 0..600 {
        if c.http("GET", "/healthz", None, None).json()["pool"] == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        c.http("GET", "/healthz", None, None).json()["pool"],
        1,
        "a lab is pre-warmed"
    );
    let r = c.http(
        "POST",
        "/api/session",
        None,
        Some(r#"{"name":"  Ada Lovelace "}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let status = r.json();
    assert_eq!(status["name"], "Ada Lovelace");
    assert_eq!(status["nodes"], serde_json::json!(["node1", "node2"]));
    let resume = status["resume_url"].as_str().unwrap().to_string();
    let token = resume.rsplit('/').next().unwrap().to_string();

    // The resume link, opened on another device (no cookie), sets the cookie.
    let path = resume.split_once(&c.addr).unwrap().1;
    let r = c.http("GET", path, None, None);
    assert_eq!(r.status, 303, "{}", r.body);
    assert!(r.header("set-cookie").unwrap().contains(&token));
    assert_eq!(c.http("GET", "/resume/0000", None, None).status, 404);

    // Extend restarts the idle countdown.
    let r = c.http("POST", "/api/session/extend", Some(&token), None);
    assert_eq!(r.status, 200);
    assert!(r.json()["ends_in_secs"].as_u64().unwrap() >= 1790);

    // The pre-warmed lab answers at once, and all of the session's labs and
    // containers share one uid range.
    let mut n1 = c.terminal(&token, "node1").await;
    let mut n2 = c.terminal(&token, "node2").await;
    assert!(n1.wait_for(PROMPT, LONG).await);
    assert!(n2.wait_for("root@node2:~# ", LONG).await);
    let lab1 = n1.run("cat /proc/self/uid_map", LONG).await.unwrap();
    let lab2 = n2.run("cat /proc/self/uid_map", LONG).await.unwrap();
    let inner = n1
        .run("docker run --rm busybox cat /proc/self/uid_map", LONG)
        .await
        .unwrap();
    let words = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
    assert_eq!(
        words(&lab1),
        words(&lab2),
        "nodes of one session share a range"
    );
    assert_eq!(
        words(&lab1),
        words(&inner),
        "a lab's containers share its range"
    );
    assert_ne!(words(&lab1)[1], "0", "root in the lab is not host root");

    let (other, _) = c.new_session();
    let mut o = c.terminal(&other, "node1").await;
    assert!(o.wait_for(PROMPT, LONG).await);
    let other_map = o.run("cat /proc/self/uid_map", LONG).await.unwrap();
    assert_ne!(
        words(&other_map)[1],
        words(&lab1)[1],
        "another session has another range"
    );
}

#[test]
fn the_classroom_serves_https_with_the_given_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--registry-listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&cert)
        .arg("--tls-key")
        .arg(&key)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut answer = String::new();
    for _ in 0..300 {
        let out = std::process::Command::new("curl")
            .args(["-sk", &format!("https://127.0.0.1:{port}/healthz")])
            .output()
            .unwrap();
        answer = String::from_utf8_lossy(&out.stdout).into_owned();
        if answer.contains("\"status\":\"ok\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let plain = std::process::Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{port}/healthz"),
        ])
        .output()
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(serve.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = serve.wait();
    assert!(
        answer.contains("\"status\":\"ok\""),
        "HTTPS answer: {answer:?}"
    );
    assert_ne!(
        String::from_utf8_lossy(&plain.stdout),
        "200",
        "plain HTTP is not served on the TLS port"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_session_pushes_into_its_own_registry_namespace() {
    let c = Classroom::start(&[]);
    let (a_token, _) = c.new_session();
    let (b_token, _) = c.new_session();
    let mut a = c.terminal(&a_token, "node1").await;
    let mut b = c.terminal(&b_token, "node1").await;
    assert!(a.wait_for(PROMPT, LONG).await && b.wait_for(PROMPT, LONG).await);

    // A builds nothing fancy: tags busybox, pushes it to the classroom
    // registry, removes it and pulls it back by tag.
    let pushed = a
        .run(
            "docker tag busybox registry.local:5000/blobfish:v1 && docker push registry.local:5000/blobfish:v1 2>&1",
            LONG,
        )
        .await
        .unwrap();
    assert!(pushed.contains("v1: digest: sha256:"), "{pushed}");
    let again = a
        .run(
            "docker rmi registry.local:5000/blobfish:v1 >/dev/null && docker pull registry.local:5000/blobfish:v1 2>&1 && docker run --rm registry.local:5000/blobfish:v1 echo pulled-back",
            LONG,
        )
        .await
        .unwrap();
    assert!(again.contains("pulled-back"), "{again}");

    // B names the same repository and finds nothing: the namespaces are apart.
    let other = b
        .run(
            "docker pull registry.local:5000/blobfish:v1 2>&1; echo rc=$?",
            LONG,
        )
        .await
        .unwrap();
    assert!(!other.contains("rc=0"), "B pulled A's image: {other}");
    assert!(
        other.contains("not found") || other.contains("unknown"),
        "{other}"
    );
}

/// The lab shell is as wide as the viewer typing into it: a resize sets
/// `stty size`; with two viewers of different sizes (a second tab), the one
/// that types gets its size back, so the shell never wraps at another
/// window's width.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shell_takes_the_size_of_the_viewer_that_types() {
    let c = Classroom::start(&[]);
    let (token, _) = c.new_session();
    let resize = |rows: u16, cols: u16| {
        Message::Text(
            serde_json::json!({"type": "resize", "rows": rows, "cols": cols})
                .to_string()
                .into(),
        )
    };
    let mut wide = c.terminal(&token, "node1").await;
    assert!(
        wide.wait_for(PROMPT, LONG).await,
        "no prompt: {:?}",
        wide.text()
    );
    wide.send_raw(resize(40, 81)).await;
    let size = wide.run("stty size", LONG).await.expect("stty size");
    assert_eq!(size.trim(), "40 81", "{size:?}");

    let mut narrow = c.terminal(&token, "node1").await;
    assert!(narrow.wait_for(PROMPT, LONG).await);
    narrow.send_raw(resize(30, 64)).await;
    let size = narrow.run("stty size", LONG).await.expect("stty size");
    assert_eq!(size.trim(), "30 64", "{size:?}");

    // Back in the first window: its size, not the other one's.
    let size = wide.run("stty size", LONG).await.expect("stty size");
    assert_eq!(size.trim(), "40 81", "{size:?}");
    let size = narrow.run("stty size", LONG).await.expect("stty size");
    assert_eq!(size.trim(), "30 64", "{size:?}");
}
