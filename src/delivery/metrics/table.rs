//! The `metrics` table: the spans of counts a delivery log keeps (minutes,
//! hours and the totals), read, summed and pruned.

use super::{Counters, Minute, BACKLOG_TYPE, BUCKETS, HOUR_MS, HOUR_RETENTION_MS, MINUTE_MS, MINUTE_RETENTION_MS, TOTAL};
use crate::delivery::sql::{Arg, Row, Sql, StorageError};

pub const TABLES: [&str; 1] = ["CREATE TABLE IF NOT EXISTS metrics (span INTEGER NOT NULL, start INTEGER NOT NULL, type TEXT NOT NULL, \
     accepted INTEGER NOT NULL, delivered INTEGER NOT NULL, failed INTEGER NOT NULL, retried INTEGER NOT NULL, \
     held INTEGER NOT NULL, attempts INTEGER NOT NULL, succeeded INTEGER NOT NULL, latency TEXT NOT NULL, \
     latency_sum INTEGER NOT NULL, backlog INTEGER NOT NULL DEFAULT 0, backlog_last INTEGER NOT NULL DEFAULT 0, \
     PRIMARY KEY (span, start, type)) WITHOUT ROWID"];

/// The columns the metrics of drift-bridge before the backlog lack.
pub const ADD_BACKLOG: [&str; 2] = [
    "ALTER TABLE metrics ADD COLUMN backlog INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE metrics ADD COLUMN backlog_last INTEGER NOT NULL DEFAULT 0",
];

pub(super) fn write(sql: &impl Sql, span: i64, start: i64, event_type: &str, c: &Counters, backlog: (i64, i64)) -> Result<(), StorageError> {
    let n = |v: u64| Arg::Int(v as i64);
    sql.execute(
        "INSERT INTO metrics (span, start, type, accepted, delivered, failed, retried, held, attempts, succeeded, latency, latency_sum, \
         backlog, backlog_last) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (span, start, type) DO UPDATE SET accepted = excluded.accepted, \
         delivered = excluded.delivered, failed = excluded.failed, retried = excluded.retried, held = excluded.held, \
         attempts = excluded.attempts, succeeded = excluded.succeeded, latency = excluded.latency, latency_sum = excluded.latency_sum, \
         backlog = excluded.backlog, backlog_last = excluded.backlog_last",
        &[
            Arg::Int(span),
            Arg::Int(start),
            Arg::Text(event_type),
            n(c.accepted),
            n(c.delivered),
            n(c.failed),
            n(c.retried),
            n(c.held),
            n(c.attempts),
            n(c.succeeded),
            Arg::Text(&c.latency_text()),
            n(c.latency_sum_ms),
            Arg::Int(backlog.0),
            Arg::Int(backlog.1),
        ],
    )?;
    Ok(())
}

fn counters(row: &Row, from: usize) -> Counters {
    let n = |i: usize| row.int0(from + i).max(0) as u64;
    let mut c = Counters {
        accepted: n(0),
        delivered: n(1),
        failed: n(2),
        retried: n(3),
        held: n(4),
        attempts: n(5),
        succeeded: n(6),
        latency: [0; BUCKETS],
        latency_sum_ms: n(8),
    };
    c.read_latency(row.text(from + 7).unwrap_or(""));
    c
}

pub(super) fn read(sql: &impl Sql, span: i64, start: i64, event_type: &str) -> Result<Option<Counters>, StorageError> {
    Ok(sql
        .first(
            "SELECT accepted, delivered, failed, retried, held, attempts, succeeded, latency, latency_sum FROM metrics \
             WHERE span = ? AND start = ? AND type = ?",
            &[Arg::Int(span), Arg::Int(start), Arg::Text(event_type)],
        )?
        .map(|r| counters(&r, 0)))
}

/// One stored span of counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Span {
    pub span_ms: i64,
    pub start: i64,
    pub event_type: String,
    pub counters: Counters,
    /// The most deliveries waiting in the span, and how many at its end
    /// (rows of [`BACKLOG_TYPE`]).
    pub backlog: (i64, i64),
}

