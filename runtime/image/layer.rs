//! Layers: an OCI/Docker layer tar unpacked into a directory that overlayfs
//! can use as a lower layer (whiteouts become overlay whiteouts), and an
//! overlay upper directory turned back into a layer tar.

use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use xattr::FileExt;

use sha2::{Digest, Sha256};

pub use super::unpack::{unpack, UnpackError};
use super::unpack::{OPAQUE, OPAQUE_XATTR, WHITEOUT};

/// `reader`, decompressed when it starts with the gzip magic bytes.
pub fn maybe_gunzip<'a>(reader: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
    use io::BufRead;
    let mut buffered = io::BufReader::new(reader);
    let head = buffered.fill_buf()?;
    let gzip = head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b;
    Ok(if gzip {
        Box::new(flate2::read::GzDecoder::new(buffered))
    } else {
        Box::new(buffered)
    })
}

fn is_whiteout(meta: &fs::Metadata) -> bool {
    meta.file_type().is_char_device() && meta.rdev() == 0
}

/// Shifts a host id in the user-namespace range back to the container's id.
fn unshift(id: u32, base: u32) -> u32 {
    if base > 0 && id >= base && id < base.saturating_add(65536) {
        id - base
    } else if base > 0 {
        // Host files the container could not own (mapped to nobody inside).
        65534
    } else {
        id
    }
}

/// Writes `dir` (an overlay upper directory) as a layer tar: whiteouts become
/// `.wh.` entries, opaque directories a `.wh..wh..opq` entry, and host ids of
/// the range starting at `id_base` become container ids. Returns the layer's
/// diff ID (`sha256:` of the tar) and its size.
///
/// `dir` is a tree its container may be changing while this runs (`docker
/// commit --pause=false`, a build step's layer): it is walked by directory
/// fds, each entry opened relative to its parent with `O_NOFOLLOW` and
/// checked to be the inode that was listed, so a directory swapped for a
/// symlink is never followed out of the tree.
pub fn tar_from_dir(dir: &Path, out: impl Write, id_base: u32) -> io::Result<(String, u64)> {
    let hashing = HashingWriter::new(out);
    let mut builder = tar::Builder::new(hashing);
    builder.follow_symlinks(false);
    let root = rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    add_dir(&mut builder, &fs::File::from(root), Path::new(""), id_base)?;
    let hashing = builder.into_inner()?;
    Ok(hashing.finish())
}

/// Files the engine bind-mounts over in every container (/etc/hosts,
/// /etc/hostname, /etc/resolv.conf). Where the image lacks them their empty
/// mount points land in the writable layer; like Docker's init layer, they
/// are not the container's changes.
pub const ENGINE_MOUNT_POINTS: [&str; 3] = ["etc/hosts", "etc/hostname", "etc/resolv.conf"];

/// Whether `rel` (relative to a writable layer) is an empty mount point of
/// [`ENGINE_MOUNT_POINTS`].
pub fn is_engine_mount_point(rel: &Path, meta: &fs::Metadata) -> bool {
    meta.is_file() && meta.len() == 0 && ENGINE_MOUNT_POINTS.iter().any(|p| rel == Path::new(p))
}

fn header_for(meta: &fs::Metadata, id_base: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
    h.set_uid(unshift(meta.uid(), id_base) as u64);
    h.set_gid(unshift(meta.gid(), id_base) as u64);
    h
}

/// Opens `name` in `dir` with `flags | O_NOFOLLOW`, if it is still the inode
/// `meta` describes (the tree may change under a running container).
fn reopen(
    dir: &fs::File,
    name: &OsStr,
    flags: OFlags,
    meta: &fs::Metadata,
) -> io::Result<Option<fs::File>> {
    let fd = match rustix::fs::openat(
        dir,
        name,
        flags | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP | Errno::NXIO) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let file = fs::File::from(fd);
    let now = file.metadata()?;
    Ok((now.dev() == meta.dev() && now.ino() == meta.ino()).then_some(file))
}

/// Exactly `size` bytes of `reader`: a file that shrank while it was read
/// (a running container) is padded with zeros, one that grew is cut, so the
/// tar stays well-formed.
fn exactly(reader: impl Read, size: u64) -> impl Read {
    reader.take(size).chain(io::repeat(0)).take(size)
}

