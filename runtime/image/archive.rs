//! Image archives: `docker save` tars (the classic layout and Docker 25+'s,
//! which is also an OCI layout), plain OCI layout tars, and `docker import`
//! of a rootfs tar.

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::path::PathBuf;

use serde_json::{json, Value};

use super::digest;
use super::layer::HashingWriter;
use super::reference::Reference;
use super::store::{parse_config, ImageStore};
use super::ImageError;

fn invalid(msg: impl Into<String>) -> ImageError {
    ImageError::Invalid(msg.into())
}

/// The most a manifest, index or config of an archive may hold in memory.
const MAX_JSON: u64 = 16 << 20;
/// The most members an archive may have (each is a temporary file).
const MAX_MEMBERS: usize = 100_000;

/// A member of a `docker load` archive, spooled to a temporary file while
/// hashed (so a layer's digest is known before anything is unpacked, and no
/// archive is held in memory).
struct Member {
    path: PathBuf,
    digest: String,
    size: u64,
}

/// Every file of an archive by cleaned name, in a temporary directory of the
/// store that goes when this does. Names are only keys: no member name ever
/// becomes a path.
struct Members {
    dir: PathBuf,
    files: HashMap<String, Member>,
    /// Symlink members (older `docker save` links a repeated layer's
    /// `layer.tar` to the first): name → the name it points at.
    links: HashMap<String, String>,
}

impl Drop for Members {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

impl Members {
    fn read(store: &ImageStore, reader: impl Read) -> Result<Self, ImageError> {
        let dir = store.tmp_path();
        fs::create_dir(&dir).map_err(ImageError::io("create load directory"))?;
        let mut members = Members {
            dir,
            files: HashMap::new(),
            links: HashMap::new(),
        };
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(ImageError::io("read archive"))? {
            let mut entry = entry.map_err(ImageError::io("read archive"))?;
            let name = entry
                .path()
                .map_err(ImageError::io("read archive"))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if entry.header().entry_type().is_symlink() {
                if let Ok(Some(target)) = entry.link_name() {
                    let base = name.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
                    let target = lexical_join(base, &target.to_string_lossy());
                    members.links.insert(name, target);
                }
                continue;
            }
            if !entry.header().entry_type().is_file() {
                continue;
            }
            if members.files.len() >= MAX_MEMBERS {
                return Err(invalid(format!(
                    "archive has more than {MAX_MEMBERS} members"
                )));
            }
            let path = members.dir.join(members.files.len().to_string());
            let file = fs::File::create(&path).map_err(ImageError::io("spool archive"))?;
            let mut hashing = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
            std::io::copy(&mut entry, &mut hashing)
                .and_then(|_| hashing.flush())
                .map_err(ImageError::io("read archive"))?;
            let (digest, size) = hashing.finish();
            members.files.insert(name, Member { path, digest, size });
        }
        Ok(members)
    }

    fn get(&self, name: &str) -> Result<&Member, ImageError> {
        let mut key = name;
        // A few hops at most: links among members are keys, never paths.
        for _ in 0..8 {
            match self.links.get(key) {
                Some(target) => key = target,
                None => break,
            }
        }
        self.files
            .get(key)
            .ok_or_else(|| invalid(format!("archive lacks {name}")))
    }

    /// A small member's bytes (manifests, configs).
    fn bytes(&self, name: &str) -> Result<Vec<u8>, ImageError> {
        let member = self.get(name)?;
        if member.size > MAX_JSON {
            return Err(invalid(format!("{name} is too large")));
        }
        fs::read(&member.path).map_err(ImageError::io("read archive"))
    }

    /// The OCI layout blob `digest`: a well-formed digest whose content
    /// matches it.
    fn blob(&self, digest: &str) -> Result<&Member, ImageError> {
        digest::checked("digest", digest)?;
        let member = self.get(&blob_member(digest))?;
        if member.digest != digest {
            return Err(invalid(format!(
                "blob {digest} does not match its digest (content is {})",
                member.digest
            )));
        }
        Ok(member)
    }

