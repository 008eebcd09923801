//! [`RootView`]: an image's filesystem read through its unpacked layers, top
//! layer first, as overlayfs would show it (whiteouts hide, opaque
//! directories cut off what is below), without mounting anything.
//!
//! The builder reads images this way for `COPY --from`, for `COPY`'s
//! "is the destination a directory" question, `WORKDIR` and `--chown` names.
//! A build context is a view of one layer.
//!
//! Layers and contexts are trees a learner made, so nothing here touches a
//! host path built from a string: each layer is a directory handle in which
//! no path may pass a symlink (`RESOLVE_NO_SYMLINKS`); the view follows
//! symlinks itself, component by component, inside the view's own root, and
//! entries are read from the fds that resolution gives.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::volume::intree::Tree;

/// The xattr overlayfs reads to hide a lower directory's contents.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Symlinks followed in one lookup before giving up (Linux's limit).
const MAX_LINKS: usize = 40;
/// The most [`RootView::read`] reads of a file (`/etc/passwd` and friends).
const MAX_READ: u64 = 16 << 20;

/// A read-only view of stacked layer directories.
#[derive(Debug)]
pub struct RootView {
    /// Layer trees, lowest first (a layer that cannot be opened is empty).
    layers: Vec<Option<Tree>>,
}

/// An entry found in a view.
#[derive(Debug, Clone)]
pub struct Found {
    /// The path in the view, clean, relative to `/` (`""` is the root).
    pub path: String,
    /// The index of the layer that provides it.
    pub layer: usize,
    /// Its metadata (not following a final symlink).
    pub meta: fs::Metadata,
}

fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Splits a path into its normal components (`..` pops, `.` and `/` vanish).
pub fn components(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            p => out.push(p.to_string()),
        }
    }
    out
}

/// What one layer holds at a path.
enum InLayer {
    Entry(fs::Metadata),
    /// Nothing here; lower layers may have it.
    Missing,
    /// A non-directory on the way (or a whiteout): lower layers are hidden.
    Hidden,
}

impl RootView {
    /// A view of `layers` (lowest first).
    pub fn new(layers: Vec<PathBuf>) -> Self {
        let layers = layers
            .iter()
            .map(|dir| match Tree::open_no_symlinks(dir) {
                Ok(t) => Some(t),
                Err(e) => {
                    tracing::warn!("open layer {}: {e}", dir.display());
                    None
                }
            })
            .collect();
        RootView { layers }
    }

    fn at(&self, layer: &Tree, path: &str) -> InLayer {
        match layer.lstat(Path::new(path)) {
            Ok(Some(m)) if is_whiteout(&m) => InLayer::Hidden,
            Ok(Some(m)) => InLayer::Entry(m),
            Ok(None) => InLayer::Missing,
            // A symlink on the way inside this layer (ELOOP with
            // RESOLVE_NO_SYMLINKS) cuts off what is below, as in overlayfs.
            Err(_) => InLayer::Hidden,
        }
    }

    /// The topmost layer entry for the clean relative `path`, no symlink
    /// followed anywhere.
    fn entry(&self, path: &str) -> Option<(usize, fs::Metadata)> {
        let parent = Path::new(path).parent().unwrap_or(Path::new(""));
        for (i, layer) in self.layers.iter().enumerate().rev() {
            let Some(layer) = layer else { continue };
            if path.is_empty() {
                return layer.lstat(Path::new("/")).ok().flatten().map(|m| (i, m));
            }
            match self.at(layer, path) {
                InLayer::Entry(m) => return Some((i, m)),
                InLayer::Hidden => return None,
                InLayer::Missing => {}
            }
            // An opaque directory above hides the lower layers' entries.
            if !parent.as_os_str().is_empty() && is_opaque(layer, parent) {
                return None;
            }
        }
        None
    }

    /// Resolves `path` (relative to `/`), following symlinks in the
    /// directories on the way and, with `follow`, a final symlink too; all
    /// inside the view (an absolute target starts at the view's root, `..`
    /// stops there).
    pub fn lookup(&self, path: &str, follow: bool) -> Option<Found> {
        let mut pending: Vec<String> = components(path);
        pending.reverse();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(part) = pending.pop() {
            done.push(part);
            let joined = done.join("/");
            let (layer, meta) = self.entry(&joined)?;
            let last = pending.is_empty();
            if meta.file_type().is_symlink() && (!last || follow) {
                links += 1;
                if links > MAX_LINKS {
                    return None;
                }
                let target = self.layers[layer]
                    .as_ref()?
                    .readlink(Path::new(&joined))
                    .ok()?;
                let target = target.to_string_lossy().into_owned();
                done.pop();
                // Everything still to resolve, as one path: the link's target
                // (from the root or from the link's directory), then the rest.
                let base = if target.starts_with('/') {
                    String::new()
                } else {
                    done.join("/")
                };
                let rest: Vec<String> = pending.drain(..).rev().collect();
                let full = format!("{base}/{target}/{}", rest.join("/"));
                done.clear();
                pending = components(&full);
                pending.reverse();
                continue;
            }
            if last {
                return Some(Found {
                    path: joined,
                    layer,
                    meta,
                });
            }
        }
        let (layer, meta) = self.entry("")?;
        Some(Found {
            path: String::new(),
            layer,
            meta,
        })
    }

