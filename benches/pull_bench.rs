//! `berth-bench pull [PULLS]`: PULLS (20) concurrent `docker pull`s of a
//! 50 MB image from an upstream registry (Debian's `docker-registry` on
//! loopback, behind a byte-counting TCP proxy), two ways:
//!
//! - **through the cache**: one Berth engine (`berth daemon`) takes every
//!   pull, so they share its pull-through cache (tags, manifests, one
//!   single-flight download per blob) as a classroom's sessions do;
//! - **direct**: PULLS separate `berth daemon`s, each with its own data
//!   directory and so its own cache, one pull each (what PULLS machines
//!   pulling for themselves cost the upstream).
//!
//! Reported: wall time from starting the pulls until the last one ends, and
//! the bytes the upstream sent (counted by the proxy).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

use super::berth_binary;

/// A process killed when dropped.
struct Proc(std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A TCP proxy to `upstream` counting the bytes the upstream sends.
fn proxy(upstream: String) -> anyhow::Result<(String, Arc<AtomicU64>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?.to_string();
    let sent = Arc::new(AtomicU64::new(0));
    let counted = sent.clone();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Ok(server) = TcpStream::connect(&upstream) else {
                continue;
            };
            let counted = counted.clone();
            let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c_in, &mut s_out);
                let _ = s_out.shutdown(std::net::Shutdown::Write);
            });
            let (mut s_in, mut c_out) = (server, client);
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    match s_in.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            counted.fetch_add(n as u64, Ordering::Relaxed);
                            if c_out.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = c_out.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    Ok((addr, sent))
}

fn registry_binary() -> String {
    let unpacked = "/var/cache/berth-test/docker-registry/usr/bin/docker-registry";
    if Path::new(unpacked).exists() {
        unpacked.into()
    } else {
        "docker-registry".into()
    }
}

fn start_upstream(dir: &Path) -> anyhow::Result<(Proc, String)> {
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.join("config.yml");
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.join("data").display()
        ),
    )?;
    let child = Command::new(registry_binary())
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start docker-registry (scripts/test.sh unpacks it)")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&addr).is_err() {
        ensure!(Instant::now() < deadline, "docker-registry did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((Proc(child), addr))
}

/// A `berth daemon` on its own data directory; its socket.
fn daemon(dir: &Path) -> anyhow::Result<(Proc, PathBuf)> {
    let socket = dir.join("docker.sock");
    let child = Command::new(berth_binary()?)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .args(["daemon", "--scope", "bench", "--socket"])
        .arg(&socket)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        ensure!(Instant::now() < deadline, "berth daemon did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((proc, socket))
}

fn docker(socket: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("DOCKER_CONFIG", socket.with_file_name("cli"))
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    ensure!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs one pull per socket at once; the wall time of them all.
fn pull_all(sockets: &[&Path], image: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let results: Vec<anyhow::Result<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = sockets
            .iter()
            .map(|socket| s.spawn(move || docker(socket, &["pull", image])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let wall = t.elapsed();
    for r in results {
        r?;
    }
    Ok(wall)
}

/// The benchmark.
pub fn run(pulls: usize) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("berth-bench-pull-")
        .tempdir_in("/var/tmp")?;
    let (_upstream, upstream) = start_upstream(&tmp.path().join("upstream"))?;
    let (proxied, sent) = proxy(upstream.clone())?;

    // The image: busybox plus a 50 MB layer of random (incompressible) bytes,
    // pushed straight to the upstream.
    let (seeder, seed_socket) = daemon(&tmp.path().join("seeder"))?;
    let size: u64 = 50 * 1000 * 1000;
    let layer = tmp.path().join("layer");
    std::fs::create_dir_all(&layer)?;
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "head -c {size} /dev/urandom > {dir}/blob.bin && tar -C {dir} -cf {dir}.tar blob.bin",
            dir = layer.display()
        ))
        .status()?;
    ensure!(status.success(), "make the layer");
    docker(
        &seed_socket,
        &["import", &format!("{}.tar", layer.display()), "bench:50mb"],
    )?;
    docker(
        &seed_socket,
        &["tag", "bench:50mb", &format!("{upstream}/bench/big:v1")],
    )?;
    docker(&seed_socket, &["push", &format!("{upstream}/bench/big:v1")])?;
    drop(seeder);
    let _ = std::fs::remove_dir_all(tmp.path().join("seeder"));
    let _ = std::fs::remove_dir_all(&layer);
    let image = format!("{proxied}/bench/big:v1");
    println!("{pulls} concurrent pulls of a 50 MB image (one layer, random bytes) from docker-registry 2.8 on loopback");

    // Through the cache: one engine takes every pull.
    {
        let (_engine, socket) = daemon(&tmp.path().join("cached"))?;
        let sockets: Vec<&Path> = (0..pulls).map(|_| socket.as_path()).collect();
        let before = sent.load(Ordering::Relaxed);
        let wall = pull_all(&sockets, &image)?;
        let bytes = sent.load(Ordering::Relaxed) - before;
        println!(
            "{:<34} wall {:>8.1} ms   upstream sent {:>8.1} MB",
            "through the cache (1 engine)",
            wall.as_secs_f64() * 1e3,
            bytes as f64 / 1e6
        );
    }
    let _ = std::fs::remove_dir_all(tmp.path().join("cached"));

    // Direct: an engine (and so a cache) per pull.
    let mut engines = Vec::new();
    for i in 0..pulls {
        engines.push(daemon(&tmp.path().join(format!("direct{i}")))?);
    }
    let sockets: Vec<&Path> = engines.iter().map(|(_, s)| s.as_path()).collect();
    let before = sent.load(Ordering::Relaxed);
    let wall = pull_all(&sockets, &image)?;
    let bytes = sent.load(Ordering::Relaxed) - before;
    println!(
        "{:<34} wall {:>8.1} ms   upstream sent {:>8.1} MB",
        format!("direct ({pulls} engines)"),
        wall.as_secs_f64() * 1e3,
        bytes as f64 / 1e6
    );
    Ok(())
}
