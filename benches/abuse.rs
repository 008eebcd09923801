//! `berth-bench abuse [LEARNERS] [SECONDS]`: one learner misbehaves while
//! LEARNERS others (default 30) type at a steady rate. Each abuse runs for at
//! most SECONDS (default 20) through the real docker CLI on the abuser's own
//! session socket (what the learner's `docker` in the lab talks to), one after
//! another: a fork bomb, a memory hog, `yes` flooding its terminal, four CPU
//! spinners, a pathological `docker images --filter`, a 4 GiB gzip-bomb build
//! context, a 10 GiB volume fill, 1000 `docker run -d`, 200 concurrent
//! `docker run --rm`.
//!
//! For each: the others' keystroke echo p50/p99 (a key every 250 ms each,
//! input frame to its echo), `/healthz` latency (every 200 ms), the server's
//! peak RSS, the host's lowest MemAvailable and free disk under the data
//! directory, and what the abuser was told. The goal the issue sets: echo p99
//! < 50 ms and `/healthz` < 100 ms throughout, MemAvailable ≥ 1 GiB, free
//! disk ≥ 2 GiB, and the server never restarts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context};
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

use super::classroom::{http, mem_available, start, terminal, until, Ws};

/// Samples taken while the bench runs, each with the time it was taken.
#[derive(Default)]
struct Samples {
    echo: Vec<(Instant, Duration)>,
    health: Vec<(Instant, Duration)>,
    /// (when, server RSS bytes, MemAvailable bytes, free disk bytes)
    host: Vec<(Instant, u64, u64, u64)>,
    /// Keystrokes that got no echo within 5 s.
    lost: Vec<Instant>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn quantile(mut v: Vec<Duration>, q: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    v[((v.len() - 1) as f64 * q).round() as usize]
}

fn rss_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .unwrap_or(0)
        * 1024
}

fn free_disk(path: &Path) -> u64 {
    nix::sys::statvfs::statvfs(path)
        .map(|s| s.blocks_available() * s.fragment_size())
        .unwrap_or(0)
}

/// A learner typing: a key every 250 ms, timed to its echo, then erased.
async fn typist(mut ws: Ws, samples: Arc<Mutex<Samples>>, stop: Arc<AtomicBool>) {
    let mut received = 0u64;
    let mut i = 0u32;
    while !stop.load(Ordering::Relaxed) {
        let ch = (b'a' + (i % 26) as u8) as char;
        i += 1;
        let t0 = Instant::now();
        let input = serde_json::json!({"type": "input", "data": ch.to_string()}).to_string();
        if ws.send(Message::Text(input.into())).await.is_err() {
            return;
        }
        let echoed = tokio::time::timeout(
            Duration::from_secs(5),
            until(&mut ws, &mut received, |b| b.contains(&(ch as u8))),
        )
        .await;
        match echoed {
            Ok(Ok(())) => samples.lock().unwrap().echo.push((t0, t0.elapsed())),
            _ => samples.lock().unwrap().lost.push(t0),
        }
        let erase = serde_json::json!({"type": "input", "data": "\u{7f}"}).to_string();
        let _ = ws.send(Message::Text(erase.into())).await;
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            until(&mut ws, &mut received, |b| b.contains(&8u8)),
        )
        .await;
        tokio::time::sleep(Duration::from_millis(250).saturating_sub(t0.elapsed())).await;
    }
}

/// The `cgroup.procs` files of a leaf in each hierarchy of the abuser's
/// session: its docker commands run there, as they would from its lab
/// terminal (inside the session's CPU, memory and pids limits), not as
/// host processes beside the server.
static ABUSER_CGROUPS: std::sync::OnceLock<Vec<PathBuf>> = std::sync::OnceLock::new();

/// Makes a `bench-cli` leaf in every hierarchy of `session`'s cgroup.
fn session_cli_cgroups(session: &str) -> Vec<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    let mut bases = vec![root.join("berth")];
    bases.extend(
        std::fs::read_dir(root)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("berth")),
    );
    let mut out = Vec::new();
    for base in bases {
        for e in std::fs::read_dir(&base).into_iter().flatten().flatten() {
            let dir = e.path().join(session);
            if e.file_name().to_string_lossy().starts_with("classroom-") && dir.is_dir() {
                let leaf = dir.join("bench-cli");
                if std::fs::create_dir_all(&leaf).is_ok() {
                    out.push(leaf.join("cgroup.procs"));
                }
            }
        }
    }
    out
}

