//! Escapes: each class of attack a hostile learner can make with the docker
//! CLI of a classroom lab, run through a real classroom session's Engine API
//! socket, and judged by host state only (a canary never printed, a victim
//! file unchanged, nothing made outside the data directory, a host listener
//! never contacted). One module per class of attack.

#[path = "../common/mod.rs"]
mod common;

mod binds;
mod egress;
mod secrets;
mod trees;
mod unpack;

pub use common::lab::{Canary, Lab};

/// The fixture itself: the learner's docker CLI reaches their session.
#[test]
fn a_lab_runs_the_learners_docker() {
    let lab = Lab::new();
    let out = lab.ok(&["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(out.trim(), "hi");
    let canary = Canary::new();
    canary.assert_untouched();
}