/// The stored spans of `span_ms` starting in `[from, until)`, oldest first
/// (at most `limit`).
pub fn spans(sql: &impl Sql, span_ms: i64, from: i64, until: i64, limit: i64) -> Result<Vec<Span>, StorageError> {
    let rows = sql.query(
        "SELECT start, type, accepted, delivered, failed, retried, held, attempts, succeeded, latency, latency_sum, backlog, backlog_last FROM metrics \
         WHERE span = ? AND start >= ? AND start < ? ORDER BY start, type LIMIT ?",
        &[Arg::Int(span_ms), Arg::Int(from), Arg::Int(until), Arg::Int(limit)],
    )?;
    Ok(rows
        .into_iter()
        .map(|mut r| Span { span_ms, start: r.int0(0), event_type: r.take(1), counters: counters(&r, 2), backlog: (r.int0(11), r.int0(12)) })
        .collect())
}

/// How many deliveries waited at the end of the last span of `span_ms`
/// recorded before `before` (0 if none): the backlog from then on, until
/// the next record.
pub fn backlog_before(sql: &impl Sql, span_ms: i64, before: i64) -> Result<i64, StorageError> {
    Ok(sql
        .number(
            "SELECT backlog_last FROM metrics WHERE span = ? AND type = ? AND start < ? ORDER BY start DESC LIMIT 1",
            &[Arg::Int(span_ms), Arg::Text(BACKLOG_TYPE), Arg::Int(before)],
        )?
        .unwrap_or(0))
}

/// The counts since the log began, per type: the stored totals and the
/// current minute's.
pub fn totals(sql: &impl Sql, minute: &Minute) -> Result<Vec<(String, Counters)>, StorageError> {
    let mut out: Vec<(String, Counters)> = spans(sql, TOTAL, 0, 1, 10_000)?
        .into_iter()
        .filter(|s| s.event_type != BACKLOG_TYPE)
        .map(|s| (s.event_type, s.counters))
        .collect();
    for (t, c) in &minute.by_type {
        match out.iter_mut().find(|(u, _)| u == t) {
            Some((_, total)) => total.add(c),
            None => out.push((t.clone(), c.clone())),
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// All types' counts since `since`: stored spans of `span_ms` (the minutes
/// for the last hour, the hours for the last day) and the current minute.
pub fn total_since(sql: &impl Sql, minute: &Minute, span_ms: i64, since: i64, now: i64) -> Result<Counters, StorageError> {
    let from = since - since.rem_euclid(span_ms);
    let mut total = Counters::default();
    for s in spans(sql, span_ms, from, now + 1, 10_000)? {
        total.add(&s.counters);
    }
    // The current minute is in no stored span yet.
    if minute.start >= since {
        for (_, c) in &minute.by_type {
            total.add(c);
        }
    }
    Ok(total)
}

/// When the first stored span's retention ends, if any is stored.
pub fn next_expiry(sql: &impl Sql) -> Result<Option<i64>, StorageError> {
    // The totals (span 0) stay for as long as the log.
    let minute = sql.number("SELECT MIN(start) FROM metrics WHERE span = ?", &[Arg::Int(MINUTE_MS)])?.map(|s| s + MINUTE_RETENTION_MS);
    let hour = sql.number("SELECT MIN(start) FROM metrics WHERE span = ?", &[Arg::Int(HOUR_MS)])?.map(|s| s + HOUR_RETENTION_MS);
    Ok(match (minute, hour) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// Forgets spans past their retention; answers how many rows went. The
/// totals go with the last of them: a log that has counted nothing for 30
/// days starts its counters again (Prometheus reads that as a reset).
pub fn prune(sql: &impl Sql, now: i64) -> Result<u64, StorageError> {
    let minutes = sql.execute("DELETE FROM metrics WHERE span = ? AND start < ?", &[Arg::Int(MINUTE_MS), Arg::Int(now - MINUTE_RETENTION_MS)])?;
    let hours = sql.execute("DELETE FROM metrics WHERE span = ? AND start < ?", &[Arg::Int(HOUR_MS), Arg::Int(now - HOUR_RETENTION_MS)])?;
    let totals = if sql.first("SELECT 1 FROM metrics WHERE span = ? LIMIT 1", &[Arg::Int(HOUR_MS)])?.is_none() {
        sql.execute("DELETE FROM metrics WHERE span = ?", &[Arg::Int(TOTAL)])?
    } else {
        0
    };
    Ok(minutes + hours + totals)
}
