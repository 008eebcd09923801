//! In-root file operations on trees a learner controls (image layers,
//! volumes, build contexts, new layers the builder writes).
//!
//! Host root never resolves a path in such a tree by string: a [`Tree`] holds
//! a directory handle (a `pathrs::Root`) and every path is resolved inside it
//! (`RESOLVE_IN_ROOT`: an absolute symlink or `..` stops at the tree's root),
//! one operation at a time, and acts on the fd it got. So a symlink planted by
//! an image, by an earlier tar entry or by a container running on the same
//! volume at the same moment can at worst redirect a write to another place in
//! the same tree, never outside it.

use std::ffi::OsString;
use std::fs::{File, Metadata, Permissions};
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use pathrs::flags::{OpenFlags, ResolverFlags};
use pathrs::{InodeType, Root};

/// Directory levels a copy descends before giving up: each level holds an
/// fd, and a crafted image must not exhaust them (or the stack).
const MAX_DEPTH: usize = 256;

/// A pathrs error as an `io::Error`, keeping its errno when it has one.
pub fn path_err(e: pathrs::error::Error) -> io::Error {
    match e.kind() {
        pathrs::error::ErrorKind::OsError(Some(errno)) => io::Error::from_raw_os_error(errno),
        _ => io::Error::other(e.to_string()),
    }
}

/// A directory tree opened once, every path resolved inside it.
#[derive(Debug)]
pub struct Tree {
    root: Root,
}

impl Tree {
    /// Opens `dir` (a path the engine made, never a learner's) as a tree.
    pub fn open(dir: &Path) -> io::Result<Self> {
        Ok(Self {
            root: Root::open(dir).map_err(path_err)?,
        })
    }

    /// Like [`Tree::open`], but no path inside may pass a symlink at all
    /// (`RESOLVE_NO_SYMLINKS`): for reading one layer of a stack, where a
    /// symlink in a lower layer is not followed by the merged view either.
    pub fn open_no_symlinks(dir: &Path) -> io::Result<Self> {
        let root = Root::open(dir)
            .map_err(path_err)?
            .with_resolver_flags(ResolverFlags::NO_SYMLINKS);
        Ok(Self { root })
    }

