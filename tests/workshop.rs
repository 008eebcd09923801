//! Workshops over HTTP and WebSocket, as an instructor and two learners see
//! them: `berth serve --admin-token` with a fixture lesson; an instructor
//! account, a workshop and its join code; two learners joining; a pass that
//! turns a cell green on the board's socket; the read-only shoulder view
//! and help mode; the demo broadcast to every learner; the shared registry;
//! the CSV; the refusals; deleting it all.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::classroom::{Classroom, Response, Term};
use futures_util::SinkExt;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderName;
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "admin-secret-for-tests";
const PROMPT: &str = "root@node1:~#";
const LONG: Duration = Duration::from_secs(90);

fn lessons() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/workshop-lessons")
        .display()
        .to_string()
}

fn start() -> Classroom {
    Classroom::start(&[
        "--lessons",
        &lessons(),
        "--admin-token",
        ADMIN,
        "--preview-listen",
        "off",
        "--max-sessions",
        "12",
    ])
}

/// A request with a cookie header (not the classroom's own) or a bearer token.
fn call(c: &Classroom, method: &str, path: &str, auth: &Auth, body: Option<&Value>) -> Response {
    let body = body.map(|b| b.to_string());
    let header = auth.header();
    let extra: Vec<(&str, &str)> = header
        .as_ref()
        .map(|(k, v)| vec![(k.as_str(), v.as_str())])
        .unwrap_or_default();
    c.request(method, path, None, body.as_deref(), &extra)
        .expect("HTTP request")
}

/// Who a request is from.
enum Auth {
    Nobody,
    Bearer(String),
    Instructor(String),
    Learner(String),
}

impl Auth {
    fn header(&self) -> Option<(String, String)> {
        match self {
            Auth::Nobody => None,
            Auth::Bearer(t) => Some(("Authorization".into(), format!("Bearer {t}"))),
            Auth::Instructor(t) => Some(("Cookie".into(), format!("berth_instructor={t}"))),
            Auth::Learner(t) => Some(("Cookie".into(), format!("berth_session={t}"))),
        }
    }
}

fn cookie_value(r: &Response, name: &str) -> String {
    let set = r
        .header("set-cookie")
        .unwrap_or_else(|| panic!("a cookie in {r:?}"));
    set.split(';')
        .next()
        .and_then(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("{name} cookie in {set}"))
        .to_string()
}

/// Opens a WebSocket at `path` as `auth`; `Err(status, body)` when refused.
async fn ws(c: &Classroom, path: &str, auth: &Auth) -> Result<Term, (u16, String)> {
    let mut req = format!("ws://{}{path}", c.addr)
        .into_client_request()
        .unwrap();
    if let Some((k, v)) = auth.header() {
        let name: HeaderName = k.to_lowercase().parse().unwrap();
        req.headers_mut().insert(name, v.parse().unwrap());
    }
    match tokio_tungstenite::connect_async_with_config(req, None, true).await {
        Ok((ws, _)) => Ok(Term {
            ws,
            received: 0,
            acked: 0,
            output: Vec::new(),
            messages: Vec::new(),
        }),
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => Err((
            r.status().as_u16(),
            String::from_utf8_lossy(r.body().as_deref().unwrap_or_default()).into_owned(),
        )),
        Err(e) => panic!("websocket {path}: {e}"),
    }
}

/// Reads JSON messages until one satisfies `pred`; panics at the timeout.
async fn wait_message(
    t: &mut Term,
    limit: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(m) = t.messages.iter().find(|m| pred(m)) {
            return m.clone();
        }
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no {what} in {:?}", t.messages);
        t.next(left.min(Duration::from_millis(500))).await;
    }
}

