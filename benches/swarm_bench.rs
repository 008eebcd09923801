//! `berth-bench swarm [RUNS]`: swarm mode on the engine's side, Berth's
//! one-node swarm beside the reference dockerd's (when installed).
//!
//! - converge: `POST /services/create` of 3 replicas until `GET /tasks`
//!   shows 3 tasks `running`;
//! - rolling update: `POST /services/{id}/update` (new env, parallelism 1,
//!   delay 0, stop-first) until 3 running tasks carry the new spec and no old
//!   one runs.
//!
//! Both are polled through the API every 10 ms (the CLI's own progress loop
//! adds a fixed 5 s monitor wait, which is not the engine's time). The task
//! command traps SIGTERM, so stops are quick on both engines.
//!
//! Measured 2026-12-02 (release build, 5 runs, 2 shared cores), medians:
//! Berth 53 ms to converge, 352 ms for the rolling update; dockerd 20.10
//! 437 ms and 4844 ms. `berth-bench swarm3` (a 3-node classroom session,
//! tasks spread over the nodes): join over the session network 1.0 ms,
//! converge 63 ms, rolling update 366 ms.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use super::build_bench::{dechunk, request, start_berth, start_dockerd};
use super::{print_row, summarize};

pub(crate) fn call(
    socket: &Path,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> anyhow::Result<(u16, Value)> {
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let head = format!(
        "{method} /v1.41{path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (status, out) = request(socket, &head, body.as_bytes())?;
    let out = dechunk(&out);
    let value = serde_json::from_slice(&out).unwrap_or(Value::Null);
    Ok((status, value))
}

pub(crate) fn enc(v: &Value) -> String {
    v.to_string()
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub(crate) fn tasks(socket: &Path, service: &str) -> anyhow::Result<Vec<Value>> {
    let filters = json!({"service": {service: true}, "desired-state": {"running": true}});
    let (status, v) = call(
        socket,
        "GET",
        &format!("/tasks?filters={}", enc(&filters)),
        None,
    )?;
    ensure!(status == 200, "GET /tasks: {status} {v}");
    Ok(v.as_array().cloned().unwrap_or_default())
}

pub(crate) fn wait_until(
    limit: Duration,
    mut f: impl FnMut() -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !f()? {
        ensure!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

fn spec(name: &str, version: &str) -> Value {
    json!({
        "Name": name,
        "TaskTemplate": {"ContainerSpec": {
            "Image": "busybox:latest",
            "Args": ["sh", "-c", "trap 'exit 0' TERM; sleep 1000 & wait"],
            "Env": [format!("V={version}")],
        }},
        "Mode": {"Replicated": {"Replicas": 3}},
        "UpdateConfig": {"Parallelism": 1, "Delay": 0, "FailureAction": "pause", "Order": "stop-first"},
    })
}

fn running_with(tasks: &[Value], version: &str) -> (usize, usize) {
    let running = |t: &&Value| t["Status"]["State"] == "running";
    let new = tasks
        .iter()
        .filter(running)
        .filter(|t| {
            t["Spec"]["ContainerSpec"]["Env"]
                .to_string()
                .contains(&format!("V={version}"))
        })
        .count();
    (new, tasks.iter().filter(running).count())
}

/// One converge + one rolling update; returns both times.
fn once(socket: &Path, n: usize) -> anyhow::Result<(Duration, Duration)> {
    let name = format!("bench{n}");
    let start = Instant::now();
    let (status, v) = call(socket, "POST", "/services/create", Some(&spec(&name, "1")))?;
    ensure!(status == 201, "create: {status} {v}");
    let id = v["ID"].as_str().context("service ID")?.to_string();
    wait_until(Duration::from_secs(60), || {
        Ok(running_with(&tasks(socket, &id)?, "1").0 == 3)
    })?;
    let converge = start.elapsed();

    let (_, svc) = call(socket, "GET", &format!("/services/{id}"), None)?;
    let index = svc["Version"]["Index"].as_u64().context("version")?;
    let start = Instant::now();
    let (status, v) = call(
        socket,
        "POST",
        &format!("/services/{id}/update?version={index}"),
        Some(&spec(&name, "2")),
    )?;
    ensure!(status == 200, "update: {status} {v}");
    wait_until(Duration::from_secs(120), || {
        let t = tasks(socket, &id)?;
        let (new, all) = running_with(&t, "2");
        Ok(new == 3 && all == 3)
    })?;
    let update = start.elapsed();

    call(socket, "DELETE", &format!("/services/{id}"), None)?;
    wait_until(Duration::from_secs(60), || {
        let filters = json!({"label": {format!("com.docker.swarm.service.id={id}"): true}});
        let (_, v) = call(
            socket,
            "GET",
            &format!("/containers/json?all=1&filters={}", enc(&filters)),
            None,
        )?;
        Ok(v.as_array().map(|a| a.is_empty()).unwrap_or(false))
    })?;
    Ok((converge, update))
}

fn bench(name: &str, socket: &Path, runs: usize) -> anyhow::Result<()> {
    let (status, v) = call(
        socket,
        "POST",
        "/swarm/init",
        Some(&json!({"ListenAddr": "127.0.0.1:2377", "AdvertiseAddr": "127.0.0.1"})),
    )?;
    ensure!(status == 200, "{name}: swarm init: {status} {v}");
    once(socket, 0)?; // warm-up
    let mut converge = Vec::new();
    let mut update = Vec::new();
    for n in 1..=runs {
        let (c, u) = once(socket, n)?;
        converge.push(c);
        update.push(u);
    }
    print_row(
        &format!("{name}: create 3 replicas to running"),
        runs,
        &summarize(converge),
    );
    print_row(
        &format!("{name}: rolling update of 3, delay 0"),
        runs,
        &summarize(update),
    );
    let _ = call(socket, "POST", "/swarm/leave?force=1", None);
    Ok(())
}

pub fn run(runs: usize) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("berth-bench-swarm-")
        .tempdir_in("/var/tmp")?;
    let berth = start_berth(dir.path())?;
    bench("berth", &berth.socket, runs)?;
    match start_dockerd(dir.path(), &berth.socket)? {
        Some(d) => bench("dockerd 20.10", &d.socket, runs)?,
        None => println!("dockerd not installed: no reference rows (apt install docker.io)"),
    }
    Ok(())
}

/// `berth serve --nodes 3` with its data under a temp dir; stopped on drop.
struct Classroom {
    child: std::process::Child,
    data: tempfile::TempDir,
}

impl Drop for Classroom {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let _ = self.child.wait();
    }
}

/// One plain HTTP/1.1 request to the classroom; the status and the body.
fn classroom_post(addr: &str, path: &str) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.write_all(
        format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            .as_bytes(),
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((
        status,
        raw.split_once("\r\n\r\n")
            .map(|x| x.1)
            .unwrap_or("")
            .to_string(),
    ))
}

/// The 3-node variant: a classroom session's node1 manager, node2 and node3
/// joined over the session network; the same converge and rolling update,
/// with the tasks spread over the three nodes' engines.
pub fn run_nodes(berth: &Path, runs: usize) -> anyhow::Result<()> {
    let data = tempfile::Builder::new()
        .prefix("berth-bench-swarm3-")
        .tempdir_in("/var/tmp")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = std::process::Command::new(berth)
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .args(["serve", "--listen", &addr, "--nodes", "3"])
        .args([
            "--preview-listen",
            "off",
            "--registry-listen",
            "127.0.0.1:0",
        ])
        .env("BERTH_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .context("start berth serve")?;
    let server = Classroom { child, data };
    wait_until(Duration::from_secs(180), || {
        Ok(std::net::TcpStream::connect(&addr).is_ok())
    })?;
    let (status, body) = classroom_post(&addr, "/api/session")?;
    ensure!(status == 201, "create session: {status} {body}");
    let session: Value = serde_json::from_str(&body)?;
    let id = session["id"].as_str().context("session id")?;
    let node = |n: usize| {
        server
            .data
            .path()
            .join(format!("data/sessions/{id}/node{n}/docker.sock"))
    };
    let (status, v) = call(&node(1), "POST", "/swarm/init", Some(&json!({})))?;
    ensure!(status == 200, "swarm init: {status} {v}");
    let (_, swarm) = call(&node(1), "GET", "/swarm", None)?;
    let token = swarm["JoinTokens"]["Worker"].as_str().context("token")?;
    let mut joins = Vec::new();
    for n in [2, 3] {
        let start = Instant::now();
        let (status, v) = call(
            &node(n),
            "POST",
            "/swarm/join",
            Some(&json!({"RemoteAddrs": ["node1:2377"], "JoinToken": token})),
        )?;
        ensure!(status == 200, "node{n} join: {status} {v}");
        joins.push(start.elapsed());
    }
    once(&node(1), 0)?; // warm-up
    let mut converge = Vec::new();
    let mut update = Vec::new();
    for n in 1..=runs {
        let (c, u) = once(&node(1), n)?;
        converge.push(c);
        update.push(u);
    }
    print_row(
        "berth 3 nodes: swarm join over the session network",
        2,
        &summarize(joins),
    );
    print_row(
        "berth 3 nodes: create 3 replicas to running",
        runs,
        &summarize(converge),
    );
    print_row(
        "berth 3 nodes: rolling update of 3, delay 0",
        runs,
        &summarize(update),
    );
    drop(server);
    Ok(())
}
