//! A log's alerts ([`crate::delivery::alerts`]): raised where its steps see
//! the event (a trip, a recovery, a pause, a dead letter), or found as a
//! step finishes (a backlog, a nearly full log); coalesced in the state row,
//! which every step writes anyway; handed to each alert target's own log
//! by a call, forgotten once every target's log took them. A hand-off that
//! failed goes again later (the targets' logs drop what they already have).

use super::super::alerts::{self, Kind, ALERT_TYPE};
use super::super::effects::{Call, CallTicket, Object};
use super::input::{Accept, NewDelivery};
use super::super::sql::Sql;
use super::Log;

/// How long a hand-off may take before the alarm tries it again.
const IN_FLIGHT_MS: i64 = 30_000;

/// An event of `kind` happened to this log's app: `summary` in the bridge's
/// words, `detail` what the app said, if anything (kept apart, quoted).
pub(crate) fn raise<S: Sql>(log: &mut Log<'_, S>, kind: Kind, summary: String, detail: &str) {
    if log.st.name.is_none() {
        return;
    }
    let name = log.name().to_owned();
    let state = log.st.breaker.mode.as_str();
    let (settings, now) = (&log.ctx.settings.alerts, log.ctx.now);
    let about = alerts::About { kind, now, destination: &name, state };
    log.st.touch().alerts.raise(settings, about, summary, detail);
}

/// As a step finishes: the thresholds, the coalesced alerts whose window is
/// over, and the hand-off of what is pending. Answers when the alerts next
/// need the alarm.
pub(crate) fn review<S: Sql>(log: &mut Log<'_, S>) -> Option<i64> {
    let settings = &log.ctx.settings.alerts;
    let name = log.name().to_owned();
    if settings.targets.is_empty() || alerts::is_alert_log(&name) {
        return None;
    }
    let waiting = log.st.counts.pending + log.st.counts.held;
    if !log.st.alerts.backlog_raised && waiting > settings.backlog {
        log.st.touch().alerts.backlog_raised = true;
        let summary = format!(
            "{name} has {waiting} deliveries waiting ({} held, {} pending), more than ALERT_BACKLOG ({})",
            log.st.counts.held, log.st.counts.pending, settings.backlog
        );
        raise(log, Kind::Backlog, summary, "");
    } else if log.st.alerts.backlog_raised && waiting * 2 < settings.backlog {
        log.st.touch().alerts.backlog_raised = false;
    }
    let max = log.ctx.settings.max_log_bytes.max(1);
    let bytes = log.st.bytes;
    if !log.st.alerts.full_raised && bytes.saturating_mul(100) >= max.saturating_mul(alerts::FULL_PERCENT) {
        log.st.touch().alerts.full_raised = true;
        let summary = format!(
            "the delivery log of {name} holds {bytes} bytes, {}% of MAX_LOG_BYTES ({max}); past it, new deliveries for {name} fail at once",
            bytes.saturating_mul(100) / max
        );
        raise(log, Kind::LogFull, summary, "");
    } else if log.st.alerts.full_raised && bytes.saturating_mul(100) < max.saturating_mul(alerts::FULL_REARM_PERCENT) {
        log.st.touch().alerts.full_raised = false;
    }
    let before = log.st.alerts.pending.len();
    let (now, state) = (log.ctx.now, log.st.breaker.mode.as_str());
    log.st.alerts.flush(settings, now, &name, state);
    if log.st.alerts.pending.len() != before {
        log.st.touch();
    }
    let handed = log.st.alerts.handoff(settings, now);
    if !handed.is_empty() {
        for (target, alerts) in handed {
            let deliveries = alerts
                .iter()
                .map(|(id, body)| NewDelivery {
                    event: id.clone(),
                    event_type: ALERT_TYPE.to_owned(),
                    scope: format!("alerts:{name}"),
                    received_at: now,
                    org: None,
                    body: body.clone(),
                })
                .collect();
            let ids = alerts.into_iter().map(|(id, _)| id).collect();
            let body = Accept { key: target.clone(), deliveries }.encode();
            log.fx.calls.push(Call { to: Object::DeliveryLog(target), path: "/accept", body, ticket: Some(CallTicket::Alerts { ids }) });
        }
        // Until the targets' logs say they took them.
        log.st.touch().alerts.retry_at = Some(now + IN_FLIGHT_MS);
    }
    log.st.alerts.due(settings)
}
