//! `berth serve`: the classroom — web server, embedded engine with the
//! sessions' nodes, the built-in registry.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use berth_runtime::container::{Runtime, RuntimeOptions};
use berth_runtime::engine::Engine;
use berth_runtime::session::{sweep, SessionLimits, Sessions};
use berth_runtime::DataDir;
use berth_server::store::Store;
use berth_server::{Classroom, ClassroomConfig};

/// Arguments of `berth serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address the classroom listens on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The public URL of the classroom (for resume links), e.g. https://class.example.org.
    #[arg(long)]
    base_url: Option<String>,
    /// TLS certificate (PEM); with --tls-key the classroom serves HTTPS.
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Live sessions at most; past it learners see "the classroom is full".
    #[arg(long, default_value_t = 50)]
    max_sessions: usize,
    /// Containers one session may hold (running or not).
    #[arg(long, default_value_t = 200)]
    max_containers_per_session: usize,
    /// API requests one session's nodes may have handled at once.
    #[arg(long, default_value_t = 32)]
    max_requests_per_session: usize,
    /// Labs kept ready so a prompt appears at once.
    #[arg(long, default_value_t = 0)]
    prewarm: usize,
    /// A session without typing for this long ends (e.g. 30m).
    #[arg(long, default_value = "30m", value_parser = humantime::parse_duration)]
    idle_timeout: Duration,
    /// A session ends this long after it began (e.g. 4h).
    #[arg(long, default_value = "4h", value_parser = humantime::parse_duration)]
    max_lifetime: Duration,
    /// New sessions one client address may start per minute.
    #[arg(long, default_value_t = 10)]
    sessions_per_minute: u32,
    /// Nodes per session.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
    /// Memory per session (labs and their containers), MiB.
    #[arg(long, default_value_t = 512)]
    session_memory_mb: i64,
    /// Processes per session.
    #[arg(long, default_value_t = 512)]
    session_pids: i64,
    /// CPUs per session.
    #[arg(long, default_value_t = 1.0)]
    session_cpus: f64,
    /// Disk per session, MiB: the size of each session's own filesystem
    /// (writable layers, volumes, logs, build scratch) and the budget its
    /// images and registry pushes count against too.
    #[arg(long, default_value_t = 2048)]
    session_disk_mb: u64,
    /// Where the classroom registry listens; every lab reaches it as
    /// `registry.local:5000`, each session in its own namespace.
    #[arg(long, default_value = "127.0.0.1:5000")]
    registry_listen: SocketAddr,
    /// A registry (`host:port`) sessions may reach even though it is on
    /// the host itself or link-local, which they may not otherwise;
    /// repeatable.
    #[arg(long = "allow-registry", value_name = "HOST:PORT")]
    allow_registry: Vec<String>,
    #[command(flatten)]
    upstreams: super::daemon::UpstreamArgs,
    /// Directory of the lessons (reloaded when a file changes).
    #[arg(long, default_value = "lessons")]
    lessons: PathBuf,
    /// Address of the app preview (a second origin serving learners' published ports); "off" disables it.
    #[arg(long, default_value = "127.0.0.1:8081")]
    preview_listen: String,
    /// The instructors' admin token (makes instructor accounts, runs any
    /// workshop); a random one is made and printed when not given.
    #[arg(long, env = "BERTH_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Directory of image packs (`docker save` tars, e.g. from `berth image
    /// pack`) loaded into the classroom's shared images at start, every
    /// session then has them; repeatable. Default: /var/cache/berth/images
    /// (the Debian base images scripts/setup.sh builds) when the data
    /// directory is the default one; "none" loads nothing.
    #[arg(long = "images", value_name = "DIR")]
    images: Vec<PathBuf>,
    /// The progress store: a PostgreSQL URL
    /// (postgres://user:password@host:port/db) shared by the classroom's
    /// servers; without it, SQLite in the data directory (berth.db).
    #[arg(
        long,
        value_name = "URL",
        env = "BERTH_DATABASE",
        hide_env_values = true
    )]
    database: Option<String>,
    /// Runners (`http://host:port`, comma-separated) that hold the labs:
    /// this process becomes their front (pages, lessons, grading,
    /// workshops, progress) and places each new session on one.
    #[arg(long, value_delimiter = ',', value_name = "URL")]
    runners: Vec<String>,
    /// File holding the secret front and runners share (16+ characters).
    #[arg(long, value_name = "FILE")]
    runner_secret_file: Option<PathBuf>,
    /// Where the classroom registry keeps its blobs and tags (default: the
    /// data directory's `registry`); runners of one classroom share it
    /// (shared storage), so what one learner pushes another pulls.
    #[arg(long, value_name = "DIR")]
    registry_dir: Option<PathBuf>,
}

