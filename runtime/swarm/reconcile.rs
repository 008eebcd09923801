//! The reconcile loop: observes task containers, then plans and runs the
//! container work that makes every service's tasks match its spec.
//!
//! Each round takes the state lock only to observe and plan; container
//! create/start/stop/remove run outside it, and their results are written
//! back in one step.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::refs::PlannedFile;
use super::{nanos, new_id, Cluster, Placement, Swarms, Task, UpdateStatus};
use crate::container::config::MountConfig;
use crate::container::state::{now_rfc3339, Status};
use crate::container::Runtime;

/// Container work planned in a round.
#[derive(Debug, Clone)]
enum Action {
    Start {
        cluster: String,
        task: String,
        scope: String,
        name: String,
        create: Value,
        /// The task's secrets and configs, or why they cannot be had.
        files: Result<Vec<PlannedFile>, String>,
    },
    Stop {
        cluster: String,
        task: String,
        scope: String,
        container: String,
        grace: i64,
    },
    /// Run in order (stop-first or start-first replacement of one slot).
    Seq(Vec<Action>),
}

enum Outcome {
    Started {
        cluster: String,
        task: String,
        scope: String,
        /// The container and whether it has a healthcheck.
        container: Result<(String, bool), String>,
    },
    Stopped {
        cluster: String,
        task: String,
    },
}

/// Per-service progress of a rolling update (not persisted: a restarted
/// engine resumes with the next batch).
#[derive(Default)]
struct UpdateRun {
    /// Slots of the batch in flight.
    batch: Vec<u64>,
    next_at: Option<Instant>,
    /// Every task updated: the update completes when the last batch has
    /// run for the monitor period (swarmkit watches it that long).
    done_at: Option<Instant>,
}

pub async fn run(swarms: Arc<Swarms>, engine: Arc<crate::engine::Engine>) {
    let runtime = engine.runtime.clone();
    let mut runs: HashMap<String, UpdateRun> = HashMap::new();
    loop {
        let actions = {
            let mut state = swarms.lock();
            let mut actions = Vec::new();
            let mut changed = false;
            for cluster in state.clusters.iter_mut() {
                for n in cluster.nodes.iter_mut() {
                    let down = swarms.is_down(&n.scope);
                    changed |= n.down != down;
                    n.down = down;
                }
                changed |= observe(cluster, &runtime);
                changed |= plan(cluster, &mut runs, &mut actions);
            }
            if changed || !actions.is_empty() {
                swarms.save(&state);
            }
            (actions, super::mesh::wanted(&state))
        };
        let (actions, wanted) = actions;
        swarms.mesh.sync(wanted, &runtime);
        // Container work runs detached: a slow stop (grace period) never
        // holds up other services or the next round. Results are recorded
        // as they come, and wake the loop.
        for a in actions {
            let engine = engine.clone();
            let runtime = runtime.clone();
            let swarms = swarms.clone();
            tokio::spawn(async move {
                let outcomes = tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    execute(&engine, a, &mut out);
                    out
                })
                .await
                .unwrap_or_default();
                let orphans: Vec<(String, String)> = {
                    let mut state = swarms.lock();
                    let orphans = outcomes
                        .into_iter()
                        .filter_map(|o| record(&mut state.clusters, o))
                        .collect();
                    swarms.save(&state);
                    orphans
                };
                if !orphans.is_empty() {
                    let _ = tokio::task::spawn_blocking(move || {
                        for (scope, id) in orphans {
                            if let Ok(c) = runtime.get(&scope, &id) {
                                let _ = runtime.remove(&c, true);
                            }
                        }
                    })
                    .await;
                }
                swarms.wake.notify_one();
            });
        }
        let _ = tokio::time::timeout(Duration::from_millis(100), swarms.wake.notified()).await;
    }
}

fn execute(engine: &Arc<crate::engine::Engine>, action: Action, out: &mut Vec<Outcome>) {
    let runtime = &engine.runtime;
    match action {
        Action::Start {
            cluster,
            task,
            scope,
            name,
            create,
            files,
        } => {
            let container = files.and_then(|f| start_container(engine, &scope, &name, create, f));
            out.push(Outcome::Started {
                cluster,
                task,
                scope,
                container,
            });
        }
        Action::Stop {
            cluster,
            task,
            scope,
            container,
            grace,
        } => {
            if let Ok(c) = runtime.get(&scope, &container) {
                let _ = runtime.stop(&c, Some(grace));
                let _ = runtime.remove(&c, true);
            }
            out.push(Outcome::Stopped { cluster, task });
        }
        Action::Seq(list) => {
            for a in list {
                execute(engine, a, out);
            }
        }
    }
}

