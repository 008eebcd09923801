//! Container checks: state, image, ports, environment, mounts, health,
//! restart policy, a command's output inside it, an HTTP answer on a
//! published port.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use berth_runtime::container::{Container, ExecConfig, Runtime};
use berth_runtime::engine::convert;
use serde_json::Value;

use super::{fail, image_matches, short, Check, Outcome};

fn find_container(
    runtime: &Runtime,
    scope: &str,
    c: &Check,
) -> Result<Arc<Container>, (String, String)> {
    if let Some(name) = &c.container {
        return runtime.get(scope, name).map_err(|_| {
            let names: Vec<String> = runtime
                .list(scope)
                .iter()
                .map(|c| c.snapshot().name)
                .collect();
            (
                format!("a container named {name}"),
                if names.is_empty() {
                    "no containers".to_string()
                } else {
                    format!("containers {}", names.join(", "))
                },
            )
        });
    }
    let image = c.container_image.as_deref().unwrap_or("");
    let mut all: Vec<Arc<Container>> = runtime
        .list(scope)
        .into_iter()
        .filter(|x| image_matches(&x.snapshot().config.image, image))
        .collect();
    all.sort_by_key(|x| {
        x.snapshot().state.status != berth_runtime::container::state::Status::Running
    });
    all.into_iter()
        .next()
        .ok_or_else(|| (format!("a container of image {image}"), "none".to_string()))
}

/// Checks the container a check names.
pub fn check(runtime: &Arc<Runtime>, scope: &str, c: &Check) -> Outcome {
    let container = find_container(runtime, scope, c)?;
    let record = container.snapshot();
    let inspect = convert::inspect(runtime, &record);
    let status = inspect["State"]["Status"]
        .as_str()
        .unwrap_or("")
        .to_string();
    let running = inspect["State"]["Running"].as_bool().unwrap_or(false);
    let mut found = vec![format!("container {} is {status}", record.name)];
    if let Some(want) = c.running {
        if want != running {
            return fail(
                if want { "running" } else { "not running" },
                format!("container {} is {status}", record.name),
            );
        }
    }
    if let Some(want) = &c.state {
        if *want != status {
            return fail(format!("state {want}"), format!("state {status}"));
        }
    }
    if let Some(want) = c.oom_killed {
        let oom = inspect["State"]["OOMKilled"].as_bool().unwrap_or(false);
        if oom != want {
            return fail(
                if want {
                    "killed by the kernel for passing its memory limit (OOMKilled)"
                } else {
                    "not killed for memory (OOMKilled false)"
                },
                format!(
                    "state {status}, OOMKilled {oom}, exit code {}",
                    inspect["State"]["ExitCode"]
                ),
            );
        }
        found.push(format!("OOMKilled {oom}"));
    }
    if let Some(want) = &c.uses_image {
        if !image_matches(&record.config.image, want) {
            return fail(
                format!("image {want}"),
                format!("image {}", record.config.image),
            );
        }
        found.push(format!("image {}", record.config.image));
    }
    if let Some(port) = c.port {
        let key = format!("{port}/tcp");
        let ports = &inspect["NetworkSettings"]["Ports"];
        let bound = ports[&key]
            .as_array()
            .and_then(|a| a.first())
            .and_then(|b| b["HostPort"].as_str())
            .map(String::from);
        match bound {
            Some(hp) if c.host_port.is_some_and(|want| hp != want.to_string()) => {
                return fail(
                    format!(
                        "port {port} published on host port {}",
                        c.host_port.unwrap_or(0)
                    ),
                    format!("port {port} published on host port {hp}"),
                );
            }
            Some(hp) => found.push(format!("port {port} published on {hp}")),
            None => {
                let list: Vec<String> = ports
                    .as_object()
                    .map(|m| {
                        m.iter()
                            .filter(|(_, v)| v.is_array())
                            .map(|(k, _)| k.clone())
                            .collect()
                    })
                    .unwrap_or_default();
                return fail(
                    format!("port {port} published"),
                    if list.is_empty() {
                        "no published ports".into()
                    } else {
                        format!("published {}", list.join(", "))
                    },
                );
            }
        }
    }
    if let Some(want) = &c.env {
        let env: Vec<&str> = inspect["Config"]["Env"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if !env.contains(&want.as_str()) {
            let key = want.split('=').next().unwrap_or("");
            let have = env
                .iter()
                .find(|e| e.split('=').next() == Some(key))
                .map(|e| e.to_string())
                .unwrap_or_else(|| format!("no {key} in the environment"));
            return fail(want.clone(), have);
        }
        found.push(want.clone());
    }
    if let Some(want) = &c.mount {
        let mounts: Vec<String> = inspect["Mounts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|m| m["Destination"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if !mounts.contains(want) {
            return fail(
                format!("a mount at {want}"),
                if mounts.is_empty() {
                    "no mounts".into()
                } else {
                    format!("mounts at {}", mounts.join(", "))
                },
            );
        }
        found.push(format!("mount at {want}"));
    }
    if let Some(want) = &c.health {
        let h = inspect["State"]["Health"]["Status"]
            .as_str()
            .unwrap_or("no health check");
        if h != want {
            return fail(format!("health {want}"), format!("health {h}"));
        }
        found.push(format!("health {h}"));
    }
    if let Some(want) = &c.restart {
        let r = inspect["HostConfig"]["RestartPolicy"]["Name"]
            .as_str()
            .filter(|s| !s.is_empty())
            .unwrap_or("no");
        if r != want {
            return fail(
                format!("restart policy {want}"),
                format!("restart policy {r}"),
            );
        }
        found.push(format!("restart policy {r}"));
    }
    if let Some(want) = &c.diff {
        let changes = runtime
            .changes(&container)
            .map_err(|e| (format!("{want} in docker diff"), e.to_string()))?;
        let lines: Vec<String> = changes.iter().map(diff_line).collect();
        if !lines.contains(want) {
            return fail(
                format!("{want} in docker diff"),
                if lines.is_empty() {
                    "no changes".into()
                } else {
                    short(&lines.join(", "))
                },
            );
        }
        found.push(want.clone());
    }
    if let Some(want) = &c.logs {
        let path = runtime
            .dir_of(&record.id)
            .root
            .join(berth_runtime::container::monitor::LOG_NAME);
        let text: String = berth_runtime::container::logs::read(&path, &Default::default())
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.text)
            .collect();
        if !text.contains(want.as_str()) {
            return fail(
                format!("output containing {want:?}"),
                if text.trim().is_empty() {
                    "no output".into()
                } else {
                    format!("output {:?}", short(&tail_of(&text, 200)))
                },
            );
        }
        found.push(format!("output has {want:?}"));
    }
    if let Some(cmd) = &c.exec {
        if !running {
            return fail(
                format!("`{}` to run", cmd.join(" ")),
                format!("container {} is {status}", record.name),
            );
        }
        let (code, output) = exec_output(runtime, &container, cmd)
            .map_err(|e| (format!("`{}` to run", cmd.join(" ")), e))?;
        let want_code = c.exit_code.unwrap_or(0);
        if code != want_code {
            return fail(
                format!("`{}` exits with {want_code}", cmd.join(" ")),
                format!("exit code {code}: {}", short(&output)),
            );
        }
        if let Some(want) = &c.contains {
            if !output.contains(want.as_str()) {
                return fail(
                    format!("output containing {want:?}"),
                    format!("output {:?}", short(&output)),
                );
            }
        }
        found.push(format!("output {:?}", short(&output)));
    }
    if let (Some(path), Some(port)) = (&c.http, c.port) {
        let (code, body) = http_get(runtime, scope, &record.name, port, path)
            .map_err(|e| (format!("an HTTP answer on port {port}"), e))?;
        let want = c.status.unwrap_or(200);
        if code != want {
            return fail(
                format!("HTTP {want}"),
                format!("HTTP {code}: {}", short(&body)),
            );
        }
        if let Some(text) = &c.contains {
            if !body.contains(text.as_str()) {
                return fail(
                    format!("a page containing {text:?}"),
                    format!("page {:?}", short(&body)),
                );
            }
        }
        found.push(format!("HTTP {code}"));
    }
    Ok(found.join(", "))
}

