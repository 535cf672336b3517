//! The log's alarm: everything that happens to its deliveries with time
//! rather than with a request. In one step, reading a bounded number of
//! rows: requests whose lease ran out (their process stopped) go again, a
//! removed app's deliveries end, holds past their time end, a tripped app
//! is probed, a backlog drains, what waits for its time is sent, a
//! recovery goes on, rows and metrics past their retention go.

use super::super::breaker::Mode;
use super::super::key::{hour_of, HOUR_MS};
use super::super::metrics;
use super::super::schedule::MAX_ATTEMPTS;
use super::super::sql::{Arg, Sql, StorageError};
use super::super::status::Status;
use super::places::{Edit, Place};
use super::rows::{d_row_columns, row_columns, Row};
use super::state::Drain;
use super::{Log, Presence, ALARM_ROWS};
use crate::json::Writer;

pub(crate) fn alarm<S: Sql>(log: &mut Log<'_, S>) -> Result<(), StorageError> {
    if log.st.name.is_none() {
        return Ok(());
    }
    let now = log.ctx.now;
    leases(log)?;
    match log.presence() {
        // Its app was removed: what it holds ends.
        Presence::Removed => {
            if super::ending::end_step(log)? {
                log.more = true;
            }
        }
        Presence::Unknown => {}
        Presence::Here => {
            if !log.ordered() && log.has_lines()? && log.release_lines()? {
                log.more = true;
            }
            holds_over(log)?;
            probe(log)?;
            drain(log)?;
            // What waits for its time goes in finish (`pull`), for every step.
        }
    }
    if log.st.recovery.is_some() && super::replays::recover_page(log)? {
        log.more = true;
    }
    if log.st.next_expiry.is_some_and(|at| at <= now) {
        expire(log)?;
    }
    if metrics::next_expiry(log.sql)?.is_some_and(|end| end <= now) {
        metrics::prune(log.sql, now)?;
    }
    Ok(())
}

/// Requests out whose lease ran out: their process stopped before it
/// reported (or the report was lost). Each goes again; a delivery whose
/// every attempt went this way is a dead letter that says so.
fn leases<S: Sql>(log: &mut Log<'_, S>) -> Result<(), StorageError> {
    let now = log.ctx.now;
    let lost: Vec<_> = log.st.flight.iter().filter(|f| f.lease_until <= now).cloned().collect();
    if lost.is_empty() {
        return Ok(());
    }
    let settings = log.ctx.settings.circuit;
    log.st.breaker.probe_lost(now, &settings);
    let mut again = 0;
    for f in &lost {
        let Some(row) = Row::load(log.sql, f.key)? else {
            log.st.touch().flight.retain(|g| g.key != f.key);
            continue;
        };
        if row.status != Status::Sending {
            log.st.touch().flight.retain(|g| g.key != f.key);
            continue;
        }
        if row.attempts >= MAX_ATTEMPTS && !f.probe {
            let reason = format!("gave up after {} attempts; the last never reported back (the process sending it stopped)", row.attempts);
            log.fail(&row, &reason)?;
        } else {
            log.move_to(&row, Place::Queued { at: now }, &Edit::NONE)?;
            again += 1;
        }
    }
    if again > 0 {
        let line = format!("destination {}: {again} requests never reported back within their lease (RECOVERY_GRACE_SECONDS); sending them again", log.name());
        log.fx.error(line);
    }
    Ok(())
}

/// The held deliveries, oldest first: joined to their rows.
macro_rules! held_rows {
    () => {
        " FROM held h JOIN deliveries d ON d.hour = h.hour AND d.event = h.event AND d.replay = h.replay \
         WHERE h.seq > ? AND h.seq <= ? ORDER BY h.seq LIMIT ?"
    };
}

/// The held deliveries of a page, oldest first, after log position `after`
/// and up to `up_to`.
pub(crate) fn held_after<S: Sql>(log: &Log<'_, S>, after: i64, up_to: i64, limit: i64) -> Result<Vec<Row>, StorageError> {
    Ok(log
        .sql
        .query(concat!("SELECT ", d_row_columns!(), held_rows!()), &[Arg::Int(after), Arg::Int(up_to), Arg::Int(limit)])?
        .into_iter()
        .map(Row::from_sql)
        .collect())
}

/// [`held_after`] from the first, with their bodies: what is sent.
pub(crate) fn held_to_send<S: Sql>(log: &Log<'_, S>, up_to: i64, limit: i64) -> Result<Vec<(Row, String)>, StorageError> {
    Ok(log
        .sql
        .query(concat!("SELECT ", d_row_columns!(), ", d.body", held_rows!()), &[Arg::Int(0), Arg::Int(up_to), Arg::Int(limit)])?
        .into_iter()
        .map(Row::with_body)
        .collect())
}

