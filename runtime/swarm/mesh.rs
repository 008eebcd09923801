//! The routing mesh: a service's published (ingress) ports answer on every
//! node of its swarm, each in that node's own host network namespace (where
//! `-p` listens for containers), and every connection goes to the next of the
//! service's running tasks, round robin, wherever that task runs.
//!
//! A task is reached at its container's address from the host namespace of
//! its own node (where its network's bridge lives): the thread relaying a
//! connection enters that namespace before connecting, so a listener on
//! node1 relays to a replica on node3 as well as to one beside it. One
//! engine process runs every node, so no tunnel is needed.
//!
//! [`Mesh::sync`] is called by the reconcile loop after each round with what
//! the state wants ([`wanted`]); listeners open and close (freeing their
//! port) as services are created, updated and removed, and the backend lists
//! follow the tasks.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{Cluster, State};
use crate::container::Runtime;
use crate::net::HostNamespace;

/// One published port of one service.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortKey {
    pub service: String,
    pub published: u16,
    pub target: u16,
}

/// What the swarm state wants of the mesh.
#[derive(Debug, Default, Clone)]
pub struct Wanted {
    pub ports: Vec<WantedPort>,
}

/// One published port: the scopes (nodes) it listens in and the running
/// tasks behind it.
#[derive(Debug, Clone)]
pub struct WantedPort {
    pub key: PortKey,
    pub scopes: Vec<String>,
    /// (scope, container ID) of each running task.
    pub tasks: Vec<(String, String)>,
}

/// Reads the published ports, nodes and running tasks of every cluster.
pub fn wanted(state: &State) -> Wanted {
    let mut out = Wanted::default();
    for c in &state.clusters {
        wanted_of(c, &mut out);
    }
    out
}

fn wanted_of(c: &Cluster, out: &mut Wanted) {
    let scope_of = |node: &str| {
        c.nodes
            .iter()
            .find(|n| n.id == node)
            .map(|n| n.scope.clone())
    };
    let scopes: Vec<String> = c.nodes.iter().map(|n| n.scope.clone()).collect();
    for s in &c.services {
        let tasks: Vec<(String, String)> = c
            .tasks
            .iter()
            .filter(|t| t.service_id == s.id && t.state == "running" && t.desired == "running")
            .filter_map(|t| Some((scope_of(&t.node_id)?, t.container_id.clone()?)))
            .collect();
        for p in s.ports() {
            if p["PublishMode"].as_str() != Some("ingress") || p["Protocol"].as_str() != Some("tcp")
            {
                continue;
            }
            let (Some(published), Some(target)) =
                (p["PublishedPort"].as_u64(), p["TargetPort"].as_u64())
            else {
                continue;
            };
            if published == 0 || published > 65535 || target == 0 || target > 65535 {
                continue;
            }
            out.ports.push(WantedPort {
                key: PortKey {
                    service: s.id.clone(),
                    published: published as u16,
                    target: target as u16,
                },
                scopes: scopes.clone(),
                tasks: tasks.clone(),
            });
        }
    }
}

/// Where a task answers: its address, the bridge it is on and the
/// namespace that bridge is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub addr: SocketAddrV4,
    pub bridge: String,
    pub ns: HostNamespace,
}

/// The backends of one published port, shared by its listeners on every node.
#[derive(Default)]
pub struct Pool {
    backends: Mutex<Vec<Backend>>,
    next: AtomicUsize,
}

impl Pool {
    fn set(&self, list: Vec<Backend>) {
        let mut b = self.backends.lock().unwrap_or_else(|p| p.into_inner());
        if *b != list {
            *b = list;
        }
    }

