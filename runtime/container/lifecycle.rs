//! The lifecycle verbs of [`Runtime`]: create, start, stop, kill, pause,
//! unpause, restart, wait, remove, rename — one at a time per container
//! (each takes the container's `op` lock), each checking the state first,
//! acting, and saving the new state. A watcher thread per running container
//! records its exit and applies its restart policy.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Child;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::attach::ControlRequest;
use super::cgroup::{Cgroup, Hierarchy, Limits};
use super::config::ContainerConfig;
use super::launch;
use super::manager::{io, Container, ContainerRecord, Runtime};
use super::monitor::{exit_file, ExitRecord};
use super::protocol::{BindSource, InitConfig};
use super::spec::{self, SpecInputs};
use super::state::{now_rfc3339, State, Status};
use super::{names, sys, ContainerError};
use crate::Result;

/// The default grace period of `stop`, in seconds (Docker's).
pub const DEFAULT_STOP_TIMEOUT: i64 = 10;

/// What `wait` waits for (Docker's `condition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitCondition {
    /// Returns at once if the container is not running.
    NotRunning,
    /// Waits for the next exit even if it is not running now.
    NextExit,
    /// Waits until the container is removed.
    Removed,
}

/// How to reach a container's monitor to learn when it exits.
enum MonitorHandle {
    /// Started by this process: wait reaps it.
    Child(Child),
    /// Found running after an engine restart: a pidfd to poll.
    Pid(OwnedFd),
}

fn not_running(id: &str) -> crate::Error {
    ContainerError::Conflict(format!("Container {id} is not running")).into()
}

impl Runtime {
    /// Creates a container in `scope` (named `name`, or a generated name):
    /// resolves the image and command, makes its writable layer, saves it as
    /// `created`. Nothing is left behind on error.
    pub fn create(
        &self,
        scope: &str,
        name: Option<&str>,
        config: ContainerConfig,
    ) -> Result<Arc<Container>> {
        let image = self.images.resolve(scope, &config.image)?;
        let args = spec::command(&config, &image)?;
        config.limits.validate().map_err(ContainerError::from)?;
        super::capabilities::validate(&config.cap_add, &config.cap_drop)
            .map_err(ContainerError::InvalidConfig)?;
        if self.is_learner_scope(scope) {
            for (asked, what) in [
                (config.privileged, "--privileged"),
                (config.pid_host, "--pid host"),
            ] {
                if asked {
                    return Err(ContainerError::Forbidden(format!(
                        "{what} is not allowed in this classroom: containers stay sandboxed"
                    ))
                    .into());
                }
            }
            if let Some(cap) = super::capabilities::learner_refused(&config.cap_add) {
                return Err(ContainerError::Forbidden(format!(
                    "capability {cap} is not allowed in this classroom"
                ))
                .into());
            }
        }
        if config.privileged && self.options.user_namespaces {
            return Err(ContainerError::InvalidConfig(
                "privileged mode is incompatible with user namespaces.  You must run the container in the host namespace when running privileged mode".into(),
            )
            .into());
        }
        let id = names::new_id();
        let ids = if self.options.user_namespaces {
            Some(self.id_range(scope)?)
        } else {
            None
        };
        let hostname = config
            .hostname
            .clone()
            .unwrap_or_else(|| id[..12].to_string());
        let mut record = ContainerRecord {
            id: id.clone(),
            name: String::new(),
            scope: scope.to_string(),
            created: now_rfc3339(),
            image_id: image.id.clone(),
            path: args[0].clone(),
            args: args[1..].to_vec(),
            hostname,
            config,
            state: State::default(),
            restart_count: 0,
        };
        let container = {
            // Name check and insertion under one lock: two creates cannot both
            // take a name.
            let mut map = self.map();
            record.name = match name {
                Some(n) => {
                    let n = names::validate(n)?;
                    if let Some(other) = map.values().find(|c| {
                        let r = c.lock();
                        c.id != id && r.scope == scope && r.name == n
                    }) {
                        return Err(names::conflict(&n, &other.id));
                    }
                    n
                }
                None => names::generate(|candidate| {
                    map.values().any(|c| {
                        let r = c.lock();
                        r.scope == scope && r.name == candidate
                    })
                }),
            };
            let container = Arc::new(Container {
                id: id.clone(),
                record: Mutex::new(record.clone()),
                changed: Condvar::new(),
                op: Mutex::new(()),
                removed: Default::default(),
            });
            map.insert(id.clone(), container.clone());
            container
        };
        let dir = self.dir_of(&id);
        let made = self
            .make_container_root(scope, &dir.root)
            .map_err(|e| io(&dir.root, e))
            .and_then(|_| launch::prepare_dir(&dir, ids).map_err(Into::into))
            .and_then(|_| self.save(&record));
        if let Err(e) = made {
            self.map().remove(&id);
            let _ = self.remove_container_root(&dir.root);
            return Err(e);
        }
        self.emit(&record, "create", &[]);
        Ok(container)
    }

