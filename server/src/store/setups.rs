//! Lesson setups: which lessons were set up in which runtime session, so
//! a setup runs once per lab even across server restarts, and a reset lab
//! gets the last lesson's setup again.

use rusqlite::{params, OptionalExtension};

use super::{now, Store, StoreError};

impl Store {
    /// Claims the setup of `lesson` in `session` as it is opened: true the
    /// first time (the caller runs it), false when it was claimed already.
    /// Either way the lesson becomes the session's last opened one.
    pub fn claim_setup(&self, session: &str, lesson: &str) -> Result<bool, StoreError> {
        let conn = self.conn();
        let opened = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let n = conn.execute(
            "INSERT OR IGNORE INTO lesson_setups (session_id, lesson, started_at, opened_at)
             VALUES (?1, ?2, ?3, ?4)",
            params![session, lesson, now(), opened],
        )?;
        if n == 0 {
            conn.execute(
                "UPDATE lesson_setups SET opened_at = ?3 WHERE session_id = ?1 AND lesson = ?2",
                params![session, lesson, opened],
            )?;
        }
        Ok(n == 1)
    }

    /// Records how the setup went: `ok`, or the error.
    pub fn setup_finished(
        &self,
        session: &str,
        lesson: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE lesson_setups SET outcome = ?3 WHERE session_id = ?1 AND lesson = ?2",
            params![session, lesson, outcome],
        )?;
        Ok(())
    }

    /// The outcome of a setup: `None` when never claimed, `Some(None)`
    /// while it runs.
    pub fn setup_outcome(
        &self,
        session: &str,
        lesson: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT outcome FROM lesson_setups WHERE session_id = ?1 AND lesson = ?2",
                params![session, lesson],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The lesson opened last in `session`.
    pub fn last_setup(&self, session: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT lesson FROM lesson_setups WHERE session_id = ?1
                 ORDER BY opened_at DESC, rowid DESC LIMIT 1",
                params![session],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Records a node added to a running session.
    pub fn node_added(&self, session: &str, name: &str, scope: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO nodes (session_id, name, scope, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![session, name, scope, now()],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_setup_is_claimed_once_per_session_and_the_last_one_is_known() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("berth.db")).unwrap();
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
        // Opening the first again makes it the last opened, not set up twice.
        assert!(!store.claim_setup("s1", "01-a").unwrap());
        assert_eq!(store.last_setup("s1").unwrap().as_deref(), Some("01-a"));
        // Another session (a reset lab) sets up afresh.
        assert!(store.claim_setup("s2", "01-a").unwrap());
        assert_eq!(store.setup_outcome("s3", "01-a").unwrap(), None);
        // Persisted: a reopened store still knows.
        drop(store);
        let store = Store::open(&dir.path().join("berth.db")).unwrap();
        assert!(!store.claim_setup("s1", "01-a").unwrap());
    }
}
