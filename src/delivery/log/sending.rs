//! Sending: the request a delivery goes out with, when it may go (the
//! requests already out, the app's rate, its breaker), and what the app's
//! answer makes of it.

use super::super::alerts::Kind;
use super::super::breaker::{Transition, Mode, Signal};
use super::super::effects::{Listen, Post, Ticket};
use super::super::key::{event_hex, Key};
use super::super::request::{self, Seen};
use super::super::schedule::{self, MAX_ATTEMPTS};
use super::super::sql::{Arg, Sql, StorageError};
use super::super::status::Status;
use super::super::Destination;
use super::places::{Edit, Place};
use super::rows::{appended, key_args, Row};
use super::{Log, Presence, PACE_MAX_MS};
use crate::json::Writer;

/// Whether a delivery may go now, and how.
pub(crate) enum Go {
    /// A request goes out: this place, with this request.
    Now(Place<'static>, Post),
    /// It waits for its turn (the requests already out, the app's rate).
    Later(i64),
    /// It cannot be sent at all (its stored event cannot be read): why.
    Never(String),
}

/// The positions in `held` of a drain's rows whose requests go out in one
/// step, first and last (0 and 0 for none: positions start at 1):
/// consecutive, since a drain takes them in order.
#[derive(Default)]
struct HeldRun(i64, i64);

/// Why `d` no longer wants a delivery of `event_type` of organisation
/// `org`, if it does not: a type it no longer subscribes to, or an
/// organisation it no longer takes.
pub(crate) fn no_longer_wanted(app: &Destination, event_type: &str, org: Option<&str>) -> Option<String> {
    if app.wants(event_type, org) {
        return None;
    }
    if !app.types.iter().any(|t| t == "*" || t == event_type) {
        return Some(format!("its app {} no longer subscribes to {event_type}", app.name));
    }
    Some(match org {
        Some(org) => format!("its app {} no longer takes events of organisation {org}", app.name),
        None => format!("its app {} takes only some organisations (orgIds), and this event's is not known", app.name),
    })
}

impl<S: Sql> Log<'_, S> {
    /// Whether the delivery `key` (event `body`, of `event_type` and
    /// `scope`) may go now as attempt `attempt`: room among the requests
    /// out, its turn of the app's rate (a probe needs neither), and a
    /// request that can be made.
    pub(crate) fn go(&mut self, key: Key, (event_type, scope): (&str, &str), body: &str, attempt: u32, probe: bool) -> Go {
        let Some(app) = self.app.clone() else { return Go::Later(self.ctx.now + super::UNKNOWN_RETRY_MS) };
        if !probe && self.st.flight.len() >= self.max_flight() {
            // A request out leaves room when it is answered; the step that
            // takes its answer sends this one.
            self.crowded = true;
            return Go::Later(self.ctx.now);
        }
        let mut wait = 0;
        if let (Some(rate), false) = (self.rate(), probe) {
            match self.st.space(self.ctx.now, rate, PACE_MAX_MS) {
                Ok(w) => wait = w,
                Err(w) => return Go::Later(self.ctx.now + w),
            }
        }
        let slack = self.ctx.settings.alerts.target(&app.name).is_some_and(|t| t.format == super::super::alerts::Format::Slack);
        let ticket = Ticket::Attempt { key, attempt };
        let timeout = self.ctx.settings.delivery_timeout_ms;
        match request::post(&app, ticket, &event_hex(key.event), body, self.ctx.now + wait, timeout, slack) {
            Ok(mut post) => {
                post.delay_ms = u32::try_from(wait).unwrap_or(u32::MAX);
                if app.listen {
                    let conversation = super::input::conversation_of(scope).map(str::to_owned);
                    post.listen = Some(Listen { id: key.id(&app.name), event_type: event_type.to_owned(), conversation, attempt });
                }
                let lease_until = self.ctx.now + wait + i64::from(timeout) + i64::from(super::REPORT_WITHIN_MS) + self.ctx.settings.recovery_grace_ms();
                Go::Now(Place::Sending { attempt, lease_until, probe }, post)
            }
            Err(why) => Go::Never(why),
        }
    }

    /// Sends `row` now if it may go, else queues it for its turn; a probe
    /// of a tripped app uses no attempt.
    pub(crate) fn send_row(&mut self, row: &Row, probe: bool) -> Result<(), StorageError> {
        let Some((row, body, _)) = Row::load_full(self.sql, row.key)? else { return Ok(()) };
        self.send_loaded(&row, &body, probe, None)
    }

