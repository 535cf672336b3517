//! The circuit breaker of one destination: when its app is down, stop
//! sending, hold its deliveries, probe now and then, and catch up in order
//! once it is back.
//!
//! - **Trip.** The last `failures` attempts all failed, and not all of them
//!   were attempts of the same delivery. (A single event its app keeps
//!   refusing while every other event goes through is that event's problem,
//!   not the app's: it follows the retry schedule to a dead letter.)
//! - **Hold.** While tripped or paused, deliveries are held: not sent, no
//!   attempt used, never dead-lettered for the app being down.
//! - **Probe.** While tripped, one held delivery is tried every
//!   `probe_ms`, doubling after each failed probe up to `probe_max_ms`.
//! - **Catch up.** The first successful probe (or a resume by hand) makes
//!   the destination active again and drains its held deliveries in their
//!   original order, at most `drain_per_second` a second; new deliveries wait
//!   behind the backlog until it is empty.
//!
//! Pure state and transitions: the destination's Durable Object stores it
//! ([`Circuit::encode`]) and does what the transitions say.

use crate::json::{self, Limits, Value};

/// How the breaker behaves (the `CIRCUIT_*` and `DRAIN_PER_SECOND` settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Consecutive failed attempts (across more than one delivery) that trip it.
    pub failures: u32,
    /// First wait between probes.
    pub probe_ms: i64,
    /// Longest wait between probes.
    pub probe_max_ms: i64,
    /// Held deliveries sent per second while catching up.
    pub drain_per_second: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { failures: 5, probe_ms: 60_000, probe_max_ms: PROBE_MAX_MS, drain_per_second: 10 }
    }
}

/// The longest wait between two probes: 15 minutes.
pub const PROBE_MAX_MS: i64 = 15 * 60 * 1000;

/// A destination's state, as the admin API names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Active,
    /// Paused by hand: held until resumed.
    Paused,
    /// Its app is down: held, probed.
    Tripped,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Active => "active",
            Mode::Paused => "paused",
            Mode::Tripped => "tripped",
        }
    }

    fn from_str(s: &str) -> Option<Mode> {
        [Mode::Active, Mode::Paused, Mode::Tripped].into_iter().find(|m| m.as_str() == s)
    }
}

/// What changed, for the log and for the Durable Object to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    None,
    /// The app looks down: hold everything, probe at `next_probe_ms`.
    Tripped,
    /// Back to active: drain the backlog.
    Resumed,
    /// A probe failed: the next one waits longer.
    ProbeFailed,
}

/// One destination's breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Circuit {
    pub mode: Mode,
    /// When the mode last changed (ms), `None` if never.
    pub since_ms: Option<i64>,
    pub consecutive_failures: u32,
    /// The delivery of the first failure of the current run.
    first_failed: Option<String>,
    /// Whether the current run of failures spans more than one delivery.
    spans_deliveries: bool,
    /// The current wait between probes.
    pub probe_interval_ms: i64,
    /// When the next probe is due, while tripped.
    pub next_probe_ms: Option<i64>,
    /// The delivery being probed, if a probe is on its way.
    pub probing: Option<String>,
    /// Catching up: held deliveries are being sent in order.
    pub draining: bool,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    pub last_success_ms: Option<i64>,
}

impl Circuit {
    /// A new, active breaker.
    pub fn new(settings: &Settings) -> Circuit {
        Circuit {
            mode: Mode::Active,
            since_ms: None,
            consecutive_failures: 0,
            first_failed: None,
            spans_deliveries: false,
            probe_interval_ms: settings.probe_ms,
            next_probe_ms: None,
            probing: None,
            draining: false,
            last_error: None,
            last_error_ms: None,
            last_success_ms: None,
        }
    }

    /// Whether a delivery must be held instead of sent: while paused or
    /// tripped (but for the probe), and while catching up (new deliveries
    /// queue behind the backlog).
    pub fn holds(&self, delivery: &str) -> bool {
        match self.mode {
            Mode::Active => false,
            Mode::Paused => true,
            Mode::Tripped => self.probing.as_deref() != Some(delivery),
        }
    }

    /// Whether a new delivery goes behind the backlog rather than out at once.
    pub fn queues_behind(&self) -> bool {
        self.mode != Mode::Active || self.draining
    }

    /// An attempt of `delivery` succeeded (or the app answered, as 410 does).
    pub fn succeeded(&mut self, delivery: &str, now: i64, settings: &Settings) -> Change {
        self.consecutive_failures = 0;
        self.first_failed = None;
        self.spans_deliveries = false;
        self.last_success_ms = Some(now);
        let probe = self.probing.as_deref() == Some(delivery);
        if probe {
            self.probing = None;
        }
        if self.mode == Mode::Tripped {
            self.mode = Mode::Active;
            self.since_ms = Some(now);
            self.probe_interval_ms = settings.probe_ms;
            self.next_probe_ms = None;
            self.probing = None;
            self.draining = true;
            return Change::Resumed;
        }
        Change::None
    }

