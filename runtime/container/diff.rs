//! `docker diff`: what a container changed, read from its overlay writable
//! layer against the image's layers.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::manager::{Container, Runtime};
use crate::Result;

/// Docker's change kinds (`Kind` in the API).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Modified = 0,
    Added = 1,
    Deleted = 2,
}

/// One changed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Absolute path inside the container.
    pub path: String,
    pub kind: ChangeKind,
}

/// An overlayfs whiteout: a character device 0/0.
fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// The changes recorded in `upper` against the `lowers` (any order).
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Vec<Change> {
    let mut out = Vec::new();
    walk(upper, Path::new("/"), lowers, &mut out);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn walk(dir: &Path, inside: &Path, lowers: &[PathBuf], out: &mut Vec<Change>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let path = inside.join(entry.file_name());
        let relative = path.strip_prefix("/").unwrap_or(&path);
        let in_lower = lowers
            .iter()
            .any(|l| fs::symlink_metadata(l.join(relative)).is_ok());
        let kind = if is_whiteout(&meta) {
            ChangeKind::Deleted
        } else if in_lower {
            ChangeKind::Modified
        } else {
            ChangeKind::Added
        };
        out.push(Change {
            path: path.to_string_lossy().into_owned(),
            kind,
        });
        if meta.is_dir() {
            walk(&entry.path(), &path, lowers, out);
        }
    }
}

impl Runtime {
    /// What the container changed in its filesystem.
    pub fn changes(&self, container: &Arc<Container>) -> Result<Vec<Change>> {
        let record = container.snapshot();
        let image = self.images.resolve(&record.scope, &record.image_id)?;
        let mut list = changes(&self.dir_of(&record.id).upper(), &image.layer_dirs);
        // The network files are bind mounts whose mount points live in the
        // writable layer; Docker keeps them in an init layer, out of the diff.
        const MOUNTED: [&str; 3] = ["/etc/hosts", "/etc/hostname", "/etc/resolv.conf"];
        let only_mounts = !list
            .iter()
            .any(|c| c.path.starts_with("/etc/") && !MOUNTED.contains(&c.path.as_str()));
        let hidden =
            |c: &Change| MOUNTED.contains(&c.path.as_str()) || (only_mounts && c.path == "/etc");
        list.retain(|c| !hidden(c));
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_modified_and_deleted_paths_are_told_apart() {
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        fs::create_dir_all(lower.path().join("etc")).unwrap();
        fs::write(lower.path().join("etc/motd"), "hi").unwrap();
        fs::write(lower.path().join("etc/hosts"), "x").unwrap();
        fs::create_dir_all(upper.path().join("etc")).unwrap();
        fs::write(upper.path().join("etc/hosts"), "y").unwrap();
        nix::sys::stat::mknod(
            &upper.path().join("etc/motd"),
            nix::sys::stat::SFlag::S_IFCHR,
            nix::sys::stat::Mode::empty(),
            0,
        )
        .unwrap();
        fs::create_dir_all(upper.path().join("tmp")).unwrap();
        fs::write(upper.path().join("tmp/new.txt"), "new").unwrap();
        let got: Vec<(String, ChangeKind)> = changes(upper.path(), &[lower.path().to_path_buf()])
            .into_iter()
            .map(|c| (c.path, c.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/etc".into(), ChangeKind::Modified),
                ("/etc/hosts".into(), ChangeKind::Modified),
                ("/etc/motd".into(), ChangeKind::Deleted),
                ("/tmp".into(), ChangeKind::Added),
                ("/tmp/new.txt".into(), ChangeKind::Added),
            ]
        );
    }
}
