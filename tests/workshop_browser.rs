//! The workshop in a real browser: headless Chromium (Debian's, driven by
//! playwright-core) shows the instructor's progress board turning a cell
//! green as a learner passes, and the instructor's projector terminal in
//! the learner's Presenter tab. Screenshots go to tests/artifacts/.

mod common;

use std::path::Path;
use std::process::Command;

use common::classroom::{artifacts, browser_available, Classroom};

const ADMIN: &str = "admin-secret-for-browser";

fn cookie(r: &common::classroom::Response, name: &str) -> String {
    r.header("set-cookie")
        .and_then(|s| s.split(';').next())
        .and_then(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} cookie in {r:?}"))
        .to_string()
}

#[test]
fn the_board_turns_green_and_the_presenter_tab_shows_the_demo() {
    if !browser_available() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lessons = root.join("tests/fixtures/workshop-lessons");
    let c = Classroom::start(&[
        "--lessons",
        &lessons.display().to_string(),
        "--admin-token",
        ADMIN,
        "--preview-listen",
        "off",
    ]);
    let bearer = format!("Bearer {ADMIN}");
    let admin = [("Authorization", bearer.as_str())];
    let r = c
        .request(
            "POST",
            "/api/instructor/login",
            None,
            Some(&format!("{{\"admin_token\":\"{ADMIN}\"}}")),
            &[],
        )
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let instructor = cookie(&r, "berth_instructor");
    let r = c
        .request(
            "POST",
            "/api/workshops",
            None,
            Some(r#"{"title":"Browser workshop","lessons":["01-quick"],"seats":2}"#),
            &admin,
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}", r.body);
    let w = r.json();
    let (id, code) = (
        w["id"].as_i64().unwrap(),
        w["code"].as_str().unwrap().to_string(),
    );
    // Alice joins over the API; Bob through the join form, in the browser.
    let r = c
        .request(
            "POST",
            "/api/workshops/join",
            None,
            Some(&format!("{{\"code\":\"{code}\",\"name\":\"Alice\"}}")),
            &[],
        )
        .unwrap();
    assert_eq!(r.status, 201, "{}\n{}", r.body, c.log());
    let alice = (
        cookie(&r, "berth_session"),
        r.json()["learner"].as_i64().unwrap(),
    );
    let config = serde_json::json!({
        "id": id, "code": code, "instructor": instructor,
        "learner": alice.0, "learner_id": alice.1,
    });
    let shots = artifacts();
    std::fs::create_dir_all(&shots).unwrap();
    let out = Command::new("node")
        .arg(root.join("tests/browser/workshop.mjs"))
        .arg(format!("http://{}", c.addr))
        .arg(&shots)
        .arg(config.to_string())
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser test failed:\n{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
    assert!(
        stdout.contains("ok: board green (rgb(46, 157, 79), 1/2)"),
        "{stdout}"
    );
    assert!(stdout.contains("projector font 26px"), "{stdout}");
    assert!(stdout.contains("pasted into the lab"), "{stdout}");
    assert!(
        stdout.contains("ok: Bob joined through the form"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok: console lists the workshop"),
        "{stdout}"
    );
    assert!(stdout.contains("ok: 2 access cards"), "{stdout}");
    for shot in [
        "workshop-board-before.png",
        "workshop-board-green.png",
        "workshop-projector.png",
        "workshop-presenter-tab.png",
        "workshop-pasted-into-lab.png",
        "workshop-join-form.png",
        "workshop-instructor-console.png",
        "workshop-cards.png",
    ] {
        assert!(shots.join(shot).exists(), "{shot}");
    }
}
