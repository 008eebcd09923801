//! `berth-bench map [RUNS] [MAPS] [SECONDS]`: what the lab map costs.
//!
//! 1. Latency: a session runs 30 containers; headless Chromium shows its
//!    Map tab; `benches/map.mjs` pauses and unpauses the containers in turn
//!    (RUNS times, default 100) through the node's Engine API socket and
//!    times each from the engine's event (`/events`' `timeNano`) to the
//!    page drawing the new state in the SVG (same wall clock). Goal: median
//!    at most 100 ms.
//! 2. Server cost: MAPS sessions (default 20), each with its map open (a
//!    raw server-sent-event reader), while every session's containers are
//!    paused and unpaused in turn for SECONDS (default 20); the server's
//!    CPU time and resident memory beside the same churn with no map open.
//!
//! Measured 2026-12-07 on 2 shared cores (load 12–15 from other builds),
//! release build, `map 100 20 20`: event to SVG median 43.5 ms (p10 37.3,
//! p90 48.5; 25 ms of it is the watcher's burst window); 20 maps open while
//! 20 labs churned 40 pause/unpause a second in all: server CPU 5.5 %
//! beside 3.2 % with none open, 0.12 % of a core per map at 2 models a
//! second (939 bytes each), about 2 kB resident per map. Debug build, `map
//! 60 20 15`: median 42.0 ms, 0.30 % of a core per map.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};

use super::lessons::http;
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

impl Server {
    fn start(berth: &Path) -> anyhow::Result<Server> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let data = tempfile::Builder::new()
            .prefix("berth-bench-map-")
            .tempdir_in("/var/tmp")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr = format!("127.0.0.1:{port}");
        let child = Command::new(berth)
            .arg("--data-dir")
            .arg(data.path().join("data"))
            .args(["serve", "--listen", &addr, "--preview-listen", "off"])
            .args(["--registry-listen", "127.0.0.1:0"])
            .args(["--sessions-per-minute", "1000", "--lessons"])
            .arg(root.join("tests/fixtures/lessons"))
            .env("BERTH_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .context("start berth serve")?;
        let server = Server { child, addr, data };
        for _ in 0..1200 {
            if let Ok((200, _)) = http(&server.addr, "GET", "/healthz", None, "") {
                return Ok(server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        anyhow::bail!("berth serve did not start")
    }

    /// A new session: its cookie token and its node1 docker socket.
    fn session(&self) -> anyhow::Result<(String, PathBuf)> {
        let (status, raw) = http(&self.addr, "POST", "/api/session", None, "")?;
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
        let socket = self
            .data
            .path()
            .join(format!("data/sessions/{id}/node1/docker.sock"));
        Ok((token, socket))
    }

    /// (CPU time in ms, resident memory in kB) of the server process.
    fn usage(&self) -> anyhow::Result<(u64, u64)> {
        let pid = self.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, r)| r)
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // After the command: state is field 3, utime 14 and stime 15.
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        let hz = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)?.unwrap_or(100) as u64;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        let rss = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Ok((ticks * 1000 / hz, rss))
    }
}

fn docker(socket: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("docker")
        .arg("-H")
        .arg(format!("unix://{}", socket.display()))
        .args(args)
        .output()?;
    anyhow::ensure!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// POST `path` on a node's Engine API socket.
fn post(socket: &Path, path: &str) -> anyhow::Result<()> {
    let mut s = UnixStream::connect(socket)?;
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = String::new();
    s.read_to_string(&mut raw)?;
    anyhow::ensure!(raw.starts_with("HTTP/1.1 2"), "{path}: {raw}");
    Ok(())
}

/// Pauses and unpauses `containers` containers of each session in turn for
/// `seconds`, about `rate` operations a second in all; returns how many.
fn churn(sockets: &[PathBuf], containers: usize, seconds: u64, rate: u32) -> anyhow::Result<usize> {
    let end = Instant::now() + Duration::from_secs(seconds);
    let gap = Duration::from_secs(1) / rate;
    let mut paused = vec![vec![false; containers]; sockets.len()];
    let mut n = 0;
    while Instant::now() < end {
        let t0 = Instant::now();
        let s = n % sockets.len();
        let c = (n / sockets.len()) % containers;
        let verb = if paused[s][c] { "unpause" } else { "pause" };
        post(&sockets[s], &format!("/v1.50/containers/c{c}/{verb}"))?;
        paused[s][c] = !paused[s][c];
        n += 1;
        if let Some(rest) = gap.checked_sub(t0.elapsed()) {
            std::thread::sleep(rest);
        }
    }
    // Leave everything running.
    for (s, row) in paused.iter().enumerate() {
        for (c, p) in row.iter().enumerate() {
            if *p {
                post(&sockets[s], &format!("/v1.50/containers/c{c}/unpause"))?;
            }
        }
    }
    Ok(n)
}

/// A map stream read by a thread: counts models and bytes until stopped.
struct Reader {
    models: Arc<AtomicUsize>,
    bytes: Arc<AtomicUsize>,
    thread: std::thread::JoinHandle<()>,
}

fn open_map(addr: &str, token: &str, stop: Arc<AtomicBool>) -> anyhow::Result<Reader> {
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_millis(500)))?;
    write!(
        s,
        "GET /api/map/stream HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nCookie: berth_session={token}\r\n\r\n"
    )?;
    let models = Arc::new(AtomicUsize::new(0));
    let bytes = Arc::new(AtomicUsize::new(0));
    let (m, b) = (models.clone(), bytes.clone());
    let thread = std::thread::spawn(move || {
        let mut lines = BufReader::new(s);
        let mut line = String::new();
        while !stop.load(Ordering::Relaxed) {
            line.clear();
            match lines.read_line(&mut line) {
                Ok(0) => return,
                Ok(n) => {
                    if line.starts_with("event: model") {
                        m.fetch_add(1, Ordering::Relaxed);
                    }
                    if line.starts_with("data: ") {
                        b.fetch_add(n, Ordering::Relaxed);
                    }
                }
                Err(_) => continue,
            }
        }
    });
    Ok(Reader {
        models,
        bytes,
        thread,
    })
}

