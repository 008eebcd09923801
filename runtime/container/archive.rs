//! `docker cp`: a path of a container's filesystem as a tar stream, and a tar
//! stream extracted into it.
//!
//! The work happens in a `berth __archive` process that stands where the
//! container's own processes stand: in its user namespace (so ownership reads
//! and writes in the container's ids) and in its mount namespace (so volumes
//! and bind mounts are there, and an absolute symlink cannot lead to the
//! host's files). A stopped container has no namespaces to join; the process
//! then mounts the container's overlay privately, chroots into it and joins a
//! user namespace with the container's id mapping.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use nix::sched::{setns, unshare, CloneFlags};
use serde::{Deserialize, Serialize};

use super::init::become_root;
use super::launch::{mount_rootfs, ContainerDir};
use super::manager::{Container, Runtime};
use super::spec::IdRange;
use super::{sys, ContainerError};
use crate::Result;

/// What `HEAD /containers/{id}/archive` reports of a path
/// (`X-Docker-Container-Path-Stat`, Go's `os.FileMode` bits in `mode`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

/// Go's `os.FileMode` type bits.
const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHAR: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

impl PathStat {
    /// Whether the path is a directory.
    pub fn is_dir(&self) -> bool {
        self.mode & GO_DIR != 0
    }

    fn of(name: &str, meta: &fs::Metadata, link_target: String) -> Self {
        use std::os::unix::fs::FileTypeExt;
        let ft = meta.file_type();
        let unix = meta.mode();
        let mut mode = unix & 0o777;
        if ft.is_dir() {
            mode |= GO_DIR;
        } else if ft.is_symlink() {
            mode |= GO_SYMLINK;
        } else if ft.is_block_device() {
            mode |= GO_DEVICE;
        } else if ft.is_char_device() {
            mode |= GO_DEVICE | GO_CHAR;
        } else if ft.is_fifo() {
            mode |= GO_PIPE;
        } else if ft.is_socket() {
            mode |= GO_SOCKET;
        }
        if unix & 0o4000 != 0 {
            mode |= GO_SETUID;
        }
        if unix & 0o2000 != 0 {
            mode |= GO_SETGID;
        }
        if unix & 0o1000 != 0 {
            mode |= GO_STICKY;
        }
        let mtime = chrono_like(meta.mtime(), meta.mtime_nsec());
        Self {
            name: name.to_string(),
            size: meta.len() as i64,
            mode,
            mtime,
            link_target,
        }
    }
}

/// RFC 3339 with nanoseconds, UTC, from a Unix time.
fn chrono_like(secs: i64, nanos: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(secs.max(0) as u64, nanos as u32);
    humantime::format_rfc3339_nanos(t).to_string()
}

/// One operation of a `berth __archive` process.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) enum Operation {
    Stat,
    Get,
    Put {
        copy_uid_gid: bool,
    },
    /// The editor's operations ([`super::files`]).
    Files(super::files::FileOp),
}

/// Sent to `berth __archive` as its argument.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ArchiveJob {
    operation: Operation,
    /// The path inside the container.
    path: String,
    /// Where the container stands: a running process, or its files.
    place: Place,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
enum Place {
    Running {
        pid: i32,
    },
    Stopped {
        dir: PathBuf,
        layers: Vec<PathBuf>,
        ids: Option<IdRange>,
        /// The container's volumes, mounted where it would see them.
        #[serde(default)]
        volumes: Vec<VolumeAt>,
    },
}

/// A volume's directory (Berth's own, on the host) and where it goes.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct VolumeAt {
    data: PathBuf,
    target: String,
    read_only: bool,
}

/// Exit codes of `berth __archive`.
const NOT_FOUND: i32 = 2;
const NOT_A_DIRECTORY: i32 = 3;
const FAILED: i32 = 4;

