//! Volumes: named and anonymous volumes of a scope, kept under
//! `<data>/volumes/<scope>/<name>/_data`, and the resolution of a
//! container's mounts at start (volumes made and filled from the image on
//! first use, bind sources looked up inside the scope's filesystem root).
//!
//! - [`mounts`]: resolving a container's mounts into what the spec binds.
//! - [`copy`]: copy-up of the image's content into a fresh volume.
//! - [`intree`]: file operations resolved inside a learner's tree.

pub mod copy;
pub mod intree;
pub mod mounts;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Errors of volumes and mounts, in Docker's words.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    /// HTTP 404.
    #[error("get {0}: no such volume")]
    NotFound(String),
    /// HTTP 409.
    #[error("{0}")]
    Conflict(String),
    /// HTTP 400.
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> VolumeError {
    let context = context.into();
    move |source| VolumeError::Io { context, source }
}

/// A volume's record (`meta.json` beside its `_data`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    pub name: String,
    pub scope: String,
    pub driver: String,
    pub created: String,
    pub labels: BTreeMap<String, String>,
    pub options: BTreeMap<String, String>,
    /// Made for a container (`VOLUME`, `-v /path`), removed with `rm -v`.
    pub anonymous: bool,
    /// The image's content was copied in (or the volume was used): never again.
    pub populated: bool,
    #[serde(skip)]
    pub mountpoint: PathBuf,
}

impl Default for Volume {
    fn default() -> Self {
        Self {
            name: String::new(),
            scope: String::new(),
            driver: "local".into(),
            created: String::new(),
            labels: BTreeMap::new(),
            options: BTreeMap::new(),
            anonymous: false,
            populated: false,
            mountpoint: PathBuf::new(),
        }
    }
}

/// The volumes of every scope in one data directory.
pub struct Volumes {
    root: PathBuf,
    /// Serializes create/remove so a name is made once.
    lock: Mutex<()>,
}