/// The reference of `image` this node has: as given, else without the
/// CLI's digest pin.
fn local_image(runtime: &Runtime, scope: &str, image: &str) -> Option<String> {
    if runtime.images().resolve(scope, image).is_ok() {
        return Some(image.to_string());
    }
    let (base, _) = image.split_once('@')?;
    runtime
        .images()
        .resolve(scope, base)
        .is_ok()
        .then(|| base.to_string())
}

fn start_container(
    engine: &Arc<crate::engine::Engine>,
    scope: &str,
    name: &str,
    mut create: Value,
    files: Vec<PlannedFile>,
) -> Result<(String, bool), String> {
    let runtime = &engine.runtime;
    // `name:tag@sha256:…` from the CLI's digest pinning; fall back to the
    // reference without the digest when only that is known locally. A node
    // that has neither pulls it, as each Swarm node does.
    if let Some(image) = create["Image"].as_str().map(String::from) {
        let local = match local_image(runtime, scope, &image) {
            Some(l) => Some(l),
            None => {
                // `name:tag@digest` is pulled by its tag, so the node
                // names it as the CLI does.
                let wanted = match image.split_once('@') {
                    Some((base, _)) if base.rsplit('/').next().unwrap_or("").contains(':') => base,
                    _ => image.as_str(),
                };
                let pulled = tokio::runtime::Handle::current().block_on(
                    crate::engine::distribution::pull_quietly(engine, scope, wanted),
                );
                if let Err(e) = &pulled {
                    tracing::info!(%scope, %image, error = %e, "task image pull failed");
                }
                local_image(runtime, scope, &image)
            }
        };
        match local {
            Some(l) => create["Image"] = json!(l),
            None => return Err(format!("No such image: {image}")),
        }
    }
    super::mesh::localize_networks(runtime, scope, &mut create)?;
    let request: crate::engine::convert::CreateRequest =
        serde_json::from_value(create).map_err(|e| e.to_string())?;
    let mut config =
        crate::engine::convert::config_from_request(request).map_err(|e| e.message.clone())?;
    for f in &files {
        config.mounts.push(MountConfig::TaskFile {
            file: f.name.clone(),
            target: f.target.clone(),
        });
    }
    let c = runtime
        .create(scope, Some(name), config)
        .map_err(|e| e.to_string())?;
    for f in &files {
        if let Err(e) = runtime.write_task_file(&c, &f.name, &f.file) {
            let _ = runtime.remove(&c, true);
            return Err(e.to_string());
        }
    }
    if let Err(e) = runtime.start(&c, None) {
        let _ = runtime.remove(&c, true);
        return Err(e.to_string());
    }
    let healthcheck = c.snapshot().state.health.is_some();
    Ok((c.id.clone(), healthcheck))
}

/// Writes a result into its task. A container started for a task that is
/// gone (its node or cluster removed meanwhile) is returned for removal.
fn record(clusters: &mut [Cluster], outcome: Outcome) -> Option<(String, String)> {
    let (cluster_id, task_id) = match &outcome {
        Outcome::Started { cluster, task, .. } | Outcome::Stopped { cluster, task } => {
            (cluster.clone(), task.clone())
        }
    };
    let orphan = match &outcome {
        Outcome::Started {
            scope,
            container: Ok((id, _)),
            ..
        } => Some((scope.clone(), id.clone())),
        _ => None,
    };
    let Some(cluster) = clusters.iter_mut().find(|c| c.id == cluster_id) else {
        return orphan;
    };
    let index = cluster.next_index();
    let Some(t) = cluster.tasks.iter_mut().find(|t| t.id == task_id) else {
        return orphan;
    };
    let now = now_rfc3339();
    match outcome {
        Outcome::Started { container, .. } => match container {
            Ok((id, healthcheck)) => {
                t.container_id = Some(id);
                // With a healthcheck the task runs once it is healthy.
                t.state = if healthcheck { "starting" } else { "running" }.into();
                t.message = "started".into();
            }
            Err(e) => {
                t.state = "rejected".into();
                t.message = "starting".into();
                t.err = e;
                t.desired = "shutdown".into();
            }
        },
        Outcome::Stopped { .. } => {
            if !matches!(t.state.as_str(), "failed" | "rejected" | "complete") {
                t.state = "shutdown".into();
                t.message = "shutdown".into();
            }
            t.container_id = None;
        }
    }
    t.timestamp = now.clone();
    t.updated_at = now;
    t.version = index;
    None
}

