//! Files the engine writes for a container itself: a swarm task's secrets
//! and configs (`/run/secrets/NAME`, `/NAME`).
//!
//! Why here and not in the image or a volume: the data must never pass
//! through anything a learner controls. It is written by the engine into
//! `<container dir>/files/` (a directory of the engine's data dir, mode
//! 0700, whose path holds no learner-controlled component), and shown in
//! the container by a read-only bind of the file alone
//! ([`crate::container::config::MountConfig::TaskFile`]). The *target* in
//! the container is the learner's ground (the image may make `/run` a link
//! to anywhere): like every bind, it is resolved inside the rootfs by the
//! container's pid 1 from a handle of the rootfs, and checked to be the
//! object the engine opened ([`super::init`]). The data is kept in no
//! config, record or log: it is shown by no inspect.

use std::fs;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;

use nix::fcntl::{open, openat, OFlag};
use nix::sys::stat::Mode;

use super::{sys, Container, ContainerError, Runtime};

/// One file for a container: its bytes and who owns it inside the container.
#[derive(Debug, Clone)]
pub struct TaskFile {
    pub data: Vec<u8>,
    /// Owner, as the container sees it.
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (swarm's default is 0444).
    pub mode: u32,
}

/// The engine makes these names (`secret-0`, `config-1`); anything else is
/// refused, so no name can step out of the directory.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn io_err(context: String) -> impl FnOnce(std::io::Error) -> ContainerError {
    move |source| ContainerError::Io { context, source }
}

impl Runtime {
    fn task_files_dir(&self, id: &str) -> PathBuf {
        self.dir_of(id).root.join("files")
    }

    /// The host ids that `uid`/`gid` of `scope`'s containers are.
    fn host_ids(&self, scope: &str, uid: u32, gid: u32) -> crate::Result<(u32, u32)> {
        if !self.options.user_namespaces {
            return Ok((uid, gid));
        }
        let range = self.id_range(scope)?;
        let map = |id: u32| {
            (id < range.size).then(|| range.base + id).ok_or_else(|| {
                ContainerError::InvalidConfig(format!(
                    "id {id} is not mapped in the container's user namespace"
                ))
            })
        };
        Ok((map(uid)?, map(gid)?))
    }

    /// Writes `file` as `name` for container `c` (before it starts), owned
    /// by the container's `uid`/`gid` and with `mode`.
    pub fn write_task_file(&self, c: &Container, name: &str, file: &TaskFile) -> crate::Result<()> {
        if !valid_name(name) {
            return Err(
                ContainerError::InvalidConfig(format!("invalid task file name {name:?}")).into(),
            );
        }
        let scope = c.snapshot().scope;
        let (uid, gid) = self.host_ids(&scope, file.uid, file.gid)?;
        let dir = self.task_files_dir(&c.id);
        match fs::create_dir(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err(format!("create {}", dir.display()))(e).into()),
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))
            .map_err(io_err(format!("chmod {}", dir.display())))?;
        let path = dir.join(name);
        let context = format!("write {}", path.display());
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(io_err(context.clone()))?;
        f.write_all(&file.data).map_err(io_err(context.clone()))?;
        std::os::unix::fs::fchown(&f, Some(uid), Some(gid)).map_err(io_err(context.clone()))?;
        // After the chown, which clears set-id bits.
        f.set_permissions(fs::Permissions::from_mode(file.mode & 0o777))
            .map_err(io_err(context))?;
        Ok(())
    }

    /// Opens (`O_PATH`, following no link) the task file `name` of
    /// container `id`, for its bind.
    pub(crate) fn open_task_file(&self, id: &str, name: &str) -> crate::Result<OwnedFd> {
        if !valid_name(name) {
            return Err(
                ContainerError::InvalidConfig(format!("invalid task file name {name:?}")).into(),
            );
        }
        let dir = self.task_files_dir(id);
        let failed = |e: nix::errno::Errno| ContainerError::Io {
            context: format!("open task file {name} of {id}"),
            source: e.into(),
        };
        let d = open(
            &dir,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(failed)?;
        let d = sys::adopt_fd(d).map_err(io_err(format!("open {}", dir.display())))?;
        let f = openat(
            Some(d.as_raw_fd()),
            name,
            OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(failed)?;
        let f = sys::adopt_fd(f).map_err(io_err(format!("open task file {name}")))?;
        let st = nix::sys::stat::fstat(f.as_raw_fd()).map_err(failed)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(
                ContainerError::InvalidConfig(format!("task file {name} is not a file")).into(),
            );
        }
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn only_the_engines_own_names_are_task_files() {
        assert!(valid_name("secret-0"));
        assert!(valid_name("config-12"));
        for bad in ["", "../x", "a/b", ".", "..", "Secret", "x\0"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
    }
}
