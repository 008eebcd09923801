//! `berth daemon --socket PATH`: the Engine API for the host, like dockerd.

use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_runtime::container::{Runtime, RuntimeOptions};
use berth_runtime::engine::{self, Engine, Scope};
use berth_runtime::DataDir;

/// Arguments of `berth daemon`.
#[derive(clap::Args)]
pub struct DaemonArgs {
    /// Where to listen (DOCKER_HOST=unix://PATH).
    #[arg(long, default_value = "/var/run/berth.sock")]
    socket: PathBuf,
    /// The scope the socket serves.
    #[arg(long, default_value = "host")]
    scope: String,
}

/// Serves until SIGINT or SIGTERM. Containers keep running across restarts.
pub fn run(data_dir: &Path, args: DaemonArgs) -> anyhow::Result<()> {
    let data = DataDir::open(data_dir)?;
    let runtime = Runtime::open(data, RuntimeOptions::default())?;
    runtime
        .images()
        .ensure_busybox(&args.scope)
        .context("bootstrap busybox")?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(1024)
        .build()?;
    tokio.block_on(async {
        let listener = engine::bind(&args.socket)
            .with_context(|| format!("listen on {}", args.socket.display()))?;
        tracing::info!(socket = %args.socket.display(), "berth engine listening");
        let engine = Engine::new(runtime.clone());
        let serve = engine.serve(Scope { name: args.scope }, listener);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = serve => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = std::fs::remove_file(&args.socket);
        runtime.shutdown_networks();
        Ok(())
    })
}