/// The exit code an unhealthy task's container is recorded with.
const UNHEALTHY: i64 = -2;

/// Marks tasks whose container is gone or has exited. Returns whether anything changed.
fn observe(cluster: &mut Cluster, runtime: &Runtime) -> bool {
    let scopes: HashMap<String, String> = cluster
        .nodes
        .iter()
        .map(|n| (n.id.clone(), n.scope.clone()))
        .collect();
    let mut changed = false;
    let mut updates = Vec::new();
    let mut healthy = Vec::new();
    for (i, t) in cluster.tasks.iter().enumerate() {
        // Tasks told to shut down are stopped on purpose: not a failure.
        if !matches!(t.state.as_str(), "running" | "starting") || t.desired != "running" {
            continue;
        }
        let (Some(cid), Some(scope)) = (&t.container_id, scopes.get(&t.node_id)) else {
            continue;
        };
        let code = match runtime.get(scope, cid) {
            Ok(c) => {
                let r = c.snapshot();
                let health = r.state.health.as_ref().map(|h| h.status.as_str());
                if matches!(r.state.status, Status::Exited | Status::Dead) {
                    Some(r.state.exit_code as i64)
                } else if health == Some("unhealthy") {
                    Some(UNHEALTHY)
                } else if t.state == "starting" && health != Some("starting") {
                    healthy.push(i);
                    None
                } else {
                    None
                }
            }
            Err(_) => Some(-1),
        };
        if let Some(code) = code {
            updates.push((i, code));
        }
    }
    for i in healthy {
        let index = cluster.next_index();
        let t = &mut cluster.tasks[i];
        let now = now_rfc3339();
        t.state = "running".into();
        t.timestamp = now.clone();
        t.updated_at = now;
        t.version = index;
        changed = true;
    }
    for (i, code) in updates {
        let index = cluster.next_index();
        let t = &mut cluster.tasks[i];
        let now = now_rfc3339();
        if code == UNHEALTHY {
            t.state = "failed".into();
            t.message = "started".into();
            t.err = "unhealthy container".into();
        } else if code == 0 {
            t.state = "complete".into();
            t.message = "finished".into();
        } else {
            t.state = "failed".into();
            t.message = "started".into();
            t.err = if code < 0 {
                "task: container removed".into()
            } else {
                format!("task: non-zero exit ({code})")
            };
        }
        t.exit_code = (code >= 0).then_some(code);
        t.desired = "shutdown".into();
        t.timestamp = now.clone();
        t.updated_at = now;
        t.version = index;
        changed = true;
    }
    changed
}

/// What to do next for every service of `cluster`.
fn plan(
    cluster: &mut Cluster,
    runs: &mut HashMap<String, UpdateRun>,
    out: &mut Vec<Action>,
) -> bool {
    let mut changed = false;
    let services: Vec<String> = cluster.services.iter().map(|s| s.id.clone()).collect();
    for sid in services {
        changed |= plan_service(cluster, &sid, runs.entry(sid.clone()).or_default(), out);
    }
    runs.retain(|k, _| cluster.services.iter().any(|s| &s.id == k) || !k.is_empty());
    // Tasks of removed services and tasks on nodes that left.
    let dead: Vec<usize> = cluster
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            (t.live() || (t.container_id.is_some() && t.message != "stopping"))
                && (!cluster.services.iter().any(|s| s.id == t.service_id)
                    || !cluster.nodes.iter().any(|n| n.id == t.node_id))
        })
        .map(|(i, _)| i)
        .collect();
    for i in dead {
        changed = true;
        if let Some(a) = shutdown(cluster, i) {
            out.push(a);
        }
    }
    cluster.tasks.retain(|t| {
        t.live()
            || t.container_id.is_some()
            || cluster.services.iter().any(|s| s.id == t.service_id)
    });
    changed
}

