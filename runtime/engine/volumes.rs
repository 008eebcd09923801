//! `/volumes/...`: create, list, inspect, remove, prune; and the create-time
//! check of `--mount type=bind` sources.

use std::collections::BTreeMap;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::containers::blocking;
use super::http::{json, parse_json, read_body, ApiError, ApiResult};
use super::router::{no_content, Ctx};
use crate::container::config::MountConfig;
use crate::container::ContainerConfig;
use crate::volume::Volume;

fn volume_json(v: &Volume) -> Value {
    json!({
        "CreatedAt": v.created,
        "Driver": v.driver,
        "Labels": v.labels,
        "Mountpoint": super::paths::volume(&v.mountpoint, &v.name),
        "Name": v.name,
        "Options": v.options,
        "Scope": "local",
    })
}

/// `--mount type=bind` needs an existing source (in the scope's root);
/// `-v` makes a missing one at start.
pub fn check_bind_sources(ctx: &Ctx, config: &ContainerConfig) -> Result<(), ApiError> {
    let mounts = config
        .host_config
        .get("Mounts")
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default();
    let root = ctx.engine.runtime.bind_root(&ctx.scope.name);
    for m in mounts {
        if m.get("Type").and_then(|t| t.as_str()) != Some("bind") {
            continue;
        }
        let source = m.get("Source").and_then(|s| s.as_str()).unwrap_or("");
        if !source.starts_with('/') {
            return Err(ApiError::bad_request(format!(
                "invalid mount config for type \"bind\": invalid mount path: '{source}' mount path must be absolute"
            )));
        }
        crate::volume::mounts::resolve_in_root(&root, std::path::Path::new(source), None)?;
    }
    for m in &config.mounts {
        if let MountConfig::Bind { target, .. } | MountConfig::Volume { target, .. } = m {
            if config
                .mounts
                .iter()
                .filter(|o| o.target() == target)
                .count()
                > 1
            {
                return Err(ApiError::bad_request(format!(
                    "Duplicate mount point: {target}"
                )));
            }
        }
    }
    Ok(())
}

/// `Config.Volumes` (`-v /path`, and what the CLI cannot tell apart):
/// plain absolute paths are anonymous volumes; `a:b` specs are parsed as
/// `-v` is, with its errors.
pub fn anonymous_targets(
    config: &mut ContainerConfig,
    specs: Vec<String>,
) -> Result<Vec<String>, ApiError> {
    let mut targets = Vec::new();
    for spec in specs {
        if spec.contains(':') {
            config.mounts.push(super::convert::parse_bind(&spec)?);
        } else if spec.starts_with('/') {
            targets.push(spec);
        } else {
            return Err(ApiError::bad_request(format!(
                "invalid volume specification: '{spec}': invalid mount config for type \"volume\": invalid mount path: '{spec}' mount path must be absolute"
            )));
        }
    }
    Ok(targets)
}

/// `GET /volumes`.
pub fn list(ctx: &Ctx) -> ApiResult {
    let filters = ctx.query.filters()?;
    filters.only(&["name", "label", "dangling", "driver"])?;
    let runtime = &ctx.engine.runtime;
    let scope = &ctx.scope.name;
    let list: Vec<Value> = runtime
        .volumes()
        .list(scope)
        .iter()
        .filter(|v| {
            let names = filters.values("name");
            names.is_empty() || names.iter().any(|n| v.name.contains(n.as_str()))
        })
        .filter(|v| filters.labels_match(&v.labels))
        .filter(
            |v| match filters.values("dangling").first().map(String::as_str) {
                Some("true" | "1") => runtime.volume_users(scope, &v.name).is_empty(),
                Some("false" | "0") => !runtime.volume_users(scope, &v.name).is_empty(),
                _ => true,
            },
        )
        .map(volume_json)
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"Volumes": list, "Warnings": null}),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct CreateJson {
    name: String,
    driver: String,
    labels: Option<BTreeMap<String, String>>,
    driver_opts: Option<BTreeMap<String, String>>,
}

/// `POST /volumes/create`.
pub async fn create(ctx: &Ctx, req: Request<Incoming>) -> ApiResult {
    let body = read_body(req.into_body(), 1 << 20).await?;
    let c: CreateJson = parse_json(&body)?;
    if !c.driver.is_empty() && c.driver != "local" {
        return Err(ApiError::not_found(format!(
            "error looking up volume plugin {}: plugin \"{}\" not found",
            c.driver, c.driver
        )));
    }
    if c.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
        return Err(ApiError::bad_request(
            "volume driver options are not supported in this classroom",
        ));
    }
    let runtime = ctx.engine.runtime.clone();
    let scope = ctx.scope.name.clone();
    let v = blocking(move || {
        let owner = if runtime.options.user_namespaces {
            Some(runtime.id_range(&scope)?.base)
        } else {
            None
        };
        Ok(runtime.volumes().create(
            &scope,
            Some(c.name.as_str()),
            c.labels.unwrap_or_default(),
            owner,
        )?)
    })
    .await?;
    Ok(json(StatusCode::CREATED, &volume_json(&v)))
}

/// `GET /volumes/{name}`.
pub fn inspect(ctx: &Ctx, name: &str) -> ApiResult {
    let v = ctx.engine.runtime.volumes().get(&ctx.scope.name, name)?;
    Ok(json(StatusCode::OK, &volume_json(&v)))
}

/// `DELETE /volumes/{name}`: refused while a container uses it.
pub async fn remove(ctx: &Ctx, name: &str) -> ApiResult {
    let runtime = ctx.engine.runtime.clone();
    let scope = ctx.scope.name.clone();
    let name = name.to_string();
    let force = ctx.query.flag("force");
    blocking(move || {
        let users = runtime.volume_users(&scope, &name);
        match runtime.volumes().remove(&scope, &name, &users) {
            Err(crate::volume::VolumeError::NotFound(_)) if force => Ok(()),
            other => Ok(other?),
        }
    })
    .await?;
    Ok(no_content())
}

/// `POST /volumes/prune`: unused anonymous volumes (all unused ones with
/// `all=true`), as Docker 23+ does.
pub async fn prune(ctx: &Ctx) -> ApiResult {
    let filters = ctx.query.filters()?;
    filters.only(&["label", "all"])?;
    let all = matches!(
        filters.values("all").first().map(String::as_str),
        Some("true" | "1")
    );
    let runtime = ctx.engine.runtime.clone();
    let scope = ctx.scope.name.clone();
    let (deleted, reclaimed) = blocking(move || {
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for v in runtime.volumes().list(&scope) {
            if !(all || v.anonymous) || !filters.labels_match(&v.labels) {
                continue;
            }
            if !runtime.volume_users(&scope, &v.name).is_empty() {
                continue;
            }
            let size = runtime.volumes().size(&v);
            if runtime.volumes().remove(&scope, &v.name, &[]).is_ok() {
                deleted.push(v.name);
                reclaimed += size;
            }
        }
        Ok((deleted, reclaimed))
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        &json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}),
    ))
}
