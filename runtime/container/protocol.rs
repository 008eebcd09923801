//! Messages between the engine, a container's monitor and the monitor's
//! intermediate child, over `SOCK_SEQPACKET` socket pairs: one JSON message
//! per packet.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use nix::sys::socket::{recv, send, MsgFlags};
use oci_spec::runtime::Spec;
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::seccomp::SeccompProgram;
use super::spec::IdRange;

/// What the monitor needs to make the container: sent once, first.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitConfig {
    /// The container's directory (writable layer, rootfs mount point, exit file).
    pub dir: PathBuf,
    /// Unpacked layer directories, lowest first.
    pub layers: Vec<PathBuf>,
    /// The user-namespace id range, when the spec asks for a user namespace.
    pub ids: Option<IdRange>,
    /// The container's cgroup, relative to the hierarchy root.
    pub cgroup: String,
    /// The runtime spec to carry out.
    pub spec: Spec,
    /// The user as configured (`name`, `uid`, `uid:gid`, `name:group`),
    /// resolved against the container's own /etc/passwd and /etc/group.
    pub user: Option<String>,
    /// The seccomp filter, compiled once by the engine.
    pub seccomp: Option<SeccompProgram>,
    /// Give the container a stdin that attached clients write to.
    pub open_stdin: bool,
    /// Rotate the log past this many bytes.
    pub log_max_size: u64,
    /// Keep this many log files (json-file's `max-file`).
    pub log_max_files: u32,
    /// A client attached before start: its request; its socket follows in a
    /// [`ToInit::AttachStream`] message.
    pub early_attach: Option<super::attach::ControlRequest>,
    /// Docker's `--init`: pid 1 stays a small init that forwards signals to
    /// the command and reaps orphaned processes.
    #[serde(default)]
    pub init: bool,
    /// Ask the engine to wire the container's new network namespace (a
    /// [`FromInit::NetworkNamespace`] message) before the command runs.
    #[serde(default)]
    pub network_hook: bool,
    /// The spec's bind mounts whose sources the engine resolved inside a
    /// learner-controlled tree and cloned itself (`open_tree`): pid 1
    /// attaches these detached mounts rather than mounting a source path.
    #[serde(default)]
    pub bind_sources: Vec<BindSource>,
    /// The detached mounts of [`Self::bind_sources`], in the same order. Not
    /// part of the JSON: each travels as SCM_RIGHTS in a
    /// [`ToInit::BindSource`] message that follows the config.
    #[serde(skip)]
    pub bind_fds: Vec<OwnedFd>,
}

/// A bind mount carried out from a detached mount rather than a path: the
/// source was resolved and cloned by the engine, so nothing a learner
/// changes in the tree after that alters what gets mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindSource {
    /// The index of the mount in the spec's mounts.
    pub mount: usize,
    /// Device and inode of the resolved object: after attaching, the mount
    /// at the destination must be this object.
    pub dev: u64,
    pub ino: u64,
    /// Whether the object is a directory (else a file is made to mount on).
    pub dir: bool,
}

/// Monitor → intermediate (and engine → monitor for the config).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToInit {
    Config(Box<InitConfig>),
    /// The id maps are written, the rootfs is mounted and the cgroup joined:
    /// go on and create the remaining namespaces.
    Proceed,
    /// Carries (as SCM_RIGHTS) the socket of a client attached before start.
    AttachStream,
    /// Carries (as SCM_RIGHTS) the detached mount of the next entry of
    /// [`InitConfig::bind_sources`]; sent right after the config.
    BindSource,
    /// Engine → monitor: the network could not be wired; give up.
    Abort {
        message: String,
    },
}

/// Intermediate → monitor, and monitor → engine.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromInit {
    /// The user namespace exists: write its id maps.
    UserNamespaceReady,
    /// Monitor → engine: the container's network namespace is that of this
    /// host pid; wire it, then answer [`ToInit::Proceed`].
    NetworkNamespace { pid: i32 },
    /// The container's first process exists, with this host pid.
    Started { pid: i32 },
    /// Carries (as SCM_RIGHTS) the master side of the container's terminal.
    Terminal,
    /// Setting up the container failed; `exec` holds for a failed exec.
    Failed { message: String, exit_code: i32 },
}

/// Sends one message as one packet.
pub fn send_msg<T: Serialize>(fd: &impl AsFd, msg: &T) -> io::Result<()> {
    let buf = serde_json::to_vec(msg).map_err(io::Error::other)?;
    use std::os::fd::AsRawFd;
    send(fd.as_fd().as_raw_fd(), &buf, MsgFlags::MSG_NOSIGNAL)?;
    Ok(())
}

/// Receives one message; `None` when the peer closed its end.
pub fn recv_msg<T: DeserializeOwned>(fd: &OwnedFd) -> io::Result<Option<T>> {
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; 1 << 20];
    let n = loop {
        match recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other?,
        }
    };
    if n == 0 {
        return Ok(None);
    }
    serde_json::from_slice(&buf[..n])
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// Sends one message with an fd attached (SCM_RIGHTS).
pub fn send_msg_with_fd<T: Serialize>(
    fd: &impl AsFd,
    msg: &T,
    attached: &impl AsFd,
) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage};
    use std::os::fd::AsRawFd;
    let buf = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let fds = [attached.as_fd().as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [io::IoSlice::new(&buf)];
    sendmsg::<()>(
        fd.as_fd().as_raw_fd(),
        &iov,
        &cmsg,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )?;
    Ok(())
}

/// Receives one message and the fd attached to it, if any.
pub fn recv_msg_with_fd<T: DeserializeOwned>(
    fd: &OwnedFd,
) -> io::Result<Option<(T, Option<OwnedFd>)>> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned};
    use std::os::fd::AsRawFd;
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg_space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let (n, received) = {
        let mut iov = [io::IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            fd.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg_space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )?;
        let mut received = None;
        for c in msg.cmsgs()? {
            if let ControlMessageOwned::ScmRights(fds) = c {
                for raw in fds {
                    let owned = super::sys::adopt_fd(raw)?;
                    received.get_or_insert(owned);
                }
            }
        }
        (msg.bytes, received)
    };
    if n == 0 {
        return Ok(None);
    }
    let msg = serde_json::from_slice(&buf[..n])
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok(Some((msg, received)))
}
