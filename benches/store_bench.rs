//! `berth-bench store [LEARNERS] [ROUNDS]`: the progress store under a
//! classroom's load, SQLite (the default file in a data directory) beside
//! PostgreSQL (Debian's, started here on a private port with fsync on, as
//! `tests/common/postgres.rs` does for the tests). LEARNERS threads
//! (default 200) each record ROUNDS (default 25) check results and read
//! their progress after each, all at once: progress writes per second over
//! the whole run, and the latency of each write and each read (median and
//! p10/p90 over every call). Each backend is run three times; the row with
//! the median write rate is printed.
//!
//! Measured 2026-12-07 on 2 cores shared with other builds (load ~6),
//! release build, 200 learners x 25: SQLite 3692 writes/s (runs 2421,
//! 3692, 3771), write median 0.30 ms (p90 62 ms), read median 25.8 ms (p90
//! 65 ms: reads queue behind writers on the one connection); PostgreSQL 15
//! with fsync on 1901 writes/s (runs 1367, 1901, 2038), write median 94 ms
//! (p90 147 ms: 200 writers queue for the ordering lock), read median
//! 0.25 ms (p90 0.39 ms).

use std::sync::Barrier;
use std::time::{Duration, Instant};

use berth_server::store::Store;

use super::{print_row, summarize};

#[path = "../tests/common/postgres.rs"]
mod postgres;

struct Run {
    writes_per_s: f64,
    writes: Vec<Duration>,
    reads: Vec<Duration>,
}

fn load(store: &Store, learners: usize, rounds: usize, run: usize) -> Run {
    let ids: Vec<i64> = (0..learners)
        .map(|n| {
            store
                .add_learner(&format!("bench-{run}-{n}"), None)
                .unwrap()
                .id
        })
        .collect();
    let start = Barrier::new(learners + 1);
    let (elapsed, times) = std::thread::scope(|s| {
        let handles: Vec<_> = ids
            .iter()
            .map(|&id| {
                let start = &start;
                s.spawn(move || {
                    let mut w = Vec::with_capacity(rounds);
                    let mut r = Vec::with_capacity(rounds);
                    start.wait();
                    for e in 0..rounds {
                        let t = Instant::now();
                        store
                            .record_result(id, "01-first-steps", &format!("e{e}"), e % 3 != 0, "")
                            .unwrap();
                        w.push(t.elapsed());
                        let t = Instant::now();
                        let passes = store.passes(id).unwrap();
                        r.push(t.elapsed());
                        assert!(passes.len() <= e + 1);
                    }
                    (w, r)
                })
            })
            .collect();
        start.wait();
        let began = Instant::now();
        let times: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        (began.elapsed(), times)
    });
    let (writes, reads): (Vec<_>, Vec<_>) = times.into_iter().unzip();
    Run {
        writes_per_s: (learners * rounds) as f64 / elapsed.as_secs_f64(),
        writes: writes.concat(),
        reads: reads.concat(),
    }
}

fn report(name: &str, mut runs: Vec<Run>) {
    runs.sort_by(|a, b| a.writes_per_s.total_cmp(&b.writes_per_s));
    let rates: Vec<String> = runs
        .iter()
        .map(|r| format!("{:.0}", r.writes_per_s))
        .collect();
    let mid = runs.swap_remove(runs.len() / 2);
    println!(
        "{name}: {:.0} progress writes/s (runs: {})",
        mid.writes_per_s,
        rates.join(", ")
    );
    print_row(
        &format!("{name} write"),
        mid.writes.len(),
        &summarize(mid.writes),
    );
    print_row(
        &format!("{name} read (passes)"),
        mid.reads.len(),
        &summarize(mid.reads),
    );
}

pub fn run(learners: usize, rounds: usize) -> anyhow::Result<()> {
    anyhow::ensure!(
        postgres::available(),
        "PostgreSQL is not installed (scripts/setup.sh installs it)"
    );
    println!("{learners} learners at once, {rounds} results and reads each");
    let dir = tempfile::Builder::new()
        .prefix("berth-bench-store-")
        .tempdir_in("/var/tmp")?;
    let sqlite = Store::open(&dir.path().join("berth.db"))?;
    report(
        "sqlite",
        (0..3).map(|r| load(&sqlite, learners, rounds, r)).collect(),
    );
    drop(sqlite);
    let pg = postgres::Postgres::start(true);
    let store = Store::connect(&pg.url("bench"))?;
    report(
        "postgres",
        (0..3).map(|r| load(&store, learners, rounds, r)).collect(),
    );
    Ok(())
}
