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

use super::wire::{Fields, MessageError};
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
     latency_sum INTEGER NOT NULL, backlog INTEGER NOT NULL DEFAULT 0, backlog_last INTEGER NOT NULL DEFAULT 0, \
     PRIMARY KEY (span, start, type)) WITHOUT ROWID"];

/// The columns the metrics of drift-bridge before the backlog lack.
pub const ADD_BACKLOG: [&str; 2] = [
    "ALTER TABLE metrics ADD COLUMN backlog INTEGER NOT NULL DEFAULT 0",
    "ALTER TABLE metrics ADD COLUMN backlog_last INTEGER NOT NULL DEFAULT 0",
];

/// The span of the counts since the log began (start 0), for counters that
/// only grow (Prometheus'); kept for as long as the log.
pub const TOTAL: i64 = 0;
/// The type of the rows that hold the log's backlog: the most deliveries
/// waiting (pending and held) in the span, and how many waited at its end.
/// A span gets one when the backlog was seen in it and was, or had just
/// been, above zero; the backlog changes only with the log's operations,
/// which all record it, so between two rows it stayed at the first one's
/// end.
pub const BACKLOG_TYPE: &str = "*";
/// Pass-through event types (neither Drift's conversation types nor an
/// alert) a log counts on their own: past this many, the rest are counted
/// together as [`OTHER_TYPE`], so that a stream of new types adds no rows
/// and series without end.
pub const MAX_OWN_TYPES: usize = 16;
/// What the pass-through types past [`MAX_OWN_TYPES`] are counted as.
pub const OTHER_TYPE: &str = "(other)";

/// Whether `event_type` is always counted on its own: one of Drift's
/// conversation types, or an alert.
pub fn always_own(event_type: &str) -> bool {
    event_type == super::alerts::ALERT_TYPE || crate::event::EventType::ALL.iter().any(|t| t.name() == event_type)
}

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
        // As Prometheus' histogram_quantile: the rank is q × the count.
        let rank = q.clamp(0.0, 1.0) * total as f64;
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

    pub(crate) fn latency_text(&self) -> String {
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
    /// The most deliveries waiting (pending and held) seen in the minute,
    /// and how many at the last look; `None`: not looked at yet.
    pub backlog: Option<(i64, i64)>,
    /// How many waited at the end of the last span recorded.
    pub backlog_recorded: i64,
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
    /// `now`'s minute. Run before anything of `now` is counted, so that
    /// what is counted lands in its own minute.
    pub fn flush(&mut self, sql: &impl Sql, now: i64) -> Result<(), StorageError> {
        if !self.due(now) {
            return Ok(());
        }
        if self.start == 0 {
            // Nothing counted yet in any minute: what is there is now's.
            self.start = minute_of(now);
            return Ok(());
        }
        let hour = self.start - self.start.rem_euclid(HOUR_MS);
        for (event_type, counters) in &self.by_type {
            if counters.is_empty() {
                continue;
            }
            write(sql, MINUTE_MS, self.start, event_type, counters, (0, 0))?;
            for (span, start) in [(HOUR_MS, hour), (TOTAL, 0)] {
                let mut total = read(sql, span, start, event_type)?.unwrap_or_default();
                total.add(counters);
                write(sql, span, start, event_type, &total, (0, 0))?;
            }
        }
        if let Some((most, last)) = self.backlog.filter(|(most, _)| *most > 0 || self.backlog_recorded > 0) {
            if self.start > 0 {
                write(sql, MINUTE_MS, self.start, BACKLOG_TYPE, &Counters::default(), (most, last))?;
                let before = sql
                    .number("SELECT backlog FROM metrics WHERE span = ? AND start = ? AND type = ?", &[Arg::Int(HOUR_MS), Arg::Int(hour), Arg::Text(BACKLOG_TYPE)])?
                    .unwrap_or(0);
                write(sql, HOUR_MS, hour, BACKLOG_TYPE, &Counters::default(), (before.max(most), last))?;
            }
            self.backlog_recorded = last;
        }
        self.start = minute_of(now);
        self.by_type.clear();
        self.backlog = None;
        Ok(())
    }

    /// `waiting` deliveries (pending and held) were seen now.
    pub fn observe_backlog(&mut self, waiting: i64) {
        let most = self.backlog.map_or(waiting, |(m, _)| m.max(waiting));
        self.backlog = Some((most, waiting));
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
        let mut w = Writer::object();
        w.int("start", self.start).raw("types", &types);
        if let Some((most, last)) = self.backlog {
            w.raw("backlog", &format!("[{most},{last}]"));
        }
        if self.backlog_recorded > 0 {
            w.int("backlogRecorded", self.backlog_recorded);
        }
        w.finish()
    }

    pub fn decode(value: &Value<'_>) -> Result<Minute, MessageError> {
        let f = Fields::parse("minute", value)?;
        let by_type = f.each("types", |t| Ok((t.str("type")?, Counters::decode(t)?)))?;
        let backlog = match f.get("backlog") {
            Some(Value::Array(pair)) if pair.len() == 2 => {
                let n = |v: &Value<'_>| v.as_integer().and_then(|n| n.parse::<i64>().ok()).unwrap_or(0);
                Some((n(&pair[0]), n(&pair[1])))
            }
            _ => None,
        };
        Ok(Minute { start: f.opt_int("start")?.unwrap_or(0), by_type, backlog, backlog_recorded: f.opt_int("backlogRecorded")?.unwrap_or(0) })
    }
}

