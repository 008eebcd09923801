//! The progress store on PostgreSQL beside SQLite: the same behaviour
//! checks run on both (rows round trip, setups claimed once, workshops
//! deleted without trace, concurrent writers lose nothing and the board's
//! cursor misses no pass), migrations applied once and concurrently, an
//! old SQLite file upgraded; an unreachable database is a clear error
//! without the password, and the store recovers when PostgreSQL comes
//! back. Then the classroom: `berth serve --database postgres://…`, a
//! learner passes an exercise, the server restarts, and the pass is still
//! there (judged by `psql` and by the instructor's board).
//!
//! PostgreSQL is Debian's, started by the test on a private port and data
//! directory (`common/postgres.rs`).

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use berth_server::store::workshops::NewWorkshop;
use berth_server::store::Store;
use common::classroom::Classroom;
use common::postgres::{self, Postgres, PASSWORD};
use serde_json::{json, Value};

/// How a behaviour check opens the store under test (again, for reopening).
type Open<'a> = &'a (dyn Fn() -> Store + Sync);

/// Runs `check` on a fresh SQLite file and a fresh PostgreSQL database.
fn on_both(pg: &Postgres, name: &str, check: fn(Open<'_>)) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.db");
    eprintln!("{name}: sqlite");
    check(&|| Store::open(&file).unwrap());
    eprintln!("{name}: postgres");
    let url = pg.url(name);
    check(&|| Store::connect(&url).unwrap());
}

fn rows_round_trip(open: Open<'_>) {
    let store = open();
    assert_eq!(store.version().unwrap(), 3);
    let l = store.add_learner("tok", Some("Ada")).unwrap();
    let other = store.add_learner("tok2", None).unwrap();
    assert_ne!(l.id, other.id);
    assert!(store.add_learner("tok", None).is_err(), "tokens are unique");
    store
        .session_started("s1", l.id, &[("node1".into(), "s1-node1".into())])
        .unwrap();
    store.node_added("s1", "node2", "s1-node2").unwrap();
    store
        .record_result(l.id, "01-intro", "run", false, "no")
        .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    store
        .record_result(l.id, "01-intro", "run", true, "")
        .unwrap();
    store
        .record_result(l.id, "01-intro", "run", true, "")
        .unwrap();
    store
        .record_result(l.id, "02-next", "build", true, "")
        .unwrap();
    store.set_display_name(l.id, Some("Ada L.")).unwrap();
    store.session_ended("s1", "reset").unwrap();
    store.session_ended("s1", "later").unwrap();
    drop(store);
    let again = open();
    assert_eq!(again.version().unwrap(), 3, "migrations apply once");
    let back = again.learner_by_token("tok").unwrap().unwrap();
    assert_eq!(back.id, l.id);
    assert_eq!(back.display_name.as_deref(), Some("Ada L."));
    assert_eq!(again.learner_by_token("nope").unwrap(), None);
    let (ended, reason) = again.session_end("s1").unwrap().unwrap();
    assert!(ended.is_some());
    assert_eq!(reason.as_deref(), Some("reset"), "the first end counts");
    assert_eq!(again.session_end("s9").unwrap(), None);
    let passes = again.passes(l.id).unwrap();
    let keys: Vec<(&str, &str)> = passes
        .iter()
        .map(|(l, e, _)| (l.as_str(), e.as_str()))
        .collect();
    assert_eq!(keys, [("01-intro", "run"), ("02-next", "build")]);
    assert!(again.passes(other.id).unwrap().is_empty());
    again
        .session_started("s2", other.id, &[("node1".into(), "s2-node1".into())])
        .unwrap();
    assert!(
        again.session_started("s2", other.id, &[]).is_err(),
        "a session id is unique"
    );
    assert_eq!(again.end_all_open("server restarted").unwrap(), 1);
    assert_eq!(
        again.session_end("s2").unwrap().unwrap().1.as_deref(),
        Some("server restarted")
    );
}

fn setups_are_claimed_once(open: Open<'_>) {
    let store = open();
    assert!(store.claim_setup("s1", "01-a").unwrap());
    assert!(!store.claim_setup("s1", "01-a").unwrap());
    assert_eq!(store.setup_outcome("s1", "01-a").unwrap(), Some(None));
    store.setup_finished("s1", "01-a", "ok").unwrap();
    assert_eq!(
        store.setup_outcome("s1", "01-a").unwrap(),
        Some(Some("ok".into()))
    );
    assert!(store.claim_setup("s1", "02-b").unwrap());
    assert_eq!(store.last_setup("s1").unwrap().as_deref(), Some("02-b"));
    assert!(!store.claim_setup("s1", "01-a").unwrap());
    assert_eq!(store.last_setup("s1").unwrap().as_deref(), Some("01-a"));
    assert!(store.claim_setup("s2", "01-a").unwrap());
    assert_eq!(store.setup_outcome("s3", "01-a").unwrap(), None);
    assert_eq!(store.last_setup("s3").unwrap(), None);
    drop(store);
    let store = open();
    assert!(!store.claim_setup("s1", "01-a").unwrap());
}

fn workshops_round_trip_and_delete_without_trace(open: Open<'_>) {
    let store = open();
    let i = store.add_instructor("ada", "$argon2id$x").unwrap().unwrap();
    assert_eq!(store.add_instructor("ada", "other").unwrap(), None);
    let row = store.instructor("ada").unwrap().unwrap();
    assert_eq!((row.id, row.password_hash.as_str()), (i, "$argon2id$x"));
    let lessons = vec!["01-a".to_string(), "02-b".to_string()];
    let new = |code, instructor_id, starts_at| NewWorkshop {
        code,
        title: "Intro",
        lessons: &lessons,
        starts_at,
        ends_at: starts_at + 10,
        seats: 5,
        instructor_id,
    };
    let w = store
        .add_workshop(&new("ABC234", Some(i), 10))
        .unwrap()
        .unwrap();
    assert_eq!(store.add_workshop(&new("ABC234", None, 10)).unwrap(), None);
    let admins = store
        .add_workshop(&new("XYZ789", None, 20))
        .unwrap()
        .unwrap();
    let got = store.workshop(w).unwrap().unwrap();
    assert_eq!(got.lessons, lessons);
    assert_eq!((got.starts_at, got.ends_at, got.seats), (10, 20, 5));
    assert!(!got.shared_registry);
    assert_eq!(got.demo_learner_id, None);
    let ids: Vec<i64> = store
        .workshops(None)
        .unwrap()
        .iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(ids, [admins, w], "newest first");
    let ids: Vec<i64> = store
        .workshops(Some(i))
        .unwrap()
        .iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(ids, [w]);
    let l = store.add_learner("tok", Some("Bo")).unwrap();
    let l2 = store.add_learner("tok2", Some("Cy")).unwrap();
    let keeper = store.add_learner("tok3", Some("Di")).unwrap();
    store.join_workshop(w, l.id, 11).unwrap();
    store.join_workshop(w, l.id, 12).unwrap();
    store.join_workshop(w, l2.id, 13).unwrap();
    store.join_workshop(admins, keeper.id, 13).unwrap();
    let demo = store.add_learner("demo", None).unwrap();
    store.set_demo_learner(w, demo.id).unwrap();
    store.set_shared_registry(w, true).unwrap();
    let got = store.workshop_by_code("ABC234").unwrap().unwrap();
    assert!(got.shared_registry);
    assert_eq!(got.demo_learner_id, Some(demo.id));
    let names: Vec<Option<String>> = store
        .workshop_learners(w)
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, [Some("Bo".into()), Some("Cy".into())]);
    for (learner, session) in [(l.id, "s1"), (demo.id, "s2"), (keeper.id, "s3")] {
        store
            .session_started(
                session,
                learner,
                &[("node1".into(), format!("{session}-n"))],
            )
            .unwrap();
        store.record_result(learner, "01-a", "x", true, "").unwrap();
    }
    store.record_result(l.id, "01-a", "y", false, "").unwrap();
    let passes = store.workshop_passes(w, 0).unwrap();
    assert_eq!(passes.len(), 1, "{passes:?}");
    assert_eq!(
        (passes[0].learner, passes[0].exercise.as_str()),
        (l.id, "x")
    );
    assert!(store
        .workshop_passes(w, passes[0].result)
        .unwrap()
        .is_empty());
    assert_eq!(store.workshop_of(l.id).unwrap().unwrap().code, "ABC234");
    assert_eq!(store.workshop_of(demo.id).unwrap(), None);
    assert!(store.delete_workshop(w).unwrap());
    assert!(!store.delete_workshop(w).unwrap());
    for gone in ["tok", "tok2", "demo"] {
        assert_eq!(store.learner_by_token(gone).unwrap(), None, "{gone}");
    }
    assert_eq!(store.session_end("s1").unwrap(), None);
    assert_eq!(store.session_end("s2").unwrap(), None);
    assert!(store.workshop_by_code("ABC234").unwrap().is_none());
    // The other workshop and its learner are untouched.
    assert!(store.learner_by_token("tok3").unwrap().is_some());
    assert!(store.session_end("s3").unwrap().is_some());
    assert_eq!(store.workshop_passes(admins, 0).unwrap().len(), 1);
    assert_eq!(store.passes(keeper.id).unwrap().len(), 1);
}

