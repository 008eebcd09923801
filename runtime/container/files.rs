//! A container's files for the classroom's editor: list a directory, read
//! and write a file, make a directory, rename, remove, and unpack an
//! uploaded tar.
//!
//! The container is the learner's lab, so its whole tree is hostile: any
//! component may be a symlink to `/etc` or `/`, and the learner's shell can
//! swap one for another while a request runs. So nothing here resolves a
//! lab path on the host: every operation runs in the `berth __archive`
//! process that `docker cp` uses ([`super::archive`]), which joins the
//! container's user and mount namespaces first. There, `/` is the lab's
//! root, a symlink to `/etc/passwd` means the lab's own file, root is the
//! session's unprivileged uid (so new files belong to the lab's user and
//! host files are out of reach even through a race), and writes land on the
//! session's filesystem, whose size is its disk budget (a full one fails
//! with "no space left on device", never the host's disk).
//!
//! Opens are non-blocking and checked with `fstat` before any read or
//! write, so a FIFO or a device planted under a file's name answers "not a
//! regular file" instead of hanging the helper.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::archive::{refuse_unsafe_entry, Operation};
use super::manager::{Container, Runtime};

/// Most entries a directory listing returns (the rest are counted).
pub const MAX_ENTRIES: usize = 5000;

/// One file operation, run inside the container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FileOp {
    /// The directory's entries as JSON.
    List,
    /// The path's [`FileInfo`] as JSON (symlinks followed).
    Stat,
    /// A JSON line of [`FileInfo`], then the regular file's bytes; refused
    /// when larger than `max`.
    Read { max: Option<u64> },
    /// Stdin becomes the regular file's content. With `expect`, refused when
    /// the file's version is not that one (changed since it was read); with
    /// `create_new`, refused when the path exists.
    Write {
        expect: Option<String>,
        create_new: bool,
    },
    /// A new directory (its parents must exist).
    Mkdir,
    /// Renamed to `to`; never replaces what is there.
    Rename { to: String },
    /// Removed (a directory with its contents).
    Remove,
    /// The tar on stdin unpacked into the directory.
    Unpack,
}

/// What kind of entry a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Dir,
    File,
    Link,
    Other,
}

/// A directory entry or a file's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub name: String,
    pub kind: FileKind,
    pub size: u64,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Changes whenever the content may have: inode, size, mtime and ctime.
    pub version: String,
    /// Where a symlink points (as written in the link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// A directory's entries, directories first, then by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub entries: Vec<FileInfo>,
    /// Entries left out past [`MAX_ENTRIES`].
    pub omitted: usize,
}

/// Why a file operation failed, for the caller to turn into a status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileErrorKind {
    NotFound,
    NotADirectory,
    NotAFile,
    Exists,
    /// The file changed since the version the caller holds.
    Changed,
    TooLarge,
    NoSpace,
    Invalid,
    Failed,
}

/// A failed file operation and its message for the learner.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct FileError {
    pub kind: FileErrorKind,
    pub message: String,
}