/// `timeout -s KILL SECS PROGRAM ARGS…`, started inside the abuser's
/// session cgroups (a shell moves itself there, then execs).
fn abuser_command(limit: Duration, program: &str) -> Command {
    let mut script = String::new();
    for procs in ABUSER_CGROUPS.get().into_iter().flatten() {
        script.push_str(&format!("echo $$ > '{}' 2>/dev/null; ", procs.display()));
    }
    script.push_str("exec \"$@\"");
    let mut cmd = Command::new("sh");
    // KILL: `docker run` proxies TERM to its container and keeps waiting.
    cmd.args(["-c", &script, "sh", "timeout", "-s", "KILL"])
        .arg(format!("{}", limit.as_secs().max(1)))
        .arg(program);
    cmd
}

/// `docker ARGS` on `socket`, cut off after `limit`: (exit code, stdout, stderr).
fn docker(socket: &Path, limit: Duration, args: &[&str]) -> (i32, String, String) {
    let out = abuser_command(limit, "docker")
        .args(args)
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("DOCKER_CONFIG", socket.with_file_name("bench-cli"))
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) => (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        ),
        Err(e) => (-1, String::new(), e.to_string()),
    }
}

/// The last non-empty line of `text` that is not the CLI's usage hint,
/// shortened.
fn last_line(text: &str) -> String {
    let line = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty() && !l.starts_with("Run 'docker"))
        .unwrap_or("");
    line.chars().take(150).collect()
}

/// Runs `n` docker commands, `parallel` at a time; returns (successes,
/// first error message).
fn many(socket: &Path, n: usize, parallel: usize, args: &[&str]) -> (usize, String) {
    let next = Arc::new(Mutex::new(0usize));
    let ok = Arc::new(Mutex::new((0usize, String::new())));
    std::thread::scope(|s| {
        for _ in 0..parallel {
            let (next, ok) = (next.clone(), ok.clone());
            s.spawn(move || loop {
                {
                    let mut n_ = next.lock().unwrap();
                    if *n_ >= n {
                        return;
                    }
                    *n_ += 1;
                }
                let (code, _, err) = docker(socket, Duration::from_secs(120), args);
                let mut o = ok.lock().unwrap();
                if code == 0 {
                    o.0 += 1;
                } else if o.1.is_empty() {
                    o.1 = last_line(&err);
                }
            });
        }
    });
    let o = ok.lock().unwrap();
    (o.0, o.1.clone())
}

/// A gzip-compressed tar holding one 4 GiB file of zeros (a few MB on disk),
/// made once with Python's tarfile streaming (never in memory).
fn gzip_bomb(dir: &Path) -> anyhow::Result<PathBuf> {
    let path = dir.join("bomb.tar.gz");
    if !path.exists() {
        let script = format!(
            r#"
import tarfile, io
class Zeros(io.RawIOBase):
    def __init__(self, n): self.n = n
    def readable(self): return True
    def readinto(self, b):
        k = min(len(b), self.n); b[:k] = bytes(k); self.n -= k; return k
with tarfile.open("{}", "w|gz") as t:
    i = tarfile.TarInfo("Dockerfile"); d = b"FROM busybox\nCOPY zeros /\n"; i.size = len(d)
    t.addfile(i, io.BytesIO(d))
    i = tarfile.TarInfo("zeros"); i.size = 4 << 30
    t.addfile(i, io.BufferedReader(Zeros(i.size), 1 << 20))
"#,
            path.display()
        );
        let status = Command::new("python3").arg("-c").arg(script).status()?;
        anyhow::ensure!(status.success(), "make the gzip bomb");
    }
    Ok(path)
}

/// Removes whatever the abuser left running or stored.
fn clean(socket: &Path) {
    let (_, ids, _) = docker(socket, Duration::from_secs(60), &["ps", "-aq"]);
    let ids: Vec<&str> = ids.split_whitespace().collect();
    for chunk in ids.chunks(50) {
        let mut args = vec!["rm", "-f"];
        args.extend(chunk);
        docker(socket, Duration::from_secs(120), &args);
    }
    let (_, left, _) = docker(socket, Duration::from_secs(60), &["ps", "-aq"]);
    let left = left.split_whitespace().count();
    if left > 0 {
        eprintln!("abuse: {left} containers left after clean-up");
    }
    docker(socket, Duration::from_secs(60), &["volume", "prune", "-af"]);
    docker(socket, Duration::from_secs(60), &["image", "prune", "-f"]);
    docker(
        socket,
        Duration::from_secs(60),
        &["builder", "prune", "-af"],
    );
}

