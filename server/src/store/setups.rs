//! Lesson setups: which lessons were set up in which runtime session, so
//! a setup runs once per lab even across server restarts, and a reset lab
//! gets the last lesson's setup again.

use super::{now, Store, StoreError};

impl Store {
    /// Claims the setup of `lesson` in `session` as it is opened: true the
    /// first time (the caller runs it), false when it was claimed already.
    /// Either way the lesson becomes the session's last opened one.
    pub fn claim_setup(&self, session: &str, lesson: &str) -> Result<bool, StoreError> {
        let opened = humantime::format_rfc3339_nanos(std::time::SystemTime::now()).to_string();
        let started = now();
        self.with(|db| {
            let n = db.execute(
                "INSERT INTO lesson_setups (session_id, lesson, started_at, opened_at)
                 VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                &[&session, &lesson, &started, &opened],
            )?;
            if n == 0 {
                db.execute(
                    "UPDATE lesson_setups SET opened_at = ?3 WHERE session_id = ?1 AND lesson = ?2",
                    &[&session, &lesson, &opened],
                )?;
            }
            Ok(n == 1)
        })
    }

    /// Records how the setup went: `ok`, or the error.
    pub fn setup_finished(
        &self,
        session: &str,
        lesson: &str,
        outcome: &str,
    ) -> Result<(), StoreError> {
        self.with(|db| {
            db.execute(
                "UPDATE lesson_setups SET outcome = ?3 WHERE session_id = ?1 AND lesson = ?2",
                &[&session, &lesson, &outcome],
            )
        })?;
        Ok(())
    }

    /// The outcome of a setup: `None` when never claimed, `Some(None)`
    /// while it runs.
    pub fn setup_outcome(
        &self,
        session: &str,
        lesson: &str,
    ) -> Result<Option<Option<String>>, StoreError> {
        self.with(|db| {
            db.query_opt(
                "SELECT outcome FROM lesson_setups WHERE session_id = ?1 AND lesson = ?2",
                &[&session, &lesson],
                |r| r.get(0),
            )
        })
    }

    /// The lesson opened last in `session` (opening times are in
    /// nanoseconds; the lesson name only breaks a tie).
    pub fn last_setup(&self, session: &str) -> Result<Option<String>, StoreError> {
        self.with(|db| {
            db.query_opt(
                "SELECT lesson FROM lesson_setups WHERE session_id = ?1
                 ORDER BY opened_at DESC, lesson DESC LIMIT 1",
                &[&session],
                |r| r.get(0),
            )
        })
    }

    /// Records a node added to a running session.
    pub fn node_added(&self, session: &str, name: &str, scope: &str) -> Result<(), StoreError> {
        let at = now();
        self.with(|db| {
            db.execute(
                "INSERT INTO nodes (session_id, name, scope, created_at) VALUES (?1, ?2, ?3, ?4)",
                &[&session, &name, &scope, &at],
            )
        })?;
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
