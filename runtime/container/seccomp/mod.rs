//! Seccomp: Docker's default profile, its compilation to BPF, and install.
//!
//! - [`docker_default`] builds the OCI `linux.seccomp` profile for a set of
//!   capabilities (data: tests inspect it without root).
//! - [`compile`] turns any OCI profile into a [`SeccompProgram`] for the
//!   running architecture (x86_64 or aarch64); the program is plain data that
//!   serde carries to the re-executed container init over a pipe.
//! - [`install`] loads it into the calling thread, last before `execve`.
//!
//! No `unsafe` here: seccompiler's `apply_filter` wraps the two syscalls.

mod compile;
mod profile;
mod table;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use oci_spec::runtime::LinuxSeccomp;
use seccompiler::{sock_filter, TargetArch};
use serde::{Deserialize, Serialize};

pub use profile::{docker_default, ALLOWED, CAP_GATED, CLONE_NAMESPACE_FLAGS, PERSONALITIES};
pub use table::syscall_number;

/// Docker's default capabilities, for which [`default_program`] is built.
pub const DOCKER_DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// Errors building or installing a seccomp filter.
#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    /// Not x86_64 or aarch64.
    #[error("seccomp is not supported on architecture {arch}")]
    UnsupportedArch { arch: String },
    /// An action we cannot compile (`SCMP_ACT_NOTIFY`).
    #[error("seccomp action {action} is not supported")]
    UnsupportedAction { action: String },
    /// An argument index past the six syscall arguments.
    #[error("seccomp rule for {syscall}: argument index {index} is out of range 0-5")]
    ArgIndex { syscall: String, index: usize },
    /// seccompiler refused a rule or filter.
    #[error("seccomp rule for {syscall}: {source}")]
    Backend {
        syscall: String,
        source: seccompiler::BackendError,
    },
    /// `prctl` or `seccomp` failed for the filter at `index`.
    #[error("installing seccomp filter {index}: {source}")]
    Install {
        index: usize,
        source: seccompiler::Error,
    },
}

/// A compiled profile: a stack of classic BPF filters, installed in order.
///
/// Each instruction (`struct sock_filter`) is packed into one `u64` as
/// `code << 48 | jt << 40 | jf << 32 | k`, so the program serializes
/// compactly and carries no pointers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeccompProgram {
    filters: Vec<Vec<u64>>,
}

impl SeccompProgram {
    /// Number of stacked filters (0: nothing to install).
    pub fn filter_count(&self) -> usize {
        self.filters.len()
    }

    /// Total BPF instructions over all filters.
    pub fn instruction_count(&self) -> usize {
        self.filters.iter().map(Vec::len).sum()
    }

    fn from_bpf(filters: Vec<Vec<sock_filter>>) -> Self {
        let pack = |i: &sock_filter| {
            (u64::from(i.code) << 48)
                | (u64::from(i.jt) << 40)
                | (u64::from(i.jf) << 32)
                | u64::from(i.k)
        };
        let filters = filters
            .iter()
            .map(|f| f.iter().map(pack).collect())
            .collect();
        Self { filters }
    }

    fn bpf(&self) -> impl Iterator<Item = Vec<sock_filter>> + '_ {
        self.filters.iter().map(|f| {
            f.iter()
                .map(|&w| sock_filter {
                    code: (w >> 48) as u16,
                    jt: (w >> 40) as u8,
                    jf: (w >> 32) as u8,
                    k: w as u32,
                })
                .collect()
        })
    }
}

/// The running architecture, as seccompiler names it.
fn target_arch() -> Result<TargetArch, SeccompError> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|_| SeccompError::UnsupportedArch {
        arch: std::env::consts::ARCH.to_owned(),
    })
}

/// Compiles an OCI seccomp profile to BPF for the running architecture.
///
/// Syscall names the architecture lacks are skipped. Every OCI action but
/// `SCMP_ACT_NOTIFY` and every comparison operator is supported; the
/// profile's `architectures` and `flags` are not consulted.
pub fn compile(profile: &LinuxSeccomp) -> Result<SeccompProgram, SeccompError> {
    let filters = compile::compile_filters(profile, target_arch()?)?;
    Ok(SeccompProgram::from_bpf(filters))
}

/// Docker's default profile for [`DOCKER_DEFAULT_CAPS`], compiled once per
/// process.
pub fn default_program() -> &'static SeccompProgram {
    static PROGRAM: OnceLock<SeccompProgram> = OnceLock::new();
    PROGRAM.get_or_init(|| {
        let caps: Vec<String> = DOCKER_DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
        compile(&docker_default(&caps)).expect("docker's default profile compiles")
    })
}

/// Installs `program` into the calling thread with
/// `seccomp(SECCOMP_SET_MODE_FILTER)`.
///
/// Call it last before `execve`: every later syscall of the runtime itself is
/// filtered too. seccompiler also sets `PR_SET_NO_NEW_PRIVS`, which the
/// caller should already have done.
pub fn install(program: &SeccompProgram) -> Result<(), SeccompError> {
    for (index, filter) in program.bpf().enumerate() {
        seccompiler::apply_filter(&filter)
            .map_err(|source| SeccompError::Install { index, source })?;
    }
    Ok(())
}
