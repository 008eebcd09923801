//! The image store: content-addressed blobs, OCI manifests and configs, layers
//! unpacked once and shared as overlayfs lower directories, and references per scope.

use std::path::PathBuf;

/// Errors of the image store. Messages use Docker's words where Docker has them.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("No such image: {0}")]
    NotFound(String),
    #[error("invalid reference format: {0}")]
    InvalidReference(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

/// A resolved image: what a container launch needs.
#[derive(Debug, Clone)]
pub struct Image {
    /// `sha256:<hex>` of the config blob, as Docker computes image IDs.
    pub id: String,
    /// The image configuration (cmd, entrypoint, env, workdir, user, …).
    pub config: oci_spec::image::ImageConfiguration,
    /// Unpacked layer directories, lowest first, ready to be overlay lower dirs.
    pub layer_dirs: Vec<PathBuf>,
}
