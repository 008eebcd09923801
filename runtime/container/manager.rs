//! [`Runtime`]: the image store, id ranges, cgroups and seccomp filter that
//! every launch shares, and the containers of one data directory with their
//! lifecycle (see [`super::lifecycle`] for the verbs).

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock};

use serde::{Deserialize, Serialize};

use super::cgroup::Hierarchy;
use super::config::ContainerConfig;
use super::ids::IdAllocator;
use super::launch::ContainerDir;
use super::seccomp::{self, SeccompProgram};
use super::state::State;
use super::ContainerError;
use crate::events::EventBus;
use crate::image::ImageStore;
use crate::{DataDir, Result};

/// Settings of a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// The `berth` executable that runs each container's monitor (`berth __init`).
    pub init_binary: PathBuf,
    /// Map container root to an unprivileged host uid range (on by default).
    pub user_namespaces: bool,
    /// One range for every scope (`berth daemon --userns-remap`, from
    /// /etc/subuid) instead of a range per scope allocated by Berth.
    pub fixed_ids: Option<super::spec::IdRange>,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            init_binary: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("berth")),
            user_namespaces: true,
            fixed_ids: None,
        }
    }
}

/// What is kept of a container in `containers/<id>/container.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 hex digits.
    pub id: String,
    /// The name, without Docker's leading slash.
    pub name: String,
    /// The scope that owns the name.
    pub scope: String,
    /// RFC 3339 creation time.
    pub created: String,
    /// The image's ID at creation.
    pub image_id: String,
    pub config: ContainerConfig,
    /// The command as it runs: program and arguments (`Path`, `Args`).
    pub path: String,
    pub args: Vec<String>,
    pub hostname: String,
    pub state: State,
    pub restart_count: u32,
}

/// A container known to the runtime: its record and a condition variable that
/// wakes waiters whenever the record changes.
#[derive(Debug)]
pub struct Container {
    pub id: String,
    pub(crate) record: Mutex<ContainerRecord>,
    pub(crate) changed: Condvar,
    /// Serializes lifecycle verbs on this container (start, stop, remove…).
    pub(crate) op: Mutex<()>,
    /// Set (under the record lock) once the container is removed, so waiters
    /// need not take the runtime's map lock while holding the record lock.
    pub(crate) removed: std::sync::atomic::AtomicBool,
}

