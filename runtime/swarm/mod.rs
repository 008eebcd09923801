//! Swarm mode: clusters of nodes, services and their tasks.
//!
//! A cluster's members are engine scopes: in `berth daemon` there is one
//! scope, hence one node; in a classroom session each lab node is a scope of
//! the same engine process, so a multi-node swarm is a matter of more scopes
//! joining. Tasks are real containers created in their node's scope.
//!
//! - this file: the state (clusters, nodes, services, tasks), persisted as
//!   JSON in `<data>/swarm/state.json`, and the operations the Engine API calls.
//! - [`reconcile`]: the loop that makes tasks match services: placement,
//!   restarts, scaling, rolling updates and rollbacks; a node lacking a
//!   task's image pulls it (the classroom registry), a task with a
//!   healthcheck runs once healthy.
//! - [`mesh`]: the routing mesh: published ports on every node, spread over
//!   the running tasks.
//! - [`rpc`]: `docker swarm join … node1:2377` between the nodes of a
//!   session, over the session network ([`crate::session::network`]).
//! - [`mesh`]: the routing mesh: published ports on every node, spread over
//!   the running tasks; service networks across nodes.
//!
//! Nodes whose engine stops serving (see [`Served`]) are down: their tasks
//! are placed elsewhere. [`Swarms::running_tasks`] lists the running tasks
//! of a cluster with their node, container addresses and node namespace.

pub mod mesh;
pub mod reconcile;
pub mod refs;
pub mod rpc;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::container::state::now_rfc3339;

/// Why a swarm operation failed, with Docker's words.
#[derive(Debug, thiserror::Error)]
pub enum SwarmError {
    /// 503: the scope is not (or already) in a swarm.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    /// 500, as dockerd answers swarmkit's own errors.
    #[error("{0}")]
    Internal(String),
}

pub type Result<T> = std::result::Result<T, SwarmError>;

pub const NOT_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
pub const WORKER_NODE: &str = "This node is not a swarm manager. Worker nodes can't be used to view or modify cluster state. Please run this command on a manager node or promote the current node to a manager.";
pub const ALREADY_MEMBER: &str = "This node is already part of a swarm. Use \"docker swarm leave\" to leave this swarm and join another one.";

/// A 25-character ID from `[a-z0-9]`, as swarmkit makes them.
pub fn new_id() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..25)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn token(cluster_part: &str) -> String {
    let mut rng = rand::thread_rng();
    let secret: String = (0..25)
        .map(|_| b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.gen_range(0..36)] as char)
        .collect();
    format!("SWMTKN-1-{cluster_part}-{secret}")
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    pub id: String,
    /// The engine scope this node is.
    pub scope: String,
    pub hostname: String,
    /// `manager` or `worker`.
    pub role: String,
    /// `active`, `pause` or `drain`.
    pub availability: String,
    pub addr: String,
    pub leader: bool,
    pub created_at: String,
    pub updated_at: String,
    pub version: u64,
    #[serde(default)]
    pub labels: Value,
    /// Its engine stopped (not kept: a restarted engine serves again).
    #[serde(skip, default)]
    pub down: bool,
    /// It left the swarm: listed as down until `docker node rm`.
    #[serde(default)]
    pub left: bool,
}

