//! The classroom as a front: sessions whose labs a runner holds (placed,
//! reset, grown, checked and ended through [`RunnerPool`]), runners that
//! die (their sessions lost, with a notice) or come back, and a front that
//! restarts (its learners' labs found again on the runners).

use std::sync::Arc;

use axum::http::StatusCode;

use super::{random_hex, Classroom, ClassroomError, LiveSession, Remote, LOST};
use crate::error::AppError;
use crate::grading::{self, Check, Verdict};
use crate::runner::pool::{Change, RunnerError, HEALTH_EVERY};
use crate::runner::RunnerPool;

impl From<RunnerError> for ClassroomError {
    fn from(e: RunnerError) -> Self {
        match e {
            RunnerError::Full { retry_after } => ClassroomError::Full { retry_after },
            other => ClassroomError::Lab(other.to_string()),
        }
    }
}

impl Classroom {
    /// A new session on the least loaded runner.
    pub(super) async fn admit_remote(
        self: &Arc<Self>,
        pool: &Arc<RunnerPool>,
        name: Option<String>,
    ) -> Result<Arc<LiveSession>, ClassroomError> {
        let token = random_hex(16);
        let (runner, info) = pool.place(&token).await?;
        let learner = match self.store.add_learner(&token, name.as_deref()) {
            Ok(l) => l,
            Err(e) => {
                let _ = pool.end(runner, &info.id).await;
                return Err(e.into());
            }
        };
        self.remote_started(&info.id, learner.id, &info.nodes)?;
        let live = Arc::new(LiveSession::new(
            info.id.clone(),
            token.clone(),
            learner.id,
            name,
        ));
        *live.remote.lock().unwrap_or_else(|p| p.into_inner()) = Some(Remote {
            runner,
            id: info.id,
            nodes: info.nodes,
        });
        self.live().insert(token, live.clone());
        tracing::info!(session = %live.id, runner = %pool.runners[runner].url, "session placed");
        Ok(live)
    }

    fn remote_started(
        &self,
        id: &str,
        learner: i64,
        nodes: &[String],
    ) -> Result<(), ClassroomError> {
        // Scopes are the runner's business; the store names the nodes.
        let nodes: Vec<(String, String)> =
            nodes.iter().map(|n| (n.clone(), String::new())).collect();
        self.store.session_started(id, learner, &nodes)?;
        Ok(())
    }

    /// A fresh lab for the learner, on the least loaded runner (also what
    /// "start again" does after a runner died). The session keeps its
    /// cookie and learner, so its progress stays; its ID becomes the new
    /// lab's.
    pub(super) async fn reset_remote(
        self: &Arc<Self>,
        pool: &Arc<RunnerPool>,
        live: &Arc<LiveSession>,
    ) -> Result<(), ClassroomError> {
        let changing = live.changing.lock().await;
        let old = live.remote.lock().unwrap_or_else(|p| p.into_inner()).take();
        let old_id = old.as_ref().map(|o| o.id.clone());
        if let Some(old) = old {
            let _ = self.store.session_ended(&old.id, "reset");
            let _ = pool.end(old.runner, &old.id).await;
        }
        let (runner, info) = pool.place(&live.token).await?;
        self.remote_started(&info.id, live.learner, &info.nodes)?;
        *live.remote.lock().unwrap_or_else(|p| p.into_inner()) = Some(Remote {
            runner,
            id: info.id.clone(),
            nodes: info.nodes,
        });
        *live.lost.lock().unwrap_or_else(|p| p.into_inner()) = None;
        live.touch();
        tracing::info!(session = %info.id, runner = %pool.runners[runner].url, "lab placed again");
        drop(changing);
        // The lesson the learner was on is set up again in the new lab.
        if let (Some(hook), Some(old_id)) = (self.after_reset.get(), old_id) {
            hook(self.clone(), live.clone(), old_id).await;
        }
        Ok(())
    }

    /// The runner's ID of the session's current lab (it changes on reset).
    pub fn current_id(&self, live: &LiveSession) -> String {
        live.remote()
            .map(|r| r.id)
            .unwrap_or_else(|| live.id.clone())
    }

