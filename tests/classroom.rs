//! The classroom end to end: `berth serve`, sessions over HTTP, the lab's
//! terminal over the WebSocket, the real docker CLI inside the lab.

mod common;

use std::time::Duration;

use common::classroom::{mounts_with, session_cgroups, Classroom};
use tokio_tungstenite::tungstenite::Message;

const PROMPT: &str = "root@node1:~# ";
const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_runs_docker_in_the_lab_and_sees_scrollback_after_reconnecting() {
    let c = Classroom::start(&[]);
    let (token, status) = c.new_session();
    assert_eq!(status["nodes"], serde_json::json!(["node1"]));
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    t.type_text("docker run --rm busybox echo hi\r").await;
    assert!(
        t.wait_for("\nhi\r\n", LONG).await,
        "no hi: {:?}\n{}",
        t.text(),
        c.log()
    );
    drop(t);

    // A new connection replays what the shell printed.
    let mut again = c.terminal(&token, "node1").await;
    assert!(again.wait_for("\nhi\r\n", LONG).await, "no scrollback: {:?}", again.text());
    assert_eq!(again.messages[0]["type"], "hello");
    // The same shell: its history remembers the command.
    let out = again.run("history | tail -n 3", LONG).await.expect("history");
    assert!(out.contains("docker run --rm busybox echo hi"), "{out}");
}
