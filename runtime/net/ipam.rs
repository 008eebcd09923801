//! Addresses: IPv4 subnets, Docker's default pools, and picking a subnet
//! that collides with neither another network nor a route of the host.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// An IPv4 subnet in CIDR form (`172.18.0.0/16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        Self {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        }
    }
    fn first(&self) -> u32 {
        u32::from(self.addr)
    }
    fn last(&self) -> u32 {
        self.first() | !mask(self.prefix)
    }
    /// Whether `other` lies wholly inside this subnet.
    pub fn covers(&self, other: &Subnet) -> bool {
        self.first() <= other.first() && other.last() <= self.last()
    }
    /// The network or broadcast address: never given to a container.
    pub fn is_edge(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        self.prefix < 31 && (ip == self.first() || ip == self.last())
    }
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        self.first() <= ip && ip <= self.last()
    }
    /// The first host address: Docker's gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.first() + 1)
    }
    /// The `n`th host address (0 = the gateway), if inside the subnet and
    /// not its broadcast address.
    pub fn host(&self, n: u32) -> Option<Ipv4Addr> {
        let ip = self.first().checked_add(1 + n)?;
        (ip < self.last()).then(|| Ipv4Addr::from(ip))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix.min(32))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Subnet::new(addr, prefix))
    }
}

impl TryFrom<String> for Subnet {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Subnet> for String {
    fn from(s: Subnet) -> String {
        s.to_string()
    }
}

/// An IPv6 subnet in CIDR form (`fd00:1::/64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Subnet6 {
    pub addr: Ipv6Addr,
    pub prefix: u8,
}

fn mask6(prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix.min(128))
    }
}

impl Subnet6 {
    pub fn new(addr: Ipv6Addr, prefix: u8) -> Self {
        Self {
            addr: Ipv6Addr::from(u128::from(addr) & mask6(prefix)),
            prefix,
        }
    }
    fn first(&self) -> u128 {
        u128::from(self.addr)
    }
    fn last(&self) -> u128 {
        self.first() | !mask6(self.prefix)
    }
    pub fn contains(&self, ip: Ipv6Addr) -> bool {
        let ip = u128::from(ip);
        self.first() <= ip && ip <= self.last()
    }
    pub fn covers(&self, other: &Subnet6) -> bool {
        self.first() <= other.first() && other.last() <= self.last()
    }
    pub fn overlaps(&self, other: &Subnet6) -> bool {
        self.first() <= other.last() && other.first() <= self.last()
    }
    /// The subnet-router anycast address (all host bits zero): never a
    /// container's.
    pub fn is_edge(&self, ip: Ipv6Addr) -> bool {
        self.prefix < 127 && u128::from(ip) == self.first()
    }
    /// The first host address: Docker's gateway.
    pub fn gateway(&self) -> Ipv6Addr {
        Ipv6Addr::from(self.first() + 1)
    }
    /// The `n`th host address (0 = the gateway), if inside the subnet.
    pub fn host(&self, n: u128) -> Option<Ipv6Addr> {
        let ip = self.first().checked_add(1)?.checked_add(n)?;
        (ip <= self.last()).then(|| Ipv6Addr::from(ip))
    }
}

impl fmt::Display for Subnet6 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet6 {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("invalid CIDR address: {s}");
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv6Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = prefix.parse().map_err(|_| bad())?;
        if prefix > 128 {
            return Err(bad());
        }
        Ok(Subnet6::new(addr, prefix))
    }
}

