//! Large request bodies (image archives, build contexts, `docker cp` tars):
//! streamed to an unlinked file in the data directory's scratch space (on the
//! store's filesystem), counted as they come and refused past the request's
//! limit, so an upload costs the daemon one chunk of memory, whatever its size.
//!
//! The limit is the scope's disk budget where it has one (a classroom
//! session's), else a fixed cap per endpoint (`berth daemon`). What a body
//! decompresses or unpacks to is held to the same limit: a gzip bomb stops
//! at the budget, on disk, never in memory.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use http_body_util::BodyExt;
use hyper::StatusCode;

use super::http::ApiError;
use super::router::Ctx;

/// How much a request may store: bytes, and the session quota they come
/// from (for the message), if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimit {
    pub bytes: u64,
    /// The session disk quota, when the limit is what is left of it.
    pub quota: Option<u64>,
}

impl BodyLimit {
    /// The limit of a request of `ctx`'s scope: what its disk budget has
    /// left (at most `cap`), or `cap` for a scope without a budget.
    pub async fn of(ctx: &Ctx, cap: u64) -> Self {
        let (engine, scope) = (ctx.engine.clone(), ctx.scope.name.clone());
        // Blocking: the budget walks the image store.
        let budget = tokio::task::spawn_blocking(move || engine.disk_budget(&scope))
            .await
            .ok()
            .flatten();
        match budget {
            Some(b) => Self {
                bytes: b.left().min(cap),
                quota: Some(b.limit),
            },
            None => Self {
                bytes: cap,
                quota: None,
            },
        }
    }

    /// The error for a body past the limit.
    pub fn body_too_large(&self) -> ApiError {
        let message = match self.quota {
            Some(q) => format!(
                "request body too large: the session disk quota of {} MiB would be exceeded (docker system prune frees space)",
                q >> 20
            ),
            None => format!(
                "request body too large: more than {} MiB",
                self.bytes >> 20
            ),
        };
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }

    /// The error for `what` (`build context`) growing past the limit once
    /// decompressed or unpacked.
    pub fn exceeded(&self, what: &str) -> ApiError {
        let message = match self.quota {
            Some(q) => format!(
                "{what} exceeds the session disk quota of {} MiB (docker system prune frees space)",
                q >> 20
            ),
            None => format!("{what} exceeds {} MiB", self.bytes >> 20),
        };
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    }
}

/// A request body on disk: an unlinked file, gone when dropped.
#[derive(Debug)]
pub struct Spooled {
    file: File,
    len: u64,
}

impl Spooled {
    /// Bytes held.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file, positioned at its start.
    pub fn into_file(mut self) -> io::Result<File> {
        self.file.seek(SeekFrom::Start(0))?;
        Ok(self.file)
    }
}

/// A new file in `dir` no one else can open: `O_TMPFILE` where the
/// filesystem has it, else a fresh name unlinked at once.
pub fn unlinked_file(dir: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(dir)?;
    let tmpfile = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    match tmpfile {
        Ok(f) => Ok(f),
        Err(_) => {
            let path = dir.join(format!("body-{}", &crate::container::names::new_id()[..16]));
            let f = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            std::fs::remove_file(&path)?;
            Ok(f)
        }
    }
}

fn spool_error(e: io::Error) -> ApiError {
    ApiError::internal(format!("storing request body: {e}"))
}

/// Streams `body` to an unlinked file in `dir`, refusing it past `limit`.
/// Memory: one frame at a time; the file is written on a blocking thread.
pub async fn spool_body(
    body: hyper::body::Incoming,
    dir: &Path,
    limit: &BodyLimit,
) -> Result<Spooled, ApiError> {
    let dir = dir.to_path_buf();
    let file = tokio::task::spawn_blocking(move || unlinked_file(&dir))
        .await
        .map_err(|e| ApiError::internal(format!("task failed: {e}")))?
        .map_err(spool_error)?;
    let mut file = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
    let mut body = body;
    let mut len: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        len += data.len() as u64;
        if len > limit.bytes {
            drain(body).await;
            return Err(limit.body_too_large());
        }
        tokio::io::AsyncWriteExt::write_all(&mut file, &data)
            .await
            .map_err(spool_error)?;
    }
    tokio::io::AsyncWriteExt::flush(&mut file)
        .await
        .map_err(spool_error)?;
    let file = file.into_inner().into_std().await;
    Ok(Spooled { file, len })
}

/// How much of a refused body is read (and dropped) before the answer…
const DRAIN_BYTES: u64 = 4 << 30;
/// …and for how long at most.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads the rest of a refused body, up to a bound, dropping it: a client
/// still writing when the answer comes and the connection closes sees a
/// broken pipe instead of the answer (the docker CLI prints
/// `write: broken pipe`). Memory: one frame at a time.
async fn drain(mut body: hyper::body::Incoming) {
    let mut read: u64 = 0;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                read += data.len() as u64;
                if read > DRAIN_BYTES {
                    break;
                }
            }
        }
    })
    .await;
}

