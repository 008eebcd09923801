//! Swarm routes: `/swarm`, `/nodes`, `/services`, `/tasks`, answering the
//! real CLI's `swarm`, `node` and `service` commands (engine-api.md §2.24–2.30).
//! The state and the reconcile loop live in [`crate::swarm`].

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use super::http::{json, read_body, ApiError, ApiResult, Reply};
use super::router::{no_content, Ctx};
use crate::container::state::now_rfc3339;
use crate::swarm::{new_id, Cluster, Service, SwarmError, Task, UpdateStatus};

impl From<SwarmError> for ApiError {
    fn from(e: SwarmError) -> Self {
        let status = match &e {
            SwarmError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            SwarmError::NotFound(_) => StatusCode::NOT_FOUND,
            SwarmError::Conflict(_) => StatusCode::CONFLICT,
            SwarmError::Invalid(_) => StatusCode::BAD_REQUEST,
            SwarmError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

async fn body_json(req: Request<Incoming>) -> Result<Value, ApiError> {
    let body = read_body(req.into_body(), 4 << 20).await?;
    if body.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// The scope's host namespace when it is a classroom node's.
fn node_netns(ctx: &Ctx) -> Option<std::path::PathBuf> {
    ctx.engine
        .runtime
        .scope_settings(&ctx.scope.name)
        .and_then(|s| s.host_netns)
}

fn hostname(ctx: &Ctx) -> String {
    if node_netns(ctx).is_some() {
        return crate::swarm::rpc::node_of(&ctx.scope.name).to_string();
    }
    if ctx.scope.name == "host" || ctx.scope.name.starts_with('t') {
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| ctx.scope.name.clone())
    } else {
        ctx.scope.name.clone()
    }
}

fn swarms(ctx: &Ctx) -> &std::sync::Arc<crate::swarm::Swarms> {
    ctx.engine.swarm.start(&ctx.engine);
    &ctx.engine.swarm
}

/// Reads the cluster of the request's scope.
fn read<T>(ctx: &Ctx, f: impl FnOnce(&Cluster) -> Result<T, ApiError>) -> Result<T, ApiError> {
    let state = swarms(ctx).lock();
    let i = state
        .cluster_of(&ctx.scope.name)
        .ok_or_else(|| ApiError::from(SwarmError::Unavailable(crate::swarm::NOT_MANAGER.into())))?;
    if state.clusters[i]
        .node_of_scope(&ctx.scope.name)
        .map(|n| n.role != "manager")
        .unwrap_or(true)
    {
        return Err(SwarmError::Unavailable(crate::swarm::WORKER_NODE.into()).into());
    }
    f(&state.clusters[i])
}

/// The `Swarm` header of `/_ping`.
pub fn ping(ctx: &Ctx, mut reply: Reply) -> Reply {
    let state = ctx.engine.swarm.lock();
    let value = match state.cluster_of(&ctx.scope.name) {
        Some(i) => match state.clusters[i].node_of_scope(&ctx.scope.name) {
            Some(n) if n.role == "manager" => "active/manager",
            _ => "active/worker",
        },
        None => "inactive",
    };
    reply
        .headers_mut()
        .insert("Swarm", HeaderValue::from_static(value));
    reply
}

/// The `Swarm` section of `/info`.
pub fn info(ctx: &Ctx) -> Value {
    let state = ctx.engine.swarm.lock();
    let Some(i) = state.cluster_of(&ctx.scope.name) else {
        return json!({"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive", "ControlAvailable": false, "Error": "", "RemoteManagers": null});
    };
    let c = &state.clusters[i];
    let node = c.node_of_scope(&ctx.scope.name).expect("member");
    let managers: Vec<Value> = c
        .nodes
        .iter()
        .filter(|n| n.role == "manager" && !n.left)
        .map(|n| json!({"NodeID": n.id, "Addr": format!("{}:2377", n.addr)}))
        .collect();
    let manager = node.role == "manager";
    let mut v = json!({
        "NodeID": node.id,
        "NodeAddr": node.addr,
        "LocalNodeState": "active",
        "ControlAvailable": manager,
        "Error": "",
        "RemoteManagers": managers,
        "Nodes": c.nodes.len(),
        "Managers": managers.len(),
    });
    if manager {
        v["Cluster"] = cluster_json(c);
    }
    v
}

fn cluster_json(c: &Cluster) -> Value {
    json!({
        "ID": c.id,
        "Version": {"Index": c.index},
        "CreatedAt": c.created_at,
        "UpdatedAt": c.updated_at,
        "Spec": c.spec,
        "TLSInfo": {"TrustRoot": "", "CertIssuerSubject": "", "CertIssuerPublicKey": ""},
        "RootRotationInProgress": false,
        "DefaultAddrPool": if c.default_addr_pool.is_empty() { vec!["10.0.0.0/8".to_string()] } else { c.default_addr_pool.clone() },
        "SubnetSize": if c.subnet_size == 0 { 24 } else { c.subnet_size },
        "DataPathPort": if c.data_path_port == 0 { 4789 } else { c.data_path_port },
    })
}

/// `GET /swarm`.
pub fn inspect(ctx: &Ctx) -> ApiResult {
    read(ctx, |c| {
        let mut v = cluster_json(c);
        v["JoinTokens"] = json!({"Worker": c.worker_token, "Manager": c.manager_token});
        Ok(json(StatusCode::OK, &v))
    })
}

/// `GET /swarm/unlockkey`: empty while autolock is off, as dockerd.
pub fn unlock_key(ctx: &Ctx) -> ApiResult {
    read(ctx, |c| {
        Ok(json(StatusCode::OK, &json!({"UnlockKey": c.unlock_key})))
    })
}

/// `POST /swarm/init`: 200 with the node ID as a JSON string.
pub async fn init(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let body = body_json(req).await?;
    let advertise = body["AdvertiseAddr"].as_str().unwrap_or("");
    let addr = advertise
        .rsplit_once(':')
        .map(|(h, _)| h)
        .unwrap_or(advertise);
    let own = own_addr(ctx);
    let addr = match addr {
        "" => own.clone().unwrap_or_else(|| "127.0.0.1".into()),
        a if a.parse::<std::net::Ipv4Addr>().is_err() && own.is_some() => {
            own.clone().unwrap_or_default()
        }
        a => a.to_string(),
    };
    let swarms = swarms(ctx);
    if swarms.lock().cluster_of(&ctx.scope.name).is_some() {
        return Err(SwarmError::Unavailable(crate::swarm::ALREADY_MEMBER.into()).into());
    }
    // A node of a session serves the join RPC on node:2377.
    if let Some(ns) = node_netns(ctx) {
        swarms.listen(&ctx.scope.name, &ns).map_err(|e| {
            ApiError::internal(format!(
                "listen tcp 0.0.0.0:{}: {e}",
                crate::swarm::rpc::PORT
            ))
        })?;
    }
    let pool: Vec<String> = body["DefaultAddrPool"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    if pool.len() > 64
        || pool
            .iter()
            .any(|p| p.parse::<crate::net::Subnet>().is_err())
    {
        return Err(ApiError::bad_request(format!(
            "invalid default address pool {pool:?}"
        )));
    }
    let subnet_size = body["SubnetSize"].as_u64().unwrap_or(0);
    if subnet_size > 29 {
        return Err(ApiError::bad_request(format!(
            "invalid subnet mask length {subnet_size}: it must be at most 29"
        )));
    }
    let port = body["DataPathPort"].as_u64().unwrap_or(0);
    if port != 0 && !(1024..=49151).contains(&port) {
        return Err(ApiError::bad_request(format!(
            "data path port {port} is outside 1024 to 49151"
        )));
    }
    let id = swarms
        .init(&ctx.scope.name, &hostname(ctx), &addr, body["Spec"].clone())
        .inspect_err(|_| swarms.unlisten(&ctx.scope.name))?;
    swarms.with_cluster(&ctx.scope.name, |c| {
        c.default_addr_pool = pool;
        c.subnet_size = subnet_size as u32;
        c.data_path_port = port as u32;
        if c.spec["EncryptionConfig"]["AutoLockManagers"] == true {
            c.unlock_key = crate::swarm::new_unlock_key();
        }
        Ok(())
    })?;
    ingress(ctx, true).await;
    Ok(json(StatusCode::OK, &json!(id)))
}

/// The routing mesh's `ingress` overlay network, which dockerd makes on
/// `swarm init` and drops on leave. Berth's mesh does not route through
/// it; it is there as clients expect it (docker-py removes and remakes
/// it). A failure (a namesake exists, no subnet left) is logged only.
async fn ingress(ctx: &Ctx, make: bool) {
    let runtime = ctx.engine.runtime.clone();
    let scope = ctx.scope.name.clone();
    let _ = super::containers::blocking(move || {
        let net = runtime.net();
        if make {
            let request = crate::net::NetworkRequest {
                name: "ingress".into(),
                driver: "overlay".into(),
                ingress: true,
                ..Default::default()
            };
            if let Err(e) = net.create(&scope, request) {
                tracing::info!(%scope, error = %e, "no ingress network");
            }
        } else {
            for n in net.list(&scope).unwrap_or_default() {
                if n.ingress {
                    let _ = net.remove(&scope, &n.id);
                }
            }
        }
        Ok(())
    })
    .await;
}

/// The scope's address on its session network, for a classroom node.
fn own_addr(ctx: &Ctx) -> Option<String> {
    node_netns(ctx)?;
    crate::session::network::address_of(&hostname(ctx)).map(|a| a.to_string())
}

/// `POST /swarm/join`.
pub async fn join(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let body = body_json(req).await?;
    let remote: Vec<String> = body["RemoteAddrs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    let token = body["JoinToken"].as_str().unwrap_or("").to_string();
    let swarms = swarms(ctx).clone();
    match node_netns(ctx) {
        // A node of a session asks the manager over the session network.
        Some(ns) => {
            let (scope, host) = (ctx.scope.name.clone(), hostname(ctx));
            let addr = own_addr(ctx).unwrap_or_default();
            let joiner = swarms.clone();
            let (scope2, ns2) = (scope.clone(), ns.clone());
            tokio::task::spawn_blocking(move || {
                joiner.join_remote(&scope2, &ns2, &host, &addr, &remote, &token)
            })
            .await
            .map_err(|e| ApiError::internal(e.to_string()))??;
            // A manager answers joins too.
            let manager = {
                let state = swarms.lock();
                state
                    .cluster_of(&scope)
                    .and_then(|i| {
                        state.clusters[i]
                            .node_of_scope(&scope)
                            .map(|n| n.role == "manager")
                    })
                    .unwrap_or(false)
            };
            if manager {
                if let Err(e) = swarms.listen(&scope, &ns) {
                    tracing::warn!(%scope, error = %e, "swarm join RPC cannot listen");
                }
            }
        }
        None => swarms.join(&ctx.scope.name, &hostname(ctx), &remote, &token)?,
    }
    Ok(json(StatusCode::OK, &json!({})))
}

/// `POST /swarm/leave?force=`: the scope's task containers go too.
pub async fn leave(ctx: &Ctx) -> ApiResult {
    let containers = swarms(ctx).leave(&ctx.scope.name, ctx.query.flag("force"))?;
    let runtime = ctx.engine.runtime.clone();
    super::containers::blocking(move || {
        for (scope, id) in containers {
            if let Ok(c) = runtime.get(&scope, &id) {
                let _ = runtime.remove(&c, true);
            }
        }
        Ok(())
    })
    .await?;
    ingress(ctx, false).await;
    Ok(json(StatusCode::OK, &json!({})))
}

/// `POST /swarm/update`: only labels and task history are kept.
pub async fn update(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let body = body_json(req).await?;
    let version = ctx.query.int("version")?.unwrap_or(0) as u64;
    swarms(ctx).with_cluster(&ctx.scope.name, |c| {
        if version != c.index {
            return Err(SwarmError::Internal(
                "rpc error: code = Unknown desc = update out of sequence".into(),
            ));
        }
        if body.is_object() {
            c.spec = body.clone();
        }
        let autolock = c.spec["EncryptionConfig"]["AutoLockManagers"] == true;
        if !autolock {
            c.unlock_key.clear();
        } else if c.unlock_key.is_empty() || ctx.query.flag("rotateManagerUnlockKey") {
            c.unlock_key = crate::swarm::new_unlock_key();
        }
        if ctx.query.flag("rotateWorkerToken") {
            c.worker_token = rotate(&c.worker_token);
        }
        if ctx.query.flag("rotateManagerToken") {
            c.manager_token = rotate(&c.manager_token);
        }
        c.updated_at = now_rfc3339();
        c.next_index();
        Ok(())
    })?;
    Ok(json(StatusCode::OK, &json!({})))
}

fn rotate(token: &str) -> String {
    let prefix = token.rsplit_once('-').map(|(p, _)| p).unwrap_or("SWMTKN-1");
    format!("{prefix}-{}", new_id())
}

fn node_json(c: &Cluster, n: &crate::swarm::Node) -> Value {
    let mut v = json!({
        "ID": n.id,
        "Version": {"Index": n.version},
        "CreatedAt": n.created_at,
        "UpdatedAt": n.updated_at,
        "Spec": {"Labels": n.labels, "Role": n.role, "Availability": n.availability},
        "Description": {
            "Hostname": n.hostname,
            "Platform": {"Architecture": std::env::consts::ARCH, "OS": "linux"},
            "Resources": {"NanoCPUs": 2_000_000_000u64, "MemoryBytes": 2_000_000_000u64},
            "Engine": {"EngineVersion": "28.2.2", "Plugins": [{"Type": "Log", "Name": "json-file"}, {"Type": "Network", "Name": "bridge"}, {"Type": "Network", "Name": "overlay"}, {"Type": "Volume", "Name": "local"}]},
            "TLSInfo": {"TrustRoot": "", "CertIssuerSubject": "", "CertIssuerPublicKey": ""},
        },
        "Status": {"State": if n.is_down() { "down" } else { "ready" }, "Addr": n.addr},
    });
    if n.role == "manager" {
        v["ManagerStatus"] = json!({"Leader": n.leader, "Reachability": if n.is_down() { "unreachable" } else { "reachable" }, "Addr": format!("{}:2377", n.addr)});
    }
    let _ = c;
    v
}

/// `GET /nodes?filters=`.
pub fn nodes(ctx: &Ctx) -> ApiResult {
    let filters = ctx.query.filters()?;
    read(ctx, |c| {
        let list: Vec<Value> = c
            .nodes
            .iter()
            .filter(|n| {
                let f = |k: &str, v: &str| {
                    let want = filters.values(k);
                    want.is_empty() || want.iter().any(|w| v.starts_with(w.as_str()))
                };
                f("id", &n.id) && f("name", &n.hostname) && f("role", &n.role)
            })
            .map(|n| node_json(c, n))
            .collect();
        Ok(json(StatusCode::OK, &Value::Array(list)))
    })
}

/// `GET /nodes/{id}`.
pub fn node(ctx: &Ctx, id: &str) -> ApiResult {
    read(ctx, |c| {
        Ok(json(StatusCode::OK, &node_json(c, c.find_node(id)?)))
    })
}

/// `POST /nodes/{id}/update?version=`: availability, role, labels.
pub async fn node_update(ctx: &Ctx, id: &str, req: Request<Incoming>) -> ApiResult {
    let body = body_json(req).await?;
    let version = ctx.query.int("version")?.unwrap_or(0) as u64;
    swarms(ctx).with_cluster(&ctx.scope.name, |c| {
        let nid = c.find_node(id)?.id.clone();
        let index = c.next_index();
        let n = c.nodes.iter_mut().find(|n| n.id == nid).expect("found");
        if version != n.version {
            return Err(SwarmError::Internal(
                "rpc error: code = Unknown desc = update out of sequence".into(),
            ));
        }
        if let Some(a) = body["Availability"].as_str() {
            if !["active", "pause", "drain"].contains(&a) {
                return Err(SwarmError::Invalid(format!("invalid Availability: {a}")));
            }
            n.availability = a.into();
        }
        if let Some(r) = body["Role"].as_str() {
            n.role = r.into();
        }
        if body["Labels"].is_object() {
            n.labels = body["Labels"].clone();
        }
        n.version = index;
        n.updated_at = now_rfc3339();
        Ok(())
    })?;
    Ok(json(StatusCode::OK, &json!({})))
}

/// `DELETE /nodes/{id}?force=`.
pub fn node_remove(ctx: &Ctx, id: &str) -> ApiResult {
    let force = ctx.query.flag("force");
    swarms(ctx).with_cluster(&ctx.scope.name, |c| {
        let n = c.find_node(id)?.clone();
        if n.role == "manager" {
            return Err(SwarmError::Invalid(format!(
                "rpc error: code = FailedPrecondition desc = node {} is a cluster manager and is a member of the raft cluster. It must be demoted to worker before removal",
                n.id
            )));
        }
        if !force && !n.is_down() {
            return Err(SwarmError::Invalid(format!(
                "rpc error: code = FailedPrecondition desc = node {} is not down and can't be removed",
                n.id
            )));
        }
        c.nodes.retain(|x| x.id != n.id);
        Ok(())
    })?;
    Ok(json(StatusCode::OK, &json!({})))
}

fn service_json(c: &Cluster, s: &Service, status: bool) -> Value {
    let ports = s.ports();
    let mut v = json!({
        "ID": s.id,
        "Version": {"Index": s.version},
        "CreatedAt": s.created_at,
        "UpdatedAt": s.updated_at,
        "Spec": s.spec,
        "Endpoint": {"Spec": s.spec["EndpointSpec"].clone(), "Ports": if ports.is_empty() { Value::Null } else { json!(ports) }},
    });
    if v["Endpoint"]["Spec"].is_null() {
        v["Endpoint"]["Spec"] = json!({"Mode": "vip"});
    }
    // swarmkit always has the counter (`docker service update --force`
    // raises it): 0 when the client never set it.
    if let Some(t) = v["Spec"]["TaskTemplate"].as_object_mut() {
        t.entry("ForceUpdate").or_insert(json!(0));
    }
    if let Some(p) = &s.previous_spec {
        v["PreviousSpec"] = p.clone();
    }
    if let Some(u) = &s.update_status {
        let mut status = json!({"State": u.state, "StartedAt": u.started_at, "Message": u.message});
        if let Some(done) = &u.completed_at {
            status["CompletedAt"] = json!(done);
        }
        v["UpdateStatus"] = status;
    }
    if status {
        let running = c
            .tasks
            .iter()
            .filter(|t| t.service_id == s.id && t.state == "running" && t.desired == "running")
            .count();
        let desired = match s.replicas() {
            Some(n) => n as usize,
            None => c
                .nodes
                .iter()
                .filter(|n| n.availability == "active" && !n.is_down())
                .count(),
        };
        v["ServiceStatus"] =
            json!({"RunningTasks": running, "DesiredTasks": desired, "CompletedTasks": 0});
    }
    v
}

/// `GET /services?filters=&status=`.
pub fn services(ctx: &Ctx) -> ApiResult {
    let filters = ctx.query.filters()?;
    filters.only(&["id", "name", "label", "mode"])?;
    let status = ctx.query.flag("status");
    read(ctx, |c| {
        let list: Vec<Value> = c
            .services
            .iter()
            .filter(|s| {
                let ids = filters.values("id");
                let names = filters.values("name");
                let modes = filters.values("mode");
                (ids.is_empty() || ids.iter().any(|i| s.id.starts_with(i.as_str())))
                    && (names.is_empty() || names.iter().any(|n| s.name().starts_with(n.as_str())))
                    && (modes.is_empty()
                        || modes
                            .iter()
                            .any(|m| (m == "global") == s.replicas().is_none()))
            })
            .map(|s| service_json(c, s, status))
            .collect();
        Ok(json(StatusCode::OK, &Value::Array(list)))
    })
}

/// `GET /services/{id}`.
pub fn service(ctx: &Ctx, id: &str) -> ApiResult {
    let defaults = ctx.query.get("insertDefaults").is_some() && ctx.query.flag("insertDefaults");
    read(ctx, |c| {
        let i = c.find_service(id)?;
        let mut v = service_json(c, &c.services[i], false);
        if defaults {
            super::service_spec::insert_defaults(&mut v["Spec"]);
        }
        Ok(json(StatusCode::OK, &v))
    })
}

fn check_spec(spec: &Value) -> Result<(), SwarmError> {
    let name = spec["Name"].as_str().unwrap_or("");
    if !name.is_empty()
        && !name
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        return Err(SwarmError::Invalid(
            "rpc error: code = InvalidArgument desc = name must be valid as a DNS name component"
                .into(),
        ));
    }
    if spec["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap_or("")
        .is_empty()
    {
        return Err(SwarmError::Invalid(
            "rpc error: code = InvalidArgument desc = ContainerSpec: image reference must be provided".into(),
        ));
    }
    Ok(())
}

/// `POST /services/create`: 201 `{"ID"}`.
/// Docker's names for the keys of a service's `Mode`, which dockerd's
/// decoder matches without case (docker-py sends `{"replicated": …}`).
fn normalize_mode(spec: &mut Value) {
    let Some(mode) = spec.get_mut("Mode").and_then(Value::as_object_mut) else {
        return;
    };
    for proper in ["Replicated", "Global", "ReplicatedJob", "GlobalJob"] {
        let key = mode
            .keys()
            .find(|k| k.replace('-', "").eq_ignore_ascii_case(proper) && k.as_str() != proper)
            .cloned();
        if let Some(key) = key {
            if let Some(v) = mode.remove(&key) {
                mode.entry(proper).or_insert(v);
            }
        }
    }
}

pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let mut spec = body_json(req).await?;
    normalize_mode(&mut spec);
    super::service_spec::prepare(ctx, &mut spec)?;
    check_spec(&spec)?;
    let id = swarms(ctx).with_cluster(&ctx.scope.name, |c| {
        crate::swarm::refs::check(c, &spec)?;
        let name = spec["Name"].as_str().unwrap_or("").to_string();
        let name = if name.is_empty() {
            let n = crate::container::names::generate(|n| c.services.iter().any(|s| s.name() == n));
            spec["Name"] = json!(n);
            n
        } else {
            name
        };
        if c.services.iter().any(|s| s.name() == name) {
            return Err(SwarmError::Conflict(
                "rpc error: code = AlreadyExists desc = name conflicts with an existing object"
                    .into(),
            ));
        }
        if spec["Mode"].is_null()
            || spec["Mode"]
                .as_object()
                .map(|m| m.is_empty())
                .unwrap_or(false)
        {
            spec["Mode"] = json!({"Replicated": {"Replicas": 1}});
        }
        // `service create` without `--replicas` sends `{"Replicated":{}}`.
        if spec["Mode"]["Replicated"].is_object()
            && spec["Mode"]["Replicated"]["Replicas"].is_null()
        {
            spec["Mode"]["Replicated"]["Replicas"] = json!(1);
        }
        crate::swarm::mesh::claim_ports(c, None, &mut spec)?;
        let now = now_rfc3339();
        let version = c.next_index();
        let id = new_id();
        c.services.push(Service {
            id: id.clone(),
            version,
            created_at: now.clone(),
            updated_at: now,
            spec: spec.clone(),
            previous_spec: None,
            generation: 1,
            update_status: None,
        });
        Ok(id)
    })?;
    Ok(json(
        StatusCode::CREATED,
        &json!({"ID": id, "Warnings": null}),
    ))
}

/// `POST /services/{id}/update?version=&rollback=`.
pub async fn update_service(ctx: &Ctx, id: &str, req: Request<Incoming>) -> ApiResult {
    let mut spec = body_json(req).await?;
    normalize_mode(&mut spec);
    let rollback_only = ctx.query.get("rollback") == Some("previous");
    if !rollback_only {
        super::service_spec::prepare(ctx, &mut spec)?;
    }
    let version = ctx.query.int("version")?;
    let rollback = ctx.query.get("rollback") == Some("previous");
    swarms(ctx).with_cluster(&ctx.scope.name, |c| {
        let i = c.find_service(id)?;
        let version = version.ok_or_else(|| {
            SwarmError::Invalid("invalid service version: version is required".into())
        })?;
        if version as u64 != c.services[i].version {
            return Err(SwarmError::Internal(
                "rpc error: code = Unknown desc = update out of sequence".into(),
            ));
        }
        let sid = c.services[i].id.clone();
        if rollback {
            if c.services[i].previous_spec.is_none() {
                return Err(SwarmError::Invalid(format!(
                    "rpc error: code = FailedPrecondition desc = service {sid} does not have a previous spec"
                )));
            }
            crate::swarm::reconcile::start_rollback(c, &sid, "manually requested rollback");
            return Ok(());
        }
        check_spec(&spec)?;
        crate::swarm::refs::check(c, &spec)?;
        crate::swarm::mesh::claim_ports(c, Some(&sid), &mut spec)?;
        let old = &c.services[i];
        if spec["Name"].as_str().unwrap_or("") != old.name() {
            return Err(SwarmError::Invalid(
                "rpc error: code = Unimplemented desc = renaming services is not supported".into(),
            ));
        }
        if (spec["Mode"].get("Global").is_some()) != old.replicas().is_none() {
            return Err(SwarmError::Invalid(
                "rpc error: code = Unimplemented desc = service mode change is not allowed".into(),
            ));
        }
        let template_changed = spec["TaskTemplate"] != old.spec["TaskTemplate"]
            || spec["EndpointSpec"] != old.spec["EndpointSpec"];
        let index = c.next_index();
        let s = &mut c.services[i];
        let previous = std::mem::replace(&mut s.spec, spec.clone());
        s.previous_spec = Some(previous);
        s.version = index;
        s.updated_at = now_rfc3339();
        if template_changed {
            s.generation += 1;
            s.update_status = Some(UpdateStatus {
                state: "updating".into(),
                started_at: now_rfc3339(),
                completed_at: None,
                message: "update in progress".into(),
            });
        }
        Ok(())
    })?;
    Ok(json(StatusCode::OK, &json!({"Warnings": null})))
}

/// `DELETE /services/{id}`: its tasks shut down (containers removed by the loop).
pub fn remove_service(ctx: &Ctx, id: &str) -> ApiResult {
    swarms(ctx).with_cluster(&ctx.scope.name, |c| {
        let i = c.find_service(id)?;
        c.services.remove(i);
        Ok(())
    })?;
    Ok(no_content())
}

fn task_json(c: &Cluster, t: &Task) -> Value {
    let mut status = json!({
        "Timestamp": t.timestamp,
        "State": t.state,
        "Message": t.message,
        "PortStatus": {},
    });
    if !t.err.is_empty() {
        status["Err"] = json!(t.err);
    }
    if let Some(cid) = &t.container_id {
        status["ContainerStatus"] =
            json!({"ContainerID": cid, "PID": 0, "ExitCode": t.exit_code.unwrap_or(0)});
    }
    let service = c.services.iter().find(|s| s.id == t.service_id);
    let mut v = json!({
        "ID": t.id,
        "Version": {"Index": t.version},
        "CreatedAt": t.created_at,
        "UpdatedAt": t.updated_at,
        "Labels": {},
        "Spec": t.spec,
        "ServiceID": t.service_id,
        "NodeID": t.node_id,
        "Status": status,
        "DesiredState": t.desired,
    });
    if t.slot > 0 {
        v["Slot"] = json!(t.slot);
    }
    if let Some(s) = service {
        v["ServiceAnnotations"] = json!({"Name": s.name()});
    }
    v
}

/// `GET /tasks?filters=`: `service` (ID or name), `node`, `desired-state`,
/// `id`, `name` and the CLI's `_up-to-date`.
pub fn tasks(ctx: &Ctx) -> ApiResult {
    let filters = ctx.query.filters()?;
    filters.only(&[
        "id",
        "name",
        "service",
        "node",
        "desired-state",
        "label",
        "_up-to-date",
    ])?;
    for d in filters.values("desired-state") {
        if !["running", "shutdown", "accepted"].contains(&d.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Invalid desired-state filter '{d}'"
            )));
        }
    }
    read(ctx, |c| {
        let services: Vec<String> = filters
            .values("service")
            .iter()
            .filter_map(|k| c.find_service(k).ok().map(|i| c.services[i].id.clone()))
            .collect();
        if !filters.values("service").is_empty() && services.is_empty() {
            return Ok(json(StatusCode::OK, &json!([])));
        }
        let nodes: Vec<String> = filters
            .values("node")
            .iter()
            .filter_map(|k| c.find_node(k).ok().map(|n| n.id.clone()))
            .collect();
        let up_to_date = !filters.values("_up-to-date").is_empty();
        let list: Vec<Value> = c
            .tasks
            .iter()
            .filter(|t| services.is_empty() || services.contains(&t.service_id))
            .filter(|t| filters.values("node").is_empty() || nodes.contains(&t.node_id))
            .filter(|t| {
                let d = filters.values("desired-state");
                d.is_empty() || d.contains(&t.desired)
            })
            .filter(|t| {
                let ids = filters.values("id");
                ids.is_empty() || ids.iter().any(|i| t.id.starts_with(i.as_str()))
            })
            .filter(|t| {
                !up_to_date
                    || c.services
                        .iter()
                        .any(|s| s.id == t.service_id && s.generation == t.generation)
            })
            .map(|t| task_json(c, t))
            .collect();
        Ok(json(StatusCode::OK, &Value::Array(list)))
    })
}

/// `GET /tasks/{id}`.
pub fn task(ctx: &Ctx, id: &str) -> ApiResult {
    read(ctx, |c| {
        let t = c
            .tasks
            .iter()
            .find(|t| t.id == id || (!id.is_empty() && t.id.starts_with(id)))
            .ok_or_else(|| ApiError::not_found(format!("task {id} not found")))?;
        Ok(json(StatusCode::OK, &task_json(c, t)))
    })
}

/// `GET /services/{id}/logs`: the logs of the service's task containers on
/// this node, one after the other.
pub fn logs(ctx: &Ctx, id: &str) -> ApiResult {
    let container = read(ctx, |c| {
        let i = c.find_service(id)?;
        let sid = c.services[i].id.clone();
        let t = c
            .tasks
            .iter()
            .filter(|t| t.service_id == sid && t.container_id.is_some())
            // The lowest slot's newest task: an exited task's container is
            // kept (as dockerd keeps it) while its task is in the history.
            .min_by_key(|t| (t.slot, std::cmp::Reverse(t.created_at.clone())))
            .and_then(|t| t.container_id.clone());
        Ok(container_of(ctx, t))
    })?;
    match container {
        Some(c) => super::streams::logs(ctx, c),
        // No task has a container yet: an empty log stream, as dockerd
        // answers. (A JSON `""` here was read by docker-py as a frame
        // header of 2 bytes: `test_service_logs` failed whenever it asked
        // before the first task started, which load made likely.)
        None => {
            let mut reply = super::http::empty(StatusCode::OK);
            reply.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                HeaderValue::from_static("application/vnd.docker.multiplexed-stream"),
            );
            Ok(reply)
        }
    }
}

fn container_of(
    ctx: &Ctx,
    id: Option<String>,
) -> Option<std::sync::Arc<crate::container::Container>> {
    ctx.engine.runtime.get(&ctx.scope.name, &id?).ok()
}
