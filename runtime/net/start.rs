//! The runtime's use of networking around a container's start and stop,
//! and the in-process API for the web server's preview proxy.

use std::net::{SocketAddrV4, TcpStream};
use std::path::Path;
use std::time::Duration;

use oci_spec::runtime::{LinuxNamespaceType, Mount, Spec};

use std::sync::Arc;

use super::endpoint::{EndpointConfig, Mode, NamespaceChoice, Prepared, StartRequest};
use super::{NetError, Network, Port};
use crate::container::config::MountConfig;
use crate::container::spec::IdRange;
use crate::container::Container;
use crate::container::{ContainerRecord, Runtime};
use crate::image::Image;

/// Docker's `ErrConflictNoNetwork`: a `none` container joins no network.
const NO_NETWORK_CONFLICT: &str =
    "container cannot be connected to multiple networks with one of the networks in private (none) mode";

impl Runtime {
    /// Networking for one start of `record`: addresses, ports, files.
    pub(crate) fn network_prepare(
        &self,
        record: &ContainerRecord,
        image: &Image,
        dir: &Path,
        ids: Option<IdRange>,
    ) -> crate::Result<Prepared> {
        let networking = &record.config.networking;
        let joined = match networking.kind() {
            Mode::Container(other) => {
                let c = self.get(&record.scope, &other)?;
                let r = c.snapshot();
                if !r.state.running() || r.state.pid <= 0 {
                    return Err(NetError::Conflict(format!(
                        "cannot join network namespace of a non running container: container {} is {}",
                        r.id,
                        r.state.status.as_str()
                    ))
                    .into());
                }
                Some((r.state.pid, self.dir_of(&r.id).root))
            }
            _ => None,
        };
        let mut exposed: Vec<Port> = record
            .config
            .exposed_ports
            .iter()
            .filter_map(|p| Port::parse(p).ok())
            .collect();
        if let Some(ports) = image
            .config
            .config()
            .as_ref()
            .and_then(|c| c.exposed_ports().clone())
        {
            exposed.extend(ports.iter().filter_map(|p| Port::parse(p).ok()));
        }
        let links_hosts = self
            .linked(record)
            .iter()
            .filter(|(_, _, r)| r.state.running())
            .filter_map(|(_, alias, r)| {
                let ip = self.net.endpoints(&r.id).first()?.ip;
                Some(format!("{ip}\t{alias} {} {}\n", &r.id[..12], r.name))
            })
            .collect();
        Ok(self.net.prepare(StartRequest {
            scope: &record.scope,
            id: &record.id,
            name: &record.name,
            hostname: &record.hostname,
            dir,
            owner: ids.map(|i| i.base),
            networking,
            exposed,
            joined,
            links_hosts,
        })?)
    }

    /// The containers `record` links to that exist: (network, alias, record).
    fn linked(&self, record: &ContainerRecord) -> Vec<(String, String, ContainerRecord)> {
        let mut out = Vec::new();
        for (network, cfg) in record.config.networking.networks() {
            for l in &cfg.links {
                let (name, alias) = super::endpoint::link_pair(l);
                if let Ok(c) = self.get(&record.scope, &name) {
                    out.push((network.clone(), alias, c.snapshot()));
                }
            }
        }
        out
    }

    /// The environment legacy links give a container, as Docker's: for
    /// alias `db`, `DB_NAME=/<container>/db` and the linked container's
    /// own variables as `DB_ENV_<KEY>`.
    pub(crate) fn link_env(&self, record: &ContainerRecord) -> Vec<String> {
        let mut env = Vec::new();
        for (_, alias, linked) in self.linked(record) {
            let prefix: String = alias
                .chars()
                .map(|c| match c {
                    'a'..='z' => c.to_ascii_uppercase(),
                    c if c.is_ascii_alphanumeric() => c,
                    _ => '_',
                })
                .collect();
            env.push(format!("{prefix}_NAME=/{}/{alias}", record.name));
            for e in &linked.config.env {
                let Some((k, v)) = e.split_once('=') else {
                    continue;
                };
                if !matches!(k, "HOME" | "PATH" | "HOSTNAME") {
                    env.push(format!("{prefix}_ENV_{k}={v}"));
                }
            }
        }
        env
    }

