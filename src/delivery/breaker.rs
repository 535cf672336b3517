//! The circuit breaker of one destination: it judges the app, not one
//! event. When the app is down its deliveries are held, one is probed now
//! and then, and once the app answers the backlog drains.
//!
//! - **What counts against the app.** No answer (a network error or the
//!   deadline), a redirect, `408`, `429` and `5xx`. Any other answer, a
//!   `4xx` included, says the app is up: a refused event is that event's
//!   problem, and follows its own retry schedule to a dead letter without
//!   holding the app's other deliveries.
//! - **Trip.** The last `failures` attempts all counted against the app, and
//!   not all of them were attempts of the same delivery.
//! - **Hold.** While tripped or paused, deliveries are held: not sent, no
//!   attempt used, never dead-lettered for the app being down (only the hold
//!   retention ends a hold).
//! - **Probe.** While tripped, one held delivery is tried every
//!   `probe_ms`, doubling after each failed probe up to `probe_max_ms`. Each
//!   probe takes the next held delivery after the last one probed, so a
//!   delivery the app keeps refusing never pins the probes.
//! - **Back.** Any answer (a probe's, or a late one of an attempt made before
//!   the trip) makes the destination active again; the delivery log then
//!   drains what was held ([`super::log`]).
//!
//! Pure state and transitions; the delivery log stores it with its state.

use super::wire::{Fields, MessageError};
use crate::json::{Value, Writer};

/// How the breaker behaves (the `CIRCUIT_*` and `DRAIN_PER_SECOND` settings).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CircuitSettings {
    /// Consecutive failed attempts (across more than one delivery) that trip it.
    pub failures: u32,
    /// First wait between probes.
    pub probe_ms: i64,
    /// Longest wait between probes.
    pub probe_max_ms: i64,
    /// Held deliveries released per second while a backlog drains.
    pub drain_per_second: u32,
}

impl Default for CircuitSettings {
    fn default() -> Self {
        CircuitSettings { failures: 5, probe_ms: 60_000, probe_max_ms: PROBE_MAX_MS, drain_per_second: 10 }
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

/// What an attempt's ending says of the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// The app answered: it is up (whatever it thought of the event).
    Up,
    /// No answer, a redirect, 408, 429 or 5xx: it counts against the app.
    Down,
}

impl Signal {
    /// The signal of an HTTP status, or of no answer at all (`None`).
    pub fn of(code: Option<u16>) -> Signal {
        match code {
            None => Signal::Down,
            Some(300..=399 | 408 | 429 | 500..=599) => Signal::Down,
            Some(_) => Signal::Up,
        }
    }
}

/// What changed, for the log and for the delivery log to act on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    /// The app looks down: hold everything, probe at `next_probe_ms`.
    Tripped,
    /// Back to active: drain the backlog.
    Resumed,
    /// A probe failed: the next one waits longer, and tries another delivery.
    ProbeFailed,
}

/// One destination's breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Breaker {
    pub mode: Mode,
    /// When the mode last changed (ms), `None` if never.
    pub since_ms: Option<i64>,
    /// Consecutive attempts that counted against the app.
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
    /// The log position of the last delivery probed: the next probe takes
    /// the first held delivery after it (and starts over at the oldest).
    pub probed_seq: i64,
    pub last_error: Option<String>,
    pub last_error_ms: Option<i64>,
    pub last_success_ms: Option<i64>,
}

impl Breaker {
    /// A new, active breaker.
    pub fn new(settings: &CircuitSettings) -> Breaker {
        Breaker {
            mode: Mode::Active,
            since_ms: None,
            consecutive_failures: 0,
            first_failed: None,
            spans_deliveries: false,
            probe_interval_ms: settings.probe_ms,
            next_probe_ms: None,
            probing: None,
            probed_seq: 0,
            last_error: None,
            last_error_ms: None,
            last_success_ms: None,
        }
    }

    /// Whether a delivery must be held instead of sent: while paused, and
    /// while tripped but for the probe.
    pub fn holds(&self, delivery: &str) -> bool {
        match self.mode {
            Mode::Active => false,
            Mode::Paused => true,
            Mode::Tripped => self.probing.as_deref() != Some(delivery),
        }
    }

    /// Whether new deliveries go out at once (rather than being held).
    pub fn sends(&self) -> bool {
        self.mode == Mode::Active
    }

    /// The app answered an attempt of `delivery` (`delivered`: with a 2xx).
    pub fn answered(&mut self, delivery: &str, delivered: bool, now: i64, settings: &CircuitSettings) -> Transition {
        self.consecutive_failures = 0;
        self.first_failed = None;
        self.spans_deliveries = false;
        if delivered {
            self.last_success_ms = Some(now);
        }
        if self.probing.as_deref() == Some(delivery) {
            self.probing = None;
        }
        if self.mode == Mode::Tripped {
            self.mode = Mode::Active;
            self.since_ms = Some(now);
            self.probe_interval_ms = settings.probe_ms;
            self.next_probe_ms = None;
            self.probing = None;
            return Transition::Resumed;
        }
        Transition::None
    }

