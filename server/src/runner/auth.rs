//! The front ↔ runner secret: a bearer token both sides read from a file
//! (a Kubernetes Secret mounted into both pods).
//!
//! Why a bearer token and not HMAC-signed requests: the traffic that needs
//! it is mostly long-lived WebSockets (terminals) and a few small JSON
//! calls, all on the cluster's private network between two known parties;
//! a signature per request would guard against a replay only an attacker
//! already on that network could make, and that attacker is kept out by
//! the network itself (a NetworkPolicy lets only front pods reach the
//! runner port, see `deploy/kubernetes/`) or by TLS in front of the runner
//! where the network is not private. The token never reaches a browser.

use std::path::Path;

use sha2::{Digest, Sha256};

/// The header carrying the token.
pub const HEADER: &str = "authorization";

/// The shared secret.
#[derive(Clone)]
pub struct Secret {
    token: String,
    digest: [u8; 32],
}

/// Why the secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("read the runner secret {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the runner secret in {0} is shorter than 16 characters")]
    Short(String),
}

impl Secret {
    /// The secret in `path` (surrounding whitespace ignored; at least 16
    /// characters, so a placeholder left in a manifest does not pass).
    pub fn read(path: &Path) -> Result<Self, SecretError> {
        let text = std::fs::read_to_string(path).map_err(|source| SecretError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::new(text.trim()).ok_or_else(|| SecretError::Short(path.display().to_string()))
    }

    /// A secret from its text (`None` when too short).
    pub fn new(token: &str) -> Option<Self> {
        (token.len() >= 16).then(|| Self {
            token: token.to_string(),
            digest: Sha256::digest(token.as_bytes()).into(),
        })
    }

    /// The `Authorization` header value that carries it.
    pub fn header_value(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// Whether an `Authorization` header value carries this secret. Both
    /// sides are hashed first and the digests compared without an early
    /// exit, so the time taken says nothing about how much matched.
    pub fn accepts(&self, header: &str) -> bool {
        let Some(given) = header.strip_prefix("Bearer ") else {
            return false;
        };
        let d: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        d.iter()
            .zip(self.digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_its_own_token() {
        let s = Secret::new("0123456789abcdef-secret").unwrap();
        assert!(s.accepts(&s.header_value()));
        assert!(!s.accepts("Bearer 0123456789abcdef-secreT"));
        assert!(!s.accepts("0123456789abcdef-secret"));
        assert!(!s.accepts("Bearer "));
        assert!(Secret::new("short").is_none());
    }
}
