//! Instructors, workshops and their learners in the progress store, and the
//! board's queries. A workshop's data (its learners, their sessions, nodes
//! and results) can be deleted in one transaction when it is over.

use super::db::Row;
use super::{now, Store, StoreError};

/// SQLite's schema step 3 (see `MIGRATIONS` in store.rs; PostgreSQL's is
/// in postgres.rs).
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

fn workshop_row(r: &Row<'_, '_>) -> Result<WorkshopRow, StoreError> {
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
        shared_registry: r.get(8)?,
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
        let at = now();
        self.with(|db| {
            db.query_opt(
                "INSERT INTO instructors (username, password_hash, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING RETURNING id",
                &[&username, &password_hash, &at],
                |r| r.get(0),
            )
        })
    }

    pub fn instructor(&self, username: &str) -> Result<Option<InstructorRow>, StoreError> {
        self.with(|db| {
            db.query_opt(
                "SELECT id, username, password_hash FROM instructors WHERE username = ?1",
                &[&username],
                |r| {
                    Ok(InstructorRow {
                        id: r.get(0)?,
                        username: r.get(1)?,
                        password_hash: r.get(2)?,
                    })
                },
            )
        })
    }

    /// Adds a workshop; `None` when its code is taken.
    pub fn add_workshop(&self, w: &NewWorkshop<'_>) -> Result<Option<i64>, StoreError> {
        let lessons = serde_json::to_string(w.lessons).unwrap_or_else(|_| "[]".into());
        let at = now();
        self.with(|db| {
            db.query_opt(
                "INSERT INTO workshops (code, title, lessons, starts_at, ends_at, seats, instructor_id, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING RETURNING id",
                &[&w.code, &w.title, &lessons, &w.starts_at, &w.ends_at, &w.seats, &w.instructor_id, &at],
                |r| r.get(0),
            )
        })
    }

    pub fn workshop(&self, id: i64) -> Result<Option<WorkshopRow>, StoreError> {
        self.with(|db| {
            db.query_opt(
                &format!("SELECT {WORKSHOP_COLUMNS} FROM workshops WHERE id = ?1"),
                &[&id],
                workshop_row,
            )
        })
    }

    pub fn workshop_by_code(&self, code: &str) -> Result<Option<WorkshopRow>, StoreError> {
        self.with(|db| {
            db.query_opt(
                &format!("SELECT {WORKSHOP_COLUMNS} FROM workshops WHERE code = ?1"),
                &[&code],
                workshop_row,
            )
        })
    }

    /// Every workshop, or those of one instructor; newest first.
    pub fn workshops(&self, instructor: Option<i64>) -> Result<Vec<WorkshopRow>, StoreError> {
        self.with(|db| {
            db.query(
                &format!(
                    "SELECT {WORKSHOP_COLUMNS} FROM workshops
                     WHERE CAST(?1 AS BIGINT) IS NULL OR instructor_id = ?1
                     ORDER BY starts_at DESC, id DESC"
                ),
                &[&instructor],
                workshop_row,
            )
        })
    }

    /// The workshop `learner` joined, if any.
    pub fn workshop_of(&self, learner: i64) -> Result<Option<WorkshopRow>, StoreError> {
        let columns = WORKSHOP_COLUMNS
            .split(", ")
            .map(|c| format!("w.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        self.with(|db| {
            db.query_opt(
                &format!(
                    "SELECT {columns} FROM workshops w JOIN workshop_learners l ON l.workshop_id = w.id
                     WHERE l.learner_id = ?1"
                ),
                &[&learner],
                workshop_row,
            )
        })
    }

    pub fn join_workshop(&self, workshop: i64, learner: i64, at: i64) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "INSERT INTO workshop_learners (workshop_id, learner_id, joined_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT DO NOTHING",
                &[&workshop, &learner, &at],
            )
        })?;
        Ok(())
    }

    pub fn set_shared_registry(&self, workshop: i64, open: bool) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "UPDATE workshops SET shared_registry = ?2 WHERE id = ?1",
                &[&workshop, &open],
            )
        })?;
        Ok(())
    }

    pub fn set_demo_learner(&self, workshop: i64, learner: i64) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "UPDATE workshops SET demo_learner_id = ?2 WHERE id = ?1",
                &[&workshop, &learner],
            )
        })?;
        Ok(())
    }

    /// The workshop's learners in the order they joined.
    pub fn workshop_learners(&self, workshop: i64) -> Result<Vec<BoardLearner>, StoreError> {
        self.with(|db| {
            db.query(
                "SELECT l.id, l.display_name, l.token, w.joined_at FROM workshop_learners w
                 JOIN learners l ON l.id = w.learner_id WHERE w.workshop_id = ?1
                 ORDER BY w.joined_at, l.id",
                &[&workshop],
                |r| {
                    Ok(BoardLearner {
                        id: r.get(0)?,
                        name: r.get(1)?,
                        token: r.get(2)?,
                        joined_at: r.get(3)?,
                    })
                },
            )
        })
    }

    /// Passes by the workshop's learners recorded after result row `after`,
    /// oldest first (a learner may appear twice for one exercise; the
    /// caller keeps the first).
    pub fn workshop_passes(&self, workshop: i64, after: i64) -> Result<Vec<Pass>, StoreError> {
        self.with(|db| {
            db.query(
                "SELECT r.id, r.learner_id, r.lesson, r.exercise, r.checked_at FROM exercise_results r
                 JOIN workshop_learners w ON w.learner_id = r.learner_id
                 WHERE w.workshop_id = ?1 AND r.id > ?2 AND r.passed = TRUE ORDER BY r.id",
                &[&workshop, &after],
                |r| {
                    Ok(Pass {
                        result: r.get(0)?,
                        learner: r.get(1)?,
                        lesson: r.get(2)?,
                        exercise: r.get(3)?,
                        at: r.get(4)?,
                    })
                },
            )
        })
    }

    /// Deletes the workshop and everything its learners (and the
    /// instructor's demo lab) left: results, sessions, nodes, learners.
    pub fn delete_workshop(&self, workshop: i64) -> Result<bool, StoreError> {
        self.tx(|db| {
            let Some(demo) = db.query_opt(
                "SELECT demo_learner_id FROM workshops WHERE id = ?1",
                &[&workshop],
                |r| r.get::<Option<i64>>(0),
            )?
            else {
                return Ok(false);
            };
            let mut doomed = db.query(
                "SELECT learner_id FROM workshop_learners WHERE workshop_id = ?1",
                &[&workshop],
                |r| r.get::<i64>(0),
            )?;
            doomed.extend(demo.filter(|d| !doomed.contains(d)));
            db.execute(
                "DELETE FROM workshop_learners WHERE workshop_id = ?1",
                &[&workshop],
            )?;
            for learner in &doomed {
                db.execute(
                    "DELETE FROM nodes WHERE session_id IN
                         (SELECT id FROM sessions WHERE learner_id = ?1)",
                    &[learner],
                )?;
                db.execute("DELETE FROM sessions WHERE learner_id = ?1", &[learner])?;
                db.execute(
                    "DELETE FROM exercise_results WHERE learner_id = ?1",
                    &[learner],
                )?;
                db.execute(
                    "DELETE FROM workshop_learners WHERE learner_id = ?1",
                    &[learner],
                )?;
                db.execute("DELETE FROM learners WHERE id = ?1", &[learner])?;
            }
            db.execute("DELETE FROM workshops WHERE id = ?1", &[&workshop])?;
            Ok(true)
        })
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
