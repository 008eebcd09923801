//! A small rtnetlink client: just the link, address and route requests the
//! bridge driver needs, on a `NETLINK_ROUTE` socket of the calling thread's
//! network namespace. Every request asks for an ACK so errors surface as
//! `io::Error`s with the kernel's errno.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use nix::sys::socket::{
    bind, recv, send, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
    SockType,
};

const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_NET_NS_FD: u16 = 28;
const IFLA_INFO_KIND: u16 = 1;
const IFLA_INFO_DATA: u16 = 2;
const VETH_INFO_PEER: u16 = 1;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_BROADCAST: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const IFF_UP: u32 = 1;
const AF_INET: u8 = libc::AF_INET as u8;
const AF_INET6: u8 = libc::AF_INET6 as u8;
const IFA_F_NODAD: u8 = 0x02;

/// A netlink message under construction: header, fixed part, attributes.
struct Message {
    buf: Vec<u8>,
    /// Offsets of nested attributes still open.
    nests: Vec<usize>,
}

impl Message {
    fn new(kind: u16, flags: u16) -> Self {
        let mut buf = vec![0u8; 16];
        buf[4..6].copy_from_slice(&kind.to_ne_bytes());
        buf[6..8].copy_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf[8..12].copy_from_slice(&1u32.to_ne_bytes());
        Self {
            buf,
            nests: Vec::new(),
        }
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(b);
        self
    }
    fn align(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }
    /// `ifinfomsg`: family, type, index, flags, change.
    fn ifinfo(&mut self, index: i32, flags: u32, change: u32) -> &mut Self {
        self.bytes(&[0, 0, 0, 0])
            .bytes(&index.to_ne_bytes())
            .bytes(&flags.to_ne_bytes())
            .bytes(&change.to_ne_bytes())
    }
    fn attr(&mut self, kind: u16, data: &[u8]) -> &mut Self {
        let len = (4 + data.len()) as u16;
        self.bytes(&len.to_ne_bytes())
            .bytes(&kind.to_ne_bytes())
            .bytes(data);
        self.align();
        self
    }
    fn attr_str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut data = s.as_bytes().to_vec();
        data.push(0);
        self.attr(kind, &data)
    }
    fn begin(&mut self, kind: u16) -> &mut Self {
        self.nests.push(self.buf.len());
        self.bytes(&[0, 0]).bytes(&kind.to_ne_bytes())
    }
    fn end(&mut self) -> &mut Self {
        let start = self.nests.pop().expect("an open nest");
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }
    fn finish(&mut self) -> &[u8] {
        let len = self.buf.len() as u32;
        self.buf[0..4].copy_from_slice(&len.to_ne_bytes());
        &self.buf
    }
}

/// A `NETLINK_ROUTE` socket in the calling thread's network namespace.
pub struct Netlink {
    fd: OwnedFd,
}

impl Netlink {
    pub fn open() -> io::Result<Self> {
        let fd = socket(
            AddressFamily::Netlink,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::NetlinkRoute,
        )?;
        bind(fd.as_raw_fd(), &NetlinkAddr::new(0, 0))?;
        Ok(Self { fd })
    }

    fn request(&self, msg: &mut Message) -> io::Result<()> {
        let raw: RawFd = self.fd.as_raw_fd();
        send(raw, msg.finish(), MsgFlags::empty())?;
        let mut buf = vec![0u8; 8192];
        loop {
            let n = recv(raw, &mut buf, MsgFlags::empty())?;
            let mut off = 0;
            while off + 16 <= n {
                let len =
                    u32::from_ne_bytes(buf[off..off + 4].try_into().expect("4 bytes")) as usize;
                let kind = u16::from_ne_bytes(buf[off + 4..off + 6].try_into().expect("2 bytes"));
                if kind == NLMSG_ERROR && off + 20 <= n {
                    let code =
                        i32::from_ne_bytes(buf[off + 16..off + 20].try_into().expect("4 bytes"));
                    return if code == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(-code))
                    };
                }
                if len < 16 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
    }

