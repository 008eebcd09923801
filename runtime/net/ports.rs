//! Published ports: `-p` bindings as Docker's API carries them, and the
//! userland proxy that listens in the scope's host namespace and relays each
//! connection (or datagram) to the container's address.
//!
//! The proxy is asynchronous: every published port of every scope is a task
//! on one small Tokio runtime of its own ([`proxy_runtime`]), and a relayed
//! connection costs two sockets and a task, not threads.
//!
//! Connections to a container fail closed ([`Backend`]): they are made from
//! the scope's host namespace with the socket bound to the container's
//! bridge (`SO_BINDTODEVICE`), after checking that the bridge's network holds
//! the address. Were the engine's records and the bridges to disagree (a
//! container address no bridge has), the connection fails instead of
//! leaving by the namespace's default route to whatever answers there.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use nix::sys::socket::{self as sock, sockopt, AddressFamily, SockFlag, SockType};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::netns::HostNamespace;

/// How long a connection to a container may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A UDP flow with no reply for this long ends.
const UDP_IDLE: Duration = Duration::from_secs(60);

/// A transport protocol of a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

/// A container port: `80/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Port {
    pub number: u16,
    pub proto: Proto,
}

impl Port {
    /// Parses `80`, `80/tcp`, `53/udp` with Docker's errors.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (num, proto) = text.split_once('/').unwrap_or((text, "tcp"));
        let proto = match proto.to_ascii_lowercase().as_str() {
            "tcp" | "" => Proto::Tcp,
            "udp" => Proto::Udp,
            other => return Err(format!("invalid proto: {other}")),
        };
        let number = num
            .parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("invalid containerPort: {num}"))?;
        Ok(Port { number, proto })
    }
    /// `80/tcp`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.number, self.proto.as_str())
    }
}

/// One `-p`: a container port published on a host address and port
/// (`host_port` 0 = any free port).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    pub port: Port,
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
}

impl PortBinding {
    /// The host address to listen on: `0.0.0.0` unless given.
    pub fn host_addr(&self) -> Ipv4Addr {
        self.host_ip.unwrap_or(Ipv4Addr::UNSPECIFIED)
    }
}

/// A binding as it is live: the port actually listened on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub port: Port,
    pub host_ip: Ipv4Addr,
    pub host_port: u16,
    /// Also listened on `[::]:host_port`, as dockerd 28 publishes on a
    /// dual-stack host (`docker port` lists both).
    #[serde(default)]
    pub ipv6: bool,
}

/// Where a published port's connections go: a container's address, on its
/// network's bridge in the scope's host namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    pub addr: SocketAddrV4,
    /// The bridge interface the address must be on.
    pub bridge: String,
}

/// Why a connection to a container was not made: the address is not on its
/// bridge (the engine's records and the bridges disagree).
fn not_on_bridge(backend: &Backend) -> io::Error {
    io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        format!(
            "{} is not on bridge {}: the container's network records and its bridge disagree, and the connection is not routed elsewhere",
            backend.addr.ip(),
            backend.bridge
        ),
    )
}

/// Checks, in the calling thread's namespace, that `backend`'s address is
/// on a network of its bridge (and is not the bridge's own address).
fn check_on_bridge(backend: &Backend) -> io::Result<()> {
    let ip = *backend.addr.ip();
    let on_bridge = nix::ifaddrs::getifaddrs()
        .map_err(io::Error::from)?
        .filter(|a| a.interface_name == backend.bridge)
        .filter_map(|a| {
            let addr = a.address?.as_sockaddr_in()?.ip();
            let mask = a.netmask?.as_sockaddr_in()?.ip();
            Some((u32::from(addr), u32::from(mask)))
        })
        .any(|(addr, mask)| {
            u32::from(ip) & mask == addr & mask && u32::from(ip) != addr && mask != 0
        });
    if on_bridge {
        Ok(())
    } else {
        Err(not_on_bridge(backend))
    }
}

/// A socket of `ty` in the calling thread's namespace that can only send
/// through `backend`'s bridge (checked first).
fn bridge_socket(backend: &Backend, ty: SockType) -> io::Result<OwnedFd> {
    check_on_bridge(backend)?;
    let fd = sock::socket(AddressFamily::Inet, ty, SockFlag::SOCK_CLOEXEC, None)?;
    // Bound to the bridge, the kernel never picks another interface: an
    // address off the bridge is taken as on-link there, and nobody answers.
    sock::setsockopt(&fd, sockopt::BindToDevice, &OsString::from(&backend.bridge))?;
    Ok(fd)
}

