//! The progress board: one row per learner, one column per exercise of the
//! workshop's lessons, the first time each check passed; who is stuck
//! longest on what; counts per exercise. The socket sends a snapshot, then
//! a `pass` or `join` message as they happen (woken by the store, no
//! polling), and the CSV export has the same table.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use axum::extract::ws::{Message, WebSocket};
use futures_util::{SinkExt, StreamExt};
use serde::Serialize;

use super::{unix_now, WorkshopError, Workshops};
use crate::store::workshops::{BoardLearner, Pass, WorkshopRow};

/// One column: an exercise of one of the workshop's lessons.
#[derive(Debug, Clone, Serialize)]
pub struct Column {
    /// `lesson/exercise`.
    pub key: String,
    pub lesson: String,
    pub exercise: String,
    pub title: String,
}

/// One row.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub id: i64,
    pub name: String,
    pub joined_at: i64,
    /// Column key → first pass (RFC 3339).
    pub passes: BTreeMap<String, String>,
    /// The first exercise not passed yet, if any.
    pub stuck_on: Option<String>,
    /// Since when (Unix seconds): the last pass, or the join.
    pub stuck_since: i64,
}

/// The whole board.
#[derive(Debug, Clone, Serialize)]
pub struct Board {
    pub workshop: serde_json::Value,
    pub now: i64,
    pub columns: Vec<Column>,
    pub rows: Vec<Row>,
    /// Column key → learners who passed it.
    pub counts: BTreeMap<String, usize>,
    /// Learners stuck longest first: `(learner id, column key, seconds)`.
    pub stuck: Vec<(i64, String, i64)>,
    /// The newest result row the board has seen.
    #[serde(skip)]
    pub last_result: i64,
}

