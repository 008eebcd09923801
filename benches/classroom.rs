//! `berth-bench classroom [RUNS] [IDLE]`: the classroom as a learner meets
//! it, through `berth serve` over HTTP and the WebSocket:
//! - session create → first prompt byte on the terminal, cold (no pool) and
//!   pre-warmed (`--prewarm`), median of RUNS (default 30);
//! - keystroke echo round trip (input frame → its echo), median of 200;
//! - host memory per idle session (IDLE sessions, default 50, each a lab at
//!   its prompt with no viewer), from MemAvailable, and how many would fit.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::{print_row, summarize};

pub(crate) struct Server {
    pub(crate) child: Child,
    pub(crate) addr: String,
    pub(crate) _data: tempfile::TempDir,
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

pub(crate) async fn start(berth: &Path, extra: &[&str]) -> anyhow::Result<Server> {
    let data = tempfile::Builder::new()
        .prefix("berth-bench-classroom-")
        .tempdir_in("/var/tmp")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(berth)
        .arg("--data-dir")
        .arg(data.path().join("data"))
        .args(["serve", "--listen", &addr, "--max-sessions", "2000"])
        .args(["--registry-listen", "127.0.0.1:0"])
        .args(["--sessions-per-minute", "100000", "--idle-timeout", "2h"])
        .args(extra)
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
    for _ in 0..600 {
        if let Ok((200, _, _)) = http(&server.addr, "GET", "/healthz", None).await {
            return Ok(server);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(anyhow!("berth serve did not start"))
}

/// One HTTP/1.1 request: (status, set-cookie token, body).
pub(crate) async fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, Option<String>, String)> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let cookie = token
        .map(|t| format!("Cookie: berth_session={t}\r\n"))
        .unwrap_or_default();
    s.write_all(
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n{cookie}\r\n")
            .as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    Ok(parse_answer(&raw))
}

/// An HTTP/1.1 answer read to its end: status, the `berth_session` cookie
/// it sets (if any) and the body.
pub fn parse_answer(raw: &[u8]) -> (u16, Option<String>, String) {
    let text = String::from_utf8_lossy(raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let token = text
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: berth_session="))
        .and_then(|v| v.split(';').next())
        .map(String::from);
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, token, body)
}

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn terminal(addr: &str, token: &str) -> anyhow::Result<Ws> {
    let mut req = format!("ws://{addr}/ws/terminal/node1").into_client_request()?;
    req.headers_mut()
        .insert("cookie", format!("berth_session={token}").parse()?);
    Ok(
        tokio_tungstenite::connect_async_with_config(req, None, true)
            .await?
            .0,
    )
}

/// Reads until a binary frame satisfies `done` (acknowledging as it goes).
pub(crate) async fn until(
    ws: &mut Ws,
    received: &mut u64,
    done: impl Fn(&[u8]) -> bool,
) -> anyhow::Result<()> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .context("terminal timed out")?
            .ok_or_else(|| anyhow!("terminal closed"))??;
        if let Message::Binary(b) = m {
            *received += b.len() as u64;
            let ack = serde_json::json!({"type": "ack", "bytes": *received}).to_string();
            ws.send(Message::Text(ack.into())).await?;
            if done(&b) {
                return Ok(());
            }
        }
    }
}

/// Create → first output byte, one run; returns the time and the token.
async fn create_to_prompt(addr: &str) -> anyhow::Result<(Duration, String)> {
    let t0 = Instant::now();
    let (status, token, body) = http(addr, "POST", "/api/session", None).await?;
    if status != 201 {
        return Err(anyhow!("create session: {status} {body}"));
    }
    let token = token.ok_or_else(|| anyhow!("no cookie"))?;
    let mut ws = terminal(addr, &token).await?;
    let mut received = 0;
    until(&mut ws, &mut received, |b| !b.is_empty()).await?;
    Ok((t0.elapsed(), token))
}

pub(crate) fn mem_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemAvailable:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

pub fn run(berth: &Path, runs: usize, idle: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Cold: every session made on demand.
        let server = start(berth, &[]).await?;
        let (_, warmup) = create_to_prompt(&server.addr).await?; // lab image made once
        http(&server.addr, "DELETE", "/api/session", Some(&warmup)).await?;
        let mut cold = Vec::new();
        for _ in 0..runs {
            let (t, token) = create_to_prompt(&server.addr).await?;
            cold.push(t);
            http(&server.addr, "DELETE", "/api/session", Some(&token)).await?;
        }
        print_row("session create -> first prompt byte (cold)", runs, &summarize(cold));

        // Echo round trip on one session.
        let (_, token) = create_to_prompt(&server.addr).await?;
        let mut ws = terminal(&server.addr, &token).await?;
        let mut received = 0;
        until(&mut ws, &mut received, |b| String::from_utf8_lossy(b).contains("# ")).await?;
        let mut echo = Vec::new();
        for i in 0..200 {
            let ch = (b'a' + (i % 26) as u8) as char;
            let t0 = Instant::now();
            let input = serde_json::json!({"type": "input", "data": ch.to_string()}).to_string();
            ws.send(Message::Text(input.into())).await?;
            until(&mut ws, &mut received, |b| b.contains(&(ch as u8))).await?;
            echo.push(t0.elapsed());
            let erase = serde_json::json!({"type": "input", "data": "\u{7f}"}).to_string();
            ws.send(Message::Text(erase.into())).await?;
            until(&mut ws, &mut received, |b| b.contains(&8u8)).await?;
        }
        print_row("keystroke echo round trip", 200, &summarize(echo));
        drop(ws);
        http(&server.addr, "DELETE", "/api/session", Some(&token)).await?;

        // Idle sessions: memory per session.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = mem_available();
        let mut tokens = Vec::new();
        for _ in 0..idle {
            let (_, token) = create_to_prompt(&server.addr).await?;
            tokens.push(token);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = mem_available();
        let per = before.saturating_sub(after) / idle.max(1) as u64;
        println!(
            "idle sessions: {idle} use {:.1} MiB of host memory, {:.2} MiB each; MemAvailable before {:.0} MiB -> about {} idle sessions fit",
            before.saturating_sub(after) as f64 / 1048576.0,
            per as f64 / 1048576.0,
            before as f64 / 1048576.0,
            before.checked_div(per).unwrap_or(0)
        );
        for t in tokens {
            http(&server.addr, "DELETE", "/api/session", Some(&t)).await?;
        }
        drop(server);

        // Pre-warmed: a pool of ready labs.
        let server = start(berth, &["--prewarm", "2"]).await?;
        let mut warm = Vec::new();
        for _ in 0..runs {
            loop {
                let (_, _, body) = http(&server.addr, "GET", "/healthz", None).await?;
                let v: serde_json::Value = serde_json::from_str(&body)?;
                if v["pool"].as_u64().unwrap_or(0) >= 1 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let (t, token) = create_to_prompt(&server.addr).await?;
            warm.push(t);
            http(&server.addr, "DELETE", "/api/session", Some(&token)).await?;
        }
        print_row("session create -> first prompt byte (pre-warmed)", runs, &summarize(warm));
        anyhow::Ok(())
    })
}
