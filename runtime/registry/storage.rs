//! The registry's storage: content-addressed blobs shared by all
//! repositories, and per-repository links, manifests and tags.
//!
//! Layout under the root (`<data>/registry`):
//! - `blobs/sha256/<hex>`: blob and manifest content;
//! - `uploads/<uuid>`: uploads in progress (never visible as blobs);
//! - `repos/<name>/_layers/<hex>`: the blob belongs to the repository;
//! - `repos/<name>/_manifests/<hex>`: a manifest of the repository (the file
//!   holds its media type);
//! - `repos/<name>/_tags/<tag>`: the manifest digest a tag points to.
//!
//! Every file becomes visible by `rename` of a finished temporary file, so a
//! reader never sees anything half-written. Names of the form `_x` cannot
//! collide with repository path components, which never start with `_`.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use super::RegistryError as E;

/// A manifest as stored: content, media type and digest.
pub struct StoredManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

/// An upload in progress: how much is written and the running hash.
struct Upload {
    size: u64,
    hash: Sha256,
}

/// The storage of one registry.
pub struct Storage {
    root: PathBuf,
    uploads: Mutex<HashMap<String, Upload>>,
}

pub(crate) fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// A `sha256:<64 lowercase hex>` digest, or `None`.
pub fn parse_digest(text: &str) -> Option<&str> {
    let hex = text.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
    .then_some(text)
}

/// Repository names as the distribution spec allows them:
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`.
pub fn valid_name(name: &str) -> bool {
    name.len() <= 255
        && !name.is_empty()
        && name.split('/').all(|c| {
            let b = c.as_bytes();
            if b.is_empty()
                || !b[0].is_ascii_alphanumeric()
                || !b[b.len() - 1].is_ascii_alphanumeric()
            {
                return false;
            }
            if b.iter().any(|x| x.is_ascii_uppercase()) {
                return false;
            }
            let mut i = 0;
            while i < b.len() {
                if b[i].is_ascii_alphanumeric() {
                    i += 1;
                    continue;
                }
                let start = i;
                while i < b.len() && matches!(b[i], b'.' | b'_' | b'-') {
                    i += 1;
                }
                let sep = &c[start..i];
                if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
                    return false;
                }
            }
            true
        })
}

/// Tags: `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

fn io_err(context: impl Into<String>) -> impl FnOnce(io::Error) -> E {
    let context = context.into();
    move |source| E::Io { context, source }
}

