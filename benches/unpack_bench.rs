//! `unpack`: `docker load` of a 50 MB image into a fresh image store, through
//! Berth's store (`ImageStore::load`: members spooled and hashed, every diff
//! ID checked before its layer is unpacked in-root by fds), beside the path
//! it replaced, kept here as the reference: the archive read into memory,
//! each layer hashed into a blob, then unpacked with the tar crate's
//! `unpack_in` (path strings under the layer directory). Runs interleave, each
//! on a fresh directory, so the page cache treats both alike.
//!
//! Measured 2026-12-07 (release, 2 shared cores under load from parallel
//! builds, so spreads are wide): medians 427 ms vs 470 ms reference over 15
//! runs (ratio 0.91), 863 ms vs 978 ms over 25 runs (0.88). The safe path is
//! not slower: `unpack_in` canonicalizes each member's parent by path, the
//! in-root unpacker resolves each directory once and acts by fds.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use berth_runtime::image::layer::HashingWriter;
use berth_runtime::image::ImageStore;

/// Three layers of about 50 MB in all: many small files and a few large
/// ones, in nested directories, with incompressible content.
fn image_archive(total: usize) -> anyhow::Result<Vec<u8>> {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect()
    };
    let mut layers = Vec::new();
    for l in 0..3 {
        let mut b = tar::Builder::new(Vec::new());
        let mut written = 0;
        let mut i = 0;
        while written < total / 3 {
            // Mostly 4–40 kB files, one in fifty of 1 MB.
            let size = if i % 50 == 49 {
                1 << 20
            } else {
                4096 * (1 + i % 10)
            };
            let dir = format!("usr/share/l{l}/d{}/e{}", i % 37, i % 5);
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(size as u64);
            h.set_mode(0o644);
            h.set_mtime(1_700_000_000);
            h.set_uid(0);
            h.set_gid(0);
            b.append_data(&mut h, format!("{dir}/f{i}"), &random(size)[..])?;
            written += size;
            i += 1;
        }
        layers.push(b.into_inner()?);
    }
    let diff_ids: Vec<String> = layers.iter().map(|l| digest(l)).collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))?;
    let names: Vec<String> = (0..layers.len())
        .map(|i| format!("l{i}/layer.tar"))
        .collect();
    let manifest = serde_json::to_vec(&serde_json::json!([
        {"Config": "config.json", "RepoTags": ["bench:50mb"], "Layers": names}
    ]))?;
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| -> anyhow::Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        Ok(b.append_data(&mut h, name, data)?)
    };
    for (name, layer) in names.iter().zip(&layers) {
        add(name, layer)?;
    }
    add("config.json", &config)?;
    add("manifest.json", &manifest)?;
    Ok(b.into_inner()?)
}

fn digest(bytes: &[u8]) -> String {
    let mut h = HashingWriter::new(std::io::sink());
    h.write_all(bytes).expect("sink");
    h.finish().0
}

/// The load path before in-root unpacking, as the reference.
fn reference_load(root: &Path, archive: &[u8]) -> anyhow::Result<()> {
    let mut files: HashMap<String, Vec<u8>> = HashMap::new();
    let mut a = tar::Archive::new(archive);
    for e in a.entries()? {
        let mut e = e?;
        let name = e.path()?.to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data)?;
        files.insert(name, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"])?;
    std::fs::create_dir_all(root.join("blobs"))?;
    std::fs::create_dir_all(root.join("layers"))?;
    for layer in manifest[0]["Layers"].as_array().into_iter().flatten() {
        let data = &files[layer.as_str().unwrap_or_default()];
        let tmp = root.join("blobs/tmp");
        let mut hashing = HashingWriter::new(std::io::BufWriter::new(std::fs::File::create(&tmp)?));
        std::io::copy(&mut &data[..], &mut hashing)?;
        hashing.flush()?;
        let (diff_id, _) = hashing.finish();
        let hex = diff_id.trim_start_matches("sha256:");
        std::fs::rename(&tmp, root.join("blobs").join(hex))?;
        let dest = root.join("layers").join(hex);
        std::fs::create_dir_all(&dest)?;
        let mut a = tar::Archive::new(std::fs::File::open(root.join("blobs").join(hex))?);
        a.set_preserve_permissions(true);
        a.set_preserve_ownerships(true);
        a.set_preserve_mtime(true);
        a.set_unpack_xattrs(true);
        a.set_overwrite(true);
        for e in a.entries()? {
            e?.unpack_in(&dest)?;
        }
    }
    Ok(())
}

pub fn run(runs: usize) -> anyhow::Result<()> {
    let archive = image_archive(50 << 20)?;
    println!(
        "image archive: {:.1} MB, 3 layers",
        archive.len() as f64 / 1e6
    );
    let fresh = || {
        tempfile::Builder::new()
            .prefix("berth-bench-unpack-")
            .tempdir_in("/var/tmp")
    };
    let (mut reference, mut current) = (Vec::new(), Vec::new());
    // One warm-up of each, then interleaved runs.
    for i in 0..runs + 1 {
        let dir = fresh()?;
        let start = Instant::now();
        reference_load(dir.path(), &archive)?;
        let t = start.elapsed();
        drop(dir);
        let dir = fresh()?;
        let start = Instant::now();
        let store = ImageStore::open(dir.path())?;
        let loaded = store.load("bench", &archive[..])?;
        let c = start.elapsed();
        anyhow::ensure!(loaded == ["bench:50mb"], "loaded {loaded:?}");
        drop(dir);
        if i > 0 {
            reference.push(t);
            current.push(c);
        }
    }
    let (r, c) = (super::summarize(reference), super::summarize(current));
    super::print_row("reference: in-memory + tar unpack_in", runs, &r);
    super::print_row("berth: spooled, verified, in-root", runs, &c);
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "berth / reference (median): {:.3}",
        ratio(c.median, r.median)
    );
    Ok(())
}
