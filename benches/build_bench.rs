//! `berth-bench build [RUNS]`: fresh (`nocache=1`) and cached builds of
//! Dockerfile.example, through `POST /build` with the same context tar, on
//! a `berth daemon` and (when `dockerd` is installed) on a reference dockerd
//! with its classic builder, each on private paths; then the same through
//! the docker CLI (`docker build -q`), which adds the client's own time.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{berth_binary, print_row, summarize};

/// A daemon started for the benchmark, killed when dropped.
pub(crate) struct Daemon {
    name: &'static str,
    pub(crate) socket: PathBuf,
    child: Child,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        // SIGTERM lets dockerd unmount its data root; SIGKILL after 15 s.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.socket.parent() {
            let _ = nix::mount::umount2(&dir.join("root"), nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn wait_for(socket: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while UnixStream::connect(socket).is_err() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{} never listened",
            socket.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// One HTTP request on a Unix socket; returns the status code and body.
pub(crate) fn request(socket: &Path, head: &str, body: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
    let mut s = UnixStream::connect(socket)?;
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let text = String::from_utf8_lossy(&out);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|p| p + 4)
        .unwrap_or(out.len());
    Ok((status, out[split..].to_vec()))
}

/// `POST /build` of `context`; fails unless the stream reports an image.
fn api_build(socket: &Path, context: &[u8], no_cache: bool) -> anyhow::Result<Duration> {
    let query = format!(
        "dockerfile=Dockerfile.example&t=bench-example&rm=1{}",
        if no_cache { "&nocache=1" } else { "" }
    );
    let head = format!(
        "POST /v1.41/build?{query} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        context.len()
    );
    let start = Instant::now();
    let (status, body) = request(socket, &head, context)?;
    let elapsed = start.elapsed();
    let text = String::from_utf8_lossy(&body);
    anyhow::ensure!(
        status == 200 && text.contains("Successfully built") && !text.contains("errorDetail"),
        "build failed ({status}): {text}"
    );
    Ok(elapsed)
}

/// `docker build -q` through the CLI.
fn cli_build(socket: &Path, dir: &Path, no_cache: bool) -> anyhow::Result<Duration> {
    let mut cmd = Command::new("docker");
    cmd.env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env_remove("DOCKER_BUILDKIT")
        .args([
            "build",
            "-q",
            "-f",
            "Dockerfile.example",
            "-t",
            "bench-example",
        ]);
    if no_cache {
        cmd.arg("--no-cache");
    }
    cmd.arg(".")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let out = cmd.output()?;
    let elapsed = start.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "docker build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(elapsed)
}

pub(crate) fn measure(
    runs: usize,
    mut once: impl FnMut() -> anyhow::Result<Duration>,
) -> anyhow::Result<Vec<Duration>> {
    once()?;
    (0..runs).map(|_| once()).collect()
}

pub(crate) fn start_berth(dir: &Path) -> anyhow::Result<Daemon> {
    Daemon::spawn(&berth_binary()?, dir, &["daemon", "--scope", "bench"])
}

impl Daemon {
    /// `binary --data-dir DIR/berth-data ARGS --socket DIR/berth.sock`,
    /// waited for until its socket answers.
    pub(crate) fn spawn(binary: &Path, dir: &Path, args: &[&str]) -> anyhow::Result<Daemon> {
        let socket = dir.join("berth.sock");
        let child = Command::new(binary)
            .arg("--data-dir")
            .arg(dir.join("berth-data"))
            .args(args)
            .arg("--socket")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let daemon = Daemon {
            name: "berth",
            socket,
            child,
        };
        wait_for(&daemon.socket)?;
        Ok(daemon)
    }
}

/// A reference dockerd on private paths, given Berth's busybox image so
/// both build on the same base.
pub(crate) fn start_dockerd(dir: &Path, berth: &Path) -> anyhow::Result<Option<Daemon>> {
    if Command::new("dockerd").arg("--version").output().is_err() {
        return Ok(None);
    }
    let root = dir.join("dockerd");
    let socket = root.join("docker.sock");
    std::fs::create_dir_all(&root)?;
    let child = Command::new("dockerd")
        .arg(format!("--host=unix://{}", socket.display()))
        .arg(format!("--data-root={}", root.join("root").display()))
        .arg(format!("--exec-root={}", root.join("exec").display()))
        .arg(format!("--pidfile={}", root.join("pid").display()))
        .args(["--iptables=false", "--bridge=none"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(root.join("dockerd.log"))?)
        .spawn()?;
    let daemon = Daemon {
        name: "dockerd 20.10 (classic builder)",
        socket,
        child,
    };
    wait_for(&daemon.socket)?;
    let (status, image) = request(
        berth,
        "GET /v1.41/images/get?names=busybox:latest HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n",
        &[],
    )?;
    anyhow::ensure!(status == 200, "save busybox from berth: {status}");
    let image = dechunk(&image);
    let head = format!(
        "POST /v1.41/images/load?quiet=1 HTTP/1.1\r\nHost: docker\r\nContent-Type: application/x-tar\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        image.len()
    );
    let (status, body) = request(&daemon.socket, &head, &image)?;
    anyhow::ensure!(
        status == 200,
        "load busybox into dockerd: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(Some(daemon))
}

/// Removes HTTP/1.1 chunked framing.
pub(crate) fn dechunk(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let Some(line_end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return body.to_vec();
        };
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let Ok(size) = usize::from_str_radix(size_text.trim(), 16) else {
            return body.to_vec();
        };
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        if rest.len() < start + size + 2 {
            return body.to_vec();
        }
        out.extend_from_slice(&rest[start..start + size]);
        rest = &rest[start + size + 2..];
    }
}

/// Runs the build benchmark.
pub fn run(runs: usize) -> anyhow::Result<()> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::Builder::new()
        .prefix("berth-bench-build-")
        .tempdir_in("/var/tmp")?;
    let ctx = dir.path().join("context");
    std::fs::create_dir_all(&ctx)?;
    for name in ["Dockerfile.example", ".dockerignore"] {
        std::fs::copy(repo.join(name), ctx.join(name))?;
    }
    let status = Command::new("cp")
        .arg("-a")
        .arg(repo.join("example"))
        .arg(&ctx)
        .status()?;
    anyhow::ensure!(status.success(), "copy example/");
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&ctx)
        .args(["-cf", "-", "Dockerfile.example", ".dockerignore", "example"])
        .output()?;
    anyhow::ensure!(tar.status.success(), "tar the context");
    let context = tar.stdout;

    let berth = start_berth(dir.path())?;
    let reference = start_dockerd(dir.path(), &berth.socket)?;
    let daemons: Vec<&Daemon> = std::iter::once(&berth).chain(reference.as_ref()).collect();
    println!(
        "Dockerfile.example: 27 steps, 4 stages; context {} bytes",
        context.len()
    );
    for d in &daemons {
        let fresh = measure(runs, || api_build(&d.socket, &context, true))?;
        print_row(
            &format!("{}: POST /build fresh", d.name),
            runs,
            &summarize(fresh),
        );
        let cached = measure(runs, || api_build(&d.socket, &context, false))?;
        print_row(
            &format!("{}: POST /build cached", d.name),
            runs,
            &summarize(cached),
        );
    }
    if Command::new("docker").arg("--version").output().is_ok() {
        for d in &daemons {
            let fresh = measure(runs, || cli_build(&d.socket, &ctx, true))?;
            print_row(
                &format!("{}: docker build fresh", d.name),
                runs,
                &summarize(fresh),
            );
            let cached = measure(runs, || cli_build(&d.socket, &ctx, false))?;
            print_row(
                &format!("{}: docker build cached", d.name),
                runs,
                &summarize(cached),
            );
        }
    }
    if reference.is_none() {
        println!("dockerd not installed: no reference rows (apt install docker.io)");
    }
    Ok(())
}
