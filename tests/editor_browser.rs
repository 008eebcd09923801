//! The editor pane in a real browser (headless Chromium driven by
//! playwright-core, tests/browser/editor.mjs) on the real lessons: a lesson
//! block opens its file, an edit saved in the editor is what the terminal's
//! `docker build` builds, a change from the terminal prompts a reload, a
//! stale save asks, a folder upload and a dropped file arrive, a lesson link
//! opens its file. Screenshots go to tests/artifacts/ (editor-*.png).

mod common;

use common::classroom::{artifacts, browser_available, run_browser_script, Classroom};
use common::course::lessons_dir;

#[test]
fn a_learner_edits_builds_reloads_and_uploads_in_the_editor_pane() {
    if !browser_available() {
        return;
    }
    let lessons = lessons_dir().display().to_string();
    let c = Classroom::start(&["--lessons", &lessons, "--preview-listen", "off"]);
    let stdout = run_browser_script(&c, "editor.mjs", &format!("http://{}/", c.addr));
    assert!(
        stdout.contains("ok: lesson block opened, edit built"),
        "{stdout}"
    );
    for shot in ["1366", "1024", "split-1024", "reload-bar", "uploaded"] {
        let path = artifacts().join(format!("editor-{shot}.png"));
        assert!(path.exists(), "no screenshot {}", path.display());
    }
}