/// What this process is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `berth serve`: the classroom (with `--runners`, their front).
    Classroom,
    /// `berth runner`: the engine and the labs, for a front.
    Runner,
}

/// Loads every pack of the `--images` directories into the classroom's
/// shared scope; a pack that fails is reported and skipped, so one broken
/// file does not keep the class from starting.
fn load_packs(engine: &Engine, data_dir: &Path, dirs: &[PathBuf]) {
    let dirs: Vec<PathBuf> = if dirs.is_empty() {
        if data_dir == Path::new(berth_runtime::datadir::DEFAULT_DATA_DIR) {
            vec![PathBuf::from(berth_runtime::image::DEFAULT_PACK_DIR)]
        } else {
            Vec::new()
        }
    } else {
        dirs.iter()
            .filter(|d| d.as_os_str() != "none")
            .cloned()
            .collect()
    };
    let images = engine.runtime.images();
    for dir in dirs {
        let files = match berth_runtime::image::pack_files(&dir) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("images: {}: {e}", dir.display());
                continue;
            }
        };
        for file in files {
            let started = std::time::Instant::now();
            match images.load_pack(berth_runtime::session::BASE_SCOPE, &file) {
                Ok(load) => eprintln!(
                    "images: {} {} from {} ({:.1} s)",
                    if load.present { "present:" } else { "loaded" },
                    load.names.join(", "),
                    file.display(),
                    started.elapsed().as_secs_f64()
                ),
                Err(e) => eprintln!("images: {}: {e} (skipped)", file.display()),
            }
        }
    }
}

/// The classroom registry: tokens only (each session's nodes are granted
/// their namespace as they are made), served beside the web server.
async fn start_registry(
    engine: &Arc<Engine>,
    listen: SocketAddr,
    allowed: &[String],
    dir: Option<&Path>,
) -> anyhow::Result<()> {
    use berth_runtime::registry::{Access, Server};
    let root = dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| engine.runtime.data_dir().root().join("registry"));
    let server = Server::open(&root, Access::Tokens(Default::default()))
        .with_context(|| format!("open the registry in {}", root.display()))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen} (the classroom registry)"))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "classroom registry listening (registry.local:5000 in labs)");
    let serving = server.clone();
    tokio::spawn(async move {
        if let Err(e) = serving.serve(listener).await {
            tracing::error!(error = %e, "classroom registry stopped");
        }
    });
    let _ = engine.classroom_registry.set(server);
    let mut settings = engine.registry_settings();
    settings.classroom = addr.to_string();
    // Sessions' pulls, pushes and logins never reach the host's own
    // services (the classroom registry is reached by its name only).
    settings.egress = Some(Arc::new(berth_runtime::net::egress::Egress::new(
        allowed.iter().cloned(),
    )));
    engine.set_registry(settings);
    Ok(())
}

/// The admin token given, or a new random one, printed for the operator.
fn admin_token(given: Option<String>) -> String {
    match given.filter(|t| !t.trim().is_empty()) {
        Some(t) => t,
        None => {
            let t = berth_server::classroom::random_hex(16);
            println!("berth: instructor admin token (use it at /instructor): {t}");
            t
        }
    }
}