/// 200 learners write at once, each from its own thread; every write is
/// there afterwards, a setup claimed by 20 at once is claimed once, and a
/// reader following the results by id (as the live board does) sees every
/// pass exactly once.
fn concurrent_writers_lose_nothing(open: Open<'_>) {
    const LEARNERS: usize = 200;
    const RESULTS: usize = 5;
    let store = Arc::new(open());
    let w = store
        .add_workshop(&NewWorkshop {
            code: "CONCUR",
            title: "t",
            lessons: &[],
            starts_at: 0,
            ends_at: 1,
            seats: 1000,
            instructor_id: None,
        })
        .unwrap()
        .unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let store = store.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            let mut seen = HashSet::new();
            let mut last = 0;
            loop {
                let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                for p in store.workshop_passes(w, last).unwrap() {
                    assert!(seen.insert(p.result), "pass {} seen twice", p.result);
                    last = p.result;
                }
                if finished {
                    return seen.len();
                }
            }
        })
    };
    let start = Arc::new(Barrier::new(LEARNERS));
    let claims: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..LEARNERS)
            .map(|n| {
                let store = store.clone();
                let start = start.clone();
                s.spawn(move || {
                    let l = store.add_learner(&format!("learner-{n}"), None).unwrap();
                    store.join_workshop(w, l.id, n as i64).unwrap();
                    store.session_started(&format!("s-{n}"), l.id, &[]).unwrap();
                    start.wait();
                    let claimed = store.claim_setup("shared", "01-a").unwrap();
                    for e in 0..RESULTS {
                        store
                            .record_result(l.id, "01-a", &format!("e{e}"), true, "")
                            .unwrap();
                        store
                            .claim_setup(&format!("s-{n}"), &format!("l{e}"))
                            .unwrap();
                    }
                    claimed
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.join().unwrap();
    assert_eq!(claims.iter().filter(|c| **c).count(), 1, "one claim wins");
    assert_eq!(store.workshop_learners(w).unwrap().len(), LEARNERS);
    assert_eq!(
        store.workshop_passes(w, 0).unwrap().len(),
        LEARNERS * RESULTS
    );
    assert_eq!(seen, LEARNERS * RESULTS, "the cursor missed passes");
    for n in [0, LEARNERS / 2, LEARNERS - 1] {
        let l = store
            .learner_by_token(&format!("learner-{n}"))
            .unwrap()
            .unwrap();
        assert_eq!(store.passes(l.id).unwrap().len(), RESULTS);
        assert_eq!(
            store.last_setup(&format!("s-{n}")).unwrap().as_deref(),
            Some("l4")
        );
    }
}

/// Calls from inside Tokio runtimes, as the server makes them (multi
/// threaded) and as `#[tokio::test]`s do (current thread).
fn calls_from_async_code(open: Open<'_>) {
    let store = open();
    for (n, rt) in [
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    ]
    .into_iter()
    .enumerate()
    {
        let store = &store;
        rt.block_on(async move {
            let l = store.add_learner(&format!("t-{n}"), None).unwrap();
            store.record_result(l.id, "a", "b", true, "").unwrap();
            assert_eq!(store.passes(l.id).unwrap().len(), 1);
        });
    }
}

#[test]
fn the_store_behaves_the_same_on_sqlite_and_postgres() {
    if !postgres::available() {
        return;
    }
    // Durable (fsync on): commits take long enough that results committed
    // out of id order would show in the concurrent check.
    let pg = Postgres::start(true);
    on_both(&pg, "round_trip", rows_round_trip);
    on_both(&pg, "setups", setups_are_claimed_once);
    on_both(
        &pg,
        "workshops",
        workshops_round_trip_and_delete_without_trace,
    );
    on_both(&pg, "concurrent", concurrent_writers_lose_nothing);
    on_both(&pg, "async", calls_from_async_code);
}

#[test]
fn migrations_make_the_same_schema_once_even_when_servers_start_together() {
    if !postgres::available() {
        return;
    }
    let pg = Postgres::start(false);
    let url = pg.url("fresh");
    // Four servers starting at once on an empty database.
    let stores: Vec<Store> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..4).map(|_| s.spawn(|| Store::connect(&url))).collect();
        hs.into_iter().map(|h| h.join().unwrap().unwrap()).collect()
    });
    for s in &stores {
        assert_eq!(s.version().unwrap(), 3);
    }
    assert_eq!(
        pg.psql("fresh", "SELECT version FROM berth_schema").trim(),
        "3"
    );
    assert_eq!(
        pg.psql("fresh", "SELECT count(*) FROM berth_schema").trim(),
        "1"
    );
    // Every table and column SQLite has, PostgreSQL has.
    let pg_columns: HashSet<String> = pg
        .psql(
            "fresh",
            "SELECT table_name || '.' || column_name FROM information_schema.columns
             WHERE table_schema = 'public' AND table_name <> 'berth_schema'",
        )
        .lines()
        .map(String::from)
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.db");
    drop(Store::open(&file).unwrap());
    let conn = rusqlite::Connection::open(&file).unwrap();
    let mut stmt = conn
        .prepare(
            "SELECT m.name || '.' || p.name FROM sqlite_master m, pragma_table_info(m.name) p
             WHERE m.type = 'table'",
        )
        .unwrap();
    let sqlite_columns: HashSet<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(sqlite_columns.len(), 44, "{sqlite_columns:?}");
    assert_eq!(pg_columns, sqlite_columns);
}

