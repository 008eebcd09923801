//! Containers: configuration → OCI runtime spec → a launched, isolated process.

/// Errors launching or managing a container.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}