async fn join(c: &Classroom, code: &str, name: &str) -> (String, i64) {
    let r = call(
        c,
        "POST",
        "/api/workshops/join",
        &Auth::Nobody,
        Some(&json!({"code": code, "name": name})),
    );
    assert_eq!(r.status, 201, "join as {name}: {}\n{}", r.body, c.log());
    (
        cookie_value(&r, "berth_session"),
        r.json()["learner"].as_i64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workshop_from_creation_to_deletion() {
    let c = start();
    let admin = Auth::Bearer(ADMIN.into());

    // Wrong tokens and no token are refused; the admin token works.
    let plan = json!({"title": "Docker in a morning", "lessons": ["01-quick"], "seats": 3});
    let r = call(
        &c,
        "POST",
        "/api/workshops",
        &Auth::Bearer("wrong".into()),
        Some(&plan),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(
        r.json()["message"],
        "instructors only: log in at /instructor"
    );
    assert_eq!(
        call(&c, "POST", "/api/workshops", &Auth::Nobody, Some(&plan)).status,
        401
    );
    let r = call(
        &c,
        "POST",
        "/api/instructor/login",
        &Auth::Nobody,
        Some(&json!({"admin_token": "nope"})),
    );
    assert_eq!(r.status, 401);

    // Instructor accounts: made by the admin, passwords checked.
    let r = call(
        &c,
        "POST",
        "/api/instructors",
        &admin,
        Some(&json!({"username": "ada", "password": "short"})),
    );
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["message"], "a password has at least 8 characters");
    let r = call(
        &c,
        "POST",
        "/api/instructors",
        &admin,
        Some(&json!({"username": "ada", "password": "analytical-engine"})),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let r = call(
        &c,
        "POST",
        "/api/instructors",
        &admin,
        Some(&json!({"username": "ada", "password": "another-one"})),
    );
    assert_eq!(r.json()["message"], "the user name ada is taken");
    let r = call(
        &c,
        "POST",
        "/api/instructor/login",
        &Auth::Nobody,
        Some(&json!({"username": "ada", "password": "wrong-password"})),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["message"], "wrong user name or password");
    let r = call(
        &c,
        "POST",
        "/api/instructor/login",
        &Auth::Nobody,
        Some(&json!({"username": "ada", "password": "analytical-engine"})),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let ada = Auth::Instructor(cookie_value(&r, "berth_instructor"));
    // An instructor cannot make accounts.
    let r = call(
        &c,
        "POST",
        "/api/instructors",
        &ada,
        Some(&json!({"username": "bob", "password": "12345678"})),
    );
    assert_eq!(r.status, 403);

    // The workshop: unknown lessons refused; a code and links.
    let r = call(
        &c,
        "POST",
        "/api/workshops",
        &ada,
        Some(&json!({"title": "x", "lessons": ["99-none"], "seats": 2})),
    );
    assert_eq!(r.json()["message"], "no such lesson: 99-none");
    let r = call(&c, "POST", "/api/workshops", &ada, Some(&plan));
    assert_eq!(r.status, 201, "{}", r.body);
    let w = r.json();
    let id = w["id"].as_i64().unwrap();
    let code = w["code"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 6, "{w}");
    assert!(w["join_url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/w/{code}")));

    // A workshop in the future or the past is not open for joining.
    let later = json!({"title": "Later", "lessons": [], "seats": 1,
        "starts_at": "2099-01-01T09:00:00Z", "ends_at": "2099-01-01T12:00:00Z"});
    let later_code = call(&c, "POST", "/api/workshops", &ada, Some(&later)).json()["code"]
        .as_str()
        .unwrap()
        .to_string();
    let r = call(
        &c,
        "POST",
        "/api/workshops/join",
        &Auth::Nobody,
        Some(&json!({"code": later_code, "name": "Eve"})),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json()["message"],
        "this workshop opens at 2099-01-01T08:00:00Z (an hour before it starts)"
    );

    // Access cards: one per seat, with the code and a QR code.
    let cards = call(&c, "GET", &format!("/workshops/{id}/cards"), &ada, None);
    assert_eq!(cards.status, 200);
    assert_eq!(cards.body.matches("class=\"card\"").count(), 3);
    assert_eq!(
        cards
            .body
            .matches(&format!("<p class=\"code\">{code}</p>"))
            .count(),
        3
    );
    assert!(cards.body.contains("<svg"), "a QR code");

    // Pre-warm: the workshop runs now, so its seats' labs are made ready.
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let pool = call(&c, "GET", "/healthz", &Auth::Nobody, None).json()["pool"]
            .as_u64()
            .unwrap();
        if pool >= 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no labs pre-warmed:\n{}",
            c.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Joining: wrong codes are refused, names are needed.
    let r = call(
        &c,
        "POST",
        "/api/workshops/join",
        &Auth::Nobody,
        Some(&json!({"code": "ZZZZZZ", "name": "Eve"})),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["message"], "no workshop has the code ZZZZZZ");
    let r = call(
        &c,
        "POST",
        "/api/workshops/join",
        &Auth::Nobody,
        Some(&json!({"code": code, "name": "  "})),
    );
    assert_eq!(r.status, 400);
    let page = call(&c, "GET", "/w/ZZZZZZ", &Auth::Nobody, None);
    assert_eq!(page.status, 404);
    assert!(page.body.contains("No workshop has the code ZZZZZZ"));
    // The code may be typed in lower case with a dash.
    let typed = format!("{}-{}", code[..3].to_lowercase(), &code[3..]);
    let (alice, alice_id) = join(&c, &typed, "Alice").await;
    let (bob, bob_id) = join(&c, &code, "Bob").await;
    let alice_auth = Auth::Learner(alice.clone());
    let bob_auth = Auth::Learner(bob.clone());
    let mine = call(&c, "GET", "/api/workshop", &alice_auth, None).json();
    assert_eq!(mine["workshop"]["code"], code.as_str());
    assert_eq!(mine["lessons"][0]["slug"], "01-quick");
    let page = call(&c, "GET", &format!("/w/{code}"), &alice_auth, None);
    assert!(
        page.body.contains("id=\"tab-presenter\""),
        "the learner page"
    );

    // Learners cannot open the board, its data, the CSV or anyone's terminal.
    for path in [
        format!("/api/workshops/{id}/board"),
        format!("/api/workshops/{id}/board.csv"),
        format!("/api/workshops/{id}"),
    ] {
        assert_eq!(
            call(&c, "GET", &path, &alice_auth, None).status,
            401,
            "{path}"
        );
    }
    let r = call(
        &c,
        "GET",
        &format!("/workshops/{id}/board"),
        &alice_auth,
        None,
    );
    assert_eq!(r.status, 303, "the board page sends learners to the login");
    let err = ws(&c, &format!("/ws/workshops/{id}/board"), &alice_auth)
        .await
        .err()
        .expect("refused");
    assert_eq!(err.0, 401, "{err:?}");
    let err = ws(
        &c,
        &format!("/ws/workshops/{id}/learners/{alice_id}/terminal/node1"),
        &bob_auth,
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(err.0, 401, "{err:?}");
    let err = ws(
        &c,
        &format!("/ws/workshops/{id}/board"),
        &Auth::Bearer("wrong".into()),
    )
    .await
    .err()
    .expect("refused");
    assert_eq!(err.0, 401);

    // A page of another site cannot open the instructor's sockets.
    let mut req = format!("ws://{}/ws/workshops/{id}/board", c.addr)
        .into_client_request()
        .unwrap();
    let h = req.headers_mut();
    h.insert(
        "cookie",
        format!(
            "berth_instructor={}",
            match &ada {
                Auth::Instructor(t) => t.clone(),
                _ => unreachable!(),
            }
        )
        .parse()
        .unwrap(),
    );
    h.insert("origin", "http://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(req).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 403),
        other => panic!(
            "a cross-site board socket was not refused: {:?}",
            other.map(|_| ())
        ),
    }

    // The board: a snapshot with both rows and no passes.
    let mut board = ws(&c, &format!("/ws/workshops/{id}/board"), &ada)
        .await
        .expect("board");
    let snap = wait_message(&mut board, LONG, "snapshot", |m| m["type"] == "snapshot").await;
    let names: Vec<&str> = snap["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Alice", "Bob"]);
    let keys: Vec<&str> = snap["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["01-quick/made", "01-quick/volume"]);
    assert_eq!(snap["counts"]["01-quick/made"], 0);

    // Alice passes an exercise: the cell turns green on the board's socket.
    let mut alice_term = c.terminal(&alice, "node1").await;
    assert!(
        alice_term.wait_for(PROMPT, LONG).await,
        "no prompt: {:?}",
        alice_term.text()
    );
    alice_term
        .run("docker create --name hello busybox", LONG)
        .await
        .expect("docker create");
    let r = call(
        &c,
        "POST",
        "/api/lessons/01-quick/check",
        &alice_auth,
        Some(&json!({"exercise": "made"})),
    );
    assert_eq!(r.json()["exercises"][0]["passed"], true, "{}", r.body);
    let pass = wait_message(&mut board, Duration::from_secs(10), "pass", |m| {
        m["type"] == "pass"
    })
    .await;
    assert_eq!(pass["learner"], alice_id);
    assert_eq!(pass["key"], "01-quick/made");
    // Bob's failing check changes nothing on the board.
    let r = call(
        &c,
        "POST",
        "/api/lessons/01-quick/check",
        &bob_auth,
        Some(&json!({"exercise": "made"})),
    );
    assert_eq!(r.json()["exercises"][0]["passed"], false);
    let board_now = call(&c, "GET", &format!("/api/workshops/{id}/board"), &ada, None).json();
    assert_eq!(board_now["counts"]["01-quick/made"], 1);
    assert!(
        board_now["rows"][0]["passes"]["01-quick/made"].is_string(),
        "{board_now}"
    );
    assert_eq!(board_now["rows"][0]["stuck_on"], "01-quick/volume");
    assert_eq!(board_now["rows"][1]["stuck_on"], "01-quick/made");
    assert_eq!(
        board
            .messages
            .iter()
            .filter(|m| m["type"] == "pass")
            .count(),
        1
    );

    // Over the shoulder, read-only: sees Alice's output, cannot type.
    let shoulder_path = format!("/ws/workshops/{id}/learners/{alice_id}/terminal/node1");
    let mut shoulder = ws(&c, &shoulder_path, &ada).await.expect("shoulder view");
    let hello = wait_message(&mut shoulder, LONG, "hello", |m| m["type"] == "hello").await;
    assert_eq!(hello["read_only"], true);
    alice_term.type_text("echo shoulder-$((20+3))\r").await;
    assert!(
        shoulder.wait_for("shoulder-23", LONG).await,
        "{:?}",
        shoulder.text()
    );
    shoulder.type_text("echo typed-$((1+1))\r").await;
    let refused = wait_message(&mut shoulder, LONG, "refusal", |m| m["type"] == "error").await;
    assert_eq!(refused["message"], "this terminal is read-only");
    let out = alice_term.run("echo after", LONG).await.expect("echo");
    assert_eq!(out, "after\n");
    assert!(!alice_term.text().contains("typed-2"));

    // Helping: Alice is told, in her terminal and on her page; then it types.
    let mut helper = ws(&c, &format!("{shoulder_path}?mode=help"), &ada)
        .await
        .expect("help");
    assert!(
        alice_term
            .wait_for("your instructor (ada) can now type in this terminal", LONG)
            .await
    );
    let mine = call(&c, "GET", "/api/workshop", &alice_auth, None).json();
    assert_eq!(mine["helping"], "ada");
    wait_message(&mut helper, LONG, "hello", |m| {
        m["type"] == "hello" && m["read_only"] == false
    })
    .await;
    helper.type_text("echo helped-$((2+2))\r").await;
    assert!(
        alice_term.wait_for("helped-4", LONG).await,
        "{:?}",
        alice_term.text()
    );
    drop(helper);
    assert!(
        alice_term
            .wait_for("your instructor stopped typing", LONG)
            .await
    );

    // Demo mode: nothing before it starts; then the instructor's terminal
    // reaches every learner, read-only; learners cannot open it to type.
    let err = ws(&c, "/ws/workshop/presenter", &alice_auth)
        .await
        .err()
        .expect("no demo yet");
    assert_eq!(err.0, 409, "{err:?}");
    assert_eq!(
        ws(&c, "/ws/workshop/presenter", &Auth::Nobody)
            .await
            .err()
            .unwrap()
            .0,
        401
    );
    let r = call(&c, "POST", &format!("/api/workshops/{id}/demo"), &ada, None);
    assert_eq!(r.status, 200, "{}\n{}", r.body, c.log());
    let mut demo = ws(&c, &format!("/ws/workshops/{id}/demo/node1"), &ada)
        .await
        .expect("demo terminal");
    assert!(demo.wait_for(PROMPT, LONG).await, "{:?}", demo.text());
    let mut views = Vec::new();
    for who in [&alice_auth, &bob_auth] {
        views.push(
            ws(&c, "/ws/workshop/presenter", who)
                .await
                .expect("presenter view"),
        );
    }
    demo.type_text("echo demo-$((6*7))\r").await;
    for v in &mut views {
        assert!(v.wait_for("demo-42", LONG).await, "{:?}", v.text());
    }
    views[1].type_text("echo nope\r").await;
    let refused = wait_message(&mut views[1], LONG, "refusal", |m| m["type"] == "error").await;
    assert_eq!(refused["message"], "this terminal is read-only");
    let err = ws(&c, &format!("/ws/workshops/{id}/demo/node1"), &alice_auth)
        .await
        .err()
        .expect("refused");
    assert_eq!(err.0, 401);

    // The shared registry: Alice pushes, Bob pulls.
    let r = call(
        &c,
        "POST",
        &format!("/api/workshops/{id}/registry"),
        &ada,
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let ns = r.json()["namespace"].as_str().unwrap().to_string();
    assert_eq!(ns, format!("ws-{}", code.to_lowercase()));
    let image = format!("registry.local:5000/{ns}/alice-app");
    let out = alice_term
        .run(
            &format!(
                "docker tag busybox {image} && docker push {image} >/dev/null && echo pushed-ok"
            ),
            LONG,
        )
        .await
        .expect("push");
    assert!(out.contains("pushed-ok"), "{out}");
    let mut bob_term = c.terminal(&bob, "node1").await;
    assert!(bob_term.wait_for(PROMPT, LONG).await);
    let out = bob_term
        .run(&format!("docker pull {image} >/dev/null && docker image ls --format '{{{{.Repository}}}}' | grep alice-app"), LONG)
        .await
        .expect("pull");
    assert!(out.contains(&image), "{out}");

    // CSV export: a header and a row per learner.
    let csv = call(
        &c,
        "GET",
        &format!("/api/workshops/{id}/board.csv"),
        &ada,
        None,
    );
    assert_eq!(csv.status, 200);
    assert!(csv.header("content-type").unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(lines.len(), 3, "{}", csv.body);
    assert_eq!(
        lines[0],
        "learner,name,joined_at,01-quick/made,01-quick/volume,passed,stuck_on"
    );
    assert!(
        lines[1].starts_with(&format!("{alice_id},Alice,")),
        "{}",
        lines[1]
    );
    assert!(lines[1].ends_with(",1,01-quick/volume"), "{}", lines[1]);
    assert!(
        lines[2].starts_with(&format!("{bob_id},Bob,")),
        "{}",
        lines[2]
    );
    assert!(lines[2].ends_with(",,,0,01-quick/made"), "{}", lines[2]);

    // Another instructor sees none of it.
    call(
        &c,
        "POST",
        "/api/instructors",
        &admin,
        Some(&json!({"username": "grace", "password": "cobol-rules"})),
    );
    let r = call(
        &c,
        "POST",
        "/api/instructor/login",
        &Auth::Nobody,
        Some(&json!({"username": "grace", "password": "cobol-rules"})),
    );
    let grace = Auth::Instructor(cookie_value(&r, "berth_instructor"));
    assert_eq!(
        call(
            &c,
            "GET",
            &format!("/api/workshops/{id}/board"),
            &grace,
            None
        )
        .status,
        404
    );
    assert_eq!(
        call(&c, "GET", "/api/workshops", &grace, None).json(),
        json!([])
    );

    // Deleting: labs end, the board is told, the data is gone.
    let r = call(&c, "DELETE", &format!("/api/workshops/{id}"), &ada, None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["labs_ended"], 2);
    wait_message(&mut board, LONG, "deleted", |m| m["type"] == "deleted").await;
    assert_eq!(
        call(&c, "GET", "/api/session", &alice_auth, None).status,
        404
    );
    assert_eq!(
        call(&c, "GET", &format!("/api/workshops/{id}"), &ada, None).status,
        404
    );
    let r = call(
        &c,
        "POST",
        "/api/workshops/join",
        &Auth::Nobody,
        Some(&json!({"code": code, "name": "Late"})),
    );
    assert_eq!(r.status, 404);
    let _ = demo.ws.send(Message::Close(None)).await;

    // The store holds nothing of theirs.
    let db = rusqlite::Connection::open_with_flags(
        c.data_dir().join("berth.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .expect("open berth.db");
    let left: (i64, i64, i64) = db
        .query_row(
            &format!(
                "SELECT (SELECT count(*) FROM learners WHERE id IN ({alice_id},{bob_id})),
                        (SELECT count(*) FROM exercise_results WHERE learner_id IN ({alice_id},{bob_id})),
                        (SELECT count(*) FROM workshops WHERE id = {id})"
            ),
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!(left, (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labs_end_when_the_workshop_ends_and_its_progress_stays() {
    let c = start();
    let admin = Auth::Bearer(ADMIN.into());
    let soon = |secs: u64| {
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(secs))
            .to_string()
    };
    let plan = json!({"title": "Short", "lessons": ["01-quick"], "seats": 1,
        "starts_at": soon(0), "ends_at": soon(20)});
    let r = call(&c, "POST", "/api/workshops", &admin, Some(&plan));
    assert_eq!(r.status, 201, "{}", r.body);
    let (id, code) = (
        r.json()["id"].as_i64().unwrap(),
        r.json()["code"].as_str().unwrap().to_string(),
    );
    let (token, _) = join(&c, &code, "Ada").await;
    // One seat: a second learner is told the workshop is full.
    let r = call(
        &c,
        "POST",
        "/api/workshops/join",
        &Auth::Nobody,
        Some(&json!({"code": code, "name": "Late"})),
    );
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["message"], "the workshop is full (1 seats)");
    let me = Auth::Learner(token);
    assert_eq!(call(&c, "GET", "/api/session", &me, None).status, 200);
    let deadline = Instant::now() + Duration::from_secs(90);
    while call(&c, "GET", "/api/session", &me, None).status == 200 {
        assert!(
            Instant::now() < deadline,
            "the lab outlived its workshop:\n{}",
            c.log()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Over: no more joining, but the board and the CSV still have Ada.
    let r = call(
        &c,
        "POST",
        "/api/workshops/join",
        &Auth::Nobody,
        Some(&json!({"code": code, "name": "Late"})),
    );
    assert_eq!(r.status, 403);
    assert!(r.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("this workshop ended at "));
    let csv = call(
        &c,
        "GET",
        &format!("/api/workshops/{id}/board.csv"),
        &admin,
        None,
    );
    assert_eq!(csv.body.lines().count(), 2, "{}", csv.body);
    assert!(csv.body.lines().nth(1).unwrap().contains(",Ada,"));
}
