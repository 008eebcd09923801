//! Published ports: `-p` bindings as Docker's API carries them, and the
//! userland proxy that listens in the scope's host namespace and relays each
//! connection (or datagram) to the container's address.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::netns::HostNamespace;

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
}

/// A running proxy for one published port; stops (and frees the port) when
/// dropped.
pub struct Proxy {
    pub published: Published,
    stop: Arc<AtomicBool>,
    wake: Option<Box<dyn Fn() + Send>>,
    thread: Option<JoinHandle<()>>,
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
        self.stop.store(true, Ordering::SeqCst);
        if let Some(wake) = self.wake.take() {
            wake();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts a proxy in `host`: listens on the binding's address and relays to
/// `backend`. The listener exists (or the error is returned) when this returns.
pub fn start(
    host: &HostNamespace,
    binding: &PortBinding,
    backend: SocketAddrV4,
) -> io::Result<Proxy> {
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel();
    let ns = host.path().map(|p| p.to_path_buf());
    let addr = SocketAddrV4::new(binding.host_addr(), binding.host_port);
    let proto = binding.port.proto;
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name(format!("proxy-{}", binding.port.key()))
        .spawn(move || {
            // The whole proxy (and the threads it spawns) lives in the
            // scope's namespace: listener and backend connections alike.
            if let Some(path) = ns {
                let entered = std::fs::File::open(&path).and_then(|f| {
                    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET)
                        .map_err(io::Error::from)
                });
                if let Err(e) = entered {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
            match proto {
                Proto::Tcp => match TcpListener::bind(addr) {
                    Ok(l) => {
                        let port = l.local_addr().map(|a| a.port()).unwrap_or(0);
                        let fd = l.as_raw_fd();
                        let _ = tx.send(Ok((port, Wake::Tcp(fd))));
                        serve_tcp(l, backend, flag);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                },
                Proto::Udp => match UdpSocket::bind(addr) {
                    Ok(s) => {
                        let port = s.local_addr().map(|a| a.port()).unwrap_or(0);
                        let _ = tx.send(Ok((port, Wake::None)));
                        serve_udp(s, backend, flag);
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                },
            }
        })?;
    let (port, wake) = match rx.recv() {
        Ok(Ok(v)) => v,
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(e);
        }
        Err(_) => return Err(io::Error::other("proxy thread ended")),
    };
    let wake: Option<Box<dyn Fn() + Send>> = match wake {
        // shutdown(2) on a listening socket wakes a blocked accept(2).
        Wake::Tcp(fd) => Some(Box::new(move || {
            let _ = nix::sys::socket::shutdown(fd, nix::sys::socket::Shutdown::Read);
        })),
        Wake::None => None,
    };
    Ok(Proxy {
        published: Published {
            port: binding.port,
            host_ip: binding.host_addr(),
            host_port: port,
        },
        stop,
        wake,
        thread: Some(thread),
    })
}

enum Wake {
    Tcp(std::os::fd::RawFd),
    None,
}

fn serve_tcp(listener: TcpListener, backend: SocketAddrV4, stop: Arc<AtomicBool>) {
    loop {
        let client = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok((client, _)) = client else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = std::thread::Builder::new()
            .name("proxy-conn".into())
            .spawn(move || relay_tcp(client, backend));
    }
}

/// Relays one connection both ways; each direction's end is passed on as a
/// half-close, as Docker's proxy does.
fn relay_tcp(client: TcpStream, backend: SocketAddrV4) {
    let Ok(server) = TcpStream::connect_timeout(&SocketAddr::V4(backend), Duration::from_secs(5))
    else {
        return;
    };
    relay_streams(client, server);
}

/// Relays two connected streams both ways until both directions end (the
/// routing mesh relays its connections the same way).
pub(crate) fn relay_streams(client: TcpStream, server: TcpStream) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (Ok(client2), Ok(server2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    let up = std::thread::Builder::new()
        .name("proxy-up".into())
        .spawn(move || pipe(client2, server2));
    pipe(server, client);
    if let Ok(t) = up {
        let _ = t.join();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// UDP: one backend socket per client address; replies go back through the
/// published socket. Idle flows end after a minute.
fn serve_udp(socket: UdpSocket, backend: SocketAddrV4, stop: Arc<AtomicBool>) {
    let _ = socket.set_read_timeout(Some(Duration::from_millis(250)));
    let socket = Arc::new(socket);
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65536];
    while !stop.load(Ordering::SeqCst) {
        let Ok((n, client)) = socket.recv_from(&mut buf) else {
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
                let Ok(up) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else {
                    continue;
                };
                if up.connect(backend).is_err() {
                    continue;
                }
                let _ = up.set_read_timeout(Some(Duration::from_millis(250)));
                let up = Arc::new(up);
                flows
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(client, up.clone());
                let (reply_to, back, flows, stop) =
                    (socket.clone(), up.clone(), flows.clone(), stop.clone());
                let _ = std::thread::Builder::new()
                    .name("proxy-udp".into())
                    .spawn(move || {
                        let mut buf = vec![0u8; 65536];
                        let mut idle = 0;
                        while !stop.load(Ordering::SeqCst) && idle < 240 {
                            match back.recv(&mut buf) {
                                Ok(n) => {
                                    idle = 0;
                                    let _ = reply_to.send_to(&buf[..n], client);
                                }
                                Err(_) => idle += 1,
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
        let _ = flow.send(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_proxy_relays_tcp_and_frees_its_port() {
        let backend = TcpListener::bind("127.0.0.1:0").unwrap();
        let backend_addr = match backend.local_addr().unwrap() {
            SocketAddr::V4(a) => a,
            _ => unreachable!(),
        };
        std::thread::spawn(move || {
            let (mut s, _) = backend.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf.map(|b| b.to_ascii_uppercase())).unwrap();
        });
        let binding = PortBinding {
            port: Port::parse("80").unwrap(),
            host_ip: Some(Ipv4Addr::LOCALHOST),
            host_port: 0,
        };
        let proxy = start(&HostNamespace::Current, &binding, backend_addr).unwrap();
        let port = proxy.published.host_port;
        let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
        c.write_all(b"hello").unwrap();
        let mut out = String::new();
        c.read_to_string(&mut out).unwrap();
        assert_eq!(out, "HELLO");
        drop(proxy);
        TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
    }
}
