//! Where a scope's networking lives: its *host* network namespace (bridges,
//! published ports, `--network host`), and running code inside another
//! namespace from a short-lived thread (network namespaces are per thread, so
//! the engine's own threads never move).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use nix::sched::{setns, CloneFlags};
use serde::{Deserialize, Serialize};

/// A scope's host network namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostNamespace {
    /// The engine process's own namespace: the real host for `berth daemon`.
    #[default]
    Current,
    /// A namespace file (`/proc/<pid>/ns/net` of a node, or a bind-mounted
    /// nsfs file): a classroom node's own network.
    Path(PathBuf),
}

impl HostNamespace {
    /// The namespace file for `--network host` and `setns`, if not ours.
    pub fn path(&self) -> Option<&Path> {
        match self {
            HostNamespace::Current => None,
            HostNamespace::Path(p) => Some(p),
        }
    }

    /// Runs `f` inside this namespace: here for [`HostNamespace::Current`],
    /// on a thread that entered it otherwise. Sockets made by `f` stay in the
    /// namespace after it returns.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> io::Result<T> + Send) -> io::Result<T> {
        match self {
            HostNamespace::Current => f(),
            HostNamespace::Path(path) => in_namespace_file(path, f),
        }
    }
}

/// Runs `f` on a thread inside the network namespace file `path`.
pub fn in_namespace_file<T: Send>(
    path: &Path,
    f: impl FnOnce() -> io::Result<T> + Send,
) -> io::Result<T> {
    let ns = File::open(path)?;
    std::thread::scope(|s| {
        s.spawn(move || {
            setns(ns, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("network namespace thread panicked")))
    })
}