/// A compression format by its magic bytes, as Docker detects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

impl Compression {
    pub fn detect(head: &[u8]) -> Self {
        if head.starts_with(&[0x1f, 0x8b, 0x08]) {
            Self::Gzip
        } else if head.starts_with(b"BZh") {
            Self::Bzip2
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Self::Xz
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Self::Zstd
        } else {
            Self::None
        }
    }
}

/// Writes to `inner`, failing once more than `limit` bytes came.
struct Capped<W> {
    inner: W,
    written: u64,
    limit: u64,
}

/// The marker error of [`Capped`], told apart from real I/O errors.
#[derive(Debug)]
struct OverLimit;

impl std::fmt::Display for OverLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("over the limit")
    }
}

impl std::error::Error for OverLimit {}

impl<W: Write> Write for Capped<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.written + buf.len() as u64 > self.limit {
            return Err(io::Error::other(OverLimit));
        }
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The body as an uncompressed stream: itself when plain; gzip inflated to
/// another unlinked file in `dir`, stopping at `limit` (`what` names the
/// body in the error). Blocking.
pub fn decompressed(
    body: Spooled,
    dir: &Path,
    limit: &BodyLimit,
    what: &str,
) -> Result<Spooled, ApiError> {
    let mut file = body.into_file().map_err(spool_error)?;
    let mut head = [0u8; 8];
    let n = read_head(&mut file, &mut head).map_err(spool_error)?;
    file.seek(SeekFrom::Start(0)).map_err(spool_error)?;
    match Compression::detect(&head[..n]) {
        Compression::None => {
            let len = file.metadata().map_err(spool_error)?.len();
            Ok(Spooled { file, len })
        }
        Compression::Gzip => {
            let out = unlinked_file(dir).map_err(spool_error)?;
            let mut capped = Capped {
                inner: BufWriter::with_capacity(1 << 20, out),
                written: 0,
                limit: limit.bytes,
            };
            // Docker reads every member of a multi-member gzip stream.
            let mut gz = flate2::read::MultiGzDecoder::new(io::BufReader::new(file));
            match io::copy(&mut gz, &mut capped).and_then(|_| capped.flush()) {
                Ok(()) => {}
                Err(e) if e.get_ref().is_some_and(|i| i.is::<OverLimit>()) => {
                    return Err(limit.exceeded(what));
                }
                Err(e)
                    if e.kind() == io::ErrorKind::InvalidInput
                        || e.kind() == io::ErrorKind::InvalidData
                        || e.kind() == io::ErrorKind::UnexpectedEof =>
                {
                    return Err(ApiError::bad_request(format!("decompress {what}: {e}")));
                }
                Err(e) => return Err(spool_error(e)),
            }
            let len = capped.written;
            let file = capped
                .inner
                .into_inner()
                .map_err(|e| spool_error(e.into_error()))?;
            Ok(Spooled { file, len })
        }
        other => Err(ApiError::bad_request(format!(
            "unsupported compression of the {what} ({other:?}): send a plain or gzip tar"
        ))),
    }
}

