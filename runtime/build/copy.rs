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
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::context::has_magic;
use super::dockerignore::glob_match;
use super::failure::Failure;
use super::rootfs::{components, Found, RootView};
use crate::volume::intree::{extract_tar, set_mtime, Extract, Tree};

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
    /// new layer). Every write is resolved inside the layer's root.
    pub fn write(&self, layer: &Path) -> Result<(), Failure> {
        let into_dir = self.dest.ends_with('/');
        if self.sources.len() > 1 && !into_dir {
            return Err(Failure::new(format!(
                "When using {} with more than one source file, the destination must be a directory and end with a /",
                self.keyword
            )));
        }
        let fail = |e: io::Error| Failure::new(format!("{} failed: {e}", self.keyword));
        let layer = Tree::open(layer).map_err(fail)?;
        // The destination's directories resolved in the image being built on
        // (a `RUN ln -s / /x` makes `/x/etc` the image's `/etc`).
        let dest = self.image.real_path(&self.dest);
        let dest_is_dir = into_dir || self.image.is_dir(&dest);
        for src in &self.sources {
            if src.meta.is_dir() {
                self.make_dir(&layer, &dest).map_err(fail)?;
                self.copy_children(src, &layer, &dest).map_err(fail)?;
            } else if self.unpack_archives && src.meta.is_file() && self.is_archive(src) {
                self.make_dir(&layer, &dest).map_err(fail)?;
                self.unpack(src, &layer, &dest).map_err(fail)?;
            } else {
                let target = if dest_is_dir {
                    let name = src.path.rsplit('/').next().unwrap_or(&src.path);
                    join(&dest, name)
                } else {
                    dest.clone()
                };
                let parent = parent_of(&target);
                self.make_dir(&layer, &parent).map_err(fail)?;
                self.copy_entry(src, &layer, &target).map_err(fail)?;
            }
        }
        Ok(())
    }

    /// Makes directory `rel` (and its parents) in `layer`, for `WORKDIR`.
    pub fn make_dirs(&self, layer: &Path, rel: &str) -> Result<(), Failure> {
        let fail = |e: io::Error| Failure::new(format!("{} failed: {e}", self.keyword));
        let layer = Tree::open(layer).map_err(fail)?;
        self.make_dir(&layer, rel).map_err(fail)
    }

    /// Makes `rel` and its parents in the layer: existing image directories
    /// keep their mode and owner; new ones are 0755 with the copy's owner.
    fn make_dir(&self, layer: &Tree, rel: &str) -> io::Result<()> {
        let mut path = String::new();
        for part in components(rel) {
            path = join(&path, &part);
            let at = Path::new(&path);
            if layer.lstat(at)?.is_some_and(|m| m.is_dir()) {
                continue;
            }
            layer.mkdir(at, 0o700)?;
            match self.image.lookup(&path, true).filter(|f| f.meta.is_dir()) {
                Some(existing) => {
                    layer.chown(at, existing.meta.uid(), existing.meta.gid())?;
                    layer.set_dir_attrs(at, existing.meta.mode(), Some(existing.meta.mtime()))?;
                }
                None => {
                    layer.chown(at, self.attrs.owner.0, self.attrs.owner.1)?;
                    layer.set_dir_attrs(at, 0o755, None)?;
                }
            }
        }
        Ok(())
    }

    fn copy_children(&self, dir: &Found, layer: &Tree, dest: &str) -> io::Result<()> {
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
    fn copy_entry(&self, src: &Found, layer: &Tree, target: &str) -> io::Result<()> {
        let at = Path::new(target);
        let kind = src.meta.file_type();
        let (uid, gid) = self.attrs.owner;
        let mode = self.attrs.mode.unwrap_or(src.meta.mode() & 0o7777);
        if kind.is_dir() {
            layer.mkdir(at, 0o700)?;
            self.copy_children(src, layer, target)?;
            layer.chown(at, uid, gid)?;
            layer.set_dir_attrs(at, mode, Some(src.meta.mtime()))?;
        } else if kind.is_symlink() {
            layer.symlink(at, &self.source.readlink(src)?)?;
            layer.chown(at, uid, gid)?;
        } else if kind.is_file() {
            let mut from = self.source.open(src)?;
            let mut to = layer.create_file(at, 0o600)?;
            io::copy(&mut from, &mut to)?;
            std::os::unix::fs::fchown(&to, Some(uid), Some(gid))?;
            to.set_permissions(fs::Permissions::from_mode(mode))?;
            set_mtime(&to, src.meta.mtime())?;
        }
        // Devices, fifos and sockets are not copied (Docker skips sockets;
        // a build context cannot carry devices).
        Ok(())
    }

    /// `ADD` of a local archive: unpacked inside the new layer's root at
    /// `dest`, ownership kept as in the archive.
    fn unpack(&self, src: &Found, layer: &Tree, dest: &str) -> io::Result<()> {
        let reader = crate::image::layer::maybe_gunzip(self.source.open(src)?)?;
        extract_tar(
            layer,
            &Path::new("/").join(dest),
            reader,
            Extract { owners: true },
        )
    }

    /// Whether a source is a tar archive `ADD` unpacks (plain or gzip).
    fn is_archive(&self, src: &Found) -> bool {
        let (Ok(file), Ok(mut probe)) = (self.source.open(src), self.source.open(src)) else {
            return false;
        };
        let mut magic = [0u8; 2];
        let gzip = probe.read_exact(&mut magic).is_ok() && magic == [0x1f, 0x8b];
        let mut reader: Box<dyn Read> = if gzip {
            Box::new(flate2::read::GzDecoder::new(file))
        } else {
            Box::new(file)
        };
        let mut head = Vec::with_capacity(512);
        if reader.by_ref().take(512).read_to_end(&mut head).is_err() {
            return false;
        }
        head.len() >= 262 && &head[257..262] == b"ustar"
    }
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
    use std::os::unix::fs::symlink;

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

    #[test]
    fn add_of_a_tar_with_a_symlink_then_a_file_stays_in_the_layer() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s3cret").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let ctx = tmp.path().join("ctx");
        fs::create_dir_all(&ctx).unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "x", "/").unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(4);
        h.set_mode(0o644);
        h.set_cksum();
        let through = format!("x{}/planted", outside.path().display());
        b.append_data(&mut h, &through, &b"evil"[..]).unwrap();
        fs::write(ctx.join("evil.tar"), b.into_inner().unwrap()).unwrap();
        let img = tmp.path().join("img");
        fs::create_dir_all(&img).unwrap();
        symlink("/", img.join("hostroot")).unwrap();
        let src = RootView::new(vec![ctx]);
        let image = RootView::new(vec![img]);
        let layer = tmp.path().join("layer");
        fs::create_dir(&layer).unwrap();
        let mut add = job(&src, &image, &["evil.tar"], "/hostroot/dest/");
        add.keyword = "ADD";
        add.unpack_archives = true;
        add.write(&layer).unwrap();
        let names: Vec<_> = fs::read_dir(outside.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "nothing planted outside");
        // The destination resolved in the image (`/hostroot` is its `/`),
        // the link from the tar in the layer's root.
        let inside = layer.join(outside.path().strip_prefix("/").unwrap());
        assert_eq!(fs::read_to_string(inside.join("planted")).unwrap(), "evil");
        assert!(fs::symlink_metadata(layer.join("dest/x"))
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