/// A database file of the first schema (before setups and workshops),
/// with a learner's passes in it, is upgraded in place and keeps them.
#[test]
fn an_old_sqlite_file_is_migrated_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("berth.db");
    {
        let conn = rusqlite::Connection::open(&file).unwrap();
        conn.execute_batch(
            "CREATE TABLE learners (id INTEGER PRIMARY KEY, token TEXT NOT NULL UNIQUE,
                 display_name TEXT, created_at TEXT NOT NULL);
             CREATE TABLE sessions (id TEXT PRIMARY KEY, learner_id INTEGER NOT NULL REFERENCES learners(id),
                 created_at TEXT NOT NULL, ended_at TEXT, end_reason TEXT);
             CREATE TABLE nodes (session_id TEXT NOT NULL REFERENCES sessions(id), name TEXT NOT NULL,
                 scope TEXT NOT NULL, created_at TEXT NOT NULL, removed_at TEXT);
             CREATE INDEX nodes_by_session ON nodes(session_id);
             CREATE TABLE exercise_results (id INTEGER PRIMARY KEY,
                 learner_id INTEGER NOT NULL REFERENCES learners(id), lesson TEXT NOT NULL,
                 exercise TEXT NOT NULL, passed INTEGER NOT NULL, detail TEXT, checked_at TEXT NOT NULL);
             CREATE INDEX results_by_learner ON exercise_results(learner_id, lesson);
             INSERT INTO learners VALUES (7, 'old-token', 'Old Timer', '2025-01-01T00:00:00Z');
             INSERT INTO sessions VALUES ('old-session', 7, '2025-01-01T00:00:00Z', NULL, NULL);
             INSERT INTO exercise_results VALUES (1, 7, '01-intro', 'run', 1, '', '2025-01-01T00:01:00Z');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let store = Store::open(&file).unwrap();
    assert_eq!(store.version().unwrap(), 3);
    let l = store.learner_by_token("old-token").unwrap().unwrap();
    assert_eq!((l.id, l.display_name.as_deref()), (7, Some("Old Timer")));
    assert_eq!(
        store.passes(7).unwrap(),
        [(
            "01-intro".to_string(),
            "run".to_string(),
            "2025-01-01T00:01:00Z".to_string()
        )]
    );
    assert_eq!(store.end_all_open("server restarted").unwrap(), 1);
    assert!(store.claim_setup("s", "01-intro").unwrap());
    assert!(store.add_instructor("ada", "h").unwrap().is_some());
    drop(store);
    assert_eq!(Store::open(&file).unwrap().version().unwrap(), 3);
}

