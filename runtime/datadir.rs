//! The data directory: where every piece of Berth state lives, and the lock that
//! keeps two processes from sharing one.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

/// Default location of the data directory.
pub const DEFAULT_DATA_DIR: &str = "/var/lib/berth";

/// Errors opening the data directory.
#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("cannot create data directory {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another berth process")]
    Locked { path: PathBuf },
}

/// An opened, locked data directory. The lock is held as long as this value lives.
#[derive(Debug)]
pub struct DataDir {
    root: PathBuf,
    _lock: Flock<File>,
}

impl DataDir {
    /// Opens (creating if needed) and locks `root`. Fails at once if another
    /// process holds the lock: two engines on one store would corrupt it.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, DataDirError> {
        let root: PathBuf = root.into();
        let create = |p: &Path| {
            fs::create_dir_all(p).map_err(|source| DataDirError::Create {
                path: p.to_path_buf(),
                source,
            })
        };
        create(&root)?;
        let lock_path = root.join("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| DataDirError::Create {
                path: lock_path.clone(),
                source,
            })?;
        let lock = Flock::lock(lock, FlockArg::LockExclusiveNonblock)
            .map_err(|_| DataDirError::Locked { path: root.clone() })?;
        for sub in ["image", "containers", "tmp"] {
            create(&root.join(sub))?;
        }
        // Container roots run as unprivileged host uids (user namespaces) and
        // must be able to pass through to their rootfs mount: search only.
        for dir in [root.clone(), root.join("containers")] {
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o711)).map_err(|source| {
                DataDirError::Create {
                    path: dir.clone(),
                    source,
                }
            })?;
        }
        Ok(Self { root, _lock: lock })
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the image store keeps blobs, layers and references.
    pub fn image_dir(&self) -> PathBuf {
        self.root.join("image")
    }

    /// Where each container keeps its state, writable layer and logs.
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    /// Scratch space on the same filesystem (for atomic renames).
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_of_one_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDir::open(dir.path()).unwrap();
        let err = DataDir::open(dir.path()).unwrap_err();
        assert!(
            err.to_string().contains("in use by another berth process"),
            "{err}"
        );
        drop(first);
        DataDir::open(dir.path()).expect("lock is released on drop");
    }
}