    /// [`Log::send_row`] for a row read with its body. `run`: a drain's
    /// held rows whose requests go out in this step, whose rows
    /// [`Log::sent_from_held`] writes together (a held row that goes now
    /// joins it).
    fn send_loaded(&mut self, row: &Row, body: &str, probe: bool, run: Option<&mut HeldRun>) -> Result<(), StorageError> {
        if let Some(app) = self.app.clone() {
            if let Some(why) = no_longer_wanted(&app, &row.event_type, row.org.as_deref()) {
                return self.fail(row, &why);
            }
        }
        let attempt = row.attempts + u32::from(!probe);
        match self.go(row.key, (&row.event_type, &row.scope), body, attempt.max(1), probe) {
            Go::Now(place, post) => {
                let edit = Edit { attempts: Some(attempt), ..Edit::NONE };
                match run {
                    Some(run) if row.status == Status::Held && !probe => {
                        self.left_held(row, place, &edit)?;
                        if run.0 == 0 {
                            run.0 = row.seq;
                        }
                        run.1 = row.seq;
                    }
                    _ => self.move_to(row, place, &edit)?,
                }
                self.fx.posts.push(post);
            }
            Go::Later(at) => {
                if row.status != Status::Queued || row.wake_at != Some(at) {
                    self.move_to(row, Place::Queued { at }, &Edit::NONE)?;
                }
            }
            Go::Never(why) => self.fail(row, &why)?,
        }
        Ok(())
    }

    /// `row` becomes a dead letter for `reason`.
    pub(crate) fn fail(&mut self, row: &Row, reason: &str) -> Result<(), StorageError> {
        let expires_at = self.ctx.expiry(self.ctx.settings.dead_letter_retention_ms());
        self.move_to(row, Place::Settled { status: Status::Failed, reason: Some(reason), expires_at }, &Edit::NONE)?;
        self.st.count(&row.event_type).failed += 1;
        let line = self.dead_line(row, row.attempts, reason);
        self.fx.log(line);
        Ok(())
    }

    /// Sends what waits and may go now, as long as there is room among the
    /// requests out: the deliveries whose time has come, oldest time first,
    /// then the backlog's share ([`Log::release`]).
    pub(crate) fn pull(&mut self) -> Result<(), StorageError> {
        if self.presence() != Presence::Here {
            return Ok(());
        }
        let room = self.max_flight().saturating_sub(self.st.flight.len());
        if room == 0 {
            self.crowded |= self.sql.first("SELECT 1 FROM waits WHERE at <= ? LIMIT 1", &[Arg::Int(self.ctx.now)])?.is_some() || self.draining();
            return Ok(());
        }
        let due = self.sql.query(
            "SELECT hour, event, replay FROM waits WHERE at <= ? ORDER BY at LIMIT ?",
            &[Arg::Int(self.ctx.now), Arg::Int(room.min(super::ALARM_ROWS as usize) as i64 + 1)],
        )?;
        // One more than there is room for: some wait for room.
        let due = if due.len() > room {
            self.crowded = true;
            &due[..room]
        } else {
            &due[..]
        };
        for r in due {
            let key = Key { hour: r.int0(0), event: r.event(1), replay: r.int0(2).clamp(0, i64::from(u32::MAX)) as u32 };
            let row = Row::load_full(self.sql, key)?.filter(|(r, ..)| matches!(r.status, Status::Queued | Status::Retrying));
            let Some((row, body, _)) = row else {
                // A wait whose delivery is gone or moved on: nothing to send.
                self.sql.execute("DELETE FROM waits WHERE hour = ? AND event = ? AND replay = ?", &key_args(key))?;
                continue;
            };
            if self.st.breaker.holds(&row.key.id(self.name())) || self.unheard() {
                self.move_to(&row, Place::Held, &Edit::NONE)?;
                self.st.count(&row.event_type).held += 1;
                continue;
            }
            if row.attempts >= MAX_ATTEMPTS {
                let reason = format!("gave up after {} attempts; the last ones never reported back (the process sending it stopped)", row.attempts);
                self.fail(&row, &reason)?;
                continue;
            }
            self.send_loaded(&row, &body, false, None)?;
        }
        self.release()
    }

