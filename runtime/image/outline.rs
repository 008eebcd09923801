//! A scope's images in outline, for pictures of them (the lab map): which
//! images it names and what they are built of, without reading any layer.
//!
//! `docker images` parses every config to list a scope; a picture redrawn
//! after each change of a lab wants less: the names (from the scope's
//! references, in memory) and, per image, its layers and their sizes. An
//! image's layers never change (its ID is its config's digest), so callers
//! may keep [`ImageStore::layer_outline`]'s answer for as long as they like.

use super::{ImageError, ImageStore};

/// One image a scope owns: its ID, its names, the image it was built on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeImage {
    pub id: String,
    /// Familiar references (`busybox:latest`), digests left out.
    pub tags: Vec<String>,
    /// The image it was built or committed on, as the scope recorded it.
    pub parent: Option<String>,
    /// Untagged and the parent of another: `docker images` hides it.
    pub intermediate: bool,
}

/// One layer of an image: its diff ID and its size in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerOutline {
    pub diff_id: String,
    pub size: u64,
}

impl ImageStore {
    /// The images `scope` owns, tagged or not, sorted by ID.
    pub fn scope_images(&self, scope: &str) -> Result<Vec<ScopeImage>, ImageError> {
        self.with_scope(scope, |refs| {
            Ok(refs
                .images
                .iter()
                .map(|id| ScopeImage {
                    id: id.clone(),
                    tags: refs
                        .tags
                        .iter()
                        .filter(|(name, v)| *v == id && !name.contains('@'))
                        .map(|(name, _)| name.clone())
                        .collect(),
                    parent: refs.parents.get(id).cloned(),
                    intermediate: !refs.is_tagged(id) && refs.has_children(id),
                })
                .collect())
        })
    }

    /// The layers of image `id`, bottom first, with their sizes.
    pub fn layer_outline(&self, id: &str) -> Result<Vec<LayerOutline>, ImageError> {
        let bytes = self.config_bytes(id)?;
        let (config, _) = super::store::parse_config(&bytes)?;
        Ok(config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| LayerOutline {
                diff_id: d.clone(),
                size: self.blob_size(d),
            })
            .collect())
    }
}
