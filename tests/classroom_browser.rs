//! The classroom in a real browser: headless Chromium (Debian's) driven by
//! playwright-core opens the page, sees the lab's prompt in xterm, types a
//! command and reads its answer. Screenshots go to tests/artifacts/.

mod common;

use common::classroom::{artifacts, browser_available, run_browser_script, Classroom};

#[test]
fn the_browser_shows_a_prompt_and_runs_what_is_typed() {
    if !browser_available() {
        return;
    }
    let c = Classroom::start(&[]);
    let stdout = run_browser_script(&c, "classroom.mjs", &format!("http://{}/terminal", c.addr));
    assert!(stdout.contains("ok: prompt"), "{stdout}");
    assert!(artifacts().join("classroom-prompt.png").exists());
}