    /// Whether `path` is a directory (following symlinks).
    pub fn is_dir(&self, path: &str) -> bool {
        self.lookup(path, true).is_some_and(|f| f.meta.is_dir())
    }

    /// The names in directory `path` (a clean path a lookup returned),
    /// merged over the layers, sorted.
    pub fn list(&self, path: &str) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut hidden: Vec<String> = Vec::new();
        for layer in self.layers.iter().rev() {
            let Some(layer) = layer else { continue };
            let dir = Path::new(if path.is_empty() { "/" } else { path });
            match self.at(layer, &dir.to_string_lossy()) {
                InLayer::Entry(m) if m.is_dir() => {}
                InLayer::Missing => continue,
                // A file here hides directories of lower layers.
                _ => break,
            }
            for name in layer.list(dir).unwrap_or_default() {
                let name = name.to_string_lossy().into_owned();
                if names.contains(&name) || hidden.contains(&name) {
                    continue;
                }
                match layer.lstat(&dir.join(&name)) {
                    Ok(Some(m)) if is_whiteout(&m) => hidden.push(name),
                    Ok(Some(_)) => names.push(name),
                    _ => {}
                }
            }
            if is_opaque(layer, dir) {
                break;
            }
        }
        names.sort();
        names
    }

    /// The regular file `found` (a lookup's answer), open for reading from
    /// the fd its layer resolved.
    pub fn open(&self, found: &Found) -> io::Result<fs::File> {
        self.tree_of(found)?.open_file(Path::new(&found.path))
    }

    /// The target of the symlink `found`.
    pub fn readlink(&self, found: &Found) -> io::Result<PathBuf> {
        self.tree_of(found)?.readlink(Path::new(&found.path))
    }

    fn tree_of(&self, found: &Found) -> io::Result<&Tree> {
        self.layers
            .get(found.layer)
            .and_then(Option::as_ref)
            .ok_or_else(|| io::Error::other("layer not open"))
    }

    /// The contents of a file, following symlinks (at most 16 MiB).
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        let found = self.lookup(path, true)?;
        let mut out = Vec::new();
        self.open(&found)
            .ok()?
            .take(MAX_READ)
            .read_to_end(&mut out)
            .ok()?;
        Some(out)
    }

    /// The view's path with symlinks in its directories resolved (the last
    /// component kept as is), for writing into a new layer.
    pub fn real_path(&self, path: &str) -> String {
        let parts = components(path);
        let Some((last, dirs)) = parts.split_last() else {
            return String::new();
        };
        let parent = match self.lookup(&dirs.join("/"), true) {
            Some(f) if f.meta.is_dir() => f.path,
            _ => dirs.join("/"),
        };
        if parent.is_empty() {
            last.clone()
        } else {
            format!("{parent}/{last}")
        }
    }
}

/// Whether directory `rel` of a layer is opaque (read from its fd).
fn is_opaque(layer: &Tree, rel: &Path) -> bool {
    layer.dir_xattr(rel, OPAQUE_XATTR).as_deref() == Some(b"y")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn upper_layers_win_and_symlinked_dirs_are_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let low = tmp.path().join("low");
        let high = tmp.path().join("high");
        fs::create_dir_all(low.join("usr/lib")).unwrap();
        fs::write(low.join("usr/lib/a"), "low").unwrap();
        fs::write(low.join("usr/lib/b"), "b").unwrap();
        symlink("usr/lib", low.join("lib")).unwrap();
        fs::create_dir_all(high.join("usr/lib")).unwrap();
        fs::write(high.join("usr/lib/a"), "high").unwrap();
        let view = RootView::new(vec![low, high]);
        assert_eq!(view.read("/lib/a").unwrap(), b"high");
        assert_eq!(view.read("lib/b").unwrap(), b"b");
        assert_eq!(view.list("usr/lib"), vec!["a", "b"]);
        assert!(view.is_dir("/lib"));
        assert!(!view.is_dir("/lib/a"));
        assert_eq!(view.real_path("/lib/new"), "usr/lib/new");
        assert!(view.lookup("/nope", true).is_none());
    }

    #[test]
    fn a_lower_layers_symlink_under_an_upper_directory_is_not_followed() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s3cret").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let low = tmp.path().join("low");
        let high = tmp.path().join("high");
        fs::create_dir_all(&low).unwrap();
        fs::create_dir_all(high.join("d")).unwrap();
        symlink(outside.path(), low.join("d")).unwrap();
        symlink(outside.path(), low.join("abs")).unwrap();
        let view = RootView::new(vec![low, high]);
        assert!(view.lookup("d/secret", false).is_none());
        assert!(view.read("d/secret").is_none());
        assert!(view.list("d").is_empty());
        // An absolute link leads to the view's root, not the host's.
        assert!(view.read("abs/secret").is_none());
        let in_view = format!("abs/{}", outside.path().display());
        assert!(view.lookup(&in_view, true).is_none());
    }
}
