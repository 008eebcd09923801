//! `docker diff`: what a container changed, read from its overlay writable
//! layer against the image's layers.
//!
//! The writable layer belongs to a container that may be running and
//! swapping directories for symlinks while we walk, and the layers below
//! are a learner's too: the walk lists and stats through handles resolved
//! inside each tree (a lower layer passes no symlink at all), so it never
//! lists or probes a host directory.

use std::fs;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::manager::{Container, Runtime};
use crate::volume::intree::Tree;
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

/// Directory levels walked before giving up (each holds an fd).
const MAX_DEPTH: usize = 256;

/// The changes recorded in `upper` against the `lowers` (any order).
pub fn changes(upper: &Path, lowers: &[PathBuf]) -> Vec<Change> {
    let mut out = Vec::new();
    let Ok(upper) = Tree::open(upper) else {
        return out;
    };
    let lowers: Vec<Tree> = lowers
        .iter()
        .filter_map(|l| Tree::open_no_symlinks(l).ok())
        .collect();
    walk(&upper, Path::new("/"), &lowers, &mut out, 0);
    out.sort_by(|a, b| a.path.cmp(&b.path));
    // /etc copied up only to hold the engine's mount points is no change.
    let etc_children = out.iter().any(|c| c.path.starts_with("/etc/"));
    let etc_mount_points = crate::image::layer::ENGINE_MOUNT_POINTS
        .iter()
        .any(|p| matches!(upper.lstat(Path::new(p)), Ok(Some(_))));
    if etc_mount_points && !etc_children {
        out.retain(|c| !(c.path == "/etc" && c.kind == ChangeKind::Modified));
    }
    out
}

fn walk(upper: &Tree, inside: &Path, lowers: &[Tree], out: &mut Vec<Change>, depth: usize) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(names) = upper.list(inside) else {
        return;
    };
    for name in names {
        let path = inside.join(&name);
        let Ok(Some(meta)) = upper.lstat(&path) else {
            continue;
        };
        let relative = path.strip_prefix("/").unwrap_or(&path);
        if crate::image::layer::is_engine_mount_point(relative, &meta) {
            continue;
        }
        let in_lower = lowers
            .iter()
            .any(|l| matches!(l.lstat(relative), Ok(Some(_))));
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
            walk(upper, &path, lowers, out, depth + 1);
        }
    }
}

impl Runtime {
    /// What the container changed in its filesystem.
    pub fn changes(&self, container: &Arc<Container>) -> Result<Vec<Change>> {
        let record = container.snapshot();
        let image = self.images.resolve(&record.scope, &record.image_id)?;
        Ok(changes(&self.dir_of(&record.id).upper(), &image.layer_dirs))
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

    #[test]
    fn links_in_the_writable_layer_or_below_are_never_walked() {
        let outside = tempfile::tempdir().unwrap();
        fs::create_dir(outside.path().join("hostdir")).unwrap();
        fs::write(outside.path().join("hostdir/hostfile"), "h").unwrap();
        let lower = tempfile::tempdir().unwrap();
        let upper = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), upper.path().join("x")).unwrap();
        std::os::unix::fs::symlink(outside.path(), lower.path().join("d")).unwrap();
        fs::create_dir(upper.path().join("d")).unwrap();
        fs::create_dir(upper.path().join("d/hostdir")).unwrap();
        let got: Vec<(String, ChangeKind)> = changes(upper.path(), &[lower.path().to_path_buf()])
            .into_iter()
            .map(|c| (c.path, c.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                ("/d".into(), ChangeKind::Modified),
                ("/d/hostdir".into(), ChangeKind::Added),
                ("/x".into(), ChangeKind::Added),
            ],
            "no host name listed, and the lower link is not probed through"
        );
    }
}