impl Runtime {
    /// Where `container` stands for an archive operation.
    fn place(&self, container: &Arc<Container>) -> Result<Place> {
        let record = container.snapshot();
        if record.state.running() && record.state.pid > 0 {
            return Ok(Place::Running {
                pid: record.state.pid,
            });
        }
        let image = self.images.resolve(&record.scope, &record.image_id)?;
        let ids = if self.options.user_namespaces {
            Some(self.id_range(&record.scope)?)
        } else {
            None
        };
        let volumes = record
            .config
            .mounts
            .iter()
            .filter_map(|m| match m {
                super::config::MountConfig::Volume {
                    name,
                    target,
                    read_only,
                    ..
                } => self
                    .volumes()
                    .get(&record.scope, name)
                    .ok()
                    .map(|v| VolumeAt {
                        data: v.mountpoint.clone(),
                        target: target.clone(),
                        read_only: *read_only,
                    }),
                _ => None,
            })
            .collect();
        Ok(Place::Stopped {
            dir: self.dir_of(&record.id).root,
            layers: image.layer_dirs.clone(),
            ids,
            volumes,
        })
    }

    pub(super) fn archive_process(
        &self,
        container: &Arc<Container>,
        operation: Operation,
        path: &str,
        stdin: Stdio,
    ) -> Result<Child> {
        let job = ArchiveJob {
            operation,
            path: path.to_string(),
            place: self.place(container)?,
        };
        let job = serde_json::to_string(&job).map_err(|e| ContainerError::Io {
            context: "archive job".into(),
            source: io::Error::other(e),
        })?;
        Command::new(&self.options.init_binary)
            .arg("__archive")
            .arg(job)
            .env_clear()
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| {
                ContainerError::Io {
                    context: "start archive process".into(),
                    source,
                }
                .into()
            })
    }

    /// Stat of `path` inside `container`.
    pub fn archive_stat(&self, container: &Arc<Container>, path: &str) -> Result<PathStat> {
        let _op = self.hold_if_stopped(container);
        let child = self.archive_process(container, Operation::Stat, path, Stdio::null())?;
        let out = child
            .wait_with_output()
            .map_err(|source| ContainerError::Io {
                context: "archive process".into(),
                source,
            })?;
        check(container, path, out.status.code(), &out.stderr)?;
        serde_json::from_slice(&out.stdout).map_err(|e| {
            ContainerError::Io {
                context: "archive stat".into(),
                source: io::Error::other(e),
            }
            .into()
        })
    }

    /// `path` inside `container` as a tar stream written to `out` (callers
    /// ask [`Runtime::archive_stat`] first: it says whether the path exists).
    pub fn archive_get(
        &self,
        container: &Arc<Container>,
        path: &str,
        mut out: impl Write,
    ) -> Result<()> {
        let _op = self.hold_if_stopped(container);
        let mut child = self.archive_process(container, Operation::Get, path, Stdio::null())?;
        let mut stdout = child.stdout.take().expect("piped stdout");
        let copied = io::copy(&mut stdout, &mut out);
        drop(stdout);
        let mut stderr = Vec::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_end(&mut stderr);
        }
        let status = child.wait().map_err(|source| ContainerError::Io {
            context: "archive process".into(),
            source,
        })?;
        check(container, path, status.code(), &stderr)?;
        copied.map_err(|source| ContainerError::Io {
            context: "send archive".into(),
            source,
        })?;
        Ok(())
    }

    /// Extracts the tar `input` into the directory `path` inside `container`.
    pub fn archive_put(
        &self,
        container: &Arc<Container>,
        path: &str,
        copy_uid_gid: bool,
        mut input: impl std::io::Read,
    ) -> Result<()> {
        if container.snapshot().config.host_config["ReadonlyRootfs"] == serde_json::json!(true) {
            return Err(
                ContainerError::Conflict("container rootfs is marked read-only".into()).into(),
            );
        }
        let _op = self.hold_if_stopped(container);
        let mut child = self.archive_process(
            container,
            Operation::Put { copy_uid_gid },
            path,
            Stdio::piped(),
        )?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let written = std::io::copy(&mut input, &mut stdin);
        drop(stdin);
        let out = child
            .wait_with_output()
            .map_err(|source| ContainerError::Io {
                context: "archive process".into(),
                source,
            })?;
        check(container, path, out.status.code(), &out.stderr)?;
        written.map_err(|source| ContainerError::Io {
            context: "write archive".into(),
            source,
        })?;
        Ok(())
    }

    /// A stopped container's files are mounted by the archive process; no
    /// start may mount them at the same time.
    pub(super) fn hold_if_stopped<'a>(
        &self,
        container: &'a Arc<Container>,
    ) -> Option<std::sync::MutexGuard<'a, ()>> {
        if container.snapshot().state.running() {
            None
        } else {
            Some(container.op.lock().unwrap_or_else(|p| p.into_inner()))
        }
    }
}

