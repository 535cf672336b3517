//! A delivery log's counts over time: per minute and per hour, per event
//! type, how many deliveries were accepted, delivered, failed, retried and
//! held, how many attempts were made and succeeded, and their latency in a
//! fixed-bucket histogram.
//!
//! Counting adds no write of its own to the path of a delivery: the current
//! minute's counts live in the delivery log's state row, which every
//! operation writes anyway, and go to the `metrics` table once the minute
//! is over (one row per type for the minute, and the hour's row updated).
//! Minute rows are kept [`MINUTE_RETENTION_MS`] (48 hours), hour rows
//! [`HOUR_RETENTION_MS`] (30 days), so what a log holds here is bounded:
//! at most 2,880 + 720 rows per event type.
//!
//! Latency percentiles are estimated from the histogram, as Prometheus'
//! `histogram_quantile` does: linear within the bucket the rank falls in.

use super::message::{Fields, MessageError};
use super::sql::{Arg, Sql, StorageError};
use crate::json::{Value, Writer};

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const MINUTE_RETENTION_MS: i64 = 48 * HOUR_MS;
pub const HOUR_RETENTION_MS: i64 = 30 * 24 * HOUR_MS;

/// Upper bounds of the latency buckets, in ms; one more bucket holds the rest.
pub const LATENCY_BOUNDS_MS: [i64; 12] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000];
const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

pub const TABLES: [&str; 1] = ["CREATE TABLE IF NOT EXISTS metrics (span INTEGER NOT NULL, start INTEGER NOT NULL, type TEXT NOT NULL, \
     accepted INTEGER NOT NULL, delivered INTEGER NOT NULL, failed INTEGER NOT NULL, retried INTEGER NOT NULL, \
     held INTEGER NOT NULL, attempts INTEGER NOT NULL, succeeded INTEGER NOT NULL, latency TEXT NOT NULL, \
     latency_sum INTEGER NOT NULL, PRIMARY KEY (span, start, type)) WITHOUT ROWID"];

/// What happened to one event type's deliveries in a span of time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub accepted: u64,
    pub delivered: u64,
    /// Became dead letters (failed or gone).
    pub failed: u64,
    /// Attempts that failed and will be tried again.
    pub retried: u64,
    /// Deliveries put on hold (their app down or paused).
    pub held: u64,
    pub attempts: u64,
    /// Attempts answered with a 2xx.
    pub succeeded: u64,
    pub latency: [u64; BUCKETS],
    pub latency_sum_ms: u64,
}

impl Counters {
    pub fn observe_latency(&mut self, ms: i64) {
        let ms = ms.max(0);
        let bucket = LATENCY_BOUNDS_MS.iter().position(|b| ms <= *b).unwrap_or(BUCKETS - 1);
        self.latency[bucket] += 1;
        self.latency_sum_ms += ms as u64;
    }

    pub fn add(&mut self, other: &Counters) {
        self.accepted += other.accepted;
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.retried += other.retried;
        self.held += other.held;
        self.attempts += other.attempts;
        self.succeeded += other.succeeded;
        for (a, b) in self.latency.iter_mut().zip(other.latency) {
            *a += b;
        }
        self.latency_sum_ms += other.latency_sum_ms;
    }

    pub fn is_empty(&self) -> bool {
        *self == Counters::default()
    }