    /// Starts a created or exited container. `attach` connects a client to
    /// its stdio before the command runs (no output is missed); its stream is
    /// returned. Starting a running container does nothing (`Ok(None)`).
    pub fn start(
        self: &Arc<Self>,
        container: &Arc<Container>,
        attach: Option<ControlRequest>,
    ) -> Result<Option<std::os::unix::net::UnixStream>> {
        let _op = container.op.lock().unwrap_or_else(|p| p.into_inner());
        self.start_locked(container, attach)
    }

    fn start_locked(
        self: &Arc<Self>,
        container: &Arc<Container>,
        attach: Option<ControlRequest>,
    ) -> Result<Option<std::os::unix::net::UnixStream>> {
        let record = container.snapshot();
        if record.state.status == Status::Paused {
            return Err(ContainerError::Conflict(
                "cannot start a paused container, try unpause instead".into(),
            )
            .into());
        }
        if record.state.running() && record.state.status != Status::Restarting {
            return Ok(None);
        }
        match self.launch(&record, attach) {
            Ok((monitor, pid, attached)) => {
                let monitor_pid = monitor.id() as i32;
                {
                    let mut r = container.lock();
                    r.state = State {
                        status: Status::Running,
                        pid,
                        monitor_pid,
                        monitor_start: process_start_time(monitor_pid).unwrap_or(0),
                        started_at: Some(now_rfc3339()),
                        finished_at: r.state.finished_at.clone(),
                        health: health_starting(&r.config, self, &r.image_id),
                        ..State::default()
                    };
                    self.save(&r)?;
                    self.emit(&r, "start", &[]);
                }
                container.changed.notify_all();
                self.watch(container.clone(), MonitorHandle::Child(monitor));
                let image_id = container.lock().image_id.clone();
                let config = container.lock().config.clone();
                if let Some(check) = super::health::effective(&config, self, &image_id) {
                    super::health::spawn(self.clone(), container.clone(), check);
                }
                Ok(attached)
            }
            Err(e) => {
                let mut r = container.lock();
                r.state.error = e.to_string();
                if let crate::Error::Container(ContainerError::Start { exit_code, .. }) = &e {
                    r.state.exit_code = *exit_code;
                }
                if r.state.status == Status::Restarting {
                    r.state.status = Status::Exited;
                }
                let _ = self.save(&r);
                drop(r);
                container.changed.notify_all();
                Err(e)
            }
        }
    }

