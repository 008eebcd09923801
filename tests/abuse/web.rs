//! Abuse of the web front and of the Engine API's parsing: guessing join
//! codes and passwords, a foreign page opening a learner's terminal, host
//! paths in answers, and arbitrary request paths.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::common::classroom::Classroom;
use super::Lab;

#[test]
fn guessing_join_codes_is_throttled_per_address_and_only_failures_count() {
    let c = Classroom::start(&[]);
    let mut last = None;
    for i in 0..40 {
        let body = format!(r#"{{"code":"ZZZZ{:02}","name":"guess"}}"#, i % 100);
        let r = c.http("POST", "/api/workshops/join", None, Some(&body));
        if r.status == 429 {
            last = Some((i, r));
            break;
        }
        assert_eq!(r.status, 404, "a wrong code is not found: {}", r.body);
    }
    let (tries, refused) = last.expect("wrong codes are throttled");
    assert_eq!(tries, 20, "twenty failures a minute are allowed");
    let wait: u64 = refused
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "Retry-After {wait}");
    assert!(
        refused.body.contains("too many failed attempts"),
        "{}",
        refused.body
    );
    // The join page by code is the same secret.
    assert_eq!(c.http("GET", "/w/ZZZZZZ", None, None).status, 429);
    // Other routes are not affected: a learner can still start a session.
    assert_eq!(c.http("POST", "/api/session", None, None).status, 201);
}

