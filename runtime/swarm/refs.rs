//! A service's references to swarm secrets and configs: checked when the
//! service is created or updated (swarmkit's words), and turned into the
//! files each task's container gets ([`crate::container::task_files`]).
//!
//! Where a file appears: a secret at `/run/secrets/NAME`, a config at
//! `/NAME`, or the absolute target the reference names (as Docker 28 does).
//! The target is only a string here: the container's pid 1 resolves it
//! inside the rootfs.

use serde_json::Value;

use super::{Cluster, SwarmError, SwarmObject};
use crate::container::task_files::TaskFile;

/// Secrets or configs.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Secret,
    Config,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }
    /// The key of the list in a `ContainerSpec`.
    fn list_key(self) -> &'static str {
        match self {
            Kind::Secret => "Secrets",
            Kind::Config => "Configs",
        }
    }
    fn id_key(self) -> &'static str {
        match self {
            Kind::Secret => "SecretID",
            Kind::Config => "ConfigID",
        }
    }
    fn name_key(self) -> &'static str {
        match self {
            Kind::Secret => "SecretName",
            Kind::Config => "ConfigName",
        }
    }
    fn objects(self, c: &Cluster) -> &[SwarmObject] {
        match self {
            Kind::Secret => &c.secrets,
            Kind::Config => &c.configs,
        }
    }
    /// Where a relative `File.Name` is put.
    fn base(self) -> &'static str {
        match self {
            Kind::Secret => "/run/secrets/",
            Kind::Config => "/",
        }
    }
}

const KINDS: [Kind; 2] = [Kind::Secret, Kind::Config];

/// At most this many secret and config files per task, and this much data
/// in them: each task start writes them all, so a spec repeating one large
/// secret must not cost the host gigabytes (swarmkit sets no bound; real
/// services use a handful of small files).
const MAX_FILES: usize = 128;
const MAX_BYTES: usize = 16 << 20;

fn refs(cs: &Value, kind: Kind) -> Vec<&Value> {
    cs[kind.list_key()]
        .as_array()
        .map(|l| l.iter().collect())
        .unwrap_or_default()
}

/// The object a reference names: by ID, and its name must match (as
/// swarmkit checks).
fn object<'a>(c: &'a Cluster, kind: Kind, r: &Value) -> Option<&'a SwarmObject> {
    let id = r[kind.id_key()].as_str().unwrap_or("");
    let name = r[kind.name_key()].as_str().unwrap_or("");
    kind.objects(c)
        .iter()
        .find(|o| o.id == id && (name.is_empty() || o.name() == name))
}

/// Where a file reference puts its file in the container.
fn target(kind: Kind, r: &Value) -> Option<String> {
    let name = r["File"]["Name"].as_str().filter(|n| !n.is_empty())?;
    Some(if name.starts_with('/') {
        name.to_string()
    } else {
        format!("{}{name}", kind.base())
    })
}

/// Checks the references of `spec` (a service spec) against cluster `c`,
/// with swarmkit's errors.
pub fn check(c: &Cluster, spec: &Value) -> Result<(), SwarmError> {
    let cs = &spec["TaskTemplate"]["ContainerSpec"];
    let count: usize = KINDS.iter().map(|k| refs(cs, *k).len()).sum();
    if count > MAX_FILES {
        return Err(SwarmError::Invalid(format!(
            "rpc error: code = InvalidArgument desc = a service may reference at most {MAX_FILES} secrets and configs"
        )));
    }
    let bytes: usize = KINDS
        .iter()
        .flat_map(|k| refs(cs, *k).into_iter().map(move |r| (*k, r)))
        .filter_map(|(k, r)| object(c, k, r))
        .map(|o| o.spec["Data"].as_str().map_or(0, |d| d.len() / 4 * 3))
        .sum();
    if bytes > MAX_BYTES {
        return Err(SwarmError::Invalid(format!(
            "rpc error: code = InvalidArgument desc = the secrets and configs of a service may hold at most {} MiB",
            MAX_BYTES >> 20
        )));
    }
    for kind in KINDS {
        let mut missing = Vec::new();
        let mut targets: Vec<(String, &str)> = Vec::new();
        for r in refs(cs, kind) {
            let name = r[kind.name_key()].as_str().unwrap_or("");
            if name.is_empty() || r[kind.id_key()].as_str().unwrap_or("").is_empty() {
                return Err(SwarmError::Invalid(format!(
                    "rpc error: code = InvalidArgument desc = malformed {} reference",
                    kind.word()
                )));
            }
            // A config may be a credential spec (`Runtime`), with no file.
            if r["File"].is_null() && matches!(kind, Kind::Config) {
                continue;
            }
            let Some(t) = target(kind, r) else {
                return Err(SwarmError::Invalid(format!(
                    "rpc error: code = InvalidArgument desc = malformed file {} reference",
                    kind.word()
                )));
            };
            if let Some((_, other)) = targets.iter().find(|(o, _)| *o == t) {
                return Err(SwarmError::Invalid(format!(
                    "rpc error: code = InvalidArgument desc = {} references '{other}' and '{name}' have a conflicting target: '{}'",
                    kind.word(),
                    r["File"]["Name"].as_str().unwrap_or("")
                )));
            }
            targets.push((t, name));
            if object(c, kind, r).is_none() {
                missing.push(name);
            }
        }
        if !missing.is_empty() {
            let word = if missing.len() == 1 {
                kind.word().to_string()
            } else {
                format!("{}s", kind.word())
            };
            return Err(SwarmError::Invalid(format!(
                "rpc error: code = InvalidArgument desc = {word} not found: {}",
                missing.join(", ")
            )));
        }
    }
    Ok(())
}

