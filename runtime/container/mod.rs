//! Containers: configuration → OCI runtime spec → a launched, isolated process.
//!
//! - [`config`]: what the user asks for, in `docker run` terms.
//! - [`spec`]: that configuration and its image as an OCI runtime spec (pure data).
//! - [`launch`]: the engine's side of starting a container (rootfs, id maps, cgroup).
//! - [`monitor`]: `berth __init`, one per running container, outside it: id
//!   maps, rootfs, cgroup, then waits for the container and records its exit.
//! - [`init`]: inside the container: namespaces, mounts, pivot_root,
//!   privileges, seccomp, exec.
//! - [`cgroup`], [`seccomp`]: resource limits and the syscall filter.
//! - [`manager`]: [`Runtime`], which ties the store, ids and launches together.
//! - `sys`: the syscall seam holding the `unsafe` code.

pub mod archive;
pub mod attach;
pub mod capabilities;
pub mod cgroup;
pub mod commit;
pub mod config;
pub mod diff;
pub mod exec;
pub mod health;
pub mod ids;
pub mod init;
pub mod launch;
pub mod lifecycle;
pub mod logs;
pub mod manager;
pub mod monitor;
pub mod names;
pub mod protocol;
pub mod ps;
pub mod relay;
pub mod scope;
pub mod seccomp;
pub mod spec;
pub mod state;
pub(crate) mod sys;
pub mod task_files;
pub mod top;
pub mod user;

pub use config::{ContainerConfig, MountConfig};
pub use exec::{ExecConfig, ExecProcess};
pub use lifecycle::WaitCondition;
pub use manager::{Container, ContainerRecord, Runtime, RuntimeOptions};
pub use scope::ScopeSettings;

/// Errors launching or managing a container. Messages use Docker's words where
/// Docker has them.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("No command specified")]
    NoCommand,
    /// Docker's words for an unknown container.
    #[error("No such container: {0}")]
    NotFound(String),
    /// A path that `docker cp` asked for is not in the container.
    #[error("{0}")]
    PathNotFound(String),
    #[error("multiple containers found with provided prefix: {0}")]
    Ambiguous(String),
    /// The container's state does not allow the verb (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    InvalidConfig(String),
    /// The classroom does not allow what was asked (HTTP 403).
    #[error("{0}")]
    Forbidden(String),
    /// The container's process could not be started; `exit_code` is what
    /// Docker reports for it (127 command not found, 126 not executable).
    #[error("{message}")]
    Start { message: String, exit_code: i32 },
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Cgroup(#[from] cgroup::CgroupError),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}
