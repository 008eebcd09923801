//! Networks: per-scope bridges, veth pairs, addresses, published ports and
//! name resolution.
//!
//! - [`netns`]: a scope's host network namespace ([`HostNamespace`]) and
//!   running code inside another namespace.
//! - [`netlink`]: the rtnetlink requests (links, addresses, routes).
//! - [`ipam`]: subnets, Docker's default pools, collision checks.
//! - [`ports`]: `-p` bindings and the userland proxy.
//! - [`dns`]: the embedded DNS of user-defined networks.
//! - [`egress`]: where the engine may connect on a learner's behalf.
//! - [`endpoint`]: a container's side: files, veths, addresses, proxies.
//!
//! Isolation: each network is its own bridge, and forwarding is switched off
//! on every bridge we make (`conf/<bridge>/forwarding = 0`), so the host never
//! routes between two networks (nor to the outside), whatever `ip_forward`
//! says. The host's own settings are never changed.

pub mod dns;
pub mod egress;
pub mod endpoint;
pub mod ipam;
pub mod netlink;
pub mod netns;
pub mod ports;
pub mod start;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

pub use endpoint::{ContainerNetworking, Endpoint, EndpointConfig};
pub use ipam::{Subnet, Subnet6};
pub use netns::HostNamespace;
pub use ports::{Port, PortBinding, Proto, Published};

/// Errors of networks and ports, in Docker's words.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// HTTP 404.
    #[error("network {0} not found")]
    NotFound(String),
    /// HTTP 409.
    #[error("{0}")]
    Conflict(String),
    /// HTTP 400.
    #[error("{0}")]
    Invalid(String),
    /// HTTP 403: the request is understood and refused.
    #[error("{0}")]
    Forbidden(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetError {
    let context = context.into();
    move |source| NetError::Io { context, source }
}

/// What a scope's networks and files are relative to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSettings {
    /// Where bridges live, `-p` listens and `--network host` points.
    pub host: HostNamespace,
    /// The filesystem bind-mount sources are resolved in (`/` for `berth
    /// daemon`, a lab's rootfs for a node).
    pub fs_root: PathBuf,
    /// The default bridge's interface name.
    pub default_bridge: String,
}

impl Default for ScopeSettings {
    fn default() -> Self {
        Self {
            host: HostNamespace::Current,
            fs_root: PathBuf::from("/"),
            default_bridge: "berth0".into(),
        }
    }
}

/// A network as `docker network inspect` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Network {
    pub id: String,
    pub name: String,
    pub scope: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub subnet: Option<Subnet>,
    pub gateway: Option<Ipv4Addr>,
    /// `--ip-range`: where addresses are picked from (inside `subnet`).
    pub ip_range: Option<Subnet>,
    /// `--aux-address`: addresses never given to a container.
    pub aux_addresses: BTreeMap<String, Ipv4Addr>,
    pub internal: bool,
    pub attachable: bool,
    /// The bridge interface in the scope's host namespace.
    pub bridge: String,
    pub created: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// A swarm's `overlay` network: shown with that driver and scope `swarm`,
    /// made as a bridge in each node's namespace where tasks use it.
    pub overlay: bool,
    /// The overlay this network is a part of: the ID of the network made on
    /// the manager, shared by its namesakes on other nodes (one subnet, one
    /// address space, one set of DNS names, one layer-2 segment).
    pub overlay_group: String,
    /// A swarm's routing-mesh network (`ingress`, made by `swarm init`).
    pub ingress: bool,
    /// `--ipv6`: containers also get an address of `subnet6`.
    pub enable_ipv6: bool,
    pub subnet6: Option<Subnet6>,
    pub gateway6: Option<Ipv6Addr>,
    pub ip_range6: Option<Subnet6>,
}

