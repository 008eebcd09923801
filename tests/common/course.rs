//! The proof of a course lesson: `prove_lesson("04-dockerfile-build")`
//! runs the lesson the way a learner meets it and fails the test when the
//! lesson cannot be trusted.
//!
//! 1. `berth serve --lessons <repo>/lessons` (the [`Classroom`] fixture),
//!    a fresh session, the lesson page opened with it so its `files` are
//!    copied and its `setup` runs; waits until `GET /api/lessons` says the
//!    setup is `done` (a failed setup fails the proof).
//! 2. Every exercise is checked: each must FAIL on the fresh lab (a lesson
//!    whose exercise passes without the task proves nothing); the panic
//!    names the checks that passed.
//! 3. The lesson's `solution.sh` is typed into node1's terminal over the
//!    WebSocket as a heredoc into `/tmp/solution.sh` (read back and compared
//!    byte for byte), then `sh -e /tmp/solution.sh` runs in the lab's shell
//!    with the real docker CLI, and its exit code must be 0.
//! 4. Every exercise is checked again (retried for up to a minute, for
//!    servers that take a moment to listen): each must PASS; the panic
//!    prints each failed check's expected and found, and the transcript.
//!
//! Usage, one test per lesson in tests/course.rs:
//!
//! ```ignore
//! mod common;
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn lesson_04_is_proven_by_its_solution() {
//!     common::course::prove_lesson("04-dockerfile-build").await;
//! }
//! ```
//!
//! A proof never skips: a missing lesson, solution or server is a failure.
//! Solutions must not read the terminal (no `-it`, no `logs -f`) and must
//! not contain tab characters (the shell's line editor would complete them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::classroom::{Classroom, Term};

/// The prompt of node1's shell.
pub const PROMPT: &str = "root@node1:~# ";
/// How long one typed command may take.
const STEP: Duration = Duration::from_secs(120);
/// How long a whole solution may take.
const SOLUTION: Duration = Duration::from_secs(600);
/// The heredoc terminator; a solution must not contain it.
const EOF_MARK: &str = "BERTH_SOLUTION_EOF";

/// The repository's lessons directory.
pub fn lessons_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons")
}

/// What a proof leaves for further assertions: the classroom (still
/// running), the session's token, the terminal and the solution's output.
///
/// Fields drop in order: the terminal's WebSocket closes before the
/// classroom is stopped, since `berth serve` finishes its open terminals
/// before it exits; the other way round a test that panics with the lab
/// terminal open would wait on its own socket instead of failing.
pub struct Proof {
    pub term: Term,
    pub classroom: Classroom,
    pub token: String,
    pub transcript: String,
    /// The answer of the last `POST /api/lessons/{slug}/check` (all passed).
    pub after: serde_json::Value,
}

impl Proof {
    /// Runs `command` in the lab's shell; its output.
    pub async fn run(&mut self, command: &str) -> String {
        self.term
            .run(command, STEP)
            .await
            .unwrap_or_else(|| panic!("`{command}` did not finish: {:?}", self.term.text()))
    }
}

/// Proves lesson `slug` of the repository's lessons/ (see the module docs)
/// and returns what is left for more assertions.
pub async fn prove_lesson(slug: &str) -> Proof {
    prove_lesson_with(slug, &[]).await
}