pub fn run(berth: &Path, runs: usize, maps: usize, seconds: u64) -> anyhow::Result<()> {
    const CONTAINERS: usize = 30;
    let server = Server::start(berth)?;
    let (token, socket) = server.session()?;
    for i in 0..CONTAINERS {
        docker(
            &socket,
            &[
                "run",
                "-d",
                "--name",
                &format!("c{i}"),
                "busybox",
                "sleep",
                "3600",
            ],
        )?;
    }

    // 1. Engine event to SVG, in Chromium.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("node")
        .arg(root.join("benches/map.mjs"))
        .arg(format!("http://{}/", server.addr))
        .arg(&token)
        .arg(&socket)
        .arg(runs.to_string())
        .arg(CONTAINERS.to_string())
        .output()
        .context("run node benches/map.mjs")?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "map.mjs: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value =
        serde_json::from_str(stdout.trim().lines().last().unwrap_or(""))?;
    let latencies: Vec<Duration> = result["latencies_ms"]
        .as_array()
        .ok_or_else(|| anyhow!("no latencies: {stdout}"))?
        .iter()
        .filter_map(|v| v.as_f64())
        .map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1e3))
        .collect();
    print_row(
        &format!("map: engine event to SVG ({CONTAINERS} ctrs)"),
        latencies.len(),
        &summarize(latencies),
    );

    // 2. Server cost of open maps while every lab churns.
    let mut sockets = vec![socket];
    let mut tokens = vec![token];
    for _ in 1..maps {
        let (t, s) = server.session()?;
        for i in 0..2 {
            docker(
                &s,
                &[
                    "run",
                    "-d",
                    "--name",
                    &format!("c{i}"),
                    "busybox",
                    "sleep",
                    "3600",
                ],
            )?;
        }
        sockets.push(s);
        tokens.push(t);
    }
    let rate = 40;
    let measure = |label: &str| -> anyhow::Result<(f64, u64)> {
        let (cpu0, _) = server.usage()?;
        let t0 = Instant::now();
        let ops = churn(&sockets, 2, seconds, rate)?;
        let (cpu1, rss) = server.usage()?;
        let cpu = (cpu1 - cpu0) as f64 / t0.elapsed().as_secs_f64() / 10.0;
        println!("map: {label:<34} {ops} pause/unpause in {seconds} s: server CPU {cpu:.1} %, RSS {} MiB", rss / 1024);
        Ok((cpu, rss))
    };
    std::thread::sleep(Duration::from_secs(2));
    let (cpu_without, rss_without) = measure("no map open,")?;
    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<Reader> = tokens
        .iter()
        .map(|t| open_map(&server.addr, t, stop.clone()))
        .collect::<anyhow::Result<_>>()?;
    std::thread::sleep(Duration::from_secs(2));
    let (_, rss_open) = server.usage()?;
    let before: usize = readers
        .iter()
        .map(|r| r.models.load(Ordering::Relaxed))
        .sum();
    let (cpu_with, rss_with) = measure(&format!("{maps} maps open,"))?;
    let models: usize = readers
        .iter()
        .map(|r| r.models.load(Ordering::Relaxed))
        .sum::<usize>()
        - before;
    let bytes: usize = readers
        .iter()
        .map(|r| r.bytes.load(Ordering::Relaxed))
        .sum();
    let all: usize = readers
        .iter()
        .map(|r| r.models.load(Ordering::Relaxed))
        .sum();
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        let _ = r.thread.join();
    }
    println!(
        "map: per open map: {:.2} % of a core while its lab churns ({:.1} models/s, {} B each), {} kB resident when opened, {} kB after the churn",
        (cpu_with - cpu_without) / maps as f64,
        models as f64 / maps as f64 / seconds as f64,
        bytes / all.max(1),
        (rss_open as i64 - rss_without as i64) / maps as i64,
        (rss_with as i64 - rss_without as i64) / maps as i64,
    );
    Ok(())
}
