//! The classroom registry: an OCI Distribution API (v2) server Berth serves
//! itself, and the client the engine pulls and pushes with.
//!
//! - [`storage`]: content-addressed blobs, per-repository links, manifests
//!   and tags under `<data>/registry`, every file made visible by rename.
//! - [`api`]: the HTTP routes (axum) and the OCI error bodies.
//! - [`client`]: the engine's side, for any registry (plain HTTP for the
//!   classroom's and loopback, HTTPS with Docker Hub's token flow elsewhere).
//!
//! # Namespaces
//! Each session pushes into its own namespace. The choice: the *engine
//! rewrites paths* — a scope's `registry.local:5000/app` is the repository
//! `<namespace>/app` on the classroom registry, so a learner never names
//! another's repositories — and the *server checks tokens* when it is given
//! any ([`Access::Tokens`]): a token grants one namespace, so even a client
//! that reaches the registry directly cannot read or overwrite another
//! session's repositories. Namespaces opened with [`Server::open_shared`] are
//! readable by every token (and writable by the token granted them), which is
//! how a workshop shares images later. `berth registry` alone is open.

pub mod api;
pub mod cache;
pub mod client;
pub mod storage;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, RwLock};

pub use storage::Storage;

/// Errors of the registry server, each one an OCI error code.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("blob unknown to registry: {0}")]
    BlobUnknown(String),
    #[error("blob upload unknown to registry: {0}")]
    UploadUnknown(String),
    #[error("blob upload invalid: {0}")]
    UploadInvalid(String),
    #[error("provided digest did not match uploaded content: {0}")]
    DigestInvalid(String),
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("blob unknown to registry: {0}")]
    ManifestBlobUnknown(String),
    #[error("invalid repository name: {0}")]
    NameInvalid(String),
    #[error("repository name not known to registry: {0}")]
    NameUnknown(String),
    #[error("manifest tag did not match URI: {0}")]
    TagInvalid(String),
    #[error("authentication required")]
    Unauthorized,
    #[error("requested access to the resource is denied")]
    Denied,
    #[error("the operation is unsupported")]
    Unsupported,
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// What a token may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The namespace the token reads and writes (`s-4f2a`).
    pub namespace: String,
}

/// Who may use the registry.
#[derive(Debug, Clone, Default)]
pub enum Access {
    /// Anyone, anything (`berth registry` on loopback, tests).
    #[default]
    Open,
    /// Token → grant; requests without a known token are refused.
    Tokens(HashMap<String, Grant>),
}

/// The registry server's state; cheap to clone into handlers.
#[derive(Clone)]
pub struct Server {
    pub(crate) storage: Arc<Storage>,
    pub(crate) access: Arc<RwLock<Access>>,
    pub(crate) shared: Arc<RwLock<BTreeSet<String>>>,
    /// Token → shared namespaces it may also write (a workshop's learners).
    pub(crate) also: Arc<RwLock<HashMap<String, BTreeSet<String>>>>,
}

impl Server {
    /// A registry storing under `root` (`<data>/registry`).
    pub fn open(root: &Path, access: Access) -> Result<Self, RegistryError> {
        Ok(Self {
            storage: Arc::new(Storage::open(root)?),
            access: Arc::new(RwLock::new(access)),
            shared: Arc::new(RwLock::new(BTreeSet::new())),
            also: Arc::default(),
        })
    }

    /// The HTTP routes, for `berth serve` to mount or [`Server::serve`] to run.
    pub fn router(&self) -> axum::Router {
        api::router(self.clone())
    }

    /// Serves on `listener` until the future is dropped.
    pub async fn serve(&self, listener: tokio::net::TcpListener) -> std::io::Result<()> {
        axum::serve(listener, self.router()).await
    }

    /// Grants `token` its namespace (a session starting).
    pub fn grant(&self, token: &str, grant: Grant) {
        let mut access = self.access.write().unwrap_or_else(|p| p.into_inner());
        match &mut *access {
            Access::Open => {
                *access = Access::Tokens(HashMap::from([(token.to_string(), grant)]));
            }
            Access::Tokens(map) => {
                map.insert(token.to_string(), grant);
            }
        }
    }

    /// Revokes a token (a session ending).
    pub fn revoke(&self, token: &str) {
        if let Access::Tokens(map) = &mut *self.access.write().unwrap_or_else(|p| p.into_inner()) {
            map.remove(token);
        }
        self.also
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    /// Opens `namespace` for every token to read (a workshop's shared images).
    pub fn open_shared(&self, namespace: &str) {
        self.shared
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(namespace.to_string());
    }

    /// Lets `token` also write `namespace` (a workshop's shared one).
    pub fn grant_also(&self, token: &str, namespace: &str) {
        self.also
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .entry(token.to_string())
            .or_default()
            .insert(namespace.to_string());
    }

    /// The storage, for grading (which repositories and tags exist).
    pub fn storage(&self) -> &Storage {
        &self.storage
    }
}
