//! `berth-bench sandbox [RUNS] [BEFORE]`: what the sandbox's safe paths cost
//! a learner. Through the real docker CLI against `berth daemon`:
//! - `docker load` of a 50 MB image (one layer of random bytes), the image
//!   removed between runs so every run verifies and unpacks the layer;
//! - `docker pull` of the same image from a Berth registry on loopback;
//! - `docker run --rm busybox true` and the same with a bind mount and a
//!   fresh volume (`-v /tmp:/x -v vol:/data`), the paths the sandbox changed.
//!
//! With `BEFORE` (another `berth` binary, e.g. a release build of an earlier
//! commit) the same runs go to a daemon of that binary too, interleaved run
//! by run so both see the same machine, and the rows print side by side.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context};

use super::build_bench::Daemon;
use super::cli_bench::docker;
use super::{berth_binary, print_row, summarize};

/// Removes `reference` and whatever it alone kept (its layer goes too, so the
/// next load or pull unpacks it again).
fn remove(socket: &Path, reference: &str) -> anyhow::Result<()> {
    docker(socket, &["rmi", "-f", reference])?;
    docker(socket, &["image", "prune", "-f"])?;
    Ok(())
}

struct Subject {
    name: String,
    daemon: Daemon,
}

fn start(binary: &Path, dir: &Path, name: &str, registry: &str) -> anyhow::Result<Subject> {
    std::fs::create_dir_all(dir)?;
    let daemon = Daemon::spawn(
        binary,
        dir,
        &["daemon", "--scope", "bench", "--registry", registry],
    )?;
    Ok(Subject {
        name: name.to_string(),
        daemon,
    })
}

pub fn run(runs: usize, before: Option<PathBuf>) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("berth-bench-sandbox-")
        .tempdir_in("/var/tmp")?;
    let (_registry, registry) =
        super::registry::start_berth_registry(&tmp.path().join("registry"))?;
    let mut subjects = vec![start(
        &berth_binary()?,
        &tmp.path().join("after"),
        "berth (this build)",
        &registry,
    )?];
    if let Some(b) = &before {
        subjects.push(start(
            b,
            &tmp.path().join("before"),
            "berth (before)",
            &registry,
        )?);
    }

    // A 50 MB layer of random bytes, imported once and saved as a tar; then
    // pushed so every daemon can pull it.
    let layer = tmp.path().join("layer");
    std::fs::create_dir_all(&layer)?;
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c 50000000 /dev/urandom > {dir}/blob.bin && tar -C {dir} -cf {dir}.tar blob.bin",
            dir = layer.display()
        ))
        .status()?;
    ensure!(status.success(), "make the layer");
    let first = &subjects[0].daemon.socket;
    docker(
        first,
        &["import", &format!("{}.tar", layer.display()), "bench:50mb"],
    )?;
    let saved = tmp.path().join("50mb.tar");
    docker(
        first,
        &["save", "-o", saved.to_str().context("path")?, "bench:50mb"],
    )?;
    let pulled = "registry.local:5000/bench/50mb:v1";
    docker(first, &["tag", "bench:50mb", pulled])?;
    docker(first, &["push", pulled])?;
    for s in &subjects {
        let _ = remove(&s.daemon.socket, "bench:50mb");
        let _ = remove(&s.daemon.socket, pulled);
    }

    let saved = saved.to_str().context("path")?.to_string();
    let mut table: Vec<(String, Vec<Vec<Duration>>)> = subjects
        .iter()
        .map(|s| (s.name.clone(), vec![Vec::new(); 4]))
        .collect();
    for i in 0..=runs {
        for (s, (_, rows)) in subjects.iter().zip(table.iter_mut()) {
            let socket = &s.daemon.socket;
            let load = docker(socket, &["load", "-i", &saved])?;
            remove(socket, "bench:50mb")?;
            let pull = docker(socket, &["pull", pulled])?;
            remove(socket, pulled)?;
            let run = docker(socket, &["run", "--rm", "busybox", "true"])?;
            let vol = format!("v{i}");
            let mounts = docker(
                socket,
                &[
                    "run",
                    "--rm",
                    "-v",
                    "/tmp:/x",
                    "-v",
                    &format!("{vol}:/etc"),
                    "busybox",
                    "true",
                ],
            )?;
            docker(socket, &["volume", "rm", &vol])?;
            // The first round warms caches (busybox's layers, page cache).
            if i > 0 {
                for (row, t) in rows.iter_mut().zip([load, pull, run, mounts]) {
                    row.push(t);
                }
            }
        }
    }
    println!("sandbox cost, {runs} runs each, interleaved");
    let names = [
        "docker load (50 MB)",
        "docker pull (50 MB, loopback)",
        "docker run --rm busybox true",
        "run --rm with bind + fresh volume",
    ];
    for (k, what) in names.iter().enumerate() {
        let mut medians = Vec::new();
        for (name, rows) in &table {
            let s = summarize(rows[k].clone());
            medians.push(s.median);
            print_row(&format!("{name}: {what}"), runs, &s);
        }
        if let [after, before] = medians[..] {
            println!(
                "{:<40} after/before = {:+.1}%",
                "",
                (after.as_secs_f64() / before.as_secs_f64() - 1.0) * 100.0
            );
        }
    }
    Ok(())
}
