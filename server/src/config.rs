//! What `berth serve` is told: where to listen, limits, timeouts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use berth_runtime::session::SessionLimits;

/// The classroom's settings.
#[derive(Debug, Clone)]
pub struct ClassroomConfig {
    /// Address the web server listens on.
    pub listen: SocketAddr,
    /// The public URL learners use (resume links); derived from the request
    /// when `None`.
    pub base_url: Option<String>,
    /// TLS certificate and key (PEM), when serving HTTPS directly.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Live sessions at most; past it the "classroom is full" answer.
    pub max_sessions: usize,
    /// Ready sessions kept waiting for learners.
    pub pool: usize,
    /// A session without input for this long ends.
    pub idle_timeout: Duration,
    /// A session ends this long after it began, whatever happens.
    pub max_lifetime: Duration,
    /// Sessions one client may create per minute.
    pub sessions_per_minute: u32,
    /// Nodes per session.
    pub nodes: usize,
    /// What each session may use.
    pub limits: SessionLimits,
    /// Seconds the "full" page waits before trying again.
    pub retry_after: u64,
    /// Where the lessons are (reloaded when they change).
    pub lessons: PathBuf,
    /// Address of the app preview's listener (another origin), if any.
    pub preview_listen: Option<SocketAddr>,
    /// The token that makes instructor accounts and runs any workshop;
    /// `None` turns the instructor tools off.
    pub admin_token: Option<String>,
}

impl Default for ClassroomConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_url: None,
            tls: None,
            max_sessions: 50,
            pool: 0,
            idle_timeout: Duration::from_secs(30 * 60),
            max_lifetime: Duration::from_secs(4 * 3600),
            sessions_per_minute: 10,
            nodes: 1,
            limits: SessionLimits::default(),
            retry_after: 10,
            lessons: PathBuf::from("lessons"),
            preview_listen: None,
            admin_token: None,
        }
    }
}