    /// The backends in the order to try them: the next in turn first.
    fn order(&self) -> Vec<Backend> {
        let b = self
            .backends
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if b.is_empty() {
            return b;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % b.len();
        b[start..].iter().chain(&b[..start]).cloned().collect()
    }
}

/// A listener of one published port in one node's namespace; closes (and
/// frees the port) when dropped.
struct Listener {
    stop: Arc<AtomicBool>,
    fd: std::os::fd::RawFd,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // shutdown(2) on a listening socket wakes a blocked accept(2).
        let _ = nix::sys::socket::shutdown(self.fd, nix::sys::socket::Shutdown::Read);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The mesh of every swarm of one engine.
#[derive(Default)]
pub struct Mesh {
    inner: Mutex<MeshState>,
}

#[derive(Default)]
struct MeshState {
    pools: HashMap<PortKey, Arc<Pool>>,
    listeners: HashMap<(PortKey, String), Listener>,
    /// Listeners that failed to open, and when to try again.
    retry: HashMap<(PortKey, String), Instant>,
    /// Scopes torn down (a session's nodes): never listened in again, so
    /// no mesh thread keeps their namespace alive.
    forgotten: std::collections::HashSet<String>,
}

impl Mesh {
    /// Makes the listeners and backend lists match `wanted`.
    pub fn sync(&self, wanted: Wanted, runtime: &Runtime) {
        let mut st = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut keep_listeners = Vec::new();
        let mut keep_pools = Vec::new();
        for WantedPort { key, scopes, tasks } in wanted.ports {
            let backends: Vec<Backend> = tasks
                .iter()
                .filter_map(|(scope, cid)| {
                    let endpoint = runtime
                        .net()
                        .endpoints(cid)
                        .into_iter()
                        .find(|e| e.ip != Ipv4Addr::UNSPECIFIED)?;
                    Some(Backend {
                        addr: SocketAddrV4::new(endpoint.ip, key.target),
                        bridge: endpoint.bridge,
                        ns: runtime.net().scope_settings(scope).host,
                    })
                })
                .collect();
            let pool = st.pools.entry(key.clone()).or_default().clone();
            pool.set(backends);
            keep_pools.push(key.clone());
            for scope in scopes {
                if st.forgotten.contains(&scope) {
                    continue;
                }
                let lk = (key.clone(), scope.clone());
                keep_listeners.push(lk.clone());
                if st.listeners.contains_key(&lk) {
                    continue;
                }
                if st.retry.get(&lk).is_some_and(|at| Instant::now() < *at) {
                    continue;
                }
                let host = runtime.net().scope_settings(&scope).host;
                match listen(&host, key.published, pool.clone()) {
                    Ok(l) => {
                        st.retry.remove(&lk);
                        st.listeners.insert(lk, l);
                    }
                    Err(e) => {
                        if !st.retry.contains_key(&lk) {
                            tracing::warn!(scope = %scope, port = key.published, error = %e, "routing mesh cannot listen");
                        }
                        st.retry.insert(lk, Instant::now() + Duration::from_secs(2));
                    }
                }
            }
        }
        let gone: Vec<(PortKey, String)> = st
            .listeners
            .keys()
            .filter(|k| !keep_listeners.contains(k))
            .cloned()
            .collect();
        for k in gone {
            st.listeners.remove(&k);
        }
        st.retry.retain(|k, _| keep_listeners.contains(k));
        st.pools.retain(|k, _| keep_pools.contains(k));
    }

    /// Closes every listener in `scopes` now and never opens one there
    /// again (their nodes are being torn down).
    pub fn forget_scopes(&self, scopes: &[String]) {
        let gone: Vec<Listener> = {
            let mut st = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            st.forgotten.extend(scopes.iter().cloned());
            let keys: Vec<(PortKey, String)> = st
                .listeners
                .keys()
                .filter(|(_, s)| scopes.contains(s))
                .cloned()
                .collect();
            keys.iter().filter_map(|k| st.listeners.remove(k)).collect()
        };
        drop(gone);
    }

