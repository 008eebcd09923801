//! The embedded DNS of a user-defined network: a small responder on the
//! network's gateway, port 53, answering A queries for the names and aliases
//! of the containers attached to it. Nothing is forwarded anywhere else.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::netns::HostNamespace;

/// Names → addresses of one network.
pub type Records = Arc<Mutex<BTreeMap<String, Vec<Ipv4Addr>>>>;

/// For an asker's address on this network, the records of its other
/// networks: a container on several networks resolves the names of each.
pub type Peers = Arc<Mutex<HashMap<Ipv4Addr, Vec<Records>>>>;

/// For an asker's address, its legacy links: alias → the linked
/// container's name, looked up when asked (the target may start later).
pub type Links = Arc<Mutex<HashMap<Ipv4Addr, BTreeMap<String, String>>>>;

/// A running responder; stops when dropped.
pub struct DnsServer {
    pub records: Records,
    pub peers: Peers,
    pub links: Links,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl DnsServer {
    /// Listens on `addr:53` inside `host`.
    pub fn start(host: &HostNamespace, addr: Ipv4Addr) -> io::Result<Self> {
        Self::start_with(host, addr, None)
    }

    /// Listens on `addr:53` inside `host`, answering from `records` when
    /// given (the parts of one overlay on several nodes share them).
    pub fn start_with(
        host: &HostNamespace,
        addr: Ipv4Addr,
        records: Option<Records>,
    ) -> io::Result<Self> {
        let socket = host.run(|| UdpSocket::bind(SocketAddrV4::new(addr, 53)))?;
        socket.set_read_timeout(Some(Duration::from_millis(200)))?;
        let records: Records = records.unwrap_or_default();
        let peers: Peers = Arc::default();
        let links: Links = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, p, l) = (records.clone(), stop.clone(), peers.clone(), links.clone());
        let thread = std::thread::Builder::new()
            .name(format!("dns-{addr}"))
            .spawn(move || {
                let mut buf = [0u8; 512];
                // Names with several addresses (a service's tasks) answer
                // them in turn first: DNS round robin.
                let mut turn = 0usize;
                while !s.load(Ordering::SeqCst) {
                    let Ok((n, from)) = socket.recv_from(&mut buf) else {
                        continue;
                    };
                    let mut table = r.lock().unwrap_or_else(|p| p.into_inner()).clone();
                    // Then the names of the asker's other networks.
                    let asker = match from.ip() {
                        std::net::IpAddr::V4(ip) => ip,
                        std::net::IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
                    };
                    let others = p
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&asker)
                        .cloned()
                        .unwrap_or_default();
                    for other in others {
                        let other = other.lock().unwrap_or_else(|p| p.into_inner()).clone();
                        for (name, ips) in other {
                            table.entry(name).or_insert(ips);
                        }
                    }
                    // Its links' aliases, to whatever their targets are now.
                    let linked = l
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get(&asker)
                        .cloned()
                        .unwrap_or_default();
                    for (alias, target) in linked {
                        if let Some(ips) = table.get(&target).cloned() {
                            table.entry(alias).or_insert(ips);
                        }
                    }
                    // A resolver asks A and AAAA in pairs: only A turns.
                    if query_type(&buf[..n]) == Some(1) {
                        turn = turn.wrapping_add(1);
                    }
                    let rotated = |name: &str| {
                        table.get(name).map(|ips| {
                            let mut ips = ips.clone();
                            if !ips.is_empty() {
                                let k = turn % ips.len();
                                ips.rotate_left(k);
                            }
                            ips
                        })
                    };
                    if let Some(reply) = answer(&buf[..n], rotated) {
                        let _ = socket.send_to(&reply, from);
                    }
                }
            })?;
        Ok(Self {
            records,
            peers,
            links,
            stop,
            thread: Some(thread),
        })
    }
}

/// The type asked for by a one-question query (1 = A, 28 = AAAA).
fn query_type(query: &[u8]) -> Option<u16> {
    let mut i = 12;
    loop {
        let len = *query.get(i)? as usize;
        i += 1 + len;
        if len == 0 {
            break;
        }
    }
    Some(u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]))
}

/// The reply to one query; `lookup` maps a lower-case name to its addresses.
pub fn answer(query: &[u8], lookup: impl Fn(&str) -> Option<Vec<Ipv4Addr>>) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    let qdcount = u16::from_be_bytes([query[4], query[5]]);
    let mut labels = Vec::new();
    let mut i = 12;
    loop {
        let len = *query.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        if len & 0xC0 != 0 {
            return None;
        }
        labels.push(String::from_utf8_lossy(query.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let question_end = i + 4;
    query.get(..question_end)?;
    let name = labels.join(".");
    let found = if qdcount == 1 { lookup(&name) } else { None };
    let mut reply = query[..question_end].to_vec();
    // QR, the query's opcode and RD; RA; NXDOMAIN when the name is unknown.
    reply[2] = 0x80 | (query[2] & 0x79);
    reply[3] = 0x80 | if found.is_some() { 0 } else { 3 };
    let answers: Vec<Ipv4Addr> = match (&found, qtype) {
        (Some(ips), 1) => ips.clone(),
        _ => Vec::new(),
    };
    reply[6..8].copy_from_slice(&(answers.len() as u16).to_be_bytes());
    reply[8..12].fill(0);
    for ip in answers {
        // A pointer to the question's name, type A, class IN, TTL 600.
        reply.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 2, 0x58, 0, 4]);
        reply.extend_from_slice(&ip.octets());
    }
    Some(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, qtype: u16) -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in name.split('.') {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.push(0);
        q.extend_from_slice(&qtype.to_be_bytes());
        q.extend_from_slice(&[0, 1]);
        q
    }

    #[test]
    fn known_names_answer_and_unknown_are_nxdomain() {
        let lookup = |n: &str| (n == "web").then(|| vec![Ipv4Addr::new(172, 18, 0, 2)]);
        let r = answer(&query("WEB", 1), lookup).unwrap();
        assert_eq!(&r[0..2], &[0x12, 0x34]);
        assert_eq!(r[3] & 0x0F, 0);
        assert_eq!(u16::from_be_bytes([r[6], r[7]]), 1);
        assert_eq!(&r[r.len() - 4..], &[172, 18, 0, 2]);
        let aaaa = answer(&query("web", 28), lookup).unwrap();
        assert_eq!((aaaa[3] & 0x0F, aaaa[7]), (0, 0), "known name, no IPv6");
        let r = answer(&query("db", 1), lookup).unwrap();
        assert_eq!(r[3] & 0x0F, 3);
        assert!(answer(&[1, 2, 3], lookup).is_none());
    }
}
