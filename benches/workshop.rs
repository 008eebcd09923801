//! `berth-bench workshop [LEARNERS] [SECONDS] [BYTES_PER_SECOND]`: a
//! workshop at scale through `berth serve` over HTTP and WebSockets.
//! - pre-warm: how long until the workshop's LEARNERS labs (default 100)
//!   are ready, then each learner's join (median);
//! - every learner's lab terminal and Presenter tab connected, and one
//!   progress board; the instructor's demo terminal broadcasts
//!   BYTES_PER_SECOND (default 10240) for SECONDS (default 60): bytes
//!   delivered to every viewer beside what the shell wrote, bytes skipped;
//! - meanwhile learners pass an exercise, one every few seconds: the delay
//!   from the check request (and from its answer) to the `pass` message on
//!   the board's socket;
//! - the server's resident memory (VmRSS) idle, peak during the broadcast
//!   (VmHWM), after; then deleting the workshop (every lab ended).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::classroom::parse_answer;
use anyhow::{anyhow, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::{print_row, summarize};

const ADMIN: &str = "bench-admin-token";
const END: &str = "END-OF-BROADCAST";

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct Server {
    child: Child,
    addr: String,
    _data: tempfile::TempDir,
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
    /// `(VmRSS, VmHWM)` of `berth serve`, bytes.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .unwrap_or(0)
                * 1024
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

fn mib(b: u64) -> f64 {
    b as f64 / 1048576.0
}

async fn start(berth: &Path, learners: usize) -> anyhow::Result<Server> {
    let data = tempfile::Builder::new()
        .prefix("berth-bench-workshop-")
        .tempdir_in("/var/tmp")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let lessons = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workshop-lessons");
    let child = Command::new(berth)
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .args(["serve", "--listen", &addr])
        .args(["--max-sessions", &(learners + 10).to_string()])
        .args([
            "--registry-listen",
            "127.0.0.1:0",
            "--preview-listen",
            "off",
        ])
        .args(["--idle-timeout", "2h", "--admin-token", ADMIN])
        .arg("--lessons")
        .arg(&lessons)
        .env("BERTH_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("start berth serve")?;
    let server = Server {
        child,
        addr,
        _data: data,
    };
    for _ in 0..3600 {
        if let Ok((200, _, _)) = http(&server.addr, "GET", "/healthz", "", None).await {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(anyhow!("berth serve did not start"))
}

/// One HTTP/1.1 request with `header` lines: (status, session cookie, body).
async fn http(
    addr: &str,
    method: &str,
    path: &str,
    header: &str,
    body: Option<&str>,
) -> anyhow::Result<(u16, Option<String>, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let body = body.unwrap_or("");
    s.write_all(
        format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{header}\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    Ok(parse_answer(&raw))
}

fn admin() -> String {
    format!("Authorization: Bearer {ADMIN}\r\n")
}

fn learner(token: &str) -> String {
    format!("Cookie: berth_session={token}\r\n")
}

async fn socket(addr: &str, path: &str, header: (&'static str, String)) -> anyhow::Result<Ws> {
    let mut req = format!("ws://{addr}{path}").into_client_request()?;
    req.headers_mut().insert(header.0, header.1.parse()?);
    Ok(
        tokio_tungstenite::connect_async_with_config(req, None, true)
            .await
            .with_context(|| format!("connect {path}"))?
            .0,
    )
}

/// Reads output (acknowledging each frame) until it contains `needle`;
/// the bytes read.
async fn until(ws: &mut Ws, needle: &str, limit: Duration) -> anyhow::Result<u64> {
    let mut seen = Vec::new();
    let mut received = 0u64;
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let m = tokio::time::timeout(left, ws.next())
            .await
            .map_err(|_| anyhow!("no {needle:?} in {:?}", String::from_utf8_lossy(&seen)))?
            .ok_or_else(|| anyhow!("terminal closed"))??;
        if let Message::Binary(b) = m {
            received += b.len() as u64;
            seen.extend_from_slice(&b);
            let ack = serde_json::json!({"type": "ack", "bytes": received}).to_string();
            ws.send(Message::Text(ack.into())).await?;
            if String::from_utf8_lossy(&seen).contains(needle) {
                return Ok(received);
            }
        }
    }
}

async fn input(ws: &mut Ws, text: &str) -> anyhow::Result<()> {
    let m = serde_json::json!({"type": "input", "data": text}).to_string();
    ws.send(Message::Text(m.into())).await?;
    Ok(())
}

/// What one viewer saw.
#[derive(Default)]
struct Seen {
    bytes: AtomicU64,
    skipped: AtomicU64,
    ended: AtomicU64,
}

/// Follows a terminal like a browser: acknowledges every frame, counts
/// bytes, notes the end marker.
fn follow(mut ws: Ws, seen: Arc<Seen>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tail: Vec<u8> = Vec::new();
        let mut received = 0u64;
        while let Some(Ok(m)) = ws.next().await {
            match m {
                Message::Binary(b) => {
                    received += b.len() as u64;
                    seen.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                    tail.extend_from_slice(&b);
                    if tail.len() > 4096 {
                        tail.drain(..tail.len() - 64);
                    }
                    if seen.ended.load(Ordering::Relaxed) == 0
                        && String::from_utf8_lossy(&tail).contains(END)
                    {
                        seen.ended.store(1, Ordering::Relaxed);
                    }
                    let ack = serde_json::json!({"type": "ack", "bytes": received}).to_string();
                    if ws.send(Message::Text(ack.into())).await.is_err() {
                        break;
                    }
                }
                Message::Text(t) => {
                    let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                    if v["type"] == "skipped" {
                        let n = v["bytes"].as_u64().unwrap_or(0);
                        received += n;
                        seen.skipped.fetch_add(n, Ordering::Relaxed);
                    }
                }
                _ => {}
            }
        }
    })
}

pub fn run(berth: &Path, learners: usize, seconds: u64, rate: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let server = start(berth, learners).await?;
        let addr = server.addr.clone();
        let (rss_start, _) = server.memory();

        // The workshop, and its labs made ready before anyone joins.
        let plan = serde_json::json!({"title": "Bench workshop", "lessons": ["01-quick"], "seats": learners});
        let t0 = Instant::now();
        let (status, _, body) = http(&addr, "POST", "/api/workshops", &admin(), Some(&plan.to_string())).await?;
        anyhow::ensure!(status == 201, "create workshop: {status} {body}");
        let w: serde_json::Value = serde_json::from_str(&body)?;
        let (id, code) = (w["id"].as_i64().unwrap_or(0), w["code"].as_str().unwrap_or("").to_string());
        loop {
            let (_, _, body) = http(&addr, "GET", "/healthz", "", None).await?;
            let h: serde_json::Value = serde_json::from_str(&body)?;
            if h["pool"].as_u64().unwrap_or(0) as usize >= learners {
                break;
            }
            anyhow::ensure!(t0.elapsed() < Duration::from_secs(1800), "pre-warm stalled at {h}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let prewarm = t0.elapsed();
        println!("pre-warm: {learners} labs ready {:.1} s after the workshop was made", prewarm.as_secs_f64());

        let mut joins = Vec::new();
        let mut tokens = Vec::new();
        for i in 0..learners {
            let t = Instant::now();
            let body = serde_json::json!({"code": code, "name": format!("Learner {i:03}")}).to_string();
            let (status, token, answer) = http(&addr, "POST", "/api/workshops/join", "", Some(&body)).await?;
            anyhow::ensure!(status == 201, "join {i}: {status} {answer}");
            joins.push(t.elapsed());
            let v: serde_json::Value = serde_json::from_str(&answer)?;
            tokens.push((token.ok_or_else(|| anyhow!("no cookie"))?, v["learner"].as_i64().unwrap_or(0)));
        }
        print_row("join (pre-warmed lab)", learners, &summarize(joins));

        // Learners who will pass during the broadcast make their container first.
        let passers = learners.min(20);
        for (token, _) in tokens.iter().take(passers) {
            let mut ws = socket(&addr, "/ws/terminal/node1", ("cookie", format!("berth_session={token}"))).await?;
            until(&mut ws, "# ", Duration::from_secs(60)).await?;
            input(&mut ws, "docker create --name hello busybox >/dev/null && echo made-\"\"ok\r").await?;
            until(&mut ws, "made-ok", Duration::from_secs(120)).await?;
        }

        // The instructor's demo lab, with `cat` echoing typed lines.
        let (status, _, body) = http(&addr, "POST", &format!("/api/workshops/{id}/demo"), &admin(), None).await?;
        anyhow::ensure!(status == 200, "demo: {status} {body}");
        let mut demo = socket(&addr, &format!("/ws/workshops/{id}/demo/node1"), ("authorization", format!("Bearer {ADMIN}"))).await?;
        let before = until(&mut demo, "# ", Duration::from_secs(60)).await?;
        input(&mut demo, "stty -echo; cat\r").await?;
        tokio::time::sleep(Duration::from_millis(300)).await;

        // Every viewer: the learners' labs, their Presenter tabs, the board.
        let mut handles = Vec::new();
        let labs: Vec<Arc<Seen>> = (0..learners).map(|_| Arc::default()).collect();
        let views: Vec<Arc<Seen>> = (0..learners).map(|_| Arc::default()).collect();
        for (i, (token, _)) in tokens.iter().enumerate() {
            let cookie = ("cookie", format!("berth_session={token}"));
            handles.push(follow(socket(&addr, "/ws/terminal/node1", cookie.clone()).await?, labs[i].clone()));
            handles.push(follow(socket(&addr, "/ws/workshop/presenter", cookie).await?, views[i].clone()));
        }
        let demo_seen: Arc<Seen> = Arc::default();
        // The instructor's socket read the prompt already; it counts too.
        demo_seen.bytes.store(before, Ordering::Relaxed);
        let mut board = socket(&addr, &format!("/ws/workshops/{id}/board"), ("authorization", format!("Bearer {ADMIN}"))).await?;
        let first = tokio::time::timeout(Duration::from_secs(30), board.next()).await?;
        anyhow::ensure!(matches!(first, Some(Ok(Message::Text(ref t))) if t.contains("\"snapshot\"")), "no board snapshot");
        let arrivals: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
        let board_task = {
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                while let Some(Ok(m)) = board.next().await {
                    if let Message::Text(t) = m {
                        let v: serde_json::Value = serde_json::from_str(&t).unwrap_or_default();
                        if v["type"] == "pass" {
                            let at = Instant::now();
                            arrivals.lock().unwrap().insert(v["learner"].as_i64().unwrap_or(0), at);
                        }
                    }
                }
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (rss_connected, _) = server.memory();

        // The broadcast: lines typed at `rate` bytes a second for `seconds`
        // on the instructor's socket, which is also the reference viewer.
        let (lines_tx, demo_task) = instructor(demo, demo_seen.clone(), before);
        let line_len = 1024usize;
        let per_tick = Duration::from_secs_f64(line_len as f64 / rate as f64);
        let mut tick = tokio::time::interval(per_tick);
        let started = Instant::now();
        let mut sent = 0u64;
        let mut seq = 0u64;
        let mut next_pass = 0usize;
        let pass_every = Duration::from_secs(seconds.max(1)) / passers.max(1) as u32;
        let mut pass_times: Vec<(i64, Instant, Instant)> = Vec::new();
        let mut mem_peak = 0u64;
        let mut last_mem = Instant::now();
        while started.elapsed() < Duration::from_secs(seconds) {
            tick.tick().await;
            let head = format!("L{seq:07} ");
            let line = format!("{head}{}\r", "x".repeat(line_len - head.len() - 2));
            sent += line.len() as u64 + 1; // cat writes the line and \r\n
            seq += 1;
            lines_tx.send(line).await.map_err(|_| anyhow!("writer closed"))?;
            if next_pass < passers && started.elapsed() >= pass_every * next_pass as u32 + Duration::from_millis(500) {
                let (token, learner_id) = tokens[next_pass].clone();
                let addr = addr.clone();
                let t_req = Instant::now();
                let (status, _, body) = http(&addr, "POST", "/api/lessons/01-quick/check", &learner(&token), Some(r#"{"exercise":"made"}"#)).await?;
                let t_answer = Instant::now();
                anyhow::ensure!(status == 200 && body.contains("\"passed\":true"), "check: {status} {body}");
                pass_times.push((learner_id, t_req, t_answer));
                next_pass += 1;
            }
            if last_mem.elapsed() >= Duration::from_secs(1) {
                mem_peak = mem_peak.max(server.memory().0);
                last_mem = Instant::now();
            }
        }
        lines_tx.send(format!("{END}\r")).await.map_err(|_| anyhow!("writer closed"))?;
        let broadcast = started.elapsed();
        // Wait for every viewer to see the end marker.
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline
            && (views.iter().any(|v| v.ended.load(Ordering::Relaxed) == 0) || demo_seen.ended.load(Ordering::Relaxed) == 0)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let (rss_end, hwm) = server.memory();

        let reference = demo_seen.bytes.load(Ordering::Relaxed);
        let mut got: Vec<u64> = views.iter().map(|v| v.bytes.load(Ordering::Relaxed)).collect();
        got.sort();
        let complete = views.iter().filter(|v| v.ended.load(Ordering::Relaxed) == 1 && v.bytes.load(Ordering::Relaxed) == reference).count();
        let skipped: u64 = views.iter().map(|v| v.skipped.load(Ordering::Relaxed)).sum();
        let lab_bytes: u64 = labs.iter().map(|v| v.bytes.load(Ordering::Relaxed)).sum();
        println!(
            "broadcast: {seq} lines, {sent} bytes typed in {:.1} s ({:.1} kB/s); the demo shell wrote {reference} bytes (instructor's own view)",
            broadcast.as_secs_f64(),
            sent as f64 / broadcast.as_secs_f64() / 1000.0,
        );
        println!(
            "presenter viewers: {complete}/{learners} got every byte and the end marker; bytes per viewer min={} median={} max={}; skipped in total {skipped}; {:.1} MB delivered to viewers",
            got.first().copied().unwrap_or(0),
            got.get(got.len() / 2).copied().unwrap_or(0),
            got.last().copied().unwrap_or(0),
            got.iter().sum::<u64>() as f64 / 1e6,
        );
        println!("learners' own lab terminals: {learners} connected, {lab_bytes} bytes (prompts) delivered");

        let arrivals = arrivals.lock().unwrap().clone();
        let mut from_request = Vec::new();
        let mut from_answer = Vec::new();
        for (learner_id, t_req, t_answer) in &pass_times {
            if let Some(at) = arrivals.get(learner_id) {
                from_request.push(at.duration_since(*t_req));
                from_answer.push(at.saturating_duration_since(*t_answer));
            }
        }
        println!("passes seen on the board: {}/{}", from_request.len(), pass_times.len());
        if !from_request.is_empty() {
            print_row("pass: check request -> board cell", from_request.len(), &summarize(from_request));
            print_row("pass: check answer -> board cell (0 = first)", from_answer.len(), &summarize(from_answer));
        }
        println!(
            "server memory (VmRSS): at start {:.1} MiB, all {} viewers + board connected {:.1} MiB, peak sampled during broadcast {:.1} MiB, after {:.1} MiB (VmHWM {:.1} MiB)",
            mib(rss_start), 2 * learners + 2, mib(rss_connected), mib(mem_peak), mib(rss_end), mib(hwm)
        );

        // The end: delete the workshop (every lab ended).
        let t = Instant::now();
        let (status, _, body) = http(&addr, "DELETE", &format!("/api/workshops/{id}"), &admin(), None).await?;
        anyhow::ensure!(status == 200, "delete: {status} {body}");
        println!("delete workshop: {body} in {:.1} s", t.elapsed().as_secs_f64());
        drop(lines_tx);
        demo_task.abort();
        board_task.abort();
        for h in handles {
            h.abort();
        }
        drop(server);
        anyhow::Ok(())
    })
}

/// The instructor's demo socket: types the lines it is sent, reads and
/// acknowledges the output like any viewer (the reference count).
fn instructor(
    ws: Ws,
    seen: Arc<Seen>,
    already: u64,
) -> (
    tokio::sync::mpsc::Sender<String>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut lines) = tokio::sync::mpsc::channel::<String>(64);
    let task = tokio::spawn(async move {
        let (mut out, mut inp) = ws.split();
        let mut received = already;
        let mut tail: Vec<u8> = Vec::new();
        loop {
            tokio::select! {
                line = lines.recv() => match line {
                    Some(l) => {
                        let m = serde_json::json!({"type": "input", "data": l}).to_string();
                        if out.send(Message::Text(m.into())).await.is_err() { break; }
                    }
                    None => break,
                },
                m = inp.next() => match m {
                    Some(Ok(Message::Binary(b))) => {
                        received += b.len() as u64;
                        seen.bytes.fetch_add(b.len() as u64, Ordering::Relaxed);
                        tail.extend_from_slice(&b);
                        if tail.len() > 4096 { tail.drain(..tail.len() - 64); }
                        if String::from_utf8_lossy(&tail).contains(END) { seen.ended.store(1, Ordering::Relaxed); }
                        let ack = serde_json::json!({"type": "ack", "bytes": received}).to_string();
                        if out.send(Message::Text(ack.into())).await.is_err() { break; }
                    }
                    Some(Ok(_)) => {}
                    _ => break,
                }
            }
        }
    });
    (tx, task)
}
