//! Lessons end to end: `berth serve --lessons` on a fixture lesson renders
//! it, its checks fail before and pass after the task is done through the
//! lab's terminal, progress is saved and exported, the app preview answers
//! from its own origin for its own session only; `berth lesson check`
//! catches mistakes.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::classroom::Classroom;

const PROMPT: &str = "root@node1:~# ";
const LONG: Duration = Duration::from_secs(60);

fn fixtures(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
        .display()
        .to_string()
}

/// A GET to another origin (the preview), with a session cookie.
fn get(url: &str, token: Option<&str>) -> (u16, String) {
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut s = std::net::TcpStream::connect(host).expect("connect to the preview");
    s.set_read_timeout(Some(LONG)).unwrap();
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Cookie: berth_session={t}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}

fn check(c: &Classroom, token: &str) -> serde_json::Value {
    let r = c.http(
        "POST",
        "/api/lessons/01-first-steps/check",
        Some(token),
        Some(r#"{"exercise":"greeter"}"#),
    );
    assert_eq!(r.status, 200, "check: {}\n{}", r.body, c.log());
    r.json()
}

fn verdict<'a>(answer: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    answer["exercises"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["id"] == id)
        .unwrap_or_else(|| panic!("no check {id}: {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixture_lesson_renders_grades_saves_progress_and_previews() {
    let lessons = fixtures("lessons");
    let c = Classroom::start(&["--lessons", &lessons, "--preview-listen", "127.0.0.1:0"]);

    // The catalogue: lessons in order, minutes, links.
    let home = c.http("GET", "/", None, None);
    assert_eq!(home.status, 200);
    let first = home.body.find("First steps").expect("first lesson listed");
    let second = home.body.find("Second").expect("second lesson listed");
    assert!(first < second, "in order: {}", home.body);
    assert!(
        home.body.contains("href=\"/lessons/01-first-steps\""),
        "{}",
        home.body
    );
    assert!(home.body.contains("5 min"), "{}", home.body);

    // The lesson page: anchors, runnable blocks, exercise, hints, pager, terminal.
    let page = c.http("GET", "/lessons/01-first-steps", None, None);
    assert_eq!(page.status, 200);
    let html = &page.body;
    for fragment in [
        "<title>First steps — Berth</title>",
        "<h1 id=\"first-steps\">First steps <a class=\"anchor\" href=\"#first-steps\"",
        "<h2 id=\"the-exercise\">",
        "<button class=\"run\" data-node=\"\" data-command=\"docker run -d --name greeter -e GREETING=hi -p 8080:80 busybox sh -c &#39;mkdir /www",
        "<section class=\"exercise\" id=\"exercise-greeter\" data-exercise=\"greeter\">",
        "<summary>Hint 1</summary><p>Use docker run -d --name greeter</p>",
        "<li data-check=\"env\"><span class=\"mark\">○</span> container greeter has GREETING=hi in its environment",
        "<button class=\"check\" data-exercise=\"greeter\">Check</button>",
        "<a rel=\"next\" href=\"/lessons/02-second\">→ Second</a>",
        "<div id=\"terminal\"></div>",
        "<script src=\"/assets/lesson.js\"></script>",
    ] {
        assert!(html.contains(fragment), "missing {fragment:?} in:\n{html}");
    }
    assert!(
        !html.contains("rel=\"prev\""),
        "the first lesson has no previous"
    );
    assert_eq!(c.http("GET", "/lessons/99-nope", None, None).status, 404);
    assert_eq!(c.http("GET", "/assets/lesson.js", None, None).status, 200);

    // Before the task: the checks fail and say what they expected and found.
    let (token, _) = c.new_session();
    let before = check(&c, &token);
    assert_eq!(before["exercises"][0]["passed"], false, "{before}");
    let running = verdict(&before, "running");
    assert_eq!(running["passed"], false);
    assert_eq!(running["expected"], "a container named greeter", "{before}");
    assert_eq!(running["found"], "no containers", "{before}");
    let env = verdict(&before, "env");
    assert_eq!(env["expected"], "running to pass first", "{before}");
    assert_eq!(env["found"], "not tried yet", "{before}");
    // The busybox image is there from the start.
    assert_eq!(verdict(&before, "image")["passed"], true, "{before}");

    // Do it wrong first: the found value names what is there.
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    t.run(
        "docker run -d --name greeter -e GREETING=hello -p 8080:80 busybox sh -c 'mkdir /www && echo fixture page > /www/index.html && httpd -f -p 80 -h /www'",
        LONG,
    )
    .await
    .expect("docker run");
    let wrong = check(&c, &token);
    assert_eq!(verdict(&wrong, "running")["passed"], true, "{wrong}");
    let env = verdict(&wrong, "env");
    assert_eq!(env["passed"], false);
    assert_eq!(env["expected"], "GREETING=hi");
    assert_eq!(env["found"], "GREETING=hello");

    // Then right: every check passes (the HTTP one through the published port).
    t.run("docker rm -f greeter", LONG).await.expect("rm");
    t.run(
        "docker run -d --name greeter -e GREETING=hi -p 8080:80 busybox sh -c 'mkdir /www && echo fixture page > /www/index.html && httpd -f -p 80 -h /www'",
        LONG,
    )
    .await
    .expect("docker run");
    let mut after = check(&c, &token);
    for _ in 0..50 {
        if after["exercises"][0]["passed"] == true {
            break;
        }
        // httpd may need a moment to listen.
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = check(&c, &token);
    }
    assert_eq!(
        after["exercises"][0]["passed"],
        true,
        "{after}\n{}",
        c.log()
    );
    assert_eq!(
        verdict(&after, "page")["found"],
        "container greeter is running, port 80 published on 8080, HTTP 200"
    );

    // Progress: saved with its time, exported, shown in the catalogue and page.
    let progress = c.http("GET", "/api/progress", Some(&token), None).json();
    let lesson = &progress["lessons"][0];
    assert_eq!(lesson["lesson"], "01-first-steps");
    assert_eq!(lesson["done"], 1);
    assert_eq!(lesson["exercises"][0]["passed"], true);
    assert!(lesson["exercises"][0]["passed_at"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(progress["lessons"][1]["done"], 0);
    let home = c.http("GET", "/", Some(&token), None);
    assert!(
        home.body
            .contains("class=\"lesson done\" data-slug=\"01-first-steps\""),
        "{}",
        home.body
    );
    assert!(home.body.contains("1/1 exercises"), "{}", home.body);
    let page = c.http("GET", "/lessons/01-first-steps", Some(&token), None);
    assert!(page.body.contains("class=\"exercise passed\""));
    assert_eq!(c.http("GET", "/api/progress", None, None).status, 401);

    // The preview: the published port as a link on another origin.
    let ports = c.http("GET", "/api/ports", Some(&token), None).json();
    let url = ports[0]["url"]
        .as_str()
        .unwrap_or_else(|| panic!("{ports}"))
        .to_string();
    assert_eq!(ports[0]["host_port"], 8080);
    assert_eq!(ports[0]["container"], "greeter");
    assert!(
        !url.starts_with(&format!("http://{}/", c.addr)),
        "another origin: {url}"
    );
    let (status, body) = get(&url, Some(&token));
    assert_eq!((status, body.trim()), (200, "fixture page"), "{}", c.log());
    // Another learner cannot open it, nor ask its own session for that port.
    let (other, _) = c.new_session();
    let (status, body) = get(&url, Some(&other));
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("another session"), "{body}");
    let other_id = c.http("GET", "/api/session", Some(&other), None).json()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let own = url.replace(
        ports[0]["url"].as_str().unwrap().split('/').nth(4).unwrap(),
        &other_id,
    );
    let (status, body) = get(&own, Some(&other));
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("publishes port 8080"), "{body}");
    assert_eq!(get(&url, None).0, 401);
}

fn lesson_check(dir: &str) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_berth"))
        .args(["lesson", "check", dir])
        .output()
        .expect("run berth lesson check");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn lesson_check_accepts_good_lessons_and_names_each_mistake_with_its_line() {
    let (code, out, err) = lesson_check(&fixtures("lessons"));
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("2 lesson(s), 2 exercise(s), 6 check(s): all valid"),
        "{out}"
    );
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join("lessons");
    let (code, out, err) = lesson_check(&real.display().to_string());
    assert_eq!(code, 0, "the starter lessons are valid: {out}{err}");

    let broken = fixtures("lessons-broken");
    let (code, _, err) = lesson_check(&broken);
    assert_eq!(code, 1, "{err}");
    for expected in [
        "Bad_Name/lesson.md:0: directory name \"Bad_Name\" is not NN-slug",
        "01-no-front/lesson.md:1: no front matter: the file must begin with a +++ line",
        "02-bad-front/lesson.md:3: front matter: invalid type: string \"ten\", expected u32",
        "03-missing-file/lesson.md:2: files: \"nope.txt\" does not exist",
        "04-exercises/lesson.md:7: exercise \"one\", check \"nothing\": names no subject",
        "04-exercises/lesson.md:15: exercise id \"one\" is used twice",
        "04-exercises/lesson.md:15: exercise \"one\", check \"a\": layers applies to images only",
        "04-exercises/lesson.md:15: exercise \"one\", check \"b\": after \"missing\" names no earlier check",
        "04-exercises/lesson.md:31: exercise: expected `.`, `=`",
        "problem(s) found",
    ] {
        assert!(err.contains(expected), "missing {expected:?} in:\n{err}");
    }
}

/// Opening a lesson with a session copies its files into the lab and runs
/// its setup there; `GET /api/lessons` says when the setup is done. (Each
/// course lesson's solution is proven in tests/course.rs.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_a_lesson_copies_its_files_and_runs_its_setup() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let lessons = root.join("lessons").display().to_string();
    let c = Classroom::start(&["--lessons", &lessons, "--preview-listen", "off"]);
    let (token, _) = c.new_session();
    let slug = "04-dockerfile-build";
    let list = c.http("GET", "/api/lessons", Some(&token), None).json();
    let setup_of = |list: &serde_json::Value| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|l| l["slug"] == slug)
            .unwrap_or_else(|| panic!("{list}"))["setup"]
            .clone()
    };
    assert_eq!(setup_of(&list), serde_json::Value::Null, "not opened yet");
    let page = c.http("GET", &format!("/lessons/{slug}"), Some(&token), None);
    assert_eq!(page.status, 200);
    common::course::wait_for_setup(&c, &token, slug).await;
    let list = c.http("GET", "/api/lessons", Some(&token), None).json();
    assert_eq!(setup_of(&list), "done", "{list}");

    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    let page = t
        .run("cat /root/app/www/index.html", LONG)
        .await
        .expect("cat");
    assert!(page.contains("<h1>Blobfish Facts</h1>"), "{page:?}");
    // The setup made the app's script executable: it runs in the lab.
    let fact = t
        .run("/root/app/www/cgi-bin/fact", LONG)
        .await
        .expect("fact");
    assert!(
        fact.starts_with("Content-Type: text/plain") && fact.contains("blobfish"),
        "{fact:?}"
    );
}

