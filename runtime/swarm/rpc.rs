//! The join RPC between nodes of a session.
//!
//! A manager node listens on TCP port 2377 in its host namespace (so on its
//! session network address, `node1:2377`). `docker swarm join --token T
//! node1:2377` on another node makes that node's engine resolve `node1` on
//! the session network, connect from inside its own host namespace, and send
//! one JSON line; the manager checks the token and answers one JSON line.
//!
//! Both ends are scopes of the same engine process, so the request names the
//! joining scope and carries its session's secret (a lab's own processes,
//! which can reach port 2377 too, cannot forge it); the listener admits only
//! live scopes of its own session.
//!
//! The secret is the session's, not the process's, and the request goes only
//! where the engine's own join listener of a manager of the same session
//! listens: `docker swarm join --token … 127.0.0.1:9999` (a listener the
//! learner runs in the lab) or an address off the session network is refused
//! before anything is sent. Were a secret to leak anyway, it would admit only
//! the session's own live nodes into the session's own swarms.

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::{Result, SwarmError, Swarms};

/// Swarm's cluster management port.
pub const PORT: u16 = 2377;
const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Serialize, Deserialize)]
struct JoinRequest {
    secret: String,
    /// The joining scope.
    scope: String,
    hostname: String,
    /// Its address on the session network.
    addr: String,
    token: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct JoinReply {
    /// `unavailable`, `invalid`, `internal`… with Docker's words.
    error: Option<(String, String)>,
}

fn encode(e: &SwarmError) -> (String, String) {
    let kind = match e {
        SwarmError::Unavailable(_) => "unavailable",
        SwarmError::NotFound(_) => "not_found",
        SwarmError::Conflict(_) => "conflict",
        SwarmError::Invalid(_) => "invalid",
        SwarmError::Internal(_) => "internal",
    };
    (kind.into(), e.to_string())
}

fn decode(kind: &str, message: String) -> SwarmError {
    match kind {
        "unavailable" => SwarmError::Unavailable(message),
        "not_found" => SwarmError::NotFound(message),
        "conflict" => SwarmError::Conflict(message),
        "invalid" => SwarmError::Invalid(message),
        _ => SwarmError::Internal(message),
    }
}

/// The session a node scope (`<session>-<node>`) belongs to.
pub fn session_of(scope: &str) -> &str {
    scope.split_once('-').map(|(s, _)| s).unwrap_or(scope)
}

/// The node name of a session scope (`<session>-<node>` → `<node>`).
pub fn node_of(scope: &str) -> &str {
    scope.split_once('-').map(|(_, n)| n).unwrap_or(scope)
}

/// The timeout error dockerd gives when no manager answered.
pub fn join_timeout(remote: &[String]) -> SwarmError {
    SwarmError::Internal(format!(
        "Timeout was reached before node joined. The attempt to join the swarm will continue in the background. Use the \"docker info\" command to see the current swarm status of your node. ({})",
        remote.join(",")
    ))
}

impl Swarms {
    /// Serves the join RPC for manager `scope` on port 2377 of its host
    /// namespace `host_ns` (already listening is fine).
    pub fn listen(self: &Arc<Self>, scope: &str, host_ns: &Path) -> std::io::Result<()> {
        let mut listeners = self.listeners.lock().unwrap_or_else(|p| p.into_inner());
        if listeners.contains_key(scope) {
            return Ok(());
        }
        let std_listener = crate::net::netns::in_namespace_file(host_ns, || {
            let l = std::net::TcpListener::bind((Ipv4Addr::UNSPECIFIED, PORT))?;
            l.set_nonblocking(true)?;
            Ok(l)
        })?;
        let listener = tokio::net::TcpListener::from_std(std_listener)?;
        let swarms = self.clone();
        let manager = scope.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let swarms = swarms.clone();
                let manager = manager.clone();
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(TIMEOUT, serve_one(swarms, manager, stream)).await;
                });
            }
        });
        listeners.insert(scope.to_string(), task.abort_handle());
        Ok(())
    }

    /// Stops serving the join RPC for `scope` (its socket closes).
    pub fn unlisten(&self, scope: &str) {
        if let Some(task) = self
            .listeners
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(scope)
        {
            task.abort();
        }
    }

    /// `docker swarm join` of `scope` (whose host namespace is `host_ns`)
    /// over the session network: resolves each remote address, connects from
    /// inside `host_ns` and asks the manager there. Blocking.
    pub fn join_remote(
        &self,
        scope: &str,
        host_ns: &Path,
        hostname: &str,
        addr: &str,
        remote: &[String],
        token: &str,
    ) -> Result<()> {
        if self.lock().cluster_of(scope).is_some() {
            return Err(SwarmError::Unavailable(super::ALREADY_MEMBER.into()));
        }
        let nodes = crate::session::network::session_dir_of(host_ns)
            .map(crate::session::network::table)
            .unwrap_or_default();
        let request = JoinRequest {
            secret: self.session_secret(session_of(scope)),
            scope: scope.to_string(),
            hostname: hostname.to_string(),
            addr: addr.to_string(),
            token: token.to_string(),
        };
        let mut line = serde_json::to_vec(&request).unwrap_or_default();
        line.push(b'\n');
        let mut outside = Vec::new();
        for r in remote {
            let (host, port) = match r.rsplit_once(':') {
                Some((h, p)) => (h, p.parse().unwrap_or(PORT)),
                None => (r.as_str(), PORT),
            };
            let Some(ip) = crate::session::network::resolve(host_ns, host) else {
                continue;
            };
            // Only the session's own nodes, and of them only where this
            // engine's join listener of a manager listens.
            let Some(node) = nodes.iter().find(|(_, a)| **a == ip).map(|(n, _)| n) else {
                outside.push(r.clone());
                continue;
            };
            let manager = format!("{}-{node}", session_of(scope));
            let listening = self
                .listeners
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&manager);
            if port != PORT || manager == scope || !listening {
                continue;
            }
            let target = SocketAddr::from((ip, port));
            let ns: PathBuf = host_ns.to_path_buf();
            let answer = crate::net::netns::in_namespace_file(&ns, || {
                let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(3))?;
                s.set_read_timeout(Some(TIMEOUT))?;
                s.write_all(&line)?;
                let mut reply = String::new();
                BufReader::new(s).read_line(&mut reply)?;
                Ok(reply)
            });
            let Ok(answer) = answer else { continue };
            // Anything but a manager's answer is no answer (it used to
            // count as a welcome).
            let Ok(reply) = serde_json::from_str::<JoinReply>(&answer) else {
                continue;
            };
            return match reply.error {
                Some((kind, message)) => Err(decode(&kind, message)),
                None => {
                    self.wake.notify_one();
                    Ok(())
                }
            };
        }
        if !outside.is_empty() && outside.len() == remote.len() {
            let names: Vec<&str> = nodes.keys().map(String::as_str).collect();
            return Err(SwarmError::Invalid(format!(
                "refused: {} {} not a node of this session, and a classroom node may join only the swarm managers among its own session's nodes ({})",
                outside.join(", "),
                if outside.len() == 1 { "is" } else { "are" },
                names.join(", ")
            )));
        }
        Err(join_timeout(remote))
    }
}

