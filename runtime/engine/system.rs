//! `/_ping`, `/version`, `/info`, `/events`, `/system/df`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hyper::header::HeaderValue;
use hyper::{Method, StatusCode};
use serde_json::json;

use super::http::{empty, json, stream, ApiResult, Reply, API_VERSION, MIN_API_VERSION};
use super::router::Ctx;
use crate::container::state::Status;
use crate::events::Event;

/// `HEAD|GET /_ping`: `OK`, with the headers the CLI negotiates from.
pub fn ping(method: &Method) -> Reply {
    let mut r = if method == Method::HEAD {
        empty(StatusCode::OK)
    } else {
        let mut r = Reply::new(super::http::Body::Full(Some("OK".into())));
        r.headers_mut().insert(
            "Content-Type",
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    };
    let h = r.headers_mut();
    h.insert("Builder-Version", HeaderValue::from_static("1"));
    h.insert("Swarm", HeaderValue::from_static("inactive"));
    h.insert(
        "Cache-Control",
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    h.insert("Pragma", HeaderValue::from_static("no-cache"));
    r
}

fn kernel_version() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `GET /version`.
pub fn version(_ctx: &Ctx) -> ApiResult {
    let version = env!("CARGO_PKG_VERSION");
    let kernel = kernel_version();
    Ok(json(
        StatusCode::OK,
        &json!({
            "Platform": {"Name": "Berth"},
            "Components": [{
                "Name": "Engine",
                "Version": version,
                "Details": {
                    "ApiVersion": API_VERSION,
                    "MinAPIVersion": MIN_API_VERSION,
                    "GitCommit": "berth",
                    "GoVersion": "n/a (Rust)",
                    "Os": "linux",
                    "Arch": arch(),
                    "KernelVersion": kernel,
                    "BuildTime": "",
                    "Experimental": "false",
                }
            }],
            "Version": version,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "berth",
            "GoVersion": "n/a (Rust)",
            "Os": "linux",
            "Arch": arch(),
            "KernelVersion": kernel,
            "Experimental": false,
            "BuildTime": "",
        }),
    ))
}

/// `GET /info`.
pub fn info(ctx: &Ctx) -> ApiResult {
    let runtime = &ctx.engine.runtime;
    let containers = runtime.list(&ctx.scope.name);
    let count = |s: Status| {
        containers
            .iter()
            .filter(|c| c.lock().state.status == s)
            .count()
    };
    let running = count(Status::Running);
    let paused = count(Status::Paused);
    let images = runtime
        .images()
        .list(&ctx.scope.name)
        .map(|l| l.len())
        .unwrap_or(0);
    let (cgroup_version, cgroup_driver) = match runtime.cgroups() {
        crate::container::cgroup::Hierarchy::V1 { .. } => ("1", "cgroupfs"),
        crate::container::cgroup::Hierarchy::V2 { .. } => ("2", "cgroupfs"),
    };
    let mem_total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0);
    let hostname = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(json(
        StatusCode::OK,
        &json!({
            "ID": format!("berth-{}", ctx.scope.name),
            "Containers": containers.len(),
            "ContainersRunning": running,
            "ContainersPaused": paused,
            "ContainersStopped": containers.len() - running - paused,
            "Images": images,
            "Driver": "overlay2",
            "DriverStatus": [["Backing Filesystem", "extfs"], ["Supports d_type", "true"], ["Using metacopy", "false"], ["Native Overlay Diff", "true"], ["userxattr", "false"]],
            "Plugins": {"Volume": ["local"], "Network": ["bridge", "host", "null"], "Authorization": null, "Log": ["json-file"]},
            "MemoryLimit": true,
            "SwapLimit": true,
            "CpuCfsPeriod": true,
            "CpuCfsQuota": true,
            "PidsLimit": true,
            "CPUShares": true,
            "CPUSet": true,
            "OomKillDisable": false,
            "GenericResources": null,
            "IPv4Forwarding": true,
            "Debug": false,
            "NFd": 0,
            "NGoroutines": 0,
            "SystemTime": humantime::format_rfc3339_nanos(SystemTime::now()).to_string(),
            "LoggingDriver": "json-file",
            "CgroupDriver": cgroup_driver,
            "CgroupVersion": cgroup_version,
            "NEventsListener": 0,
            "KernelVersion": kernel_version(),
            "OperatingSystem": "Berth",
            "OSVersion": env!("CARGO_PKG_VERSION"),
            "OSType": "linux",
            "Architecture": std::env::consts::ARCH,
            "IndexServerAddress": "https://index.docker.io/v1/",
            "RegistryConfig": {"AllowNondistributableArtifactsCIDRs": null, "AllowNondistributableArtifactsHostnames": null, "InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}, "Mirrors": null},
            "NCPU": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            "MemTotal": mem_total,
            "DockerRootDir": super::paths::root(runtime.data_dir().root()),
            "HttpProxy": "",
            "HttpsProxy": "",
            "NoProxy": "",
            "Name": hostname,
            "Labels": [],
            "ExperimentalBuild": false,
            "ServerVersion": env!("CARGO_PKG_VERSION"),
            "Runtimes": {"berth": {"path": "berth"}},
            "DefaultRuntime": "berth",
            "Swarm": super::swarm::info(ctx),
            "LiveRestoreEnabled": true,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": ""},
            "RuncCommit": {"ID": ""},
            "InitCommit": {"ID": ""},
            "SecurityOptions": ["name=seccomp,profile=builtin", "name=userns", "name=no-new-privileges"],
            "Warnings": null,
        }),
    ))
}

fn event_json(e: &Event) -> serde_json::Value {
    let secs = (e.time_nano / 1_000_000_000) as u64;
    let mut v = json!({
        "Type": e.kind,
        "Action": e.action,
        "Actor": {"ID": e.id, "Attributes": e.attributes},
        "scope": "local",
        "time": secs,
        "timeNano": e.time_nano as u64,
    });
    if e.kind == "container" {
        v["status"] = json!(e.action);
        v["id"] = json!(e.id);
        v["from"] = json!(e.attributes.get("image").cloned().unwrap_or_default());
    }
    v
}

/// Docker's `since`/`until`: Unix seconds with optional fraction, or RFC 3339.
fn parse_time(text: &str) -> Option<u128> {
    if let Ok(secs) = text.parse::<f64>() {
        return Some((secs * 1e9) as u128);
    }
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
}

/// `GET /events`: headers at once, then one JSON object per line.
pub fn events(ctx: &Ctx) -> ApiResult {
    let filters = ctx.query.filters()?;
    let since = ctx.query.get("since").and_then(parse_time);
    let until = ctx.query.get("until").and_then(parse_time);
    let scope = ctx.scope.name.clone();
    let matches = move |e: &Event| {
        let f = &filters;
        e.scope == scope
            && (f.values("type").is_empty() || f.values("type").iter().any(|t| t == e.kind))
            && (f.values("event").is_empty()
                || f.values("event")
                    .iter()
                    .any(|a| e.action.starts_with(a.as_str())))
            && (f.values("container").is_empty()
                || (e.kind == "container"
                    && f.values("container").iter().any(|c| {
                        e.id.starts_with(c.as_str()) || e.attributes.get("name") == Some(c)
                    })))
            && f.labels_match(&e.attributes)
    };
    let (history, mut live) = ctx.engine.runtime.events().subscribe();
    let (reply, tx) = stream("application/json");
    tokio::spawn(async move {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let line = |e: &Event| {
            let mut b = serde_json::to_vec(&event_json(e)).unwrap_or_default();
            b.push(b'\n');
            bytes::Bytes::from(b)
        };
        if let Some(since) = since {
            for e in history
                .iter()
                .filter(|e| e.time_nano >= since && matches(e))
            {
                if until.is_some_and(|u| e.time_nano > u) {
                    continue;
                }
                if tx.send(line(e)).await.is_err() {
                    return;
                }
            }
        }
        if let Some(until) = until {
            if until <= now {
                return;
            }
        }
        loop {
            let wait = until.map(|u| {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos())
                    .unwrap_or(0);
                Duration::from_nanos(u.saturating_sub(now) as u64)
            });
            let next = match wait {
                Some(w) => match tokio::time::timeout(w, live.recv()).await {
                    Ok(r) => r,
                    Err(_) => return,
                },
                None => tokio::select! {
                    r = live.recv() => r,
                    _ = tx.closed() => return,
                },
            };
            match next {
                Ok(e) if matches(&e) => {
                    if tx.send(line(&e)).await.is_err() {
                        return;
                    }
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    });
    Ok(reply)
}

/// `GET /system/df`: images, containers and their sizes.
pub fn df(ctx: &Ctx) -> ApiResult {
    let runtime = &ctx.engine.runtime;
    let images = super::images::summaries(ctx)?;
    let containers: Vec<serde_json::Value> = runtime
        .list(&ctx.scope.name)
        .iter()
        .map(|c| {
            let mut v = super::convert::summary(runtime, &c.snapshot());
            let rw = super::convert::writable_size(runtime, &c.id);
            v["SizeRw"] = json!(rw);
            v["SizeRootFs"] = json!(rw);
            v
        })
        .collect();
    let layers_size: i64 = images.iter().map(|i| i["Size"].as_i64().unwrap_or(0)).sum();
    Ok(json(
        StatusCode::OK,
        &json!({
            "LayersSize": layers_size,
            "Images": images,
            "Containers": containers,
            "Volumes": [],
            "BuildCache": [],
        }),
    ))
}