type Abuse = Box<dyn Fn(&Path, &AbuserTerm, Duration) -> String + Send + Sync>;

/// The abuser's browser terminal, opened afresh by a blocking scenario: a
/// terminal left unread through earlier scenarios misses the server's pings
/// and is closed, as a browser tab that stopped reading would be.
struct AbuserTerm {
    rt: tokio::runtime::Handle,
    addr: String,
    token: String,
}

impl AbuserTerm {
    async fn open(&self) -> anyhow::Result<Ws> {
        let mut ws = terminal(&self.addr, &self.token).await?;
        let mut received = 0;
        until(&mut ws, &mut received, |b| {
            String::from_utf8_lossy(b).contains("# ")
        })
        .await?;
        Ok(ws)
    }
}

fn scenarios(bomb: PathBuf) -> Vec<(&'static str, Abuse)> {
    let secs = |d: Duration| d.as_secs().to_string();
    let _ = secs;
    vec![
        (
            "fork bomb",
            Box::new(|s: &Path, _: &AbuserTerm, limit: Duration| {
                let (_, _, err) = docker(
                    s,
                    limit,
                    &[
                        "run",
                        "-d",
                        "--name",
                        "fb",
                        "busybox",
                        "sh",
                        "-c",
                        "f(){ f|f& }; f",
                    ],
                );
                std::thread::sleep(limit);
                let (_, logs, lerr) =
                    docker(s, Duration::from_secs(20), &["logs", "--tail", "1", "fb"]);
                format!("{} {}", last_line(&err), last_line(&(logs + &lerr)))
            }) as Abuse,
        ),
        (
            "memory hog",
            Box::new(|s: &Path, _: &AbuserTerm, limit: Duration| {
                let (code, _, err) = docker(
                    s,
                    limit,
                    &[
                        "run",
                        "--rm",
                        "busybox",
                        "sh",
                        "-c",
                        "head -c 8000m /dev/zero | tail",
                    ],
                );
                format!("exit {code} {}", last_line(&err))
            }),
        ),
        (
            "yes flooding its terminal",
            Box::new(|_: &Path, t: &AbuserTerm, limit: Duration| {
                t.rt.block_on(async {
                    let mut ws = match t.open().await {
                        Ok(ws) => ws,
                        Err(e) => return format!("no terminal: {e}"),
                    };
                    let ws = &mut ws;
                    let input = serde_json::json!({"type": "input", "data": "yes\r"}).to_string();
                    let _ = ws.send(Message::Text(input.into())).await;
                    let mut received = 0u64;
                    let _ = tokio::time::timeout(limit, until(ws, &mut received, |_| false)).await;
                    let stop = serde_json::json!({"type": "input", "data": "\u{3}"}).to_string();
                    let _ = ws.send(Message::Text(stop.into())).await;
                    let _ = tokio::time::timeout(
                        Duration::from_secs(5),
                        until(ws, &mut received, |b| {
                            String::from_utf8_lossy(b).contains("# ")
                        }),
                    )
                    .await;
                    format!("{} MiB of output delivered", received >> 20)
                })
            }),
        ),
        (
            "four CPU spinners",
            Box::new(|s: &Path, _: &AbuserTerm, limit: Duration| {
                let mut told = String::new();
                for _ in 0..4 {
                    let (_, _, err) = docker(
                        s,
                        Duration::from_secs(30),
                        &["run", "-d", "busybox", "sh", "-c", "while :; do :; done"],
                    );
                    told = last_line(&err);
                }
                std::thread::sleep(limit);
                if told.is_empty() {
                    "4 spinners ran".into()
                } else {
                    told
                }
            }),
        ),
        (
            "images --filter (exponential glob)",
            Box::new(|s: &Path, _: &AbuserTerm, limit: Duration| {
                let long = "a".repeat(60);
                docker(s, Duration::from_secs(30), &["tag", "busybox", &long]);
                let pattern = format!("reference={}b", "*a".repeat(13));
                // Three at once, again and again for the whole window.
                let started = Instant::now();
                let (mut rounds, mut codes) = (0, Vec::new());
                while started.elapsed() < limit {
                    codes = std::thread::scope(|sc| {
                        let handles: Vec<_> = (0..3)
                            .map(|_| {
                                let pattern = pattern.clone();
                                sc.spawn(move || {
                                    docker(s, limit, &["images", "--filter", &pattern, "-q"])
                                })
                            })
                            .collect();
                        handles
                            .into_iter()
                            .map(|h| h.join().map(|(c, _, _)| c).unwrap_or(-1))
                            .collect::<Vec<_>>()
                    });
                    rounds += 1;
                }
                format!("{rounds} rounds of 3, last exit codes {codes:?}")
            }),
        ),
        (
            "4 GiB gzip-bomb build context",
            Box::new(move |s: &Path, _: &AbuserTerm, limit: Duration| {
                let out = abuser_command(limit * 3, "docker")
                    .args(["build", "-t", "bomb", "-"])
                    .env("DOCKER_HOST", format!("unix://{}", s.display()))
                    .env("DOCKER_CONFIG", s.with_file_name("bench-cli"))
                    .env("DOCKER_BUILDKIT", "0")
                    .stdin(std::fs::File::open(&bomb).expect("bomb"))
                    .output();
                match out {
                    Ok(o) => format!(
                        "exit {} {}",
                        o.status.code().unwrap_or(-1),
                        last_line(&String::from_utf8_lossy(&o.stderr))
                    ),
                    Err(e) => e.to_string(),
                }
            }),
        ),
        (
            "10 GiB volume fill",
            Box::new(|s: &Path, _: &AbuserTerm, limit: Duration| {
                let (code, _, err) = docker(
                    s,
                    limit * 3,
                    &[
                        "run",
                        "--rm",
                        "-v",
                        "fill:/v",
                        "busybox",
                        "dd",
                        "if=/dev/zero",
                        "of=/v/f",
                        "bs=1M",
                        "count=10240",
                    ],
                );
                format!(
                    "exit {code} {}",
                    last_line(
                        &err.lines()
                            .filter(|l| !l.contains("records"))
                            .collect::<Vec<_>>()
                            .join("\n")
                    )
                )
            }),
        ),
        (
            "1000 docker run -d",
            Box::new(|s: &Path, _: &AbuserTerm, _: Duration| {
                let (n, err) = many(s, 1000, 8, &["run", "-d", "busybox", "sleep", "3600"]);
                format!("{n} started; first refusal: {err}")
            }),
        ),
        (
            "200 concurrent docker run --rm",
            Box::new(|s: &Path, _: &AbuserTerm, _: Duration| {
                let (n, err) = many(s, 200, 200, &["run", "--rm", "busybox", "true"]);
                format!("{n} ran; first refusal: {err}")
            }),
        ),
    ]
}

