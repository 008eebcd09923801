//! `POST /containers/{id}/update` (`docker update`): new resource limits and
//! restart policy for a container, applied at once to a running one.

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::containers::{blocking, find};
use super::http::{json, parse_json, read_body, ApiError, ApiResult};
use super::router::Ctx;
use crate::container::config::RestartPolicy;

/// The resource fields Berth applies; the rest of Docker's `Resources` is
/// kept for inspect only (as at create).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct UpdateBody {
    memory: i64,
    memory_swap: i64,
    nano_cpus: i64,
    cpu_quota: i64,
    cpu_period: i64,
    cpu_shares: i64,
    pids_limit: Option<i64>,
    restart_policy: Option<RestartPolicyJson>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
struct RestartPolicyJson {
    name: String,
    maximum_retry_count: i64,
}

/// `HostConfig` fields an update may carry, shown back by inspect.
const SHOWN: &[&str] = &[
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "NanoCpus",
    "CpuQuota",
    "CpuPeriod",
    "CpuShares",
    "CpusetCpus",
    "CpusetMems",
    "PidsLimit",
    "BlkioWeight",
];

pub async fn update(ctx: &Ctx, id: &str, req: Request<Incoming>) -> ApiResult {
    let c = find(ctx, id)?;
    let raw = read_body(req.into_body(), 1 << 20).await?;
    let body: UpdateBody = parse_json(&raw)?;
    let fields: Map<String, Value> = parse_json(&raw)?;
    let mut limits = c.snapshot().config.limits;
    super::convert::CpuMemory {
        memory: body.memory,
        memory_swap: body.memory_swap,
        nano_cpus: body.nano_cpus,
        cpu_quota: body.cpu_quota,
        cpu_period: body.cpu_period,
        cpu_shares: body.cpu_shares,
    }
    .apply(&mut limits)?;
    if let Some(p) = body.pids_limit.filter(|p| *p != 0) {
        limits.pids = Some(p).filter(|p| *p > 0);
    }
    let restart = match body.restart_policy {
        Some(p) if !p.name.is_empty() => {
            let text = if p.name == "on-failure" && p.maximum_retry_count > 0 {
                format!("on-failure:{}", p.maximum_retry_count)
            } else {
                p.name.clone()
            };
            Some(RestartPolicy::parse(&text).map_err(ApiError::bad_request)?)
        }
        _ => None,
    };
    // Only what the request set: zero is Docker's "leave as it is".
    let shown: Map<String, Value> = fields
        .into_iter()
        .filter(|(k, v)| {
            SHOWN.contains(&k.as_str())
                && !v.is_null()
                && v.as_i64() != Some(0)
                && v.as_str() != Some("")
        })
        .collect();
    let runtime = ctx.engine.runtime.clone();
    blocking(move || {
        runtime
            .update(&c, limits, restart, shown)
            .map_err(ApiError::from)
    })
    .await?;
    Ok(json(StatusCode::OK, &json!({ "Warnings": [] })))
}
