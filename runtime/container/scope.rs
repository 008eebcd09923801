//! Per-scope settings the runtime applies to every container of a scope:
//! which uid range it maps to and which cgroup parent it is placed under.
//!
//! `berth daemon`'s scope has none (its own uid range, `berth/<scope>/<id>`).
//! A classroom session registers each node's scope here so that all nodes of
//! one session share the session's uid range and cgroup subtree (DESIGN.md:
//! "Session: 1..N nodes sharing one cgroup subtree ... one uid range").
//! Settings live in memory: `berth serve` sweeps sessions on restart.

use std::path::PathBuf;

use super::manager::{ContainerRecord, Runtime};
use super::spec::IdRange;
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
    /// The disk the scope's session may use, bytes (`None`: no quota, as
    /// for `berth daemon`). Request bodies are held to what is left of it.
    pub disk_quota: Option<u64>,
}

/// A scope's disk budget: its quota and what is left of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskBudget {
    pub quota: u64,
    pub left: u64,
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

    /// The disk `scope` may still fill, if it has a quota: what uploads,
    /// build contexts and what they unpack to are held to.
    pub fn disk_budget(&self, scope: &str) -> Option<DiskBudget> {
        let quota = self.scope_settings(scope)?.disk_quota?;
        // What the session already stores is not subtracted yet: the
        // session disk budget, once it counts everything, fills `left` in.
        Some(DiskBudget { quota, left: quota })
    }

    /// The settings of `scope`, if it has any.
    pub fn scope_settings(&self, scope: &str) -> Option<ScopeSettings> {
        self.scopes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(scope)
            .cloned()
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