/// [`prove_lesson`] with `extra` flags for `berth serve` (a front's
/// `--runners`, say).
pub async fn prove_lesson_with(slug: &str, extra: &[&str]) -> Proof {
    let dir = lessons_dir().join(slug);
    assert!(
        dir.join("lesson.md").is_file(),
        "no lesson {slug}: {} has no lesson.md",
        dir.display()
    );
    let solution = std::fs::read_to_string(dir.join("solution.sh"))
        .unwrap_or_else(|e| panic!("{slug}/solution.sh: {e}"));
    assert!(
        !solution.contains('\t'),
        "{slug}/solution.sh has a tab: the lab's line editor would complete it; indent with spaces"
    );
    assert!(
        !solution.contains(EOF_MARK),
        "{slug}/solution.sh contains {EOF_MARK}"
    );
    for line in solution
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        let detached = words.iter().any(|w| matches!(*w, "-d" | "--detach"));
        let waits = (!detached
            && words
                .iter()
                .any(|w| matches!(*w, "-it" | "-ti" | "--interactive" | "--tty")))
            || words.contains(&"attach")
            || line.contains("logs -f")
            || line.contains("logs --follow");
        assert!(
            !waits,
            "{slug}/solution.sh would wait for the terminal (-it, -f): {line}"
        );
    }

    let lessons = lessons_dir().display().to_string();
    let mut args = vec!["--lessons", lessons.as_str(), "--preview-listen", "off"];
    let images = images_args(&dir);
    args.extend(images.iter().map(String::as_str));
    args.extend(extra);
    let c = Classroom::start(&args);
    let (token, _) = c.new_session();

    // 1. Open the lesson: its files and setup go into the lab.
    let page = c.http("GET", &format!("/lessons/{slug}"), Some(&token), None);
    assert_eq!(page.status, 200, "{slug} page: {}\n{}", page.body, c.log());
    wait_for_setup(&c, &token, slug).await;

    // 2. On the fresh lab every exercise fails.
    let check_path = format!("/api/lessons/{slug}/check");
    let before = c.http("POST", &check_path, Some(&token), None);
    assert_eq!(before.status, 200, "check: {}\n{}", before.body, c.log());
    let before = before.json();
    let exercises = before["exercises"].as_array().expect("exercises").clone();
    assert!(!exercises.is_empty(), "{slug} has no exercises: {before}");
    let premature: Vec<String> = exercises
        .iter()
        .filter(|e| e["passed"] == true)
        .map(|e| {
            format!(
                "exercise {} passes before the task is done: {}",
                e["exercise"],
                checks_of(e, true)
            )
        })
        .collect();
    assert!(
        premature.is_empty(),
        "{slug}: {}\n(every exercise must fail on a fresh lab)",
        premature.join("\n")
    );

    // 3. The solution, typed into the lab's terminal like a learner would.
    let mut t = c.terminal(&token, "node1").await;
    assert!(
        t.wait_for(PROMPT, STEP).await,
        "no prompt in node1's terminal: {:?}\n{}",
        t.text(),
        c.log()
    );
    type_file(&mut t, "/tmp/solution.sh", &solution).await;
    let transcript = t
        .run("sh -e /tmp/solution.sh; echo SOLUTION-EXIT-$?", SOLUTION)
        .await
        .unwrap_or_else(|| {
            panic!(
                "{slug}/solution.sh did not finish in {SOLUTION:?}: {}\n{}",
                t.text(),
                c.log()
            )
        });
    assert!(
        transcript.contains("SOLUTION-EXIT-0"),
        "{slug}/solution.sh failed in the lab:\n{transcript}"
    );

    // 4. Now every exercise passes.
    let deadline = Instant::now() + Duration::from_secs(60);
    let after = loop {
        let r = c.http("POST", &check_path, Some(&token), None);
        assert_eq!(r.status, 200, "check: {}\n{}", r.body, c.log());
        let after = r.json();
        let all = after["exercises"]
            .as_array()
            .is_some_and(|a| a.iter().all(|e| e["passed"] == true));
        if all || Instant::now() >= deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let failing: Vec<String> = after["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["passed"] != true)
        .map(|e| {
            format!(
                "exercise {} still fails after the solution: {}",
                e["exercise"],
                checks_of(e, false)
            )
        })
        .collect();
    assert!(
        failing.is_empty(),
        "{slug}:\n{}\n--- solution transcript ---\n{transcript}",
        failing.join("\n")
    );
    Proof {
        classroom: c,
        token,
        term: t,
        transcript,
        after,
    }
}

/// The checks of one exercise's verdict whose `passed` is `passed`, with
/// what they expected and found.
fn checks_of(exercise: &serde_json::Value, passed: bool) -> String {
    exercise["checks"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|v| v["passed"] == passed)
                .map(|v| {
                    format!(
                        "\n  check {} ({}): expected {}; found {}",
                        v["id"], v["description"], v["expected"], v["found"]
                    )
                })
                .collect::<String>()
        })
        .unwrap_or_default()
}

/// Waits until the lesson's setup in this session is no longer running;
/// panics when it failed.
pub async fn wait_for_setup(c: &Classroom, token: &str, slug: &str) {
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let list = c.http("GET", "/api/lessons", Some(token), None).json();
        let state = list
            .as_array()
            .and_then(|a| a.iter().find(|l| l["slug"] == slug))
            .unwrap_or_else(|| panic!("{slug} is not in /api/lessons: {list}\n{}", c.log()))
            ["setup"]
            .clone();
        match state.as_str() {
            // No files nor setup: nothing to wait for.
            None => return,
            Some("done") => return,
            Some("running") if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Some(other) => panic!("{slug}: setup {other}\n{}", c.log()),
        }
    }
}

/// Types `text` into the terminal as a quoted heredoc into `path`, then
/// reads the file back and asserts it arrived byte for byte.
pub async fn type_file(t: &mut Term, path: &str, text: &str) {
    t.type_text(&format!("cat > {path} <<'{EOF_MARK}'\r")).await;
    for line in text.lines() {
        t.type_text(&format!("{line}\r")).await;
    }
    t.type_text(&format!("{EOF_MARK}\r")).await;
    let back = t
        .run(&format!("cat {path}"), STEP)
        .await
        .unwrap_or_else(|| panic!("reading {path} back: {:?}", t.text()));
    let want: String = text.lines().map(|l| format!("{l}\n")).collect();
    assert_eq!(
        back, want,
        "{path} did not arrive intact through the terminal"
    );
}

/// `berth serve` flags loading the base images scripts/base-images.sh
/// caches, for a lesson whose front matter lists `images` (none otherwise:
/// loading them costs each classroom a few seconds and its disk).
pub fn images_args(lesson_dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(lesson_dir.join("lesson.md")).unwrap_or_default();
    let front = text.split("+++").nth(1).unwrap_or_default();
    if !front.lines().any(|l| l.trim_start().starts_with("images")) {
        return Vec::new();
    }
    let packs = Path::new("/var/cache/berth/images");
    assert!(
        packs.is_dir(),
        "{} lists images: run scripts/base-images.sh (scripts/setup.sh does) to build them into {}",
        lesson_dir.display(),
        packs.display()
    );
    vec!["--images".into(), packs.display().to_string()]
}