    /// Cgroup, spec and monitor for one start; undoes the cgroup on failure.
    fn launch(
        &self,
        record: &ContainerRecord,
        attach: Option<ControlRequest>,
    ) -> Result<(Child, i32, Option<std::os::unix::net::UnixStream>)> {
        let image = self.images.resolve(&record.scope, &record.image_id)?;
        let ids = if self.options.user_namespaces {
            Some(self.id_range(&record.scope)?)
        } else {
            None
        };
        let dir = self.dir_of(&record.id);
        let _ = fs::remove_file(exit_file(&dir.root));
        let cgroup_path = self.cgroup_path(record);
        // A cgroup left by a crash is removed first.
        if let Ok(old) = Cgroup::open(&self.cgroups, &cgroup_path) {
            let _ = old.destroy();
        }
        let cgroup = Cgroup::create(&self.cgroups, &cgroup_path, &record.config.limits)
            .map_err(ContainerError::from)?;
        let cgroup_v1_dirs = match &self.cgroups {
            Hierarchy::V1 { root } => cgroup
                .paths()
                .into_iter()
                .filter_map(|p| {
                    let controller = p.strip_prefix(root).ok()?.components().next()?;
                    Some((controller.as_os_str().to_string_lossy().into_owned(), p))
                })
                .collect(),
            Hierarchy::V2 { .. } => Vec::new(),
        };
        let mut config = record.config.clone();
        config.hostname = Some(record.hostname.clone());
        let resolved = self.resolve_mounts(record, &image);
        let detached = match resolved {
            Ok((m, detached)) => {
                config.mounts = m;
                detached
            }
            Err(e) => {
                let _ = cgroup.destroy();
                return Err(e);
            }
        };
        let prepared = match self.network_prepare(record, &image, &dir.root, ids) {
            Ok(p) => p,
            Err(e) => {
                let _ = cgroup.destroy();
                return Err(e);
            }
        };
        config
            .mounts
            .extend(crate::net::start::file_mounts(&prepared));
        // Legacy links' variables, which the container's own override.
        config.env = [self.link_env(record), config.env].concat();
        let rootfs = dir.rootfs();
        let built = spec::build(
            &config,
            &SpecInputs {
                id: &record.id,
                image: &image,
                rootfs: &rootfs,
                ids,
                cgroup_v1_dirs,
                cgroup_v2: matches!(self.cgroups, Hierarchy::V2 { .. }),
            },
        );
        let mut spec = match built {
            Ok(s) => s,
            Err(e) => {
                self.net.release(&record.id);
                let _ = cgroup.destroy();
                return Err(e.into());
            }
        };
        crate::net::start::apply_to_spec(&prepared, &mut spec);
        self.sandbox_process(&record.scope, spec.process_mut().as_mut());
        let seccomp = match super::capabilities::seccomp_for(spec.process().as_ref(), self.seccomp)
        {
            Ok(s) => s,
            Err(e) => {
                self.net.release(&record.id);
                let _ = cgroup.destroy();
                return Err(ContainerError::from(e).into());
            }
        };
        let (bind_sources, bind_fds) = match detached_binds(&mut spec, &config, detached) {
            Ok(b) => b,
            Err(e) => {
                self.net.release(&record.id);
                let _ = cgroup.destroy();
                return Err(e.into());
            }
        };
        let network_hook = crate::net::start::needs_wiring(&prepared);
        let mut wire = |pid: i32| self.net.wire(&record.id, pid);
        let user = config.user.clone().or_else(|| {
            image
                .config
                .config()
                .as_ref()
                .and_then(|c| c.user().clone())
                .filter(|u| !u.is_empty())
        });
        // Checked at create; a record from before falls back to defaults.
        let log_limits = super::logs::limits_of(&config.host_config).unwrap_or_default();
        let launched = launch::launch(
            &self.options.init_binary,
            InitConfig {
                dir: dir.root.clone(),
                layers: image.layer_dirs.clone(),
                ids,
                cgroup: cgroup_path,
                spec,
                user,
                // Docker's privileged containers run unconfined.
                seccomp: Some(seccomp).filter(|_| !config.privileged),
                open_stdin: config.open_stdin,
                log_max_size: log_limits.max_size,
                log_max_files: log_limits.max_files,
                early_attach: attach,
                init: config.init,
                network_hook,
                bind_sources,
                bind_fds,
            },
            Some(&mut wire),
        );
        match launched {
            Ok(l) => {
                self.place_monitor(&record.scope, l.monitor.id());
                Ok((l.monitor, l.pid, l.attached))
            }
            Err(e) => {
                self.net.release(&record.id);
                let _ = cgroup.destroy();
                Err(e.into())
            }
        }
    }

    /// Watches a running container's monitor from a thread of its own.
    fn watch(self: &Arc<Self>, container: Arc<Container>, monitor: MonitorHandle) {
        let runtime = self.clone();
        std::thread::Builder::new()
            .name(format!("watch-{}", &container.id[..12]))
            .spawn(move || {
                match monitor {
                    MonitorHandle::Child(mut child) => {
                        let _ = child.wait();
                    }
                    MonitorHandle::Pid(pidfd) => wait_pidfd(&pidfd),
                }
                runtime.exited(&container);
            })
            .expect("spawn watcher thread");
    }

