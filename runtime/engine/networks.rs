//! `/networks/...`: create, list, inspect, remove, connect, disconnect,
//! prune; and the network parts of container JSON (create request in,
//! `Ports` and `NetworkSettings` out).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::containers::{blocking, find};
use super::http::{json, parse_json, read_body, ApiError, ApiResult};
use super::router::{no_content, Ctx};
use crate::container::{ContainerRecord, Runtime};
use crate::net::endpoint::Mode;
use crate::net::{ContainerNetworking, EndpointConfig, Network, NetworkRequest, Port, PortBinding};

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct PortBindingJson {
    host_ip: String,
    host_port: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct NetHostConfig {
    network_mode: String,
    port_bindings: Option<BTreeMap<String, Option<Vec<PortBindingJson>>>>,
    publish_all_ports: bool,
    links: Option<Vec<String>>,
    extra_hosts: Option<Vec<String>>,
}

/// Most `--add-host` entries one container may have (each is a line of its
/// `/etc/hosts`, written at every start).
const MAX_EXTRA_HOSTS: usize = 256;

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct EndpointJson {
    aliases: Option<Vec<String>>,
    #[serde(rename = "IPAMConfig")]
    ipam_config: Option<EndpointIpamJson>,
    mac_address: Option<String>,
    links: Option<Vec<String>>,
    driver_opts: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct EndpointIpamJson {
    #[serde(rename = "IPv4Address")]
    ipv4_address: Option<String>,
    #[serde(rename = "IPv6Address")]
    ipv6_address: Option<String>,
    #[serde(rename = "LinkLocalIPs")]
    link_local_ips: Option<Vec<String>>,
}

/// Most `--link-local-ip` addresses one endpoint may have.
const MAX_LINK_LOCAL_IPS: usize = 16;

/// `--link-local-ip` values: link-local unicast addresses only
/// (169.254.0.0/16, fe80::/10). Anything else on the container's interface
/// could answer for another member of the bridge, or for its gateway.
fn link_local_ips(texts: Vec<String>) -> Result<Vec<std::net::IpAddr>, ApiError> {
    if texts.len() > MAX_LINK_LOCAL_IPS {
        return Err(ApiError::bad_request(format!(
            "too many link-local IP addresses: at most {MAX_LINK_LOCAL_IPS}"
        )));
    }
    texts
        .iter()
        .map(|text| {
            let invalid =
                || ApiError::bad_request(format!("invalid link-local IP address: {text}"));
            let ip: std::net::IpAddr = text.parse().map_err(|_| invalid())?;
            let link_local = match ip {
                std::net::IpAddr::V4(v4) => {
                    v4.is_link_local()
                        && v4.octets()[2..] != [0, 0]
                        && v4.octets()[2..] != [255, 255]
                }
                std::net::IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
            };
            if !link_local {
                return Err(ApiError::bad_request(format!(
                    "invalid link-local IP address: {text}: not in 169.254.0.0/16 or fe80::/10"
                )));
            }
            Ok(ip)
        })
        .collect()
}

impl EndpointJson {
    /// The endpoint settings, their addresses parsed as Docker parses them.
    fn into_config(self) -> Result<EndpointConfig, ApiError> {
        let ipam = self.ipam_config.unwrap_or_default();
        let ipv6_address = match ipam.ipv6_address.filter(|s| !s.is_empty()) {
            Some(text) => Some(
                text.parse::<std::net::Ipv6Addr>()
                    .map_err(|_| ApiError::bad_request(format!("invalid IPv6 address: {text}")))?,
            ),
            None => None,
        };
        let link_local_ips = link_local_ips(ipam.link_local_ips.unwrap_or_default())?;
        let ipv4_address = match ipam.ipv4_address.filter(|s| !s.is_empty()) {
            Some(text) => Some(
                text.parse::<Ipv4Addr>()
                    .map_err(|_| ApiError::bad_request(format!("invalid IPv4 address: {text}")))?,
            ),
            None => None,
        };
        let mac_address = match self.mac_address.filter(|s| !s.is_empty()) {
            Some(text) => Some(
                crate::net::endpoint::parse_mac(&text)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?,
            ),
            None => None,
        };
        let links = self.links.unwrap_or_default();
        for l in &links {
            link_parts(l)?;
        }
        Ok(EndpointConfig {
            aliases: self.aliases.unwrap_or_default(),
            ipv4_address,
            mac_address,
            links,
            driver_opts: self.driver_opts.unwrap_or_default(),
            ipv6_address,
            link_local_ips,
        })
    }
}

/// `container:alias` (or `container`) of a legacy link, checked as a
/// name: the alias becomes a hosts-file line.
pub fn link_parts(text: &str) -> Result<(String, String), ApiError> {
    let (name, alias) = text.split_once(':').unwrap_or((text, text));
    let name = name.trim_start_matches('/');
    let alias = alias.rsplit('/').next().unwrap_or(alias);
    let ok = |s: &str| {
        !s.is_empty()
            && s.len() <= 255
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
    };
    if !ok(name) || !ok(alias) {
        return Err(ApiError::bad_request(format!(
            "invalid link format: {text}"
        )));
    }
    Ok((name.to_string(), alias.to_string()))
}

/// `NetworkingConfig` of a create request.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct NetworkingConfigJson {
    endpoints_config: Option<BTreeMap<String, Option<EndpointJson>>>,
}

/// The network part of a create request, checked as Docker checks it.
pub fn networking_from_request(
    host_config: &Value,
    networking: Option<&Value>,
    mac_address: &str,
) -> Result<ContainerNetworking, ApiError> {
    let host: NetHostConfig = serde_json::from_value(host_config.clone()).unwrap_or_default();
    let endpoints: NetworkingConfigJson = networking
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    let mut out = ContainerNetworking {
        mode: if host.network_mode == "default" {
            String::new()
        } else {
            host.network_mode.clone()
        },
        publish_all: host.publish_all_ports,
        ..ContainerNetworking::default()
    };
    for (name, ep) in endpoints.endpoints_config.into_iter().flatten() {
        out.endpoints
            .insert(name, ep.unwrap_or_default().into_config()?);
    }
    let extra_hosts = host.extra_hosts.clone().unwrap_or_default();
    if extra_hosts.len() > MAX_EXTRA_HOSTS {
        return Err(ApiError::bad_request(format!(
            "too many extra hosts: at most {MAX_EXTRA_HOSTS}"
        )));
    }
    for entry in &extra_hosts {
        out.extra_hosts.push(
            crate::net::endpoint::parse_container_extra_host(entry)
                .map_err(ApiError::bad_request)?,
        );
    }
    // Legacy `--link`s belong to the mode's network.
    let links = host.links.clone().unwrap_or_default();
    for l in &links {
        link_parts(l)?;
    }
    if let (Mode::Network(first), false) = (out.kind(), links.is_empty()) {
        out.endpoints.entry(first).or_default().links.extend(links);
    }
    // The deprecated `Config.MacAddress` goes to the mode's network, as
    // Docker 25+ moves it.
    if !mac_address.is_empty() {
        let mac = crate::net::endpoint::parse_mac(mac_address)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        if let Mode::Network(first) = out.kind() {
            let ep = out.endpoints.entry(first).or_default();
            if ep.mac_address.is_none() {
                ep.mac_address = Some(mac);
            }
        }
    }
    for (port, bindings) in host.port_bindings.into_iter().flatten() {
        let port = Port::parse(&port).map_err(ApiError::bad_request)?;
        let bindings = bindings.unwrap_or_default();
        let bindings = if bindings.is_empty() {
            vec![PortBindingJson::default()]
        } else {
            bindings
        };
        for b in bindings {
            let host_ip = match b.host_ip.as_str() {
                "" | "0.0.0.0" => None,
                ip if ip.contains(':') => continue,
                ip => Some(
                    ip.parse::<Ipv4Addr>()
                        .map_err(|_| ApiError::bad_request(format!("invalid IP address: {ip}")))?,
                ),
            };
            let first = b.host_port.split('-').next().unwrap_or("");
            let host_port = if first.is_empty() {
                0
            } else {
                first.parse::<u16>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "invalid port specification: \"{}\"",
                        b.host_port
                    ))
                })?
            };
            out.ports.push(PortBinding {
                port,
                host_ip,
                host_port,
            });
        }
    }
    match out.kind() {
        Mode::Container(_) if !out.extra_hosts.is_empty() => {
            return Err(ApiError::bad_request(
                "conflicting options: custom host-to-IP mapping and the network mode",
            ))
        }
        Mode::Container(_) if !out.ports.is_empty() || out.publish_all => {
            return Err(ApiError::bad_request(
                "conflicting options: port publishing and the container type network mode",
            ))
        }
        Mode::Host | Mode::None | Mode::Container(_) if !out.endpoints.is_empty() => {
            out.endpoints.clear();
        }
        _ => {}
    }
    Ok(out)
}

