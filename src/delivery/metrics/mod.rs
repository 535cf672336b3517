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
//!
//! `counters.rs` holds the counts and the current minute's; `table.rs` the
//! `metrics` table they go to; `prometheus.rs` the scrape's text.

mod counters;
mod prometheus;
mod table;

pub use self::counters::*;
pub use self::prometheus::*;
pub use self::table::*;

pub const MINUTE_MS: i64 = 60_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const MINUTE_RETENTION_MS: i64 = 48 * HOUR_MS;
pub const HOUR_RETENTION_MS: i64 = 30 * 24 * HOUR_MS;

/// Upper bounds of the latency buckets, in ms; one more bucket holds the rest.
pub const LATENCY_BOUNDS_MS: [i64; 12] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000];
const BUCKETS: usize = LATENCY_BOUNDS_MS.len() + 1;

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
