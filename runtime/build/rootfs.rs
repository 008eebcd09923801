//! [`RootView`]: an image's filesystem read through its unpacked layers, top
//! layer first, as overlayfs would show it (whiteouts hide, opaque
//! directories cut off what is below), without mounting anything.
//!
//! The builder reads images this way for `COPY --from`, for `COPY`'s
//! "is the destination a directory" question, `WORKDIR` and `--chown` names.
//! A build context is a view of one layer.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The xattr overlayfs reads to hide a lower directory's contents.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// Symlinks followed in one lookup before giving up (Linux's limit).
const MAX_LINKS: usize = 40;

/// A read-only view of stacked layer directories.
#[derive(Debug, Clone)]
pub struct RootView {
    /// Layer directories, lowest first.
    layers: Vec<PathBuf>,
}

/// An entry found in a view: where it lives on the host.
#[derive(Debug, Clone)]
pub struct Found {
    /// The path in the view, clean, relative to `/` (`""` is the root).
    pub path: String,
    /// The file in the layer that provides it.
    pub host: PathBuf,
    /// Its metadata (not following a final symlink).
    pub meta: fs::Metadata,
}

fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

fn is_opaque(dir: &Path) -> bool {
    xattr::get(dir, OPAQUE_XATTR).ok().flatten().as_deref() == Some(b"y")
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

impl RootView {
    /// A view of `layers` (lowest first).
    pub fn new(layers: Vec<PathBuf>) -> Self {
        RootView { layers }
    }

    /// The topmost layer entry for the clean relative `path`, no symlink
    /// followed anywhere.
    fn entry(&self, path: &str) -> Option<(PathBuf, fs::Metadata)> {
        if path.is_empty() {
            let top = self.layers.last()?;
            return fs::metadata(top).ok().map(|m| (top.clone(), m));
        }
        let parent = Path::new(path).parent().unwrap_or(Path::new(""));
        for layer in self.layers.iter().rev() {
            let host = layer.join(path);
            if let Ok(meta) = fs::symlink_metadata(&host) {
                if is_whiteout(&meta) {
                    return None;
                }
                return Some((host, meta));
            }
            // An opaque directory above hides the lower layers' entries.
            if !parent.as_os_str().is_empty() && is_opaque(&layer.join(parent)) {
                return None;
            }
        }
        None
    }

    /// Resolves `path` (relative to `/`), following symlinks in the
    /// directories on the way and, with `follow`, a final symlink too.
    pub fn lookup(&self, path: &str, follow: bool) -> Option<Found> {
        let mut pending: Vec<String> = components(path);
        pending.reverse();
        let mut done: Vec<String> = Vec::new();
        let mut links = 0;
        while let Some(part) = pending.pop() {
            done.push(part);
            let joined = done.join("/");
            let (host, meta) = self.entry(&joined)?;
            let last = pending.is_empty();
            if meta.file_type().is_symlink() && (!last || follow) {
                links += 1;
                if links > MAX_LINKS {
                    return None;
                }
                let target = fs::read_link(&host).ok()?;
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
                    host,
                    meta,
                });
            }
        }
        let (host, meta) = self.entry("")?;
        Some(Found {
            path: String::new(),
            host,
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
            let dir = layer.join(path);
            let Ok(meta) = fs::symlink_metadata(&dir) else {
                continue;
            };
            if !meta.is_dir() {
                // A file here hides directories of lower layers.
                break;
            }
            if let Ok(entries) = fs::read_dir(&dir) {
                for e in entries.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if names.contains(&name) || hidden.contains(&name) {
                        continue;
                    }
                    match e.metadata() {
                        Ok(m) if is_whiteout(&m) => hidden.push(name),
                        Ok(_) => names.push(name),
                        Err(_) => {}
                    }
                }
            }
            if is_opaque(&dir) {
                break;
            }
        }
        names.sort();
        names
    }

    /// The contents of a file, following symlinks.
    pub fn read(&self, path: &str) -> Option<Vec<u8>> {
        let found = self.lookup(path, true)?;
        fs::read(found.host).ok()
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
}