    /// Records an exit, then restarts or removes the container as configured.
    fn exited(self: &Arc<Self>, container: &Arc<Container>) {
        let record = container.snapshot();
        let dir = self.dir_of(&record.id);
        let exit: Option<ExitRecord> = fs::read(exit_file(&dir.root))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let path = self.cgroup_path(&record);
        let mut oom_killed = false;
        if let Ok(cgroup) = Cgroup::open(&self.cgroups, &path) {
            oom_killed = cgroup.oom_killed().unwrap_or(false);
            let _ = cgroup.destroy();
        }
        launch::unmount_rootfs(&dir);
        self.net.release(&record.id);
        let restart = {
            let mut r = container.lock();
            r.state.status = Status::Exited;
            r.state.pid = 0;
            r.state.monitor_pid = 0;
            r.state.exit_code = exit.map(|e| e.code).unwrap_or(255);
            r.state.oom_killed = oom_killed;
            r.state.finished_at = Some(now_rfc3339());
            if exit.is_none() {
                r.state.error = "container monitor ended without an exit status".into();
            }
            if let Some(h) = &mut r.state.health {
                h.status = "unhealthy".into();
            }
            let restart = r.config.restart_policy.should_restart(
                r.state.exit_code,
                r.restart_count,
                r.state.stopped_by_user,
            ) && !r.config.auto_remove;
            if restart {
                r.state.status = Status::Restarting;
            }
            let _ = self.save(&r);
            self.emit(&r, "die", &[("exitCode", r.state.exit_code.to_string())]);
            restart.then_some(r.restart_count)
        };
        container.changed.notify_all();
        if let Some(count) = restart {
            // Docker's back-off: 100 ms, doubling, reset after 10 s of running.
            let delay = Duration::from_millis(100u64 << count.min(9));
            std::thread::sleep(delay);
            let _op = container.op.lock().unwrap_or_else(|p| p.into_inner());
            let still = {
                let mut r = container.lock();
                let still = r.state.status == Status::Restarting && !r.state.stopped_by_user;
                if still {
                    r.restart_count += 1;
                }
                still
            };
            if still && self.map().contains_key(&container.id) {
                if let Err(e) = self.start_locked(container, None) {
                    tracing::warn!(id = %container.id, error = %e, "restart failed");
                }
            }
        } else if record.config.auto_remove && self.remove(container, true).is_ok() {
            self.remove_anonymous_volumes(&record);
        }
    }

    /// After an engine restart: watches a container whose monitor still runs,
    /// or records the exit of one whose monitor is gone.
    pub(crate) fn reattach(self: &Arc<Self>, container: &Arc<Container>) -> Result<()> {
        let record = container.snapshot();
        if !record.state.running() {
            return Ok(());
        }
        let alive = record.state.monitor_pid > 0
            && process_start_time(record.state.monitor_pid) == Some(record.state.monitor_start)
            && record.state.monitor_start != 0;
        if alive {
            if let Ok(pidfd) = sys::pidfd_open(record.state.monitor_pid) {
                self.net.readopt(&record.id);
                self.watch(container.clone(), MonitorHandle::Pid(pidfd));
                return Ok(());
            }
        }
        self.exited(container);
        Ok(())
    }

    /// Stops a running container: its stop signal, up to `timeout` seconds
    /// (the container's own, else 10), then SIGKILL. `Ok(false)` when it was
    /// not running (Docker answers 304).
    pub fn stop(&self, container: &Arc<Container>, timeout: Option<i64>) -> Result<bool> {
        let _op = container.op.lock().unwrap_or_else(|p| p.into_inner());
        let record = container.snapshot();
        if !record.state.running() {
            return Ok(false);
        }
        container.lock().state.stopped_by_user = true;
        if record.state.status == Status::Restarting {
            let mut r = container.lock();
            r.state.status = Status::Exited;
            let _ = self.save(&r);
            return Ok(true);
        }
        let signal = self.stop_signal(&record);
        let timeout = timeout
            .or(record.config.stop_timeout)
            .unwrap_or(DEFAULT_STOP_TIMEOUT);
        if timeout != 0 {
            let _ = self.signal(&record, signal);
        }
        if record.state.status == Status::Paused {
            let _ = self.thaw(&record);
        }
        let grace = if timeout < 0 {
            None
        } else {
            Some(Duration::from_secs(timeout as u64))
        };
        if !self.wait_stopped(container, grace) {
            self.emit(
                &record,
                "kill",
                &[("signal", (Signal::SIGKILL as i32).to_string())],
            );
            let _ = self.signal(&record, Signal::SIGKILL);
            self.wait_stopped(container, None);
        }
        self.emit(&record, "stop", &[]);
        Ok(true)
    }