impl Storage {
    /// Opens (creating) the storage at `root`.
    pub fn open(root: &Path) -> Result<Self, E> {
        for sub in ["blobs/sha256", "uploads", "repos", "tmp"] {
            fs::create_dir_all(root.join(sub))
                .map_err(io_err(format!("create {}", root.join(sub).display())))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            uploads: Mutex::new(HashMap::new()),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn uploads(&self) -> std::sync::MutexGuard<'_, HashMap<String, Upload>> {
        self.uploads.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where a blob's content lives.
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(hex_of(digest))
    }

    fn repo_dir(&self, name: &str) -> PathBuf {
        self.root.join("repos").join(name)
    }

    fn tmp_path(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(crate::container::names::new_id())
    }

    /// Writes `bytes` to `path` through a temporary file and a rename.
    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), E> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(io_err(format!("create {}", parent.display())))?;
        }
        let tmp = self.tmp_path();
        fs::write(&tmp, bytes)
            .and_then(|_| fs::rename(&tmp, path))
            .map_err(|e| {
                let _ = fs::remove_file(&tmp);
                E::Io {
                    context: format!("write {}", path.display()),
                    source: e,
                }
            })
    }

    /// Whether the repository has any manifest or tag.
    pub fn repo_exists(&self, name: &str) -> bool {
        self.repo_dir(name).join("_manifests").is_dir()
    }

    /// The size of a blob linked to `name`, if it is.
    pub fn blob_in_repo(&self, name: &str, digest: &str) -> Option<u64> {
        if !self
            .repo_dir(name)
            .join("_layers")
            .join(hex_of(digest))
            .exists()
        {
            return None;
        }
        fs::metadata(self.blob_path(digest)).ok().map(|m| m.len())
    }

    /// Whether the blob exists at all (in any repository).
    pub fn blob_size(&self, digest: &str) -> Option<u64> {
        fs::metadata(self.blob_path(digest)).ok().map(|m| m.len())
    }

    /// Links an existing blob into `name`.
    pub fn link_blob(&self, name: &str, digest: &str) -> Result<(), E> {
        let link = self.repo_dir(name).join("_layers").join(hex_of(digest));
        if link.exists() {
            return Ok(());
        }
        self.write_atomic(&link, b"")
    }

    /// Unlinks a blob from `name` (the content stays for other repositories).
    pub fn unlink_blob(&self, name: &str, digest: &str) -> Result<(), E> {
        let link = self.repo_dir(name).join("_layers").join(hex_of(digest));
        fs::remove_file(&link).map_err(|_| E::BlobUnknown(digest.to_string()))
    }

    /// Starts an upload; returns its ID.
    pub fn start_upload(&self) -> Result<String, E> {
        let id = crate::container::names::new_id();
        fs::File::create(self.root.join("uploads").join(&id)).map_err(io_err("create upload"))?;
        self.uploads().insert(
            id.clone(),
            Upload {
                size: 0,
                hash: Sha256::new(),
            },
        );
        Ok(id)
    }

    /// The file an upload is written to, if the upload exists.
    pub fn upload_path(&self, id: &str) -> Option<PathBuf> {
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let path = self.root.join("uploads").join(id);
        path.exists().then_some(path)
    }

    /// Bytes written to an upload so far.
    pub fn upload_size(&self, id: &str) -> Option<u64> {
        let path = self.upload_path(id)?;
        if let Some(u) = self.uploads().get(id) {
            return Some(u.size);
        }
        fs::metadata(path).ok().map(|m| m.len())
    }

    /// Records that `chunk` was appended to upload `id`.
    pub fn upload_appended(&self, id: &str, chunk: &[u8]) {
        let mut uploads = self.uploads();
        if let Some(u) = uploads.get_mut(id) {
            u.size += chunk.len() as u64;
            u.hash.update(chunk);
        }
    }

    /// Forgets the running hash of an upload whose file went out of step
    /// with it (an interrupted write); the hash is recomputed at the end.
    pub fn upload_desynced(&self, id: &str) {
        self.uploads().remove(id);
    }

    /// Cancels an upload.
    pub fn cancel_upload(&self, id: &str) -> Result<(), E> {
        let path = self
            .upload_path(id)
            .ok_or_else(|| E::UploadUnknown(id.to_string()))?;
        self.uploads().remove(id);
        let _ = fs::remove_file(path);
        Ok(())
    }

    /// Finishes upload `id`: its content must hash to `expected`; then it
    /// becomes the blob and is linked into `name`. Returns the size.
    pub fn finish_upload(&self, name: &str, id: &str, expected: &str) -> Result<u64, E> {
        let path = self
            .upload_path(id)
            .ok_or_else(|| E::UploadUnknown(id.to_string()))?;
        let running = self.uploads().remove(id);
        let (digest, size) = match running {
            Some(u) => (format!("sha256:{}", hex::encode(u.hash.finalize())), u.size),
            None => hash_file(&path).map_err(io_err("hash upload"))?,
        };
        if digest != expected {
            let _ = fs::remove_file(&path);
            return Err(E::DigestInvalid(format!(
                "digest {expected} does not match content {digest}"
            )));
        }
        let blob = self.blob_path(&digest);
        if blob.exists() {
            let _ = fs::remove_file(&path);
        } else {
            fs::rename(&path, &blob).map_err(io_err("store blob"))?;
        }
        self.link_blob(name, &digest)?;
        Ok(size)
    }

    /// Resolves a tag or digest of `name` to its manifest.
    pub fn manifest(&self, name: &str, reference: &str) -> Result<StoredManifest, E> {
        let dir = self.repo_dir(name);
        let digest = if parse_digest(reference).is_some() {
            reference.to_string()
        } else {
            if !valid_tag(reference) {
                return Err(E::TagInvalid(reference.to_string()));
            }
            fs::read_to_string(dir.join("_tags").join(reference))
                .map_err(|_| self.manifest_unknown(name, reference))?
        };
        let media_type = fs::read_to_string(dir.join("_manifests").join(hex_of(&digest)))
            .map_err(|_| self.manifest_unknown(name, reference))?;
        let bytes = fs::read(self.blob_path(&digest))
            .map_err(|_| self.manifest_unknown(name, reference))?;
        Ok(StoredManifest {
            bytes,
            media_type,
            digest,
        })
    }

    fn manifest_unknown(&self, name: &str, reference: &str) -> E {
        if self.repo_exists(name) {
            E::ManifestUnknown(reference.to_string())
        } else {
            E::NameUnknown(name.to_string())
        }
    }

    /// Stores a manifest (its blobs must already be checked) and points
    /// `tag` at it when given.
    pub fn put_manifest(
        &self,
        name: &str,
        bytes: &[u8],
        media_type: &str,
        tag: Option<&str>,
    ) -> Result<String, E> {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        let blob = self.blob_path(&digest);
        if !blob.exists() {
            self.write_atomic(&blob, bytes)?;
        }
        let dir = self.repo_dir(name);
        self.write_atomic(
            &dir.join("_manifests").join(hex_of(&digest)),
            media_type.as_bytes(),
        )?;
        if let Some(tag) = tag {
            self.write_atomic(&dir.join("_tags").join(tag), digest.as_bytes())?;
        }
        Ok(digest)
    }

    /// Deletes a manifest by digest (and every tag naming it), or one tag.
    pub fn delete_manifest(&self, name: &str, reference: &str) -> Result<(), E> {
        let dir = self.repo_dir(name);
        if parse_digest(reference).is_none() {
            let tag = dir.join("_tags").join(reference);
            return fs::remove_file(tag).map_err(|_| self.manifest_unknown(name, reference));
        }
        fs::remove_file(dir.join("_manifests").join(hex_of(reference)))
            .map_err(|_| self.manifest_unknown(name, reference))?;
        for tag in self.tags(name) {
            let path = dir.join("_tags").join(&tag);
            if fs::read_to_string(&path).is_ok_and(|d| d == reference) {
                let _ = fs::remove_file(path);
            }
        }
        Ok(())
    }

    /// The tags of `name`, sorted.
    pub fn tags(&self, name: &str) -> Vec<String> {
        let mut tags: Vec<String> = fs::read_dir(self.repo_dir(name).join("_tags"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        tags.sort();
        tags
    }

    /// Every repository, sorted.
    pub fn repositories(&self) -> Vec<String> {
        fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
            let Ok(entries) = fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('_') || !e.path().is_dir() {
                    continue;
                }
                let full = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}/{name}")
                };
                if e.path().join("_manifests").is_dir() {
                    out.push(full.clone());
                }
                walk(&e.path(), &full, out);
            }
        }
        let mut out = Vec::new();
        walk(&self.root.join("repos"), "", &mut out);
        out.sort();
        out
    }
}

