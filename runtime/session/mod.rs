//! A learner's session: its nodes (a lab container plus the scope whose
//! Engine API socket is mounted into it), the limits they share, and
//! complete teardown.
//!
//! - [`lab`]: the `lab` image (busybox + the host's docker CLI).
//! - [`cgroup`]: the session's cgroup subtree (`berth/sessions/<id>`).
//! - [`disk`]: the session's own filesystem (its disk budget, enforced by
//!   the kernel); [`budget`]: what the session uses of it, shared content
//!   included.
//! - [`netns`]: the node's network namespace, pinned, with `lo` up.
//! - [`node`]: making and removing one node.
//! - [`sweep`]: what a previous run left behind, removed on start.
//!
//! Names: a session `<id>` (12 hex digits) owns the directory
//! `<data>/sessions/<id>/`, the cgroup `berth/classroom-<hash>/<id>`, the uid range
//! keyed `<id>`, and per node `<name>` the scopes `<id>-<name>` (what the
//! node's docker CLI sees) and `<id>-<name>-lab` (the lab container alone,
//! so `docker ps` in the lab does not show the lab itself).

pub mod budget;
pub mod cgroup;
pub mod disk;
pub mod lab;
pub mod netns;
pub mod network;
pub mod node;
pub mod overlay;
pub mod registry;
pub mod sweep;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::container::cgroup::Limits;
use crate::engine::Engine;

pub use budget::Budget;
pub use node::Node;

/// Errors making, using or removing a session.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Runtime(#[from] crate::Error),
    #[error("session cgroup: {0}")]
    Cgroup(#[from] crate::container::cgroup::CgroupError),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> SessionError {
    let context = context.into();
    move |source| SessionError::Io { context, source }
}

/// The scope that holds the classroom's own images (`busybox`, `lab`).
pub const BASE_SCOPE: &str = "classroom-base";

/// What every session may use, shared by all its nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SessionLimits {
    /// Memory for the labs and all they start, bytes.
    pub memory_bytes: i64,
    /// Processes and threads.
    pub pids: i64,
    /// CPUs (CFS quota over a 100 ms period).
    pub cpus: f64,
    /// Disk the session may use, bytes: the size of its filesystem (writable
    /// layers, volumes, logs, scratch) and the budget that the images and
    /// registry pushes only it references count against too.
    pub disk_bytes: u64,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            memory_bytes: 512 << 20,
            pids: 512,
            cpus: 1.0,
            disk_bytes: 2 << 30,
        }
    }
}

impl SessionLimits {
    /// As cgroup limits: no swap, CFS quota for the CPUs.
    pub fn cgroup_limits(&self) -> Limits {
        Limits {
            memory: Some(self.memory_bytes),
            memory_swap: Some(self.memory_bytes),
            cpu_quota: Some((self.cpus * 100_000.0) as i64),
            cpu_period: Some(100_000),
            pids: Some(self.pids),
            ..Limits::default()
        }
    }
}

/// What is written to `<data>/sessions/<id>/session.json` before anything
/// else is made, so a sweep after a crash knows every scope to remove.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SessionRecord {
    pub id: String,
    pub scopes: Vec<String>,
}

/// One session: its nodes and its share of the host.
pub struct Session {
    pub id: String,
    pub dir: PathBuf,
    pub nodes: Vec<Arc<Node>>,
    pub limits: SessionLimits,
}

impl Session {
    /// The node called `name`.
    pub fn node(&self, name: &str) -> Option<&Arc<Node>> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// Makes and removes sessions over one engine.
pub struct Sessions {
    pub engine: Arc<Engine>,
    /// Where the engine-side tasks (each node's Engine API) run.
    pub handle: tokio::runtime::Handle,
    pub limits: SessionLimits,
}

/// A fresh session ID: 12 hex digits.
pub fn new_id() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("{:012x}", n & 0xffff_ffff_ffff)
}

impl Sessions {
    pub fn new(engine: Arc<Engine>, handle: tokio::runtime::Handle, limits: SessionLimits) -> Self {
        Self {
            engine,
            handle,
            limits,
        }
    }

    /// The cgroup below which this classroom's sessions live.
    pub fn cgroup_root(&self) -> String {
        cgroup::sessions_root(self.engine.runtime.data_dir().root())
    }

    /// `<data>/sessions`.
    pub fn root(&self) -> PathBuf {
        self.engine.runtime.data_dir().root().join("sessions")
    }

