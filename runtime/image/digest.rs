//! Content IDs that become paths in the store.
//!
//! A blob's digest, a layer's diff ID and an image's ID all name files under
//! the store (`blobs/sha256/<hex>`, `layers/<hex>`), and all of them can come
//! from a learner: a `docker load` archive, a registry they run, an API call
//! (`docker rmi sha256:../..`). Each is checked here, where it enters, to be
//! exactly `sha256:` and 64 lowercase hex digits, so none can name anything
//! but a store entry.

use super::ImageError;

/// The hex part of `id` if it is `sha256:` + 64 lowercase hex digits.
pub(crate) fn hex(id: &str) -> Option<&str> {
    let hex = id.strip_prefix("sha256:")?;
    let ok = hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    ok.then_some(hex)
}

/// Whether `id` is a well-formed sha256 content ID.
pub fn is_valid(id: &str) -> bool {
    hex(id).is_some()
}

/// The hex part of `id`, or an error naming what it was (`what` is the
/// field: `diff_id`, `digest`, `image ID`, …) and why it was refused.
pub(crate) fn checked<'a>(what: &str, id: &'a str) -> Result<&'a str, ImageError> {
    hex(id).ok_or_else(|| {
        ImageError::Invalid(format!("invalid {what} {id:?}: not sha256 + 64 hex digits"))
    })
}

/// Checks every diff ID of an image config's `rootfs`.
pub(crate) fn check_diff_ids<'a>(
    diff_ids: impl IntoIterator<Item = &'a String>,
) -> Result<(), ImageError> {
    for d in diff_ids {
        checked("diff_id", d)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sha256_and_64_lowercase_hex_digits_pass() {
        let good = format!("sha256:{}", "0a".repeat(32));
        assert_eq!(hex(&good), Some(&good[7..]));
        for bad in [
            "sha256:../../../../etc".to_string(),
            format!("sha256:{}", "0A".repeat(32)),
            format!("sha256:{}", "0".repeat(63)),
            format!("sha256:{}", "0".repeat(65)),
            format!("sha512:{}", "0".repeat(64)),
            "0".repeat(64),
            format!("sha256:{}/", "0".repeat(63)),
            String::new(),
        ] {
            assert!(hex(&bad).is_none(), "{bad}");
        }
        let e = checked("diff_id", "sha256:../../x").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid diff_id "sha256:../../x": not sha256 + 64 hex digits"#
        );
    }
}