/// One span's counts as the admin API shows them: `{"start","type",
/// "accepted","delivered","failed","retried","held","attempts","succeeded",
/// "latencyBuckets":[…],"latencySumMs"}` (the buckets' upper bounds are
/// [`LATENCY_BOUNDS_MS`], and one more for the rest).
pub fn span_json(start: i64, event_type: &str, c: &Counters) -> String {
    Writer::object()
        .int("start", start)
        .str("type", event_type)
        .int("accepted", c.accepted as i64)
        .int("delivered", c.delivered as i64)
        .int("failed", c.failed as i64)
        .int("retried", c.retried as i64)
        .int("held", c.held as i64)
        .int("attempts", c.attempts as i64)
        .int("succeeded", c.succeeded as i64)
        .raw("latencyBuckets", &format!("[{}]", c.latency_text()))
        .int("latencySumMs", c.latency_sum_ms as i64)
        .finish()
}

/// Reads a span as [`span_json`] writes it.
pub fn read_span(value: &Value<'_>) -> Option<(i64, String, Counters)> {
    let int = |name: &str| value.get(name).and_then(Value::as_integer).and_then(|n| n.parse::<i64>().ok());
    let n = |name: &str| int(name).unwrap_or(0).max(0) as u64;
    let mut c = Counters {
        accepted: n("accepted"),
        delivered: n("delivered"),
        failed: n("failed"),
        retried: n("retried"),
        held: n("held"),
        attempts: n("attempts"),
        succeeded: n("succeeded"),
        latency: [0; BUCKETS],
        latency_sum_ms: n("latencySumMs"),
    };
    if let Some(Value::Array(buckets)) = value.get("latencyBuckets") {
        for (slot, b) in c.latency.iter_mut().zip(buckets) {
            *slot = b.as_integer().and_then(|t| t.parse().ok()).unwrap_or(0);
        }
    }
    Some((int("start")?, value.get("type")?.as_str()?.text().into_owned(), c))
}

/// One delivery log's figures for a scrape: its destination, its state, its
/// deliveries by status, its size, and its totals per type.
pub struct Scrape {
    pub destination: String,
    pub state: String,
    pub counts: Vec<(String, i64)>,
    pub bytes: i64,
    pub types: Vec<(String, Counters)>,
}

/// The Prometheus text exposition (version 0.0.4) of the delivery logs'
/// figures: counters with `_total`, the latency as a histogram in seconds
/// (`_bucket` with `le`, `_sum`, `_count`), gauges for what is held now.
pub fn prometheus(logs: &[Scrape]) -> String {
    let mut out = String::with_capacity(4096);
    let label = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    type Counter = (&'static str, &'static str, fn(&Counters) -> u64);
    let counters: [Counter; 7] = [
        ("drift_bridge_deliveries_accepted_total", "Deliveries taken in by the destination's delivery log.", |c| c.accepted),
        ("drift_bridge_deliveries_delivered_total", "Deliveries the app accepted (2xx).", |c| c.delivered),
        ("drift_bridge_deliveries_failed_total", "Deliveries that became dead letters (failed or gone).", |c| c.failed),
        ("drift_bridge_deliveries_retried_total", "Attempts that failed and are tried again.", |c| c.retried),
        ("drift_bridge_deliveries_held_total", "Deliveries put on hold (the app down or paused).", |c| c.held),
        ("drift_bridge_attempts_total", "Delivery attempts made.", |c| c.attempts),
        ("drift_bridge_attempts_succeeded_total", "Delivery attempts answered 2xx.", |c| c.succeeded),
    ];
    for (name, help, get) in counters {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        for log in logs {
            for (t, c) in &log.types {
                out.push_str(&format!("{name}{{destination=\"{}\",type=\"{}\"}} {}\n", label(&log.destination), label(t), get(c)));
            }
        }
    }
    let name = "drift_bridge_delivery_latency_seconds";
    out.push_str(&format!("# HELP {name} How long an attempt took, to the app's answer.\n# TYPE {name} histogram\n"));
    for log in logs {
        for (t, c) in &log.types {
            let labels = format!("destination=\"{}\",type=\"{}\"", label(&log.destination), label(t));
            let mut cumulative = 0u64;
            for (i, n) in c.latency.iter().enumerate() {
                cumulative += n;
                let le = match LATENCY_BOUNDS_MS.get(i) {
                    Some(ms) => seconds(*ms),
                    None => "+Inf".to_owned(),
                };
                out.push_str(&format!("{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}\n"));
            }
            out.push_str(&format!("{name}_sum{{{labels}}} {}\n", seconds(c.latency_sum_ms as i64)));
            out.push_str(&format!("{name}_count{{{labels}}} {cumulative}\n"));
        }
    }
    let name = "drift_bridge_deliveries";
    out.push_str(&format!("# HELP {name} Deliveries the destination's delivery log keeps now, by status.\n# TYPE {name} gauge\n"));
    for log in logs {
        for (status, n) in &log.counts {
            out.push_str(&format!("{name}{{destination=\"{}\",status=\"{}\"}} {n}\n", label(&log.destination), label(status)));
        }
    }
    let name = "drift_bridge_destination_state";
    out.push_str(&format!("# HELP {name} The destination's state: 1 for the one it is in.\n# TYPE {name} gauge\n"));
    for log in logs {
        for state in ["active", "paused", "tripped"] {
            out.push_str(&format!("{name}{{destination=\"{}\",state=\"{state}\"}} {}\n", label(&log.destination), u8::from(log.state == state)));
        }
    }
    let name = "drift_bridge_log_bytes";
    out.push_str(&format!("# HELP {name} What the destination's delivery log holds, against MAX_LOG_BYTES.\n# TYPE {name} gauge\n"));
    for log in logs {
        out.push_str(&format!("{name}{{destination=\"{}\"}} {}\n", label(&log.destination), log.bytes));
    }
    out
}

