//! `berth run`: one container in the foreground, in `docker run` terms.

use std::path::Path;

use anyhow::Context;
use berth_runtime::container::attach::{self, ControlRequest};
use berth_runtime::container::cgroup::Limits;
use berth_runtime::container::{
    ContainerConfig, ContainerError, MountConfig, Runtime, RuntimeOptions, WaitCondition,
};
use berth_runtime::{DataDir, Error};

/// Arguments of `berth run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// Remove the container's files when it exits.
    #[arg(long)]
    rm: bool,
    /// The container's name.
    #[arg(long)]
    name: Option<String>,
    /// The scope whose image references and uid range to use.
    #[arg(long, default_value = "host")]
    scope: String,
    /// Environment variables (KEY=value).
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// User (name|uid[:group|gid]).
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Container host name.
    #[arg(long)]
    hostname: Option<String>,
    /// Overwrite the image's entrypoint.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Memory limit (e.g. 64m).
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Number of CPUs (e.g. 0.5).
    #[arg(long)]
    cpus: Option<f64>,
    /// Maximum number of processes.
    #[arg(long)]
    pids_limit: Option<i64>,
    /// Bind mount (SRC:DST[:ro]) or tmpfs (--tmpfs DST).
    #[arg(short = 'v', long = "volume")]
    volumes: Vec<String>,
    /// A tmpfs mount at this path.
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Keep stdin open and pass ours to the container.
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Share the host's uids instead of a private range (for comparisons).
    #[arg(long)]
    no_userns: bool,
    /// The image.
    image: String,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

/// Parses Docker's memory notation: a number with an optional b, k, m or g.
pub fn parse_bytes(text: &str) -> anyhow::Result<i64> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').filter(|s| !s.is_empty()).unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid size: '{text}'"))?;
    if n < 0.0 {
        anyhow::bail!("invalid size: '{text}'");
    }
    Ok((n * mult as f64) as i64)
}

/// Runs the container; returns the exit code to exit with.
pub fn run(data_dir: &Path, args: RunArgs) -> anyhow::Result<i32> {
    let mut limits = Limits::default();
    if let Some(m) = &args.memory {
        limits.memory = Some(parse_bytes(m)?);
    }
    if let Some(cpus) = args.cpus {
        if cpus <= 0.0 {
            anyhow::bail!("invalid argument \"{cpus}\" for \"--cpus\" flag: range of CPUs is from 0.01 to the number of CPUs");
        }
        limits.cpu_period = Some(100_000);
        limits.cpu_quota = Some((cpus * 100_000.0) as i64);
    }
    limits.pids = args.pids_limit;
    let mut mounts = Vec::new();
    for v in &args.volumes {
        let parts: Vec<&str> = v.split(':').collect();
        let (source, target, read_only) = match parts.as_slice() {
            [s, t] => (s, t, false),
            [s, t, "ro"] => (s, t, true),
            [s, t, "rw"] => (s, t, false),
            _ => anyhow::bail!("invalid volume specification: '{v}'"),
        };
        mounts.push(MountConfig::Bind {
            source: std::fs::canonicalize(source)
                .with_context(|| format!("bind source path does not exist: {source}"))?,
            target: target.to_string(),
            read_only,
        });
    }
    for t in &args.tmpfs {
        mounts.push(MountConfig::Tmpfs {
            target: t.clone(),
            size_bytes: None,
        });
    }
    let config = ContainerConfig {
        // `berth run` is a one-shot runner: loopback only, no bridge left
        // behind on the host (networks are the Engine API's business).
        networking: berth_runtime::net::ContainerNetworking {
            mode: "none".into(),
            ..Default::default()
        },
        image: args.image,
        cmd: args.command,
        entrypoint: args.entrypoint.map(|e| vec![e]),
        env: args.env,
        workdir: args.workdir,
        user: args.user,
        hostname: args.hostname,
        limits,
        mounts,
        open_stdin: args.interactive,
        ..Default::default()
    };
    let data = DataDir::open(data_dir)?;
    let runtime = Runtime::open(
        data,
        RuntimeOptions {
            user_namespaces: !args.no_userns,
            ..Default::default()
        },
    )?;
    runtime
        .images()
        .ensure_busybox(&args.scope)
        .context("bootstrap busybox")?;
    let attach = ControlRequest::Attach {
        stdin: args.interactive,
        stdout: true,
        stderr: true,
        close_stdin: true,
    };
    let container = match runtime.create(&args.scope, args.name.as_deref(), config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("berth: {e}");
            return Ok(125);
        }
    };
    let started = runtime.start(&container, Some(attach));
    let code = match started {
        Ok(stream) => {
            if let Some(stream) = stream {
                pump(stream, args.interactive)?;
            }
            let code = runtime.wait(&container, WaitCondition::NotRunning);
            if container.snapshot().state.oom_killed {
                eprintln!("berth: container was killed: out of memory (OOMKilled)");
            }
            code
        }
        Err(Error::Container(ContainerError::Start { message, exit_code })) => {
            eprintln!("berth: {message}");
            exit_code
        }
        Err(e) => {
            eprintln!("berth: {e}");
            125
        }
    };
    if args.rm {
        runtime.remove(&container, true)?;
    }
    Ok(code)
}

/// Copies our stdin into the container (when interactive) and its framed
/// output to our stdout and stderr, until the container's output ends.
fn pump(stream: std::os::unix::net::UnixStream, interactive: bool) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    if interactive {
        let mut to_container = stream.try_clone()?;
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut to_container);
            let _ = to_container.shutdown(std::net::Shutdown::Write);
        });
    } else {
        stream.shutdown(std::net::Shutdown::Write)?;
    }
    let mut from_container = stream;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending = Vec::new();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    loop {
        let n = match from_container.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        pending.extend_from_slice(&buf[..n]);
        for (stream, data) in attach::split_frames(&mut pending) {
            if stream == attach::STDERR {
                err.write_all(&data)?;
            } else {
                out.write_all(&data)?;
                out.flush()?;
            }
        }
    }
    Ok(())
}
