//! Unpacking a layer tar inside its directory, never through it.
//!
//! A layer tar comes from a learner (`docker load`, `docker import`, a pull
//! from a registry they run, a build) and is unpacked by host root, so each
//! member is an attack until shown otherwise. The rule: every member acts
//! only on the tree under the layer directory, reached from a handle on that
//! directory, never by a host path string.
//!
//! - Member names are cleaned: a leading `/` or `./` is dropped (as Docker
//!   does); a `..` component is refused.
//! - A member's parent directory is resolved in-root by `pathrs` with
//!   `RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS`: a
//!   symlink made by an earlier member is never followed by a later one
//!   (`x -> /host/dir` then `x/.wh.victim` or `x/file` is refused). Docker
//!   follows such links inside a chroot; no layer Docker writes has a member
//!   below a symlink of the same layer, so refusing costs nothing real.
//! - The last component is acted on with `*at` calls relative to that
//!   parent's fd and `O_NOFOLLOW`/`AT_SYMLINK_NOFOLLOW`, so a symlink already
//!   at the name is replaced, not followed.
//! - Whiteouts (`.wh.x`) and opaque markers (`.wh..wh..opq`) become overlay
//!   whiteouts (a 0/0 character device) and the `trusted.overlay.opaque`
//!   xattr, inside the parent; `.wh.` naming `.`, `..` or nothing is refused.
//! - Hard links must name a file already unpacked in this layer, resolved the
//!   same way; a link to anything missing, a directory, or outside is refused.
//! - Block and character devices are skipped: learners' containers run in a
//!   user namespace under a device cgroup where they could not be opened, and
//!   Docker in a user namespace skips them too. FIFOs are made.
//! - Setuid/setgid bits are kept (images need `su`, `passwd`): the store is
//!   0700 root-only, so no host user can reach a layer's files, and inside a
//!   container they act only within its user namespace.
//! - Xattrs: only `user.*` and `security.capability` are kept. `trusted.*`
//!   (above all `trusted.overlay.*`, which would steer overlayfs) and every
//!   other `security.*` / `system.*` name are dropped.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use pathrs::flags::ResolverFlags;
use pathrs::{Handle, Root};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timestamps};
use rustix::io::Errno;

/// Docker's whiteout prefix and opaque-directory marker.
pub(crate) const WHITEOUT: &str = ".wh.";
pub(crate) const OPAQUE: &str = ".wh..wh..opq";
/// The xattr overlayfs reads to hide a lower directory's contents.
pub(crate) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Why a layer could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// A member the rules above refuse.
    #[error("refusing layer member {member:?}: {why}")]
    Refused { member: String, why: String },
    #[error("layer member {member:?}: {source}")]
    Io { member: String, source: io::Error },
    #[error("read layer: {0}")]
    Read(#[source] io::Error),
}

impl UnpackError {
    fn refused(member: &Path, why: impl Into<String>) -> Self {
        Self::Refused {
            member: member.display().to_string(),
            why: why.into(),
        }
    }
}

impl From<UnpackError> for io::Error {
    fn from(e: UnpackError) -> Self {
        match e {
            UnpackError::Refused { .. } => io::Error::new(io::ErrorKind::InvalidData, e),
            UnpackError::Io { ref source, .. } => io::Error::new(source.kind(), e),
            UnpackError::Read(source) => source,
        }
    }
}

/// A member path cleaned of `/` and `.`; `None` if it has a `..`.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// Whether an xattr from a layer may be set on the host.
fn harmless_xattr(name: &[u8]) -> bool {
    name.starts_with(b"user.") || name == b"security.capability"
}

/// Unpacks a (plain or gzip) layer tar into `dest` (created if missing),
/// acting only inside it; see the module doc for what is refused.
pub fn unpack(reader: impl Read, dest: &Path) -> Result<(), UnpackError> {
    let reader = super::layer::maybe_gunzip(reader).map_err(UnpackError::Read)?;
    std::fs::create_dir_all(dest).map_err(|source| UnpackError::Io {
        member: String::new(),
        source,
    })?;
    let root = Root::open(dest)
        .map_err(|e| UnpackError::Io {
            member: String::new(),
            source: io::Error::other(e),
        })?
        .with_resolver_flags(ResolverFlags::NO_SYMLINKS);
    let mut unpacker = Unpacker {
        root,
        dirs: HashMap::new(),
        dir_times: Vec::new(),
    };
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut entry = entry.map_err(UnpackError::Read)?;
        unpacker.member(&mut entry)?;
    }
    unpacker.finish()
}

