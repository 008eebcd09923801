//! `berth-bench cli [RUNS]`: what a learner waits for at the prompt, through
//! the real docker CLI: `docker run --rm busybox true` and `docker exec C
//! true`, on a `berth daemon` and on a reference dockerd (when installed),
//! each on private paths. Then exec without the CLI: Berth's runtime
//! in-process beside `runc exec` into a runc container of the same bundle.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::build_bench::{measure, start_berth, start_dockerd};
use super::{print_row, summarize};

/// `docker ARGS` on `socket`, timed; fails unless it exits 0.
pub(crate) fn docker(socket: &Path, args: &[&str]) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let out = Command::new("docker")
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .env("DOCKER_CONFIG", socket.with_file_name("cli-config"))
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    let took = start.elapsed();
    anyhow::ensure!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(took)
}

pub fn run(runs: usize) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new()
        .prefix("berth-bench-cli-")
        .tempdir_in("/var/tmp")?;
    let berth = start_berth(dir.path())?;
    let reference = start_dockerd(dir.path(), &berth.socket)?;
    let mut daemons = vec![("berth", &berth.socket)];
    if let Some(d) = &reference {
        daemons.push(("dockerd 20.10", &d.socket));
    }
    for (name, socket) in &daemons {
        let times = measure(runs, || docker(socket, &["run", "--rm", "busybox", "true"]))?;
        print_row(
            &format!("{name}: docker run --rm busybox true"),
            runs,
            &summarize(times),
        );
    }
    for (name, socket) in &daemons {
        docker(
            socket,
            &["run", "-d", "--name", "target", "busybox", "sleep", "3600"],
        )?;
        let times = measure(runs, || docker(socket, &["exec", "target", "true"]))?;
        print_row(
            &format!("{name}: docker exec target true"),
            runs,
            &summarize(times),
        );
        docker(socket, &["rm", "-f", "target"])?;
    }
    if reference.is_none() {
        println!("dockerd not installed: no reference rows (apt install docker.io)");
    }
    super::exec_in_process(runs)
}
