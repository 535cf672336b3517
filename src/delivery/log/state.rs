//! What a delivery log knows of itself, kept in one row (`meta`, key
//! `state`) that each step reads once and writes at most once: its key, the
//! alarm it last set, the breaker, the drain, its counts by status and its
//! size (kept as they change, never recounted), the deliveries in flight, a
//! recovery in progress, the current minute's metrics and whether the
//! registry knows it.
//!
//! The deliveries in flight are here rather than in their rows' index: the
//! state row is written by every step anyway, so knowing which requests are
//! out, and until when they are leased, costs no row of its own; a process
//! that stops while they are out leaves them here, and the alarm sends
//! them again once their lease is over.

use super::super::alerts::AlertState;
use super::super::breaker::{Breaker, CircuitSettings};
use super::super::effects::Alarm;
use super::super::key::Key;
use super::super::metrics::Minute;
use super::super::sql::{Arg, Sql, StorageError};
use super::super::status::{ApiStatus, Status};
use super::super::wire::{self, Fields, MessageError};
use crate::json::{Limits, Value, Writer};

/// Deliveries by status, in the admin API's words.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub pending: i64,
    pub held: i64,
    pub delivered: i64,
    pub failed: i64,
    pub gone: i64,
    pub replayed: i64,
}

impl Counts {
    pub fn get(&self, status: ApiStatus) -> i64 {
        match status {
            ApiStatus::Pending => self.pending,
            ApiStatus::Held => self.held,
            ApiStatus::Delivered => self.delivered,
            ApiStatus::Failed => self.failed,
            ApiStatus::Gone => self.gone,
            ApiStatus::Replayed => self.replayed,
        }
    }

    fn slot(&mut self, status: ApiStatus) -> &mut i64 {
        match status {
            ApiStatus::Pending => &mut self.pending,
            ApiStatus::Held => &mut self.held,
            ApiStatus::Delivered => &mut self.delivered,
            ApiStatus::Failed => &mut self.failed,
            ApiStatus::Gone => &mut self.gone,
            ApiStatus::Replayed => &mut self.replayed,
        }
    }

    pub fn total(&self) -> i64 {
        ApiStatus::ALL.iter().map(|s| self.get(*s)).sum()
    }

    pub fn encode(&self) -> String {
        let mut w = Writer::object();
        for s in ApiStatus::ALL {
            w.int(s.as_str(), self.get(s));
        }
        w.finish()
    }
}

/// A request to an app that is out: which delivery, which attempt, until
/// when no other request of it may go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Flight {
    pub key: Key,
    pub attempt: u32,
    pub lease_until: i64,
    /// A probe of a tripped app (not charged to the delivery's budget).
    pub probe: bool,
    /// Its conversation, for an app that wants them in order.
    pub conversation: Option<String>,
}

/// A backlog being released in its original order: the held deliveries up
/// to `up_to` (their log position), `DRAIN_PER_SECOND` a second. Each step
/// sends what it may of the second's allowance straight from where they are
/// held, as room among the requests out allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Drain {
    pub up_to: i64,
    /// When the next second's allowance starts.
    pub next: i64,
    /// What is left of this second's allowance.
    pub left: i64,
}

/// A recovery in progress: dead letters with one of `statuses` received
/// since `since`, replayed page by page, from log position `after` up to
/// `until` (the end of the log when it started, so that nothing it replays
/// is replayed again).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    pub since: i64,
    pub statuses: Vec<String>,
    /// The hour the recovery is at (as a position, its hour's first).
    pub after: i64,
    /// In that hour, the last row read (none: none yet).
    pub after_key: Option<Key>,
    pub until: i64,
    pub recovered: i64,
    pub started: i64,
}

