//! The end of an app's incarnation: what its delivery log does once the app
//! is deleted (the registry says so at once, `End`) or removed from
//! `DESTINATIONS` (the log finds out at its next step, at most
//! [`super::CHECK_MS`] later).
//!
//! Every delivery still on its way, held, waiting or waiting for a retry
//! becomes a dead letter that says its app was removed; the breaker, a
//! pause, a drain and a recovery end with it. Nothing of it is ever sent
//! again: an app of the same name created later at runtime is another
//! incarnation, with a log of its own; a declared app declared again finds
//! this log started afresh ([`restart`]): no deliveries, no metrics, a
//! closed breaker.

use super::super::breaker::Breaker;
use super::super::effects::Reply;
use super::super::sql::{Sql, StorageError};
use super::super::status::unsettled_sql;
use super::rows::{row_columns, Row};
use super::state::LogState;
use super::{removed_reason, Log, ALARM_ROWS};
use crate::json::Writer;

/// `End`, from the registry as it deletes the app: ends this incarnation now
/// (the alarm finishes what one step does not). A declared app's log, which
/// the registry never ends, is refused.
pub(crate) fn end<S: Sql>(log: &mut Log<'_, S>) -> Result<Reply, StorageError> {
    let key = log.key().to_owned();
    let declared = super::super::destination::incarnation_of_key(&key).is_none()
        && log.ctx.settings.destinations.get(&key).is_some_and(|d| d.source == super::super::Source::Declared);
    if declared {
        return Ok(Reply::status(409, format!("{key} is declared in DESTINATIONS")));
    }
    // The registry deleted it: that is the end of it, whatever this
    // isolate's copy of the apps (a few seconds old at most) still says.
    if end_step(log)? {
        log.more = true;
    }
    let ended = Writer::object().str("ended", &key).int("held", log.st.counts.held).int("pending", log.st.counts.pending).finish();
    Ok(Reply::ok(ended))
}

/// Ends the incarnation: the first time, the breaker, a pause, the drain and
/// a recovery; each time, up to [`ALARM_ROWS`] deliveries still to be sent
/// become dead letters. Answers whether more remain.
pub(crate) fn end_step<S: Sql>(log: &mut Log<'_, S>) -> Result<bool, StorageError> {
    if log.st.ended.is_none() {
        let now = log.ctx.now;
        log.st.touch().ended = Some(now);
        log.st.breaker = Breaker::new(&log.ctx.settings.circuit);
        log.st.drain = None;
        log.st.recovery = None;
        log.st.next_send = 0;
        let key = log.key().to_owned();
        let line = Writer::object()
            .str("kind", "ended")
            .str("destination", log.name())
            .opt_str("incarnation", super::super::destination::incarnation_of_key(&key))
            .int("held", log.st.counts.held)
            .int("pending", log.st.counts.pending)
            .finish();
        log.fx.log(line);
    }
    let live: Vec<Row> = log
        .sql
        .query(
            concat!("SELECT ", row_columns!(), " FROM deliveries WHERE status IN (", unsettled_sql!(), ") LIMIT ?"),
            &[super::super::sql::Arg::Int(ALARM_ROWS)],
        )?
        .into_iter()
        .map(Row::from_sql)
        .collect();
    let reason = removed_reason(log.key());
    // The operator removed the app: its dead letters raise no alerts.
    let alerts = log.st.alerts.clone();
    for row in &live {
        // As it is now: ending one may have moved another (the next of its
        // conversation, for an app that takes them in order).
        let Some(row) = Row::load(log.sql, row.key)? else { continue };
        if !row.status.is_settled() {
            log.fail(&row, &reason)?;
        }
    }
    log.st.alerts = alerts;
    Ok(live.len() as i64 == ALARM_ROWS)
}

/// The app of an ended incarnation is there again (declared again under the
/// same name): the log starts afresh, keeping nothing of the one before.
pub(crate) fn restart<S: Sql>(log: &mut Log<'_, S>) -> Result<(), StorageError> {
    for table in ["DELETE FROM deliveries", "DELETE FROM waits", "DELETE FROM held", "DELETE FROM lines", "DELETE FROM heads", "DELETE FROM metrics"] {
        log.sql.execute(table, &[])?;
    }
    let mut fresh = LogState::new(&log.ctx.settings.circuit);
    fresh.name = log.st.name.take();
    fresh.alarm = log.st.alarm;
    fresh.epoch = log.st.epoch;
    fresh.confirmed = log.st.confirmed;
    fresh.last_accepted = log.st.last_accepted;
    fresh.seq = log.st.seq;
    log.st = fresh;
    log.refresh_app();
    Ok(())
}
