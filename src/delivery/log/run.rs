//! The delivery log's alarm: everything that happens to its deliveries
//! with time rather than with a request.
//!
//! In one step, reading a bounded number of rows: rows whose time has come
//! (a lost message queued again, a hold over, a retention over), a probe of
//! a tripped app, the next second of a drain, the next page of a recovery,
//! old metrics forgotten, the registry told; then the alarm is set exactly
//! for the next of these, or cleared when there is none.

use super::super::breaker::Mode;
use super::super::effects::Effects;
use super::super::message::CallResults;
use super::super::metrics;
use super::super::sql::{Arg, Sql, StorageError};
use super::super::status::Status;
use super::intake::register;
use super::rows::{self, Change};
use super::sending::start_drain;
use super::state::LogState;
use super::{delivery_columns, Context, Delivery, Presence, ALARM_ROWS};
use crate::json::Writer;

/// The alarm.
pub fn alarm(sql: &impl Sql, ctx: &Context<'_>) -> Result<Effects, StorageError> {
    let settings = ctx.settings.circuit;
    let now = ctx.now;
    let mut st = super::open_state(sql, ctx)?;
    let mut fx = Effects::default();
    let Some(name) = st.name.clone() else {
        // Never told its name: it holds nothing.
        fx.alarm = st.alarm_exactly(None);
        st.save(sql)?;
        return Ok(fx);
    };
    st.minute.flush(sql, now)?;
    let presence = super::presence_of(ctx, &st);
    let on = presence == Presence::Here;
    let mut more = false;

    // Its app was removed: what it holds ends.
    if presence == Presence::Removed {
        more |= super::ending::end_step(sql, &mut st, ctx, &mut fx)?;
    }

    // Rows whose time has come.
    let due: Vec<Delivery> = sql
        .query(
            concat!("SELECT ", delivery_columns!(), " FROM deliveries WHERE wake_at <= ? ORDER BY wake_at LIMIT ?"),
            &[Arg::Int(now), Arg::Int(ALARM_ROWS)],
        )?
        .into_iter()
        .map(Delivery::from_row)
        .collect();
    more |= due.len() as i64 == ALARM_ROWS;
    st.breaker.probe_lost(now, &settings);
    let mut requeued = 0;
    for d in &due {
        match d.status {
            Status::Sending if d.lease_until.is_some_and(|l| l > now) => {
                sql.execute("UPDATE deliveries SET wake_at = ? WHERE seq = ?", &[Arg::from(d.lease_until), Arg::Int(d.seq)])?;
            }
            // Its app's presence is not known: nothing is sent or ended
            // until it is (the alarm looks again soon).
            s if (s.is_live() || s == Status::Held) && !on => {}
            s if s.is_live() || s == Status::Held => {
                if s == Status::Held {
                    let reason = format!(
                        "held for longer than {} s (HOLD_RETENTION_SECONDS) while the app was down or paused",
                        ctx.settings.hold_retention_seconds
                    );
                    rows::settle(sql, &mut st, ctx, d, Status::Failed, Some(&reason), &Change::NONE)?;
                    st.count(&d.event_type).failed += 1;
                    fx.log(rows::dead_line(&st, d, &reason));
                } else if st.breaker.holds(&d.id) {
                    rows::hold(sql, &mut st, ctx, d, &Change::NONE)?;
                    st.count(&d.event_type).held += 1;
                } else {
                    // No progress within the grace period (a lost message, a
                    // consumer that stopped): queued again.
                    fx.sends.push(rows::queue(sql, &mut st, ctx, d, Status::Queued, 0, &Change::NONE)?.0);
                    requeued += 1;
                }
            }
            _ => rows::delete(sql, &mut st, d)?,
        }
    }
    if requeued > 0 {
        fx.error(format!("destination {name}: no progress on {requeued} deliveries within RECOVERY_GRACE_SECONDS; queued them again"));
    }


    // A tripped app: probe it with the next held delivery after the last
    // one probed.
    if on && st.breaker.probe_due(now) {
        let next = match held_after(sql, st.breaker.probed_seq, i64::MAX, 1)?.pop() {
            Some(d) => Some(d),
            None => held_after(sql, 0, i64::MAX, 1)?.pop(),
        };
        if let Some(d) = next {
            fx.sends.push(rows::queue(sql, &mut st, ctx, &d, Status::Queued, 0, &Change::NONE)?.0);
            st.breaker.start_probe(&d.id, d.seq, now);
            st.touch();
            fx.log(Writer::object().str("kind", "probe").str("destination", &name).str("delivery", &d.id).finish());
        }
    }

    // Catching up: the backlog, in order, DRAIN_PER_SECOND a second.
    if on && st.breaker.mode == Mode::Active {
        if st.drain.is_none() && st.counts.held > 0 {
            start_drain(sql, &mut st, ctx)?;
        }
        if let Some(drain) = st.drain.filter(|d| d.next <= now) {
            // An app with a rate of its own is drained no faster.
            let rate = i64::from(ctx.rate(Some(&name)).map_or(settings.drain_per_second, |r| r.min(settings.drain_per_second)));
            let batch = held_after(sql, 0, drain.up_to, rate)?;
            for d in &batch {
                fx.sends.push(rows::queue(sql, &mut st, ctx, d, Status::Queued, 0, &Change::NONE)?.0);
            }
            st.touch().drain = if (batch.len() as i64) < rate { None } else { Some(super::state::Drain { next: now + 1000, ..drain }) };
        }
    }

    // A recovery in progress: its next page.
    if st.recovery.is_some() {
        more |= super::operator::recover_page(sql, &mut st, ctx)?;
    }

    if metrics::next_expiry(sql)?.is_some_and(|end| end <= now) {
        metrics::prune(sql, now)?;
    }
    register(&mut st, &mut fx, true);
    st.minute.observe_backlog(st.counts.pending + st.counts.held);
    let alerts_due = super::alerting::review(&mut st, ctx, &mut fx);

    // The next time anything is due.
    let mut next = sql.number("SELECT MIN(wake_at) FROM deliveries", &[])?;
    let mut sooner = |t: i64| next = Some(next.map_or(t, |n| n.min(t)));
    if st.breaker.mode == Mode::Tripped && st.counts.held > 0 {
        if let Some(probe) = st.breaker.next_probe_ms {
            sooner(probe);
        }
    }
    if let Some(drain) = st.drain {
        sooner(drain.next);
    }
    if let Some(at) = alerts_due {
        sooner(at);
    }
    if st.counts.pending + st.counts.held > 0 {
        // Whether its app is still there, at least this often.
        sooner(now + super::CHECK_MS);
    }
    if more {
        sooner(now);
    }
    // Metrics past their retention are forgotten too (the current minute's
    // counts wait in the state row for the next operation).
    if let Some(end) = metrics::next_expiry(sql)? {
        sooner(end);
    }
    let mut at = next.map(|t| t.max(now + if more { 0 } else { 1 }));
    if presence == Presence::Unknown && st.counts.pending + st.counts.held > 0 {
        // Rows due now wait until the registry answers: look again soon,
        // not at once.
        at = Some(at.map_or(now + super::UNKNOWN_RETRY_MS, |t| t.max(now + super::UNKNOWN_RETRY_MS)));
    }
    fx.alarm = st.alarm_exactly(at);
    st.save(sql)?;
    Ok(fx)
}

