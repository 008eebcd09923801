//! [`Failure`]: why a build stopped, in the words the client prints, with
//! the exit code of a failed `RUN` (the CLI exits with it).

use super::error::BuildError;

/// A build that could not finish.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// What the client prints after `Error response from daemon:` (or alone
    /// when the progress stream had started).
    pub message: String,
    /// The exit code of a failed `RUN`.
    pub code: Option<i32>,
    /// Whether the request itself was wrong (HTTP 400 before any progress).
    pub bad_request: bool,
}

impl Failure {
    /// A failure with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Failure {
            message: message.into(),
            code: None,
            bad_request: false,
        }
    }

    /// A failure the client caused (a malformed Dockerfile, a bad option).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Failure {
            bad_request: true,
            ..Failure::new(message)
        }
    }
}

impl From<BuildError> for Failure {
    fn from(e: BuildError) -> Self {
        Failure::bad_request(e.to_string())
    }
}

impl From<crate::Error> for Failure {
    fn from(e: crate::Error) -> Self {
        Failure::new(e.to_string())
    }
}

impl From<crate::image::ImageError> for Failure {
    fn from(e: crate::image::ImageError) -> Self {
        Failure::new(e.to_string())
    }
}
