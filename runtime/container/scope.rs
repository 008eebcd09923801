//! Per-scope settings the runtime applies to every container of a scope:
//! which uid range it maps to and which cgroup parent it is placed under.
//!
//! `berth daemon`'s scope has none (its own uid range, `berth/<scope>/<id>`).
//! A classroom session registers each node's scope here so that all nodes of
//! one session share the session's uid range and cgroup subtree (DESIGN.md:
//! "Session: 1..N nodes sharing one cgroup subtree ... one uid range").
//! Settings live in memory: `berth serve` sweeps sessions on restart.

use std::path::{Path, PathBuf};

use super::manager::{ContainerRecord, Runtime};
use super::spec::{drop_capabilities, IdRange, SANDBOX_DROPPED};
use crate::Result;
use oci_spec::runtime::Process;

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
    /// The scope's own filesystem (a session's, see
    /// [`crate::session::disk`]): its containers' directories, volumes and
    /// scratch space are made there, so its size bounds what the scope
    /// writes. `None`: the data directory.
    pub disk_root: Option<PathBuf>,
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

    /// Whether the containers of `scope` are a learner's: a classroom
    /// session registers settings for each of its scopes (the nodes' and
    /// their labs'); `berth daemon`'s and `berth run`'s scopes have none.
    pub fn is_learner_scope(&self, scope: &str) -> bool {
        self.scope_settings(scope).is_some()
    }

    /// Cuts the capabilities of a process of `scope` (a container's first
    /// process, or an exec) to what the scope's containers may hold: a
    /// learner's lose [`SANDBOX_DROPPED`]; the host's own engine keeps
    /// Docker's default set, as dockerd gives it.
    pub fn sandbox_process(&self, scope: &str, process: Option<&mut Process>) {
        if let Some(process) = process.filter(|_| self.is_learner_scope(scope)) {
            drop_capabilities(process, &SANDBOX_DROPPED);
        }
    }

    /// Scratch space for `scope`'s transient files (build contexts and
    /// layers, spooled request bodies): on the scope's own filesystem when it
    /// has one, so they count against its budget; else `<data>/tmp`.
    pub fn scratch_dir(&self, scope: &str) -> PathBuf {
        match self.scope_settings(scope).and_then(|s| s.disk_root) {
            Some(root) => crate::session::disk::scratch_dir(&root),
            None => self.data.tmp_dir(),
        }
    }

    /// Makes the directory of a new container of `scope` at `dir`
    /// (`<data>/containers/<id>`): on the scope's own filesystem, with `dir`
    /// a symlink to it, when the scope has one.
    pub(crate) fn make_container_root(&self, scope: &str, dir: &Path) -> std::io::Result<()> {
        let Some(root) = self.scope_settings(scope).and_then(|s| s.disk_root) else {
            return std::fs::create_dir_all(dir);
        };
        let Some(id) = dir.file_name() else {
            return Err(std::io::Error::other("container directory without a name"));
        };
        let real = crate::session::disk::containers_dir(&root).join(id);
        std::fs::create_dir_all(&real)?;
        std::os::unix::fs::symlink(&real, dir)
    }

    /// Removes a container's directory made by
    /// [`Runtime::make_container_root`] (and what its symlink points to).
    pub(crate) fn remove_container_root(&self, dir: &Path) -> std::io::Result<()> {
        match std::fs::read_link(dir) {
            Ok(real) => {
                match std::fs::remove_dir_all(&real) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                std::fs::remove_file(dir)
            }
            Err(_) => std::fs::remove_dir_all(dir),
        }
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
        if let Some(fixed) = self.options.fixed_ids {
            return Ok(fixed);
        }
        let key = self.scope_settings(scope).map(|s| s.id_key);
        Ok(self.ids.range(key.as_deref().unwrap_or(scope))?)
    }

    /// The cgroup of a container, relative to the hierarchy root.
    /// Moves a container's monitor (`berth __init`, which relays its stdio
    /// and logs) into the `monitors` leaf of its scope's cgroup, so its
    /// memory and pids count against the learner's session, not the host.
    /// A sibling of the containers' groups: `docker pause` of a container
    /// never freezes its monitor, and cgroup v2 allows processes only in
    /// leaves. The daemon's own scopes leave monitors where the daemon is.
    pub(crate) fn place_monitor(&self, scope: &str, pid: u32) {
        let Some(settings) = self.scope_settings(scope) else {
            return;
        };
        let path = format!("{}/monitors", settings.cgroup_parent);
        let placed = super::cgroup::Cgroup::open(&self.cgroups, &path)
            .or_else(|_| super::cgroup::Cgroup::create(&self.cgroups, &path, &Default::default()))
            .and_then(|cg| cg.add_process(pid as i32));
        if let Err(e) = placed {
            tracing::warn!(scope, pid, error = %e, "monitor left outside the session's cgroup");
        }
    }

    pub fn cgroup_path(&self, record: &ContainerRecord) -> String {
        match self.scope_settings(&record.scope) {
            Some(s) => format!("{}/{}", s.cgroup_parent, record.id),
            None => super::lifecycle::cgroup_path(record),
        }
    }
}
