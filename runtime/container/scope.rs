//! Per-scope settings the runtime applies to every container of a scope:
//! which uid range it maps to and which cgroup parent it is placed under.
//!
//! `berth daemon`'s scope has none (its own uid range, `berth/<scope>/<id>`).
//! A classroom session registers each node's scope here so that all nodes of
//! one session share the session's uid range and cgroup subtree (DESIGN.md:
//! "Session: 1..N nodes sharing one cgroup subtree ... one uid range").
//! Settings live in memory: `berth serve` sweeps sessions on restart.

use std::fs;
use std::path::{Component, Path, PathBuf};

use super::config::MountConfig;
use super::manager::{ContainerRecord, Runtime};
use super::spec::IdRange;
use super::ContainerError;
use crate::Result;

/// How the containers of one scope are placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeSettings {
    /// The key of the scope's user-namespace id range (a session's ID: its
    /// nodes share one range, so files move between them with their owners).
    pub id_key: String,
    /// The cgroup that holds this scope's container cgroups (relative to the
    /// hierarchy root), e.g. `berth/sessions/<session>/<node>`; the session's
    /// limits sit on an ancestor and bound every container below it.
    pub cgroup_parent: String,
    /// The scope's host network namespace: where its bridges live and `-p`
    /// listens (a node's namespace). `None`: the real host's.
    pub host_netns: Option<PathBuf>,
    /// Where bind-mount sources are resolved: a node's lab root, so
    /// `-v $PWD:/app` means the lab's `$PWD` and `-v /:/x` the lab's `/`,
    /// never the host's. `None`: host paths (`berth daemon`).
    pub bind_root: Option<PathBuf>,
}

impl Runtime {
    /// Registers (or replaces) the settings of `scope`.
    pub fn set_scope(&self, scope: &str, settings: ScopeSettings) {
        // The scope's networks (bridges, `-p`) live in its host namespace
        // once that exists (a lab makes its node's namespace).
        if let Some(ns) = settings.host_netns.as_ref().filter(|ns| ns.exists()) {
            self.net().configure_scope(
                scope,
                crate::net::ScopeSettings {
                    host: crate::net::HostNamespace::Path(ns.clone()),
                    fs_root: settings
                        .bind_root
                        .clone()
                        .unwrap_or_else(|| PathBuf::from("/")),
                    ..self.net().scope_settings(scope)
                },
            );
        }
        self.scopes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(scope.to_string(), settings);
    }

    /// Forgets the settings of `scope` (when its node is torn down).
    pub fn forget_scope(&self, scope: &str) {
        self.scopes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(scope);
    }

    /// The settings of `scope`, if it has any.
    pub fn scope_settings(&self, scope: &str) -> Option<ScopeSettings> {
        self.scopes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(scope)
            .cloned()
    }

    /// Rewrites the bind sources of a container of `scope` to host paths
    /// inside the scope's bind root (when it has one), creating a missing
    /// source directory there as Docker creates a missing host directory.
    pub(crate) fn resolve_binds(&self, scope: &str, mounts: &mut [MountConfig]) -> Result<()> {
        let Some(root) = self.scope_settings(scope).and_then(|s| s.bind_root) else {
            return Ok(());
        };
        let owner = self.id_range(scope)?.base;
        for m in mounts.iter_mut() {
            if let MountConfig::Bind { source, .. } = m {
                *source = resolve_in_root(&root, source, owner).map_err(|e| {
                    ContainerError::InvalidConfig(format!(
                        "invalid mount config for type \"bind\": bind source path {}: {e}",
                        source.display()
                    ))
                })?;
            }
        }
        Ok(())
    }

    /// Every scope that has a container.
    pub fn all_scopes(&self) -> Vec<String> {
        let mut scopes: Vec<String> = self
            .map()
            .values()
            .map(|c| c.lock().scope.clone())
            .collect();
        scopes.sort();
        scopes.dedup();
        scopes
    }

    /// The uid range the containers of `scope` map to.
    pub fn id_range(&self, scope: &str) -> Result<IdRange> {
        let key = self.scope_settings(scope).map(|s| s.id_key);
        Ok(self.ids.range(key.as_deref().unwrap_or(scope))?)
    }

    /// The cgroup of a container, relative to the hierarchy root.
    pub fn cgroup_path(&self, record: &ContainerRecord) -> String {
        match self.scope_settings(&record.scope) {
            Some(s) => format!("{}/{}", s.cgroup_parent, record.id),
            None => super::lifecycle::cgroup_path(record),
        }
    }
}

/// Resolves `path` as a process chrooted at `root` would: `..` stops at the
/// root and symlinks (absolute ones relative to the root) are followed
/// within it, at most 40 of them. Missing directories are created, owned by
/// `owner` (the scope's root uid). Returns the host path.
///
/// The check and the later mount are not atomic: a lab that swaps a checked
/// directory for a symlink in between could still redirect the mount.
pub fn resolve_in_root(root: &Path, path: &Path, owner: u32) -> std::io::Result<PathBuf> {
    let mut resolved = PathBuf::new(); // relative to root
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut links = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = root.join(&resolved).join(&part);
        match fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > 40 {
                    return Err(std::io::Error::other("too many levels of symbolic links"));
                }
                let target = fs::read_link(&candidate)?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                for c in target.components().rev() {
                    match c {
                        Component::Normal(n) => pending.push(n.to_os_string()),
                        Component::ParentDir => pending.push("..".into()),
                        _ => {}
                    }
                }
            }
            Ok(_) => resolved.push(&part),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&candidate)?;
                std::os::unix::fs::chown(&candidate, Some(owner), Some(owner))?;
                resolved.push(&part);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(root.join(resolved))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_sources_stay_inside_the_root_whatever_the_links_say() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("home/app")).unwrap();
        std::os::unix::fs::symlink("/", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("../../../..", root.join("home/up")).unwrap();
        let me = nix::unistd::getuid().as_raw();
        assert_eq!(resolve_in_root(root, Path::new("/"), me).unwrap(), root);
        assert_eq!(
            resolve_in_root(root, Path::new("/escape/etc"), me).unwrap(),
            root.join("etc")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/home/up/x"), me).unwrap(),
            root.join("x")
        );
        assert_eq!(
            resolve_in_root(root, Path::new("/../../home/app"), me).unwrap(),
            root.join("home/app")
        );
        assert!(
            root.join("etc").is_dir(),
            "a missing source is made inside the root"
        );
        std::os::unix::fs::symlink("loop", root.join("loop")).unwrap();
        assert!(resolve_in_root(root, Path::new("/loop"), me).is_err());
    }
}
