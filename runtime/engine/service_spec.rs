//! What dockerd does to a service spec before swarmkit stores it: keys
//! are read without case (Go's JSON decoder; docker-py sends
//! `{"order": …}` as the user wrote it), network names become IDs (a
//! client may send either; inspect shows IDs, as docker-py's tests and
//! `docker stack deploy` expect), and capability names are checked with
//! the container's own rules. Also the defaults swarmkit fills in for
//! `GET /services/{id}?insertDefaults=true`, and the wait before an
//! overlay network whose tasks are shutting down is removed.

use serde_json::{json, Value};

use super::http::ApiError;
use super::router::Ctx;

/// Resolves the networks of `spec` (`TaskTemplate.Networks`, and the
/// deprecated top-level `Networks`, which dockerd moves there) to IDs in
/// the request's scope.
fn resolve_networks(ctx: &Ctx, spec: &mut Value) -> Result<(), ApiError> {
    if let Some(legacy) = spec.as_object_mut().and_then(|s| s.remove("Networks")) {
        if let Some(t) = spec
            .pointer_mut("/TaskTemplate")
            .and_then(Value::as_object_mut)
        {
            if legacy.is_array() && t.get("Networks").is_none_or(Value::is_null) {
                t.insert("Networks".into(), legacy);
            }
        }
    }
    let Some(list) = spec
        .pointer_mut("/TaskTemplate/Networks")
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    for n in list {
        let target = n["Target"].as_str().unwrap_or("").to_string();
        if target.is_empty() {
            return Err(ApiError::bad_request(
                "rpc error: code = InvalidArgument desc = network target must be set",
            ));
        }
        let network = ctx
            .engine
            .runtime
            .net()
            .get(&ctx.scope.name, &target)
            .map_err(|_| ApiError::not_found(format!("network {target} not found")))?;
        n["Target"] = json!(network.id);
    }
    Ok(())
}

/// `--cap-add`/`--cap-drop` of a service: refused at create with the
/// container's words (`invalid CapAdd: unknown capability: "CAP_FOO"`).
fn check_capabilities(spec: &Value) -> Result<(), ApiError> {
    let cs = &spec["TaskTemplate"]["ContainerSpec"];
    let list = |key: &str| -> Vec<String> {
        cs[key]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    crate::container::capabilities::validate(&list("CapabilityAdd"), &list("CapabilityDrop"))
        .map_err(ApiError::bad_request)
}

/// Renames the keys of object `v` that match one of `proper` without case
/// to that spelling (a key already spelled right wins).
fn canonical_keys(v: &mut Value, proper: &[&str]) {
    let Some(obj) = v.as_object_mut() else {
        return;
    };
    for p in proper {
        let key = obj
            .keys()
            .find(|k| k.eq_ignore_ascii_case(p) && k.as_str() != *p)
            .cloned();
        if let Some(key) = key {
            if let Some(value) = obj.remove(&key) {
                obj.entry(*p).or_insert(value);
            }
        }
    }
}

const UPDATE_CONFIG: &[&str] = &[
    "Parallelism",
    "Delay",
    "FailureAction",
    "Monitor",
    "MaxFailureRatio",
    "Order",
];

fn canonical_spec(spec: &mut Value) {
    canonical_keys(
        spec,
        &[
            "Name",
            "Labels",
            "TaskTemplate",
            "Mode",
            "UpdateConfig",
            "RollbackConfig",
            "EndpointSpec",
        ],
    );
    for (at, keys) in [
        ("/UpdateConfig", UPDATE_CONFIG),
        ("/RollbackConfig", UPDATE_CONFIG),
        (
            "/TaskTemplate/RestartPolicy",
            &["Condition", "Delay", "MaxAttempts", "Window"][..],
        ),
        ("/EndpointSpec", &["Mode", "Ports"][..]),
    ] {
        if let Some(v) = spec.pointer_mut(at) {
            canonical_keys(v, keys);
        }
    }
}

/// Applies what dockerd applies to a spec given to create or update.
pub fn prepare(ctx: &Ctx, spec: &mut Value) -> Result<(), ApiError> {
    if !spec.is_object() {
        return Err(ApiError::bad_request(
            "invalid JSON: a service spec is an object",
        ));
    }
    canonical_spec(spec);
    resolve_networks(ctx, spec)?;
    check_capabilities(spec)
}

/// Fills what swarmkit's `defaults.Service` has into the parts of a
/// service's `Spec` that are missing (`insertDefaults=true`).
pub fn insert_defaults(spec: &mut Value) {
    fn fill(v: &mut Value, defaults: &Value) {
        let (Some(obj), Some(d)) = (v.as_object_mut(), defaults.as_object()) else {
            return;
        };
        for (k, dv) in d {
            match obj.get_mut(k) {
                Some(existing) if !existing.is_null() => fill(existing, dv),
                _ => {
                    obj.insert(k.clone(), dv.clone());
                }
            }
        }
    }
    let update = json!({
        "Parallelism": 1,
        "FailureAction": "pause",
        "Monitor": 5_000_000_000u64,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    });
    let defaults = json!({
        "TaskTemplate": {
            "ContainerSpec": {"StopGracePeriod": 10_000_000_000u64, "DNSConfig": {}},
            "Resources": {"Limits": {}, "Reservations": {}},
            "RestartPolicy": {"Condition": "any", "Delay": 5_000_000_000u64, "MaxAttempts": 0},
            "Placement": {},
        },
        "UpdateConfig": update,
        "RollbackConfig": update,
    });
    fill(spec, &defaults);
}

/// Before overlay network `key` is removed: task containers of services
/// that were just removed may still be attached while the reconcile loop
/// stops them (swarmkit removes the network regardless; here the bridge
/// goes with its last endpoint). Waits for them, a bounded time, as long
/// as every member is such a task container.
pub async fn settle_network_tasks(ctx: &Ctx, key: &str) {
    let runtime = ctx.engine.runtime.clone();
    let scope = ctx.scope.name.clone();
    let Ok(network) = runtime.net().get(&scope, key) else {
        return;
    };
    if !network.overlay {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let members = runtime.net().members(&network.id);
        let all_tasks = members.iter().all(|(id, _)| {
            runtime.get(&scope, id).is_ok_and(|c| {
                let r = c.snapshot();
                let service = r.config.labels.get("com.docker.swarm.service.id");
                let task = r.config.labels.get("com.docker.swarm.task.id");
                let state = ctx.engine.swarm.lock();
                let live = state.clusters.iter().any(|cl| {
                    cl.services.iter().any(|s| Some(&s.id) == service)
                        && cl
                            .tasks
                            .iter()
                            .any(|t| Some(&t.id) == task && t.desired == "running")
                });
                task.is_some() && !live
            })
        });
        if members.is_empty() || !all_tasks || std::time::Instant::now() > deadline {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
