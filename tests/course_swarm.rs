//! The proof of lesson 13-swarm, a three-node lesson. As
//! `common::course::prove_lesson` does for one node: a fresh session opens
//! the lesson (which grows it to node1..node3 and runs the setup on each),
//! every exercise fails, the solution runs in the labs' terminals with the
//! real docker CLI, and then every exercise passes.
//!
//! The solution spans nodes: each part of `solution.sh` after a `#@ nodeN`
//! line is typed into that node's terminal, in order. Where a part uses
//! `$JOIN`, the proof first copies the `docker swarm join --token …` line
//! that `docker swarm join-token worker` prints on node1 into that node's
//! shell, as the lesson tells the learner to paste it.

mod common;

use std::time::{Duration, Instant};

use common::classroom::{Classroom, Term};
use common::course::{lessons_dir, type_file, wait_for_setup};

const SLUG: &str = "13-swarm";
const STEP: Duration = Duration::from_secs(120);
const PART: Duration = Duration::from_secs(600);

/// The parts of a multi-node solution: (node, script).
fn parts(solution: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in solution.lines() {
        if let Some(node) = line.strip_prefix("#@ ") {
            out.push((node.trim().to_string(), String::new()));
        } else if let Some((_, text)) = out.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    out
}

fn failing(verdict: &serde_json::Value, passed: bool) -> Vec<String> {
    verdict["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| (e["passed"] == true) == passed)
        .map(|e| {
            let checks: String = e["checks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|c| (c["passed"] == true) == passed)
                .map(|c| {
                    format!(
                        "\n  check {} ({}): expected {}; found {}",
                        c["id"], c["description"], c["expected"], c["found"]
                    )
                })
                .collect();
            format!("exercise {}:{checks}", e["exercise"])
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_13_swarm_is_proven_by_its_solution_on_three_nodes() {
    let dir = lessons_dir().join(SLUG);
    let solution = std::fs::read_to_string(dir.join("solution.sh")).unwrap();
    assert!(!solution.contains('\t'), "tabs in solution.sh");
    let parts = parts(&solution);
    assert!(parts.len() >= 4, "{parts:?}");

    let lessons = lessons_dir().display().to_string();
    let c = Classroom::start(&["--lessons", &lessons, "--preview-listen", "off"]);
    let (token, status) = c.new_session();
    assert_eq!(status["nodes"], serde_json::json!(["node1"]));

    // Opening the lesson gives the session its three nodes and runs the setup.
    let page = c.http("GET", &format!("/lessons/{SLUG}"), Some(&token), None);
    assert_eq!(page.status, 200, "{}\n{}", page.body, c.log());
    wait_for_setup(&c, &token, SLUG).await;

    let check_path = format!("/api/lessons/{SLUG}/check");
    let before = c.http("POST", &check_path, Some(&token), None);
    assert_eq!(before.status, 200, "{}", before.body);
    let premature = failing(&before.json(), true);
    assert!(
        premature.is_empty(),
        "exercises pass before the task is done:\n{}",
        premature.join("\n")
    );

    let mut terms: Vec<(String, Term)> = Vec::new();
    for node in ["node1", "node2", "node3"] {
        let mut t = c.terminal(&token, node).await;
        assert!(
            t.wait_for(&format!("root@{node}:~# "), STEP).await,
            "no prompt on {node}: {:?}\n{}",
            t.text(),
            c.log()
        );
        terms.push((node.to_string(), t));
    }

    let mut transcript = String::new();
    for (k, (node, script)) in parts.iter().enumerate() {
        if script.contains("$JOIN") {
            let (_, n1) = terms.iter_mut().find(|(n, _)| n == "node1").unwrap();
            let printed = n1
                .run("docker swarm join-token worker", STEP)
                .await
                .unwrap();
            let join = printed
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("docker swarm join --token "))
                .unwrap_or_else(|| panic!("no join command: {printed}"))
                .to_string();
            let (_, t) = terms.iter_mut().find(|(n, _)| n == node).unwrap();
            t.run(&format!("export JOIN='{join}'"), STEP).await.unwrap();
        }
        let (_, t) = terms
            .iter_mut()
            .find(|(n, _)| n == node)
            .unwrap_or_else(|| panic!("solution names {node}"));
        let path = format!("/tmp/solution-{k}.sh");
        type_file(t, &path, script).await;
        let out = t
            .run(&format!("sh -e {path}; echo PART-EXIT-$?"), PART)
            .await
            .unwrap_or_else(|| panic!("part {k} on {node} did not finish: {}", t.text()));
        transcript.push_str(&format!("--- {node} ---\n{out}"));
        assert!(
            out.contains("PART-EXIT-0"),
            "part {k} failed on {node}:\n{transcript}\n{}",
            c.log()
        );
    }

    // The transcript shows what the lesson promises: the join, the mesh
    // answering from two replicas, v2 rolled in and v1 back.
    assert_eq!(
        transcript
            .matches("This node joined a swarm as a worker.")
            .count(),
        2,
        "{transcript}"
    );
    assert!(transcript.contains("web scaled to 5"), "{transcript}");
    assert!(transcript.contains("v2 from "), "{transcript}");
    assert!(transcript.contains("v1 from "), "{transcript}");
    assert!(
        transcript.contains("\\_ web."),
        "task history: {transcript}"
    );

    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let r = c.http("POST", &check_path, Some(&token), None);
        assert_eq!(r.status, 200, "{}", r.body);
        let v = r.json();
        if failing(&v, false).is_empty() || Instant::now() >= deadline {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let still = failing(&after, false);
    assert!(
        still.is_empty(),
        "after the solution:\n{}\n--- transcript ---\n{transcript}",
        still.join("\n")
    );
}
