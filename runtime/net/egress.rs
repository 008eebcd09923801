//! Egress: where the engine may connect on a learner's behalf.
//!
//! A classroom session's pulls, pushes, logins, token realms and redirects
//! name hosts the learner chose, and the engine connects to them from the
//! host's own network. Without a rule, `docker pull 127.0.0.1:22/x` or a
//! registry whose token realm or blob redirect points at
//! `http://169.254.169.254/` makes the host talk to its own services or its
//! cloud's metadata service for the learner.
//!
//! The rule: such a connection may go to any address except the host's own
//! ([`Refusal::HostAddress`]: loopback, unspecified, every address on the
//! host's interfaces), link-local ones ([`Refusal::LinkLocal`]: cloud
//! metadata, `fe80::/10`) and non-unicast ones, unless the operator allows
//! the registry by name (`berth serve --allow-registry host:port`). Names
//! are resolved once, the addresses checked, and the connection made to
//! exactly those addresses ([`Egress::resolve`]), so a name resolving to
//! `127.0.0.1` (or resolving differently the second time) is refused too.
//! `berth daemon`, the host's own engine, has no [`Egress`] and keeps
//! dockerd's reach.

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why an address may not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Loopback, unspecified, or an address of one of the host's interfaces.
    HostAddress(IpAddr),
    /// Link-local (`169.254.0.0/16`, where clouds serve instance metadata,
    /// and `fe80::/10`).
    LinkLocal(IpAddr),
    /// Multicast or broadcast.
    NotUnicast(IpAddr),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::HostAddress(ip) => write!(f, "{ip} is an address of the Berth host"),
            Refusal::LinkLocal(ip) => write!(
                f,
                "{ip} is a link-local address (where a cloud serves its instance metadata)"
            ),
            Refusal::NotUnicast(ip) => write!(f, "{ip} is not a unicast address"),
        }
    }
}

/// A connection refused by the policy, in words a learner can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// `refused: 127.0.0.1 is an address of the Berth host, which a
    /// classroom session may not reach (an operator can allow it with
    /// --allow-registry 127.0.0.1:9999)`.
    #[error("refused: {refusal}, which a classroom session may not reach (an operator can allow it with --allow-registry {authority})")]
    Refused { refusal: Refusal, authority: String },
    /// The name resolves to nothing (Go's words).
    #[error("dial tcp: lookup {0}: no such host")]
    NoSuchHost(String),
}

/// The egress policy of an engine whose scopes are classroom sessions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Egress {
    /// `host:port` the operator allows whatever their addresses are.
    allowed: Vec<String>,
}

impl Egress {
    /// A policy allowing the registries `allowed` (`host:port`) by name.
    pub fn new(allowed: impl IntoIterator<Item = String>) -> Self {
        Self {
            allowed: allowed
                .into_iter()
                .map(|a| a.trim().to_ascii_lowercase())
                .collect(),
        }
    }

    /// Whether the operator allowed `host:port` by name (`host` as a URL
    /// writes it: IPv6 in brackets).
    pub fn allows(&self, host: &str, port: u16) -> bool {
        let authority = authority(host, port).to_ascii_lowercase();
        self.allowed.contains(&authority)
    }

    /// Checks one address against the host's addresses `own`.
    pub fn classify(ip: IpAddr, own: &HashSet<IpAddr>) -> Result<(), Refusal> {
        let ip = canonical(ip);
        match ip {
            IpAddr::V4(v4) => {
                if v4.is_loopback() || v4.octets()[0] == 0 {
                    // 0.0.0.0/8 is "this host" to the kernel.
                    return Err(Refusal::HostAddress(ip));
                }
                if v4.is_link_local() {
                    return Err(Refusal::LinkLocal(ip));
                }
                if v4.is_multicast() || v4.is_broadcast() {
                    return Err(Refusal::NotUnicast(ip));
                }
            }
            IpAddr::V6(v6) => {
                if v6.is_loopback() || v6.is_unspecified() {
                    return Err(Refusal::HostAddress(ip));
                }
                if (v6.segments()[0] & 0xffc0) == 0xfe80 {
                    return Err(Refusal::LinkLocal(ip));
                }
                if v6.is_multicast() {
                    return Err(Refusal::NotUnicast(ip));
                }
            }
        }
        if own.contains(&ip) {
            return Err(Refusal::HostAddress(ip));
        }
        Ok(())
    }

