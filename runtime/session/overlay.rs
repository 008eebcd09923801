//! Overlay networks across a session's nodes: each node that has a part of
//! a swarm's overlay network (a bridge in its host namespace, see
//! [`crate::net::Networks::overlay_member`]) is linked by a veth pair to one
//! bridge per overlay in the session's hub namespace (the one the session
//! network lives in), so the parts form one layer-2 segment: a task on
//! node1 reaches a task on node3 at its overlay address, as swarm's VXLAN
//! overlay would carry it between hosts. Everything is inside the session's
//! namespaces; removing the hub removes every link.

use std::io;
use std::path::Path;

use crate::net::netlink::{index_of, Netlink};
use crate::net::netns::in_namespace_file;

/// The hub's bridge of overlay `group` (a network ID).
fn hub_bridge(group: &str) -> String {
    format!("ov{}", &group[..group.len().min(10)])
}

/// Links `node_bridge` (in the host namespace `node_ns` of `node`, a
/// `nodeN` of the session in `session_dir`) into overlay `group`. Linking
/// twice is harmless.
pub fn link(
    session_dir: &Path,
    node: &str,
    node_ns: &Path,
    node_bridge: &str,
    group: &str,
) -> io::Result<()> {
    let number = node.strip_prefix("node").unwrap_or(node);
    let hub = super::network::ensure_hub(session_dir)?;
    let bridge = hub_bridge(group);
    let hub_end = format!("o{}n{number}", &group[..group.len().min(6)]);
    let node_end = format!("ov{}", &group[..group.len().min(8)]);
    let linked = in_namespace_file(&hub, || Ok(index_of(&hub_end).is_ok()))?;
    if linked {
        return Ok(());
    }
    let node_file = std::fs::File::open(node_ns)?;
    let mac = {
        use rand::Rng;
        let mut m: [u8; 6] = rand::thread_rng().gen();
        m[0] = (m[0] & 0xfe) | 0x02;
        m
    };
    in_namespace_file(&hub, || {
        let nl = Netlink::open()?;
        if index_of(&bridge).is_err() {
            nl.add_bridge(&bridge)?;
        }
        let b = index_of(&bridge)?;
        nl.set_up(b, None)?;
        nl.add_veth(&hub_end, &node_end, mac, &node_file)?;
        nl.set_up(index_of(&hub_end)?, Some(b))
    })?;
    in_namespace_file(node_ns, || {
        let nl = Netlink::open()?;
        nl.set_up(index_of(&node_end)?, Some(index_of(node_bridge)?))
    })
}

/// Links the part of an overlay that lives in the host namespace `node_ns`
/// when that is a classroom node's (`<session>/<node>/netns`); nothing to do
/// for `berth daemon`'s single host.
pub fn link_node_namespace(node_ns: &Path, node_bridge: &str, group: &str) -> io::Result<()> {
    let Some(node_dir) = node_ns.parent() else {
        return Ok(());
    };
    let (Some(session_dir), Some(node)) = (
        super::network::session_dir_of(node_ns),
        node_dir.file_name().and_then(|n| n.to_str()),
    ) else {
        return Ok(());
    };
    if !node.starts_with("node") {
        return Ok(());
    }
    link(session_dir, node, node_ns, node_bridge, group)
}
