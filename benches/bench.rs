//! Berth's benchmarks: medians over many runs, beside a reference where one
//! exists. Run as root from a release build:
//!
//! ```sh
//! cargo build --release && target/release/berth-bench launch [RUNS]
//! ```
//!
//! `build`: fresh and cached builds of Dockerfile.example beside dockerd's
//! classic builder (see `build_bench.rs`).
//!
//! `cli`: `docker run --rm busybox true` and `docker exec` through the real
//! CLI beside dockerd, and exec in-process beside `runc exec` (`cli_bench.rs`).
//!
//! `registry`: push and pull of a 50 MB image, Berth's registry beside
//! Debian's `docker-registry` (see `registry.rs`).
//!
//! `pull`: 20 concurrent pulls of a 50 MB image through one engine's
//! pull-through cache beside 20 engines pulling for themselves: wall time
//! and upstream bytes (`pull_bench.rs`).
//!
//! `swarm`: service converge and rolling-update times on Berth's one-node
//! swarm beside dockerd's (see `swarm_bench.rs`).
//!
//! `classroom`: see `classroom.rs` (session to prompt, echo, idle memory).
//!
//! `net`: see `net.rs` (start cost of a published port, proxy throughput).
//!
//! `mesh`: requests/s and bulk transfer through the swarm routing mesh
//! beside direct connections to a replica (`mesh_bench.rs`).
//!
//! `sandbox`: what the sandbox's safe paths cost: load and pull of a 50 MB
//! image, `docker run --rm` with and without mounts, beside an earlier
//! binary (`sandbox_bench.rs`).
//!
//! `abuse`: LEARNERS typing while one more session misbehaves in nine ways
//! (`abuse.rs`).
//!
//! `unpack`: `docker load` of a 50 MB image into the store beside the
//! unpacking it replaced (`unpack_bench.rs`).
//!
//! `lessons`: a lesson's Check round trip, failing and passing (`lessons.rs`).
//!
//! `map`: the lab map's latency from an engine event to the SVG in Chromium
//! with 30 containers, and the server's cost per open map while labs churn
//! (`map_bench.rs`).
//!
//! `workshop`: 100 learners, their Presenter tabs and a progress board while
//! the instructor broadcasts 10 kB/s for 60 s: bytes delivered, server
//! memory, pass-to-board delay (`workshop.rs`).
//!
//! `scale`: a front and a runner: placement rate, prompt latency and
//! keystroke echo through the front beside direct to the runner, memory per
//! session on the runner (`scale.rs`).
//!
//! `term`: keystroke → glyph on screen in headless Chromium, Berth's lesson
//! page beside bare xterm.js over a WebSocket echo (`term_bench.rs`).
//! `store`: progress writes/s and read latency of the store with 200
//! learners at once, SQLite beside PostgreSQL (`store_bench.rs`).
//!
//! `launch`: launch-to-exit of `busybox true` plus cleanup, through Berth's
//! runtime in-process, and through `runc run` with an equivalent bundle (the
//! same OCI spec Berth generates: user namespace, Docker's mounts, masked
//! paths, capabilities; with and without Docker's seccomp profile).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

mod abuse;
mod build_bench;
mod cli_bench;
use berth_runtime::container::{seccomp, ContainerConfig, Runtime, RuntimeOptions, WaitCondition};
use berth_runtime::DataDir;

