//! A session's cgroup subtree: `berth/sessions/<session>` carries the
//! session's limits (memory, pids, CPU); each node's containers (its lab and
//! everything its scope starts) sit below it, so the limits bound them all.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::container::cgroup::{Cgroup, CgroupError, Hierarchy, Limits};

/// The parent of every session's cgroup, relative to the hierarchy root.
pub const SESSIONS_CGROUP: &str = "berth/sessions";

/// A session's cgroup path.
pub fn session_cgroup(session: &str) -> String {
    format!("{SESSIONS_CGROUP}/{session}")
}

/// A node's cgroup path: the parent of its containers' cgroups.
pub fn node_cgroup(session: &str, node: &str) -> String {
    format!("{SESSIONS_CGROUP}/{session}/{node}")
}

/// Creates the session's cgroup with its limits.
pub fn create(h: &Hierarchy, session: &str, limits: &Limits) -> Result<(), CgroupError> {
    Cgroup::create(h, &session_cgroup(session), limits).map(|_| ())
}

/// The directories of `path` in every hierarchy that has it.
pub fn dirs(h: &Hierarchy, path: &str) -> Vec<PathBuf> {
    match h {
        Hierarchy::V2 { root } => vec![root.join(path)],
        Hierarchy::V1 { root } => fs::read_dir(root)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| e.path().join(path))
                    .filter(|p| p.is_dir())
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Kills every process below `path` and removes its directories, deepest
/// first, in every hierarchy. What could not be removed is returned.
pub fn remove_tree(h: &Hierarchy, path: &str) -> Vec<PathBuf> {
    let mut left = Vec::new();
    for dir in dirs(h, path) {
        remove_dir_tree(&dir, &mut left);
    }
    left
}

fn remove_dir_tree(dir: &Path, left: &mut Vec<PathBuf>) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_dir_tree(&e.path(), left);
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        match fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => {
                left.push(dir.to_path_buf());
                return;
            }
        }
    }
}

/// The sessions that have a cgroup (in any hierarchy), for the sweep.
pub fn leftover_sessions(h: &Hierarchy) -> Vec<String> {
    let mut names: Vec<String> = dirs(h, SESSIONS_CGROUP)
        .into_iter()
        .flat_map(|d| fs::read_dir(d).into_iter().flatten().flatten())
        .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_nest_nodes_under_their_session() {
        assert_eq!(session_cgroup("ab12"), "berth/sessions/ab12");
        assert!(node_cgroup("ab12", "node1").starts_with(&session_cgroup("ab12")));
    }

    #[test]
    fn remove_tree_removes_nested_plain_directories() {
        let root = tempfile::tempdir().unwrap();
        let h = Hierarchy::V2 {
            root: root.path().to_path_buf(),
        };
        fs::create_dir_all(root.path().join("berth/sessions/s1/node1/c1")).unwrap();
        assert_eq!(leftover_sessions(&h), vec!["s1".to_string()]);
        assert!(remove_tree(&h, &session_cgroup("s1")).is_empty());
        assert!(!root.path().join("berth/sessions/s1").exists());
        assert!(leftover_sessions(&h).is_empty());
    }
}
