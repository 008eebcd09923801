//! Keeping a session's map model up to date: one watcher per session that
//! anyone is looking at, however many pages look (the learner's tab, the
//! lesson's embedded maps, an instructor's shoulder view, the projector).
//!
//! The watcher sleeps on the engine's change signal
//! ([`berth_runtime::events::EventBus::watch_changes`]) and, when one of its
//! session's scopes changes, waits a short burst window for the rest of the
//! command's changes, builds one model on the blocking pool and publishes
//! it (only when it differs from the last). Snapshots are spaced at least
//! [`MIN_SPACING`] apart, so a lab churning containers costs each watched
//! session a few snapshots a second at most; memory is one model per
//! watched session. The watcher ends with its last viewer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use berth_runtime::engine::Engine;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;

use super::model::{self, LayerCache};
use crate::classroom::LiveSession;

/// How long a burst of changes (one command's) is gathered before a snapshot.
pub const BURST: Duration = Duration::from_millis(25);
/// Least time between two snapshots of one session.
pub const MIN_SPACING: Duration = Duration::from_millis(150);
/// How often a quiet watcher checks that its lab was not replaced (reset).
const LAB_CHECK: Duration = Duration::from_secs(2);
/// Most map streams one session may hold open at once.
pub const MAX_VIEWERS: usize = 8;

/// A published model: its revision and its JSON.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub rev: u64,
    pub json: Arc<str>,
}

/// One session's watcher; dropping the last handle stops it.
pub struct Watcher {
    rx: watch::Receiver<Snapshot>,
    task: tokio::task::AbortHandle,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Watcher {
    /// A receiver of this session's models (the current one first).
    pub fn subscribe(&self) -> watch::Receiver<Snapshot> {
        self.rx.clone()
    }
}

/// A viewer's hold on a watcher; counts toward [`MAX_VIEWERS`].
pub struct Viewer {
    pub watcher: Arc<Watcher>,
    session: String,
    maps: Arc<Maps>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let mut viewers = self.maps.viewers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = viewers.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                viewers.remove(&self.session);
            }
        }
    }
}

/// The server's maps: watchers by session, viewer counts, the layer cache.
pub struct Maps {
    engine: Arc<Engine>,
    watchers: Mutex<HashMap<String, Weak<Watcher>>>,
    viewers: Mutex<HashMap<String, usize>>,
    pub layers: LayerCache,
}

/// Why a map could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    #[error("too many maps open for this session (at most {MAX_VIEWERS}): close one")]
    TooManyViewers,
}

impl Maps {
    pub fn new(engine: Arc<Engine>) -> Arc<Self> {
        Arc::new(Self {
            engine,
            watchers: Mutex::new(HashMap::new()),
            viewers: Mutex::new(HashMap::new()),
            layers: LayerCache::default(),
        })
    }

    /// Watched sessions now (for tests and benchmarks).
    pub fn watched(&self) -> usize {
        self.watchers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|w| w.strong_count() > 0)
            .count()
    }

    /// The model of `live` now, built on the caller's thread.
    pub fn snapshot(&self, live: &LiveSession) -> model::Model {
        let nodes = nodes_of(live);
        model::build(&self.engine, &live.id, &nodes, &self.layers)
    }

    /// Starts viewing `live`'s map: its watcher (started if none runs).
    pub fn view(self: &Arc<Self>, live: &Arc<LiveSession>) -> Result<Viewer, MapError> {
        {
            let mut viewers = self.viewers.lock().unwrap_or_else(|p| p.into_inner());
            let n = viewers.entry(live.id.clone()).or_default();
            if *n >= MAX_VIEWERS {
                return Err(MapError::TooManyViewers);
            }
            *n += 1;
        }
        let mut watchers = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        watchers.retain(|_, w| w.strong_count() > 0);
        let watcher = match watchers.get(&live.id).and_then(Weak::upgrade) {
            Some(w) => w,
            None => {
                let w = Arc::new(self.start(live.clone()));
                watchers.insert(live.id.clone(), Arc::downgrade(&w));
                w
            }
        };
        Ok(Viewer {
            watcher,
            session: live.id.clone(),
            maps: self.clone(),
        })
    }

    fn start(self: &Arc<Self>, live: Arc<LiveSession>) -> Watcher {
        let (tx, rx) = watch::channel(Snapshot::default());
        let changes = self.engine.runtime.events().watch_changes();
        // The watcher holds the maps weakly: it must not keep them alive.
        let maps = Arc::downgrade(self);
        let task = tokio::spawn(run(maps, live, changes, tx)).abort_handle();
        Watcher { rx, task }
    }
}

/// (node name, scope) of each of the session's nodes; none during a reset.
fn nodes_of(live: &LiveSession) -> Vec<(String, String)> {
    live.lab()
        .map(|l| {
            l.session
                .nodes
                .iter()
                .map(|n| (n.name.clone(), n.scope.clone()))
                .collect()
        })
        .unwrap_or_default()
}

/// The lab's runtime session ID (it changes when the lab is reset).
fn lab_id(live: &LiveSession) -> Option<String> {
    live.lab().map(|l| l.session.id.clone())
}

async fn run(
    maps: Weak<Maps>,
    live: Arc<LiveSession>,
    mut changes: broadcast::Receiver<Arc<str>>,
    tx: watch::Sender<Snapshot>,
) {
    let mut rev = 0u64;
    let mut last_json: Arc<str> = Arc::from("");
    let mut last_at: Option<Instant> = None;
    let mut lab = lab_id(&live);
    // The first model at once; then one per burst of this session's changes.
    let mut dirty = true;
    loop {
        if !dirty {
            let ours = |scope: &str| {
                lab.as_deref()
                    .is_some_and(|id| scope.strip_prefix(id).is_some_and(|r| r.starts_with('-')))
            };
            match tokio::time::timeout(LAB_CHECK, changes.recv()).await {
                Ok(Ok(scope)) => dirty = ours(&scope),
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => dirty = true,
                Ok(Err(broadcast::error::RecvError::Closed)) => return,
                Err(_) => {
                    let now = lab_id(&live);
                    dirty = now != lab;
                }
            }
            if !dirty {
                continue;
            }
            // The rest of the command's changes arrive meanwhile.
            tokio::time::sleep(BURST).await;
            if let Some(at) = last_at {
                tokio::time::sleep_until(at + MIN_SPACING).await;
            }
            // Whatever came in the window is in the snapshot below.
            while let Ok(_) | Err(broadcast::error::TryRecvError::Lagged(_)) = changes.try_recv() {}
        }
        dirty = false;
        lab = lab_id(&live);
        last_at = Some(Instant::now());
        let Some(m) = maps.upgrade() else { return };
        let l = live.clone();
        let built = tokio::task::spawn_blocking(move || {
            serde_json::to_string(&m.snapshot(&l)).unwrap_or_default()
        })
        .await;
        let Ok(json) = built else { continue };
        if *json != *last_json {
            rev += 1;
            last_json = Arc::from(json);
            if tx
                .send(Snapshot {
                    rev,
                    json: last_json.clone(),
                })
                .is_err()
            {
                return;
            }
        }
    }
}
