//! `berth-bench scale [RUNS] [IDLE]`: a front (`berth serve --runners`) and
//! one runner on this host, and what going through the front costs:
//! - placement: session create answered (front → runner → lab made), one at
//!   a time (median of RUNS) and 10 at once (sessions per second);
//! - prompt latency: create → first prompt byte, through the front and
//!   direct to the runner's API;
//! - keystroke echo round trip on one session, through the front's relay and
//!   direct to the runner (median of 200 each);
//! - memory per idle session on the runner (IDLE sessions, default 20) and
//!   how many learners a runner of this host's memory holds.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use super::classroom::{http, mem_available, parse_answer, terminal, until, Server, Ws};
use super::{print_row, summarize};

const SECRET: &str = "berth-bench-scale-secret-0123456789";

fn free_addr() -> anyhow::Result<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    Ok(format!("127.0.0.1:{port}"))
}

/// A request to the runner API with the secret.
async fn runner_call(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
) -> anyhow::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(
        format!(
            "{method} /runner/v1{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {SECRET}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
    .await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    let (status, _, body) = parse_answer(&raw);
    Ok((status, body))
}

async fn runner_terminal(addr: &str, id: &str) -> anyhow::Result<Ws> {
    let mut req =
        format!("ws://{addr}/runner/v1/sessions/{id}/terminal/node1").into_client_request()?;
    req.headers_mut()
        .insert("authorization", format!("Bearer {SECRET}").parse()?);
    Ok(
        tokio_tungstenite::connect_async_with_config(req, None, true)
            .await?
            .0,
    )
}

async fn echo(ws: &mut Ws, rounds: usize) -> anyhow::Result<Vec<Duration>> {
    let mut received = 0;
    until(ws, &mut received, |b| {
        String::from_utf8_lossy(b).contains("# ")
    })
    .await?;
    let mut times = Vec::new();
    for i in 0..rounds {
        let ch = (b'a' + (i % 26) as u8) as char;
        let t0 = Instant::now();
        let input = serde_json::json!({"type": "input", "data": ch.to_string()}).to_string();
        ws.send(Message::Text(input.into())).await?;
        until(ws, &mut received, |b| b.contains(&(ch as u8))).await?;
        times.push(t0.elapsed());
        let erase = serde_json::json!({"type": "input", "data": "\u{7f}"}).to_string();
        ws.send(Message::Text(erase.into())).await?;
        until(ws, &mut received, |b| b.contains(&8u8)).await?;
    }
    Ok(times)
}

pub fn run(berth: &Path, runs: usize, idle: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let dir = tempfile::Builder::new()
            .prefix("berth-bench-scale-")
            .tempdir_in("/var/tmp")?;
        let secret = dir.path().join("secret");
        std::fs::write(&secret, SECRET)?;
        let runner_addr = free_addr()?;
        let runner = Server {
            child: Command::new(berth)
                .arg("--data-dir")
                .arg(dir.path().join("runner"))
                .args(["runner", "--listen", &runner_addr, "--preview-listen", "off"])
                .args(["--registry-listen", "127.0.0.1:0", "--max-sessions", "500"])
                .args(["--idle-timeout", "2h"])
                .arg("--runner-secret-file")
                .arg(&secret)
                .env("BERTH_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .context("start berth runner")?,
            addr: runner_addr.clone(),
            _data: tempfile::tempdir()?,
        };
        for _ in 0..1200 {
            if let Ok((200, _)) = runner_call(&runner.addr, "GET", "/health", "").await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let front = super::classroom::start(
            berth,
            &[
                "--runners",
                &format!("http://{runner_addr}"),
                "--runner-secret-file",
                secret.to_str().unwrap_or_default(),
                "--preview-listen",
                "off",
            ],
        )
        .await?;
        // The front takes a runner once it has answered a health check.
        for _ in 0..200 {
            let (_, _, body) = http(&front.addr, "GET", "/healthz", None).await?;
            let v: serde_json::Value = serde_json::from_str(&body)?;
            if v["runners"][0]["up"] == true {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        // Warm-up: the lab image is made once.
        let (_, warm, _) = http(&front.addr, "POST", "/api/session", None).await?;
        let warm = warm.ok_or_else(|| anyhow!("no session from the front"))?;
        http(&front.addr, "DELETE", "/api/session", Some(&warm)).await?;

        // Placement and prompt, through the front.
        let (mut placed, mut prompt_front) = (Vec::new(), Vec::new());
        for _ in 0..runs {
            let t0 = Instant::now();
            let (status, token, body) = http(&front.addr, "POST", "/api/session", None).await?;
            if status != 201 {
                return Err(anyhow!("create through the front: {status} {body}"));
            }
            placed.push(t0.elapsed());
            let token = token.ok_or_else(|| anyhow!("no cookie"))?;
            let mut ws = terminal(&front.addr, &token).await?;
            let mut received = 0;
            until(&mut ws, &mut received, |b| !b.is_empty()).await?;
            prompt_front.push(t0.elapsed());
            drop(ws);
            http(&front.addr, "DELETE", "/api/session", Some(&token)).await?;
        }
        print_row("front: session create answered (placed, lab made)", runs, &summarize(placed));
        print_row("front: session create -> first prompt byte", runs, &summarize(prompt_front));

        // The same, direct to the runner.
        let mut prompt_direct = Vec::new();
        for i in 0..runs {
            let t0 = Instant::now();
            let (status, body) = runner_call(
                &runner.addr,
                "POST",
                "/sessions",
                &format!("{{\"label\":\"bench-{i}\"}}"),
            )
            .await?;
            if status != 201 {
                return Err(anyhow!("create on the runner: {status} {body}"));
            }
            let id = serde_json::from_str::<serde_json::Value>(&body)?["id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let mut ws = runner_terminal(&runner.addr, &id).await?;
            let mut received = 0;
            until(&mut ws, &mut received, |b| !b.is_empty()).await?;
            prompt_direct.push(t0.elapsed());
            drop(ws);
            runner_call(&runner.addr, "DELETE", &format!("/sessions/{id}"), "").await?;
        }
        print_row("runner direct: session create -> first prompt byte", runs, &summarize(prompt_direct));

        // Ten placements at once.
        let t0 = Instant::now();
        let made = futures_util::future::join_all(
            (0..10).map(|_| http(&front.addr, "POST", "/api/session", None)),
        )
        .await;
        let wall = t0.elapsed();
        let tokens: Vec<String> = made
            .into_iter()
            .filter_map(|r| r.ok().and_then(|(s, t, _)| (s == 201).then_some(t).flatten()))
            .collect();
        println!(
            "placement: {} sessions at once in {:.2} s: {:.2} sessions/s",
            tokens.len(),
            wall.as_secs_f64(),
            tokens.len() as f64 / wall.as_secs_f64()
        );
        for t in &tokens {
            http(&front.addr, "DELETE", "/api/session", Some(t)).await?;
        }

        // Echo on one session: through the front, then direct.
        let (_, token, body) = http(&front.addr, "POST", "/api/session", None).await?;
        let token = token.ok_or_else(|| anyhow!("no cookie"))?;
        let id = serde_json::from_str::<serde_json::Value>(&body)?["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let mut ws = terminal(&front.addr, &token).await?;
        let via_front = summarize(echo(&mut ws, 200).await?);
        drop(ws);
        let mut ws = runner_terminal(&runner.addr, &id).await?;
        let direct = summarize(echo(&mut ws, 200).await?);
        drop(ws);
        print_row("keystroke echo through the front", 200, &via_front);
        print_row("keystroke echo direct to the runner", 200, &direct);
        println!(
            "added by the front at the median: {:.3} ms",
            (via_front.median.as_secs_f64() - direct.median.as_secs_f64()) * 1000.0
        );
        http(&front.addr, "DELETE", "/api/session", Some(&token)).await?;

        // Memory per idle session on the runner.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let before = mem_available();
        let mut tokens = Vec::new();
        for _ in 0..idle {
            let (_, token, _) = http(&front.addr, "POST", "/api/session", None).await?;
            let token = token.ok_or_else(|| anyhow!("no cookie"))?;
            let mut ws = terminal(&front.addr, &token).await?;
            let mut received = 0;
            until(&mut ws, &mut received, |b| !b.is_empty()).await?;
            tokens.push(token);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let per = before.saturating_sub(mem_available()) / idle.max(1) as u64;
        println!(
            "idle sessions on the runner: {:.2} MiB each; a runner with this host's {:.0} MiB available holds about {} learners",
            per as f64 / 1048576.0,
            before as f64 / 1048576.0,
            before.checked_div(per).unwrap_or(0)
        );
        for t in tokens {
            http(&front.addr, "DELETE", "/api/session", Some(&t)).await?;
        }
        drop(front);
        drop(runner);
        anyhow::Ok(())
    })
}
