//! What dockerd does to a service spec before swarmkit stores it: network
//! names become IDs (a client may send either; inspect shows IDs, as
//! docker-py's tests and `docker stack deploy` expect), and capability
//! names are checked with the container's own rules.

use serde_json::{json, Value};

use super::http::ApiError;
use super::router::Ctx;

/// Resolves the networks of `spec` (`TaskTemplate.Networks`, and the
/// deprecated top-level `Networks`, which dockerd moves there) to IDs in
/// the request's scope.
fn resolve_networks(ctx: &Ctx, spec: &mut Value) -> Result<(), ApiError> {
    if let Some(legacy) = spec.as_object_mut().and_then(|s| s.remove("Networks")) {
        if spec["TaskTemplate"]["Networks"].is_null() && legacy.is_array() {
            if let Some(t) = spec["TaskTemplate"].as_object_mut() {
                t.insert("Networks".into(), legacy);
            }
        }
    }
    let Some(list) = spec["TaskTemplate"]["Networks"].as_array_mut() else {
        return Ok(());
    };
    for n in list {
        let target = n["Target"].as_str().unwrap_or("").to_string();
        if target.is_empty() {
            return Err(ApiError::bad_request(
                "rpc error: code = InvalidArgument desc = network target must be set",
            ));
        }
        let network = ctx
            .engine
            .runtime
            .net()
            .get(&ctx.scope.name, &target)
            .map_err(|_| ApiError::not_found(format!("network {target} not found")))?;
        n["Target"] = json!(network.id);
    }
    Ok(())
}

/// `--cap-add`/`--cap-drop` of a service: refused at create with the
/// container's words (`invalid CapAdd: unknown capability: "CAP_FOO"`).
fn check_capabilities(spec: &Value) -> Result<(), ApiError> {
    let cs = &spec["TaskTemplate"]["ContainerSpec"];
    let list = |key: &str| -> Vec<String> {
        cs[key]
            .as_array()
            .map(|l| l.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    crate::container::capabilities::validate(&list("CapabilityAdd"), &list("CapabilityDrop"))
        .map_err(ApiError::bad_request)
}

/// Applies what dockerd applies to a spec given to create or update.
pub fn prepare(ctx: &Ctx, spec: &mut Value) -> Result<(), ApiError> {
    resolve_networks(ctx, spec)?;
    check_capabilities(spec)
}
