//! The lab map: a live picture of what a learner's commands made.
//!
//! A lesson page shows it in a tab beside the terminal and where a lesson
//! embeds it (a `lab-map` block). The server reads the session's state from
//! the runtime's typed state (containers, networks, volumes, images and
//! their layers, swarm nodes, services and tasks), sends it as one compact
//! JSON [`model::Model`] over server-sent events whenever the engine says a
//! scope of the session changed, and the page (`web/map.js`) draws it as
//! SVG, highlighting what changed.
//!
//! - [`model`]: the model and how it is read from the runtime, with caps.
//! - [`watch`]: one watcher per watched session: change signal, burst
//!   window, snapshot, publish.
//! - [`web`]: the routes (learner by cookie; instructors via workshops).

pub mod model;
pub mod watch;
pub mod web;

pub use watch::Maps;