/// Held deliveries with `after < seq <= up_to`, oldest first.
pub(super) fn held_after(sql: &impl Sql, after: i64, up_to: i64, limit: i64) -> Result<Vec<Delivery>, StorageError> {
    Ok(sql
        .query(
            concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM deliveries WHERE status = 'held' AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
            ),
            &[Arg::Int(after), Arg::Int(up_to), Arg::Int(limit)],
        )?
        .into_iter()
        .map(Delivery::from_row)
        .collect())
}

/// The continuation of the log's calls: the registry confirmed (or not) the
/// registration of an epoch (ticket `r:<epoch>`); an outbox took (or not)
/// a hand-off of alerts (ticket `a:<ids>`).
pub fn called(sql: &impl Sql, ctx: &Context<'_>, results: &str) -> Result<Effects, StorageError> {
    let mut st = LogState::load(sql, &ctx.settings.circuit)?;
    let mut fx = Effects::default();
    match CallResults::decode(results) {
        Ok(results) => {
            for r in results {
                if let Some(ids) = r.ticket.strip_prefix("a:") {
                    super::alerting::handed_off(&mut st, ctx, ids, r.status, &mut fx);
                } else if r.status == Some(200) && r.ticket.strip_prefix("r:") == Some(st.epoch.to_string().as_str()) {
                    st.touch().confirmed = true;
                } else if r.status != Some(200) {
                    fx.error(format!(
                        "destination {}: the registry did not take its registration ({}); the alarm tries again",
                        st.name.as_deref().unwrap_or("?"),
                        r.status.map_or_else(|| r.body.clone(), |s| s.to_string())
                    ));
                }
            }
        }
        Err(e) => fx.error(format!("call results: {e}")),
    }
    if let Some(at) = st.alerts.due(&ctx.settings.alerts) {
        fx.alarm = st.alarm_by(at.max(ctx.now), ctx.now);
    }
    st.save(sql)?;
    Ok(fx)
}
