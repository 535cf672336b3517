//! Taking deliveries in (`/add`, from an outbox): the delivery log is where
//! deduplication happens, since it keeps every delivery at least as long
//! as the deduplication window.
//!
//! For each delivery of the request:
//! - **new**: stored and queued at once, or held (the app is down or
//!   paused), or failed at once (its destination is no longer configured,
//!   or the log is over `MAX_LOG_BYTES`: the reason is kept, the body not);
//! - **seen within `DEDUP_WINDOW_SECONDS`** (or still on its way): dropped;
//! - **seen before the window and since settled**: sent again, as a new
//!   delivery `<id>.r<n>` with the same `webhook-id` (a backfill run again
//!   after a day delivers again, and says so in the log).

use super::super::alerts::Kind;
use super::super::effects::{Call, Effects, Object, Reply};
use super::super::message::{Add, Added, Registration};
use super::super::sql::{Arg, Sql, StorageError};
use super::super::status::Status;
use super::rows::{self, hold_end};
use super::schema::ROW_OVERHEAD;
use super::state::LogState;
use super::{bad_request, Context, Delivery, Presence};

/// `/add`: answers [`Added`].
pub fn add(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let add = match Add::decode(body) {
        Ok(add) => add,
        Err(e) => return Ok(bad_request(e)),
    };
    let mut st = super::open_state(sql, ctx)?;
    match &st.name {
        None => st.touch().name = Some(add.destination.clone()),
        Some(name) if *name != add.destination => {
            return Ok(bad_request(format!("this is the delivery log of {name}, not of {}", add.destination)));
        }
        Some(_) => {}
    }
    st.minute.flush(sql, ctx.now)?;
    let name = add.destination.as_str();
    // Not known to be gone (the registry could not be asked): taken in, and
    // decided when it would be sent.
    let on = super::presence_of(ctx, &st) != Presence::Removed;
    let rate = ctx.rate(Some(name));
    let window = ctx.settings.dedup_window_ms();
    let mut fx = Effects::default();
    let mut added = Added::default();
    let mut wake = i64::MAX;
    for d in &add.deliveries {
        let conversation = conversation_of(&d.scope);
        let size = d.body.len() as i64 + ROW_OVERHEAD;
        let (status, reason, body) = if !on {
            (Status::Failed, Some(super::removed_reason(name)), d.body.as_str())
        } else if st.bytes + size > ctx.settings.max_log_bytes {
            (
                Status::Failed,
                Some(format!(
                    "the delivery log of {name} is full: it holds {} bytes, and MAX_LOG_BYTES is {}; the event was not kept",
                    st.bytes, ctx.settings.max_log_bytes
                )),
                "",
            )
        } else if st.breaker.sends() {
            (Status::Queued, None, d.body.as_str())
        } else {
            (Status::Held, None, d.body.as_str())
        };
        let accepted = st.last_accepted.max(ctx.now - 1) + 1;
        let delay = if status == Status::Queued { st.pace(ctx.now, rate, 0) } else { 0 };
        let row_wake = match status {
            Status::Queued => ctx.now + i64::from(delay) * 1000 + ctx.settings.recovery_grace_ms(),
            Status::Held => hold_end(ctx, accepted),
            _ => ctx.expiry(ctx.settings.dead_letter_retention_ms()),
        };
        let stored_size = if body.is_empty() { ROW_OVERHEAD } else { size };
        let written = sql.execute(
            "INSERT INTO deliveries (id, event_id, type, scope, conversation, body, status, generation, attempts, created_at, \
             updated_at, accepted_at, wake_at, expires_at, size, reason, org) VALUES (?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (id) DO NOTHING",
            &[
                Arg::Text(&d.id),
                Arg::Text(&d.event_id),
                Arg::Text(&d.event_type),
                Arg::Text(&d.scope),
                Arg::from(conversation),
                Arg::Text(body),
                Arg::Text(status.sql()),
                Arg::Int(d.received_at),
                Arg::Int(ctx.now),
                Arg::Int(accepted),
                Arg::Int(row_wake),
                if status.is_settled() { Arg::Int(row_wake) } else { Arg::Null },
                Arg::Int(stored_size),
                Arg::from(reason.as_deref()),
                Arg::from(d.org.as_deref()),
            ],
        )?;
        if written > 0 {
            st.accept_time(accepted);
            st.add(status, 1);
            st.bytes += stored_size;
            st.count(&d.event_type).accepted += 1;
            match status {
                Status::Queued => {
                    added.added += 1;
                    fx.sends.push(rows::message(&st, &d.id, 1, delay));
                }
                Status::Held => {
                    st.count(&d.event_type).held += 1;
                    added.added += 1;
                }
                _ => {
                    st.count(&d.event_type).failed += 1;
                    added.refused += u32::from(body.is_empty());
                    if body.is_empty() {
                        st.refused += 1;
                    }
                    if let (Some(reason), true) = (&reason, on) {
                        let summary = format!("{} to {} is a dead letter", d.id, super::super::destination::name_of_key(name));
                        super::alerting::raise(&mut st, ctx, Kind::DeadLetter, summary, reason);
                    }
                }
            }
            wake = wake.min(row_wake);
            continue;
        }
        // Seen before.
        let Some(existing) = Delivery::find(sql, &d.id)? else { continue };
        if !on || !settled_before(sql, &existing, ctx.now - window)? {
            added.duplicates += 1;
            continue;
        }
        let held = !st.breaker.sends();
        let (_, send, at) = rows::replay(
            sql,
            &mut st,
            ctx,
            &existing,
            held,
            "sent again: the event came in again after the deduplication window (DEDUP_WINDOW_SECONDS)",
        )?;
        st.count(&d.event_type).accepted += 1;
        added.again += 1;
        fx.sends.extend(send);
        wake = wake.min(at);
    }
    if st.counts.held > 0 {
        if let Some(probe) = st.breaker.next_probe_ms {
            wake = wake.min(probe);
        }
    }
    if st.counts.held + st.counts.pending > 0 {
        // Whether its app is still there, at least this often.
        wake = wake.min(ctx.now + super::CHECK_MS);
    }
    register(&mut st, &mut fx, false);
    if wake < i64::MAX {
        fx.alarm = st.alarm_by(wake, ctx.now);
    }
    super::alerting::finish(sql, &mut st, ctx, &mut fx)?;
    st.save(sql)?;
    fx.reply = Some(Reply::ok(added.encode()));
    Ok(fx)
}

