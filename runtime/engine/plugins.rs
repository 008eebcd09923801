//! `/plugins/...`: managed-plugin *records*, never running plugins.
//!
//! `docker plugin create NAME DIR` (and docker-py's `create_plugin`) send a
//! tar of `config.json` + `rootfs/`. Berth keeps the record dockerd would
//! show (`Name`, `Id`, `Enabled: false`, `Settings`, `Config` in Docker's
//! PluginConfig shape) per scope, so learners can create, list, inspect,
//! configure and remove plugins. The rootfs is never unpacked: only the
//! SHA-256 of the archive is kept (as the record's rootfs diff ID), because
//! nothing ever reads those files, and a learner tree that is never written
//! cannot attack the host (no `../`, symlink or device member reaches a
//! disk). `config.json` is read from the tar stream, capped in size.
//!
//! Enabling a plugin is refused: a plugin runs as a privileged host process
//! (outside any container's namespaces, often with `CAP_SYS_ADMIN` and the
//! host's mounts), which a classroom must never give a learner. Push and
//! upgrade are refused too (nothing to push from; upgrade pulls). Pull and
//! `privileges` need Docker Hub, which the classroom does not reach:
//! `privileges` answers an empty list, as dockerd 20.10 does when it
//! cannot fetch the plugin.
//!
//! Records are one JSON file per scope under `<data>/plugins/`, so they
//! survive a daemon restart; they are small (a capped count of capped
//! configs).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Mutex;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::body::{decompressed, spool_body, BodyLimit};
use super::containers::blocking;
use super::http::{empty, json, read_body, ApiError, ApiResult};
use super::router::Ctx;
use crate::image::reference::Reference;

/// Largest plugin archive accepted (before the scope's disk budget).
const MAX_ARCHIVE: u64 = 256 << 20;
/// Largest `config.json`: it is read into memory.
const MAX_CONFIG: u64 = 256 << 10;
/// Most tar members read while looking for `config.json`.
const MAX_MEMBERS: usize = 100_000;
/// Most plugins one scope may hold (so a scope's records stay a few MiB
/// at most: each request reads them whole).
const MAX_PLUGINS: usize = 16;
/// Largest `set` body.
const MAX_SET_BODY: usize = 64 << 10;

/// Serializes read-modify-write of the per-scope record files.
static STORE: Mutex<()> = Mutex::new(());

/// The record file of `scope` under the data directory `root`: its name is
/// the hash of the scope's name, so no scope name becomes a path.
fn records_path(root: &std::path::Path, scope: &str) -> PathBuf {
    let digest = hex::encode(Sha256::digest(scope.as_bytes()));
    root.join("plugins").join(format!("{digest}.json"))
}

fn store_path(ctx: &Ctx) -> PathBuf {
    records_path(ctx.engine.runtime.data_dir().root(), &ctx.scope.name)
}

