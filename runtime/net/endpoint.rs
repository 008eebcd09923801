//! A container's side of networking: its configuration (mode, networks,
//! aliases, ports), the files Docker writes for it (/etc/hosts,
//! /etc/resolv.conf, /etc/hostname), and at start the veth pairs, addresses,
//! routes, DNS records and port proxies, all undone by [`Networks::release`].

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::netlink::{index_of, Netlink};
use super::netns::{in_namespace_file, HostNamespace};
use super::ports::{self, Port, PortBinding, Proxy, Published};
use super::{find, io_err, NetError, NetState, Network, Networks};

/// How a container is networked, as `docker run`/`network connect` asked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerNetworking {
    /// `""`/`default`/`bridge`, `none`, `host`, `container:NAME`, or the
    /// name of a user-defined network.
    pub mode: String,
    /// The networks attached at start, by name, with their aliases.
    pub endpoints: BTreeMap<String, EndpointConfig>,
    /// `-p` bindings.
    pub ports: Vec<PortBinding>,
    /// `-P`: publish every exposed port on a free host port.
    pub publish_all: bool,
    /// `--add-host` entries as (name, address), checked by
    /// [`parse_extra_host`]: more lines of the container's `/etc/hosts`.
    pub extra_hosts: Vec<(String, String)>,
}

/// The `--add-host` address that stands for the host: the default
/// bridge's gateway, as dockerd's `host-gateway-ip` defaults to it.
pub const HOST_GATEWAY: &str = "host-gateway";

/// One `--add-host` entry (`name:ip` or `name=ip`; an IPv6 address may be
/// in brackets), in Docker's words when it is not one. The name must be one
/// word: it becomes a line of the container's `/etc/hosts`.
pub fn parse_extra_host(entry: &str) -> Result<(String, String), String> {
    parse_host_entry(entry, false)
}

/// [`parse_extra_host`] for a container, where the address may also be
/// [`HOST_GATEWAY`] (resolved when the container starts).
pub fn parse_container_extra_host(entry: &str) -> Result<(String, String), String> {
    parse_host_entry(entry, true)
}

fn parse_host_entry(entry: &str, gateway: bool) -> Result<(String, String), String> {
    let (name, ip) = entry
        .split_once('=')
        .or_else(|| entry.split_once(':'))
        .filter(|(name, _)| {
            !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control())
        })
        .ok_or_else(|| format!("bad format for add-host: {entry:?}"))?;
    let bare = ip
        .strip_prefix('[')
        .and_then(|i| i.strip_suffix(']'))
        .unwrap_or(ip);
    if gateway && bare == HOST_GATEWAY {
        return Ok((name.to_string(), HOST_GATEWAY.to_string()));
    }
    let addr: std::net::IpAddr = bare
        .parse()
        .map_err(|_| format!("invalid IP address in add-host: {ip:?}"))?;
    Ok((name.to_string(), addr.to_string()))
}

/// One network's settings for a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointConfig {
    pub aliases: Vec<String>,
    /// `--ip`: a fixed address inside the network's subnet (checked by
    /// [`check_endpoint`]).
    pub ipv4_address: Option<Ipv4Addr>,
    /// `--mac-address`: a unicast address for the container's side of
    /// the veth, which lives in the container's own namespace.
    pub mac_address: Option<[u8; 6]>,
    /// Legacy links, `container:alias`: written to the hosts file.
    pub links: Vec<String>,
    /// Kept and shown; the bridge driver reads none of them.
    pub driver_opts: BTreeMap<String, String>,
    /// `--ip6`: a fixed address inside the network's IPv6 subnet.
    pub ipv6_address: Option<Ipv6Addr>,
    /// `--link-local-ip`: more addresses on the interface (IPv4
    /// 169.254.0.0/16 or IPv6 fe80::/10 only, checked where they enter).
    pub link_local_ips: Vec<IpAddr>,
}

/// A MAC address as Docker takes it; multicast and all-zero addresses are
/// refused as the kernel would refuse them on the interface.
pub fn parse_mac(text: &str) -> Result<[u8; 6], NetError> {
    let bad = || NetError::Invalid(format!("invalid MAC address {text}"));
    let parts: Vec<&str> = text.split([':', '-']).collect();
    if parts.len() != 6 {
        return Err(bad());
    }
    let mut mac = [0u8; 6];
    for (b, p) in mac.iter_mut().zip(&parts) {
        if p.len() != 2 {
            return Err(bad());
        }
        *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
    }
    if mac[0] & 1 == 1 || mac == [0; 6] {
        return Err(bad());
    }
    Ok(mac)
}