    /// Whether a backlog is being released now (the app is active and heard).
    fn draining(&self) -> bool {
        self.st.drain.is_some() && self.st.breaker.mode == Mode::Active && !self.unheard()
    }

    /// Catching up: held deliveries in their original order, each sent
    /// straight from where it was held, as many as this second's allowance
    /// (`DRAIN_PER_SECOND`, no more than the app's own rate) and the room
    /// among the requests out let; the answers that make room send more.
    fn release(&mut self) -> Result<(), StorageError> {
        if !self.draining() {
            return Ok(());
        }
        let Some(mut d) = self.st.drain else { return Ok(()) };
        let now = self.ctx.now;
        if d.next <= now {
            let per_second = self.ctx.settings.circuit.drain_per_second;
            d.left = i64::from(self.rate().map_or(per_second, |r| r.min(per_second)));
            d.next = now + 1000;
        }
        let room = self.max_flight().saturating_sub(self.st.flight.len()) as i64;
        let take = room.min(d.left).min(super::ALARM_ROWS);
        if take > 0 {
            // One more than is taken: whether any is left.
            let batch = super::timers::held_to_send(self, d.up_to, take + 1)?;
            let more = batch.len() as i64 > take;
            let mut run = HeldRun::default();
            for (row, body) in batch.iter().take(take as usize) {
                self.send_loaded(row, body, false, Some(&mut run))?;
                d.left -= 1;
            }
            if run.0 > 0 {
                self.sent_from_held(run.0, run.1)?;
            }
            if !more {
                self.st.touch().drain = None;
                return Ok(());
            }
        }
        // More waits for room (the answers make it) or for the next second.
        self.crowded |= d.left > 0;
        if self.st.drain != Some(d) {
            self.st.touch().drain = Some(d);
        }
        Ok(())
    }

    /// A dead letter's log line: ids, attempts and the reason, never the body.
    pub(crate) fn dead_line(&self, row: &Row, attempts: u32, reason: &str) -> String {
        Writer::object()
            .str("kind", "dead-letter")
            .str("delivery", &row.key.id(self.name()))
            .str("eventId", &event_hex(row.key.event))
            .str("destination", self.name())
            .int("attempts", i64::from(attempts))
            .str("reason", reason)
            .finish()
    }

    /// One JSON line for the breaker changing state.
    pub(crate) fn circuit_line(&self, why: &str) -> String {
        Writer::object()
            .str("kind", "circuit")
            .str("destination", self.name())
            .str("state", self.st.breaker.mode.as_str())
            .str("why", why)
            .int("consecutiveFailures", i64::from(self.st.breaker.consecutive_failures))
            .finish()
    }
}

/// What the app answered to requests the log asked for: each attempt goes
/// in its delivery's history, the breaker judges the app by it, and the
/// delivery becomes delivered, gone, retrying (its next attempt waits for
/// the retry schedule), held (the app is now down) or failed (its last
/// attempt). One JSON line per attempt.
pub(crate) fn sent<S: Sql>(log: &mut Log<'_, S>, seen: Vec<Seen>) -> Result<(), StorageError> {
    let mut at_once = delivered_at_once(log, &seen)?;
    for s in seen {
        match &s.ticket {
            Ticket::Attempt { key, attempt } => answered(log, *key, *attempt, &s, &mut at_once)?,
            #[cfg(feature = "log-admin")]
            Ticket::Test { .. } => {
                let reply = super::admin::tested(log, &s)?;
                log.fx.reply = Some(reply);
            }
            // Never here: a build without the admin operations hands a test's
            // report to one with them ([`super::Input::is_admin`]).
            #[cfg(not(feature = "log-admin"))]
            Ticket::Test { .. } => {}
        }
    }
    Ok(())
}

/// The requests out that these answers deliver, settled before the answers
/// are taken one by one ([`answered`]), all in one statement: a 2xx to the
/// request out, for a delivery with no history yet (nearly every answer).
/// A delivery answered more than once in the lot is left to [`answered`],
/// which takes its answers in order.
fn delivered_at_once<S: Sql>(log: &mut Log<'_, S>, seen: &[Seen]) -> Result<Vec<Row>, StorageError> {
    let mut items = Vec::new();
    for s in seen {
        let (Ticket::Attempt { key, attempt }, Some(200..=299)) = (&s.ticket, s.status) else { continue };
        let Some(f) = log.st.flight.iter().find(|f| f.key == *key && f.attempt == *attempt) else { continue };
        let once = seen.iter().filter(|o| matches!(&o.ticket, Ticket::Attempt { key: k, .. } if k == key)).count() == 1;
        let tried = s.tried("", log.app.as_ref());
        if once && tried.error().is_none() {
            items.push((*key, history_line(log, *attempt, tried.code(), None, s.latency_ms, f.probe), f.probe));
        }
    }
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let expires_at = log.ctx.expiry(log.ctx.settings.delivery_log_ms());
    log.settle_delivered(&items, expires_at)
}

