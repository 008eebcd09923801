//! One node: a lab container from the `lab` image, running in the session's
//! cgroup subtree and uid range, with its scope's Engine API socket bind
//! mounted at `/var/run/docker.sock`, in a network namespace of its own.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::{cgroup, io_err, lab, netns, SessionError, Sessions};
use crate::container::{
    Container, ContainerConfig, ExecConfig, ExecProcess, MountConfig, ScopeSettings,
};
use crate::engine::{self, Scope};

/// The lab's pid 1: sleeps, reaps orphans (ash's `wait`), ends on SIGTERM.
const LAB_INIT: &str = "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait $!; done";

/// A node of a session.
pub struct Node {
    /// `node1`, `node2`, … (also the lab's host name).
    pub name: String,
    /// The scope the node's docker CLI sees.
    pub scope: String,
    /// The scope holding the lab container alone.
    pub lab_scope: String,
    /// `<data>/sessions/<session>/<name>/`.
    pub dir: PathBuf,
    /// The lab container.
    pub lab: Arc<Container>,
    serve: Mutex<Option<tokio::task::AbortHandle>>,
}

/// The scope name of node `node` of session `session`.
pub fn scope_name(session: &str, node: &str) -> String {
    format!("{session}-{node}")
}

/// The lab scope name of node `node` of session `session`.
pub fn lab_scope_name(session: &str, node: &str) -> String {
    format!("{session}-{node}-lab")
}

impl Node {
    /// The Engine API socket of the node's scope (host side).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// The node's network namespace: its scope's *host namespace*. The one
    /// place that defines where it is (see [`super::netns`]).
    pub fn host_netns(&self) -> PathBuf {
        host_netns_path(&self.dir)
    }

    /// Starts a login shell on a terminal in the lab (`rows`×`cols`).
    pub fn open_shell(
        &self,
        sessions: &Sessions,
        rows: u16,
        cols: u16,
    ) -> Result<ExecProcess, SessionError> {
        let config = ExecConfig {
            cmd: vec!["sh".into(), "-l".into()],
            env: vec!["TERM=xterm-256color".into()],
            workdir: Some("/root".into()),
            user: None,
            tty: true,
            stdin: true,
            console_size: Some((rows.max(1), cols.max(1))),
        };
        Ok(sessions.engine.runtime.exec(&self.lab, &config)?)
    }

    /// Stops serving the node's Engine API.
    pub fn stop_engine(&self) {
        if let Some(task) = self.serve.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

/// Where a node's pinned network namespace lives.
pub fn host_netns_path(node_dir: &Path) -> PathBuf {
    node_dir.join("netns")
}

/// Makes node `name` of `session`: the one place a node is made, for a new
/// session ([`Sessions::create`]) and for a node added to a running one
/// ([`Sessions::add_node`]). On error the caller's teardown removes what was
/// made (every name is recorded in the session's record first).
pub(super) fn create(
    sessions: &Sessions,
    session: &str,
    session_dir: &Path,
    name: &str,
) -> Result<Node, SessionError> {
    let runtime = &sessions.engine.runtime;
    let scope = scope_name(session, name);
    let lab_scope = lab_scope_name(session, name);
    let dir = session_dir.join(name);
    fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
    super::set_mode(&dir, 0o711)?;
    let settings = ScopeSettings {
        id_key: session.to_string(),
        cgroup_parent: cgroup::node_cgroup(&sessions.cgroup_root(), session, name),
        host_netns: Some(host_netns_path(&dir)),
        bind_root: None,
        disk_root: Some(super::disk::mount_point(session_dir)),
    };
    // The scopes' volumes live on the session's filesystem: the volume
    // store's directory of each scope points there.
    for s in [&scope, &lab_scope] {
        super::disk::link_volumes(runtime.data_dir().root(), session_dir, s)
            .map_err(io_err(format!("place the volumes of {s}")))?;
    }
    runtime.set_scope(&scope, settings.clone());
    runtime.set_scope(&lab_scope, settings.clone());
    super::registry::admit(&sessions.engine, session, &scope);
    let images = runtime.images();
    images.ensure_busybox(&scope).map_err(crate::Error::from)?;
    // The classroom's shared images (offline packs loaded at start) are the
    // node's too, by reference: content is the classroom's, names the node's.
    images
        .share_tags(super::BASE_SCOPE, &scope, &[super::lab::LAB_IMAGE])
        .map_err(crate::Error::from)?;
    images.ensure_lab(&lab_scope).map_err(crate::Error::from)?;

    // The scope's Engine API, reachable by the lab's root (the session's
    // base uid) alone.
    let socket = dir.join("docker.sock");
    let ids = runtime.id_range(&scope)?;
    let listener = {
        let _guard = sessions.handle.enter();
        engine::bind(&socket).map_err(io_err(format!("listen on {}", socket.display())))?
    };
    std::os::unix::fs::chown(&socket, Some(ids.base), Some(ids.base))
        .map_err(io_err("chown engine socket"))?;
    let serve = sessions.handle.spawn(sessions.engine.clone().serve(
        Scope {
            name: scope.clone(),
        },
        listener,
    ));

    let config = ContainerConfig {
        image: lab::LAB_IMAGE.into(),
        cmd: vec!["sh".into(), "-c".into(), LAB_INIT.into()],
        hostname: Some(name.to_string()),
        workdir: Some("/root".into()),
        // Where the learner's images go: `registry.local:5000/app` is
        // `<namespace>/app` in the classroom registry (lessons show it).
        env: vec![
            format!(
                "BERTH_REGISTRY={}",
                crate::engine::distribution::CLASSROOM_REGISTRY
            ),
            format!(
                "BERTH_REGISTRY_NAMESPACE={}",
                super::registry::namespace(session)
            ),
        ],
        // The lab's own namespace (lo only) becomes the node's host
        // namespace, where the node's bridges and published ports live.
        networking: crate::net::ContainerNetworking {
            mode: "none".into(),
            ..Default::default()
        },
        mounts: vec![MountConfig::Bind {
            source: socket.clone(),
            target: "/var/run/docker.sock".into(),
            read_only: false,
        }],
        labels: [("berth.session".to_string(), session.to_string())]
            .into_iter()
            .collect(),
        ..ContainerConfig::default()
    };
    let node = Node {
        name: name.to_string(),
        scope,
        lab_scope: lab_scope.clone(),
        dir: dir.clone(),
        lab: runtime.create(&lab_scope, Some("lab"), config)?,
        serve: Mutex::new(Some(serve.abort_handle())),
    };
    // The node's `docker run -v SRC:…` resolves SRC in the lab's root.
    runtime.set_scope(
        &node.scope,
        ScopeSettings {
            bind_root: Some(runtime.dir_of(&node.lab.id).rootfs()),
            ..settings
        },
    );
    runtime.start(&node.lab, None)?;
    let pid = node.lab.snapshot().state.pid;
    let ns = node.host_netns();
    netns::pin(pid, &ns).map_err(io_err("pin network namespace"))?;
    netns::loopback_up(&ns).map_err(io_err("bring lo up"))?;
    // Now that the namespace exists, the scope's networks move into it.
    if let Some(settings) = runtime.scope_settings(&node.scope) {
        runtime.set_scope(&node.scope, settings);
    }
    Ok(node)
}
