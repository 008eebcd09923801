//! A lesson in a real browser: headless Chromium (Debian's) driven by
//! playwright-core goes catalogue → lesson → prompt → clicks a runnable
//! block → clicks Check until it turns green. Screenshots go to
//! tests/artifacts/.

mod common;

use std::path::Path;

use common::classroom::{artifacts, browser_available, run_browser_script, Classroom};

#[test]
fn a_learner_runs_a_block_and_the_check_turns_green_in_the_browser() {
    if !browser_available() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lessons = root.join("tests/fixtures/lessons").display().to_string();
    let c = Classroom::start(&["--lessons", &lessons, "--preview-listen", "off"]);
    let stdout = run_browser_script(&c, "lessons.mjs", &format!("http://{}/", c.addr));
    assert!(stdout.contains("ok: catalogue, lesson"), "{stdout}");
    assert!(artifacts().join("lesson-passed.png").exists());
}