/// Sets task `i` to shut down; the action that stops its container.
fn shutdown(cluster: &mut Cluster, i: usize) -> Option<Action> {
    let index = cluster.next_index();
    let scope = cluster
        .nodes
        .iter()
        .find(|n| n.id == cluster.tasks[i].node_id)
        .map(|n| n.scope.clone());
    let t = &mut cluster.tasks[i];
    t.desired = "shutdown".into();
    t.version = index;
    let container = t.container_id.clone()?;
    t.message = "stopping".into();
    let grace = nanos(&t.spec["ContainerSpec"]["StopGracePeriod"], 10_000_000_000).as_secs() as i64;
    Some(Action::Stop {
        cluster: cluster.id.clone(),
        task: t.id.clone(),
        scope: scope?,
        container,
        grace,
    })
}

/// A new task for `slot` of service `sid` on `node` (state `assigned`) and
/// the action that starts it.
fn new_task(cluster: &mut Cluster, sid: &str, slot: u64, node: &str) -> Option<Action> {
    let service = cluster.services.iter().find(|s| s.id == sid)?.clone();
    let node = cluster.nodes.iter().find(|n| n.id == node)?.clone();
    let index = cluster.next_index();
    let now = now_rfc3339();
    let id = new_id();
    // Ingress ports are the routing mesh's; `mode=host` ports are published
    // by the task's own container on its node.
    let ports: Vec<Value> = service
        .ports()
        .into_iter()
        .filter(|p| p["PublishMode"].as_str() == Some("host"))
        .collect();
    let publishes = !ports.is_empty();
    let template = service.spec["TaskTemplate"].clone();
    let cs = &template["ContainerSpec"];
    let name = if slot > 0 {
        format!("{}.{}.{}", service.name(), slot, id)
    } else {
        format!("{}.{}.{}", service.name(), node.id, id)
    };
    let mut labels = cs["Labels"].as_object().cloned().unwrap_or_default();
    for (k, v) in [
        ("com.docker.swarm.service.id", service.id.as_str()),
        ("com.docker.swarm.service.name", service.name()),
        ("com.docker.swarm.task.id", id.as_str()),
        ("com.docker.swarm.task.name", &name[..name.len()]),
        ("com.docker.swarm.node.id", node.id.as_str()),
        ("com.docker.swarm.task", ""),
    ] {
        labels.insert(k.into(), json!(v));
    }
    let task_name = if slot > 0 {
        format!("{}.{}", service.name(), slot)
    } else {
        format!("{}.{}", service.name(), node.id)
    };
    labels.insert(
        "com.docker.swarm.task.name".into(),
        json!(format!("{task_name}.{id}")),
    );
    let mut host_config = json!({"Init": cs["Init"].as_bool().unwrap_or(false)});
    // `service create --cap-add/--cap-drop`: the container's own rules
    // (and a classroom's allowlist) apply when the task is created.
    for (from, to) in [("CapabilityAdd", "CapAdd"), ("CapabilityDrop", "CapDrop")] {
        if cs[from].is_array() {
            host_config[to] = cs[from].clone();
        }
    }
    if publishes {
        let mut bindings = serde_json::Map::new();
        for p in &ports {
            let key = format!(
                "{}/{}",
                p["TargetPort"].as_u64().unwrap_or(0),
                p["Protocol"].as_str().unwrap_or("tcp")
            );
            let published = p["PublishedPort"].as_u64().unwrap_or(0);
            let host_port = if published == 0 {
                String::new()
            } else {
                published.to_string()
            };
            bindings.insert(key, json!([{"HostIp": "", "HostPort": host_port}]));
        }
        host_config["PortBindings"] = Value::Object(bindings);
    }
    let mut create = json!({
        "Image": cs["Image"],
        "Labels": labels,
        "Tty": cs["TTY"].as_bool().unwrap_or(false),
        "OpenStdin": cs["OpenStdin"].as_bool().unwrap_or(false),
        "HostConfig": host_config,
    });
    for (from, to) in [
        ("Env", "Env"),
        ("Args", "Cmd"),
        ("Command", "Entrypoint"),
        ("Hostname", "Hostname"),
        ("User", "User"),
        ("Dir", "WorkingDir"),
        ("Healthcheck", "Healthcheck"),
        ("StopSignal", "StopSignal"),
    ] {
        if !cs[from].is_null() {
            create[to] = cs[from].clone();
        }
    }
    super::mesh::task_networks(service.name(), &template, &mut create);
    let files = super::refs::files(cluster, cs);
    cluster.tasks.push(Task {
        id: id.clone(),
        service_id: service.id.clone(),
        slot,
        node_id: node.id.clone(),
        generation: service.generation,
        spec: template,
        container_id: None,
        desired: "running".into(),
        state: "assigned".into(),
        message: "assigned".into(),
        err: String::new(),
        exit_code: None,
        created_at: now.clone(),
        updated_at: now.clone(),
        timestamp: now,
        version: index,
        publishes,
    });
    Some(Action::Start {
        cluster: cluster.id.clone(),
        task: id,
        scope: node.scope,
        name,
        create,
        files,
    })
}