fn answered<S: Sql>(log: &mut Log<'_, S>, key: Key, attempt: u32, s: &Seen, at_once: &mut Vec<Row>) -> Result<(), StorageError> {
    if let Some(i) = at_once.iter().position(|r| r.key == key) {
        // Delivered, its row written already (delivered_at_once).
        let row = at_once.swap_remove(i);
        log.delivered_out(&row, log.ctx.expiry(log.ctx.settings.delivery_log_ms()))?;
        let code = s.status;
        judge(log, &row, code, None, s.latency_ms)?;
        log.st.count(&row.event_type).delivered += 1;
        let line = attempt_line(log.name(), &row, attempt, Status::Delivered, code, s.latency_ms, None);
        log.fx.log(line);
        return Ok(());
    }
    let flight = log.st.flight.iter().find(|f| f.key == key && f.attempt == attempt).cloned();
    let Some((row, body, history)) = Row::load_full(log.sql, key)? else { return Ok(()) };
    // The request this answer is about is the one out, unless the delivery
    // moved on (its lease ran out and it went again, or it settled): then
    // its answer is recorded, and a success still counts.
    let current = flight.is_some() && row.status == Status::Sending;
    let probe = flight.as_ref().is_some_and(|f| f.probe);
    let tried = s.tried(&body, log.app.as_ref());
    let code = tried.code();
    let error = tried.error().map(str::to_owned);
    let delivered = code.is_some_and(|c| (200..300).contains(&c));
    let line = history_line(log, attempt, code, error.as_deref(), s.latency_ms, probe && current);
    let history = appended(history.as_deref(), &line);
    judge(log, &row, code, error.as_deref(), s.latency_ms)?;
    let unheard = log.unheard();
    // A probe is not charged to the delivery's budget, but a probe that
    // settles it is one of its attempts.
    let settles = delivered || code == Some(410);
    let attempts = if current && probe && settles { row.attempts + 1 } else { row.attempts };
    let change = Edit { attempts: Some(attempts), history: Some(&history), error: error.as_deref() };
    let status = if !current {
        if delivered && (row.status.is_live() || row.status == Status::Held) {
            // Delivered after all: what was to be sent again is not.
            settle(log, &row, Status::Delivered, None, &change)?
        } else {
            log.sql.execute(
                "UPDATE deliveries SET history = ? WHERE hour = ? AND event = ? AND replay = ?",
                &[Arg::Text(&history), key_args(key)[0], key_args(key)[1], key_args(key)[2]],
            )?;
            row.status
        }
    } else if delivered {
        settle(log, &row, Status::Delivered, None, &change)?
    } else if code == Some(410) {
        settle(log, &row, Status::Gone, error.as_deref(), &change)?
    } else if Signal::of(code) == Signal::Down && (log.st.breaker.mode != Mode::Active || unheard) {
        // The app is down (or its listener gone): the delivery waits for
        // it, whatever its budget.
        log.move_to(&row, Place::Held, &change)?;
        log.st.count(&row.event_type).held += 1;
        Status::Held
    } else if attempts >= MAX_ATTEMPTS {
        let reason = format!("gave up after {attempts} attempts; last: {}", error.as_deref().unwrap_or("unknown"));
        let status = settle(log, &row, Status::Failed, Some(&reason), &change)?;
        let line = log.dead_line(&row, attempts, &reason);
        log.fx.log(line);
        status
    } else {
        let delay = schedule::delay_seconds(log.ctx.settings.retry_base_seconds, attempts.max(1), log.ctx.jitter(&row.key.id(log.name())));
        log.move_to(&row, Place::Retrying { at: log.ctx.now + i64::from(delay) * 1000 }, &change)?;
        log.st.count(&row.event_type).retried += 1;
        Status::Retrying
    };
    let line = attempt_line(log.name(), &row, attempt, status, code, s.latency_ms, error.as_deref());
    log.fx.log(line);
    Ok(())
}

