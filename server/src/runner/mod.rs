//! Past one host: a front (`berth serve --runners …`) that keeps the web
//! pages, lessons, grading verdicts, workshops and the progress store, and
//! runners (`berth runner`) that hold the engine and the sessions' labs.
//!
//! # Why this shape
//! The runner is the same binary with the same [`Classroom`] as the
//! all-in-one server: it makes labs, runs their terminals, reaps them and
//! grades checks against its own engine. The front keeps everything that
//! must be one for the whole classroom (learners, progress, workshops, the
//! board) and places each new session on a runner. Between them runs a
//! small typed API ([`protocol`]), never the Docker Engine API: a runner's
//! engine sockets stay inside its labs.
//!
//! # Layout
//! - [`protocol`]: the typed messages front and runner exchange.
//! - [`auth`]: the shared secret both sides hold.
//! - [`api`]: the runner's side (its routes).
//! - [`pool`]: the front's side: the runners, their health, placement.
//! - [`proxy`]: a terminal WebSocket carried from the browser to the runner.
//!
//! [`Classroom`]: crate::Classroom

pub mod api;
pub mod auth;
pub mod pool;
pub mod protocol;
pub mod proxy;

pub use pool::RunnerPool;