    /// `DELETE /containers/{name}/{alias}?link=1`: forgets the link; true
    /// when there was one.
    pub fn remove_link(&self, container: &Arc<Container>, alias: &str) -> crate::Result<bool> {
        let _op = container.op.lock().unwrap_or_else(|p| p.into_inner());
        let mut rec = container.lock();
        let alias = alias.to_ascii_lowercase();
        let mut found = false;
        for cfg in rec.config.networking.endpoints.values_mut() {
            let before = cfg.links.len();
            cfg.links
                .retain(|l| super::endpoint::link_pair(l).1 != alias);
            found |= cfg.links.len() != before;
        }
        if found {
            self.save(&rec)?;
        }
        Ok(found)
    }

    /// `network connect`: attaches now if running, and at every start.
    pub fn connect_network(
        &self,
        container: &Arc<Container>,
        network: &Network,
        cfg: EndpointConfig,
    ) -> crate::Result<()> {
        let _op = container.op.lock().unwrap_or_else(|p| p.into_inner());
        let r = container.snapshot();
        // Created with `--network none` (not merely disconnected from its
        // last network): it stays alone, as Docker keeps it.
        let created_none = r
            .config
            .host_config
            .get("NetworkMode")
            .and_then(|m| m.as_str())
            == Some("none");
        if created_none || network.name == "none" {
            return Err(NetError::Invalid(NO_NETWORK_CONFLICT.into()).into());
        }
        // Disconnected from its last network (mode `none` since): a network
        // may be connected again, live when it runs on a bridge's veths.
        let reattach = r.config.networking.kind() == Mode::None
            && r.config.networking.endpoints.is_empty()
            && (!r.state.running() || self.net.is_wired(&r.id));
        if !reattach && !matches!(r.config.networking.kind(), Mode::Network(_)) {
            return Err(NetError::Forbidden(
                "container sharing network namespace with another container or host cannot be connected to any other network".into(),
            )
            .into());
        }
        if r.config
            .networking
            .networks()
            .iter()
            .any(|(n, _)| *n == network.name)
        {
            return Err(NetError::Forbidden(format!(
                "endpoint with name {} already exists in network {}",
                r.name, network.name
            ))
            .into());
        }
        crate::net::endpoint::check_endpoint(network, &cfg)?;
        if r.state.running() {
            self.net
                .connect_running(&r.id, r.state.pid, &network.id, cfg.clone())?;
        }
        let mut rec = container.lock();
        if reattach {
            rec.config.networking.mode = network.name.clone();
        }
        rec.config
            .networking
            .endpoints
            .insert(network.name.clone(), cfg);
        self.save(&rec)
    }

    /// `network disconnect`.
    pub fn disconnect_network(
        &self,
        container: &Arc<Container>,
        network: &Network,
    ) -> crate::Result<()> {
        let _op = container.op.lock().unwrap_or_else(|p| p.into_inner());
        let r = container.snapshot();
        if network.driver != "bridge" {
            return Err(NetError::Forbidden(
                "container cannot be disconnected from host network or connected to host network"
                    .into(),
            )
            .into());
        }
        if !r
            .config
            .networking
            .networks()
            .iter()
            .any(|(n, _)| *n == network.name)
        {
            return Err(NetError::Forbidden(format!(
                "container {} is not connected to network {}",
                r.id, network.name
            ))
            .into());
        }
        if r.state.running() {
            self.net.disconnect_running(&r.id, &network.id);
        }
        let mut rec = container.lock();
        let n = &mut rec.config.networking;
        n.endpoints.remove(&network.name);
        if n.kind() == Mode::Network(network.name.clone()) {
            n.mode = n
                .endpoints
                .keys()
                .next()
                .cloned()
                .unwrap_or_else(|| "none".into());
        }
        self.save(&rec)
    }