    fn blob_bytes(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        self.blob(digest)?;
        self.bytes(&blob_member(digest))
    }
}

/// `target` taken relative to the member directory `base`, as a member name.
fn lexical_join(base: &str, target: &str) -> String {
    let mut parts: Vec<&str> = if target.starts_with('/') {
        Vec::new()
    } else {
        base.split('/').filter(|p| !p.is_empty()).collect()
    };
    for p in target.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn json(bytes: &[u8], what: &str) -> Result<Value, ImageError> {
    serde_json::from_slice(bytes).map_err(|e| invalid(format!("{what}: {e}")))
}

fn blob_member(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

impl ImageStore {
    /// `docker load`: returns the loaded references (or IDs of untagged images).
    pub fn load(&self, scope: &str, reader: impl Read) -> Result<Vec<String>, ImageError> {
        let files = Members::read(self, reader)?;
        let mut loaded = Vec::new();
        if files.files.contains_key("manifest.json") {
            let entries: Vec<Value> =
                serde_json::from_value(json(&files.bytes("manifest.json")?, "manifest.json")?)
                    .map_err(|e| invalid(format!("manifest.json: {e}")))?;
            for entry in entries {
                let config_path = entry["Config"]
                    .as_str()
                    .ok_or_else(|| invalid("manifest.json: no Config"))?;
                let layers: Vec<&Member> = entry["Layers"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>())
                    .unwrap_or_default()
                    .into_iter()
                    .map(|l| files.get(l))
                    .collect::<Result<_, _>>()?;
                let tags: Vec<String> = entry["RepoTags"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                let id = self.load_image(scope, &files.bytes(config_path)?, layers, &tags)?;
                if tags.is_empty() {
                    loaded.push(id);
                } else {
                    loaded.extend(tags.iter().map(|t| {
                        Reference::parse(t)
                            .map(|r| r.familiar())
                            .unwrap_or_else(|_| t.clone())
                    }));
                }
            }
            return Ok(loaded);
        }
        // A plain OCI image layout.
        let index = json(&files.bytes("index.json")?, "index.json")?;
        for m in index["manifests"].as_array().cloned().unwrap_or_default() {
            let digest = m["digest"]
                .as_str()
                .ok_or_else(|| invalid("index.json: manifest without digest"))?;
            let manifest = json(&files.blob_bytes(digest)?, "manifest")?;
            let manifest = if manifest.get("manifests").is_some() {
                // A nested index: take the first (this platform's) manifest.
                let inner = manifest["manifests"][0]["digest"]
                    .as_str()
                    .ok_or_else(|| invalid("empty index"))?;
                json(&files.blob_bytes(inner)?, "manifest")?
            } else {
                manifest
            };
            let config = manifest["config"]["digest"]
                .as_str()
                .ok_or_else(|| invalid("manifest without config"))?;
            let layers: Vec<&Member> = manifest["layers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|l| files.blob(l["digest"].as_str().unwrap_or_default()))
                .collect::<Result<_, _>>()?;
            let name = m["annotations"]["io.containerd.image.name"]
                .as_str()
                .or(m["annotations"]["org.opencontainers.image.ref.name"].as_str())
                .map(String::from);
            let tags: Vec<String> = name
                .into_iter()
                .filter(|n| Reference::parse(n).is_ok() && (n.contains(':') || n.contains('/')))
                .collect();
            let id = self.load_image(scope, &files.blob_bytes(config)?, layers, &tags)?;
            if tags.is_empty() {
                loaded.push(id);
            } else {
                loaded.extend(
                    tags.iter()
                        .filter_map(|t| Reference::parse(t).ok().map(|r| r.familiar())),
                );
            }
        }
        Ok(loaded)
    }

    /// Stores one image: layers first (each checked against the config's
    /// diff IDs before it is unpacked), then the config, then its tags.
    fn load_image(
        &self,
        scope: &str,
        config: &[u8],
        layers: Vec<&Member>,
        tags: &[String],
    ) -> Result<String, ImageError> {
        // Checks every diff ID is well-formed before any is used.
        let (parsed, _) = parse_config(config)?;
        let diff_ids = parsed.rootfs().diff_ids();
        if diff_ids.len() != layers.len() {
            return Err(invalid(format!(
                "image has {} layers but its config lists {}",
                layers.len(),
                diff_ids.len()
            )));
        }
        for (member, want) in layers.iter().zip(diff_ids) {
            if self.has_blob(want) {
                // Stored under its digest, so already what `want` names.
            } else if &member.digest == want {
                // An uncompressed layer whose hash was taken as it was read.
                fs::rename(&member.path, self.blob_path(want)?)
                    .map_err(ImageError::io("store layer"))?;
            } else {
                let file = fs::File::open(&member.path).map_err(ImageError::io("read archive"))?;
                // Compressed, or not the layer the config names: decompressed
                // and hashed again, and unpacked only if it is `want`.
                self.add_layer_expecting(
                    std::io::BufReader::with_capacity(1 << 20, file),
                    Some(want),
                )?;
            }
            self.ensure_layer(want)?;
        }
        let id = self.put_blob(config)?;
        self.reference(scope, &id, tags)?;
        Ok(id)
    }

    /// `docker save`: a tar both `docker load` (any version) and OCI tools read.
    pub fn save(&self, scope: &str, names: &[&str], out: impl Write) -> Result<(), ImageError> {
        let mut builder = tar::Builder::new(out);
        let mut manifest = Vec::new();
        let mut index = Vec::new();
        let mut repositories: serde_json::Map<String, Value> = serde_json::Map::new();
        let mut written = std::collections::HashSet::new();
        let add_blob = |builder: &mut tar::Builder<_>,
                        digest: &str,
                        written: &mut std::collections::HashSet<String>|
         -> Result<(), ImageError> {
            if !written.insert(digest.to_string()) {
                return Ok(());
            }
            let path = self.blob_path(digest)?;
            let mut file =
                fs::File::open(&path).map_err(ImageError::io(format!("blob {digest}")))?;
            builder
                .append_file(blob_member(digest), &mut file)
                .map_err(ImageError::io("write archive"))
        };
        let append =
            |builder: &mut tar::Builder<_>, name: &str, data: &[u8]| -> Result<(), ImageError> {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_entry_type(tar::EntryType::Regular);
                builder
                    .append_data(&mut h, name, data)
                    .map_err(ImageError::io("write archive"))
            };
        for name in names {
            let id = self.resolve_id(scope, name)?;
            let config_bytes = self.config_bytes(&id)?;
            let (config, _) = parse_config(&config_bytes)?;
            let tags: Vec<String> = match Reference::parse(name) {
                Ok(r)
                    if !name.starts_with("sha256:")
                        && self.resolve_id(scope, &r.familiar()).is_ok() =>
                {
                    vec![r.familiar()]
                }
                _ => Vec::new(),
            };
            add_blob(&mut builder, &id, &mut written)?;
            let mut layer_descs = Vec::new();
            for d in config.rootfs().diff_ids() {
                add_blob(&mut builder, d, &mut written)?;
                layer_descs.push(json!({
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": d,
                    "size": fs::metadata(self.blob_path(d)?).map(|m| m.len()).unwrap_or(0),
                }));
            }
            let oci_manifest = json!({
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": id, "size": config_bytes.len()},
                "layers": layer_descs,
            });
            let manifest_bytes = serde_json::to_vec(&oci_manifest).unwrap_or_default();
            let manifest_digest = self.put_blob(&manifest_bytes)?;
            add_blob(&mut builder, &manifest_digest, &mut written)?;
            let mut desc = json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_digest,
                "size": manifest_bytes.len(),
            });
            if let Some(t) = tags.first() {
                let canonical = Reference::parse(t)
                    .map(|r| {
                        format!(
                            "{}/{}:{}",
                            r.domain,
                            r.path,
                            r.tag.clone().unwrap_or_default()
                        )
                    })
                    .unwrap_or_default();
                desc["annotations"] = json!({
                    "io.containerd.image.name": canonical,
                    "org.opencontainers.image.ref.name": t.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("latest"),
                });
                if let Some((repo, tag)) = t.rsplit_once(':') {
                    repositories
                        .entry(repo.to_string())
                        .or_insert_with(|| json!({}))
                        .as_object_mut()
                        .expect("object")
                        .insert(tag.to_string(), json!(id.trim_start_matches("sha256:")));
                }
            }
            index.push(desc);
            manifest.push(json!({
                "Config": blob_member(&id),
                "RepoTags": tags,
                "Layers": config.rootfs().diff_ids().iter().map(|d| blob_member(d)).collect::<Vec<_>>(),
            }));
        }
        append(
            &mut builder,
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
        append(
            &mut builder,
            "index.json",
            &serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": index})).unwrap_or_default(),
        )?;
        append(
            &mut builder,
            "manifest.json",
            &serde_json::to_vec(&manifest).unwrap_or_default(),
        )?;
        if !repositories.is_empty() {
            append(
                &mut builder,
                "repositories",
                &serde_json::to_vec(&repositories).unwrap_or_default(),
            )?;
        }
        builder.finish().map_err(ImageError::io("write archive"))
    }

    /// `docker import`: a rootfs tar (plain or gzip) becomes a one-layer
    /// image; `changes` are Dockerfile instructions applied to its config.
    pub fn import(
        &self,
        scope: &str,
        reader: impl Read,
        reference: Option<&str>,
        changes: &[String],
        message: &str,
    ) -> Result<String, ImageError> {
        let tags: Vec<String> = match reference {
            Some(r) => vec![Reference::parse(r)?.familiar()],
            None => Vec::new(),
        };
        let diff_id = self.add_layer(reader)?;
        let mut config = json!({});
        for change in changes {
            apply_change(&mut config, change)?;
        }
        let now = crate::container::state::now_rfc3339();
        let image = json!({
            "architecture": crate::image::bootstrap::host_arch(),
            "os": "linux",
            "created": now,
            "config": config,
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            "history": [{"created": now, "created_by": "", "comment": if message.is_empty() { "Imported from -" } else { message }}],
        });
        self.create_image(scope, &image, &tags)
    }
}

/// Applies one `--change` instruction (`CMD ["sh"]`, `ENV A=b`, `WORKDIR /x`,
/// `EXPOSE 80`, `ENTRYPOINT`, `USER`, `LABEL a=b`, `STOPSIGNAL`, `VOLUME`) to
/// an image's `config` object.
pub fn apply_change(config: &mut Value, change: &str) -> Result<(), ImageError> {
    let (keyword, rest) = change
        .trim()
        .split_once(char::is_whitespace)
        .unwrap_or((change.trim(), ""));
    let rest = rest.trim();
    let list = |text: &str| -> Vec<String> {
        serde_json::from_str::<Vec<String>>(text)
            .unwrap_or_else(|_| vec!["/bin/sh".into(), "-c".into(), text.to_string()])
    };
    let obj = config
        .as_object_mut()
        .ok_or_else(|| invalid("config is not an object"))?;
    match keyword.to_ascii_uppercase().as_str() {
        "CMD" => {
            obj.insert("Cmd".into(), json!(list(rest)));
        }
        "ENTRYPOINT" => {
            obj.insert("Entrypoint".into(), json!(list(rest)));
        }
        "WORKDIR" => {
            obj.insert("WorkingDir".into(), json!(rest));
        }
        "USER" => {
            obj.insert("User".into(), json!(rest));
        }
        "STOPSIGNAL" => {
            obj.insert("StopSignal".into(), json!(rest));
        }
        "ENV" => {
            let env = obj.entry("Env").or_insert(json!([]));
            let pairs: Vec<String> = if rest.contains('=') {
                rest.split_whitespace().map(String::from).collect()
            } else {
                let (k, v) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                vec![format!("{k}={}", v.trim())]
            };
            if let Some(a) = env.as_array_mut() {
                for p in pairs {
                    let key = p.split('=').next().unwrap_or("").to_string();
                    a.retain(|e| {
                        e.as_str().and_then(|s| s.split('=').next()) != Some(key.as_str())
                    });
                    a.push(json!(p));
                }
            }
        }
        "LABEL" => {
            let labels = obj.entry("Labels").or_insert(json!({}));
            for pair in rest.split_whitespace() {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                labels[k] = json!(v.trim_matches('"'));
            }
        }
        "EXPOSE" => {
            let ports = obj.entry("ExposedPorts").or_insert(json!({}));
            for p in rest.split_whitespace() {
                let p = if p.contains('/') {
                    p.to_string()
                } else {
                    format!("{p}/tcp")
                };
                ports[p] = json!({});
            }
        }
        "VOLUME" => {
            let vols = obj.entry("Volumes").or_insert(json!({}));
            for v in serde_json::from_str::<Vec<String>>(rest)
                .unwrap_or_else(|_| rest.split_whitespace().map(String::from).collect())
            {
                vols[v] = json!({});
            }
        }
        other => {
            return Err(invalid(format!("{other} is not a valid change command")));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "archive_tests.rs"]
mod tests;
