//! A classroom fixture: `berth serve` on a free port with its own data dir,
//! an HTTP client that speaks just enough HTTP/1.1, and a terminal client
//! over the WebSocket that acknowledges output like the browser does.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A running `berth serve`.
pub struct Classroom {
    pub data: tempfile::TempDir,
    pub addr: String,
    child: Option<Child>,
    args: Vec<String>,
    /// Times `spawn` picked another port because the first was taken.
    port_retries: u32,
}

/// An HTTP answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Classroom {
    /// Starts `berth serve` with `args` added.
    pub fn start(args: &[&str]) -> Self {
        let data = tempfile::Builder::new()
            .prefix("berth-classroom-")
            .tempdir_in("/var/tmp")
            .expect("temp data dir");
        let mut c = Self {
            data,
            addr: String::new(),
            child: None,
            args: args.iter().map(|s| s.to_string()).collect(),
            port_retries: 0,
        };
        c.spawn();
        c
    }

    /// The data directory `berth serve` uses.
    pub fn data_dir(&self) -> PathBuf {
        self.data.path().join("data")
    }

    /// Starts (again) on the same data directory.
    pub fn spawn(&mut self) {
        self.addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.data.path().join("serve.log"))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_berth"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("serve")
            .arg("--listen")
            .arg(&self.addr)
            .args(["--registry-listen", "127.0.0.1:0"])
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            if let Ok(r) = self.try_http("GET", "/healthz", None, None) {
                if r.status == 200 {
                    return;
                }
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                // The free port was taken by someone else between picking it
                // and binding it (tests run side by side): try another one.
                let log = self.log();
                if log.contains("listen on 127.0.0.1") && self.port_retries < 5 {
                    self.port_retries += 1;
                    self.child = None;
                    return self.spawn();
                }
                panic!("berth serve exited ({status}):\n{log}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("berth serve did not come up:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("serve.log")).unwrap_or_default()
    }

    /// Kills the server without letting it clean up (a crash).
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the server with SIGTERM and waits.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }

    fn try_http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> std::io::Result<Response> {
        self.request(method, path, token, body, &[])
    }

    /// One request with `extra` headers; the connection is closed after.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
        extra: &[(&str, &str)],
    ) -> std::io::Result<Response> {
        let mut s = TcpStream::connect(&self.addr)?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        let body = body.unwrap_or("");
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        if let Some(t) = token {
            req.push_str(&format!("Cookie: berth_session={t}\r\n"));
        }
        for (k, v) in extra {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        Ok(Response {
            status,
            headers,
            body: body.to_string(),
        })
    }

    pub fn http(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> Response {
        self.try_http(method, path, token, body)
            .expect("HTTP request")
    }

    /// Makes a session; returns its token and status.
    pub fn new_session(&self) -> (String, serde_json::Value) {
        let r = self.http("POST", "/api/session", None, None);
        assert_eq!(r.status, 201, "create session: {}\n{}", r.body, self.log());
        let cookie = r
            .header("set-cookie")
            .expect("a session cookie")
            .to_string();
        let token = cookie
            .split(';')
            .next()
            .and_then(|kv| kv.strip_prefix("berth_session="))
            .expect("berth_session cookie")
            .to_string();
        (token, r.json())
    }

    /// Opens a terminal of `node` with `token`'s cookie.
    pub async fn terminal(&self, token: &str, node: &str) -> Term {
        self.try_terminal(Some(token), node)
            .await
            .expect("terminal connects")
    }

    /// Opens a terminal; `Err(status)` when the upgrade is refused.
    pub async fn try_terminal(
        &self,
        token: Option<&str>,
        node: &str,
    ) -> Result<Term, (u16, String)> {
        let mut req = format!("ws://{}/ws/terminal/{node}", self.addr)
            .into_client_request()
            .unwrap();
        if let Some(t) = token {
            req.headers_mut()
                .insert("cookie", format!("berth_session={t}").parse().unwrap());
        }
        match tokio_tungstenite::connect_async_with_config(req, None, true).await {
            Ok((ws, _)) => Ok(Term {
                ws,
                received: 0,
                acked: 0,
                output: Vec::new(),
                messages: Vec::new(),
            }),
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err((
                r.status().as_u16(),
                String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).into_owned(),
            )),
            Err(e) => panic!("websocket: {e}"),
        }
    }
}

