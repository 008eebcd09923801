//! File helpers shared by both hierarchies; every error names its path.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::CgroupError;

/// Writes `value` to a control file. `fs::write` semantics (create,
/// truncate) are harmless on cgroupfs and let tests use a plain directory.
pub(super) fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(|source| CgroupError::Io {
        op: "writing",
        path: path.to_owned(),
        source,
    })
}

/// Reads a control file.
pub(super) fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(|source| CgroupError::Io {
        op: "reading",
        path: path.to_owned(),
        source,
    })
}

/// Reads a number from a single-value file; `max` (or a value at or above
/// 2^62, v1's "unlimited") reads as `None`.
pub(super) fn read_limit(path: &Path) -> Result<Option<u64>, CgroupError> {
    let text = read(path)?;
    let text = text.trim();
    if text == "max" {
        return Ok(None);
    }
    let n = parse_u64(path, text)?;
    Ok((n < 1 << 62).then_some(n))
}

/// Reads a number from a single-value file.
pub(super) fn read_u64(path: &Path) -> Result<u64, CgroupError> {
    parse_u64(path, read(path)?.trim())
}

fn parse_u64(path: &Path, text: &str) -> Result<u64, CgroupError> {
    text.parse().map_err(|_| CgroupError::Parse {
        path: path.to_owned(),
        text: text.to_owned(),
    })
}

/// The value of `key` in a flat keyed file (`key value` per line), as in
/// `memory.events`, `cpu.stat` or `memory.oom_control`.
pub(super) fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Reads a keyed file and returns `key`, or a parse error naming the file.
pub(super) fn read_keyed(path: &Path, key: &str) -> Result<u64, CgroupError> {
    let text = read(path)?;
    keyed(&text, key).ok_or_else(|| CgroupError::Parse {
        path: path.to_owned(),
        text: format!("no {key} in {text:?}"),
    })
}

/// The pids listed in a `cgroup.procs` file.
pub(super) fn read_pids(path: &Path) -> Result<Vec<i32>, CgroupError> {
    let text = read(path)?;
    text.split_whitespace()
        .map(|p| parse_u64(path, p).map(|n| n as i32))
        .collect()
}

/// Checks that a cgroup path is relative and stays below the root.
pub(super) fn check_relative(path: &str) -> Result<(), CgroupError> {
    let p = Path::new(path);
    let ok = !path.is_empty()
        && p.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(CgroupError::InvalidPath {
            path: path.to_owned(),
        })
    }
}

/// Creates `root/rel` and its missing parents; returns the directories it
/// made, outermost first, so a failure can remove exactly those.
pub(super) fn make_dirs(root: &Path, rel: &str) -> Result<Vec<PathBuf>, CgroupError> {
    let mut made = Vec::new();
    let mut dir = root.to_path_buf();
    for part in Path::new(rel).components() {
        dir.push(part);
        match std::fs::create_dir(&dir) {
            Ok(()) => made.push(dir.clone()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(source) => {
                remove_dirs(&made);
                return Err(CgroupError::Io {
                    op: "creating",
                    path: dir,
                    source,
                });
            }
        }
    }
    Ok(made)
}

/// Removes directories made by [`make_dirs`], innermost first, ignoring
/// errors: used to undo a half-made cgroup.
pub(super) fn remove_dirs(made: &[PathBuf]) {
    for dir in made.iter().rev() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// Removes a cgroup directory, retrying while the kernel still reports it
/// busy (a killed task can take a moment to leave).
pub(super) fn rmdir(dir: &Path) -> Result<(), CgroupError> {
    let mut last = None;
    let done = poll(Duration::from_secs(2), || match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            last = Some(e);
            false
        }
    });
    match (done, last) {
        (true, _) => Ok(()),
        (false, Some(source)) => Err(CgroupError::Io {
            op: "removing",
            path: dir.to_owned(),
            source,
        }),
        (false, None) => Ok(()),
    }
}

/// Calls `check` until it returns true or `timeout` passes.
pub(super) fn poll(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_micros(200);
    loop {
        if check() {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_files() {
        let events = "low 0\nhigh 0\nmax 3\noom 1\noom_kill 2\n";
        assert_eq!(keyed(events, "oom_kill"), Some(2));
        assert_eq!(keyed(events, "oom"), Some(1));
        assert_eq!(keyed(events, "missing"), None);
    }

    #[test]
    fn paths_must_stay_below_the_root() {
        assert!(check_relative("berth/s1/abc").is_ok());
        for bad in ["", "/abs", "a/../b", "./a", ".."] {
            assert!(check_relative(bad).is_err(), "{bad}");
        }
    }
}
