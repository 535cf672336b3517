//! The counts of a span of time ([`Counters`]), the current minute's as the
//! state row keeps them ([`Minute`]), and their JSON.

use super::table::{read, write};
use super::{BACKLOG_TYPE, BUCKETS, HOUR_MS, LATENCY_BOUNDS_MS, MINUTE_MS, TOTAL};
use crate::delivery::sql::{Arg, Sql, StorageError};
use crate::delivery::wire::{Fields, MessageError};
use crate::json::{Value, Writer};

/// Whether `event_type` is always counted on its own: one of Drift's
/// conversation types, or an alert.
pub fn always_own(event_type: &str) -> bool {
    event_type == crate::delivery::alerts::ALERT_TYPE || crate::event::EventType::ALL.iter().any(|t| t.name() == event_type)
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

    pub(super) fn read_latency(&mut self, text: &str) {
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

pub fn minute_of(ms: i64) -> i64 {
    ms - ms.rem_euclid(MINUTE_MS)
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
        let mut m = Minute { start: 120_000, by_type: Vec::new(), backlog: Some((7, 3)), backlog_recorded: 2 };
        m.at("conversation_push").attempts = 3;
        m.at("conversation_push").observe_latency(42);
        m.at("other").held = 1;
        let text = m.encode();
        let value = crate::json::parse(&text, &crate::json::Limits::INTERNAL).unwrap();
        assert_eq!(Minute::decode(&value).unwrap(), m);
    }
}
