//! What a set of scopes costs the shared store: the bytes of the images and
//! layers that they alone reference (a session's disk budget counts them;
//! content another scope also uses is the classroom's, not theirs).

use std::collections::HashSet;
use std::fs;

use super::store::parse_config;
use super::ImageStore;

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

impl ImageStore {
    /// Every scope that has references on disk.
    fn scopes_on_disk(&self) -> Vec<String> {
        fs::read_dir(self.root_dir().join("scopes"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.strip_suffix(".json").map(String::from)
            })
            .collect()
    }

    /// Image IDs `scope` owns.
    fn images_of(&self, scope: &str) -> HashSet<String> {
        self.with_scope(scope, |r| Ok(r.images.iter().cloned().collect()))
            .unwrap_or_default()
    }

    /// The blobs (hex digests) of `images`: configs and uncompressed layers.
    fn blobs_of(&self, images: &HashSet<String>) -> HashSet<String> {
        let mut out = HashSet::new();
        for id in images {
            out.insert(hex_of(id).to_string());
            let Ok(bytes) = self
                .blob_path(id)
                .and_then(|p| fs::read(p).map_err(super::ImageError::io("read config")))
            else {
                continue;
            };
            if let Ok((config, _)) = parse_config(&bytes) {
                out.extend(
                    config
                        .rootfs()
                        .diff_ids()
                        .iter()
                        .map(|d| hex_of(d).to_string()),
                );
            }
        }
        out
    }

    /// Bytes of the images and layers that `scopes` reference and no other
    /// scope does: each such layer counts its tar, its unpacked tree (about
    /// as large) and its compressed copy when one was made for a push.
    pub fn exclusive_bytes(&self, scopes: &[String]) -> u64 {
        let mut mine = HashSet::new();
        for s in scopes {
            mine.extend(self.images_of(s));
        }
        if mine.is_empty() {
            return 0;
        }
        let mut theirs = HashSet::new();
        for s in self.scopes_on_disk() {
            if !scopes.contains(&s) {
                theirs.extend(self.images_of(&s));
            }
        }
        let shared = self.blobs_of(&theirs);
        let mut total = 0;
        for blob in self.blobs_of(&mine).difference(&shared) {
            let Ok(meta) = self
                .blob_path(&format!("sha256:{blob}"))
                .and_then(|p| fs::metadata(p).map_err(super::ImageError::io("stat blob")))
            else {
                continue;
            };
            total += meta.len();
            let diff_id = format!("sha256:{blob}");
            if self.layer_dir(&diff_id).is_ok_and(|d| d.is_dir()) {
                total += meta.len();
            }
            if let Some(c) = self.cached_compressed(&diff_id) {
                total += fs::metadata(&c.path).map(|m| m.len()).unwrap_or(0);
            }
        }
        total
    }
}
