//! Offline image packs: `docker save` tars of the images a course needs,
//! loaded into the classroom's shared scope when `berth serve` starts (and by
//! `berth image load`), and handed to every session's node as it is made.
//!
//! A pack is loaded through [`ImageStore::load`], the hardened path of
//! `docker load` (every layer's digest checked before it is unpacked, in its
//! own directory). Loading again is cheap: the tar's headers are read with
//! seeks, only its manifest and configs are read, and when every image they
//! name is stored and tagged already nothing else is.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::reference::Reference;
use super::store::parse_config;
use super::{ImageError, ImageStore};

/// Where `scripts/base-images.sh` caches the images it builds, and the
/// directory `berth serve` loads by default.
pub const DEFAULT_PACK_DIR: &str = "/var/cache/berth/images";

/// The most the small members read to tell whether a pack is present
/// (manifest and configs) may hold in memory, together.
const MAX_HEAD: u64 = 16 << 20;
/// The most a single config or manifest of a pack may be.
const MAX_SMALL: u64 = 1 << 20;

/// What loading one pack did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackLoad {
    /// The references loaded (or found present), familiar form.
    pub names: Vec<String>,
    /// Every image was stored and tagged already: nothing was read past the
    /// manifest and configs.
    pub present: bool,
}

/// The `*.tar` files of `dir`, by name; none when it does not exist.
pub fn pack_files(dir: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ImageError::io(format!("read {}", dir.display()))(e)),
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "tar") && p.is_file())
        .collect();
    files.sort();
    Ok(files)
}

/// The small members of a tar (manifest.json and the configs it names),
/// read by header with seeks past everything large.
fn small_members(file: &mut fs::File) -> Result<HashMap<String, Vec<u8>>, ImageError> {
    let mut out = HashMap::new();
    let mut held = 0u64;
    let mut archive = tar::Archive::new(&mut *file);
    for entry in archive
        .entries_with_seek()
        .map_err(ImageError::io("read pack"))?
    {
        let mut entry = entry.map_err(ImageError::io("read pack"))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let size = entry.size();
        if size > MAX_SMALL || held + size > MAX_HEAD {
            continue;
        }
        let name = entry
            .path()
            .map_err(ImageError::io("read pack"))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        let mut bytes = Vec::with_capacity(size as usize);
        (&mut entry)
            .take(MAX_SMALL)
            .read_to_end(&mut bytes)
            .map_err(ImageError::io("read pack"))?;
        held += bytes.len() as u64;
        out.insert(name, bytes);
    }
    Ok(out)
}

/// The tags a pack's manifest gives its images (familiar form).
pub fn pack_names(path: &Path) -> Result<Vec<String>, ImageError> {
    let mut file =
        fs::File::open(path).map_err(ImageError::io(format!("open {}", path.display())))?;
    let small = small_members(&mut file)?;
    let Some(bytes) = small.get("manifest.json") else {
        return Ok(Vec::new());
    };
    let manifest: Vec<Value> = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::Invalid(format!("manifest.json: {e}")))?;
    Ok(manifest
        .iter()
        .filter_map(|m| m["RepoTags"].as_array())
        .flatten()
        .filter_map(|t| Reference::parse(t.as_str()?).ok())
        .map(|r| r.familiar())
        .collect())
}

impl ImageStore {
    /// The references of the pack whose small members are `small` when every
    /// image it holds is in `scope` already, under each of its tags, with
    /// all its layers; `None` when anything is missing (or unreadable).
    fn pack_present(&self, scope: &str, small: &HashMap<String, Vec<u8>>) -> Option<Vec<String>> {
        let manifest: Vec<Value> = serde_json::from_slice(small.get("manifest.json")?).ok()?;
        let mut names = Vec::new();
        for entry in &manifest {
            let config = small.get(entry["Config"].as_str()?)?;
            // The ID is the digest of the bytes read here, not a name the
            // pack gives: a changed config is a different image.
            let id = format!("sha256:{}", hex::encode(Sha256::digest(config)));
            if !self.has_blob(&id) {
                return None;
            }
            let (parsed, _) = parse_config(config).ok()?;
            for diff_id in parsed.rootfs().diff_ids() {
                if !self.has_blob(diff_id) || !self.layer_dir(diff_id).ok()?.exists() {
                    return None;
                }
            }
            let tags = entry["RepoTags"].as_array()?;
            if tags.is_empty()
                && !self
                    .with_scope(scope, |r| Ok(r.images.contains(&id)))
                    .ok()?
            {
                return None;
            }
            for tag in tags {
                let familiar = Reference::parse(tag.as_str()?).ok()?.familiar();
                if self.resolve_id(scope, &familiar).ok()? != id {
                    return None;
                }
                names.push(familiar);
            }
            if tags.is_empty() {
                names.push(id);
            }
        }
        Some(names)
    }