    /// The latency at quantile `q` (0 to 1), estimated from the buckets;
    /// `None` without attempts.
    pub fn latency_quantile(&self, q: f64) -> Option<i64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut seen = 0u64;
        for (i, n) in self.latency.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            if (seen + n) as f64 >= rank {
                let lower = if i == 0 { 0 } else { LATENCY_BOUNDS_MS[i - 1] };
                let Some(upper) = LATENCY_BOUNDS_MS.get(i) else { return Some(lower) };
                let within = (rank - seen as f64) / *n as f64;
                return Some(lower + ((upper - lower) as f64 * within).round() as i64);
            }
            seen += n;
        }
        LATENCY_BOUNDS_MS.last().copied()
    }

    fn latency_text(&self) -> String {
        let parts: Vec<String> = self.latency.iter().map(u64::to_string).collect();
        parts.join(",")
    }

    fn read_latency(&mut self, text: &str) {
        for (slot, part) in self.latency.iter_mut().zip(text.split(',')) {
            *slot = part.trim().parse().unwrap_or(0);
        }
    }

    /// As JSON, for the delivery log's state.
    pub fn encode(&self, out: &mut Writer) {
        out.int("a", self.accepted as i64)
            .int("d", self.delivered as i64)
            .int("f", self.failed as i64)
            .int("r", self.retried as i64)
            .int("h", self.held as i64)
            .int("n", self.attempts as i64)
            .int("s", self.succeeded as i64)
            .str("l", &self.latency_text())
            .int("ls", self.latency_sum_ms as i64);
    }

    pub(crate) fn decode(f: &Fields<'_, '_>) -> Result<Counters, MessageError> {
        let n = |name: &str| -> Result<u64, MessageError> { Ok(f.opt_int(name)?.unwrap_or(0).max(0) as u64) };
        let mut c = Counters {
            accepted: n("a")?,
            delivered: n("d")?,
            failed: n("f")?,
            retried: n("r")?,
            held: n("h")?,
            attempts: n("n")?,
            succeeded: n("s")?,
            latency: [0; BUCKETS],
            latency_sum_ms: n("ls")?,
        };
        c.read_latency(&f.opt_str("l")?.unwrap_or_default());
        Ok(c)
    }
}

/// The current minute's counts, per event type, as the state row keeps them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Minute {
    /// The minute's start (ms); 0 before anything was counted.
    pub start: i64,
    pub by_type: Vec<(String, Counters)>,
}

impl Minute {
    /// The counters of `event_type` in the minute of `now`; an earlier
    /// minute's counts must have been flushed first ([`Minute::due`]).
    pub fn at(&mut self, event_type: &str) -> &mut Counters {
        let i = match self.by_type.iter().position(|(t, _)| t == event_type) {
            Some(i) => i,
            None => {
                self.by_type.push((event_type.to_owned(), Counters::default()));
                self.by_type.len() - 1
            }
        };
        &mut self.by_type[i].1
    }

    /// Whether the counts belong to a minute before `now`'s.
    pub fn due(&self, now: i64) -> bool {
        self.start != minute_of(now)
    }

    /// Writes the counts of the minute that is over (if any) and starts
    /// `now`'s minute.
    pub fn flush(&mut self, sql: &impl Sql, now: i64) -> Result<(), StorageError> {
        if !self.due(now) {
            return Ok(());
        }
        for (event_type, counters) in &self.by_type {
            if counters.is_empty() {
                continue;
            }
            write(sql, MINUTE_MS, self.start, event_type, counters)?;
            let hour = self.start - self.start.rem_euclid(HOUR_MS);
            let mut total = read(sql, HOUR_MS, hour, event_type)?.unwrap_or_default();
            total.add(counters);
            write(sql, HOUR_MS, hour, event_type, &total)?;
        }
        self.start = minute_of(now);
        self.by_type.clear();
        Ok(())
    }

    pub fn encode(&self) -> String {
        let mut types = String::from("[");
        for (i, (t, c)) in self.by_type.iter().enumerate() {
            if i > 0 {
                types.push(',');
            }
            let mut w = Writer::object();
            w.str("type", t);
            c.encode(&mut w);
            types.push_str(&w.finish());
        }
        types.push(']');
        Writer::object().int("start", self.start).raw("types", &types).finish()
    }

    pub fn decode(value: &Value<'_>) -> Result<Minute, MessageError> {
        let f = Fields::parse("minute", value)?;
        let by_type = f.each("types", |t| Ok((t.str("type")?, Counters::decode(t)?)))?;
        Ok(Minute { start: f.opt_int("start")?.unwrap_or(0), by_type })
    }
}

pub fn minute_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(MINUTE_MS)
}

