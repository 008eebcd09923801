//! The build context: what the client sent as the body of `POST /build`,
//! unpacked into a private directory with `.dockerignore` applied.
//!
//! The body is a tar (the engine inflates a gzip one), or, for `docker build - < Dockerfile`
//! from clients that send stdin as is, the Dockerfile itself.

use std::fs;
use std::io::{self, Read, Seek};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::dockerignore::{clean, glob_match, parse_dockerignore, Ignore};
use super::failure::Failure;

/// Name Docker gives a bare Dockerfile body inside its context.
const DEFAULT_DOCKERFILE: &str = "Dockerfile";

/// An unpacked build context; its directory is removed on drop.
#[derive(Debug)]
pub struct BuildContext {
    dir: PathBuf,
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
        let name = if dockerfile.is_empty() {
            DEFAULT_DOCKERFILE
        } else {
            dockerfile
        };
        let name = clean(name.trim_start_matches('/'));
        let mut archive = tar::Archive::new(body);
        archive.set_preserve_permissions(true);
        archive.set_preserve_mtime(true);
        archive.set_overwrite(true);
        for entry in archive
            .entries()
            .map_err(io_failure("read build context"))?
        {
            let mut entry = entry.map_err(io_failure("read build context"))?;
            let path = entry
                .path()
                .map_err(io_failure("read build context"))?
                .into_owned();
            let rel = relative(&path);
            if rel.is_empty() {
                continue;
            }
            // The Dockerfile and .dockerignore are always sent, as Docker does.
            if rel != name && rel != ".dockerignore" && context.ignore.is_excluded(&rel) {
                continue;
            }
            entry
                .unpack_in(dir)
                .map_err(io_failure("unpack build context"))?;
        }
        let text = match fs::read(dir.join(&name)) {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(_) if name == DEFAULT_DOCKERFILE => fs::read(dir.join("dockerfile"))
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|_| Failure::new(format!("Cannot locate specified Dockerfile: {name}")))?,
            Err(_) => {
                return Err(Failure::new(format!(
                    "Cannot locate specified Dockerfile: {name}"
                )))
            }
        };
        Ok((context, text))
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
            let exists = fs::symlink_metadata(self.dir.join(&pattern)).is_ok();
            return if exists { vec![pattern] } else { Vec::new() };
        }
        let mut out = Vec::new();
        walk(&self.dir, Path::new(""), &mut |rel| {
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

/// Calls `f` with every path below `root/rel`, relative to `root`.
fn walk(root: &Path, rel: &Path, f: &mut dyn FnMut(&str)) {
    let Ok(entries) = fs::read_dir(root.join(rel)) else {
        return;
    };
    for e in entries.flatten() {
        let child = rel.join(e.file_name());
        f(&child.to_string_lossy());
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk(root, &child, f);
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

/// A digest of files (content, mode, ownership, link targets) below `path`,
/// Docker's `file:`/`dir:` source description for history and the cache.
pub fn content_digest(path: &Path) -> io::Result<String> {
    let mut hasher = Sha256::new();
    hash_tree(path, Path::new(""), &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}

fn hash_tree(root: &Path, rel: &Path, hasher: &mut Sha256) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let full = if rel.as_os_str().is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let meta = fs::symlink_metadata(&full)?;
    hasher.update(rel.as_os_str().as_encoded_bytes());
    hasher.update([0]);
    hasher.update(meta.mode().to_le_bytes());
    if meta.file_type().is_symlink() {
        hasher.update(fs::read_link(&full)?.as_os_str().as_encoded_bytes());
    } else if meta.is_file() {
        hasher.update(meta.len().to_le_bytes());
        let mut file = fs::File::open(&full)?;
        io::copy(&mut file, hasher)?;
    } else if meta.is_dir() {
        let mut names: Vec<_> = fs::read_dir(&full)?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
        names.sort();
        for name in names {
            hash_tree(root, &rel.join(name), hasher)?;
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
}
