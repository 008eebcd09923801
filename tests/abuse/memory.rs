//! Abuse: memory. An upload (a build context, an image archive) costs the
//! server a fixed amount of memory whatever its size: bodies go to disk
//! under the session's disk quota, and a gzip bomb inflates to disk until
//! the quota, never into memory. Judged by the server's peak resident set
//! (`VmHWM`, reset before each upload), not by time.

use std::io::Write;

use super::Lab;

/// What one upload may add to the server's peak resident memory.
const BOUND: u64 = 200 << 20;

/// The server's memory, read from `/proc/<pid>/status`, in bytes.
fn status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with(key))
        .unwrap_or_else(|| panic!("no {key} in /proc/{pid}/status"));
    let kib: u64 = line
        .trim_start_matches(key)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib << 10
}

/// Peak memory of `pid` while `f` runs, over its resident memory before:
/// the kernel's high-water mark is reset to the current RSS first.
fn peak_growth<T>(pid: u32, f: impl FnOnce() -> T) -> (T, u64, u64) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset VmHWM");
    let before = status_kib(pid, "VmRSS:");
    let out = f();
    let peak = status_kib(pid, "VmHWM:");
    (out, before, peak)
}

/// A tar member header.
fn header(name: &str, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_size(size);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_cksum();
    h
}

/// Writes a build context to `out` without holding it: a `big` file of
/// `size` zero bytes and a Dockerfile.
fn stream_context(out: &mut dyn Write, size: u64) -> std::io::Result<()> {
    out.write_all(header("big", size).as_bytes())?;
    let mib = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(mib.len() as u64) as usize;
        out.write_all(&mib[..n])?;
        left -= n as u64;
    }
    out.write_all(&vec![0u8; (512 - (size % 512) as usize) % 512])?;
    let dockerfile = b"FROM busybox\nLABEL big=yes\n";
    out.write_all(header("Dockerfile", dockerfile.len() as u64).as_bytes())?;
    out.write_all(dockerfile)?;
    out.write_all(&[0u8; 512 - 27])?;
    out.write_all(&[0u8; 1024])
}

/// A gzip build context that inflates to a tar of `chunks` × 64 MiB of
/// zeros, a few MiB on the wire. One 64 MiB deflate segment, ended
/// on a byte boundary by a sync flush, decodes to zeros after any window of
/// zeros, so it is repeated rather than compressed `chunks` times: the bomb
/// is never materialised, not even in the test.
fn gzip_bomb(chunks: u64) -> Vec<u8> {
    use flate2::write::DeflateEncoder;
    const CHUNK: u64 = 64 << 20;
    let total = chunks * CHUNK;
    let tar_header = header("zeros", total);
    let mib = vec![0u8; 1 << 20];
    let mut enc = DeflateEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(tar_header.as_bytes()).unwrap();
    for _ in 0..64 {
        enc.write_all(&mib).unwrap();
    }
    enc.flush().unwrap();
    let first = enc.get_ref().len();
    for _ in 0..64 {
        enc.write_all(&mib).unwrap();
    }
    enc.flush().unwrap();
    let deflated = enc.get_ref();
    let (head, segment) = deflated.split_at(first);
    // The CRC of what it inflates to: the header, then `chunks` zero chunks.
    let mut crc = flate2::Crc::new();
    crc.update(tar_header.as_bytes());
    let mut chunk_crc = flate2::Crc::new();
    for _ in 0..64 {
        chunk_crc.update(&mib);
    }
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.extend_from_slice(head);
    crc.combine(&chunk_crc);
    for _ in 1..chunks {
        out.extend_from_slice(segment);
        crc.combine(&chunk_crc);
    }
    // An empty final block, then the trailer.
    out.extend_from_slice(&[0x03, 0x00]);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&((total + 512) as u32).to_le_bytes());
    out
}