    /// An attempt of `delivery` failed with `error`.
    pub fn failed(&mut self, delivery: &str, error: &str, now: i64, settings: &Settings) -> Change {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        match &self.first_failed {
            None => self.first_failed = Some(delivery.to_owned()),
            Some(first) if first != delivery => self.spans_deliveries = true,
            Some(_) => {}
        }
        self.last_error = Some(error.to_owned());
        self.last_error_ms = Some(now);
        if self.mode == Mode::Tripped && self.probing.as_deref() == Some(delivery) {
            self.probing = None;
            self.probe_interval_ms = (self.probe_interval_ms * 2).min(settings.probe_max_ms);
            self.next_probe_ms = Some(now + self.probe_interval_ms);
            return Change::ProbeFailed;
        }
        if self.mode == Mode::Active && self.consecutive_failures >= settings.failures && self.spans_deliveries {
            self.mode = Mode::Tripped;
            self.since_ms = Some(now);
            self.draining = false;
            self.probe_interval_ms = settings.probe_ms;
            self.next_probe_ms = Some(now + settings.probe_ms);
            self.probing = None;
            return Change::Tripped;
        }
        Change::None
    }

    /// Whether a probe should start now.
    pub fn probe_due(&self, now: i64) -> bool {
        self.mode == Mode::Tripped && self.probing.is_none() && self.next_probe_ms.is_some_and(|t| t <= now)
    }

    /// A probe of `delivery` starts; if it never reports back, another one
    /// is due after the current interval.
    pub fn start_probe(&mut self, delivery: &str, now: i64) {
        self.probing = Some(delivery.to_owned());
        self.next_probe_ms = Some(now + self.probe_interval_ms);
    }

    /// A probe went missing (its attempt never settled): allow the next one.
    pub fn probe_lost(&mut self, now: i64, settings: &Settings) {
        if self.mode == Mode::Tripped && self.probing.is_some() && self.next_probe_ms.is_some_and(|t| t <= now) {
            self.probing = None;
            self.probe_interval_ms = (self.probe_interval_ms * 2).min(settings.probe_max_ms);
        }
    }

    /// Paused by hand.
    pub fn pause(&mut self, now: i64) {
        if self.mode != Mode::Paused {
            self.mode = Mode::Paused;
            self.since_ms = Some(now);
        }
        self.draining = false;
        self.next_probe_ms = None;
        self.probing = None;
    }

    /// Resumed by hand: active, catching up on what was held.
    pub fn resume(&mut self, now: i64, settings: &Settings) {
        if self.mode != Mode::Active {
            self.mode = Mode::Active;
            self.since_ms = Some(now);
        }
        self.consecutive_failures = 0;
        self.first_failed = None;
        self.spans_deliveries = false;
        self.probe_interval_ms = settings.probe_ms;
        self.next_probe_ms = None;
        self.probing = None;
        self.draining = true;
    }

    /// The backlog is empty: new deliveries go out at once again.
    pub fn drained(&mut self) {
        self.draining = false;
    }

