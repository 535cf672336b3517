//! A delivery's row: reading it (by its key, or by its event across the
//! hours a search covers), and the columns every step needs.

use super::super::key::{hour_of, Key};
use super::super::sql::{Arg, Row as SqlRow, Sql, StorageError};
use super::super::status::Status;

/// The columns of [`Row`], in its order.
macro_rules! row_columns {
    () => {
        "hour, event, replay, seq, status, attempts, type, scope, org, received_at, accepted_at, updated_at, wake_at, \
         expires_at, size, last_error, reason, replayed_as"
    };
}
pub(crate) use row_columns;

/// The hours from `?1` down to `?2`, as the table `h(x)`: a lookup joins it
/// to seek each hour's rows, newest hour first.
macro_rules! hours_down {
    () => {
        "WITH RECURSIVE h(x) AS (SELECT ?1 UNION ALL SELECT x - 1 FROM h WHERE x > ?2) "
    };
}

/// [`row_columns`] of the table named `d`, for a statement that joins it
/// with a side table whose columns have the same names.
macro_rules! d_row_columns {
    () => {
        "d.hour, d.event, d.replay, d.seq, d.status, d.attempts, d.type, d.scope, d.org, d.received_at, d.accepted_at, d.updated_at, \
         d.wake_at, d.expires_at, d.size, d.last_error, d.reason, d.replayed_as"
    };
}
pub(crate) use d_row_columns;

/// One delivery's row, without its body and history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub key: Key,
    pub seq: i64,
    pub status: Status,
    pub attempts: u32,
    pub event_type: String,
    pub scope: String,
    pub org: Option<String>,
    pub received_at: i64,
    pub accepted_at: i64,
    pub updated_at: i64,
    /// When it is looked at again (while it waits in `waits`).
    pub wake_at: Option<i64>,
    pub expires_at: Option<i64>,
    pub size: i64,
    pub last_error: Option<String>,
    pub reason: Option<String>,
    pub replayed_as: Option<String>,
}

impl Row {
    /// Reads a row of [`row_columns`] (a status it does not know is read as
    /// failed: never sent again).
    pub fn from_sql(mut r: SqlRow) -> Row {
        let replay = r.int0(2).clamp(0, i64::from(u32::MAX)) as u32;
        Row {
            key: Key { hour: r.int0(0), event: r.event(1), replay },
            seq: r.int0(3),
            status: r.text(4).and_then(Status::from_sql).unwrap_or(Status::Failed),
            attempts: r.int0(5).clamp(0, i64::from(u32::MAX)) as u32,
            event_type: r.take(6),
            scope: r.take(7),
            org: r.take_opt(8),
            received_at: r.int0(9),
            accepted_at: r.int0(10),
            updated_at: r.int0(11),
            wake_at: r.int(12),
            expires_at: r.int(13),
            size: r.int0(14),
            last_error: r.take_opt(15),
            reason: r.take_opt(16),
            replayed_as: r.take_opt(17),
        }
    }

    /// The row of `key`.
    pub fn load(sql: &impl Sql, key: Key) -> Result<Option<Row>, StorageError> {
        Ok(sql
            .first(concat!("SELECT ", row_columns!(), " FROM deliveries WHERE hour = ? AND event = ? AND replay = ?"), &key_args(key))?
            .map(Row::from_sql))
    }

    /// The row of `key` with its body and its history of attempts.
    pub fn load_full(sql: &impl Sql, key: Key) -> Result<Option<(Row, String, Option<String>)>, StorageError> {
        let row = sql.first(
            concat!("SELECT ", row_columns!(), ", body, history FROM deliveries WHERE hour = ? AND event = ? AND replay = ?"),
            &key_args(key),
        )?;
        Ok(row.map(|mut r| {
            let history = r.take_opt(19);
            let (row, body) = Row::with_body(r);
            (row, body, history)
        }))
    }

    /// Reads a row of [`row_columns`] followed by its body.
    pub fn with_body(mut r: SqlRow) -> (Row, String) {
        let body = r.take(18);
        (Row::from_sql(r), body)
    }

    /// The newest row of `event` (its `replay`) taken in between the hours
    /// `from` and `to`: one seek per hour, newest first.
    pub fn find(sql: &impl Sql, event: i64, replay: u32, from: i64, to: i64) -> Result<Option<Row>, StorageError> {
        Ok(sql
            .first(
                concat!(
                    hours_down!(),
                    "SELECT ",
                    row_columns!(),
                    " FROM h JOIN deliveries d ON d.hour = h.x AND d.event = ?3 AND d.replay = ?4 ORDER BY h.x DESC LIMIT 1"
                ),
                &[Arg::Int(to), Arg::Int(from), Arg::Event(event), Arg::Int(i64::from(replay))],
            )?
            .map(Row::from_sql))
    }

    /// The newest row of `event` (of any replay) taken in between the hours
    /// `from` and `to`: one seek per hour, newest first.
    pub fn latest(sql: &impl Sql, event: i64, from: i64, to: i64) -> Result<Option<Row>, StorageError> {
        Ok(sql
            .first(
                concat!(
                    hours_down!(),
                    "SELECT ",
                    row_columns!(),
                    " FROM h JOIN deliveries d ON d.hour = h.x AND d.event = ?3 ORDER BY h.x DESC, d.accepted_at DESC LIMIT 1"
                ),
                &[Arg::Int(to), Arg::Int(from), Arg::Event(event)],
            )?
            .map(Row::from_sql))
    }

    /// Its conversation, from its scope.
    pub fn conversation(&self) -> Option<&str> {
        super::input::conversation_of(&self.scope)
    }
}

/// The hours a search for a delivery taken in since `since` covers, up to `now`.
pub fn hours_since(since: i64, now: i64) -> (i64, i64) {
    (hour_of(since), hour_of(now))
}

/// `hour, event, replay` of `key`, as bound arguments.
pub fn key_args(key: Key) -> [Arg<'static>; 3] {
    [Arg::Int(key.hour), Arg::Event(key.event), Arg::Int(i64::from(key.replay))]
}

/// A delivery's history with one more attempt (one JSON object a line),
/// keeping at most [`super::HISTORY_MAX`] lines: the oldest probes go first,
/// then the oldest attempts.
pub fn appended(history: Option<&str>, line: &str) -> String {
    let mut lines: Vec<&str> = history.map(|h| h.split('\n').filter(|l| !l.is_empty()).collect()).unwrap_or_default();
    lines.push(line);
    while lines.len() > super::HISTORY_MAX {
        let drop = lines.iter().position(|l| crate::text::contains(l, "\"probe\":true")).unwrap_or(0);
        lines.remove(drop);
    }
    lines.join("\n")
}