/// Digest and size of a file's content.
pub fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut file = fs::File::open(path)?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        size += n as u64;
    }
    Ok((format!("sha256:{}", hex::encode(hash.finalize())), size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tags_follow_the_spec() {
        for good in ["app", "s1/app", "a-b/c.d/e__f", "a0/b---c"] {
            assert!(valid_name(good), "{good}");
        }
        for bad in ["", "App", "a//b", "-a", "a_", "_a/b", "a/_tags", "a...b"] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(valid_tag("latest") && valid_tag("_x.1-2") && !valid_tag(".x") && !valid_tag(""));
    }

    #[test]
    fn an_upload_is_checked_against_its_digest_before_it_is_visible() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::open(dir.path()).unwrap();
        let id = s.start_upload().unwrap();
        let path = s.upload_path(&id).unwrap();
        fs::write(&path, b"hello").unwrap();
        s.upload_appended(&id, b"hello");
        let wrong = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(
            s.finish_upload("app", &id, &wrong),
            Err(E::DigestInvalid(_))
        ));
        assert!(s.blob_size(&wrong).is_none());
        let id = s.start_upload().unwrap();
        fs::write(s.upload_path(&id).unwrap(), b"hello").unwrap();
        s.upload_desynced(&id);
        let right = format!("sha256:{}", hex::encode(Sha256::digest(b"hello")));
        assert_eq!(s.finish_upload("app", &id, &right).unwrap(), 5);
        assert_eq!(s.blob_in_repo("app", &right), Some(5));
        assert_eq!(s.blob_in_repo("other", &right), None);
    }
}