impl FileError {
    fn new(kind: FileErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Exit codes of the helper for each kind (after `archive`'s 0..=4).
const CODES: &[(i32, FileErrorKind)] = &[
    (2, FileErrorKind::NotFound),
    (3, FileErrorKind::NotADirectory),
    (4, FileErrorKind::Failed),
    (10, FileErrorKind::NotAFile),
    (11, FileErrorKind::Exists),
    (12, FileErrorKind::Changed),
    (13, FileErrorKind::TooLarge),
    (14, FileErrorKind::NoSpace),
    (15, FileErrorKind::Invalid),
];

fn code_of(kind: FileErrorKind) -> i32 {
    CODES
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or(4, |(c, _)| *c)
}

fn kind_of(code: i32) -> FileErrorKind {
    CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or(FileErrorKind::Failed, |(_, k)| *k)
}

impl Runtime {
    /// Runs `op` on `path` (absolute, in the container) with `input` on the
    /// helper's stdin; its stdout goes to `out`.
    fn file_op(
        &self,
        container: &Arc<Container>,
        op: FileOp,
        path: &str,
        input: Option<&mut (dyn Read + Send)>,
        out: &mut dyn FnMut(&mut dyn Read) -> io::Result<()>,
    ) -> Result<(), FileError> {
        let failed = |e: String| FileError::new(FileErrorKind::Failed, e);
        let stdin = if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        let _op = self.hold_if_stopped(container);
        let mut child = self
            .archive_process(container, Operation::Files(op), path, stdin)
            .map_err(|e| failed(e.to_string()))?;
        // Stdin is fed from a thread so a helper that stops reading early
        // (an error) never leaves both sides waiting on full pipes.
        let pipe = child.stdin.take();
        let mut stdout = child.stdout.take().expect("piped stdout");
        let mut stderr = child.stderr.take().expect("piped stderr");
        let (copied, err_text, written) = std::thread::scope(|s| {
            let writer = match (input, pipe) {
                (Some(input), Some(mut pipe)) => Some(s.spawn(move || {
                    let r = io::copy(input, &mut pipe);
                    drop(pipe);
                    r
                })),
                _ => None,
            };
            let errs = s.spawn(move || {
                let mut text = Vec::new();
                let _ = (&mut stderr).take(64 * 1024).read_to_end(&mut text);
                let _ = io::copy(&mut stderr, &mut io::sink());
                text
            });
            let copied = out(&mut stdout);
            // Drain what the caller left so the helper can finish.
            let _ = io::copy(&mut stdout, &mut io::sink());
            let written = writer.map(|w| w.join().unwrap_or(Ok(0)));
            (copied, errs.join().unwrap_or_default(), written)
        });
        let status = child.wait().map_err(|e| failed(e.to_string()))?;
        let message = String::from_utf8_lossy(&err_text).trim().to_string();
        match status.code() {
            Some(0) => {}
            Some(code) => {
                return Err(FileError::new(
                    kind_of(code),
                    if message.is_empty() {
                        "the file helper failed".into()
                    } else {
                        message
                    },
                ))
            }
            None => return Err(failed("the file helper was killed".into())),
        }
        copied.map_err(|e| failed(e.to_string()))?;
        if let Some(Err(e)) = written {
            return Err(failed(format!("send file: {e}")));
        }
        Ok(())
    }

    fn file_json<T: for<'a> Deserialize<'a>>(
        &self,
        container: &Arc<Container>,
        op: FileOp,
        path: &str,
        input: Option<&mut (dyn Read + Send)>,
    ) -> Result<T, FileError> {
        let mut text = Vec::new();
        self.file_op(container, op, path, input, &mut |r| {
            // A listing is bounded by MAX_ENTRIES; this bounds it again.
            r.take(16 << 20).read_to_end(&mut text).map(|_| ())
        })?;
        serde_json::from_slice(&text)
            .map_err(|e| FileError::new(FileErrorKind::Failed, format!("file helper: {e}")))
    }

    /// The entries of directory `path` in `container`.
    pub fn file_list(&self, container: &Arc<Container>, path: &str) -> Result<Listing, FileError> {
        self.file_json(container, FileOp::List, path, None)
    }

    /// The state of `path` (symlinks followed).
    pub fn file_stat(&self, container: &Arc<Container>, path: &str) -> Result<FileInfo, FileError> {
        self.file_json(container, FileOp::Stat, path, None)
    }

    /// The regular file `path`: its state, and its content written to
    /// `out`; refused (before any byte is read) when larger than `max`.
    pub fn file_read(
        &self,
        container: &Arc<Container>,
        path: &str,
        max: Option<u64>,
        out: &mut dyn Write,
    ) -> Result<FileInfo, FileError> {
        let mut info = None;
        self.file_op(container, FileOp::Read { max }, path, None, &mut |r| {
            let mut r = BufReader::new(r);
            let mut line = Vec::new();
            (&mut r).take(64 * 1024).read_until(b'\n', &mut line)?;
            info = Some(serde_json::from_slice::<FileInfo>(&line).map_err(io::Error::other)?);
            match max {
                Some(max) => io::copy(&mut r.take(max), out),
                None => io::copy(&mut r, out),
            }
            .map(|_| ())
        })?;
        info.ok_or_else(|| FileError::new(FileErrorKind::Failed, "the file helper said nothing"))
    }

    /// Writes `input` as the content of the regular file `path`.
    pub fn file_write(
        &self,
        container: &Arc<Container>,
        path: &str,
        expect: Option<String>,
        create_new: bool,
        input: &mut (dyn Read + Send),
    ) -> Result<FileInfo, FileError> {
        let op = FileOp::Write { expect, create_new };
        self.file_json(container, op, path, Some(input))
    }

    /// Makes directory `path`.
    pub fn file_mkdir(&self, container: &Arc<Container>, path: &str) -> Result<(), FileError> {
        self.file_op(container, FileOp::Mkdir, path, None, &mut |_| Ok(()))
    }

    /// Renames `from` to `to` (both absolute in the container).
    pub fn file_rename(
        &self,
        container: &Arc<Container>,
        from: &str,
        to: &str,
    ) -> Result<(), FileError> {
        let op = FileOp::Rename { to: to.to_string() };
        self.file_op(container, op, from, None, &mut |_| Ok(()))
    }

    /// Removes `path` (a directory with everything in it).
    pub fn file_remove(&self, container: &Arc<Container>, path: &str) -> Result<(), FileError> {
        self.file_op(container, FileOp::Remove, path, None, &mut |_| Ok(()))
    }

    /// Unpacks the tar `input` into directory `path`.
    pub fn file_unpack(
        &self,
        container: &Arc<Container>,
        path: &str,
        input: &mut (dyn Read + Send),
    ) -> Result<(), FileError> {
        self.file_op(
            container,
            FileOp::Unpack,
            path,
            Some(input),
            &mut |_| Ok(()),
        )
    }
}

// ---- inside the helper (after it joined the container's namespaces) ----

type Failed = (i32, String);

fn fail(kind: FileErrorKind, message: impl Into<String>) -> Failed {
    (code_of(kind), message.into())
}

fn is_no_space(e: &io::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<io::Error>() {
            if matches!(io.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT)) {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

/// An `io::Error` on `path` as the helper's answer.
fn io_fail(path: &Path, e: io::Error) -> Failed {
    let shown = path.display();
    if is_no_space(&e) {
        return fail(
            FileErrorKind::NoSpace,
            format!("{shown}: no space left on device (the lab's disk budget is used up)"),
        );
    }
    match e.raw_os_error() {
        Some(libc::ENOENT) => fail(
            FileErrorKind::NotFound,
            format!("{shown}: no such file or directory"),
        ),
        Some(libc::ENOTDIR) => fail(
            FileErrorKind::NotADirectory,
            format!("{shown}: not a directory"),
        ),
        Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => {
            fail(FileErrorKind::Exists, format!("{shown}: already exists"))
        }
        // A FIFO without a reader, a device without a driver.
        Some(libc::ENXIO) | Some(libc::ENODEV) => fail(
            FileErrorKind::NotAFile,
            format!("{shown}: not a regular file"),
        ),
        Some(libc::EISDIR) => fail(FileErrorKind::NotAFile, format!("{shown}: is a directory")),
        _ => fail(FileErrorKind::Failed, format!("{shown}: {e}")),
    }
}

fn version(meta: &fs::Metadata) -> String {
    format!(
        "{}-{}-{}.{}-{}.{}",
        meta.ino(),
        meta.len(),
        meta.mtime(),
        meta.mtime_nsec(),
        meta.ctime(),
        meta.ctime_nsec()
    )
}

fn info(name: String, meta: &fs::Metadata, target: Option<String>) -> FileInfo {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_file() {
        FileKind::File
    } else if ft.is_symlink() {
        FileKind::Link
    } else {
        FileKind::Other
    };
    FileInfo {
        name,
        kind,
        size: meta.len(),
        mtime: meta.mtime(),
        version: version(meta),
        target,
    }
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into())
}

fn print_json<T: Serialize>(value: &T) -> Result<(), Failed> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, value)
        .map_err(|e| fail(FileErrorKind::Failed, e.to_string()))?;
    out.write_all(b"\n")
        .and_then(|()| out.flush())
        .map_err(|e| fail(FileErrorKind::Failed, e.to_string()))
}

/// Opens a regular file without blocking on a FIFO or a device, and checks
/// what it got.
fn open_regular(path: &Path, options: &mut OpenOptions) -> Result<(File, fs::Metadata), Failed> {
    let file = options
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| io_fail(path, e))?;
    let meta = file.metadata().map_err(|e| io_fail(path, e))?;
    if !meta.is_file() {
        return Err(fail(
            FileErrorKind::NotAFile,
            format!("{}: not a regular file", path.display()),
        ));
    }
    Ok((file, meta))
}

/// Runs `op` on `path` inside the container; stdout and stdin are the
/// engine's pipes.
pub(super) fn run(op: &FileOp, path: &Path) -> Result<(), Failed> {
    match op {
        FileOp::List => list(path),
        FileOp::Stat => {
            let meta = fs::metadata(path).map_err(|e| io_fail(path, e))?;
            print_json(&info(name_of(path), &meta, None))
        }
        FileOp::Read { max } => read(path, *max),
        FileOp::Write { expect, create_new } => write(path, expect.as_deref(), *create_new),
        FileOp::Mkdir => fs::create_dir(path).map_err(|e| io_fail(path, e)),
        FileOp::Rename { to } => rename(path, &super::archive::container_path(to)),
        FileOp::Remove => {
            let meta = fs::symlink_metadata(path).map_err(|e| io_fail(path, e))?;
            // std's remove_dir_all never follows a symlink inside the tree.
            if meta.is_dir() {
                fs::remove_dir_all(path)
            } else {
                fs::remove_file(path)
            }
            .map_err(|e| io_fail(path, e))
        }
        FileOp::Unpack => unpack(path),
    }
}

fn list(path: &Path) -> Result<(), Failed> {
    let meta = fs::metadata(path).map_err(|e| io_fail(path, e))?;
    if !meta.is_dir() {
        return Err(fail(
            FileErrorKind::NotADirectory,
            format!("{}: not a directory", path.display()),
        ));
    }
    let mut entries = Vec::new();
    let mut omitted = 0;
    for entry in fs::read_dir(path).map_err(|e| io_fail(path, e))? {
        let Ok(entry) = entry else { continue };
        if entries.len() >= MAX_ENTRIES {
            omitted += 1;
            continue;
        }
        let Ok(own) = entry.metadata() else { continue };
        // A symlink is listed as what it leads to (inside the lab), with
        // its target; a dangling one as a link.
        let (meta, target) = if own.file_type().is_symlink() {
            let target = fs::read_link(entry.path())
                .ok()
                .map(|t| t.to_string_lossy().into_owned());
            (fs::metadata(entry.path()).unwrap_or(own), target)
        } else {
            (own, None)
        };
        let e = info(
            entry.file_name().to_string_lossy().into_owned(),
            &meta,
            target,
        );
        entries.push(e);
    }
    entries.sort_by(|a, b| {
        (a.kind != FileKind::Dir, &a.name).cmp(&(b.kind != FileKind::Dir, &b.name))
    });
    print_json(&Listing { entries, omitted })
}

fn read(path: &Path, max: Option<u64>) -> Result<(), Failed> {
    let (file, meta) = open_regular(path, OpenOptions::new().read(true))?;
    if let Some(max) = max {
        if meta.len() > max {
            return Err(fail(
                FileErrorKind::TooLarge,
                format!(
                    "{} is {} bytes, larger than the editor opens ({} bytes): download it instead",
                    path.display(),
                    meta.len(),
                    max
                ),
            ));
        }
    }
    print_json(&info(name_of(path), &meta, None))?;
    let mut out = io::stdout().lock();
    // The file may grow meanwhile: never send more than was announced.
    let limit = max.map_or(u64::MAX, |m| m.min(meta.len()));
    io::copy(&mut file.take(limit), &mut out)
        .and_then(|_| out.flush())
        .map(|_| ())
        .map_err(|e| io_fail(path, e))
}

fn write(path: &Path, expect: Option<&str>, create_new: bool) -> Result<(), Failed> {
    let mut options = OpenOptions::new();
    options.write(true);
    if create_new {
        options.create_new(true).mode(0o644);
    } else if expect.is_none() {
        options.create(true).mode(0o644);
    }
    let (mut file, meta) = open_regular(path, &mut options)?;
    if let Some(expect) = expect {
        if version(&meta) != expect {
            return Err(fail(
                FileErrorKind::Changed,
                format!(
                    "{} changed on disk since you opened it: reload it, or save again to overwrite",
                    path.display()
                ),
            ));
        }
    }
    file.set_len(0).map_err(|e| io_fail(path, e))?;
    io::copy(&mut io::stdin().lock(), &mut file).map_err(|e| io_fail(path, e))?;
    file.sync_data().map_err(|e| io_fail(path, e))?;
    let meta = file.metadata().map_err(|e| io_fail(path, e))?;
    print_json(&info(name_of(path), &meta, None))
}

fn rename(from: &Path, to: &Path) -> Result<(), Failed> {
    use nix::fcntl::{renameat2, RenameFlags};
    renameat2(None, from, None, to, RenameFlags::RENAME_NOREPLACE).map_err(|e| {
        let e = io::Error::from(e);
        if e.raw_os_error() == Some(libc::EEXIST) {
            fail(
                FileErrorKind::Exists,
                format!("{}: already exists", to.display()),
            )
        } else {
            io_fail(from, e)
        }
    })
}

fn unpack(path: &Path) -> Result<(), Failed> {
    let meta = fs::metadata(path).map_err(|e| io_fail(path, e))?;
    if !meta.is_dir() {
        return Err(fail(
            FileErrorKind::NotADirectory,
            format!("{}: not a directory", path.display()),
        ));
    }
    let mut archive = tar::Archive::new(io::stdin().lock());
    // Ownership is the helper's (the lab's root); modes without set-id bits.
    archive.set_preserve_permissions(false);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(false);
    archive.set_overwrite(true);
    archive.set_unpack_xattrs(false);
    let bad = |e: io::Error| fail(FileErrorKind::Invalid, format!("read archive: {e}"));
    for entry in archive.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        refuse_unsafe_entry(&entry, path).map_err(|(_, m)| fail(FileErrorKind::Invalid, m))?;
        let kind = entry.header().entry_type();
        if !matches!(
            kind,
            tar::EntryType::Regular | tar::EntryType::Directory | tar::EntryType::Continuous
        ) {
            let name = entry
                .path()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            return Err(fail(
                FileErrorKind::Invalid,
                format!("{name}: only files and folders can be uploaded"),
            ));
        }
        match entry.unpack_in(path) {
            Ok(true) => {}
            Ok(false) => {
                let name = entry
                    .path()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                return Err(fail(
                    FileErrorKind::Invalid,
                    format!("{name}: outside of the upload's folder"),
                ));
            }
            Err(e) => return Err(io_fail(path, e)),
        }
    }
    Ok(())
}

