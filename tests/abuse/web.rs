//! Abuse: the web side. Guessing join codes and passwords is throttled per
//! address, a page of another site cannot open a learner's terminal, answers
//! show no host paths, and no path or query makes the server panic.

use std::io::{Read, Write};
use std::time::Duration;

use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::classroom::Classroom;
use crate::Lab;

const ADMIN: &str = "admin-secret-for-abuse-tests";

fn workshop_classroom() -> Classroom {
    Classroom::start(&["--admin-token", ADMIN, "--preview-listen", "off"])
}

/// `Retry-After` of a 429, which must be a positive number of seconds.
fn retry_after(r: &crate::common::classroom::Response) -> u64 {
    assert_eq!(r.status, 429, "{}", r.body);
    let secs: u64 = r
        .header("retry-after")
        .expect("a Retry-After header")
        .parse()
        .expect("seconds");
    assert!(secs >= 1);
    secs
}

#[test]
fn guessing_workshop_codes_is_throttled_per_address() {
    let c = workshop_classroom();
    let guess = |code: &str| {
        let body = format!(r#"{{"code":"{code}","name":"guesser"}}"#);
        c.http("POST", "/api/workshops/join", None, Some(&body))
    };
    for i in 0..10 {
        let r = guess(&format!("ZZZZZ{}", (b'A' + i) as char));
        assert_eq!(r.status, 404, "a wrong code is a wrong code: {}", r.body);
    }
    let r = guess("ZZZZZZ");
    retry_after(&r);
    assert!(
        r.body.contains("too many wrong workshop codes"),
        "{}",
        r.body
    );
    // The rest of the classroom still answers.
    assert_eq!(c.http("GET", "/healthz", None, None).status, 200);
}

#[test]
fn guessing_instructor_logins_is_throttled_per_address() {
    let c = workshop_classroom();
    let login = |token: &str| {
        let body = format!(r#"{{"admin_token":"{token}"}}"#);
        c.http("POST", "/api/instructor/login", None, Some(&body))
    };
    // A right login does not count against the address.
    for _ in 0..12 {
        assert_eq!(login(ADMIN).status, 200);
    }
    for i in 0..10 {
        assert_eq!(login(&format!("guess-{i}")).status, 401);
    }
    let r = login("guess-final");
    retry_after(&r);
    // Even the right secret waits: the guesser learns nothing more.
    retry_after(&login(ADMIN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_refuses_another_sites_page() {
    let lab = tokio::task::spawn_blocking(Lab::new).await.unwrap();
    let open = |origin: String| {
        let mut req = format!("ws://{}/ws/terminal/node1", lab.classroom.addr)
            .into_client_request()
            .unwrap();
        let h = req.headers_mut();
        h.insert(
            "cookie",
            format!("berth_session={}", lab.token).parse().unwrap(),
        );
        h.insert("origin", origin.parse().unwrap());
        req
    };
    let evil = tokio_tungstenite::connect_async(open("http://evil.example".into())).await;
    match evil {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status().as_u16(), 403)
        }
        Err(e) => panic!("expected 403, got {e}"),
        Ok(_) => panic!("another site's page opened the learner's terminal"),
    }
    let own =
        tokio_tungstenite::connect_async(open(format!("http://{}", lab.classroom.addr))).await;
    assert!(
        own.is_ok(),
        "the classroom's own page opens it: {:?}",
        own.err()
    );
}

#[test]
fn answers_show_docker_paths_not_the_hosts() {
    let lab = Lab::new();
    let data = lab.classroom.data_dir().display().to_string();
    assert_eq!(
        lab.ok(&["info", "-f", "{{.DockerRootDir}}"]).trim(),
        "/var/lib/docker"
    );
    lab.ok(&["volume", "create", "notes"]);
    assert_eq!(
        lab.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", "notes"])
            .trim(),
        "/var/lib/docker/volumes/notes/_data"
    );
    lab.ok(&[
        "create",
        "--name",
        "holder",
        "-v",
        "notes:/notes",
        "busybox",
        "true",
    ]);
    let inspect = lab.ok(&["inspect", "holder"]);
    assert!(
        !inspect.contains(&data),
        "container inspect shows the host's data directory: {inspect}"
    );
    assert!(inspect.contains("/var/lib/docker/volumes/notes/_data"));
    let info = lab.ok(&["info"]);
    assert!(!info.contains(&data), "{info}");
}

/// One raw HTTP/1.1 request; the status of its answer (0 if none came).
fn status_of(mut s: impl Read + Write, method: &str, target: &str) -> u16 {
    let req = format!(
        "{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut head = [0u8; 32];
    let mut got = 0;
    while got < 12 {
        match s.read(&mut head[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    std::str::from_utf8(&head[..got])
        .ok()
        .and_then(|t| t.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Path segments a client might send: real route words, odd names, nothing.
fn segment() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    prop_oneof![
        proptest::sample::select(vec![
            "containers",
            "images",
            "distribution",
            "json",
            "exec",
            "volumes",
            "networks",
            "v1.50",
            "v9",
            "v",
            "api",
            "session",
            "ws",
            "terminal",
            "workshops",
            "w",
            "..",
            ".",
            "",
            "%",
            "%ff",
            "%2F",
            "resume",
            "assets",
            "lessons",
            "nodes",
            "archive",
        ])
        .prop_map(String::from),
        "[a-zA-Z0-9:._%-]{0,12}",
    ]
}

fn target() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    (
        proptest::collection::vec(segment(), 0..6),
        proptest::option::of("[a-z=&%0-9{}\\[\\]\":,*]{0,40}"),
    )
        .prop_map(|(segs, query)| {
            let mut t = format!("/{}", segs.join("/"));
            if let Some(q) = query {
                t.push('?');
                t.push_str(&q);
            }
            t
        })
}

/// Arbitrary paths and queries, to a session's Engine API and to the web
/// server: every request is answered (a panic drops the connection) and
/// both stay up. GET, HEAD and DELETE only: nothing here may wait on the
/// network.
#[test]
fn no_path_or_query_panics_the_engine_or_the_server() {
    use proptest::test_runner::{Config, TestRunner};
    let lab = Lab::new();
    let mut runner = TestRunner::new(Config {
        cases: 150,
        failure_persistence: None,
        ..Config::default()
    });
    let methods = proptest::sample::select(vec!["GET", "HEAD", "DELETE"]);
    runner
        .run(&(methods, target()), |(method, target)| {
            // Streams (events, logs) answer a status line and go on: read
            // only that, with a bound.
            let engine = std::os::unix::net::UnixStream::connect(&lab.socket).unwrap();
            engine
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            let status = status_of(engine, method, &target);
            proptest::prop_assert!(status >= 100, "engine gave no answer to {method} {target}");
            let web = std::net::TcpStream::connect(&lab.classroom.addr).unwrap();
            web.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            let status = status_of(web, method, &target);
            proptest::prop_assert!(status >= 100, "server gave no answer to {method} {target}");
            Ok(())
        })
        .unwrap();
    assert_eq!(
        lab.classroom.http("GET", "/healthz", None, None).status,
        200
    );
    lab.ok(&["version"]);
    // The issue's panic, by name.
    let engine = std::os::unix::net::UnixStream::connect(&lab.socket).unwrap();
    let status = status_of(engine, "GET", "/distribution/json");
    assert!((400..500).contains(&status), "{status}");
}