/// One file a task's container gets: its name in the container's `files`
/// directory, its target, and its content and owner.
#[derive(Debug, Clone)]
pub struct PlannedFile {
    pub name: String,
    pub target: String,
    pub file: TaskFile,
}

fn id_of(v: &Value, default: u32) -> Result<u32, String> {
    match v {
        Value::Null => Ok(default),
        Value::String(s) if s.is_empty() => Ok(default),
        Value::String(s) => s.parse().map_err(|_| format!("invalid id {s:?}")),
        Value::Number(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("invalid id {n}")),
        other => Err(format!("invalid id {other}")),
    }
}

/// The files of a task whose container spec is `cs`: every secret and
/// config it references, with its data from cluster `c`.
pub fn files(c: &Cluster, cs: &Value) -> Result<Vec<PlannedFile>, String> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for kind in KINDS {
        for (i, r) in refs(cs, kind).into_iter().enumerate() {
            let Some(target) = target(kind, r) else {
                continue;
            };
            let name = r[kind.name_key()].as_str().unwrap_or("");
            let o =
                object(c, kind, r).ok_or_else(|| format!("{} not found: {name}", kind.word()))?;
            let data = base64::engine::general_purpose::STANDARD
                .decode(o.spec["Data"].as_str().unwrap_or(""))
                .map_err(|e| format!("{} {name}: {e}", kind.word()))?;
            let mode = match &r["File"]["Mode"] {
                Value::Null => 0o444,
                v => v
                    .as_u64()
                    .and_then(|m| u32::try_from(m).ok())
                    .ok_or_else(|| format!("invalid file mode {v}"))?,
            };
            out.push(PlannedFile {
                name: format!("{}-{i}", kind.word()),
                target,
                file: TaskFile {
                    data,
                    uid: id_of(&r["File"]["UID"], 0)?,
                    gid: id_of(&r["File"]["GID"], 0)?,
                    mode,
                },
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cluster() -> Cluster {
        let mut c: Cluster = serde_json::from_value(json!({
            "id": "c", "created_at": "", "updated_at": "", "index": 0, "spec": {},
            "worker_token": "", "manager_token": "",
            "nodes": [], "services": [], "tasks": []
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        c.secrets.push(SwarmObject {
            id: "s1".into(),
            created_at: String::new(),
            updated_at: String::new(),
            index: 1,
            spec: json!({"Name": "pw", "Data": "aHVudGVyMg=="}),
        });
        c.configs.push(SwarmObject {
            id: "c1".into(),
            created_at: String::new(),
            updated_at: String::new(),
            index: 2,
            spec: json!({"Name": "conf", "Data": "eA=="}),
        });
        c
    }

    #[test]
    fn secrets_go_under_run_secrets_and_configs_under_the_root() {
        let c = cluster();
        let cs = json!({
            "Secrets": [{"SecretID": "s1", "SecretName": "pw", "File": {"Name": "pw", "UID": "0", "GID": "0", "Mode": 292}}],
            "Configs": [{"ConfigID": "c1", "ConfigName": "conf", "File": {"Name": "/etc/app.conf", "UID": "100", "GID": "101", "Mode": 256}}]
        });
        let f = files(&c, &cs).unwrap();
        assert_eq!(f[0].target, "/run/secrets/pw");
        assert_eq!(f[0].file.data, b"hunter2");
        assert_eq!((f[0].file.uid, f[0].file.mode), (0, 0o444));
        assert_eq!(f[1].target, "/etc/app.conf");
        assert_eq!(
            (f[1].file.uid, f[1].file.gid, f[1].file.mode),
            (100, 101, 0o400)
        );
        assert_eq!(
            (f[0].name.as_str(), f[1].name.as_str()),
            ("secret-0", "config-0")
        );
    }

    #[test]
    fn unknown_or_clashing_references_get_swarmkits_errors() {
        let c = cluster();
        let spec = |cs: Value| json!({"TaskTemplate": {"ContainerSpec": cs}});
        let err = check(&c, &spec(json!({"Secrets": [{"SecretID": "nope", "SecretName": "x", "File": {"Name": "x"}}]})))
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("desc = secret not found: x"), "{err}");
        let err = check(
            &c,
            &spec(json!({"Secrets": [
                {"SecretID": "s1", "SecretName": "pw", "File": {"Name": "a"}},
                {"SecretID": "s1", "SecretName": "pw", "File": {"Name": "a"}}
            ]})),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("have a conflicting target: 'a'"), "{err}");
        let err = check(&c, &spec(json!({"Configs": [{"ConfigID": "c1", "ConfigName": "conf"}] , "Secrets": [{"SecretID": "s1"}]})))
            .unwrap_err()
            .to_string();
        assert!(err.ends_with("malformed secret reference"), "{err}");
        assert!(check(
            &c,
            &spec(
                json!({"Secrets": [{"SecretID": "s1", "SecretName": "pw", "File": {"Name": "pw"}}]})
            )
        )
        .is_ok());
        let many: Vec<Value> = (0..=MAX_FILES)
            .map(|i| json!({"SecretID": "s1", "SecretName": "pw", "File": {"Name": format!("f{i}")}}))
            .collect();
        let err = check(&c, &spec(json!({ "Secrets": many })))
            .unwrap_err()
            .to_string();
        assert!(err.contains("at most 128 secrets and configs"), "{err}");
        // One large secret, referenced again and again.
        let mut c = c;
        c.secrets[0].spec["Data"] = json!("A".repeat(400 << 10));
        let big: Vec<Value> = (0..60)
            .map(|i| json!({"SecretID": "s1", "SecretName": "pw", "File": {"Name": format!("f{i}")}}))
            .collect();
        let err = check(&c, &spec(json!({ "Secrets": big })))
            .unwrap_err()
            .to_string();
        assert!(err.contains("may hold at most 16 MiB"), "{err}");
    }
}
