//! The build context: what the client sent as the body of `POST /build`,
//! unpacked into a private directory with `.dockerignore` applied.
//!
//! The body is a tar (the engine inflates a gzip one), or, for `docker build - < Dockerfile`
//! from clients that send stdin as is, the Dockerfile itself.
//!
//! The context is a learner's tree: it is unpacked in-root (a symlink from
//! an earlier entry leads at most elsewhere in the context), and everything
//! read from it afterwards (the Dockerfile, sources, their digests) is
//! resolved inside it from a directory handle, so a `Dockerfile ->
//! /proc/self/environ` names a file of the context, which is not there.

use std::fs;
use std::io::{self, Read, Seek};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::dockerignore::{clean, glob_match, parse_dockerignore, Ignore};
use super::failure::Failure;
use super::rootfs::{Found, RootView};
use crate::volume::intree::{extract_tar_where, Extract, Tree};

/// Name Docker gives a bare Dockerfile body inside its context.
const DEFAULT_DOCKERFILE: &str = "Dockerfile";
/// Directory levels walked below the context's root.
const MAX_DEPTH: usize = 256;

/// An unpacked build context; its directory is removed on drop.
#[derive(Debug)]
pub struct BuildContext {
    dir: PathBuf,
    tree: Tree,
    ignore: Ignore,
}

impl Drop for BuildContext {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn is_tar(bytes: &[u8]) -> bool {
    bytes.len() >= 262 && &bytes[257..262] == b"ustar"
}

fn io_failure(what: &str) -> impl FnOnce(io::Error) -> Failure + '_ {
    move |e| Failure::new(format!("{what}: {e}"))
}

/// The most of a Dockerfile read into memory (Docker's own limit is far
/// below what a context may hold).
const MAX_DOCKERFILE: u64 = 4 << 20;

impl BuildContext {
    /// Unpacks `body`, a plain tar or a bare Dockerfile (the engine has
    /// decompressed and measured it: see `engine::body`), into a new
    /// directory `dir` (which must not exist). Returns the context and the
    /// Dockerfile's text (`dockerfile` is its path in the context; empty
    /// means `Dockerfile`).
    pub fn unpack(
        mut body: impl Read + Seek,
        dir: &Path,
        dockerfile: &str,
    ) -> Result<(Self, String), Failure> {
        fs::create_dir_all(dir).map_err(io_failure("create build context"))?;
        let mut context = BuildContext {
            dir: dir.to_path_buf(),
            tree: Tree::open(dir).map_err(io_failure("open build context"))?,
            ignore: Ignore::default(),
        };
        let mut head = Vec::with_capacity(512);
        (&mut body)
            .take(512)
            .read_to_end(&mut head)
            .and_then(|_| body.rewind())
            .map_err(io_failure("read build context"))?;
        if !is_tar(&head) {
            // A bare Dockerfile: the context holds nothing else.
            let mut bytes = Vec::new();
            body.read_to_end(&mut bytes)
                .map_err(io_failure("read build context"))?;
            let text = String::from_utf8_lossy(&bytes).into_owned();
            return Ok((context, text));
        }
        // `.dockerignore` first, so ignored files are never written.
        context.ignore = read_member(&mut body, ".dockerignore")
            .map(|t| parse_dockerignore(&t))
            .unwrap_or_default();
        body.rewind().map_err(io_failure("read build context"))?;
        let asked = if dockerfile.is_empty() {
            DEFAULT_DOCKERFILE
        } else {
            dockerfile
        };
        let name = clean(asked.trim_start_matches('/'));
        if name == ".." || name.starts_with("../") {
            return Err(Failure::new(format!(
                "the Dockerfile ({asked}) must be within the build context"
            )));
        }
        let ignore = &context.ignore;
        extract_tar_where(
            &context.tree,
            Path::new("/"),
            &mut body,
            Extract::default(),
            &mut |path| {
                let rel = relative(path);
                // The Dockerfile and .dockerignore are always sent, as Docker does.
                !rel.is_empty()
                    && (rel == name || rel == ".dockerignore" || !ignore.is_excluded(&rel))
            },
        )
        .map_err(io_failure("unpack build context"))?;
        let (text, used) = match context.read_dockerfile(&name) {
            Some(t) => (t, name),
            None if name == DEFAULT_DOCKERFILE => (
                context.read_dockerfile("dockerfile").ok_or_else(|| {
                    Failure::new(format!("Cannot locate specified Dockerfile: {asked}"))
                })?,
                "dockerfile".to_string(),
            ),
            None => {
                return Err(Failure::new(format!(
                    "Cannot locate specified Dockerfile: {asked}"
                )))
            }
        };
        // Read, the two are gone from the context if `.dockerignore` excludes
        // them (dockerd's `removeDockerfile`): `COPY .` leaves them out.
        // docker-py relies on it for a Dockerfile from outside the context,
        // which it sends under a random name listed in `.dockerignore`.
        for sent in [".dockerignore", used.as_str()] {
            if context.ignore.is_excluded(sent) {
                let _ = context.tree.remove_nondir(Path::new(sent));
            }
        }
        Ok((context, text))
    }