#[path = "classroom.rs"]
mod classroom;
mod lessons;
mod map_bench;
mod mesh_bench;
mod net;
mod pull_bench;
mod registry;
mod sandbox_bench;
mod scale;
mod store_bench;
mod swarm_bench;
mod term_bench;
mod unpack_bench;
mod workshop;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("launch") => launch(args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(100)),
        Some("build") => {
            build_bench::run(args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(20))
        }
        Some("cli") => cli_bench::run(args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(50)),
        Some("swarm") => {
            swarm_bench::run(args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(10))
        }
        Some("swarm3") => swarm_bench::run_nodes(
            &berth_binary()?,
            args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(10),
        ),
        Some("pull") => pull_bench::run(args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(20)),
        Some("registry") => registry::run(args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(5)),
        Some("lessons") => lessons::run(
            &berth_binary()?,
            args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(100),
        ),
        Some("classroom") => classroom::run(
            &berth_binary()?,
            args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(30),
            args.get(2).map(|n| n.parse()).transpose()?.unwrap_or(50),
        ),
        Some("scale") => scale::run(
            &berth_binary()?,
            args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(20),
            args.get(2).map(|n| n.parse()).transpose()?.unwrap_or(20),
        ),
        Some("workshop") => workshop::run(
            &berth_binary()?,
            args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(100),
            args.get(2).map(|n| n.parse()).transpose()?.unwrap_or(60),
            args.get(3).map(|n| n.parse()).transpose()?.unwrap_or(10240),
        ),
        Some("term") => term_bench::run(
            &berth_binary()?,
            args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(200),
        ),
        Some("mesh") => mesh_bench::run(args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(5)),
        Some("abuse") => abuse::run(
            &berth_binary()?,
            args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(30),
            args.get(2).map(|n| n.parse()).transpose()?.unwrap_or(20),
        ),
        Some("sandbox") => sandbox_bench::run(
            args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(10),
            args.get(2).map(PathBuf::from),
        ),
        Some("net") => net::run(args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(100)),
        Some("store") => store_bench::run(
            args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(200),
            args.get(2).map(|n| n.parse()).transpose()?.unwrap_or(25),
        ),
        Some("map") => map_bench::run(
            &berth_binary()?,
            args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(100),
            args.get(2).map(|n| n.parse()).transpose()?.unwrap_or(20),
            args.get(3).map(|n| n.parse()).transpose()?.unwrap_or(20),
        ),
        Some("unpack") => {
            unpack_bench::run(args.get(1).map(|n| n.parse()).transpose()?.unwrap_or(9))
        }
        _ => {
            eprintln!(
                "usage: berth-bench launch|build|cli|registry|net|unpack|swarm|swarm3|lessons [RUNS] | map [RUNS] [MAPS] [SECONDS] | term [KEYS] | pull [PULLS] | sandbox [RUNS] [BEFORE_BINARY] | abuse [LEARNERS] [SECONDS] | mesh [SECONDS] | classroom [RUNS] [IDLE] | workshop [LEARNERS] [SECONDS] [BYTES_PER_SECOND] | store [LEARNERS] [ROUNDS] | scale [RUNS] [IDLE]"
            );
            std::process::exit(2)
        }
    }
}

/// Median and spread of a set of timings.
struct Summary {
    median: Duration,
    p10: Duration,
    p90: Duration,
}

fn summarize(mut times: Vec<Duration>) -> Summary {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    Summary {
        median: at(0.5),
        p10: at(0.1),
        p90: at(0.9),
    }
}

fn print_row(name: &str, runs: usize, s: &Summary) {
    println!(
        "{name:<40} runs={runs:<4} median={:>7.2} ms  p10={:>7.2} ms  p90={:>7.2} ms",
        s.median.as_secs_f64() * 1e3,
        s.p10.as_secs_f64() * 1e3,
        s.p90.as_secs_f64() * 1e3
    );
}

fn berth_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let berth = exe.with_file_name("berth");
    anyhow::ensure!(
        berth.exists(),
        "build the berth binary first ({})",
        berth.display()
    );
    Ok(berth)
}

/// A runtime over a fresh data directory under /var/tmp (removed when the
/// returned directory drops), with busybox in the `bench` scope.
fn bench_runtime(prefix: &str) -> anyhow::Result<(tempfile::TempDir, std::sync::Arc<Runtime>)> {
    let data = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in("/var/tmp")?;
    let runtime = Runtime::open(
        DataDir::open(data.path())?,
        RuntimeOptions {
            init_binary: berth_binary()?,
            ..Default::default()
        },
    )?;
    runtime.images().ensure_busybox("bench")?;
    Ok((data, runtime))
}

fn launch(runs: usize) -> anyhow::Result<()> {
    let (data, runtime) = bench_runtime("berth-bench-")?;
    let config = ContainerConfig {
        image: "busybox".into(),
        cmd: vec!["true".into()],
        // Like the runc bundle: a network namespace with loopback only.
        networking: berth_runtime::net::ContainerNetworking {
            mode: "none".into(),
            ..Default::default()
        },
        ..Default::default()
    };
    let once = || -> anyhow::Result<Duration> {
        let start = Instant::now();
        let c = runtime.create("bench", None, config.clone())?;
        runtime.start(&c, None)?;
        let code = runtime.wait(&c, WaitCondition::NotRunning);
        runtime.remove(&c, false)?;
        anyhow::ensure!(code == 0, "busybox true exited {code}");
        Ok(start.elapsed())
    };
    for _ in 0..5 {
        once()?;
    }
    let times = (0..runs)
        .map(|_| once())
        .collect::<anyhow::Result<Vec<_>>>()?;
    print_row(
        "berth: busybox true (userns, seccomp)",
        runs,
        &summarize(times),
    );

    if Command::new("runc").arg("--version").output().is_ok() {
        let image = runtime.images().resolve("bench", "busybox")?;
        let base = runtime.ids().range("bench")?;
        for with_seccomp in [false, true] {
            let bundle = runc_bundle(data.path(), &config, &image, base, with_seccomp)?;
            let mut n = 0;
            let mut once = || -> anyhow::Result<Duration> {
                n += 1;
                let start = Instant::now();
                let status = Command::new("runc")
                    .args(["run", "--bundle"])
                    .arg(&bundle)
                    .arg(format!("berth-bench-{}-{n}", std::process::id()))
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .status()?;
                anyhow::ensure!(status.success(), "runc run failed: {status}");
                Ok(start.elapsed())
            };
            for _ in 0..5 {
                once()?;
            }
            let times = (0..runs)
                .map(|_| once())
                .collect::<anyhow::Result<Vec<_>>>()?;
            let name = if with_seccomp {
                "runc: same bundle, Docker's seccomp"
            } else {
                "runc: same bundle, no seccomp"
            };
            print_row(name, runs, &summarize(times));
        }
    } else {
        println!("runc not installed: no reference row (apt install runc)");
    }
    Ok(())
}

