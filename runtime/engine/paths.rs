//! The paths the Engine API shows. In a classroom the host's data directory
//! is nobody's business (it tells a learner where to aim), so answers show
//! where dockerd keeps the same things, under `/var/lib/docker`. `berth
//! daemon` runs for the host's own user and shows the real paths.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

static HIDE: AtomicBool = AtomicBool::new(false);

/// Dockerd's root directory, as answers show it in a classroom.
pub const DOCKER_ROOT: &str = "/var/lib/docker";

/// From now on this process answers with Docker-like paths (`berth serve`).
pub fn hide_host_paths() {
    HIDE.store(true, Ordering::Relaxed);
}

fn hidden() -> bool {
    HIDE.load(Ordering::Relaxed)
}

/// `real`, or `docker_like` in a classroom.
pub fn shown(real: &Path, docker_like: impl FnOnce() -> String) -> String {
    if hidden() {
        docker_like()
    } else {
        real.display().to_string()
    }
}

/// The root directory (`DockerRootDir`).
pub fn root(real: &Path) -> String {
    shown(real, || DOCKER_ROOT.to_string())
}

/// A volume's data directory (`Mountpoint`).
pub fn volume(real: &Path, name: &str) -> String {
    shown(real, || format!("{DOCKER_ROOT}/volumes/{name}/_data"))
}

/// A file of container `id`'s directory.
pub fn container_file(real: &Path, id: &str, file: &str) -> String {
    shown(real, || format!("{DOCKER_ROOT}/containers/{id}/{file}"))
}

/// A directory of container `id`'s overlay (`diff`, `work`, `merged`).
pub fn layer_dir(real: &Path, id: &str, dir: &str) -> String {
    shown(real, || format!("{DOCKER_ROOT}/overlay2/{id}/{dir}"))
}
