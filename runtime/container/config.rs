//! What a container is asked to be: the user-facing configuration that
//! [`crate::container::spec`] turns into an OCI runtime spec.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::cgroup::Limits;

/// A container's configuration, in the terms `docker run` uses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContainerConfig {
    /// The image reference as the user typed it (`busybox`, `web:v2`, an ID).
    pub image: String,
    /// Replaces the image's CMD when not empty.
    pub cmd: Vec<String>,
    /// Replaces the image's ENTRYPOINT when set (an empty list clears it).
    pub entrypoint: Option<Vec<String>>,
    /// `KEY=value` entries, added to (and overriding) the image's.
    pub env: Vec<String>,
    /// Working directory; the image's when `None`.
    pub workdir: Option<String>,
    /// `user`, `uid`, `user:group` or `uid:gid`; the image's when `None`.
    pub user: Option<String>,
    /// Host name inside the container; the first 12 hex digits of the ID when `None`.
    pub hostname: Option<String>,
    /// Allocate a terminal for the process.
    pub tty: bool,
    /// Keep stdin open.
    pub open_stdin: bool,
    /// Close stdin when the attached client's input ends (`-i` sets it).
    pub stdin_once: bool,
    /// Which streams `docker run` attaches (kept for inspect).
    pub attach_stdin: bool,
    pub attach_stdout: bool,
    pub attach_stderr: bool,
    /// Ports the container says it listens on (`80/tcp`).
    pub exposed_ports: Vec<String>,
    /// Run an init process as pid 1 that reaps zombies (`--init`).
    pub init: bool,
    /// The `HostConfig` as the client sent it, shown back by inspect.
    pub host_config: serde_json::Value,
    /// Labels, merged over the image's.
    pub labels: BTreeMap<String, String>,
    /// Extra mounts (bind and tmpfs).
    pub mounts: Vec<MountConfig>,
    /// Memory, CPU and pids limits.
    pub limits: Limits,
    /// What to do when the container exits.
    pub restart_policy: RestartPolicy,
    /// Remove the container when it exits (`--rm`).
    pub auto_remove: bool,
    /// Signal `stop` sends first (`SIGTERM` when `None`, or the image's).
    pub stop_signal: Option<String>,
    /// Seconds `stop` waits before SIGKILL (10 when `None`).
    pub stop_timeout: Option<i64>,
    /// Overrides the image's healthcheck.
    pub healthcheck: Option<HealthConfig>,
    /// Network mode, networks with aliases, published ports.
    pub networking: crate::net::ContainerNetworking,
    /// More groups for the process (`--group-add`: names or numbers).
    pub group_add: Vec<String>,
    /// `--cap-add`, as given (checked at create).
    pub cap_add: Vec<String>,
    /// `--cap-drop`, as given (checked at create).
    pub cap_drop: Vec<String>,
    /// `--privileged`: every capability, no seccomp filter, nothing of
    /// /proc or /sys masked. Refused in a learner's scope (see
    /// [`crate::container::Runtime::create`]).
    pub privileged: bool,
    /// `--pid host`: no pid namespace of its own. Refused in a learner's
    /// scope, as `privileged` is.
    pub pid_host: bool,
}

/// Docker's restart policy (`HostConfig.RestartPolicy`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestartPolicy {
    /// `""`/`no`, `always`, `on-failure` or `unless-stopped`.
    pub name: String,
    /// For `on-failure`: at most this many restarts (0 = no limit).
    pub maximum_retry_count: i64,
}

