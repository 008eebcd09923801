//! The session disk budget at the Engine API: requests that store content
//! outside the session's own filesystem (images built, committed, loaded,
//! imported or pulled; pushes into the classroom registry) are refused once
//! the budget is reached, before anything is stored. What goes onto the
//! session's filesystem needs no check here: the kernel refuses the write.

use hyper::{Method, StatusCode};

use super::containers::blocking;
use super::http::ApiError;
use super::router::Ctx;

/// Whether `method` on the path `segs` (version stripped, split at `/`)
/// stores image or registry content.
pub fn stores_content(method: &Method, segs: &[&str]) -> bool {
    if method != Method::POST {
        return false;
    }
    matches!(
        segs,
        ["build"] | ["commit"] | ["images", "create"] | ["images", "load"]
    ) || (segs.first() == Some(&"images") && segs.len() >= 3 && segs.last() == Some(&"push"))
}

/// Refuses the request when it would store content and the scope's session
/// has reached its disk budget.
pub async fn check(ctx: &Ctx, method: &Method, segs: &[&str]) -> Result<(), ApiError> {
    if !stores_content(method, segs) {
        return Ok(());
    }
    let engine = ctx.engine.clone();
    let scope = ctx.scope.name.clone();
    let budget = blocking(move || Ok(engine.disk_budget(&scope))).await?;
    match budget {
        Some(b) if b.reached() => Err(ApiError::new(StatusCode::FORBIDDEN, b.refusal())),
        _ => Ok(()),
    }
}

/// Most of a refused request's body read (and dropped) so the client,
/// still sending, reads the refusal instead of a broken pipe.
const DISCARD_MAX: u64 = 4 << 30;

/// Reads `body` to its end (up to [`DISCARD_MAX`]), keeping nothing.
pub async fn discard(mut body: hyper::body::Incoming) {
    use http_body_util::BodyExt;
    let mut seen = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(data) = frame.data_ref() {
            seen += data.len() as u64;
        }
        if seen > DISCARD_MAX {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_that_store_images_are_checked() {
        let post = Method::POST;
        assert!(stores_content(&post, &["build"]));
        assert!(stores_content(&post, &["commit"]));
        assert!(stores_content(&post, &["images", "create"]));
        assert!(stores_content(&post, &["images", "load"]));
        assert!(stores_content(
            &post,
            &["images", "registry.local:5000", "app", "push"]
        ));
        assert!(!stores_content(&post, &["images", "push"]));
        assert!(!stores_content(&Method::GET, &["images", "json"]));
        assert!(!stores_content(&post, &["containers", "create"]));
        assert!(!stores_content(&Method::DELETE, &["images", "push"]));
    }
}
