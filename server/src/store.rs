//! The progress store: SQLite at `<data>/berth.db`, schema by numbered
//! migrations recorded in `PRAGMA user_version`.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

mod progress;
mod setups;

use rusqlite::{params, Connection, OptionalExtension};

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
];

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("progress store: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

/// The opened database (one connection; SQLite serializes writers anyway).
pub struct Store {
    conn: Mutex<Connection>,
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
    /// Opens (creating) the database and applies pending migrations.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=5000;",
        )?;
        let store = Self {
            conn: Mutex::new(conn),
        };
        store.migrate()?;
        Ok(store)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn();
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
        Ok(self
            .conn()
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    pub fn add_learner(&self, token: &str, name: Option<&str>) -> Result<Learner, StoreError> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO learners (token, display_name, created_at) VALUES (?1, ?2, ?3)",
            params![token, name, now()],
        )?;
        Ok(Learner {
            id: conn.last_insert_rowid(),
            token: token.into(),
            display_name: name.map(String::from),
        })
    }

    pub fn learner_by_token(&self, token: &str) -> Result<Option<Learner>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, token, display_name FROM learners WHERE token = ?1",
                params![token],
                |r| {
                    Ok(Learner {
                        id: r.get(0)?,
                        token: r.get(1)?,
                        display_name: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn set_display_name(&self, learner: i64, name: Option<&str>) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE learners SET display_name = ?2 WHERE id = ?1",
            params![learner, name],
        )?;
        Ok(())
    }

    pub fn session_started(
        &self,
        id: &str,
        learner: i64,
        nodes: &[(String, String)],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let at = now();
        tx.execute(
            "INSERT INTO sessions (id, learner_id, created_at) VALUES (?1, ?2, ?3)",
            params![id, learner, at],
        )?;
        for (name, scope) in nodes {
            tx.execute(
                "INSERT INTO nodes (session_id, name, scope, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![id, name, scope, at],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    pub fn session_ended(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        let at = now();
        conn.execute(
            "UPDATE sessions SET ended_at = ?2, end_reason = ?3 WHERE id = ?1 AND ended_at IS NULL",
            params![id, at, reason],
        )?;
        conn.execute(
            "UPDATE nodes SET removed_at = ?2 WHERE session_id = ?1 AND removed_at IS NULL",
            params![id, at],
        )?;
        Ok(())
    }

    /// Sessions the store thinks are live (after a crash: to mark ended).
    pub fn end_all_open(&self, reason: &str) -> Result<usize, StoreError> {
        let conn = self.conn();
        let at = now();
        let n = conn.execute(
            "UPDATE sessions SET ended_at = ?1, end_reason = ?2 WHERE ended_at IS NULL",
            params![at, reason],
        )?;
        conn.execute(
            "UPDATE nodes SET removed_at = ?1 WHERE removed_at IS NULL",
            params![at],
        )?;
        Ok(n)
    }

    pub fn record_result(
        &self,
        learner: i64,
        lesson: &str,
        exercise: &str,
        passed: bool,
        detail: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO exercise_results (learner_id, lesson, exercise, passed, detail, checked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![learner, lesson, exercise, passed, detail, now()],
        )?;
        Ok(())
    }

    /// `(ended_at, end_reason)` of a session.
    pub fn session_end(&self, id: &str) -> Result<Option<SessionEnd>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT ended_at, end_reason FROM sessions WHERE id = ?1",
                params![id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