fn restart_delay(template: &Value) -> Duration {
    nanos(&template["RestartPolicy"]["Delay"], 5_000_000_000)
}

fn plan_service(
    cluster: &mut Cluster,
    sid: &str,
    run: &mut UpdateRun,
    out: &mut Vec<Action>,
) -> bool {
    let Some(service) = cluster.services.iter().find(|s| s.id == sid).cloned() else {
        return false;
    };
    let mut changed = false;
    let now = Instant::now();
    // Desired slots: 1..=N, or one per active node (slot 0) for global services.
    let placement_nodes: Vec<String> = Placement::new(cluster)
        .nodes()
        .iter()
        .map(|n| n.id.clone())
        .collect();
    // Tasks to remove: slots beyond the count, tasks on nodes no longer eligible.
    let excess: Vec<usize> = cluster
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.service_id == sid && t.live())
        .filter(|(_, t)| match service.replicas() {
            Some(n) => t.slot > n || !placement_nodes.contains(&t.node_id),
            None => !placement_nodes.contains(&t.node_id),
        })
        .map(|(i, _)| i)
        .collect();
    for i in excess {
        changed = true;
        if let Some(a) = shutdown(cluster, i) {
            out.push(a);
        }
    }
    // Failed tasks whose container did not exit (unhealthy) or is gone:
    // stop and remove it. An exited task's container stays, as dockerd
    // keeps it (its logs are the service's) until the task leaves the
    // history ([`prune_history`]).
    let failed: Vec<usize> = cluster
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.service_id == sid
                && !t.live()
                && t.container_id.is_some()
                && t.exit_code.is_none()
                && t.message != "stopping"
                && t.desired == "shutdown"
                && matches!(t.state.as_str(), "failed" | "complete")
        })
        .map(|(i, _)| i)
        .collect();
    for i in failed {
        if let Some(a) = shutdown(cluster, i) {
            out.push(a);
        }
        cluster.tasks[i].container_id = None;
    }

    // Containers that came up after their task was told to shut down.
    let late: Vec<usize> = cluster
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.service_id == sid
                && t.desired == "shutdown"
                && t.state == "running"
                && t.container_id.is_some()
                && t.message != "stopping"
        })
        .map(|(i, _)| i)
        .collect();
    for i in late {
        if let Some(a) = shutdown(cluster, i) {
            out.push(a);
        }
    }

    // Missing slots get new tasks at the current generation.
    let slots: Vec<(u64, Option<String>)> = match service.replicas() {
        Some(n) => (1..=n).map(|s| (s, None)).collect(),
        None => placement_nodes
            .iter()
            .map(|n| (0, Some(n.clone())))
            .collect(),
    };
    for (slot, node) in slots {
        let has_live = cluster.tasks.iter().any(|t| {
            t.service_id == sid
                && t.live()
                && if slot > 0 {
                    t.slot == slot
                } else {
                    Some(&t.node_id) == node.as_ref()
                }
        });
        if has_live {
            continue;
        }
        // Restart delay after a failure in this slot.
        let last_failure = cluster
            .tasks
            .iter()
            .filter(|t| {
                t.service_id == sid
                    && t.slot == slot
                    && (slot > 0 || Some(&t.node_id) == node.as_ref())
                    && matches!(t.state.as_str(), "failed" | "rejected")
            })
            .filter_map(|t| humantime::parse_rfc3339(&t.timestamp).ok())
            .max();
        if let Some(at) = last_failure {
            let wait = restart_delay(&service.spec["TaskTemplate"]);
            if at.elapsed().map(|e| e < wait).unwrap_or(false) {
                continue;
            }
        }
        let target = match node {
            Some(n) => Some(n),
            None => Placement::new(cluster)
                .pick(&cluster.tasks, sid)
                .map(|n| n.id.clone()),
        };
        if let Some(node) = target {
            if let Some(a) = new_task(cluster, sid, slot, &node) {
                changed = true;
                out.push(a);
            }
        }
    }
    changed |= prune_history(cluster, &service, out);
    changed | plan_update(cluster, sid, run, now, out)
}

