//! A session's cgroup subtree: `berth/classroom-<hash>/<session>` carries
//! the session's limits (memory, pids, CPU); each node's containers (its lab
//! and everything its scope starts) sit below it, so the limits bound them
//! all. `<hash>` names the data directory, so two classrooms on one host
//! (and the sweep of one) never touch each other's sessions.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::container::cgroup::{Cgroup, CgroupError, Hierarchy, Limits};

/// The parent of every session's cgroup of the classroom whose data
/// directory is `data`, relative to the hierarchy root.
pub fn sessions_root(data: &Path) -> String {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(data.as_os_str().as_encoded_bytes());
    format!("berth/classroom-{}", &hex::encode(digest)[..12])
}

/// A session's cgroup path.
pub fn session_cgroup(root: &str, session: &str) -> String {
    format!("{root}/{session}")
}

/// A node's cgroup path: the parent of its containers' cgroups.
pub fn node_cgroup(root: &str, session: &str, node: &str) -> String {
    format!("{root}/{session}/{node}")
}

/// Creates the session's cgroup with its limits.
pub fn create(
    h: &Hierarchy,
    root: &str,
    session: &str,
    limits: &Limits,
) -> Result<(), CgroupError> {
    Cgroup::create(h, &session_cgroup(root, session), limits).map(|_| ())
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

/// The sessions below `root` that have a cgroup (in any hierarchy).
pub fn leftover_sessions(h: &Hierarchy, root: &str) -> Vec<String> {
    let mut names: Vec<String> = dirs(h, root)
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
        let root = sessions_root(Path::new("/var/lib/berth"));
        assert!(root.starts_with("berth/classroom-"));
        assert_ne!(root, sessions_root(Path::new("/tmp/other")));
        assert_eq!(session_cgroup(&root, "ab12"), format!("{root}/ab12"));
        assert!(node_cgroup(&root, "ab12", "node1").starts_with(&session_cgroup(&root, "ab12")));
    }

    #[test]
    fn remove_tree_removes_nested_plain_directories() {
        let root = tempfile::tempdir().unwrap();
        let h = Hierarchy::V2 {
            root: root.path().to_path_buf(),
        };
        let r = "berth/classroom-x";
        fs::create_dir_all(root.path().join(r).join("s1/node1/c1")).unwrap();
        assert_eq!(leftover_sessions(&h, r), vec!["s1".to_string()]);
        assert!(remove_tree(&h, &session_cgroup(r, "s1")).is_empty());
        assert!(!root.path().join(r).join("s1").exists());
        assert!(leftover_sessions(&h, r).is_empty());
    }
}
