//! `docker exec`: `POST /containers/{id}/exec`, `POST /exec/{id}/start`
//! (hijacked or detached), `GET /exec/{id}/json`, `POST /exec/{id}/resize`.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::containers::{blocking, find};
use super::http::{empty, json, parse_json, read_body, ApiError, ApiResult};
use super::router::Ctx;
use super::streams::upgraded_reply;
use crate::container::attach;
use crate::container::{ContainerError, ExecConfig};

/// One exec instance: created, then started once.
pub struct ExecInstance {
    pub id: String,
    pub container_id: String,
    pub scope: String,
    pub config: ExecConfig,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// The sequence that detaches a terminal's client (Docker's default
    /// unless the create named one).
    pub detach_keys: Vec<u8>,
    pub state: Mutex<ExecState>,
}

/// What is known of an exec's process.
#[derive(Default)]
pub struct ExecState {
    pub started: bool,
    pub running: bool,
    pub exit_code: Option<i32>,
    pub pid: i32,
    /// A handle on the terminal, for resizes.
    pub terminal: Option<File>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct CreateBody {
    attach_stdin: bool,
    attach_stdout: bool,
    attach_stderr: bool,
    tty: bool,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: String,
    user: String,
    privileged: bool,
    console_size: Option<Vec<u16>>,
    /// docker-py sends `detachKeys` (Go's decoder ignores case).
    #[serde(alias = "detachKeys")]
    detach_keys: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct StartBody {
    detach: bool,
    /// Whether the client reads raw bytes (true) or stdcopy frames (false);
    /// dockerd frames by this, not by the exec's own `Tty` (docker-py sends
    /// `Tty: false` for an exec created with a terminal and reads frames).
    tty: bool,
    console_size: Option<Vec<u16>>,
}

fn get(ctx: &Ctx, id: &str) -> Result<Arc<ExecInstance>, ApiError> {
    ctx.engine
        .execs
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(id)
        .filter(|e| e.scope == ctx.scope.name)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("No such exec instance: {id}")))
}

/// Finished exec records a scope keeps for `docker exec inspect`, at most.
pub const KEEP_FINISHED: usize = 256;

/// Drops the scope's exec records that can no longer matter, so a learner's
/// `docker exec` loop does not grow the daemon's memory: those of containers
/// that are gone (dockerd drops them with their container), and past
/// [`KEEP_FINISHED`], those that ended or were never started (dockerd keeps
/// those only for inspection; nothing else reads them).
fn prune(
    execs: &mut std::collections::HashMap<String, Arc<ExecInstance>>,
    scope: &str,
    container_exists: impl Fn(&str) -> bool,
) {
    let mut alive: std::collections::HashMap<String, bool> = std::collections::HashMap::new();
    execs.retain(|_, e| {
        e.scope != scope
            || *alive
                .entry(e.container_id.clone())
                .or_insert_with(|| container_exists(&e.container_id))
    });
    let finished: Vec<String> = execs
        .values()
        .filter(|e| e.scope == scope)
        .filter(|e| {
            let st = e.state.lock().unwrap_or_else(|p| p.into_inner());
            !st.running && (st.exit_code.is_some() || !st.started)
        })
        .map(|e| e.id.clone())
        .collect();
    let over = finished.len().saturating_sub(KEEP_FINISHED);
    for id in finished.into_iter().take(over) {
        execs.remove(&id);
    }
}

