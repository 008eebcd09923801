//! `berth daemon --socket PATH`: the Engine API for the host, like dockerd.

use std::path::{Path, PathBuf};

use anyhow::Context;
use berth_runtime::container::{Runtime, RuntimeOptions};
use berth_runtime::engine::distribution::{OperatorAuth, RegistrySettings, ScopeRegistry};
use berth_runtime::engine::{self, Engine, Scope};
use berth_runtime::registry::cache::PullCache;
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
    /// Where the classroom registry (`registry.local:5000`) listens.
    #[arg(long, default_value = "127.0.0.1:5000")]
    registry: String,
    /// The scope's namespace on the classroom registry (default: the scope).
    #[arg(long)]
    registry_namespace: Option<String>,
    /// The token the classroom registry grants the namespace to.
    #[arg(long, env = "BERTH_REGISTRY_TOKEN")]
    registry_token: Option<String>,
    #[command(flatten)]
    upstreams: UpstreamArgs,
}

/// How pulls reach upstream registries (`berth serve` and `berth daemon`),
/// flags named as dockerd's.
#[derive(clap::Args)]
pub struct UpstreamArgs {
    /// A registry spoken to over plain HTTP (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST:PORT")]
    insecure_registries: Vec<String>,
    /// Extra registry CAs: DIR/<host[:port]>/ca.crt, as Docker's certs.d.
    #[arg(
        long = "certs-d",
        alias = "registry-certs",
        value_name = "DIR",
        default_value = "/etc/docker/certs.d"
    )]
    registry_certs: PathBuf,
    /// A Docker Hub mirror asked before Docker Hub (repeatable).
    #[arg(long = "registry-mirror", value_name = "URL")]
    registry_mirrors: Vec<String>,
    /// A Docker config.json whose `auths` hold the credentials pulls use
    /// upstream when a learner has not logged in (never shown to learners).
    #[arg(long = "registry-auth", value_name = "FILE")]
    registry_auth: Option<PathBuf>,
    /// Seconds a tag's manifest digest is reused before the upstream is
    /// asked again (0: every pull asks).
    #[arg(
        long = "registry-cache-ttl",
        value_name = "SECONDS",
        default_value_t = 60
    )]
    registry_cache_ttl: u64,
}

impl UpstreamArgs {
    /// Sets these on an engine's registry settings.
    pub fn apply(&self, settings: &mut RegistrySettings) -> anyhow::Result<()> {
        settings
            .insecure
            .extend(self.insecure_registries.iter().cloned());
        settings.certs_dir = self.registry_certs.clone();
        for m in &self.registry_mirrors {
            settings
                .add_mirror(m)
                .map_err(|e| anyhow::anyhow!("--registry-mirror {m}: {e}"))?;
        }
        if let Some(file) = &self.registry_auth {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("read --registry-auth {}", file.display()))?;
            settings.auth = OperatorAuth::from_config(&text)
                .map_err(|e| anyhow::anyhow!("--registry-auth {}: {e}", file.display()))?;
            tracing::info!(
                registries = settings.auth.len(),
                "upstream credentials loaded"
            );
        }
        settings.cache = std::sync::Arc::new(PullCache::new(std::time::Duration::from_secs(
            self.registry_cache_ttl,
        )));
        Ok(())
    }
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
    let result = tokio.block_on(async {
        let listener = engine::bind(&args.socket)
            .with_context(|| format!("listen on {}", args.socket.display()))?;
        tracing::info!(socket = %args.socket.display(), "berth engine listening");
        let engine = Engine::new(runtime.clone());
        engine.set_registry(registry_settings(&args)?);
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
    });
    // A blocking task can outlive the server (a `docker wait` on a container
    // whose start failed never returns): do not wait for it forever.
    tokio.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

fn registry_settings(args: &DaemonArgs) -> anyhow::Result<RegistrySettings> {
    let mut settings = RegistrySettings {
        classroom: args.registry.clone(),
        ..Default::default()
    };
    args.upstreams.apply(&mut settings)?;
    settings.scopes.insert(
        args.scope.clone(),
        ScopeRegistry {
            namespace: args
                .registry_namespace
                .clone()
                .unwrap_or_else(|| args.scope.clone()),
            token: args.registry_token.clone(),
        },
    );
    Ok(settings)
}
