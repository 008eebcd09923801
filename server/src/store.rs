//! The progress store: SQLite at `<data>/berth.db` by default, or
//! PostgreSQL (`berth serve --database postgres://…`) when several servers
//! share one classroom's progress. Each query is written once for both
//! (`store/db.rs`); the schema is numbered migrations per backend, the same
//! tables step for step: SQLite's recorded in `PRAGMA user_version`,
//! PostgreSQL's in the `berth_schema` table (`store/postgres.rs`).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

mod db;
mod postgres;
mod progress;
mod setups;
pub mod workshops;

use db::Db;
use postgres::PgBackend;
use rusqlite::Connection;
/// Schema steps, applied in order; never edit one that shipped.
const MIGRATIONS: &[&str] = &[
    // 1: learners, their sessions and nodes, exercise results.
    "CREATE TABLE learners (
        id INTEGER PRIMARY KEY,
        token TEXT NOT NULL UNIQUE,
        display_name TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        learner_id INTEGER NOT NULL REFERENCES learners(id),
        created_at TEXT NOT NULL,
        ended_at TEXT,
        end_reason TEXT
    );
    CREATE TABLE nodes (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        name TEXT NOT NULL,
        scope TEXT NOT NULL,
        created_at TEXT NOT NULL,
        removed_at TEXT
    );
    CREATE INDEX nodes_by_session ON nodes(session_id);
    CREATE TABLE exercise_results (
        id INTEGER PRIMARY KEY,
        learner_id INTEGER NOT NULL REFERENCES learners(id),
        lesson TEXT NOT NULL,
        exercise TEXT NOT NULL,
        passed INTEGER NOT NULL,
        detail TEXT,
        checked_at TEXT NOT NULL
    );
    CREATE INDEX results_by_learner ON exercise_results(learner_id, lesson);",
    // 2: lesson setups done in a (runtime) session: once each, and the last
    // one is run again in the fresh lab after a reset.
    "CREATE TABLE lesson_setups (
        session_id TEXT NOT NULL,
        lesson TEXT NOT NULL,
        started_at TEXT NOT NULL,
        opened_at TEXT NOT NULL,
        outcome TEXT,
        PRIMARY KEY (session_id, lesson)
    );",
    // 3: instructors, workshops and who joined them (store/workshops.rs).
    workshops::MIGRATION,
];

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("progress store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL error with its causes (the server's message).
    #[error("progress store: {0}")]
    Postgres(String),
    /// The database could not be reached (named without its password).
    #[error("cannot reach the database at {0}: {1}")]
    Unreachable(String, String),
    #[error("progress store: {0}")]
    Config(String),
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Postgres(postgres::causes(&e))
    }
}

enum Backend {
    /// One connection; SQLite serializes writers anyway.
    Sqlite(Mutex<Connection>),
    Postgres(PgBackend),
}

/// The opened database.
pub struct Store {
    backend: Backend,
    /// Bumped after every recorded check result: the live progress board
    /// wakes on it instead of polling.
    results: tokio::sync::watch::Sender<u64>,
    /// This server's result writers, one at a time (see `record_result`).
    result_turn: Mutex<()>,
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// When and why a session ended (`None`s while it is live).
pub type SessionEnd = (Option<String>, Option<String>);

/// A learner as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Learner {
    pub id: i64,
    pub token: String,
    pub display_name: Option<String>,
}