impl Default for Network {
    fn default() -> Self {
        Self {
            id: String::new(),
            name: String::new(),
            scope: String::new(),
            driver: "bridge".into(),
            subnet: None,
            gateway: None,
            ip_range: None,
            aux_addresses: BTreeMap::new(),
            internal: false,
            attachable: false,
            bridge: String::new(),
            created: String::new(),
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            overlay: false,
            overlay_group: String::new(),
            ingress: false,
            enable_ipv6: false,
            subnet6: None,
            gateway6: None,
            ip_range6: None,
        }
    }
}

impl Network {
    /// `bridge`, `host` and `none` exist in every scope and cannot be removed.
    pub fn predefined(&self) -> bool {
        matches!(self.name.as_str(), "bridge" | "host" | "none")
    }
}

/// What `network create` asks for.
#[derive(Debug, Clone, Default)]
pub struct NetworkRequest {
    pub name: String,
    pub driver: String,
    pub subnet: Option<String>,
    pub gateway: Option<String>,
    pub ip_range: Option<String>,
    pub aux_addresses: BTreeMap<String, String>,
    pub internal: bool,
    pub attachable: bool,
    /// `--ingress` (an overlay only).
    pub ingress: bool,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// `--ipv6`, with the IPv6 pool's subnet, gateway and range if given.
    pub enable_ipv6: bool,
    pub subnet6: Option<String>,
    pub gateway6: Option<String>,
    pub ip_range6: Option<String>,
}

/// Every network of every scope, and the live state of attached containers.
pub struct Networks {
    file: PathBuf,
    /// The default bridge's name for scopes that do not set one: `berth0`
    /// for the default data directory, a name derived from the directory
    /// otherwise (two engines on one host never share a bridge).
    default_bridge: String,
    pub(crate) state: Mutex<NetState>,
}

#[derive(Default)]
pub(crate) struct NetState {
    pub networks: BTreeMap<String, Network>,
    pub scopes: HashMap<String, ScopeSettings>,
    /// Live attachments of running containers, by container ID.
    pub live: HashMap<String, endpoint::Live>,
    /// DNS responders of user-defined networks with running members.
    pub dns: HashMap<String, dns::DnsServer>,
}

/// The IPv6 pool of a network asked with `--ipv6`: its subnet (a unique
/// local /64 when none is given), gateway and range, checked as the IPv4
/// pool is.
fn ipv6_pool(
    req: &NetworkRequest,
    ours: &[Subnet6],
) -> Result<(Subnet6, Ipv6Addr, Option<Subnet6>), NetError> {
    let subnet = match &req.subnet6 {
        Some(text) => {
            let s: Subnet6 = text.parse().map_err(NetError::Invalid)?;
            if s.prefix > 120 {
                return Err(NetError::Invalid(format!(
                    "invalid pool request: subnet {s} is too small: the prefix length is at most 120"
                )));
            }
            if ours.iter().any(|o| o.overlaps(&s)) {
                return Err(NetError::Forbidden(
                    "invalid pool request: Pool overlaps with other one on this address space"
                        .into(),
                ));
            }
            s
        }
        None => ipam::unique_local_64(ours),
    };
    let gateway = match &req.gateway6 {
        Some(g) => {
            let ip: Ipv6Addr = g
                .parse()
                .map_err(|_| NetError::Invalid(format!("invalid gateway address: {g}")))?;
            if !subnet.contains(ip) {
                return Err(NetError::Forbidden(format!(
                    "no matching subnet for gateway {g}"
                )));
            }
            ip
        }
        None => subnet.gateway(),
    };
    let range = match &req.ip_range6 {
        Some(text) => {
            let r: Subnet6 = text.parse().map_err(NetError::Invalid)?;
            if !subnet.covers(&r) {
                return Err(NetError::Invalid(format!(
                    "invalid ip-range {text}: parent subnet {subnet} doesn't contain ip-range"
                )));
            }
            Some(r)
        }
        None => None,
    };
    Ok((subnet, gateway, range))
}