/// The state row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogState {
    pub version: i64,
    pub name: Option<String>,
    /// The alarm as this log last set it (`None`: none).
    pub alarm: Option<i64>,
    pub breaker: Breaker,
    pub drain: Option<Drain>,
    pub counts: Counts,
    /// What the kept deliveries count for against `MAX_LOG_BYTES`.
    pub bytes: i64,
    /// Deliveries failed at once because the log was full, since it last
    /// had room.
    pub refused: i64,
    /// The last acceptance time given out: acceptance times only grow, so
    /// the log's order is their order.
    pub last_accepted: i64,
    /// The last log position given out (each delivery's `seq`).
    pub seq: i64,
    /// The requests to the app that are out.
    pub flight: Vec<Flight>,
    /// When the next settled delivery's retention ends (at the earliest).
    pub next_expiry: Option<i64>,
    pub recovery: Option<Recovery>,
    /// How many deliveries the last finished recovery replayed, and when.
    pub last_recovery: Option<(i64, i64)>,
    pub minute: Minute,
    /// The registry epoch of this log's latest registration (0: never), and
    /// whether the registry confirmed it; negative while unregistering.
    pub epoch: i64,
    pub confirmed: bool,
    /// With a rate (`ratePerSecond`): the earliest time the next delivery
    /// may start (ms).
    pub next_send: i64,
    /// Alerts: their coalescing, and those not yet handed off.
    pub alerts: AlertState,
    /// When this log found its app removed and ended what it held; `None`
    /// while its app is there.
    pub ended: Option<i64>,
    /// Whether its app takes a conversation's events in order, as the last
    /// step that knew its app saw it: the order is kept while the app cannot
    /// be told (the registry is down) or is gone.
    pub ordered: bool,
    /// The pass-through event types it counts on their own in the metrics
    /// (at most [`super::super::metrics::MAX_OWN_TYPES`]; more are counted
    /// together).
    pub own_types: Vec<String>,
    /// Whether anything changed since it was read.
    dirty: bool,
}

const KEY: &str = "state";

impl LogState {
    pub fn new(settings: &CircuitSettings) -> LogState {
        LogState {
            version: super::schema::VERSION,
            name: None,
            alarm: None,
            breaker: Breaker::new(settings),
            drain: None,
            counts: Counts::default(),
            bytes: 0,
            refused: 0,
            last_accepted: 0,
            seq: 0,
            flight: Vec::new(),
            next_expiry: None,
            recovery: None,
            last_recovery: None,
            minute: Minute::default(),
            epoch: 0,
            confirmed: false,
            next_send: 0,
            alerts: AlertState::default(),
            ended: None,
            ordered: false,
            own_types: Vec::new(),
            dirty: true,
        }
    }

    /// Reads the state row; a log without one is new (or of drift-bridge
    /// 0.2, whose name and circuit are taken over, and whose counts are
    /// counted once).
    pub fn load(sql: &impl Sql, settings: &CircuitSettings) -> Result<LogState, StorageError> {
        let row = sql.first("SELECT value FROM meta WHERE key = ?", &[Arg::Text(KEY)])?;
        if let Some(text) = row.as_ref().and_then(|r| r.text(0)) {
            return match LogState::decode(text, settings) {
                Ok(mut state) => {
                    if state.seq == 0 {
                        // A state of a layout before positions were kept in it.
                        state.seq = sql.number("SELECT MAX(seq) FROM deliveries", &[])?.unwrap_or(0);
                    }
                    Ok(state)
                }
                Err(e) => Err(StorageError(format!("the delivery log's state cannot be read ({e}); it was written by a newer version?"))),
            };
        }
        let mut state = LogState::new(settings);
        state.name = sql.first("SELECT value FROM meta WHERE key = 'name'", &[])?.and_then(|r| r.text(0).map(str::to_owned));
        if let Some(old) = sql.first("SELECT value FROM meta WHERE key = 'circuit'", &[])? {
            if let Ok(value) = crate::json::parse(old.text(0).unwrap_or(""), &Limits::INTERNAL) {
                if let Ok(breaker) = Breaker::decode(&value, settings) {
                    state.breaker = breaker;
                }
                if value.get("draining") == Some(&crate::json::Value::Bool(true)) {
                    state.drain = Some(Drain { up_to: i64::MAX, next: 0, left: 0 });
                }
            }
        }
        for row in sql.query("SELECT status, COUNT(*), SUM(size), MAX(accepted_at), MAX(seq) FROM deliveries GROUP BY status", &[])? {
            if let Some(status) = row.text(0).and_then(Status::from_sql) {
                state.add(status, row.int0(1));
                state.bytes += row.int0(2);
                state.last_accepted = state.last_accepted.max(row.int0(3));
                state.seq = state.seq.max(row.int0(4));
            }
        }
        Ok(state)
    }

