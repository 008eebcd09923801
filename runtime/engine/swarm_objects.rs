//! Swarm secrets and configs (`/secrets`, `/configs`): named blobs a
//! manager keeps in its cluster, as swarmkit stores them. A secret's data is
//! never shown back; a config's is.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

use super::http::{json, read_body, ApiError, ApiResult};
use super::router::Ctx;
use crate::swarm::{new_id, Cluster, SwarmError, SwarmObject};

/// Which of the two an endpoint serves.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Secret,
    Config,
}

/// At most this many of each kind in a cluster: a learner's loop must not
/// grow the daemon's memory (swarmkit itself sets no bound).
const MAX_OBJECTS: usize = 1000;

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Secret => "secret",
            Kind::Config => "config",
        }
    }

    /// swarmkit's bounds: 500 KB for a secret, 1000 KB for a config.
    fn max_size(self) -> usize {
        match self {
            Kind::Secret => 500 * 1024,
            Kind::Config => 1000 * 1024,
        }
    }

    fn list(self, c: &Cluster) -> &Vec<SwarmObject> {
        match self {
            Kind::Secret => &c.secrets,
            Kind::Config => &c.configs,
        }
    }

    fn list_mut(self, c: &mut Cluster) -> &mut Vec<SwarmObject> {
        match self {
            Kind::Secret => &mut c.secrets,
            Kind::Config => &mut c.configs,
        }
    }

    /// The key a service's container spec names these under.
    fn spec_key(self) -> (&'static str, &'static str) {
        match self {
            Kind::Secret => ("Secrets", "SecretID"),
            Kind::Config => ("Configs", "ConfigID"),
        }
    }
}

/// swarmkit's name rule: 1 to 64 of `[a-zA-Z0-9-_.]`, alphanumeric at both ends.
fn valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

fn find(kind: Kind, c: &Cluster, key: &str) -> Result<usize, SwarmError> {
    let list = kind.list(c);
    if let Some(i) = list.iter().position(|o| o.id == key) {
        return Ok(i);
    }
    if let Some(i) = list.iter().position(|o| o.name() == key) {
        return Ok(i);
    }
    let matches: Vec<usize> = list
        .iter()
        .enumerate()
        .filter(|(_, o)| !key.is_empty() && o.id.starts_with(key))
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(SwarmError::NotFound(format!(
            "{} {key} not found",
            kind.word()
        ))),
        _ => Err(SwarmError::NotFound(format!(
            "{} {key} is ambiguous ({} matches found)",
            kind.word(),
            matches.len()
        ))),
    }
}

fn object_json(kind: Kind, o: &SwarmObject) -> Value {
    let mut spec = o.spec.clone();
    if let (Kind::Secret, Some(obj)) = (kind, spec.as_object_mut()) {
        obj.remove("Data");
    }
    if spec.get("Labels").is_none_or(Value::is_null) {
        spec["Labels"] = json!({});
    }
    json!({
        "ID": o.id,
        "Version": {"Index": o.index},
        "CreatedAt": o.created_at,
        "UpdatedAt": o.updated_at,
        "Spec": spec,
    })
}

fn read<T>(ctx: &Ctx, f: impl FnOnce(&Cluster) -> Result<T, SwarmError>) -> Result<T, ApiError> {
    // A manager's view, as every swarm read: the same checks as a write.
    let swarm = &ctx.engine.swarm;
    swarm.start(&ctx.engine);
    let state = swarm.lock();
    let i = state
        .cluster_of(&ctx.scope.name)
        .ok_or_else(|| SwarmError::Unavailable(crate::swarm::NOT_MANAGER.into()))?;
    let c = &state.clusters[i];
    if c.node_of_scope(&ctx.scope.name)
        .map(|n| n.role != "manager")
        .unwrap_or(true)
    {
        return Err(SwarmError::Unavailable(crate::swarm::WORKER_NODE.into()).into());
    }
    Ok(f(c)?)
}

