//! Registry checks: a repository, and optionally a tag of it, in the
//! session's namespace of the classroom registry.
//!
//! A learner pushes `registry.local:5000/myapp:v1`; the engine stores it as
//! `s-<session>/myapp` (see `berth_runtime::session::registry`). A check
//! names the repository as the learner does (`myapp`, or with the
//! `registry.local:5000/` prefix, or `myapp:v1`) and reads the registry's
//! storage directly.

use berth_runtime::registry::storage::{valid_name, valid_tag};
use berth_runtime::session::registry::namespace;

use super::{fail, Check, Outcome, Target};

/// The host part learners write before a repository.
const HOST: &str = "registry.local:5000/";

/// `(repository, tag)` of what a check names; the message says what is wrong.
pub fn repository(name: &str) -> Result<(String, Option<String>), String> {
    let bare = name.strip_prefix(HOST).unwrap_or(name);
    let (repo, tag) = match bare.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, Some(t.to_string())),
        _ => (bare, None),
    };
    if !valid_name(repo) {
        return Err(format!("registry {name:?} is not a repository name"));
    }
    if let Some(t) = &tag {
        if !valid_tag(t) {
            return Err(format!("registry {name:?}: {t:?} is not a tag"));
        }
    }
    Ok((repo.to_string(), tag))
}

/// The repository as the learner writes it (`registry.local:5000/myapp`).
pub fn display(name: &str) -> String {
    let bare = name.strip_prefix(HOST).unwrap_or(name);
    format!("{HOST}{bare}")
}

/// Checks the repository `name` (and `c.tag`) in `target`'s session namespace.
pub fn check(target: &Target, name: &str, c: &Check) -> Outcome {
    let (repo, named_tag) = repository(name).map_err(|m| ("a valid check".to_string(), m))?;
    let Some(server) = target.engine.classroom_registry.get() else {
        return fail(
            format!("repository {}", display(&repo)),
            "no classroom registry in this server",
        );
    };
    let ns = namespace(&target.session);
    let full = format!("{ns}/{repo}");
    let storage = server.storage();
    let tags = storage.tags(&full);
    if !storage.repo_exists(&full) && tags.is_empty() {
        let mine: Vec<String> = storage
            .repositories()
            .into_iter()
            .filter_map(|r| r.strip_prefix(&format!("{ns}/")).map(display))
            .collect();
        return fail(
            format!("repository {} pushed", display(&repo)),
            if mine.is_empty() {
                "nothing pushed to your registry namespace".to_string()
            } else {
                format!("repositories {}", mine.join(", "))
            },
        );
    }
    let mut found = vec![format!("repository {}", display(&repo))];
    for want in named_tag.iter().chain(c.tag.iter()) {
        if !tags.contains(want) {
            return fail(
                format!("tag {want} of {}", display(&repo)),
                if tags.is_empty() {
                    "no tags".to_string()
                } else {
                    format!("tags {}", tags.join(", "))
                },
            );
        }
        found.push(format!("tag {want}"));
    }
    Ok(found.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_read_as_the_learner_writes_them() {
        assert_eq!(repository("myapp").unwrap(), ("myapp".into(), None));
        assert_eq!(
            repository("registry.local:5000/team/app:v1").unwrap(),
            ("team/app".into(), Some("v1".into()))
        );
        assert!(repository("My App").is_err());
        assert!(repository("app:bad tag").is_err());
        assert_eq!(display("myapp"), "registry.local:5000/myapp");
    }
}