/// Drops finished tasks as swarmkit does: those of slots removed by a scale
/// down, and all but the newest `TaskHistoryRetentionLimit` of each slot.
/// A dropped task that still has its (exited) container gets it removed
/// first; its record goes in the round after.
fn prune_history(cluster: &mut Cluster, service: &super::Service, out: &mut Vec<Action>) -> bool {
    let limit = cluster.spec["Orchestration"]["TaskHistoryRetentionLimit"]
        .as_u64()
        .unwrap_or(5) as usize;
    let before = cluster.tasks.len();
    let sid = service.id.clone();
    let sid = sid.as_str();
    let finished = |t: &Task| t.service_id == sid && !t.live();
    let gone = |t: &Task| finished(t) && t.container_id.is_none();
    let mut remove_containers: Vec<String> = Vec::new();
    if let Some(n) = service.replicas() {
        remove_containers.extend(
            cluster
                .tasks
                .iter()
                .filter(|t| finished(t) && t.slot > n && t.container_id.is_some())
                .map(|t| t.id.clone()),
        );
        cluster.tasks.retain(|t| !(gone(t) && t.slot > n));
    }
    let mut per_slot: HashMap<(u64, String), Vec<(String, String)>> = HashMap::new();
    for t in cluster.tasks.iter().filter(|t| t.service_id == sid) {
        let node = if t.slot == 0 {
            t.node_id.clone()
        } else {
            String::new()
        };
        per_slot
            .entry((t.slot, node))
            .or_default()
            .push((t.created_at.clone(), t.id.clone()));
    }
    let mut drop_ids = Vec::new();
    for (_, mut list) in per_slot {
        if list.len() > limit {
            list.sort();
            let excess = list.len() - limit;
            drop_ids.extend(list.into_iter().take(excess).map(|(_, id)| id));
        }
    }
    remove_containers.extend(
        cluster
            .tasks
            .iter()
            .filter(|t| drop_ids.contains(&t.id) && finished(t) && t.container_id.is_some())
            .map(|t| t.id.clone()),
    );
    cluster
        .tasks
        .retain(|t| !(drop_ids.contains(&t.id) && gone(t)));
    let mut changed = cluster.tasks.len() != before;
    for id in remove_containers {
        let Some(i) = cluster.tasks.iter().position(|t| t.id == id) else {
            continue;
        };
        if cluster.tasks[i].message == "stopping" {
            continue;
        }
        changed = true;
        if let Some(a) = shutdown(cluster, i) {
            out.push(a);
        }
    }
    changed
}