/// `POST /{secrets,configs}/create`.
pub async fn create(ctx: &Ctx, kind: Kind, req: Request<Incoming>) -> ApiResult {
    let body = read_body(req.into_body(), 2 << 20).await?;
    let mut spec: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    // dockerd's decoder ignores case (docker-py sends `templating.name`).
    for key in ["Templating", "Driver"] {
        if let Some(Value::Object(obj)) = spec.get_mut(key) {
            for (lower, proper) in [("name", "Name"), ("options", "Options")] {
                if let Some(v) = obj.remove(lower) {
                    obj.entry(proper).or_insert(v);
                }
            }
        }
    }
    if !spec.is_object() {
        return Err(ApiError::bad_request("invalid JSON: not an object"));
    }
    let name = spec.get("Name").and_then(Value::as_str).unwrap_or("");
    if !valid_name(name) {
        return Err(SwarmError::Invalid("rpc error: code = InvalidArgument desc = invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]".into()).into());
    }
    use base64::Engine as _;
    let data = spec
        .get("Data")
        .and_then(Value::as_str)
        .map(|d| base64::engine::general_purpose::STANDARD.decode(d))
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?
        .unwrap_or_default();
    // A secret from an external driver carries no data.
    let driver = spec.get("Driver").is_some_and(|d| !d.is_null());
    if (!driver && data.is_empty()) || data.len() >= kind.max_size() {
        return Err(SwarmError::Invalid(format!(
            "rpc error: code = InvalidArgument desc = {} data must be larger than 0 and less than {} KB",
            kind.word(),
            kind.max_size() / 1024
        ))
        .into());
    }
    let name = name.to_string();
    let id = ctx
        .engine
        .swarm
        .with_cluster(&ctx.scope.name, |c| {
            if kind.list(c).iter().any(|o| o.name() == name) {
                return Err(SwarmError::Conflict(format!(
                    "rpc error: code = AlreadyExists desc = {} {name} already exists",
                    kind.word()
                )));
            }
            if kind.list(c).len() >= MAX_OBJECTS {
                return Err(SwarmError::Invalid(format!(
                    "rpc error: code = ResourceExhausted desc = this swarm holds {MAX_OBJECTS} {}s already",
                    kind.word()
                )));
            }
            let now = crate::container::state::now_rfc3339();
            let index = c.next_index();
            let id = new_id();
            kind.list_mut(c).push(SwarmObject {
                id: id.clone(),
                created_at: now.clone(),
                updated_at: now,
                index,
                spec,
            });
            Ok(id)
        })?;
    Ok(json(StatusCode::CREATED, &json!({ "ID": id })))
}

/// `GET /{secrets,configs}?filters=`.
pub fn list(ctx: &Ctx, kind: Kind) -> ApiResult {
    let filters = ctx.query.filters()?;
    filters.only(&["names", "name", "id", "label"])?;
    let out = read(ctx, |c| {
        Ok(kind
            .list(c)
            .iter()
            .filter(|o| {
                let names: Vec<&String> = filters
                    .values("names")
                    .iter()
                    .chain(filters.values("name"))
                    .collect();
                names.is_empty() || names.iter().any(|n| o.name() == n.as_str())
            })
            .filter(|o| {
                let ids = filters.values("id");
                ids.is_empty() || ids.iter().any(|i| o.id.starts_with(i.as_str()))
            })
            .filter(|o| {
                let labels = o
                    .spec
                    .get("Labels")
                    .and_then(|l| serde_json::from_value(l.clone()).ok())
                    .unwrap_or_default();
                filters.labels_match(&labels)
            })
            .map(|o| object_json(kind, o))
            .collect::<Vec<_>>())
    })?;
    Ok(json(StatusCode::OK, &Value::Array(out)))
}

/// `GET /{secrets,configs}/{id}`.
pub fn inspect(ctx: &Ctx, kind: Kind, id: &str) -> ApiResult {
    let out = read(ctx, |c| {
        Ok(object_json(kind, &kind.list(c)[find(kind, c, id)?]))
    })?;
    Ok(json(StatusCode::OK, &out))
}

/// `DELETE /{secrets,configs}/{id}`: refused while a service uses it.
pub fn remove(ctx: &Ctx, kind: Kind, id: &str) -> ApiResult {
    ctx.engine.swarm.with_cluster(&ctx.scope.name, |c| {
        let i = find(kind, c, id)?;
        let (list_key, id_key) = kind.spec_key();
        let object_id = kind.list(c)[i].id.clone();
        let users: Vec<String> = c
            .services
            .iter()
            .filter(|s| {
                s.spec["TaskTemplate"]["ContainerSpec"][list_key]
                    .as_array()
                    .is_some_and(|refs| refs.iter().any(|r| r[id_key] == object_id.as_str()))
            })
            .map(|s| s.name().to_string())
            .collect();
        if !users.is_empty() {
            let name = kind.list(c)[i].name().to_string();
            return Err(SwarmError::Invalid(format!(
                "rpc error: code = InvalidArgument desc = {} '{name}' is in use by the following service: {}",
                kind.word(),
                users.join(", ")
            )));
        }
        kind.list_mut(c).remove(i);
        Ok(())
    })?;
    Ok(super::http::empty(StatusCode::NO_CONTENT))
}

/// `POST /{secrets,configs}/{id}/update?version=`: only labels may change.
pub async fn update(ctx: &Ctx, kind: Kind, id: &str, req: Request<Incoming>) -> ApiResult {
    let body = read_body(req.into_body(), 2 << 20).await?;
    let spec: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let version: Option<u64> = ctx.query.get("version").and_then(|v| v.parse().ok());
    ctx.engine.swarm.with_cluster(&ctx.scope.name, |c| {
        let i = find(kind, c, id)?;
        if version.is_some_and(|v| v != kind.list(c)[i].index) {
            return Err(SwarmError::Invalid(
                "rpc error: code = Unknown desc = update out of sequence".into(),
            ));
        }
        let index = c.next_index();
        let o = &mut kind.list_mut(c)[i];
        o.spec["Labels"] = spec.get("Labels").cloned().unwrap_or(json!({}));
        o.index = index;
        o.updated_at = crate::container::state::now_rfc3339();
        Ok(())
    })?;
    Ok(super::http::empty(StatusCode::OK))
}
