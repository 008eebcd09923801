//! Past one host, proven on one machine: a front (`berth serve --runners`)
//! and two runners (`berth runner`), each runner in its own network
//! namespace with its own data directory and port, sharing the classroom
//! registry's storage. Twenty learners of a workshop spread over both; the
//! board shows them all; a learner on runner 2 pushes to the workshop's
//! namespace and one on runner 1 pulls it; grading goes through the front
//! to the runner; runner 2 is killed: its learners see the notice, their
//! progress stays in the front's store (a PostgreSQL the test starts), new
//! sessions go to runner 1; runner 2 comes back and takes sessions again.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::classroom::Classroom;
use serde_json::{json, Value};

const ADMIN: &str = "runners-test-admin-token";
const SECRET: &str = "runners-test-secret-0123456789abcdef";
const PROMPT: &str = "root@node1:~#";
const LONG: Duration = Duration::from_secs(90);

fn sh(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A runner in its own network namespace, reached from the host over a
/// veth pair.
struct Runner {
    netns: String,
    veth: String,
    addr: String,
    data: PathBuf,
    registry: PathBuf,
    secret: PathBuf,
    log: PathBuf,
    /// `--lessons` (their setups run on the runner).
    lessons: Option<PathBuf>,
    child: Option<Child>,
    /// Killed and not started again: its labs are still there.
    killed: bool,
}

impl Runner {
    fn new(n: u8, dir: &Path, registry: &Path, secret: &Path) -> Self {
        Self::with_lessons(n, dir, registry, secret, None)
    }

    fn with_lessons(
        n: u8,
        dir: &Path,
        registry: &Path,
        secret: &Path,
        lessons: Option<PathBuf>,
    ) -> Self {
        let tag = std::process::id() % 100_000;
        let netns = format!("berth-rt{tag}-{n}");
        let veth = format!("brt{tag}h{n}");
        let peer = format!("brt{tag}r{n}");
        let net = format!("10.{}.{n}", 200 + (tag % 50));
        let _ = Command::new("ip").args(["netns", "del", &netns]).output();
        sh(&["ip", "netns", "add", &netns]);
        sh(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", &peer,
        ]);
        sh(&["ip", "link", "set", &peer, "netns", &netns]);
        sh(&["ip", "addr", "add", &format!("{net}.1/24"), "dev", &veth]);
        sh(&["ip", "link", "set", &veth, "up"]);
        let addr = format!("{net}.2/24");
        for cmd in [
            vec!["ip", "addr", "add", addr.as_str(), "dev", peer.as_str()],
            vec!["ip", "link", "set", peer.as_str(), "up"],
            vec!["ip", "link", "set", "lo", "up"],
        ] {
            let mut all: Vec<&str> = vec!["ip", "netns", "exec", netns.as_str()];
            all.extend(cmd);
            sh(&all);
        }
        let data = dir.join(format!("runner{n}"));
        let mut r = Self {
            netns,
            veth,
            addr: format!("{net}.2:7070"),
            log: dir.join(format!("runner{n}.log")),
            data,
            registry: registry.to_path_buf(),
            secret: secret.to_path_buf(),
            lessons,
            child: None,
            killed: false,
        };
        r.start();
        r
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        // nsenter, not `ip netns exec`: that also remounts /sys, and with
        // it the cgroup tree the runner makes its sessions' cgroups in.
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .arg(env!("CARGO_BIN_EXE_berth"))
            .arg("--data-dir")
            .arg(&self.data)
            .args(["runner", "--listen", &self.addr, "--preview-listen", "off"])
            .arg("--runner-secret-file")
            .arg(&self.secret)
            .arg("--registry-dir")
            .arg(&self.registry)
            .args(["--max-sessions", "14", "--sessions-per-minute", "1000"])
            .args(
                self.lessons
                    .iter()
                    .flat_map(|l| [std::ffi::OsStr::new("--lessons"), l.as_os_str()]),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start berth runner");
        self.child = Some(child);
        self.killed = false;
    }

    /// Waits until the runner answers (false after three minutes).
    fn answers(&self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            if self.api("GET", "/health").is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    /// Waits until the runner answers.
    fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while Instant::now() < deadline {
            if self.api("GET", "/health").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the runner did not come up:\n{}", self.log());
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Calls the runner API with the secret (what the front does).
    fn api(&self, method: &str, path: &str) -> Option<Value> {
        let out = Command::new("curl")
            .args(["-s", "-f", "-m", "5", "-X", method])
            .arg("-H")
            .arg(format!("Authorization: Bearer {SECRET}"))
            .arg(format!("{}/runner/v1{path}", self.url()))
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The front's tokens (labels) of the labs this runner holds.
    fn labels(&self) -> Vec<String> {
        self.api("GET", "/sessions")
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .map(|s| s["label"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Killed at once, as a host that dies.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            self.killed = true;
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if c.try_wait().ok().flatten().is_some() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        // A test that failed while this runner was down: start it once
        // more, so it sweeps the labs it left, then stop it.
        if self.killed {
            self.start();
            self.answers();
        }
        self.stop();
        let _ = Command::new("ip")
            .args(["link", "del", &self.veth])
            .output();
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
        // Whatever is still mounted below the data directory (nothing,
        // when the runner stopped cleanly), deepest first.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut left: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1))
            .filter(|m| Path::new(m).starts_with(&self.data))
            .collect();
        left.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in left {
            let _ = Command::new("umount").args(["-l", m]).output();
        }
    }
}

fn call(
    c: &Classroom,
    method: &str,
    path: &str,
    auth: (&str, &str),
    body: Option<&Value>,
) -> Value {
    let body = body.map(|b| b.to_string());
    let r = c
        .request(method, path, None, body.as_deref(), &[auth])
        .expect("HTTP request");
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
    if r.body.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

fn join(c: &Classroom, code: &str, name: &str) -> String {
    let r = c
        .request(
            "POST",
            "/api/workshops/join",
            None,
            Some(&json!({"code": code, "name": name}).to_string()),
            &[],
        )
        .unwrap();
    assert_eq!(r.status, 201, "join as {name}: {}\n{}", r.body, c.log());
    let set = r.header("set-cookie").unwrap().to_string();
    set.split(';')
        .next()
        .and_then(|kv| kv.strip_prefix("berth_session="))
        .unwrap()
        .to_string()
}

fn learner(token: &str) -> (&'static str, String) {
    ("Cookie", format!("berth_session={token}"))
}

fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classroom_over_two_runners_survives_losing_one() {
    if !nix::unistd::Uid::effective().is_root() {
        assert!(std::env::var_os("BERTH_FULL_SUITE").is_none(), "needs root");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-runners-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let secret = dir.path().join("runner-secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let registry = dir.path().join("registry");
    let mut r1 = Runner::new(1, dir.path(), &registry, &secret);
    let mut r2 = Runner::new(2, dir.path(), &registry, &secret);
    r1.wait_up();
    r2.wait_up();

    // Without the secret a runner answers nothing.
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "5"])
        .arg(format!("{}/runner/v1/sessions", r1.url()))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");

    // The front's store: Debian's PostgreSQL, started here.
    let pg = common::postgres::available().then(|| common::postgres::Postgres::start(false));
    let Some(pg) = pg else { return };
    let database = pg.url("berth");

    let lessons = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/workshop-lessons");
    let runners = format!("{},{}", r1.url(), r2.url());
    let c = Classroom::start(&[
        "--database",
        &database,
        "--lessons",
        lessons.to_str().unwrap(),
        "--admin-token",
        ADMIN,
        "--preview-listen",
        "off",
        "--max-sessions",
        "100",
        "--runners",
        &runners,
        "--runner-secret-file",
        secret.to_str().unwrap(),
    ]);
    let admin_header = format!("Bearer {ADMIN}");
    let admin = ("Authorization", admin_header.as_str());
    let up = |c: &Classroom| -> Vec<bool> {
        let h = call(c, "GET", "/healthz", admin, None);
        h["runners"]
            .as_array()
            .map(|a| a.iter().map(|r| r["up"] == true).collect())
            .unwrap_or_default()
    };
    wait_until(Duration::from_secs(20), "both runners up", || {
        up(&c) == [true, true]
    });

    // A workshop of twenty, spread over both runners.
    let w = call(
        &c,
        "POST",
        "/api/workshops",
        admin,
        Some(&json!({"title": "Two hosts", "lessons": ["01-quick"], "seats": 30})),
    );
    let (id, code) = (
        w["id"].as_i64().unwrap(),
        w["code"].as_str().unwrap().to_string(),
    );
    let tokens: Vec<String> = (0..20).map(|i| join(&c, &code, &format!("L{i}"))).collect();
    let (on1, on2) = (r1.labels(), r2.labels());
    assert_eq!(on1.len() + on2.len(), 20, "{on1:?} {on2:?}");
    assert_eq!(on1.len(), 10, "least loaded placement: {on1:?} / {on2:?}");
    for t in &tokens {
        assert!(
            on1.contains(t) ^ on2.contains(t),
            "{t} on exactly one runner"
        );
    }
    let board = call(
        &c,
        "GET",
        &format!("/api/workshops/{id}/board"),
        admin,
        None,
    );
    assert_eq!(board["rows"].as_array().unwrap().len(), 20, "{board}");

    // One classroom registry: a learner on runner 2 pushes, one on runner 1 pulls.
    let a = tokens.iter().find(|t| on2.contains(t)).unwrap().clone();
    let b = tokens.iter().find(|t| on1.contains(t)).unwrap().clone();
    let ns = call(
        &c,
        "POST",
        &format!("/api/workshops/{id}/registry"),
        admin,
        None,
    )["namespace"]
        .as_str()
        .unwrap()
        .to_string();
    let image = format!("registry.local:5000/{ns}/from-runner2");
    let mut ta = c.terminal(&a, "node1").await;
    assert!(ta.wait_for(PROMPT, LONG).await, "{}", ta.text());
    let out = ta
        .run(
            &format!(
                "docker tag busybox {image} && docker push {image} >/dev/null && echo pushed-ok"
            ),
            LONG,
        )
        .await
        .expect("push");
    assert!(out.contains("pushed-ok"), "{out}\n{}", r2.log());
    let mut tb = c.terminal(&b, "node1").await;
    assert!(tb.wait_for(PROMPT, LONG).await);
    let out = tb
        .run(
            &format!("docker pull {image} >/dev/null && echo pulled-ok"),
            LONG,
        )
        .await
        .expect("pull");
    assert!(out.contains("pulled-ok"), "{out}\n{}", r1.log());

    // Grading through the front, on runner 2's engine.
    let (k, v) = learner(&a);
    let check = |c: &Classroom| {
        call(
            c,
            "POST",
            "/api/lessons/01-quick/check",
            (k, &v),
            Some(&json!({"exercise": "made"})),
        )
    };
    assert_eq!(check(&c)["exercises"][0]["passed"], false);
    let out = ta
        .run(
            "docker create --name hello busybox >/dev/null && echo made-ok",
            LONG,
        )
        .await;
    assert!(out.unwrap_or_default().contains("made-ok"));
    assert_eq!(check(&c)["exercises"][0]["passed"], true);
    drop(ta);

    // Runner 2 dies: its learners are told, their progress stays.
    r2.kill();
    wait_until(Duration::from_secs(20), "runner 2 out of the pool", || {
        up(&c) == [true, false]
    });
    // The pool marks the runner down, then its sessions are told: a moment
    // apart.
    wait_until(Duration::from_secs(5), "the lost-lab notice", || {
        call(&c, "GET", "/api/session", (k, &v), None)["lost"]
            .as_str()
            .unwrap_or_default()
            .contains("your lab was lost")
    });
    let r = c
        .request("GET", "/api/lessons/01-quick/check", None, None, &[(k, &v)])
        .unwrap();
    assert!(r.status >= 400);
    let progress = call(&c, "GET", "/api/progress", (k, &v), None);
    assert_eq!(
        progress["lessons"][0]["exercises"][0]["passed"], true,
        "{progress}"
    );
    // Judged in PostgreSQL itself: ten sessions ended with their runner,
    // and the pass is stored.
    let lost = || {
        pg.psql(
            "berth",
            "SELECT COUNT(*) FROM sessions WHERE end_reason = 'runner lost'",
        )
    };
    wait_until(
        Duration::from_secs(10),
        "ten sessions ended as lost",
        || lost().trim() == "10",
    );
    let passes = pg.psql(
        "berth",
        "SELECT COUNT(*) FROM exercise_results WHERE passed AND lesson = '01-quick'",
    );
    assert_ne!(passes.trim(), "0", "the pass graded on runner 2");
    assert!(
        !c.data_dir().join("berth.db").exists(),
        "the front kept its progress in SQLite, not PostgreSQL"
    );

    // What the page shows another of runner 2's learners, and its button:
    // a fresh lab, on runner 1 (the only one up).
    if common::classroom::browser_available() {
        let a2 = tokens
            .iter()
            .filter(|t| on2.contains(t))
            .nth(1)
            .unwrap()
            .clone();
        let out = common::classroom::run_browser_script(
            &c,
            "lost.mjs",
            &format!("http://{}/resume/{a2}", c.addr),
        );
        assert!(out.contains("started again"), "{out}");
        assert!(r1.labels().contains(&a2));
    }

    // New sessions go to runner 1.
    let late = join(&c, &code, "Late");
    assert!(r1.labels().contains(&late));

    // Runner 2 comes back and takes sessions again: "start again" places
    // the lost learner's new lab on the least loaded runner, runner 2.
    r2.start();
    r2.wait_up();
    wait_until(Duration::from_secs(20), "runner 2 back", || {
        up(&c) == [true, true]
    });
    call(&c, "POST", "/api/session/reset", (k, &v), None);
    let status = call(&c, "GET", "/api/session", (k, &v), None);
    assert!(status["lost"].is_null(), "{status}");
    assert!(r2.labels().contains(&a), "{:?}", r2.labels());
    let mut ta = c.terminal(&a, "node1").await;
    assert!(ta.wait_for(PROMPT, LONG).await, "{}", ta.text());
    let progress = call(&c, "GET", "/api/progress", (k, &v), None);
    assert_eq!(progress["lessons"][0]["exercises"][0]["passed"], true);
    drop((ta, tb));

    // The front restarts: nothing is lost. Each learner's session, on
    // either runner, is found again with the lab it had.
    let mut c = c;
    c.stop();
    c.spawn();
    wait_until(Duration::from_secs(20), "both runners up again", || {
        up(&c) == [true, true]
    });
    let (kb, vb) = learner(&b);
    // A runner that answers is then asked for its labs: a moment later.
    wait_until(Duration::from_secs(10), "b's lab found again", || {
        c.request("GET", "/api/session", None, None, &[(kb, &vb)])
            .is_ok_and(|r| r.status == 200)
    });
    let status = call(&c, "GET", "/api/session", (kb, &vb), None);
    assert_eq!(status["nodes"], json!(["node1"]), "{status}");
    let mut tb = c.terminal(&b, "node1").await;
    assert!(tb.wait_for(PROMPT, LONG).await);
    let out = tb
        .run(
            "docker image ls --format '{{.Repository}}' | grep from-runner2",
            LONG,
        )
        .await
        .unwrap_or_default();
    assert!(out.contains(&image), "the lab it had: {out}");
    let progress = call(&c, "GET", "/api/progress", (k, &v), None);
    assert_eq!(progress["lessons"][0]["exercises"][0]["passed"], true);
    let board = call(
        &c,
        "GET",
        &format!("/api/workshops/{id}/board"),
        admin,
        None,
    );
    assert_eq!(board["rows"].as_array().unwrap().len(), 21, "{board}");
    drop(tb);
    drop(c);
    r1.stop();
    r2.stop();
}

/// The course proof through a front: lessons' setups, their solutions
/// typed into a lab on a runner, every exercise graded there (a subset of
/// tests/course.rs: a lesson with a setup, and the registry lesson).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lessons_pass_through_a_front() {
    if !nix::unistd::Uid::effective().is_root() {
        assert!(std::env::var_os("BERTH_FULL_SUITE").is_none(), "needs root");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("berth-runners-course-")
        .tempdir_in("/var/tmp")
        .unwrap();
    let secret = dir.path().join("runner-secret");
    std::fs::write(&secret, SECRET).unwrap();
    let registry = dir.path().join("registry");
    let lessons = common::course::lessons_dir();
    let r = Runner::with_lessons(3, dir.path(), &registry, &secret, Some(lessons));
    r.wait_up();
    let runners = r.url();
    for slug in ["03-running-containers", "08-registry"] {
        let proof = common::course::prove_lesson_with(
            slug,
            &[
                "--runners",
                &runners,
                "--runner-secret-file",
                secret.to_str().unwrap(),
            ],
        )
        .await;
        // The lab was the runner's: the proof's session is among its labs.
        assert!(r.labels().contains(&proof.token), "{slug} ran elsewhere");
        drop(proof);
    }
}