    /// The addresses to connect to for `host:port`: an address literal or
    /// every address the name resolves to, keeping those the policy allows
    /// (all of them for a registry the operator allowed). The connection
    /// must be made to these and nothing else.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let found: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => tokio::net::lookup_host((bare, port))
                .await
                .map_err(|_| EgressError::NoSuchHost(bare.to_string()))?
                .collect(),
        };
        if found.is_empty() {
            return Err(EgressError::NoSuchHost(bare.to_string()));
        }
        if self.allows(host, port) {
            return Ok(found);
        }
        let own = host_addresses();
        let mut first = None;
        let kept: Vec<SocketAddr> = found
            .into_iter()
            .filter(|a| match Self::classify(a.ip(), &own) {
                Ok(()) => true,
                Err(r) => {
                    first.get_or_insert(r);
                    false
                }
            })
            .collect();
        match first {
            Some(refusal) if kept.is_empty() => Err(EgressError::Refused {
                refusal,
                authority: authority(host, port),
            }),
            _ => Ok(kept),
        }
    }
}

/// `host:port` as Docker names a registry.
fn authority(host: &str, port: u16) -> String {
    if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) is the IPv4 one.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// Every address on the host's interfaces (of the engine's own network
/// namespace), read at each check: interfaces come and go.
pub fn host_addresses() -> HashSet<IpAddr> {
    let mut out: HashSet<IpAddr> = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ]
    .into();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return out;
    };
    for a in addrs {
        let Some(addr) = a.address else { continue };
        if let Some(v4) = addr.as_sockaddr_in() {
            out.insert(IpAddr::V4(v4.ip()));
        } else if let Some(v6) = addr.as_sockaddr_in6() {
            out.insert(IpAddr::V6(v6.ip()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn check(text: &str) -> Result<(), Refusal> {
        let own: HashSet<IpAddr> = [ip("192.0.2.10"), ip("2001:db8::10")].into();
        Egress::classify(ip(text), &own)
    }

    #[test]
    fn the_hosts_own_addresses_are_refused() {
        for a in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "0.1.2.3",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "192.0.2.10",
            "2001:db8::10",
            "::ffff:192.0.2.10",
        ] {
            assert!(
                matches!(check(a), Err(Refusal::HostAddress(_))),
                "{a}: {:?}",
                check(a)
            );
        }
    }

    #[test]
    fn link_local_and_metadata_addresses_are_refused() {
        for a in ["169.254.169.254", "169.254.0.1", "fe80::1", "febf::1"] {
            assert!(matches!(check(a), Err(Refusal::LinkLocal(_))), "{a}");
        }
        assert!(matches!(
            check("::ffff:169.254.169.254"),
            Err(Refusal::LinkLocal(_))
        ));
    }

    #[test]
    fn multicast_and_broadcast_are_refused() {
        for a in ["224.0.0.1", "255.255.255.255", "ff02::1"] {
            assert!(matches!(check(a), Err(Refusal::NotUnicast(_))), "{a}");
        }
    }

    #[test]
    fn public_and_other_hosts_addresses_pass() {
        for a in [
            "1.1.1.1",
            "192.0.2.11",
            "10.0.0.5",
            "172.17.0.2",
            "2606:4700::1111",
            "fec0::1",
            "fc00::1",
        ] {
            assert_eq!(check(a), Ok(()), "{a}");
        }
    }

    #[test]
    fn the_refusal_names_the_address_and_the_flag() {
        let e = EgressError::Refused {
            refusal: Refusal::HostAddress(ip("127.0.0.1")),
            authority: "127.0.0.1:9999".into(),
        };
        assert_eq!(
            e.to_string(),
            "refused: 127.0.0.1 is an address of the Berth host, which a classroom session may not reach (an operator can allow it with --allow-registry 127.0.0.1:9999)"
        );
    }

    #[test]
    fn operators_allow_registries_by_name_and_port() {
        let e = Egress::new(["127.0.0.1:9999".to_string(), "Reg.Lan:5000".into()]);
        assert!(e.allows("127.0.0.1", 9999));
        assert!(e.allows("reg.lan", 5000));
        assert!(!e.allows("127.0.0.1", 9998));
        assert!(!e.allows("reg.lan", 22));
        assert!(Egress::new(["[::1]:5000".to_string()]).allows("[::1]", 5000));
    }

    #[tokio::test]
    async fn names_are_checked_after_resolution() {
        let e = Egress::default();
        let refused = e.resolve("localhost", 5000).await.unwrap_err();
        assert!(
            matches!(refused, EgressError::Refused { ref authority, .. } if authority == "localhost:5000"),
            "{refused}"
        );
        assert!(e.resolve("127.0.0.1", 1).await.is_err());
        assert!(e.resolve("[::1]", 1).await.is_err());
        let allowed = Egress::new(["localhost:5000".to_string()]);
        let addrs = allowed.resolve("localhost", 5000).await.unwrap();
        assert!(addrs
            .iter()
            .all(|a| a.ip().is_loopback() && a.port() == 5000));
        assert_eq!(
            e.resolve("1.1.1.1", 443).await.unwrap(),
            vec![SocketAddr::new(ip("1.1.1.1"), 443)]
        );
    }
}