/// One step of a rolling update (or rollback) of service `sid`.
fn plan_update(
    cluster: &mut Cluster,
    sid: &str,
    run: &mut UpdateRun,
    now: Instant,
    out: &mut Vec<Action>,
) -> bool {
    let Some(service) = cluster.services.iter().find(|s| s.id == sid).cloned() else {
        return false;
    };
    let rolling_back = service
        .update_status
        .as_ref()
        .map(|u| u.state.starts_with("rollback"))
        .unwrap_or(false);
    let config = if rolling_back {
        &service.spec["RollbackConfig"]
    } else {
        &service.spec["UpdateConfig"]
    };
    let parallelism = config["Parallelism"].as_u64().unwrap_or(1);
    let delay = nanos(&config["Delay"], 0);
    let monitor = nanos(&config["Monitor"], 5_000_000_000);
    let failure_action = config["FailureAction"]
        .as_str()
        .unwrap_or("pause")
        .to_string();
    let start_first = config["Order"].as_str() == Some("start-first");
    let status = service.update_status.as_ref().map(|u| u.state.as_str());
    let active = matches!(status, Some("updating") | Some("rollback_started"));

    // Out-of-date live tasks, by slot.
    let mut stale: Vec<(u64, String, usize)> = cluster
        .tasks
        .iter()
        .enumerate()
        .filter(|(_, t)| t.service_id == sid && t.live() && t.generation < service.generation)
        .map(|(i, t)| (t.slot, t.node_id.clone(), i))
        .collect();
    stale.sort();
    if !active {
        // Paused, or no update: out-of-date tasks stay as they are.
        run.batch.clear();
        run.done_at = None;
        return false;
    }
    // A batch in flight: done when its new tasks run; a failure within the
    // monitor window applies the failure action.
    let current = |t: &Task| t.service_id == sid && t.generation == service.generation;
    let failed_new = cluster.tasks.iter().find(|t| {
        current(t)
            && matches!(t.state.as_str(), "failed" | "rejected")
            && humantime::parse_rfc3339(&t.created_at)
                .ok()
                .and_then(|c| c.elapsed().ok())
                .map(|e| e < monitor + Duration::from_secs(1))
                .unwrap_or(false)
    });
    if let Some(t) = failed_new {
        let task_id = t.id.clone();
        match failure_action.as_str() {
            "continue" => {}
            "rollback" if !rolling_back => {
                start_rollback(
                    cluster,
                    sid,
                    "update rolled back due to failure or early termination of task",
                );
                run.batch.clear();
                run.next_at = None;
                run.done_at = None;
                return true;
            }
            _ => {
                let index = cluster.next_index();
                if let Some(s) = cluster.services.iter_mut().find(|s| s.id == sid) {
                    if let Some(u) = s.update_status.as_mut() {
                        u.state = if rolling_back {
                            "rollback_paused"
                        } else {
                            "paused"
                        }
                        .into();
                        u.message = format!(
                            "{} paused due to failure or early termination of task {task_id}",
                            if rolling_back { "rollback" } else { "update" }
                        );
                    }
                    s.version = index;
                }
                run.batch.clear();
                return true;
            }
        }
    }
    if !run.batch.is_empty() {
        let done = run.batch.iter().all(|slot| {
            cluster
                .tasks
                .iter()
                .any(|t| current(t) && t.slot == *slot && t.state == "running")
        });
        if !done {
            return false;
        }
        // start-first: the old task goes once the new one runs.
        let olds: Vec<usize> = cluster
            .tasks
            .iter()
            .enumerate()
            .filter(|(_, t)| {
                t.service_id == sid
                    && t.live()
                    && t.generation < service.generation
                    && run.batch.contains(&t.slot)
            })
            .map(|(i, _)| i)
            .collect();
        for i in olds {
            if let Some(a) = shutdown(cluster, i) {
                out.push(a);
            }
        }
        run.batch.clear();
        run.next_at = Some(now + delay);
        return true;
    }
    if run.next_at.map(|t| now < t).unwrap_or(false) {
        return false;
    }
    if stale.is_empty() {
        match run.done_at {
            None => {
                run.done_at = Some(now + monitor);
                return false;
            }
            Some(at) if now < at => return false,
            Some(_) => run.done_at = None,
        }
        let index = cluster.next_index();
        if let Some(s) = cluster.services.iter_mut().find(|s| s.id == sid) {
            if let Some(u) = s.update_status.as_mut() {
                u.state = if rolling_back {
                    "rollback_completed"
                } else {
                    "completed"
                }
                .into();
                u.completed_at = Some(now_rfc3339());
                u.message = if rolling_back {
                    "rollback completed"
                } else {
                    "update completed"
                }
                .into();
            }
            s.version = index;
        }
        run.next_at = None;
        return true;
    }
    run.done_at = None;
    let take = if parallelism == 0 {
        stale.len()
    } else {
        parallelism as usize
    };
    for (slot, node, i) in stale.into_iter().take(take) {
        let stop = if start_first {
            None
        } else {
            shutdown(cluster, i)
        };
        let start = new_task(cluster, sid, slot, &node);
        run.batch.push(slot);
        let seq: Vec<Action> = stop.into_iter().chain(start).collect();
        out.push(Action::Seq(seq));
    }
    true
}

/// Swaps the service back to its previous spec and starts rolling back.
pub fn start_rollback(cluster: &mut Cluster, sid: &str, message: &str) {
    let index = cluster.next_index();
    let Some(s) = cluster.services.iter_mut().find(|s| s.id == sid) else {
        return;
    };
    let Some(previous) = s.previous_spec.take() else {
        return;
    };
    let current = std::mem::replace(&mut s.spec, previous);
    s.previous_spec = Some(current);
    s.generation += 1;
    s.version = index;
    s.updated_at = now_rfc3339();
    s.update_status = Some(UpdateStatus {
        state: "rollback_started".into(),
        started_at: now_rfc3339(),
        completed_at: None,
        message: message.into(),
    });
}
