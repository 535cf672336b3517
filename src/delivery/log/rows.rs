//! The moves of one delivery's row, each one statement, each keeping the
//! state row's counts and size in step: queue it (anew), hold it, settle
//! it, delete it, replay it.

use super::super::effects::Send;
use super::super::handoff;
use super::super::message::{Ref, QUEUE_MAX_DELAY_SECONDS};
use super::super::sql::{Arg, Sql, StorageError};
use super::super::status::Status;
use super::state::LogState;
use super::{Context, Delivery};

/// Queues `d` anew (generation + 1) as `status` (queued, or retrying after
/// a failed attempt), its message held back `delay_seconds` (or longer, to
/// keep to its app's rate: [`LogState::pace`]); answers the
/// message and when the row is looked at again. If nothing shows progress by the delay and the recovery grace,
/// the alarm queues it again.
pub fn queue(
    sql: &impl Sql,
    st: &mut LogState,
    ctx: &Context<'_>,
    d: &Delivery,
    status: Status,
    delay_seconds: u32,
    change: &Change<'_>,
) -> Result<(Send, i64), StorageError> {
    let rate = ctx.rate(st.name.as_deref());
    let delay_seconds = st.pace(ctx.now, rate, delay_seconds).min(QUEUE_MAX_DELAY_SECONDS);
    let generation = d.generation.saturating_add(1);
    let wake = ctx.now + i64::from(delay_seconds) * 1000 + ctx.settings.recovery_grace_ms();
    sql.execute(
        "UPDATE deliveries SET status = ?, generation = ?, probe = 0, lease_until = NULL, wake_at = ?, updated_at = ?, \
         attempts = COALESCE(?, attempts), history = COALESCE(?, history), last_error = COALESCE(?, last_error) WHERE seq = ?",
        &[
            Arg::Text(status.sql()),
            Arg::Int(i64::from(generation)),
            Arg::Int(wake),
            Arg::Int(ctx.now),
            change.attempts.map(i64::from).into(),
            change.history.into(),
            change.error.into(),
            Arg::Int(d.seq),
        ],
    )?;
    st.moved(d.status, status);
    Ok((message(st, &d.id, generation, delay_seconds), wake))
}

/// The queue message of a delivery.
pub fn message(st: &LogState, id: &str, generation: u32, delay_seconds: u32) -> Send {
    let destination = st.name.clone().unwrap_or_default();
    Send { body: Ref { destination, id: id.to_owned(), generation }.encode(), delay_seconds }
}

/// When a hold that started at `accepted_at` ends.
pub fn hold_end(ctx: &Context<'_>, accepted_at: i64) -> i64 {
    accepted_at + ctx.settings.hold_retention_ms()
}

/// Holds `d`: not sent until its app is back, resumed or its turn in a
/// drain comes; no attempt used. Answers when the hold ends.
pub fn hold(sql: &impl Sql, st: &mut LogState, ctx: &Context<'_>, d: &Delivery, change: &Change<'_>) -> Result<i64, StorageError> {
    let end = hold_end(ctx, d.accepted_at);
    sql.execute(
        "UPDATE deliveries SET status = 'held', probe = 0, lease_until = NULL, wake_at = ?, updated_at = ?, \
         attempts = COALESCE(?, attempts), history = COALESCE(?, history), last_error = COALESCE(?, last_error) WHERE seq = ?",
        &[
            Arg::Int(end),
            Arg::Int(ctx.now),
            change.attempts.map(i64::from).into(),
            change.history.into(),
            change.error.into(),
            Arg::Int(d.seq),
        ],
    )?;
    st.moved(d.status, Status::Held);
    Ok(end)
}

/// Settles `d` as delivered, failed or gone; it is kept for its retention,
/// whose end this answers.
pub fn settle(
    sql: &impl Sql,
    st: &mut LogState,
    ctx: &Context<'_>,
    d: &Delivery,
    status: Status,
    reason: Option<&str>,
    change: &Change<'_>,
) -> Result<i64, StorageError> {
    let retention = if status == Status::Delivered { ctx.settings.delivery_log_ms() } else { ctx.settings.dead_letter_retention_ms() };
    let expires = ctx.expiry(retention);
    sql.execute(
        "UPDATE deliveries SET status = ?, probe = 0, lease_until = NULL, wake_at = ?, expires_at = ?, \
         reason = COALESCE(?, reason), updated_at = ?, attempts = COALESCE(?, attempts), history = COALESCE(?, history), \
         last_error = COALESCE(?, last_error) WHERE seq = ?",
        &[
            Arg::Text(status.sql()),
            Arg::Int(expires),
            Arg::Int(expires),
            Arg::from(reason),
            Arg::Int(ctx.now),
            change.attempts.map(i64::from).into(),
            change.history.into(),
            change.error.into(),
            Arg::Int(d.seq),
        ],
    )?;
    st.moved(d.status, status);
    if status.is_dead() {
        let key = st.name.clone().unwrap_or_default();
        let name = super::super::destination::name_of_key(&key);
        let why = reason.or(change.error).unwrap_or("no reason kept");
        super::alerting::raise(st, ctx, super::super::alerts::Kind::DeadLetter, format!("{} to {name} is a dead letter", d.id), why);
    }
    Ok(expires)
}