#[test]
fn an_unreachable_database_is_a_clear_error_and_a_lost_one_is_survived() {
    if !postgres::available() {
        return;
    }
    // Nothing listens on this port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = Store::connect(&format!("postgres://berth:{PASSWORD}@127.0.0.1:{closed}/x"))
        .err()
        .expect("no database there")
        .to_string();
    assert!(
        err.starts_with(&format!(
            "cannot reach the database at postgres://berth@127.0.0.1:{closed}/x: "
        )),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
    let err = Store::connect("postgres://berth:pw@127.0.0.1:notaport/x")
        .err()
        .expect("a bad URL")
        .to_string();
    assert!(err.contains("not a PostgreSQL URL"), "{err}");
    assert!(!err.contains("pw@"), "{err}");

    // Wrong password: refused, said so, the password not repeated.
    let mut pg = Postgres::start(false);
    let url = pg.url("lost");
    let wrong = url.replace(PASSWORD, "wrong-password-123");
    let err = Store::connect(&wrong).err().expect("refused").to_string();
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("wrong-password-123"), "{err}");

    let store = Store::connect(&url).unwrap();
    let l = store.add_learner("before", None).unwrap();
    pg.stop();
    let t = Instant::now();
    let err = store
        .record_result(l.id, "a", "b", true, "")
        .expect_err("no database")
        .to_string();
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    assert!(!err.contains(PASSWORD), "{err}");
    // PostgreSQL comes back: the same store works again.
    pg.restart();
    store.record_result(l.id, "a", "b", true, "").unwrap();
    assert_eq!(store.passes(l.id).unwrap().len(), 1);
    assert_eq!(
        pg.psql("lost", "SELECT count(*) FROM exercise_results")
            .trim(),
        "1"
    );
}