    /// The Dockerfile `name`: a regular file of the context, symlinks on the
    /// way followed inside the context only.
    fn read_dockerfile(&self, name: &str) -> Option<String> {
        let file = self.tree.open_file_following(Path::new(name)).ok()?;
        // Read into memory: bounded, whatever the file is.
        let mut bytes = Vec::new();
        file.take(MAX_DOCKERFILE).read_to_end(&mut bytes).ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// The context's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Context paths (relative, cleaned) matching `pattern` (a path or a Go
    /// `filepath.Match` glob), in lexical order. `.` matches the whole context.
    pub fn matches(&self, pattern: &str) -> Vec<String> {
        let pattern = clean(pattern.trim_start_matches('/'));
        if pattern == "." {
            return vec![".".to_string()];
        }
        if !has_magic(&pattern) {
            let exists = matches!(self.tree.lstat(Path::new(&pattern)), Ok(Some(_)));
            return if exists { vec![pattern] } else { Vec::new() };
        }
        let mut out = Vec::new();
        walk(&self.tree, Path::new(""), 0, &mut |rel| {
            if glob_match(&pattern, rel) {
                out.push(rel.to_string());
            }
        });
        out.sort();
        out
    }
}

/// Whether a pattern has glob characters.
pub fn has_magic(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Calls `f` with every path below `rel` of `tree`, relative to its root.
fn walk(tree: &Tree, rel: &Path, depth: usize, f: &mut dyn FnMut(&str)) {
    if depth > MAX_DEPTH {
        return;
    }
    let Ok(names) = tree.list(if rel.as_os_str().is_empty() {
        Path::new("/")
    } else {
        rel
    }) else {
        return;
    };
    for name in names {
        let child = rel.join(name);
        f(&child.to_string_lossy());
        if matches!(tree.lstat(&child), Ok(Some(m)) if m.is_dir()) {
            walk(tree, &child, depth + 1, f);
        }
    }
}

/// A tar member path as a clean relative path (`./a/b` → `a/b`).
fn relative(path: &Path) -> String {
    let parts: Vec<String> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    parts.join("/")
}

/// The text of one member of a tar, if present.
fn read_member(body: impl Read, name: &str) -> Option<String> {
    let mut archive = tar::Archive::new(body);
    for entry in archive.entries().ok()? {
        let mut entry = entry.ok()?;
        if relative(&entry.path().ok()?) == name {
            let mut text = String::new();
            entry.read_to_string(&mut text).ok()?;
            return Some(text);
        }
    }
    None
}

/// A digest of files (content, mode, ownership, link targets) below `found`
/// of `view`, Docker's `file:`/`dir:` source description for history and
/// the cache.
pub fn content_digest(view: &RootView, found: &Found) -> io::Result<String> {
    let mut hasher = Sha256::new();
    hash_tree(view, found, "", &mut hasher, 0)?;
    Ok(hex::encode(hasher.finalize()))
}

fn hash_tree(
    view: &RootView,
    found: &Found,
    rel: &str,
    hasher: &mut Sha256,
    depth: usize,
) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    if depth > MAX_DEPTH {
        return Err(io::Error::other("directories nested too deeply"));
    }
    let meta = &found.meta;
    hasher.update(rel.as_bytes());
    hasher.update([0]);
    hasher.update(meta.mode().to_le_bytes());
    if meta.file_type().is_symlink() {
        hasher.update(view.readlink(found)?.as_os_str().as_encoded_bytes());
    } else if meta.is_file() {
        hasher.update(meta.len().to_le_bytes());
        io::copy(&mut view.open(found)?, hasher)?;
    } else if meta.is_dir() {
        for name in view.list(&found.path) {
            let path = if found.path.is_empty() {
                name.clone()
            } else {
                format!("{}/{name}", found.path)
            };
            let Some(child) = view.lookup(&path, false) else {
                continue;
            };
            let child_rel = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            hash_tree(view, &child, &child_rel, hasher, depth + 1)?;
        }
    }
    hasher.update([0xff]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, text) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, text.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn ignored_files_never_reach_the_context() {
        let tmp = tempfile::tempdir().unwrap();
        let body = tar_of(&[
            ("Dockerfile", "FROM scratch\n"),
            (".dockerignore", "*.log\nsecret/\n"),
            ("app.txt", "a"),
            ("debug.log", "x"),
            ("secret/key", "k"),
        ]);
        let (ctx, text) =
            BuildContext::unpack(io::Cursor::new(body), &tmp.path().join("c"), "").unwrap();
        assert_eq!(text, "FROM scratch\n");
        assert!(ctx.dir().join("app.txt").exists());
        assert!(!ctx.dir().join("debug.log").exists());
        assert!(!ctx.dir().join("secret/key").exists());
        assert_eq!(ctx.matches("*.txt"), vec!["app.txt"]);
        assert!(ctx.matches("debug.log").is_empty());
    }

    #[test]
    fn an_ignored_dockerfile_and_dockerignore_are_read_then_left_out() {
        let tmp = tempfile::tempdir().unwrap();
        let body = tar_of(&[
            (".dockerfile.1f", "FROM scratch\n"),
            (".dockerignore", ".dockerignore\n.dockerfile.1f\n"),
            ("file.txt", "a"),
        ]);
        let (ctx, text) = BuildContext::unpack(
            io::Cursor::new(body),
            &tmp.path().join("c"),
            ".dockerfile.1f",
        )
        .unwrap();
        assert_eq!(text, "FROM scratch\n");
        assert!(ctx.dir().join("file.txt").exists());
        assert!(!ctx.dir().join(".dockerfile.1f").exists());
        assert!(!ctx.dir().join(".dockerignore").exists());
        // Not listed: both stay, as in dockerd.
        let body = tar_of(&[
            ("Dockerfile", "FROM scratch\n"),
            (".dockerignore", "*.log\n"),
        ]);
        let (ctx, _) =
            BuildContext::unpack(io::Cursor::new(body), &tmp.path().join("d"), "").unwrap();
        assert!(ctx.dir().join("Dockerfile").exists());
        assert!(ctx.dir().join(".dockerignore").exists());
    }

    #[test]
    fn a_bare_dockerfile_body_is_the_dockerfile() {
        let tmp = tempfile::tempdir().unwrap();
        let (_, text) = BuildContext::unpack(
            io::Cursor::new(b"FROM busybox\nRUN true\n"),
            &tmp.path().join("c"),
            "",
        )
        .unwrap();
        assert_eq!(text, "FROM busybox\nRUN true\n");
    }

    #[test]
    fn missing_dockerfiles_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let body = tar_of(&[("build/Dockerfile.dev", "FROM busybox\n")]);
        let (_, text) = BuildContext::unpack(
            io::Cursor::new(&body),
            &tmp.path().join("c"),
            "build/Dockerfile.dev",
        )
        .unwrap();
        assert_eq!(text, "FROM busybox\n");
        let err =
            BuildContext::unpack(io::Cursor::new(&body), &tmp.path().join("d"), "").unwrap_err();
        assert_eq!(
            err.message,
            "Cannot locate specified Dockerfile: Dockerfile"
        );
    }