/// Drops the plugin records of `scope` (its session is swept).
pub fn forget_scope(root: &std::path::Path, scope: &str) -> std::io::Result<()> {
    let _guard = STORE.lock().unwrap_or_else(|p| p.into_inner());
    match std::fs::remove_file(records_path(root, scope)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

fn load(path: &std::path::Path) -> Vec<Value> {
    std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save(path: &std::path::Path, plugins: &[Value]) -> Result<(), ApiError> {
    let err = |e: std::io::Error| ApiError::internal(format!("storing plugins: {e}"));
    let dir = path.parent().expect("store path has a parent");
    std::fs::create_dir_all(dir).map_err(err)?;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&serde_json::to_vec(plugins).expect("json"))
        .map_err(err)?;
    f.sync_all().map_err(err)?;
    std::fs::rename(&tmp, path).map_err(err)
}

/// Runs `f` on the scope's records and saves them when it asks to.
fn with_store<T>(
    ctx: &Ctx,
    f: impl FnOnce(&mut Vec<Value>) -> Result<(T, bool), ApiError>,
) -> Result<T, ApiError> {
    let path = store_path(ctx);
    let _guard = STORE.lock().unwrap_or_else(|p| p.into_inner());
    let mut plugins = load(&path);
    let (out, changed) = f(&mut plugins)?;
    if changed {
        save(&path, &plugins)?;
    }
    Ok(out)
}

/// A plugin name as dockerd stores it: `repo:tag`, `:latest` by default;
/// Docker's reference errors for a bad one.
fn canonical_name(name: &str) -> Result<String, ApiError> {
    let mut r = Reference::parse(name)?;
    if r.digest.is_some() {
        return Err(ApiError::bad_request(
            "canonical references are not permitted",
        ));
    }
    if r.tag.is_none() {
        r.tag = Some("latest".into());
    }
    Ok(r.familiar())
}

/// Index of the plugin `name` names: its name (`:latest` implied) or a
/// prefix of its ID.
fn find(plugins: &[Value], name: &str) -> Result<usize, ApiError> {
    let not_found = || ApiError::not_found(format!("plugin {name:?} not found"));
    if let Ok(full) = canonical_name(name) {
        if let Some(i) = plugins.iter().position(|p| p["Name"] == full.as_str()) {
            return Ok(i);
        }
    }
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let hits: Vec<usize> = (0..plugins.len())
        .filter(|&i| {
            plugins[i]["Id"]
                .as_str()
                .is_some_and(|id| id.starts_with(name))
        })
        .collect();
    match hits[..] {
        [i] => Ok(i),
        [] => Err(not_found()),
        _ => Err(ApiError::bad_request(format!(
            "multiple plugins found with prefix {name:?}"
        ))),
    }
}

/// `GET /plugins`, with the `capability` and `enabled` filters.
pub fn list(ctx: &Ctx) -> ApiResult {
    let filters = ctx.query.filters()?;
    filters.only(&["capability", "enabled"])?;
    for value in filters.values("enabled") {
        if !matches!(value.as_str(), "true" | "false") {
            return Err(ApiError::bad_request(format!(
                "Invalid filter 'enabled=[{}]'",
                filters.values("enabled").join(" ")
            )));
        }
    }
    let plugins = with_store(ctx, |p| Ok((p.clone(), false)))?;
    let shown: Vec<Value> = plugins
        .into_iter()
        .filter(|p| {
            let enabled = p["Enabled"].as_bool().unwrap_or(false).to_string();
            let caps: Vec<String> = p["Config"]["Interface"]["Types"]
                .as_array()
                .map(|t| {
                    t.iter()
                        .filter_map(|t| t.as_str())
                        // `docker.volumedriver/1.0` has capability `volumedriver`.
                        .map(|t| {
                            let t = t.split('/').next().unwrap_or(t);
                            t.rsplit('.').next().unwrap_or(t).to_string()
                        })
                        .collect()
                })
                .unwrap_or_default();
            filters.values("enabled").iter().all(|v| *v == enabled)
                && filters
                    .values("capability")
                    .iter()
                    .all(|c| caps.iter().any(|have| have == c))
        })
        .collect();
    Ok(json(StatusCode::OK, &Value::Array(shown)))
}

/// `GET /plugins/{name}/json`.
pub fn inspect(ctx: &Ctx, name: &str) -> ApiResult {
    let plugin = with_store(ctx, |p| Ok((p[find(p, name)?].clone(), false)))?;
    Ok(json(StatusCode::OK, &plugin))
}

/// `DELETE /plugins/{name}`: the record goes (no plugin is ever enabled,
/// so `force` changes nothing).
pub fn remove(ctx: &Ctx, name: &str) -> ApiResult {
    with_store(ctx, |p| {
        let i = find(p, name)?;
        p.remove(i);
        Ok(((), true))
    })?;
    Ok(empty(StatusCode::OK))
}

/// `POST /plugins/{name}/set`: a JSON list of `KEY=VALUE`; only Env
/// entries whose config makes their value settable may change.
pub async fn set(ctx: &Ctx, name: &str, req: Request<Incoming>) -> ApiResult {
    let body = read_body(req.into_body(), MAX_SET_BODY).await?;
    let args: Vec<String> = if body.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
    };
    with_store(ctx, |p| {
        let i = find(p, name)?;
        let plugin = &mut p[i];
        let config_env = plugin["Config"]["Env"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut env: Vec<String> = plugin["Settings"]["Env"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(|v| v.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        for arg in &args {
            // dockerd reads `KEY` alone as `KEY=`.
            let (key, value) = arg.split_once('=').unwrap_or((arg.as_str(), ""));
            let Some(decl) = config_env.iter().find(|e| e["Name"] == key) else {
                return Err(ApiError::bad_request(format!(
                    "setting {key:?} not found in the plugin configuration"
                )));
            };
            let settable = decl["Settable"]
                .as_array()
                .is_some_and(|s| s.iter().any(|v| v == "value"));
            if !settable {
                return Err(ApiError::bad_request(format!("{key:?} is not settable")));
            }
            let entry = format!("{key}={value}");
            match env.iter().position(|e| e.split('=').next() == Some(key)) {
                Some(j) => env[j] = entry,
                None => env.push(entry),
            }
        }
        plugin["Settings"]["Env"] = json!(env);
        Ok(((), true))
    })?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /plugins/{name}/enable`: refused (see the module docs).
pub fn enable(ctx: &Ctx, name: &str) -> ApiResult {
    with_store(ctx, |p| find(p, name).map(|_| ((), false)))?;
    Err(ApiError::forbidden(
        "Berth does not run plugins: a plugin runs as a privileged host process, which a classroom never offers",
    ))
}

/// `POST /plugins/{name}/disable`: no plugin is ever enabled.
pub fn disable(ctx: &Ctx, name: &str) -> ApiResult {
    with_store(ctx, |p| find(p, name).map(|_| ((), false)))?;
    let full = canonical_name(name).unwrap_or_else(|_| name.to_string());
    Err(ApiError::conflict(format!(
        "plugin is already disabled: plugin {full} found but disabled"
    )))
}

/// `POST /plugins/{name}/push` and `/upgrade`: refused.
pub fn push_or_upgrade(ctx: &Ctx, name: &str) -> ApiResult {
    with_store(ctx, |p| find(p, name).map(|_| ((), false)))?;
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "Berth does not push or upgrade plugins: they are records only, never run",
    ))
}

/// `POST /plugins/pull`: needs Docker Hub and would install code to run.
pub fn pull() -> ApiResult {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "Berth does not pull plugins: a plugin runs as a privileged host process, which a classroom never offers (docker plugin create makes a plugin record)",
    ))
}

/// `GET /plugins/privileges`: what dockerd 20.10 answers when it cannot
/// fetch the plugin: nothing to grant.
pub fn privileges(ctx: &Ctx) -> ApiResult {
    let remote = ctx.query.get("remote").unwrap_or("");
    canonical_name(remote)?;
    Ok(json(StatusCode::OK, &json!([])))
}

/// Docker's PluginConfig field names: Go decodes `config.json` keys
/// case-insensitively into these, and encodes them spelled this way.
const FIELDS: &[&str] = &[
    "DockerVersion",
    "Description",
    "Documentation",
    "Interface",
    "Types",
    "Socket",
    "ProtocolScheme",
    "Entrypoint",
    "WorkDir",
    "User",
    "UID",
    "GID",
    "Network",
    "Type",
    "Linux",
    "Capabilities",
    "AllowAllDevices",
    "Devices",
    "PropagatedMount",
    "IpcHost",
    "PidHost",
    "Mounts",
    "Env",
    "Args",
    "Name",
    "Settable",
    "Value",
    "Source",
    "Destination",
    "Options",
    "Path",
];

/// `value` with its object keys spelled as Docker spells them; keys Docker
/// does not know are dropped, as its decoder drops them.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, v) in m {
                if let Some(f) = FIELDS.iter().find(|f| f.eq_ignore_ascii_case(k)) {
                    out.insert((*f).to_string(), canonical(v));
                }
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// The record's `Config`: what was given, in Docker's shape, with the
/// fields dockerd always shows.
fn plugin_config(given: &Value, diff_id: &str) -> Result<Value, ApiError> {
    let Value::Object(_) = given else {
        return Err(ApiError::bad_request(
            "invalid plugin config: config.json is not a JSON object",
        ));
    };
    let mut c = canonical(given);
    let defaults = [
        ("DockerVersion", json!("")),
        ("Description", json!("")),
        ("Documentation", json!("")),
        ("Interface", json!({"Types": [], "Socket": ""})),
        ("Entrypoint", json!(null)),
        ("WorkDir", json!("")),
        ("User", json!({})),
        ("Network", json!({"Type": ""})),
        (
            "Linux",
            json!({"Capabilities": null, "AllowAllDevices": false, "Devices": null}),
        ),
        ("PropagatedMount", json!("")),
        ("IpcHost", json!(false)),
        ("PidHost", json!(false)),
        ("Mounts", json!([])),
        ("Env", json!([])),
        (
            "Args",
            json!({"Name": "", "Description": "", "Settable": null, "Value": null}),
        ),
    ];
    let obj = c.as_object_mut().expect("object");
    for (k, v) in defaults {
        if obj.get(k).is_none_or(Value::is_null) {
            obj.insert(k.to_string(), v);
        }
    }
    obj.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": [diff_id]}),
    );
    Ok(c)
}

/// The record's `Settings`, from the config's declared values.
fn settings(config: &Value) -> Value {
    let env: Vec<String> = config["Env"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| {
                    let name = e["Name"].as_str()?;
                    let value = e["Value"].as_str()?;
                    Some(format!("{name}={value}"))
                })
                .collect()
        })
        .unwrap_or_default();
    let args: Vec<Value> = config["Args"]["Value"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let devices: Vec<Value> = config["Linux"]["Devices"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    json!({
        "Env": env,
        "Args": args,
        "Devices": devices,
        "Mounts": config["Mounts"].as_array().cloned().unwrap_or_default(),
    })
}

/// Reads the archive's `config.json` (capped) and hashes the whole tar.
/// Nothing is written: members are read, never unpacked.
fn read_archive(file: std::fs::File) -> Result<(Value, String), ApiError> {
    let bad = |e: std::io::Error| ApiError::bad_request(format!("read plugin archive: {e}"));
    let mut hasher = HashingReader {
        inner: std::io::BufReader::with_capacity(1 << 16, file),
        hash: Sha256::new(),
    };
    let mut config = None;
    {
        let mut archive = tar::Archive::new(&mut hasher);
        for (count, entry) in archive.entries().map_err(bad)?.enumerate() {
            if count >= MAX_MEMBERS {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("plugin archive has more than {MAX_MEMBERS} files"),
                ));
            }
            let mut entry = entry.map_err(bad)?;
            let path = entry.path().map_err(bad)?.into_owned();
            let path = path.to_string_lossy();
            let path = path.trim_start_matches("./");
            if path != "config.json" || entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            if entry.size() > MAX_CONFIG {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("config.json is larger than {} KiB", MAX_CONFIG >> 10),
                ));
            }
            let mut text = Vec::new();
            (&mut entry)
                .take(MAX_CONFIG)
                .read_to_end(&mut text)
                .map_err(bad)?;
            config = Some(serde_json::from_slice::<Value>(&text).map_err(|e| {
                ApiError::bad_request(format!("invalid plugin config: config.json: {e}"))
            })?);
        }
    }
    // The rest of the stream (tar padding) counts in the digest too.
    std::io::copy(&mut hasher, &mut std::io::sink()).map_err(bad)?;
    let config = config
        .ok_or_else(|| ApiError::bad_request("invalid plugin archive: config.json not found"))?;
    Ok((
        config,
        format!("sha256:{}", hex::encode(hasher.hash.finalize())),
    ))
}

struct HashingReader<R> {
    inner: R,
    hash: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

/// `POST /plugins/create?name=NAME`: a tar (or gzipped tar) of
/// `config.json` and `rootfs/`, spooled to disk (never held in memory).
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let name = canonical_name(ctx.query.get("name").unwrap_or(""));
    // The archive is read (bounded, to disk) before a bad or taken name is
    // refused: answering while the client still sends it closes the
    // connection under the CLI, which then reports a broken pipe instead
    // of the refusal.
    let tmp = ctx.engine.runtime.data_dir().tmp_dir();
    let limit = BodyLimit::of(ctx, MAX_ARCHIVE).await;
    let body = spool_body(req.into_body(), &tmp, &limit).await?;
    let name = name?;
    if with_store(ctx, |p| {
        Ok((p.iter().any(|p| p["Name"] == name.as_str()), false))
    })? {
        return Err(ApiError::conflict(format!("plugin {name} already exists")));
    }
    let (given, diff_id) = blocking(move || {
        let body = decompressed(body, &tmp, &limit, "plugin archive")?;
        let file = body
            .into_file()
            .map_err(|e| ApiError::internal(format!("reading plugin archive: {e}")))?;
        read_archive(file)
    })
    .await?;
    let config = plugin_config(&given, &diff_id)?;
    let record = json!({
        "Id": crate::container::names::new_id(),
        "Name": name,
        "Enabled": false,
        "Settings": settings(&config),
        "PluginReference": name,
        "Config": config,
    });
    with_store(ctx, |p| {
        if p.iter().any(|p| p["Name"] == name.as_str()) {
            return Err(ApiError::conflict(format!("plugin {name} already exists")));
        }
        if p.len() >= MAX_PLUGINS {
            return Err(ApiError::forbidden(format!(
                "this engine holds at most {MAX_PLUGINS} plugins"
            )));
        }
        p.push(record);
        Ok(((), true))
    })?;
    Ok(empty(StatusCode::NO_CONTENT))
}
