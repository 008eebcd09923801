//! The crate-level error: each module's own error lifted with `#[from]`.

use crate::build::BuildError;
use crate::container::ContainerError;
use crate::datadir::DataDirError;
use crate::image::ImageError;
use crate::net::NetError;
use crate::volume::VolumeError;

/// Any error the runtime returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    DataDir(#[from] DataDirError),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Container(#[from] ContainerError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Net(#[from] NetError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
}

/// Result with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