/// Whether `d` (and the latest delivery sent again for it) settled and
/// was accepted before `cutoff`.
fn settled_before(sql: &impl Sql, d: &Delivery, cutoff: i64) -> Result<bool, StorageError> {
    let mut latest = d.clone();
    for _ in 0..8 {
        if !latest.status.is_settled() || latest.accepted_at > cutoff {
            return Ok(false);
        }
        match &latest.replayed_as {
            Some(next) => match Delivery::find(sql, next)? {
                Some(next) => latest = next,
                None => return Ok(true),
            },
            None => return Ok(true),
        }
    }
    Ok(true)
}

/// Tells the registry, when it must be told, whether this log holds
/// deliveries (so that the admin API still lists them once its destination
/// is removed from the configuration). A change gets a new epoch; a call
/// the registry did not confirm is made again when `again` (by the alarm).
pub(super) fn register(st: &mut LogState, fx: &mut Effects, again: bool) {
    let Some(name) = st.name.clone() else { return };
    let holds = st.counts.total() > 0;
    if holds != (st.epoch > 0) {
        if !holds && st.epoch == 0 {
            return;
        }
        let next = st.epoch.abs() + 1;
        st.epoch = if holds { next } else { -next };
        st.confirmed = false;
        st.touch();
    } else if st.confirmed || st.epoch == 0 || !again {
        return;
    }
    fx.calls.push(Call {
        to: Object::Registry,
        op: if holds { "/register" } else { "/unregister" },
        body: Registration { destination: name, epoch: st.epoch.abs() }.encode(),
        ticket: format!("r:{}", st.epoch),
    });
    fx.then = Some("called");
}

/// The conversation id of a scope `conversation:<orgId>:<conversationId>`.
pub(super) fn conversation_of(scope: &str) -> Option<&str> {
    let rest = scope.strip_prefix("conversation:")?;
    rest.split_once(':').map(|(_, conversation)| conversation)
}