    /// The directory `rel` (symlinks on the way followed inside this tree)
    /// as a tree of its own; `None` when it is missing or not a directory.
    pub fn subtree(&self, rel: &Path) -> io::Result<Option<Tree>> {
        let handle = match self.root.resolve(rel).map_err(path_err) {
            Ok(h) => h,
            Err(e) if is_missing(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        let fd = OwnedFd::from(handle);
        let meta = File::from(fd.try_clone()?).metadata()?;
        if !meta.is_dir() {
            return Ok(None);
        }
        Ok(Some(Tree {
            root: Root::from_fd(fd),
        }))
    }

    /// Metadata of `rel`, not following a final symlink; `None` if missing.
    pub fn lstat(&self, rel: &Path) -> io::Result<Option<Metadata>> {
        match self.root.resolve_nofollow(rel) {
            Ok(h) => Ok(Some(File::from(OwnedFd::from(h)).metadata()?)),
            Err(e) => {
                let e = path_err(e);
                if is_missing(&e) {
                    Ok(None)
                } else {
                    Err(e)
                }
            }
        }
    }

    /// The names in directory `rel` (no final symlink followed).
    pub fn list(&self, rel: &Path) -> io::Result<Vec<OsString>> {
        let handle = self.root.resolve_nofollow(rel).map_err(path_err)?;
        let dir = handle
            .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY | OpenFlags::O_CLOEXEC)
            .map_err(path_err)?;
        let mut dir = nix::dir::Dir::from(dir).map_err(io::Error::from)?;
        let mut names = Vec::new();
        for entry in dir.iter() {
            let entry = entry.map_err(io::Error::from)?;
            let name = entry.file_name().to_bytes();
            if name != b"." && name != b".." {
                names.push(OsString::from(std::ffi::OsStr::from_bytes(name)));
            }
        }
        names.sort();
        Ok(names)
    }

    /// Opens the regular file `rel` for reading (a final symlink is refused).
    pub fn open_file(&self, rel: &Path) -> io::Result<File> {
        let handle = self.root.resolve_nofollow(rel).map_err(path_err)?;
        open_regular(handle, rel)
    }

    /// Opens the regular file `rel` for reading, symlinks (the final one
    /// too) followed inside this tree.
    pub fn open_file_following(&self, rel: &Path) -> io::Result<File> {
        let handle = self.root.resolve(rel).map_err(path_err)?;
        open_regular(handle, rel)
    }

    /// The target of symlink `rel`.
    pub fn readlink(&self, rel: &Path) -> io::Result<PathBuf> {
        self.root.readlink(rel).map_err(path_err)
    }

    /// Makes directory `rel` unless a directory is there (a non-directory in
    /// the way is replaced), and its parents (0755).
    pub fn mkdir(&self, rel: &Path, mode: u32) -> io::Result<()> {
        self.mkdir_parent(rel)?;
        match self.lstat(rel)? {
            Some(m) if m.is_dir() => return Ok(()),
            Some(_) => self.remove_nondir(rel)?,
            None => {}
        }
        match self.root.create(
            rel,
            &InodeType::Directory(Permissions::from_mode(mode & 0o7777)),
        ) {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = path_err(e);
                // Made meanwhile by someone else: fine if it is a directory.
                if e.kind() == io::ErrorKind::AlreadyExists
                    && self.lstat(rel)?.is_some_and(|m| m.is_dir())
                {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Makes the parents of `rel` (0755 where new).
    pub fn mkdir_parent(&self, rel: &Path) -> io::Result<()> {
        match rel.parent() {
            Some(p) if !p.as_os_str().is_empty() && p != Path::new("/") => {
                self.root
                    .mkdir_all(p, &Permissions::from_mode(0o755))
                    .map_err(path_err)?;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Removes `rel` if it is there and not a directory.
    pub fn remove_nondir(&self, rel: &Path) -> io::Result<()> {
        match self.root.remove_file(rel) {
            Ok(()) => Ok(()),
            Err(e) => {
                let e = path_err(e);
                if is_missing(&e) {
                    Ok(())
                } else {
                    Err(e)
                }
            }
        }
    }

    /// Creates the regular file `rel` anew (`O_EXCL`: whatever is in the
    /// way is removed first, and nothing planted meanwhile is written
    /// through) and returns it open for writing.
    pub fn create_file(&self, rel: &Path, mode: u32) -> io::Result<File> {
        self.mkdir_parent(rel)?;
        self.remove_nondir(rel)?;
        let file = self
            .root
            .create_file(
                rel,
                OpenFlags::O_WRONLY | OpenFlags::O_EXCL | OpenFlags::O_CLOEXEC,
                &Permissions::from_mode(mode & 0o777),
            )
            .map_err(path_err)?;
        // The umask shaped the mode at creation; set it exactly.
        file.set_permissions(Permissions::from_mode(mode & 0o7777))?;
        Ok(file)
    }

    /// Makes the symlink `rel` → `target` (the target is never followed here).
    pub fn symlink(&self, rel: &Path, target: &Path) -> io::Result<()> {
        self.mkdir_parent(rel)?;
        self.remove_nondir(rel)?;
        self.root
            .create(rel, &InodeType::Symlink(target.to_path_buf()))
            .map_err(path_err)
    }

    /// Makes `rel` a hard link to `target`, both inside this tree.
    pub fn hardlink(&self, rel: &Path, target: &Path) -> io::Result<()> {
        self.mkdir_parent(rel)?;
        self.remove_nondir(rel)?;
        self.root
            .create(rel, &InodeType::Hardlink(target.to_path_buf()))
            .map_err(path_err)
    }

    /// Makes the named pipe `rel`.
    pub fn fifo(&self, rel: &Path, mode: u32) -> io::Result<()> {
        self.mkdir_parent(rel)?;
        self.remove_nondir(rel)?;
        self.root
            .create(rel, &InodeType::Fifo(Permissions::from_mode(mode & 0o777)))
            .map_err(path_err)
    }

    /// Sets the owner of `rel` itself (a symlink is not followed).
    pub fn chown(&self, rel: &Path, uid: u32, gid: u32) -> io::Result<()> {
        let handle = self.root.resolve_nofollow(rel).map_err(path_err)?;
        nix::unistd::fchownat(
            Some(handle.as_fd().as_raw_fd()),
            "",
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(gid)),
            nix::fcntl::AtFlags::AT_EMPTY_PATH,
        )
        .map_err(io::Error::from)
    }

    /// The value of xattr `name` of directory `rel`, read from its fd.
    pub fn dir_xattr(&self, rel: &Path, name: &str) -> Option<Vec<u8>> {
        use xattr::FileExt;
        let handle = self.root.resolve_nofollow(rel).ok()?;
        let dir = handle
            .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY | OpenFlags::O_CLOEXEC)
            .ok()?;
        dir.get_xattr(name).ok().flatten()
    }

    /// Sets the mode and modification time of directory `rel`.
    pub fn set_dir_attrs(&self, rel: &Path, mode: u32, mtime: Option<i64>) -> io::Result<()> {
        let handle = self.root.resolve_nofollow(rel).map_err(path_err)?;
        let dir = handle
            .reopen(OpenFlags::O_RDONLY | OpenFlags::O_DIRECTORY | OpenFlags::O_CLOEXEC)
            .map_err(path_err)?;
        dir.set_permissions(Permissions::from_mode(mode & 0o7777))?;
        if let Some(secs) = mtime {
            set_mtime(&dir, secs)?;
        }
        Ok(())
    }
}

/// Sets a file's modification (and access) time to `secs`.
pub fn set_mtime(file: &File, secs: i64) -> io::Result<()> {
    let t = UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64);
    file.set_times(std::fs::FileTimes::new().set_accessed(t).set_modified(t))
}

/// Whether an error means "not there" (or not reachable as a directory).
pub fn is_missing(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ENOTDIR))
}

/// How [`copy_tree`] maps the owners it copies.
pub type OwnerMap<'a> = &'a dyn Fn(u32, u32) -> io::Result<(u32, u32)>;

/// Copies the content of `src`'s root into `dst`'s root (which takes the
/// source root's mode and owner): directories, regular files and symlinks,
/// each read from an fd resolved in `src` and written through an fd made in
/// `dst`. Devices, fifos, sockets (and overlay whiteouts) are left out.
pub fn copy_tree(src: &Tree, dst: &Tree, owner: OwnerMap) -> io::Result<()> {
    let top = src
        .lstat(Path::new("/"))?
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
    copy_children(src, dst, Path::new("/"), owner, 0)?;
    let (uid, gid) = owner(top.uid(), top.gid())?;
    dst.chown(Path::new("/"), uid, gid)?;
    dst.set_dir_attrs(Path::new("/"), top.mode(), None)
}

fn copy_children(
    src: &Tree,
    dst: &Tree,
    dir: &Path,
    owner: OwnerMap,
    depth: usize,
) -> io::Result<()> {
    if depth > MAX_DEPTH {
        return Err(io::Error::other(format!(
            "{}: directories nested too deeply",
            dir.display()
        )));
    }
    for name in src.list(dir)? {
        let rel = dir.join(&name);
        let Some(meta) = src.lstat(&rel)? else {
            continue;
        };
        let ft = meta.file_type();
        let (uid, gid) = owner(meta.uid(), meta.gid())?;
        if ft.is_dir() {
            dst.mkdir(&rel, 0o700)?;
            copy_children(src, dst, &rel, owner, depth + 1)?;
            dst.chown(&rel, uid, gid)?;
            dst.set_dir_attrs(&rel, meta.mode(), Some(meta.mtime()))?;
        } else if ft.is_symlink() {
            dst.symlink(&rel, &src.readlink(&rel)?)?;
            dst.chown(&rel, uid, gid)?;
        } else if ft.is_file() {
            let mut from = src.open_file(&rel)?;
            let mut to = dst.create_file(&rel, 0o600)?;
            io::copy(&mut from, &mut to)?;
            std::os::unix::fs::fchown(&to, Some(uid), Some(gid))?;
            to.set_permissions(Permissions::from_mode(meta.mode() & 0o7777))?;
            set_mtime(&to, meta.mtime())?;
        } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() || ft.is_socket() {
            continue;
        }
    }
    Ok(())
}

/// What [`extract_tar`] does with ownership and device nodes.
#[derive(Debug, Clone, Copy, Default)]
pub struct Extract {
    /// Keep the archive's uid/gid (else files belong to the extracting user).
    pub owners: bool,
}

/// A tar member name as a clean path relative to the tree's root below
/// `dest`, or `None` when its `..` climb out of `dest` (Docker's "breakout").
fn entry_path(dest: &Path, name: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in name.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::ParentDir => {
                parts.pop()?;
            }
            _ => {}
        }
    }
    let mut out = dest.to_path_buf();
    out.extend(parts);
    Some(out)
}

