//! Image lineage and the build cache: which image each build step was made
//! on (Docker's `Parent`), and which step result a cache key names.
//!
//! Docker's classic builder keeps every step's image. Untagged images that
//! are the parent of another image are *intermediate*: `docker images` hides
//! them (`-a` shows them), `docker image prune` leaves them to their child,
//! and removing the child removes the untagged parents it alone held.

use super::store::{ImageStore, ScopeRefs};
use super::ImageError;

impl ScopeRefs {
    /// Whether some image of the scope was built on `id`.
    pub(crate) fn has_children(&self, id: &str) -> bool {
        self.parents
            .iter()
            .any(|(child, parent)| parent == id && self.images.contains(child))
    }

    /// Whether a reference names `id`.
    pub(crate) fn is_tagged(&self, id: &str) -> bool {
        self.tags.values().any(|v| v == id)
    }

    /// Forgets an image: its names, lineage and cache entries.
    pub(crate) fn forget(&mut self, id: &str) {
        self.images.remove(id);
        self.tags.retain(|_, v| v != id);
        self.last_tag.remove(id);
        self.parents.remove(id);
        self.build_cache.retain(|_, v| v != id);
    }

    /// After `id` was deleted: its untagged parents that nothing else needs
    /// (no other child, no container in `in_use`), nearest first.
    pub(crate) fn prune_parents(
        &mut self,
        parent: Option<String>,
        in_use: &[String],
    ) -> Vec<String> {
        let mut removed = Vec::new();
        let mut next = parent;
        while let Some(id) = next.take() {
            if !self.images.contains(&id)
                || self.is_tagged(&id)
                || self.has_children(&id)
                || in_use.contains(&id)
            {
                break;
            }
            next = self.parents.get(&id).cloned();
            self.forget(&id);
            removed.push(id);
        }
        removed
    }
}

impl ImageStore {
    /// The image a build step with cache `key` made earlier, if the scope
    /// still has it.
    pub fn cached_step(&self, scope: &str, key: &str) -> Option<String> {
        self.with_scope(scope, |refs| {
            Ok(refs
                .build_cache
                .get(key)
                .filter(|id| refs.images.contains(*id))
                .cloned())
        })
        .ok()
        .flatten()
    }

    /// `id` and the images it was built on, nearest first: the steps a
    /// build's `--cache-from` may reuse. Bounded, whatever the lineage holds.
    pub fn lineage(&self, scope: &str, id: &str) -> Vec<String> {
        self.with_scope(scope, |refs| {
            let mut out = vec![id.to_string()];
            let mut seen: std::collections::HashSet<&str> = std::collections::HashSet::new();
            let mut next = refs.parents.get(id);
            while let Some(p) = next {
                if out.len() >= 4096 || !seen.insert(p.as_str()) {
                    break;
                }
                out.push(p.clone());
                next = refs.parents.get(p);
            }
            Ok(out)
        })
        .unwrap_or_default()
    }

    /// Adds image `id` (whose config blob is stored) to `scope`, untagged,
    /// built on `parent`, and remembers it as the result of the build step
    /// with cache `key`.
    pub fn adopt_step(
        &self,
        scope: &str,
        id: &str,
        parent: Option<&str>,
        key: Option<&str>,
    ) -> Result<(), ImageError> {
        self.with_scope(scope, |refs| {
            refs.images.insert(id.to_string());
            if let Some(p) = parent.filter(|p| *p != id) {
                refs.parents.insert(id.to_string(), p.to_string());
            }
            if let Some(k) = key {
                refs.build_cache.insert(k.to_string(), id.to_string());
            }
            Ok(())
        })
    }

    /// Stores an image config blob; returns the image ID.
    pub fn put_config(&self, config: &serde_json::Value) -> Result<String, ImageError> {
        let bytes = serde_json::to_vec(config).map_err(|e| ImageError::Invalid(e.to_string()))?;
        super::store::parse_config(&bytes)?;
        self.put_blob(&bytes)
    }

    /// Deletes images a failed or interrupted build made that nothing names
    /// or builds on (their cache entries go with them).
    pub fn discard_steps(&self, scope: &str, ids: &[String]) -> Result<(), ImageError> {
        self.with_scope(scope, |refs| {
            for id in ids.iter().rev() {
                if !refs.is_tagged(id) && !refs.has_children(id) {
                    refs.forget(id);
                }
            }
            Ok(())
        })?;
        self.collect_garbage();
        Ok(())
    }
}
