//! The session network: how the nodes of one session reach each other.
//!
//! A *hub* namespace of the session's own (pinned at
//! `<session>/network/netns`, so the sweep's namespace pass removes it like a
//! node's) holds a bridge `br0`; every node gets a veth pair whose hub end
//! `nodeN` is on that bridge and whose node end is `eth0` in the node's host
//! namespace, with address [`SUBNET`]`.N/24`. Nothing of it is in the host's
//! root namespace, and removing the hub namespace removes every pair.
//!
//! The names resolve through `<session>/network.json` (node → address): the
//! labs get them in `/etc/hosts`, and the engine reads them for
//! `docker swarm join node1:2377` ([`resolve`]).

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nix::sched::{unshare, CloneFlags};

use super::netns;
use crate::net::netlink::{index_of, Netlink};

/// The session network's first three octets: node N is `10.199.0.N`. Outside
/// Docker's default bridge pools (172.17–31/16, 192.168/16) and far from
/// swarm's overlay pool start (10.0.0.0/24), so a node's own networks never
/// clash with it; every session has its own hub, so sessions may share it.
pub const SUBNET: [u8; 3] = [10, 199, 0];
/// The node end of each pair, as on a real host.
pub const NODE_IFNAME: &str = "eth0";

/// The hub namespace of the session in `session_dir`.
pub fn hub_netns(session_dir: &Path) -> PathBuf {
    super::node::host_netns_path(&session_dir.join("network"))
}

fn table_path(session_dir: &Path) -> PathBuf {
    session_dir.join("network.json")
}

/// The node names and addresses of the session in `session_dir`.
pub fn table(session_dir: &Path) -> BTreeMap<String, Ipv4Addr> {
    fs::read(table_path(session_dir))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// The session directory of a node whose host namespace is `host_netns`
/// (`<session>/<node>/netns`).
pub fn session_dir_of(host_netns: &Path) -> Option<&Path> {
    host_netns.parent()?.parent()
}

/// The address of `name` (a node name or an address) as the node whose host
/// namespace is `host_netns` resolves it.
pub fn resolve(host_netns: &Path, name: &str) -> Option<Ipv4Addr> {
    if let Ok(ip) = name.parse() {
        return Some(ip);
    }
    table(session_dir_of(host_netns)?).get(name).copied()
}

/// The address node `name` has on the session network.
pub fn address_of(name: &str) -> Option<Ipv4Addr> {
    let n: u8 = name.strip_prefix("node")?.parse().ok()?;
    (1..=250)
        .contains(&n)
        .then(|| Ipv4Addr::new(SUBNET[0], SUBNET[1], SUBNET[2], n))
}

/// Makes the hub namespace if it is not there yet.
pub(crate) fn ensure_hub(session_dir: &Path) -> io::Result<PathBuf> {
    let at = hub_netns(session_dir);
    if netns::is_pinned(&at) {
        return Ok(at);
    }
    fs::create_dir_all(at.parent().expect("a parent"))?;
    let pin_at = at.clone();
    std::thread::scope(|s| {
        s.spawn(move || -> io::Result<()> {
            // This thread alone moves into a new namespace and pins it.
            unshare(CloneFlags::CLONE_NEWNET)?;
            netns::pin_current(&pin_at)?;
            let nl = Netlink::open()?;
            nl.set_up(1, None)?;
            nl.add_bridge("br0")?;
            nl.set_up(index_of("br0")?, None)?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("hub namespace thread panicked")))
    })?;
    Ok(at)
}

/// Runs `f` on a thread inside the namespace file `path`.
fn inside<T: Send>(path: &Path, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
    crate::net::netns::in_namespace_file(path, f)
}

/// Puts node `name` (host namespace `node_ns`) on the session network, if
/// it is not on it yet. Returns its address.
pub fn attach(session_dir: &Path, name: &str, node_ns: &Path) -> io::Result<Ipv4Addr> {
    let addr = address_of(name)
        .ok_or_else(|| io::Error::other(format!("no session address for {name}")))?;
    let hub = ensure_hub(session_dir)?;
    let node_file = fs::File::open(node_ns)?;
    let host_end = name.to_string();
    let attached = inside(&hub, || Ok(index_of(&host_end).is_ok()))?;
    if !attached {
        let mac = [
            0x02,
            0x42,
            SUBNET[0],
            SUBNET[1],
            SUBNET[2],
            addr.octets()[3],
        ];
        inside(&hub, || {
            let nl = Netlink::open()?;
            nl.add_veth(&host_end, NODE_IFNAME, mac, &node_file)?;
            let bridge = index_of("br0")?;
            nl.set_up(index_of(&host_end)?, Some(bridge))
        })?;
        inside(node_ns, || {
            let nl = Netlink::open()?;
            let i = index_of(NODE_IFNAME)?;
            nl.add_address(i, addr, 24)?;
            nl.set_up(i, None)
        })?;
    }
    let mut t = table(session_dir);
    t.insert(name.to_string(), addr);
    fs::write(
        table_path(session_dir),
        serde_json::to_vec_pretty(&t).unwrap_or_default(),
    )?;
    Ok(addr)
}

/// The `/etc/hosts` lines naming every node of the session.
pub fn hosts_lines(session_dir: &Path) -> String {
    table(session_dir)
        .iter()
        .map(|(name, ip)| format!("{ip}\t{name}\n"))
        .collect()
}

/// Rewrites `hosts` (a lab's `/etc/hosts`, bind mounted: written in place)
/// with the session's nodes after what it had before them.
pub fn write_hosts(session_dir: &Path, hosts: &Path) -> io::Result<()> {
    const MARK: &str = "# session nodes\n";
    let old = fs::read_to_string(hosts).unwrap_or_default();
    let base = old.split(MARK).next().unwrap_or("").to_string();
    fs::write(hosts, format!("{base}{MARK}{}", hosts_lines(session_dir)))
}
