//! The front's view of its runners: their health and load, placement of a
//! new session, and the calls it makes to them.
//!
//! Placement is least loaded with room: the runner with the smallest share
//! of its capacity used (counting placements still under way), among the
//! healthy ones. A session stays on the runner that made it for its whole
//! life (its terminals, checks and registry grants all go there). A runner
//! that misses [`DOWN_AFTER`] health checks in a row leaves the pool and
//! its sessions are lost; one that answers again rejoins.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::auth::Secret;
use super::protocol::{
    CheckAnswer, CheckRequest, CreateSession, EnsureNodes, Health, Namespace, Prewarm, SessionInfo,
    Setup, SetupOutcome, PREFIX,
};
use crate::grading::{Check, Verdict};

/// How often the front asks each runner for its health.
pub const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// Missed health checks in a row after which a runner is down.
pub const DOWN_AFTER: usize = 3;
/// How long one call to a runner may take (a lab takes seconds to make, a
/// lesson's setup may pull and build for minutes).
const CALL_TIMEOUT: Duration = Duration::from_secs(660);

/// Why a call to a runner failed.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error("every runner is full")]
    Full { retry_after: u64 },
    #[error("runner {url}: {message}")]
    Call { url: String, message: String },
    #[error("runner {url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
}

/// One runner as the front knows it.
pub struct Runner {
    /// Its base URL (`http://10.0.0.5:7070`).
    pub url: String,
    /// Whether it answers its health checks.
    up: AtomicBool,
    misses: AtomicUsize,
    /// Its last health answer.
    health: Mutex<Option<Health>>,
    /// Placements under way.
    placing: AtomicUsize,
    /// Labs this front placed there and has not ended: a health answer
    /// already on its way when a placement lands must not undercount.
    placed: AtomicUsize,
}

impl Runner {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    /// Its last health answer.
    pub fn health(&self) -> Option<Health> {
        self.health
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Used share of its capacity, placements under way included; `None`
    /// when it is down or has no room.
    fn load(&self) -> Option<f64> {
        if !self.is_up() {
            return None;
        }
        let h = self.health()?;
        let used = h.sessions.max(self.placed.load(Ordering::SeqCst))
            + self.placing.load(Ordering::SeqCst);
        (used < h.max_sessions).then(|| used as f64 / h.max_sessions.max(1) as f64)
    }
}

/// What the health loop saw change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Runner `i` answers again (or for the first time).
    Up(usize),
    /// Runner `i` stopped answering.
    Down(usize),
}

/// The front's runners.
pub struct RunnerPool {
    pub runners: Vec<Runner>,
    secret: Secret,
    http: reqwest::Client,
    /// Workshop namespaces opened, told again to a runner that rejoins.
    shared: Mutex<BTreeSet<String>>,
}

impl RunnerPool {
    /// A pool of the runners at `urls` (none up until its first health check).
    pub fn new(urls: &[String], secret: Secret) -> Arc<Self> {
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .tcp_nodelay(true)
            .build()
            .expect("an HTTP client without TLS settings builds");
        Arc::new(Self {
            runners: urls
                .iter()
                .map(|u| Runner {
                    url: u.trim_end_matches('/').to_string(),
                    up: AtomicBool::new(false),
                    misses: AtomicUsize::new(0),
                    health: Mutex::new(None),
                    placing: AtomicUsize::new(0),
                    placed: AtomicUsize::new(0),
                })
                .collect(),
            secret,
            http,
            shared: Mutex::new(BTreeSet::new()),
        })
    }