/// `POST /containers/{id}/exec`.
pub async fn create(ctx: &Ctx, id: &str, req: Request<Incoming>) -> ApiResult {
    let c = find(ctx, id)?;
    let body: CreateBody = parse_json(&read_body(req.into_body(), 1 << 20).await?)?;
    if body.privileged {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "--privileged is not allowed in this classroom: containers stay sandboxed",
        ));
    }
    let r = c.snapshot();
    if !matches!(r.state.status, crate::container::state::Status::Running) {
        let word = if r.state.status == crate::container::state::Status::Paused {
            "paused, unpause the container before exec"
        } else {
            "not running"
        };
        return Err(ApiError::conflict(format!("container {} is {word}", r.id)));
    }
    let cmd = body.cmd.unwrap_or_default();
    if cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let detach_keys = super::detach::parse(&body.detach_keys)?;
    let console_size = body
        .console_size
        .filter(|s| s.len() == 2 && s[0] > 0 && s[1] > 0)
        .map(|s| (s[0], s[1]));
    let instance = Arc::new(ExecInstance {
        id: crate::container::names::new_id(),
        container_id: r.id.clone(),
        scope: ctx.scope.name.clone(),
        config: ExecConfig {
            cmd,
            env: body.env.unwrap_or_default(),
            workdir: Some(body.working_dir).filter(|w| !w.is_empty()),
            user: Some(body.user).filter(|u| !u.is_empty()),
            tty: body.tty,
            stdin: body.attach_stdin,
            console_size,
        },
        attach_stdout: body.attach_stdout,
        attach_stderr: body.attach_stderr,
        detach_keys,
        state: Mutex::new(ExecState::default()),
    });
    {
        let mut execs = ctx.engine.execs.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut execs, &ctx.scope.name, |id| {
            ctx.engine.runtime.get(&ctx.scope.name, id).is_ok()
        });
        execs.insert(instance.id.clone(), instance.clone());
    }
    ctx.engine.runtime.emit(
        &r,
        &format!("exec_create: {}", instance.config.cmd.join(" ")),
        &[("execID", instance.id.clone())],
    );
    Ok(json(StatusCode::CREATED, &json!({"Id": instance.id})))
}

