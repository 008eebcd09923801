//! The runner API's messages: what the front asks of a runner and what
//! the runner answers. Paths are under `/runner/v1/`; every request carries
//! the shared secret (see [`super::auth`]).

use serde::{Deserialize, Serialize};

use crate::grading::{Check, Verdict};

/// The path prefix of the runner API.
pub const PREFIX: &str = "/runner/v1";

/// A runner's load, answered by `GET /runner/v1/health`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Health {
    /// Live sessions on the runner.
    pub sessions: usize,
    /// Sessions it takes at most.
    pub max_sessions: usize,
    /// Labs waiting in its pre-warmed pool.
    pub pool: usize,
}

/// One session on a runner.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SessionInfo {
    /// The runner's session ID (also the learner's session ID at the front).
    pub id: String,
    /// What the front tagged the session with when it asked for it (the
    /// learner's cookie token), so a front that restarts finds its learners'
    /// labs again.
    pub label: String,
    /// The lab's nodes, `node1` first.
    pub nodes: Vec<String>,
}

/// `POST /runner/v1/sessions`: a new lab.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    pub label: String,
}

/// `POST /runner/v1/sessions/{id}/nodes`: at least `count` nodes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsureNodes {
    pub count: usize,
}

/// `POST /runner/v1/sessions/{id}/check`: run `checks` against `node`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckRequest {
    pub node: String,
    pub checks: Vec<Check>,
}

/// The answer to a check request.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckAnswer {
    pub verdicts: Vec<Verdict>,
}

/// `POST /runner/v1/registry/shared` (open a workshop's namespace) and
/// `POST /runner/v1/sessions/{id}/grant` (let a session push there).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Namespace {
    pub namespace: String,
}

/// `POST /runner/v1/prewarm`: keep at least `labs` ready.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prewarm {
    pub labs: usize,
}

/// A refusal, with the words the learner sees.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refusal {
    pub message: String,
    #[serde(default)]
    pub retry_after: Option<u64>,
}

/// `POST /runner/v1/sessions/{id}/setup`: bring the lab to the start of
/// `lesson` (a slug of the runner's own lessons, the same as the front's).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Setup {
    pub lesson: String,
}

/// How a setup ended: `ok` or what failed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SetupOutcome {
    pub outcome: String,
}