impl RestartPolicy {
    /// Parses `--restart` values: `no`, `always`, `unless-stopped`,
    /// `on-failure[:N]`, with Docker's error for anything else.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (name, count) = match text.split_once(':') {
            Some((n, c)) => (n, Some(c)),
            None => (text, None),
        };
        match (name, count) {
            ("no" | "" | "always" | "unless-stopped", None) => Ok(Self {
                name: name.to_string(),
                maximum_retry_count: 0,
            }),
            ("on-failure", None) => Ok(Self {
                name: name.into(),
                maximum_retry_count: 0,
            }),
            ("on-failure", Some(c)) => match c.parse::<i64>() {
                Ok(n) if n >= 0 => Ok(Self {
                    name: name.into(),
                    maximum_retry_count: n,
                }),
                _ => Err(format!("invalid restart policy format: maximum retry count must be an integer: {c}")),
            },
            ("always" | "unless-stopped" | "no", Some(_)) => Err(format!(
                "invalid restart policy format: maximum retry count cannot be used with restart policy '{name}'"
            )),
            _ => Err(format!("invalid restart policy format: unknown policy '{name}'")),
        }
    }

    /// Whether a container that exited with `code` (after `restarts` restarts,
    /// stopped by the user or not) starts again.
    pub fn should_restart(&self, code: i32, restarts: u32, stopped_by_user: bool) -> bool {
        if stopped_by_user {
            return false;
        }
        match self.name.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                code != 0
                    && (self.maximum_retry_count == 0
                        || (restarts as i64) < self.maximum_retry_count)
            }
            _ => false,
        }
    }
}

/// A healthcheck in Docker's terms (`Config.Healthcheck`): durations in ns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, rename_all = "PascalCase")]
pub struct HealthConfig {
    /// `["NONE"]`, `["CMD", args…]` or `["CMD-SHELL", command]`.
    #[serde(deserialize_with = "null_as_default")]
    pub test: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub interval: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub timeout: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub start_period: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub retries: i64,
}

/// `null` reads as the default: docker-py sends `"StartPeriod": null` for
/// what it was not given, and dockerd's decoder takes that as zero.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A mount asked for by the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum MountConfig {
    /// A directory or file of the scope's filesystem shown at `target`.
    Bind {
        source: PathBuf,
        target: String,
        #[serde(default)]
        read_only: bool,
    },
    /// A named or anonymous volume at `target` (its name is given at create).
    Volume {
        name: String,
        target: String,
        #[serde(default)]
        read_only: bool,
        /// Do not copy the image's content into a fresh volume.
        #[serde(default)]
        no_copy: bool,
    },
    /// A fresh in-memory filesystem at `target`.
    Tmpfs {
        target: String,
        #[serde(default)]
        size_bytes: Option<u64>,
    },
    /// A file the engine itself wrote into the container's own directory (a
    /// swarm task's secret or config, see [`crate::container::task_files`]),
    /// shown read-only at `target`. Only the engine makes these: the Engine
    /// API has no such mount type, and the data is never in the config.
    TaskFile {
        /// The file's name in the container's `files` directory.
        file: String,
        target: String,
    },
}

impl MountConfig {
    /// Where the mount appears inside the container.
    pub fn target(&self) -> &str {
        match self {
            MountConfig::Bind { target, .. }
            | MountConfig::Tmpfs { target, .. }
            | MountConfig::Volume { target, .. }
            | MountConfig::TaskFile { target, .. } => target,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_parse_and_decide_like_docker() {
        let on_failure = RestartPolicy::parse("on-failure:2").unwrap();
        assert!(on_failure.should_restart(1, 0, false));
        assert!(on_failure.should_restart(1, 1, false));
        assert!(
            !on_failure.should_restart(1, 2, false),
            "retry count reached"
        );
        assert!(
            !on_failure.should_restart(0, 0, false),
            "success is not a failure"
        );
        let always = RestartPolicy::parse("always").unwrap();
        assert!(always.should_restart(0, 100, false));
        assert!(!always.should_restart(0, 0, true), "docker stop wins");
        assert!(!RestartPolicy::parse("no")
            .unwrap()
            .should_restart(1, 0, false));
        assert!(RestartPolicy::parse("sometimes")
            .unwrap_err()
            .contains("unknown policy"));
        assert!(RestartPolicy::parse("always:3").is_err());
        assert!(RestartPolicy::parse("on-failure:x").is_err());
    }
}
