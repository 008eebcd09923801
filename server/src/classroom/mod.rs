//! The live classroom: learners' sessions with their labs and terminals,
//! the pool of pre-warmed labs, capacity, timeouts and the reaper.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use berth_runtime::session::{Session, Sessions};
use futures_util::future::BoxFuture;

use crate::config::ClassroomConfig;
use crate::ratelimit::RateLimiter;
use crate::runner::RunnerPool;
use crate::store::Store;
use crate::terminal::socket::Activity;
use crate::terminal::Terminal;

/// Rows and columns a shell starts with (the browser resizes at once).
const START_SIZE: (u16, u16) = (24, 80);

/// Why a session could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClassroomError {
    #[error("the classroom is full")]
    Full { retry_after: u64 },
    #[error("too many new sessions from this address")]
    RateLimited { retry_after: u64 },
    #[error("making the lab failed: {0}")]
    Lab(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// A session's running part: the runtime session and a terminal per node.
pub struct Lab {
    pub session: Session,
    pub terminals: HashMap<String, Mutex<Arc<Terminal>>>,
}

impl Lab {
    /// The current terminal of `node`.
    pub fn terminal(&self, node: &str) -> Option<Arc<Terminal>> {
        self.terminals
            .get(node)
            .map(|t| t.lock().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

/// Where a session's lab lives when a runner holds it (see [`crate::runner`]).
#[derive(Debug, Clone)]
pub struct Remote {
    /// The runner's index in the pool.
    pub runner: usize,
    /// The runner's ID of the lab (a reset makes a new one).
    pub id: String,
    /// The lab's nodes, `node1` first.
    pub nodes: Vec<String>,
}

/// What a learner whose runner died is told.
pub const LOST: &str =
    "your lab was lost (its runner stopped answering); your progress is kept: start again";

/// One learner's session.
pub struct LiveSession {
    /// Public ID (the first lab's runtime session ID).
    pub id: String,
    /// The secret in the cookie and the resume link.
    pub token: String,
    pub learner: i64,
    pub name: Mutex<Option<String>>,
    pub started: Instant,
    last_active: Mutex<Instant>,
    /// `None` while the lab is being reset.
    lab: Mutex<Option<Arc<Lab>>>,
    /// Why the lab is frozen (over its disk quota), if it is.
    pub frozen: Mutex<Option<String>>,
    /// Held while the lab changes (nodes added, reset), one change at a time.
    changing: tokio::sync::Mutex<()>,
    /// The runner holding the lab, on a front.
    remote: Mutex<Option<Remote>>,
    /// Why the lab is gone while the session stays (its runner died).
    lost: Mutex<Option<String>>,
}

impl LiveSession {
    pub fn lab(&self) -> Option<Arc<Lab>> {
        self.lab.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The runner holding the lab, on a front.
    pub fn remote(&self) -> Option<Remote> {
        self.remote
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Why the lab is gone, when its runner died.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The lab's node names, wherever it runs.
    pub fn node_names(&self) -> Vec<String> {
        if let Some(r) = self.remote() {
            return r.nodes;
        }
        self.lab()
            .map(|l| l.session.nodes.iter().map(|n| n.name.clone()).collect())
            .unwrap_or_default()
    }

    fn new(id: String, token: String, learner: i64, name: Option<String>) -> Self {
        Self {
            id,
            token,
            learner,
            name: Mutex::new(name),
            started: Instant::now(),
            last_active: Mutex::new(Instant::now()),
            lab: Mutex::new(None),
            frozen: Mutex::new(None),
            changing: tokio::sync::Mutex::new(()),
            remote: Mutex::new(None),
            lost: Mutex::new(None),
        }
    }

    pub fn touch(&self) {
        *self.last_active.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// Seconds until the idle timeout and the lifetime end, whichever first,
    /// and which one it is.
    pub fn remaining(&self, config: &ClassroomConfig) -> (Duration, &'static str) {
        let now = Instant::now();
        let idle_at =
            *self.last_active.lock().unwrap_or_else(|p| p.into_inner()) + config.idle_timeout;
        let life_at = self.started + config.max_lifetime;
        if idle_at <= life_at {
            (idle_at.saturating_duration_since(now), "idle")
        } else {
            (life_at.saturating_duration_since(now), "lifetime")
        }
    }
}

/// What runs after a lab reset: given the classroom, the session and the
/// ID of the runtime session it replaced (the lessons re-run their setup).
pub type ResetHook =
    Box<dyn Fn(Arc<Classroom>, Arc<LiveSession>, String) -> BoxFuture<'static, ()> + Send + Sync>;

/// The classroom's state, shared by every request.
pub struct Classroom {
    pub config: ClassroomConfig,
    pub sessions: Arc<Sessions>,
    pub store: Store,
    live: Mutex<HashMap<String, Arc<LiveSession>>>,
    creating: AtomicUsize,
    pool: Mutex<Vec<Arc<Lab>>>,
    pool_filling: AtomicUsize,
    /// Labs a workshop about to start wants ready (beyond `config.pool`).
    workshop_pool: AtomicUsize,
    limiter: RateLimiter,
    /// Set once by the lessons (see [`ResetHook`]).
    pub after_reset: std::sync::OnceLock<ResetHook>,
    /// The lab maps being watched (see [`crate::map`]).
    pub maps: Arc<crate::map::Maps>,
    /// Set on a front: the runners that hold the labs (none: the labs are
    /// this process's own).
    pub runners: std::sync::OnceLock<Arc<RunnerPool>>,
}

impl Classroom {
    pub fn new(config: ClassroomConfig, sessions: Arc<Sessions>, store: Store) -> Arc<Self> {
        Arc::new(Self {
            limiter: RateLimiter::new(config.sessions_per_minute),
            maps: crate::map::Maps::new(sessions.engine.clone()),
            config,
            sessions,
            store,
            live: Mutex::new(HashMap::new()),
            creating: AtomicUsize::new(0),
            pool: Mutex::new(Vec::new()),
            pool_filling: AtomicUsize::new(0),
            after_reset: std::sync::OnceLock::new(),
            workshop_pool: AtomicUsize::new(0),
            runners: std::sync::OnceLock::new(),
        })
    }

    /// The session whose ID is `id`.
    pub fn by_id(&self, id: &str) -> Option<Arc<LiveSession>> {
        self.live().values().find(|s| s.id == id).cloned()
    }

    /// Every live session.
    pub fn all(&self) -> Vec<Arc<LiveSession>> {
        self.live().values().cloned().collect()
    }

    fn live(&self) -> MutexGuard<'_, HashMap<String, Arc<LiveSession>>> {
        self.live.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The session whose token is `token`.
    pub fn by_token(&self, token: &str) -> Option<Arc<LiveSession>> {
        self.live().get(token).cloned()
    }

    /// Live sessions.
    pub fn count(&self) -> usize {
        self.live().len()
    }

    /// Labs waiting in the pool.
    pub fn pooled(&self) -> usize {
        self.pool.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Makes a lab: the runtime session and a shell per node.
    async fn make_lab(&self) -> Result<Arc<Lab>, ClassroomError> {
        let sessions = self.sessions.clone();
        let nodes = self.config.nodes;
        let made = tokio::task::spawn_blocking(move || {
            let session = sessions.create(nodes).map_err(|e| e.to_string())?;
            let mut shells = Vec::new();
            for n in &session.nodes {
                match n.open_shell(&sessions, START_SIZE.0, START_SIZE.1) {
                    Ok(p) => shells.push((n.name.clone(), p)),
                    Err(e) => {
                        sessions.destroy(&session);
                        return Err(e.to_string());
                    }
                }
            }
            Ok((session, shells))
        })
        .await
        .map_err(|e| ClassroomError::Lab(e.to_string()))?
        .map_err(ClassroomError::Lab)?;
        let (session, shells) = made;
        let mut terminals = HashMap::new();
        for (name, process) in shells {
            match Terminal::spawn(&name, process) {
                Ok(t) => {
                    terminals.insert(name, Mutex::new(t));
                }
                Err(e) => {
                    self.discard(Lab { session, terminals });
                    return Err(ClassroomError::Lab(e.to_string()));
                }
            }
        }
        Ok(Arc::new(Lab { session, terminals }))
    }

    /// Tears a lab down in the background.
    fn discard(&self, lab: Lab) {
        let sessions = self.sessions.clone();
        tokio::task::spawn_blocking(move || {
            sessions.destroy(&lab.session);
        });
    }

    async fn discard_arc(&self, lab: Arc<Lab>) {
        let sessions = self.sessions.clone();
        let _ = tokio::task::spawn_blocking(move || {
            sessions.destroy(&lab.session);
        })
        .await;
    }

    /// A lab from the pool, or a new one.
    async fn take_lab(self: &Arc<Self>) -> Result<Arc<Lab>, ClassroomError> {
        let pooled = self.pool.lock().unwrap_or_else(|p| p.into_inner()).pop();
        self.clone().refill();
        match pooled {
            Some(lab) => Ok(lab),
            None => self.make_lab().await,
        }
    }

    /// Starts a session for a client at `client` (rate-limited, capacity
    /// checked); `name` is the learner's optional display name.
    pub async fn start(
        self: &Arc<Self>,
        client: std::net::IpAddr,
        name: Option<String>,
    ) -> Result<Arc<LiveSession>, ClassroomError> {
        self.limiter
            .take(client)
            .map_err(|retry_after| ClassroomError::RateLimited { retry_after })?;
        self.admit(name).await
    }

    /// Starts a session without the per-address rate limit (capacity still
    /// checked): a workshop's join code already vouches for the learner, and
    /// a room behind one NAT address must not be throttled to ten a minute.
    pub async fn admit(
        self: &Arc<Self>,
        name: Option<String>,
    ) -> Result<Arc<LiveSession>, ClassroomError> {
        let reserved = self.creating.fetch_add(1, Ordering::SeqCst);
        let _slot = Reservation(&self.creating);
        if self.count() + reserved >= self.config.max_sessions {
            return Err(ClassroomError::Full {
                retry_after: self.config.retry_after,
            });
        }
        let name = name
            .map(|n| n.trim().chars().take(60).collect::<String>())
            .filter(|n| !n.is_empty());
        if let Some(pool) = self.runners.get() {
            return self.admit_remote(pool, name).await;
        }
        let lab = self.take_lab().await?;
        let token = random_hex(16);
        let learner = self.store.add_learner(&token, name.as_deref())?;
        let nodes: Vec<(String, String)> = lab
            .session
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.scope.clone()))
            .collect();
        self.store
            .session_started(&lab.session.id, learner.id, &nodes)?;
        let live = Arc::new(LiveSession::new(
            lab.session.id.clone(),
            token.clone(),
            learner.id,
            name,
        ));
        *live.lab.lock().unwrap_or_else(|p| p.into_inner()) = Some(lab);
        self.live().insert(token, live.clone());
        tracing::info!(session = %live.id, "session started");
        Ok(live)
    }

    /// Replaces the session's lab with a fresh one.
    pub async fn reset(self: &Arc<Self>, live: &Arc<LiveSession>) -> Result<(), ClassroomError> {
        if let Some(pool) = self.runners.get() {
            return self.reset_remote(pool, live).await;
        }
        let changing = live.changing.lock().await;
        let old = live.lab.lock().unwrap_or_else(|p| p.into_inner()).take();
        let old_id = old.as_ref().map(|l| l.session.id.clone());
        if let Some(old) = old {
            let _ = self.store.session_ended(&old.session.id, "reset");
            self.discard_arc(old).await;
        }
        let lab = self.take_lab().await?;
        let nodes: Vec<(String, String)> = lab
            .session
            .nodes
            .iter()
            .map(|n| (n.name.clone(), n.scope.clone()))
            .collect();
        self.store
            .session_started(&lab.session.id, live.learner, &nodes)?;
        *live.lab.lock().unwrap_or_else(|p| p.into_inner()) = Some(lab);
        *live.frozen.lock().unwrap_or_else(|p| p.into_inner()) = None;
        live.touch();
        drop(changing);
        if let (Some(hook), Some(old_id)) = (self.after_reset.get(), old_id) {
            hook(self.clone(), live.clone(), old_id).await;
        }
        Ok(())
    }

    /// Gives the session's lab at least `count` nodes (`node1` … `nodeN`),
    /// each with its shell, adding the missing ones to the running session;
    /// the lab as it is afterwards.
    pub async fn ensure_nodes(
        self: &Arc<Self>,
        live: &Arc<LiveSession>,
        count: usize,
    ) -> Result<Arc<Lab>, ClassroomError> {
        let _changing = live.changing.lock().await;
        let lab = live
            .lab()
            .ok_or_else(|| ClassroomError::Lab("the lab is being reset".into()))?;
        let have = lab.session.nodes.len();
        if have >= count {
            return Ok(lab);
        }
        let names: Vec<String> = (have + 1..=count).map(|i| format!("node{i}")).collect();
        let sessions = self.sessions.clone();
        let l = lab.clone();
        let (made, failed) = tokio::task::spawn_blocking(move || {
            let mut made = Vec::new();
            for name in names {
                let added = sessions.add_node(&l.session, &name).and_then(|n| {
                    let shell = n.open_shell(&sessions, START_SIZE.0, START_SIZE.1)?;
                    Ok((n, shell))
                });
                match added {
                    Ok(pair) => made.push(pair),
                    Err(e) => return (made, Some(e.to_string())),
                }
            }
            (made, None)
        })
        .await
        .map_err(|e| ClassroomError::Lab(e.to_string()))?;
        let mut nodes = lab.session.nodes.clone();
        let mut terminals: HashMap<String, Mutex<Arc<Terminal>>> = lab
            .terminals
            .iter()
            .map(|(k, t)| {
                (
                    k.clone(),
                    Mutex::new(t.lock().unwrap_or_else(|p| p.into_inner()).clone()),
                )
            })
            .collect();
        let mut failed = failed;
        for (node, shell) in made {
            let _ = self
                .store
                .node_added(&lab.session.id, &node.name, &node.scope);
            match Terminal::spawn(&node.name, shell) {
                Ok(t) => {
                    terminals.insert(node.name.clone(), Mutex::new(t));
                }
                Err(e) => failed = Some(e.to_string()),
            }
            nodes.push(node);
        }
        let grown = Arc::new(Lab {
            session: Session {
                id: lab.session.id.clone(),
                dir: lab.session.dir.clone(),
                nodes,
                limits: lab.session.limits,
            },
            terminals,
        });
        // The new nodes join the session network; every lab's /etc/hosts
        // names them all.
        let (sessions, g) = (self.sessions.clone(), grown.clone());
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || sessions.connect(&g.session)).await
        {
            failed.get_or_insert(e.to_string());
        }
        *live.lab.lock().unwrap_or_else(|p| p.into_inner()) = Some(grown.clone());
        tracing::info!(session = %live.id, nodes = grown.session.nodes.len(), "nodes added");
        match failed {
            Some(e) => Err(ClassroomError::Lab(format!("adding a node failed: {e}"))),
            None => Ok(grown),
        }
    }

    /// Ends a session now (`reason` is stored).
    pub async fn end(self: &Arc<Self>, live: &Arc<LiveSession>, reason: &str) {
        self.live().remove(&live.token);
        if let Some(pool) = self.runners.get() {
            let remote = live.remote.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some(r) = remote {
                let _ = self.store.session_ended(&r.id, reason);
                if let Err(e) = pool.end(r.runner, &r.id).await {
                    tracing::warn!(session = %live.id, error = %e, "ending a lab on its runner failed");
                }
            }
            tracing::info!(session = %live.id, reason, "session ended");
            return;
        }
        let lab = live.lab.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(lab) = lab {
            let _ = self.store.session_ended(&lab.session.id, reason);
            self.discard_arc(lab).await;
        }
        tracing::info!(session = %live.id, reason, "session ended");
        self.clone().refill();
    }

    /// Sizes the pool for workshops about to start (`labs` ready at least)
    /// and starts filling it.
    pub fn prewarm_for_workshops(self: &Arc<Self>, labs: usize) {
        if let Some(pool) = self.runners.get() {
            // Spread over the runners: each keeps its share ready.
            if self.workshop_pool.swap(labs, Ordering::SeqCst) != labs {
                let pool = pool.clone();
                tokio::spawn(async move { pool.prewarm(labs).await });
            }
            return;
        }
        if self.workshop_pool.swap(labs, Ordering::SeqCst) != labs {
            self.clone().refill();
        }
    }

    /// Starts making pool labs until the pool is full (capacity allowing).
    pub fn refill(self: Arc<Self>) {
        if self.runners.get().is_some() {
            return; // the runners keep their own pools
        }
        let target = self
            .config
            .pool
            .max(self.workshop_pool.load(Ordering::SeqCst));
        let have = self.pooled() + self.pool_filling.load(Ordering::SeqCst);
        if have >= target || self.count() + have >= self.config.max_sessions + target {
            return;
        }
        self.pool_filling.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            let made = self.make_lab().await;
            self.pool_filling.fetch_sub(1, Ordering::SeqCst);
            match made {
                Ok(lab) => {
                    self.pool
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(lab);
                    self.refill();
                }
                Err(e) => tracing::warn!(error = %e, "pre-warming a lab failed"),
            }
        });
    }

    /// Ends sessions past their idle timeout or lifetime, once a second.
    /// (Disk quotas need no check here: a session's filesystem is its
    /// budget, see `berth_runtime::session::disk`.)
    pub async fn reap_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tick.tick().await;
            let expired: Vec<(Arc<LiveSession>, &'static str)> = self
                .live()
                .values()
                .filter_map(|s| {
                    let (left, why) = s.remaining(&self.config);
                    left.is_zero().then(|| {
                        (
                            s.clone(),
                            if why == "idle" {
                                "idle timeout"
                            } else {
                                "maximum lifetime"
                            },
                        )
                    })
                })
                .collect();
            for (s, why) in expired {
                self.end(&s, why).await;
            }
        }
    }

    /// Ends every session and empties the pool (shutdown).
    pub async fn shutdown(self: &Arc<Self>) {
        if self.runners.get().is_some() {
            // A front that stops leaves the labs on their runners: when it
            // comes back it finds them again (see `remote.rs`).
            return;
        }
        let all: Vec<Arc<LiveSession>> = self.live().values().cloned().collect();
        for s in all {
            self.end(&s, "server stopped").await;
        }
        let pool: Vec<Arc<Lab>> =
            std::mem::take(&mut *self.pool.lock().unwrap_or_else(|p| p.into_inner()));
        for lab in pool {
            self.discard_arc(lab).await;
        }
    }

    /// What a viewer of `node` in `live` reports to.
    pub fn activity(self: &Arc<Self>, live: &Arc<LiveSession>, node: &str) -> Arc<dyn Activity> {
        Arc::new(NodeActivity {
            classroom: self.clone(),
            live: live.clone(),
            node: node.to_string(),
        })
    }
}

struct Reservation<'a>(&'a AtomicUsize);

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct NodeActivity {
    classroom: Arc<Classroom>,
    live: Arc<LiveSession>,
    node: String,
}

impl Activity for NodeActivity {
    fn touched(&self) {
        self.live.touch();
    }

    fn restart(&self) -> BoxFuture<'static, Option<Arc<Terminal>>> {
        let sessions = self.classroom.sessions.clone();
        let lab = self.live.lab();
        let node = self.node.clone();
        Box::pin(async move {
            let lab = lab?;
            let n = lab.session.node(&node)?.clone();
            let s = sessions.clone();
            let process =
                tokio::task::spawn_blocking(move || n.open_shell(&s, START_SIZE.0, START_SIZE.1))
                    .await
                    .ok()?
                    .ok()?;
            let term = Terminal::spawn(&node, process).ok()?;
            *lab.terminals
                .get(&node)?
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = term.clone();
            Some(term)
        })
    }
}

/// `n` random bytes as hex.
pub fn random_hex(n: usize) -> String {
    use rand::RngCore;
    let mut bytes = vec![0u8; n];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

mod remote;