    /// Writes the state row if anything changed.
    pub fn save(&mut self, sql: &impl Sql) -> Result<(), StorageError> {
        if self.dirty {
            sql.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[Arg::Text(KEY), Arg::Text(&self.encode())],
            )?;
            self.dirty = false;
        }
        Ok(())
    }

    /// Marks the state as changed (every `&mut` helper here does).
    pub fn touch(&mut self) -> &mut LogState {
        self.dirty = true;
        self
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// A delivery came in with `status`.
    pub fn add(&mut self, status: Status, n: i64) {
        self.dirty = true;
        *self.counts.slot(status.api()) += n;
    }

    /// A delivery went from `from` to `to`.
    pub fn moved(&mut self, from: Status, to: Status) {
        if from.api() != to.api() {
            self.dirty = true;
            *self.counts.slot(from.api()) -= 1;
            *self.counts.slot(to.api()) += 1;
        }
    }

    /// With a `rate`, when a delivery handed out at `now` may start: at
    /// least `1000 / rate` ms (rounded up) after the one before, so that no
    /// second holds more than `rate` starts. Answers the wait in ms: `Ok`
    /// and the turn taken when it is at most `max_wait`, else `Err` and
    /// nothing taken.
    pub fn space(&mut self, now: i64, rate: u32, max_wait: i64) -> Result<i64, i64> {
        let start = self.next_send.max(now);
        if start - now > max_wait {
            return Err(start - now);
        }
        let gap = (1000 + i64::from(rate) - 1) / i64::from(rate.max(1));
        self.next_send = start + gap;
        self.dirty = true;
        Ok(start - now)
    }

    /// The current minute's counters for deliveries of `event_type`, a
    /// pass-through type past [`super::super::metrics::MAX_OWN_TYPES`]
    /// counted as [`super::super::metrics::OTHER_TYPE`].
    pub fn count(&mut self, event_type: &str) -> &mut super::super::metrics::Counters {
        use super::super::metrics::{always_own, MAX_OWN_TYPES, OTHER_TYPE};
        let own = always_own(event_type)
            || self.own_types.iter().any(|t| t == event_type)
            || (self.own_types.len() < MAX_OWN_TYPES && {
                self.own_types.push(event_type.to_owned());
                true
            });
        self.dirty = true;
        self.minute.at(if own { event_type } else { OTHER_TYPE })
    }

    /// The next acceptance time: `now`, or just after the last one.
    pub fn accept_time(&mut self, now: i64) -> i64 {
        self.dirty = true;
        self.last_accepted = now.max(self.last_accepted + 1);
        self.last_accepted
    }

    /// The alarm must fire no later than `at` (ms). Answers what to do with
    /// it, and remembers the result. An alarm recorded in the past has fired,
    /// or is about to, or was lost: it is set again (no later than now).
    pub fn alarm_by(&mut self, at: i64, now: i64) -> Alarm {
        match self.alarm {
            Some(current) if current <= at && current >= now => Alarm::Keep,
            Some(current) if current < now => {
                let at = at.min(now);
                self.alarm = Some(at);
                self.dirty = true;
                Alarm::At(at)
            }
            _ => {
                self.alarm = Some(at);
                self.dirty = true;
                Alarm::At(at)
            }
        }
    }

    /// The alarm must be exactly this (the alarm's own step decides).
    pub fn alarm_exactly(&mut self, at: Option<i64>) -> Alarm {
        self.dirty = true;
        self.alarm = at;
        at.map_or(Alarm::Clear, Alarm::At)
    }

    fn encode(&self) -> String {
        let mut w = Writer::with_capacity(768);
        w.int("version", self.version)
            .opt_str("name", self.name.as_deref())
            .opt_int("alarm", self.alarm)
            .raw("breaker", &self.breaker.encode());
        if let Some(d) = &self.drain {
            w.raw("drain", &Writer::object().int("upTo", d.up_to).int("next", d.next).int("left", d.left).finish());
        }
        w.raw("counts", &self.counts.encode()).int("bytes", self.bytes).int("refused", self.refused).int("lastAccepted", self.last_accepted);
        w.int("seq", self.seq).opt_int("nextExpiry", self.next_expiry);
        if !self.flight.is_empty() {
            let flight = wire::array(&self.flight, |f| {
                let conversation = f.conversation.as_deref().map_or_else(|| "null".to_owned(), crate::escape::quoted);
                format!("[\"{}\",{},{},{},{conversation}]", f.key.encode(), f.attempt, f.lease_until, u8::from(f.probe))
            });
            w.raw("flight", &flight);
        }
        if let Some(r) = &self.recovery {
            w.raw(
                "recovery",
                &Writer::object()
                    .int("since", r.since)
                    .raw("status", &crate::json::string_array(&r.statuses))
                    .int("after", r.after)
                    .opt_str("afterKey", r.after_key.map(|k| k.encode()).as_deref())
                    .int("until", r.until)
                    .int("recovered", r.recovered)
                    .int("started", r.started)
                    .finish(),
            );
        }
        if let Some((n, at)) = self.last_recovery {
            w.raw("lastRecovery", &Writer::object().int("recovered", n).int("at", at).finish());
        }
        w.raw("minute", &self.minute.encode()).int("epoch", self.epoch).bool("confirmed", self.confirmed);
        if self.next_send > 0 {
            w.int("nextSend", self.next_send);
        }
        if !self.alerts.is_empty() {
            w.raw("alerts", &self.alerts.encode());
        }
        w.opt_int("ended", self.ended);
        if self.ordered {
            w.bool("ordered", true);
        }
        if !self.own_types.is_empty() {
            w.raw("ownTypes", &crate::json::string_array(&self.own_types));
        }
        w.finish()
    }

    fn decode(text: &str, settings: &CircuitSettings) -> Result<LogState, MessageError> {
        let value = wire::parse("delivery log state", text, &Limits::INTERNAL)?;
        let f = Fields::parse("delivery log state", &value)?;
        let version = f.opt_int("version")?.unwrap_or(0);
        if version > super::schema::VERSION {
            return Err(f.error("version", format!("{version} is newer than this version's {}", super::schema::VERSION)));
        }
        let breaker = match f.get("breaker") {
            Some(b) => Breaker::decode(b, settings)?,
            None => Breaker::new(settings),
        };
        let drain = match f.get("drain") {
            Some(d) => {
                let d = Fields::parse("drain", d)?;
                Some(Drain { up_to: d.int("upTo")?, next: d.int("next")?, left: d.opt_int("left")?.unwrap_or(0) })
            }
            None => None,
        };
        let mut counts = Counts::default();
        if let Some(c) = f.get("counts") {
            let c = Fields::parse("counts", c)?;
            for s in ApiStatus::ALL {
                *counts.slot(s) = c.opt_int(s.as_str())?.unwrap_or(0);
            }
        }
        let recovery = match f.get("recovery") {
            Some(r) => {
                let r = Fields::parse("recovery", r)?;
                Some(Recovery {
                    since: r.int("since")?,
                    statuses: r.strings("status")?,
                    after: r.int("after")?,
                    after_key: r.opt_str("afterKey")?.and_then(|k| Key::decode(&k)),
                    until: r.int("until")?,
                    recovered: r.int("recovered")?,
                    started: r.opt_int("started")?.unwrap_or(0),
                })
            }
            None => None,
        };
        let last_recovery = match f.get("lastRecovery") {
            Some(r) => {
                let r = Fields::parse("lastRecovery", r)?;
                Some((r.int("recovered")?, r.int("at")?))
            }
            None => None,
        };
        let minute = match f.get("minute") {
            Some(m) => Minute::decode(m)?,
            None => Minute::default(),
        };
        Ok(LogState {
            version: super::schema::VERSION,
            name: f.opt_str("name")?,
            alarm: f.opt_int("alarm")?,
            breaker,
            drain,
            counts,
            bytes: f.opt_int("bytes")?.unwrap_or(0),
            refused: f.opt_int("refused")?.unwrap_or(0),
            last_accepted: f.opt_int("lastAccepted")?.unwrap_or(0),
            recovery,
            last_recovery,
            minute,
            epoch: f.opt_int("epoch")?.unwrap_or(0),
            confirmed: f.bool("confirmed")?,
            next_send: f.opt_int("nextSend")?.unwrap_or(0),
            seq: f.opt_int("seq")?.unwrap_or(0),
            next_expiry: f.opt_int("nextExpiry")?,
            flight: match f.get("flight") {
                Some(Value::Array(items)) => items.iter().map(decode_flight).collect::<Result<_, _>>()?,
                _ => Vec::new(),
            },
            alerts: match f.get("alerts") {
                Some(a) => AlertState::decode(a)?,
                None => AlertState::default(),
            },
            ended: f.opt_int("ended")?,
            ordered: f.bool("ordered")?,
            own_types: f.strings("ownTypes")?,
            dirty: version != super::schema::VERSION,
        })
    }
}

