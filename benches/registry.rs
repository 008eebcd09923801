//! `berth-bench registry [RUNS]`: `docker push` and `docker pull` of a 50 MB
//! image through a Berth engine, against Berth's registry and, beside it,
//! Debian's `docker-registry` (distribution 2.8), both on loopback.
//!
//! Each run pushes to a new repository (so every layer is uploaded) and then
//! deletes the image locally and pulls it back (so every layer is downloaded,
//! verified and unpacked). Times are wall clock of the docker CLI command;
//! MB/s is the image's uncompressed size over that time.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};

use super::{berth_binary, summarize, Summary};

pub(crate) struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn docker(socket: &Path, config: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("DOCKER_CONFIG", config)
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

pub(crate) fn start_berth_registry(dir: &Path) -> anyhow::Result<(Proc, String)> {
    let mut child = Command::new(berth_binary()?)
        .arg("--data-dir")
        .arg(dir)
        .args(["registry", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("stdout")?).read_line(&mut line)?;
    let addr = line.trim().rsplit(' ').next().unwrap_or("").to_string();
    Ok((Proc(child), addr))
}

fn start_distribution(dir: &Path) -> anyhow::Result<(Proc, String)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.join("config.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.join("data").display()
        ),
    )?;
    let child = Command::new("docker-registry")
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("start docker-registry (apt install docker-registry)")?;
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&addr).is_err() {
        ensure!(Instant::now() < deadline, "docker-registry did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((Proc(child), addr))
}

fn mbps(bytes: u64, s: &Summary) -> f64 {
    bytes as f64 / 1e6 / s.median.as_secs_f64()
}

/// Push and pull `runs` times through `prefix` (`registry.local:5000` or a
/// registry's address); returns (push times, pull times).
fn round_trips(
    engine_data: &Path,
    socket: &Path,
    config: &Path,
    prefix: &str,
    runs: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut current = "bench:50mb".to_string();
    let (mut pushes, mut pulls) = (Vec::new(), Vec::new());
    for i in 0..=runs {
        let target = format!("{prefix}/bench{i}:v1");
        docker(socket, config, &["tag", &current, &target])?;
        forget_sources(engine_data)?;
        let t = Instant::now();
        docker(socket, config, &["push", &target])?;
        let push = t.elapsed();
        // Delete every name of the image, so the pull must fetch its layer.
        let names = docker(
            socket,
            config,
            &["images", "--format", "{{.Repository}}:{{.Tag}}"],
        )?;
        for n in names.lines().filter(|n| !n.starts_with("busybox")) {
            docker(socket, config, &["rmi", n.trim_end_matches(":<none>")])?;
        }
        let t = Instant::now();
        docker(socket, config, &["pull", &target])?;
        let pull = t.elapsed();
        // The first round warms up (and makes the compressed layer).
        if i > 0 {
            pushes.push(push);
            pulls.push(pull);
        }
        current = target;
    }
    Ok((pushes, pulls))
}

/// Makes the engine forget which repositories hold its layers, so a push
/// uploads them instead of mounting them from the previous round's repository.
fn forget_sources(engine_data: &Path) -> anyhow::Result<()> {
    let dir = engine_data.join("image/compressed");
    for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(e.path())?)?;
        v["sources"] = serde_json::json!([]);
        std::fs::write(e.path(), serde_json::to_vec(&v)?)?;
    }
    Ok(())
}

/// The benchmark.
pub fn run(runs: usize) -> anyhow::Result<()> {
    let tmp = tempfile::Builder::new()
        .prefix("berth-bench-registry-")
        .tempdir_in("/var/tmp")?;
    let (_registry, berth_addr) = start_berth_registry(&tmp.path().join("registry"))?;
    std::fs::create_dir_all(tmp.path().join("distribution"))?;
    let (_distribution, dist_addr) = start_distribution(&tmp.path().join("distribution"))?;
    let socket = tmp.path().join("docker.sock");
    let config = tmp.path().join("cli");
    let _daemon = Proc(
        Command::new(berth_binary()?)
            .arg("--data-dir")
            .arg(tmp.path().join("engine"))
            .args([
                "daemon",
                "--scope",
                "bench",
                "--registry",
                &berth_addr,
                "--socket",
            ])
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        ensure!(Instant::now() < deadline, "berth daemon did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A 50 MB layer of random (incompressible) bytes.
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
    let tar = format!("{}.tar", layer.display());
    docker(&socket, &config, &["import", &tar, "bench:50mb"])?;

    println!(
        "push and pull of a 50 MB image (one layer, random bytes), loopback, {runs} runs each"
    );
    for (name, prefix) in [
        ("berth registry", "registry.local:5000".to_string()),
        ("docker-registry 2.8 (Debian)", dist_addr.clone()),
    ] {
        let (pushes, pulls) =
            round_trips(&tmp.path().join("engine"), &socket, &config, &prefix, runs)?;
        let (push, pull) = (summarize(pushes), summarize(pulls));
        println!(
            "{name:<30} push median {:>7.1} ms ({:>6.1} MB/s)   pull median {:>7.1} ms ({:>6.1} MB/s)",
            push.median.as_secs_f64() * 1e3,
            mbps(size, &push),
            pull.median.as_secs_f64() * 1e3,
            mbps(size, &pull),
        );
        // Each registry starts from the same image.
        let names = docker(
            &socket,
            &config,
            &["images", "--format", "{{.Repository}}:{{.Tag}}"],
        )?;
        if !names.contains("bench:50mb") {
            let last = names
                .lines()
                .find(|n| n.contains("/bench"))
                .unwrap_or("")
                .to_string();
            docker(&socket, &config, &["tag", &last, "bench:50mb"])?;
        }
    }
    Ok(())
}
