//! Grading: Docker-aware checks evaluated in-process against one node's
//! scope through the runtime's Rust API (no HTTP, no CLI).
//!
//! A check names one subject (`container`, `container_image`, `image`,
//! `volume`, `network`, `registry`, `service`, `swarm`, `swarm_node`) and any
//! number of expectations about it; `after` makes it wait for earlier checks
//! of the same exercise (when one of them failed it is not tried and says so).
//!
//! - this file: the check format, validation, descriptions, running them.
//! - [`container`]: containers (state, ports, env, mounts, exec, HTTP).
//! - [`objects`]: images, volumes and networks.
//! - [`registry`]: repositories and tags in the session's registry namespace.
//! - [`swarm`]: services, their tasks, and the swarm's nodes.

pub mod container;
pub mod objects;
pub mod registry;
pub mod swarm;

use std::sync::Arc;

use berth_runtime::engine::Engine;
use serde::{Deserialize, Serialize};

/// One check as declared in a lesson.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    pub id: String,
    /// What the learner sees instead of the generated description.
    #[serde(default)]
    pub title: Option<String>,
    /// Checks (of the same exercise) that must pass first.
    #[serde(default)]
    pub after: Vec<String>,

    // Subjects: exactly one.
    /// A container by name.
    pub container: Option<String>,
    /// Any container made from this image (a running one preferred).
    pub container_image: Option<String>,
    pub image: Option<String>,
    pub volume: Option<String>,
    pub network: Option<String>,
    /// A repository in the session's registry namespace (`myapp`, or
    /// `registry.local:5000/myapp`).
    pub registry: Option<String>,
    /// A swarm service by name.
    pub service: Option<String>,
    /// The swarm the node belongs to (`swarm = true`).
    pub swarm: Option<bool>,
    /// A swarm node by host name (`node2`).
    pub swarm_node: Option<String>,

    // Containers.
    pub running: Option<bool>,
    /// `created`, `running`, `exited`, `paused`, …
    pub state: Option<String>,
    /// The image the container was made from.
    pub uses_image: Option<String>,
    /// A container port published on the host (`-p`).
    pub port: Option<u16>,
    /// The host port `port` is published on (`-p HOST:PORT`).
    pub host_port: Option<u16>,
    /// `KEY=VALUE` in the container's environment.
    pub env: Option<String>,
    /// A mount destination inside the container.
    pub mount: Option<String>,
    /// `healthy`, `unhealthy`, `starting`.
    pub health: Option<String>,
    /// Whether the kernel killed it for passing its memory limit
    /// (`State.OOMKilled`).
    pub oom_killed: Option<bool>,
    /// Restart policy name: `no`, `always`, `unless-stopped`, `on-failure`.
    pub restart: Option<String>,
    /// A command run inside the container; `contains` is looked for in
    /// its output, `exit_code` compared (default 0).
    pub exec: Option<Vec<String>>,
    pub exit_code: Option<i32>,
    /// An HTTP GET of this path on the published `port`.
    pub http: Option<String>,
    /// Expected HTTP status (default 200).
    pub status: Option<u16>,
    /// A line of `docker diff`: kind letter and path, `A /notes.txt`.
    pub diff: Option<String>,
    /// Text in the container's output (`docker logs`).
    pub logs: Option<String>,

    // Images.
    /// Exactly this many layers.
    pub layers: Option<usize>,
    /// At most this many bytes.
    pub max_size: Option<u64>,
    pub cmd: Option<Vec<String>>,
    /// A port the image exposes.
    pub exposes: Option<u16>,
    /// Text found in a step of the image's history.
    pub history: Option<String>,
    /// Another name of the very same image (same image ID).
    pub same_as: Option<String>,
    /// The user the image's containers run as (`Config.User`, `USER`);
    /// `root` matches an image that sets none.
    pub user: Option<String>,
    /// Text neither `docker history --no-trunc` nor the image's config
    /// (`docker image inspect`) shows: a secret that must not be baked in.
    pub hides: Option<String>,

    // Volumes.
    /// A file (path inside the volume).
    pub file: Option<String>,

    // Networks.
    /// Containers (by name) attached to the network.
    pub members: Option<Vec<String>>,

    // Registry repositories.
    /// A tag the repository holds.
    pub tag: Option<String>,

    // Swarm services.
    /// Desired replicas, all of them running (`3` is docker's `3/3`).
    pub replicas: Option<u64>,
    /// `replicated` or `global`.
    pub mode: Option<String>,
    /// The service's update state: `completed`, `updating`, `paused`,
    /// `rollback_started`, `rollback_completed`, `rollback_paused`.
    pub update: Option<String>,
    /// An image a task of the service ran, running now or in its task
    /// history (`service ps`): a rolled-back update still shows.
    pub task_image: Option<String>,

    // Swarms and their nodes.
    /// Members of the swarm.
    pub nodes: Option<usize>,
    /// Managers of the swarm.
    pub managers: Option<usize>,
    /// A node's availability: `active`, `pause`, `drain`.
    pub availability: Option<String>,
    /// A node's role: `manager` or `worker`.
    pub role: Option<String>,
    /// Tasks running on a node (`0` once it is drained).
    pub running_tasks: Option<usize>,

    /// Text expected in the output / body / file.
    pub contains: Option<String>,
}