/// An attempt's line in its delivery's history.
fn history_line<S: Sql>(log: &Log<'_, S>, attempt: u32, code: Option<u16>, error: Option<&str>, latency_ms: i64, probe: bool) -> String {
    Writer::object()
        .int("n", i64::from(attempt))
        .int("at", log.ctx.now)
        .int_or_null("code", code.map(i64::from))
        .str_or_null("error", error)
        .int("ms", latency_ms)
        .bool("probe", probe)
        .finish()
}

/// What an answer says of the app: its counts, and the breaker's judgement
/// (an app whose listener is gone says nothing of itself: its failure, the
/// listener leaving before it answered, is not the breaker's).
fn judge<S: Sql>(log: &mut Log<'_, S>, row: &Row, code: Option<u16>, error: Option<&str>, latency_ms: i64) -> Result<(), StorageError> {
    let delivered = code.is_some_and(|c| (200..300).contains(&c));
    {
        let counters = log.st.count(&row.event_type);
        counters.attempts += 1;
        counters.succeeded += u64::from(delivered);
        counters.observe_latency(latency_ms);
    }
    let id = row.key.id(log.name());
    let settings = log.ctx.settings.circuit;
    let change = match Signal::of(code) {
        Signal::Up => log.st.breaker.answered(&id, delivered, log.ctx.now, &settings),
        Signal::Down if log.unheard() => Transition::None,
        Signal::Down => log.st.breaker.failed(&id, error.unwrap_or("no answer"), log.ctx.now, &settings),
    };
    log.st.touch();
    breaker_changed(log, change, error)
}

/// Settles `row` as `status`, counted; answers the status.
fn settle<S: Sql>(log: &mut Log<'_, S>, row: &Row, status: Status, reason: Option<&str>, change: &Edit<'_>) -> Result<Status, StorageError> {
    let retention = if status == Status::Delivered { log.ctx.settings.delivery_log_ms() } else { log.ctx.settings.dead_letter_retention_ms() };
    let expires_at = log.ctx.expiry(retention);
    log.move_to(row, Place::Settled { status, reason, expires_at }, change)?;
    let counters = log.st.count(&row.event_type);
    match status {
        Status::Delivered => counters.delivered += 1,
        _ => counters.failed += 1,
    }
    Ok(status)
}

/// What a change of the breaker does: a line, an alert, a drain.
fn breaker_changed<S: Sql>(log: &mut Log<'_, S>, change: Transition, error: Option<&str>) -> Result<(), StorageError> {
    match change {
        Transition::Tripped => {
            log.st.drain = None;
            let line = log.circuit_line("the last attempts all failed");
            log.fx.log(line);
            let summary = format!(
                "{} tripped: its last {} attempts failed; its deliveries are held, and it is probed every {} s or more",
                log.name(),
                log.st.breaker.consecutive_failures,
                log.ctx.settings.circuit.probe_ms / 1000
            );
            super::alerting::raise(log, Kind::Tripped, summary, error.unwrap_or("no answer"));
        }
        Transition::Resumed => {
            let line = log.circuit_line("the app answered again");
            log.fx.log(line);
            log.start_drain()?;
            let summary = format!(
                "{} answers again: its {} held deliveries are released in order, {} a second",
                log.name(),
                log.st.counts.held,
                log.ctx.settings.circuit.drain_per_second
            );
            super::alerting::raise(log, Kind::Recovered, summary, "");
        }
        Transition::ProbeFailed | Transition::None => {}
    }
    Ok(())
}

/// One JSON line per attempt, for Workers Logs: ids, status, attempt, HTTP
/// status, latency and the error; never a body or a secret.
fn attempt_line(name: &str, row: &Row, attempt: u32, status: Status, code: Option<u16>, latency: i64, error: Option<&str>) -> String {
    Writer::object()
        .str("kind", "delivery")
        .str("delivery", &row.key.id(name))
        .str("eventId", &event_hex(row.key.event))
        .str("destination", name)
        .int("attempt", i64::from(attempt))
        .str("status", status.api().as_str())
        .int_or_null("code", code.map(i64::from))
        .int("latencyMs", latency)
        .opt_str("error", error)
        .finish()
}
