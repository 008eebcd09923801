//! [`ImageStore`]: blobs, layers, configs and per-scope references.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::digest;
use super::layer::{self, HashingWriter};
use super::reference::Reference;
use super::{Image, ImageError, ImageSummary};
use crate::container::config::HealthConfig;

/// A scope's names for images.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ScopeRefs {
    /// Familiar reference (`busybox:latest`) → image ID.
    pub tags: BTreeMap<String, String>,
    /// Every image the scope owns, tagged or not.
    pub images: BTreeSet<String>,
    /// Image ID → when it was last tagged (RFC 3339).
    pub last_tag: BTreeMap<String, String>,
    /// Image ID → the image it was built on (one build step each), as
    /// Docker's classic builder records `Parent`.
    pub parents: BTreeMap<String, String>,
    /// Build cache: key of (parent, instruction, sources) → image ID.
    pub build_cache: BTreeMap<String, String>,
}

/// The store. Safe to share between threads.
pub struct ImageStore {
    root: PathBuf,
    scopes: Mutex<HashMap<String, ScopeRefs>>,
    /// Serializes unpacking so a layer is unpacked once.
    unpacking: Mutex<()>,
    pub(crate) busybox_ready: Mutex<HashSet<String>>,
}

fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// The store's root is root-only: layers keep their setuid files and
/// container-owned ids, which no other host user may reach.
fn make_private(root: &Path) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(root, fs::Permissions::from_mode(0o700))
        .map_err(ImageError::io(format!("make {} private", root.display())))
}

fn short(id: &str) -> &str {
    &hex_of(id)[..12.min(hex_of(id).len())]
}

/// Parses a config blob into oci-spec's type, filling fields oci-spec needs
/// that some images leave out.
pub(crate) fn parse_config(
    bytes: &[u8],
) -> Result<(oci_spec::image::ImageConfiguration, Value), ImageError> {
    let raw: Value = serde_json::from_slice(bytes)
        .map_err(|e| ImageError::Invalid(format!("image config is not JSON: {e}")))?;
    let mut filled = raw.clone();
    if let Some(obj) = filled.as_object_mut() {
        obj.entry("history").or_insert_with(|| json!([]));
        obj.entry("architecture").or_insert_with(|| json!("amd64"));
        obj.entry("os").or_insert_with(|| json!("linux"));
        obj.entry("rootfs")
            .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    }
    let config: oci_spec::image::ImageConfiguration = serde_json::from_value(filled)
        .map_err(|e| ImageError::Invalid(format!("image config: {e}")))?;
    // Diff IDs name layer directories: every config is checked as it enters.
    digest::check_diff_ids(config.rootfs().diff_ids())?;
    Ok((config, raw))
}

impl ImageStore {
    /// Opens (creating) the store at `root`.
    pub fn open(root: &Path) -> Result<Self, ImageError> {
        for sub in ["blobs/sha256", "layers", "scopes", "tmp"] {
            fs::create_dir_all(root.join(sub)).map_err(ImageError::io(format!(
                "create {}",
                root.join(sub).display()
            )))?;
        }
        make_private(root)?;
        Ok(Self {
            root: root.to_path_buf(),
            scopes: Mutex::new(HashMap::new()),
            unpacking: Mutex::new(()),
            busybox_ready: Mutex::new(HashSet::new()),
        })
    }

