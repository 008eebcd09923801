//! A session's disk budget: one number that everything the session stores
//! counts against, and what it uses now.
//!
//! What the session writes through its containers (writable layers,
//! volumes, logs, build scratch, spooled request bodies) is on its own
//! filesystem ([`super::disk`]), whose size is the budget: the kernel
//! refuses the write that would pass it. What it stores in shared places
//! is counted here and refused at the Engine API before it is stored
//! ([`crate::engine::quota`]): images and layers no other scope references
//! (built, committed, loaded, imported, pulled) and what it pushed into its
//! namespace of the classroom registry.

use std::collections::HashSet;
use std::fs;

use super::disk;
use crate::engine::Engine;
use crate::registry::storage::Storage;

/// A session's disk budget and its use, bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub limit: u64,
    pub used: u64,
}

impl Budget {
    /// Bytes the session may still store (a cap for a request body).
    pub fn left(&self) -> u64 {
        self.limit.saturating_sub(self.used)
    }

    /// Whether nothing more may be stored: less than 1 MiB is left (a
    /// full filesystem keeps a few blocks no file can use).
    pub fn reached(&self) -> bool {
        self.left() < 1 << 20
    }

    /// What the Engine API answers when the budget is reached.
    pub fn refusal(&self) -> String {
        format!(
            "session disk quota of {} MiB reached: docker system prune frees space",
            self.limit >> 20
        )
    }
}

impl Engine {
    /// The disk budget of the session `scope` belongs to; `None` for a scope
    /// without one (`berth daemon`). Blocking (walks the image store).
    pub fn disk_budget(&self, scope: &str) -> Option<Budget> {
        let root = self.runtime.scope_settings(scope)?.disk_root?;
        let session_dir = root.parent()?;
        let limit = fs::metadata(disk::image_path(session_dir)).ok()?.len();
        // What the filesystem cannot give any more counts as used, its
        // own metadata included: a full filesystem is a spent budget.
        let fs_used = limit.saturating_sub(disk::free(&root)?);
        let scopes = super::read_record(session_dir)
            .map(|r| r.scopes)
            .unwrap_or_else(|| vec![scope.to_string()]);
        let images = self.runtime.images().exclusive_bytes(&scopes);
        let registry = self
            .registry_settings()
            .scopes
            .get(scope)
            .map(|r| r.namespace.clone())
            .zip(self.classroom_registry.get())
            .map(|(ns, server)| namespace_bytes(server.storage(), &ns))
            .unwrap_or(0);
        Some(Budget {
            limit,
            used: fs_used + images + registry,
        })
    }
}

/// Bytes of the blobs linked into the repositories of registry namespace
/// `ns` (each blob once).
fn namespace_bytes(storage: &Storage, ns: &str) -> u64 {
    let mut blobs = HashSet::new();
    let mut stack = vec![storage.root().join("repos").join(ns)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            if !kind.is_dir() {
                continue;
            }
            if e.file_name() == "_layers" {
                for l in fs::read_dir(e.path()).into_iter().flatten().flatten() {
                    blobs.insert(l.file_name().to_string_lossy().into_owned());
                }
            } else {
                stack.push(e.path());
            }
        }
    }
    blobs.iter().filter_map(|b| storage.blob_size(b)).sum()
}