impl Store {
    /// Opens (creating) the SQLite database and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )?;
        let store = Self::with_backend(Backend::Sqlite(Mutex::new(conn)));
        store.migrate_sqlite()?;
        Ok(store)
    }

    /// Connects to PostgreSQL (`postgres://user:password@host:port/db`)
    /// and applies pending migrations; an unreachable database is an error
    /// naming it without the password.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        Ok(Self::with_backend(Backend::Postgres(PgBackend::connect(
            url,
        )?)))
    }

    /// [`Store::connect`] for a `postgres://` or `postgresql://` URL,
    /// [`Store::open`] of `sqlite` (the default file) otherwise.
    pub fn open_url(url: Option<&str>, sqlite: &Path) -> Result<Self, StoreError> {
        match url {
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                Self::connect(u)
            }
            Some(_) => Err(StoreError::Config(
                "--database takes a postgres:// URL (without it the store is SQLite in the data directory)"
                    .into(),
            )),
            None => Self::open(sqlite),
        }
    }

    fn with_backend(backend: Backend) -> Self {
        Self {
            backend,
            results: tokio::sync::watch::channel(0).0,
            result_turn: Mutex::new(()),
        }
    }

    /// Which database, for the log: the SQLite file's backend or the
    /// PostgreSQL URL without its password.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite".into(),
            Backend::Postgres(pg) => pg.display.clone(),
        }
    }

    fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` with a connection (each statement commits by itself).
    fn with<R: Send>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        match &self.backend {
            Backend::Sqlite(m) => f(&Db::Sqlite(&Self::lock(m))),
            Backend::Postgres(pg) => postgres::blocking(|| f(&Db::Pg(&pg.get()?))),
        }
    }

    /// Runs `f` in one transaction: committed when it returns `Ok`.
    fn tx<R: Send>(
        &self,
        f: impl FnOnce(&Db<'_>) -> Result<R, StoreError> + Send,
    ) -> Result<R, StoreError> {
        match &self.backend {
            Backend::Sqlite(m) => {
                let conn = Self::lock(m);
                conn.execute_batch("BEGIN")?;
                match f(&Db::Sqlite(&conn)) {
                    Ok(r) => {
                        conn.execute_batch("COMMIT")?;
                        Ok(r)
                    }
                    Err(e) => {
                        let _ = conn.execute_batch("ROLLBACK");
                        Err(e)
                    }
                }
            }
            Backend::Postgres(pg) => postgres::blocking(|| {
                let conn = pg.get()?;
                conn.batch("BEGIN")?;
                let result = f(&Db::Pg(&conn));
                conn.finish(result)
            }),
        }
    }

    fn migrate_sqlite(&self) -> Result<(), StoreError> {
        let Backend::Sqlite(m) = &self.backend else {
            return Ok(());
        };
        let mut conn = Self::lock(m);
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
            tx.commit()?;
        }
        Ok(())
    }

    /// The schema version (number of migrations applied).
    pub fn version(&self) -> Result<i64, StoreError> {
        match &self.backend {
            Backend::Sqlite(m) => {
                Ok(Self::lock(m).query_row("PRAGMA user_version", [], |r| r.get(0))?)
            }
            Backend::Postgres(pg) => postgres::blocking(|| pg.version()),
        }
    }

    pub fn add_learner(&self, token: &str, name: Option<&str>) -> Result<Learner, StoreError> {
        let id = self.with(|db| {
            db.query(
                "INSERT INTO learners (token, display_name, created_at) VALUES (?1, ?2, ?3)
                 RETURNING id",
                &[&token, &name, &now()],
                |r| r.get::<i64>(0),
            )
        })?;
        Ok(Learner {
            id: id[0],
            token: token.into(),
            display_name: name.map(String::from),
        })
    }

    pub fn learner_by_token(&self, token: &str) -> Result<Option<Learner>, StoreError> {
        self.with(|db| {
            db.query_opt(
                "SELECT id, token, display_name FROM learners WHERE token = ?1",
                &[&token],
                |r| {
                    Ok(Learner {
                        id: r.get(0)?,
                        token: r.get(1)?,
                        display_name: r.get(2)?,
                    })
                },
            )
        })
    }

    pub fn set_display_name(&self, learner: i64, name: Option<&str>) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "UPDATE learners SET display_name = ?2 WHERE id = ?1",
                &[&learner, &name],
            )
        })?;
        Ok(())
    }

    pub fn session_started(
        &self,
        id: &str,
        learner: i64,
        nodes: &[(String, String)],
    ) -> Result<(), StoreError> {
        let at = now();
        self.tx(|db| {
            db.execute(
                "INSERT INTO sessions (id, learner_id, created_at) VALUES (?1, ?2, ?3)",
                &[&id, &learner, &at],
            )?;
            for (name, scope) in nodes {
                db.execute(
                    "INSERT INTO nodes (session_id, name, scope, created_at) VALUES (?1, ?2, ?3, ?4)",
                    &[&id, name, scope, &at],
                )?;
            }
            Ok(())
        })
    }

    pub fn session_ended(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        let at = now();
        self.tx(|db| {
            db.execute(
                "UPDATE sessions SET ended_at = ?2, end_reason = ?3 WHERE id = ?1 AND ended_at IS NULL",
                &[&id, &at, &reason],
            )?;
            db.execute(
                "UPDATE nodes SET removed_at = ?2 WHERE session_id = ?1 AND removed_at IS NULL",
                &[&id, &at],
            )?;
            Ok(())
        })
    }

    /// Sessions the store thinks are live (after a crash: to mark ended).
    pub fn end_all_open(&self, reason: &str) -> Result<usize, StoreError> {
        let at = now();
        self.tx(|db| {
            let n = db.execute(
                "UPDATE sessions SET ended_at = ?1, end_reason = ?2 WHERE ended_at IS NULL",
                &[&at, &reason],
            )?;
            db.execute(
                "UPDATE nodes SET removed_at = ?1 WHERE removed_at IS NULL",
                &[&at],
            )?;
            Ok(n as usize)
        })
    }

    pub fn record_result(
        &self,
        learner: i64,
        lesson: &str,
        exercise: &str,
        passed: bool,
        detail: &str,
    ) -> Result<(), StoreError> {
        let at = now();
        let params: [&dyn db::Param; 6] = [&learner, &lesson, &exercise, &passed, &detail, &at];
        // Results are read by id from a cursor (the live board reads "after
        // the last one seen"), so ids must become visible in order: on
        // PostgreSQL the statement takes one lock for the transaction
        // (across servers), and this server's writers queue for it here
        // first so that they do not hold the pool's connections while they
        // wait; SQLite's single connection is in order already.
        match &self.backend {
            Backend::Postgres(pg) => postgres::blocking(|| {
                let _turn = self.result_turn.lock().unwrap_or_else(|p| p.into_inner());
                Db::Pg(&pg.get()?).execute(
                    "WITH turn AS (SELECT pg_advisory_xact_lock(7021))
                     INSERT INTO exercise_results (learner_id, lesson, exercise, passed, detail, checked_at)
                     SELECT ?1::BIGINT, ?2::TEXT, ?3::TEXT, ?4::BOOLEAN, ?5::TEXT, ?6::TEXT FROM turn",
                    &params,
                )
            })?,
            Backend::Sqlite(_) => self.with(|db| {
                db.execute(
                    "INSERT INTO exercise_results (learner_id, lesson, exercise, passed, detail, checked_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    &params,
                )
            })?,
        };
        self.results.send_modify(|n| *n += 1);
        Ok(())
    }

    /// `(ended_at, end_reason)` of a session.
    pub fn session_end(&self, id: &str) -> Result<Option<SessionEnd>, StoreError> {
        self.with(|db| {
            db.query_opt(
                "SELECT ended_at, end_reason FROM sessions WHERE id = ?1",
                &[&id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_url_must_be_postgres() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("berth.db");
        let err = Store::open_url(Some("mysql://u:p@h/db"), &db)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--database takes a postgres:// URL"), "{err}");
        assert!(!db.exists());
        let store = Store::open_url(None, &db).unwrap();
        assert_eq!(store.describe(), "sqlite");
        assert!(db.exists());
    }

    #[test]
    fn migrations_apply_once_and_rows_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("berth.db");
        let store = Store::open(&db).unwrap();
        assert_eq!(store.version().unwrap(), MIGRATIONS.len() as i64);
        let l = store.add_learner("tok", Some("Ada")).unwrap();
        store
            .session_started("s1", l.id, &[("node1".into(), "s1-node1".into())])
            .unwrap();
        store
            .record_result(l.id, "01-intro", "run", true, "")
            .unwrap();
        store.session_ended("s1", "reset").unwrap();
        drop(store);
        let again = Store::open(&db).unwrap();
        assert_eq!(again.learner_by_token("tok").unwrap(), Some(l));
        let (ended, reason) = again.session_end("s1").unwrap().unwrap();
        assert!(ended.is_some());
        assert_eq!(reason.as_deref(), Some("reset"));
    }
}