/// Milliseconds as seconds, exactly (`0.005`, `30`).
fn seconds(ms: i64) -> String {
    let (whole, part) = (ms / 1000, (ms % 1000).abs());
    if part == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{}", format!("{part:03}").trim_end_matches('0'))
    }
}

pub fn minute_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(MINUTE_MS)
}

fn write(sql: &impl Sql, span: i64, start: i64, event_type: &str, c: &Counters, backlog: (i64, i64)) -> Result<(), StorageError> {
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
    fn prometheus_exposition_is_cumulative_and_in_seconds() {
        let mut c = Counters { accepted: 3, delivered: 2, failed: 1, attempts: 3, succeeded: 2, ..Counters::default() };
        for ms in [4, 40, 40_000] {
            c.observe_latency(ms);
        }
        let text = prometheus(&[Scrape {
            destination: "crm \"x\"".into(),
            state: "tripped".into(),
            counts: vec![("held".into(), 4)],
            bytes: 900,
            types: vec![("conversation_push".into(), c)],
        }]);
        for line in [
            "# TYPE drift_bridge_deliveries_accepted_total counter",
            "drift_bridge_deliveries_accepted_total{destination=\"crm \\\"x\\\"\",type=\"conversation_push\"} 3",
            "drift_bridge_delivery_latency_seconds_bucket{destination=\"crm \\\"x\\\"\",type=\"conversation_push\",le=\"0.005\"} 1",
            "drift_bridge_delivery_latency_seconds_bucket{destination=\"crm \\\"x\\\"\",type=\"conversation_push\",le=\"0.05\"} 2",
            "drift_bridge_delivery_latency_seconds_bucket{destination=\"crm \\\"x\\\"\",type=\"conversation_push\",le=\"30\"} 2",
            "drift_bridge_delivery_latency_seconds_bucket{destination=\"crm \\\"x\\\"\",type=\"conversation_push\",le=\"+Inf\"} 3",
            "drift_bridge_delivery_latency_seconds_sum{destination=\"crm \\\"x\\\"\",type=\"conversation_push\"} 40.044",
            "drift_bridge_delivery_latency_seconds_count{destination=\"crm \\\"x\\\"\",type=\"conversation_push\"} 3",
            "drift_bridge_deliveries{destination=\"crm \\\"x\\\"\",status=\"held\"} 4",
            "drift_bridge_destination_state{destination=\"crm \\\"x\\\"\",state=\"tripped\"} 1",
            "drift_bridge_destination_state{destination=\"crm \\\"x\\\"\",state=\"active\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert_eq!(seconds(5), "0.005");
        assert_eq!(seconds(30_000), "30");
        assert_eq!(seconds(1250), "1.25");
    }

    #[test]
    fn counters_roundtrip_through_the_state() {
        let mut m = Minute { start: 120_000, by_type: Vec::new(), backlog: Some((7, 3)), backlog_recorded: 2 };
        m.at("conversation_push").attempts = 3;
        m.at("conversation_push").observe_latency(42);
        m.at("other").held = 1;
        let text = m.encode();
        let value = crate::json::parse(&text, &crate::json::Limits::INTERNAL).unwrap();
        assert_eq!(Minute::decode(&value).unwrap(), m);
    }
}