/// Text of a MAC address, as `ip link` shows it.
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Checks a container's settings for `network` as Docker does before
/// attaching: a fixed address only on a user-defined network and inside
/// its subnet.
pub fn check_endpoint(network: &Network, cfg: &EndpointConfig) -> Result<(), NetError> {
    if let Some(ip) = cfg.ipv6_address {
        if network.predefined() {
            return Err(NetError::Invalid(
                "user specified IP address is supported on user defined networks only".into(),
            ));
        }
        let inside = network
            .subnet6
            .filter(|_| network.enable_ipv6)
            .is_some_and(|s| s.contains(ip) && !s.is_edge(ip));
        if !inside || Some(ip) == network.gateway6 {
            return Err(NetError::Invalid(format!(
                "no configured subnet or ip-range contain the IP address {ip}"
            )));
        }
    }
    let Some(ip) = cfg.ipv4_address else {
        return Ok(());
    };
    if network.predefined() {
        return Err(NetError::Invalid(
            "user specified IP address is supported on user defined networks only".into(),
        ));
    }
    let inside = network
        .subnet
        .is_some_and(|s| s.contains(ip) && !s.is_edge(ip));
    if !inside || Some(ip) == network.gateway {
        return Err(NetError::Invalid(format!(
            "no configured subnet or ip-range contain the IP address {ip}"
        )));
    }
    Ok(())
}

/// The network mode, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    None,
    Host,
    Container(String),
    /// A bridge network by name (`bridge` is the default one).
    Network(String),
}

impl ContainerNetworking {
    pub fn kind(&self) -> Mode {
        match self.mode.as_str() {
            "" | "default" | "bridge" => Mode::Network("bridge".into()),
            "none" => Mode::None,
            "host" => Mode::Host,
            m => match m.strip_prefix("container:") {
                Some(c) => Mode::Container(c.to_string()),
                None => Mode::Network(m.to_string()),
            },
        }
    }

    /// Docker's `HostConfig.NetworkMode` text.
    pub fn mode_text(&self) -> String {
        if self.mode.is_empty() {
            "bridge".into()
        } else {
            self.mode.clone()
        }
    }

    /// The networks to attach at start, the mode's own first.
    pub fn networks(&self) -> Vec<(String, EndpointConfig)> {
        let mut out = Vec::new();
        if let Mode::Network(first) = self.kind() {
            out.push((
                first.clone(),
                self.endpoints.get(&first).cloned().unwrap_or_default(),
            ));
            for (name, cfg) in &self.endpoints {
                if *name != first && !(first == "bridge" && name == "default") {
                    out.push((name.clone(), cfg.clone()));
                }
            }
        }
        out
    }
}

/// A container's attachment to one network while it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub endpoint_id: String,
    pub network_id: String,
    pub network_name: String,
    pub ip: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Ipv4Addr,
    pub mac: [u8; 6],
    /// The host side of the veth pair, on the network's bridge.
    pub host_veth: String,
    pub bridge: String,
    /// The container side (`eth0`, `eth1`…).
    pub ifname: String,
    pub aliases: Vec<String>,
    pub internal: bool,
    /// User-defined networks resolve names; the default bridge does not.
    pub dns: bool,
    /// Legacy links on this network: (container name, alias), lower case.
    #[serde(default)]
    pub links: Vec<(String, String)>,
    /// The IPv6 address on an `--ipv6` network, with its prefix and the
    /// bridge's address.
    #[serde(default)]
    pub ip6: Option<Ipv6Addr>,
    #[serde(default)]
    pub prefix6: u8,
    #[serde(default)]
    pub gateway6: Option<Ipv6Addr>,
    /// `--link-local-ip` addresses, on the interface too.
    #[serde(default)]
    pub link_local: Vec<IpAddr>,
}

/// (container name, alias) of a link's `name:alias` text (checked where
/// it entered the API).
pub fn link_pair(text: &str) -> (String, String) {
    let (name, alias) = text.split_once(':').unwrap_or((text, text));
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    (
        name.trim_start_matches('/').to_ascii_lowercase(),
        alias.to_ascii_lowercase(),
    )
}

impl Endpoint {
    pub fn mac_text(&self) -> String {
        mac_text(&self.mac)
    }
}

/// A running container's live network state.
#[derive(Debug, Default)]
pub struct Live {
    pub scope: String,
    pub name: String,
    pub short_id: String,
    pub endpoints: Vec<Endpoint>,
    pub proxies: Vec<Proxy>,
    /// The container's resolv.conf (bound over its /etc/resolv.conf).
    pub resolv: Option<PathBuf>,
}

/// A running container's attachments as saved on disk, so an engine that
/// restarts while the container runs takes its addresses, names and
/// published ports back.
#[derive(Debug, Serialize, Deserialize)]
struct SavedLive {
    scope: String,
    name: String,
    short_id: String,
    endpoints: Vec<Endpoint>,
    published: Vec<Published>,
    #[serde(default)]
    resolv: Option<PathBuf>,
}

/// How the container gets its network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceChoice {
    /// A new one, wired by the engine before the command runs.
    Own { wire: bool },
    /// Join this namespace file (another container's, or a node's host).
    Join(PathBuf),
    /// Stay in the engine's namespace (`--network host` for `berth daemon`).
    Shared,
}

/// What a start needs from networking.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub namespace: NamespaceChoice,
    /// Files to bind over the image's: (source, target).
    pub files: Vec<(PathBuf, String)>,
}

