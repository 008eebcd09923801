//! Copy-up: a fresh volume mounted over a directory of the image starts with
//! that directory's content (Docker's default unless `nocopy`), owned as in
//! the image but shifted into the scope's uid range.
//!
//! Both sides are trees a learner controls: the image (its layers may hold
//! any symlink, e.g. `/hostroot -> /`) and the volume (a container already
//! running on it may plant links while we copy). So the target is resolved
//! in the image's root, entries are read from fds resolved there and written
//! through fds made in the volume's root ([`super::intree`]); and one lock
//! per volume, held across the "still empty?" check and the copy, makes two
//! containers starting on the same new volume copy once.

use std::fs;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::intree::{copy_tree, Tree};
use super::{io_err, VolumeError};

/// Copies `target` (a path in the image) from `layers` (lowest first) into
/// `dest` (a volume's `_data`, made by the engine), shifting owners by
/// `shift`. `scratch` is an empty directory the merged view may be mounted
/// on. Nothing is copied when the volume is no longer empty once its lock is
/// held (another container filled it first).
pub fn copy_up(
    layers: &[PathBuf],
    target: &str,
    dest: &Path,
    shift: u32,
    scratch: &Path,
) -> Result<(), VolumeError> {
    if layers.is_empty() {
        return Ok(());
    }
    let _lock = VolumeLock::take(dest)?;
    let volume = Tree::open(dest).map_err(io_err(format!("open {}", dest.display())))?;
    let empty = volume
        .list(Path::new("/"))
        .map_err(io_err(format!("read {}", dest.display())))?
        .is_empty();
    if !empty {
        return Ok(());
    }
    match layers {
        [only] => copy_from(only, target, &volume, shift),
        many => {
            fs::create_dir_all(scratch).map_err(io_err("create copy-up scratch"))?;
            let lower: Vec<String> = many.iter().rev().map(|p| p.display().to_string()).collect();
            let options = format!("lowerdir={}", lower.join(":"));
            mount(
                Some("overlay"),
                scratch,
                Some("overlay"),
                MsFlags::MS_RDONLY,
                Some(options.as_str()),
            )
            .map_err(|e| io_err("mount image for copy-up")(e.into()))?;
            let result = copy_from(scratch, target, &volume, shift);
            let _ = umount2(scratch, MntFlags::MNT_DETACH);
            let _ = fs::remove_dir(scratch);
            result
        }
    }
}

/// Copies the directory `target` of the image at `image` (resolved in the
/// image's root, never on the host) into `volume`.
fn copy_from(image: &Path, target: &str, volume: &Tree, shift: u32) -> Result<(), VolumeError> {
    let image = Tree::open(image).map_err(io_err(format!("open {}", image.display())))?;
    let Some(src) = image
        .subtree(Path::new(target))
        .map_err(io_err(format!("resolve {target} in the image")))?
    else {
        return Ok(());
    };
    let owner = |uid: u32, gid: u32| -> std::io::Result<(u32, u32)> {
        match (uid.checked_add(shift), gid.checked_add(shift)) {
            (Some(u), Some(g)) => Ok((u, g)),
            _ => Err(std::io::Error::other(format!(
                "owner {uid}:{gid} is outside the container's id range"
            ))),
        }
    };
    copy_tree(&src, volume, &owner).map_err(io_err(format!("copy {target} into the volume")))
}

/// An exclusive `flock` on a volume's directory (the engine's, beside
/// `_data`), released on drop.
struct VolumeLock(#[allow(dead_code)] nix::fcntl::Flock<fs::File>);

impl VolumeLock {
    fn take(data: &Path) -> Result<Self, VolumeError> {
        let dir = data.parent().unwrap_or(data);
        let file = fs::File::open(dir).map_err(io_err(format!("open {}", dir.display())))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map(Self)
            .map_err(|(_, e)| io_err("lock volume")(e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn a_single_layer_directory_is_copied_with_its_modes() {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        fs::create_dir_all(layer.join("data/sub")).unwrap();
        fs::write(layer.join("data/sub/f.txt"), "hello").unwrap();
        std::os::unix::fs::symlink("sub/f.txt", layer.join("data/link")).unwrap();
        fs::set_permissions(
            layer.join("data/sub/f.txt"),
            fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        let dest = tmp.path().join("vol");
        fs::create_dir(&dest).unwrap();
        copy_up(&[layer], "/data", &dest, 0, &tmp.path().join("scratch")).unwrap();
        assert_eq!(fs::read_to_string(dest.join("sub/f.txt")).unwrap(), "hello");
        assert_eq!(
            fs::metadata(dest.join("sub/f.txt")).unwrap().mode() & 0o777,
            0o640
        );
        assert_eq!(
            fs::read_link(dest.join("link")).unwrap(),
            Path::new("sub/f.txt")
        );
        copy_up(&[], "/data", &dest, 0, &tmp.path().join("s2")).unwrap();
    }

    #[test]
    fn a_target_through_an_image_symlink_resolves_in_the_image() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s3cret").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        fs::create_dir(&layer).unwrap();
        std::os::unix::fs::symlink("/", layer.join("hostroot")).unwrap();
        let dest = tmp.path().join("vol/_data");
        fs::create_dir_all(&dest).unwrap();
        let target = format!("/hostroot{}", outside.path().display());
        copy_up(&[layer], &target, &dest, 0, &tmp.path().join("s")).unwrap();
        assert!(
            fs::read_dir(&dest).unwrap().next().is_none(),
            "nothing of the host copied"
        );
    }

    #[test]
    fn two_copy_ups_on_one_new_volume_copy_once() {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        fs::create_dir_all(layer.join("data/d")).unwrap();
        for i in 0..50 {
            fs::write(layer.join(format!("data/d/f{i}")), "x").unwrap();
        }
        let dest = tmp.path().join("vol/_data");
        fs::create_dir_all(&dest).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|i| {
                let (layer, dest, scratch) = (
                    layer.clone(),
                    dest.clone(),
                    tmp.path().join(format!("s{i}")),
                );
                std::thread::spawn(move || copy_up(&[layer], "/data", &dest, 0, &scratch))
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        assert_eq!(fs::read_dir(dest.join("d")).unwrap().count(), 50);
    }
}