/// Docker's rule for local volume names.
pub fn validate_name(name: &str) -> Result<(), VolumeError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if name.len() < 2 && first_ok {
        return Err(VolumeError::Invalid(format!(
            "create {name}: volume name is too short, names should be at least two alphanumeric characters"
        )));
    }
    if !first_ok || !rest_ok {
        return Err(VolumeError::Invalid(format!(
            "create {name}: \"{name}\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(())
}

impl Volumes {
    pub fn open(root: PathBuf) -> Self {
        Self {
            root,
            lock: Mutex::new(()),
        }
    }

    fn scope_dir(&self, scope: &str) -> PathBuf {
        // Scope names are engine-chosen; a `/` would still not escape.
        self.root.join(scope.replace('/', "_"))
    }

    fn dir(&self, scope: &str, name: &str) -> PathBuf {
        self.scope_dir(scope).join(name)
    }

    fn load(&self, scope: &str, name: &str) -> Option<Volume> {
        let dir = self.dir(scope, name);
        let mut v: Volume = serde_json::from_slice(&fs::read(dir.join("meta.json")).ok()?).ok()?;
        v.mountpoint = dir.join("_data");
        Some(v)
    }

    fn save(&self, v: &Volume) -> Result<(), VolumeError> {
        let file = self.dir(&v.scope, &v.name).join("meta.json");
        let tmp = file.with_extension("tmp");
        fs::write(&tmp, serde_json::to_vec_pretty(v).unwrap_or_default())
            .and_then(|_| fs::rename(&tmp, &file))
            .map_err(io_err(format!("write {}", file.display())))
    }

    /// A volume by name.
    pub fn get(&self, scope: &str, name: &str) -> Result<Volume, VolumeError> {
        self.load(scope, name)
            .ok_or_else(|| VolumeError::NotFound(name.to_string()))
    }

    /// Every volume of `scope`.
    pub fn list(&self, scope: &str) -> Vec<Volume> {
        let mut out: Vec<Volume> = fs::read_dir(self.scope_dir(scope))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| self.load(scope, &e.file_name().to_string_lossy()))
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Creates a volume (an existing one of that name is returned as is, as
    /// Docker does). `owner` is the host uid/gid of the scope's root.
    pub fn create(
        &self,
        scope: &str,
        name: Option<&str>,
        labels: BTreeMap<String, String>,
        owner: Option<u32>,
    ) -> Result<Volume, VolumeError> {
        let (name, anonymous) = match name {
            Some(n) if !n.is_empty() => {
                validate_name(n)?;
                (n.to_string(), false)
            }
            _ => (crate::container::names::new_id(), true),
        };
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(v) = self.load(scope, &name) {
            return Ok(v);
        }
        let dir = self.dir(scope, &name);
        let data = dir.join("_data");
        fs::create_dir_all(&data).map_err(io_err(format!("create {}", data.display())))?;
        if let Some(uid) = owner {
            std::os::unix::fs::chown(&data, Some(uid), Some(uid))
                .map_err(io_err(format!("chown {}", data.display())))?;
        }
        let v = Volume {
            name,
            scope: scope.into(),
            created: crate::container::state::now_rfc3339(),
            labels,
            anonymous,
            mountpoint: data,
            ..Volume::default()
        };
        if let Err(e) = self.save(&v) {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        Ok(v)
    }

    /// Marks a volume as filled, so copy-up happens once.
    pub fn mark_populated(&self, v: &Volume) -> Result<(), VolumeError> {
        let mut v = v.clone();
        v.populated = true;
        self.save(&v)
    }

    /// Removes a volume that `users` (container IDs) do not use.
    pub fn remove(&self, scope: &str, name: &str, users: &[String]) -> Result<(), VolumeError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if self.load(scope, name).is_none() {
            return Err(VolumeError::NotFound(name.to_string()));
        }
        if !users.is_empty() {
            return Err(VolumeError::Conflict(format!(
                "remove {name}: volume is in use - [{}]",
                users.join(", ")
            )));
        }
        let dir = self.dir(scope, name);
        fs::remove_dir_all(&dir).map_err(io_err(format!("remove {}", dir.display())))
    }

    /// Bytes used by a volume's files, walked in-root (a container on the
    /// volume may swap a directory for a symlink to `/` meanwhile).
    pub fn size(&self, v: &Volume) -> u64 {
        fn walk(tree: &intree::Tree, p: &Path, depth: usize) -> u64 {
            let Ok(Some(meta)) = tree.lstat(p) else {
                return 0;
            };
            if meta.is_dir() && depth < 256 {
                tree.list(p)
                    .unwrap_or_default()
                    .iter()
                    .map(|n| walk(tree, &p.join(n), depth + 1))
                    .sum()
            } else {
                meta.len()
            }
        }
        match intree::Tree::open(&v.mountpoint) {
            Ok(tree) => walk(&tree, Path::new("/"), 0),
            Err(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_rule() {
        assert!(validate_name("web-data_1.x").is_ok());
        assert!(validate_name("a")
            .unwrap_err()
            .to_string()
            .contains("too short"));
        assert!(validate_name("foo/bar")
            .unwrap_err()
            .to_string()
            .contains("includes invalid characters"));
        assert!(validate_name("-x").is_err());
    }

    #[test]
    fn volumes_are_made_once_listed_and_removed_unless_used() {
        let tmp = tempfile::tempdir().unwrap();
        let vols = Volumes::open(tmp.path().to_path_buf());
        let v = vols
            .create("s", Some("data"), BTreeMap::new(), None)
            .unwrap();
        assert!(v.mountpoint.is_dir());
        fs::write(v.mountpoint.join("f"), "x").unwrap();
        let again = vols
            .create("s", Some("data"), BTreeMap::new(), None)
            .unwrap();
        assert!(
            again.mountpoint.join("f").exists(),
            "an existing volume is kept"
        );
        assert_eq!(vols.list("s").len(), 1);
        assert!(vols.list("other").is_empty(), "volumes are per scope");
        let err = vols.remove("s", "data", &["abc".into()]).unwrap_err();
        assert_eq!(err.to_string(), "remove data: volume is in use - [abc]");
        vols.remove("s", "data", &[]).unwrap();
        assert!(!tmp.path().join("s/data").exists());
        assert_eq!(
            vols.remove("s", "data", &[]).unwrap_err().to_string(),
            "get data: no such volume"
        );
    }
}