    /// An attempt of `delivery` counted against the app, with `error`.
    pub fn failed(&mut self, delivery: &str, error: &str, now: i64, settings: &CircuitSettings) -> Transition {
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
            return Transition::ProbeFailed;
        }
        if self.mode == Mode::Active && self.consecutive_failures >= settings.failures && self.spans_deliveries {
            self.mode = Mode::Tripped;
            self.since_ms = Some(now);
            self.probe_interval_ms = settings.probe_ms;
            self.next_probe_ms = Some(now + settings.probe_ms);
            self.probing = None;
            return Transition::Tripped;
        }
        Transition::None
    }

    /// Whether a probe should start now.
    pub fn probe_due(&self, now: i64) -> bool {
        self.mode == Mode::Tripped && self.probing.is_none() && self.next_probe_ms.is_some_and(|t| t <= now)
    }

    /// A probe of `delivery` (at log position `seq`) starts; if it never
    /// reports back, another one is due after the current interval.
    pub fn start_probe(&mut self, delivery: &str, seq: i64, now: i64) {
        self.probing = Some(delivery.to_owned());
        self.probed_seq = seq;
        self.next_probe_ms = Some(now + self.probe_interval_ms);
    }

    /// A probe went missing (its attempt never settled): allow the next.
    pub fn probe_lost(&mut self, now: i64, settings: &CircuitSettings) {
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
        self.next_probe_ms = None;
        self.probing = None;
    }

    /// Resumed by hand: active again.
    pub fn resume(&mut self, now: i64, settings: &CircuitSettings) {
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
    }

    /// The breaker as JSON, for the delivery log's state.
    pub fn encode(&self) -> String {
        Writer::with_capacity(256)
            .str("mode", self.mode.as_str())
            .opt_int("since", self.since_ms)
            .int("failures", i64::from(self.consecutive_failures))
            .bool("spans", self.spans_deliveries)
            .opt_str("firstFailed", self.first_failed.as_deref())
            .int("probeInterval", self.probe_interval_ms)
            .opt_int("nextProbe", self.next_probe_ms)
            .opt_str("probing", self.probing.as_deref())
            .int("probedSeq", self.probed_seq)
            .opt_str("lastError", self.last_error.as_deref())
            .opt_int("lastErrorAt", self.last_error_ms)
            .opt_int("lastSuccessAt", self.last_success_ms)
            .finish()
    }

    /// Reads what [`Breaker::encode`] wrote (also the circuit of
    /// drift-bridge before the state machine, whose fields it shares).
    pub fn decode(value: &Value<'_>, settings: &CircuitSettings) -> Result<Breaker, MessageError> {
        let f = Fields::parse("breaker", value)?;
        let mode = f.opt_str("mode")?;
        Ok(Breaker {
            mode: mode.as_deref().and_then(Mode::from_str).unwrap_or(Mode::Active),
            since_ms: f.opt_int("since")?,
            consecutive_failures: f.opt_int("failures")?.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32,
            first_failed: f.opt_str("firstFailed")?,
            spans_deliveries: f.bool("spans")?,
            probe_interval_ms: f.opt_int("probeInterval")?.unwrap_or(settings.probe_ms).clamp(1, settings.probe_max_ms.max(1)),
            next_probe_ms: f.opt_int("nextProbe")?,
            probing: f.opt_str("probing")?,
            probed_seq: f.opt_int("probedSeq")?.unwrap_or(0),
            last_error: f.opt_str("lastError")?,
            last_error_ms: f.opt_int("lastErrorAt")?,
            last_success_ms: f.opt_int("lastSuccessAt")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{self, Limits};

    const S: CircuitSettings = CircuitSettings { failures: 5, probe_ms: 60_000, probe_max_ms: PROBE_MAX_MS, drain_per_second: 10 };

    #[test]
    fn what_counts_against_the_app() {
        let cases = [
            (None, Signal::Down),
            (Some(200), Signal::Up),
            (Some(204), Signal::Up),
            (Some(301), Signal::Down),
            (Some(307), Signal::Down),
            (Some(400), Signal::Up),
            (Some(404), Signal::Up),
            (Some(408), Signal::Down),
            (Some(410), Signal::Up),
            (Some(422), Signal::Up),
            (Some(429), Signal::Down),
            (Some(500), Signal::Down),
            (Some(503), Signal::Down),
        ];
        for (code, signal) in cases {
            assert_eq!(Signal::of(code), signal, "{code:?}");
        }
    }

    #[test]
    fn trips_on_the_fifth_failure_across_deliveries() {
        let mut c = Breaker::new(&S);
        for (i, id) in ["a", "b", "a", "c"].iter().enumerate() {
            assert_eq!(c.failed(id, "the app answered 503", i as i64, &S), Transition::None);
        }
        assert_eq!(c.failed("d", "the app answered 503", 10, &S), Transition::Tripped);
        assert_eq!((c.mode, c.next_probe_ms, c.since_ms), (Mode::Tripped, Some(60_010), Some(10)));
        assert!(c.holds("a") && c.holds("z") && !c.sends());
    }

    #[test]
    fn an_answer_of_any_kind_breaks_the_run() {
        let mut c = Breaker::new(&S);
        for i in 0..20 {
            c.failed(&format!("d{i}"), "down", i, &S);
            if i % 4 == 3 {
                // A 404: the app is up, the event is refused.
                c.answered("refused", false, i, &S);
            }
        }
        assert_eq!(c.mode, Mode::Active, "never 5 in a row");
        assert_eq!(c.last_success_ms, None, "a refusal is not a success");
    }

    #[test]
    fn one_delivery_failing_alone_never_trips() {
        let mut c = Breaker::new(&S);
        for i in 0..100 {
            assert_eq!(c.failed("stubborn", "the app answered 500", i, &S), Transition::None);
        }
        assert_eq!(c.mode, Mode::Active);
    }

    #[test]
    fn probes_double_up_to_fifteen_minutes_and_any_answer_resumes() {
        let mut c = Breaker::new(&S);
        for i in 0..5 {
            c.failed(&format!("d{i}"), "down", 0, &S);
        }
        let mut waits = Vec::new();
        for seq in 1..8 {
            let now = c.next_probe_ms.unwrap();
            assert!(c.probe_due(now));
            let id = format!("d{seq}");
            c.start_probe(&id, seq, now);
            assert_eq!(c.probed_seq, seq, "the next probe starts after this one");
            assert!(!c.holds(&id) && c.holds("other"), "only the probe goes");
            assert!(!c.probe_due(now), "one probe at a time");
            assert_eq!(c.failed(&id, "down", now, &S), Transition::ProbeFailed);
            waits.push(c.next_probe_ms.unwrap() - now);
        }
        assert_eq!(waits, [120_000, 240_000, 480_000, 900_000, 900_000, 900_000, 900_000]);
        let now = c.next_probe_ms.unwrap();
        c.start_probe("d9", 9, now);
        // The probed delivery is refused (404), but the app answered.
        assert_eq!(c.answered("d9", false, now, &S), Transition::Resumed);
        assert_eq!((c.mode, c.probe_interval_ms, c.consecutive_failures), (Mode::Active, 60_000, 0));
        assert!(c.sends());
    }

    #[test]
    fn pause_and_resume_by_hand() {
        let mut c = Breaker::new(&S);
        c.pause(5);
        assert_eq!((c.mode, c.since_ms), (Mode::Paused, Some(5)));
        assert!(c.holds("x"));
        for i in 0..10 {
            c.failed(&format!("d{i}"), "x", 6, &S);
        }
        assert_eq!(c.mode, Mode::Paused, "a paused destination does not trip");
        assert!(!c.probe_due(i64::MAX), "nor probe");
        c.resume(9, &S);
        assert_eq!((c.mode, c.consecutive_failures), (Mode::Active, 0));
    }

    #[test]
    fn a_lost_probe_allows_the_next() {
        let mut c = Breaker::new(&S);
        for i in 0..5 {
            c.failed(&format!("d{i}"), "down", 0, &S);
        }
        c.start_probe("d0", 1, 60_000);
        c.probe_lost(100_000, &S);
        assert_eq!(c.probing.as_deref(), Some("d0"), "not lost before its interval");
        c.probe_lost(120_000, &S);
        assert_eq!((c.probing.as_deref(), c.probe_interval_ms), (None, 120_000));
        assert!(c.probe_due(120_000));
    }

    #[test]
    fn roundtrips_through_storage() {
        let mut c = Breaker::new(&S);
        for i in 0..5 {
            c.failed(&format!("d\"{i}"), "the app answered 500: \"nope\"", 7, &S);
        }
        c.start_probe("d\"0", 3, 60_007);
        let mut d = Breaker::new(&S);
        d.failed("x", "y", 1, &S);
        d.answered("z", true, 2, &S);
        for breaker in [Breaker::new(&S), c, d] {
            let text = breaker.encode();
            let value = json::parse(&text, &Limits::INTERNAL).unwrap();
            assert_eq!(Breaker::decode(&value, &S).unwrap(), breaker);
        }
    }
}