/// Checks at create time that the networks a container names exist.
pub fn check_networks(ctx: &Ctx, n: &ContainerNetworking) -> Result<(), ApiError> {
    let runtime = &ctx.engine.runtime;
    match n.kind() {
        Mode::Container(other) => {
            runtime.get(&ctx.scope.name, &other)?;
        }
        Mode::Network(_) => {
            // 400, not 404: the CLI takes a 404 from create for a missing
            // image and would try to pull it.
            for (name, _) in n.networks() {
                if runtime.net().get(&ctx.scope.name, &name).is_err() {
                    crate::swarm::mesh::attach_overlay(
                        &ctx.engine.swarm,
                        runtime,
                        &ctx.scope.name,
                        &name,
                    );
                }
                let network = runtime
                    .net()
                    .get(&ctx.scope.name, &name)
                    .map_err(|e| ApiError::bad_request(e.to_string()))?;
                if let Some(cfg) = n.endpoints.get(&name) {
                    crate::net::endpoint::check_endpoint(&network, cfg)
                        .map_err(|e| ApiError::bad_request(e.to_string()))?;
                }
                if network.overlay && !network.attachable {
                    return Err(ApiError::forbidden(format!(
                        "Could not attach to network {name}: rpc error: code = PermissionDenied desc = network {name} not manually attachable"
                    )));
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// `Ports` of `docker ps`.
pub fn ports_summary(runtime: &Runtime, r: &ContainerRecord) -> Value {
    let mut out: Vec<Value> = runtime
        .net()
        .published(&r.id)
        .iter()
        .flat_map(|p| {
            let row = |ip: String| json!({"IP": ip, "PrivatePort": p.port.number, "PublicPort": p.host_port, "Type": p.port.proto.as_str()});
            let mut rows = vec![row(p.host_ip.to_string())];
            if p.ipv6 {
                rows.push(row("::".into()));
            }
            rows
        })
        .collect();
    for e in &r.config.exposed_ports {
        if let Ok(port) = Port::parse(e) {
            if !out.iter().any(|v| v["PrivatePort"] == port.number) {
                out.push(json!({"PrivatePort": port.number, "Type": port.proto.as_str()}));
            }
        }
    }
    Value::Array(out)
}

/// `NetworkSettings.Ports`: every exposed or published port, with its
/// host bindings while running.
fn ports_map(runtime: &Runtime, r: &ContainerRecord) -> Value {
    let mut map = serde_json::Map::new();
    for e in &r.config.exposed_ports {
        if let Ok(p) = Port::parse(e) {
            map.insert(p.key(), Value::Null);
        }
    }
    for b in &r.config.networking.ports {
        map.insert(b.port.key(), Value::Null);
    }
    for p in runtime.net().published(&r.id) {
        let entry = map.entry(p.port.key()).or_insert(Value::Null);
        if !entry.is_array() {
            *entry = json!([]);
        }
        if let Value::Array(list) = entry {
            list.push(
                json!({"HostIp": p.host_ip.to_string(), "HostPort": p.host_port.to_string()}),
            );
            if p.ipv6 {
                list.push(json!({"HostIp": "::", "HostPort": p.host_port.to_string()}));
            }
        }
    }
    Value::Object(map)
}

/// An endpoint's `IPAMConfig` as asked (`null` when nothing was).
fn endpoint_ipam_json(cfg: &EndpointConfig) -> Value {
    if cfg.ipv4_address.is_none() && cfg.ipv6_address.is_none() && cfg.link_local_ips.is_empty() {
        return Value::Null;
    }
    let mut out = serde_json::Map::new();
    if let Some(ip) = cfg.ipv4_address {
        out.insert("IPv4Address".into(), json!(ip.to_string()));
    }
    if let Some(ip) = cfg.ipv6_address {
        out.insert("IPv6Address".into(), json!(ip.to_string()));
    }
    if !cfg.link_local_ips.is_empty() {
        out.insert(
            "LinkLocalIPs".into(),
            json!(cfg
                .link_local_ips
                .iter()
                .map(|ip| ip.to_string())
                .collect::<Vec<_>>()),
        );
    }
    Value::Object(out)
}

/// `NetworkSettings` of inspect (and the short form of ps).
pub fn network_settings(runtime: &Runtime, r: &ContainerRecord, full: bool) -> Value {
    let live = runtime.net().endpoints(&r.id);
    let mut networks = serde_json::Map::new();
    let names: Vec<(String, EndpointConfig)> = match r.config.networking.kind() {
        Mode::Network(_) => r.config.networking.networks(),
        Mode::Host => vec![("host".into(), EndpointConfig::default())],
        Mode::None => vec![("none".into(), EndpointConfig::default())],
        Mode::Container(_) => Vec::new(),
    };
    for (name, cfg) in names {
        let network_id = runtime
            .net()
            .get(&r.scope, &name)
            .map(|n| n.id)
            .unwrap_or_default();
        let e = live.iter().find(|e| e.network_name == name);
        let mac = e
            .map(|e| e.mac_text())
            .or_else(|| cfg.mac_address.as_ref().map(crate::net::endpoint::mac_text))
            .unwrap_or_default();
        let mut dns = vec![r.name.clone(), r.id[..12].to_string()];
        dns.extend(cfg.aliases.iter().cloned());
        networks.insert(
            name.clone(),
            json!({
                "IPAMConfig": endpoint_ipam_json(&cfg),
                "Links": if cfg.links.is_empty() { Value::Null } else { json!(cfg.links) },
                "Aliases": if cfg.aliases.is_empty() { Value::Null } else { json!(cfg.aliases) },
                "MacAddress": mac,
                "DriverOpts": if cfg.driver_opts.is_empty() { Value::Null } else { json!(cfg.driver_opts) },
                "GwPriority": 0,
                "NetworkID": network_id,
                "EndpointID": e.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
                "Gateway": e.map(|e| e.gateway.to_string()).unwrap_or_default(),
                "IPAddress": e.map(|e| e.ip.to_string()).unwrap_or_default(),
                "IPPrefixLen": e.map(|e| e.prefix).unwrap_or(0),
                "IPv6Gateway": e.and_then(|e| e.gateway6).map(|g| g.to_string()).unwrap_or_default(),
                "GlobalIPv6Address": e.and_then(|e| e.ip6).map(|ip| ip.to_string()).unwrap_or_default(),
                "GlobalIPv6PrefixLen": e.filter(|e| e.ip6.is_some()).map(|e| e.prefix6).unwrap_or(0),
                "DNSNames": if name == "bridge" || e.is_none() { Value::Null } else { json!(dns) },
            }),
        );
    }
    if !full {
        return json!({ "Networks": networks });
    }
    let first = live.first();
    let on_bridge = live.iter().find(|e| e.network_name == "bridge");
    json!({
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": if r.state.pid > 0 { format!("/proc/{}/ns/net", r.state.pid) } else { String::new() },
        "Ports": ports_map(runtime, r),
        "HairpinMode": false,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": null,
        "SecondaryIPv6Addresses": null,
        "EndpointID": on_bridge.map(|e| e.endpoint_id.clone()).unwrap_or_default(),
        "Gateway": on_bridge.map(|e| e.gateway.to_string()).unwrap_or_default(),
        "GlobalIPv6Address": on_bridge.and_then(|e| e.ip6).map(|ip| ip.to_string()).unwrap_or_default(),
        "GlobalIPv6PrefixLen": on_bridge.filter(|e| e.ip6.is_some()).map(|e| e.prefix6).unwrap_or(0),
        "IPAddress": on_bridge.map(|e| e.ip.to_string()).unwrap_or_default(),
        "IPPrefixLen": on_bridge.map(|e| e.prefix).unwrap_or(0),
        "IPv6Gateway": on_bridge.and_then(|e| e.gateway6).map(|g| g.to_string()).unwrap_or_default(),
        "MacAddress": on_bridge.or(first).map(|e| e.mac_text()).unwrap_or_default(),
        "Networks": networks,
    })
}

fn network_json(runtime: &Runtime, n: &Network, verbose: bool) -> Value {
    let mut containers = serde_json::Map::new();
    if verbose {
        for (id, e) in runtime.net().members(&n.id) {
            let name = runtime
                .get(&n.scope, &id)
                .map(|c| c.snapshot().name)
                .unwrap_or_default();
            containers.insert(
                id,
                json!({
                    "Name": name,
                    "EndpointID": e.endpoint_id,
                    "MacAddress": e.mac_text(),
                    "IPv4Address": format!("{}/{}", e.ip, e.prefix),
                    "IPv6Address": e.ip6.map(|ip| format!("{ip}/{}", e.prefix6)).unwrap_or_default(),
                }),
            );
        }
    }
    let mut config: Vec<Value> = match (n.subnet, n.gateway) {
        (Some(s), Some(g)) => {
            let mut c = json!({"Subnet": s.to_string(), "Gateway": g.to_string()});
            if let Some(r) = n.ip_range {
                c["IPRange"] = json!(r.to_string());
            }
            if !n.aux_addresses.is_empty() {
                c["AuxiliaryAddresses"] = json!(n
                    .aux_addresses
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_string()))
                    .collect::<BTreeMap<_, _>>());
            }
            vec![c]
        }
        _ => Vec::new(),
    };
    if let (Some(s), Some(g), true) = (n.subnet6, n.gateway6, n.enable_ipv6) {
        let mut c = json!({"Subnet": s.to_string(), "Gateway": g.to_string()});
        if let Some(r) = n.ip_range6 {
            c["IPRange"] = json!(r.to_string());
        }
        config.push(c);
    }
    json!({
        "Name": n.name,
        "Id": n.id,
        "Created": n.created,
        "Scope": if n.overlay { "swarm" } else { "local" },
        "Driver": if n.overlay { "overlay" } else { n.driver.as_str() },
        "EnableIPv4": true,
        "EnableIPv6": n.enable_ipv6,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": n.ingress,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": containers,
        "Options": n.options,
        "Labels": n.labels,
    })
}

fn matches_filters(n: &Network, filters: &super::http::Filters) -> bool {
    let any = |key: &str, f: &dyn Fn(&str) -> bool| {
        let v = filters.values(key);
        v.is_empty() || v.iter().any(|x| f(x))
    };
    any("name", &|x| n.name.contains(x))
        && any("id", &|x| n.id.starts_with(x))
        && any("driver", &|x| {
            n.driver == x && !n.overlay || n.overlay && x == "overlay"
        })
        && any("type", &|x| {
            (x == "builtin") == n.predefined() && matches!(x, "builtin" | "custom")
        })
        && any("label", &|x| match x.split_once('=') {
            Some((k, v)) => n.labels.get(k).is_some_and(|l| l == v),
            None => n.labels.contains_key(x),
        })
}

/// `GET /networks`.
pub fn list(ctx: &Ctx) -> ApiResult {
    let filters = ctx.query.filters()?;
    filters.only(&["name", "id", "driver", "type", "label", "scope", "dangling"])?;
    let runtime = &ctx.engine.runtime;
    let list: Vec<Value> = runtime
        .net()
        .list(&ctx.scope.name)?
        .iter()
        .filter(|n| matches_filters(n, &filters))
        .map(|n| network_json(runtime, n, false))
        .collect();
    Ok(json(StatusCode::OK, &Value::Array(list)))
}

/// `GET /networks/{id}`.
pub fn inspect(ctx: &Ctx, id: &str) -> ApiResult {
    let runtime = &ctx.engine.runtime;
    let n = runtime.net().get(&ctx.scope.name, id)?;
    // `?scope=`: a network of another scope is not found, as Docker says.
    let scope = if n.overlay { "swarm" } else { "local" };
    if ctx
        .query
        .get("scope")
        .is_some_and(|s| !s.is_empty() && s != scope)
    {
        return Err(crate::net::NetError::NotFound(id.to_string()).into());
    }
    Ok(json(StatusCode::OK, &network_json(runtime, &n, true)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct CreateJson {
    #[serde(deserialize_with = "crate::container::config::null_as_default")]
    name: String,
    #[serde(deserialize_with = "crate::container::config::null_as_default")]
    driver: String,
    #[serde(deserialize_with = "crate::container::config::null_as_default")]
    internal: bool,
    #[serde(deserialize_with = "crate::container::config::null_as_default")]
    attachable: bool,
    #[serde(deserialize_with = "crate::container::config::null_as_default")]
    ingress: bool,
    #[serde(
        rename = "EnableIPv6",
        deserialize_with = "crate::container::config::null_as_default"
    )]
    enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    ipam: Option<IpamJson>,
    options: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct IpamJson {
    config: Option<Vec<IpamConfigJson>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct IpamConfigJson {
    #[serde(deserialize_with = "crate::container::config::null_as_default")]
    subnet: String,
    #[serde(deserialize_with = "crate::container::config::null_as_default")]
    gateway: String,
    #[serde(
        rename = "IPRange",
        deserialize_with = "crate::container::config::null_as_default"
    )]
    ip_range: String,
    #[serde(deserialize_with = "crate::container::config::null_as_default")]
    auxiliary_addresses: BTreeMap<String, String>,
}

/// `POST /networks/create`.
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let body = read_body(req.into_body(), 1 << 20).await?;
    let c: CreateJson = parse_json(&body)?;
    // One pool of each family: the first IPv4 one and the first IPv6 one.
    let pools = c.ipam.and_then(|i| i.config).unwrap_or_default();
    let is_v6 = |p: &IpamConfigJson| p.subnet.contains(':');
    let ipam6 = pools.iter().find(|p| is_v6(p)).map(|p| IpamConfigJson {
        subnet: p.subnet.clone(),
        gateway: p.gateway.clone(),
        ip_range: p.ip_range.clone(),
        auxiliary_addresses: BTreeMap::new(),
    });
    let ipam = pools.into_iter().find(|p| !is_v6(p)).unwrap_or_default();
    if c.driver == "overlay"
        && ctx
            .engine
            .swarm
            .lock()
            .cluster_of(&ctx.scope.name)
            .is_none()
    {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            crate::swarm::NOT_MANAGER,
        ));
    }
    let request = NetworkRequest {
        name: c.name,
        driver: c.driver,
        subnet: Some(ipam.subnet).filter(|s| !s.is_empty()),
        gateway: Some(ipam.gateway).filter(|s| !s.is_empty()),
        ip_range: Some(ipam.ip_range).filter(|s| !s.is_empty()),
        aux_addresses: ipam.auxiliary_addresses,
        internal: c.internal,
        attachable: c.attachable,
        ingress: c.ingress,
        labels: c.labels.unwrap_or_default(),
        options: c.options.unwrap_or_default(),
        enable_ipv6: c.enable_ipv6,
        subnet6: ipam6.as_ref().map(|p| p.subnet.clone()),
        gateway6: ipam6
            .as_ref()
            .map(|p| p.gateway.clone())
            .filter(|g| !g.is_empty()),
        ip_range6: ipam6
            .as_ref()
            .map(|p| p.ip_range.clone())
            .filter(|r| !r.is_empty()),
    };
    let runtime = ctx.engine.runtime.clone();
    let scope = ctx.scope.name.clone();
    let n = blocking(move || Ok(runtime.net().create(&scope, request)?)).await?;
    Ok(json(
        StatusCode::CREATED,
        &json!({"Id": n.id, "Warning": ""}),
    ))
}

/// `DELETE /networks/{id}`.
pub async fn remove(ctx: &Ctx, id: &str) -> ApiResult {
    super::service_spec::settle_network_tasks(ctx, id).await;
    let runtime = ctx.engine.runtime.clone();
    let scope = ctx.scope.name.clone();
    let id = id.to_string();
    blocking(move || Ok(runtime.net().remove(&scope, &id)?)).await?;
    Ok(no_content())
}

/// `POST /networks/prune`: removes user-defined networks nothing runs on.
pub async fn prune(ctx: &Ctx) -> ApiResult {
    let runtime = ctx.engine.runtime.clone();
    let scope = ctx.scope.name.clone();
    let removed = blocking(move || {
        let mut removed = Vec::new();
        for n in runtime.net().list(&scope)? {
            // dockerd's prune leaves the routing mesh's network alone.
            if n.predefined() || n.ingress {
                continue;
            }
            let configured = runtime.list(&scope).iter().any(|c| {
                let r = c.snapshot();
                r.state.running()
                    && r.config
                        .networking
                        .networks()
                        .iter()
                        .any(|(name, _)| *name == n.name)
            });
            if configured || !runtime.net().members(&n.id).is_empty() {
                continue;
            }
            if runtime.net().remove(&scope, &n.id).is_ok() {
                removed.push(n.name);
            }
        }
        Ok(removed)
    })
    .await?;
    Ok(json(StatusCode::OK, &json!({"NetworksDeleted": removed})))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct ConnectJson {
    container: String,
    endpoint_config: Option<EndpointJson>,
    force: bool,
}

/// `POST /networks/{id}/connect`.
pub async fn connect(ctx: &Ctx, id: &str, req: Request<Incoming>) -> ApiResult {
    let body = read_body(req.into_body(), 1 << 20).await?;
    let c: ConnectJson = parse_json(&body)?;
    let container = find(ctx, &c.container)?;
    let runtime = ctx.engine.runtime.clone();
    let network = runtime.net().get(&ctx.scope.name, id)?;
    if network.driver == "host" {
        return Err(ApiError::forbidden(
            "container cannot be disconnected from host network or connected to host network",
        ));
    }
    let cfg = c.endpoint_config.unwrap_or_default().into_config()?;
    blocking(move || Ok(runtime.connect_network(&container, &network, cfg)?)).await?;
    Ok(json(StatusCode::OK, &json!(null)))
}

/// `POST /networks/{id}/disconnect`.
pub async fn disconnect(ctx: &Ctx, id: &str, req: Request<Incoming>) -> ApiResult {
    let body = read_body(req.into_body(), 1 << 20).await?;
    let c: ConnectJson = parse_json(&body)?;
    let _ = c.force;
    let container = find(ctx, &c.container)?;
    let runtime = ctx.engine.runtime.clone();
    let network = runtime.net().get(&ctx.scope.name, id)?;
    blocking(move || Ok(runtime.disconnect_network(&container, &network)?)).await?;
    Ok(json(StatusCode::OK, &json!(null)))
}