#[test]
fn guessing_the_instructor_password_is_throttled() {
    let c = Classroom::start(&["--admin-token", "the-real-token"]);
    let mut statuses = Vec::new();
    for _ in 0..25 {
        let r = c.http(
            "POST",
            "/api/instructor/login",
            None,
            Some(r#"{"admin_token":"a-guess"}"#),
        );
        statuses.push(r.status);
    }
    assert!(statuses[..20].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[20..].iter().all(|s| *s == 429), "{statuses:?}");
    // Even the right token waits: the address is throttled, not the guess.
    let r = c.http(
        "POST",
        "/api/instructor/login",
        None,
        Some(r#"{"admin_token":"the-real-token"}"#),
    );
    assert_eq!(r.status, 429);
}

/// Opens the terminal WebSocket with `origin`; the HTTP status it got.
async fn upgrade_status(c: &Classroom, token: &str, origin: Option<&str>) -> u16 {
    let mut req = format!("ws://{}/ws/terminal/node1", c.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("cookie", format!("berth_session={token}").parse().unwrap());
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((_, r)) => r.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        Err(e) => panic!("websocket: {e}"),
    }
}

#[tokio::test]
async fn a_foreign_page_cannot_open_a_learners_terminal() {
    let c = Classroom::start(&[]);
    let (token, _) = c.new_session();
    let own = format!("http://{}", c.addr);
    assert_eq!(
        upgrade_status(&c, &token, Some("https://evil.example")).await,
        403
    );
    assert_eq!(upgrade_status(&c, &token, Some("null")).await, 403);
    assert_eq!(upgrade_status(&c, &token, Some(&own)).await, 101);
    assert_eq!(
        upgrade_status(&c, &token, None).await,
        101,
        "clients that are not browsers send no Origin"
    );
}

#[test]
fn answers_to_a_learner_show_no_host_paths() {
    let lab = Lab::new();
    let host_dir = lab.classroom.data_dir().display().to_string();
    let root = lab.ok(&["info", "--format", "{{.DockerRootDir}}"]);
    assert_eq!(root.trim(), "/var/lib/docker");
    lab.ok(&["volume", "create", "notes"]);
    let mountpoint = lab.ok(&["volume", "inspect", "notes", "--format", "{{.Mountpoint}}"]);
    assert_eq!(mountpoint.trim(), "/var/lib/docker/volumes/notes/_data");
    lab.ok(&[
        "run",
        "--name",
        "app",
        "-v",
        "notes:/data",
        "busybox",
        "true",
    ]);
    for args in [
        &["info"][..],
        &["volume", "inspect", "notes"],
        &["inspect", "app"],
        &["volume", "ls"],
        &["system", "df", "-v"],
    ] {
        let out = lab.ok(args);
        assert!(
            !out.contains(&host_dir),
            "docker {args:?} shows the host's data directory {host_dir}:\n{out}"
        );
    }
}

/// One raw request on a Unix socket: the status line's code, or `None` when
/// the connection ended without an answer (a handler that panicked).
fn unix_status(socket: &std::path::Path, method: &str, path: &str) -> Option<u16> {
    let mut s = UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let req = format!("{method} {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).ok()?;
    let mut head = [0u8; 12];
    match s.read_exact(&mut head) {
        Ok(()) => std::str::from_utf8(&head[9..12]).ok()?.parse().ok(),
        // A stream that is still open after 10 s (a follow, an attach) answered.
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Some(0),
        Err(_) => None,
    }
}

/// Paths made of Engine API words, short and odd segments, encodings and
/// query strings: what a fuzzer of the router would try.
fn api_path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("containers".to_string()),
        Just("images".to_string()),
        Just("networks".to_string()),
        Just("volumes".to_string()),
        Just("exec".to_string()),
        Just("distribution".to_string()),
        Just("json".to_string()),
        Just("v1.47".to_string()),
        Just("v".to_string()),
        Just("..".to_string()),
        Just("%2e%2e".to_string()),
        Just("sha256:".to_string()),
        "[a-z0-9]{0,3}",
        "[a-zA-Z0-9:@._%-]{1,20}",
        "\\PC{1,6}",
    ];
    (
        proptest::collection::vec(segment, 0..6),
        proptest::option::of("[a-z=&%0-9{}\\[\\]\"]{0,30}"),
    )
        .prop_map(|(segs, query)| {
            let mut p = format!("/{}", segs.join("/"));
            if let Some(q) = query {
                p.push('?');
                p.push_str(&q);
            }
            // A request line cannot hold raw spaces or control characters.
            p.chars()
                .map(|c| {
                    if c.is_whitespace() || c.is_control() {
                        '_'
                    } else {
                        c
                    }
                })
                .collect()
        })
}

#[test]
fn no_request_path_panics_the_engine() {
    let lab = Lab::new();
    let socket = lab.socket.clone();
    let methods = ["GET", "HEAD", "DELETE", "POST"];
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&(0..methods.len(), api_path()), |(m, path)| {
            // Leave the session itself alone: a random `POST /session` or
            // `/swarm/join` is a request like any other, but a DELETE of
            // what the later cases use would only make them uninteresting.
            let status = unix_status(&socket, methods[m], &path);
            prop_assert!(status.is_some(), "{} {path}: no answer", methods[m]);
            Ok(())
        })
        .unwrap();
    assert_eq!(unix_status(&socket, "GET", "/_ping"), Some(200));
}

#[test]
fn no_request_path_panics_the_web_server() {
    let c = Classroom::start(&[]);
    let methods = ["GET", "POST", "DELETE"];
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let path = prop_oneof![
        api_path(),
        api_path().prop_map(|p| format!("/api{p}")),
        api_path().prop_map(|p| format!("/w{p}")),
        api_path().prop_map(|p| format!("/lessons{p}")),
        api_path().prop_map(|p| format!("/api/workshops{p}")),
        api_path().prop_map(|p| format!("/assets{p}")),
    ];
    runner
        .run(&(0..methods.len(), path), |(m, path)| {
            let r = c.request(methods[m], &path, None, None, &[]);
            let status = r.map(|r| r.status).unwrap_or(0);
            prop_assert!(status != 0, "{} {path}: no answer", methods[m]);
            prop_assert!(status != 500, "{} {path}: 500", methods[m]);
            Ok(())
        })
        .unwrap();
    assert_eq!(c.http("GET", "/healthz", None, None).status, 200);
}