/// A check's verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Verdict {
    pub id: String,
    pub description: String,
    pub passed: bool,
    pub expected: String,
    pub found: String,
}

pub(crate) type Outcome = Result<String, (String, String)>;

pub(crate) fn fail<T>(
    expected: impl Into<String>,
    found: impl Into<String>,
) -> Result<T, (String, String)> {
    Err((expected.into(), found.into()))
}

pub(crate) fn short(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() > 200 {
        format!("{}…", s.chars().take(200).collect::<String>())
    } else {
        s.to_string()
    }
}

impl Check {
    /// The subject keys that are set.
    fn subjects(&self) -> Vec<&'static str> {
        [
            ("container", self.container.is_some()),
            ("container_image", self.container_image.is_some()),
            ("image", self.image.is_some()),
            ("volume", self.volume.is_some()),
            ("network", self.network.is_some()),
            ("registry", self.registry.is_some()),
            ("service", self.service.is_some()),
            ("swarm", self.swarm.is_some()),
            ("swarm_node", self.swarm_node.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(name, _)| name)
        .collect()
    }

    /// Whether the check makes sense; the message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        const SUBJECTS: &str =
            "container, container_image, image, volume, network, registry, service, swarm, swarm_node";
        if self.id.trim().is_empty() {
            return Err("id is empty".into());
        }
        match self.subjects().len() {
            0 => return Err(format!("names no subject: give one of {SUBJECTS}")),
            1 => {}
            _ => return Err(format!("names more than one subject ({SUBJECTS})")),
        }
        let is_container = self.container.is_some() || self.container_image.is_some();
        let is_service = self.service.is_some();
        // (expectation, is it set, does it apply to this subject, to what it applies)
        let rules = [
            (
                "running",
                self.running.is_some(),
                is_container,
                "containers",
            ),
            ("state", self.state.is_some(), is_container, "containers"),
            (
                "uses_image",
                self.uses_image.is_some(),
                is_container || is_service,
                "containers and services",
            ),
            (
                "port",
                self.port.is_some(),
                is_container || is_service,
                "containers and services",
            ),
            (
                "host_port",
                self.host_port.is_some(),
                is_container,
                "containers",
            ),
            ("env", self.env.is_some(), is_container, "containers"),
            ("mount", self.mount.is_some(), is_container, "containers"),
            ("health", self.health.is_some(), is_container, "containers"),
            (
                "oom_killed",
                self.oom_killed.is_some(),
                is_container,
                "containers",
            ),
            (
                "restart",
                self.restart.is_some(),
                is_container,
                "containers",
            ),
            ("exec", self.exec.is_some(), is_container, "containers"),
            ("http", self.http.is_some(), is_container, "containers"),
            ("diff", self.diff.is_some(), is_container, "containers"),
            ("logs", self.logs.is_some(), is_container, "containers"),
            (
                "layers",
                self.layers.is_some(),
                self.image.is_some(),
                "images",
            ),
            (
                "max_size",
                self.max_size.is_some(),
                self.image.is_some(),
                "images",
            ),
            ("cmd", self.cmd.is_some(), self.image.is_some(), "images"),
            (
                "exposes",
                self.exposes.is_some(),
                self.image.is_some(),
                "images",
            ),
            (
                "history",
                self.history.is_some(),
                self.image.is_some(),
                "images",
            ),
            (
                "same_as",
                self.same_as.is_some(),
                self.image.is_some(),
                "images",
            ),
            ("user", self.user.is_some(), self.image.is_some(), "images"),
            (
                "hides",
                self.hides.is_some(),
                self.image.is_some(),
                "images",
            ),
            (
                "tag",
                self.tag.is_some(),
                self.registry.is_some(),
                "registry repositories",
            ),
            ("replicas", self.replicas.is_some(), is_service, "services"),
            ("mode", self.mode.is_some(), is_service, "services"),
            ("update", self.update.is_some(), is_service, "services"),
            (
                "task_image",
                self.task_image.is_some(),
                is_service,
                "services",
            ),
            (
                "running_tasks",
                self.running_tasks.is_some(),
                self.swarm_node.is_some(),
                "swarm nodes",
            ),
            (
                "nodes",
                self.nodes.is_some(),
                self.swarm.is_some(),
                "swarms",
            ),
            (
                "managers",
                self.managers.is_some(),
                self.swarm.is_some(),
                "swarms",
            ),
            (
                "availability",
                self.availability.is_some(),
                self.swarm_node.is_some(),
                "swarm nodes",
            ),
            (
                "role",
                self.role.is_some(),
                self.swarm_node.is_some(),
                "swarm nodes",
            ),
            ("diff", self.diff.is_some(), is_container, "containers"),
            ("logs", self.logs.is_some(), is_container, "containers"),
        ];
        for (name, set, applies, to) in rules {
            if set && !applies {
                return Err(format!("{name} applies to {to} only"));
            }
        }
        if self.swarm == Some(false) {
            return Err("swarm = false checks nothing: use swarm = true".into());
        }
        if let Some(m) = &self.mode {
            if m != "replicated" && m != "global" {
                return Err(format!("mode {m:?} is not replicated or global"));
            }
        }
        if let Some(a) = &self.availability {
            if !["active", "pause", "drain"].contains(&a.as_str()) {
                return Err(format!("availability {a:?} is not active, pause or drain"));
            }
        }
        if let Some(r) = &self.role {
            if r != "manager" && r != "worker" {
                return Err(format!("role {r:?} is not manager or worker"));
            }
        }
        if let Some(r) = &self.registry {
            registry::repository(r)?;
        }
        if self.file.is_some() && self.volume.is_none() {
            return Err("file applies to volumes only".into());
        }
        if self.members.is_some() && self.network.is_none() {
            return Err("members applies to networks only".into());
        }
        if self.http.is_some() && self.port.is_none() {
            return Err("http needs the port to ask".into());
        }
        if self.host_port.is_some() && self.port.is_none() {
            return Err("host_port needs the container port it publishes".into());
        }
        if self.exec.as_ref().is_some_and(|c| c.is_empty()) {
            return Err("exec is an empty command".into());
        }
        if let Some(f) = &self.file {
            if f.split('/').any(|p| p == "..") {
                return Err(format!("file {f:?} leaves the volume"));
            }
        }
        if self.hides.as_ref().is_some_and(|h| h.trim().is_empty()) {
            return Err("hides is empty: name the secret text".into());
        }
        if let Some(e) = &self.env {
            if !e.contains('=') {
                return Err(format!("env {e:?} is not KEY=VALUE"));
            }
        }
        if let Some(d) = &self.diff {
            if !matches!(d.split_once(' '), Some(("A" | "C" | "D", p)) if p.starts_with('/')) {
                return Err(format!(
                    "diff {d:?} is not a line of docker diff (A, C or D, a space, an absolute path)"
                ));
            }
        }
        Ok(())
    }

    /// What the check looks for, in words.
    pub fn describe(&self) -> String {
        if let Some(t) = &self.title {
            return t.clone();
        }
        let subject = if let Some(c) = &self.container {
            format!("container {c}")
        } else if let Some(i) = &self.container_image {
            format!("a container of image {i}")
        } else if let Some(i) = &self.image {
            format!("image {i}")
        } else if let Some(v) = &self.volume {
            format!("volume {v}")
        } else if let Some(n) = &self.network {
            format!("network {n}")
        } else if let Some(r) = &self.registry {
            format!(
                "repository {} in your registry namespace",
                registry::display(r)
            )
        } else if let Some(s) = &self.service {
            format!("service {s}")
        } else if self.swarm.is_some() {
            "the swarm".into()
        } else if let Some(n) = &self.swarm_node {
            format!("swarm node {n}")
        } else {
            "nothing".into()
        };
        let mut parts = Vec::new();
        if self.running == Some(true) {
            parts.push("is running".to_string());
        }
        if self.running == Some(false) {
            parts.push("is not running".to_string());
        }
        if let Some(s) = &self.state {
            parts.push(format!("is {s}"));
        }
        if let Some(i) = &self.uses_image {
            parts.push(format!("runs image {i}"));
        }
        if let Some(h) = &self.http {
            parts.push(format!(
                "answers HTTP GET {h} on port {}",
                self.port.unwrap_or(0)
            ));
        }
        match (self.port, self.host_port) {
            (Some(p), Some(h)) => parts.push(format!("publishes port {p} on host port {h}")),
            (Some(p), None) if self.http.is_none() => parts.push(format!("publishes port {p}")),
            _ => {}
        }
        if let Some(e) = &self.env {
            parts.push(format!("has {e} in its environment"));
        }
        if let Some(m) = &self.mount {
            parts.push(format!("has a mount at {m}"));
        }
        if let Some(h) = &self.health {
            parts.push(format!("is {h}"));
        }
        match self.oom_killed {
            Some(true) => parts.push("was killed for passing its memory limit".into()),
            Some(false) => parts.push("was not killed for memory".into()),
            None => {}
        }
        if let Some(r) = &self.restart {
            parts.push(format!("restarts {r}"));
        }
        if let Some(c) = &self.exec {
            parts.push(format!("runs `{}` successfully", c.join(" ")));
        }
        if let Some(d) = &self.diff {
            parts.push(format!("shows {d:?} in docker diff"));
        }
        if let Some(l) = &self.logs {
            parts.push(format!("printed {l:?}"));
        }
        if let Some(n) = self.layers {
            parts.push(format!("has {n} layers"));
        }
        if let Some(n) = self.max_size {
            parts.push(format!("is at most {n} bytes"));
        }
        if let Some(c) = &self.cmd {
            parts.push(format!("has CMD {c:?}"));
        }
        if let Some(p) = self.exposes {
            parts.push(format!("exposes port {p}"));
        }
        if let Some(h) = &self.history {
            parts.push(format!("was built with {h:?}"));
        }
        if let Some(o) = &self.same_as {
            parts.push(format!("is the same image as {o}"));
        }
        if let Some(u) = &self.user {
            parts.push(format!("runs as user {u}"));
        }
        if let Some(h) = &self.hides {
            parts.push(format!("shows {h:?} in neither docker history nor inspect"));
        }
        if let Some(f) = &self.file {
            parts.push(format!("holds file {f}"));
        }
        if let Some(m) = &self.members {
            parts.push(format!("connects {}", m.join(", ")));
        }
        if let Some(t) = &self.tag {
            parts.push(format!("has tag {t}"));
        }
        if let Some(n) = self.replicas {
            parts.push(format!("runs {n}/{n} replicas"));
        }
        if let Some(m) = &self.mode {
            parts.push(format!("is {m}"));
        }
        if let Some(u) = &self.update {
            parts.push(format!("has update state {u}"));
        }
        if let Some(i) = &self.task_image {
            parts.push(format!("has run a task of image {i}"));
        }
        if let Some(n) = self.nodes {
            parts.push(format!("has {n} node{}", if n == 1 { "" } else { "s" }));
        }
        if let Some(n) = self.managers {
            parts.push(format!("has {n} manager{}", if n == 1 { "" } else { "s" }));
        }
        if let Some(a) = &self.availability {
            parts.push(format!("is {a}"));
        }
        if let Some(r) = &self.role {
            parts.push(format!("is a {r}"));
        }
        if let Some(n) = self.running_tasks {
            parts.push(format!("runs {n} task{}", if n == 1 { "" } else { "s" }));
        }
        if let Some(c) = &self.contains {
            parts.push(format!("shows {c:?}"));
        }
        if parts.is_empty() {
            parts.push("exists".into());
        }
        format!("{subject} {}", parts.join(", "))
    }
}

