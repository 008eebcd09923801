//! The classroom terminal as a learner uses it, in a real browser (headless
//! Chromium driven by playwright-core, clipboard access granted): a
//! multi-line command pasted with Ctrl+Shift+V runs as typed, a program
//! that asks for bracketed paste gets it, a 20 KB paste through the context
//! menu's Paste arrives byte for byte, one larger than the input queue is
//! refused whole with a message, input frames never split a surrogate pair,
//! selecting text and Ctrl+Shift+C copy it, and after a `yes` flood Ctrl-C
//! leaves a terminal that answers. Screenshots go to tests/artifacts/.

mod common;

use common::classroom::{artifacts, browser_available, run_browser_script, Classroom};

#[test]
fn paste_copy_and_a_flood_work_in_the_browser() {
    if !browser_available() {
        return;
    }
    let c = Classroom::start(&[]);
    let stdout = run_browser_script(&c, "terminal.mjs", &format!("http://{}/terminal", c.addr));
    assert!(stdout.contains("ok: multi-line paste"), "{stdout}");
    assert!(artifacts().join("terminal-after-flood.png").exists());
}