fn add_dir<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &fs::File,
    rel: &Path,
    id_base: u32,
) -> io::Result<()> {
    let mut names: Vec<OsString> = Vec::new();
    for entry in rustix::fs::Dir::read_from(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            names.push(OsStr::from_bytes(name).to_owned());
        }
    }
    names.sort();
    for name in names {
        let rel_path = rel.join(&name);
        // The entry itself (O_PATH, never followed), whatever it is.
        let node = match rustix::fs::openat(
            dir,
            &name,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fs::File::from(fd),
            Err(Errno::NOENT) => continue,
            Err(e) => return Err(e.into()),
        };
        let meta = node.metadata()?;
        if is_engine_mount_point(&rel_path, &meta) {
            continue;
        }
        if is_whiteout(&meta) {
            let mut wh = std::ffi::OsString::from(WHITEOUT);
            wh.push(&name);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(0);
            h.set_mode(0o644);
            h.set_mtime(meta.mtime().max(0) as u64);
            b.append_data(&mut h, rel.join(wh), io::empty())?;
            continue;
        }
        let mut h = header_for(&meta, id_base);
        if meta.is_dir() {
            let Some(sub) = reopen(dir, &name, OFlags::RDONLY | OFlags::DIRECTORY, &meta)? else {
                continue;
            };
            h.set_entry_type(tar::EntryType::Directory);
            h.set_size(0);
            b.append_data(&mut h, &rel_path, io::empty())?;
            if sub.get_xattr(OPAQUE_XATTR).ok().flatten().as_deref() == Some(b"y") {
                let mut o = tar::Header::new_gnu();
                o.set_entry_type(tar::EntryType::Regular);
                o.set_size(0);
                o.set_mode(0o644);
                b.append_data(&mut o, rel_path.join(OPAQUE), io::empty())?;
            }
            add_dir(b, &sub, &rel_path, id_base)?;
        } else if meta.file_type().is_symlink() {
            // readlinkat on the O_PATH fd of the link itself.
            let target = match rustix::fs::readlinkat(&node, "", Vec::new()) {
                Ok(t) => PathBuf::from(OsStr::from_bytes(t.as_bytes())),
                Err(Errno::NOENT) => continue,
                Err(e) => return Err(e.into()),
            };
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, &rel_path, target)?;
        } else if meta.is_file() {
            let Some(file) = reopen(dir, &name, OFlags::RDONLY, &meta)? else {
                continue;
            };
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            b.append_data(&mut h, &rel_path, exactly(file, meta.len()))?;
        } else {
            // Devices, fifos and sockets (a container cannot make devices).
            b.append_data(&mut h, &rel_path, io::empty())?;
        }
    }
    Ok(())
}

