//! A session's own filesystem: the one place everything it writes lives, so
//! its disk budget stops the write itself.
//!
//! A sparse file `<session>/disk.img` of the budget's size is formatted
//! ext4 and loop-mounted at `<session>/disk/`. Its containers' directories
//! (overlay upper and work dirs, logs), its volumes and its scratch space
//! (build contexts and layers, spooled request bodies) are made there: when
//! it is full, a `dd` in a container gets `No space left on device` from the
//! kernel at the block that would pass the budget, not a second later.
//!
//! Why a filesystem image and not project quotas: quotas need the data
//! directory's filesystem to be mounted with `prjquota` (ext4/xfs), which an
//! operator cannot always choose; a loop-mounted image works on any of them,
//! costs a few tens of milliseconds at session start (a formatted empty
//! image is kept per size and copied hole by hole, then `mount`), and its removal is one unmount and one
//! unlink. Where the data directory has project quotas, they would spare
//! the loop device; that is a possible later change, behind this module.
//!
//! The image is never written block by block by the learner (only through
//! the kernel's ext4), so mounting it is no more trusting than any mount.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a session's filesystem image is.
pub fn image_path(session_dir: &Path) -> PathBuf {
    session_dir.join("disk.img")
}

/// Where a session's filesystem is mounted.
pub fn mount_point(session_dir: &Path) -> PathBuf {
    session_dir.join("disk")
}

/// Below the mount point: containers' directories (one per container ID).
pub fn containers_dir(root: &Path) -> PathBuf {
    root.join("containers")
}

/// Below the mount point: volumes of the session's scopes (one per scope).
pub fn volumes_dir(root: &Path) -> PathBuf {
    root.join("volumes")
}

/// Below the mount point: scratch space (build contexts, spooled bodies).
pub fn scratch_dir(root: &Path) -> PathBuf {
    root.join("tmp")
}

/// The smallest filesystem made: ext4's own metadata needs a few MiB.
const MIN_BYTES: u64 = 16 << 20;

fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd.output()?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{:?} failed: {}",
        cmd.get_program(),
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// Where the formatted, empty image of `bytes` is kept, copied for each
/// session (formatting once, copying ~1 MiB of metadata after).
fn template_path(session_dir: &Path, bytes: u64) -> Option<PathBuf> {
    // `<data>/sessions/<id>` → `<data>/session-disk-<bytes>.img`.
    let data = session_dir.parent()?.parent()?;
    Some(data.join(format!("session-disk-{bytes}.img")))
}

/// Formats `image` (a sparse file of its final size) as ext4.
fn format(image: &Path, bytes: u64) -> io::Result<()> {
    let file = fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(image)?;
    // Sparse: only what is written takes host disk.
    file.set_len(bytes)?;
    drop(file);
    // No journal (a session's files do not outlive a crash: the sweep
    // removes them) and lazy inode tables: mkfs writes ~1 MiB. 1% reserved
    // for host root: the learner's processes (mapped uids) cannot use it, so
    // when they have filled their part the engine and each container's
    // monitor can still write exit statuses and state.
    run(Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-m",
            "1",
            "-O",
            "^has_journal",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=0:0",
        ])
        .arg(image))
}

/// Copies `from` to a new file `to`, keeping its holes (only the data
/// ranges are read and written).
fn copy_sparse(from: &Path, to: &Path) -> io::Result<()> {
    use nix::unistd::{lseek, Whence};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    let src = fs::File::open(from)?;
    let len = src.metadata()?.len();
    let dst = fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(to)?;
    dst.set_len(len)?;
    let mut pos = 0i64;
    let mut buf = vec![0u8; 1 << 20];
    while (pos as u64) < len {
        let Ok(data) = lseek(src.as_raw_fd(), pos, Whence::SeekData) else {
            break; // no data after pos (ENXIO)
        };
        let hole = lseek(src.as_raw_fd(), data, Whence::SeekHole).map_err(io::Error::from)?;
        let mut at = data as u64;
        while at < hole as u64 {
            let n = ((hole as u64 - at) as usize).min(buf.len());
            src.read_exact_at(&mut buf[..n], at)?;
            dst.write_all_at(&buf[..n], at)?;
            at += n as u64;
        }
        pos = hole;
    }
    Ok(())
}

