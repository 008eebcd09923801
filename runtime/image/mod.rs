//! The image store: content-addressed blobs, image configs, layers unpacked
//! once and shared as overlayfs lower directories, and references per scope.
//!
//! Layout under the store's root:
//! - `blobs/sha256/<hex>`: configs and (uncompressed) layer tars, by digest;
//! - `layers/<hex>/`: each layer unpacked, named by its diff ID (with overlayfs
//!   a layer's directory does not depend on the layers below it);
//! - `compressed/<diff hex>`: the gzip blob pushed for a layer (`{digest, size}`);
//! - `scopes/<scope>.json`: a scope's references (`busybox:latest` → image
//!   ID) and the untagged images it owns.
//!
//! Every ID that names a path here (digest, diff ID, image ID) is checked as
//! `sha256:` + 64 lowercase hex where it enters (`digest.rs`); layers are
//! unpacked only once their digest matches, and only inside their own
//! directory (`unpack.rs`), since archives and registries are a learner's.
//!
//! An image's ID is the digest of its config blob, as Docker computes it.
//! Scopes share content but not names: a session sees only its own images.

mod archive;
mod bootstrap;
pub mod digest;
mod distribution;
pub mod layer;
mod lineage;
mod outline;
mod pack;
pub mod reference;
mod store;
mod unpack;
mod usage;

use std::path::PathBuf;

pub use archive::apply_change;
pub use bootstrap::host_arch;
pub use pack::{pack_files, pack_names, PackLoad, DEFAULT_PACK_DIR};

/// Parses an image config blob (filling fields some images leave out);
/// returns it typed and as stored.
pub fn parse_config_bytes(
    bytes: &[u8],
) -> Result<(oci_spec::image::ImageConfiguration, serde_json::Value), ImageError> {
    store::parse_config(bytes)
}
pub use distribution::CompressedLayer;
pub use outline::{LayerOutline, ScopeImage};
pub use reference::Reference;
pub use store::ImageStore;

/// Errors of the image store. Messages use Docker's words where it has them.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("invalid reference format")]
    InvalidReference,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    /// Removing an image that is in use or ambiguous (HTTP 409).
    #[error("{0}")]
    Conflict(String),
    /// An archive or blob that is not what it claims to be.
    #[error("{0}")]
    Invalid(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

impl ImageError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ImageError {
        let context = context.into();
        move |source| ImageError::Io { context, source }
    }
}

/// A resolved image: what a container launch needs.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>` of the config blob, as Docker computes image IDs.
    pub id: String,
    /// The image configuration (cmd, entrypoint, env, workdir, user, …).
    pub config: oci_spec::image::ImageConfiguration,
    /// The config as stored, with Docker's fields oci-spec does not model
    /// (`Healthcheck`, `OnBuild`, `Shell`).
    pub raw: serde_json::Value,
    /// Unpacked layer directories, lowest first, ready to be overlay lower dirs.
    pub layer_dirs: Vec<PathBuf>,
}

/// One line of `docker images`.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSummary {
    pub id: String,
    pub repo_tags: Vec<String>,
    pub repo_digests: Vec<String>,
    /// Unix seconds.
    pub created: i64,
    pub size: i64,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// What `docker commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    pub repo: String,
    pub tag: String,
    pub comment: String,
    pub author: String,
    /// Dockerfile instructions applied to the config (`-c 'CMD ["sh"]'`).
    pub changes: Vec<String>,
    /// A container config sent in the request body, merged over the image's.
    pub config: Option<serde_json::Value>,
    pub pause: bool,
}
