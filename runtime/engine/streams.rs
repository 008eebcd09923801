//! Streams of the Engine API: hijacked attach connections (101 Upgraded),
//! followed logs, stats samples and `docker cp` archives.

use std::io::{BufRead, Seek};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::oneshot;

use super::containers::blocking;
use super::http::{json, stream, ApiError, ApiResult, Body, Reply, Sink};
use super::router::Ctx;
use super::Engine;
use crate::container::attach::{self, ControlRequest};
use crate::container::logs::{self, LogFilter, Stream};
use crate::container::monitor::LOG_NAME;
use crate::container::state::Status;
use crate::container::Container;

/// An attach that arrived before its container started: `start` hands it the
/// monitor's stream.
pub struct PendingAttach {
    pub request: ControlRequest,
    pub deliver: oneshot::Sender<std::os::unix::net::UnixStream>,
}

/// The 101 response of a hijacked connection.
pub fn upgraded_reply(tty: bool) -> Reply {
    let mut r = Response::new(Body::Full(None));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        "Content-Type",
        HeaderValue::from_static(if tty {
            "application/vnd.docker.raw-stream"
        } else {
            "application/vnd.docker.multiplexed-stream"
        }),
    );
    h.insert("Connection", HeaderValue::from_static("Upgrade"));
    h.insert("Upgrade", HeaderValue::from_static("tcp"));
    r
}

/// Starts a container, giving the first pending attach (if any) the stream
/// the monitor opens before the command runs.
pub async fn start_with_pending_attach(
    engine: &Arc<Engine>,
    c: Arc<Container>,
) -> Result<(), ApiError> {
    let pending = {
        let mut map = engine.pending.lock().unwrap_or_else(|p| p.into_inner());
        let list = map.entry(c.id.clone()).or_default();
        list.retain(|p| !p.deliver.is_closed());
        let first = if list.is_empty() {
            None
        } else {
            Some(list.remove(0))
        };
        let rest: Vec<PendingAttach> = std::mem::take(list);
        map.remove(&c.id);
        (first, rest)
    };
    let (first, rest) = pending;
    let runtime = engine.runtime.clone();
    let request = first.as_ref().map(|p| p.request.clone());
    let c2 = c.clone();
    let stream = blocking(move || runtime.start(&c2, request).map_err(ApiError::from)).await?;
    if let (Some(p), Some(s)) = (first, stream) {
        let _ = p.deliver.send(s);
    }
    let dir = engine.runtime.dir_of(&c.id);
    for p in rest {
        if let Ok(s) = attach::connect(&dir.root, &p.request) {
            let _ = p.deliver.send(s);
        }
    }
    Ok(())
}

/// `POST /containers/{id}/attach`.
pub fn attach(ctx: &Ctx, c: Arc<Container>, mut req: Request<Incoming>) -> ApiResult {
    let r = c.snapshot();
    let q = &ctx.query;
    let tty = r.config.tty;
    let stdin = q.flag("stdin");
    let detach_keys = super::detach::parse(q.get("detachKeys").unwrap_or(""))?;
    let request = ControlRequest::Attach {
        stdin,
        stdout: q.flag("stdout"),
        stderr: q.flag("stderr"),
        close_stdin: !tty && r.config.stdin_once,
    };
    // `logs=1`: what the container wrote so far comes first. `stream=0`
    // (docker-py's `attach(stream=False, logs=True)`): only that, and the
    // connection ends; a stopped container is then not waited on. Without
    // `stream`, the live part follows as before (Docker attaches to a
    // stopped container and waits for its next start).
    let replay = q.flag("logs").then(|| {
        (
            ctx.engine.runtime.dir_of(&r.id).root.join(LOG_NAME),
            q.flag("stdout"),
            q.flag("stderr"),
        )
    });
    let live = q.get("stream").is_none() || q.flag("stream");
    let upgrade = hyper::upgrade::on(&mut req);
    let (tx, rx) = oneshot::channel();
    if !live {
        drop(tx);
    } else if r.state.running() && r.state.status != Status::Restarting {
        let dir = ctx.engine.runtime.dir_of(&r.id);
        let s = attach::connect(&dir.root, &request)
            .map_err(|e| ApiError::internal(format!("attach: {e}")))?;
        let _ = tx.send(s);
    } else {
        ctx.engine
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(r.id.clone())
            .or_default()
            .push(PendingAttach {
                request,
                deliver: tx,
            });
    }
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let mut io = TokioIo::new(upgraded);
        if let Some((path, want_out, want_err)) = replay {
            // docker-py reads the hijacked socket under its HTTP reader, so
            // bytes that arrive in the same read as the 101 header are lost
            // to it: the replay waits until the client has had the header.
            tokio::time::sleep(REPLAY_PAUSE).await;
            let entries =
                tokio::task::spawn_blocking(move || logs::read(&path, &LogFilter::default()))
                    .await
                    .ok()
                    .and_then(|r| r.ok())
                    .unwrap_or_default();
            for e in entries.iter().filter(|e| match e.stream {
                Stream::Stdout => want_out,
                Stream::Stderr => want_err,
            }) {
                let bytes = if tty {
                    e.text.as_bytes().to_vec()
                } else {
                    let num = match e.stream {
                        Stream::Stdout => attach::STDOUT,
                        Stream::Stderr => attach::STDERR,
                    };
                    attach::frame(num, e.text.as_bytes())
                };
                if io.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        }
        let Ok(stream) = rx.await else {
            let _ = io.shutdown().await;
            return;
        };
        pump(io, stream, tty, stdin, detach_keys).await;
    });
    Ok(upgraded_reply(tty))
}