fn read_head(file: &mut File, head: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Checks what a tar unpacks to before anything is unpacked: the sum of its
/// members' sizes (a sparse member counts its full size; every member at
/// least its header), at most `limit`; at most `max_entries` members.
/// Members whose path `small` accepts (the Dockerfile) may hold at most
/// `small_max` bytes, since they are read into memory. Blocking; rewinds
/// `file`.
pub fn check_tar(
    file: &mut File,
    limit: &BodyLimit,
    what: &str,
    max_entries: usize,
    small: &dyn Fn(&str) -> bool,
    small_max: u64,
) -> Result<(), ApiError> {
    file.seek(SeekFrom::Start(0)).map_err(spool_error)?;
    let bad = |e: io::Error| ApiError::bad_request(format!("read {what}: {e}"));
    let mut total: u64 = 0;
    {
        let mut archive = tar::Archive::new(io::BufReader::new(&mut *file));
        for (count, entry) in archive.entries_with_seek().map_err(bad)?.enumerate() {
            if count >= max_entries {
                return Err(ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("{what} has more than {max_entries} files"),
                ));
            }
            let entry = entry.map_err(bad)?;
            // A GNU sparse member's size is its full size, holes and all:
            // what it costs once copied into a layer.
            let size = entry.size();
            if size > small_max {
                let path = entry.path().map_err(bad)?;
                let name = path.to_string_lossy();
                if small(&name) {
                    return Err(ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        format!("{name} is larger than {} MiB", small_max >> 20),
                    ));
                }
            }
            total = total.saturating_add(size.div_ceil(512) * 512 + 512);
            if total > limit.bytes {
                return Err(limit.exceeded(what));
            }
        }
    }
    file.seek(SeekFrom::Start(0)).map_err(spool_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(bytes: u64) -> BodyLimit {
        BodyLimit {
            bytes,
            quota: Some(bytes),
        }
    }

    fn spooled(bytes: &[u8]) -> Spooled {
        let dir = tempfile::tempdir().unwrap();
        let mut file = unlinked_file(dir.path()).unwrap();
        file.write_all(bytes).unwrap();
        Spooled {
            file,
            len: bytes.len() as u64,
        }
    }

    /// A gzip stream of `n` MiB of zeros, made without holding them.
    fn gzip_zeros(n: usize) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mib = vec![0u8; 1 << 20];
        for _ in 0..n {
            gz.write_all(&mib).unwrap();
        }
        gz.finish().unwrap()
    }

    #[test]
    fn limits_say_where_they_come_from() {
        let session = BodyLimit {
            bytes: 100 << 20,
            quota: Some(2 << 30),
        };
        assert_eq!(
            session.body_too_large().message,
            "request body too large: the session disk quota of 2048 MiB would be exceeded (docker system prune frees space)"
        );
        let daemon = BodyLimit {
            bytes: 2 << 30,
            quota: None,
        };
        assert_eq!(
            daemon.body_too_large().message,
            "request body too large: more than 2048 MiB"
        );
        assert_eq!(
            daemon.exceeded("build context").message,
            "build context exceeds 2048 MiB"
        );
    }

    #[test]
    fn unlinked_files_leave_no_name_behind() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = unlinked_file(dir.path()).unwrap();
        f.write_all(b"x").unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn gzip_inflates_to_disk_until_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let small = decompressed(spooled(&gzip_zeros(2)), dir.path(), &limit(4 << 20), "x");
        assert_eq!(small.unwrap().len(), 2 << 20);
        let err = decompressed(
            spooled(&gzip_zeros(8)),
            dir.path(),
            &limit(4 << 20),
            "build context",
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            err.message,
            "build context exceeds the session disk quota of 4 MiB (docker system prune frees space)"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn plain_bodies_pass_and_other_compressions_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let plain = decompressed(spooled(b"FROM busybox\n"), dir.path(), &limit(100), "x");
        assert_eq!(plain.unwrap().len(), 13);
        let err = decompressed(
            spooled(b"BZh91AY&SY"),
            dir.path(),
            &limit(100),
            "build context",
        )
        .unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.message.contains("Bzip2"), "{}", err.message);
    }

    fn tar_with(entries: &[(&str, u64)]) -> Spooled {
        let mut b = tar::Builder::new(Vec::new());
        for (name, size) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(*size);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, io::repeat(0).take(*size))
                .unwrap();
        }
        spooled(&b.into_inner().unwrap())
    }

    fn is_df(name: &str) -> bool {
        name.trim_start_matches("./") == "Dockerfile"
    }

    #[test]
    fn tars_are_measured_before_they_are_unpacked() {
        let mut ok = tar_with(&[("Dockerfile", 20), ("a", 1000)])
            .into_file()
            .unwrap();
        check_tar(&mut ok, &limit(1 << 20), "build context", 10, &is_df, 100).unwrap();
        let mut many = tar_with(&[("a", 0), ("b", 0), ("c", 0)])
            .into_file()
            .unwrap();
        let err =
            check_tar(&mut many, &limit(1 << 20), "build context", 2, &is_df, 100).unwrap_err();
        assert_eq!(err.message, "build context has more than 2 files");
        let mut big = tar_with(&[("a", 4096)]).into_file().unwrap();
        let err =
            check_tar(&mut big, &limit(4096), "build context", 10, &is_df, 1 << 20).unwrap_err();
        assert!(
            err.message.starts_with("build context exceeds"),
            "{}",
            err.message
        );
        let mut df = tar_with(&[("./Dockerfile", 200)]).into_file().unwrap();
        let err =
            check_tar(&mut df, &limit(1 << 20), "build context", 10, &is_df, 100).unwrap_err();
        assert_eq!(err.message, "Dockerfile is larger than 0 MiB");
    }

    #[test]
    fn a_sparse_member_counts_its_full_size() {
        // A GNU sparse member: 1 GiB of holes and 512 bytes of data.
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::GNUSparse);
        h.set_size(512);
        h.set_mode(0o644);
        h.set_path("holes").unwrap();
        let gnu = h.as_gnu_mut().unwrap();
        gnu.set_real_size(1 << 30);
        gnu.sparse[0].set_offset((1 << 30) - 512);
        gnu.sparse[0].set_length(512);
        h.set_cksum();
        let mut bytes = h.as_bytes().to_vec();
        bytes.extend_from_slice(&[7u8; 512]);
        bytes.extend_from_slice(&[0u8; 1024]);
        let mut file = spooled(&bytes).into_file().unwrap();
        let err = check_tar(
            &mut file,
            &limit(1 << 20),
            "build context",
            10,
            &is_df,
            1 << 20,
        )
        .unwrap_err();
        assert!(
            err.message.starts_with("build context exceeds"),
            "{}",
            err.message
        );
    }
}
