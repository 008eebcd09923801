//! A session's namespace in the classroom registry: each node's scope pushes
//! `registry.local:5000/app` into `s-<session>/app`, with a token that the
//! registry grants that namespace alone (DESIGN.md: one private registry
//! namespace per session).

use crate::engine::distribution::ScopeRegistry;
use crate::engine::Engine;
use crate::registry::Grant;

/// The namespace of `session` in the classroom registry.
pub fn namespace(session: &str) -> String {
    format!("s-{session}")
}

/// Lets `scope` (a node of `session`) push and pull in the session's
/// namespace, when this process serves a classroom registry.
pub(super) fn admit(engine: &Engine, session: &str, scope: &str) {
    let Some(server) = engine.classroom_registry.get() else {
        return;
    };
    let token = {
        use rand::Rng;
        let bytes: [u8; 24] = rand::thread_rng().gen();
        hex::encode(bytes)
    };
    server.grant(
        &token,
        Grant {
            namespace: namespace(session),
        },
    );
    let mut settings = engine.registry_settings();
    settings.scopes.insert(
        scope.to_string(),
        ScopeRegistry {
            namespace: namespace(session),
            token: Some(token),
        },
    );
    engine.set_registry(settings);
}

/// Takes `scope`'s token away (its node is gone).
pub(super) fn dismiss(engine: &Engine, scope: &str) {
    let mut settings = engine.registry_settings();
    if let Some(entry) = settings.scopes.remove(scope) {
        if let (Some(server), Some(token)) = (engine.classroom_registry.get(), entry.token) {
            server.revoke(&token);
        }
        engine.set_registry(settings);
    }
}