/// How long an attach's log replay waits after the 101 answer (see
/// [`attach`]); dockerd's own replay starts after reading the log file.
const REPLAY_PAUSE: Duration = Duration::from_millis(50);

/// Copies between a hijacked client connection and a container's attach
/// stream until the container's side ends. Client EOF: with a terminal and
/// stdin attached it detaches; otherwise (as dockerd, which does not read a
/// client that attached no stdin) output goes on — the CLI half-closes its
/// side at once under `--no-stdin`. With a terminal and stdin, typing
/// `detach_keys` detaches too (dockerd watches only a terminal's input).
pub async fn pump<C>(
    client: C,
    stream: std::os::unix::net::UnixStream,
    tty: bool,
    stdin: bool,
    detach_keys: Vec<u8>,
) where
    C: AsyncRead + AsyncWrite + Send + 'static,
{
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let Ok(stream) = tokio::net::UnixStream::from_std(stream) else {
        return;
    };
    let (mut from_container, mut to_container) = stream.into_split();
    let (mut from_client, mut to_client) = tokio::io::split(client);
    let watch = tty && stdin;
    let input = async move {
        if watch {
            let mut detector = super::detach::Detector::new(detach_keys);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                let n = match from_client.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let (chunk, detached) = detector.feed(&buf[..n]);
                if to_container.write_all(&chunk).await.is_err() || detached {
                    break;
                }
            }
        } else {
            let _ = tokio::io::copy(&mut from_client, &mut to_container).await;
        }
        let _ = to_container.shutdown().await;
    };
    let output = async move {
        let _ = tokio::io::copy(&mut from_container, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    if tty && stdin {
        // Either side ending ends the attach (client EOF is a detach).
        tokio::select! {
            _ = input => {}
            _ = output => {}
        }
    } else {
        let input = tokio::spawn(input);
        output.await;
        input.abort();
    }
}

/// Writes frames (or raw bytes with a terminal) to a streamed response.
async fn send_chunk(tx: &Sink, tty: bool, stream: Stream, data: &[u8]) -> bool {
    let bytes = if tty {
        Bytes::copy_from_slice(data)
    } else {
        let num = match stream {
            Stream::Stdout => attach::STDOUT,
            Stream::Stderr => attach::STDERR,
        };
        Bytes::from(attach::frame(num, data))
    };
    tx.send(bytes).await.is_ok()
}

/// Docker's `since`/`until` (Unix seconds with fraction, or RFC 3339).
fn parse_time(text: &str) -> Option<SystemTime> {
    if text.is_empty() || text == "0" {
        return None;
    }
    if let Ok(secs) = text.parse::<f64>() {
        return Some(UNIX_EPOCH + Duration::from_secs_f64(secs));
    }
    humantime::parse_rfc3339_weak(text).ok()
}

/// `GET /containers/{id}/logs`.
pub fn logs(ctx: &Ctx, c: Arc<Container>) -> ApiResult {
    let q = &ctx.query;
    let r = c.snapshot();
    let (want_out, want_err) = (q.flag("stdout"), q.flag("stderr"));
    if !want_out && !want_err {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.get("tail") {
        None | Some("all") | Some("") => None,
        Some(n) => Some(n.parse::<usize>().unwrap_or(0)),
    };
    let filter = LogFilter {
        since: q.get("since").and_then(parse_time),
        until: q.get("until").and_then(parse_time),
        tail,
    };
    let follow = q.flag("follow");
    let timestamps = q.flag("timestamps");
    let tty = r.config.tty;
    let path = ctx.engine.runtime.dir_of(&r.id).root.join(LOG_NAME);
    let (reply, tx) = stream(if tty {
        "application/vnd.docker.raw-stream"
    } else {
        "application/vnd.docker.multiplexed-stream"
    });
    tokio::spawn(async move {
        let wanted = |s: Stream| match s {
            Stream::Stdout => want_out,
            Stream::Stderr => want_err,
        };
        let render = |e: &logs::LogEntry| -> Vec<u8> {
            let mut text = Vec::new();
            if timestamps {
                text.extend_from_slice(format_timestamp(e.time).as_bytes());
                text.push(b' ');
            }
            text.extend_from_slice(e.text.as_bytes());
            text
        };
        let path2 = path.clone();
        let entries = tokio::task::spawn_blocking(move || logs::read(&path2, &filter))
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_default();
        for e in entries.iter().filter(|e| wanted(e.stream)) {
            if !send_chunk(&tx, tty, e.stream, &render(e)).await {
                return;
            }
        }
        if !follow {
            return;
        }
        // Follow: read what is appended from here on until the container stops.
        let Ok(file) = std::fs::File::open(&path) else {
            return;
        };
        let mut reader = std::io::BufReader::new(file);
        let _ = reader.seek(std::io::SeekFrom::End(0));
        let mut line = String::new();
        let mut idle_after_stop = 0;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(n) if n > 0 && line.ends_with('\n') => {
                    if let Some(e) = logs::parse_line(&line) {
                        if wanted(e.stream) && !send_chunk(&tx, tty, e.stream, &render(&e)).await {
                            return;
                        }
                    }
                    continue;
                }
                Ok(n) if n > 0 => {
                    // A partial line: step back and wait for the rest.
                    let _ = reader.seek(std::io::SeekFrom::Current(-(n as i64)));
                }
                _ => {}
            }
            let state = c.snapshot().state;
            if !state.running() {
                idle_after_stop += 1;
                if idle_after_stop > 2 {
                    return;
                }
            }
            // A rotated log: start over on the new file.
            if let (Ok(pos), Ok(meta)) = (reader.stream_position(), std::fs::metadata(&path)) {
                if meta.len() < pos {
                    if let Ok(f) = std::fs::File::open(&path) {
                        reader = std::io::BufReader::new(f);
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                _ = tx.closed() => return,
            }
        }
    });
    Ok(reply)
}

/// `2006-01-02T15:04:05.000000000Z`: RFC 3339 with nine fraction digits.
fn format_timestamp(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

/// `GET /containers/{id}/stats?stream=0`: two samples 200 ms apart, so the
/// CLI can compute CPU use; `stream=1` sends one every second.
pub async fn stats(ctx: &Ctx, c: Arc<Container>) -> ApiResult {
    let streaming = ctx
        .query
        .get("stream")
        // Go's ParseBool: docker-py sends `stream=False`.
        .map(|s| !matches!(s, "0" | "f" | "F" | "false" | "False" | "FALSE"))
        .unwrap_or(true);
    let runtime = ctx.engine.runtime.clone();
    let first = {
        let (runtime, c) = (runtime.clone(), c.clone());
        blocking(move || Ok(runtime.sample(&c))).await?
    };
    if !streaming {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let second = {
            let (runtime, c) = (runtime.clone(), c.clone());
            blocking(move || Ok(runtime.sample(&c))).await?
        };
        return Ok(json(StatusCode::OK, &stats_json(&c, &second, &first)));
    }
    let (reply, tx) = stream("application/json");
    tokio::spawn(async move {
        let mut previous = first;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tx.closed() => return,
            }
            let (rt, cc) = (runtime.clone(), c.clone());
            let Ok(now) = tokio::task::spawn_blocking(move || rt.sample(&cc)).await else {
                return;
            };
            let mut line = serde_json::to_vec(&stats_json(&c, &now, &previous)).unwrap_or_default();
            line.push(b'\n');
            if tx.send(line.into()).await.is_err() {
                return;
            }
            previous = now;
        }
    });
    Ok(reply)
}

fn stats_json(
    c: &Container,
    now: &crate::container::top::Sample,
    before: &crate::container::top::Sample,
) -> serde_json::Value {
    let r = c.snapshot();
    let cpu = |s: &crate::container::top::Sample| {
        json!({
            "cpu_usage": {"total_usage": s.cpu_ns, "usage_in_kernelmode": 0, "usage_in_usermode": s.cpu_ns},
            "system_cpu_usage": s.system_ns,
            "online_cpus": s.online_cpus,
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
        })
    };
    json!({
        "read": format_timestamp(now.at),
        "preread": format_timestamp(before.at),
        "name": format!("/{}", r.name),
        "id": r.id,
        "pids_stats": {"current": now.pids, "limit": now.pids_limit},
        "cpu_stats": cpu(now),
        "precpu_stats": cpu(before),
        "memory_stats": {"usage": now.memory, "limit": now.memory_limit, "max_usage": now.memory_max, "stats": {}},
        "blkio_stats": {"io_service_bytes_recursive": null},
        "networks": {"eth0": {"rx_bytes": now.rx_bytes, "rx_packets": 0, "rx_errors": 0, "rx_dropped": 0,
                               "tx_bytes": now.tx_bytes, "tx_packets": 0, "tx_errors": 0, "tx_dropped": 0}},
    })
}
