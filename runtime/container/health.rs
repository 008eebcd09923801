//! Healthchecks: the image's HEALTHCHECK (or the container's override) run as
//! an exec on its interval, with its timeout, retries and start period; the
//! results kept as Docker's `State.Health` shows them.

use std::io::Read;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{ContainerConfig, HealthConfig};
use super::exec::ExecConfig;
use super::manager::{Container, Runtime};
use super::state::{now_rfc3339, HealthResult, Status};

/// Docker's defaults: 30 s interval and timeout, 3 retries, no start period.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_RETRIES: u32 = 3;
/// How many results `State.Health.Log` keeps.
const KEEP_RESULTS: usize = 5;
/// How much output of one check is kept.
const MAX_OUTPUT: usize = 4096;

/// The healthcheck that applies: the container's, else the image's; `None`
/// when there is none or it is `NONE`.
pub fn effective(
    config: &ContainerConfig,
    runtime: &Runtime,
    image_id: &str,
) -> Option<HealthConfig> {
    let from_image = || runtime.images().healthcheck(image_id).ok().flatten();
    let mut check = config.healthcheck.clone().or_else(from_image)?;
    if check.test.first().map(String::as_str) == Some("NONE") || check.test.is_empty() {
        return None;
    }
    // Fields the container leaves at zero come from the image (Docker merges).
    if let Some(image) = from_image() {
        if check.interval == 0 {
            check.interval = image.interval;
        }
        if check.timeout == 0 {
            check.timeout = image.timeout;
        }
        if check.start_period == 0 {
            check.start_period = image.start_period;
        }
        if check.retries == 0 {
            check.retries = image.retries;
        }
    }
    Some(check)
}

fn duration(ns: i64, default: Duration) -> Duration {
    if ns > 0 {
        Duration::from_nanos(ns as u64)
    } else {
        default
    }
}

/// The command a healthcheck runs.
fn command(test: &[String]) -> Option<Vec<String>> {
    match test.first().map(String::as_str) {
        Some("CMD") => Some(test[1..].to_vec()),
        Some("CMD-SHELL") => Some(vec!["/bin/sh".into(), "-c".into(), test[1..].join(" ")]),
        _ => None,
    }
}

/// Runs the healthcheck of `container` from a thread of its own, for as long
/// as this start of the container runs.
pub fn spawn(runtime: Arc<Runtime>, container: Arc<Container>, check: HealthConfig) {
    let Some(cmd) = command(&check.test) else {
        return;
    };
    let started_at = container.snapshot().state.started_at;
    let _ = std::thread::Builder::new()
        .name(format!("health-{}", &container.id[..12]))
        .spawn(move || {
            let interval = duration(check.interval, DEFAULT_INTERVAL);
            let timeout = duration(check.timeout, DEFAULT_TIMEOUT);
            let start_period = duration(check.start_period, Duration::ZERO);
            let retries = if check.retries > 0 {
                check.retries as u32
            } else {
                DEFAULT_RETRIES
            };
            let began = Instant::now();
            loop {
                std::thread::sleep(interval);
                let current = container.snapshot();
                if current.state.status != Status::Running || current.state.started_at != started_at
                {
                    if current.state.status == Status::Paused {
                        continue;
                    }
                    return;
                }
                let result = run_once(&runtime, &container, &cmd, timeout);
                let mut r = container.lock();
                if r.state.started_at != started_at || !r.state.running() {
                    return;
                }
                let Some(health) = r.state.health.as_mut() else {
                    return;
                };
                let before = health.status.clone();
                if result.exit_code == 0 {
                    health.status = "healthy".into();
                    health.failing_streak = 0;
                } else if began.elapsed() >= start_period || health.status != "starting" {
                    health.failing_streak += 1;
                    if health.failing_streak >= retries {
                        health.status = "unhealthy".into();
                    }
                }
                let changed_to = (health.status != before).then(|| health.status.clone());
                health.log.push(result);
                let excess = health.log.len().saturating_sub(KEEP_RESULTS);
                health.log.drain(..excess);
                let _ = runtime.save(&r);
                if let Some(status) = changed_to {
                    runtime.emit(&r, &format!("health_status: {status}"), &[]);
                }
                drop(r);
                container.changed.notify_all();
            }
        });
}

fn run_once(
    runtime: &Runtime,
    container: &Arc<Container>,
    cmd: &[String],
    timeout: Duration,
) -> HealthResult {
    let start = now_rfc3339();
    let config = ExecConfig {
        cmd: cmd.to_vec(),
        ..Default::default()
    };
    let (exit_code, output) = match runtime.exec(container, &config) {
        Ok(mut exec) => {
            let mut out = exec.stdout.take();
            let mut err = exec.stderr.take();
            let reader = std::thread::spawn(move || {
                let mut text = Vec::new();
                if let Some(o) = out.as_mut() {
                    let _ = o.read_to_end(&mut text);
                }
                if let Some(e) = err.as_mut() {
                    let _ = e.read_to_end(&mut text);
                }
                text.truncate(MAX_OUTPUT);
                String::from_utf8_lossy(&text).into_owned()
            });
            let deadline = Instant::now() + timeout;
            let code = loop {
                match exec.child.try_wait() {
                    Ok(Some(status)) => break status.code().unwrap_or(255),
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(20))
                    }
                    _ => {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(exec.pid),
                            nix::sys::signal::Signal::SIGKILL,
                        );
                        let _ = exec.child.wait();
                        break -1;
                    }
                };
            };
            let output = reader.join().unwrap_or_default();
            if code == -1 {
                (
                    -1,
                    format!("Health check exceeded timeout ({}s)", timeout.as_secs()),
                )
            } else {
                (code, output)
            }
        }
        Err(e) => (-1, e.to_string()),
    };
    HealthResult {
        start,
        end: now_rfc3339(),
        exit_code,
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_forms_become_commands() {
        let shell = command(&["CMD-SHELL".into(), "wget -q localhost".into()]).unwrap();
        assert_eq!(shell, ["/bin/sh", "-c", "wget -q localhost"]);
        let exec = command(&["CMD".into(), "true".into()]).unwrap();
        assert_eq!(exec, ["true"]);
        assert!(command(&["NONE".into()]).is_none());
    }
}
