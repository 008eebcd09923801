//! Workshops and the instructor's tools: a workshop (title, lessons, time
//! window, seats, a short join code) that learners join with a display
//! name; labs pre-warmed before it starts; the live progress board; looking
//! over a learner's shoulder; the instructor's demo terminal shown to every
//! learner; a shared registry namespace; deleting it all at the end.
//!
//! - [`auth`]: the admin token, instructor accounts and logins.
//! - [`board`]: the progress board (snapshot, live updates, CSV).
//! - [`pages`]: the HTML pages (board, learner page, projector, cards).
//! - [`web`]: the routes.

pub mod auth;
pub mod board;
pub mod pages;
pub mod web;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;
use tokio::sync::watch;

use crate::classroom::{Classroom, ClassroomError, LiveSession};
use crate::error::AppError;
use crate::lessons::Library;
use crate::ratelimit::RateLimiter;
use crate::store::workshops::{NewWorkshop, WorkshopRow};
use crate::store::StoreError;
use auth::{Instructor, Logins};

/// Learners may join this long before the start.
pub const JOIN_EARLY: i64 = 3600;
/// Labs are made ready this long before the start.
pub const PREWARM_LEAD: i64 = 15 * 60;
/// Letters of a join code: no 0/O, 1/I/L, so it is read aloud and typed safely.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 6;

/// Why a workshop request was refused.
#[derive(Debug, thiserror::Error)]
pub enum WorkshopError {
    #[error("instructors only: log in at /instructor")]
    NotInstructor,
    #[error("the instructor tools are off (berth serve was started without an admin token)")]
    Off,
    #[error("wrong user name or password")]
    BadLogin,
    #[error("only the admin token may do this")]
    NotAdmin,
    #[error("no such workshop")]
    NoSuchWorkshop,
    #[error("no workshop has the code {0}")]
    WrongCode(String),
    #[error("{0}")]
    Closed(String),
    #[error("the workshop is full ({0} seats)")]
    Full(i64),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotYet(String),
    #[error("you are not in this workshop")]
    NotMember,
    #[error(transparent)]
    Classroom(#[from] ClassroomError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<WorkshopError> for AppError {
    fn from(e: WorkshopError) -> Self {
        use WorkshopError as W;
        let status = match &e {
            W::NotInstructor | W::BadLogin => StatusCode::UNAUTHORIZED,
            W::NotAdmin | W::NotMember | W::Closed(_) => StatusCode::FORBIDDEN,
            W::Off | W::NoSuchWorkshop | W::WrongCode(_) => StatusCode::NOT_FOUND,
            W::Full(_) => StatusCode::SERVICE_UNAVAILABLE,
            W::Invalid(_) => StatusCode::BAD_REQUEST,
            W::NotYet(_) => StatusCode::CONFLICT,
            W::Classroom(ClassroomError::Full { .. }) => StatusCode::SERVICE_UNAVAILABLE,
            W::Classroom(ClassroomError::RateLimited { .. }) => StatusCode::TOO_MANY_REQUESTS,
            W::Classroom(_) | W::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        AppError::new(status, e.to_string())
    }
}

/// A workshop's live part (not stored): the demo lab, who is being helped.
#[derive(Default)]
pub struct WorkshopLive {
    /// The instructor's own lab, shown read-only to every learner.
    pub demo: Mutex<Option<Arc<LiveSession>>>,
    /// Bumped when a learner joins (the board adds a row).
    pub joins: watch::Sender<u64>,
    /// Learner → the instructor who can type in their terminal now.
    pub helping: Mutex<HashMap<i64, String>>,
    /// Set when the workshop is deleted (its sockets close).
    pub deleted: watch::Sender<bool>,
}

/// Every workshop's state, shared by the workshop routes.
pub struct Workshops {
    pub classroom: Arc<Classroom>,
    pub library: Arc<Library>,
    pub logins: Logins,
    /// Wrong join codes per client address (codes are guessable, 31⁶).
    pub join_failures: RateLimiter,
    /// Failed instructor logins per client address.
    pub login_failures: RateLimiter,
    live: Mutex<HashMap<i64, Arc<WorkshopLive>>>,
}

/// Wrong join codes, and failed logins, a client may make per minute: enough
/// for typos, far too few to guess. Only failures count, so a whole class
/// joining from behind one NAT address is never throttled.
pub const FAILURES_PER_MINUTE: u32 = 10;

/// Unix seconds now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// RFC 3339 of Unix seconds.
pub fn rfc3339(secs: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64))
        .to_string()
}

/// Unix seconds of an RFC 3339 time (`2026-12-02T10:00:00Z`).
pub fn parse_time(text: &str) -> Result<i64, WorkshopError> {
    humantime::parse_rfc3339_weak(text.trim())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .ok_or_else(|| {
            WorkshopError::Invalid(format!(
                "invalid time {text:?}: use RFC 3339, like 2026-12-02T10:00:00Z"
            ))
        })
}

