//! The course's lessons 5–8, each proven by its solution: a fresh session
//! opens the lesson (setup runs), every exercise fails, the lesson's
//! `solution.sh` is typed line by line into the lab's terminal (the real
//! docker CLI in the lab), and then every exercise passes.

mod common;

use std::path::Path;
use std::time::Duration;

use common::classroom::{Classroom, Term};

const PROMPT: &str = "root@node1:~# ";
const LONG: Duration = Duration::from_secs(120);

fn exercises(answer: &serde_json::Value) -> Vec<(String, bool)> {
    answer["exercises"]
        .as_array()
        .unwrap_or_else(|| panic!("no exercises: {answer}"))
        .iter()
        .map(|e| {
            (
                e["exercise"].as_str().unwrap_or("").to_string(),
                e["passed"] == true,
            )
        })
        .collect()
}

/// Runs `command` until its output contains `needle` (setup runs in the
/// background after the page is opened).
async fn wait_until(t: &mut Term, command: &str, needle: &str) -> String {
    let mut last = String::new();
    for _ in 0..240 {
        last = t.run(command, LONG).await.unwrap_or_default();
        if last.contains(needle) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    panic!("`{command}` never showed {needle:?}: {last:?}");
}

/// Proves lesson `slug`; `ready` is a command and what it prints once the
/// lesson's setup finished. Returns the classroom, the session token and
/// the terminal for more assertions.
async fn prove(slug: &str, ready: (&str, &str)) -> (Classroom, String, Term) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lessons = root.join("lessons").display().to_string();
    let c = Classroom::start(&["--lessons", &lessons, "--preview-listen", "off"]);
    let (token, _) = c.new_session();
    let page = c.http("GET", &format!("/lessons/{slug}"), Some(&token), None);
    assert_eq!(page.status, 200, "{}", page.body);
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    wait_until(&mut t, ready.0, ready.1).await;

    let path = format!("/api/lessons/{slug}/check");
    let before = c.http("POST", &path, Some(&token), None);
    assert_eq!(before.status, 200, "{}", before.body);
    let before = before.json();
    let listed = exercises(&before);
    assert!(listed.len() >= 2, "2–5 exercises: {before}");
    for (id, passed) in &listed {
        assert!(
            !passed,
            "{slug}: exercise {id} passes before the task: {before}"
        );
    }

    let solution = std::fs::read_to_string(root.join("lessons").join(slug).join("solution.sh"))
        .expect("solution.sh");
    let mut transcript = String::new();
    for line in solution
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with("set ") && !l.trim().is_empty())
    {
        let out = t
            .run(line, LONG)
            .await
            .unwrap_or_else(|| panic!("{line}: {:?}", t.text()));
        transcript.push_str(&format!("$ {line}\n{out}"));
    }
    let mut after = serde_json::Value::Null;
    for _ in 0..100 {
        after = c.http("POST", &path, Some(&token), None).json();
        if exercises(&after).iter().all(|(_, p)| *p) {
            return (c, token, t);
        }
        // Servers in the containers may need a moment to listen.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    panic!(
        "{slug}: not every exercise passes after solution.sh:\n{after:#}\n{transcript}\n{}",
        c.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lesson_05_ports_is_proven_by_its_solution() {
    let (_c, _token, mut t) = prove("05-ports", ("docker images blobfish", "latest")).await;
    // What the lesson shows: three copies answer with three names.
    let mut names = Vec::new();
    for port in [8081, 8082, 8083] {
        let out = t
            .run(
                &format!("wget -qO- http://localhost:{port}/cgi-bin/host"),
                LONG,
            )
            .await
            .unwrap();
        names.push(out.trim().to_string());
    }
    names.dedup();
    assert_eq!(names.len(), 3, "three containers answer: {names:?}");
}
