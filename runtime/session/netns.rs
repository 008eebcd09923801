//! A node's network namespace.
//!
//! For now the node's namespace is its lab container's own (made by the
//! container's launch), pinned by a bind mount at `<node dir>/netns` so it
//! outlives the lab's processes, with `lo` up. [`Node::host_netns`] is the
//! one place that says where it is: the scope's *host namespace* (bridges,
//! `-p`) that `runtime::net` plugs into via [`crate::container::ScopeSettings`].
//!
//! [`Node::host_netns`]: super::Node::host_netns

use std::fs::{self, File};
use std::io;
use std::os::fd::AsFd;
use std::path::Path;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{
    recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType,
};

/// Pins the network namespace of `pid` at `at` (an empty file is made).
pub fn pin(pid: i32, at: &Path) -> io::Result<()> {
    File::create(at)?;
    mount(
        Some(Path::new(&format!("/proc/{pid}/ns/net"))),
        at,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(io::Error::from)
}

/// Pins the network namespace of the calling thread at `at`.
pub fn pin_current(at: &Path) -> io::Result<()> {
    File::create(at)?;
    mount(
        Some(Path::new("/proc/thread-self/ns/net")),
        at,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(io::Error::from)
}

/// Unpins (unmounts and removes) a pinned namespace; absent is fine.
pub fn unpin(at: &Path) {
    let _ = umount2(at, MntFlags::MNT_DETACH);
    let _ = fs::remove_file(at);
}

/// Whether `at` is a pinned namespace (a mount of nsfs) rather than a plain file.
pub fn is_pinned(at: &Path) -> bool {
    nix::sys::statfs::statfs(at)
        .map(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        .unwrap_or(false)
}

/// Brings the loopback interface of the namespace at `netns` up, with one
/// rtnetlink request (`RTM_NEWLINK`, index 1, `IFF_UP`) sent from a thread
/// that entered the namespace (setns only changes the calling thread).
pub fn loopback_up(netns: &Path) -> io::Result<()> {
    let ns = File::open(netns)?;
    std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            setns(ns.as_fd(), CloneFlags::CLONE_NEWNET)?;
            let sock = socket(
                AddressFamily::Netlink,
                SockType::Raw,
                SockFlag::SOCK_CLOEXEC,
                SockProtocol::NetlinkRoute,
            )?;
            const RTM_NEWLINK: u16 = 16;
            const NLM_F_REQUEST: u16 = 1;
            const NLM_F_ACK: u16 = 4;
            const IFF_UP: u32 = 1;
            let mut msg = Vec::with_capacity(32);
            msg.extend_from_slice(&32u32.to_ne_bytes()); // nlmsg_len
            msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
            msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
            msg.extend_from_slice(&1u32.to_ne_bytes()); // seq
            msg.extend_from_slice(&0u32.to_ne_bytes()); // pid
            msg.extend_from_slice(&[0, 0]); // ifi_family, pad
            msg.extend_from_slice(&0u16.to_ne_bytes()); // ifi_type
            msg.extend_from_slice(&1i32.to_ne_bytes()); // ifi_index: lo
            msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_flags
            msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // ifi_change
            sendto(
                std::os::fd::AsRawFd::as_raw_fd(&sock),
                &msg,
                &NetlinkAddr::new(0, 0),
                MsgFlags::empty(),
            )?;
            let mut buf = [0u8; 256];
            let n = recv(
                std::os::fd::AsRawFd::as_raw_fd(&sock),
                &mut buf,
                MsgFlags::empty(),
            )?;
            // NLMSG_ERROR (2) with error 0 is the acknowledgement.
            if n >= 20 && u16::from_ne_bytes([buf[4], buf[5]]) == 2 {
                let code = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
                if code != 0 {
                    return Err(io::Error::from_raw_os_error(-code));
                }
            }
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("loopback thread panicked")))
    })
}
