//! The delivery log's tables, designed for what they cost: every row written
//! is billed, every index entry is a row, and every `setAlarm` too. A
//! delivery its app takes at once costs, over its whole life, one insert,
//! one update (delivered) and one delete, with no index entry, plus its
//! share of the state row (written by every step, and shared by the
//! deliveries that settle between two steps).
//!
//! - `deliveries`, keyed `(hour, event, replay)` ([`crate::delivery::key`]),
//!   no other index: the hour orders it by time, the event finds a delivery
//!   with one seek per hour searched.
//! - `waits`: the deliveries to be sent at a time (a retry, a turn of the
//!   app's rate, the requests already out), by that time. Only they pay for it.
//! - `held`: the deliveries held while the app is down or paused, in their
//!   original order, for the probes and the drain. Only they pay for it.
//! - `lines` and `heads`: for an app that takes a conversation's events in
//!   order, the deliveries waiting behind an earlier one, and the earlier
//!   ones not in flight. Only the deliveries that wait pay for them.
//! - `meta`: the state row; `metrics`: counts over time.
//!
//! Older layouts (drift-bridge 0.2, and the state machine's with a row id,
//! a unique id and a wake index) are moved into this one as the object
//! starts.

use super::super::key::{event_bits, hour_of};
use super::super::metrics;
use super::super::sql::{Arg, Sql, StorageError};

/// The current layout of the tables (kept in the state row).
pub const VERSION: i64 = 5;

/// What a delivery counts for against the log's size cap, beyond its body.
pub const ROW_OVERHEAD: i64 = 256;