    /// Makes a session with `nodes` nodes named `node1`, `node2`, … Blocking:
    /// call from a blocking thread. Nothing is left behind on error.
    pub fn create(&self, nodes: usize) -> Result<Session, SessionError> {
        let id = new_id();
        let dir = self.root().join(&id);
        fs::create_dir_all(&dir).map_err(io_err(format!("create {}", dir.display())))?;
        set_mode(&self.root(), 0o711)?;
        set_mode(&dir, 0o711)?;
        let names: Vec<String> = (1..=nodes.max(1)).map(|i| format!("node{i}")).collect();
        let record = SessionRecord {
            id: id.clone(),
            scopes: names
                .iter()
                .flat_map(|n| [node::scope_name(&id, n), node::lab_scope_name(&id, n)])
                .collect(),
        };
        write_record(&dir, &record)?;
        let mut session = Session {
            id: id.clone(),
            dir: dir.clone(),
            nodes: Vec::new(),
            limits: self.limits,
        };
        let made = (|| -> Result<(), SessionError> {
            disk::create(&dir, self.limits.disk_bytes)
                .map_err(io_err("make the session's filesystem"))?;
            // The bootstrapped images belong to the classroom (a scope of
            // its own), so no session's budget counts them as its alone.
            let images = self.engine.runtime.images();
            images
                .ensure_busybox(BASE_SCOPE)
                .map_err(crate::Error::from)?;
            images.ensure_lab(BASE_SCOPE).map_err(crate::Error::from)?;
            cgroup::create(
                self.engine.runtime.cgroups(),
                &self.cgroup_root(),
                &id,
                &self.limits.cgroup_limits(),
            )?;
            for name in &names {
                let n = node::create(self, &id, &dir, name)?;
                session.nodes.push(Arc::new(n));
            }
            self.connect(&session)
        })();
        if let Err(e) = made {
            self.destroy(&session);
            return Err(e);
        }
        Ok(session)
    }

    /// Puts every node of `session` on the session network (those already
    /// on it stay as they are) and writes every lab's `/etc/hosts` with all
    /// the nodes' names. Call again after adding a node.
    pub fn connect(&self, session: &Session) -> Result<(), SessionError> {
        for n in &session.nodes {
            network::attach(&session.dir, &n.name, &n.host_netns())
                .map_err(io_err(format!("connect {} to the session network", n.name)))?;
        }
        for n in &session.nodes {
            let hosts = self.engine.runtime.dir_of(&n.lab.id).root.join("hosts");
            network::write_hosts(&session.dir, &hosts)
                .map_err(io_err(format!("write /etc/hosts of {}", n.name)))?;
        }
        Ok(())
    }

    /// Adds node `name` (`node3`) to a running `session` and returns it; the
    /// caller puts it beside the others. The session's record names its
    /// scopes first, so a sweep after a crash removes them too. Blocking.
    pub fn add_node(&self, session: &Session, name: &str) -> Result<Arc<Node>, SessionError> {
        let mut record = read_record(&session.dir).unwrap_or_else(|| SessionRecord {
            id: session.id.clone(),
            scopes: Vec::new(),
        });
        for scope in [
            node::scope_name(&session.id, name),
            node::lab_scope_name(&session.id, name),
        ] {
            if !record.scopes.contains(&scope) {
                record.scopes.push(scope);
            }
        }
        write_record(&session.dir, &record)?;
        Ok(Arc::new(node::create(
            self,
            &session.id,
            &session.dir,
            name,
        )?))
    }

    /// Removes everything of `session`: its nodes' containers, sockets,
    /// namespaces, scopes and image references, its cgroup subtree, uid
    /// range and directory. Blocking. What could not be removed is logged
    /// and returned (the next start's sweep retries it).
    pub fn destroy(&self, session: &Session) -> Vec<String> {
        let mut left = Vec::new();
        for n in &session.nodes {
            n.stop_engine();
        }
        let record = read_record(&session.dir).unwrap_or_else(|| SessionRecord {
            id: session.id.clone(),
            scopes: Vec::new(),
        });
        left.extend(sweep::remove_session(&self.engine, &session.dir, &record));
        if !left.is_empty() {
            tracing::warn!(session = %session.id, ?left, "session teardown left things behind");
        }
        left
    }

    /// Freezes (or thaws) every process of the session: what the disk quota
    /// does to a session past it, until the learner resets the lab.
    pub fn set_frozen(&self, session: &Session, frozen: bool) -> Result<(), SessionError> {
        let h = self.engine.runtime.cgroups();
        let cg = crate::container::cgroup::Cgroup::open(
            h,
            &cgroup::session_cgroup(&self.cgroup_root(), &session.id),
        )?;
        if frozen {
            cg.freeze()?;
        } else {
            cg.thaw()?;
        }
        Ok(())
    }

    /// The session's disk budget and what it uses (its filesystem, and the
    /// images and registry content only it references).
    pub fn disk_budget(&self, session: &Session) -> Option<Budget> {
        let node = session.nodes.first()?;
        self.engine.disk_budget(&node.scope)
    }

    /// Bytes the session uses of its disk budget (see [`Self::disk_budget`]).
    pub fn disk_usage(&self, session: &Session) -> u64 {
        self.disk_budget(session).map(|b| b.used).unwrap_or(0)
    }
}

fn set_mode(dir: &Path, mode: u32) -> Result<(), SessionError> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(dir, fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("chmod {}", dir.display())))
}

fn write_record(dir: &Path, record: &SessionRecord) -> Result<(), SessionError> {
    let file = dir.join("session.json");
    fs::write(&file, serde_json::to_vec_pretty(record).unwrap_or_default())
        .map_err(io_err(format!("write {}", file.display())))
}

pub(crate) fn read_record(dir: &Path) -> Option<SessionRecord> {
    serde_json::from_slice(&fs::read(dir.join("session.json")).ok()?).ok()
}

/// Bytes on disk under `dir` (allocated blocks), not following symlinks and
/// staying on one filesystem.
pub fn dir_size(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(top) = fs::symlink_metadata(dir) else {
        return 0;
    };
    let dev = top.dev();
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.dev() != dev {
                continue;
            }
            total += m.blocks() * 512;
            if m.is_dir() {
                stack.push(e.path());
            }
        }
    }
    total
}