/// `POST /exec/{id}/start`.
pub async fn start(ctx: &Ctx, id: &str, mut req: Request<Incoming>) -> ApiResult {
    let instance = get(ctx, id)?;
    let upgrade = hyper::upgrade::on(&mut req);
    let body: StartBody = parse_json(&read_body(req.into_body(), 1 << 16).await?)?;
    {
        let mut st = instance.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.started {
            return Err(ApiError::conflict(format!(
                "Exec command {id} is already running"
            )));
        }
        st.started = true;
    }
    let c = ctx
        .engine
        .runtime
        .get(&ctx.scope.name, &instance.container_id)?;
    let mut config = instance.config.clone();
    if let Some(s) = body
        .console_size
        .filter(|s| s.len() == 2 && s[0] > 0 && s[1] > 0)
    {
        config.console_size = Some((s[0], s[1]));
    }
    let runtime = ctx.engine.runtime.clone();
    if body.detach {
        let inst = instance.clone();
        let process = blocking(move || runtime.exec(&c, &config).map_err(ApiError::from)).await;
        let mut process = match process {
            Ok(p) => p,
            Err(e) => {
                inst.state
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .exit_code = Some(126);
                return Err(e);
            }
        };
        {
            let mut st = inst.state.lock().unwrap_or_else(|p| p.into_inner());
            st.running = true;
            st.pid = process.pid;
        }
        tokio::task::spawn_blocking(move || {
            let code = process.wait();
            let mut st = inst.state.lock().unwrap_or_else(|p| p.into_inner());
            st.running = false;
            st.exit_code = Some(code);
        });
        return Ok(empty(StatusCode::OK));
    }
    let tty = config.tty;
    // The client's framing: raw only when it asked for raw.
    let raw = body.tty;
    let inst = instance.clone();
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let mut client = TokioIo::new(upgraded);
        let started = tokio::task::spawn_blocking(move || runtime.exec(&c, &config)).await;
        let mut process = match started {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => {
                let code = match &e {
                    crate::Error::Container(ContainerError::Start { exit_code, .. }) => *exit_code,
                    _ => 126,
                };
                {
                    let mut st = inst.state.lock().unwrap_or_else(|p| p.into_inner());
                    st.exit_code = Some(code);
                }
                let message = format!("OCI runtime exec failed: exec failed: unable to start container process: {e}: unknown\r\n");
                // A client reading frames gets the message as stdout.
                let bytes = if raw {
                    message.into_bytes()
                } else {
                    attach::frame(attach::STDOUT, message.as_bytes())
                };
                let _ = client.write_all(&bytes).await;
                let _ = client.shutdown().await;
                return;
            }
            Err(_) => return,
        };
        {
            let mut st = inst.state.lock().unwrap_or_else(|p| p.into_inner());
            st.running = true;
            st.pid = process.pid;
            st.terminal = process.terminal.as_ref().and_then(|t| t.try_clone().ok());
        }
        // Output: blocking readers feed one channel; the async side writes it.
        let (out_tx, mut out_rx) = mpsc::channel::<Vec<u8>>(16);
        let mut readers = Vec::new();
        let sources: Vec<(Option<File>, u8)> = if tty {
            // A terminal's output is one stream: raw, or framed as stdout.
            vec![(
                process.terminal.as_ref().and_then(|t| t.try_clone().ok()),
                if raw { 0 } else { attach::STDOUT },
            )]
        } else {
            vec![
                (
                    process.stdout.take().filter(|_| inst.attach_stdout),
                    attach::STDOUT,
                ),
                (
                    process.stderr.take().filter(|_| inst.attach_stderr),
                    attach::STDERR,
                ),
            ]
        };
        for (source, num) in sources {
            let Some(mut source) = source else { continue };
            let tx = out_tx.clone();
            readers.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 32 * 1024];
                loop {
                    match source.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let chunk = if num == 0 {
                                buf[..n].to_vec()
                            } else {
                                attach::frame(num, &buf[..n])
                            };
                            if tx.blocking_send(chunk).is_err() {
                                return;
                            }
                        }
                    }
                }
            }));
        }
        drop(out_tx);
        let stdin: Option<File> = if !inst.config.stdin {
            None
        } else if tty {
            process.terminal.as_ref().and_then(|t| t.try_clone().ok())
        } else {
            process.stdin.take()
        };
        let (mut client_read, mut client_write) = tokio::io::split(client);
        // With a terminal, the detach keys end the client's attach (dockerd
        // reads them only from a terminal's input); the process runs on.
        let mut detector = tty.then(|| super::detach::Detector::new(inst.detach_keys.clone()));
        let (detach_tx, mut detach_rx) = tokio::sync::oneshot::channel::<()>();
        let input = tokio::spawn(async move {
            let Some(stdin) = stdin else { return };
            let (in_tx, in_rx) = std::sync::mpsc::channel::<Vec<u8>>();
            let writer = std::thread::spawn(move || {
                let mut stdin = stdin;
                for chunk in in_rx {
                    if stdin.write_all(&chunk).is_err() {
                        return;
                    }
                }
            });
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match client_read.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let (chunk, detached) = match detector.as_mut() {
                            Some(d) => d.feed(&buf[..n]),
                            None => (buf[..n].to_vec(), false),
                        };
                        if !chunk.is_empty() && in_tx.send(chunk).is_err() {
                            break;
                        }
                        if detached {
                            let _ = detach_tx.send(());
                            break;
                        }
                    }
                }
            }
            drop(in_tx);
            let _ = tokio::task::spawn_blocking(move || writer.join()).await;
        });
        let waiter = tokio::task::spawn_blocking(move || {
            let code = process.wait();
            drop(process);
            code
        });
        // With a terminal, the master reads EIO once the last holder of the
        // slave is gone; the readers end then.
        let mut detached = false;
        // A finished receiver must not be polled again (tokio panics).
        let mut detach_open = true;
        loop {
            tokio::select! {
                chunk = out_rx.recv() => match chunk {
                    Some(chunk) => {
                        if client_write.write_all(&chunk).await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                sent = &mut detach_rx, if detach_open => {
                    if sent.is_ok() {
                        detached = true;
                        break;
                    }
                    detach_open = false;
                }
            }
        }
        if detached {
            // The client is gone; the process runs on, and its end is
            // recorded when it comes.
            let _ = client_write.shutdown().await;
            drop(client_write);
            tokio::spawn(async move {
                // Keep draining its output so a full terminal does not stall it.
                while out_rx.recv().await.is_some() {}
            });
            let code = waiter.await.unwrap_or(255);
            let mut st = inst.state.lock().unwrap_or_else(|p| p.into_inner());
            st.running = false;
            st.exit_code = Some(code);
            st.terminal = None;
            return;
        }
        let code = waiter.await.unwrap_or(255);
        {
            let mut st = inst.state.lock().unwrap_or_else(|p| p.into_inner());
            st.running = false;
            st.exit_code = Some(code);
            st.terminal = None;
        }
        input.abort();
        let _ = client_write.shutdown().await;
    });
    Ok(upgraded_reply(raw))
}

