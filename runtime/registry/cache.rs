//! The classroom's pull-through cache: what every session's pulls share.
//!
//! - **Tags** resolve to a manifest digest and stay resolved for the cache's
//!   time to live, per *identity*: the credentials the upstream was asked
//!   with (anonymous, the operator's `--registry-auth`, or a learner's own
//!   `docker login`, known by a hash). A pull under another identity asks
//!   the upstream itself (a `HEAD`, which Docker Hub does not count).
//! - **Manifests and configs** are kept by `registry/repository@digest`
//!   (bounded in bytes), fetched once however many pulls ask at the same
//!   time: the first asks, the others wait for its answer.
//! - **Layer blobs** are downloaded once per `registry/repository@digest`
//!   (single-flight: a pull that finds the blob on its way waits for that
//!   download and shows its progress), verified, and kept by the image store,
//!   which is content-addressed and shared by every session.
//!
//! Who may use what (no session reads another's private pull): a session
//! only reaches a manifest after the upstream let it resolve the repository
//! with its own identity, and a stored layer counts as "Already exists" for
//! a pull only if this Berth downloaded that blob from the same repository
//! ([`PullCache::fetched`]); otherwise it is downloaded (and verified) again.
//! A learner's own registry naming another's layer digests therefore gets
//! only what it serves itself.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tokio::sync::watch;

/// Manifests and configs kept in memory at most, bytes.
const DOC_BUDGET: usize = 64 << 20;

/// The progress of one shared blob download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Bytes received so far.
    Downloading(u64),
    /// Downloaded and verified; being unpacked into the store.
    Extracting(u64),
    /// In the store.
    Done,
    /// Failed with this message (nothing was kept).
    Failed(String),
}

/// Who leads a blob's download and who follows it.
pub enum Flight {
    /// This pull downloads; it reports through the sender and must end with
    /// [`Stage::Done`] or [`Stage::Failed`] (dropping it fails the followers).
    Lead(FlightGuard),
    /// Another pull downloads; watch it.
    Follow(watch::Receiver<Stage>),
}

/// The leader's end of a flight; ends the flight when dropped.
pub struct FlightGuard {
    cache: Arc<PullCache>,
    key: String,
    tx: watch::Sender<Stage>,
}

impl FlightGuard {
    /// Reports progress to the followers.
    pub fn report(&self, stage: Stage) {
        if stage == Stage::Done {
            self.cache.lock_fetched().insert(self.key.clone());
        }
        self.tx.send_replace(stage);
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.cache.lock_flights().remove(&self.key);
        // A leader gone without an outcome leaves its followers an error
        // rather than a wait forever.
        self.tx.send_if_modified(|s| {
            if matches!(s, Stage::Done | Stage::Failed(_)) {
                false
            } else {
                *s = Stage::Failed("download abandoned".into());
                true
            }
        });
    }
}

#[derive(Default)]
struct Docs {
    bytes: HashMap<String, Arc<Vec<u8>>>,
    order: VecDeque<String>,
    total: usize,
}

/// The cache shared by every session of one Berth.
pub struct PullCache {
    ttl: Duration,
    tags: Mutex<HashMap<String, (String, Instant)>>,
    docs: Mutex<Docs>,
    doc_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    flights: Mutex<HashMap<String, watch::Receiver<Stage>>>,
    fetched: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for PullCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PullCache").field("ttl", &self.ttl).finish()
    }
}

impl Default for PullCache {
    fn default() -> Self {
        Self::new(Duration::from_secs(60))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// An identity's name in cache keys: never the credentials themselves.
pub fn identity(kind: &str, secret: &str) -> String {
    if secret.is_empty() {
        return kind.to_string();
    }
    let h = Sha256::digest(secret.as_bytes());
    format!("{kind}:{}", hex::encode(&h[..12]))
}

impl PullCache {
    /// A cache keeping a tag's resolution for `ttl` (zero: ask every time).
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            tags: Default::default(),
            docs: Default::default(),
            doc_locks: Default::default(),
            flights: Default::default(),
            fetched: Default::default(),
        }
    }