impl TryFrom<String> for Subnet6 {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<Subnet6> for String {
    fn from(s: Subnet6) -> String {
        s.to_string()
    }
}

/// A unique local /64 (`fdxx:xxxx:xxxx:yyyy::/64`, RFC 4193) for a network
/// that enables IPv6 without naming a subnet, as Docker 27+ picks one: a
/// random global ID, so two engines (or scopes) do not collide.
pub fn unique_local_64(taken: &[Subnet6]) -> Subnet6 {
    loop {
        let mut bytes: [u8; 16] = rand::random();
        bytes[0] = 0xfd;
        bytes[8..].fill(0);
        let s = Subnet6::new(Ipv6Addr::from(bytes), 64);
        if !taken.iter().any(|t| t.overlaps(&s)) {
            return s;
        }
    }
}

/// Docker's default address pools, in the order it uses them: 172.17–31/16,
/// then 192.168.0–240/20.
pub fn default_pool() -> impl Iterator<Item = Subnet> {
    let a = (17..=31).map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16));
    let b = (0..16).map(|i| Subnet::new(Ipv4Addr::new(192, 168, i * 16, 0), 20));
    a.chain(b)
}

/// The first pool subnet that overlaps none of `taken`.
pub fn pick(taken: &[Subnet]) -> Option<Subnet> {
    default_pool().find(|s| !taken.iter().any(|t| t.overlaps(s)))
}

/// The IPv4 routes of the calling thread's namespace, from the text of
/// `/proc/thread-self/net/route` (default routes left out: they cover all).
pub fn parse_routes(text: &str) -> Vec<Subnet> {
    let hex = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::from_be);
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let dest = hex(f.get(1)?)?;
            let mask = hex(f.get(7)?)?;
            (mask != 0).then(|| Subnet::new(Ipv4Addr::from(dest), mask.count_ones() as u8))
        })
        .collect()
}

/// The host's routes, read in the calling thread's network namespace.
pub fn host_routes() -> Vec<Subnet> {
    std::fs::read_to_string("/proc/thread-self/net/route")
        .map(|t| parse_routes(&t))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_parse_overlap_and_allocate() {
        let a: Subnet = "172.18.5.0/16".parse().unwrap();
        assert_eq!(a.to_string(), "172.18.0.0/16");
        assert_eq!(a.gateway(), Ipv4Addr::new(172, 18, 0, 1));
        assert_eq!(a.host(1), Some(Ipv4Addr::new(172, 18, 0, 2)));
        let b: Subnet = "172.18.200.0/24".parse().unwrap();
        assert!(a.overlaps(&b) && b.overlaps(&a));
        assert!(!b.overlaps(&"172.19.0.0/16".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Subnet>().is_err());
        assert!("nonsense".parse::<Subnet>().is_err());
        let small: Subnet = "10.0.0.0/30".parse().unwrap();
        assert_eq!(small.host(1), Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(small.host(2), None, "the broadcast address is not a host");
        let picked = pick(&[a, "172.17.0.0/16".parse().unwrap()]).unwrap();
        assert_eq!(picked.to_string(), "172.19.0.0/16");
    }

    #[test]
    fn v6_subnets_parse_and_allocate() {
        let s: Subnet6 = "2001:389::5/64".parse().unwrap();
        assert_eq!(s.to_string(), "2001:389::/64");
        assert_eq!(s.gateway().to_string(), "2001:389::1");
        assert_eq!(s.host(1).unwrap().to_string(), "2001:389::2");
        assert!(s.contains("2001:389::f00d".parse().unwrap()));
        assert!(!s.contains("2001:38a::1".parse().unwrap()));
        assert!(s.is_edge("2001:389::".parse().unwrap()));
        let r: Subnet6 = "2001:389::/96".parse().unwrap();
        assert!(s.covers(&r) && !r.covers(&s));
        assert!("2001::/129".parse::<Subnet6>().is_err());
        assert!("10.0.0.0/8".parse::<Subnet6>().is_err());
        let ula = unique_local_64(&[s]);
        assert_eq!(ula.prefix, 64);
        assert_eq!(ula.addr.octets()[0], 0xfd);
    }

    #[test]
    fn routes_read_from_proc_text() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0100A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        assert_eq!(parse_routes(text), vec!["172.17.0.0/16".parse().unwrap()]);
    }
}