fn leftovers(lab: &Lab) -> Vec<String> {
    let tmp = lab.classroom.data_dir().join("tmp");
    std::fs::read_dir(&tmp)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_one_gib_build_context_costs_the_server_bounded_memory() {
    let lab = Lab::new();
    let pid = lab.server_pid();
    let (run, before, peak) = peak_growth(pid, || {
        lab.docker_feed(&["build", "-q", "-t", "big", "-"], |stdin| {
            let _ = stream_context(stdin, 1 << 30);
        })
    });
    eprintln!(
        "1 GiB build context: server RSS {} MiB before, peak {} MiB",
        before >> 20,
        peak >> 20
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    assert!(
        peak < before + BOUND,
        "a 1 GiB build context took the server from {} MiB to {} MiB",
        before >> 20,
        peak >> 20
    );
    let label = lab.ok(&["inspect", "-f", "{{.Config.Labels.big}}", "big"]);
    assert_eq!(label.trim(), "yes");
    assert!(leftovers(&lab).is_empty(), "{:?}", leftovers(&lab));
}

#[test]
fn a_gzip_bomb_build_context_stops_at_the_session_disk_quota() {
    let lab = Lab::with_args(&["--session-disk-mb", "256"]);
    let pid = lab.server_pid();
    // 4 GiB of zeros once inflated.
    let bomb = gzip_bomb(64);
    let bomb_len = bomb.len();
    assert!(bomb_len < 8 << 20, "bomb is {bomb_len} bytes");
    let (run, before, peak) = peak_growth(pid, || {
        lab.docker_feed(&["build", "-t", "bomb", "-"], move |stdin| {
            let _ = stdin.write_all(&bomb);
        })
    });
    eprintln!(
        "4 GiB gzip bomb ({} KiB sent): server RSS {} MiB before, peak {} MiB",
        bomb_len >> 10,
        before >> 20,
        peak >> 20
    );
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains(
            "Error response from daemon: build context exceeds the session disk quota of 256 MiB (docker system prune frees space)"
        ),
        "{}",
        run.stderr
    );
    assert!(
        peak < before + BOUND,
        "a gzip bomb took the server from {} MiB to {} MiB",
        before >> 20,
        peak >> 20
    );
    assert!(leftovers(&lab).is_empty(), "{:?}", leftovers(&lab));
    // The server still answers.
    lab.ok(&["version"]);
}

#[test]
fn an_upload_past_the_session_disk_quota_is_refused() {
    let lab = Lab::with_args(&["--session-disk-mb", "64"]);
    let pid = lab.server_pid();
    let (run, before, peak) = peak_growth(pid, || {
        lab.docker_feed(&["load"], |stdin| {
            let _ = stream_context(stdin, 256 << 20);
        })
    });
    eprintln!(
        "256 MiB docker load over a 64 MiB quota: server RSS {} MiB before, peak {} MiB",
        before >> 20,
        peak >> 20
    );
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains(
            "request body too large: the session disk quota of 64 MiB would be exceeded (docker system prune frees space)"
        ),
        "{}",
        run.stderr
    );
    assert!(peak < before + BOUND);
    // A build context and a docker cp are held to the same quota.
    let run = lab.docker_feed(&["build", "-"], |stdin| {
        let _ = stream_context(stdin, 256 << 20);
    });
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("request body too large: the session disk quota of 64 MiB would be exceeded"),
        "{}",
        run.stderr
    );
    lab.ok(&["create", "--name", "box", "busybox"]);
    let run = lab.docker_feed(&["cp", "-", "box:/tmp"], |stdin| {
        let _ = stream_layer(stdin, 256 << 20);
    });
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr
            .contains("request body too large: the session disk quota of 64 MiB would be exceeded"),
        "{}",
        run.stderr
    );
    assert!(leftovers(&lab).is_empty(), "{:?}", leftovers(&lab));
}

/// Writes an image layer: a tar with a `big` file of `size` zero bytes.
fn stream_layer(out: &mut dyn Write, size: u64) -> std::io::Result<()> {
    out.write_all(header("big", size).as_bytes())?;
    let mib = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(mib.len() as u64) as usize;
        out.write_all(&mib[..n])?;
        left -= n as u64;
    }
    out.write_all(&vec![0u8; (512 - (size % 512) as usize) % 512])?;
    out.write_all(&[0u8; 1024])
}

/// The length of [`stream_layer`]'s output.
fn layer_len(size: u64) -> u64 {
    512 + size.div_ceil(512) * 512 + 1024
}

/// `sha256:<hex>` of what `write` produces, hashed by `sha256sum` as it streams.
fn sha256_of(write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>) -> String {
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    let mut stdin = child.stdin.take().unwrap();
    write(&mut stdin).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    format!("sha256:{}", text.split_whitespace().next().unwrap())
}

