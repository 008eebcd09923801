//! The members of an image archive (`docker load`), read once in archive
//! order and kept so the loader can take them in manifest order: small ones
//! (JSON) in memory up to a fixed total, the rest (layers) in one unlinked
//! file on the store's filesystem. A load of any size holds a bounded
//! amount of memory.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::ImageError;

/// Members up to this size stay in memory (configs, manifests)…
const SMALL: u64 = 256 << 10;
/// …while all of those held in memory stay under this total.
const IN_MEMORY: u64 = 16 << 20;
/// The largest member read back into memory as JSON.
const MAX_JSON: u64 = 16 << 20;
/// The most members an archive may have (each costs an entry here).
const MAX_MEMBERS: usize = 100_000;

fn invalid(msg: impl Into<String>) -> ImageError {
    ImageError::Invalid(msg.into())
}

enum Place {
    Memory(Vec<u8>),
    /// Offset and length in the spool file.
    Spooled(u64, u64),
}

/// Every member of a tar, by cleaned path.
pub(crate) struct Members {
    places: HashMap<String, Place>,
    spool: File,
}

/// One member: its bytes or a reader of them.
pub(crate) struct Member<'a> {
    members: &'a Members,
    place: &'a Place,
}

impl Members {
    /// Reads every member of the tar `reader` (directories skipped); large
    /// ones go to an unlinked file created at `spool_path`.
    pub(crate) fn read(reader: impl Read, spool_path: &Path) -> Result<Self, ImageError> {
        let spool = unlinked(spool_path).map_err(ImageError::io("create load spool"))?;
        let mut out = BufWriter::with_capacity(1 << 20, &spool);
        let mut places = HashMap::new();
        let mut end: u64 = 0;
        let mut in_memory: u64 = 0;
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries().map_err(ImageError::io("read archive"))? {
            let mut entry = entry.map_err(ImageError::io("read archive"))?;
            if entry.header().entry_type().is_dir() {
                continue;
            }
            if places.len() >= MAX_MEMBERS {
                return Err(invalid(format!(
                    "archive has more than {MAX_MEMBERS} files"
                )));
            }
            let path = entry
                .path()
                .map_err(ImageError::io("read archive"))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            let size = entry.size();
            let place = if size <= SMALL && in_memory + size <= IN_MEMORY {
                let mut data = Vec::with_capacity(size as usize);
                entry
                    .read_to_end(&mut data)
                    .map_err(ImageError::io("read archive"))?;
                in_memory += data.len() as u64;
                Place::Memory(data)
            } else {
                let copied =
                    io::copy(&mut entry, &mut out).map_err(ImageError::io("read archive"))?;
                let place = Place::Spooled(end, copied);
                end += copied;
                place
            };
            if let Some(Place::Memory(old)) = places.insert(path, place) {
                in_memory -= old.len() as u64;
            }
        }
        out.flush().map_err(ImageError::io("write load spool"))?;
        drop(out);
        Ok(Self { places, spool })
    }

    pub(crate) fn get(&self, path: &str) -> Option<Member<'_>> {
        self.places.get(path).map(|place| Member {
            members: self,
            place,
        })
    }
}

impl Member<'_> {
    /// The member's bytes, for JSON (bounded).
    pub(crate) fn bytes(&self) -> Result<Vec<u8>, ImageError> {
        match self.place {
            Place::Memory(b) => Ok(b.clone()),
            Place::Spooled(_, len) if *len > MAX_JSON => Err(invalid(format!(
                "archive member of {len} bytes is too large for JSON"
            ))),
            Place::Spooled(_, _) => {
                let mut out = Vec::new();
                self.reader()
                    .read_to_end(&mut out)
                    .map_err(ImageError::io("read load spool"))?;
                Ok(out)
            }
        }
    }

    /// A reader of the member's bytes.
    pub(crate) fn reader(&self) -> impl Read + '_ {
        let (bytes, at, end): (&[u8], u64, u64) = match self.place {
            Place::Memory(b) => (b, 0, 0),
            Place::Spooled(off, len) => (&[], *off, off + len),
        };
        bytes.chain(Slice {
            file: &self.members.spool,
            at,
            end,
        })
    }
}

/// A range of a file, read by position (so several may be read at once).
struct Slice<'a> {
    file: &'a File,
    at: u64,
    end: u64,
}

impl Read for Slice<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let want = (self.end - self.at).min(buf.len() as u64) as usize;
        if want == 0 {
            return Ok(0);
        }
        let n = self.file.read_at(&mut buf[..want], self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

/// A new file at `path`, unlinked at once: gone when dropped, whatever
/// happens.
fn unlinked(path: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    std::fs::remove_file(path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(files: &[(&str, usize)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (i, (name, size)) in files.iter().enumerate() {
            let mut h = tar::Header::new_gnu();
            h.set_size(*size as u64);
            h.set_mode(0o644);
            h.set_cksum();
            let data: Vec<u8> = (0..*size).map(|j| (i + j) as u8).collect();
            b.append_data(&mut h, name, &data[..]).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn small_members_stay_in_memory_and_large_ones_are_spooled() {
        let tmp = tempfile::tempdir().unwrap();
        let tar = tar_of(&[("manifest.json", 10), ("layer.tar", 1 << 20), ("b", 300)]);
        let m = Members::read(&tar[..], &tmp.path().join("spool")).unwrap();
        assert!(matches!(m.places["manifest.json"], Place::Memory(_)));
        assert!(matches!(m.places["layer.tar"], Place::Spooled(0, 0x100000)));
        let mut layer = Vec::new();
        m.get("layer.tar")
            .unwrap()
            .reader()
            .read_to_end(&mut layer)
            .unwrap();
        assert_eq!(layer.len(), 1 << 20);
        assert_eq!(layer[1000], (1 + 1000) as u8);
        assert_eq!(m.get("b").unwrap().bytes().unwrap()[5], 7);
        assert!(m.get("absent").is_none());
        // Nothing named is left on disk.
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn many_small_members_spill_to_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..80).map(|i| format!("f{i}")).collect();
        let files: Vec<(&str, usize)> = names.iter().map(|n| (n.as_str(), 256 << 10)).collect();
        let m = Members::read(&tar_of(&files)[..], &tmp.path().join("spool")).unwrap();
        let in_memory: usize = m
            .places
            .values()
            .map(|p| match p {
                Place::Memory(b) => b.len(),
                Place::Spooled(..) => 0,
            })
            .sum();
        assert!(in_memory as u64 <= IN_MEMORY);
        assert_eq!(m.get("f79").unwrap().bytes().unwrap().len(), 256 << 10);
    }
}