/// Makes and mounts the session's filesystem of `bytes` (at least 16 MiB)
/// and returns its mount point. Blocking. On error nothing is left mounted
/// (the caller's teardown removes the files).
pub fn create(session_dir: &Path, bytes: u64) -> io::Result<PathBuf> {
    let bytes = bytes.max(MIN_BYTES);
    let image = image_path(session_dir);
    let root = mount_point(session_dir);
    fs::create_dir_all(&root)?;
    match template_path(session_dir, bytes) {
        Some(template) => {
            if !template.exists() {
                // Made aside and renamed: a session starting beside this one
                // never copies a half-formatted template.
                let tmp = template.with_extension(format!("{}.tmp", super::new_id()));
                let made = format(&tmp, bytes).and_then(|_| fs::rename(&tmp, &template));
                if made.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                made?;
            }
            copy_sparse(&template, &image)?;
        }
        None => format(&image, bytes)?,
    }
    // mount(8) finds a free loop device (loop-control) and sets it to detach
    // itself once the filesystem is unmounted (autoclear).
    run(Command::new("mount")
        // noinit_itable: the kernel does not zero the inode tables in the
        // background (it knows which are unused), so the host file stays
        // sparse.
        .args([
            "-t",
            "ext4",
            "-o",
            "loop,nosuid,nodev,noatime,noinit_itable",
        ])
        .arg(&image)
        .arg(&root))?;
    let made = (|| {
        use std::os::unix::fs::PermissionsExt;
        // Containers run as unprivileged uids and pass through to their
        // rootfs and volumes: search only, as `<data>/containers` is.
        for d in [
            root.clone(),
            containers_dir(&root),
            volumes_dir(&root),
            scratch_dir(&root),
        ] {
            fs::create_dir_all(&d)?;
            let mode = 0o711;
            fs::set_permissions(&d, fs::Permissions::from_mode(mode))?;
        }
        let _ = fs::remove_dir(root.join("lost+found"));
        Ok(())
    })();
    if let Err(e) = made {
        unmount(&root);
        return Err(e);
    }
    Ok(root)
}

/// Whether `path` is a mount point (its device differs from its parent's).
pub fn is_mounted(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(m), Some(Ok(p))) = (
        fs::symlink_metadata(path),
        path.parent().map(fs::symlink_metadata),
    ) else {
        return false;
    };
    m.dev() != p.dev()
}

/// Unmounts `root` (lazily: a process still inside lets go later, and the
/// loop device then detaches itself).
fn unmount(root: &Path) {
    use nix::mount::{umount2, MntFlags};
    while is_mounted(root) {
        if umount2(root, MntFlags::MNT_DETACH).is_err() {
            break;
        }
    }
}

/// Loop devices whose backing file is `image` (a crash between attach and
/// mount, or a mount that was lost while the device stayed).
pub fn loop_devices_of(image: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir("/sys/block") else {
        return out;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.starts_with("loop") {
            continue;
        }
        let Ok(backing) = fs::read_to_string(e.path().join("loop/backing_file")) else {
            continue;
        };
        // A deleted backing file reads as "<path> (deleted)".
        let backing = backing.trim_end();
        let backing = backing.strip_suffix(" (deleted)").unwrap_or(backing);
        if Path::new(backing) == image {
            out.push(format!("/dev/{name}"));
        }
    }
    out
}

/// Unmounts and removes the session's filesystem. Returns what is left.
pub fn remove(session_dir: &Path) -> Vec<String> {
    let mut left = Vec::new();
    let root = mount_point(session_dir);
    let image = image_path(session_dir);
    unmount(&root);
    if is_mounted(&root) {
        left.push(format!("mount {}", root.display()));
    }
    for dev in loop_devices_of(&image) {
        // Autoclear detaches it once nothing uses the filesystem; one still
        // attached without a mount is detached here.
        let _ = Command::new("losetup").arg("-d").arg(&dev).output();
    }
    if let Err(e) = fs::remove_file(&image) {
        if e.kind() != io::ErrorKind::NotFound {
            left.push(format!("image {}: {e}", image.display()));
        }
    }
    if !is_mounted(&root) {
        let _ = fs::remove_dir(&root);
    }
    left
}

