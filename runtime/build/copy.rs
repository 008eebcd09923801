//! `COPY` and `ADD`: files from the build context (or another image) written
//! into a fresh layer directory with Docker's rules for destinations:
//!
//! - a source directory's *contents* are copied, not the directory itself;
//! - a file goes *into* the destination when it ends with `/` or is an
//!   existing directory of the image, else it *becomes* the destination;
//! - several sources need a destination ending with `/`;
//! - new files and directories belong to 0:0 unless `--chown` says otherwise;
//! - `ADD` unpacks local tar archives (plain or gzip) into the destination.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

use super::context::has_magic;
use super::dockerignore::glob_match;
use super::failure::Failure;
use super::rootfs::{components, Found, RootView};

/// Ownership and mode to give copied files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attrs {
    /// `--chown` resolved to ids (0:0 when not given).
    pub owner: (u32, u32),
    /// `--chmod` bits, when given.
    pub mode: Option<u32>,
}

/// One copy request, sources already resolved.
pub struct CopyJob<'a> {
    /// `COPY` or `ADD`, for messages.
    pub keyword: &'a str,
    /// Where sources are read from.
    pub source: &'a RootView,
    /// The resolved sources.
    pub sources: Vec<Found>,
    /// The destination as an absolute path in the image (trailing `/` kept).
    pub dest: String,
    /// The image being built on, to see what already exists.
    pub image: &'a RootView,
    pub attrs: Attrs,
    /// `ADD`: unpack local archives.
    pub unpack_archives: bool,
}

/// Finds the sources a pattern names in `view` (globs expanded); `what`
/// describes where for the error (`build context` or a stage).
pub fn resolve_sources(
    view: &RootView,
    patterns: &[String],
    keyword: &str,
    from_context: bool,
) -> Result<Vec<Found>, Failure> {
    let mut out = Vec::new();
    for pattern in patterns {
        let clean = components(pattern).join("/");
        if has_magic(&clean) {
            let mut matched = Vec::new();
            glob_view(view, "", &components(&clean), &mut matched);
            matched.sort();
            for path in matched {
                if let Some(f) = view.lookup(&path, false) {
                    out.push(f);
                }
            }
            continue;
        }
        match view.lookup(&clean, from_context && clean.is_empty()) {
            Some(f) => out.push(f),
            None if from_context => {
                return Err(Failure::new(format!(
                    "{keyword} failed: file not found in build context or excluded by .dockerignore: stat {pattern}: file does not exist"
                )))
            }
            None => {
                return Err(Failure::new(format!(
                    "{keyword} failed: stat {pattern}: file does not exist"
                )))
            }
        }
    }
    if out.is_empty() {
        return Err(Failure::new(format!(
            "{keyword} failed: no source files were specified"
        )));
    }
    Ok(out)
}

/// Expands glob components level by level over the merged view.
fn glob_view(view: &RootView, dir: &str, rest: &[String], out: &mut Vec<String>) {
    let Some((first, more)) = rest.split_first() else {
        return;
    };
    let names = if has_magic(first) {
        view.list(dir)
            .into_iter()
            .filter(|n| glob_match(first, n))
            .collect()
    } else {
        vec![first.clone()]
    };
    for name in names {
        let path = if dir.is_empty() {
            name
        } else {
            format!("{dir}/{name}")
        };
        if more.is_empty() {
            if view.lookup(&path, false).is_some() {
                out.push(path);
            }
        } else if view.is_dir(&path) {
            glob_view(view, &path, more, out);
        }
    }
}