/// The JSON line for a delivery that became a dead letter (failed), for
/// Workers Logs: ids, attempts and the reason, never the body.
pub fn dead_line(st: &LogState, d: &Delivery, reason: &str) -> String {
    crate::json::Writer::object()
        .str("kind", "dead-letter")
        .str("delivery", &d.id)
        .str("eventId", &d.event_id)
        .str("destination", super::super::destination::name_of_key(st.name.as_deref().unwrap_or("")))
        .int("attempts", i64::from(d.attempts))
        .str("reason", reason)
        .finish()
}

/// Deletes `d` (its retention is over).
pub fn delete(sql: &impl Sql, st: &mut LogState, d: &Delivery) -> Result<(), StorageError> {
    sql.execute("DELETE FROM deliveries WHERE seq = ?", &[Arg::Int(d.seq)])?;
    st.add(d.status, -1);
    st.bytes -= d.size;
    if st.bytes < 0 {
        st.bytes = 0;
    }
    Ok(())
}

/// A new delivery `<id>.r<n>` with the same event (and so the same
/// `webhook-id`) as `original`, queued (answering its message) or held;
/// `original` points at it, and a dead letter becomes `replayed`; answers
/// when the new row is looked at again. `n` is
/// the first that is free, so a replay left from an earlier life of the
/// same delivery never collides.
pub fn replay(
    sql: &impl Sql,
    st: &mut LogState,
    ctx: &Context<'_>,
    original: &Delivery,
    held: bool,
    reason: &str,
) -> Result<(String, Option<Send>, i64), StorageError> {
    let mut id = handoff::replay_id(&original.id);
    for _ in 0..1000 {
        if Delivery::find(sql, &id)?.is_none() {
            break;
        }
        id = handoff::replay_id(&id);
    }
    let status = if held { Status::Held } else { Status::Queued };
    let accepted = st.accept_time(ctx.now);
    let wake = if held { hold_end(ctx, accepted) } else { ctx.now + ctx.settings.recovery_grace_ms() };
    sql.execute(
        "INSERT INTO deliveries (id, event_id, type, scope, conversation, body, status, generation, attempts, created_at, \
         updated_at, accepted_at, wake_at, size, reason) SELECT ?, event_id, type, scope, conversation, body, ?, 1, 0, ?, ?, ?, ?, \
         COALESCE(size, length(body) + 256), ? FROM deliveries WHERE seq = ?",
        &[
            Arg::Text(&id),
            Arg::Text(status.sql()),
            Arg::Int(ctx.now),
            Arg::Int(ctx.now),
            Arg::Int(accepted),
            Arg::Int(wake),
            Arg::Text(reason),
            Arg::Int(original.seq),
        ],
    )?;
    st.add(status, 1);
    st.bytes += original.size;
    if original.status.is_dead() {
        let expires = ctx.expiry(ctx.settings.dead_letter_retention_ms());
        sql.execute(
            "UPDATE deliveries SET status = 'replayed', replayed_as = ?, wake_at = ?, expires_at = ?, updated_at = ? WHERE seq = ?",
            &[Arg::Text(&id), Arg::Int(expires), Arg::Int(expires), Arg::Int(ctx.now), Arg::Int(original.seq)],
        )?;
        st.moved(original.status, Status::Replayed);
    } else {
        sql.execute(
            "UPDATE deliveries SET replayed_as = ?, updated_at = ? WHERE seq = ?",
            &[Arg::Text(&id), Arg::Int(ctx.now), Arg::Int(original.seq)],
        )?;
    }
    let send = (!held).then(|| message(st, &id, 1, 0));
    Ok((id, send, wake))
}

/// What else changes with a move: the attempts charged, the history (the
/// whole new text), the last error. `None` keeps what the row has.
#[derive(Clone, Copy, Debug, Default)]
pub struct Change<'a> {
    pub attempts: Option<u32>,
    pub history: Option<&'a str>,
    pub error: Option<&'a str>,
}

impl Change<'_> {
    pub const NONE: Change<'static> = Change { attempts: None, history: None, error: None };
}

/// A delivery's history with one more attempt (one JSON object a line),
/// keeping at most [`super::HISTORY_MAX`] lines: the oldest probes go first,
/// then the oldest attempts.
pub fn appended(history: Option<&str>, line: &str) -> String {
    let mut lines: Vec<&str> = history.map(|h| h.split('\n').filter(|l| !l.is_empty()).collect()).unwrap_or_default();
    lines.push(line);
    while lines.len() > super::HISTORY_MAX {
        let drop = lines.iter().position(|l| l.contains("\"probe\":true")).unwrap_or(0);
        lines.remove(drop);
    }
    lines.join("\n")
}