    /// The secret, for the terminal proxy.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// Asks every runner for its health once; the runners that changed.
    pub async fn check_health(&self) -> Vec<Change> {
        let answers = futures_util::future::join_all(self.runners.iter().map(|r| async move {
            let url = format!("{}{PREFIX}/health", r.url);
            let got = self
                .http
                .get(&url)
                .header(super::auth::HEADER, self.secret.header_value())
                .timeout(HEALTH_EVERY * 2)
                .send()
                .await;
            match got {
                Ok(resp) if resp.status().is_success() => resp.json::<Health>().await.ok(),
                _ => None,
            }
        }))
        .await;
        let mut changes = Vec::new();
        for (i, (r, answer)) in self.runners.iter().zip(answers).enumerate() {
            match answer {
                Some(h) => {
                    *r.health.lock().unwrap_or_else(|p| p.into_inner()) = Some(h);
                    r.misses.store(0, Ordering::SeqCst);
                    if !r.up.swap(true, Ordering::SeqCst) {
                        tracing::info!(runner = %r.url, "runner joined the pool");
                        changes.push(Change::Up(i));
                    }
                }
                None => {
                    let misses = r.misses.fetch_add(1, Ordering::SeqCst) + 1;
                    if misses >= DOWN_AFTER && r.up.swap(false, Ordering::SeqCst) {
                        tracing::warn!(runner = %r.url, misses, "runner left the pool");
                        *r.health.lock().unwrap_or_else(|p| p.into_inner()) = None;
                        r.placed.store(0, Ordering::SeqCst);
                        changes.push(Change::Down(i));
                    }
                }
            }
        }
        changes
    }

    /// Places a new session (tagged `label`) on the least loaded runner
    /// with room; another runner is tried when one turns out full.
    pub async fn place(&self, label: &str) -> Result<(usize, SessionInfo), RunnerError> {
        let mut tried = BTreeSet::new();
        // The last failure that was not "full": when every runner failed,
        // the learner is told what went wrong, not that the room is full.
        let mut failed: Option<RunnerError> = None;
        loop {
            let pick = self
                .runners
                .iter()
                .enumerate()
                .filter(|(i, _)| !tried.contains(i))
                .filter_map(|(i, r)| r.load().map(|l| (i, l)))
                .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
                .map(|(i, _)| i);
            let Some(i) = pick else {
                return Err(failed.unwrap_or(RunnerError::Full { retry_after: 10 }));
            };
            tried.insert(i);
            let r = &self.runners[i];
            r.placing.fetch_add(1, Ordering::SeqCst);
            let made: Result<SessionInfo, RunnerError> = self
                .call(
                    i,
                    reqwest::Method::POST,
                    "/sessions",
                    Some(&CreateSession {
                        label: label.to_string(),
                    }),
                )
                .await;
            if made.is_ok() {
                r.placed.fetch_add(1, Ordering::SeqCst);
            }
            r.placing.fetch_sub(1, Ordering::SeqCst);
            match made {
                Ok(info) => return Ok((i, info)),
                Err(RunnerError::Status { status: 503, .. }) => continue,
                Err(e) => {
                    tracing::warn!(runner = %r.url, error = %e, "placing a session failed");
                    failed = Some(e);
                    continue;
                }
            }
        }
    }

    /// The sessions runner `i` holds.
    pub async fn sessions(&self, i: usize) -> Result<Vec<SessionInfo>, RunnerError> {
        self.call::<(), _>(i, reqwest::Method::GET, "/sessions", None)
            .await
    }

    /// Ends session `id` on runner `i`.
    pub async fn end(&self, i: usize, id: &str) -> Result<(), RunnerError> {
        let r = &self.runners[i];
        let _ = r
            .placed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        self.call_empty::<()>(i, reqwest::Method::DELETE, &format!("/sessions/{id}"), None)
            .await
    }

    /// Counts a lab found on runner `i` (a front that restarted).
    pub fn adopted(&self, i: usize) {
        self.runners[i].placed.fetch_add(1, Ordering::SeqCst);
    }

    /// Gives session `id` at least `count` nodes.
    pub async fn ensure_nodes(
        &self,
        i: usize,
        id: &str,
        count: usize,
    ) -> Result<SessionInfo, RunnerError> {
        self.call(
            i,
            reqwest::Method::POST,
            &format!("/sessions/{id}/nodes"),
            Some(&EnsureNodes { count }),
        )
        .await
    }

