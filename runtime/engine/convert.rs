//! Docker's JSON shapes of containers: the create request in, `docker ps`
//! summaries and `docker inspect` documents out.

use super::paths;
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::{json, Value};

use super::http::ApiError;
use crate::container::cgroup::Limits;
use crate::container::config::{ContainerConfig, HealthConfig, MountConfig, RestartPolicy};
use crate::container::state::{Status, ZERO_TIME};
use crate::container::{spec, ContainerRecord, Runtime};

/// The body of `POST /containers/create` (the fields Berth acts on; the rest
/// is accepted and ignored, as Go's decoder does).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct CreateRequest {
    pub hostname: String,
    pub user: String,
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    pub tty: bool,
    pub open_stdin: bool,
    pub stdin_once: bool,
    pub env: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub image: String,
    pub working_dir: String,
    pub labels: Option<BTreeMap<String, String>>,
    pub stop_signal: Option<String>,
    pub stop_timeout: Option<i64>,
    pub healthcheck: Option<HealthConfig>,
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    pub volumes: Option<BTreeMap<String, Value>>,
    pub host_config: Option<Value>,
    pub networking_config: Option<Value>,
    /// Deprecated since API 1.44 (now per endpoint), still sent by clients.
    pub mac_address: String,
}

/// The parts of `HostConfig` Berth acts on.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct HostConfig {
    binds: Option<Vec<String>>,
    memory: i64,
    memory_swap: i64,
    nano_cpus: i64,
    cpu_quota: i64,
    cpu_period: i64,
    cpu_shares: i64,
    pids_limit: Option<i64>,
    restart_policy: Option<RestartPolicyJson>,
    auto_remove: bool,
    init: Option<bool>,
    /// Names or numbers; docker-py may send numbers.
    group_add: Option<Vec<Value>>,
    privileged: bool,
    cap_add: Option<Vec<String>>,
    cap_drop: Option<Vec<String>>,
    pid_mode: String,
    ipc_mode: String,
    userns_mode: String,
    devices: Option<Vec<Value>>,
    tmpfs: Option<BTreeMap<String, String>>,
    mounts: Option<Vec<MountJson>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct RestartPolicyJson {
    name: String,
    maximum_retry_count: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct MountJson {
    #[serde(rename = "Type")]
    kind: String,
    source: String,
    target: String,
    read_only: bool,
    tmpfs_options: Option<TmpfsOptions>,
    volume_options: Option<VolumeOptions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct VolumeOptions {
    no_copy: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct TmpfsOptions {
    size_bytes: Option<u64>,
}

/// Turns a create request into a container configuration, refusing what a
/// classroom must not allow.
/// The log drivers built into Docker 28 (an empty name is the default).
const LOG_DRIVERS: &[&str] = &[
    "",
    "json-file",
    "local",
    "none",
    "syslog",
    "journald",
    "gelf",
    "fluentd",
    "awslogs",
    "splunk",
    "gcplogs",
    "logentries",
];

pub fn config_from_request(req: CreateRequest) -> Result<ContainerConfig, ApiError> {
    if req.image.is_empty() {
        return Err(ApiError::bad_request(
            "config cannot be empty in order to create a container",
        ));
    }
    let raw_host = req.host_config.clone().unwrap_or(Value::Null);
    let networking = super::networks::networking_from_request(
        &raw_host,
        req.networking_config.as_ref(),
        &req.mac_address,
    )?;
    let host: HostConfig = match &req.host_config {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| ApiError::bad_request(format!("invalid HostConfig: {e}")))?,
        None => HostConfig::default(),
    };
    // dockerd validates the driver at create (`logger.ValidateLogOpts`), so a
    // typo fails there and not at start.
    let driver = raw_host
        .pointer("/LogConfig/Type")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !LOG_DRIVERS.contains(&driver) {
        return Err(ApiError::bad_request(format!(
            "logger: no log driver named '{driver}' is registered"
        )));
    }
    crate::container::logs::limits_of(&raw_host).map_err(ApiError::bad_request)?;
    let refuse = |what: &str| {
        Err(ApiError::new(
            hyper::StatusCode::FORBIDDEN,
            format!("{what} is not allowed in this classroom: containers stay sandboxed"),
        ))
    };
    // `--privileged` and `--pid host` are the runtime's to refuse: a
    // learner's scope may not have them, `berth daemon`'s may, as dockerd's.
    if !matches!(host.pid_mode.as_str(), "" | "host" | "private") {
        return Err(ApiError::bad_request(format!(
            "invalid PID mode: {}",
            host.pid_mode
        )));
    }
    if host.ipc_mode == "host" {
        return refuse("--ipc host");
    }
    if host.userns_mode == "host" {
        return refuse("--userns host");
    }
    if host.devices.as_ref().is_some_and(|d| !d.is_empty()) {
        return refuse("--device");
    }
    let cap_add = host.cap_add.clone().unwrap_or_default();
    let cap_drop = host.cap_drop.clone().unwrap_or_default();
    crate::container::capabilities::validate(&cap_add, &cap_drop).map_err(ApiError::bad_request)?;
    let mut limits = Limits::default();
    CpuMemory {
        memory: host.memory,
        memory_swap: host.memory_swap,
        nano_cpus: host.nano_cpus,
        cpu_quota: host.cpu_quota,
        cpu_period: host.cpu_period,
        cpu_shares: host.cpu_shares,
    }
    .apply(&mut limits)?;
    limits.pids = host.pids_limit.filter(|p| *p > 0);
    let mut mounts = Vec::new();
    for bind in host.binds.iter().flatten() {
        mounts.push(parse_bind(bind)?);
    }
    for m in host.mounts.iter().flatten() {
        mounts.push(match m.kind.as_str() {
            "bind" => MountConfig::Bind {
                source: m.source.clone().into(),
                target: m.target.clone(),
                read_only: m.read_only,
            },
            "volume" => {
                if !m.source.is_empty() {
                    crate::volume::validate_name(&m.source)?;
                }
                MountConfig::Volume {
                    name: m.source.clone(),
                    target: m.target.clone(),
                    read_only: m.read_only,
                    no_copy: m.volume_options.as_ref().is_some_and(|v| v.no_copy),
                }
            }
            "tmpfs" => MountConfig::Tmpfs {
                target: m.target.clone(),
                size_bytes: m.tmpfs_options.as_ref().and_then(|t| t.size_bytes),
            },
            other => {
                return Err(ApiError::bad_request(format!(
                    "mount type {other:?} is not supported yet"
                )))
            }
        });
    }
    for (target, _) in host.tmpfs.iter().flatten() {
        mounts.push(MountConfig::Tmpfs {
            target: target.clone(),
            size_bytes: None,
        });
    }
    let restart_policy = match host.restart_policy {
        Some(p) if !p.name.is_empty() => {
            let text = if p.name == "on-failure" && p.maximum_retry_count > 0 {
                format!("on-failure:{}", p.maximum_retry_count)
            } else {
                p.name.clone()
            };
            RestartPolicy::parse(&text).map_err(ApiError::bad_request)?
        }
        _ => RestartPolicy::default(),
    };
    if host.auto_remove && !matches!(restart_policy.name.as_str(), "" | "no") {
        return Err(ApiError::bad_request(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    Ok(ContainerConfig {
        image: req.image,
        cmd: req.cmd.unwrap_or_default(),
        entrypoint: req.entrypoint,
        env: req.env.unwrap_or_default(),
        workdir: Some(req.working_dir).filter(|w| !w.is_empty()),
        user: Some(req.user).filter(|u| !u.is_empty()),
        hostname: Some(req.hostname).filter(|h| !h.is_empty()),
        tty: req.tty,
        open_stdin: req.open_stdin,
        stdin_once: req.stdin_once,
        attach_stdin: req.attach_stdin,
        attach_stdout: req.attach_stdout,
        attach_stderr: req.attach_stderr,
        exposed_ports: req.exposed_ports.unwrap_or_default().into_keys().collect(),
        labels: req.labels.unwrap_or_default(),
        mounts,
        limits,
        restart_policy,
        auto_remove: host.auto_remove,
        group_add: host
            .group_add
            .iter()
            .flatten()
            .filter_map(|g| match g {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        stop_signal: req.stop_signal.filter(|s| !s.is_empty()),
        stop_timeout: req.stop_timeout,
        healthcheck: req.healthcheck,
        init: host.init.unwrap_or(false),
        host_config: raw_host,
        networking,
        cap_add,
        cap_drop,
        privileged: host.privileged,
        pid_host: host.pid_mode == "host",
    })
}

/// A `-v` bind: `/host:/container[:ro|rw]`.
pub fn parse_bind(spec: &str) -> Result<MountConfig, ApiError> {
    let parts: Vec<&str> = spec.split(':').collect();
    let (source, target, mode) = match parts.as_slice() {
        [s, t] => (*s, *t, ""),
        [s, t, m] => (*s, *t, *m),
        _ => {
            return Err(ApiError::bad_request(format!(
                "invalid volume specification: '{spec}'"
            )))
        }
    };
    let read_only = mode.split(',').any(|m| m == "ro");
    if !mode.split(',').all(|m| {
        matches!(
            m,
            "" | "ro" | "rw" | "z" | "Z" | "rprivate" | "private" | "nocopy"
        )
    }) {
        return Err(ApiError::bad_request(format!("invalid mode: {mode}")));
    }
    let named = !source.starts_with('/');
    if !target.starts_with('/') {
        return Err(ApiError::bad_request(format!(
            "invalid volume specification: '{spec}': invalid mount config for type \"{}\": invalid mount path: '{target}' mount path must be absolute",
            if named { "volume" } else { "bind" }
        )));
    }
    if named {
        if source.is_empty() {
            return Err(ApiError::bad_request(format!(
                "invalid volume specification: '{spec}'"
            )));
        }
        crate::volume::validate_name(source)?;
        return Ok(MountConfig::Volume {
            name: source.to_string(),
            target: target.to_string(),
            read_only,
            no_copy: mode.split(',').any(|m| m == "nocopy"),
        });
    }
    Ok(MountConfig::Bind {
        source: source.into(),
        target: target.to_string(),
        read_only,
    })
}

/// Go's `units.HumanDuration`, which `docker ps` uses ("5 seconds", "About a minute").
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    let minutes = seconds / 60;
    let hours = (d.as_secs_f64() / 3600.0 + 0.5) as u64;
    if seconds < 1 {
        "Less than a second".into()
    } else if seconds == 1 {
        "1 second".into()
    } else if seconds < 60 {
        format!("{seconds} seconds")
    } else if minutes == 1 {
        "About a minute".into()
    } else if minutes < 60 {
        format!("{minutes} minutes")
    } else if hours == 1 {
        "About an hour".into()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", d.as_secs() / 3600 / 24 / 365)
    }
}

fn since(time: Option<&str>) -> Duration {
    time.and_then(|t| humantime::parse_rfc3339_weak(t).ok())
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

/// The STATUS column of `docker ps`.
pub fn status_text(r: &ContainerRecord) -> String {
    let s = &r.state;
    match s.status {
        Status::Created => "Created".into(),
        Status::Running | Status::Paused => {
            let mut text = format!("Up {}", human_duration(since(s.started_at.as_deref())));
            if s.status == Status::Paused {
                text.push_str(" (Paused)");
            } else if let Some(h) = &s.health {
                match h.status.as_str() {
                    "starting" => text.push_str(" (health: starting)"),
                    other => text.push_str(&format!(" ({other})")),
                }
            }
            text
        }
        Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            human_duration(since(s.finished_at.as_deref()))
        ),
        Status::Exited => format!(
            "Exited ({}) {} ago",
            s.exit_code,
            human_duration(since(s.finished_at.as_deref()))
        ),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

fn unix_secs(rfc3339: &str) -> i64 {
    humantime::parse_rfc3339_weak(rfc3339)
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn command_line(r: &ContainerRecord) -> String {
    std::iter::once(r.path.as_str())
        .chain(r.args.iter().map(String::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

fn mounts_json(runtime: &Runtime, r: &ContainerRecord) -> Vec<Value> {
    r.config
        .mounts
        .iter()
        // dockerd lists no secret or config among a task's mounts.
        .filter(|m| !matches!(m, MountConfig::TaskFile { .. }))
        .map(|m| match m {
            MountConfig::Bind {
                source,
                target,
                read_only,
            } => json!({"Type": "bind", "Source": source, "Destination": target, "Mode": if *read_only {"ro"} else {""}, "RW": !read_only, "Propagation": "rprivate"}),
            MountConfig::Tmpfs { target, .. } => json!({"Type": "tmpfs", "Source": "", "Destination": target, "Mode": "", "RW": true, "Propagation": ""}),
            MountConfig::Volume { name, target, read_only, .. } => json!({
                "Type": "volume",
                "Name": name,
                "Source": runtime.volumes().get(&r.scope, name).map(|v| super::paths::volume(&v.mountpoint, name)).unwrap_or_default(),
                "Destination": target,
                "Driver": "local",
                "Mode": if *read_only { "ro" } else { "z" },
                "RW": !read_only,
                "Propagation": "",
            }),
            MountConfig::TaskFile { .. } => Value::Null,
        })
        .collect()
}

/// The labels a container shows: the image's, then its own.
fn labels(runtime: &Runtime, r: &ContainerRecord) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = runtime
        .images()
        .resolve(&r.scope, &r.image_id)
        .ok()
        .and_then(|i| i.config.config().as_ref().and_then(|c| c.labels().clone()))
        .map(|l| l.into_iter().collect())
        .unwrap_or_default();
    labels.extend(r.config.labels.clone());
    labels
}

/// One entry of `GET /containers/json`.
pub fn summary(runtime: &Runtime, r: &ContainerRecord) -> Value {
    json!({
        "Id": r.id,
        "Names": [format!("/{}", r.name)],
        "Image": r.config.image,
        "ImageID": r.image_id,
        "Command": command_line(r),
        "Created": unix_secs(&r.created),
        "Ports": super::networks::ports_summary(runtime, r),
        "Labels": labels(runtime, r),
        "State": r.state.status.as_str(),
        "Status": status_text(r),
        "HostConfig": {"NetworkMode": r.config.networking.mode_text()},
        "NetworkSettings": super::networks::network_settings(runtime, r, false),
        "Mounts": mounts_json(runtime, r),
    })
}

/// Bytes in a container's writable layer.
pub fn writable_size(runtime: &Runtime, id: &str) -> u64 {
    fn walk(path: &std::path::Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(path) else {
            return 0;
        };
        if meta.is_dir() {
            std::fs::read_dir(path)
                .map(|d| d.flatten().map(|e| walk(&e.path())).sum())
                .unwrap_or(0)
        } else if meta.is_file() {
            meta.len()
        } else {
            0
        }
    }
    walk(&runtime.dir_of(id).upper())
}

/// What dockerd 28 shows in `HostConfig` for what a request left out:
/// SDKs index these without checking (docker-py's `containers.run` reads
/// `HostConfig.LogConfig.Type`).
fn fill_host_config_defaults(host: &mut Value) {
    let Some(map) = host.as_object_mut() else {
        return;
    };
    let defaults = json!({
        "Binds": null,
        "ContainerIDFile": "",
        "LogConfig": {"Type": "json-file", "Config": {}},
        "PortBindings": {},
        "VolumeDriver": "",
        "VolumesFrom": null,
        "ConsoleSize": [0, 0],
        "CapAdd": null,
        "CapDrop": null,
        "CgroupnsMode": "private",
        "Dns": [],
        "DnsOptions": [],
        "DnsSearch": [],
        "ExtraHosts": null,
        "GroupAdd": null,
        "IpcMode": "private",
        "Cgroup": "",
        "Links": null,
        "OomScoreAdj": 0,
        "PidMode": "",
        "Privileged": false,
        "PublishAllPorts": false,
        "ReadonlyRootfs": false,
        "SecurityOpt": null,
        "UTSMode": "",
        "UsernsMode": "",
        "ShmSize": 67108864,
        "Runtime": "runc",
        "Isolation": "",
        "CpuShares": 0,
        "NanoCpus": 0,
        "CgroupParent": "",
        "BlkioWeight": 0,
        "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": [],
        "BlkioDeviceWriteBps": [],
        "BlkioDeviceReadIOps": [],
        "BlkioDeviceWriteIOps": [],
        "CpuPeriod": 0,
        "CpuQuota": 0,
        "CpuRealtimePeriod": 0,
        "CpuRealtimeRuntime": 0,
        "CpusetCpus": "",
        "CpusetMems": "",
        "Devices": [],
        "DeviceCgroupRules": null,
        "DeviceRequests": null,
        "MemoryReservation": 0,
        "MemorySwap": 0,
        "MemorySwappiness": null,
        "OomKillDisable": null,
        "Ulimits": [],
        "CpuCount": 0,
        "CpuPercent": 0,
        "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0,
        "MaskedPaths": ["/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"],
        "ReadonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
    });
    if let Value::Object(defaults) = defaults {
        for (key, value) in defaults {
            match map.get(&key) {
                Some(v) if !v.is_null() => {}
                _ => {
                    map.insert(key, value);
                }
            }
        }
    }
    // The CLI sends `LogConfig: {"Type": ""}`; the daemon names its default.
    if let Some(log) = map.get_mut("LogConfig").and_then(Value::as_object_mut) {
        if log
            .get("Type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            log.insert("Type".into(), json!("json-file"));
        }
        if !log.get("Config").is_some_and(Value::is_object) {
            log.insert("Config".into(), json!({}));
        }
    }
}

/// `HostConfig.Links` as dockerd shows them: `/target:/container/alias`
/// for each legacy `--link` of the request, `null` when there are none.
fn links_json(r: &ContainerRecord) -> Value {
    let links: Vec<String> = r
        .config
        .host_config
        .get("Links")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|l| {
            let (target, alias) = super::networks::link_parts(l)
                .unwrap_or_else(|_| crate::net::endpoint::link_pair(l));
            format!("/{target}:/{}/{alias}", r.name)
        })
        .collect();
    if links.is_empty() {
        Value::Null
    } else {
        json!(links)
    }
}

/// `GET /containers/{id}/json`.
pub fn inspect(runtime: &Runtime, r: &ContainerRecord) -> Value {
    let s = &r.state;
    let image = runtime.images().resolve(&r.scope, &r.image_id).ok();
    let image_config = image.as_ref().and_then(|i| i.config.config().clone());
    let env = match &image {
        Some(i) => spec::environment(&r.config, i, &r.hostname),
        None => r.config.env.clone(),
    };
    let entrypoint = r
        .config
        .entrypoint
        .clone()
        .or_else(|| image_config.as_ref().and_then(|c| c.entrypoint().clone()));
    let cmd = if !r.config.cmd.is_empty() {
        Some(r.config.cmd.clone())
    } else if r.config.entrypoint.is_some() {
        None
    } else {
        image_config.as_ref().and_then(|c| c.cmd().clone())
    };
    let workdir = r
        .config
        .workdir
        .clone()
        .or_else(|| image_config.as_ref().and_then(|c| c.working_dir().clone()))
        .unwrap_or_default();
    let user = r
        .config
        .user
        .clone()
        .or_else(|| image_config.as_ref().and_then(|c| c.user().clone()))
        .unwrap_or_default();
    let health = s.health.as_ref().map(|h| {
        json!({
            "Status": h.status,
            "FailingStreak": h.failing_streak,
            "Log": h.log.iter().map(|l| json!({"Start": l.start, "End": l.end, "ExitCode": l.exit_code, "Output": l.output})).collect::<Vec<_>>(),
        })
    });
    let mut state = json!({
        "Status": s.status.as_str(),
        "Running": matches!(s.status, Status::Running | Status::Paused),
        "Paused": s.status == Status::Paused,
        "Restarting": s.status == Status::Restarting,
        "OOMKilled": s.oom_killed,
        "Dead": s.status == Status::Dead,
        "Pid": s.pid,
        "ExitCode": s.exit_code,
        "Error": s.error,
        "StartedAt": s.started_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
        "FinishedAt": s.finished_at.clone().unwrap_or_else(|| ZERO_TIME.into()),
    });
    if let Some(h) = health {
        state["Health"] = h;
    }
    let dir = runtime.dir_of(&r.id);
    let mut host_config = if r.config.host_config.is_object() {
        r.config.host_config.clone()
    } else {
        json!({})
    };
    fill_host_config_defaults(&mut host_config);
    host_config["RestartPolicy"] = json!({
        "Name": if r.config.restart_policy.name.is_empty() { "no" } else { r.config.restart_policy.name.as_str() },
        "MaximumRetryCount": r.config.restart_policy.maximum_retry_count,
    });
    host_config["AutoRemove"] = json!(r.config.auto_remove);
    host_config["Memory"] = json!(r.config.limits.memory.unwrap_or(0));
    host_config["PidsLimit"] = json!(r.config.limits.pids);
    host_config["NetworkMode"] = json!(r.config.networking.mode_text());
    host_config["Links"] = links_json(r);
    json!({
        "Id": r.id,
        "Created": r.created,
        "Path": r.path,
        "Args": r.args,
        "State": state,
        "Image": r.image_id,
        "ResolvConfPath": paths::container_file(&dir.root.join("resolv.conf"), &r.id, "resolv.conf"),
        "HostnamePath": paths::container_file(&dir.root.join("hostname"), &r.id, "hostname"),
        "HostsPath": paths::container_file(&dir.root.join("hosts"), &r.id, "hosts"),
        "LogPath": paths::container_file(
            &dir.root.join(crate::container::monitor::LOG_NAME),
            &r.id,
            &format!("{}-json.log", r.id),
        ),
        "Name": format!("/{}", r.name),
        "RestartCount": r.restart_count,
        "Driver": "overlay2",
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": null,
        "HostConfig": host_config,
        "GraphDriver": {"Name": "overlay2", "Data": {
            "UpperDir": paths::layer_dir(&dir.upper(), &r.id, "diff"),
            "WorkDir": paths::layer_dir(&dir.work(), &r.id, "work"),
            "MergedDir": paths::layer_dir(&dir.rootfs(), &r.id, "merged"),
        }},
        "Mounts": mounts_json(runtime, r),
        "Config": {
            "Hostname": r.hostname,
            "Domainname": "",
            "User": user,
            "AttachStdin": r.config.attach_stdin,
            "AttachStdout": r.config.attach_stdout,
            "AttachStderr": r.config.attach_stderr,
            "ExposedPorts": r.config.exposed_ports.iter().map(|p| (p.clone(), json!({}))).collect::<serde_json::Map<_, _>>(),
            "Tty": r.config.tty,
            "OpenStdin": r.config.open_stdin,
            "StdinOnce": r.config.stdin_once,
            "Env": env,
            "Cmd": cmd,
            "Image": r.config.image,
            "Volumes": null,
            "WorkingDir": workdir,
            "Entrypoint": entrypoint,
            "OnBuild": null,
            "Labels": labels(runtime, r),
            "StopSignal": r.config.stop_signal,
            "StopTimeout": r.config.stop_timeout,
            "Healthcheck": r.config.healthcheck,
        },
        "NetworkSettings": super::networks::network_settings(runtime, r, true),
    })
}

/// The memory and CPU fields of `HostConfig` as create and update carry
/// them (0: not given).
pub(super) struct CpuMemory {
    pub memory: i64,
    pub memory_swap: i64,
    pub nano_cpus: i64,
    pub cpu_quota: i64,
    pub cpu_period: i64,
    pub cpu_shares: i64,
}

impl CpuMemory {
    /// Sets on `limits` what was given, as dockerd reads these fields.
    pub(super) fn apply(&self, limits: &mut Limits) -> Result<(), ApiError> {
        if self.memory != 0 {
            limits.memory = Some(self.memory);
        }
        if self.memory_swap != 0 {
            limits.memory_swap = Some(self.memory_swap);
        }
        if self.nano_cpus != 0 {
            if self.nano_cpus < 0 {
                return Err(ApiError::bad_request(
                    "Range of CPUs is from 0.01 to the number of CPUs",
                ));
            }
            limits.cpu_period = Some(100_000);
            limits.cpu_quota = Some(self.nano_cpus / 10_000);
        }
        if self.cpu_quota != 0 {
            limits.cpu_quota = Some(self.cpu_quota);
        }
        if self.cpu_period != 0 {
            limits.cpu_period = Some(self.cpu_period as u64);
        }
        if self.cpu_shares > 0 {
            limits.cpu_shares = Some(self.cpu_shares as u64);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_docker_ps() {
        let s = |n| human_duration(Duration::from_secs(n));
        assert_eq!(
            human_duration(Duration::from_millis(300)),
            "Less than a second"
        );
        assert_eq!(s(1), "1 second");
        assert_eq!(s(5), "5 seconds");
        assert_eq!(s(65), "About a minute");
        assert_eq!(s(600), "10 minutes");
        assert_eq!(s(3600), "About an hour");
        assert_eq!(s(5 * 3600), "5 hours");
        assert_eq!(s(3 * 24 * 3600), "3 days");
    }

    #[test]
    fn binds_parse_and_refuse_like_docker() {
        match parse_bind("/src:/app:ro").unwrap() {
            MountConfig::Bind {
                read_only, target, ..
            } => {
                assert!(read_only);
                assert_eq!(target, "/app");
            }
            other => panic!("{other:?}"),
        }
        assert!(parse_bind("/a:b")
            .unwrap_err()
            .message
            .contains("must be absolute"));
        assert!(parse_bind("a:b:c:d")
            .unwrap_err()
            .message
            .contains("invalid volume specification"));
    }

    #[test]
    fn host_namespaces_and_devices_are_refused() {
        let req = |host: Value| CreateRequest {
            image: "busybox".into(),
            host_config: Some(host),
            ..Default::default()
        };
        for host in [
            json!({"IpcMode": "host"}),
            json!({"Devices": [{"PathOnHost": "/dev/sda"}]}),
        ] {
            let e = config_from_request(req(host.clone())).unwrap_err();
            assert_eq!(e.status, hyper::StatusCode::FORBIDDEN, "{host}");
        }
        // Kept for the runtime, which refuses them in a learner's scope.
        let privileged =
            config_from_request(req(json!({"Privileged": true, "PidMode": "host"}))).unwrap();
        assert!(privileged.privileged && privileged.pid_host);
        let ok =
            config_from_request(req(json!({"NanoCpus": 500_000_000, "Memory": 67108864}))).unwrap();
        assert_eq!(ok.limits.cpu_quota, Some(50_000));
        assert_eq!(ok.limits.memory, Some(64 << 20));
    }
}