pub fn run(berth: &Path, learners: usize, seconds: u64) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let work = tempfile::Builder::new()
        .prefix("berth-bench-abuse-")
        .tempdir_in("/var/tmp")?;
    let bomb = gzip_bomb(work.path())?;
    let limit = Duration::from_secs(seconds);
    rt.block_on(async {
        let server = start(berth, &[]).await?;
        let pid = server.child.id();
        let data = server._data.path().join("data");
        let mut typists = Vec::new();
        let samples = Arc::new(Mutex::new(Samples::default()));
        let stop = Arc::new(AtomicBool::new(false));
        for _ in 0..learners {
            let (status, token, body) = http(&server.addr, "POST", "/api/session", None).await?;
            anyhow::ensure!(status == 201, "create session: {status} {body}");
            let mut ws = terminal(&server.addr, &token.context("cookie")?).await?;
            let mut received = 0;
            tokio::time::timeout(
                Duration::from_secs(60),
                until(&mut ws, &mut received, |b| String::from_utf8_lossy(b).contains("# ")),
            )
            .await
            .map_err(|_| anyhow!("no prompt"))??;
            typists.push(tokio::spawn(typist(ws, samples.clone(), stop.clone())));
        }
        // The abuser's session, its node socket and its terminal.
        let (status, token, body) = http(&server.addr, "POST", "/api/session", None).await?;
        anyhow::ensure!(status == 201, "create session: {status} {body}");
        let token = token.context("cookie")?;
        let id = serde_json::from_str::<serde_json::Value>(&body)?["id"]
            .as_str()
            .context("session id")?
            .to_string();
        let socket = data.join("sessions").join(&id).join("node1").join("docker.sock");
        let _ = ABUSER_CGROUPS.set(session_cli_cgroups(&id));
        anyhow::ensure!(
            !ABUSER_CGROUPS.get().is_none_or(Vec::is_empty),
            "the abuser session's cgroups were not found"
        );
        let term = Arc::new(AbuserTerm {
            rt: tokio::runtime::Handle::current(),
            addr: server.addr.clone(),
            token,
        });
        drop(term.open().await?);

        // Health and host sampling.
        let (s2, stop2, addr) = (samples.clone(), stop.clone(), server.addr.clone());
        let health = tokio::spawn(async move {
            while !stop2.load(Ordering::Relaxed) {
                let t0 = Instant::now();
                let ok = tokio::time::timeout(Duration::from_secs(10), http(&addr, "GET", "/healthz", None)).await;
                let took = if matches!(ok, Ok(Ok((200, _, _)))) { t0.elapsed() } else { Duration::from_secs(10) };
                s2.lock().unwrap().health.push((t0, took));
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        let (s3, stop3, data3) = (samples.clone(), stop.clone(), data.clone());
        let host = tokio::spawn(async move {
            while !stop3.load(Ordering::Relaxed) {
                let row = (Instant::now(), rss_of(pid), mem_available(), free_disk(&data3));
                s3.lock().unwrap().host.push(row);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });

        println!(
            "abuse: {learners} learners typing (a key every 250 ms) while one session misbehaves, {seconds} s per abuse; the abuser's docker commands run in its session's cgroups, as from its lab terminal"
        );
        println!(
            "{:<36} {:>9} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9}  abuser was told",
            "abuse", "echo p50", "echo p99", "lost", "hz p50", "hz max", "rss MiB", "mem MiB", "disk GiB"
        );
        // A quiet window first, as the baseline.
        let mut windows: Vec<(&str, Abuse)> = vec![(
            "(nothing: baseline)",
            Box::new(|_: &Path, _: &AbuserTerm, limit: Duration| {
                std::thread::sleep(limit);
                String::new()
            }),
        )];
        windows.extend(scenarios(bomb.clone()));
        for (name, abuse) in windows {
            let from = Instant::now();
            let (socket2, term2) = (socket.clone(), term.clone());
            let told = tokio::task::spawn_blocking(move || abuse(&socket2, &term2, limit)).await?;
            let to = Instant::now();
            {
                let s = samples.lock().unwrap();
                let inside = |t: &Instant| *t >= from && *t <= to;
                let echo: Vec<Duration> = s.echo.iter().filter(|(t, _)| inside(t)).map(|x| x.1).collect();
                let hz: Vec<Duration> = s.health.iter().filter(|(t, _)| inside(t)).map(|x| x.1).collect();
                let lost = s.lost.iter().filter(|t| inside(t)).count();
                let hosts: Vec<_> = s.host.iter().filter(|h| inside(&h.0)).collect();
                let rss = hosts.iter().map(|h| h.1).max().unwrap_or(0);
                let mem = hosts.iter().map(|h| h.2).min().unwrap_or(0);
                let disk = hosts.iter().map(|h| h.3).min().unwrap_or(0);
                println!(
                    "{:<36} {:>9.1} {:>9.1} {:>6} {:>9.1} {:>9.1} {:>9.0} {:>9.0} {:>9.1}  {}",
                    name,
                    ms(quantile(echo.clone(), 0.5)),
                    ms(quantile(echo, 0.99)),
                    lost,
                    ms(quantile(hz.clone(), 0.5)),
                    ms(quantile(hz, 1.0)),
                    rss as f64 / 1048576.0,
                    mem as f64 / 1048576.0,
                    disk as f64 / 1073741824.0,
                    told
                );
            }
            let socket3 = socket.clone();
            tokio::task::spawn_blocking(move || clean(&socket3)).await?;
        }
        stop.store(true, Ordering::Relaxed);
        for procs in ABUSER_CGROUPS.get().into_iter().flatten() {
            if let Some(leaf) = procs.parent() {
                let _ = std::fs::remove_dir(leaf);
            }
        }
        let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok();
        println!("server pid {pid} still running at the end: {alive}");
        let _ = health.await;
        let _ = host.await;
        for t in typists {
            t.abort();
        }
        drop(server);
        anyhow::Ok(())
    })
}