impl Drop for Classroom {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Reads a raw frame without acknowledging it.
pub trait NextFrame {
    fn next_frame(&mut self) -> impl std::future::Future<Output = Option<Message>>;
}

impl NextFrame
    for tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>
{
    async fn next_frame(&mut self) -> Option<Message> {
        self.next().await?.ok()
    }
}

/// A terminal client.
pub struct Term {
    pub ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    pub received: u64,
    pub acked: u64,
    /// Every output byte seen.
    pub output: Vec<u8>,
    /// Every JSON message seen.
    pub messages: Vec<serde_json::Value>,
}

impl Term {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output).into_owned()
    }

    /// Sends keystrokes.
    pub async fn type_text(&mut self, text: &str) {
        let m = serde_json::json!({"type": "input", "data": text}).to_string();
        self.ws
            .send(Message::Text(m.into()))
            .await
            .expect("send input");
    }

    pub async fn send_raw(&mut self, m: Message) {
        self.ws.send(m).await.expect("send");
    }

    /// Reads one frame (acknowledging output); `None` on close or timeout.
    pub async fn next(&mut self, limit: Duration) -> Option<Message> {
        let m = tokio::time::timeout(limit, self.ws.next())
            .await
            .ok()??
            .ok()?;
        match &m {
            Message::Binary(b) => {
                self.received += b.len() as u64;
                self.output.extend_from_slice(b);
                if self.received - self.acked >= 8192 {
                    self.acked = self.received;
                    let ack = serde_json::json!({"type": "ack", "bytes": self.acked}).to_string();
                    let _ = self.ws.send(Message::Text(ack.into())).await;
                }
            }
            Message::Text(t) => {
                let v: serde_json::Value = serde_json::from_str(t).expect("server sends JSON");
                if v["type"] == "skipped" {
                    self.received += v["bytes"].as_u64().unwrap_or(0);
                }
                self.messages.push(v);
            }
            _ => {}
        }
        Some(m)
    }

    /// Reads until the output contains `needle`; false at the timeout.
    pub async fn wait_for(&mut self, needle: &str, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.text().contains(needle) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            // Acknowledge everything while waiting, like a browser would.
            if self.received > self.acked {
                self.acked = self.received;
                let ack = serde_json::json!({"type": "ack", "bytes": self.acked}).to_string();
                let _ = self.ws.send(Message::Text(ack.into())).await;
            }
            if self
                .next(left.min(Duration::from_millis(500)))
                .await
                .is_none()
                && self.closed()
            {
                return self.text().contains(needle);
            }
        }
    }

    fn closed(&self) -> bool {
        false
    }

    /// Runs `command` in the shell and returns what it printed (between a
    /// start and an end marker, so the typed line is not included).
    pub async fn run(&mut self, command: &str, limit: Duration) -> Option<String> {
        let n = rand_marker();
        let start = format!("__s{n}__");
        let end = format!("__e{n}__");
        let line = format!(
            "echo {}; {command}; echo {}\r",
            split_marker(&start),
            split_marker(&end)
        );
        self.output.clear();
        self.type_text(&line).await;
        if !self.wait_for(&format!("{end}\r\n"), limit).await {
            return None;
        }
        let text = self.text();
        let from = text.rfind(&format!("{start}\r\n"))? + start.len() + 2;
        let to = text.rfind(&format!("{end}\r\n"))?;
        Some(text[from..to].replace("\r\n", "\n"))
    }
}

fn rand_marker() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    N.fetch_add(1, Ordering::SeqCst) * 1000 + std::process::id() as u64 % 1000
}

/// `__s1__` typed as `__s1""__`, so the echo of the typed line does not match.
fn split_marker(m: &str) -> String {
    format!("{}\"\"{}", &m[..3], &m[3..])
}

/// Lines of /proc/self/mountinfo that mention `needle`.
pub fn mounts_with(needle: &str) -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(needle))
        .map(String::from)
        .collect()
}

/// Cgroup directories of session `session` (`berth/classroom-*/<session>`)
/// in any hierarchy.
pub fn session_cgroups(session: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut bases = vec![root.join("berth")];
    if let Ok(entries) = std::fs::read_dir(root) {
        bases.extend(entries.flatten().map(|e| e.path().join("berth")));
    }
    let mut out = Vec::new();
    for base in bases {
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let dir = e.path().join(session);
            if e.file_name().to_string_lossy().starts_with("classroom-") && dir.is_dir() {
                out.push(dir);
            }
        }
    }
    out
}

/// Whether headless Chromium and playwright-core are installed; under
/// scripts/test.sh (`BERTH_FULL_SUITE`) they must be.
pub fn browser_available() -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let there = Path::new("/usr/bin/chromium").exists()
        && root.join("web/node_modules/playwright-core").exists();
    if !there {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "scripts/test.sh installs chromium and playwright-core"
        );
        eprintln!("skipping: scripts/setup.sh installs chromium and playwright-core");
    }
    there
}

/// Runs the playwright script `tests/browser/<script>` against `url`, with
/// screenshots to tests/artifacts/; returns what it printed, failing the
/// test (with the server's log) when the script fails.
pub fn run_browser_script(c: &Classroom, script: &str, url: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let shots = artifacts();
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(root.join("tests/browser").join(script))
        .arg(url)
        .arg(&shots)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}\n{}",
        c.log()
    );
    stdout
}

/// Where browser tests keep their screenshots.
pub fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/artifacts")
}