/// A writer that hashes and counts what passes through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }
    /// `("sha256:<hex>", bytes)`.
    pub fn finish(self) -> (String, u64) {
        (
            format!("sha256:{}", hex::encode(self.hasher.finalize())),
            self.size,
        )
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer_tar(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            match data {
                Some(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    h.set_mode(0o644);
                    b.append_data(&mut h, path, *d).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    b.append_data(&mut h, path, io::empty()).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_round_trip_between_tar_and_overlay_form() {
        let dir = tempfile::tempdir().unwrap();
        let tar = layer_tar(&[
            ("etc/", None),
            ("etc/hosts", Some(b"127.0.0.1 localhost\n")),
            ("etc/.wh.motd", Some(b"")),
            ("var/", None),
            ("var/.wh..wh..opq", Some(b"")),
        ]);
        unpack(&tar[..], dir.path()).unwrap();
        let motd = fs::symlink_metadata(dir.path().join("etc/motd")).unwrap();
        assert!(is_whiteout(&motd), "whiteout is a 0/0 character device");
        assert_eq!(
            xattr::get(dir.path().join("var"), OPAQUE_XATTR)
                .unwrap()
                .as_deref(),
            Some(&b"y"[..])
        );
        assert_eq!(
            fs::read_to_string(dir.path().join("etc/hosts")).unwrap(),
            "127.0.0.1 localhost\n"
        );
        let mut out = Vec::new();
        let (digest, size) = tar_from_dir(dir.path(), &mut out, 0).unwrap();
        assert_eq!(size, out.len() as u64);
        assert_eq!(
            digest,
            format!("sha256:{}", hex::encode(Sha256::digest(&out)))
        );
        let names: Vec<String> = tar::Archive::new(&out[..])
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"etc/.wh.motd".to_string()), "{names:?}");
        assert!(names.contains(&"var/.wh..wh..opq".to_string()), "{names:?}");
        assert!(names.contains(&"etc/hosts".to_string()), "{names:?}");
    }

    #[test]
    fn members_that_escape_the_layer_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        h.set_entry_type(tar::EntryType::Regular);
        // Written raw: the tar crate refuses to *build* such a path.
        let name = b"../escape";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let err = unpack(&tar[..], &dir.path().join("layer")).unwrap_err();
        assert!(err.to_string().contains("leaves the layer"), "{err}");
        assert!(!dir.path().join("escape").exists());
    }

    #[test]
    fn host_ids_of_the_range_become_container_ids() {
        assert_eq!(unshift(1 << 30, 1 << 30), 0);
        assert_eq!(unshift((1 << 30) + 33, 1 << 30), 33);
        assert_eq!(unshift(0, 1 << 30), 65534);
        assert_eq!(unshift(5, 0), 5);
    }

    /// Names and contents of a layer tar.
    fn members(tar: &[u8]) -> Vec<(String, String)> {
        tar::Archive::new(tar)
            .entries()
            .unwrap()
            .map(|e| {
                let mut e = e.unwrap();
                let name = e.path().unwrap().to_string_lossy().into_owned();
                let mut data = String::new();
                let _ = e.read_to_string(&mut data);
                (name, data)
            })
            .collect()
    }

    #[test]
    fn commit_records_symlinks_and_never_walks_through_them() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        fs::create_dir(&host).unwrap();
        fs::write(host.join("secret"), "canary").unwrap();
        let upper = dir.path().join("upper");
        fs::create_dir_all(upper.join("d")).unwrap();
        fs::write(upper.join("d/mine"), "mine").unwrap();
        std::os::unix::fs::symlink(&host, upper.join("s")).unwrap();
        let mut out = Vec::new();
        tar_from_dir(&upper, &mut out, 0).unwrap();
        let found = members(&out);
        assert!(found.iter().any(|(n, _)| n == "s"), "{found:?}");
        assert!(
            !found.iter().any(|(_, d)| d.contains("canary")),
            "{found:?}"
        );
    }

    /// `docker commit --pause=false` while the container swaps a directory
    /// of its writable layer for a symlink to a host directory, over and
    /// over (renameat2 exchange): the walk never reads the host directory.
    #[test]
    fn a_directory_swapped_for_a_symlink_during_commit_is_not_followed() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        fs::create_dir(&host).unwrap();
        fs::write(host.join("secret"), "canary").unwrap();
        let upper = dir.path().join("upper");
        fs::create_dir_all(upper.join("d")).unwrap();
        for i in 0..50 {
            fs::write(upper.join(format!("d/f{i}")), "mine").unwrap();
        }
        std::os::unix::fs::symlink(&host, upper.join("flip")).unwrap();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let swapper = {
            let (stop, upper) = (stop.clone(), upper.clone());
            std::thread::spawn(move || {
                let fd =
                    rustix::fs::open(&upper, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty())
                        .unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let _ = rustix::fs::renameat_with(
                        &fd,
                        "d",
                        &fd,
                        "flip",
                        rustix::fs::RenameFlags::EXCHANGE,
                    );
                }
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut runs = 0;
        while std::time::Instant::now() < deadline {
            let mut out = Vec::new();
            tar_from_dir(&upper, &mut out, 0).unwrap();
            let found = members(&out);
            assert!(
                !found
                    .iter()
                    .any(|(n, d)| d.contains("canary") || n.ends_with("secret")),
                "the walk followed a swapped symlink: {found:?}"
            );
            runs += 1;
        }
        stop.store(true, Ordering::Relaxed);
        swapper.join().unwrap();
        assert!(runs > 0);
        assert_eq!(fs::read_to_string(host.join("secret")).unwrap(), "canary");
    }
}
