//! The lab map in a real browser (Debian's Chromium driven by
//! playwright-core, `tests/browser/map.mjs`): a learner types docker
//! commands in the networks, images and swarm lessons and the map — the
//! Map tab and the lesson's own `lab-map` figure — draws what they made.
//! Screenshots go to tests/artifacts/.

mod common;

use std::path::Path;

use common::classroom::{artifacts, browser_available, run_browser_script, Classroom};

fn classroom() -> Classroom {
    let lessons = Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons");
    let lessons = lessons.display().to_string();
    Classroom::start(&["--lessons", &lessons, "--preview-listen", "127.0.0.1:0"])
}

#[test]
fn containers_are_drawn_in_their_network_and_a_commit_shares_its_parents_layers() {
    if !browser_available() {
        return;
    }
    let c = classroom();
    let url = format!("http://{}/", c.addr);
    let stdout = run_browser_script_with(&c, &url, "networks,images");
    assert!(stdout.contains("ok: networks, images"), "{stdout}");
    for shot in ["map-networks-tab.png", "map-images-lesson.png"] {
        assert!(artifacts().join(shot).exists(), "{shot}");
    }
}

#[test]
fn a_rolling_update_changes_the_tasks_version_node_by_node() {
    if !browser_available() {
        return;
    }
    let c = classroom();
    let url = format!("http://{}/", c.addr);
    let stdout = run_browser_script_with(&c, &url, "swarm");
    assert!(stdout.contains("ok: swarm"), "{stdout}");
    assert!(artifacts().join("map-swarm-rolling.png").exists());
}

/// `map.mjs URL SHOTS PARTS`: the parts of the script to run.
fn run_browser_script_with(c: &Classroom, url: &str, parts: &str) -> String {
    // run_browser_script passes URL and the screenshot folder; the parts
    // ride on the URL's fragment, which the script splits off.
    run_browser_script(c, "map.mjs", &format!("{url}#{parts}"))
}
