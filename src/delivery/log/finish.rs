//! The one finishing step every step of a log runs, whatever its inputs:
//! what waits and may go is sent, the minute's metrics and the backlog are
//! kept, alerts are reviewed and handed over, the registry is told whether
//! the log holds anything, the alarm is set for the next time anything is
//! due (the rule exists here only), and the state is saved, once.

use super::super::breaker::Mode;
use super::super::effects::{Alarm, Call, CallResult, CallTicket, Effects, Object};
use super::super::metrics;
use super::super::sql::{Sql, StorageError};
use super::{Log, Presence, CHECK_MS, EXPIRY_GRAIN_MS, REPORT_WITHIN_MS, UNKNOWN_RETRY_MS};
use crate::json::Writer;

impl<S: Sql> Log<'_, S> {
    /// Ends the step: `alarm` when it is the alarm's own (which sets the
    /// alarm exactly; any other step only moves it earlier).
    pub(crate) fn finish(mut self, alarm: bool) -> Result<Effects, StorageError> {
        if self.st.name.is_some() {
            self.pull()?;
            let waiting = self.st.counts.pending + self.st.counts.held;
            if self.st.minute.backlog.is_none_or(|(most, last)| waiting > most || waiting != last) {
                self.st.touch().minute.observe_backlog(waiting);
            }
            let alerts_due = super::alerting::review(&mut self);
            self.register(alarm);
            let next = self.next_wake(alerts_due)?;
            self.fx.alarm = if alarm { self.st.alarm_exactly(next) } else { next.map_or(Alarm::Keep, |at| self.st.alarm_by(at, self.ctx.now)) };
        } else if alarm {
            // Never told its key: it holds nothing.
            self.fx.alarm = self.st.alarm_exactly(None);
        }
        if !self.fx.posts.is_empty() {
            // Held so that several answers share one step, unless
            // deliveries wait for the room their answers make.
            self.fx.report_within_ms = if self.crowded || self.st.flight.len() >= self.max_flight() { 0 } else { REPORT_WITHIN_MS };
        }
        self.st.save(self.sql)?;
        Ok(self.fx)
    }

    /// The next time the log must look at anything: the one rule.
    fn next_wake(&self, alerts_due: Option<i64>) -> Result<Option<i64>, StorageError> {
        let now = self.ctx.now;
        let mut next: Option<i64> = None;
        let mut sooner = |t: i64| next = Some(next.map_or(t, |n: i64| n.min(t)));
        // A request out whose process stops is sent again after its lease.
        if let Some(lease) = self.st.flight.iter().map(|f| f.lease_until).min() {
            sooner(lease);
        }
        // What waits for its time, when it could go (with no room, the
        // answers of the requests out make room and send it).
        if self.st.flight.len() < self.max_flight() {
            if let Some(at) = self.sql.number("SELECT MIN(at) FROM waits", &[])? {
                sooner(at);
            }
        }
        if self.st.counts.held > 0 && !self.unheard() {
            if self.st.breaker.mode == Mode::Tripped {
                if let Some(probe) = self.st.breaker.next_probe_ms {
                    sooner(probe);
                }
            }
            if let Some(drain) = self.st.drain.filter(|_| self.st.breaker.mode == Mode::Active) {
                sooner(drain.next);
            }
        }
        if self.st.counts.held > 0 {
            if let Some(oldest) = super::timers::held_after(self, 0, i64::MAX, 1)?.first() {
                sooner(oldest.accepted_at + self.ctx.settings.hold_retention_ms());
            }
        }
        if let Some(at) = self.st.next_expiry {
            sooner(at);
        }
        if let Some(end) = metrics::next_expiry(self.sql)? {
            // In batches, as settled rows are: one alarm forgets many minutes.
            sooner(end + (EXPIRY_GRAIN_MS - end.rem_euclid(EXPIRY_GRAIN_MS)) % EXPIRY_GRAIN_MS);
        }
        if let Some(at) = alerts_due {
            sooner(at);
        }
        let live = self.st.counts.pending + self.st.counts.held > 0;
        if live {
            // Whether its app is still there, at least this often.
            sooner(now + CHECK_MS);
        }
        if self.st.recovery.is_some() || self.more {
            sooner(now);
        }
        // An app that no longer takes conversations in order: what waits
        // in line is released at once.
        if !self.ordered() && self.st.counts.pending > self.st.flight.len() as i64 && self.presence() == Presence::Here && self.has_lines()? {
            sooner(now);
        }
        if next.is_some() && !self.more && self.presence() == Presence::Unknown && live {
            // What is due waits until the registry answers: look again
            // soon, not at once.
            next = next.map(|t| t.max(now + UNKNOWN_RETRY_MS));
        }
        Ok(next)
    }

    /// Tells the registry, when it must be told, whether this log holds
    /// deliveries (so that the admin API still lists them once its app is
    /// removed). A change gets a new epoch; a call the registry did not
    /// confirm is made again by the alarm.
    fn register(&mut self, again: bool) {
        let Some(key) = self.st.name.clone() else { return };
        let holds = self.st.counts.total() > 0;
        if holds != (self.st.epoch > 0) {
            if !holds && self.st.epoch == 0 {
                return;
            }
            let next = self.st.epoch.abs() + 1;
            self.st.epoch = if holds { next } else { -next };
            self.st.confirmed = false;
            self.st.touch();
        } else if self.st.confirmed || self.st.epoch == 0 || !again {
            return;
        }
        let body = Writer::object().str("destination", &key).int("epoch", self.st.epoch.abs()).finish();
        self.fx.calls.push(Call {
            to: Object::Registry,
            path: if holds { "/register" } else { "/unregister" },
            body,
            ticket: Some(CallTicket::Registration { epoch: self.st.epoch }),
        });
    }
}

/// What other objects answered: the registry confirmed (or not) the
/// registration of an epoch; an alert target's log took (or not) alerts.
pub(crate) fn called<S: Sql>(log: &mut Log<'_, S>, results: Vec<CallResult>) {
    let mut alerts_taken: Option<Vec<String>> = None;
    let mut alerts_failed = false;
    for r in results {
        match r.ticket {
            CallTicket::Alerts { ids } => {
                if r.status == Some(200) {
                    alerts_taken.get_or_insert_with(Vec::new).extend(ids);
                } else {
                    alerts_failed = true;
                    let line = format!(
                        "alerts of {}: an alert target's log did not take them ({}); tried again later",
                        log.name(),
                        r.status.map_or_else(|| clip(&r.body), |s| s.to_string())
                    );
                    log.fx.error(line);
                }
            }
            CallTicket::Registration { epoch } => {
                if r.status == Some(200) && epoch == log.st.epoch {
                    log.st.touch().confirmed = true;
                } else if r.status != Some(200) {
                    let line = format!(
                        "destination {}: the registry did not take its registration ({}); the alarm tries again",
                        log.name(),
                        r.status.map_or_else(|| clip(&r.body), |s| s.to_string())
                    );
                    log.fx.error(line);
                }
            }
            CallTicket::Forward { .. } => {}
        }
    }
    if alerts_failed {
        log.st.touch().alerts.failed(log.ctx.now);
    } else if let Some(ids) = alerts_taken {
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        log.st.touch().alerts.taken(&ids);
    }
}

fn clip(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}
