//! `berth-bench lessons [RUNS]`: the round trip of a lesson's "Check"
//! button — `POST /api/lessons/{slug}/check` through `berth serve` to the
//! verdict — median of RUNS (default 100), with the fixture lesson's checks
//! failing (nothing done yet) and passing (the task done through the real
//! docker CLI on the node's Engine API socket; one of the checks asks the
//! container's published port over HTTP). Target: under 50 ms.
//!
//! Measured 2026-12-02 on 2 shared cores: release build, 200 runs: failing
//! median 0.92 ms (p90 1.02), passing with the HTTP check 2.36 ms (p90
//! 2.71); debug build, 100 runs: 3.65 ms and 7.40 ms.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

use super::{print_row, summarize};

struct Server {
    child: Child,
    addr: String,
    data: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// One HTTP/1.1 request: (status, headers+body text).
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    let cookie = token
        .map(|t| format!("Cookie: berth_session={t}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{cookie}\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, raw))
}

pub fn run(berth: &Path, runs: usize) -> anyhow::Result<()> {
    let lessons = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lessons");
    let data = tempfile::Builder::new()
        .prefix("berth-bench-lessons-")
        .tempdir_in("/var/tmp")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(berth)
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .args([
            "serve",
            "--listen",
            &addr,
            "--preview-listen",
            "off",
            "--registry-listen",
            "127.0.0.1:0",
            "--lessons",
        ])
        .arg(&lessons)
        .env("BERTH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("start berth serve")?;
    let server = Server { child, addr, data };
    let mut up = false;
    for _ in 0..600 {
        if let Ok((200, _)) = http(&server.addr, "GET", "/healthz", None, "") {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    anyhow::ensure!(up, "berth serve did not start");
    let (status, raw) = http(&server.addr, "POST", "/api/session", None, "")?;
    anyhow::ensure!(status == 201, "create session: {raw}");
    let token = raw
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: berth_session="))
        .and_then(|v| v.split(';').next())
        .ok_or_else(|| anyhow!("no cookie"))?
        .to_string();
    let body = raw.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    let session: serde_json::Value = serde_json::from_str(body)?;
    let id = session["id"].as_str().ok_or_else(|| anyhow!("no id"))?;

    let check = |want: bool| -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        let (status, raw) = http(
            &server.addr,
            "POST",
            "/api/lessons/01-first-steps/check",
            Some(&token),
            r#"{"exercise":"greeter"}"#,
        )?;
        let took = t0.elapsed();
        anyhow::ensure!(status == 200, "check: {raw}");
        let passed = raw.contains(r#""node":"node1","passed":true"#);
        anyhow::ensure!(passed == want, "expected passed={want}: {raw}");
        Ok(took)
    };
    let failing: Vec<Duration> = (0..runs)
        .map(|_| check(false))
        .collect::<anyhow::Result<_>>()?;
    print_row("check round trip (failing)", runs, &summarize(failing));

    let socket = server
        .data
        .path()
        .join(format!("data/sessions/{id}/node1/docker.sock"));
    let out = Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args([
            "run",
            "-d",
            "--name",
            "greeter",
            "-e",
            "GREETING=hi",
            "-p",
            "8080:80",
            "busybox",
            "sh",
            "-c",
        ])
        .arg("mkdir /www && echo fixture page > /www/index.html && httpd -f -p 80 -h /www")
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while check(true).is_err() {
        anyhow::ensure!(Instant::now() < deadline, "the checks never passed");
        std::thread::sleep(Duration::from_millis(100));
    }
    let passing: Vec<Duration> = (0..runs)
        .map(|_| check(true))
        .collect::<anyhow::Result<_>>()?;
    print_row(
        "check round trip (passing, with HTTP)",
        runs,
        &summarize(passing),
    );

    // The registry and swarm checks read the registry's storage and the
    // swarm state: the round trip of the second fixture lesson's exercises.
    for (exercise, label) in [
        ("pushed", "registry check round trip (failing)"),
        ("swarm", "swarm check round trip (failing)"),
    ] {
        let body = format!(r#"{{"exercise":"{exercise}"}}"#);
        let times: Vec<Duration> = (0..runs)
            .map(|_| {
                let t0 = Instant::now();
                let (status, raw) = http(
                    &server.addr,
                    "POST",
                    "/api/lessons/02-second/check",
                    Some(&token),
                    &body,
                )?;
                anyhow::ensure!(status == 200, "check: {raw}");
                Ok(t0.elapsed())
            })
            .collect::<anyhow::Result<_>>()?;
        print_row(label, runs, &summarize(times));
    }
    Ok(())
}
