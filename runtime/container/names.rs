//! Container IDs and names: Docker's rules for valid names, its conflict
//! message, and generated `adjective_noun` names.

use rand::{Rng, RngCore};

use super::ContainerError;

/// A new container ID: 32 random bytes in hex, as Docker makes them.
pub fn new_id() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Checks a name against Docker's `[a-zA-Z0-9][a-zA-Z0-9_.-]+` (a leading
/// slash is allowed and dropped).
pub fn validate(name: &str) -> Result<String, ContainerError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let mut chars = bare.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok =
        bare.len() >= 2 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok {
        Ok(bare.to_string())
    } else {
        Err(ContainerError::InvalidConfig(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// Docker's error for a name already taken.
pub fn conflict(name: &str, holder: &str) -> crate::Error {
    ContainerError::Conflict(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
    .into()
}

const ADJECTIVES: &[&str] = &[
    "brave", "calm", "clever", "cosy", "daring", "eager", "gentle", "happy", "jolly", "keen",
    "kind", "lively", "lucid", "merry", "nimble", "patient", "plucky", "quiet", "quirky", "sharp",
    "steady", "sunny", "swift", "tidy", "upbeat", "vivid", "witty", "zesty",
];

/// Sailors, shipwrights and harbour folk: Berth's names for containers.
const NOUNS: &[&str] = &[
    "anchor",
    "bosun",
    "captain",
    "cargo",
    "compass",
    "deckhand",
    "dock",
    "ferry",
    "harbour",
    "helm",
    "keel",
    "lighthouse",
    "mariner",
    "mast",
    "navigator",
    "pilot",
    "port",
    "quay",
    "rudder",
    "sail",
    "schooner",
    "skipper",
    "starboard",
    "tug",
    "wharf",
];

/// A generated name that `taken` does not reject.
pub fn generate(taken: impl Fn(&str) -> bool) -> String {
    let mut rng = rand::thread_rng();
    loop {
        let name = format!(
            "{}_{}",
            ADJECTIVES[rng.gen_range(0..ADJECTIVES.len())],
            NOUNS[rng.gen_range(0..NOUNS.len())]
        );
        if !taken(&name) {
            return name;
        }
        let numbered = format!("{name}{}", rng.gen_range(0..10));
        if !taken(&numbered) {
            return numbered;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_dockers_pattern() {
        assert_eq!(validate("web").unwrap(), "web");
        assert_eq!(validate("/web-1.a_b").unwrap(), "web-1.a_b");
        for bad in ["", "a", "-web", "we b", "wéb", "web/x"] {
            let err = validate(bad).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("Invalid container name ({bad})")),
                "{err}"
            );
        }
        let id = new_id();
        assert_eq!(id.len(), 64);
        assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn generated_names_avoid_taken_ones() {
        let first = generate(|_| false);
        assert!(validate(&first).is_ok());
        let other = generate(|n| n == first);
        assert_ne!(other, first);
    }
}