/// Extracts a tar stream into directory `dest` of `tree`, every entry made
/// in-root: names are cleaned (a `..` that climbs out of `dest` is refused),
/// parents are resolved in the tree (so a symlink from an earlier entry leads
/// at most elsewhere in the tree), hard links must point inside `dest`, and
/// device nodes are refused.
pub fn extract_tar(tree: &Tree, dest: &Path, reader: impl Read, opts: Extract) -> io::Result<()> {
    extract_tar_where(tree, dest, reader, opts, &mut |_| true)
}

/// [`extract_tar`] of the entries whose member name `keep` accepts.
pub fn extract_tar_where(
    tree: &Tree,
    dest: &Path,
    reader: impl Read,
    opts: Extract,
    keep: &mut dyn FnMut(&Path) -> bool,
) -> io::Result<()> {
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = entry.path()?.into_owned();
        if !keep(&name) {
            continue;
        }
        let rel = entry_path(dest, &name).ok_or_else(|| {
            io::Error::other(format!(
                "{:?} is outside of {:?}",
                name.display().to_string(),
                dest.display().to_string()
            ))
        })?;
        let header = entry.header();
        let mode = header.mode().unwrap_or(0o644);
        let mtime = header.mtime().unwrap_or(0) as i64;
        let ids = (
            header.uid().unwrap_or(0) as u32,
            header.gid().unwrap_or(0) as u32,
        );
        let kind = header.entry_type();
        if rel == dest && !kind.is_dir() {
            continue;
        }
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                tree.mkdir(&rel, 0o700)?;
                if opts.owners {
                    tree.chown(&rel, ids.0, ids.1)?;
                }
                tree.set_dir_attrs(&rel, mode, Some(mtime))?;
            }
            T::Regular | T::Continuous | T::GNUSparse => {
                let mut file = tree.create_file(&rel, 0o600)?;
                io::copy(&mut entry, &mut file)?;
                if opts.owners {
                    std::os::unix::fs::fchown(&file, Some(ids.0), Some(ids.1))?;
                }
                file.set_permissions(Permissions::from_mode(mode & 0o7777))?;
                set_mtime(&file, mtime)?;
            }
            T::Symlink => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| {
                        io::Error::other(format!("{}: symlink without target", name.display()))
                    })?
                    .into_owned();
                tree.symlink(&rel, &target)?;
                if opts.owners {
                    tree.chown(&rel, ids.0, ids.1)?;
                }
            }
            T::Link => {
                let link = entry
                    .link_name()?
                    .ok_or_else(|| {
                        io::Error::other(format!("{}: hard link without target", name.display()))
                    })?
                    .into_owned();
                let target = entry_path(dest, &link).ok_or_else(|| {
                    io::Error::other(format!(
                        "invalid hardlink {:?} -> {:?}",
                        link.display().to_string(),
                        name.display().to_string()
                    ))
                })?;
                tree.hardlink(&rel, &target)?;
            }
            T::Fifo => {
                tree.fifo(&rel, mode)?;
                if opts.owners {
                    tree.chown(&rel, ids.0, ids.1)?;
                }
            }
            T::Char | T::Block => {
                return Err(io::Error::other(format!(
                    "refusing to create device node {}",
                    name.display()
                )));
            }
            // Pax and GNU long-name headers are read by the tar crate itself;
            // anything else carries no file.
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "intree_tests.rs"]
mod tests;

/// Reopens the resolved `handle` of `rel` for reading if it is a regular
/// file (a fifo or device would block, or reach outside the tree).
fn open_regular(handle: pathrs::Handle, rel: &Path) -> io::Result<File> {
    let probe = File::from(OwnedFd::from(handle.try_clone().map_err(path_err)?));
    if !probe.metadata()?.is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            rel.display()
        )));
    }
    handle
        .reopen(OpenFlags::O_RDONLY | OpenFlags::O_CLOEXEC)
        .map_err(path_err)
}
