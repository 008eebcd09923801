//! A container's mounts at create and at start: volumes made on first use
//! (named, anonymous, the image's `VOLUME`s), filled from the image once, and
//! bind sources resolved inside the scope's filesystem root without following
//! any link out of it.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Component, Path, PathBuf};

use super::{copy, io_err, VolumeError};
use crate::container::config::MountConfig;
use crate::container::{sys, ContainerConfig, ContainerRecord, Runtime};
use crate::image::Image;

/// The relative form of `source` (an absolute path of the scope) that
/// [`sys::open_in_root`] resolves below the root.
fn relative(source: &Path) -> PathBuf {
    let relative: PathBuf = source
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect();
    if relative.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        relative
    }
}

/// Opens `source` below `root` as the scope would see it: `..` and symlinks
/// stay inside `root`.
fn open_scoped(root: &OwnedFd, source: &Path) -> std::io::Result<OwnedFd> {
    sys::open_in_root(root, &relative(source))
}

/// A bind source resolved inside its scope's root: the object itself, held
/// open (`O_PATH`). It is mounted from this handle ([`detach`]), never
/// looked up again by path, so a learner who swaps a directory of the path
/// for a symlink after resolution changes nothing.
#[derive(Debug)]
pub struct Resolved {
    pub fd: OwnedFd,
}

impl Resolved {
    /// Where the object is on the host now (for messages and tests only:
    /// never mount or open this string).
    pub fn host_path(&self) -> std::io::Result<PathBuf> {
        fs::read_link(format!("/proc/self/fd/{}", self.fd.as_raw_fd()))
    }
}

/// Resolves `source` (an absolute path of the scope) inside `root`; `create`
/// makes missing directories (as `-v` does), each made relative to its
/// resolved parent's handle and owned by the given uid and gid (the scope's
/// root, so the container's root can write to them).
pub fn resolve_in_root(
    root: &Path,
    source: &Path,
    create: Option<u32>,
) -> Result<Resolved, VolumeError> {
    let root_fd: OwnedFd = File::open(root)
        .map_err(io_err(format!("open {}", root.display())))?
        .into();
    match open_scoped(&root_fd, source) {
        Ok(fd) => return Ok(Resolved { fd }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create.is_some() => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VolumeError::Invalid(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                source.display()
            )))
        }
        Err(e) => return Err(io_err(format!("resolve {}", source.display()))(e)),
    }
    let owner = create.unwrap_or(0);
    let mut so_far = PathBuf::from("/");
    for c in source.components() {
        let Component::Normal(name) = c else { continue };
        let next = so_far.join(name);
        match open_scoped(&root_fd, &next) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let parent = open_scoped(&root_fd, &so_far)
                    .map_err(io_err(format!("resolve {}", so_far.display())))?;
                make_dir_at(&parent, name, owner)
                    .map_err(io_err(format!("create {}", next.display())))?;
            }
            Err(e) => return Err(io_err(format!("resolve {}", next.display()))(e)),
        }
        so_far = next;
    }
    let fd = open_scoped(&root_fd, source).map_err(io_err("resolve bind source"))?;
    Ok(Resolved { fd })
}