struct Unpacker {
    root: Root,
    /// Parent directories already resolved (most members share one). Cleared
    /// whenever a directory is removed, so no handle outlives its path.
    dirs: HashMap<PathBuf, Handle>,
    /// Directory mtimes, set last (adding members changes them).
    dir_times: Vec<(PathBuf, u64)>,
}

/// What an `Io` error of `member` looks like.
fn io_at(member: &Path) -> impl Fn(Errno) -> UnpackError + '_ {
    move |e| UnpackError::Io {
        member: member.display().to_string(),
        source: e.into(),
    }
}

impl Unpacker {
    /// The directory `parent` (relative to the root), made if missing, or
    /// the reason it cannot be used.
    fn dir(&mut self, parent: &Path, member: &Path) -> Result<&Handle, UnpackError> {
        if !self.dirs.contains_key(parent) {
            let perm = std::os::unix::fs::PermissionsExt::from_mode(0o755);
            let handle = self
                .root
                .mkdir_all(parent, &perm)
                .map_err(|e| resolve_error(member, e))?;
            self.dirs.insert(parent.to_path_buf(), handle);
        }
        Ok(&self.dirs[parent])
    }

    /// An existing directory `parent`, for a hard link's target.
    fn existing_dir(&mut self, parent: &Path, member: &Path) -> Result<&Handle, UnpackError> {
        if !self.dirs.contains_key(parent) {
            let handle = match self.root.resolve(parent) {
                Ok(h) => h,
                Err(_) => {
                    return Err(UnpackError::refused(
                        member,
                        "its link target is not a file in the layer",
                    ))
                }
            };
            self.dirs.insert(parent.to_path_buf(), handle);
        }
        Ok(&self.dirs[parent])
    }