/// A code as a learner may type it (`abc-234 ` → `ABC234`).
pub fn normalize_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn new_code() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..CODE_LEN)
        .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
        .collect()
}

/// The shared registry namespace of the workshop with `code`.
pub fn registry_namespace(code: &str) -> String {
    format!("ws-{}", code.to_ascii_lowercase())
}

/// What an instructor asks for when making a workshop.
#[derive(Debug, Clone)]
pub struct WorkshopPlan {
    pub title: String,
    pub lessons: Vec<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub seats: i64,
}

impl Workshops {
    pub fn new(classroom: Arc<Classroom>) -> Arc<Self> {
        let library = Arc::new(Library::open(&classroom.config.lessons));
        let w = Arc::new(Self {
            classroom,
            library,
            logins: Logins::default(),
            join_failures: RateLimiter::new(FAILURES_PER_MINUTE),
            login_failures: RateLimiter::new(FAILURES_PER_MINUTE),
            live: Mutex::new(HashMap::new()),
        });
        // Shared namespaces survive a restart.
        if let Ok(all) = w.classroom.store.workshops(None) {
            for row in all.iter().filter(|r| r.shared_registry) {
                w.open_namespace(&row.code);
            }
        }
        w
    }

    fn admin_token(&self) -> Option<&str> {
        self.classroom.config.admin_token.as_deref()
    }

    /// The instructor a request comes from.
    pub fn instructor(&self, headers: &axum::http::HeaderMap) -> Result<Instructor, WorkshopError> {
        if self.admin_token().is_none() {
            return Err(WorkshopError::Off);
        }
        self.logins
            .who(self.admin_token(), headers)
            .ok_or(WorkshopError::NotInstructor)
    }

    /// Logs in with the admin token or an account; the cookie value.
    pub async fn login(
        &self,
        username: Option<&str>,
        password: Option<&str>,
        admin_token: Option<&str>,
    ) -> Result<(Instructor, String), WorkshopError> {
        let admin = self.admin_token().ok_or(WorkshopError::Off)?;
        let who = if let Some(t) = admin_token {
            if !auth::same_secret(admin, t) {
                return Err(WorkshopError::BadLogin);
            }
            Instructor::admin()
        } else {
            let (Some(user), Some(pass)) = (username, password) else {
                return Err(WorkshopError::BadLogin);
            };
            let row = self.classroom.store.instructor(user)?;
            let pass = pass.to_string();
            // Verify even for an unknown name, so timing does not tell.
            let hash = row
                .as_ref()
                .map(|r| r.password_hash.clone())
                .unwrap_or_else(|| "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$0000000000000000000000000000000000000000000".into());
            let ok = tokio::task::spawn_blocking(move || auth::verify_password(&pass, &hash))
                .await
                .unwrap_or(false);
            match (row, ok) {
                (Some(r), true) => Instructor {
                    id: Some(r.id),
                    name: r.username,
                },
                _ => return Err(WorkshopError::BadLogin),
            }
        };
        let cookie = self.logins.open(who.clone());
        Ok((who, cookie))
    }

