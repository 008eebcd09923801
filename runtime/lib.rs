//! Berth's container engine: everything below the web server.
//!
//! # Layout
//! - [`datadir`]: the data directory (default `/var/lib/berth`), its layout and
//!   the lock that keeps one process per directory.
//! - [`image`]: the content-addressed image store (blobs, OCI manifests and
//!   configs, unpacked layers shared as overlayfs lower dirs, per-scope
//!   references), `docker save`/`load`/`import`, and the bootstrapped `busybox`.
//! - [`container`]: a container's configuration turned into an OCI runtime
//!   spec, and its launch: user/mount/pid/uts/ipc/net/cgroup namespaces, an
//!   overlay rootfs over idmapped layers, cgroups, capabilities, seccomp.
//!
//! - [`net`]: per-scope bridges, veth pairs, addresses, published ports and
//!   the embedded DNS of user-defined networks.
//! - [`volume`]: named and anonymous volumes, bind sources resolved in a
//!   scope's filesystem root.
//! - [`session`]: a learner's session: nodes (lab container + scope), the
//!   session's cgroup subtree, uid range and teardown.
//!
//! The few modules that make raw syscalls live under `container::sys`,
//! `container::seccomp` and `container::cgroup`; everything else is
//! `unsafe`-free (the workspace denies `unsafe_code`).

#![recursion_limit = "256"]

pub mod build;
pub mod container;
pub mod datadir;
pub mod engine;
pub mod error;
pub mod events;
pub mod image;
pub mod net;
pub mod registry;
pub mod session;
pub mod swarm;
pub mod volume;

pub use datadir::DataDir;
pub use error::{Error, Result};
