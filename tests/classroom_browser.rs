//! The classroom in a real browser: headless Chromium (Debian's) driven by
//! playwright-core opens the page, sees the lab's prompt in xterm, types a
//! command and reads its answer. Screenshots go to tests/artifacts/.

mod common;

use std::path::Path;
use std::process::Command;

use common::classroom::Classroom;

#[test]
fn the_browser_shows_a_prompt_and_runs_what_is_typed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !Path::new("/usr/bin/chromium").exists()
        || !root.join("web/node_modules/playwright-core").exists()
    {
        assert!(
            std::env::var_os("BERTH_FULL_SUITE").is_none(),
            "scripts/test.sh installs chromium and playwright-core"
        );
        eprintln!("skipping: scripts/setup.sh installs chromium and playwright-core");
        return;
    }
    let c = Classroom::start(&[]);
    let shots = root.join("tests/artifacts");
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(root.join("tests/browser/classroom.mjs"))
        .arg(format!("http://{}/terminal", c.addr))
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
    assert!(stdout.contains("ok: prompt"), "{stdout}");
    assert!(shots.join("classroom-prompt.png").exists());
}
