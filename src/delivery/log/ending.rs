//! The end of an app's incarnation: what its delivery log does once the app
//! is deleted (the registry says so at once, `/end`) or removed from
//! `DESTINATIONS` (the log finds out at its next step, at most
//! [`super::CHECK_MS`] later).
//!
//! Every delivery still on its way, held or waiting for a retry becomes a
//! dead letter that says its app was removed; the breaker, a pause, a drain
//! and a recovery end with it. Nothing of it is ever sent again: an app of
//! the same name created later at runtime is another incarnation, with a log
//! of its own; a declared app declared again finds this log started afresh
//! ([`restart`]): no deliveries, no metrics, a closed breaker.

use super::super::breaker::Breaker;
use super::super::effects::{Effects, Reply};
use super::super::message::Named;
use super::super::sql::{Arg, Sql, StorageError};
use super::rows::{self, Change};
use super::state::LogState;
use super::{bad_request, delivery_columns, removed_reason, Context, Delivery, ALARM_ROWS};
use crate::json::Writer;

/// `/end` (`{"destination": <key>}`), from the registry as it deletes the
/// app: ends this incarnation now (the alarm finishes what one step does
/// not). Refused while the app is still configured.
pub fn end(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let q = match Named::decode(body) {
        Ok(q) => q,
        Err(e) => return Ok(bad_request(e)),
    };
    let mut st = LogState::load(sql, &ctx.settings.circuit)?;
    match &st.name {
        None => st.touch().name = Some(q.destination.clone()),
        Some(own) if *own != q.destination => return Ok(bad_request(format!("this is the delivery log of {own}, not of {}", q.destination))),
        Some(_) => {}
    }
    // The registry deleted it: that is the end of it, whatever this
    // isolate's copy of the apps (a few seconds old at most) still says. A
    // declared app's log, which the registry never ends, is refused.
    if super::super::destination::incarnation_of_key(&q.destination).is_none() && ctx.settings.destinations.get(&q.destination).is_some_and(|d| d.source == super::super::Source::Declared) {
        return Ok(Effects::reply(Reply::status(409, format!("{} is declared in DESTINATIONS", q.destination))));
    }
    let mut fx = Effects::default();
    let more = end_step(sql, &mut st, ctx, &mut fx)?;
    let next = if more { Some(ctx.now) } else { sql.number("SELECT MIN(wake_at) FROM deliveries", &[])? };
    if let Some(at) = next {
        fx.alarm = st.alarm_by(at, ctx.now);
    }
    super::intake::register(&mut st, &mut fx, false);
    st.save(sql)?;
    let ended = Writer::object().str("ended", &q.destination).int("held", st.counts.held).int("pending", st.counts.pending).finish();
    fx.reply = Some(Reply::ok(ended));
    Ok(fx)
}

/// Ends the incarnation: the first time, the breaker, a pause, the drain and
/// a recovery; each time, up to [`ALARM_ROWS`] deliveries still to be sent
/// become dead letters. Answers whether more remain.
pub(super) fn end_step(sql: &impl Sql, st: &mut LogState, ctx: &Context<'_>, fx: &mut Effects) -> Result<bool, StorageError> {
    let key = st.name.clone().unwrap_or_default();
    if st.ended.is_none() {
        st.touch().ended = Some(ctx.now);
        st.breaker = Breaker::new(&ctx.settings.circuit);
        st.drain = None;
        st.recovery = None;
        st.next_send = 0;
        fx.log(
            Writer::object()
                .str("kind", "ended")
                .str("destination", super::super::destination::name_of_key(&key))
                .opt_str("incarnation", super::super::destination::incarnation_of_key(&key))
                .int("held", st.counts.held)
                .int("pending", st.counts.pending)
                .finish(),
        );
    }
    let live: Vec<Delivery> = sql
        .query(
            concat!(
                "SELECT ",
                delivery_columns!(),
                " FROM deliveries WHERE status IN ('queued', 'retrying', 'sending', 'held') ORDER BY seq LIMIT ?"
            ),
            &[Arg::Int(ALARM_ROWS)],
        )?
        .into_iter()
        .map(Delivery::from_row)
        .collect();
    let reason = removed_reason(&key);
    // The operator removed the app: its dead letters raise no alerts.
    let alerts = st.alerts.clone();
    for d in &live {
        rows::settle(sql, st, ctx, d, super::super::status::Status::Failed, Some(&reason), &Change::NONE)?;
        st.count(&d.event_type).failed += 1;
        fx.log(rows::dead_line(st, d, &reason));
    }
    st.alerts = alerts;
    Ok(live.len() as i64 == ALARM_ROWS)
}

/// The app of an ended incarnation is there again (declared again under the
/// same name): the log starts afresh, keeping nothing of the one before.
pub(super) fn restart(sql: &impl Sql, st: &mut LogState, ctx: &Context<'_>) -> Result<(), StorageError> {
    sql.execute("DELETE FROM deliveries", &[])?;
    sql.execute("DELETE FROM metrics", &[])?;
    let mut fresh = LogState::new(&ctx.settings.circuit);
    fresh.name = st.name.take();
    fresh.alarm = st.alarm;
    fresh.epoch = st.epoch;
    fresh.confirmed = st.confirmed;
    fresh.last_accepted = st.last_accepted;
    *st = fresh;
    Ok(())
}