fn write(sql: &impl Sql, span: i64, start: i64, event_type: &str, c: &Counters) -> Result<(), StorageError> {
    let n = |v: u64| Arg::Int(v as i64);
    sql.execute(
        "INSERT INTO metrics (span, start, type, accepted, delivered, failed, retried, held, attempts, succeeded, latency, latency_sum) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (span, start, type) DO UPDATE SET accepted = excluded.accepted, \
         delivered = excluded.delivered, failed = excluded.failed, retried = excluded.retried, held = excluded.held, \
         attempts = excluded.attempts, succeeded = excluded.succeeded, latency = excluded.latency, latency_sum = excluded.latency_sum",
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
        ],
    )?;
    Ok(())
}

fn counters(row: &super::sql::Row, from: usize) -> Counters {
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

fn read(sql: &impl Sql, span: i64, start: i64, event_type: &str) -> Result<Option<Counters>, StorageError> {
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
}

/// The stored spans of `span_ms` starting in `[from, until)`, oldest first
/// (at most `limit`).
pub fn spans(sql: &impl Sql, span_ms: i64, from: i64, until: i64, limit: i64) -> Result<Vec<Span>, StorageError> {
    let rows = sql.query(
        "SELECT start, type, accepted, delivered, failed, retried, held, attempts, succeeded, latency, latency_sum FROM metrics \
         WHERE span = ? AND start >= ? AND start < ? ORDER BY start, type LIMIT ?",
        &[Arg::Int(span_ms), Arg::Int(from), Arg::Int(until), Arg::Int(limit)],
    )?;
    Ok(rows
        .into_iter()
        .map(|mut r| Span { span_ms, start: r.int0(0), event_type: r.take(1), counters: counters(&r, 2) })
        .collect())
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
    let minute = sql.number("SELECT MIN(start) FROM metrics WHERE span = ?", &[Arg::Int(MINUTE_MS)])?.map(|s| s + MINUTE_RETENTION_MS);
    let hour = sql.number("SELECT MIN(start) FROM metrics WHERE span = ?", &[Arg::Int(HOUR_MS)])?.map(|s| s + HOUR_RETENTION_MS);
    Ok(match (minute, hour) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    })
}

/// Forgets spans past their retention; answers how many rows went.
pub fn prune(sql: &impl Sql, now: i64) -> Result<u64, StorageError> {
    let minutes = sql.execute("DELETE FROM metrics WHERE span = ? AND start < ?", &[Arg::Int(MINUTE_MS), Arg::Int(now - MINUTE_RETENTION_MS)])?;
    let hours = sql.execute("DELETE FROM metrics WHERE span = ? AND start < ?", &[Arg::Int(HOUR_MS), Arg::Int(now - HOUR_RETENTION_MS)])?;
    Ok(minutes + hours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_its_bucket_and_quantiles_interpolate() {
        let mut c = Counters::default();
        assert_eq!(c.latency_quantile(0.5), None);
        for ms in [1, 3, 5] {
            c.observe_latency(ms);
        }
        assert_eq!(c.latency[0], 3, "5 ms and under");
        c.observe_latency(6);
        assert_eq!(c.latency[1], 1);
        c.observe_latency(1_000_000);
        assert_eq!(c.latency[BUCKETS - 1], 1, "the rest");
        let mut even = Counters::default();
        for _ in 0..100 {
            even.observe_latency(40);
        }
        // All in (25, 50]: the median is half way.
        assert_eq!(even.latency_quantile(0.5), Some(38));
        assert_eq!(even.latency_quantile(1.0), Some(50));
    }

    #[test]
    fn counters_roundtrip_through_the_state() {
        let mut m = Minute { start: 120_000, by_type: Vec::new() };
        m.at("conversation_push").attempts = 3;
        m.at("conversation_push").observe_latency(42);
        m.at("other").held = 1;
        let text = m.encode();
        let value = crate::json::parse(&text, &crate::json::Limits::INTERNAL).unwrap();
        assert_eq!(Minute::decode(&value).unwrap(), m);
    }
}