    /// Removes whatever is at `path` (nothing if it is missing).
    fn remove(&mut self, path: &Path, member: &Path) -> Result<(), UnpackError> {
        let parent = path.parent().unwrap_or(Path::new(""));
        let name = path.file_name().unwrap_or_default();
        let dir = self.dir(parent, member)?;
        let stat = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => s,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(io_at(member)(e)),
        };
        if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
            self.dirs.clear();
            self.root.remove_all(path).map_err(|e| UnpackError::Io {
                member: member.display().to_string(),
                source: io::Error::other(e),
            })
        } else {
            rustix::fs::unlinkat(dir, name, AtFlags::empty()).map_err(io_at(member))
        }
    }

    fn member<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), UnpackError> {
        let raw = entry.path().map_err(UnpackError::Read)?.into_owned();
        let Some(path) = clean(&raw) else {
            return Err(UnpackError::refused(&raw, "it leaves the layer (\"..\")"));
        };
        let (Some(name), parent) = (path.file_name(), path.parent()) else {
            // The layer's root itself: its directory is ours.
            return Ok(());
        };
        let name = name.to_os_string();
        let parent = parent.unwrap_or(Path::new("")).to_path_buf();
        let bytes = name.as_bytes();
        if bytes == OPAQUE.as_bytes() {
            let dir = self.dir(&parent, &path)?;
            let fd = rustix::fs::openat(
                dir,
                ".",
                OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(io_at(&path))?;
            return rustix::fs::fsetxattr(&fd, OPAQUE_XATTR, b"y", rustix::fs::XattrFlags::empty())
                .map_err(io_at(&path));
        }
        if bytes.starts_with(b".wh..wh.") {
            // aufs bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): not content.
            return Ok(());
        }
        if let Some(hidden) = bytes.strip_prefix(WHITEOUT.as_bytes()) {
            if hidden.is_empty() || hidden == b"." || hidden == b".." {
                return Err(UnpackError::refused(&path, "the whiteout names no file"));
            }
            let hidden = parent.join(OsStr::from_bytes(hidden));
            self.remove(&hidden, &path)?;
            let dir = self.dir(&parent, &path)?;
            return rustix::fs::mknodat(
                dir,
                hidden.file_name().unwrap_or_default(),
                FileType::CharacterDevice,
                Mode::empty(),
                0,
            )
            .map_err(io_at(&path));
        }
        let header = entry.header();
        let kind = header.entry_type();
        let meta = Meta {
            // An unreadable owner (some tools leave the field blank) is root.
            uid: header.uid().unwrap_or(0) as u32,
            gid: header.gid().unwrap_or(0) as u32,
            mode: header.mode().map_err(UnpackError::Read)? & 0o7777,
            mtime: header.mtime().unwrap_or(0),
        };
        match kind {
            tar::EntryType::Directory => self.directory(entry, &path, &parent, &name, &meta),
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                self.file(entry, &path, &parent, &name, &meta)
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(UnpackError::Read)?
                    .unwrap_or_default()
                    .into_owned();
                self.remove(&path, &path)?;
                let dir = self.dir(&parent, &path)?;
                // The target is stored as text; nothing here resolves it.
                rustix::fs::symlinkat(&target, dir, &name).map_err(io_at(&path))?;
                rustix::fs::chownat(
                    dir,
                    &name,
                    Some(rustix::fs::Uid::from_raw(meta.uid)),
                    Some(rustix::fs::Gid::from_raw(meta.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(io_at(&path))?;
                rustix::fs::utimensat(dir, &name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(io_at(&path))
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(UnpackError::Read)?
                    .unwrap_or_default()
                    .into_owned();
                self.hard_link(&path, &parent, &name, &target)
            }
            tar::EntryType::Fifo => {
                self.remove(&path, &path)?;
                let dir = self.dir(&parent, &path)?;
                rustix::fs::mknodat(dir, &name, FileType::Fifo, Mode::from_raw_mode(0o600), 0)
                    .map_err(io_at(&path))?;
                // Just made in a root-only store: nothing can swap it.
                rustix::fs::chownat(
                    dir,
                    &name,
                    Some(rustix::fs::Uid::from_raw(meta.uid)),
                    Some(rustix::fs::Gid::from_raw(meta.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )
                .map_err(io_at(&path))?;
                rustix::fs::chmodat(dir, &name, Mode::from_raw_mode(meta.mode), AtFlags::empty())
                    .map_err(io_at(&path))
            }
            // Devices: see the module doc. Other types (PAX and GNU headers
            // the tar reader has already applied) carry no file.
            _ => Ok(()),
        }
    }

    fn directory<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        path: &Path,
        parent: &Path,
        name: &OsStr,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        let dir = self.dir(parent, path)?;
        let existing = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW);
        let is_dir =
            matches!(&existing, Ok(s) if FileType::from_raw_mode(s.st_mode) == FileType::Directory);
        if !is_dir {
            if existing.is_ok() {
                self.remove(path, path)?;
            }
            let dir = self.dir(parent, path)?;
            rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)).map_err(io_at(path))?;
        }
        let dir = self.dir(parent, path)?;
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io_at(path))?;
        let file = File::from(fd);
        meta.apply(&file).map_err(io_at(path))?;
        set_xattrs(entry, &file, path)?;
        self.dir_times.push((path.to_path_buf(), meta.mtime));
        Ok(())
    }

    fn file<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        path: &Path,
        parent: &Path,
        name: &OsStr,
        meta: &Meta,
    ) -> Result<(), UnpackError> {
        self.remove(path, path)?;
        let dir = self.dir(parent, path)?;
        let fd = rustix::fs::openat(
            dir,
            name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(io_at(path))?;
        let mut file = File::from(fd);
        io::copy(entry, &mut file).map_err(UnpackError::Read)?;
        meta.apply(&file).map_err(io_at(path))?;
        set_xattrs(entry, &file, path)?;
        rustix::fs::futimens(&file, &meta.times()).map_err(io_at(path))
    }

    fn hard_link(
        &mut self,
        path: &Path,
        parent: &Path,
        name: &OsStr,
        target: &Path,
    ) -> Result<(), UnpackError> {
        let Some(target) = clean(target) else {
            return Err(UnpackError::refused(
                path,
                "its link target leaves the layer",
            ));
        };
        let (Some(target_name), target_parent) = (target.file_name(), target.parent()) else {
            return Err(UnpackError::refused(
                path,
                "its link target is the layer's root",
            ));
        };
        if target == path {
            return Err(UnpackError::refused(path, "it links to itself"));
        }
        let target_parent = target_parent.unwrap_or(Path::new("")).to_path_buf();
        let target_name = target_name.to_os_string();
        let tdir = self.existing_dir(&target_parent, path)?;
        match rustix::fs::statat(tdir, &target_name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) if FileType::from_raw_mode(s.st_mode) != FileType::Directory => {}
            _ => {
                return Err(UnpackError::refused(
                    path,
                    "its link target is not a file in the layer",
                ))
            }
        }
        self.remove(path, path)?;
        // Both handles again: `remove` may have cleared the cache.
        let tdir = self
            .existing_dir(&target_parent, path)?
            .try_clone()
            .map_err(|e| UnpackError::Io {
                member: path.display().to_string(),
                source: io::Error::other(e),
            })?;
        let dir = self.dir(parent, path)?;
        // No AT_SYMLINK_FOLLOW: a link to a symlink links the symlink itself.
        rustix::fs::linkat(&tdir, &target_name, dir, name, AtFlags::empty()).map_err(|e| {
            if e == Errno::NOENT || e == Errno::PERM {
                UnpackError::refused(path, "its link target is not a file in the layer")
            } else {
                io_at(path)(e)
            }
        })
    }

    /// Sets directory mtimes now that nothing more is added to them.
    fn finish(mut self) -> Result<(), UnpackError> {
        let times = std::mem::take(&mut self.dir_times);
        for (path, mtime) in times {
            let parent = path.parent().unwrap_or(Path::new(""));
            let name = path.file_name().unwrap_or_default();
            // A directory later replaced or whited out is simply gone.
            let Ok(dir) = self.dir(parent, &path) else {
                continue;
            };
            let meta = Meta {
                uid: 0,
                gid: 0,
                mode: 0,
                mtime,
            };
            match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(s) if FileType::from_raw_mode(s.st_mode) == FileType::Directory => {
                    rustix::fs::utimensat(dir, name, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)
                        .map_err(io_at(&path))?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Ownership, mode and time from a tar header.
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: u64,
}

impl Meta {
    /// Owner, then mode (a chown clears setuid bits, so it goes first).
    fn apply(&self, file: &File) -> rustix::io::Result<()> {
        rustix::fs::fchown(
            file,
            Some(rustix::fs::Uid::from_raw(self.uid)),
            Some(rustix::fs::Gid::from_raw(self.gid)),
        )?;
        rustix::fs::fchmod(file, Mode::from_raw_mode(self.mode))
    }

    fn times(&self) -> Timestamps {
        let t = rustix::fs::Timespec {
            tv_sec: self.mtime.min(i64::MAX as u64) as i64,
            tv_nsec: 0,
        };
        Timestamps {
            last_access: t,
            last_modification: t,
        }
    }
}

/// Sets a member's harmless xattrs (PAX `SCHILY.xattr.*`) on its open file.
fn set_xattrs<R: Read>(
    entry: &mut tar::Entry<R>,
    file: &File,
    path: &Path,
) -> Result<(), UnpackError> {
    let Some(exts) = entry.pax_extensions().map_err(UnpackError::Read)? else {
        return Ok(());
    };
    for ext in exts {
        let ext = ext.map_err(UnpackError::Read)?;
        let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") else {
            continue;
        };
        if !harmless_xattr(name) {
            continue;
        }
        match rustix::fs::fsetxattr(
            file,
            OsStr::from_bytes(name),
            ext.value_bytes(),
            rustix::fs::XattrFlags::empty(),
        ) {
            // A filesystem without user xattrs: the file is still right.
            Ok(()) | Err(Errno::OPNOTSUPP) => {}
            Err(e) => return Err(io_at(path)(e)),
        }
    }
    Ok(())
}

/// A failure to reach a member's parent: a symlink or a non-directory on
/// the way is the learner's doing and is refused; anything else is I/O.
fn resolve_error(member: &Path, e: pathrs::error::Error) -> UnpackError {
    use pathrs::error::ErrorKind;
    match e.kind() {
        ErrorKind::OsError(Some(code))
            if [libc::ELOOP, libc::ENOTDIR, libc::EXDEV, libc::EEXIST].contains(&code) =>
        {
            UnpackError::refused(
                member,
                "a directory on its path is a symlink or not a directory",
            )
        }
        ErrorKind::SafetyViolation => UnpackError::refused(member, "its path changed under us"),
        _ => UnpackError::Io {
            member: member.display().to_string(),
            source: io::Error::other(e),
        },
    }
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
pub(crate) mod tests;