    /// Makes an instructor account (the admin only).
    pub async fn add_instructor(
        &self,
        by: &Instructor,
        username: &str,
        password: &str,
    ) -> Result<i64, WorkshopError> {
        if !by.is_admin() {
            return Err(WorkshopError::NotAdmin);
        }
        let username = username.trim();
        if username.is_empty()
            || username.len() > 60
            || !username
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c))
        {
            return Err(WorkshopError::Invalid(
                "a user name is 1 to 60 letters, digits, '.', '_', '-' or '@'".into(),
            ));
        }
        if password.chars().count() < auth::MIN_PASSWORD {
            return Err(WorkshopError::Invalid(format!(
                "a password has at least {} characters",
                auth::MIN_PASSWORD
            )));
        }
        let pass = password.to_string();
        let hash = tokio::task::spawn_blocking(move || auth::hash_password(&pass))
            .await
            .map_err(|e| WorkshopError::Invalid(e.to_string()))?
            .map_err(WorkshopError::Invalid)?;
        self.classroom
            .store
            .add_instructor(username, &hash)?
            .ok_or_else(|| WorkshopError::Invalid(format!("the user name {username} is taken")))
    }

    /// Makes a workshop with a fresh join code.
    pub fn create(
        self: &Arc<Self>,
        by: &Instructor,
        plan: WorkshopPlan,
    ) -> Result<WorkshopRow, WorkshopError> {
        let title = plan.title.trim();
        if title.is_empty() || title.chars().count() > 120 {
            return Err(WorkshopError::Invalid(
                "a workshop needs a title of 1 to 120 characters".into(),
            ));
        }
        if !(1..=1000).contains(&plan.seats) {
            return Err(WorkshopError::Invalid(
                "seats must be between 1 and 1000".into(),
            ));
        }
        if plan.ends_at <= plan.starts_at {
            return Err(WorkshopError::Invalid(
                "the workshop must end after it starts".into(),
            ));
        }
        for slug in &plan.lessons {
            if self.library.find(slug).is_none() {
                return Err(WorkshopError::Invalid(format!("no such lesson: {slug}")));
            }
        }
        for _ in 0..20 {
            let code = new_code();
            let made = self.classroom.store.add_workshop(&NewWorkshop {
                code: &code,
                title,
                lessons: &plan.lessons,
                starts_at: plan.starts_at,
                ends_at: plan.ends_at,
                seats: plan.seats,
                instructor_id: by.id,
            })?;
            if let Some(id) = made {
                tracing::info!(workshop = id, %code, by = %by.name, "workshop created");
                self.prewarm();
                return self
                    .classroom
                    .store
                    .workshop(id)?
                    .ok_or(WorkshopError::NoSuchWorkshop);
            }
        }
        Err(WorkshopError::Invalid(
            "no free join code was found; try again".into(),
        ))
    }

    /// Workshop `id`, if `by` runs it.
    pub fn owned(&self, by: &Instructor, id: i64) -> Result<WorkshopRow, WorkshopError> {
        match self.classroom.store.workshop(id)? {
            Some(w) if by.runs(&w) => Ok(w),
            _ => Err(WorkshopError::NoSuchWorkshop),
        }
    }

    /// The live part of workshop `id`.
    pub fn live(&self, id: i64) -> Arc<WorkshopLive> {
        self.live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id)
            .or_default()
            .clone()
    }

    /// A learner joins by code with a display name: a lab is theirs.
    pub async fn join(
        self: &Arc<Self>,
        code: &str,
        name: &str,
    ) -> Result<(WorkshopRow, Arc<LiveSession>), WorkshopError> {
        let code = normalize_code(code);
        let w = self
            .classroom
            .store
            .workshop_by_code(&code)?
            .ok_or_else(|| WorkshopError::WrongCode(code.clone()))?;
        let now = unix_now();
        if now >= w.ends_at {
            return Err(WorkshopError::Closed(format!(
                "this workshop ended at {}",
                rfc3339(w.ends_at)
            )));
        }
        if now < w.starts_at - JOIN_EARLY {
            return Err(WorkshopError::Closed(format!(
                "this workshop opens at {} (an hour before it starts)",
                rfc3339(w.starts_at - JOIN_EARLY)
            )));
        }
        let name: String = name.trim().chars().take(60).collect();
        if name.is_empty() {
            return Err(WorkshopError::Invalid(
                "tell us your name (as the instructor should see it)".into(),
            ));
        }
        let joined = self.classroom.store.workshop_learners(w.id)?.len() as i64;
        if joined >= w.seats {
            return Err(WorkshopError::Full(w.seats));
        }
        let live = self.classroom.admit(Some(name)).await?;
        self.classroom
            .store
            .join_workshop(w.id, live.learner, unix_now())?;
        if w.shared_registry {
            self.grant_namespace(&w.code, &live);
        }
        self.live(w.id).joins.send_modify(|n| *n += 1);
        tracing::info!(workshop = w.id, learner = live.learner, "learner joined");
        self.prewarm();
        Ok((w, live))
    }

    /// The workshop the session's learner joined.
    pub fn membership(&self, live: &LiveSession) -> Result<WorkshopRow, WorkshopError> {
        self.classroom
            .store
            .workshop_of(live.learner)?
            .ok_or(WorkshopError::NotMember)
    }

    /// The live session of learner `learner` of workshop `w`.
    pub fn learner_session(
        &self,
        w: &WorkshopRow,
        learner: i64,
    ) -> Result<Arc<LiveSession>, WorkshopError> {
        let row = self
            .classroom
            .store
            .workshop_learners(w.id)?
            .into_iter()
            .find(|l| l.id == learner)
            .ok_or_else(|| {
                WorkshopError::Invalid(format!("no learner {learner} in this workshop"))
            })?;
        self.classroom
            .by_token(&row.token)
            .ok_or_else(|| WorkshopError::NotYet("that learner's lab has ended".into()))
    }

    /// Starts (or returns) the instructor's demo lab.
    pub async fn start_demo(
        &self,
        w: &WorkshopRow,
        by: &Instructor,
    ) -> Result<Arc<LiveSession>, WorkshopError> {
        let live = self.live(w.id);
        if let Some(d) = self.demo(w.id) {
            return Ok(d);
        }
        let session = self
            .classroom
            .admit(Some(format!("{} (instructor)", by.name)))
            .await?;
        self.classroom
            .store
            .set_demo_learner(w.id, session.learner)?;
        let mut demo = live.demo.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = demo
            .as_ref()
            .filter(|d| self.classroom.by_token(&d.token).is_some())
        {
            // Another request made one meanwhile: keep the first.
            let keep = d.clone();
            drop(demo);
            let c = self.classroom.clone();
            tokio::spawn(async move { c.end(&session, "a second demo lab").await });
            return Ok(keep);
        }
        *demo = Some(session.clone());
        Ok(session)
    }

    /// The demo lab of workshop `id`, while it is live.
    pub fn demo(&self, id: i64) -> Option<Arc<LiveSession>> {
        let d = self
            .live(id)
            .demo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        self.classroom.by_token(&d.token).map(|_| d)
    }

    fn open_namespace(&self, code: &str) {
        self.classroom.open_namespace(&registry_namespace(code));
    }

    /// Lets the learner's nodes push into the workshop's namespace.
    pub fn grant_namespace(&self, code: &str, live: &LiveSession) {
        self.classroom
            .grant_namespace(live, &registry_namespace(code));
    }

    /// Opens the workshop's shared registry namespace: every learner pulls
    /// `registry.local:5000/ws-<code>/…` and may push there.
    pub fn open_registry(&self, w: &WorkshopRow) -> Result<String, WorkshopError> {
        // A front's runners serve the registry to their labs.
        if self.classroom.runners.get().is_none()
            && self
                .classroom
                .sessions
                .engine
                .classroom_registry
                .get()
                .is_none()
        {
            return Err(WorkshopError::NotYet(
                "this classroom serves no registry".into(),
            ));
        }
        self.classroom.store.set_shared_registry(w.id, true)?;
        self.open_namespace(&w.code);
        for l in self.classroom.store.workshop_learners(w.id)? {
            if let Some(live) = self.classroom.by_token(&l.token) {
                self.grant_namespace(&w.code, &live);
            }
        }
        if let Some(d) = self.demo(w.id) {
            self.grant_namespace(&w.code, &d);
        }
        Ok(registry_namespace(&w.code))
    }

    /// Ends every lab of the workshop and deletes its data.
    pub async fn delete(&self, w: &WorkshopRow) -> Result<usize, WorkshopError> {
        let learners = self.classroom.store.workshop_learners(w.id)?;
        let mut ended = 0;
        for l in &learners {
            if let Some(live) = self.classroom.by_token(&l.token) {
                self.classroom.end(&live, "the workshop was deleted").await;
                ended += 1;
            }
        }
        if let Some(d) = self.demo(w.id) {
            self.classroom.end(&d, "the workshop was deleted").await;
        }
        self.classroom.store.delete_workshop(w.id)?;
        if let Some(live) = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&w.id)
        {
            live.deleted.send_replace(true);
        }
        tracing::info!(
            workshop = w.id,
            learners = learners.len(),
            "workshop deleted"
        );
        self.prewarm();
        Ok(ended)
    }

    /// Labs wanted ready now: for each workshop starting within
    /// [`PREWARM_LEAD`] (or running), its seats not yet taken.
    pub fn wanted_labs(&self) -> usize {
        let now = unix_now();
        let Ok(all) = self.classroom.store.workshops(None) else {
            return 0;
        };
        all.iter()
            .filter(|w| w.starts_at - PREWARM_LEAD <= now && now < w.ends_at)
            .map(|w| {
                let joined = self
                    .classroom
                    .store
                    .workshop_learners(w.id)
                    .map(|l| l.len() as i64)
                    .unwrap_or(0);
                (w.seats - joined).max(0) as usize
            })
            .sum()
    }

    /// Sizes the classroom's pool of ready labs for the workshops.
    pub fn prewarm(&self) {
        let labs = self.wanted_labs();
        self.classroom.prewarm_for_workshops(labs);
    }

    /// Ends the labs of workshops whose time is over (their progress stays
    /// for the board and the CSV until the workshop is deleted).
    pub async fn end_finished(&self) {
        let now = unix_now();
        let Ok(all) = self.classroom.store.workshops(None) else {
            return;
        };
        for w in all.iter().filter(|w| w.ends_at <= now) {
            for l in self
                .classroom
                .store
                .workshop_learners(w.id)
                .unwrap_or_default()
            {
                if let Some(live) = self.classroom.by_token(&l.token) {
                    self.classroom.end(&live, "the workshop ended").await;
                }
            }
            if let Some(d) = self.demo(w.id) {
                self.classroom.end(&d, "the workshop ended").await;
            }
        }
    }

    /// Every few seconds: re-sizes the pool as workshops come near, ends
    /// the labs of workshops that are over.
    pub async fn prewarm_forever(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            self.prewarm();
            self.end_finished().await;
        }
    }
}