    /// The breaker as JSON, for storage.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("{\"mode\":\"");
        out.push_str(self.mode.as_str());
        out.push('"');
        let opt_i64 = |out: &mut String, name: &str, v: Option<i64>| {
            if let Some(v) = v {
                out.push_str(&format!(",\"{name}\":{v}"));
            }
        };
        let opt_str = |out: &mut String, name: &str, v: &Option<String>| {
            if let Some(v) = v {
                out.push_str(&format!(",\"{name}\":"));
                json::write_str_escaped(out, v);
            }
        };
        opt_i64(&mut out, "since", self.since_ms);
        out.push_str(&format!(
            ",\"failures\":{},\"spans\":{},\"probeInterval\":{},\"draining\":{}",
            self.consecutive_failures, self.spans_deliveries, self.probe_interval_ms, self.draining
        ));
        opt_str(&mut out, "firstFailed", &self.first_failed);
        opt_i64(&mut out, "nextProbe", self.next_probe_ms);
        opt_str(&mut out, "probing", &self.probing);
        opt_str(&mut out, "lastError", &self.last_error);
        opt_i64(&mut out, "lastErrorAt", self.last_error_ms);
        opt_i64(&mut out, "lastSuccessAt", self.last_success_ms);
        out.push('}');
        out
    }

    /// Reads what [`Circuit::encode`] wrote; anything unreadable is a new breaker.
    pub fn decode(text: &str, settings: &Settings) -> Circuit {
        let mut c = Circuit::new(settings);
        let Ok(value) = json::parse(text, &Limits { max_bytes: usize::MAX, max_depth: 4 }) else { return c };
        let int = |name: &str| value.get(name).and_then(Value::as_integer).map(crate::legacy::integer_ms);
        let string = |name: &str| value.get(name).and_then(Value::as_str).map(|s| s.text().into_owned());
        c.mode = string("mode").as_deref().and_then(Mode::from_str).unwrap_or(Mode::Active);
        c.since_ms = int("since");
        c.consecutive_failures = int("failures").unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32;
        c.spans_deliveries = value.get("spans") == Some(&Value::Bool(true));
        c.probe_interval_ms = int("probeInterval").unwrap_or(settings.probe_ms).clamp(1, settings.probe_max_ms.max(1));
        c.draining = value.get("draining") == Some(&Value::Bool(true));
        c.first_failed = string("firstFailed");
        c.next_probe_ms = int("nextProbe");
        c.probing = string("probing");
        c.last_error = string("lastError");
        c.last_error_ms = int("lastErrorAt");
        c.last_success_ms = int("lastSuccessAt");
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Settings = Settings { failures: 5, probe_ms: 60_000, probe_max_ms: PROBE_MAX_MS, drain_per_second: 10 };

    #[test]
    fn trips_on_the_fifth_failure_across_deliveries() {
        let mut c = Circuit::new(&S);
        for (i, id) in ["a", "b", "a", "c"].iter().enumerate() {
            assert_eq!(c.failed(id, "the app answered 503", i as i64, &S), Change::None);
        }
        assert_eq!(c.failed("d", "the app answered 503", 10, &S), Change::Tripped);
        assert_eq!((c.mode, c.next_probe_ms, c.since_ms), (Mode::Tripped, Some(60_010), Some(10)));
        assert!(c.holds("a") && c.holds("z"));
        assert!(c.queues_behind());
    }

    #[test]
    fn one_delivery_failing_alone_never_trips() {
        let mut c = Circuit::new(&S);
        for i in 0..100 {
            assert_eq!(c.failed("stubborn", "the app answered 400", i, &S), Change::None);
        }
        assert_eq!(c.mode, Mode::Active);
        // Another delivery's success in between resets the run.
        let mut c = Circuit::new(&S);
        for i in 0..20 {
            c.failed(&format!("d{i}"), "x", i, &S);
            if i % 4 == 3 {
                c.succeeded("ok", i, &S);
            }
        }
        assert_eq!(c.mode, Mode::Active, "never 5 in a row");
    }

    #[test]
    fn probes_double_up_to_fifteen_minutes_and_a_success_resumes_with_a_drain() {
        let mut c = Circuit::new(&S);
        for i in 0..5 {
            c.failed(&format!("d{i}"), "down", 0, &S);
        }
        let mut waits = Vec::new();
        for _ in 0..7 {
            let now = c.next_probe_ms.unwrap();
            assert!(c.probe_due(now));
            c.start_probe("d0", now);
            assert!(!c.holds("d0") && c.holds("d1"), "only the probe goes");
            assert!(!c.probe_due(now), "one probe at a time");
            assert_eq!(c.failed("d0", "down", now, &S), Change::ProbeFailed);
            waits.push(c.next_probe_ms.unwrap() - now);
        }
        assert_eq!(waits, [120_000, 240_000, 480_000, 900_000, 900_000, 900_000, 900_000]);
        let now = c.next_probe_ms.unwrap();
        c.start_probe("d0", now);
        assert_eq!(c.succeeded("d0", now, &S), Change::Resumed);
        assert_eq!((c.mode, c.draining, c.probe_interval_ms, c.consecutive_failures), (Mode::Active, true, 60_000, 0));
        assert!(!c.holds("d5") && c.queues_behind(), "new deliveries wait behind the backlog");
        c.drained();
        assert!(!c.queues_behind());
    }

    #[test]
    fn pause_and_resume_by_hand() {
        let mut c = Circuit::new(&S);
        c.pause(5);
        assert_eq!((c.mode, c.since_ms), (Mode::Paused, Some(5)));
        assert!(c.holds("x"));
        for i in 0..10 {
            c.failed(&format!("d{i}"), "x", 6, &S);
        }
        assert_eq!(c.mode, Mode::Paused, "a paused destination does not trip");
        assert!(!c.probe_due(i64::MAX), "nor probe");
        c.resume(9, &S);
        assert_eq!((c.mode, c.draining, c.consecutive_failures), (Mode::Active, true, 0));
    }

    #[test]
    fn a_lost_probe_allows_the_next() {
        let mut c = Circuit::new(&S);
        for i in 0..5 {
            c.failed(&format!("d{i}"), "down", 0, &S);
        }
        c.start_probe("d0", 60_000);
        c.probe_lost(100_000, &S);
        assert_eq!(c.probing.as_deref(), Some("d0"), "not lost before its interval");
        c.probe_lost(120_000, &S);
        assert_eq!((c.probing.as_deref(), c.probe_interval_ms), (None, 120_000));
        assert!(c.probe_due(120_000));
    }

    #[test]
    fn roundtrips_through_storage() {
        let mut c = Circuit::new(&S);
        for i in 0..5 {
            c.failed(&format!("d\"{i}"), "the app answered 500: \"nope\"", 7, &S);
        }
        c.start_probe("d\"0", 60_007);
        c.succeeded("other", 8, &S);
        let mut d = Circuit::new(&S);
        d.failed("x", "y", 1, &S);
        for circuit in [Circuit::new(&S), c, d] {
            assert_eq!(Circuit::decode(&circuit.encode(), &S), circuit);
        }
        assert_eq!(Circuit::decode("garbage", &S), Circuit::new(&S));
    }
}