/// Connects to `backend` from the calling thread's namespace through its
/// bridge only (blocking, at most `timeout`).
pub fn connect_on_bridge(backend: &Backend, timeout: Duration) -> io::Result<std::net::TcpStream> {
    let fd = bridge_socket(backend, SockType::Stream)?;
    let tv = nix::sys::time::TimeVal::new(timeout.as_secs() as _, timeout.subsec_micros() as _);
    sock::setsockopt(&fd, sockopt::SendTimeout, &tv)?;
    match sock::connect(fd.as_raw_fd(), &sock::SockaddrIn::from(backend.addr)) {
        Ok(()) => {}
        // connect(2) ends with EINPROGRESS when the send timeout expires.
        Err(nix::errno::Errno::EINPROGRESS) => {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"))
        }
        Err(e) => return Err(e.into()),
    }
    let stream = std::net::TcpStream::from(fd);
    stream.set_write_timeout(None)?;
    Ok(stream)
}

/// The runtime every port proxy runs on (whoever starts a proxy, from
/// whatever thread or runtime): two workers relay every connection.
fn proxy_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .max_blocking_threads(16)
            .thread_name("berth-proxy")
            .enable_all()
            .build()
            .expect("the port proxy runtime")
    })
}

/// A running proxy for one published port; stops (and frees the port, and
/// ends its connections) when dropped.
pub struct Proxy {
    pub published: Published,
    /// Dropped to stop: every task of the proxy watches it.
    stop: Option<watch::Sender<()>>,
    /// Tells when the listening socket is closed.
    closed: Option<std::sync::mpsc::Receiver<()>>,
    /// How many listening sockets report on `closed`.
    listeners: usize,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("published", &self.published)
            .finish()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        drop(self.stop.take());
        // The port is free when this returns (a new proxy may take it).
        if let Some(closed) = self.closed.take() {
            for _ in 0..self.listeners {
                let _ = closed.recv_timeout(Duration::from_secs(5));
            }
        }
    }
}

/// Starts a proxy in `host`: listens on the binding's address and relays to
/// `backend`. The listener exists (or the error is returned) when this returns.
pub fn start(host: &HostNamespace, binding: &PortBinding, backend: Backend) -> io::Result<Proxy> {
    let addr = SocketAddrV4::new(binding.host_addr(), binding.host_port);
    let (stop, stopped) = watch::channel(());
    let (closed_tx, closed) = std::sync::mpsc::channel();
    let rt = proxy_runtime();
    let mut ipv6 = false;
    let port = match binding.port.proto {
        Proto::Tcp => {
            // Sockets belong to the namespace they are made in.
            let std_listener = host.run(|| {
                let l = std::net::TcpListener::bind(addr)?;
                l.set_nonblocking(true)?;
                Ok(l)
            })?;
            let port = std_listener.local_addr()?.port();
            let listener = {
                let _entered = rt.enter();
                tokio::net::TcpListener::from_std(std_listener)?
            };
            if let Some(v6) = companion_v6(host, binding, port, SockType::Stream) {
                let v6 = std::net::TcpListener::from(v6);
                let _entered = rt.enter();
                if let Ok(v6) = tokio::net::TcpListener::from_std(v6) {
                    ipv6 = true;
                    rt.spawn(serve_tcp(
                        v6,
                        host.clone(),
                        backend.clone(),
                        stopped.clone(),
                        closed_tx.clone(),
                    ));
                }
            }
            rt.spawn(serve_tcp(
                listener,
                host.clone(),
                backend,
                stopped,
                closed_tx,
            ));
            port
        }
        Proto::Udp => {
            let std_socket = host.run(|| {
                let s = std::net::UdpSocket::bind(addr)?;
                s.set_nonblocking(true)?;
                Ok(s)
            })?;
            let port = std_socket.local_addr()?.port();
            let socket = {
                let _entered = rt.enter();
                tokio::net::UdpSocket::from_std(std_socket)?
            };
            if let Some(v6) = companion_v6(host, binding, port, SockType::Datagram) {
                let v6 = std::net::UdpSocket::from(v6);
                let _entered = rt.enter();
                if let Ok(v6) = tokio::net::UdpSocket::from_std(v6) {
                    ipv6 = true;
                    rt.spawn(serve_udp(
                        v6,
                        host.clone(),
                        backend.clone(),
                        stopped.clone(),
                        closed_tx.clone(),
                    ));
                }
            }
            rt.spawn(serve_udp(socket, host.clone(), backend, stopped, closed_tx));
            port
        }
    };
    Ok(Proxy {
        published: Published {
            port: binding.port,
            host_ip: binding.host_addr(),
            host_port: port,
            ipv6,
        },
        stop: Some(stop),
        closed: Some(closed),
        listeners: 1 + usize::from(ipv6),
    })
}