/// The absolute path in the container for `rel`, relative to `base`; `None`
/// when `rel` is absolute, climbs with `..`, holds a NUL byte or an empty
/// component other than a trailing one, or is longer than a path may be.
pub fn lab_path(base: &str, rel: &str) -> Option<String> {
    if rel.len() > 4000 || rel.contains('\0') || rel.starts_with('/') {
        return None;
    }
    let mut out = PathBuf::from(base);
    for part in rel.split('/') {
        match part {
            "" | "." => continue,
            ".." => return None,
            p => out.push(p),
        }
    }
    Some(out.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_paths_stay_under_the_base() {
        assert_eq!(lab_path("/root", "").as_deref(), Some("/root"));
        assert_eq!(
            lab_path("/root", "app/Dockerfile").as_deref(),
            Some("/root/app/Dockerfile")
        );
        assert_eq!(lab_path("/root", "./a//b/").as_deref(), Some("/root/a/b"));
        assert_eq!(lab_path("/root", "../etc/passwd"), None);
        assert_eq!(lab_path("/root", "a/../../x"), None);
        assert_eq!(lab_path("/root", "/etc/passwd"), None);
        assert_eq!(lab_path("/root", "a\0b"), None);
    }

    #[test]
    fn exit_codes_round_trip() {
        for (code, kind) in CODES {
            assert_eq!(kind_of(*code), *kind);
            assert_eq!(code_of(*kind), *code);
        }
    }
}