    /// Sends `signal` to the container's pid 1.
    pub fn kill(&self, container: &Arc<Container>, signal: Signal) -> Result<()> {
        let _op = container.op.lock().unwrap_or_else(|p| p.into_inner());
        let record = container.snapshot();
        if !matches!(record.state.status, Status::Running | Status::Paused) {
            return Err(not_running(&record.id));
        }
        container.lock().state.stopped_by_user = true;
        self.signal(&record, signal)?;
        self.emit(&record, "kill", &[("signal", (signal as i32).to_string())]);
        if signal == Signal::SIGKILL && record.state.status == Status::Paused {
            let _ = self.thaw(&record);
        }
        // Like dockerd, a KILL returns once the container has stopped, so
        // `docker kill web; docker start web` finds it exited.
        if signal == Signal::SIGKILL {
            self.wait_stopped(container, Some(Duration::from_secs(10)));
        }
        Ok(())
    }

    /// Freezes every process of a running container.
    pub fn pause(&self, container: &Arc<Container>) -> Result<()> {
        let _op = container.op.lock().unwrap_or_else(|p| p.into_inner());
        let record = container.snapshot();
        match record.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(ContainerError::Conflict(format!(
                    "Container {} is already paused",
                    record.id
                ))
                .into())
            }
            _ => return Err(not_running(&record.id)),
        }
        Cgroup::open(&self.cgroups, &self.cgroup_path(&record))
            .and_then(|c| c.freeze())
            .map_err(ContainerError::from)?;
        self.emit(&record, "pause", &[]);
        self.set_status(container, Status::Paused)
    }

    /// Thaws a paused container.
    pub fn unpause(&self, container: &Arc<Container>) -> Result<()> {
        let _op = container.op.lock().unwrap_or_else(|p| p.into_inner());
        let record = container.snapshot();
        if record.state.status != Status::Paused {
            return Err(
                ContainerError::Conflict(format!("Container {} is not paused", record.id)).into(),
            );
        }
        self.thaw(&record)?;
        self.emit(&record, "unpause", &[]);
        self.set_status(container, Status::Running)
    }

    /// Stops (if running) and starts a container again.
    pub fn restart(
        self: &Arc<Self>,
        container: &Arc<Container>,
        timeout: Option<i64>,
    ) -> Result<()> {
        self.stop(container, timeout)?;
        let _op = container.op.lock().unwrap_or_else(|p| p.into_inner());
        self.start_locked(container, None)?;
        self.emit(&container.snapshot(), "restart", &[]);
        Ok(())
    }

    /// Waits as `condition` says and returns the exit code.
    pub fn wait(&self, container: &Arc<Container>, condition: WaitCondition) -> i32 {
        let mut r = container.lock();
        let started_at = r.state.started_at.clone();
        let finished_at = r.state.finished_at.clone();
        loop {
            let done = match condition {
                // A restarting container counts as stopped, as dockerd tells
                // its waiters (the restart is a new run).
                WaitCondition::NotRunning => {
                    !r.state.running() || r.state.status == Status::Restarting
                }
                WaitCondition::NextExit => {
                    r.state.finished_at != finished_at
                        || (r.state.started_at != started_at && !r.state.running())
                }
                WaitCondition::Removed => container.removed.load(Ordering::SeqCst),
            };
            if done {
                return r.state.exit_code;
            }
            r = container
                .changed
                .wait_timeout(r, Duration::from_millis(500))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Removes a container and its files. A running one only with `force`
    /// (which kills it first).
    pub fn remove(&self, container: &Arc<Container>, force: bool) -> Result<()> {
        let _op = container.op.lock().unwrap_or_else(|p| p.into_inner());
        let record = container.snapshot();
        // A restarting container is refused too: it is about to run again.
        if !force && (record.state.running() || record.state.status == Status::Restarting) {
            let verb = match record.state.status {
                Status::Paused => "paused",
                Status::Restarting => "restarting",
                _ => "running",
            };
            return Err(ContainerError::Conflict(format!(
                "cannot remove container \"/{}\": container is {verb}: stop the container before removing or force remove",
                record.name
            ))
            .into());
        }
        if record.state.status == Status::Restarting {
            container.lock().state.stopped_by_user = true;
        }
        if record.state.running() && record.state.status != Status::Restarting {
            container.lock().state.stopped_by_user = true;
            let _ = self.signal(&record, Signal::SIGKILL);
            if record.state.status == Status::Paused {
                let _ = self.thaw(&record);
            }
            self.wait_stopped(container, None);
        }
        {
            let mut r = container.lock();
            r.state.status = Status::Removing;
            r.state.stopped_by_user = true;
        }
        if let Ok(cgroup) = Cgroup::open(&self.cgroups, &self.cgroup_path(&record)) {
            let _ = cgroup.destroy();
        }
        let dir = self.dir_of(&record.id);
        launch::unmount_rootfs(&dir);
        self.net.release(&record.id);
        self.remove_container_root(&dir.root)
            .map_err(|e| io(&dir.root, e))?;
        self.map().remove(&record.id);
        {
            let _r = container.lock();
            container.removed.store(true, Ordering::SeqCst);
        }
        container.changed.notify_all();
        self.emit(&record, "destroy", &[]);
        Ok(())
    }

    /// `docker update`: new resource limits (and restart policy) for a
    /// container; a running one's cgroup takes them at once. `host_config`
    /// entries replace those inspect shows back.
    pub fn update(
        &self,
        container: &Arc<Container>,
        limits: Limits,
        restart: Option<super::config::RestartPolicy>,
        host_config: serde_json::Map<String, serde_json::Value>,
    ) -> Result<()> {
        limits.validate().map_err(ContainerError::from)?;
        let mut r = container.lock();
        if restart.is_some() && r.config.auto_remove {
            return Err(ContainerError::InvalidConfig(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            )
            .into());
        }
        if r.state.running() {
            Cgroup::open(&self.cgroups, &self.cgroup_path(&r))
                .and_then(|c| c.apply(&limits))
                .map_err(ContainerError::from)?;
        }
        r.config.limits = limits;
        if let Some(p) = restart {
            r.config.restart_policy = p;
        }
        if !r.config.host_config.is_object() {
            r.config.host_config = serde_json::json!({});
        }
        if let Some(obj) = r.config.host_config.as_object_mut() {
            obj.extend(host_config);
        }
        self.save(&r)?;
        self.emit(&r, "update", &[]);
        Ok(())
    }

    /// Renames a container within its scope.
    pub fn rename(&self, container: &Arc<Container>, new_name: &str) -> Result<()> {
        let new_name = names::validate(new_name)?;
        let map = self.map();
        let scope = container.lock().scope.clone();
        if let Some(other) = map.values().find(|c| {
            let r = c.lock();
            r.scope == scope && r.name == new_name
        }) {
            return Err(names::conflict(&new_name, &other.id));
        }
        let mut r = container.lock();
        let old = std::mem::replace(&mut r.name, new_name);
        self.save(&r)?;
        self.emit(&r, "rename", &[("oldName", format!("/{old}"))]);
        Ok(())
    }

    fn set_status(&self, container: &Arc<Container>, status: Status) -> Result<()> {
        let mut r = container.lock();
        r.state.status = status;
        self.save(&r)?;
        drop(r);
        container.changed.notify_all();
        Ok(())
    }

    fn thaw(&self, record: &ContainerRecord) -> Result<()> {
        Cgroup::open(&self.cgroups, &self.cgroup_path(record))
            .and_then(|c| c.thaw())
            .map_err(|e| ContainerError::from(e).into())
    }

    fn signal(&self, record: &ContainerRecord, signal: Signal) -> Result<()> {
        if record.state.pid <= 0 {
            return Err(not_running(&record.id));
        }
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(record.state.pid), signal).map_err(|e| {
            ContainerError::Io {
                context: format!("signal {}", record.id),
                source: e.into(),
            }
            .into()
        })
    }

    /// The container's stop signal: its own, the image's, or SIGTERM.
    fn stop_signal(&self, record: &ContainerRecord) -> Signal {
        let from_image = || {
            self.images
                .resolve(&record.scope, &record.image_id)
                .ok()
                .and_then(|i| {
                    i.config
                        .config()
                        .as_ref()
                        .and_then(|c| c.stop_signal().clone())
                })
        };
        record
            .config
            .stop_signal
            .clone()
            .or_else(from_image)
            .and_then(|s| parse_signal(&s).ok())
            .unwrap_or(Signal::SIGTERM)
    }

    /// Waits until the container is no longer running, at most `limit`.
    fn wait_stopped(&self, container: &Arc<Container>, limit: Option<Duration>) -> bool {
        let deadline = limit.map(|l| Instant::now() + l);
        let mut r = container.lock();
        loop {
            if !r.state.running() || r.state.status == Status::Restarting {
                return true;
            }
            let step = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return false;
                    }
                    left.min(Duration::from_millis(200))
                }
                None => Duration::from_millis(200),
            };
            r = container
                .changed
                .wait_timeout(r, step)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }
}

