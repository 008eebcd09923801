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

/// Opens `source` (an absolute path of the scope) below `root`, as the
/// scope would see it: `..` and symlinks stay inside `root`.
fn open_scoped(root: &OwnedFd, source: &Path) -> std::io::Result<OwnedFd> {
    let relative: PathBuf = source
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect();
    let relative = if relative.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        relative
    };
    sys::open_in_root(root, &relative)
}

fn fd_path(fd: &OwnedFd) -> std::io::Result<PathBuf> {
    fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// The host path of `source` seen from the scope root `root`; `create`
/// makes missing directories (as `-v` does).
pub fn resolve_in_root(root: &Path, source: &Path, create: bool) -> Result<PathBuf, VolumeError> {
    let root_fd: OwnedFd = File::open(root)
        .map_err(io_err(format!("open {}", root.display())))?
        .into();
    match open_scoped(&root_fd, source) {
        Ok(fd) => return fd_path(&fd).map_err(io_err("resolve bind source")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VolumeError::Invalid(format!(
                "invalid mount config for type \"bind\": bind source path does not exist: {}",
                source.display()
            )))
        }
        Err(e) => return Err(io_err(format!("resolve {}", source.display()))(e)),
    }
    // Make each missing directory under its resolved parent.
    let mut so_far = PathBuf::from("/");
    for c in source.components() {
        let Component::Normal(name) = c else { continue };
        let next = so_far.join(name);
        if let Err(e) = open_scoped(&root_fd, &next) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(io_err(format!("resolve {}", next.display()))(e));
            }
            let parent = open_scoped(&root_fd, &so_far)
                .and_then(|fd| fd_path(&fd))
                .map_err(io_err(format!("resolve {}", so_far.display())))?;
            match fs::create_dir(parent.join(name)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(format!("create {}", next.display()))(e)),
            }
        }
        so_far = next;
    }
    let fd = open_scoped(&root_fd, source).map_err(io_err("resolve bind source"))?;
    fd_path(&fd).map_err(io_err("resolve bind source"))
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
    pub(crate) fn resolve_mounts(
        &self,
        record: &ContainerRecord,
        image: &Image,
    ) -> crate::Result<Vec<MountConfig>> {
        let root = self.net.scope_settings(&record.scope).fs_root;
        let owner = self.scope_owner(&record.scope)?;
        let mut out = Vec::new();
        for m in &record.config.mounts {
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
                } => MountConfig::Bind {
                    source: resolve_in_root(&root, source, true)?,
                    target: target.clone(),
                    read_only: *read_only,
                },
                other => other.clone(),
            });
        }
        Ok(out)
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

    #[test]
    fn bind_sources_stay_inside_the_scope_root() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("lab");
        fs::create_dir_all(root.join("home/app")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("home/escape")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("home/up")).unwrap();
        let app = resolve_in_root(&root, Path::new("/home/app"), false).unwrap();
        assert_eq!(app, root.join("home/app").canonicalize().unwrap());
        let escaped = resolve_in_root(&root, Path::new("/home/escape"), true).unwrap();
        assert_eq!(
            escaped,
            root.canonicalize().unwrap().join("etc"),
            "an absolute link resolves in the lab's root"
        );
        let up = resolve_in_root(&root, Path::new("/home/up"), false).unwrap();
        assert_eq!(up, root.canonicalize().unwrap(), "`..` stops at the root");
        let whole = resolve_in_root(&root, Path::new("/"), false).unwrap();
        assert_eq!(whole, root.canonicalize().unwrap());
        let err = resolve_in_root(&root, Path::new("/nope"), false).unwrap_err();
        assert!(err
            .to_string()
            .contains("bind source path does not exist: /nope"));
        let made = resolve_in_root(&root, Path::new("/new/dir"), true).unwrap();
        assert!(made.starts_with(root.canonicalize().unwrap()) && made.is_dir());
    }
}
