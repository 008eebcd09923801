//! One way to run a statement on either backend, so each query of the
//! store is written once: SQL in SQLite's `?N` placeholders (turned into
//! PostgreSQL's `$N` for it), parameters and columns typed by Rust values
//! both drivers convert, and the few dialect differences kept to SQL both
//! accept (`ON CONFLICT DO NOTHING`, `RETURNING`, `TRUE`, `CAST`).

use rusqlite::types::FromSql as SqliteFromSql;
use rusqlite::ToSql as SqliteToSql;
use tokio_postgres::types::{FromSql as PgFromSql, ToSql as PgToSql};

use super::postgres::PgConn;
use super::StoreError;

/// A statement parameter both drivers can bind (`i64`, `&str`, `bool`, and
/// `Option`s of them).
pub(super) trait Param: Sync {
    fn sqlite(&self) -> &dyn SqliteToSql;
    fn pg(&self) -> &(dyn PgToSql + Sync);
}

impl<T: SqliteToSql + PgToSql + Sync> Param for T {
    fn sqlite(&self) -> &dyn SqliteToSql {
        self
    }
    fn pg(&self) -> &(dyn PgToSql + Sync) {
        self
    }
}

/// A column type both drivers can read.
pub(super) trait Column: SqliteFromSql + for<'a> PgFromSql<'a> {}
impl<T: SqliteFromSql + for<'a> PgFromSql<'a>> Column for T {}

/// One result row of either backend.
pub(super) enum Row<'a, 'b> {
    Sqlite(&'a rusqlite::Row<'b>),
    Pg(&'a tokio_postgres::Row),
}

impl Row<'_, '_> {
    pub fn get<T: Column>(&self, i: usize) -> Result<T, StoreError> {
        match self {
            Row::Sqlite(r) => Ok(r.get(i)?),
            Row::Pg(r) => Ok(r.try_get(i)?),
        }
    }
}

/// A connection to run statements on, borrowed for one store call.
pub(super) enum Db<'a> {
    Sqlite(&'a rusqlite::Connection),
    Pg(&'a PgConn),
}

/// `?N` placeholders as PostgreSQL's `$N` (the store's SQL has no `?`
/// inside string literals).
pub(super) fn pg_sql(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

impl Db<'_> {
    /// Runs one statement; the number of rows it changed.
    pub fn execute(&self, sql: &str, params: &[&dyn Param]) -> Result<u64, StoreError> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                Ok(stmt.execute(rusqlite::params_from_iter(
                    params.iter().map(|p| p.sqlite()),
                ))? as u64)
            }
            Db::Pg(c) => c.execute(&pg_sql(sql), &pg_params(params)),
        }
    }

    /// Every row of a query, each made into a `T` by `f`.
    pub fn query<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        mut f: impl FnMut(&Row<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Db::Sqlite(c) => {
                let mut stmt = c.prepare_cached(sql)?;
                let mut rows = stmt.query(rusqlite::params_from_iter(
                    params.iter().map(|p| p.sqlite()),
                ))?;
                let mut out = Vec::new();
                while let Some(r) = rows.next()? {
                    out.push(f(&Row::Sqlite(r))?);
                }
                Ok(out)
            }
            Db::Pg(c) => c
                .query(&pg_sql(sql), &pg_params(params))?
                .iter()
                .map(|r| f(&Row::Pg(r)))
                .collect(),
        }
    }

    /// The first row of a query, if any.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        params: &[&dyn Param],
        f: impl FnMut(&Row<'_, '_>) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        Ok(self.query(sql, params, f)?.into_iter().next())
    }
}

fn pg_params<'p>(params: &'p [&dyn Param]) -> Vec<&'p (dyn PgToSql + Sync)> {
    params.iter().map(|p| p.pg()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars() {
        assert_eq!(
            pg_sql("SELECT a FROM t WHERE b = ?1 AND c = ?12 AND d = '?'"),
            "SELECT a FROM t WHERE b = $1 AND c = $12 AND d = '?'"
        );
    }
}