/// Bytes the session's filesystem can still give to files (`statvfs`).
pub fn free(root: &Path) -> Option<u64> {
    let st = nix::sys::statvfs::statvfs(root).ok()?;
    Some(st.blocks_available() as u64 * st.fragment_size() as u64)
}

/// Where the volume store keeps the volumes of `scope`
/// (`<data>/volumes/<scope>`, see [`crate::volume`]).
fn volumes_of(data_root: &Path, scope: &str) -> PathBuf {
    data_root.join("volumes").join(scope)
}

/// Makes the volume store's directory of `scope` a symlink to one on the
/// session's filesystem, so its volumes are written there.
pub fn link_volumes(data_root: &Path, session_dir: &Path, scope: &str) -> io::Result<()> {
    let real = volumes_dir(&mount_point(session_dir)).join(scope);
    fs::create_dir_all(&real)?;
    let link = volumes_of(data_root, scope);
    if let Some(parent) = link.parent() {
        fs::create_dir_all(parent)?;
    }
    match fs::symlink_metadata(&link) {
        Ok(m) if m.file_type().is_symlink() => fs::remove_file(&link)?,
        Ok(_) => fs::remove_dir_all(&link)?,
        Err(_) => {}
    }
    std::os::unix::fs::symlink(&real, &link)
}

/// Removes the volume store's directory of `scope` when it is a link made by
/// [`link_volumes`] (what it points to goes with the session's filesystem).
pub fn unlink_volumes(data_root: &Path, scope: &str) -> io::Result<()> {
    let link = volumes_of(data_root, scope);
    match fs::symlink_metadata(&link) {
        Ok(m) if m.file_type().is_symlink() => fs::remove_file(&link),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_filesystem_is_made_full_and_removed() {
        if !nix::unistd::Uid::effective().is_root() {
            eprintln!("skipped: needs root (mount, loop devices)");
            return;
        }
        let data = tempfile::tempdir_in("/var/tmp").unwrap();
        let first = data.path().join("sessions/first");
        let started = std::time::Instant::now();
        create(&first, 32 << 20).unwrap();
        eprintln!("made (formatting) and mounted in {:?}", started.elapsed());
        assert!(data.path().join("session-disk-33554432.img").exists());
        assert_eq!(remove(&first), Vec::<String>::new());
        let second = data.path().join("sessions/second");
        let dir = &second;
        let started = std::time::Instant::now();
        let root = create(dir, 32 << 20).unwrap();
        eprintln!("made (copying) and mounted in {:?}", started.elapsed());
        assert!(is_mounted(&root));
        assert_eq!(loop_devices_of(&image_path(dir)).len(), 1);
        let before = free(&root).unwrap();
        assert!(before > 28 << 20 && before <= 32 << 20, "{before}");
        // Writing past the size stops at it.
        let big = vec![0u8; 1 << 20];
        let mut f = fs::File::create(volumes_dir(&root).join("f")).unwrap();
        let err = (0..64)
            .try_for_each(|_| std::io::Write::write_all(&mut f, &big))
            .unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::ENOSPC), "{err}");
        drop(f);
        assert!(free(&root).unwrap() < 1 << 20);
        let host = {
            use std::os::unix::fs::MetadataExt;
            fs::metadata(image_path(dir)).unwrap().blocks() * 512
        };
        assert!(host <= 33 << 20, "the host holds {host} bytes");
        let started = std::time::Instant::now();
        assert_eq!(remove(dir), Vec::<String>::new());
        eprintln!("removed in {:?}", started.elapsed());
        assert!(!is_mounted(&root));
        assert!(!image_path(dir).exists());
        assert_eq!(loop_devices_of(&image_path(dir)), Vec::<String>::new());
    }
}