/// A change as `docker diff` prints it.
pub(super) fn diff_line(c: &berth_runtime::container::diff::Change) -> String {
    use berth_runtime::container::diff::ChangeKind;
    let kind = match c.kind {
        ChangeKind::Added => "A",
        ChangeKind::Modified => "C",
        ChangeKind::Deleted => "D",
    };
    format!("{kind} {}", c.path)
}

/// The last `n` characters of `s`.
pub(super) fn tail_of(s: &str, n: usize) -> String {
    let s = s.trim();
    let count = s.chars().count();
    s.chars().skip(count.saturating_sub(n)).collect()
}

/// Runs `cmd` in `container`; its exit code and output (stdout then stderr).
fn exec_output(
    runtime: &Runtime,
    container: &Arc<Container>,
    cmd: &[String],
) -> Result<(i32, String), String> {
    let config = ExecConfig {
        cmd: cmd.to_vec(),
        env: vec![],
        workdir: None,
        user: None,
        tty: false,
        stdin: false,
        console_size: None,
    };
    let mut p = runtime
        .exec(container, &config)
        .map_err(|e| e.to_string())?;
    let err_reader = p.stderr.take().map(|mut f| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            let _ = Read::take(&mut f, 1 << 20).read_to_end(&mut s);
            s
        })
    });
    let mut out = Vec::new();
    if let Some(mut f) = p.stdout.take() {
        let _ = Read::take(&mut f, 1 << 20).read_to_end(&mut out);
    }
    if let Some(h) = err_reader {
        out.extend(h.join().unwrap_or_default());
    }
    let code = p.wait();
    Ok((code, String::from_utf8_lossy(&out).into_owned()))
}

/// `GET path` on the container's published `port` from the scope's host
/// namespace; the status and body.
pub fn http_get(
    runtime: &Runtime,
    scope: &str,
    container: &str,
    port: u16,
    path: &str,
) -> Result<(u16, String), String> {
    let mut s = runtime
        .connect_published(scope, container, port)
        .map_err(|e| e.to_string())?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nUser-Agent: berth-grader\r\nConnection: close\r\n\r\n").as_bytes())
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut raw = Vec::new();
    let _ = s.take(1 << 20).read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP answer: {:?}", short(&text)))?;
    Ok((code, body.to_string()))
}