    fn tar_with_link(name: &str, target: &str, files: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, name, target).unwrap();
        for (name, text) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(text.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, text.as_bytes()).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn a_dockerfile_symlink_never_reads_outside_the_context() {
        let outside = tempfile::tempdir().unwrap();
        let secret = outside.path().join("secret");
        fs::write(&secret, "FROM s3cret\n").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        for target in [
            "/proc/self/environ",
            &secret.to_string_lossy(),
            "../../../../../../etc/passwd",
        ] {
            let body = tar_with_link("Dockerfile", target, &[]);
            let dir = tmp.path().join(format!("c{}", target.len()));
            let err = BuildContext::unpack(std::io::Cursor::new(&body), &dir, "").unwrap_err();
            assert_eq!(
                err.message,
                "Cannot locate specified Dockerfile: Dockerfile"
            );
        }
        // A link to a file of the context is followed, as Docker does.
        let body = tar_with_link(
            "Dockerfile",
            "real/Dockerfile",
            &[("real/Dockerfile", "FROM busybox\n")],
        );
        let (_, text) =
            BuildContext::unpack(std::io::Cursor::new(&body), &tmp.path().join("ok"), "").unwrap();
        assert_eq!(text, "FROM busybox\n");
    }

    #[test]
    fn a_dockerfile_outside_the_context_is_refused_in_dockers_words() {
        let tmp = tempfile::tempdir().unwrap();
        let body = tar_of(&[("Dockerfile", "FROM scratch\n")]);
        let err = BuildContext::unpack(
            std::io::Cursor::new(&body),
            &tmp.path().join("c"),
            "../../x",
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "the Dockerfile (../../x) must be within the build context"
        );
        let err = BuildContext::unpack(std::io::Cursor::new(&body), &tmp.path().join("d"), "nope")
            .unwrap_err();
        assert_eq!(err.message, "Cannot locate specified Dockerfile: nope");
    }

    #[test]
    fn context_symlinks_lead_nowhere_outside_it() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s3cret").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let body = tar_with_link(
            "link",
            &outside.path().to_string_lossy(),
            &[("Dockerfile", "FROM scratch\n")],
        );
        let (ctx, _) =
            BuildContext::unpack(std::io::Cursor::new(&body), &tmp.path().join("c"), "").unwrap();
        let view = RootView::new(vec![ctx.dir().to_path_buf()]);
        assert!(view.lookup("link/secret", true).is_none());
        assert!(ctx.matches("link/secret").is_empty());
        assert!(ctx.matches("link/*").is_empty());
    }
}