    /// How long a tag stays resolved.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn lock_flights(&self) -> std::sync::MutexGuard<'_, HashMap<String, watch::Receiver<Stage>>> {
        lock(&self.flights)
    }

    fn lock_fetched(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        lock(&self.fetched)
    }

    /// The digest `tag` of `repo` resolved to for `who`, if still fresh.
    pub fn tag(&self, who: &str, repo: &str, tag: &str) -> Option<String> {
        let key = format!("{who}\n{repo}:{tag}");
        let mut tags = lock(&self.tags);
        match tags.get(&key) {
            Some((digest, at)) if at.elapsed() < self.ttl => Some(digest.clone()),
            Some(_) => {
                tags.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remembers what `tag` resolved to for `who`.
    pub fn set_tag(&self, who: &str, repo: &str, tag: &str, digest: &str) {
        if self.ttl.is_zero() {
            return;
        }
        let mut tags = lock(&self.tags);
        // Stale entries go when the map grows, so it stays as big as the
        // set of tags pulled within one time to live.
        if tags.len() >= 4096 {
            let ttl = self.ttl;
            tags.retain(|_, (_, at)| at.elapsed() < ttl);
        }
        tags.insert(
            format!("{who}\n{repo}:{tag}"),
            (digest.to_string(), Instant::now()),
        );
    }

    /// A manifest or config of `repo` by digest, if kept.
    pub fn doc(&self, repo: &str, digest: &str) -> Option<Arc<Vec<u8>>> {
        lock(&self.docs)
            .bytes
            .get(&format!("{repo}@{digest}"))
            .cloned()
    }

    /// Keeps a verified manifest or config (oldest ones go past the budget).
    pub fn set_doc(&self, repo: &str, digest: &str, bytes: Vec<u8>) -> Arc<Vec<u8>> {
        let key = format!("{repo}@{digest}");
        let bytes = Arc::new(bytes);
        let mut docs = lock(&self.docs);
        if docs.bytes.contains_key(&key) || bytes.len() > DOC_BUDGET / 4 {
            return bytes;
        }
        docs.total += bytes.len();
        docs.bytes.insert(key.clone(), bytes.clone());
        docs.order.push_back(key);
        while docs.total > DOC_BUDGET {
            let Some(old) = docs.order.pop_front() else {
                break;
            };
            if let Some(b) = docs.bytes.remove(&old) {
                docs.total -= b.len();
            }
        }
        bytes
    }

    /// The lock one fetch of `repo@digest` holds, so that concurrent pulls
    /// ask the upstream once and the others read what it kept.
    pub fn doc_lock(&self, repo: &str, digest: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = lock(&self.doc_locks);
        // Locks nobody holds or waits on are dropped as the map grows.
        if locks.len() >= 1024 {
            locks.retain(|_, l| Arc::strong_count(l) > 1);
        }
        locks.entry(format!("{repo}@{digest}")).or_default().clone()
    }

    /// Whether this Berth downloaded and verified blob `digest` from `repo`.
    pub fn fetched(&self, repo: &str, digest: &str) -> bool {
        self.lock_fetched().contains(&format!("{repo}@{digest}"))
    }

    /// Records that `repo` holds blob `digest` (a push through Berth).
    pub fn mark_fetched(&self, repo: &str, digest: &str) {
        self.lock_fetched().insert(format!("{repo}@{digest}"));
    }

    /// Forgets every tag of `repo` (a push through Berth changed one).
    pub fn forget_tags(&self, repo: &str) {
        let suffix = format!("\n{repo}:");
        lock(&self.tags).retain(|k, _| !k.contains(&suffix));
    }

    /// Leads the download of `repo@digest`, or follows the one under way.
    pub fn flight(self: &Arc<Self>, repo: &str, digest: &str) -> Flight {
        let key = format!("{repo}@{digest}");
        let mut flights = self.lock_flights();
        if let Some(rx) = flights.get(&key) {
            return Flight::Follow(rx.clone());
        }
        let (tx, rx) = watch::channel(Stage::Downloading(0));
        flights.insert(key.clone(), rx);
        Flight::Lead(FlightGuard {
            cache: self.clone(),
            key,
            tx,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_download_leads_and_the_others_follow_it_to_the_end() {
        let cache = Arc::new(PullCache::new(Duration::from_secs(60)));
        let Flight::Lead(lead) = cache.flight("r/x", "sha256:a") else {
            panic!("the first pull leads");
        };
        let Flight::Follow(mut rx) = cache.flight("r/x", "sha256:a") else {
            panic!("the second follows");
        };
        // Another repository's blob of the same digest is its own flight.
        assert!(matches!(cache.flight("r/y", "sha256:a"), Flight::Lead(_)));
        lead.report(Stage::Downloading(5));
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow(), Stage::Downloading(5));
        assert!(!cache.fetched("r/x", "sha256:a"));
        lead.report(Stage::Done);
        drop(lead);
        assert!(cache.fetched("r/x", "sha256:a"));
        assert!(!cache.fetched("r/y", "sha256:a"));
        assert_eq!(*rx.borrow_and_update(), Stage::Done);
        // A leader gone without an outcome fails its followers.
        let Flight::Lead(lead) = cache.flight("r/x", "sha256:b") else {
            panic!()
        };
        let Flight::Follow(rx) = cache.flight("r/x", "sha256:b") else {
            panic!()
        };
        drop(lead);
        assert!(matches!(*rx.borrow(), Stage::Failed(_)));
        assert!(!cache.fetched("r/x", "sha256:b"));
    }

    #[test]
    fn tags_stay_resolved_per_identity_for_the_ttl_only() {
        let cache = PullCache::new(Duration::from_millis(0));
        cache.set_tag("anonymous", "r/x", "v1", "sha256:a");
        assert_eq!(cache.tag("anonymous", "r/x", "v1"), None);
        let cache = PullCache::new(Duration::from_secs(60));
        cache.set_tag("anonymous", "r/x", "v1", "sha256:a");
        assert_eq!(
            cache.tag("anonymous", "r/x", "v1").as_deref(),
            Some("sha256:a")
        );
        assert_eq!(cache.tag(&identity("login", "u:p"), "r/x", "v1"), None);
        assert_ne!(identity("login", "u:p"), identity("login", "u:q"));
        assert!(!identity("login", "u:secret").contains("secret"));
    }
}