impl CopyJob<'_> {
    /// Writes the copy into `layer` (an empty directory that becomes the
    /// new layer).
    pub fn write(&self, layer: &Path) -> Result<(), Failure> {
        let into_dir = self.dest.ends_with('/');
        if self.sources.len() > 1 && !into_dir {
            return Err(Failure::new(format!(
                "When using {} with more than one source file, the destination must be a directory and end with a /",
                self.keyword
            )));
        }
        let fail = |e: io::Error| Failure::new(format!("{} failed: {e}", self.keyword));
        let dest = self.image.real_path(&self.dest);
        let dest_is_dir = into_dir || self.image.is_dir(&dest);
        for src in &self.sources {
            if src.meta.is_dir() {
                self.make_dir(layer, &dest).map_err(fail)?;
                self.copy_children(src, layer, &dest).map_err(fail)?;
            } else if self.unpack_archives && src.meta.is_file() && is_archive(&src.host) {
                self.make_dir(layer, &dest).map_err(fail)?;
                self.unpack(src, &layer.join(&dest)).map_err(fail)?;
            } else {
                let target = if dest_is_dir {
                    let name = src.path.rsplit('/').next().unwrap_or(&src.path);
                    join(&dest, name)
                } else {
                    dest.clone()
                };
                let parent = parent_of(&target);
                self.make_dir(layer, &parent).map_err(fail)?;
                self.copy_entry(src, layer, &target).map_err(fail)?;
            }
        }
        Ok(())
    }

    /// Makes directory `rel` (and its parents) in `layer`, for `WORKDIR`.
    pub fn make_dirs(&self, layer: &Path, rel: &str) -> Result<(), Failure> {
        self.make_dir(layer, rel)
            .map_err(|e| Failure::new(format!("{} failed: {e}", self.keyword)))
    }

    /// Makes `rel` and its parents in the layer: existing image directories
    /// keep their mode and owner; new ones are 0755 with the copy's owner.
    fn make_dir(&self, layer: &Path, rel: &str) -> io::Result<()> {
        let mut path = String::new();
        for part in components(rel) {
            path = join(&path, &part);
            let host = layer.join(&path);
            if fs::symlink_metadata(&host).is_ok() {
                continue;
            }
            fs::create_dir(&host)?;
            match self.image.lookup(&path, true).filter(|f| f.meta.is_dir()) {
                Some(existing) => {
                    fs::set_permissions(
                        &host,
                        fs::Permissions::from_mode(existing.meta.mode() & 0o7777),
                    )?;
                    std::os::unix::fs::lchown(
                        &host,
                        Some(existing.meta.uid()),
                        Some(existing.meta.gid()),
                    )?;
                    set_mtime(&host, existing.meta.mtime())?;
                }
                None => {
                    fs::set_permissions(&host, fs::Permissions::from_mode(0o755))?;
                    std::os::unix::fs::lchown(
                        &host,
                        Some(self.attrs.owner.0),
                        Some(self.attrs.owner.1),
                    )?;
                }
            }
        }
        Ok(())
    }

    fn copy_children(&self, dir: &Found, layer: &Path, dest: &str) -> io::Result<()> {
        for name in self.source.list(&dir.path) {
            let path = join(&dir.path, &name);
            let Some(child) = self.source.lookup(&path, false) else {
                continue;
            };
            self.copy_entry(&child, layer, &join(dest, &name))?;
        }
        Ok(())
    }

    /// Copies one entry (recursively for directories) to `target`.
    fn copy_entry(&self, src: &Found, layer: &Path, target: &str) -> io::Result<()> {
        let host = layer.join(target);
        let kind = src.meta.file_type();
        if kind.is_dir() {
            if !fs::symlink_metadata(&host).is_ok_and(|m| m.is_dir()) {
                let _ = fs::remove_file(&host);
                fs::create_dir(&host)?;
            }
            self.copy_children(src, layer, target)?;
        } else if kind.is_symlink() {
            let _ = fs::remove_file(&host);
            symlink(fs::read_link(&src.host)?, &host)?;
        } else if kind.is_file() {
            let _ = fs::remove_file(&host);
            fs::copy(&src.host, &host)?;
        } else {
            // Devices, fifos and sockets are not copied (Docker skips sockets;
            // a build context cannot carry devices).
            return Ok(());
        }
        std::os::unix::fs::lchown(&host, Some(self.attrs.owner.0), Some(self.attrs.owner.1))?;
        if !kind.is_symlink() {
            let mode = self.attrs.mode.unwrap_or(src.meta.mode() & 0o7777);
            fs::set_permissions(&host, fs::Permissions::from_mode(mode))?;
        }
        set_mtime(&host, src.meta.mtime())?;
        Ok(())
    }

    fn unpack(&self, src: &Found, dest: &Path) -> io::Result<()> {
        let reader = crate::image::layer::maybe_gunzip(fs::File::open(&src.host)?)?;
        let mut archive = tar::Archive::new(reader);
        archive.set_preserve_permissions(true);
        archive.set_preserve_mtime(true);
        archive.set_preserve_ownerships(true);
        archive.set_overwrite(true);
        for entry in archive.entries()? {
            let mut entry = entry?;
            entry.unpack_in(dest)?;
        }
        Ok(())
    }
}

