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
        out.contains("3 lesson(s), 4 exercise(s), 11 check(s): all valid"),
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
        "03-missing-file/lesson.md:2: front matter: setup_nodes names \"node3\", not one of the lesson's 1 node(s)",
        "03-missing-file/lesson.md:11: file=\"../../etc/Dockerfile\": a path relative to the lab's home, without `..`",
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
    for _ in 0..300 {
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_checks_follow_the_swarm_its_service_and_its_update() {
    let lessons = fixtures("lessons");
    let c = Classroom::start(&["--lessons", &lessons, "--preview-listen", "off"]);
    let (token, _) = c.new_session();
    let path = "/api/lessons/02-second/check";
    let body = Some(r#"{"exercise":"swarm"}"#);
    let before = c.http("POST", path, Some(&token), body).json();
    let cluster = verdict(&before, "cluster");
    assert_eq!(cluster["passed"], false, "{before}");
    assert_eq!(cluster["expected"], "a swarm");
    assert_eq!(cluster["found"], "this node is not in a swarm");
    assert_eq!(verdict(&before, "web")["found"], "not tried yet");

    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    let out = t.run("docker swarm init 2>&1", LONG).await.expect("init");
    assert!(out.contains("Swarm initialized"), "{out}\n{}", c.log());
    // One replica first: the check names what it found.
    let out = t
        .run(
            "docker service create --detach --name web --replicas 1 -p 8080:80 busybox httpd -f -p 80 2>&1",
            LONG,
        )
        .await
        .expect("service create");
    assert!(!out.contains("Error"), "{out}");
    let one = c.http("POST", path, Some(&token), body).json();
    assert_eq!(verdict(&one, "cluster")["passed"], true, "{one}");
    assert_eq!(
        verdict(&one, "cluster")["found"],
        "a swarm of 1 node, 1 manager"
    );
    assert_eq!(
        verdict(&one, "manager")["found"],
        "swarm node node1, availability active, role manager"
    );
    let web = verdict(&one, "web");
    assert_eq!(web["passed"], false, "{one}");
    assert_eq!(web["expected"], "2/2 replicas running");
    assert!(
        web["found"].as_str().unwrap().ends_with("/1 running"),
        "{one}"
    );

    // Scaled to two: the service passes; no update has run yet.
    t.run("docker service scale --detach web=2 2>&1", LONG)
        .await
        .expect("scale");
    let mut two = serde_json::Value::Null;
    for _ in 0..100 {
        two = c.http("POST", path, Some(&token), body).json();
        if verdict(&two, "web")["passed"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let web = verdict(&two, "web");
    if web["passed"] != true {
        let ps = t
            .run("docker service ps --no-trunc web 2>&1", LONG)
            .await
            .unwrap_or_default();
        panic!("{two}\n{ps}\n{}", c.log());
    }
    assert_eq!(
        web["found"],
        "service web, mode replicated, 2/2 running, image busybox:latest, port 8080 published to 80"
    );
    let updated = verdict(&two, "updated");
    assert_eq!(updated["passed"], false, "{two}");
    assert_eq!(updated["expected"], "update state completed");
    assert_eq!(updated["found"], "no update yet");

    // A rolling update: once it completes every check passes.
    t.run(
        "docker service update --detach --update-parallelism 2 --env-add COLOUR=blue web 2>&1",
        LONG,
    )
    .await
    .expect("update");
    let after = check_until(&c, &token, "02-second", "swarm").await;
    if after["exercises"][0]["passed"] != true {
        let ps = t
            .run("docker service ps --no-trunc web 2>&1", LONG)
            .await
            .unwrap_or_default();
        panic!("{after}\n{ps}\n{}", c.log());
    }
    assert_eq!(
        verdict(&after, "updated")["found"],
        "service web, update state completed"
    );
}

/// Reads `path` in `node`'s lab until it holds `needle` (setup runs in the
/// background).
async fn lab_file(c: &Classroom, token: &str, node: &str, path: &str, needle: &str) -> String {
    let mut t = c.terminal(token, node).await;
    let prompt = format!("root@{node}:~# ");
    assert!(
        t.wait_for(&prompt, LONG).await,
        "no prompt on {node}: {:?}",
        t.text()
    );
    let mut text = String::new();
    for _ in 0..100 {
        text = t
            .run(&format!("cat {path}"), LONG)
            .await
            .unwrap_or_default();
        if text.contains(needle) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_two_node_lesson_adds_a_node_sets_up_both_once_and_again_after_a_reset() {
    let lessons = fixtures("lessons");
    let c = Classroom::start(&["--lessons", &lessons, "--preview-listen", "off"]);
    let (token, session) = c.new_session();
    assert_eq!(session["nodes"], serde_json::json!(["node1"]), "{session}");

    // Opening the lesson adds node2 to the running session.
    let page = c.http("GET", "/lessons/03-two-nodes", Some(&token), None);
    assert_eq!(page.status, 200);
    let status = c.http("GET", "/api/session", Some(&token), None).json();
    assert_eq!(
        status["nodes"],
        serde_json::json!(["node1", "node2"]),
        "{status}"
    );

    // Files on both nodes; each node's own setup ran once.
    let note = lab_file(&c, &token, "node2", "/root/note.txt", "shared note").await;
    assert!(note.contains("shared note"), "{note}\n{}", c.log());
    let runs2 = lab_file(&c, &token, "node2", "/root/setup-runs", "node2").await;
    assert_eq!(runs2.matches("node2").count(), 1, "{runs2}");
    assert!(!runs2.contains("node1"), "{runs2}");
    let runs1 = lab_file(&c, &token, "node1", "/root/setup-runs", "node1").await;
    assert_eq!(runs1.matches("node1").count(), 1, "{runs1}");
    let ok = check_until(&c, &token, "03-two-nodes", "prepared").await;
    assert_eq!(ok["exercises"][0]["passed"], true, "{ok}\n{}", c.log());
    assert_eq!(ok["exercises"][0]["node"], "node2");

    // Opened again: nothing runs twice.
    let page = c.http("GET", "/lessons/03-two-nodes", Some(&token), None);
    assert_eq!(page.status, 200);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = lab_file(&c, &token, "node2", "/root/setup-runs", "node2").await;
    assert_eq!(again.matches("node2").count(), 1, "{again}");

    // A reset lab gets both nodes and the setup again.
    let r = c.http("POST", "/api/session/reset", Some(&token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.json()["nodes"],
        serde_json::json!(["node1", "node2"]),
        "{}",
        r.body
    );
    let fresh = lab_file(&c, &token, "node2", "/root/setup-runs", "node2").await;
    assert_eq!(fresh.matches("node2").count(), 1, "{fresh}\n{}", c.log());
    let ok = check_until(&c, &token, "03-two-nodes", "prepared").await;
    assert_eq!(ok["exercises"][0]["passed"], true, "{ok}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_passes_a_websocket_through_to_the_learners_app() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;

    let lessons = fixtures("lessons");
    let c = Classroom::start(&["--lessons", &lessons, "--preview-listen", "127.0.0.1:0"]);
    let (token, _) = c.new_session();
    // A WebSocket app in a container of the lab: busybox nc runs a shell
    // script that does the handshake and talks in frames.
    let script = std::fs::read(fixtures("ws-app.sh")).unwrap();
    let b64 = base64_encode(&script);
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    // In pieces: a terminal line is at most a few hundred characters here.
    for piece in b64.as_bytes().chunks(200) {
        let piece = std::str::from_utf8(piece).unwrap();
        t.run(&format!("printf %s '{piece}' >> /root/ws-app.b64"), LONG)
            .await
            .expect("write the app");
    }
    t.run("base64 -d /root/ws-app.b64 > /root/ws-app.sh", LONG)
        .await
        .expect("decode the app");
    let out = t
        .run(
            "docker run -d --name ws -p 8090:80 -v /root/ws-app.sh:/ws-app.sh busybox nc -ll -p 80 -e sh /ws-app.sh 2>&1",
            LONG,
        )
        .await
        .expect("docker run");
    assert!(!out.contains("Error"), "{out}");
    let ports = c.http("GET", "/api/ports", Some(&token), None).json();
    let url = ports
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["host_port"] == 8090)
        .and_then(|p| p["url"].as_str())
        .unwrap_or_else(|| panic!("no preview of 8090: {ports}"))
        .replace("http://", "ws://");

    let connect = |cookie: Option<String>| {
        let mut req = format!("{url}socket").into_client_request().unwrap();
        if let Some(t) = cookie {
            req.headers_mut()
                .insert("cookie", format!("berth_session={t}").parse().unwrap());
        }
        tokio_tungstenite::connect_async(req)
    };
    let (mut ws, answer) = connect(Some(token.clone()))
        .await
        .unwrap_or_else(|e| panic!("the WebSocket through the preview failed: {e}\n{}", c.log()));
    assert_eq!(answer.status(), 101);
    let first = tokio::time::timeout(LONG, ws.next())
        .await
        .expect("a frame");
    assert_eq!(
        first.unwrap().unwrap(),
        Message::Text("hello from the app".into())
    );
    ws.send(Message::Text("hello".into())).await.unwrap();
    let reply = tokio::time::timeout(LONG, ws.next())
        .await
        .expect("a reply");
    assert_eq!(
        reply.unwrap().unwrap(),
        Message::Text("got 11 bytes".into())
    );

    // Another session's browser is refused before anything reaches the app.
    let (other, _) = c.new_session();
    match connect(Some(other)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("another session's browser got through: {other:?}"),
    }
    match connect(None).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("a browser without a session got through: {other:?}"),
    }
}

fn base64_encode(bytes: &[u8]) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Compares `html` with `tests/snapshots/<name>`; `BERTH_BLESS=1` writes it.
fn snapshot(name: &str, html: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("BERTH_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, html).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (BERTH_BLESS=1 writes it)", path.display()));
    if want != html {
        let line = want
            .lines()
            .zip(html.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(html.lines().count()));
        panic!(
            "{name} differs from its snapshot at line {}:\n  want {:?}\n  have {:?}\n(BERTH_BLESS=1 rewrites it)\n{html}",
            line + 1,
            want.lines().nth(line),
            html.lines().nth(line)
        );
    }
}

#[test]
fn the_pages_render_as_their_snapshots() {
    let lessons = fixtures("lessons");
    let c = Classroom::start(&[
        "--lessons",
        &lessons,
        "--preview-listen",
        "off",
        "--max-sessions",
        "0",
    ]);
    for (path, status, name) in [
        ("/", 200, "catalogue.html"),
        ("/lessons/01-first-steps", 200, "lesson-first-steps.html"),
        ("/lessons/03-two-nodes", 200, "lesson-two-nodes.html"),
        ("/lessons/99-nope", 404, "no-such-lesson.html"),
        ("/start", 503, "full.html"),
    ] {
        let r = c.http("GET", path, None, None);
        assert_eq!(r.status, status, "{path}: {}", r.body);
        snapshot(name, &r.body);
    }
}