/// Held deliveries past `HOLD_RETENTION_SECONDS` fail.
fn holds_over<S: Sql>(log: &mut Log<'_, S>) -> Result<(), StorageError> {
    if log.st.counts.held == 0 {
        return Ok(());
    }
    let hold = log.ctx.settings.hold_retention_ms();
    // The oldest first, alone: most alarms find it young and read no more.
    let over = |row: &Row| row.accepted_at + hold <= log.ctx.now;
    if !held_after(log, 0, i64::MAX, 1)?.first().is_some_and(over) {
        return Ok(());
    }
    let old = held_after(log, 0, i64::MAX, ALARM_ROWS)?;
    for row in old.iter().take_while(|r| over(r)) {
        let reason = format!(
            "held for longer than {} s (HOLD_RETENTION_SECONDS) while the app was down or paused",
            log.ctx.settings.hold_retention_seconds
        );
        // As it is now (failing one may have moved another).
        let Some(row) = Row::load(log.sql, row.key)? else { continue };
        if row.status == Status::Held {
            log.fail(&row, &reason)?;
        }
    }
    Ok(())
}

/// A tripped app: probe it with the next held delivery after the last one
/// probed (from the oldest again past the end), so that a delivery it keeps
/// refusing never pins the probes.
fn probe<S: Sql>(log: &mut Log<'_, S>) -> Result<(), StorageError> {
    if !log.st.breaker.probe_due(log.ctx.now) || log.unheard() {
        return Ok(());
    }
    let next = match held_after(log, log.st.breaker.probed_seq, i64::MAX, 1)?.pop() {
        Some(row) => Some(row),
        None => held_after(log, 0, i64::MAX, 1)?.pop(),
    };
    if let Some(row) = next {
        let id = row.key.id(log.name());
        log.st.breaker.start_probe(&id, row.seq, log.ctx.now);
        log.st.touch();
        log.send_row(&row, true)?;
        let line = Writer::object().str("kind", "probe").str("destination", log.name()).str("delivery", &id).finish();
        log.fx.log(line);
    }
    Ok(())
}

/// Catching up: a backlog starts draining once the app is active again;
/// every step releases its share ([`Log::release`], in `pull`).
fn drain<S: Sql>(log: &mut Log<'_, S>) -> Result<(), StorageError> {
    if log.st.breaker.mode != Mode::Active || log.unheard() {
        return Ok(());
    }
    if log.st.drain.is_none() && log.st.counts.held > 0 {
        log.start_drain()?;
    }
    Ok(())
}

impl<S: Sql> Log<'_, S> {
    /// The backlog to drain now that the app is back: the held deliveries as
    /// they are (later ones go out at once). A drain already going on takes
    /// them on, in the same second's allowance.
    pub(crate) fn start_drain(&mut self) -> Result<(), StorageError> {
        let Some(last) = self.sql.number("SELECT MAX(seq) FROM held", &[])? else {
            if self.st.drain.is_some() {
                self.st.touch().drain = None;
            }
            return Ok(());
        };
        let now = self.ctx.now;
        let drain = match self.st.drain {
            Some(d) => Drain { up_to: d.up_to.max(last), ..d },
            None => Drain { up_to: last, next: now, left: 0 },
        };
        self.st.touch().drain = Some(drain);
        Ok(())
    }
}

/// Settled rows past their retention go, in batches: the hours old enough
/// to hold any are read, and what expired is deleted. The next expiry is no
/// earlier than the next hour's rows can expire.
fn expire<S: Sql>(log: &mut Log<'_, S>) -> Result<(), StorageError> {
    let now = log.ctx.now;
    let settings = log.ctx.settings;
    let shortest = settings.delivery_log_ms().min(settings.dead_letter_retention_ms());
    let cutoff = hour_of(now - shortest);
    let rows: Vec<Row> = log
        .sql
        .query(
            concat!("SELECT ", row_columns!(), " FROM deliveries WHERE hour <= ? AND expires_at <= ? LIMIT ?"),
            &[Arg::Int(cutoff), Arg::Int(now), Arg::Int(ALARM_ROWS * 4)],
        )?
        .into_iter()
        .map(Row::from_sql)
        .collect();
    let full = rows.len() as i64 == ALARM_ROWS * 4;
    for row in &rows {
        log.delete(row)?;
    }
    let next = if full {
        Some(now)
    } else {
        // The earliest a row left can expire: those of the hours read, and
        // no earlier than the next hour's can.
        let left = log.sql.number("SELECT MIN(expires_at) FROM deliveries WHERE hour <= ? AND expires_at IS NOT NULL", &[Arg::Int(cutoff)])?;
        let later = log.sql.number("SELECT MIN(hour) FROM deliveries WHERE hour > ?", &[Arg::Int(cutoff)])?.map(|h| h * HOUR_MS + shortest);
        match (left, later) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    };
    log.st.touch().next_expiry = next.map(|t| t.max(now));
    Ok(())
}
