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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_02_is_proven_by_its_solution() {
    prove_lesson("02-images-and-layers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_03_is_proven_by_its_solution() {
    prove_lesson("03-running-containers").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_04_is_proven_by_its_solution() {
    let mut proof = prove_lesson("04-dockerfile-build").await;
    // The app's script works in the lab itself too (the setup made it
    // executable), and v1 did not get v2's fact: images do not change.
    let fact = proof.run("cd ~/app && ./www/cgi-bin/fact").await;
    assert!(fact.contains("blobfish"), "{fact:?}");
    let old = proof
        .run("docker exec blobfish grep -c ugliest /app/www/facts.txt")
        .await;
    assert_eq!(old.trim(), "0", "{old:?}");
}