/// Whether a file is a tar archive `ADD` unpacks (plain or gzip).
fn is_archive(path: &Path) -> bool {
    let Ok(file) = fs::File::open(path) else {
        return false;
    };
    let mut head = Vec::with_capacity(512);
    let mut reader: Box<dyn Read> = {
        let mut magic = [0u8; 2];
        let Ok(mut f) = fs::File::open(path) else {
            return false;
        };
        let gzip = f.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
        if gzip {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        }
    };
    if reader.by_ref().take(512).read_to_end(&mut head).is_err() {
        return false;
    }
    head.len() >= 262 && &head[257..262] == b"ustar"
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn parent_of(path: &str) -> String {
    match path.rsplit_once('/') {
        Some((parent, _)) => parent.to_string(),
        None => String::new(),
    }
}

fn set_mtime(path: &Path, secs: i64) -> io::Result<()> {
    let t = nix::sys::time::TimeVal::new(secs, 0);
    nix::sys::stat::lutimes(path, &t, &t).map_err(io::Error::from)
}

/// Resolves `--chown=user[:group]` against the image's /etc/passwd and
/// /etc/group. A user without a group means the same number for both.
pub fn resolve_chown(image: &RootView, spec: &str) -> Result<(u32, u32), Failure> {
    let (user, group) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let lookup = |file: &str, name: &str, field: usize| -> Option<u32> {
        let text = String::from_utf8(image.read(file)?).ok()?;
        text.lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name) && f.len() > field)
            .and_then(|f| f[field].parse().ok())
    };
    let uid = match user.parse::<u32>() {
        Ok(n) => n,
        Err(_) => lookup("etc/passwd", user, 2).ok_or_else(|| {
            Failure::new(format!(
                "unable to convert uid/gid chown string to host mapping: can't find uid for user {user}: no such user: {user}"
            ))
        })?,
    };
    let gid = match group {
        None => uid,
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => lookup("etc/group", g, 2).ok_or_else(|| {
                Failure::new(format!(
                    "unable to convert uid/gid chown string to host mapping: can't find gid for group {g}: no such group: {g}"
                ))
            })?,
        },
    };
    Ok((uid, gid))
}

/// Parses `--chmod` (octal).
pub fn parse_chmod(text: &str) -> Result<u32, Failure> {
    u32::from_str_radix(text, 8)
        .ok()
        .filter(|m| *m <= 0o7777)
        .ok_or_else(|| Failure::bad_request(format!("invalid chmod parameter: {text}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job<'a>(
        src: &'a RootView,
        image: &'a RootView,
        patterns: &[&str],
        dest: &str,
    ) -> CopyJob<'a> {
        let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        CopyJob {
            keyword: "COPY",
            source: src,
            sources: resolve_sources(src, &patterns, "COPY", true).unwrap(),
            dest: dest.to_string(),
            image,
            attrs: Attrs::default(),
            unpack_archives: false,
        }
    }

    #[test]
    fn docker_directory_semantics() {
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        fs::create_dir_all(ctx.join("site/css")).unwrap();
        fs::write(ctx.join("site/index.html"), "hi").unwrap();
        fs::write(ctx.join("site/css/a.css"), "a").unwrap();
        fs::write(ctx.join("one.txt"), "1").unwrap();
        fs::write(ctx.join("two.txt"), "2").unwrap();
        let img = tmp.path().join("img");
        fs::create_dir_all(img.join("srv")).unwrap();
        let src = RootView::new(vec![ctx]);
        let image = RootView::new(vec![img]);

        // A directory's contents land in the destination.
        let layer = tmp.path().join("l1");
        fs::create_dir(&layer).unwrap();
        job(&src, &image, &["site"], "/www").write(&layer).unwrap();
        assert!(layer.join("www/index.html").is_file());
        assert!(layer.join("www/css/a.css").is_file());
        assert!(!layer.join("www/site").exists());

        // A file into an existing directory, and a file renamed.
        let layer = tmp.path().join("l2");
        fs::create_dir(&layer).unwrap();
        job(&src, &image, &["one.txt"], "/srv")
            .write(&layer)
            .unwrap();
        job(&src, &image, &["two.txt"], "/etc/renamed")
            .write(&layer)
            .unwrap();
        assert!(layer.join("srv/one.txt").is_file());
        assert_eq!(fs::read_to_string(layer.join("etc/renamed")).unwrap(), "2");

        // Globs with several matches need a directory destination.
        let layer = tmp.path().join("l3");
        fs::create_dir(&layer).unwrap();
        let err = job(&src, &image, &["*.txt"], "/x")
            .write(&layer)
            .unwrap_err();
        assert!(err.message.contains("must be a directory and end with a /"));
        job(&src, &image, &["*.txt"], "/x/").write(&layer).unwrap();
        assert!(layer.join("x/one.txt").is_file() && layer.join("x/two.txt").is_file());
    }

    #[test]
    fn missing_sources_say_so_in_dockers_words() {
        let tmp = tempfile::tempdir().unwrap();
        let src = RootView::new(vec![tmp.path().to_path_buf()]);
        let err = resolve_sources(&src, &["nope".into()], "COPY", true).unwrap_err();
        assert_eq!(
            err.message,
            "COPY failed: file not found in build context or excluded by .dockerignore: stat nope: file does not exist"
        );
    }
}