/// Runs the checks of `exercise` of `lesson`, retrying a few times until
/// they pass (a pushed tag or a converging service may need a moment).
async fn check_until(
    c: &Classroom,
    token: &str,
    lesson: &str,
    exercise: &str,
) -> serde_json::Value {
    let path = format!("/api/lessons/{lesson}/check");
    let body = format!(r#"{{"exercise":"{exercise}"}}"#);
    let mut answer = serde_json::Value::Null;
    for _ in 0..100 {
        let r = c.http("POST", &path, Some(token), Some(&body));
        assert_eq!(r.status, 200, "check: {}\n{}", r.body, c.log());
        answer = r.json();
        if answer["exercises"][0]["passed"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_check_fails_before_and_passes_after_a_push_from_the_lab() {
    let lessons = fixtures("lessons");
    let c = Classroom::start(&["--lessons", &lessons, "--preview-listen", "off"]);
    let (token, _) = c.new_session();
    let path = "/api/lessons/02-second/check";
    let body = Some(r#"{"exercise":"pushed"}"#);
    let before = c.http("POST", path, Some(&token), body).json();
    assert_eq!(before["exercises"][0]["passed"], false, "{before}");
    let repo = verdict(&before, "repo");
    assert_eq!(
        repo["expected"], "repository registry.local:5000/myapp pushed",
        "{before}"
    );
    assert_eq!(
        repo["found"], "nothing pushed to your registry namespace",
        "{before}"
    );

    // A push of another tag: the repository is there, the tag is not.
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    let out = t
        .run(
            "docker tag busybox registry.local:5000/myapp:v0 && docker push registry.local:5000/myapp:v0 2>&1",
            LONG,
        )
        .await
        .expect("push v0");
    assert!(out.contains("v0: digest: sha256:"), "{out}\n{}", c.log());
    let half = c.http("POST", path, Some(&token), body).json();
    assert_eq!(verdict(&half, "repo")["passed"], true, "{half}");
    let tag = verdict(&half, "tag");
    assert_eq!(tag["passed"], false, "{half}");
    assert_eq!(tag["expected"], "tag v1 of registry.local:5000/myapp");
    assert_eq!(tag["found"], "tags v0");

    // The lesson's own runnable block: now every check passes.
    t.run(
        "docker tag busybox registry.local:5000/myapp:v1 && docker push registry.local:5000/myapp:v1 2>&1",
        LONG,
    )
    .await
    .expect("push v1");
    let after = check_until(&c, &token, "02-second", "pushed").await;
    assert_eq!(after["exercises"][0]["passed"], true, "{after}");
    assert_eq!(
        verdict(&after, "tag")["found"],
        "repository registry.local:5000/myapp, tag v1"
    );

    // Another learner's namespace is apart: the same check fails there.
    let (other, _) = c.new_session();
    let theirs = c.http("POST", path, Some(&other), body).json();
    assert_eq!(theirs["exercises"][0]["passed"], false, "{theirs}");
}