/// A runc bundle equivalent to what Berth runs: Berth's own spec, over a copy
/// of the busybox layer as a plain rootfs.
fn runc_bundle(
    dir: &Path,
    config: &ContainerConfig,
    image: &berth_runtime::image::Image,
    ids: berth_runtime::container::spec::IdRange,
    with_seccomp: bool,
) -> anyhow::Result<PathBuf> {
    let bundle = dir.join(if with_seccomp {
        "runc-seccomp"
    } else {
        "runc-plain"
    });
    let rootfs = bundle.join("rootfs");
    std::fs::create_dir_all(&bundle)?;
    let status = Command::new("cp")
        .arg("-a")
        .arg(&image.layer_dirs[0])
        .arg(&rootfs)
        .status()?;
    anyhow::ensure!(status.success(), "copy rootfs");
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", ids.base, ids.base))
        .arg(&rootfs)
        .status()?;
    anyhow::ensure!(status.success(), "chown rootfs");
    let mut spec = berth_runtime::container::spec::build(
        config,
        &berth_runtime::container::spec::SpecInputs {
            id: "0123456789abcdef",
            image,
            rootfs: &rootfs,
            ids: Some(ids),
            cgroup_v1_dirs: Vec::new(),
            cgroup_v2: false,
        },
    )?;
    // runc adds the default device nodes itself (bind mounts in a user namespace).
    if let Some(mounts) = spec.mounts_mut() {
        mounts.retain(|m| {
            let dest = m.destination().to_string_lossy();
            !berth_runtime::container::spec::DEVICES
                .iter()
                .any(|d| dest == format!("/dev/{d}"))
        });
    }
    if let Some(linux) = spec.linux_mut() {
        linux.set_cgroups_path(Some(PathBuf::from("/berth-bench/runc")));
        if with_seccomp {
            let caps: Vec<String> = berth_runtime::container::spec::DEFAULT_CAPABILITIES
                .iter()
                .map(|c| format!("CAP_{c}"))
                .collect();
            linux.set_seccomp(Some(seccomp::docker_default(&caps)));
        }
    }
    spec.save(bundle.join("config.json"))
        .context("write config.json")?;
    Ok(bundle)
}

/// Exec of `true` into a running container: Berth's runtime in-process
/// (spawn, join namespaces and cgroup, exec, wait) beside `runc exec` into a
/// detached runc container of the equivalent bundle.
fn exec_in_process(runs: usize) -> anyhow::Result<()> {
    use berth_runtime::container::ExecConfig;
    let (data, runtime) = bench_runtime("berth-bench-exec-")?;
    let config = ContainerConfig {
        image: "busybox".into(),
        cmd: vec!["sleep".into(), "3600".into()],
        ..Default::default()
    };
    let c = runtime.create("bench", None, config.clone())?;
    runtime.start(&c, None)?;
    let exec = ExecConfig {
        cmd: vec!["true".into()],
        ..Default::default()
    };
    let times = build_bench::measure(runs, || {
        let start = Instant::now();
        let mut p = runtime.exec(&c, &exec)?;
        let code = p.wait();
        anyhow::ensure!(code == 0, "exec true exited {code}");
        Ok(start.elapsed())
    })?;
    print_row("berth: exec true (in-process API)", runs, &summarize(times));
    runtime.remove(&c, true)?;

    if Command::new("runc").arg("--version").output().is_err() {
        println!("runc not installed: no reference row (apt install runc)");
        return Ok(());
    }
    let image = runtime.images().resolve("bench", "busybox")?;
    let base = runtime.ids().range("bench")?;
    let bundle = runc_bundle(data.path(), &config, &image, base, true)?;
    let id = format!("berth-bench-exec-{}", std::process::id());
    let status = Command::new("runc")
        .args(["run", "--detach", "--bundle"])
        .arg(&bundle)
        .arg(&id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    anyhow::ensure!(status.success(), "runc run --detach failed: {status}");
    let times = build_bench::measure(runs, || {
        let start = Instant::now();
        let status = Command::new("runc")
            .args(["exec", &id, "true"])
            .stdin(Stdio::null())
            .status()?;
        anyhow::ensure!(status.success(), "runc exec failed: {status}");
        Ok(start.elapsed())
    });
    let _ = Command::new("runc")
        .args(["delete", "--force", &id])
        .status();
    print_row(
        "runc exec true (same bundle, seccomp)",
        runs,
        &summarize(times?),
    );
    Ok(())
}
