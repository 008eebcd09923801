//! The course in a real browser (headless Chromium driven by
//! playwright-core): lesson 4 walked end to end — read, every runnable
//! block clicked, every exercise checked until green — and screenshots of
//! lessons 1–4 at 1366×768 and 1920×1080. Screenshots go to
//! tests/artifacts/ (course-*.png).

mod common;

use common::classroom::{artifacts, browser_available, run_browser_script, Classroom};
use common::course::lessons_dir;

fn classroom() -> Classroom {
    let lessons = lessons_dir().display().to_string();
    Classroom::start(&["--lessons", &lessons, "--preview-listen", "off"])
}

#[test]
fn a_learner_walks_lesson_4_in_the_browser_and_every_exercise_turns_green() {
    if !browser_available() {
        return;
    }
    let c = classroom();
    let stdout = run_browser_script(&c, "course.mjs", &format!("http://{}/", c.addr));
    assert!(
        stdout.contains("ok: lesson 4 read, 12 blocks run, 3 exercises green (10 checks)"),
        "{stdout}"
    );
    for shot in [
        "start",
        "built",
        "build-green",
        "run-green",
        "rebuild-green",
        "done",
    ] {
        let path = artifacts().join(format!("course-lesson4-{shot}.png"));
        assert!(path.exists(), "no screenshot {}", path.display());
    }
}

#[test]
fn lessons_1_to_4_are_screenshot_at_laptop_and_projector_sizes() {
    if !browser_available() {
        return;
    }
    let c = classroom();
    let slugs = [
        "01-vms-vs-containers",
        "02-images-and-layers",
        "03-running-containers",
        "04-dockerfile-build",
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shots = artifacts();
    std::fs::create_dir_all(&shots).unwrap();
    let out = std::process::Command::new("node")
        .arg(root.join("tests/browser/course_shots.mjs"))
        .arg(format!("http://{}/", c.addr))
        .arg(&shots)
        .args(slugs)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
    assert!(stdout.contains("ok: 24 lesson screenshots"), "{stdout}");
    // No code block or table a learner must scroll sideways to read.
    for line in stdout
        .lines()
        .filter(|l| l.contains("wider than the column"))
    {
        assert!(line.contains(": 0 block(s)"), "{stdout}");
    }
    for slug in slugs {
        for size in ["1366x768", "1920x1080"] {
            let path = shots.join(format!("course-{slug}-{size}-top.png"));
            assert!(path.exists(), "no screenshot {}", path.display());
        }
    }
}

#[test]
fn the_lab_shell_is_as_wide_and_tall_as_the_terminal_xterm_shows() {
    if !browser_available() {
        return;
    }
    let c = classroom();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shots = artifacts();
    std::fs::create_dir_all(&shots).unwrap();
    let out = std::process::Command::new("node")
        .arg(root.join("tests/browser/terminal_size.mjs"))
        .arg(format!("http://{}/", c.addr))
        .arg(&shots)
        .arg("01-vms-vs-containers")
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
    assert!(
        stdout.contains("ok: stty size equals xterm's size at 3 sizes"),
        "{stdout}"
    );
}

#[test]
fn the_swarm_lesson_is_screenshot_at_laptop_and_projector_sizes() {
    if !browser_available() {
        return;
    }
    let c = classroom();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shots = artifacts();
    std::fs::create_dir_all(&shots).unwrap();
    let out = std::process::Command::new("node")
        .arg(root.join("tests/browser/course_shots.mjs"))
        .arg(format!("http://{}/", c.addr))
        .arg(&shots)
        .arg("13-swarm")
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
    assert!(stdout.contains("ok: 6 lesson screenshots"), "{stdout}");
    assert!(
        stdout
            .lines()
            .filter(|l| l.contains("wider than the column"))
            .all(|l| l.contains(": 0 block(s)")),
        "{stdout}"
    );
}

#[test]
fn lessons_9_to_12_are_screenshot_at_laptop_and_projector_sizes() {
    if !browser_available() {
        return;
    }
    let c = classroom();
    let slugs = [
        "09-healthchecks",
        "10-compose",
        "11-best-practices",
        "12-multi-stage",
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let shots = artifacts();
    std::fs::create_dir_all(&shots).unwrap();
    let out = std::process::Command::new("node")
        .arg(root.join("tests/browser/course_shots.mjs"))
        .arg(format!("http://{}/", c.addr))
        .arg(&shots)
        .args(slugs)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        c.log()
    );
    assert!(stdout.contains("ok: 24 lesson screenshots"), "{stdout}");
    assert!(
        stdout
            .lines()
            .filter(|l| l.contains("wider than the column"))
            .all(|l| l.contains(": 0 block(s)")),
        "{stdout}"
    );
}