/// For a binding on every address (`-p 8080:80`), a v6-only socket on
/// `[::]:port` beside the IPv4 one, as dockerd 28 makes; `None` where the
/// namespace has no IPv6 or the port is taken there (IPv4 alone serves).
fn companion_v6(
    host: &HostNamespace,
    binding: &PortBinding,
    port: u16,
    ty: SockType,
) -> Option<OwnedFd> {
    if binding.host_ip.is_some() {
        return None;
    }
    host.run(|| {
        let fd = sock::socket(AddressFamily::Inet6, ty, SockFlag::SOCK_CLOEXEC, None)?;
        sock::setsockopt(&fd, sockopt::Ipv6V6Only, &true)?;
        sock::setsockopt(&fd, sockopt::ReuseAddr, &true)?;
        let addr = std::net::SocketAddrV6::new(std::net::Ipv6Addr::UNSPECIFIED, port, 0, 0);
        sock::bind(fd.as_raw_fd(), &sock::SockaddrIn6::from(addr))?;
        if ty == SockType::Stream {
            sock::listen(
                &fd,
                sock::Backlog::new(1024).unwrap_or(sock::Backlog::MAXCONN),
            )?;
        }
        let raw = fd.as_raw_fd();
        nix::fcntl::fcntl(
            raw,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )?;
        Ok(fd)
    })
    .ok()
}

/// Makes a socket for `backend` in `host`: here for the engine's own
/// namespace (a few quick syscalls), else from a short-lived thread that
/// enters the namespace (namespaces are per thread; the workers stay put).
async fn backend_socket(
    host: &HostNamespace,
    backend: &Backend,
    ty: SockType,
) -> io::Result<OwnedFd> {
    if host.path().is_none() {
        return bridge_socket(backend, ty);
    }
    let (host, backend) = (host.clone(), backend.clone());
    tokio::task::spawn_blocking(move || host.run(|| bridge_socket(&backend, ty)))
        .await
        .map_err(io::Error::other)?
}

async fn serve_tcp(
    listener: tokio::net::TcpListener,
    host: HostNamespace,
    backend: Backend,
    mut stop: watch::Receiver<()>,
    closed: std::sync::mpsc::Sender<()>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.changed() => break,
            a = listener.accept() => a,
        };
        let Ok((client, _)) = accepted else {
            // Out of descriptors and the like: try again shortly.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (host, backend, mut stop) = (host.clone(), backend.clone(), stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.changed() => {}
                _ = relay_tcp(client, &host, &backend) => {}
            }
        });
    }
    drop(listener);
    let _ = closed.send(());
}

/// Relays one connection both ways; each direction's end is passed on as a
/// half-close, as Docker's proxy does.
async fn relay_tcp(mut client: tokio::net::TcpStream, host: &HostNamespace, backend: &Backend) {
    let Ok(fd) = backend_socket(host, backend, SockType::Stream).await else {
        return;
    };
    let socket = std::net::TcpStream::from(fd);
    if socket.set_nonblocking(true).is_err() {
        return;
    }
    let socket = tokio::net::TcpSocket::from_std_stream(socket);
    let Ok(Ok(mut server)) = tokio::time::timeout(
        CONNECT_TIMEOUT,
        socket.connect(SocketAddr::V4(backend.addr)),
    )
    .await
    else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
}

/// UDP: one backend socket per client address; replies go back through the
/// published socket. Idle flows end after a minute.
async fn serve_udp(
    socket: tokio::net::UdpSocket,
    host: HostNamespace,
    backend: Backend,
    mut stop: watch::Receiver<()>,
    closed: std::sync::mpsc::Sender<()>,
) {
    let socket = Arc::new(socket);
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<tokio::net::UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    loop {
        let received = tokio::select! {
            _ = stop.changed() => break,
            r = socket.recv_from(&mut buf) => r,
        };
        let Ok((n, client)) = received else {
            continue;
        };
        let flow = flows
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&client)
            .cloned();
        let flow = match flow {
            Some(f) => f,
            None => {
                let Ok(up) = udp_flow(&host, &backend).await else {
                    continue;
                };
                flows
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(client, up.clone());
                let (reply_to, back, flows, mut stop) =
                    (socket.clone(), up.clone(), flows.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    loop {
                        let got = tokio::select! {
                            _ = stop.changed() => break,
                            r = tokio::time::timeout(UDP_IDLE, back.recv(&mut buf)) => r,
                        };
                        match got {
                            Ok(Ok(n)) => {
                                let _ = reply_to.send_to(&buf[..n], client).await;
                            }
                            // A refused datagram (ICMP) is not the end of a flow.
                            Ok(Err(_)) => {}
                            Err(_idle) => break,
                        }
                    }
                    flows
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&client);
                });
                up
            }
        };
        let _ = flow.send(&buf[..n]).await;
    }
    drop(socket);
    let _ = closed.send(());
}

