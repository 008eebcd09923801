//! Abuse: one learner, by accident or on purpose, cannot slow the others,
//! fill the host or take the server down. Each limit is shown refusing with
//! the right message, judged by what the learner sees and by host state.

#[path = "../common/mod.rs"]
mod common;

mod daemon;
mod disk;
mod memory;
mod web;

pub use common::lab::{Canary, Lab};