impl Container {
    /// A copy of the current record.
    pub fn snapshot(&self) -> ContainerRecord {
        self.lock().clone()
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, ContainerRecord> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The container runtime of one data directory.
pub struct Runtime {
    pub(crate) data: DataDir,
    pub(crate) images: ImageStore,
    pub(crate) ids: IdAllocator,
    pub(crate) cgroups: Hierarchy,
    pub(crate) seccomp: &'static SeccompProgram,
    pub(crate) options: RuntimeOptions,
    pub(crate) containers: Mutex<BTreeMap<String, Arc<Container>>>,
    pub(crate) events: EventBus,
    pub(crate) net: crate::net::Networks,
    pub(crate) volumes: crate::volume::Volumes,
    /// Settings of scopes that have any (see [`super::scope`]).
    pub(crate) scopes: RwLock<HashMap<String, super::scope::ScopeSettings>>,
}

impl Runtime {
    /// Opens the runtime over a locked data directory and finds the containers
    /// it left: those whose monitor still runs are running; the others exited.
    pub fn open(data: DataDir, options: RuntimeOptions) -> Result<Arc<Self>> {
        let images = ImageStore::open(&data.image_dir())?;
        let ids = IdAllocator::open(data.root().join("idmap.json"))?;
        let cgroups = Hierarchy::detect().map_err(ContainerError::from)?;
        let net = crate::net::Networks::open(data.root())?;
        let volumes = crate::volume::Volumes::open(data.root().join("volumes"));
        let runtime = Arc::new(Self {
            seccomp: seccomp::default_program(),
            data,
            images,
            ids,
            cgroups,
            options,
            containers: Mutex::new(BTreeMap::new()),
            events: EventBus::default(),
            net,
            volumes,
            scopes: RwLock::new(HashMap::new()),
        });
        runtime.recover()?;
        Ok(runtime)
    }

    /// Networks, published ports and scope settings.
    pub fn net(&self) -> &crate::net::Networks {
        &self.net
    }

    /// The image store.
    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    /// The data directory.
    pub fn data_dir(&self) -> &DataDir {
        &self.data
    }

    /// The id allocator (one host uid range per scope).
    pub fn ids(&self) -> &IdAllocator {
        &self.ids
    }

    /// What happened, for `docker events`.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// Records a container event with Docker's attributes (name, image, labels).
    pub(crate) fn emit(&self, record: &ContainerRecord, action: &str, extra: &[(&str, String)]) {
        let mut attributes: BTreeMap<String, String> = record.config.labels.clone();
        attributes.insert("name".into(), record.name.clone());
        attributes.insert("image".into(), record.config.image.clone());
        for (k, v) in extra {
            attributes.insert(k.to_string(), v.clone());
        }
        self.events
            .emit(&record.scope, "container", action, &record.id, attributes);
    }

    /// The cgroup hierarchy containers are placed in.
    pub fn cgroups(&self) -> &Hierarchy {
        &self.cgroups
    }

    /// A container's directory.
    pub fn dir_of(&self, id: &str) -> ContainerDir {
        ContainerDir::new(self.data.containers_dir().join(id))
    }

    /// Every container of `scope`, newest first (as `docker ps` lists them).
    pub fn list(&self, scope: &str) -> Vec<Arc<Container>> {
        let mut all: Vec<Arc<Container>> = self
            .map()
            .values()
            .filter(|c| c.lock().scope == scope)
            .cloned()
            .collect();
        all.sort_by_key(|c| std::cmp::Reverse(c.lock().created.clone()));
        all
    }

    /// Finds a container of `scope` by full ID, name (with or without the
    /// leading slash) or unambiguous ID prefix, as Docker does.
    pub fn get(&self, scope: &str, key: &str) -> Result<Arc<Container>> {
        let map = self.map();
        let name = key.strip_prefix('/').unwrap_or(key);
        let in_scope = |c: &&Arc<Container>| c.lock().scope == scope;
        if let Some(c) = map.get(key).filter(|c| in_scope(c)) {
            return Ok(c.clone());
        }
        if let Some(c) = map
            .values()
            .filter(in_scope)
            .find(|c| c.lock().name == name)
        {
            return Ok(c.clone());
        }
        if !key.is_empty() && key.chars().all(|c| c.is_ascii_hexdigit()) {
            let found: Vec<&Arc<Container>> = map
                .range(key.to_string()..)
                .take_while(|(id, _)| id.starts_with(key))
                .map(|(_, c)| c)
                .filter(in_scope)
                .collect();
            match found.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                _ => {
                    return Err(ContainerError::Ambiguous(key.to_string()).into());
                }
            }
        }
        Err(ContainerError::NotFound(key.to_string()).into())
    }

    pub(crate) fn map(&self) -> MutexGuard<'_, BTreeMap<String, Arc<Container>>> {
        self.containers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a container's record (atomically: temp file, then rename).
    pub(crate) fn save(&self, record: &ContainerRecord) -> Result<()> {
        let dir = self.dir_of(&record.id).root;
        let file = dir.join("container.json");
        let tmp = dir.join("container.json.tmp");
        let bytes =
            serde_json::to_vec_pretty(record).map_err(|e| io(&file, std::io::Error::other(e)))?;
        fs::write(&tmp, bytes)
            .and_then(|_| fs::rename(&tmp, &file))
            .map_err(|e| io(&file, e))?;
        Ok(())
    }

    /// Loads every container record of the data directory.
    fn recover(self: &Arc<Self>) -> Result<()> {
        let dir = self.data.containers_dir();
        let entries = fs::read_dir(&dir).map_err(|e| io(&dir, e))?;
        for entry in entries.flatten() {
            let file = entry.path().join("container.json");
            let Ok(bytes) = fs::read(&file) else {
                // A directory without a record is a container that was never
                // fully created (a crash mid-create): nothing refers to it.
                super::launch::unmount_rootfs(&ContainerDir::new(entry.path()));
                let _ = fs::remove_dir_all(entry.path());
                continue;
            };
            let record: ContainerRecord = match serde_json::from_slice(&bytes) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(file = %file.display(), error = %e, "unreadable container record kept aside");
                    continue;
                }
            };
            let container = Arc::new(Container {
                id: record.id.clone(),
                record: Mutex::new(record),
                changed: Condvar::new(),
                op: Mutex::new(()),
                removed: Default::default(),
            });
            self.map().insert(container.id.clone(), container.clone());
            self.reattach(&container)?;
        }
        Ok(())
    }
}

pub(crate) fn io(path: &Path, source: std::io::Error) -> crate::Error {
    ContainerError::Io {
        context: path.display().to_string(),
        source,
    }
    .into()
}