    /// When the engine stops: the bridges of networks no running container
    /// is configured on are removed, so the host keeps none of ours.
    pub fn shutdown_networks(&self) {
        let mut keep = Vec::new();
        for scope in self.list_scopes() {
            for c in self.list(&scope) {
                let r = c.snapshot();
                if r.state.running() {
                    for (name, _) in r.config.networking.networks() {
                        if let Ok(n) = self.net.get(&scope, &name) {
                            keep.push(n.id);
                        }
                    }
                }
            }
        }
        self.net.shutdown(&keep);
    }

    fn list_scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = self
            .map()
            .values()
            .map(|c| c.lock().scope.clone())
            .collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }

    /// Opens a TCP connection to `container_port` of a running container of
    /// `scope`, from inside the scope's host namespace (what the web
    /// server's preview proxy uses).
    pub fn connect_published(
        &self,
        scope: &str,
        container: &str,
        container_port: u16,
    ) -> crate::Result<TcpStream> {
        let c = self.get(scope, container)?;
        let endpoints = self.net.endpoints(&c.id);
        let published = self.net.published(&c.id);
        let not_published = || {
            NetError::Invalid(format!(
                "No public port '{container_port}/tcp' published for {container}"
            ))
        };
        if !published
            .iter()
            .any(|p| p.port.number == container_port && p.port.proto == super::Proto::Tcp)
        {
            return Err(not_published().into());
        }
        let first = endpoints.first().ok_or_else(not_published)?;
        let backend = super::ports::Backend {
            addr: SocketAddrV4::new(first.ip, container_port),
            bridge: first.bridge.clone(),
        };
        let settings = self.net.scope_settings(scope);
        // Through the container's bridge only: fails closed if the records
        // and the bridge disagree.
        let stream = settings
            .host
            .run(|| super::ports::connect_on_bridge(&backend, Duration::from_secs(5)))
            .map_err(super::io_err(format!("connect {}", backend.addr)))?;
        Ok(stream)
    }
}

/// The bind mounts of a start's network files.
pub fn file_mounts(prepared: &Prepared) -> Vec<MountConfig> {
    prepared
        .files
        .iter()
        .map(|(source, target)| MountConfig::Bind {
            source: source.clone(),
            target: target.clone(),
            read_only: false,
        })
        .collect()
}

/// Points the spec's network namespace where `prepared` says. A namespace
/// the container's user namespace does not own cannot mount sysfs: /sys is
/// then a read-only bind of the host's (masked as usual).
pub fn apply_to_spec(prepared: &Prepared, spec: &mut Spec) {
    let Some(linux) = spec.linux_mut() else {
        return;
    };
    let joined = match &prepared.namespace {
        NamespaceChoice::Own { .. } => return,
        NamespaceChoice::Join(path) => Some(path.clone()),
        NamespaceChoice::Shared => None,
    };
    if let Some(namespaces) = linux.namespaces_mut() {
        match joined {
            Some(path) => {
                for n in namespaces.iter_mut() {
                    if n.typ() == LinuxNamespaceType::Network {
                        n.set_path(Some(path.clone()));
                    }
                }
            }
            None => namespaces.retain(|n| n.typ() != LinuxNamespaceType::Network),
        }
    }
    if let Some(mounts) = spec.mounts_mut() {
        for m in mounts.iter_mut() {
            if m.destination() == Path::new("/sys") && m.typ().as_deref() == Some("sysfs") {
                *m = Mount::default()
                    .set_destination("/sys".into())
                    .set_typ(Some("bind".into()))
                    .set_source(Some("/sys".into()))
                    .set_options(Some(
                        ["rbind", "ro", "nosuid", "noexec", "nodev"]
                            .map(String::from)
                            .to_vec(),
                    ))
                    .clone();
            }
        }
    }
}

/// Whether the monitor must call back for wiring.
pub fn needs_wiring(prepared: &Prepared) -> bool {
    prepared.namespace == NamespaceChoice::Own { wire: true }
}