/// Turns the archive process's exit into Docker's errors.
fn check(container: &Arc<Container>, path: &str, code: Option<i32>, stderr: &[u8]) -> Result<()> {
    let message = String::from_utf8_lossy(stderr).trim().to_string();
    match code {
        Some(0) => Ok(()),
        Some(NOT_FOUND) => Err(ContainerError::PathNotFound(format!(
            "Could not find the file {path} in container {}",
            container.snapshot().name
        ))
        .into()),
        Some(NOT_A_DIRECTORY) => Err(ContainerError::InvalidConfig(format!(
            "extraction point is not a directory: {path}"
        ))
        .into()),
        _ => Err(ContainerError::Io {
            context: format!("copy {path}"),
            source: io::Error::other(if message.is_empty() {
                "archive process failed".to_string()
            } else {
                message
            }),
        }
        .into()),
    }
}

/// Entry point of `berth __archive JOB`. Never returns.
pub fn main(job: &str) -> ! {
    let code = match serde_json::from_str::<ArchiveJob>(job) {
        Ok(job) => match run(&job) {
            Ok(()) => 0,
            Err((code, message)) => {
                eprintln!("{message}");
                code
            }
        },
        Err(e) => {
            eprintln!("berth __archive is started by the engine, not by hand ({e})");
            FAILED
        }
    };
    let _ = io::stdout().flush();
    std::process::exit(code)
}

type Failed = (i32, String);

fn failed(context: &str) -> impl Fn(String) -> Failed + '_ {
    move |e| (FAILED, format!("{context}: {e}"))
}

fn run(job: &ArchiveJob) -> std::result::Result<(), Failed> {
    enter(&job.place)?;
    let path = container_path(&job.path);
    match &job.operation {
        Operation::Stat => {
            let stat = stat(&path)?;
            let text = serde_json::to_vec(&stat).map_err(|e| failed("stat")(e.to_string()))?;
            io::stdout()
                .write_all(&text)
                .map_err(|e| failed("stat")(e.to_string()))
        }
        Operation::Get => get(&job.path, &path),
        Operation::Put { copy_uid_gid } => put(&path, *copy_uid_gid),
        Operation::Files(op) => super::files::run(op, &path),
    }
}

