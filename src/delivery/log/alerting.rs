//! A delivery log's alerts ([`crate::delivery::alerts`]): raised where its
//! operations see the event (a trip, a recovery, a pause, a dead letter),
//! or found at the end of an operation (a backlog, a nearly full log);
//! coalesced in the state row, which every operation writes anyway; handed
//! to an outbox by a call whose continuation ([`super::run::called`])
//! forgets what it took. The alarm hands off again what no outbox took.

use super::super::alerts::{self, Kind};
use super::super::effects::{Call, Effects, Object};
use super::super::sql::{Sql, StorageError};
use super::state::LogState;
use super::Context;

/// How long a hand-off may take before the alarm tries it again.
const IN_FLIGHT_MS: i64 = 30_000;

/// An event of `kind` happened to this log's app: `summary` in the bridge's
/// words, `detail` what the app said, if anything (kept apart, quoted).
pub(super) fn raise(st: &mut LogState, ctx: &Context<'_>, kind: Kind, summary: String, detail: &str) {
    let Some(key) = st.name.clone() else { return };
    let name = super::super::destination::name_of_key(&key);
    let state = st.breaker.mode.as_str();
    st.touch().alerts.raise(&ctx.settings.alerts, kind, ctx.now, name, state, summary, detail);
}

/// At the end of an operation: the thresholds, the coalesced alerts whose
/// window is over, and the hand-off of what is pending. Answers when the
/// alerts next need the alarm.
pub(super) fn review(st: &mut LogState, ctx: &Context<'_>, fx: &mut Effects) -> Option<i64> {
    let settings = &ctx.settings.alerts;
    let key = st.name.clone()?;
    let name = super::super::destination::name_of_key(&key).to_owned();
    if settings.targets.is_empty() || alerts::is_alert_log(&name) {
        return None;
    }
    let waiting = st.counts.pending + st.counts.held;
    if !st.alerts.backlog_raised && waiting > settings.backlog {
        st.touch().alerts.backlog_raised = true;
        let summary = format!(
            "{name} has {waiting} deliveries waiting ({} held, {} pending), more than ALERT_BACKLOG ({})",
            st.counts.held, st.counts.pending, settings.backlog
        );
        raise(st, ctx, Kind::Backlog, summary, "");
    } else if st.alerts.backlog_raised && waiting * 2 < settings.backlog {
        st.touch().alerts.backlog_raised = false;
    }
    let max = ctx.settings.max_log_bytes.max(1);
    if !st.alerts.full_raised && st.bytes.saturating_mul(100) >= max.saturating_mul(alerts::FULL_PERCENT) {
        st.touch().alerts.full_raised = true;
        let summary = format!(
            "the delivery log of {name} holds {} bytes, {}% of MAX_LOG_BYTES ({max}); past it, new deliveries for {name} fail at once",
            st.bytes,
            st.bytes.saturating_mul(100) / max
        );
        raise(st, ctx, Kind::LogFull, summary, "");
    } else if st.alerts.full_raised && st.bytes.saturating_mul(100) < max.saturating_mul(alerts::FULL_REARM_PERCENT) {
        st.touch().alerts.full_raised = false;
    }
    let before = st.alerts.pending.len();
    st.alerts.flush(settings, ctx.now, &name, st.breaker.mode.as_str());
    if st.alerts.pending.len() != before {
        st.touch();
    }
    if let Some((scope, payload)) = st.alerts.handoff(settings, &name, ctx.now) {
        let ids: Vec<&str> = st.alerts.pending.iter().map(|a| a.id.as_str()).collect();
        fx.calls.push(Call { to: Object::Outbox(scope), op: "/accept", body: payload, ticket: format!("a:{}", ids.join(",")) });
        fx.then = Some("called");
        // Until the continuation says the outbox took them.
        st.touch().alerts.retry_at = Some(ctx.now + IN_FLIGHT_MS);
    }
    st.alerts.due(settings)
}

/// At the end of an operation: the backlog counted in the minute's
/// metrics, [`review`], and the alarm set no later than the alerts need it.
pub(super) fn finish(sql: &impl Sql, st: &mut LogState, ctx: &Context<'_>, fx: &mut Effects) -> Result<(), StorageError> {
    st.minute.flush(sql, ctx.now)?;
    let waiting = st.counts.pending + st.counts.held;
    if st.minute.backlog.is_none_or(|(most, last)| waiting > most || waiting != last) {
        st.touch().minute.observe_backlog(waiting);
    }
    if let Some(at) = review(st, ctx, fx) {
        let alarm = st.alarm_by(at.max(ctx.now), ctx.now);
        if alarm != super::super::effects::Alarm::Keep {
            fx.alarm = alarm;
        }
    }
    Ok(())
}

/// The continuation's share for alerts: a hand-off (`ticket` `a:<ids>`)
/// answered `status`.
pub(super) fn handed_off(st: &mut LogState, ctx: &Context<'_>, ticket: &str, status: Option<u16>, fx: &mut Effects) {
    let ids: Vec<&str> = ticket.split(',').filter(|s| !s.is_empty()).collect();
    if status == Some(200) {
        st.touch().alerts.taken(&ids);
    } else {
        st.touch().alerts.failed(ctx.now);
        fx.error(format!(
            "alerts of {}: the outbox did not take them ({}); tried again at {}",
            st.name.as_deref().unwrap_or("?"),
            status.map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
            st.alerts.retry_at.unwrap_or(ctx.now)
        ));
    }
}
