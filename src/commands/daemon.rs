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
    /// Run containers in a user namespace, as dockerd's flag: `default`
    /// (the `dockremap` user, made when missing) or `user[:group]`, with
    /// their ranges in /etc/subuid and /etc/subgid. Without it, container
    /// root is host root, as with dockerd (the classroom's sessions are
    /// always remapped, each to its own range).
    #[arg(long = "userns-remap", value_name = "default|user[:group]")]
    userns_remap: Option<String>,
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
    let fixed_ids = match &args.userns_remap {
        Some(spec) => Some(userns::remap_range(spec, Path::new("/etc"))?),
        None => None,
    };
    let runtime = Runtime::open(
        data,
        RuntimeOptions {
            user_namespaces: fixed_ids.is_some(),
            fixed_ids,
            ..Default::default()
        },
    )?;
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

/// `--userns-remap`: the subordinate id range of a user, as dockerd reads it.
mod userns {
    use std::path::Path;
    use std::process::Command;

    use anyhow::{bail, Context};
    use berth_runtime::container::spec::IdRange;

    /// The user `--userns-remap default` stands for (dockerd's).
    const DEFAULT_USER: &str = "dockremap";
    /// Ids a remapped container needs (root to nobody, 65534).
    const WANTED: u64 = 65536;

    /// The range `spec` (`default` or `user[:group]`) maps containers to,
    /// reading `etc`/passwd, group, subuid, subgid. `default` makes the
    /// `dockremap` user and its ranges when missing, as dockerd does.
    pub fn remap_range(spec: &str, etc: &Path) -> anyhow::Result<IdRange> {
        let (user, group) = match spec {
            "default" => {
                ensure_default_user(etc)?;
                (DEFAULT_USER.to_string(), DEFAULT_USER.to_string())
            }
            other => match other.split_once(':') {
                Some((u, g)) => (u.to_string(), g.to_string()),
                None => (other.to_string(), other.to_string()),
            },
        };
        if user.is_empty() || group.is_empty() {
            bail!("invalid --userns-remap value {spec:?}: want default or user[:group]");
        }
        let uid_name = name_of(&etc.join("passwd"), &user)
            .with_context(|| format!("--userns-remap: no user {user:?}"))?;
        let gid_name = name_of(&etc.join("group"), &group)
            .with_context(|| format!("--userns-remap: no group {group:?}"))?;
        let uids = first_range(&etc.join("subuid"), &uid_name)
            .with_context(|| format!("no subuid ranges found for user {uid_name:?}"))?;
        let gids = first_range(&etc.join("subgid"), &gid_name)
            .with_context(|| format!("no subgid ranges found for group {gid_name:?}"))?;
        // One range serves uids and gids alike in Berth's spec.
        if uids.0 != gids.0 {
            bail!(
                "--userns-remap: berth needs the subuid and subgid ranges to start at the same id ({} in /etc/subuid, {} in /etc/subgid)",
                uids.0,
                gids.0
            );
        }
        let size = uids.1.min(gids.1).min(WANTED);
        if size < WANTED {
            bail!("--userns-remap: the range of {uid_name} holds {size} ids; containers need {WANTED}");
        }
        Ok(IdRange {
            base: u32::try_from(uids.0).context("subordinate id out of range")?,
            size: size as u32,
        })
    }

    /// The name of `who` (a name or a number) in a passwd/group file.
    fn name_of(file: &Path, who: &str) -> Option<String> {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().find_map(|l| {
            let mut f = l.split(':');
            let name = f.next()?;
            let id = f.nth(1)?;
            (name == who || id == who).then(|| name.to_string())
        })
    }

    /// The first `start:count` of `name` in a subuid/subgid file.
    fn first_range(file: &Path, name: &str) -> Option<(u64, u64)> {
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().find_map(|l| {
            let mut f = l.trim().split(':');
            (f.next()? == name).then_some(())?;
            Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
        })
    }

    /// Makes `dockremap` and its subordinate ranges when they are missing.
    fn ensure_default_user(etc: &Path) -> anyhow::Result<()> {
        if name_of(&etc.join("passwd"), DEFAULT_USER).is_none() {
            run(Command::new("useradd").args(["-r", "-s", "/bin/false", DEFAULT_USER]))?;
        }
        let subuid = etc.join("subuid");
        let subgid = etc.join("subgid");
        if first_range(&subuid, DEFAULT_USER).is_none()
            || first_range(&subgid, DEFAULT_USER).is_none()
        {
            // The first free range above every one already handed out.
            let end_of = |file: &Path| -> u64 {
                std::fs::read_to_string(file)
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| {
                        let mut f = l.trim().split(':').skip(1);
                        let start: u64 = f.next()?.parse().ok()?;
                        let count: u64 = f.next()?.parse().ok()?;
                        Some(start + count)
                    })
                    .max()
                    .unwrap_or(0)
            };
            let start = end_of(&subuid).max(end_of(&subgid)).max(100_000);
            let range = format!("{start}-{}", start + WANTED - 1);
            run(Command::new("usermod").args(["-v", &range, "-w", &range, DEFAULT_USER]))?;
        }
        Ok(())
    }

    fn run(cmd: &mut Command) -> anyhow::Result<()> {
        let out = cmd
            .output()
            .with_context(|| format!("run {:?}", cmd.get_program()))?;
        if !out.status.success() {
            bail!(
                "{:?} failed: {}",
                cmd.get_program(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn ranges_come_from_subuid_and_subgid() {
            let etc = tempfile::tempdir().unwrap();
            let w = |n: &str, t: &str| std::fs::write(etc.path().join(n), t).unwrap();
            w(
                "passwd",
                "root:x:0:0::/root:/bin/sh\nann:x:1000:1000::/home/ann:/bin/sh\n",
            );
            w("group", "root:x:0:\nann:x:1000:\n");
            w("subuid", "bob:100000:65536\nann:165536:65536\n");
            w("subgid", "bob:100000:65536\nann:165536:65536\n");
            let r = remap_range("ann", etc.path()).unwrap();
            assert_eq!((r.base, r.size), (165536, 65536));
            assert_eq!(remap_range("1000:1000", etc.path()).unwrap(), r);
            assert!(remap_range("nobody", etc.path()).is_err());
            assert!(remap_range("root", etc.path())
                .unwrap_err()
                .to_string()
                .contains("no subuid ranges found for user \"root\""));
            w("subgid", "ann:200000:65536\n");
            assert!(remap_range("ann", etc.path()).is_err());
        }
    }
}