/// The absolute, lexically cleaned path inside the container (`..` cannot
/// climb above `/`, which the chroot enforces anyway).
pub(super) fn container_path(path: &str) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in Path::new(path).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// Joins the container's namespaces (running) or mounts its files and joins
/// a user namespace with its mapping (stopped).
fn enter(place: &Place) -> std::result::Result<(), Failed> {
    match place {
        Place::Running { pid } => {
            let user = File::open(format!("/proc/{pid}/ns/user"));
            let mnt = File::open(format!("/proc/{pid}/ns/mnt"))
                .map_err(|e| failed("container mount namespace")(e.to_string()))?;
            if let Ok(user) = user {
                let ours = fs::metadata("/proc/self/ns/user").map(|m| m.ino()).ok();
                let theirs = user.metadata().map(|m| m.ino()).ok();
                if ours != theirs {
                    setns(&user, CloneFlags::CLONE_NEWUSER)
                        .map_err(|e| failed("join user namespace")(e.to_string()))?;
                    become_root().map_err(failed("user"))?;
                }
            }
            // A pid reused by a host process after the container exited
            // would share our mount namespace: never work in the host's.
            let ours = fs::metadata("/proc/self/ns/mnt").map(|m| m.ino()).ok();
            if ours.is_some() && mnt.metadata().map(|m| m.ino()).ok() == ours {
                return Err(failed("join mount namespace")(
                    "the container's process is gone".into(),
                ));
            }
            setns(&mnt, CloneFlags::CLONE_NEWNS)
                .map_err(|e| failed("join mount namespace")(e.to_string()))?;
            std::env::set_current_dir("/").map_err(|e| failed("chdir")(e.to_string()))
        }
        Place::Stopped {
            dir,
            layers,
            ids,
            volumes,
        } => {
            unshare(CloneFlags::CLONE_NEWNS).map_err(|e| failed("unshare")(e.to_string()))?;
            nix::mount::mount(
                None::<&str>,
                "/",
                None::<&str>,
                nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
                None::<&str>,
            )
            .map_err(|e| failed("private mounts")(e.to_string()))?;
            let userns = match ids {
                Some(ids) => Some(user_namespace(*ids)?),
                None => None,
            };
            let dir = ContainerDir::new(dir.clone());
            mount_rootfs(&dir, layers, userns.as_ref())
                .map_err(|e| failed("mount container files")(e.to_string()))?;
            // Its volumes, as a start mounts them (Docker's cp sees them too).
            let owner = ids.as_ref().map(|i| i.base).unwrap_or(0);
            for v in volumes {
                crate::volume::mounts::mount_volume_in(
                    &dir.rootfs(),
                    &v.data,
                    &v.target,
                    v.read_only,
                    owner,
                )
                .map_err(|e| failed("mount volume")(e.to_string()))?;
            }
            nix::unistd::chroot(&dir.rootfs()).map_err(|e| failed("chroot")(e.to_string()))?;
            std::env::set_current_dir("/").map_err(|e| failed("chdir")(e.to_string()))?;
            if let Some(ns) = userns {
                setns(&ns, CloneFlags::CLONE_NEWUSER)
                    .map_err(|e| failed("join user namespace")(e.to_string()))?;
                become_root().map_err(failed("user"))?;
            }
            Ok(())
        }
    }
}

/// A user namespace mapping 0.. onto `ids`: made by a short-lived child that
/// unshares it and waits while this process writes its maps.
fn user_namespace(ids: IdRange) -> std::result::Result<std::os::fd::OwnedFd, Failed> {
    let (ready_r, ready_w) = nix::unistd::pipe().map_err(|e| failed("pipe")(e.to_string()))?;
    let (done_r, done_w) = nix::unistd::pipe().map_err(|e| failed("pipe")(e.to_string()))?;
    match sys::fork_single_threaded().map_err(|e| failed("fork")(e.to_string()))? {
        sys::Forked::Child => {
            drop(ready_r);
            drop(done_w);
            let ok = unshare(CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = File::from(ready_w).write_all(if ok { b"y" } else { b"n" });
            let mut byte = [0u8; 1];
            let _ = File::from(done_r).read(&mut byte);
            std::process::exit(0)
        }
        sys::Forked::Parent { child } => {
            drop(ready_w);
            drop(done_r);
            let mut byte = [0u8; 1];
            let _ = File::from(ready_r).read(&mut byte);
            let result = (|| {
                if &byte != b"y" {
                    return Err(failed("user namespace")("unshare failed".into()));
                }
                let map = format!("0 {} {}\n", ids.base, ids.size);
                for file in ["uid_map", "gid_map"] {
                    fs::write(format!("/proc/{child}/{file}"), &map)
                        .map_err(|e| failed(file)(e.to_string()))?;
                }
                File::open(format!("/proc/{child}/ns/user"))
                    .map(std::os::fd::OwnedFd::from)
                    .map_err(|e| failed("user namespace")(e.to_string()))
            })();
            drop(done_w);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(child), None);
            result
        }
    }
}