fn short_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Networks {
    /// Opens the networks saved in `<data_root>/networks.json`.
    pub fn open(data_root: &std::path::Path) -> Result<Self, NetError> {
        let file = data_root.join("networks.json");
        let default_bridge = if data_root == std::path::Path::new("/var/lib/berth") {
            "berth0".to_string()
        } else {
            format!(
                "berth-{}",
                &short_hash(&data_root.display().to_string())[..8]
            )
        };
        let networks: Vec<Network> = match fs::read(&file) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| {
                io_err(format!("read {}", file.display()))(std::io::Error::other(e))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(format!("read {}", file.display()))(e)),
        };
        let state = NetState {
            networks: networks.into_iter().map(|n| (n.id.clone(), n)).collect(),
            ..NetState::default()
        };
        Ok(Self {
            file,
            default_bridge,
            state: Mutex::new(state),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, NetState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn save(&self, state: &NetState) -> Result<(), NetError> {
        let list: Vec<&Network> = state.networks.values().collect();
        let tmp = self.file.with_extension("tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(&list).unwrap_or_default())
            .and_then(|_| fs::rename(&tmp, &self.file))
            .map_err(io_err(format!("write {}", self.file.display())))
    }

    /// Sets where `scope`'s networks and bind sources live.
    pub fn configure_scope(&self, scope: &str, settings: ScopeSettings) {
        self.lock().scopes.insert(scope.to_string(), settings);
    }

    /// The settings of `scope` (the defaults unless configured).
    pub fn scope_settings(&self, scope: &str) -> ScopeSettings {
        let state = self.lock();
        self.settings_of(&state, scope)
    }

    pub(crate) fn settings_of(&self, state: &NetState, scope: &str) -> ScopeSettings {
        state
            .scopes
            .get(scope)
            .cloned()
            .unwrap_or_else(|| ScopeSettings {
                default_bridge: self.default_bridge.clone(),
                ..ScopeSettings::default()
            })
    }

    /// The predefined networks of `scope`, the default bridge made (and
    /// saved) on first use with a subnet that collides with no route.
    fn ensure_defaults(&self, state: &mut NetState, scope: &str) -> Result<(), NetError> {
        if state
            .networks
            .values()
            .any(|n| n.scope == scope && n.name == "bridge")
        {
            return Ok(());
        }
        let settings = self.settings_of(state, scope);
        let _host_lock = host_lock(&settings.host);
        let mut taken: Vec<Subnet> = state
            .networks
            .values()
            .filter(|n| n.scope == scope)
            .filter_map(|n| n.subnet)
            .collect();
        taken.extend(
            settings
                .host
                .run(|| Ok(ipam::host_routes()))
                .unwrap_or_default(),
        );
        let subnet = ipam::pick(&taken)
            .ok_or_else(|| NetError::Forbidden("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into()))?;
        let now = crate::container::state::now_rfc3339();
        for (name, driver) in [("bridge", "bridge"), ("host", "host"), ("none", "null")] {
            let mut n = Network {
                id: short_hash(&format!("{scope}/{name}")),
                name: name.into(),
                scope: scope.into(),
                driver: driver.into(),
                created: now.clone(),
                ..Network::default()
            };
            if name == "bridge" {
                n.subnet = Some(subnet);
                n.gateway = Some(subnet.gateway());
                n.bridge = settings.default_bridge.clone();
                n.options.insert(
                    "com.docker.network.bridge.name".into(),
                    settings.default_bridge.clone(),
                );
                n.options.insert(
                    "com.docker.network.bridge.default_bridge".into(),
                    "true".into(),
                );
                // Made now, while the lock is held: its route claims the subnet.
                endpoint::ensure_bridge(&settings.host, &n)?;
            }
            state.networks.insert(n.id.clone(), n);
        }
        self.save(state)
    }

    /// Every network of `scope`.
    pub fn list(&self, scope: &str) -> Result<Vec<Network>, NetError> {
        let mut state = self.lock();
        self.ensure_defaults(&mut state, scope)?;
        Ok(state
            .networks
            .values()
            .filter(|n| n.scope == scope)
            .cloned()
            .collect())
    }

    /// Finds a network by full ID, name, or ID prefix (Docker's order).
    pub fn get(&self, scope: &str, key: &str) -> Result<Network, NetError> {
        let mut state = self.lock();
        self.ensure_defaults(&mut state, scope)?;
        find(&state, scope, key).cloned()
    }

    /// A network of any scope by its full ID.
    pub fn by_id(&self, id: &str) -> Option<Network> {
        self.lock().networks.get(id).cloned()
    }

    /// The part of overlay `origin` in `scope` (another node of its swarm):
    /// the same name, subnet and gateway, made if it is not there yet.
    pub fn overlay_member(&self, scope: &str, origin: &Network) -> Result<Network, NetError> {
        let mut state = self.lock();
        self.ensure_defaults(&mut state, scope)?;
        if let Some(n) = state
            .networks
            .values()
            .find(|n| n.scope == scope && n.name == origin.name)
        {
            return Ok(n.clone());
        }
        let settings = self.settings_of(&state, scope);
        let subnet = origin
            .subnet
            .ok_or_else(|| NetError::Invalid(format!("network {} has no subnet", origin.name)))?;
        if state
            .networks
            .values()
            .filter(|n| n.scope == scope)
            .filter_map(|n| n.subnet)
            .any(|o| o.overlaps(&subnet))
        {
            return Err(NetError::Forbidden(format!(
                "overlay {} ({subnet}) overlaps a network of this node",
                origin.name
            )));
        }
        let id = crate::container::names::new_id();
        let network = Network {
            id: id.clone(),
            scope: scope.into(),
            bridge: format!("br-{}", &id[..12]),
            created: crate::container::state::now_rfc3339(),
            overlay_group: if origin.overlay_group.is_empty() {
                origin.id.clone()
            } else {
                origin.overlay_group.clone()
            },
            ..origin.clone()
        };
        endpoint::ensure_bridge(&settings.host, &network)?;
        state.networks.insert(id, network.clone());
        self.save(&state)?;
        Ok(network)
    }

    /// Every network of an overlay group (one per node that has it).
    pub fn overlay_parts(&self, group: &str) -> Vec<Network> {
        if group.is_empty() {
            return Vec::new();
        }
        self.lock()
            .networks
            .values()
            .filter(|n| n.overlay_group == group)
            .cloned()
            .collect()
    }

    /// `network create`.
    pub fn create(&self, scope: &str, req: NetworkRequest) -> Result<Network, NetError> {
        let overlay = req.driver == "overlay";
        let driver = if req.driver.is_empty() || overlay {
            "bridge".to_string()
        } else {
            req.driver.clone()
        };
        if driver != "bridge" {
            return Err(NetError::Invalid(format!(
                "could not find plugin {driver} in v1 plugin registry: plugin not found"
            )));
        }
        if req.name.is_empty() {
            return Err(NetError::Invalid("network name is empty".into()));
        }
        let mut state = self.lock();
        self.ensure_defaults(&mut state, scope)?;
        if state
            .networks
            .values()
            .any(|n| n.scope == scope && n.name == req.name)
        {
            return Err(NetError::Conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let settings = self.settings_of(&state, scope);
        let _host_lock = host_lock(&settings.host);
        let ours: Vec<Subnet> = state
            .networks
            .values()
            .filter(|n| n.scope == scope)
            .filter_map(|n| n.subnet)
            .collect();
        let subnet = match &req.subnet {
            Some(text) => {
                let s: Subnet = text.parse().map_err(NetError::Invalid)?;
                if ours.iter().any(|o| o.overlaps(&s)) {
                    return Err(NetError::Forbidden(
                        "invalid pool request: Pool overlaps with other one on this address space"
                            .into(),
                    ));
                }
                s
            }
            None => {
                let mut taken = ours.clone();
                taken.extend(
                    settings
                        .host
                        .run(|| Ok(ipam::host_routes()))
                        .unwrap_or_default(),
                );
                ipam::pick(&taken).ok_or_else(|| {
                    NetError::Forbidden("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network".into())
                })?
            }
        };
        let gateway = match &req.gateway {
            Some(g) => {
                let ip: Ipv4Addr = g
                    .parse()
                    .map_err(|_| NetError::Invalid(format!("invalid gateway address: {g}")))?;
                if !subnet.contains(ip) {
                    return Err(NetError::Forbidden(format!(
                        "no matching subnet for gateway {g}"
                    )));
                }
                ip
            }
            None => subnet.gateway(),
        };
        let ip_range = match &req.ip_range {
            Some(text) => {
                let r: Subnet = text.parse().map_err(NetError::Invalid)?;
                if !subnet.covers(&r) {
                    return Err(NetError::Invalid(format!(
                        "invalid ip-range {text}: parent subnet {subnet} doesn't contain ip-range"
                    )));
                }
                Some(r)
            }
            None => None,
        };
        let mut aux_addresses = BTreeMap::new();
        for (name, text) in &req.aux_addresses {
            let ip: Ipv4Addr = text.parse().map_err(|_| {
                NetError::Invalid(format!("invalid auxiliary address {name}: {text}"))
            })?;
            if !subnet.contains(ip) {
                return Err(NetError::Invalid(format!(
                    "invalid auxiliary address {name}: parent subnet {subnet} doesn't contain ip address {text}"
                )));
            }
            aux_addresses.insert(name.clone(), ip);
        }
        let v6 = if req.enable_ipv6 {
            let ours6: Vec<Subnet6> = state
                .networks
                .values()
                .filter(|n| n.scope == scope)
                .filter_map(|n| n.subnet6)
                .collect();
            Some(ipv6_pool(&req, &ours6)?)
        } else if req.subnet6.is_some() {
            return Err(NetError::Invalid(
                "an IPv6 subnet was given but IPv6 is not enabled on the network (--ipv6)".into(),
            ));
        } else {
            None
        };
        let id = crate::container::names::new_id();
        let bridge = match req.options.get("com.docker.network.bridge.name") {
            Some(name) => {
                // An interface that exists already (the host's `eth0`) is
                // not ours to enslave veths to, nor to delete with the
                // network.
                let valid = !name.is_empty()
                    && name.len() < 16
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                    && name != "."
                    && name != "..";
                if !valid {
                    return Err(NetError::Invalid(format!("invalid bridge name: {name:?}")));
                }
                let in_use = settings
                    .host
                    .run(|| Ok(endpoint::interface_exists(name)))
                    .unwrap_or(true);
                if in_use {
                    return Err(NetError::Forbidden(format!(
                        "bridge name {name} is already in use by an interface of the host"
                    )));
                }
                name.clone()
            }
            None => format!("br-{}", &id[..12]),
        };
        let network = Network {
            id: id.clone(),
            name: req.name,
            scope: scope.into(),
            driver,
            subnet: Some(subnet),
            gateway: Some(gateway),
            ip_range,
            aux_addresses,
            internal: req.internal,
            attachable: req.attachable,
            bridge,
            created: crate::container::state::now_rfc3339(),
            labels: req.labels,
            options: req.options,
            overlay,
            overlay_group: if overlay { id.clone() } else { String::new() },
            ingress: overlay && req.ingress,
            enable_ipv6: v6.is_some(),
            subnet6: v6.map(|p| p.0),
            gateway6: v6.map(|p| p.1),
            ip_range6: v6.and_then(|p| p.2),
        };
        endpoint::ensure_bridge(&settings.host, &network)?;
        state.networks.insert(id, network.clone());
        if let Err(e) = self.save(&state) {
            state.networks.remove(&network.id);
            endpoint::remove_bridge(&settings.host, &network.bridge);
            return Err(e);
        }
        Ok(network)
    }

    /// `network rm`: refused for predefined networks and networks with
    /// running members.
    pub fn remove(&self, scope: &str, key: &str) -> Result<Network, NetError> {
        let mut state = self.lock();
        self.ensure_defaults(&mut state, scope)?;
        let network = find(&state, scope, key)?.clone();
        if network.predefined() {
            return Err(NetError::Forbidden(format!(
                "{} is a pre-defined network and cannot be removed",
                network.name
            )));
        }
        if state
            .live
            .values()
            .any(|l| l.endpoints.iter().any(|e| e.network_id == network.id))
        {
            return Err(NetError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                network.name, network.id
            )));
        }
        let settings = self.settings_of(&state, scope);
        state.dns.remove(&network.id);
        endpoint::remove_bridge(&settings.host, &network.bridge);
        state.networks.remove(&network.id);
        self.save(&state)?;
        Ok(network)
    }

    /// The containers (IDs) attached to a network now, with their endpoints.
    pub fn members(&self, network_id: &str) -> Vec<(String, Endpoint)> {
        let state = self.lock();
        let mut out = Vec::new();
        for (id, live) in &state.live {
            for e in &live.endpoints {
                if e.network_id == network_id {
                    out.push((id.clone(), e.clone()));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Forgets `scope` (a node torn down): its settings and networks. Their
    /// bridges went with the node's network namespace.
    pub fn forget_scope(&self, scope: &str) {
        let mut state = self.lock();
        state.scopes.remove(scope);
        let ids: Vec<String> = state
            .networks
            .values()
            .filter(|n| n.scope == scope)
            .map(|n| n.id.clone())
            .collect();
        for id in &ids {
            state.networks.remove(id);
            state.dns.remove(id);
        }
        if !ids.is_empty() {
            let _ = self.save(&state);
        }
    }

    /// When the engine stops: removes the bridges of networks no running
    /// container uses (`keep` lists the networks still in use).
    pub fn shutdown(&self, keep: &[String]) {
        let mut state = self.lock();
        state.dns.clear();
        for n in state.networks.values() {
            if n.driver == "bridge" && !keep.contains(&n.id) {
                let settings = self.settings_of(&state, &n.scope);
                endpoint::remove_bridge(&settings.host, &n.bridge);
            }
        }
    }
}

/// Engines sharing one namespace (several `berth daemon`s on a host) pick
/// subnets one at a time: a lock file in /run, held until the new bridge
/// (and so its route) exists. A node's namespace belongs to one engine.
fn host_lock(host: &HostNamespace) -> Option<nix::fcntl::Flock<fs::File>> {
    if *host != HostNamespace::Current {
        return None;
    }
    let file = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open("/run/berth-net.lock")
        .ok()?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).ok()
}

/// Looks a network up by ID, name or unique ID prefix.
pub(crate) fn find<'a>(
    state: &'a NetState,
    scope: &str,
    key: &str,
) -> Result<&'a Network, NetError> {
    let in_scope = || state.networks.values().filter(move |n| n.scope == scope);
    if let Some(n) = in_scope().find(|n| n.id == key) {
        return Ok(n);
    }
    if let Some(n) = in_scope().find(|n| n.name == key) {
        return Ok(n);
    }
    let prefixed: Vec<&Network> = in_scope().filter(|n| n.id.starts_with(key)).collect();
    match prefixed.as_slice() {
        [one] if !key.is_empty() => Ok(one),
        [] | [_] => Err(NetError::NotFound(key.to_string())),
        _ => Err(NetError::Conflict(format!(
            "network {key} is ambiguous ({} matches found based on ID prefix)",
            prefixed.len()
        ))),
    }
}