/// Writes a `docker save` archive of one image tagged `big:latest` whose
/// layer holds `size` zero bytes: the layer first, then config and manifest.
fn stream_image(out: &mut dyn Write, size: u64, diff_id: &str) -> std::io::Result<()> {
    let len = layer_len(size);
    out.write_all(header("layer.tar", len).as_bytes())?;
    stream_layer(out, size)?;
    out.write_all(&vec![0u8; (512 - (len % 512) as usize) % 512])?;
    let arch = match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    };
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!([{
        "Config": "config.json",
        "RepoTags": ["big:latest"],
        "Layers": ["layer.tar"],
    }]))
    .unwrap();
    for (name, data) in [("config.json", &config), ("manifest.json", &manifest)] {
        out.write_all(header(name, data.len() as u64).as_bytes())?;
        out.write_all(data)?;
        out.write_all(&vec![0u8; (512 - data.len() % 512) % 512])?;
    }
    out.write_all(&[0u8; 1024])
}

#[test]
fn a_one_gib_docker_load_costs_the_server_bounded_memory() {
    const SIZE: u64 = 1 << 30;
    let diff_id = sha256_of(|out| stream_layer(out, SIZE));
    let lab = Lab::new();
    let pid = lab.server_pid();
    let id = diff_id.clone();
    let (run, before, peak) = peak_growth(pid, || {
        lab.docker_feed(&["load"], move |stdin| {
            let _ = stream_image(stdin, SIZE, &id);
        })
    });
    eprintln!(
        "1 GiB docker load: server RSS {} MiB before, peak {} MiB",
        before >> 20,
        peak >> 20
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    assert!(
        run.stdout.contains("Loaded image: big:latest"),
        "{}",
        run.stdout
    );
    assert!(
        peak < before + BOUND,
        "a 1 GiB docker load took the server from {} MiB to {} MiB",
        before >> 20,
        peak >> 20
    );
    let size = lab.ok(&["image", "inspect", "-f", "{{.Size}}", "big"]);
    let size: u64 = size.trim().parse().unwrap();
    assert!(size >= SIZE, "the loaded image holds {size} bytes");
    assert!(leftovers(&lab).is_empty(), "{:?}", leftovers(&lab));
}

#[test]
fn a_one_gib_docker_cp_costs_the_server_bounded_memory() {
    const SIZE: u64 = 1 << 30;
    let lab = Lab::new();
    lab.ok(&[
        "create", "--name", "box", "busybox", "stat", "-c", "%s", "/tmp/big",
    ]);
    let pid = lab.server_pid();
    let (run, before, peak) = peak_growth(pid, || {
        // `docker cp - box:/tmp` takes a tar on stdin: one 1 GiB file.
        lab.docker_feed(&["cp", "-", "box:/tmp"], |stdin| {
            let _ = stream_layer(stdin, SIZE);
        })
    });
    eprintln!(
        "1 GiB docker cp: server RSS {} MiB before, peak {} MiB",
        before >> 20,
        peak >> 20
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stderr, run.stdout);
    assert!(
        peak < before + BOUND,
        "a 1 GiB docker cp took the server from {} MiB to {} MiB",
        before >> 20,
        peak >> 20
    );
    let size = lab.ok(&["start", "-a", "box"]);
    assert_eq!(size.trim(), SIZE.to_string());
    assert!(leftovers(&lab).is_empty(), "{:?}", leftovers(&lab));
}

#[test]
fn a_gzip_bomb_docker_import_stops_at_the_session_disk_quota() {
    let lab = Lab::with_args(&["--session-disk-mb", "256"]);
    let pid = lab.server_pid();
    let bomb = gzip_bomb(64);
    let (run, before, peak) = peak_growth(pid, || {
        lab.docker_feed(&["import", "-", "bomb"], move |stdin| {
            let _ = stdin.write_all(&bomb);
        })
    });
    eprintln!(
        "4 GiB gzip bomb import: server RSS {} MiB before, peak {} MiB",
        before >> 20,
        peak >> 20
    );
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stderr.contains(
            "imported image exceeds the session disk quota of 256 MiB (docker system prune frees space)"
        ),
        "{}",
        run.stderr
    );
    assert!(peak < before + BOUND);
    assert!(leftovers(&lab).is_empty(), "{:?}", leftovers(&lab));
    assert!(!lab.ok(&["images"]).contains("bomb"));
}