/// What checks look at: one node's scope of a session, through the engine.
#[derive(Clone)]
pub struct Target {
    pub engine: Arc<Engine>,
    /// The node's scope (what its docker CLI sees).
    pub scope: String,
    /// The session, whose registry namespace `registry` checks read.
    pub session: String,
}

/// Runs `checks` against `target`, in order, honouring `after`.
pub fn run_checks(target: &Target, checks: &[Check]) -> Vec<Verdict> {
    let mut out: Vec<Verdict> = Vec::new();
    for c in checks {
        let blocked: Vec<&str> = c
            .after
            .iter()
            .filter(|d| !out.iter().any(|v| &v.id == *d && v.passed))
            .map(String::as_str)
            .collect();
        let outcome = if blocked.is_empty() {
            evaluate(target, c)
        } else {
            fail(
                format!("{} to pass first", blocked.join(", ")),
                "not tried yet",
            )
        };
        let (passed, expected, found) = match outcome {
            Ok(found) => (true, c.describe(), found),
            Err((e, f)) => (false, e, f),
        };
        out.push(Verdict {
            id: c.id.clone(),
            description: c.describe(),
            passed,
            expected,
            found,
        });
    }
    out
}

fn evaluate(target: &Target, c: &Check) -> Outcome {
    let runtime = &target.engine.runtime;
    let scope = target.scope.as_str();
    if c.container.is_some() || c.container_image.is_some() {
        container::check(runtime, scope, c)
    } else if let Some(image) = &c.image {
        objects::image_check(runtime, scope, image, c)
    } else if let Some(v) = &c.volume {
        objects::volume_check(runtime, scope, v, c)
    } else if let Some(n) = &c.network {
        objects::network_check(runtime, scope, n, c)
    } else if let Some(r) = &c.registry {
        registry::check(target, r, c)
    } else if let Some(s) = &c.service {
        swarm::service_check(target, s, c)
    } else if c.swarm.is_some() {
        swarm::swarm_check(target, c)
    } else if let Some(n) = &c.swarm_node {
        swarm::node_check(target, n, c)
    } else {
        fail("a subject", "none")
    }
}

