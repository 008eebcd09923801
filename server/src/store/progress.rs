//! Progress queries: which exercises a learner passed, and when first.

use rusqlite::params;

use super::{Store, StoreError};

impl Store {
    /// `(lesson, exercise, first passed at)` for every exercise `learner`
    /// passed, oldest first.
    pub fn passes(&self, learner: i64) -> Result<Vec<(String, String, String)>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT lesson, exercise, MIN(checked_at) FROM exercise_results
             WHERE learner_id = ?1 AND passed = 1 GROUP BY lesson, exercise ORDER BY 3",
        )?;
        let rows = stmt.query_map(params![learner], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