const ADMIN: &str = "admin-secret-for-pg-tests";
const PROMPT: &str = "root@node1:~#";

fn lessons() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/workshop-lessons")
        .display()
        .to_string()
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
    assert!(
        r.status < 300,
        "{method} {path}: {} {}\n{}",
        r.status,
        r.body,
        c.log()
    );
    if let Some(cookie) = r.header("set-cookie") {
        return json!({ "cookie": cookie.split(';').next().unwrap(), "body": r.json() });
    }
    if r.header("content-type")
        .is_some_and(|t| t.starts_with("application/json"))
    {
        r.json()
    } else {
        Value::String(r.body)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classroom_on_postgres_keeps_progress_across_a_restart() {
    if !postgres::available() {
        return;
    }
    let pg = Postgres::start(false);
    let url = pg.url("classroom");

    // A start with the database away fails at once and says where.
    let data = tempfile::tempdir_in("/var/tmp").unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_berth"))
        .arg("--data-dir")
        .arg(data.path())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--registry-listen",
            "127.0.0.1:0",
        ])
        .args(["--preview-listen", "off", "--lessons", &lessons()])
        .env(
            "BERTH_DATABASE",
            format!("postgres://berth:{PASSWORD}@127.0.0.1:{closed}/classroom"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!(
            "cannot reach the database at postgres://berth@127.0.0.1:{closed}/classroom: "
        )),
        "{stderr}"
    );
    assert!(!stderr.contains(PASSWORD), "{stderr}");
    drop(data);

    let mut c = Classroom::start(&[
        "--lessons",
        &lessons(),
        "--admin-token",
        ADMIN,
        "--preview-listen",
        "off",
        "--database",
        &url,
    ]);
    let admin = ("Authorization", &*format!("Bearer {ADMIN}"));
    let plan = json!({"title": "On PostgreSQL", "lessons": ["01-quick"], "seats": 3});
    let w = call(&c, "POST", "/api/workshops", admin, Some(&plan));
    let w = if w.get("body").is_some() {
        w["body"].clone()
    } else {
        w
    };
    let (id, code) = (
        w["id"].as_i64().unwrap(),
        w["code"].as_str().unwrap().to_string(),
    );
    let joined = call(
        &c,
        "POST",
        "/api/workshops/join",
        ("X-None", "-"),
        Some(&json!({"code": code, "name": "Alice"})),
    );
    let cookie = joined["cookie"].as_str().unwrap().to_string();
    let token = cookie.strip_prefix("berth_session=").unwrap().to_string();

    let mut term = c.terminal(&token, "node1").await;
    assert!(
        term.wait_for(PROMPT, Duration::from_secs(90)).await,
        "{:?}",
        term.text()
    );
    term.run(
        "docker create --name hello busybox",
        Duration::from_secs(90),
    )
    .await
    .expect("docker create");
    let verdict = call(
        &c,
        "POST",
        "/api/lessons/01-quick/check",
        ("Cookie", &cookie),
        Some(&json!({"exercise": "made"})),
    );
    assert_eq!(verdict["exercises"][0]["passed"], true, "{verdict}");
    drop(term);

    let stored = "SELECT l.display_name, r.lesson, r.exercise, r.passed FROM exercise_results r
                  JOIN learners l ON l.id = r.learner_id WHERE r.passed";
    assert_eq!(pg.psql("classroom", stored).trim(), "Alice|01-quick|made|t");

    // The server restarts: the pass is in PostgreSQL and on the board.
    c.stop();
    assert_eq!(pg.psql("classroom", stored).trim(), "Alice|01-quick|made|t");
    c.spawn();
    assert_eq!(
        pg.psql(
            "classroom",
            "SELECT count(*) FROM sessions WHERE ended_at IS NULL"
        )
        .trim(),
        "0",
        "the restart ended the old session"
    );
    let csv = call(
        &c,
        "GET",
        &format!("/api/workshops/{id}/board.csv"),
        admin,
        None,
    );
    let csv = csv.as_str().unwrap_or_default().to_string();
    let alice = csv
        .lines()
        .find(|l| l.contains("Alice"))
        .unwrap_or_else(|| panic!("no Alice in {csv}"));
    let fields: Vec<&str> = alice.split(',').collect();
    assert!(fields[3].starts_with("20"), "made has a pass time: {csv}");
    assert_eq!((fields[4], fields[5]), ("", "1"), "{csv}");
    // A new learner on the restarted server writes to the same database.
    let joined = call(
        &c,
        "POST",
        "/api/workshops/join",
        ("X-None", "-"),
        Some(&json!({"code": code, "name": "Bob"})),
    );
    assert!(joined["cookie"].is_string());
    assert_eq!(
        pg.psql("classroom", "SELECT display_name FROM learners ORDER BY id")
            .trim(),
        "Alice\nBob"
    );
    assert!(!c.log().contains(PASSWORD), "the password is in the log");
}
