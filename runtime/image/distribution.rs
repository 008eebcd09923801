//! What pushing and pulling need from the store: layers as gzip blobs (made
//! on first push and cached by diff ID), pulled layers verified and
//! unpacked, pulled images recorded with their `RepoDigests`.
//!
//! The store keeps layers uncompressed (their digest is the diff ID); a
//! registry wants them compressed. `compressed/<diff hex>` remembers which
//! gzip blob stands for a layer, so a second push sends the same bytes (and
//! the registry says it has them) and a pulled layer pushes back unchanged.

use std::collections::HashSet;
use std::fs;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::digest;
use super::layer::HashingWriter;
use super::reference::Reference;
use super::store::parse_config;
use super::{ImageError, ImageStore};

/// A layer as a registry stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressedLayer {
    /// `sha256:` of the gzip bytes.
    pub digest: String,
    pub size: u64,
    /// Repositories known to hold the blob (`host:port/repo`), for
    /// cross-repository mounts instead of uploads.
    #[serde(default)]
    pub sources: Vec<String>,
    /// Where the gzip bytes are.
    #[serde(skip)]
    pub path: PathBuf,
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

impl ImageStore {
    fn compressed_record(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        let hex = digest::checked("diff_id", diff_id)?;
        Ok(self.root_dir().join("compressed").join(hex))
    }

    /// The cached gzip blob of a layer, if there is one.
    pub fn cached_compressed(&self, diff_id: &str) -> Option<CompressedLayer> {
        let bytes = fs::read(self.compressed_record(diff_id).ok()?).ok()?;
        let mut layer: CompressedLayer = serde_json::from_slice(&bytes).ok()?;
        layer.path = self.blob_path(&layer.digest).ok()?;
        layer.path.exists().then_some(layer)
    }

    fn remember_compressed(
        &self,
        diff_id: &str,
        layer: &CompressedLayer,
    ) -> Result<(), ImageError> {
        let record = self.compressed_record(diff_id)?;
        let dir = self.root_dir().join("compressed");
        fs::create_dir_all(&dir).map_err(ImageError::io("create compressed"))?;
        let tmp = self.tmp_path();
        fs::write(&tmp, serde_json::to_vec(layer).unwrap_or_default())
            .and_then(|_| fs::rename(&tmp, &record))
            .map_err(ImageError::io("record compressed layer"))
    }

