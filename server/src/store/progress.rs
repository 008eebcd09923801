//! Progress queries: which exercises a learner passed, and when first.

use super::{Store, StoreError};

impl Store {
    /// `(lesson, exercise, first passed at)` for every exercise `learner`
    /// passed, oldest first.
    pub fn passes(&self, learner: i64) -> Result<Vec<(String, String, String)>, StoreError> {
        self.with(|db| {
            db.query(
                "SELECT lesson, exercise, MIN(checked_at) FROM exercise_results
                 WHERE learner_id = ?1 AND passed = TRUE GROUP BY lesson, exercise
                 ORDER BY 3, 1, 2",
                &[&learner],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
        })
    }
}