pub(crate) fn image_matches(configured: &str, wanted: &str) -> bool {
    let norm = |s: &str| {
        let s = s.strip_prefix("docker.io/library/").unwrap_or(s);
        if s.rsplit('/').next().is_some_and(|last| last.contains(':')) || s.contains('@') {
            s.to_string()
        } else {
            format!("{s}:latest")
        }
    };
    norm(configured) == norm(wanted)
}

#[cfg(test)]
mod tests {
    use super::container::{diff_line, tail_of};
    use super::*;
    use berth_runtime::container::diff::{Change, ChangeKind};

    fn check(toml_text: &str) -> Check {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn swarm_and_registry_checks_validate_and_describe_themselves() {
        let web = check("id = \"web\"\nservice = \"web\"\nreplicas = 3\nuses_image = \"nginx:2\"\nport = 8080\nupdate = \"completed\"");
        assert_eq!(web.validate(), Ok(()));
        assert_eq!(
            web.describe(),
            "service web runs image nginx:2, publishes port 8080, runs 3/3 replicas, has update state completed"
        );
        let swarm = check("id = \"s\"\nswarm = true\nnodes = 3\nmanagers = 1");
        assert_eq!(swarm.validate(), Ok(()));
        assert_eq!(swarm.describe(), "the swarm has 3 nodes, has 1 manager");
        let node = check("id = \"n\"\nswarm_node = \"node2\"\navailability = \"drain\"");
        assert_eq!(node.describe(), "swarm node node2 is drain");
        let emptied = check("id = \"n\"\nswarm_node = \"node3\"\nrunning_tasks = 0");
        assert_eq!(emptied.validate(), Ok(()));
        assert_eq!(emptied.describe(), "swarm node node3 runs 0 tasks");
        let rolled = check("id = \"t\"\nservice = \"web\"\ntask_image = \"web:v2\"");
        assert_eq!(rolled.validate(), Ok(()));
        assert_eq!(
            rolled.describe(),
            "service web has run a task of image web:v2"
        );
        let reg = check("id = \"r\"\nregistry = \"myapp\"\ntag = \"v1\"");
        assert_eq!(
            reg.describe(),
            "repository registry.local:5000/myapp in your registry namespace has tag v1"
        );

        for (text, message) in [
            (
                "id = \"x\"\nservice = \"web\"\nlayers = 2",
                "layers applies to images only",
            ),
            (
                "id = \"x\"\ncontainer = \"web\"\nreplicas = 2",
                "replicas applies to services only",
            ),
            (
                "id = \"x\"\nimage = \"a\"\ntag = \"v1\"",
                "tag applies to registry repositories only",
            ),
            (
                "id = \"x\"\nswarm_node = \"node1\"\nnodes = 2",
                "nodes applies to swarms only",
            ),
            (
                "id = \"x\"\nservice = \"web\"\nmode = \"both\"",
                "mode \"both\" is not replicated or global",
            ),
            (
                "id = \"x\"\nswarm_node = \"node1\"\navailability = \"gone\"",
                "availability \"gone\" is not active, pause or drain",
            ),
            (
                "id = \"x\"\nregistry = \"Not A Name\"",
                "registry \"Not A Name\" is not a repository name",
            ),
            (
                "id = \"x\"\nservice = \"web\"\nswarm = true",
                "names more than one subject",
            ),
            (
                "id = \"x\"\nimage = \"web\"\ntask_image = \"web:v2\"",
                "task_image applies to services only",
            ),
            (
                "id = \"x\"\nservice = \"web\"\nrunning_tasks = 1",
                "running_tasks applies to swarm nodes only",
            ),
        ] {
            let err = check(text).validate().unwrap_err();
            assert!(err.starts_with(message), "{text}: {err}");
        }
    }

    #[test]
    fn diff_and_logs_apply_to_containers_and_diff_is_a_docker_diff_line() {
        let ok =
            check("id = \"d\"\ncontainer = \"painter\"\ndiff = \"A /hello.txt\"\nlogs = \"hi\"");
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(
            ok.describe(),
            "container painter shows \"A /hello.txt\" in docker diff, printed \"hi\""
        );
        let bad = check("id = \"d\"\ncontainer = \"painter\"\ndiff = \"hello.txt\"");
        assert!(bad
            .validate()
            .unwrap_err()
            .contains("not a line of docker diff"));
        let image = check("id = \"d\"\nimage = \"busybox\"\nlogs = \"hi\"");
        assert_eq!(
            image.validate(),
            Err("logs applies to containers only".to_string())
        );
    }

    #[test]
    fn changes_read_as_docker_diff_prints_them() {
        let line = |kind, path: &str| {
            diff_line(&Change {
                path: path.into(),
                kind,
            })
        };
        assert_eq!(line(ChangeKind::Added, "/hello.txt"), "A /hello.txt");
        assert_eq!(line(ChangeKind::Modified, "/etc"), "C /etc");
        assert_eq!(line(ChangeKind::Deleted, "/etc/motd"), "D /etc/motd");
        assert_eq!(tail_of("  one\ntwo three \n", 5), "three");
    }

    #[test]
    fn host_port_and_same_as_are_validated_and_described() {
        let c = check("id = \"p\"\ncontainer = \"web\"\nport = 5000\nhost_port = 80\n");
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(
            c.describe(),
            "container web publishes port 5000 on host port 80"
        );
        let c = check("id = \"p\"\ncontainer = \"web\"\nhost_port = 80\n");
        assert_eq!(
            c.validate(),
            Err("host_port needs the container port it publishes".into())
        );
        let c = check("id = \"p\"\nimage = \"app:v1\"\nhost_port = 80\n");
        assert_eq!(
            c.validate(),
            Err("host_port applies to containers only".into())
        );

        let c = check("id = \"s\"\nimage = \"app:latest\"\nsame_as = \"app:v2\"\n");
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(c.describe(), "image app:latest is the same image as app:v2");
        let c = check("id = \"s\"\ncontainer = \"web\"\nsame_as = \"app:v2\"\n");
        assert_eq!(c.validate(), Err("same_as applies to images only".into()));
        let c = check("id = \"u\"\nimage = \"app\"\nuser = \"app\"\nhides = \"hunter2\"\n");
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(
            c.describe(),
            "image app runs as user app, shows \"hunter2\" in neither docker history nor inspect"
        );
        let c = check("id = \"o\"\ncontainer = \"hog\"\nstate = \"exited\"\noom_killed = true\n");
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(
            c.describe(),
            "container hog is exited, was killed for passing its memory limit"
        );
        let c = check("id = \"o\"\nimage = \"hog\"\noom_killed = true\n");
        assert_eq!(
            c.validate(),
            Err("oom_killed applies to containers only".into())
        );
        let c = check("id = \"u\"\ncontainer = \"web\"\nuser = \"app\"\n");
        assert_eq!(c.validate(), Err("user applies to images only".into()));
        let c = check("id = \"u\"\nimage = \"app\"\nhides = \" \"\n");
        assert_eq!(
            c.validate(),
            Err("hides is empty: name the secret text".into())
        );
    }
}