const TABLES: [&str; 7] = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deliveries (hour INTEGER NOT NULL, event TEXT NOT NULL, replay INTEGER NOT NULL, \
     seq INTEGER NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, type TEXT NOT NULL, scope TEXT NOT NULL, \
     org TEXT, received_at INTEGER NOT NULL, accepted_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, wake_at INTEGER, \
     expires_at INTEGER, size INTEGER NOT NULL, body TEXT NOT NULL, history TEXT, last_error TEXT, reason TEXT, \
     replayed_as TEXT, PRIMARY KEY (hour, event, replay)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS waits (at INTEGER NOT NULL, hour INTEGER NOT NULL, event TEXT NOT NULL, \
     replay INTEGER NOT NULL, PRIMARY KEY (at, hour, event, replay)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS held (seq INTEGER PRIMARY KEY, hour INTEGER NOT NULL, event TEXT NOT NULL, replay INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lines (conversation TEXT NOT NULL, seq INTEGER NOT NULL, hour INTEGER NOT NULL, \
     event TEXT NOT NULL, replay INTEGER NOT NULL, PRIMARY KEY (conversation, seq)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS heads (conversation TEXT PRIMARY KEY, hour INTEGER NOT NULL, event TEXT NOT NULL, \
     replay INTEGER NOT NULL) WITHOUT ROWID",
    metrics::TABLES[0],
];

/// What the tables were found to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Already the current layout.
    Current,
    /// New, empty.
    Created,
    /// Moved from an older layout.
    Upgraded,
}

/// Creates the tables, or moves an older layout's rows into them. One
/// synchronous step (about a second per 100,000 deliveries), run as the
/// object starts, before anything reads them.
pub fn open(sql: &impl Sql, now: i64) -> Result<Found, StorageError> {
    let existing = sql
        .first("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'", &[])?
        .and_then(|r| r.text(0).map(str::to_owned));
    let found = match &existing {
        None => Found::Created,
        Some(text) if crate::text::contains(text, "WITHOUT ROWID") => Found::Current,
        Some(_) => Found::Upgraded,
    };
    if found == Found::Upgraded {
        sql.execute("ALTER TABLE deliveries RENAME TO deliveries_old", &[])?;
    }
    for statement in TABLES {
        sql.execute(statement, &[])?;
    }
    let metrics = sql.first("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'metrics'", &[])?;
    if let Some(text) = metrics.as_ref().and_then(|r| r.text(0)).map(str::to_owned) {
        for (column, statement) in [("backlog ", metrics::ADD_BACKLOG[0]), ("backlog_last", metrics::ADD_BACKLOG[1])] {
            if !crate::text::contains(&text, column) {
                sql.execute(statement, &[])?;
            }
        }
    }
    if found == Found::Upgraded {
        move_old(sql, existing.as_deref().unwrap_or(""), now)?;
    }
    Ok(found)
}

/// Moves the rows of an older layout (`old`, its CREATE statement) into the
/// current one: each row keyed by its hour and event, what was on its way
/// to be sent at once, what was held into `held` in its order; then the old
/// table and its indexes go.
fn move_old(sql: &impl Sql, old: &str, now: i64) -> Result<(), StorageError> {
    // Columns of drift-bridge 0.2 and of layout 3 that a layout may lack.
    for (column, statement) in [
        ("accepted_at", "ALTER TABLE deliveries_old ADD COLUMN accepted_at INTEGER"),
        ("wake_at", "ALTER TABLE deliveries_old ADD COLUMN wake_at INTEGER"),
        ("history", "ALTER TABLE deliveries_old ADD COLUMN history TEXT"),
        ("size", "ALTER TABLE deliveries_old ADD COLUMN size INTEGER"),
        (" org TEXT", "ALTER TABLE deliveries_old ADD COLUMN org TEXT"),
        ("expires_at", "ALTER TABLE deliveries_old ADD COLUMN expires_at INTEGER"),
    ] {
        if !crate::text::contains(old, column) {
            sql.execute(statement, &[])?;
        }
    }
    let attempts = sql.first("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'attempts'", &[])?;
    if attempts.is_some() {
        // drift-bridge 0.2 kept attempts in a table of their own.
        sql.execute(
            "UPDATE deliveries_old SET history = (SELECT group_concat(line, char(10)) FROM (SELECT json_object('n', a.n, 'at', a.at, \
             'code', a.code, 'error', a.error, 'ms', a.latency_ms, 'probe', a.probe = 1) AS line FROM attempts a \
             WHERE a.id = deliveries_old.id ORDER BY a.seq)) WHERE history IS NULL",
            &[],
        )?;
        sql.execute("DROP TABLE attempts", &[])?;
    }
    let mut seq = 0;
    let mut after = i64::MIN;
    loop {
        let page = sql.query(
            concat!("SELECT rowid, id, event_id, type, scope, body, status, attempts, created_at, updated_at, ",
                "accepted_at, wake_at, expires_at, size, history, last_error, reason, replayed_as, org ",
                "FROM deliveries_old WHERE rowid > ? ORDER BY rowid LIMIT 1000"),
            &[Arg::Int(after)],
        )?;
        let Some(last) = page.last() else { break };
        after = last.int0(0);
        for mut r in page {
            let id = r.take(1);
            let Some(event) = event_bits(r.text(2).unwrap_or("")) else { continue };
            let replay = crate::text::rfind(&id, ".r").and_then(|i| id[i + 2..].parse::<u32>().ok()).filter(|_| id.matches('.').count() == 2).unwrap_or(0);
            let created = r.int0(8);
            let accepted = r.int(10).unwrap_or(created);
            let status = r.text(6).unwrap_or("failed").to_owned();
            // Whatever was on its way goes again at once: no request is out.
            let live = matches!(status.as_str(), "queued" | "sending" | "retrying");
            let status = if live { "queued" } else { status.as_str() };
            let wake = if live { Some(now) } else { None };
            let body = r.take(5);
            let size = r.int(13).unwrap_or(body.len() as i64 + ROW_OVERHEAD);
            seq += 1;
            let hour = hour_of(accepted);
            sql.execute(
                "INSERT OR IGNORE INTO deliveries (hour, event, replay, seq, status, attempts, type, scope, org, received_at, accepted_at, \
                 updated_at, wake_at, expires_at, size, body, history, last_error, reason, replayed_as) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                &[
                    Arg::Int(hour),
                    Arg::Event(event),
                    Arg::Int(i64::from(replay)),
                    Arg::Int(seq),
                    Arg::Text(status),
                    Arg::Int(r.int0(7)),
                    Arg::Text(r.text(3).unwrap_or("")),
                    Arg::Text(r.text(4).unwrap_or("")),
                    Arg::from(r.text(18)),
                    Arg::Int(created),
                    Arg::Int(accepted),
                    Arg::Int(r.int0(9)),
                    Arg::from(wake),
                    Arg::from(r.int(12).or(if live || status == "held" { None } else { r.int(11) })),
                    Arg::Int(size),
                    Arg::Text(&body),
                    Arg::from(r.text(14)),
                    Arg::from(r.text(15)),
                    Arg::from(r.text(16)),
                    Arg::from(r.text(17)),
                ],
            )?;
            let key = [Arg::Int(hour), Arg::Event(event), Arg::Int(i64::from(replay))];
            if live {
                sql.execute("INSERT OR IGNORE INTO waits (at, hour, event, replay) VALUES (?, ?, ?, ?)", &[Arg::Int(now), key[0], key[1], key[2]])?;
            } else if status == "held" {
                sql.execute("INSERT INTO held (seq, hour, event, replay) VALUES (?, ?, ?, ?)", &[Arg::Int(seq), key[0], key[1], key[2]])?;
            }
        }
    }
    // Its indexes go with it.
    sql.execute("DROP TABLE deliveries_old", &[])?;
    Ok(())
}
