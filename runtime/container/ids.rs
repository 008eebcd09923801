//! Host uid/gid ranges for user namespaces: one range per scope, so two
//! sessions' containers never share a host uid. Persisted in the data dir.

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;

use super::spec::IdRange;
use super::ContainerError;

/// First host id handed out: above the ranges distributions give users in
/// /etc/subuid (100000 + 65536·n for the first few thousand users).
pub const FIRST_BASE: u32 = 1 << 30;
/// Ids per range: a full 16-bit space, like Docker's userns-remap default.
pub const RANGE_SIZE: u32 = 65536;

/// Hands out and remembers one [`IdRange`] per scope.
#[derive(Debug)]
pub struct IdAllocator {
    file: PathBuf,
    ranges: Mutex<BTreeMap<String, u32>>,
}

impl IdAllocator {
    /// Loads the allocations kept in `file` (missing: none yet).
    pub fn open(file: PathBuf) -> Result<Self, ContainerError> {
        let ranges = match fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ContainerError::Io {
                context: format!("read {}", file.display()),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(ContainerError::Io {
                    context: format!("read {}", file.display()),
                    source,
                })
            }
        };
        Ok(Self {
            file,
            ranges: Mutex::new(ranges),
        })
    }

    /// The range of `scope`, allocating the lowest free one on first use.
    pub fn range(&self, scope: &str) -> Result<IdRange, ContainerError> {
        let mut ranges = self.ranges.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(base) = ranges.get(scope) {
            return Ok(IdRange {
                base: *base,
                size: RANGE_SIZE,
            });
        }
        let used: std::collections::BTreeSet<u32> = ranges.values().copied().collect();
        let base = (0u32..)
            .map(|n| FIRST_BASE + n * RANGE_SIZE)
            .find(|b| !used.contains(b))
            .expect("id space is far larger than any number of scopes");
        ranges.insert(scope.to_string(), base);
        let tmp = self.file.with_extension("tmp");
        let write = fs::write(&tmp, serde_json::to_vec(&*ranges).unwrap_or_default())
            .and_then(|_| fs::rename(&tmp, &self.file));
        if let Err(source) = write {
            ranges.remove(scope);
            return Err(ContainerError::Io {
                context: format!("write {}", self.file.display()),
                source,
            });
        }
        Ok(IdRange {
            base,
            size: RANGE_SIZE,
        })
    }

    /// Gives `scope`'s range back (when a session ends).
    pub fn release(&self, scope: &str) {
        let mut ranges = self.ranges.lock().unwrap_or_else(|p| p.into_inner());
        if ranges.remove(scope).is_some() {
            let _ = fs::write(&self.file, serde_json::to_vec(&*ranges).unwrap_or_default());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_get_distinct_ranges_that_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("ids.json");
        let ids = IdAllocator::open(file.clone()).unwrap();
        let a = ids.range("a").unwrap();
        let b = ids.range("b").unwrap();
        assert_ne!(a.base, b.base);
        assert!(a.base.abs_diff(b.base) >= RANGE_SIZE);
        assert_eq!(ids.range("a").unwrap(), a);
        let reopened = IdAllocator::open(file).unwrap();
        assert_eq!(reopened.range("b").unwrap(), b);
        reopened.release("a");
        assert_eq!(
            reopened.range("c").unwrap().base,
            a.base,
            "released range is reused"
        );
    }
}