fn decode_flight(v: &Value<'_>) -> Result<Flight, MessageError> {
    let bad = || MessageError { message: "delivery log state", path: "flight".into(), what: "expected [key, attempt, lease, probe, conversation]".into() };
    let Value::Array(f) = v else { return Err(bad()) };
    let int = |i: usize| f.get(i).and_then(Value::as_integer).and_then(|n| n.parse::<i64>().ok());
    Ok(Flight {
        key: f.first().and_then(Value::as_str).and_then(|k| Key::decode(&k.text())).ok_or_else(bad)?,
        attempt: int(1).and_then(|n| u32::try_from(n).ok()).ok_or_else(bad)?,
        lease_until: int(2).ok_or_else(bad)?,
        probe: int(3) == Some(1),
        conversation: f.get(4).and_then(Value::as_str).map(|c| c.text().into_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_roundtrips() {
        let s = CircuitSettings::default();
        let mut state = LogState::new(&s);
        state.name = Some("push-app".into());
        state.alarm = Some(5);
        state.drain = Some(Drain { up_to: 9, next: 10, left: 4 });
        state.add(Status::Held, 3);
        state.moved(Status::Held, Status::Queued);
        state.bytes = 1234;
        state.recovery = Some(Recovery { since: 1, statuses: vec!["failed".into()], after: 7, after_key: None, until: 9, recovered: 2, started: 3 });
        state.last_recovery = Some((4, 5));
        state.minute.start = 60_000;
        state.minute.at("conversation_push").attempts = 2;
        state.epoch = 3;
        state.confirmed = true;
        state.next_send = 12;
        state.seq = 40;
        state.next_expiry = Some(77);
        state.ordered = true;
        state.flight.push(Flight { key: Key { hour: 1, event: -2, replay: 0 }, attempt: 3, lease_until: 99, probe: true, conversation: Some("7".into()) });
        state.flight.push(Flight { key: Key { hour: 1, event: 5, replay: 1 }, attempt: 1, lease_until: 98, probe: false, conversation: None });
        state.breaker.failed("a", "x", 1, &s);
        let mut read = LogState::decode(&state.encode(), &s).unwrap();
        read.dirty = true;
        assert_eq!(read, state);
        assert_eq!((state.counts.held, state.counts.pending), (2, 1));
    }

    #[test]
    fn with_a_rate_starts_are_spaced() {
        // Starts are spaced 334 ms at three a second: never four in a second.
        let mut st = LogState::new(&CircuitSettings::default());
        let waits: Vec<i64> = (0..4).map(|_| st.space(1_000, 3, i64::MAX).unwrap()).collect();
        assert_eq!(waits, [0, 334, 668, 1002]);
        assert_eq!(st.space(5_000, 3, i64::MAX), Ok(0), "a quiet app starts at once");
        assert_eq!(st.space(5_000, 3, 100), Err(334), "a turn further off than allowed is not taken");
        assert_eq!(st.space(5_000, 3, i64::MAX), Ok(334), "so the next one gets it");
    }

    #[test]
    fn pass_through_types_past_a_bound_are_counted_together() {
        use super::super::super::metrics::{MAX_OWN_TYPES, OTHER_TYPE};
        let mut st = LogState::new(&CircuitSettings::default());
        for i in 0..MAX_OWN_TYPES + 5 {
            st.count(&format!("type_{i}")).accepted += 1;
        }
        // Drift's conversation types are always their own.
        st.count("conversation_push").accepted += 1;
        let types: Vec<&str> = st.minute.by_type.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(types.len(), MAX_OWN_TYPES + 2, "{types:?}");
        assert!(types.contains(&OTHER_TYPE) && types.contains(&"conversation_push"));
        assert_eq!(st.minute.by_type.iter().find(|(t, _)| t == OTHER_TYPE).unwrap().1.accepted, 5);
        // Those it counts on their own stay so, across the state row.
        let read = LogState::decode(&st.encode(), &CircuitSettings::default()).unwrap();
        assert_eq!(read.own_types, st.own_types);
    }

    #[test]
    fn the_alarm_is_set_only_when_it_must_move_earlier_or_was_lost() {
        let s = CircuitSettings::default();
        let mut state = LogState::new(&s);
        assert_eq!(state.alarm_by(100, 10), Alarm::At(100));
        assert_eq!(state.alarm_by(200, 10), Alarm::Keep);
        assert_eq!(state.alarm_by(50, 10), Alarm::At(50));
        // Recorded at 50, now 60: it fired (or is firing, or was lost).
        assert_eq!(state.alarm_by(500, 60), Alarm::At(60));
        assert_eq!(state.alarm_exactly(None), Alarm::Clear);
        assert_eq!(state.alarm_by(70, 60), Alarm::At(70));
    }
}
