//! Instructors, workshops and their learners in the progress store, and the
//! board's queries. A workshop's data (its learners, their sessions, nodes
//! and results) can be deleted in one transaction when it is over.

use rusqlite::{params, OptionalExtension};

use super::{now, Store, StoreError};

/// Schema step 2 (see `MIGRATIONS` in store.rs).
pub(super) const MIGRATION: &str = "
    CREATE TABLE instructors (
        id INTEGER PRIMARY KEY,
        username TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE workshops (
        id INTEGER PRIMARY KEY,
        code TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        lessons TEXT NOT NULL,
        starts_at INTEGER NOT NULL,
        ends_at INTEGER NOT NULL,
        seats INTEGER NOT NULL,
        instructor_id INTEGER REFERENCES instructors(id),
        shared_registry INTEGER NOT NULL DEFAULT 0,
        demo_learner_id INTEGER,
        created_at TEXT NOT NULL
    );
    CREATE TABLE workshop_learners (
        workshop_id INTEGER NOT NULL REFERENCES workshops(id),
        learner_id INTEGER NOT NULL REFERENCES learners(id),
        joined_at INTEGER NOT NULL,
        PRIMARY KEY (workshop_id, learner_id)
    );
    CREATE INDEX workshop_learners_by_learner ON workshop_learners(learner_id);";

/// An instructor account (the hash is argon2's PHC string, salt included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstructorRow {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
}

/// A workshop as stored. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkshopRow {
    pub id: i64,
    pub code: String,
    pub title: String,
    pub lessons: Vec<String>,
    pub starts_at: i64,
    pub ends_at: i64,
    pub seats: i64,
    /// `None` when the admin made it.
    pub instructor_id: Option<i64>,
    pub shared_registry: bool,
    pub demo_learner_id: Option<i64>,
}

/// What a new workshop is.
#[derive(Debug, Clone)]
pub struct NewWorkshop<'a> {
    pub code: &'a str,
    pub title: &'a str,
    pub lessons: &'a [String],
    pub starts_at: i64,
    pub ends_at: i64,
    pub seats: i64,
    pub instructor_id: Option<i64>,
}

/// A learner on a workshop's board.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardLearner {
    pub id: i64,
    pub name: Option<String>,
    pub token: String,
    pub joined_at: i64,
}

/// A first pass of an exercise by a workshop learner (`result` is the row id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pass {
    pub result: i64,
    pub learner: i64,
    pub lesson: String,
    pub exercise: String,
    pub at: String,
}

const WORKSHOP_COLUMNS: &str = "id, code, title, lessons, starts_at, ends_at, seats, instructor_id, shared_registry, demo_learner_id";

fn workshop_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WorkshopRow> {
    let lessons: String = r.get(3)?;
    Ok(WorkshopRow {
        id: r.get(0)?,
        code: r.get(1)?,
        title: r.get(2)?,
        lessons: serde_json::from_str(&lessons).unwrap_or_default(),
        starts_at: r.get(4)?,
        ends_at: r.get(5)?,
        seats: r.get(6)?,
        instructor_id: r.get(7)?,
        shared_registry: r.get::<_, i64>(8)? != 0,
        demo_learner_id: r.get(9)?,
    })
}

impl Store {
    /// Adds an instructor; `None` when the name is taken.
    pub fn add_instructor(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        let n = conn.execute(
            "INSERT OR IGNORE INTO instructors (username, password_hash, created_at) VALUES (?1, ?2, ?3)",
            params![username, password_hash, now()],
        )?;
        Ok((n == 1).then(|| conn.last_insert_rowid()))
    }

    pub fn instructor(&self, username: &str) -> Result<Option<InstructorRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, username, password_hash FROM instructors WHERE username = ?1",
                params![username],
                |r| {
                    Ok(InstructorRow {
                        id: r.get(0)?,
                        username: r.get(1)?,
                        password_hash: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Adds a workshop; `None` when its code is taken.
    pub fn add_workshop(&self, w: &NewWorkshop<'_>) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        let lessons = serde_json::to_string(w.lessons).unwrap_or_else(|_| "[]".into());
        let n = conn.execute(
            "INSERT OR IGNORE INTO workshops (code, title, lessons, starts_at, ends_at, seats, instructor_id, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![w.code, w.title, lessons, w.starts_at, w.ends_at, w.seats, w.instructor_id, now()],
        )?;
        Ok((n == 1).then(|| conn.last_insert_rowid()))
    }

    pub fn workshop(&self, id: i64) -> Result<Option<WorkshopRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {WORKSHOP_COLUMNS} FROM workshops WHERE id = ?1"),
                params![id],
                workshop_row,
            )
            .optional()?)
    }