    /// A layer's gzip blob for pushing, compressed the first time.
    pub fn compressed_layer(&self, diff_id: &str) -> Result<CompressedLayer, ImageError> {
        if let Some(c) = self.cached_compressed(diff_id) {
            return Ok(c);
        }
        let source = fs::File::open(self.blob_path(diff_id)?)
            .map_err(ImageError::io(format!("layer {diff_id} is missing")))?;
        let tmp = self.tmp_path();
        let out = fs::File::create(&tmp).map_err(ImageError::io("create compressed layer"))?;
        let hashing = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, out));
        // Fast compression: a classroom pushes over loopback, where CPU, not
        // bandwidth, is the limit.
        let mut gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::fast());
        let done = std::io::copy(&mut BufReader::with_capacity(1 << 20, source), &mut gz)
            .and_then(|_| gz.finish())
            .and_then(|mut h| h.flush().map(|_| h));
        let hashing = match done {
            Ok(h) => h,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(ImageError::io("compress layer")(e));
            }
        };
        let (digest, size) = hashing.finish();
        let path = self.blob_path(&digest)?;
        fs::rename(&tmp, &path).map_err(ImageError::io("store compressed layer"))?;
        let layer = CompressedLayer {
            digest,
            size,
            sources: Vec::new(),
            path,
        };
        self.remember_compressed(diff_id, &layer)?;
        Ok(layer)
    }

    /// Remembers that `source` (`host:port/repo`) holds a layer's gzip blob.
    pub fn add_layer_source(&self, diff_id: &str, source: &str) -> Result<(), ImageError> {
        let Some(mut layer) = self.cached_compressed(diff_id) else {
            return Ok(());
        };
        if !layer.sources.iter().any(|s| s == source) {
            layer.sources.push(source.to_string());
            // A few recent sources are enough to find one to mount from.
            if layer.sources.len() > 8 {
                layer.sources.remove(0);
            }
            self.remember_compressed(diff_id, &layer)?;
        }
        Ok(())
    }

    /// Whether a layer is in the store (unpacked or as a blob); never for a
    /// malformed diff ID.
    pub fn has_layer(&self, diff_id: &str) -> bool {
        self.layer_dir(diff_id).is_ok_and(|d| d.exists()) || self.has_blob(diff_id)
    }

    /// A fresh path in the store's temporary directory (same filesystem).
    pub fn download_path(&self) -> PathBuf {
        self.tmp_path()
    }

    /// Stores a downloaded layer blob: decompresses it (gzip or plain tar),
    /// checks it against `diff_id`, unpacks it, and keeps the compressed
    /// bytes for pushing it back.
    pub fn add_pulled_layer(
        &self,
        download: &Path,
        digest: &str,
        diff_id: &str,
        source: &str,
    ) -> Result<(), ImageError> {
        // Both IDs come from a registry the learner may run; they name paths.
        let checked = digest::checked("digest", digest)
            .and_then(|_| digest::checked("diff_id", diff_id).map(|_| ()));
        if let Err(e) = checked {
            let _ = fs::remove_file(download);
            return Err(e);
        }
        let file = fs::File::open(download).map_err(ImageError::io("open download"))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let gzip = {
            use std::io::BufRead;
            let head = reader.fill_buf().map_err(ImageError::io("read layer"))?;
            head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b
        };
        let stored = if gzip {
            self.put_blob_from(flate2::read::GzDecoder::new(reader), Some(diff_id))
        } else {
            self.put_blob_from(reader, Some(diff_id))
        };
        if let Err(e) = stored {
            let _ = fs::remove_file(download);
            return Err(match e {
                ImageError::Invalid(_) => ImageError::Invalid(format!(
                    "filesystem layer verification failed for digest {digest}"
                )),
                other => other,
            });
        }
        if gzip {
            let size = fs::metadata(download).map(|m| m.len()).unwrap_or(0);
            let path = self.blob_path(digest)?;
            fs::rename(download, &path).map_err(ImageError::io("store compressed layer"))?;
            self.remember_compressed(
                diff_id,
                &CompressedLayer {
                    digest: digest.to_string(),
                    size,
                    sources: vec![source.to_string()],
                    path,
                },
            )?;
        } else {
            let _ = fs::remove_file(download);
        }
        self.ensure_layer(diff_id)?;
        Ok(())
    }

    /// Records a pulled image in `scope` under `names` (familiar references,
    /// `repo:tag` and `repo@digest`). Returns its ID and whether every name
    /// already pointed at it ("Image is up to date").
    pub fn add_pulled_image(
        &self,
        scope: &str,
        config: &[u8],
        names: &[String],
    ) -> Result<(String, bool), ImageError> {
        parse_config(config)?;
        let id = self.put_blob(config)?;
        let up_to_date = self.with_scope(scope, |refs| {
            let same = names.iter().all(|n| refs.tags.get(n) == Some(&id));
            refs.images.insert(id.clone());
            for n in names {
                refs.tags.insert(n.clone(), id.clone());
            }
            if !same {
                refs.last_tag
                    .insert(id.clone(), crate::container::state::now_rfc3339());
            }
            Ok(same)
        })?;
        Ok((id, up_to_date))
    }

    /// Adds `repo@digest` to an image's names (after a push).
    pub fn add_repo_digest(
        &self,
        scope: &str,
        repo_digest: &str,
        id: &str,
    ) -> Result<(), ImageError> {
        self.with_scope(scope, |refs| {
            refs.tags.insert(repo_digest.to_string(), id.to_string());
            Ok(())
        })
    }

    /// An image's config blob as stored (its digest is the image ID).
    pub fn config_bytes(&self, id: &str) -> Result<Vec<u8>, ImageError> {
        fs::read(self.blob_path(id)?).map_err(|_| ImageError::NotFound(id.to_string()))
    }

    /// The tags of repository `repo` (familiar) in `scope`: `(tag, image ID)`.
    pub fn repo_tags(&self, scope: &str, repo: &str) -> Result<Vec<(String, String)>, ImageError> {
        self.with_scope(scope, |refs| {
            Ok(refs
                .tags
                .iter()
                .filter(|(name, _)| !name.contains('@'))
                .filter_map(|(name, id)| {
                    let r = Reference::parse(name).ok()?;
                    (r.familiar_repo() == repo).then(|| (r.tag.unwrap_or_default(), id.clone()))
                })
                .collect())
        })
    }

    /// The compressed blobs standing for `live` layers (hex digests), and
    /// records of dead layers removed.
    pub(crate) fn compressed_blobs_of(&self, live: &HashSet<String>) -> Vec<String> {
        let mut out = Vec::new();
        let Ok(entries) = fs::read_dir(self.root_dir().join("compressed")) else {
            return out;
        };
        for e in entries.flatten() {
            let diff = e.file_name().to_string_lossy().into_owned();
            if live.contains(&diff) {
                if let Some(c) = self.cached_compressed(&diff) {
                    out.push(hex_of(&c.digest).to_string());
                }
            } else {
                let _ = fs::remove_file(e.path());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_layer_compresses_once_and_pulls_back_to_the_same_diff_id() {
        let dir = tempfile::tempdir().unwrap();
        let store = ImageStore::open(dir.path()).unwrap();
        let mut tar = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, "hello.txt", &b"hello"[..]).unwrap();
        let bytes = tar.into_inner().unwrap();
        let diff_id = store.add_layer(&bytes[..]).unwrap();
        let first = store.compressed_layer(&diff_id).unwrap();
        assert_eq!(store.compressed_layer(&diff_id).unwrap(), first);

        let other = tempfile::tempdir().unwrap();
        let fresh = ImageStore::open(other.path()).unwrap();
        let download = fresh.download_path();
        fs::copy(&first.path, &download).unwrap();
        fresh
            .add_pulled_layer(&download, &first.digest, &diff_id, "127.0.0.1:5000/r/x")
            .unwrap();
        assert!(fresh
            .layer_dir(&diff_id)
            .unwrap()
            .join("hello.txt")
            .exists());
        assert_eq!(
            fresh.cached_compressed(&diff_id).unwrap().digest,
            first.digest
        );

        let download = fresh.download_path();
        fs::copy(&first.path, &download).unwrap();
        let wrong = format!("sha256:{}", "1".repeat(64));
        let e = fresh
            .add_pulled_layer(&download, &first.digest, &wrong, "r/x")
            .unwrap_err();
        assert!(
            e.to_string()
                .starts_with("filesystem layer verification failed"),
            "{e}"
        );
    }
}