    /// Creates a bridge named `name` (already existing is fine).
    pub fn add_bridge(&self, name: &str) -> io::Result<()> {
        // A MAC of its own, as Docker gives: left unset, the bridge takes
        // the lowest of its ports' and changes as containers come and go,
        // and every member's ARP entry for the gateway goes stale.
        let mut mac: [u8; 6] = rand::random();
        mac[0] = (mac[0] & 0xfe) | 0x02;
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, 0, 0)
            .attr_str(IFLA_IFNAME, name)
            .attr(IFLA_ADDRESS, &mac);
        m.begin(IFLA_LINKINFO)
            .attr_str(IFLA_INFO_KIND, "bridge")
            .end();
        match self.request(&mut m) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// Creates a veth pair: `host` here, `peer` directly inside the network
    /// namespace `peer_ns` (so its name never collides with ours).
    pub fn add_veth(
        &self,
        host: &str,
        peer: &str,
        peer_mac: [u8; 6],
        peer_ns: &impl AsRawFd,
    ) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
        m.ifinfo(0, 0, 0).attr_str(IFLA_IFNAME, host);
        m.begin(IFLA_LINKINFO).attr_str(IFLA_INFO_KIND, "veth");
        m.begin(IFLA_INFO_DATA)
            .begin(VETH_INFO_PEER)
            .ifinfo(0, 0, 0);
        m.attr_str(IFLA_IFNAME, peer)
            .attr(IFLA_ADDRESS, &peer_mac)
            .attr(IFLA_NET_NS_FD, &peer_ns.as_raw_fd().to_ne_bytes());
        m.end().end().end();
        self.request(&mut m)
    }

    /// Brings a link up, optionally enslaving it to the bridge `master`.
    pub fn set_up(&self, index: u32, master: Option<u32>) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWLINK, 0);
        m.ifinfo(index as i32, IFF_UP, IFF_UP);
        if let Some(master) = master {
            m.attr(IFLA_MASTER, &master.to_ne_bytes());
        }
        self.request(&mut m)
    }

    /// Deletes a link (a veth's peer goes with it).
    pub fn delete_link(&self, index: u32) -> io::Result<()> {
        let mut m = Message::new(RTM_DELLINK, 0);
        m.ifinfo(index as i32, 0, 0);
        self.request(&mut m)
    }

    /// Adds `addr/prefix` to a link (already present is fine).
    pub fn add_address(&self, index: u32, addr: Ipv4Addr, prefix: u8) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        m.bytes(&[AF_INET, prefix, 0, 0])
            .bytes(&index.to_ne_bytes())
            .attr(IFA_LOCAL, &addr.octets())
            .attr(IFA_ADDRESS, &addr.octets());
        let host_mask = if prefix >= 32 { 0 } else { u32::MAX >> prefix };
        let broadcast = Ipv4Addr::from(u32::from(addr) | host_mask);
        m.attr(IFA_BROADCAST, &broadcast.octets());
        match self.request(&mut m) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// Adds the IPv6 `addr/prefix` to a link, without duplicate address
    /// detection (usable at once, as Docker adds them; the engine picked
    /// it unique on its bridge).
    pub fn add_address6(&self, index: u32, addr: Ipv6Addr, prefix: u8) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
        // ifaddrmsg: family, prefix length, flags (IFA_F_NODAD), scope.
        m.bytes(&[AF_INET6, prefix, IFA_F_NODAD, 0])
            .bytes(&index.to_ne_bytes())
            .attr(IFA_LOCAL, &addr.octets())
            .attr(IFA_ADDRESS, &addr.octets());
        match self.request(&mut m) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            other => other,
        }
    }

    /// Adds the default route via `gateway`.
    pub fn add_default_route(&self, gateway: Ipv4Addr) -> io::Result<()> {
        let mut m = Message::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
        // rtmsg: family, dst_len, src_len, tos, table main, protocol boot,
        // scope universe, type unicast, flags.
        m.bytes(&[AF_INET, 0, 0, 0, 254, 3, 0, 1])
            .bytes(&0u32.to_ne_bytes())
            .attr(RTA_GATEWAY, &gateway.octets());
        self.request(&mut m)
    }
}

/// The index of the link called `name` in this thread's namespace.
pub fn index_of(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(io::Error::from)
}
