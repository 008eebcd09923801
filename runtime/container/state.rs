//! A container's lifecycle state, as kept in `container.json` and shown by
//! `docker inspect` (`State`): the status, and the guards that say which verb
//! may run in which status.

use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// Docker's container statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Created,
    Running,
    Paused,
    Restarting,
    Removing,
    Exited,
    Dead,
}

impl Status {
    /// The word Docker uses (`docker ps --filter status=`).
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }
}

/// The health of a container with a healthcheck (`State.Health`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Health {
    /// `starting`, `healthy` or `unhealthy`.
    pub status: String,
    pub failing_streak: u32,
    /// The last results, oldest first (Docker keeps five).
    pub log: Vec<HealthResult>,
}

/// One run of a healthcheck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResult {
    pub start: String,
    pub end: String,
    pub exit_code: i32,
    pub output: String,
}

/// The state part of a container's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct State {
    pub status: Status,
    /// Host pid of pid 1 while running, else 0.
    pub pid: i32,
    /// Host pid of the monitor while running, else 0.
    pub monitor_pid: i32,
    /// The monitor's start time (clock ticks since boot, /proc/<pid>/stat field
    /// 22), so a reused pid is not mistaken for it after an engine restart.
    pub monitor_start: u64,
    pub exit_code: i32,
    pub oom_killed: bool,
    /// Why the last start failed, if it did.
    pub error: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Stopped by `docker stop`/`kill`: restart policies leave it alone.
    pub stopped_by_user: bool,
    pub health: Option<Health>,
}

impl State {
    pub fn running(&self) -> bool {
        matches!(
            self.status,
            Status::Running | Status::Paused | Status::Restarting
        )
    }
    pub fn can_start(&self) -> bool {
        matches!(self.status, Status::Created | Status::Exited | Status::Dead)
    }
    pub fn can_pause(&self) -> bool {
        self.status == Status::Running
    }
    pub fn can_unpause(&self) -> bool {
        self.status == Status::Paused
    }
}

/// Now, as Docker writes times (RFC 3339 with nanoseconds, UTC).
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

/// Docker's zero time, shown for times that never happened.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_follow_dockers_rules() {
        let mut s = State::default();
        assert!(s.can_start() && !s.can_pause() && !s.running());
        s.status = Status::Running;
        assert!(!s.can_start() && s.can_pause() && !s.can_unpause() && s.running());
        s.status = Status::Paused;
        assert!(!s.can_pause() && s.can_unpause() && s.running());
        s.status = Status::Exited;
        assert!(s.can_start() && !s.running());
        assert_eq!(
            serde_json::to_string(&Status::Exited).unwrap(),
            "\"exited\""
        );
    }
}