impl Node {
    /// Whether the node is down (left, or its engine stopped).
    pub fn is_down(&self) -> bool {
        self.down || self.left
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateStatus {
    pub state: String,
    pub started_at: String,
    pub completed_at: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Service {
    pub id: String,
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    pub spec: Value,
    pub previous_spec: Option<Value>,
    /// Generation of the task template: tasks of older generations are out of date.
    pub generation: u64,
    pub update_status: Option<UpdateStatus>,
}

impl Service {
    pub fn name(&self) -> &str {
        self.spec["Name"].as_str().unwrap_or("")
    }

    /// `Some(n)` for replicated services, `None` for global ones.
    pub fn replicas(&self) -> Option<u64> {
        let mode = &self.spec["Mode"];
        if mode.get("Global").is_some() {
            None
        } else {
            Some(mode["Replicated"]["Replicas"].as_u64().unwrap_or(1))
        }
    }

    pub fn ports(&self) -> Vec<Value> {
        self.spec["EndpointSpec"]["Ports"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|mut p| {
                if p.get("PublishMode")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    p["PublishMode"] = json!("ingress");
                }
                if p.get("Protocol")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    p["Protocol"] = json!("tcp");
                }
                p
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub service_id: String,
    /// 1..N for replicated services, 0 for global ones.
    pub slot: u64,
    pub node_id: String,
    pub generation: u64,
    /// The service's `TaskTemplate` this task was made from.
    pub spec: Value,
    pub container_id: Option<String>,
    pub desired: String,
    pub state: String,
    pub message: String,
    pub err: String,
    pub exit_code: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
    pub timestamp: String,
    pub version: u64,
    /// Whether this task's container holds the service's published ports on its node.
    #[serde(default)]
    pub publishes: bool,
}

impl Task {
    /// Running or on its way there.
    pub fn live(&self) -> bool {
        self.desired == "running"
            && !matches!(
                self.state.as_str(),
                "complete" | "shutdown" | "failed" | "rejected" | "orphaned" | "remove"
            )
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cluster {
    pub id: String,
    pub created_at: String,
    pub updated_at: String,
    /// The index every write takes a new value of (`Version.Index`).
    pub index: u64,
    pub spec: Value,
    pub worker_token: String,
    pub manager_token: String,
    pub nodes: Vec<Node>,
    pub services: Vec<Service>,
    pub tasks: Vec<Task>,
    /// `docker secret create`'s objects (older state files have none).
    #[serde(default)]
    pub secrets: Vec<SwarmObject>,
    /// `docker config create`'s objects.
    #[serde(default)]
    pub configs: Vec<SwarmObject>,
    /// `swarm init --default-addr-pool` (empty: Docker's 10.0.0.0/8).
    #[serde(default)]
    pub default_addr_pool: Vec<String>,
    /// `--default-addr-pool-mask-length` (0: 24).
    #[serde(default)]
    pub subnet_size: u32,
    /// `--data-path-port` (0: 4789).
    #[serde(default)]
    pub data_path_port: u32,
    /// The managers' unlock key while autolock is on.
    #[serde(default)]
    pub unlock_key: String,
}

/// A new manager unlock key, in swarmkit's form.
pub fn new_unlock_key() -> String {
    format!("SWMKEY-1-{}{}", new_id(), new_id())
}

/// A secret or a config: a named blob with labels, kept in the cluster.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwarmObject {
    pub id: String,
    pub created_at: String,
    pub updated_at: String,
    pub index: u64,
    /// `Name`, `Labels`, `Data` (base64), `Templating`, as the client sent them.
    pub spec: Value,
}

impl SwarmObject {
    pub fn name(&self) -> &str {
        self.spec.get("Name").and_then(Value::as_str).unwrap_or("")
    }
}

impl Cluster {
    pub fn next_index(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    pub fn node_of_scope(&self, scope: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.scope == scope && !n.left)
    }

    pub fn find_node(&self, key: &str) -> Result<&Node> {
        if let Some(n) = self.nodes.iter().find(|n| n.id == key || n.hostname == key) {
            return Ok(n);
        }
        let matches: Vec<&Node> = self
            .nodes
            .iter()
            .filter(|n| !key.is_empty() && n.id.starts_with(key))
            .collect();
        match matches.as_slice() {
            [one] => Ok(one),
            [] => Err(SwarmError::NotFound(format!("node {key} not found"))),
            _ => Err(SwarmError::NotFound(format!(
                "node {key} is ambiguous ({} matches found)",
                matches.len()
            ))),
        }
    }

    /// A service by full ID, name, or unambiguous ID prefix, as dockerd finds them.
    pub fn find_service(&self, key: &str) -> Result<usize> {
        if let Some(i) = self.services.iter().position(|s| s.id == key) {
            return Ok(i);
        }
        if let Some(i) = self.services.iter().position(|s| s.name() == key) {
            return Ok(i);
        }
        let matches: Vec<usize> = self
            .services
            .iter()
            .enumerate()
            .filter(|(_, s)| !key.is_empty() && s.id.starts_with(key))
            .map(|(i, _)| i)
            .collect();
        match matches.as_slice() {
            [one] => Ok(*one),
            [] => Err(SwarmError::NotFound(format!("service {key} not found"))),
            _ => Err(SwarmError::NotFound(format!(
                "service {key} is ambiguous ({} matches found)",
                matches.len()
            ))),
        }
    }
}

/// Where tasks may go: the cluster's nodes that are ready and active.
pub struct Placement<'a> {
    nodes: Vec<&'a Node>,
}

impl<'a> Placement<'a> {
    pub fn new(cluster: &'a Cluster) -> Self {
        Self {
            nodes: cluster
                .nodes
                .iter()
                .filter(|n| n.availability == "active" && !n.is_down())
                .collect(),
        }
    }

    pub fn nodes(&self) -> &[&'a Node] {
        &self.nodes
    }

    /// The node with the fewest live tasks of `service` (then fewest overall),
    /// as swarmkit's spread strategy picks.
    pub fn pick(&self, tasks: &[Task], service: &str) -> Option<&'a Node> {
        self.nodes
            .iter()
            .min_by_key(|n| {
                let of_service = tasks
                    .iter()
                    .filter(|t| t.live() && t.node_id == n.id && t.service_id == service)
                    .count();
                let all = tasks
                    .iter()
                    .filter(|t| t.live() && t.node_id == n.id)
                    .count();
                (of_service, all, n.hostname.clone())
            })
            .copied()
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct State {
    pub clusters: Vec<Cluster>,
}

impl State {
    pub fn cluster_of(&self, scope: &str) -> Option<usize> {
        self.clusters
            .iter()
            .position(|c| c.node_of_scope(scope).is_some())
    }
}

/// Marks a scope's engine as served while alive (held by the serving task,
/// so an aborted task marks its node down).
pub struct Served {
    swarms: Arc<Swarms>,
    scope: String,
}

impl Served {
    pub fn new(swarms: &Arc<Swarms>, scope: &str) -> Self {
        swarms.engine_served(scope, true);
        Self {
            swarms: swarms.clone(),
            scope: scope.to_string(),
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.swarms.engine_served(&self.scope, false);
    }
}

/// Every swarm of one engine process.
pub struct Swarms {
    path: PathBuf,
    state: Mutex<State>,
    pub(crate) wake: tokio::sync::Notify,
    started: AtomicBool,
    /// The routing mesh of every cluster's published ports.
    pub mesh: mesh::Mesh,
    /// The key each session's join secret is derived from (see [`rpc`]);
    /// never sent itself.
    secret: String,
    /// The join RPC listeners, by manager scope.
    listeners: Mutex<HashMap<String, tokio::task::AbortHandle>>,
    /// Scopes whose Engine API is served now, and those ever served: a node
    /// whose engine was served and no longer is, is down.
    engines: Mutex<(HashSet<String>, HashSet<String>)>,
}

impl Swarms {
    /// Loads the state kept in `dir` (none yet is an empty state).
    pub fn open(dir: PathBuf) -> Arc<Self> {
        let path = dir.join("state.json");
        let state = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Arc::new(Self {
            path,
            state: Mutex::new(state),
            wake: tokio::sync::Notify::new(),
            started: AtomicBool::new(false),
            mesh: mesh::Mesh::default(),
            secret: new_id(),
            listeners: Mutex::new(HashMap::new()),
            engines: Mutex::new((HashSet::new(), HashSet::new())),
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the state atomically (temp file + rename).
    pub fn save(&self, state: &State) {
        let Ok(bytes) = serde_json::to_vec(state) else {
            return;
        };
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let tmp = self.path.with_extension("tmp");
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(&tmp, &self.path);
        }
    }

    /// Starts the reconcile loop once (needs a Tokio runtime).
    pub fn start(self: &Arc<Self>, engine: &Arc<crate::engine::Engine>) {
        if !self.started.swap(true, Ordering::SeqCst) {
            tokio::spawn(reconcile::run(self.clone(), engine.clone()));
        }
    }

    /// Records that `scope`'s Engine API is served (`up`) or stopped.
    pub fn engine_served(&self, scope: &str, up: bool) {
        let mut e = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        if up {
            e.0.insert(scope.to_string());
            e.1.insert(scope.to_string());
        } else {
            e.0.remove(scope);
        }
        drop(e);
        self.wake.notify_one();
    }

    /// Proves a join request comes from this engine, for the nodes of
    /// `session` only: `sha256(key ‖ sha256(key ‖ session))`, so one
    /// session's secret says nothing of another's, nor of the key.
    pub(crate) fn session_secret(&self, session: &str) -> String {
        use sha2::{Digest, Sha256};
        let inner = Sha256::new()
            .chain_update(self.secret.as_bytes())
            .chain_update(session.as_bytes())
            .finalize();
        hex::encode(
            Sha256::new()
                .chain_update(self.secret.as_bytes())
                .chain_update(inner)
                .finalize(),
        )
    }

    /// Whether `scope`'s Engine API is served now (a live node).
    pub(crate) fn is_served(&self, scope: &str) -> bool {
        self.engines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .contains(scope)
    }

    /// Whether the node of `scope` is down: its engine was served and stopped.
    pub fn is_down(&self, scope: &str) -> bool {
        let e = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        e.1.contains(scope) && !e.0.contains(scope)
    }

    /// Forgets `scopes` (a session removed): they leave their clusters at
    /// once, and a cluster left without a manager ends.
    pub fn forget_scopes(&self, scopes: &[String]) {
        for s in scopes {
            self.unlisten(s);
        }
        self.mesh.forget_scopes(scopes);
        let mut state = self.lock();
        let before = state.clusters.len();
        for c in state.clusters.iter_mut() {
            // Their tasks go with them: the session's teardown removes the
            // containers, and the loop must not race it.
            let gone: Vec<String> = c
                .nodes
                .iter()
                .filter(|n| scopes.contains(&n.scope))
                .map(|n| n.id.clone())
                .collect();
            c.tasks.retain(|t| !gone.contains(&t.node_id));
            c.nodes.retain(|n| !scopes.contains(&n.scope));
        }
        state
            .clusters
            .retain(|c| c.nodes.iter().any(|n| n.role == "manager" && !n.left));
        if state.clusters.len() != before || !scopes.is_empty() {
            self.save(&state);
        }
        let mut e = self.engines.lock().unwrap_or_else(|p| p.into_inner());
        for s in scopes {
            e.0.remove(s);
            e.1.remove(s);
        }
    }

    /// The manager `manager` admits `scope` into its cluster with `token`
    /// (the manager's side of [`rpc`]).
    pub fn admit(
        &self,
        manager: &str,
        scope: &str,
        hostname: &str,
        addr: &str,
        token: &str,
    ) -> Result<()> {
        let mut state = self.lock();
        if state.cluster_of(scope).is_some() {
            return Err(SwarmError::Unavailable(ALREADY_MEMBER.into()));
        }
        let i = state
            .cluster_of(manager)
            .filter(|&i| {
                state.clusters[i]
                    .node_of_scope(manager)
                    .map(|n| n.role == "manager")
                    .unwrap_or(false)
            })
            .ok_or_else(|| rpc::join_timeout(&[format!("{manager}:2377")]))?;
        add_node(&mut state.clusters[i], scope, hostname, addr, token)?;
        self.save(&state);
        drop(state);
        self.wake.notify_one();
        Ok(())
    }

    /// Runs `f` on the cluster `scope` belongs to; saves and wakes the loop after.
    pub fn with_cluster<T>(
        &self,
        scope: &str,
        f: impl FnOnce(&mut Cluster) -> Result<T>,
    ) -> Result<T> {
        let mut state = self.lock();
        let i = state
            .cluster_of(scope)
            .ok_or_else(|| SwarmError::Unavailable(NOT_MANAGER.into()))?;
        if state.clusters[i]
            .node_of_scope(scope)
            .map(|n| n.role != "manager")
            .unwrap_or(true)
        {
            return Err(SwarmError::Unavailable(WORKER_NODE.into()));
        }
        let out = f(&mut state.clusters[i])?;
        self.save(&state);
        drop(state);
        self.wake.notify_one();
        Ok(out)
    }

    /// `docker swarm init`: a new cluster whose only node is `scope`.
    pub fn init(&self, scope: &str, hostname: &str, addr: &str, spec: Value) -> Result<String> {
        let mut state = self.lock();
        if state.cluster_of(scope).is_some() {
            return Err(SwarmError::Unavailable(ALREADY_MEMBER.into()));
        }
        let now = now_rfc3339();
        let id = new_id();
        let node_id = new_id();
        let part: String = new_id().chars().chain(new_id().chars()).collect();
        let mut cluster = Cluster {
            id: id.clone(),
            created_at: now.clone(),
            updated_at: now.clone(),
            index: 10,
            spec: default_cluster_spec(spec),
            worker_token: token(&part),
            manager_token: token(&part),
            nodes: Vec::new(),
            services: Vec::new(),
            secrets: Vec::new(),
            configs: Vec::new(),
            default_addr_pool: Vec::new(),
            subnet_size: 0,
            data_path_port: 0,
            unlock_key: String::new(),
            tasks: Vec::new(),
        };
        let version = cluster.next_index();
        cluster.nodes.push(Node {
            id: node_id.clone(),
            scope: scope.to_string(),
            hostname: hostname.to_string(),
            role: "manager".into(),
            availability: "active".into(),
            addr: addr.to_string(),
            leader: true,
            created_at: now.clone(),
            updated_at: now,
            version,
            labels: json!({}),
            down: false,
            left: false,
        });
        state.clusters.push(cluster);
        self.save(&state);
        Ok(node_id)
    }

    /// `docker swarm join`: `scope` joins the cluster whose token matches and
    /// one of whose managers listens on `remote` (`addr:port`).
    pub fn join(&self, scope: &str, hostname: &str, remote: &[String], token: &str) -> Result<()> {
        let mut state = self.lock();
        if state.cluster_of(scope).is_some() {
            return Err(SwarmError::Unavailable(ALREADY_MEMBER.into()));
        }
        let reachable = |c: &Cluster| {
            remote.iter().any(|r| {
                let host = r.rsplit_once(':').map(|(h, _)| h).unwrap_or(r);
                c.nodes
                    .iter()
                    .any(|n| n.role == "manager" && (n.addr == host || n.hostname == host))
            })
        };
        let Some(cluster) = state.clusters.iter_mut().find(|c| reachable(c)) else {
            return Err(SwarmError::Internal(format!(
                "Timeout was reached before node joined. The attempt to join the swarm will continue in the background. Use the \"docker info\" command to see the current swarm status of your node. ({})",
                remote.join(",")
            )));
        };
        let addr = hostname.to_string();
        add_node(cluster, scope, hostname, &addr, token)?;
        self.save(&state);
        drop(state);
        self.wake.notify_one();
        Ok(())
    }

    /// `docker swarm leave [--force]`. Returns the containers of the scope's
    /// tasks (the caller removes them). The last manager leaving ends the cluster.
    pub fn leave(&self, scope: &str, force: bool) -> Result<Vec<(String, String)>> {
        let mut state = self.lock();
        let i = state
            .cluster_of(scope)
            .ok_or_else(|| SwarmError::Unavailable("This node is not part of a swarm".into()))?;
        let cluster = &mut state.clusters[i];
        let node = cluster.node_of_scope(scope).cloned().expect("member");
        let managers = cluster
            .nodes
            .iter()
            .filter(|n| n.role == "manager" && !n.left)
            .count();
        if node.role == "manager" && !force {
            let msg = if managers == 1 {
                "You are attempting to leave the swarm on a node that is participating as a manager. Removing the last manager erases all current state of the swarm. Use `--force` to ignore this message. "
            } else {
                "You are attempting to leave the swarm on a node that is participating as a manager. Removing this node leaves fewer managers than needed for a quorum. Use `--force` to ignore this message. "
            };
            return Err(SwarmError::Unavailable(msg.into()));
        }
        let mut containers = Vec::new();
        for t in cluster.tasks.iter().filter(|t| t.node_id == node.id) {
            if let Some(c) = &t.container_id {
                containers.push((node.scope.clone(), c.clone()));
            }
        }
        if node.role == "manager" && managers == 1 {
            for t in &cluster.tasks {
                if let (Some(c), Some(n)) = (
                    &t.container_id,
                    cluster.nodes.iter().find(|n| n.id == t.node_id),
                ) {
                    if n.id != node.id {
                        containers.push((n.scope.clone(), c.clone()));
                    }
                }
            }
            state.clusters.remove(i);
        } else {
            let index = cluster.next_index();
            if let Some(n) = cluster.nodes.iter_mut().find(|n| n.id == node.id) {
                n.left = true;
                n.version = index;
                n.updated_at = now_rfc3339();
            }
            for t in cluster.tasks.iter_mut().filter(|t| t.node_id == node.id) {
                t.desired = "shutdown".into();
                t.state = "orphaned".into();
                t.container_id = None;
            }
        }
        self.save(&state);
        drop(state);
        self.unlisten(scope);
        self.wake.notify_one();
        Ok(containers)
    }
}

/// Adds `scope` to `cluster` as the role `token` grants.
fn add_node(
    cluster: &mut Cluster,
    scope: &str,
    hostname: &str,
    addr: &str,
    token: &str,
) -> Result<()> {
    let role = if token == cluster.worker_token {
        "worker"
    } else if token == cluster.manager_token {
        "manager"
    } else {
        return Err(SwarmError::Invalid(
            "rpc error: code = InvalidArgument desc = A valid join token is necessary to join this cluster".into(),
        ));
    };
    let now = now_rfc3339();
    let version = cluster.next_index();
    cluster.nodes.push(Node {
        id: new_id(),
        scope: scope.to_string(),
        hostname: hostname.to_string(),
        role: role.into(),
        availability: "active".into(),
        addr: addr.to_string(),
        leader: false,
        created_at: now.clone(),
        updated_at: now,
        version,
        labels: json!({}),
        down: false,
        left: false,
    });
    Ok(())
}

fn default_cluster_spec(given: Value) -> Value {
    let mut spec = json!({
        "Name": "default",
        "Labels": {},
        "Orchestration": {"TaskHistoryRetentionLimit": 5},
        "Raft": {"SnapshotInterval": 10000, "KeepOldSnapshots": 0, "LogEntriesForSlowFollowers": 500, "ElectionTick": 10, "HeartbeatTick": 1},
        "Dispatcher": {"HeartbeatPeriod": 5000000000u64},
        "CAConfig": {"NodeCertExpiry": 7776000000000000u64},
        "TaskDefaults": {},
        "EncryptionConfig": {"AutoLockManagers": false}
    });
    if let Some(labels) = given.get("Labels").filter(|l| l.is_object()) {
        spec["Labels"] = labels.clone();
    }
    // What `swarm init` was given of each section, over the defaults.
    for section in [
        "Orchestration",
        "Raft",
        "Dispatcher",
        "CAConfig",
        "TaskDefaults",
        "EncryptionConfig",
    ] {
        if let (Some(ours), Some(theirs)) = (
            spec.get_mut(section).and_then(Value::as_object_mut),
            given.get(section).and_then(Value::as_object),
        ) {
            for (k, v) in theirs {
                if !v.is_null() {
                    ours.insert(k.clone(), v.clone());
                }
            }
        }
    }
    spec
}

/// Parses a Go duration in nanoseconds from a spec field (absent → `default`).
pub fn nanos(v: &Value, default: u64) -> std::time::Duration {
    std::time::Duration::from_nanos(v.as_u64().unwrap_or(default))
}

/// A running task, as the routing mesh and service DNS need it.
#[derive(Debug, Clone)]
pub struct RunningTask {
    pub service_id: String,
    pub service_name: String,
    pub task_id: String,
    /// 1..N (0 for a global service's task).
    pub slot: u64,
    pub node_id: String,
    /// `node1`, `node2`… in a session.
    pub hostname: String,
    /// The node's engine scope: `runtime.get(scope, container_id)`.
    pub scope: String,
    pub container_id: String,
    /// The container's addresses, by network name.
    pub addresses: Vec<(String, std::net::Ipv4Addr)>,
    /// The node's host network namespace (`None`: the engine's own, as in
    /// `berth daemon`); where the node's published ports listen.
    pub node_netns: Option<PathBuf>,
}

impl Swarms {
    /// Every running task of the cluster `scope` belongs to, on every node,
    /// with its container's addresses and its node's namespace.
    pub fn running_tasks(
        &self,
        runtime: &crate::container::Runtime,
        scope: &str,
    ) -> Vec<RunningTask> {
        let state = self.lock();
        let Some(i) = state.cluster_of(scope) else {
            return Vec::new();
        };
        let c = &state.clusters[i];
        c.tasks
            .iter()
            .filter(|t| t.state == "running" && t.desired == "running")
            .filter_map(|t| {
                let node = c.nodes.iter().find(|n| n.id == t.node_id)?;
                let service = c.services.iter().find(|s| s.id == t.service_id)?;
                let container_id = t.container_id.clone()?;
                let addresses = runtime
                    .net()
                    .endpoints(&container_id)
                    .into_iter()
                    .map(|e| (e.network_name, e.ip))
                    .collect();
                Some(RunningTask {
                    service_id: service.id.clone(),
                    service_name: service.name().to_string(),
                    task_id: t.id.clone(),
                    slot: t.slot,
                    node_id: node.id.clone(),
                    hostname: node.hostname.clone(),
                    scope: node.scope.clone(),
                    container_id,
                    addresses,
                    node_netns: runtime
                        .scope_settings(&node.scope)
                        .and_then(|s| s.host_netns),
                })
            })
            .collect()
    }
}
