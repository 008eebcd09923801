//! Image archives: `docker save` tars (the classic layout and Docker 25+'s,
//! which is also an OCI layout), plain OCI layout tars, and `docker import`
//! of a rootfs tar.

use std::fs;
use std::io::{Read, Write};

use serde_json::{json, Value};

use super::members::{Member, Members};
use super::reference::Reference;
use super::store::{parse_config, ImageStore};
use super::ImageError;

fn invalid(msg: impl Into<String>) -> ImageError {
    ImageError::Invalid(msg.into())
}

fn blob_member(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

impl ImageStore {
    /// `docker load`: returns the loaded references (or IDs of untagged images).
    pub fn load(&self, scope: &str, reader: impl Read) -> Result<Vec<String>, ImageError> {
        let files = Members::read(reader, &self.tmp_path())?;
        let get = |p: &str| {
            files
                .get(p)
                .ok_or_else(|| invalid(format!("archive lacks {p}")))
        };
        let mut loaded = Vec::new();
        if let Some(manifest) = files.get("manifest.json") {
            let entries: Vec<Value> = serde_json::from_slice(&manifest.bytes()?)
                .map_err(|e| invalid(format!("manifest.json: {e}")))?;
            for entry in entries {
                let config_path = entry["Config"]
                    .as_str()
                    .ok_or_else(|| invalid("manifest.json: no Config"))?;
                let layers: Vec<&str> = entry["Layers"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Value::as_str).collect())
                    .unwrap_or_default();
                let tags: Vec<String> = entry["RepoTags"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default();
                let id = self.load_image(
                    scope,
                    &get(config_path)?.bytes()?,
                    layers.iter().map(|l| get(l)).collect::<Result<_, _>>()?,
                    &tags,
                )?;
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
        let index: Value = serde_json::from_slice(&get("index.json")?.bytes()?)
            .map_err(|e| invalid(format!("index.json: {e}")))?;
        for m in index["manifests"].as_array().cloned().unwrap_or_default() {
            let digest = m["digest"]
                .as_str()
                .ok_or_else(|| invalid("index.json: manifest without digest"))?;
            let manifest: Value = serde_json::from_slice(&get(&blob_member(digest))?.bytes()?)
                .map_err(|e| invalid(format!("manifest: {e}")))?;
            let manifest = if manifest.get("manifests").is_some() {
                // A nested index: take the first (this platform's) manifest.
                let inner = manifest["manifests"][0]["digest"]
                    .as_str()
                    .ok_or_else(|| invalid("empty index"))?;
                serde_json::from_slice(&get(&blob_member(inner))?.bytes()?)
                    .map_err(|e| invalid(format!("manifest: {e}")))?
            } else {
                manifest
            };
            let config = manifest["config"]["digest"]
                .as_str()
                .ok_or_else(|| invalid("manifest without config"))?;
            let layers: Vec<Member> = manifest["layers"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|l| get(&blob_member(l["digest"].as_str().unwrap_or_default())))
                .collect::<Result<_, _>>()?;
            let name = m["annotations"]["io.containerd.image.name"]
                .as_str()
                .or(m["annotations"]["org.opencontainers.image.ref.name"].as_str())
                .map(String::from);
            let tags: Vec<String> = name
                .into_iter()
                .filter(|n| Reference::parse(n).is_ok() && (n.contains(':') || n.contains('/')))
                .collect();
            let id = self.load_image(scope, &get(&blob_member(config))?.bytes()?, layers, &tags)?;
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
    /// diff IDs), then the config, then its tags.
    fn load_image(
        &self,
        scope: &str,
        config: &[u8],
        layers: Vec<Member>,
        tags: &[String],
    ) -> Result<String, ImageError> {
        let (parsed, _) = parse_config(config)?;
        let diff_ids = parsed.rootfs().diff_ids();
        if diff_ids.len() != layers.len() {
            return Err(invalid(format!(
                "image has {} layers but its config lists {}",
                layers.len(),
                diff_ids.len()
            )));
        }
        for (data, want) in layers.iter().zip(diff_ids) {
            let got = self.add_layer(data.reader())?;
            if &got != want {
                return Err(invalid(format!(
                    "layer digest mismatch: config says {want}, content is {got}"
                )));
            }
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
            let path = self.blob_path(digest);
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
            let config_bytes =
                fs::read(self.blob_path(&id)).map_err(ImageError::io("read config"))?;
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
                    "size": fs::metadata(self.blob_path(d)).map(|m| m.len()).unwrap_or(0),
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