/// `GET /exec/{id}/json`.
pub fn inspect(ctx: &Ctx, id: &str) -> ApiResult {
    let i = get(ctx, id)?;
    let st = i.state.lock().unwrap_or_else(|p| p.into_inner());
    Ok(json(
        StatusCode::OK,
        &json!({
            "ID": i.id,
            "Running": st.running,
            "ExitCode": st.exit_code,
            "ProcessConfig": {
                "tty": i.config.tty,
                "entrypoint": i.config.cmd.first(),
                "arguments": i.config.cmd.get(1..).unwrap_or_default(),
                "privileged": false,
                "user": i.config.user.clone().unwrap_or_default(),
            },
            "OpenStdin": i.config.stdin,
            "OpenStderr": i.attach_stderr,
            "OpenStdout": i.attach_stdout,
            "CanRemove": false,
            "ContainerID": i.container_id,
            "DetachKeys": "",
            "Pid": st.pid,
        }),
    ))
}

/// `POST /exec/{id}/resize?h=&w=`.
pub fn resize(ctx: &Ctx, id: &str) -> ApiResult {
    let i = get(ctx, id)?;
    let h = ctx.query.int("h")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let w = ctx.query.int("w")?.unwrap_or(0).clamp(0, u16::MAX as i64) as u16;
    let st = i.state.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(t) = &st.terminal {
        crate::container::exec::set_window_size(t.as_raw_fd(), h, w)
            .map_err(|e| ApiError::internal(format!("resize: {e}")))?;
    }
    Ok(json(StatusCode::OK, &json!({})))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn record(id: &str, container: &str, scope: &str, running: bool) -> Arc<ExecInstance> {
        Arc::new(ExecInstance {
            id: id.into(),
            container_id: container.into(),
            scope: scope.into(),
            config: ExecConfig::default(),
            attach_stdout: false,
            attach_stderr: false,
            detach_keys: Vec::new(),
            state: Mutex::new(ExecState {
                started: true,
                running,
                exit_code: (!running).then_some(0),
                ..Default::default()
            }),
        })
    }

    #[test]
    fn records_of_gone_containers_and_old_ended_ones_are_dropped() {
        let mut execs = HashMap::new();
        for i in 0..(KEEP_FINISHED + 50) {
            let id = format!("ended{i}");
            execs.insert(id.clone(), record(&id, "live", "s1", false));
        }
        execs.insert("running".into(), record("running", "live", "s1", true));
        execs.insert("gone".into(), record("gone", "removed", "s1", true));
        execs.insert("other".into(), record("other", "removed", "s2", false));
        prune(&mut execs, "s1", |c| c == "live");
        assert!(execs.contains_key("running"), "a running exec stays");
        assert!(!execs.contains_key("gone"), "its container was removed");
        assert!(execs.contains_key("other"), "another scope is not touched");
        let ended = execs.keys().filter(|k| k.starts_with("ended")).count();
        assert_eq!(ended, KEEP_FINISHED);
    }
}
