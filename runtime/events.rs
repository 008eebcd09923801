//! Engine events (`docker events`): what happened to which object, kept in a
//! bounded history for `since`/`until` replays and broadcast to live readers.
//!
//! Beside them, a lighter signal: *which scope changed*. Every event sends
//! its scope, and so does every request that changed a scope's state
//! without an event of its own (a network, a volume, a pulled or committed
//! image). Watchers that only redraw state (the lab map) listen to that
//! and never see `docker events` grow events Docker would not send.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::broadcast;

/// How many past events are kept for replays.
const HISTORY: usize = 1024;

/// One event, in the shape Docker's `/events` writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The scope it happened in (events are only shown to their scope).
    pub scope: String,
    /// `container`, `image`, `network`, `volume`…
    pub kind: &'static str,
    /// `create`, `start`, `die`, `destroy`, `tag`…
    pub action: String,
    /// The object's ID.
    pub id: String,
    /// Name, image, labels, exit code… (`Actor.Attributes`).
    pub attributes: BTreeMap<String, String>,
    /// Unix time in nanoseconds.
    pub time_nano: u128,
}

/// The event history and its live subscribers.
pub struct EventBus {
    history: Mutex<VecDeque<Event>>,
    live: broadcast::Sender<Event>,
    /// Scopes whose state changed (see the module's doc).
    changes: broadcast::Sender<Arc<str>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self {
            history: Mutex::new(VecDeque::with_capacity(HISTORY)),
            live: broadcast::channel(HISTORY).0,
            changes: broadcast::channel(HISTORY).0,
        }
    }
}

impl EventBus {
    /// Records and broadcasts an event.
    pub fn emit(
        &self,
        scope: &str,
        kind: &'static str,
        action: impl Into<String>,
        id: &str,
        attributes: BTreeMap<String, String>,
    ) {
        let event = Event {
            scope: scope.to_string(),
            kind,
            action: action.into(),
            id: id.to_string(),
            attributes,
            time_nano: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        };
        let mut history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        if history.len() == HISTORY {
            history.pop_front();
        }
        history.push_back(event.clone());
        // Subscribe under the same lock (see `subscribe`): nothing is missed
        // or seen twice between the replay and the live stream.
        let _ = self.live.send(event);
        drop(history);
        self.changed(scope);
    }

    /// Says that `scope`'s state changed (no event is recorded).
    pub fn changed(&self, scope: &str) {
        // No watcher is no error: the signal is for whoever listens now.
        let _ = self.changes.send(Arc::from(scope));
    }

    /// A receiver of the scopes that change from now on. A receiver that
    /// falls behind gets `Lagged` (it missed some): it should assume that
    /// anything changed.
    pub fn watch_changes(&self) -> broadcast::Receiver<Arc<str>> {
        self.changes.subscribe()
    }

    /// Past events (for `since`) and a receiver of every later one.
    pub fn subscribe(&self) -> (Vec<Event>, broadcast::Receiver<Event>) {
        let history = self.history.lock().unwrap_or_else(|p| p.into_inner());
        (history.iter().cloned().collect(), self.live.subscribe())
    }
}