/// A UDP socket connected to `backend` through its bridge.
async fn udp_flow(
    host: &HostNamespace,
    backend: &Backend,
) -> io::Result<Arc<tokio::net::UdpSocket>> {
    let fd = backend_socket(host, backend, SockType::Datagram).await?;
    let std_socket = std::net::UdpSocket::from(fd);
    std_socket.set_nonblocking(true)?;
    let up = tokio::net::UdpSocket::from_std(std_socket)?;
    up.connect(SocketAddr::V4(backend.addr)).await?;
    Ok(Arc::new(up))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream, UdpSocket};

    #[test]
    fn ports_parse_like_docker() {
        assert_eq!(
            Port::parse("80").unwrap(),
            Port {
                number: 80,
                proto: Proto::Tcp
            }
        );
        assert_eq!(Port::parse("53/udp").unwrap().key(), "53/udp");
        assert_eq!(
            Port::parse("x/tcp").unwrap_err(),
            "invalid containerPort: x"
        );
        assert_eq!(Port::parse("80/sctx").unwrap_err(), "invalid proto: sctx");
    }

    /// A backend on the loopback "bridge" (127.0.0.2 on `lo`: a network
    /// address that is not the interface's own).
    fn loopback_backend() -> (TcpListener, Backend) {
        let backend = TcpListener::bind("127.0.0.2:0").unwrap();
        let addr = match backend.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        (
            backend,
            Backend {
                addr,
                bridge: "lo".into(),
            },
        )
    }

    fn loopback_binding() -> PortBinding {
        PortBinding {
            port: Port::parse("80").unwrap(),
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 0,
        }
    }

    #[test]
    fn a_proxy_relays_tcp_and_frees_its_port() {
        let (backend, to) = loopback_backend();
        std::thread::spawn(move || {
            let (mut s, _) = backend.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf.map(|b| b.to_ascii_uppercase())).unwrap();
        });
        let proxy = start(&HostNamespace::Current, &loopback_binding(), to).unwrap();
        let port = proxy.published.host_port;
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"hello").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert_eq!(out, "HELLO");
        drop(proxy);
        TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
    }

    #[test]
    fn half_closes_pass_through_for_many_connections_at_once() {
        let (backend, to) = loopback_backend();
        std::thread::spawn(move || {
            for s in backend.incoming() {
                let mut s = s.unwrap();
                std::thread::spawn(move || {
                    // Answers only after the client's end of input.
                    let mut got = Vec::new();
                    s.read_to_end(&mut got).unwrap();
                    s.write_all(&got).unwrap();
                });
            }
        });
        let proxy = start(&HostNamespace::Current, &loopback_binding(), to).unwrap();
        let port = proxy.published.host_port;
        let clients: Vec<TcpStream> = (0..50)
            .map(|i| {
                let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
                c.write_all(format!("conn-{i}").as_bytes()).unwrap();
                c.shutdown(std::net::Shutdown::Write).unwrap();
                c
            })
            .collect();
        for (i, mut c) in clients.into_iter().enumerate() {
            let mut out = String::new();
            c.read_to_string(&mut out).unwrap();
            assert_eq!(out, format!("conn-{i}"));
        }
    }

    #[test]
    fn an_address_off_its_bridge_is_never_connected() {
        // Records that say 192.0.2.1 is on `lo`: no route is consulted.
        let off = Backend {
            addr: SocketAddrV4::new(Ipv4Addr::new(192, 0, 2, 1), 80),
            bridge: "lo".into(),
        };
        let e = connect_on_bridge(&off, Duration::from_secs(1)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AddrNotAvailable);
        assert!(e.to_string().contains("is not on bridge lo"), "{e}");
        // Nor the bridge's own address (the namespace itself).
        let own = Backend {
            addr: SocketAddrV4::new(Ipv4Addr::LOCALHOST, 80),
            bridge: "lo".into(),
        };
        assert!(connect_on_bridge(&own, Duration::from_secs(1)).is_err());
        // Through the proxy, the client's connection just ends.
        let proxy = start(&HostNamespace::Current, &loopback_binding(), off).unwrap();
        let mut c = TcpStream::connect(("127.0.0.1", proxy.published.host_port)).unwrap();
        let mut out = Vec::new();
        let _ = c.read_to_end(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn a_proxy_relays_udp() {
        let backend = UdpSocket::bind("127.0.0.2:0").unwrap();
        let addr = match backend.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            let (n, from) = backend.recv_from(&mut buf).unwrap();
            backend
                .send_to(&buf[..n].to_ascii_uppercase(), from)
                .unwrap();
        });
        let binding = PortBinding {
            port: Port::parse("53/udp").unwrap(),
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 0,
        };
        let to = Backend {
            addr,
            bridge: "lo".into(),
        };
        let proxy = start(&HostNamespace::Current, &binding, to).unwrap();
        let c = UdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.send_to(b"ping", ("127.0.0.1", proxy.published.host_port))
            .unwrap();
        let mut buf = [0u8; 64];
        let n = c.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"PING");
    }
}
