//! Removing a session's every trace, and the sweep on start that does so for
//! sessions a previous run left behind (a crash, a kill -9).

use std::fs;
use std::path::Path;
use std::sync::Arc;

use super::{cgroup, netns, SessionRecord};
use crate::engine::Engine;

/// Removes what `record` names: containers of its scopes (killed), pinned
/// namespaces, scope settings and image references, the cgroup subtree,
/// the uid range and `dir`. Returns what could not be removed.
pub fn remove_session(engine: &Arc<Engine>, dir: &Path, record: &SessionRecord) -> Vec<String> {
    let runtime = &engine.runtime;
    let root = cgroup::sessions_root(runtime.data_dir().root());
    // A frozen session (over its disk quota) must thaw, or SIGKILL waits.
    if let Ok(cg) = crate::container::cgroup::Cgroup::open(
        runtime.cgroups(),
        &cgroup::session_cgroup(&root, &record.id),
    ) {
        let _ = cg.thaw();
    }
    // Its nodes leave their swarms first, so no task is started there again.
    engine.swarm.forget_scopes(&record.scopes);
    let mut left = Vec::new();
    for scope in &record.scopes {
        // After a restart the settings are gone: put them back so removal
        // finds each container's cgroup where it was made.
        if runtime.scope_settings(scope).is_none() {
            let node = scope
                .strip_prefix(&format!("{}-", record.id))
                .unwrap_or(scope)
                .trim_end_matches("-lab");
            runtime.set_scope(
                scope,
                crate::container::ScopeSettings {
                    id_key: record.id.clone(),
                    cgroup_parent: cgroup::node_cgroup(&root, &record.id, node),
                    host_netns: None,
                    bind_root: None,
                    disk_root: None,
                },
            );
        }
        for c in runtime.list(scope) {
            if let Err(e) = runtime.remove(&c, true) {
                left.push(format!("container {}: {e}", c.id));
            }
        }
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let ns = super::node::host_netns_path(&e.path());
            if ns.exists() {
                netns::unpin(&ns);
                if ns.exists() {
                    left.push(format!("namespace {}", ns.display()));
                }
            }
        }
    }
    for scope in &record.scopes {
        if let Err(e) = super::disk::unlink_volumes(runtime.data_dir().root(), scope) {
            left.push(format!("volumes of {scope}: {e}"));
        }
        runtime.forget_scope(scope);
        runtime.net().forget_scope(scope);
        super::registry::dismiss(engine, scope);
        runtime.images().forget_scope(scope);
        if let Err(e) = crate::engine::plugins::forget_scope(runtime.data_dir().root(), scope) {
            left.push(format!("plugins of {scope}: {e}"));
        }
    }
    for d in cgroup::remove_tree(
        runtime.cgroups(),
        &cgroup::session_cgroup(&root, &record.id),
    ) {
        left.push(format!("cgroup {}", d.display()));
    }
    runtime.ids().release(&record.id);
    // Everything the session wrote goes with its filesystem; the directory
    // below is removed only once that is unmounted (never through it).
    let disk_left = super::disk::remove(dir);
    if !disk_left.is_empty() {
        left.extend(disk_left);
        return left;
    }
    if let Err(e) = fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            left.push(format!("directory {}: {e}", dir.display()));
        }
    }
    left
}

/// Removes every session found under `<data>/sessions` and every session
/// cgroup: at start nothing of a previous run is live. Returns the number
/// of sessions removed.
pub fn sweep(engine: &Arc<Engine>) -> usize {
    let root = engine.runtime.data_dir().root().join("sessions");
    let mut count = 0;
    if let Ok(entries) = fs::read_dir(&root) {
        for e in entries.flatten() {
            let id = e.file_name().to_string_lossy().into_owned();
            let record = super::read_record(&e.path()).unwrap_or_else(|| SessionRecord {
                id: id.clone(),
                // No record: the scopes follow the naming rule.
                scopes: engine
                    .runtime
                    .all_scopes()
                    .into_iter()
                    .filter(|s| s.starts_with(&format!("{id}-")))
                    .collect(),
            });
            let left = remove_session(engine, &e.path(), &record);
            if !left.is_empty() {
                tracing::warn!(session = %id, ?left, "sweep left things behind");
            }
            count += 1;
        }
    }
    let cg_root = cgroup::sessions_root(engine.runtime.data_dir().root());
    for id in cgroup::leftover_sessions(engine.runtime.cgroups(), &cg_root) {
        cgroup::remove_tree(
            engine.runtime.cgroups(),
            &cgroup::session_cgroup(&cg_root, &id),
        );
        engine.runtime.ids().release(&id);
    }
    if count > 0 {
        // Images only the swept sessions referenced (nothing else runs yet).
        engine.runtime.images().collect_garbage();
    }
    count
}