/// The cgroup of a container, relative to the hierarchy root.
pub fn cgroup_path(record: &ContainerRecord) -> String {
    format!("berth/{}/{}", record.scope, record.id)
}

/// Parses `SIGTERM`, `TERM`, `term` or `15`, with Docker's error otherwise.
pub fn parse_signal(text: &str) -> std::result::Result<Signal, ContainerError> {
    if let Ok(n) = text.parse::<i32>() {
        return Signal::try_from(n)
            .map_err(|_| ContainerError::InvalidConfig(format!("Invalid signal: {text}")));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| ContainerError::InvalidConfig(format!("Invalid signal: {text}")))
}

fn health_starting(
    config: &ContainerConfig,
    runtime: &Runtime,
    image_id: &str,
) -> Option<super::state::Health> {
    super::health::effective(config, runtime, image_id).map(|_| super::state::Health {
        status: "starting".into(),
        ..Default::default()
    })
}

/// Start time of a process in clock ticks since boot (`/proc/<pid>/stat` field 22).
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_comm = &stat[stat.rfind(')')? + 2..];
    after_comm.split(' ').nth(19)?.parse().ok()
}

fn wait_pidfd(pidfd: &OwnedFd) {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    loop {
        let mut fds = [PollFd::new(pidfd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => return,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_in_every_spelling_docker_accepts() {
        assert_eq!(parse_signal("SIGKILL").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("kill").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("9").unwrap(), Signal::SIGKILL);
        assert_eq!(parse_signal("HUP").unwrap(), Signal::SIGHUP);
        assert!(parse_signal("SIGNOPE")
            .unwrap_err()
            .to_string()
            .contains("Invalid signal"));
    }

    #[test]
    fn start_time_of_this_process_is_stable() {
        let me = std::process::id() as i32;
        let t = process_start_time(me).unwrap();
        assert!(t > 0);
        assert_eq!(process_start_time(me), Some(t));
        assert_eq!(process_start_time(i32::MAX), None);
    }
}

/// The detached bind mounts of a start, each tied to its mount in the spec,
/// whose type becomes [`spec::DETACHED_BIND`]: its source path (the
/// learner's, kept for messages) is never mounted.
fn detached_binds(
    spec: &mut oci_spec::runtime::Spec,
    config: &ContainerConfig,
    detached: Vec<crate::volume::mounts::Detached>,
) -> std::result::Result<(Vec<BindSource>, Vec<OwnedFd>), ContainerError> {
    let mut sources = Vec::with_capacity(detached.len());
    let mut fds = Vec::with_capacity(detached.len());
    for d in detached {
        let mount = spec::config_mount_index(spec, config, d.index)?;
        if let Some(m) = spec.mounts_mut().as_mut().and_then(|m| m.get_mut(mount)) {
            m.set_typ(Some(spec::DETACHED_BIND.to_string()));
        }
        sources.push(BindSource {
            mount,
            dev: d.dev,
            ino: d.ino,
            dir: d.dir,
        });
        fds.push(d.mount);
    }
    Ok((sources, fds))
}