/// The container being started.
pub struct StartRequest<'a> {
    pub scope: &'a str,
    pub id: &'a str,
    pub name: &'a str,
    pub hostname: &'a str,
    /// The container's directory, where its hosts/resolv.conf/hostname go.
    pub dir: &'a Path,
    /// Host uid (and gid) of the container's root, owner of those files.
    pub owner: Option<u32>,
    pub networking: &'a ContainerNetworking,
    /// Ports the container and its image expose (for `-P`).
    pub exposed: Vec<Port>,
    /// For `container:NAME`: that container's pid and directory.
    pub joined: Option<(i32, PathBuf)>,
    /// Hosts-file lines of the container's legacy links.
    pub links_hosts: String,
}

const HOSTS_HEADER: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

/// A random locally administered MAC (as Docker 26+ gives): a restarted
/// container that gets the same address never looks like the old port to
/// the bridge.
fn random_mac() -> [u8; 6] {
    use rand::Rng;
    let mut mac: [u8; 6] = rand::thread_rng().gen();
    mac[0] = (mac[0] & 0xfe) | 0x02;
    mac
}

fn random_hex(n: usize) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..n)
        .map(|_| format!("{:x}", rng.gen_range(0..16)))
        .collect()
}

/// Makes the bridge of `network` in `host` if it is missing: link, gateway
/// address, up, and no forwarding from it (isolation).
pub fn ensure_bridge(host: &HostNamespace, network: &Network) -> Result<(), NetError> {
    let (Some(subnet), Some(gateway)) = (network.subnet, network.gateway) else {
        return Ok(());
    };
    let name = network.bridge.clone();
    host.run(|| {
        if index_of(&name).is_ok() {
            return Ok(());
        }
        let nl = Netlink::open()?;
        nl.add_bridge(&name)?;
        let index = index_of(&name)?;
        nl.add_address(index, gateway, subnet.prefix)?;
        if let (Some(subnet6), Some(gateway6)) = (network.subnet6, network.gateway6) {
            enable_ipv6_on(&name)?;
            nl.add_address6(index, gateway6, subnet6.prefix)?;
        }
        nl.set_up(index, None)?;
        // Packets arriving on this bridge are never routed elsewhere.
        fs::write(format!("/proc/sys/net/ipv4/conf/{name}/forwarding"), "0")?;
        Ok(())
    })
    .map_err(io_err(format!("create bridge {}", network.bridge)))
}

/// Lets interface `name` of the calling thread's namespace hold IPv6
/// addresses (a namespace or host may start with IPv6 off on new links).
fn enable_ipv6_on(name: &str) -> std::io::Result<()> {
    let knob = format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6");
    match fs::write(&knob, "0") {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(std::io::Error::other(
            "IPv6 is not available on this host (no /proc/sys/net/ipv6)",
        )),
        other => other,
    }
}

/// Whether an interface called `name` exists in the calling thread's
/// namespace.
pub fn interface_exists(name: &str) -> bool {
    index_of(name).is_ok()
}

/// Deletes a bridge (and so its addresses and routes) if present.
pub fn remove_bridge(host: &HostNamespace, name: &str) {
    let name = name.to_string();
    let _ = host.run(|| {
        let index = index_of(&name)?;
        Netlink::open()?.delete_link(index)
    });
}

fn write_owned(path: &Path, text: &str, owner: Option<u32>) -> Result<(), NetError> {
    fs::write(path, text).map_err(io_err(format!("write {}", path.display())))?;
    if let Some(uid) = owner {
        std::os::unix::fs::chown(path, Some(uid), Some(uid))
            .map_err(io_err(format!("chown {}", path.display())))?;
    }
    Ok(())
}

/// The most of a scope's `/etc/hosts` or `/etc/resolv.conf` copied.
const MAX_SCOPE_FILE: u64 = 64 << 10;