    /// Runs `checks` against `node` of session `id`.
    pub async fn check(
        &self,
        i: usize,
        id: &str,
        node: &str,
        checks: Vec<Check>,
    ) -> Result<Vec<Verdict>, RunnerError> {
        let a: CheckAnswer = self
            .call(
                i,
                reqwest::Method::POST,
                &format!("/sessions/{id}/check"),
                Some(&CheckRequest {
                    node: node.to_string(),
                    checks,
                }),
            )
            .await?;
        Ok(a.verdicts)
    }

    /// Runs `lesson`'s setup in session `id`; how it ended.
    pub async fn setup(&self, i: usize, id: &str, lesson: &str) -> Result<String, RunnerError> {
        let o: SetupOutcome = self
            .call(
                i,
                reqwest::Method::POST,
                &format!("/sessions/{id}/setup"),
                Some(&Setup {
                    lesson: lesson.to_string(),
                }),
            )
            .await?;
        Ok(o.outcome)
    }

    /// Lets session `id` push into `namespace`.
    pub async fn grant(&self, i: usize, id: &str, namespace: &str) -> Result<(), RunnerError> {
        self.call_empty(
            i,
            reqwest::Method::POST,
            &format!("/sessions/{id}/grant"),
            Some(&Namespace {
                namespace: namespace.to_string(),
            }),
        )
        .await
    }

    /// Opens a workshop's shared namespace on every runner (and on those
    /// that join later).
    pub async fn open_shared(&self, namespace: &str) {
        self.shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(namespace.to_string());
        for i in 0..self.runners.len() {
            if self.runners[i].is_up() {
                self.tell_shared(i, namespace).await;
            }
        }
    }

    async fn tell_shared(&self, i: usize, namespace: &str) {
        let said = self
            .call_empty(
                i,
                reqwest::Method::POST,
                "/registry/shared",
                Some(&Namespace {
                    namespace: namespace.to_string(),
                }),
            )
            .await;
        if let Err(e) = said {
            tracing::warn!(error = %e, "opening a shared namespace on a runner failed");
        }
    }

    /// Brings a runner that (re)joined up to date: the shared namespaces.
    pub async fn rejoined(&self, i: usize) {
        let shared: Vec<String> = self
            .shared
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        for ns in shared {
            self.tell_shared(i, &ns).await;
        }
    }

    /// Spreads `labs` pre-warmed labs over the runners that are up.
    pub async fn prewarm(&self, labs: usize) {
        let up: Vec<usize> = (0..self.runners.len())
            .filter(|&i| self.runners[i].is_up())
            .collect();
        if up.is_empty() {
            return;
        }
        let each = labs.div_ceil(up.len());
        for i in up {
            let _ = self
                .call_empty(
                    i,
                    reqwest::Method::POST,
                    "/prewarm",
                    Some(&Prewarm { labs: each }),
                )
                .await;
        }
    }

    /// The WebSocket URL of a session's terminal on runner `i`.
    pub fn terminal_url(&self, i: usize, id: &str, node: &str) -> String {
        let base = &self.runners[i].url;
        let ws = if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            format!("ws://{}", base.trim_start_matches("http://"))
        };
        format!("{ws}{PREFIX}/sessions/{id}/terminal/{node}")
    }

    async fn send<B: Serialize>(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<reqwest::Response, RunnerError> {
        let r = &self.runners[i];
        let url = format!("{}{PREFIX}{path}", r.url);
        let mut req = self
            .http
            .request(method, &url)
            .header(super::auth::HEADER, self.secret.header_value());
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.map_err(|e| RunnerError::Call {
            url: r.url.clone(),
            message: e.to_string(),
        })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(String::from))
            .unwrap_or(text);
        Err(RunnerError::Status {
            url: r.url.clone(),
            status: status.as_u16(),
            message,
        })
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, RunnerError> {
        let resp = self.send(i, method, path, body).await?;
        resp.json::<T>().await.map_err(|e| RunnerError::Call {
            url: self.runners[i].url.clone(),
            message: format!("unreadable answer: {e}"),
        })
    }

    async fn call_empty<B: Serialize>(
        &self,
        i: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<(), RunnerError> {
        self.send(i, method, path, body).await.map(|_| ())
    }
}