/// Where the classroom listens.
enum Listening {
    Plain(tokio::net::TcpListener),
    Tls(std::net::TcpListener, PathBuf, PathBuf),
}

/// Serves until SIGINT or SIGTERM, then ends every session.
pub fn run(data_dir: &Path, args: ServeArgs, role: Role) -> anyhow::Result<()> {
    let secret = match &args.runner_secret_file {
        Some(f) => Some(berth_server::runner::auth::Secret::read(f)?),
        None => None,
    };
    if role == Role::Runner && secret.is_none() {
        anyhow::bail!("berth runner needs --runner-secret-file (the secret its front holds)");
    }
    if !args.runners.is_empty() && secret.is_none() {
        anyhow::bail!("--runners needs --runner-secret-file (the secret the runners hold)");
    }
    let data = DataDir::open(data_dir)?;
    let db = data.root().join("berth.db");
    let runtime = Runtime::open(data, RuntimeOptions::default())?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(1024)
        .build()?;
    let result = tokio.block_on(async move {
        // Learners see Docker-like paths, never the host's data directory.
        berth_runtime::engine::paths::hide_host_paths();
        // The store first: an unreachable database fails the start at once.
        let store = match &args.database {
            Some(url) => Store::open_url(Some(url), &db)?,
            None => Store::open(&db).with_context(|| format!("open {}", db.display()))?,
        };
        tracing::info!(database = %store.describe(), "progress store open");
        // A front finds its sessions again on the runners; a classroom of
        // its own lost its labs with the last process.
        if args.runners.is_empty() {
            store.end_all_open("server restarted")?;
        }
        let engine = Engine::new(runtime);
        let _ = engine.limits.set(berth_runtime::engine::ScopeLimits {
            containers: args.max_containers_per_session.max(1),
            requests: args.max_requests_per_session.max(1),
        });
        // A front holds no labs: no registry, no lab image, no packs, no
        // sweep (its runners do all that), and it needs no privileges.
        let front = !args.runners.is_empty();
        if !front {
            start_registry(
                &engine,
                args.registry_listen,
                &args.allow_registry,
                args.registry_dir.as_deref(),
            )
            .await?;
        }
        let mut settings = engine.registry_settings();
        args.upstreams.apply(&mut settings)?;
        engine.set_registry(settings);
        if !front {
            let swept = sweep::sweep(&engine);
            if swept > 0 {
                tracing::info!(sessions = swept, "removed sessions left by a previous run");
            }
            engine
                .runtime
                .images()
                .prepare_lab()
                .context("prepare the lab image")?;
        }
        if !front {
            let engine = engine.clone();
            let dirs = args.images.clone();
            let data_dir = data_dir.to_path_buf();
            tokio::task::spawn_blocking(move || load_packs(&engine, &data_dir, &dirs)).await?;
        }
        let limits = SessionLimits {
            memory_bytes: args.session_memory_mb << 20,
            pids: args.session_pids,
            cpus: args.session_cpus,
            disk_bytes: args.session_disk_mb << 20,
        };
        let sessions = Arc::new(Sessions::new(
            engine.clone(),
            tokio::runtime::Handle::current(),
            limits,
        ));
        let config = ClassroomConfig {
            listen: args.listen,
            base_url: args.base_url.clone(),
            tls: args.tls_cert.clone().zip(args.tls_key.clone()),
            max_sessions: args.max_sessions,
            pool: args.prewarm,
            idle_timeout: args.idle_timeout,
            max_lifetime: args.max_lifetime,
            sessions_per_minute: args.sessions_per_minute,
            nodes: args.nodes,
            limits,
            lessons: args.lessons.clone(),
            preview_listen: None,
            admin_token: Some(admin_token(args.admin_token.clone())),
            ..ClassroomConfig::default()
        };
        let preview = match args.preview_listen.as_str() {
            "off" | "" => None,
            addr => match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => Some(l),
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "the app preview cannot listen: serving without it");
                    None
                }
            },
        };
        let mut config = config;
        config.preview_listen = preview.as_ref().and_then(|l| l.local_addr().ok());
        let classroom = Classroom::new(config, sessions, store);
        if let (false, Some(secret)) = (args.runners.is_empty(), secret.clone()) {
            let pool = berth_server::runner::RunnerPool::new(&args.runners, secret);
            let _ = classroom.runners.set(pool);
            tokio::spawn(classroom.clone().watch_runners());
        }
        classroom.clone().refill();
        tokio::spawn(classroom.clone().reap_forever());
        if role == Role::Runner {
            let secret = secret.clone().expect("checked above");
            return serve_runner(classroom, args.listen, secret).await;
        }

        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stop_rx.await;
        };
        // Bind before serving, so a taken address ends `berth serve` with
        // its error instead of leaving it running without a listener.
        let listening = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let listener = std::net::TcpListener::bind(args.listen)
                    .with_context(|| format!("listen on {}", args.listen))?;
                listener.set_nonblocking(true)?;
                Listening::Tls(listener, cert.clone(), key.clone())
            }
            _ => Listening::Plain(
                tokio::net::TcpListener::bind(args.listen)
                    .await
                    .with_context(|| format!("listen on {}", args.listen))?,
            ),
        };
        let serving = {
            let classroom = classroom.clone();
            async move {
                match listening {
                    Listening::Tls(listener, cert, key) => {
                        tracing::info!(url = %format!("https://{}", args.listen), "berth classroom listening");
                        berth_server::run_tls(listener, classroom, &cert, &key, shutdown).await?;
                    }
                    Listening::Plain(listener) => {
                        tracing::info!(url = %format!("http://{}", listener.local_addr()?), "berth classroom listening");
                        berth_server::run(listener, classroom, shutdown).await?;
                    }
                }
                anyhow::Ok(())
            }
        };
        let mut server = tokio::spawn(serving);
        let (preview_stop, preview_rx) = tokio::sync::oneshot::channel::<()>();
        if let Some(listener) = preview {
            tracing::info!(url = %format!("http://{}", listener.local_addr()?), "berth app preview listening");
            let c = classroom.clone();
            tokio::spawn(async move {
                let stop = async move {
                    let _ = preview_rx.await;
                };
                if let Err(e) = berth_server::preview::run(listener, c, stop).await {
                    tracing::error!(error = %e, "the app preview stopped");
                }
            });
        }
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
            ended = &mut server => {
                // The classroom stopped serving on its own: end, saying why.
                let why = match ended {
                    Ok(Ok(())) => "the classroom server ended".to_string(),
                    Ok(Err(e)) => format!("{e:#}"),
                    Err(e) => e.to_string(),
                };
                tracing::error!(error = %why, "the classroom stopped serving");
                classroom.shutdown().await;
                anyhow::bail!("the classroom stopped serving: {why}");
            }
        }
        tracing::info!("stopping: ending every session");
        let _ = stop_tx.send(());
        let _ = preview_stop.send(());
        classroom.shutdown().await;
        let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
        anyhow::Ok(())
    });
    // A blocking task can outlive the server (a `docker wait` on a container
    // whose start failed never returns): do not wait for it forever.
    tokio.shutdown_timeout(std::time::Duration::from_secs(5));
    result
}

/// `berth runner`: the runner API on `listen` until SIGINT or SIGTERM, then
/// every lab ends.
async fn serve_runner(
    classroom: Arc<Classroom>,
    listen: SocketAddr,
    secret: berth_server::runner::auth::Secret,
) -> anyhow::Result<()> {
    use axum::serve::ListenerExt;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listen on {listen}"))?
        .tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
    tracing::info!(%listen, "berth runner listening");
    let app = berth_server::runner::api::router(classroom.clone(), secret);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let stop = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await?;
    tracing::info!("stopping: ending every lab");
    classroom.shutdown().await;
    Ok(())
}
