//! The lab map's server side: the model a learner's commands produce (read
//! from the runtime, as JSON), its live stream, and who may read it.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::classroom::Classroom;
use serde_json::Value;

const PROMPT: &str = "root@node1:~#";
const LONG: Duration = Duration::from_secs(60);

fn map_of(c: &Classroom, token: &str) -> Value {
    let r = c.http("GET", "/api/map", Some(token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn container<'a>(m: &'a Value, name: &str) -> &'a Value {
    m["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name} in {m}"))
}

fn image<'a>(m: &'a Value, tag: &str) -> &'a Value {
    m["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["tags"].as_array().unwrap().iter().any(|t| t == tag))
        .unwrap_or_else(|| panic!("no image {tag} in {m}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_shows_networks_ports_volumes_and_shared_layers() {
    let c = Classroom::start(&[]);
    let (token, _) = c.new_session();
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    let out = t
        .run(
            "docker network create appnet >/dev/null && \
             docker run -d --name alpha --network appnet busybox sleep 300 >/dev/null && \
             docker run -d --name beta --network appnet -p 8080:80 -v data:/data busybox sleep 300 >/dev/null && \
             docker run -d --name solo -v /root:/host:ro busybox sleep 300 >/dev/null && \
             docker exec alpha sh -c 'echo hi > /made' && docker commit alpha snap:v1 >/dev/null && echo made",
            LONG,
        )
        .await
        .expect("commands ran");
    assert!(out.contains("made"), "{out}\n{}", c.log());

    let m = map_of(&c, &token);
    assert_eq!(m["nodes"], serde_json::json!(["node1"]));
    assert!(
        m["networks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "appnet" && n["driver"] == "bridge" && n["node"] == "node1"),
        "{m}"
    );
    let a = container(&m, "alpha");
    assert_eq!(a["networks"], serde_json::json!(["appnet"]));
    assert_eq!(a["state"], "running");
    let b = container(&m, "beta");
    assert_eq!(b["networks"], serde_json::json!(["appnet"]));
    assert_eq!(b["ports"][0]["port"], 80);
    assert_eq!(b["ports"][0]["host_port"], 8080);
    assert_eq!(b["mounts"][0]["kind"], "volume");
    assert_eq!(b["mounts"][0]["source"], "data");
    assert_eq!(b["mounts"][0]["target"], "/data");
    let solo = container(&m, "solo");
    assert_eq!(solo["networks"], serde_json::json!(["bridge"]));
    assert_eq!(solo["mounts"][0]["kind"], "bind");
    assert_eq!(solo["mounts"][0]["source"], "/root");
    assert_eq!(solo["mounts"][0]["read_only"], true);
    assert!(
        m["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["name"] == "data"),
        "{m}"
    );

    // The committed image stands on busybox's layers and adds one.
    let base = image(&m, "busybox:latest");
    let snap = image(&m, "snap:v1");
    let base_layers = base["layers"].as_array().unwrap();
    let snap_layers = snap["layers"].as_array().unwrap();
    assert_eq!(snap_layers.len(), base_layers.len() + 1, "{m}");
    assert_eq!(&snap_layers[..base_layers.len()], &base_layers[..]);
    for l in snap_layers {
        let size = m["layers"][l.as_str().unwrap()].as_u64().unwrap();
        assert!(size > 0, "layer {l} has no size: {m}");
    }
    // Container alpha's writable layer sits on busybox's image.
    assert_eq!(a["image_id"], base["id"]);
    // Nothing of the host's: paths are the lab's, IDs are short.
    let text = m.to_string();
    assert!(
        !text.contains(&c.data_dir().display().to_string()),
        "{text}"
    );
    assert_eq!(a["id"].as_str().unwrap().len(), 12);
}

/// Reads server-sent events from a raw stream: (event, data) pairs.
struct Sse {
    lines: BufReader<TcpStream>,
}

impl Sse {
    fn open(c: &Classroom, path: &str, token: Option<&str>) -> Result<Sse, String> {
        let cookie = token.map(|t| format!("berth_session={t}"));
        Sse::open_with(c, path, cookie.as_deref())
    }

    /// With any cookie (`name=value`), an instructor's for one.
    fn open_with(c: &Classroom, path: &str, cookie: Option<&str>) -> Result<Sse, String> {
        let mut s = TcpStream::connect(&c.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let cookie = cookie
            .map(|t| format!("Cookie: {t}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n{cookie}\r\n",
            c.addr
        )
        .unwrap();
        let mut lines = BufReader::new(s);
        let mut status = String::new();
        lines.read_line(&mut status).unwrap();
        loop {
            let mut l = String::new();
            lines.read_line(&mut l).unwrap();
            if l == "\r\n" || l.is_empty() {
                break;
            }
        }
        if !status.contains(" 200 ") {
            return Err(status);
        }
        Ok(Sse { lines })
    }

    /// The next event (chunked framing lines are skipped: they never
    /// start with `event:` or `data:`).
    fn next(&mut self) -> Option<(String, String)> {
        let (mut event, mut data) = (String::new(), String::new());
        loop {
            let mut l = String::new();
            if self.lines.read_line(&mut l).ok()? == 0 {
                return None;
            }
            let l = l.trim_end();
            if let Some(e) = l.strip_prefix("event: ") {
                event = e.to_string();
            } else if let Some(d) = l.strip_prefix("data: ") {
                data.push_str(d);
            } else if l.is_empty() && !event.is_empty() {
                return Some((event, data));
            }
        }
    }

    fn next_model(&mut self) -> Value {
        loop {
            let (e, d) = self.next().expect("an event");
            if e == "model" {
                return serde_json::from_str(&d).expect("model JSON");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_sends_a_new_model_after_each_command() {
    let c = Classroom::start(&[]);
    let (token, status) = c.new_session();
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    let mut sse = Sse::open(&c, "/api/map/stream", Some(&token)).expect("stream opens");
    let (e, hello) = sse.next().unwrap();
    assert_eq!(e, "hello");
    let hello: Value = serde_json::from_str(&hello).unwrap();
    assert_eq!(hello["session"], status["id"]);
    let first = sse.next_model();
    assert!(
        first["containers"].as_array().unwrap().is_empty(),
        "{first}"
    );

    // A network (no event of its own in Docker's stream) appears too.
    t.type_text("docker network create streamnet\r").await;
    let deadline = Instant::now() + LONG;
    loop {
        let m = sse.next_model();
        if m["networks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["name"] == "streamnet")
        {
            break;
        }
        assert!(Instant::now() < deadline, "no streamnet");
    }
    t.type_text("docker run -d --name web --network streamnet busybox sleep 300\r")
        .await;
    loop {
        let m = sse.next_model();
        let web = m["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "web")
            .cloned();
        if let Some(web) = web.filter(|w| w["state"] == "running") {
            assert_eq!(web["networks"], serde_json::json!(["streamnet"]));
            break;
        }
        assert!(Instant::now() < deadline, "no running web");
    }
    t.type_text("docker rm -f web\r").await;
    loop {
        let m = sse.next_model();
        if !m["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "web")
        {
            break;
        }
        assert!(Instant::now() < deadline, "web never went away");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_cannot_read_another_sessions_map() {
    let c = Classroom::start(&[]);
    let (alice, _) = c.new_session();
    let (bob, _) = c.new_session();
    let mut t = c.terminal(&alice, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    t.run("docker run -d --name alices busybox sleep 300", LONG)
        .await
        .expect("ran");
    assert!(map_of(&c, &alice).to_string().contains("alices"));
    // Bob's map is Bob's lab: nothing of Alice's.
    let theirs = map_of(&c, &bob);
    assert!(!theirs.to_string().contains("alices"), "{theirs}");
    // No cookie, a made-up cookie: refused.
    assert_eq!(c.http("GET", "/api/map", None, None).status, 401);
    assert_eq!(
        c.http("GET", "/api/map", Some("0123abcd"), None).status,
        401
    );
    assert!(Sse::open(&c, "/api/map/stream", None)
        .err()
        .unwrap()
        .contains(" 401 "));
    // The instructors' routes want an instructor, not a learner's cookie.
    for path in [
        "/api/workshops/1/learners/1/map",
        "/api/workshops/1/learners/2/map",
        "/api/workshops/1/demo/map",
    ] {
        let r = c.http("GET", path, Some(&alice), None);
        assert!(
            r.status == 401 || r.status == 403,
            "{path}: {} {}",
            r.status,
            r.body
        );
    }
    // One session holds a bounded number of streams.
    let mut open = Vec::new();
    for _ in 0..8 {
        open.push(Sse::open(&c, "/api/map/stream", Some(&bob)).expect("a stream"));
    }
    let refused = Sse::open(&c, "/api/map/stream", Some(&bob)).err().unwrap();
    assert!(refused.contains(" 429 "), "{refused}");
    // Alice's are not counted against Bob's.
    assert!(Sse::open(&c, "/api/map/stream", Some(&alice)).is_ok());
    drop(open);
}

/// `name=value` of the cookie a response sets.
fn set_cookie(r: &common::classroom::Response) -> String {
    r.header("set-cookie")
        .and_then(|s| s.split(';').next())
        .unwrap_or_else(|| panic!("a cookie in {r:?}"))
        .to_string()
}

fn post(
    c: &Classroom,
    path: &str,
    cookie: Option<&str>,
    body: Value,
) -> common::classroom::Response {
    let extra: Vec<(&str, &str)> = cookie.map(|v| vec![("Cookie", v)]).unwrap_or_default();
    c.request("POST", path, None, Some(&body.to_string()), &extra)
        .expect("HTTP request")
}

fn get(c: &Classroom, path: &str, cookie: &str) -> common::classroom::Response {
    c.request("GET", path, None, None, &[("Cookie", cookie)])
        .expect("HTTP request")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instructor_sees_a_learners_map_and_no_one_else_does() {
    let lessons =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workshop-lessons");
    let c = Classroom::start(&[
        "--lessons",
        &lessons.display().to_string(),
        "--admin-token",
        "admin-secret-for-map",
        "--preview-listen",
        "off",
    ]);
    let admin = set_cookie(&post(
        &c,
        "/api/instructor/login",
        None,
        serde_json::json!({"admin_token": "admin-secret-for-map"}),
    ));
    let mut instructors = Vec::new();
    for (name, password) in [("ada", "analytical-engine"), ("grace", "cobol-rules")] {
        let r = post(
            &c,
            "/api/instructors",
            Some(&admin),
            serde_json::json!({"username": name, "password": password}),
        );
        assert_eq!(r.status, 201, "{}", r.body);
        let r = post(
            &c,
            "/api/instructor/login",
            None,
            serde_json::json!({"username": name, "password": password}),
        );
        instructors.push(set_cookie(&r));
    }
    let (ada, grace) = (&instructors[0], &instructors[1]);
    let r = post(
        &c,
        "/api/workshops",
        Some(ada),
        serde_json::json!({"title": "maps", "lessons": ["01-quick"], "seats": 3}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let (id, code) = (
        r.json()["id"].as_i64().unwrap(),
        r.json()["code"].as_str().unwrap().to_string(),
    );
    let r = post(
        &c,
        "/api/workshops/join",
        None,
        serde_json::json!({"code": code, "name": "Alice"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let alice = set_cookie(&r);
    let alice_id = r.json()["learner"].as_i64().unwrap();
    let token = alice.strip_prefix("berth_session=").unwrap();
    let mut t = c.terminal(token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    t.run("docker run -d --name alices busybox sleep 300", LONG)
        .await
        .expect("ran");

    // Ada, whose workshop it is, sees Alice's lab: the page and the stream.
    let page = format!("/workshops/{id}/learners/{alice_id}/map");
    let r = get(&c, &page, ada);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("data-map-source=\"page\""), "{}", r.body);
    let stream = format!("/api/workshops/{id}/learners/{alice_id}/map");
    let mut sse = Sse::open_with(&c, &stream, Some(ada)).expect("ada's stream");
    let m = sse.next_model();
    assert!(
        m["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "alices"),
        "{m}"
    );
    // Grace (another instructor), Alice herself, nobody: refused.
    for who in [Some(grace.as_str()), Some(alice.as_str()), None] {
        let err = Sse::open_with(&c, &stream, who).err().expect("refused");
        assert!(
            err.contains(" 401 ") || err.contains(" 404 ") || err.contains(" 403 "),
            "{who:?}: {err}"
        );
        let r = c
            .request(
                "GET",
                &page,
                None,
                None,
                &who.map(|v| vec![("Cookie", v)]).unwrap_or_default(),
            )
            .unwrap();
        assert_ne!(r.status, 200, "{who:?} got the page");
    }
    // A learner ID that is not in the workshop: refused.
    assert!(Sse::open_with(
        &c,
        &format!("/api/workshops/{id}/learners/{}/map", alice_id + 1000),
        Some(ada)
    )
    .is_err());

    // The projector's demo lab has its own map, only for its instructor.
    let demo = format!("/api/workshops/{id}/demo/map");
    assert!(
        Sse::open_with(&c, &demo, Some(ada)).is_err(),
        "no demo lab yet"
    );
    let r = post(
        &c,
        &format!("/api/workshops/{id}/demo"),
        Some(ada),
        serde_json::json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let mut sse = Sse::open_with(&c, &demo, Some(ada)).expect("the demo's map");
    let m = sse.next_model();
    assert!(
        !m.to_string().contains("alices"),
        "the demo's map shows Alice's lab: {m}"
    );
    assert!(Sse::open_with(&c, &demo, Some(grace)).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crowded_lab_costs_the_map_no_more_than_its_caps() {
    let c = Classroom::start(&[]);
    let (token, _) = c.new_session();
    let mut t = c.terminal(&token, "node1").await;
    assert!(t.wait_for(PROMPT, LONG).await, "no prompt: {:?}", t.text());
    // 70 containers, one with 12 volumes and a 200-character name.
    let long = "x".repeat(200);
    let vols: String = (0..12).map(|i| format!(" -v v{i}:/v{i}")).collect();
    let out = t
        .run(
            &format!(
                "for i in $(seq 69); do docker create --name n$i busybox >/dev/null || exit 1; done; \
                 docker create --name {long}{vols} busybox >/dev/null && echo made"
            ),
            Duration::from_secs(300),
        )
        .await
        .expect("created");
    assert!(out.contains("made"), "{out}");
    let m = map_of(&c, &token);
    assert_eq!(m["containers"].as_array().unwrap().len(), 60, "{m}");
    assert_eq!(m["more"]["containers"], 10);
    assert_eq!(m["volumes"].as_array().unwrap().len(), 12);
    for c in m["containers"].as_array().unwrap() {
        assert!(c["mounts"].as_array().unwrap().len() <= 8, "{c}");
        assert!(c["name"].as_str().unwrap().chars().count() <= 121, "{c}");
    }
    // When the crowded one is among the 60 drawn, it says what it left out.
    if let Some(crowded) = m["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["mounts"].as_array().unwrap().len() > 1)
    {
        assert_eq!(crowded["mounts"].as_array().unwrap().len(), 8);
        assert_eq!(crowded["left_out"], 4);
        assert!(crowded["name"].as_str().unwrap().chars().count() <= 121);
    }
    // The whole model stays small.
    let size = m.to_string().len();
    assert!(size < 64 * 1024, "{size} bytes");
}
