//! `/plugins/...`: Berth runs no managed plugins (no volume, network or log
//! driver comes from outside the binary), so the list is empty and every
//! plugin named is not found, in dockerd's words. Installing one would run
//! an image's code as a host service, which neither a classroom nor the
//! host tool offers.

use hyper::StatusCode;
use serde_json::json;

use super::http::{json, ApiError, ApiResult};
use super::router::Ctx;

/// `GET /plugins`: none installed (filters are checked as dockerd checks
/// them).
pub fn list(ctx: &Ctx) -> ApiResult {
    let filters = ctx.query.filters()?;
    filters.only(&["capability", "enable"])?;
    for value in filters.values("enable") {
        if !matches!(value.as_str(), "true" | "false") {
            return Err(ApiError::bad_request(format!(
                "Invalid filter 'enable={value}'"
            )));
        }
    }
    Ok(json(StatusCode::OK, &json!([])))
}

/// Any request about one plugin (inspect, remove, enable, disable, set,
/// push, upgrade): dockerd's 404 for a plugin it does not have.
pub fn not_found(name: &str) -> ApiResult {
    Err(ApiError::not_found(format!("plugin {name:?} not found")))
}

/// `GET /plugins/privileges`, `POST /plugins/pull`, `POST /plugins/create`:
/// installing a plugin is not offered.
pub fn install() -> ApiResult {
    Err(ApiError::new(
        StatusCode::NOT_IMPLEMENTED,
        "plugins are not supported by this engine: Berth runs no managed plugins",
    ))
}
