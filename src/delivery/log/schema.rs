//! The delivery log's tables, and the move from the tables of drift-bridge
//! before the state machine.
//!
//! One row per delivery, with everything about it: its body (as the outbox
//! forwarded it), its status, its attempts (`history`, one JSON object a
//! line) and `wake_at`, when the alarm must next look at it (a retry's or a
//! lost message's deadline, the end of a hold, the end of its retention).
//! The indexes are the ones the operations read by, and no more, since each
//! costs a write on every insert: `id` (the queue's references and
//! deduplication), `wake_at` (the alarm), `conversation` (the admin's
//! filter), and two partial ones that only held deliveries and dead letters
//! pay for (the drain and probes, the dead letters' listing and recovery).

use super::super::metrics;
use super::super::sql::{Arg, Sql, StorageError};

/// The current layout of the tables (kept in the state row).
pub const VERSION: i64 = 4;

const TABLES: [&str; 7] = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS deliveries (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, event_id TEXT NOT NULL, \
     type TEXT NOT NULL, scope TEXT NOT NULL, conversation TEXT, body TEXT NOT NULL, status TEXT NOT NULL, \
     generation INTEGER NOT NULL DEFAULT 1, attempts INTEGER NOT NULL DEFAULT 0, probe INTEGER NOT NULL DEFAULT 0, \
     created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, due_at INTEGER, expires_at INTEGER, last_error TEXT, \
     reason TEXT, replayed_as TEXT, accepted_at INTEGER, wake_at INTEGER, lease_until INTEGER, history TEXT, size INTEGER, org TEXT)",
    "CREATE INDEX IF NOT EXISTS deliveries_wake ON deliveries (wake_at)",
    "CREATE INDEX IF NOT EXISTS deliveries_held ON deliveries (seq) WHERE status = 'held'",
    "CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries (seq) WHERE status IN ('failed', 'gone')",
    "CREATE INDEX IF NOT EXISTS deliveries_conversation ON deliveries (conversation) WHERE conversation IS NOT NULL",
    metrics::TABLES[0],
];

/// Columns the tables of drift-bridge 0.2 lack.
const ADDED_COLUMNS: [&str; 5] = [
    "ALTER TABLE deliveries ADD COLUMN accepted_at INTEGER",
    "ALTER TABLE deliveries ADD COLUMN wake_at INTEGER",
    "ALTER TABLE deliveries ADD COLUMN lease_until INTEGER",
    "ALTER TABLE deliveries ADD COLUMN history TEXT",
    "ALTER TABLE deliveries ADD COLUMN size INTEGER",
];

/// Indexes of drift-bridge 0.2 that nothing reads by any more.
const DROPPED_INDEXES: [&str; 5] = [
    "DROP INDEX IF EXISTS deliveries_due",
    "DROP INDEX IF EXISTS deliveries_expiry",
    "DROP INDEX IF EXISTS deliveries_log",
    "DROP INDEX IF EXISTS deliveries_status",
    "DROP INDEX IF EXISTS deliveries_event",
];

/// What a delivery counts for against the log's size cap, beyond its body.
pub const ROW_OVERHEAD: i64 = 256;

/// What the tables were found to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// Already the current layout.
    Current,
    /// New, empty.
    Created,
    /// Moved from drift-bridge 0.2's layout.
    Upgraded,
}

/// Creates the tables, or brings those of drift-bridge 0.2 to the current
/// layout: new columns filled in from the old ones, attempts moved into
/// each delivery's history, old indexes dropped. One synchronous step (in
/// C, per row: about a second per 100,000 deliveries); run before anything
/// reads them.
pub fn open(sql: &impl Sql, now: i64, hold_retention_ms: i64) -> Result<Found, StorageError> {
    let existing = sql
        .first("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'", &[])?
        .and_then(|r| r.text(0).map(str::to_owned));
    let found = match &existing {
        None => Found::Created,
        Some(text) if text.contains("wake_at") => Found::Current,
        Some(_) => Found::Upgraded,
    };
    if found == Found::Upgraded {
        for statement in ADDED_COLUMNS {
            sql.execute(statement, &[])?;
        }
        for statement in DROPPED_INDEXES {
            sql.execute(statement, &[])?;
        }
        sql.execute(
            "UPDATE deliveries SET accepted_at = created_at, size = length(body) + ?, wake_at = CASE \
             WHEN status IN ('queued', 'sending', 'retrying') THEN COALESCE(due_at, ?) \
             WHEN status = 'held' THEN created_at + ? ELSE COALESCE(expires_at, ?) END, due_at = NULL",
            &[Arg::Int(ROW_OVERHEAD), Arg::Int(now), Arg::Int(hold_retention_ms), Arg::Int(now)],
        )?;
        let attempts = sql.first("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'attempts'", &[])?;
        if attempts.is_some() {
            sql.execute(
                "UPDATE deliveries SET history = (SELECT group_concat(line, char(10)) FROM (SELECT json_object('n', a.n, 'at', a.at, \
                 'code', a.code, 'error', a.error, 'ms', a.latency_ms, 'probe', a.probe = 1) AS line FROM attempts a \
                 WHERE a.id = deliveries.id ORDER BY a.seq))",
                &[],
            )?;
            sql.execute("DROP TABLE attempts", &[])?;
        }
    }
    for statement in TABLES {
        sql.execute(statement, &[])?;
    }
    // Each delivery's organisation (layout 4): whether it still fits its
    // app is decided when it is sent.
    if existing.as_deref().is_some_and(|text| !text.contains(" org TEXT")) {
        sql.execute("ALTER TABLE deliveries ADD COLUMN org TEXT", &[])?;
    }
    let metrics = sql.first("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'metrics'", &[])?;
    if let Some(text) = metrics.as_ref().and_then(|r| r.text(0)).map(str::to_owned) {
        for (column, statement) in [("backlog ", metrics::ADD_BACKLOG[0]), ("backlog_last", metrics::ADD_BACKLOG[1])] {
            if !text.contains(column) {
                sql.execute(statement, &[])?;
            }
        }
    }
    Ok(found)
}