    /// Loads the pack at `path` into `scope`, unless every image in it is
    /// there already (then only its manifest and configs are read).
    pub fn load_pack(&self, scope: &str, path: &Path) -> Result<PackLoad, ImageError> {
        let mut file =
            fs::File::open(path).map_err(ImageError::io(format!("open {}", path.display())))?;
        if let Ok(small) = small_members(&mut file) {
            if let Some(names) = self.pack_present(scope, &small) {
                return Ok(PackLoad {
                    names,
                    present: true,
                });
            }
        }
        file.seek(SeekFrom::Start(0))
            .map_err(ImageError::io("read pack"))?;
        let names = self.load(scope, std::io::BufReader::with_capacity(1 << 20, file))?;
        Ok(PackLoad {
            names,
            present: false,
        })
    }

    /// Gives `to` a reference to every image tagged in `from` (the
    /// classroom's shared scope) except those named in `skip`; content is
    /// shared, so this costs a few bytes of JSON. Tags `to` has are kept.
    pub fn share_tags(&self, from: &str, to: &str, skip: &[&str]) -> Result<(), ImageError> {
        let tags = self.with_scope(from, |r| Ok(r.tags.clone()))?;
        let shared: Vec<(String, String)> = tags
            .into_iter()
            .filter(|(tag, _)| !skip.contains(&tag.as_str()))
            .collect();
        if shared.is_empty() {
            return Ok(());
        }
        self.with_scope(to, |r| {
            for (tag, id) in shared {
                if r.tags.contains_key(&tag) {
                    continue;
                }
                r.images.insert(id.clone());
                r.tags.insert(tag, id);
            }
            Ok(())
        })
    }

    /// Points `names` (references in `from`) at the same images in `to`,
    /// replacing what `to` called them before.
    pub fn copy_tags(&self, from: &str, to: &str, names: &[String]) -> Result<(), ImageError> {
        let mut found = Vec::new();
        for name in names {
            found.push((
                Reference::parse(name)?.familiar(),
                self.resolve_id(from, name)?,
            ));
        }
        self.with_scope(to, |r| {
            for (tag, id) in found {
                r.images.insert(id.clone());
                r.tags.insert(tag, id);
            }
            Ok(())
        })
    }

    /// Which of `references` `scope` does not have (as written).
    pub fn missing(&self, scope: &str, references: &[String]) -> Vec<String> {
        references
            .iter()
            .filter(|r| self.resolve_id(scope, r).is_err())
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack_of(store: &ImageStore, scope: &str, names: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        store.save(scope, names, &mut out).unwrap();
        out
    }

    #[test]
    fn a_pack_loads_once_then_is_found_present_and_shared_by_tag() {
        if !Path::new(super::super::bootstrap::HOST_BUSYBOX).exists() {
            eprintln!("skipping: no busybox");
            return;
        }
        let a = tempfile::tempdir().unwrap();
        let source = ImageStore::open(a.path()).unwrap();
        source.ensure_busybox("s").unwrap();
        source.tag("s", "busybox", "course/tool:1").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pack = dir.path().join("course.tar");
        fs::write(&pack, pack_of(&source, "s", &["course/tool:1"])).unwrap();
        fs::write(dir.path().join("notes.txt"), "not a pack").unwrap();
        assert_eq!(pack_files(dir.path()).unwrap(), vec![pack.clone()]);

        let b = tempfile::tempdir().unwrap();
        let store = ImageStore::open(b.path()).unwrap();
        let first = store.load_pack("base", &pack).unwrap();
        assert_eq!(first.names, vec!["course/tool:1".to_string()]);
        assert!(!first.present, "a fresh store loads the pack");
        let again = store.load_pack("base", &pack).unwrap();
        assert!(again.present, "loaded again, it is found present");
        assert_eq!(again.names, first.names);
        // Another scope has not got it: found missing, then loaded there.
        assert_eq!(
            store.missing("other", &["course/tool:1".into()]),
            vec!["course/tool:1".to_string()]
        );
        store.share_tags("base", "node", &[]).unwrap();
        assert!(store.missing("node", &["course/tool:1".into()]).is_empty());
        assert!(store.resolve("node", "course/tool:1").is_ok());
    }

    #[test]
    fn a_pack_whose_layer_was_altered_is_refused_and_not_taken_as_present() {
        if !Path::new(super::super::bootstrap::HOST_BUSYBOX).exists() {
            return;
        }
        let a = tempfile::tempdir().unwrap();
        let source = ImageStore::open(a.path()).unwrap();
        source.ensure_busybox("s").unwrap();
        let bytes = pack_of(&source, "s", &["busybox"]);
        // Flip a byte of the busybox binary inside the layer blob.
        let at = bytes
            .windows(4)
            .position(|w| w == b"\x7fELF")
            .expect("the layer holds busybox");
        let mut altered = bytes.clone();
        altered[at + 200] ^= 0xff;
        let dir = tempfile::tempdir().unwrap();
        let pack = dir.path().join("bad.tar");
        fs::write(&pack, altered).unwrap();
        let b = tempfile::tempdir().unwrap();
        let store = ImageStore::open(b.path()).unwrap();
        let err = store.load_pack("base", &pack).unwrap_err().to_string();
        assert!(err.contains("digest") || err.contains("match"), "{err}");
        assert!(store.resolve("base", "busybox").is_err());
        assert!(store.load_pack("base", &pack).is_err(), "still refused");
    }
}
