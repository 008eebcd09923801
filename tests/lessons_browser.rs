//! A lesson in a real browser: headless Chromium (Debian's) driven by
//! playwright-core goes catalogue → lesson → prompt → clicks a runnable
//! block → clicks Check until it turns green. Screenshots go to
//! tests/artifacts/.

mod common;

use std::path::Path;
use std::process::Command;

use common::classroom::Classroom;

#[test]
fn a_learner_runs_a_block_and_the_check_turns_green_in_the_browser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !Path::new("/usr/bin/chromium").exists()
        || !root.join("web/node_modules/playwright-core").exists()
    {
        eprintln!("skipping: scripts/setup.sh installs chromium and playwright-core");
        return;
    }
    let lessons = root.join("tests/fixtures/lessons").display().to_string();
    let c = Classroom::start(&["--lessons", &lessons, "--preview-listen", "off"]);
    let shots = root.join("tests/artifacts");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(root.join("tests/browser/lessons.mjs"))
        .arg(format!("http://{}/", c.addr))
        .arg(&shots)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{stderr}\n{}",
        c.log()
    );
    assert!(stdout.contains("ok: catalogue, lesson"), "{stdout}");
    assert!(shots.join("lesson-passed.png").exists());
}
