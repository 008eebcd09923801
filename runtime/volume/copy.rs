//! Copy-up: a fresh volume mounted over a directory of the image starts with
//! that directory's content (Docker's default unless `nocopy`), owned as in
//! the image but shifted into the scope's uid range.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{io_err, VolumeError};

/// Copies `target` (a path in the image) from `layers` (lowest first) into
/// `dest`, shifting owners by `shift`. `scratch` is an empty directory the
/// merged view may be mounted on.
pub fn copy_up(
    layers: &[PathBuf],
    target: &str,
    dest: &Path,
    shift: u32,
    scratch: &Path,
) -> Result<(), VolumeError> {
    let relative: PathBuf = Path::new(target)
        .components()
        .filter(|c| matches!(c, Component::Normal(_)))
        .collect();
    match layers {
        [] => Ok(()),
        [only] => copy_tree(&only.join(&relative), dest, shift),
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
            let result = copy_tree(&scratch.join(&relative), dest, shift);
            let _ = umount2(scratch, MntFlags::MNT_DETACH);
            let _ = fs::remove_dir(scratch);
            result
        }
    }
}

/// Copies the content of `src` (if it is a directory) into `dest`.
fn copy_tree(src: &Path, dest: &Path, shift: u32) -> Result<(), VolumeError> {
    let Ok(meta) = fs::symlink_metadata(src) else {
        return Ok(());
    };
    if !meta.is_dir() {
        return Ok(());
    }
    // The volume's root takes the directory's mode and owner.
    fs::set_permissions(dest, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io_err(format!("chmod {}", dest.display())))?;
    chown(dest, meta.uid(), meta.gid(), shift)?;
    for entry in fs::read_dir(src).map_err(io_err(format!("read {}", src.display())))? {
        let entry = entry.map_err(io_err(format!("read {}", src.display())))?;
        let from = entry.path();
        let to = dest.join(entry.file_name());
        let m = fs::symlink_metadata(&from).map_err(io_err(format!("stat {}", from.display())))?;
        let ft = m.file_type();
        if ft.is_dir() {
            fs::create_dir_all(&to).map_err(io_err(format!("create {}", to.display())))?;
            copy_tree(&from, &to, shift)?;
        } else if ft.is_symlink() {
            let link =
                fs::read_link(&from).map_err(io_err(format!("readlink {}", from.display())))?;
            let _ = fs::remove_file(&to);
            std::os::unix::fs::symlink(&link, &to)
                .map_err(io_err(format!("symlink {}", to.display())))?;
            chown(&to, m.uid(), m.gid(), shift)?;
        } else if ft.is_file() {
            fs::copy(&from, &to).map_err(io_err(format!("copy {}", from.display())))?;
            fs::set_permissions(&to, fs::Permissions::from_mode(m.mode() & 0o7777))
                .map_err(io_err(format!("chmod {}", to.display())))?;
            chown(&to, m.uid(), m.gid(), shift)?;
        }
        // Devices, fifos and sockets (and overlay whiteouts) are not copied.
    }
    Ok(())
}

fn chown(path: &Path, uid: u32, gid: u32, shift: u32) -> Result<(), VolumeError> {
    std::os::unix::fs::lchown(path, Some(uid + shift), Some(gid + shift))
        .map_err(io_err(format!("chown {}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
