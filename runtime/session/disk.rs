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
//! costs ~80 ms at session start (`mkfs` without a journal and with lazy
//! inode tables, then `mount`), and its removal is one unmount and one
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

/// Makes and mounts the session's filesystem of `bytes` (at least 16 MiB)
/// and returns its mount point. Blocking. On error nothing is left mounted
/// (the caller's teardown removes the files).
pub fn create(session_dir: &Path, bytes: u64) -> io::Result<PathBuf> {
    let image = image_path(session_dir);
    let root = mount_point(session_dir);
    fs::create_dir_all(&root)?;
    let file = fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&image)?;
    // Sparse: only what is written takes host disk.
    file.set_len(bytes.max(MIN_BYTES))?;
    drop(file);
    // No journal (a session's files do not outlive a crash: the sweep
    // removes them) and lazy inode tables: mkfs writes ~1 MiB and is done in
    // tens of milliseconds. No reserved blocks: the learner gets the budget.
    run(Command::new("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-m",
            "0",
            "-O",
            "^has_journal",
            "-E",
            "lazy_itable_init=1,lazy_journal_init=1,nodiscard,root_owner=0:0",
        ])
        .arg(&image))?;
    // mount(8) finds a free loop device (loop-control) and sets it to detach
    // itself once the filesystem is unmounted (autoclear).
    run(Command::new("mount")
        .args(["-t", "ext4", "-o", "loop,nosuid,nodev,noatime"])
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