    pub fn workshop_by_code(&self, code: &str) -> Result<Option<WorkshopRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {WORKSHOP_COLUMNS} FROM workshops WHERE code = ?1"),
                params![code],
                workshop_row,
            )
            .optional()?)
    }

    /// Every workshop, or those of one instructor; newest first.
    pub fn workshops(&self, instructor: Option<i64>) -> Result<Vec<WorkshopRow>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {WORKSHOP_COLUMNS} FROM workshops
             WHERE ?1 IS NULL OR instructor_id = ?1 ORDER BY starts_at DESC, id DESC"
        ))?;
        let rows = stmt.query_map(params![instructor], workshop_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The workshop `learner` joined, if any.
    pub fn workshop_of(&self, learner: i64) -> Result<Option<WorkshopRow>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!(
                    "SELECT {} FROM workshops w JOIN workshop_learners l ON l.workshop_id = w.id
                     WHERE l.learner_id = ?1",
                    WORKSHOP_COLUMNS
                        .split(", ")
                        .map(|c| format!("w.{c}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                params![learner],
                workshop_row,
            )
            .optional()?)
    }

    pub fn join_workshop(&self, workshop: i64, learner: i64, at: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO workshop_learners (workshop_id, learner_id, joined_at) VALUES (?1, ?2, ?3)",
            params![workshop, learner, at],
        )?;
        Ok(())
    }

    pub fn set_shared_registry(&self, workshop: i64, open: bool) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE workshops SET shared_registry = ?2 WHERE id = ?1",
            params![workshop, open],
        )?;
        Ok(())
    }

    pub fn set_demo_learner(&self, workshop: i64, learner: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE workshops SET demo_learner_id = ?2 WHERE id = ?1",
            params![workshop, learner],
        )?;
        Ok(())
    }

    /// The workshop's learners in the order they joined.
    pub fn workshop_learners(&self, workshop: i64) -> Result<Vec<BoardLearner>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT l.id, l.display_name, l.token, w.joined_at FROM workshop_learners w
             JOIN learners l ON l.id = w.learner_id WHERE w.workshop_id = ?1
             ORDER BY w.joined_at, l.id",
        )?;
        let rows = stmt.query_map(params![workshop], |r| {
            Ok(BoardLearner {
                id: r.get(0)?,
                name: r.get(1)?,
                token: r.get(2)?,
                joined_at: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Passes by the workshop's learners recorded after result row `after`,
    /// oldest first (a learner may appear twice for one exercise; the
    /// caller keeps the first).
    pub fn workshop_passes(&self, workshop: i64, after: i64) -> Result<Vec<Pass>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT r.id, r.learner_id, r.lesson, r.exercise, r.checked_at FROM exercise_results r
             JOIN workshop_learners w ON w.learner_id = r.learner_id
             WHERE w.workshop_id = ?1 AND r.id > ?2 AND r.passed = 1 ORDER BY r.id",
        )?;
        let rows = stmt.query_map(params![workshop, after], |r| {
            Ok(Pass {
                result: r.get(0)?,
                learner: r.get(1)?,
                lesson: r.get(2)?,
                exercise: r.get(3)?,
                at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes the workshop and everything its learners (and the
    /// instructor's demo lab) left: results, sessions, nodes, learners.
    pub fn delete_workshop(&self, workshop: i64) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let demo: Option<Option<i64>> = tx
            .query_row(
                "SELECT demo_learner_id FROM workshops WHERE id = ?1",
                params![workshop],
                |r| r.get(0),
            )
            .optional()?;
        let Some(demo) = demo else {
            return Ok(false);
        };
        tx.execute(
            "CREATE TEMP TABLE IF NOT EXISTS doomed (id INTEGER PRIMARY KEY)",
            [],
        )?;
        tx.execute("DELETE FROM doomed", [])?;
        tx.execute(
            "INSERT INTO doomed SELECT learner_id FROM workshop_learners WHERE workshop_id = ?1",
            params![workshop],
        )?;
        if let Some(d) = demo {
            tx.execute("INSERT OR IGNORE INTO doomed VALUES (?1)", params![d])?;
        }
        tx.execute_batch(
            "DELETE FROM nodes WHERE session_id IN
                 (SELECT id FROM sessions WHERE learner_id IN (SELECT id FROM doomed));
             DELETE FROM sessions WHERE learner_id IN (SELECT id FROM doomed);
             DELETE FROM exercise_results WHERE learner_id IN (SELECT id FROM doomed);",
        )?;
        tx.execute(
            "DELETE FROM workshop_learners WHERE workshop_id = ?1",
            params![workshop],
        )?;
        tx.execute(
            "DELETE FROM learners WHERE id IN (SELECT id FROM doomed)",
            [],
        )?;
        tx.execute("DELETE FROM workshops WHERE id = ?1", params![workshop])?;
        tx.execute("DELETE FROM doomed", [])?;
        tx.commit()?;
        Ok(true)
    }

    /// Wakes when any check result is recorded.
    pub fn results_changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.results.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workshop_and_its_learners_round_trip_and_delete_without_trace() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("berth.db")).unwrap();
        let i = store.add_instructor("ada", "$argon2id$x").unwrap().unwrap();
        assert_eq!(store.add_instructor("ada", "other").unwrap(), None);
        let lessons = vec!["01-a".to_string()];
        let w = store
            .add_workshop(&NewWorkshop {
                code: "ABC234",
                title: "Intro",
                lessons: &lessons,
                starts_at: 10,
                ends_at: 20,
                seats: 5,
                instructor_id: Some(i),
            })
            .unwrap()
            .unwrap();
        let l = store.add_learner("tok", Some("Bo")).unwrap();
        store.join_workshop(w, l.id, 11).unwrap();
        store
            .session_started("s1", l.id, &[("node1".into(), "s1-node1".into())])
            .unwrap();
        store.record_result(l.id, "01-a", "x", false, "").unwrap();
        store.record_result(l.id, "01-a", "x", true, "").unwrap();
        let passes = store.workshop_passes(w, 0).unwrap();
        assert_eq!(passes.len(), 1);
        assert_eq!(passes[0].exercise, "x");
        assert!(store
            .workshop_passes(w, passes[0].result)
            .unwrap()
            .is_empty());
        assert_eq!(store.workshop_of(l.id).unwrap().unwrap().code, "ABC234");
        assert_eq!(store.workshops(Some(i)).unwrap().len(), 1);
        assert!(store.delete_workshop(w).unwrap());
        assert!(!store.delete_workshop(w).unwrap());
        assert_eq!(store.learner_by_token("tok").unwrap(), None);
        assert_eq!(store.session_end("s1").unwrap(), None);
        assert!(store.workshop_by_code("ABC234").unwrap().is_none());
    }
}