    /// The published ports listening now, as (scope, port).
    pub fn listening(&self) -> Vec<(String, u16)> {
        let st = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<(String, u16)> = st
            .listeners
            .keys()
            .map(|(k, s)| (s.clone(), k.published))
            .collect();
        v.sort();
        v
    }
}

/// Opens `0.0.0.0:port` in `host` and relays each connection to the pool's
/// next backend. The listener exists (or the error is returned) when this returns.
fn listen(host: &HostNamespace, port: u16, pool: Arc<Pool>) -> io::Result<Listener> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let ns = host.path().map(|p| p.to_path_buf());
    let flag = stop.clone();
    let here = host.clone();
    let thread = std::thread::Builder::new()
        .name(format!("mesh-{port}"))
        .spawn(move || {
            if let Some(path) = ns {
                if let Err(e) = enter(&path) {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
            match TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)) {
                Ok(l) => {
                    let _ = tx.send(Ok(l.as_raw_fd()));
                    serve(l, here, pool, flag);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })?;
    match rx.recv() {
        Ok(Ok(fd)) => Ok(Listener {
            stop,
            fd,
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(io::Error::other("mesh thread ended")),
    }
}

/// Moves the calling thread into the network namespace file `path`.
fn enter(path: &std::path::Path) -> io::Result<()> {
    let f = File::open(path)?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
}

/// The engine's own namespace, for a relay thread that runs elsewhere and
/// must reach a task of a [`HostNamespace::Current`] scope.
fn engine_namespace() -> PathBuf {
    PathBuf::from(format!("/proc/{}/ns/net", std::process::id()))
}

fn serve(listener: TcpListener, here: HostNamespace, pool: Arc<Pool>, stop: Arc<AtomicBool>) {
    loop {
        let client = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok((client, _)) = client else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let order = pool.order();
        let here = here.clone();
        let _ = std::thread::Builder::new()
            .name("mesh-conn".into())
            .spawn(move || relay(client, &here, order));
    }
}

/// Connects to the first backend that answers (entering its namespace when
/// it is not the listener's) and relays both ways.
fn relay(client: TcpStream, here: &HostNamespace, order: Vec<Backend>) {
    let mut current = here.clone();
    for b in order {
        if b.ns != current {
            let path =
                b.ns.path()
                    .map(|p| p.to_path_buf())
                    .unwrap_or_else(engine_namespace);
            if enter(&path).is_err() {
                continue;
            }
            current = b.ns.clone();
        }
        // Through the task's bridge only: fails closed if the records and
        // the bridge disagree.
        let target = crate::net::ports::Backend {
            addr: b.addr,
            bridge: b.bridge.clone(),
        };
        let Ok(server) = crate::net::ports::connect_on_bridge(&target, Duration::from_secs(2))
        else {
            continue;
        };
        relay_streams(client, server);
        return;
    }
}

/// Relays two connected streams both ways until both directions end; each
/// direction's end is passed on as a half-close.
fn relay_streams(client: TcpStream, server: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::Builder::new()
        .name("mesh-up".into())
        .spawn(move || pipe(client2, server2));
    pipe(server, client);
    if let Ok(t) = up {
        let _ = t.join();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    use std::io::{Read, Write};
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

/// The networks a task joins (`service create --network`): the container's
/// network mode and endpoints, with the service's name and `tasks.<name>` as
/// aliases, so the embedded DNS of each network answers them with the
/// running tasks' addresses (in turn: DNS round robin).
pub fn task_networks(service: &str, template: &serde_json::Value, create: &mut serde_json::Value) {
    let list = template["Networks"].as_array().cloned().unwrap_or_default();
    let mut endpoints = serde_json::Map::new();
    for n in &list {
        let Some(target) = n["Target"].as_str().filter(|t| !t.is_empty()) else {
            continue;
        };
        let mut aliases = vec![
            serde_json::json!(service),
            serde_json::json!(format!("tasks.{service}")),
        ];
        aliases.extend(n["Aliases"].as_array().cloned().unwrap_or_default());
        if endpoints.is_empty() {
            create["HostConfig"]["NetworkMode"] = serde_json::json!(target);
        }
        endpoints.insert(target.into(), serde_json::json!({ "Aliases": aliases }));
    }
    if !endpoints.is_empty() {
        create["NetworkingConfig"] = serde_json::json!({ "EndpointsConfig": endpoints });
    }
}

/// Names the networks of a task's create request as they are known in the
/// task's own `scope`: an overlay network made on a manager (referred to by
/// its ID) gets a namesake in the node's scope the first time a task there
/// uses it, as swarm makes overlay networks appear on workers.
pub fn localize_networks(
    runtime: &Runtime,
    scope: &str,
    create: &mut serde_json::Value,
) -> Result<(), String> {
    let Some(endpoints) = create["NetworkingConfig"]["EndpointsConfig"]
        .as_object()
        .cloned()
    else {
        return Ok(());
    };
    let mut local = serde_json::Map::new();
    let mode = create["HostConfig"]["NetworkMode"]
        .as_str()
        .unwrap_or("")
        .to_string();
    for (target, cfg) in endpoints {
        let network = match runtime.net().get(scope, &target) {
            Ok(n) => n,
            Err(_) => {
                let Some(origin) = runtime.net().by_id(&target) else {
                    return Err(format!("network {target} not found"));
                };
                if origin.overlay {
                    runtime
                        .net()
                        .overlay_member(scope, &origin)
                        .map_err(|e| e.to_string())?
                } else {
                    runtime
                        .net()
                        .get(scope, &origin.name)
                        .map_err(|e| e.to_string())?
                }
            }
        };
        // Every part of an overlay joins one segment across the nodes.
        for part in runtime.net().overlay_parts(&network.overlay_group) {
            let host = runtime.net().scope_settings(&part.scope).host;
            if let Some(ns) = host.path() {
                crate::session::overlay::link_node_namespace(ns, &part.bridge, &part.overlay_group)
                    .map_err(|e| format!("link overlay {}: {e}", part.name))?;
            }
        }
        let name = network.name;
        if target == mode {
            create["HostConfig"]["NetworkMode"] = serde_json::json!(name);
        }
        local.insert(name, cfg);
    }
    create["NetworkingConfig"]["EndpointsConfig"] = serde_json::Value::Object(local);
    Ok(())
}

/// The first port swarm hands out for `-p TARGET` without a published port.
pub const DYNAMIC_PORTS: std::ops::RangeInclusive<u64> = 30000..=32767;

/// Claims the ingress ports of `spec` (a service's, `service` when it is an
/// update) in cluster `c`: a port another service publishes is refused with
/// swarmkit's words, and a port left unpublished (`-p 80`) gets the first
/// free one of [`DYNAMIC_PORTS`], written into the spec so that updates,
/// which send the spec back, keep it.
pub fn claim_ports(
    c: &Cluster,
    service: Option<&str>,
    spec: &mut serde_json::Value,
) -> Result<(), super::SwarmError> {
    let mut taken: Vec<(u64, String, String, String)> = Vec::new();
    for s in c.services.iter().filter(|s| Some(s.id.as_str()) != service) {
        for p in s.ports() {
            if p["PublishMode"].as_str() == Some("ingress") {
                taken.push((
                    p["PublishedPort"].as_u64().unwrap_or(0),
                    p["Protocol"].as_str().unwrap_or("tcp").to_string(),
                    s.name().to_string(),
                    s.id.clone(),
                ));
            }
        }
    }
    let Some(ports) = spec["EndpointSpec"]["Ports"].as_array_mut() else {
        return Ok(());
    };
    let mut ours: Vec<(u64, String)> = Vec::new();
    for p in ports.iter_mut() {
        let mode = p["PublishMode"].as_str().unwrap_or("ingress");
        if !mode.is_empty() && mode != "ingress" {
            continue;
        }
        let proto = match p["Protocol"].as_str() {
            None | Some("") => "tcp",
            Some(other) => other,
        }
        .to_string();
        let published = p["PublishedPort"].as_u64().unwrap_or(0);
        if published == 0 {
            let free = DYNAMIC_PORTS.clone().find(|n| {
                !taken.iter().any(|t| t.0 == *n && t.1 == proto)
                    && !ours.iter().any(|o| o.0 == *n && o.1 == proto)
            });
            let Some(free) = free else {
                return Err(super::SwarmError::Invalid(
                    "rpc error: code = ResourceExhausted desc = dynamic ports exhausted".into(),
                ));
            };
            p["PublishedPort"] = serde_json::json!(free);
            ours.push((free, proto));
            continue;
        }
        if let Some((_, _, name, id)) = taken.iter().find(|t| t.0 == published && t.1 == proto) {
            return Err(super::SwarmError::Invalid(format!(
                "rpc error: code = InvalidArgument desc = port '{published}' is already in use by service '{name}' ({id}) as an ingress port"
            )));
        }
        ours.push((published, proto));
    }
    Ok(())
}

/// `docker run --network NAME` on a node of a swarm where `NAME` is an
/// attachable overlay made on another node: the overlay gets its part on
/// this node (linked to the others), as swarm makes it appear on a worker.
/// Nothing happens when there is no such overlay.
pub fn attach_overlay(swarms: &super::Swarms, runtime: &Runtime, scope: &str, name: &str) {
    let scopes: Vec<String> = {
        let state = swarms.lock();
        let Some(i) = state.cluster_of(scope) else {
            return;
        };
        state.clusters[i]
            .nodes
            .iter()
            .map(|n| n.scope.clone())
            .filter(|s| s != scope)
            .collect()
    };
    let origin = scopes.iter().find_map(|s| {
        runtime
            .net()
            .get(s, name)
            .ok()
            .filter(|n| n.overlay && n.attachable)
    });
    let Some(origin) = origin else {
        return;
    };
    let Ok(network) = runtime.net().overlay_member(scope, &origin) else {
        return;
    };
    for part in runtime.net().overlay_parts(&network.overlay_group) {
        let host = runtime.net().scope_settings(&part.scope).host;
        if let Some(ns) = host.path() {
            if let Err(e) =
                crate::session::overlay::link_node_namespace(ns, &part.bridge, &part.overlay_group)
            {
                tracing::warn!(network = %part.name, error = %e, "overlay link failed");
            }
        }
    }
}
