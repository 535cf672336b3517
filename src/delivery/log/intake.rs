//! Taking deliveries in (`Accept`, from a webhook): the log is where
//! deduplication happens, since it keeps every delivery at least as long as
//! the deduplication window, and where each delivery's first request is
//! asked for, in the same step that stores it.
//!
//! For each delivery:
//! - **seen within `DEDUP_WINDOW_SECONDS`** (or still on its way): dropped;
//! - **seen before the window, and settled since**: sent again, as a new
//!   delivery `<id>.r<n>` with the same `webhook-id` (a backfill run again
//!   after a day delivers again, and the log says why);
//! - **new**: stored and, in the same step, sent (its request goes out as
//!   the webhook is answered) when it may go: otherwise waiting behind an
//!   earlier delivery of its conversation (an app that wants them in
//!   order), held (the app is down or paused), queued for its turn, or
//!   failed at once (its app removed or no longer wanting it, or the log
//!   over `MAX_LOG_BYTES`: the reason is kept, the body not). For an app
//!   that wants them in order, one held or queued keeps its conversation's
//!   turn until it settles ([`super::ordered`]).

use super::super::effects::{Reply, Ticket};
use super::super::key::{event_bits, Key};
use super::super::sql::{Sql, StorageError};
use super::super::status::Status;
use super::input::{Accept, Added};
use super::places::{NewRow, Place};
use super::rows::{hours_since, Row};
use super::schema::ROW_OVERHEAD;
use super::sending::{no_longer_wanted, Go};
use super::{Log, Presence};

/// Why an event seen before the deduplication window is sent again.
pub const AGAIN: &str = "sent again: the event came in again after the deduplication window (DEDUP_WINDOW_SECONDS)";

/// The conversation `ordered` (of an app that takes them in order), when
/// an earlier delivery of it has not settled.
fn behind<'c, S: Sql>(log: &Log<'_, S>, ordered: Option<&'c str>) -> Result<Option<&'c str>, StorageError> {
    match ordered {
        Some(c) if log.busy(c)? => Ok(Some(c)),
        _ => Ok(None),
    }
}

pub(crate) fn accept<S: Sql>(log: &mut Log<'_, S>, add: Accept) -> Result<Reply, StorageError> {
    let presence = log.presence();
    let window = log.ctx.settings.dedup_window_ms();
    let (from, to) = hours_since(log.ctx.now - window, log.ctx.now.max(log.st.last_accepted));
    let mut added = Added::default();
    for d in &add.deliveries {
        let Some(event) = event_bits(&d.event) else { continue };
        if let Some(existing) = Row::latest(log.sql, event, from, to)? {
            // Seen within the window (or still on its way): dropped.
            if !existing.status.is_settled() || existing.accepted_at > log.ctx.now - window || presence == Presence::Removed {
                added.duplicates += 1;
                continue;
            }
            // Seen before the window, and settled since: sent again, as a
            // new delivery `<id>.r<n>` of the same event (the same
            // `webhook-id`), and the log says why.
            let held = !log.sends();
            log.replay_row(&existing, Some(&d.body), held, AGAIN)?;
            added.added += 1;
            continue;
        }
        let accepted = log.st.accept_time(log.ctx.now);
        let key = Key::new(accepted, event, 0);
        let size = d.body.len() as i64 + ROW_OVERHEAD;
        let new_row = |body, size, attempts| NewRow {
            key,
            event_type: &d.event_type,
            scope: &d.scope,
            org: d.org.as_deref(),
            received_at: d.received_at,
            accepted_at: accepted,
            body,
            size,
            attempts,
            reason: None,
            history: None,
            last_error: None,
        };
        // An app that takes a conversation's events in order: the turn.
        let ordered = d.conversation().filter(|_| log.ordered());
        let unwanted = log.app.as_ref().and_then(|app| no_longer_wanted(app, &d.event_type, d.org.as_deref()));
        let mut post = None;
        let mut failed_at_once = None;
        // A full log keeps the reason, not the body.
        let mut full = false;
        let place = if presence == Presence::Removed {
            failed_at_once = Some(super::removed_reason(log.key()));
            None
        } else if let Some(why) = unwanted.filter(|_| presence == Presence::Here) {
            failed_at_once = Some(why);
            None
        } else if log.st.bytes + size > log.ctx.settings.max_log_bytes {
            let why = format!(
                "the delivery log of {} is full: it holds {} bytes, and MAX_LOG_BYTES is {}; the event was not kept",
                log.name(),
                log.st.bytes,
                log.ctx.settings.max_log_bytes
            );
            added.refused += 1;
            log.st.refused += 1;
            full = true;
            failed_at_once = Some(why);
            None
        } else if let Some(c) = behind(log, ordered)? {
            // Behind an earlier one of its conversation, held or not.
            Some(Place::Waiting { conversation: c })
        } else if !log.sends() {
            Some(Place::Held)
        } else {
            None
        };
        let place = match (place, &failed_at_once) {
            (Some(place), _) => place,
            (None, Some(why)) => {
                let expires_at = log.ctx.expiry(log.ctx.settings.dead_letter_retention_ms());
                let new = if full { new_row("", ROW_OVERHEAD, 0) } else { new_row(&d.body, size, 0) };
                if log.insert(&new, Place::Settled { status: Status::Failed, reason: Some(why), expires_at })?.is_some() {
                    log.st.count(&d.event_type).accepted += 1;
                    log.st.count(&d.event_type).failed += 1;
                    let row = Row::load(log.sql, key)?;
                    if let Some(row) = row {
                        let line = log.dead_line(&row, 0, why);
                        log.fx.log(line);
                        if presence != Presence::Removed {
                            let summary = format!("{} to {} is a dead letter", key.id(log.name()), log.name());
                            super::alerting::raise(log, super::super::alerts::Kind::DeadLetter, summary, why);
                        }
                    }
                }
                continue;
            }
            // Sent now, if it may go.
            (None, None) if presence == Presence::Here => match log.go(key, (&d.event_type, &d.scope), &d.body, 1, false) {
                Go::Now(place, p) => {
                    post = Some(p);
                    place
                }
                Go::Later(at) => Place::Queued { at },
                Go::Never(_) => Place::Queued { at: log.ctx.now },
            },
            (None, None) => Place::Queued { at: log.ctx.now + super::UNKNOWN_RETRY_MS },
        };
        let new = new_row(&d.body, size, u32::from(matches!(place, Place::Sending { .. })));
        if log.insert(&new, place)?.is_none() {
            added.duplicates += 1;
            continue;
        }
        if let Some(c) = ordered.filter(|_| !matches!(place, Place::Waiting { .. } | Place::Sending { .. })) {
            // Held or queued, it has its conversation's turn until it settles
            // (a request out holds it by being out).
            log.keep_turn(c, key)?;
        }
        if let Some(mut p) = post {
            // The row is the request's: its key is now known for sure.
            p.ticket = Ticket::Attempt { key, attempt: 1 };
            log.fx.posts.push(p);
        }
        added.added += 1;
        let counters = log.st.count(&d.event_type);
        counters.accepted += 1;
        if place == Place::Held {
            counters.held += 1;
        }
    }
    Ok(Reply::ok(added.encode()))
}