    /// Where the blob `digest` is; only a well-formed digest names a path.
    pub(crate) fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        let hex = digest::checked("digest", digest)?;
        Ok(self.root.join("blobs/sha256").join(hex))
    }

    /// Whether the blob `digest` is stored (false for a malformed digest).
    pub(crate) fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.exists())
    }

    pub(crate) fn root_dir(&self) -> &Path {
        &self.root
    }

    /// Where the layer `diff_id` is unpacked; only a well-formed diff ID
    /// names a path.
    pub(crate) fn layer_dir(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        let hex = digest::checked("diff_id", diff_id)?;
        Ok(self.root.join("layers").join(hex))
    }

    pub(crate) fn tmp_path(&self) -> PathBuf {
        self.root
            .join("tmp")
            .join(crate::container::names::new_id())
    }

    /// Stores bytes as a blob; returns its digest.
    pub(crate) fn put_blob(&self, bytes: &[u8]) -> Result<String, ImageError> {
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(bytes)));
        let path = self.blob_path(&digest)?;
        if !path.exists() {
            let tmp = self.tmp_path();
            fs::write(&tmp, bytes)
                .and_then(|_| fs::rename(&tmp, &path))
                .map_err(ImageError::io(format!("write blob {digest}")))?;
        }
        Ok(digest)
    }

    /// Streams a blob in; if `expected` is given the content must match it.
    /// Nothing half-written is ever visible under its digest.
    pub(crate) fn put_blob_from(
        &self,
        mut reader: impl Read,
        expected: Option<&str>,
    ) -> Result<(String, u64), ImageError> {
        let tmp = self.tmp_path();
        let file = fs::File::create(&tmp).map_err(ImageError::io("create blob"))?;
        let mut hashing = HashingWriter::new(std::io::BufWriter::new(file));
        let copied = std::io::copy(&mut reader, &mut hashing).and_then(|_| hashing.flush());
        if let Err(e) = copied {
            let _ = fs::remove_file(&tmp);
            return Err(ImageError::io("write blob")(e));
        }
        let (digest, size) = hashing.finish();
        if let Some(want) = expected {
            if want != digest {
                let _ = fs::remove_file(&tmp);
                return Err(ImageError::Invalid(format!(
                    "digest mismatch: expected {want}, got {digest}"
                )));
            }
        }
        fs::rename(&tmp, self.blob_path(&digest)?).map_err(ImageError::io("store blob"))?;
        Ok((digest, size))
    }

    /// The unpacked directory of a layer, unpacking its blob the first time.
    /// Blobs are stored only under the digest of their content, so the blob
    /// unpacked here is the layer `diff_id` names.
    pub(crate) fn ensure_layer(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        let dir = self.layer_dir(diff_id)?;
        if dir.exists() {
            return Ok(dir);
        }
        let _guard = self.unpacking.lock().unwrap_or_else(|p| p.into_inner());
        if dir.exists() {
            return Ok(dir);
        }
        let blob = fs::File::open(self.blob_path(diff_id)?)
            .map_err(ImageError::io(format!("layer {diff_id} is missing")))?;
        let tmp = self.tmp_path();
        let reader = std::io::BufReader::with_capacity(1 << 20, blob);
        if let Err(e) = layer::unpack(reader, &tmp) {
            let _ = fs::remove_dir_all(&tmp);
            return Err(match e {
                layer::UnpackError::Refused { .. } => {
                    ImageError::Invalid(format!("unpack layer {diff_id}: {e}"))
                }
                other => ImageError::io(format!("unpack layer {diff_id}"))(other.into()),
            });
        }
        fs::rename(&tmp, &dir).map_err(ImageError::io("store layer"))?;
        Ok(dir)
    }

    /// Stores a layer tar (plain or gzip) and unpacks it; returns its diff ID.
    pub(crate) fn add_layer(&self, reader: impl Read) -> Result<String, ImageError> {
        self.add_layer_expecting(reader, None)
    }

    /// Stores a layer tar (plain or gzip), checks its diff ID is `expected`
    /// (when given) and only then unpacks it; returns its diff ID.
    pub(crate) fn add_layer_expecting(
        &self,
        reader: impl Read,
        expected: Option<&str>,
    ) -> Result<String, ImageError> {
        if let Some(want) = expected {
            digest::checked("diff_id", want)?;
        }
        let mut buffered = std::io::BufReader::new(reader);
        let gzip = {
            use std::io::BufRead;
            let head = buffered.fill_buf().map_err(ImageError::io("read layer"))?;
            head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b
        };
        let (diff_id, _) = if gzip {
            self.put_blob_from(flate2::read::GzDecoder::new(buffered), expected)?
        } else {
            self.put_blob_from(buffered, expected)?
        };
        self.ensure_layer(&diff_id)?;
        Ok(diff_id)
    }

    /// Makes a layer from a directory (a container's writable layer), with
    /// host ids from `id_base` mapped back to container ids.
    pub fn add_layer_from_dir(
        &self,
        dir: &Path,
        id_base: u32,
    ) -> Result<(String, u64), ImageError> {
        let tmp = self.tmp_path();
        let file = fs::File::create(&tmp).map_err(ImageError::io("create layer"))?;
        let made = layer::tar_from_dir(dir, std::io::BufWriter::new(file), id_base);
        let (diff_id, size) = match made {
            Ok(r) => r,
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                return Err(ImageError::io(format!("archive {}", dir.display()))(e));
            }
        };
        fs::rename(&tmp, self.blob_path(&diff_id)?).map_err(ImageError::io("store layer"))?;
        self.ensure_layer(&diff_id)?;
        Ok((diff_id, size))
    }

    fn scopes(&self) -> MutexGuard<'_, HashMap<String, ScopeRefs>> {
        self.scopes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn scope_file(&self, scope: &str) -> PathBuf {
        self.root.join("scopes").join(format!("{scope}.json"))
    }

    /// Drops every reference of `scope` (its node is gone). Content stays:
    /// blobs and layers are shared by all scopes.
    pub fn forget_scope(&self, scope: &str) {
        self.scopes().remove(scope);
        self.busybox_ready
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(scope);
        let _ = fs::remove_file(self.scope_file(scope));
    }

    /// Runs `f` on a scope's references (loaded on first use), saving changes.
    pub(crate) fn with_scope<T>(
        &self,
        scope: &str,
        f: impl FnOnce(&mut ScopeRefs) -> Result<T, ImageError>,
    ) -> Result<T, ImageError> {
        let mut scopes = self.scopes();
        if !scopes.contains_key(scope) {
            let refs = match fs::read(self.scope_file(scope)) {
                Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
                Err(_) => ScopeRefs::default(),
            };
            scopes.insert(scope.to_string(), refs);
        }
        let refs = scopes.get_mut(scope).expect("inserted above");
        let before = refs.clone();
        let out = f(refs)?;
        if refs.tags != before.tags
            || refs.images != before.images
            || refs.last_tag != before.last_tag
            || refs.parents != before.parents
            || refs.build_cache != before.build_cache
        {
            let file = self.scope_file(scope);
            let tmp = file.with_extension("tmp");
            fs::write(&tmp, serde_json::to_vec_pretty(&*refs).unwrap_or_default())
                .and_then(|_| fs::rename(&tmp, &file))
                .map_err(ImageError::io(format!("write {}", file.display())))?;
        }
        Ok(out)
    }

    /// Finds the image ID `text` names in `scope`: a reference, a full ID, or
    /// an unambiguous ID prefix.
    pub fn resolve_id(&self, scope: &str, text: &str) -> Result<String, ImageError> {
        let parsed = Reference::parse(text);
        self.with_scope(scope, |refs| {
            if let Ok(r) = &parsed {
                if let Some(id) = refs.tags.get(&r.familiar()) {
                    return Ok(id.clone());
                }
            }
            let hex = text.strip_prefix("sha256:").unwrap_or(text);
            if !hex.is_empty() && hex.len() <= 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
                let found: Vec<&String> = refs
                    .images
                    .iter()
                    .filter(|id| hex_of(id).starts_with(hex))
                    .collect();
                match found.as_slice() {
                    [one] => return Ok((*one).clone()),
                    [] => {}
                    _ => {
                        return Err(ImageError::Conflict(format!(
                            "multiple IDs found with provided prefix: {hex}"
                        )))
                    }
                }
            }
            match &parsed {
                Ok(r) => Err(ImageError::NotFound(r.familiar())),
                Err(_) if text.starts_with("sha256:") => {
                    Err(ImageError::NotFound(text.to_string()))
                }
                Err(e) => Err(match e {
                    ImageError::Uppercase(p) => ImageError::Uppercase(p.clone()),
                    _ => ImageError::InvalidReference,
                }),
            }
        })
    }

    /// An image by ID, with its layers unpacked.
    pub fn image(&self, id: &str) -> Result<Image, ImageError> {
        let bytes =
            fs::read(self.blob_path(id)?).map_err(|_| ImageError::NotFound(id.to_string()))?;
        let (config, raw) = parse_config(&bytes)?;
        let layer_dirs = config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| self.ensure_layer(d))
            .collect::<Result<_, _>>()?;
        Ok(Image {
            id: id.to_string(),
            config,
            raw,
            layer_dirs,
        })
    }

    /// Resolves `text` in `scope` to an image ready to run.
    pub fn resolve(&self, scope: &str, text: &str) -> Result<Image, ImageError> {
        let id = self.resolve_id(scope, text)?;
        self.image(&id)
    }

    /// Stores `config` as a new image owned by `scope`, tagged with `tags`.
    pub fn create_image(
        &self,
        scope: &str,
        config: &Value,
        tags: &[String],
    ) -> Result<String, ImageError> {
        let bytes = serde_json::to_vec(config).map_err(|e| ImageError::Invalid(e.to_string()))?;
        parse_config(&bytes)?;
        let id = self.put_blob(&bytes)?;
        self.reference(scope, &id, tags)?;
        Ok(id)
    }

    /// Makes image `id` (already stored) part of `scope` under `tags`.
    pub(crate) fn reference(
        &self,
        scope: &str,
        id: &str,
        tags: &[String],
    ) -> Result<(), ImageError> {
        let familiar: Vec<String> = tags
            .iter()
            .map(|t| Reference::parse(t).map(|r| r.familiar()))
            .collect::<Result<_, _>>()?;
        self.with_scope(scope, |refs| {
            refs.images.insert(id.to_string());
            for t in familiar {
                refs.tags.insert(t, id.to_string());
                refs.last_tag
                    .insert(id.to_string(), crate::container::state::now_rfc3339());
            }
            Ok(())
        })
    }

    /// `docker tag SOURCE TARGET`.
    pub fn tag(&self, scope: &str, source: &str, target: &str) -> Result<(), ImageError> {
        let id = self.resolve_id(scope, source)?;
        let target = Reference::parse(target)?;
        if target.digest.is_some() {
            return Err(ImageError::Invalid(
                "refusing to create a tag with a digest reference".into(),
            ));
        }
        self.with_scope(scope, |refs| {
            refs.tags.insert(target.familiar(), id.clone());
            refs.images.insert(id.clone());
            refs.last_tag
                .insert(id, crate::container::state::now_rfc3339());
            Ok(())
        })
    }

    pub(crate) fn blob_size(&self, digest: &str) -> u64 {
        self.blob_path(digest)
            .and_then(|p| fs::metadata(p).map_err(ImageError::io("stat blob")))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    fn image_size(&self, config: &oci_spec::image::ImageConfiguration) -> u64 {
        config
            .rootfs()
            .diff_ids()
            .iter()
            .map(|d| self.blob_size(d))
            .sum()
    }

    /// `docker images` of a scope (intermediate build images hidden).
    pub fn list(&self, scope: &str) -> Result<Vec<ImageSummary>, ImageError> {
        self.list_all(scope, false)
    }

    /// `docker images [-a]`: with `all`, also the untagged images that other
    /// images were built on, as Docker lists them.
    pub fn list_all(&self, scope: &str, all: bool) -> Result<Vec<ImageSummary>, ImageError> {
        let refs = self.with_scope(scope, |r| Ok(r.clone()))?;
        let mut out = Vec::new();
        for id in &refs.images {
            if !all && !refs.is_tagged(id) && refs.has_children(id) {
                continue;
            }
            let Ok(bytes) = self.config_bytes(id) else {
                continue;
            };
            let Ok((config, _)) = parse_config(&bytes) else {
                continue;
            };
            let tags: Vec<String> = refs
                .tags
                .iter()
                .filter(|(_, v)| *v == id)
                .map(|(k, _)| k.clone())
                .collect();
            out.push(ImageSummary {
                id: id.clone(),
                repo_tags: tags.iter().filter(|t| !t.contains('@')).cloned().collect(),
                repo_digests: tags.iter().filter(|t| t.contains('@')).cloned().collect(),
                created: config
                    .created()
                    .as_deref()
                    .and_then(|c| humantime::parse_rfc3339_weak(c).ok())
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map(|d| d.as_secs() as i64)
                    .unwrap_or(0),
                size: self.image_size(&config) as i64,
                labels: config
                    .config()
                    .as_ref()
                    .and_then(|c| c.labels().clone())
                    .map(|l| l.into_iter().collect())
                    .unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// `GET /images/{name}/json`.
    pub fn inspect(&self, scope: &str, name: &str) -> Result<Value, ImageError> {
        let id = self.resolve_id(scope, name)?;
        let bytes = self
            .config_bytes(&id)
            .map_err(|_| ImageError::NotFound(name.to_string()))?;
        let (config, raw) = parse_config(&bytes)?;
        let refs = self.with_scope(scope, |r| Ok(r.clone()))?;
        let tags: Vec<&String> = refs
            .tags
            .iter()
            .filter(|(_, v)| **v == id)
            .map(|(k, _)| k)
            .collect();
        let layers: Vec<&String> = config.rootfs().diff_ids().iter().collect();
        let mut cfg = raw.get("config").cloned().unwrap_or(json!({}));
        if let Some(o) = cfg.as_object_mut() {
            for key in ["Hostname", "Domainname", "User", "WorkingDir", "Image"] {
                o.entry(key).or_insert(json!(""));
            }
            for key in [
                "AttachStdin",
                "AttachStdout",
                "AttachStderr",
                "Tty",
                "OpenStdin",
                "StdinOnce",
            ] {
                o.entry(key).or_insert(json!(false));
            }
            for key in ["Env", "Cmd", "Volumes", "Entrypoint", "OnBuild", "Labels"] {
                o.entry(key).or_insert(Value::Null);
            }
        }
        Ok(json!({
            "Id": id,
            "RepoTags": tags.iter().filter(|t| !t.contains('@')).collect::<Vec<_>>(),
            "RepoDigests": tags.iter().filter(|t| t.contains('@')).collect::<Vec<_>>(),
            "Parent": refs.parents.get(&id).cloned().unwrap_or_default(),
            "Comment": raw.get("comment").cloned().unwrap_or(json!("")),
            "Created": raw.get("created").cloned().unwrap_or(json!("0001-01-01T00:00:00Z")),
            "DockerVersion": raw.get("docker_version").cloned().unwrap_or(json!("")),
            "Author": raw.get("author").cloned().unwrap_or(json!("")),
            "Config": cfg,
            "Architecture": raw.get("architecture").cloned().unwrap_or(json!("amd64")),
            "Variant": raw.get("variant").cloned(),
            "Os": raw.get("os").cloned().unwrap_or(json!("linux")),
            "Size": self.image_size(&config),
            "GraphDriver": {"Name": "overlay2", "Data": {
                "LowerDir": layers.iter().rev().filter_map(|d| self.layer_dir(d).ok()).map(|d| d.display().to_string()).collect::<Vec<_>>().join(":"),
            }},
            "RootFS": {"Type": "layers", "Layers": layers},
            "Metadata": {"LastTagTime": refs.last_tag.get(&id).cloned().unwrap_or_else(|| "0001-01-01T00:00:00Z".into())},
        }))
    }

    /// `GET /images/{name}/history`: newest first.
    pub fn history(&self, scope: &str, name: &str) -> Result<Value, ImageError> {
        let id = self.resolve_id(scope, name)?;
        let bytes = self
            .config_bytes(&id)
            .map_err(|_| ImageError::NotFound(name.to_string()))?;
        let (config, raw) = parse_config(&bytes)?;
        let tags: Vec<String> = self.with_scope(scope, |r| {
            Ok(r.tags
                .iter()
                .filter(|(_, v)| **v == id)
                .map(|(k, _)| k.clone())
                .collect())
        })?;
        let diff_ids = config.rootfs().diff_ids();
        let history = raw
            .get("history")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut layer = 0;
        let mut rows = Vec::new();
        for h in &history {
            let empty = h
                .get("empty_layer")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let size = if empty {
                0
            } else {
                let s = diff_ids.get(layer).map(|d| self.blob_size(d)).unwrap_or(0);
                layer += 1;
                s
            };
            let created = h
                .get("created")
                .and_then(Value::as_str)
                .and_then(|c| humantime::parse_rfc3339_weak(c).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs())
                .unwrap_or(0);
            rows.push(json!({
                "Id": "<missing>",
                "Created": created,
                "CreatedBy": h.get("created_by").cloned().unwrap_or(json!("")),
                "Tags": null,
                "Size": size,
                "Comment": h.get("comment").cloned().unwrap_or(json!("")),
            }));
        }
        rows.reverse();
        if let Some(top) = rows.first_mut() {
            top["Id"] = json!(id);
            top["Tags"] = json!(tags);
        }
        Ok(Value::Array(rows))
    }

    /// The image's HEALTHCHECK, if it has one.
    pub fn healthcheck(&self, id: &str) -> Result<Option<HealthConfig>, ImageError> {
        let bytes = self.config_bytes(id)?;
        let raw: Value =
            serde_json::from_slice(&bytes).map_err(|e| ImageError::Invalid(e.to_string()))?;
        Ok(raw
            .pointer("/config/Healthcheck")
            .and_then(|h| serde_json::from_value(h.clone()).ok()))
    }

    /// `docker rmi`: untags `name` (and deletes the image once nothing names
    /// or uses it). `users` are the IDs of containers made from the image.
    /// Returns `("Untagged", ref)` and `("Deleted", id)` entries.
    pub fn remove(
        &self,
        scope: &str,
        name: &str,
        force: bool,
        users: &[String],
    ) -> Result<Vec<(&'static str, String)>, ImageError> {
        let id = self.resolve_id(scope, name)?;
        let by_name = Reference::parse(name)
            .ok()
            .map(|r| r.familiar())
            .filter(|f| {
                self.with_scope(scope, |r| Ok(r.tags.get(f) == Some(&id)))
                    .unwrap_or(false)
            });
        let mut report = Vec::new();
        let delete = self.with_scope(scope, |refs| {
            let tags: Vec<String> = refs.tags.iter().filter(|(_, v)| **v == id).map(|(k, _)| k.clone()).collect();
            match &by_name {
                Some(tag) => {
                    if tags.len() == 1 && !users.is_empty() && !force {
                        return Err(ImageError::Conflict(format!(
                            "conflict: unable to remove repository reference \"{name}\" (must force) - container {} is using its referenced image {}",
                            short(&users[0]),
                            short(&id)
                        )));
                    }
                    refs.tags.remove(tag);
                    report.push(("Untagged", tag.clone()));
                    // The repository's digest references go with its last tag, as in Docker.
                    let repo = Reference::parse(tag).map(|r| r.familiar_repo()).unwrap_or_default();
                    let repo_tagged = refs.tags.iter().any(|(k, v)| {
                        *v == id && !k.contains('@') && Reference::parse(k).is_ok_and(|r| r.familiar_repo() == repo)
                    });
                    if !repo_tagged {
                        let digests: Vec<String> = refs.tags.iter()
                            .filter(|(k, v)| **v == id && k.starts_with(&format!("{repo}@")))
                            .map(|(k, _)| k.clone())
                            .collect();
                        for d in digests {
                            refs.tags.remove(&d);
                            report.push(("Untagged", d));
                        }
                    }
                }
                None => {
                    if refs.has_children(&id) {
                        return Err(ImageError::Conflict(format!(
                            "conflict: unable to delete {} (cannot be forced) - image has dependent child images",
                            short(&id)
                        )));
                    }
                    if tags.len() > 1 && !force {
                        return Err(ImageError::Conflict(format!(
                            "conflict: unable to delete {} (must be forced) - image is referenced in multiple repositories",
                            short(&id)
                        )));
                    }
                    if !users.is_empty() && !force {
                        return Err(ImageError::Conflict(format!(
                            "conflict: unable to delete {} (must be forced) - image is being used by stopped container {}",
                            short(&id),
                            short(&users[0])
                        )));
                    }
                    for t in tags {
                        refs.tags.remove(&t);
                        report.push(("Untagged", t));
                    }
                }
            }
            let still_named = refs.tags.values().any(|v| *v == id);
            // An image other images were built on stays (untagged) for them.
            let delete = !still_named && users.is_empty() && !refs.has_children(&id);
            if delete {
                let parent = refs.parents.get(&id).cloned();
                refs.forget(&id);
                report.push(("Deleted", id.clone()));
                for p in refs.prune_parents(parent, &[]) {
                    report.push(("Deleted", p));
                }
            }
            Ok(delete)
        })?;
        if delete {
            self.collect_garbage();
        }
        Ok(report)
    }

    /// Deletes images of `scope` that nothing names (all unused ones with
    /// `all`) and no container uses; returns their IDs and the bytes freed.
    pub fn prune(
        &self,
        scope: &str,
        all: bool,
        in_use: &[String],
    ) -> Result<(Vec<String>, u64), ImageError> {
        let doomed = self.with_scope(scope, |refs| {
            // Only heads (images nothing was built on) are candidates; removing
            // one frees its untagged parents, as Docker prunes.
            let mut doomed = Vec::new();
            loop {
                let next: Vec<String> = refs
                    .images
                    .iter()
                    .filter(|id| !in_use.contains(id) && !refs.has_children(id))
                    .filter(|id| all || !refs.is_tagged(id))
                    .cloned()
                    .collect();
                if next.is_empty() {
                    break;
                }
                for id in next {
                    let parent = refs.parents.get(&id).cloned();
                    refs.forget(&id);
                    doomed.push(id);
                    doomed.extend(refs.prune_parents(parent, in_use));
                }
            }
            Ok(doomed)
        })?;
        let freed = self.collect_garbage();
        Ok((doomed, freed))
    }

    /// Removes blobs and layers no image of any scope needs; returns bytes freed.
    pub(crate) fn collect_garbage(&self) -> u64 {
        let scopes_dir = self.root.join("scopes");
        let mut live_images: HashSet<String> = HashSet::new();
        if let Ok(entries) = fs::read_dir(&scopes_dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                let Some(scope) = name.strip_suffix(".json") else {
                    continue;
                };
                if let Ok(refs) = self.with_scope(scope, |r| Ok(r.clone())) {
                    live_images.extend(refs.images);
                }
            }
        }
        let mut live: HashSet<String> = HashSet::new();
        for id in &live_images {
            live.insert(hex_of(id).to_string());
            if let Ok(bytes) = self.config_bytes(id) {
                if let Ok((config, _)) = parse_config(&bytes) {
                    live.extend(
                        config
                            .rootfs()
                            .diff_ids()
                            .iter()
                            .map(|d| hex_of(d).to_string()),
                    );
                }
            }
        }
        // Compressed copies of live layers (kept for pushing) stay too.
        let compressed = self.compressed_blobs_of(&live);
        live.extend(compressed);
        let mut freed = 0;
        if let Ok(entries) = fs::read_dir(self.root.join("blobs/sha256")) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !live.contains(&name) {
                    freed += e.metadata().map(|m| m.len()).unwrap_or(0);
                    let _ = fs::remove_file(e.path());
                    let _ = fs::remove_dir_all(self.root.join("layers").join(&name));
                }
            }
        }
        freed
    }
}
