//! `berth-bench term [KEYS]`: keystroke → glyph on screen in headless
//! Chromium, median and p90 of KEYS keys (default 200), three ways, so the
//! numbers say what Berth adds:
//! - `xterm.js alone`: a bare xterm.js page whose keys are written straight
//!   back into it (no socket): what the terminal and the browser cost;
//! - `bare xterm.js + WebSocket echo`: the same page sending each key over a
//!   WebSocket to a tiny echo server here (TCP_NODELAY, as Berth) and writing
//!   what comes back;
//! - `Berth lesson page`: `berth serve` with the course's lessons, the first
//!   lesson's page, its lab's shell echoing through the pty, the pump, the
//!   ring and the flow-controlled socket.
//!
//! The pages are driven by `benches/browser/term_latency.mjs` (Debian's
//! Chromium via playwright-core, 1366×768), which times from the keydown
//! event to the end of the frame that drew the glyph; see its header.
//!
//! Measured 2026-12-07 on 2 cores shared with six busy engineers (load ~10),
//! debug build, 200 keys — see docs/design.md ("Terminal latency").

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{anyhow, Context};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::{classroom, print_row, summarize};

pub fn run(berth: &Path, keys: usize) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let bare = format!("http://{}/", listener.local_addr()?);
        tokio::spawn(echo_server(listener));

        let alone = browser("bare", &format!("{bare}?local"), keys).await?;
        print_row("key -> glyph, xterm.js alone", keys, &summarize(alone));
        let echoed = browser("bare", &bare, keys).await?;
        print_row(
            "key -> glyph, bare xterm.js + ws echo",
            keys,
            &summarize(echoed),
        );

        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let lessons = root.join("lessons").display().to_string();
        let server =
            classroom::start(berth, &["--lessons", &lessons, "--preview-listen", "off"]).await?;
        let url = format!("http://{}/lessons/01-vms-vs-containers", server.addr);
        let berth = browser("berth", &url, keys).await?;
        print_row("key -> glyph, Berth lesson page", keys, &summarize(berth));
        anyhow::Ok(())
    })
}

/// Serves `benches/browser/bare.html` and xterm.js over HTTP, and echoes
/// every text frame of a WebSocket at `/ws` back as a binary frame, as a
/// terminal server sends output.
async fn echo_server(listener: tokio::net::TcpListener) {
    while let Ok((tcp, _)) = listener.accept().await {
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let _ = serve_one(tcp).await;
        });
    }
}

async fn serve_one(mut tcp: tokio::net::TcpStream) -> anyhow::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The request head, peeked: a WebSocket upgrade is left for tungstenite.
    let mut head = vec![0u8; 4096];
    let head = loop {
        let n = tcp.peek(&mut head).await?;
        let text = String::from_utf8_lossy(&head[..n]).into_owned();
        if text.contains("\r\n\r\n") || n == head.len() {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    if head.to_ascii_lowercase().contains("upgrade: websocket") {
        let mut ws = tokio_tungstenite::accept_async(tcp).await?;
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                ws.send(Message::Binary(t.as_str().as_bytes().to_vec().into()))
                    .await?;
            }
        }
        return Ok(());
    }
    // Take the head off the socket (closing with it unread would reset the
    // connection before the browser reads the answer).
    let mut taken = vec![0u8; head.find("\r\n\r\n").map_or(head.len(), |i| i + 4)];
    tcp.read_exact(&mut taken).await?;
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (file, mime) = match path.split('?').next().unwrap_or("/") {
        "/" => ("benches/browser/bare.html", "text/html"),
        "/xterm.js" => (
            "web/node_modules/@xterm/xterm/lib/xterm.js",
            "text/javascript",
        ),
        "/xterm.css" => ("web/node_modules/@xterm/xterm/css/xterm.css", "text/css"),
        _ => ("", ""),
    };
    let answer = match std::fs::read(root.join(file)) {
        Ok(body) if !file.is_empty() => {
            let mut a = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {mime}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            )
            .into_bytes();
            a.extend_from_slice(&body);
            a
        }
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    };
    tcp.write_all(&answer).await?;
    tcp.shutdown().await?;
    Ok(())
}

/// Runs the browser script; its samples, in milliseconds.
async fn browser(mode: &str, url: &str, keys: usize) -> anyhow::Result<Vec<Duration>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/browser/term_latency.mjs");
    let (mode, url) = (mode.to_string(), url.to_string());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(script)
            .args([&mode, &url, &keys.to_string()])
            .output()
    })
    .await?
    .context("run node")?;
    if !out.status.success() {
        return Err(anyhow!(
            "the browser script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).context("its output")?;
    let samples = v["samples"]
        .as_array()
        .ok_or_else(|| anyhow!("no samples"))?
        .iter()
        .filter_map(|s| s.as_f64())
        .map(|ms| Duration::from_secs_f64(ms / 1e3))
        .collect::<Vec<_>>();
    anyhow::ensure!(samples.len() == keys, "{} samples of {keys}", samples.len());
    Ok(samples)
}