    /// Gives a remote session at least `count` nodes.
    pub async fn ensure_remote_nodes(
        self: &Arc<Self>,
        live: &Arc<LiveSession>,
        count: usize,
    ) -> Result<(), ClassroomError> {
        let (Some(pool), Some(r)) = (self.runners.get(), live.remote()) else {
            return Err(ClassroomError::Lab(
                live.lost()
                    .unwrap_or_else(|| "the lab is being reset".into()),
            ));
        };
        if r.nodes.len() >= count {
            return Ok(());
        }
        let _changing = live.changing.lock().await;
        let id = self.current_id(live);
        let info = pool.ensure_nodes(r.runner, &id, count).await?;
        for n in info.nodes.iter().skip(r.nodes.len()) {
            let _ = self.store.node_added(&id, n, "");
        }
        if let Some(cur) = live
            .remote
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            cur.nodes = info.nodes;
        }
        Ok(())
    }

    /// Runs `checks` against `node` of the session's lab, wherever it runs.
    pub async fn check(
        self: &Arc<Self>,
        live: &Arc<LiveSession>,
        node: &str,
        checks: Vec<Check>,
    ) -> Result<Vec<Verdict>, AppError> {
        if let Some(pool) = self.runners.get() {
            let r = live.remote().ok_or_else(|| {
                AppError::new(
                    StatusCode::GONE,
                    live.lost()
                        .unwrap_or_else(|| "the lab is being reset".into()),
                )
            })?;
            if !r.nodes.iter().any(|n| n == node) {
                return Err(AppError::new(
                    StatusCode::CONFLICT,
                    format!("this lesson needs {node}: the session has no such node"),
                ));
            }
            return pool
                .check(r.runner, &self.current_id(live), node, checks)
                .await
                .map_err(|e| AppError::new(StatusCode::BAD_GATEWAY, e.to_string()));
        }
        let lab = live
            .lab()
            .ok_or_else(|| AppError::new(StatusCode::CONFLICT, "the lab is being reset".into()))?;
        let scope = lab
            .session
            .node(node)
            .ok_or_else(|| {
                AppError::new(
                    StatusCode::CONFLICT,
                    format!("this lesson needs {node}: the session has no such node"),
                )
            })?
            .scope
            .clone();
        let target = grading::Target {
            engine: self.sessions.engine.clone(),
            scope,
            session: lab.session.id.clone(),
        };
        tokio::task::spawn_blocking(move || grading::run_checks(&target, &checks))
            .await
            .map_err(AppError::internal)
    }

    /// Lets the session's nodes push into registry namespace `ns`.
    pub fn grant_namespace(self: &Arc<Self>, live: &LiveSession, ns: &str) {
        if let Some(pool) = self.runners.get() {
            if let Some(r) = live.remote() {
                let (pool, id, ns) = (pool.clone(), self.current_id(live), ns.to_string());
                tokio::spawn(async move {
                    if let Err(e) = pool.grant(r.runner, &id, &ns).await {
                        tracing::warn!(session = %id, error = %e, "a registry grant on the runner failed");
                    }
                });
            }
            return;
        }
        let engine = &self.sessions.engine;
        let Some(server) = engine.classroom_registry.get() else {
            return;
        };
        let Some(lab) = live.lab() else { return };
        let settings = engine.registry_settings();
        for n in &lab.session.nodes {
            if let Some(token) = settings.scopes.get(&n.scope).and_then(|s| s.token.clone()) {
                server.grant_also(&token, ns);
            }
        }
    }

    /// Opens registry namespace `ns` to every session (pull) — on every
    /// runner when this is a front.
    pub fn open_namespace(self: &Arc<Self>, ns: &str) {
        if let Some(pool) = self.runners.get() {
            let (pool, ns) = (pool.clone(), ns.to_string());
            tokio::spawn(async move { pool.open_shared(&ns).await });
            return;
        }
        let engine = &self.sessions.engine;
        let Some(server) = engine.classroom_registry.get() else {
            return;
        };
        server.open_shared(ns);
        let mut settings = engine.registry_settings();
        if !settings.shared.iter().any(|s| s == ns) {
            settings.shared.push(ns.to_string());
            engine.set_registry(settings);
        }
    }

    /// Watches the runners: a runner that stops answering takes its
    /// sessions with it (each learner told, their progress kept); one that
    /// answers (again) is told the shared namespaces and its labs are
    /// matched to learners this front does not know yet (after the front
    /// restarted).
    pub async fn watch_runners(self: Arc<Self>) {
        let Some(pool) = self.runners.get().cloned() else {
            return;
        };
        let mut tick = tokio::time::interval(HEALTH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            for change in pool.check_health().await {
                match change {
                    Change::Down(i) => self.runner_lost(i),
                    Change::Up(i) => {
                        pool.rejoined(i).await;
                        self.adopt(&pool, i).await;
                    }
                }
            }
        }
    }

    fn runner_lost(&self, i: usize) {
        // Every learner is told first; the store (a PostgreSQL round trip
        // per session) is written after, so no page waits on the others'.
        let mut ended = Vec::new();
        for live in self.all() {
            let mut remote = live.remote.lock().unwrap_or_else(|p| p.into_inner());
            if remote.as_ref().is_some_and(|r| r.runner == i) {
                let gone = remote.take();
                drop(remote);
                *live.lost.lock().unwrap_or_else(|p| p.into_inner()) = Some(LOST.to_string());
                tracing::warn!(session = %live.id, "lab lost with its runner");
                ended.extend(gone.map(|r| r.id));
            }
        }
        for id in ended {
            let _ = self.store.session_ended(&id, "runner lost");
        }
    }

    /// Takes on the labs of runner `i` labelled with a learner's token this
    /// front does not hold yet.
    async fn adopt(&self, pool: &RunnerPool, i: usize) {
        let listed = match pool.sessions(i).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "listing a runner's sessions failed");
                return;
            }
        };
        for info in listed {
            if self.by_token(&info.label).is_some() {
                continue;
            }
            let Ok(Some(learner)) = self.store.learner_by_token(&info.label) else {
                // Not ours (another front's, or its learner was deleted).
                continue;
            };
            let live = Arc::new(LiveSession::new(
                info.id.clone(),
                info.label.clone(),
                learner.id,
                learner.display_name.clone(),
            ));
            *live.remote.lock().unwrap_or_else(|p| p.into_inner()) = Some(Remote {
                runner: i,
                id: info.id.clone(),
                nodes: info.nodes,
            });
            self.live().insert(info.label, live);
            pool.adopted(i);
            tracing::info!(session = %info.id, "session found again on its runner");
        }
    }
}
