//! The course: each lesson of lessons/ proven on a fresh session by its
//! own solution (see tests/common/course.rs): every exercise fails on the
//! fresh lab, the solution typed into the lab's terminal runs with the
//! real docker CLI, and then every exercise passes.

mod common;

use common::course::prove_lesson;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_01_is_proven_by_its_solution() {
    prove_lesson("01-vms-vs-containers").await;
}