fn not_found(path: &Path) -> Failed {
    (
        NOT_FOUND,
        format!("{}: no such file or directory", path.display()),
    )
}

fn stat(path: &Path) -> std::result::Result<PathStat, Failed> {
    let meta = fs::symlink_metadata(path).map_err(|_| not_found(path))?;
    let link_target = if meta.file_type().is_symlink() {
        // Docker reports where the link leads, as a path in the container.
        let target = fs::read_link(path).unwrap_or_default();
        let joined = path.parent().unwrap_or(Path::new("/")).join(target);
        container_path(&joined.to_string_lossy())
            .to_string_lossy()
            .into_owned()
    } else {
        String::new()
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "/".into());
    Ok(PathStat::of(&name, &meta, link_target))
}

/// Writes `path` as a tar to stdout, its entries named after the last
/// component the client asked for (`.` for `dir/.`: the contents alone).
fn get(asked: &str, path: &Path) -> std::result::Result<(), Failed> {
    let meta = fs::symlink_metadata(path).map_err(|_| not_found(path))?;
    let name = if asked.ends_with("/.") || asked == "." {
        ".".to_string()
    } else {
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| ".".into())
    };
    let stdout = io::stdout().lock();
    let mut tar = tar::Builder::new(io::BufWriter::with_capacity(1 << 16, stdout));
    tar.follow_symlinks(false);
    tar.mode(tar::HeaderMode::Complete);
    let write = |e: io::Error| failed("write archive")(e.to_string());
    if meta.is_dir() {
        tar.append_dir_all(&name, path).map_err(write)?;
    } else {
        tar.append_path_with_name(path, &name).map_err(write)?;
    }
    tar.into_inner().map_err(write)?.flush().map_err(write)
}

/// Refuses what `docker cp` must not make even inside the container: a
/// device node (host root could make one that reads the host's disks when
/// the container has no user namespace) and a name whose `..` climb above
/// the extraction point (the tar crate would skip it silently).
pub(super) fn refuse_unsafe_entry<R: Read>(
    entry: &tar::Entry<'_, R>,
    dest: &Path,
) -> std::result::Result<(), Failed> {
    let name = entry
        .path()
        .map_err(|e| failed("read archive")(e.to_string()))?
        .into_owned();
    let kind = entry.header().entry_type();
    if matches!(kind, tar::EntryType::Char | tar::EntryType::Block) {
        return Err(failed("extract")(format!(
            "refusing to create device node {}",
            name.display()
        )));
    }
    let mut depth: usize = 0;
    for c in name.components() {
        match c {
            Component::Normal(_) => depth += 1,
            Component::ParentDir if depth == 0 => {
                return Err(failed("extract")(format!(
                    "{:?} is outside of {:?}",
                    name.display().to_string(),
                    dest.display().to_string()
                )))
            }
            Component::ParentDir => depth -= 1,
            _ => {}
        }
    }
    Ok(())
}

/// Extracts the tar on stdin into the directory `path`.
fn put(path: &Path, copy_uid_gid: bool) -> std::result::Result<(), Failed> {
    let meta = fs::metadata(path).map_err(|_| not_found(path))?;
    if !meta.is_dir() {
        return Err((
            NOT_A_DIRECTORY,
            format!("{} is not a directory", path.display()),
        ));
    }
    let mut archive = tar::Archive::new(io::stdin().lock());
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_preserve_ownerships(copy_uid_gid);
    archive.set_overwrite(true);
    archive.set_unpack_xattrs(false);
    let entries = archive
        .entries()
        .map_err(|e| failed("read archive")(e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| failed("read archive")(e.to_string()))?;
        refuse_unsafe_entry(&entry, path)?;
        entry
            .unpack_in(path)
            .map_err(|e| failed("extract")(e.to_string()))?;
    }
    Ok(())
}