/// A small file of the scope's filesystem root: for a classroom node that
/// is the lab's tree, which the learner controls, so it is resolved in-root
/// (a `/etc/resolv.conf -> /etc/shadow` link names the lab's own file),
/// must be a regular file (a fifo would hang the engine) and is read to a
/// bound.
fn read_scope_file(fs_root: &Path, rel: &str) -> Option<String> {
    use std::io::Read;
    let tree = crate::volume::intree::Tree::open(fs_root).ok()?;
    let file = tree.open_file_following(Path::new(rel)).ok()?;
    let mut bytes = Vec::new();
    file.take(MAX_SCOPE_FILE).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// The resolv.conf of a container on the default bridge (or host/none):
/// the scope's own nameservers, minus loopback ones, as Docker copies them.
fn copied_resolv_conf(fs_root: &Path) -> String {
    let text = read_scope_file(fs_root, "etc/resolv.conf").unwrap_or_default();
    let mut out = String::new();
    let mut servers = 0;
    for line in text.lines() {
        let t = line.trim();
        if let Some(ns) = t.strip_prefix("nameserver") {
            let ns = ns.trim();
            if ns.starts_with("127.") || ns == "::1" {
                continue;
            }
            servers += 1;
        }
        if t.starts_with("nameserver") || t.starts_with("search") || t.starts_with("options") {
            out.push_str(t);
            out.push('\n');
        }
    }
    if servers == 0 {
        out.push_str("nameserver 8.8.8.8\nnameserver 8.8.4.4\n");
    }
    out
}

impl Networks {
    /// Before a start: allocates addresses, binds published ports and
    /// writes the container's files. Undone by [`Networks::release`].
    pub fn prepare(&self, req: StartRequest<'_>) -> Result<Prepared, NetError> {
        let settings = self.scope_settings(req.scope);
        let hosts = req.dir.join("hosts");
        let resolv = req.dir.join("resolv.conf");
        let hostname = req.dir.join("hostname");
        let files = |dir: &Path| {
            vec![
                (dir.join("hosts"), "/etc/hosts".to_string()),
                (dir.join("resolv.conf"), "/etc/resolv.conf".to_string()),
                (dir.join("hostname"), "/etc/hostname".to_string()),
            ]
        };
        write_owned(&hostname, &format!("{}\n", req.hostname), req.owner)?;
        let mut extra = String::new();
        for (name, ip) in &req.networking.extra_hosts {
            let ip = if ip == HOST_GATEWAY {
                match self.get(req.scope, "bridge").ok().and_then(|b| b.gateway) {
                    Some(gw) => gw.to_string(),
                    None => continue,
                }
            } else {
                ip.clone()
            };
            extra.push_str(&format!("{ip}\t{name}\n"));
        }
        let plain_hosts = format!("{HOSTS_HEADER}{extra}");
        let namespace = match req.networking.kind() {
            Mode::None => {
                write_owned(&hosts, &plain_hosts, req.owner)?;
                write_owned(&resolv, &copied_resolv_conf(&settings.fs_root), req.owner)?;
                NamespaceChoice::Own { wire: false }
            }
            Mode::Host => {
                let host_hosts = match read_scope_file(&settings.fs_root, "etc/hosts") {
                    Some(text) if text.ends_with('\n') || text.is_empty() => text + &extra,
                    Some(text) => format!("{text}\n{extra}"),
                    None => plain_hosts.clone(),
                };
                write_owned(&hosts, &host_hosts, req.owner)?;
                let resolv_text =
                    read_scope_file(&settings.fs_root, "etc/resolv.conf").unwrap_or_default();
                write_owned(&resolv, &resolv_text, req.owner)?;
                match settings.host.path() {
                    Some(p) => NamespaceChoice::Join(p.to_path_buf()),
                    None => NamespaceChoice::Shared,
                }
            }
            Mode::Container(_) => {
                let (pid, dir) = req.joined.clone().ok_or_else(|| {
                    NetError::Conflict("cannot join network of a non running container".into())
                })?;
                return Ok(Prepared {
                    namespace: NamespaceChoice::Join(PathBuf::from(format!("/proc/{pid}/ns/net"))),
                    files: files(&dir),
                });
            }
            Mode::Network(_) => {
                let endpoints = self.allocate(&req)?;
                let mut text = plain_hosts;
                text.push_str(&req.links_hosts);
                if let Some(e) = endpoints.first() {
                    text.push_str(&format!("{}\t{}\n", e.ip, req.hostname));
                    if let Some(ip6) = e.ip6 {
                        text.push_str(&format!("{ip6}\t{}\n", req.hostname));
                    }
                }
                let resolv_text = match endpoints.first() {
                    Some(e) if e.dns => format!("nameserver {}\noptions ndots:0\n", e.gateway),
                    _ => copied_resolv_conf(&settings.fs_root),
                };
                let written = write_owned(&hosts, &text, req.owner)
                    .and_then(|_| write_owned(&resolv, &resolv_text, req.owner));
                if let Err(e) = written {
                    self.release(req.id);
                    return Err(e);
                }
                NamespaceChoice::Own { wire: true }
            }
        };
        Ok(Prepared {
            namespace,
            files: files(req.dir),
        })
    }

    /// Addresses on every network of the container, and its port proxies.
    fn allocate(&self, req: &StartRequest<'_>) -> Result<Vec<Endpoint>, NetError> {
        let mut state = self.lock();
        self.ensure_defaults_locked(&mut state, req.scope)?;
        let mut endpoints = Vec::new();
        for (i, (name, cfg)) in req.networking.networks().into_iter().enumerate() {
            let network = find(&state, req.scope, &name)?.clone();
            if network.driver != "bridge" {
                continue;
            }
            check_endpoint(&network, &cfg)?;
            let ip = next_ip(&state, &network, &endpoints, cfg.ipv4_address)?;
            let ip6 = next_ip6(&state, &network, &endpoints, cfg.ipv6_address)?;
            let mut e = new_endpoint(&network, ip, i, cfg);
            e.ip6 = ip6;
            endpoints.push(e);
        }
        // Published ports: explicit bindings, then -P for the rest.
        let mut bindings = req.networking.ports.clone();
        if req.networking.publish_all {
            for port in &req.exposed {
                if !bindings.iter().any(|b| b.port == *port) {
                    bindings.push(PortBinding {
                        port: *port,
                        host_ip: None,
                        host_port: 0,
                    });
                }
            }
        }
        let mut proxies = Vec::new();
        if let Some(first) = endpoints.first() {
            let settings = self.settings_of(&state, req.scope);
            for b in &bindings {
                if b.host_port != 0 {
                    let taken = state
                        .live
                        .values()
                        .filter(|l| l.scope == req.scope)
                        .any(|l| {
                            l.proxies.iter().any(|p| {
                                let q = &p.published;
                                q.host_port == b.host_port
                                    && q.port.proto == b.port.proto
                                    && (q.host_ip.is_unspecified()
                                        || b.host_addr().is_unspecified()
                                        || q.host_ip == b.host_addr())
                            })
                        });
                    if taken {
                        return Err(port_error(req, b, "port is already allocated"));
                    }
                }
                let backend = ports::Backend {
                    addr: SocketAddrV4::new(first.ip, b.port.number),
                    bridge: first.bridge.clone(),
                };
                match ports::start(&settings.host, b, backend) {
                    Ok(p) => proxies.push(p),
                    Err(e) if e.raw_os_error() == Some(libc::EADDRINUSE) => {
                        return Err(port_error(req, b, "address already in use"))
                    }
                    Err(e) => return Err(io_err(format!("publish {}", b.port.key()))(e)),
                }
            }
        }
        state.live.insert(
            req.id.to_string(),
            Live {
                scope: req.scope.to_string(),
                name: req.name.to_string(),
                short_id: req.id[..12.min(req.id.len())].to_string(),
                endpoints: endpoints.clone(),
                proxies,
                resolv: Some(req.dir.join("resolv.conf")),
            },
        );
        self.save_live(&state, req.id);
        Ok(endpoints)
    }

    fn live_file(&self, id: &str) -> PathBuf {
        self.file.with_file_name("live").join(format!("{id}.json"))
    }

    /// Saves the live state of container `id` (see [`SavedLive`]).
    fn save_live(&self, state: &NetState, id: &str) {
        let Some(live) = state.live.get(id) else {
            return;
        };
        let saved = SavedLive {
            scope: live.scope.clone(),
            name: live.name.clone(),
            short_id: live.short_id.clone(),
            endpoints: live.endpoints.clone(),
            published: live.proxies.iter().map(|p| p.published.clone()).collect(),
            resolv: live.resolv.clone(),
        };
        let file = self.live_file(id);
        let written = file
            .parent()
            .map_or(Ok(()), fs::create_dir_all)
            .and_then(|_| fs::write(&file, serde_json::to_vec(&saved).unwrap_or_default()));
        if let Err(e) = written {
            tracing::warn!(file = %file.display(), error = %e, "network state not saved");
        }
    }

    /// After an engine restart, for a container still running: its
    /// endpoints, DNS names and published ports as they were.
    pub fn readopt(&self, id: &str) {
        let Ok(bytes) = fs::read(self.live_file(id)) else {
            return;
        };
        let Ok(saved) = serde_json::from_slice::<SavedLive>(&bytes) else {
            return;
        };
        let settings = self.scope_settings(&saved.scope);
        let mut proxies = Vec::new();
        if let Some(first) = saved.endpoints.first() {
            for p in &saved.published {
                let binding = PortBinding {
                    port: p.port,
                    host_ip: (!p.host_ip.is_unspecified()).then_some(p.host_ip),
                    host_port: p.host_port,
                };
                let backend = ports::Backend {
                    addr: SocketAddrV4::new(first.ip, p.port.number),
                    bridge: first.bridge.clone(),
                };
                match ports::start(&settings.host, &binding, backend) {
                    Ok(proxy) => proxies.push(proxy),
                    Err(e) => {
                        tracing::warn!(container = %id, port = %p.host_port, error = %e, "published port not restored")
                    }
                }
            }
        }
        self.lock().live.insert(
            id.to_string(),
            Live {
                scope: saved.scope,
                name: saved.name,
                short_id: saved.short_id,
                endpoints: saved.endpoints,
                proxies,
                resolv: saved.resolv,
            },
        );
        self.add_names(id);
    }

    fn ensure_defaults_locked(&self, state: &mut NetState, scope: &str) -> Result<(), NetError> {
        self.ensure_defaults(state, scope)
    }

    /// Called with the pid of the container's intermediate once its network
    /// namespace exists: veths, addresses, routes, DNS names.
    pub fn wire(&self, id: &str, pid: i32) -> Result<(), String> {
        let (scope, endpoints) = {
            let state = self.lock();
            let Some(live) = state.live.get(id) else {
                return Ok(());
            };
            (live.scope.clone(), live.endpoints.clone())
        };
        let settings = self.scope_settings(&scope);
        let netns = format!("/proc/{pid}/ns/net");
        for e in &endpoints {
            self.plug(&settings.host, &netns, e, e.ifname == "eth0")
                .map_err(|err| format!("failed to set up container networking: {err}"))?;
        }
        self.add_names(id);
        Ok(())
    }

    /// One veth pair: host side on the bridge, peer configured inside.
    fn plug(
        &self,
        host: &HostNamespace,
        netns: &str,
        e: &Endpoint,
        default_route: bool,
    ) -> Result<(), NetError> {
        let network = {
            let state = self.lock();
            state.networks.get(&e.network_id).cloned()
        };
        if let Some(n) = &network {
            ensure_bridge(host, n)?;
        }
        let ns = File::open(netns).map_err(io_err(format!("open {netns}")))?;
        host.run(|| {
            let nl = Netlink::open()?;
            nl.add_veth(&e.host_veth, &e.ifname, e.mac, &ns)?;
            let bridge = index_of(&e.bridge)?;
            nl.set_up(index_of(&e.host_veth)?, Some(bridge))
        })
        .map_err(io_err(format!("create veth {}", e.host_veth)))?;
        in_namespace_file(Path::new(netns), || {
            let nl = Netlink::open()?;
            nl.set_up(index_of("lo")?, None)?;
            let index = index_of(&e.ifname)?;
            nl.add_address(index, e.ip, e.prefix)?;
            if e.ip6.is_some() || e.link_local.iter().any(IpAddr::is_ipv6) {
                enable_ipv6_on(&e.ifname)?;
            }
            if let Some(ip6) = e.ip6 {
                nl.add_address6(index, ip6, e.prefix6)?;
            }
            for ip in &e.link_local {
                match ip {
                    IpAddr::V4(v4) => nl.add_address(index, *v4, 16)?,
                    IpAddr::V6(v6) => nl.add_address6(index, *v6, 64)?,
                }
            }
            // A gratuitous ARP when the link comes up: an address used
            // before (a reconnect, a restart) has a new MAC, and the other
            // members' neighbour entries for it must not stay stale.
            let _ = fs::write(
                format!("/proc/sys/net/ipv4/conf/{}/arp_notify", e.ifname),
                "1",
            );
            nl.set_up(index, None)?;
            if default_route && !e.internal {
                nl.add_default_route(e.gateway)?;
            }
            Ok(())
        })
        .map_err(io_err(format!("configure {}", e.ifname)))
    }

    fn add_names(&self, id: &str) {
        let mut state = self.lock();
        let Some(live) = state.live.get(id) else {
            return;
        };
        let scope = live.scope.clone();
        let mut names = vec![live.name.clone(), live.short_id.clone()];
        let endpoints = live.endpoints.clone();
        let settings = self.settings_of(&state, &scope);
        for e in endpoints.iter().filter(|e| e.dns) {
            if !state.dns.contains_key(&e.network_id) {
                // The parts of one overlay share their names.
                let shared = state.networks.get(&e.network_id).and_then(|n| {
                    let group = &n.overlay_group;
                    if group.is_empty() {
                        return None;
                    }
                    state
                        .networks
                        .values()
                        .filter(|o| &o.overlay_group == group)
                        .find_map(|o| state.dns.get(&o.id).map(|d| d.records.clone()))
                });
                match super::dns::DnsServer::start_with(&settings.host, e.gateway, shared) {
                    Ok(server) => {
                        state.dns.insert(e.network_id.clone(), server);
                    }
                    Err(err) => {
                        tracing::warn!(network = %e.network_name, error = %err, "no DNS for network");
                        continue;
                    }
                }
            }
            let server = &state.dns[&e.network_id];
            let mut records = server.records.lock().unwrap_or_else(|p| p.into_inner());
            names.truncate(2);
            names.extend(e.aliases.iter().cloned());
            for n in &names {
                let entry = records.entry(n.to_ascii_lowercase()).or_default();
                if !entry.contains(&e.ip) {
                    entry.push(e.ip);
                }
            }
            drop(records);
            if !e.links.is_empty() {
                let mut links = server.links.lock().unwrap_or_else(|p| p.into_inner());
                links.insert(
                    e.ip,
                    e.links
                        .iter()
                        .map(|(name, alias)| (alias.clone(), name.clone()))
                        .collect(),
                );
            }
        }
        Self::link_peers(&state, &endpoints);
    }

    /// Lets the container of `endpoints` resolve, through the DNS of each
    /// of its networks, the names of all its other networks too.
    fn link_peers(state: &NetState, endpoints: &[Endpoint]) {
        for e in endpoints.iter().filter(|e| e.dns) {
            let Some(server) = state.dns.get(&e.network_id) else {
                continue;
            };
            let others: Vec<super::dns::Records> = endpoints
                .iter()
                .filter(|o| o.dns && o.network_id != e.network_id)
                .filter_map(|o| state.dns.get(&o.network_id))
                .map(|s| s.records.clone())
                .collect();
            let mut peers = server.peers.lock().unwrap_or_else(|p| p.into_inner());
            if others.is_empty() {
                peers.remove(&e.ip);
            } else {
                peers.insert(e.ip, others);
            }
        }
    }

    fn remove_names(state: &NetState, e: &Endpoint) {
        if let Some(server) = state.dns.get(&e.network_id) {
            let mut records = server.records.lock().unwrap_or_else(|p| p.into_inner());
            for ips in records.values_mut() {
                ips.retain(|ip| *ip != e.ip);
            }
            records.retain(|_, ips| !ips.is_empty());
            drop(records);
            let mut peers = server.peers.lock().unwrap_or_else(|p| p.into_inner());
            peers.remove(&e.ip);
            drop(peers);
            let mut links = server.links.lock().unwrap_or_else(|p| p.into_inner());
            links.remove(&e.ip);
        }
    }

    /// After a container stops (or fails to start): its proxies stop, its
    /// veths, addresses and names go.
    pub fn release(&self, id: &str) {
        let (live, settings) = {
            let mut state = self.lock();
            // (Also for a container that died while the engine was down.)
            let _ = fs::remove_file(self.live_file(id));
            let Some(live) = state.live.remove(id) else {
                return;
            };
            for e in &live.endpoints {
                Self::remove_names(&state, e);
            }
            let settings = self.settings_of(&state, &live.scope);
            (live, settings)
        };
        // Usually the container's namespace is gone already and the kernel
        // takes the veths with it; deleting them explicitly covers a
        // namespace kept alive by a `container:` joiner. Deleting a link
        // waits for the kernel (RCU), so it is done off the start/stop path.
        let veths: Vec<String> = live.endpoints.iter().map(|e| e.host_veth.clone()).collect();
        drop(live);
        if !veths.is_empty() {
            let host = settings.host.clone();
            let _ = std::thread::Builder::new()
                .name("veth-cleanup".into())
                .spawn(move || {
                    for v in veths {
                        delete_veth(&host, &v);
                    }
                });
        }
    }

    /// Whether a running container has its own bridge-networked namespace
    /// (even with no endpoint left).
    pub fn is_wired(&self, id: &str) -> bool {
        self.lock().live.contains_key(id)
    }

    /// The live endpoints of a running container.
    pub fn endpoints(&self, id: &str) -> Vec<Endpoint> {
        self.lock()
            .live
            .get(id)
            .map(|l| l.endpoints.clone())
            .unwrap_or_default()
    }

    /// The ports a running container publishes.
    pub fn published(&self, id: &str) -> Vec<Published> {
        self.lock()
            .live
            .get(id)
            .map(|l| l.proxies.iter().map(|p| p.published.clone()).collect())
            .unwrap_or_default()
    }

    /// `network connect` of a running container whose pid 1 is `pid`.
    pub fn connect_running(
        &self,
        id: &str,
        pid: i32,
        network_key: &str,
        cfg: EndpointConfig,
    ) -> Result<(), NetError> {
        let (endpoint, pid, scope, resolv) = {
            let mut state = self.lock();
            let scope = match state.live.get(id) {
                Some(l) => l.scope.clone(),
                None => return Ok(()),
            };
            let network = find(&state, &scope, network_key)?.clone();
            let live = &state.live[id];
            // A container with no DNS of its own yet (the default bridge)
            // uses the new network's from now on, as Docker's does.
            let resolv = live
                .resolv
                .clone()
                .filter(|_| !live.endpoints.iter().any(|e| e.dns));
            let ifname = (0..)
                .map(|i| format!("eth{i}"))
                .find(|n| !live.endpoints.iter().any(|e| e.ifname == *n))
                .expect("a free interface name");
            check_endpoint(&network, &cfg)?;
            let ip = next_ip(&state, &network, &[], cfg.ipv4_address)?;
            let ip6 = next_ip6(&state, &network, &[], cfg.ipv6_address)?;
            let mut e = new_endpoint(&network, ip, 0, cfg);
            e.ip6 = ip6;
            e.ifname = ifname;
            let live = state.live.get_mut(id).expect("checked above");
            live.endpoints.push(e.clone());
            (e, pid, scope, resolv)
        };
        let settings = self.scope_settings(&scope);
        let first = endpoint.ifname == "eth0";
        let plugged = self.plug(
            &settings.host,
            &format!("/proc/{pid}/ns/net"),
            &endpoint,
            first,
        );
        if let Err(err) = plugged {
            let mut state = self.lock();
            if let Some(l) = state.live.get_mut(id) {
                l.endpoints
                    .retain(|e| e.endpoint_id != endpoint.endpoint_id);
            }
            drop(state);
            delete_veth(&settings.host, &endpoint.host_veth);
            return Err(err);
        }
        if let Some(file) = resolv.filter(|_| endpoint.dns) {
            // Written in place: the file is bound into the container.
            let text = format!("nameserver {}\noptions ndots:0\n", endpoint.gateway);
            if let Err(e) = fs::write(&file, text) {
                tracing::warn!(file = %file.display(), error = %e, "resolv.conf not updated");
            }
        }
        self.add_names(id);
        self.save_live(&self.lock(), id);
        Ok(())
    }

    /// `network disconnect` of a running container.
    pub fn disconnect_running(&self, id: &str, network_id: &str) {
        let (gone, settings) = {
            let mut state = self.lock();
            let Some(live) = state.live.get_mut(id) else {
                return;
            };
            let (gone, kept): (Vec<Endpoint>, Vec<Endpoint>) = live
                .endpoints
                .drain(..)
                .partition(|e| e.network_id == network_id);
            live.endpoints = kept;
            let scope = live.scope.clone();
            let kept = live.endpoints.clone();
            for e in &gone {
                Self::remove_names(&state, e);
            }
            Self::link_peers(&state, &kept);
            self.save_live(&state, id);
            (gone, self.settings_of(&state, &scope))
        };
        for e in gone {
            delete_veth(&settings.host, &e.host_veth);
        }
    }
}

fn delete_veth(host: &HostNamespace, name: &str) {
    let name = name.to_string();
    let _ = host.run(|| {
        let index = index_of(&name)?;
        Netlink::open()?.delete_link(index)
    });
}

fn port_error(req: &StartRequest<'_>, b: &PortBinding, why: &str) -> NetError {
    NetError::Conflict(format!(
        "driver failed programming external connectivity on endpoint {} ({}): Bind for {}:{} failed: {why}",
        req.name,
        &req.id[..12.min(req.id.len())],
        b.host_addr(),
        b.host_port
    ))
}

fn next_ip(
    state: &NetState,
    network: &Network,
    extra: &[Endpoint],
    wanted: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, NetError> {
    let subnet = network
        .subnet
        .ok_or_else(|| NetError::Invalid(format!("network {} has no subnet", network.name)))?;
    // An overlay's addresses are taken on any node of it.
    let group: Vec<&str> = if network.overlay_group.is_empty() {
        vec![network.id.as_str()]
    } else {
        state
            .networks
            .values()
            .filter(|n| n.overlay_group == network.overlay_group)
            .map(|n| n.id.as_str())
            .collect()
    };
    let used: Vec<Ipv4Addr> = state
        .live
        .values()
        .flat_map(|l| l.endpoints.iter())
        .chain(extra.iter())
        .filter(|e| group.contains(&e.network_id.as_str()))
        .map(|e| e.ip)
        .collect();
    if let Some(ip) = wanted {
        if used.contains(&ip) || network.aux_addresses.values().any(|a| *a == ip) {
            return Err(NetError::Forbidden("Address already in use".into()));
        }
        return Ok(ip);
    }
    let range = network.ip_range.unwrap_or(subnet);
    (0..)
        .map_while(|n| range.host(n))
        .find(|ip| {
            !used.contains(ip)
                && Some(*ip) != network.gateway
                && subnet.contains(*ip)
                && !subnet.is_edge(*ip)
                && !network.aux_addresses.values().any(|a| a == ip)
        })
        .ok_or_else(|| {
            NetError::Forbidden(format!(
                "no available IPv4 addresses on this network's address pools: {} ({})",
                network.name, network.id
            ))
        })
}

/// The IPv6 address of a new endpoint on `network`: `wanted` if free, else
/// the first free one of the range (or subnet); `None` when the network
/// has no IPv6.
fn next_ip6(
    state: &NetState,
    network: &Network,
    extra: &[Endpoint],
    wanted: Option<Ipv6Addr>,
) -> Result<Option<Ipv6Addr>, NetError> {
    let Some(subnet) = network.subnet6.filter(|_| network.enable_ipv6) else {
        return Ok(None);
    };
    let used: Vec<Ipv6Addr> = state
        .live
        .values()
        .flat_map(|l| l.endpoints.iter())
        .chain(extra.iter())
        .filter(|e| e.network_id == network.id)
        .filter_map(|e| e.ip6)
        .collect();
    if let Some(ip) = wanted {
        if used.contains(&ip) {
            return Err(NetError::Forbidden("Address already in use".into()));
        }
        return Ok(Some(ip));
    }
    let range = network.ip_range6.unwrap_or(subnet);
    // Members are few (a scope's containers): the search ends within them.
    (0..=used.len() as u128 + 1)
        .filter_map(|n| range.host(n))
        .find(|ip| !used.contains(ip) && Some(*ip) != network.gateway6 && !subnet.is_edge(*ip))
        .map(Some)
        .ok_or_else(|| {
            NetError::Forbidden(format!(
                "no available IPv6 addresses on this network's address pools: {} ({})",
                network.name, network.id
            ))
        })
}

fn new_endpoint(network: &Network, ip: Ipv4Addr, index: usize, cfg: EndpointConfig) -> Endpoint {
    Endpoint {
        endpoint_id: format!("{}{}", random_hex(32), random_hex(32)),
        network_id: network.id.clone(),
        network_name: network.name.clone(),
        ip,
        prefix: network.subnet.map(|s| s.prefix).unwrap_or(16),
        gateway: network.gateway.unwrap_or(Ipv4Addr::UNSPECIFIED),
        mac: cfg.mac_address.unwrap_or_else(random_mac),
        host_veth: format!("veth{}", random_hex(7)),
        bridge: network.bridge.clone(),
        ifname: format!("eth{index}"),
        links: cfg.links.iter().map(|l| link_pair(l)).collect(),
        aliases: cfg.aliases,
        internal: network.internal,
        dns: network.name != "bridge",
        ip6: None,
        prefix6: network.subnet6.map(|s| s.prefix).unwrap_or(64),
        gateway6: network.gateway6.filter(|_| network.enable_ipv6),
        link_local: cfg.link_local_ips,
    }
}
