//! The lab map's model: one compact, serializable picture of a session's
//! state, read from the runtime's own types (never through the CLI or the
//! Engine API's JSON), capped so a lab with thousands of objects costs a
//! map no more than a few hundred of them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use berth_runtime::container::Runtime;
use berth_runtime::engine::Engine;
use berth_runtime::image::LayerOutline;
use berth_runtime::swarm::Cluster;
use serde::Serialize;

/// Most objects of each kind a model carries; the rest are counted.
pub const MAX_CONTAINERS: usize = 60;
pub const MAX_IMAGES: usize = 40;
pub const MAX_NETWORKS: usize = 24;
pub const MAX_VOLUMES: usize = 40;
pub const MAX_TASKS: usize = 60;
/// Most ports, mounts, networks or tags one object lists.
pub const MAX_PER_OBJECT: usize = 8;
/// Longest text (a name, a path) a model carries, in characters.
pub const MAX_TEXT: usize = 120;
/// Images whose layers are remembered (content-addressed: never stale).
const LAYER_CACHE: usize = 2048;

/// What a map draws.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Model {
    /// The session's public ID (preview links are `/s/{session}/{port}/`).
    pub session: String,
    /// The lab's nodes, by name (`node1`…).
    pub nodes: Vec<String>,
    pub networks: Vec<NetworkView>,
    pub containers: Vec<ContainerView>,
    pub volumes: Vec<VolumeView>,
    pub images: Vec<ImageView>,
    /// Layer diff ID (12 hex digits) → size in bytes.
    pub layers: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SwarmView>,
    /// Objects left out by the caps, per kind ("and N more").
    pub more: BTreeMap<&'static str, usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NetworkView {
    pub node: String,
    pub name: String,
    pub driver: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub subnet: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub internal: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerView {
    /// 12 hex digits.
    pub id: String,
    pub node: String,
    pub name: String,
    pub image: String,
    /// The image's ID, 12 hex digits (the writable layer sits on it).
    pub image_id: String,
    /// `created`, `running`, `paused`, `restarting`, `exited`, `dead`.
    pub state: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub health: String,
    /// Network names; `host` or `none` for those modes.
    pub networks: Vec<String>,
    pub ports: Vec<PortView>,
    pub mounts: Vec<MountView>,
    /// Ports, mounts and networks past [`MAX_PER_OBJECT`] each.
    #[serde(skip_serializing_if = "is_zero")]
    pub left_out: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PortView {
    pub port: u16,
    pub proto: &'static str,
    pub host_port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MountView {
    /// `volume`, `bind` or `tmpfs`.
    pub kind: &'static str,
    /// The volume's name or the bind's source path in the lab.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub source: String,
    pub target: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub read_only: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VolumeView {
    pub node: String,
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub anonymous: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageView {
    pub node: String,
    /// 12 hex digits.
    pub id: String,
    pub tags: Vec<String>,
    /// Layer diff IDs (12 hex digits each), bottom first.
    pub layers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SwarmView {
    pub nodes: Vec<SwarmNodeView>,
    pub services: Vec<ServiceView>,
    pub tasks: Vec<TaskView>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SwarmNodeView {
    pub hostname: String,
    /// The lab node it is (`node2`), when it is one of this session's.
    pub node: String,
    pub role: String,
    pub availability: String,
    pub leader: bool,
    pub down: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceView {
    pub name: String,
    pub image: String,
    /// `None` for a global service.
    pub replicas: Option<u64>,
    /// Routing-mesh ports: (published, target).
    pub ports: Vec<(u64, u64)>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub update: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TaskView {
    pub id: String,
    pub service: String,
    pub slot: u64,
    /// The swarm node's host name.
    pub node: String,
    pub image: String,
    pub state: String,
}

/// Layer lists of images by ID, shared by every map of the server.
#[derive(Default)]
pub struct LayerCache(Mutex<HashMap<String, Arc<Vec<LayerOutline>>>>);

impl LayerCache {
    fn get(&self, runtime: &Runtime, id: &str) -> Option<Arc<Vec<LayerOutline>>> {
        if let Some(l) = self.0.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Some(l.clone());
        }
        let layers = Arc::new(runtime.images().layer_outline(id).ok()?);
        let mut cache = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= LAYER_CACHE {
            cache.clear();
        }
        cache.insert(id.to_string(), layers.clone());
        Some(layers)
    }
}

/// `text`, cut to [`MAX_TEXT`] characters (a learner picks the names).
fn clip(text: &str) -> String {
    match text.char_indices().nth(MAX_TEXT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// The first [`MAX_PER_OBJECT`] of `items`, the rest counted in `more`.
fn few<T>(mut items: Vec<T>, more: &mut usize) -> Vec<T> {
    if items.len() > MAX_PER_OBJECT {
        *more += items.len() - MAX_PER_OBJECT;
        items.truncate(MAX_PER_OBJECT);
    }
    items
}

/// 12 hex digits of an ID or digest.
pub fn short(id: &str) -> String {
    id.trim_start_matches("sha256:").chars().take(12).collect()
}

/// Keeps the first `max` of `items`, counting the rest under `kind`.
fn cap<T>(
    items: &mut Vec<T>,
    max: usize,
    kind: &'static str,
    more: &mut BTreeMap<&'static str, usize>,
) {
    if items.len() > max {
        *more.entry(kind).or_default() += items.len() - max;
        items.truncate(max);
    }
}

/// The model of a session whose nodes are `nodes` (name, scope).
pub fn build(
    engine: &Engine,
    session: &str,
    nodes: &[(String, String)],
    cache: &LayerCache,
) -> Model {
    let runtime = &engine.runtime;
    let mut m = Model {
        session: session.to_string(),
        nodes: nodes.iter().map(|(n, _)| n.clone()).collect(),
        ..Model::default()
    };
    for (node, scope) in nodes {
        add_networks(runtime, node, scope, &mut m);
        add_containers(runtime, node, scope, &mut m);
        for v in runtime.volumes().list(scope) {
            m.volumes.push(VolumeView {
                node: node.clone(),
                name: clip(&v.name),
                anonymous: v.anonymous,
            });
        }
        add_images(runtime, node, scope, cache, &mut m);
    }
    let mut more = std::mem::take(&mut m.more);
    cap(&mut m.networks, MAX_NETWORKS, "networks", &mut more);
    cap(&mut m.containers, MAX_CONTAINERS, "containers", &mut more);
    cap(&mut m.volumes, MAX_VOLUMES, "volumes", &mut more);
    cap(&mut m.images, MAX_IMAGES, "images", &mut more);
    m.more = more;
    let wanted: std::collections::HashSet<&String> =
        m.images.iter().flat_map(|i| &i.layers).collect();
    m.layers.retain(|k, _| wanted.contains(k));
    let state = engine.swarm.lock();
    if let Some(i) = nodes.iter().find_map(|(_, s)| state.cluster_of(s)) {
        let mut swarm = swarm_view(&state.clusters[i], nodes);
        if swarm.tasks.len() > MAX_TASKS {
            m.more.insert("tasks", swarm.tasks.len() - MAX_TASKS);
            swarm.tasks.truncate(MAX_TASKS);
        }
        m.swarm = Some(swarm);
    }
    m
}

fn add_networks(runtime: &Runtime, node: &str, scope: &str, m: &mut Model) {
    let Ok(list) = runtime.net().list(scope) else {
        return;
    };
    for n in list {
        m.networks.push(NetworkView {
            node: node.to_string(),
            driver: if n.overlay {
                "overlay".into()
            } else {
                n.driver.clone()
            },
            subnet: n.subnet.map(|s| s.to_string()).unwrap_or_default(),
            internal: n.internal,
            name: clip(&n.name),
        });
    }
}

fn add_containers(runtime: &Runtime, node: &str, scope: &str, m: &mut Model) {
    for c in runtime.list(scope) {
        let r = c.snapshot();
        let net = &r.config.networking;
        let live = runtime.net().endpoints(&c.id);
        let networks: Vec<String> = if !live.is_empty() {
            live.into_iter().map(|e| e.network_name).collect()
        } else {
            match net.mode.as_str() {
                "host" | "none" => vec![net.mode.clone()],
                m if m.starts_with("container:") => vec![],
                _ => net
                    .networks()
                    .into_iter()
                    .map(|(key, _)| match key.as_str() {
                        "default" => "bridge".to_string(),
                        _ => runtime
                            .net()
                            .get(scope, &key)
                            .map(|n| n.name)
                            .unwrap_or(key),
                    })
                    .collect(),
            }
        };
        let ports = runtime
            .net()
            .published(&c.id)
            .into_iter()
            .map(|p| PortView {
                port: p.port.number,
                proto: p.port.proto.as_str(),
                host_port: p.host_port,
            })
            .collect();
        use berth_runtime::container::config::MountConfig;
        let mounts = r
            .config
            .mounts
            .iter()
            // A swarm task's secret and config files are not shown, as
            // inspect's `Mounts` leaves them out.
            .filter(|mc| !matches!(mc, MountConfig::TaskFile { .. }))
            .map(|mc| match mc {
                MountConfig::Volume {
                    name,
                    target,
                    read_only,
                    ..
                } => MountView {
                    kind: "volume",
                    source: clip(name),
                    target: clip(target),
                    read_only: *read_only,
                },
                MountConfig::Bind {
                    source,
                    target,
                    read_only,
                } => MountView {
                    kind: "bind",
                    source: clip(&source.display().to_string()),
                    target: clip(target),
                    read_only: *read_only,
                },
                MountConfig::Tmpfs { target, .. } => MountView {
                    kind: "tmpfs",
                    source: String::new(),
                    target: clip(target),
                    read_only: false,
                },
                MountConfig::TaskFile { target, .. } => MountView {
                    kind: "file",
                    source: String::new(),
                    target: clip(target),
                    read_only: true,
                },
            })
            .collect();
        let mut left_out = 0;
        m.containers.push(ContainerView {
            id: short(&r.id),
            node: node.to_string(),
            image: clip(&r.config.image),
            image_id: short(&r.image_id),
            state: r.state.status.as_str().to_string(),
            health: r
                .state
                .health
                .as_ref()
                .map(|h| h.status.clone())
                .unwrap_or_default(),
            networks: few(networks.iter().map(|n| clip(n)).collect(), &mut left_out),
            ports: few(ports, &mut left_out),
            mounts: few(mounts, &mut left_out),
            left_out,
            name: clip(&r.name),
        });
    }
}

fn add_images(runtime: &Runtime, node: &str, scope: &str, cache: &LayerCache, m: &mut Model) {
    let Ok(list) = runtime.images().scope_images(scope) else {
        return;
    };
    let mut hidden = 0;
    for i in list {
        // What `docker images` hides the map hides too: build steps.
        if i.intermediate {
            continue;
        }
        if m.images.len() >= MAX_IMAGES {
            hidden += 1;
            continue;
        }
        let Some(layers) = cache.get(runtime, &i.id) else {
            continue;
        };
        let mut ids = Vec::with_capacity(layers.len());
        for l in layers.iter() {
            let id = short(&l.diff_id);
            m.layers.insert(id.clone(), l.size);
            ids.push(id);
        }
        m.images.push(ImageView {
            node: node.to_string(),
            id: short(&i.id),
            tags: few(i.tags.iter().map(|t| clip(t)).collect(), &mut 0),
            layers: ids,
        });
    }
    if hidden > 0 {
        *m.more.entry("images").or_default() += hidden;
    }
}

fn swarm_view(cluster: &Cluster, nodes: &[(String, String)]) -> SwarmView {
    let lab_node = |scope: &str| {
        nodes
            .iter()
            .find(|(_, s)| s == scope)
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    };
    let hostname: HashMap<&str, &str> = cluster
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), n.hostname.as_str()))
        .collect();
    let service_name: HashMap<&str, &str> = cluster
        .services
        .iter()
        .map(|s| (s.id.as_str(), s.name()))
        .collect();
    SwarmView {
        nodes: cluster
            .nodes
            .iter()
            .filter(|n| !n.left)
            .map(|n| SwarmNodeView {
                hostname: n.hostname.clone(),
                node: lab_node(&n.scope),
                role: n.role.clone(),
                availability: n.availability.clone(),
                leader: n.leader,
                down: n.is_down(),
            })
            .collect(),
        services: cluster
            .services
            .iter()
            .map(|s| ServiceView {
                name: clip(s.name()),
                image: clip(&crate::grading::swarm::service_image(s)),
                replicas: s.replicas(),
                ports: s
                    .ports()
                    .iter()
                    .map(|p| {
                        (
                            p["PublishedPort"].as_u64().unwrap_or(0),
                            p["TargetPort"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect(),
                update: s
                    .update_status
                    .as_ref()
                    .map(|u| u.state.clone())
                    .unwrap_or_default(),
            })
            .take(MAX_NETWORKS)
            .collect(),
        tasks: cluster
            .tasks
            .iter()
            .filter(|t| t.live())
            .map(|t| TaskView {
                id: short(&t.id),
                service: service_name
                    .get(t.service_id.as_str())
                    .map(|s| clip(s))
                    .unwrap_or_default(),
                slot: t.slot,
                node: hostname
                    .get(t.node_id.as_str())
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
                image: clip(
                    t.spec["ContainerSpec"]["Image"]
                        .as_str()
                        .unwrap_or("")
                        .split('@')
                        .next()
                        .unwrap_or(""),
                ),
                state: t.state.clone(),
            })
            .collect(),
    }
}