/// Makes the directory `name` in the directory `parent` (an in-root handle)
/// and gives it to `owner`. Nothing here follows a path from the top: the
/// directory is made relative to `parent`, and the chown goes through a
/// handle opened without following a symlink, so a learner who renames
/// things meanwhile gets an error, not a directory made elsewhere.
fn make_dir_at(parent: &OwnedFd, name: &std::ffi::OsStr, owner: u32) -> std::io::Result<()> {
    use nix::fcntl::{openat, OFlag};
    use nix::sys::stat::{mkdirat, Mode};
    match mkdirat(
        Some(parent.as_raw_fd()),
        name,
        Mode::from_bits_truncate(0o755),
    ) {
        Ok(()) => {}
        // Made meanwhile (another start, or the learner): resolved next time.
        Err(nix::errno::Errno::EEXIST) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    let dir = openat(
        Some(parent.as_raw_fd()),
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let dir = sys::adopt_fd(dir)?;
    nix::unistd::fchown(
        dir.as_raw_fd(),
        Some(nix::unistd::Uid::from_raw(owner)),
        Some(nix::unistd::Gid::from_raw(owner)),
    )?;
    Ok(())
}

/// A bind source cloned into a detached mount, for the container's pid 1
/// to attach (see [`crate::container::protocol::BindSource`]).
#[derive(Debug)]
pub(crate) struct Detached {
    /// The index of the bind in the mounts [`Runtime::resolve_mounts`] returns.
    pub index: usize,
    pub mount: OwnedFd,
    pub dev: u64,
    pub ino: u64,
    pub dir: bool,
}

/// Clones the object `fd` names, with the mounts below it (Docker's
/// `rbind`), read-only throughout when asked.
fn detach(index: usize, fd: &OwnedFd, read_only: bool) -> Result<Detached, VolumeError> {
    let mount = sys::clone_tree(fd, true).map_err(io_err("clone bind source"))?;
    if read_only {
        sys::set_readonly(&mount).map_err(io_err("make bind source read-only"))?;
    }
    let st = nix::sys::stat::fstat(mount.as_raw_fd())
        .map_err(|e| io_err("stat bind source")(e.into()))?;
    Ok(Detached {
        index,
        mount,
        dev: st.st_dev,
        ino: st.st_ino,
        dir: st.st_mode & libc::S_IFMT == libc::S_IFDIR,
    })
}

/// Opens a volume's `_data` (a directory the engine made, whose path holds
/// no learner-controlled component) without following a link at its end.
/// Mounts the volume directory `data` at `target` inside `rootfs` (in the
/// caller's mount namespace), the target resolved in-root and made if
/// missing (owned by `owner`): for `docker cp` of a stopped container, whose
/// volumes are not mounted anywhere else.
pub(crate) fn mount_volume_in(
    rootfs: &Path,
    data: &Path,
    target: &str,
    read_only: bool,
    owner: u32,
) -> Result<(), VolumeError> {
    let data = open_volume_data(data)?;
    let mount = detach(0, &data, read_only)?;
    let at = resolve_in_root(rootfs, Path::new(target), Some(owner))?;
    sys::attach_mount_at(&mount.mount, &at.fd).map_err(io_err(format!("mount volume at {target}")))
}

fn open_volume_data(path: &Path) -> Result<OwnedFd, VolumeError> {
    use nix::fcntl::{open, OFlag};
    let fd = open(
        path,
        OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    )
    .map_err(|e| io_err(format!("open {}", path.display()))(e.into()))?;
    sys::adopt_fd(fd).map_err(io_err(format!("open {}", path.display())))
}

fn image_volumes(image: &Image) -> Vec<String> {
    image
        .config
        .config()
        .as_ref()
        .and_then(|c| c.volumes().clone())
        .unwrap_or_default()
}

impl Runtime {
    /// Where a scope's bind sources are resolved: a node's lab root (set by
    /// the session), else the scope's network settings' filesystem root
    /// (`/` for `berth daemon`).
    pub fn bind_root(&self, scope: &str) -> std::path::PathBuf {
        self.scope_settings(scope)
            .and_then(|s| s.bind_root)
            .unwrap_or_else(|| self.net.scope_settings(scope).fs_root)
    }

    fn scope_owner(&self, scope: &str) -> crate::Result<Option<u32>> {
        Ok(if self.options.user_namespaces {
            Some(self.id_range(scope)?.base)
        } else {
            None
        })
    }

    /// At create: makes the named volumes that do not exist yet and an
    /// anonymous volume for each `VOLUME` of the image (and `-v /path`) that
    /// no other mount covers.
    pub fn create_volumes(
        &self,
        scope: &str,
        config: &mut ContainerConfig,
        anonymous: &[String],
    ) -> crate::Result<()> {
        let image = self.images.resolve(scope, &config.image)?;
        let owner = self.scope_owner(scope)?;
        let mut wanted: Vec<String> = image_volumes(&image);
        wanted.extend(anonymous.iter().cloned());
        for target in wanted {
            let t = target.trim_end_matches('/').to_string();
            let t = if t.is_empty() { "/".to_string() } else { t };
            if config
                .mounts
                .iter()
                .any(|m| m.target().trim_end_matches('/') == t)
            {
                continue;
            }
            config.mounts.push(MountConfig::Volume {
                name: String::new(),
                target: t,
                read_only: false,
                no_copy: false,
            });
        }
        for m in config.mounts.iter_mut() {
            if let MountConfig::Volume { name, .. } = m {
                let v = self.volumes.create(
                    scope,
                    Some(name.as_str()).filter(|n| !n.is_empty()),
                    BTreeMap::new(),
                    owner,
                )?;
                *name = v.name;
            }
        }
        Ok(())
    }

    /// At start: the mounts as the spec binds them. Volumes become binds of
    /// their `_data` (filled from the image on first use); bind sources are
    /// resolved in the scope's filesystem root.
    ///
    /// Every bind and volume comes back with its source held as a detached
    /// mount (in [`Detached`], by index): the container mounts that, not the
    /// path in the returned configuration, which is kept for messages.
    pub(crate) fn resolve_mounts(
        &self,
        record: &ContainerRecord,
        image: &Image,
    ) -> crate::Result<(Vec<MountConfig>, Vec<Detached>)> {
        let root = self.bind_root(&record.scope);
        let owner = self.scope_owner(&record.scope)?;
        let mut out = Vec::new();
        let mut detached = Vec::new();
        for (index, m) in record.config.mounts.iter().enumerate() {
            out.push(match m {
                MountConfig::Volume {
                    name,
                    target,
                    read_only,
                    no_copy,
                } => {
                    let v = match self.volumes.get(&record.scope, name) {
                        Ok(v) => v,
                        Err(_) => self.volumes.create(
                            &record.scope,
                            Some(name.as_str()),
                            BTreeMap::new(),
                            owner,
                        )?,
                    };
                    let empty = fs::read_dir(&v.mountpoint)
                        .map(|mut d| d.next().is_none())
                        .unwrap_or(false);
                    if !v.populated && empty && !no_copy {
                        let scratch = self
                            .data
                            .tmp_dir()
                            .join(format!("copyup-{}", &record.id[..12]));
                        copy::copy_up(
                            &image.layer_dirs,
                            target,
                            &v.mountpoint,
                            owner.unwrap_or(0),
                            &scratch,
                        )?;
                    }
                    if !v.populated {
                        self.volumes.mark_populated(&v)?;
                    }
                    let data = open_volume_data(&v.mountpoint)?;
                    detached.push(detach(index, &data, *read_only)?);
                    MountConfig::Bind {
                        source: v.mountpoint.clone(),
                        target: target.clone(),
                        read_only: *read_only,
                    }
                }
                MountConfig::Bind {
                    source,
                    target,
                    read_only,
                } => {
                    let resolved = resolve_in_root(&root, source, Some(owner.unwrap_or(0)))?;
                    detached.push(detach(index, &resolved.fd, *read_only)?);
                    MountConfig::Bind {
                        source: source.clone(),
                        target: target.clone(),
                        read_only: *read_only,
                    }
                }
                MountConfig::TaskFile { file, target } => {
                    let fd = self.open_task_file(&record.id, file)?;
                    detached.push(detach(index, &fd, true)?);
                    MountConfig::Bind {
                        source: self.dir_of(&record.id).root.join("files").join(file),
                        target: target.clone(),
                        read_only: true,
                    }
                }
                other => other.clone(),
            });
        }
        Ok((out, detached))
    }

    /// Container IDs of `scope` whose mounts use the volume `name`.
    pub fn volume_users(&self, scope: &str, name: &str) -> Vec<String> {
        self.list(scope)
            .iter()
            .filter(|c| {
                c.snapshot()
                    .config
                    .mounts
                    .iter()
                    .any(|m| matches!(m, MountConfig::Volume { name: n, .. } if n == name))
            })
            .map(|c| c.id.clone())
            .collect()
    }

    /// Removes the anonymous volumes a removed container had (`rm -v`, `--rm`).
    pub fn remove_anonymous_volumes(&self, record: &ContainerRecord) {
        for m in &record.config.mounts {
            if let MountConfig::Volume { name, .. } = m {
                let anonymous = self
                    .volumes
                    .get(&record.scope, name)
                    .is_ok_and(|v| v.anonymous);
                if anonymous && self.volume_users(&record.scope, name).is_empty() {
                    let _ = self.volumes.remove(&record.scope, name, &[]);
                }
            }
        }
    }

    /// The volumes of all scopes.
    pub fn volumes(&self) -> &super::Volumes {
        &self.volumes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(r: Result<Resolved, VolumeError>) -> PathBuf {
        r.unwrap().host_path().unwrap()
    }

    #[test]
    fn bind_sources_stay_inside_the_scope_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lab");
        fs::create_dir_all(root.join("home/app")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("home/escape")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("home/up")).unwrap();
        let app = path(resolve_in_root(&root, Path::new("/home/app"), None));
        assert_eq!(app, root.join("home/app").canonicalize().unwrap());
        let escaped = path(resolve_in_root(&root, Path::new("/home/escape"), Some(0)));
        assert_eq!(
            escaped,
            root.canonicalize().unwrap().join("etc"),
            "an absolute link resolves in the lab's root"
        );
        let up = path(resolve_in_root(&root, Path::new("/home/up"), None));
        assert_eq!(up, root.canonicalize().unwrap(), "`..` stops at the root");
        let whole = path(resolve_in_root(&root, Path::new("/"), None));
        assert_eq!(whole, root.canonicalize().unwrap());
        let err = resolve_in_root(&root, Path::new("/nope"), None).unwrap_err();
        assert!(err
            .to_string()
            .contains("bind source path does not exist: /nope"));
        let made = path(resolve_in_root(&root, Path::new("/new/dir"), Some(0)));
        assert!(made.starts_with(root.canonicalize().unwrap()) && made.is_dir());
    }

    #[test]
    fn missing_directories_are_made_below_a_link_inside_the_root_not_through_it() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lab");
        let outside = tmp.path().join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        // `/a` points outside on the host; in the root it means `<root>/<outside>`.
        fs::create_dir_all(root.join(outside.strip_prefix("/").unwrap())).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("a")).unwrap();
        let made = path(resolve_in_root(&root, Path::new("/a/b/c"), Some(4242)));
        let inside = root.canonicalize().unwrap();
        assert!(made.starts_with(&inside), "{}", made.display());
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
        let meta = fs::metadata(&made).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (4242, 4242));
    }

    #[test]
    fn a_clone_is_of_the_object_resolved_even_after_a_swap() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lab");
        fs::create_dir_all(root.join("swap")).unwrap();
        let resolved = resolve_in_root(&root, Path::new("/swap"), None).unwrap();
        let want = fs::metadata(root.join("swap")).unwrap();
        // The learner swaps the directory for a link to `/` afterwards.
        fs::rename(root.join("swap"), root.join("old")).unwrap();
        std::os::unix::fs::symlink("/", root.join("swap")).unwrap();
        let d = detach(0, &resolved.fd, true).unwrap();
        assert_eq!((d.dev, d.ino), (want.dev(), want.ino()));
        assert!(d.dir);
    }
}