fn unix_of(rfc: &str) -> i64 {
    humantime::parse_rfc3339_weak(rfc)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn display(l: &BoardLearner) -> String {
    l.name
        .clone()
        .unwrap_or_else(|| format!("learner {}", l.id))
}

impl Workshops {
    /// The columns of workshop `w`, in lesson order.
    pub fn columns(&self, w: &WorkshopRow) -> Vec<Column> {
        let mut out = Vec::new();
        for slug in &w.lessons {
            if let Some((lesson, _, _)) = self.library.find(slug) {
                for e in &lesson.exercises {
                    out.push(Column {
                        key: format!("{}/{}", lesson.slug, e.id),
                        lesson: lesson.slug.clone(),
                        exercise: e.id.clone(),
                        title: if e.title.is_empty() {
                            e.id.clone()
                        } else {
                            e.title.clone()
                        },
                    });
                }
            }
        }
        out
    }

    /// The board of workshop `w` now.
    pub fn board(&self, w: &WorkshopRow) -> Result<Board, WorkshopError> {
        let columns = self.columns(w);
        let learners = self.classroom.store.workshop_learners(w.id)?;
        let passes = self.classroom.store.workshop_passes(w.id, 0)?;
        let last_result = passes.iter().map(|p| p.result).max().unwrap_or(0);
        let known: HashSet<&str> = columns.iter().map(|c| c.key.as_str()).collect();
        let mut by_learner: HashMap<i64, BTreeMap<String, String>> = HashMap::new();
        for p in passes {
            let key = format!("{}/{}", p.lesson, p.exercise);
            if known.contains(key.as_str()) {
                by_learner
                    .entry(p.learner)
                    .or_default()
                    .entry(key)
                    .or_insert(p.at);
            }
        }
        let now = unix_now();
        let mut counts: BTreeMap<String, usize> =
            columns.iter().map(|c| (c.key.clone(), 0)).collect();
        let rows: Vec<Row> = learners
            .iter()
            .map(|l| {
                let passes = by_learner.remove(&l.id).unwrap_or_default();
                for k in passes.keys() {
                    *counts.entry(k.clone()).or_default() += 1;
                }
                let stuck_on = columns
                    .iter()
                    .find(|c| !passes.contains_key(&c.key))
                    .map(|c| c.key.clone());
                let stuck_since = passes
                    .values()
                    .map(|at| unix_of(at))
                    .max()
                    .unwrap_or(0)
                    .max(l.joined_at);
                Row {
                    id: l.id,
                    name: display(l),
                    joined_at: l.joined_at,
                    passes,
                    stuck_on,
                    stuck_since,
                }
            })
            .collect();
        let mut stuck: Vec<(i64, String, i64)> = rows
            .iter()
            .filter_map(|r| {
                r.stuck_on
                    .clone()
                    .map(|k| (r.id, k, (now - r.stuck_since).max(0)))
            })
            .collect();
        stuck.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        Ok(Board {
            workshop: serde_json::json!({
                "id": w.id,
                "code": w.code,
                "title": w.title,
                "starts_at": super::rfc3339(w.starts_at),
                "ends_at": super::rfc3339(w.ends_at),
                "seats": w.seats,
            }),
            now,
            columns,
            rows,
            counts,
            stuck,
            last_result,
        })
    }
}

/// A CSV field, quoted when it must be.
fn csv_field(s: &str) -> String {
    // A leading = + - @ would be a formula in a spreadsheet.
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The board as CSV: a row per learner, the first pass time per exercise.
pub fn csv(board: &Board) -> String {
    let mut out = String::new();
    let mut head = vec!["learner".to_string(), "name".into(), "joined_at".into()];
    head.extend(board.columns.iter().map(|c| csv_field(&c.key)));
    head.extend(["passed".to_string(), "stuck_on".into()]);
    out.push_str(&head.join(","));
    out.push_str("\r\n");
    for r in &board.rows {
        let mut line = vec![
            r.id.to_string(),
            csv_field(&r.name),
            super::rfc3339(r.joined_at),
        ];
        line.extend(
            board
                .columns
                .iter()
                .map(|c| r.passes.get(&c.key).cloned().unwrap_or_default()),
        );
        line.push(r.passes.len().to_string());
        line.push(csv_field(r.stuck_on.as_deref().unwrap_or("")));
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

fn text(v: serde_json::Value) -> Message {
    Message::Text(v.to_string().into())
}

/// Serves one board viewer until it leaves or the workshop is deleted.
pub async fn serve(workshops: Arc<Workshops>, w: WorkshopRow, socket: WebSocket) {
    let (mut tx, mut rx) = socket.split();
    let live = workshops.live(w.id);
    // Subscribe before the snapshot, so nothing falls between.
    let mut results = workshops.classroom.store.results_changed();
    let mut joins = live.joins.subscribe();
    let mut deleted = live.deleted.subscribe();
    let Ok(board) = workshops.board(&w) else {
        return;
    };
    let mut last = board.last_result;
    let columns: HashSet<String> = board.columns.iter().map(|c| c.key.clone()).collect();
    let mut seen: HashSet<(i64, String)> = board
        .rows
        .iter()
        .flat_map(|r| r.passes.keys().map(move |k| (r.id, k.clone())))
        .collect();
    let mut learners: HashSet<i64> = board.rows.iter().map(|r| r.id).collect();
    let mut snapshot = serde_json::to_value(&board).unwrap_or_default();
    snapshot["type"] = "snapshot".into();
    if tx.send(text(snapshot)).await.is_err() {
        return;
    }
    let mut ping = tokio::time::interval(crate::terminal::socket::PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            changed = results.changed() => {
                if changed.is_err() { break; }
                let Ok(passes) = workshops.classroom.store.workshop_passes(w.id, last) else { continue };
                for Pass { result, learner, lesson, exercise, at } in passes {
                    last = last.max(result);
                    let key = format!("{lesson}/{exercise}");
                    if !columns.contains(&key) || !seen.insert((learner, key.clone())) {
                        continue;
                    }
                    let m = serde_json::json!({
                        "type": "pass", "learner": learner, "key": key, "at": at, "now": unix_now(),
                    });
                    if tx.send(text(m)).await.is_err() { return; }
                }
            }
            changed = joins.changed() => {
                if changed.is_err() { break; }
                let Ok(all) = workshops.classroom.store.workshop_learners(w.id) else { continue };
                for l in all {
                    if learners.insert(l.id) {
                        let m = serde_json::json!({
                            "type": "join",
                            "learner": { "id": l.id, "name": display(&l), "joined_at": l.joined_at },
                            "now": unix_now(),
                        });
                        if tx.send(text(m)).await.is_err() { return; }
                    }
                }
            }
            _ = deleted.changed() => {
                let _ = tx.send(text(serde_json::json!({"type": "deleted"}))).await;
                break;
            }
            _ = ping.tick() => {
                if tx.send(Message::Ping(Vec::new().into())).await.is_err() { return; }
            }
            msg = rx.next() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                Some(Ok(Message::Text(t))) if t.contains("\"ping\"") => {
                    if tx.send(text(serde_json::json!({"type": "pong"}))).await.is_err() { return; }
                }
                Some(Ok(_)) => {}
            }
        }
    }
    let _ = tx.send(Message::Close(None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_what_it_must_and_defuses_formulas() {
        assert_eq!(csv_field("Ada"), "Ada");
        assert_eq!(csv_field("Lovelace, Ada"), "\"Lovelace, Ada\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=cmd()"), "'=cmd()");
    }
}