/// Answers one join request on `manager`'s listener.
async fn serve_one(swarms: Arc<Swarms>, manager: String, stream: tokio::net::TcpStream) {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = tokio::io::BufReader::new(read.take_limit());
    if reader.read_line(&mut line).await.is_err() {
        return;
    }
    let reply = match serde_json::from_str::<JoinRequest>(&line) {
        Ok(req)
            if session_of(&req.scope) == session_of(&manager)
                && req.secret == swarms.session_secret(session_of(&manager))
                && swarms.is_served(&req.scope) =>
        {
            match swarms.admit(&manager, &req.scope, &req.hostname, &req.addr, &req.token) {
                Ok(()) => JoinReply::default(),
                Err(e) => JoinReply {
                    error: Some(encode(&e)),
                },
            }
        }
        // Not an engine of this session: swarmkit speaks gRPC over TLS here.
        _ => return,
    };
    let mut out = serde_json::to_vec(&reply).unwrap_or_default();
    out.push(b'\n');
    let _ = write.write_all(&out).await;
}

trait TakeLimit: Sized {
    fn take_limit(self) -> tokio::io::Take<Self>;
}

impl<R: tokio::io::AsyncRead> TakeLimit for R {
    fn take_limit(self) -> tokio::io::Take<Self> {
        tokio::io::AsyncReadExt::take(self, 64 * 1024)
    }
}
