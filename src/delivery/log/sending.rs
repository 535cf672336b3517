//! The consumer's side of the delivery log: `/attempt` hands deliveries
//! out, `/settle` records how their attempts ended, `/dead` fails what the
//! queue gave up on.

use super::super::alerts::Kind;
use super::super::breaker::{Change as BreakerChange, Mode, Signal};
use super::super::effects::{Effects, Reply};
use super::super::message::{Attempt, AttemptReply, Dead, Go, Settle, SettleReply, Tried};
use super::super::schedule::{self, MAX_ATTEMPTS};
use super::super::sql::{Arg, Sql, StorageError};
use super::super::status::Status;
use super::rows::{self, appended, Change};
use super::state::{Drain, LogState};
use super::{bad_request, delivery_columns, Context, Delivery, Presence};
use crate::json::Writer;

/// The longest a consumer is asked to wait before it sends a delivery (an
/// app with a rate); a delivery whose turn is further off is queued again.
pub const PACE_MAX_MS: i64 = 10_000;

/// `/attempt`: for each item, [`Go`] (leased to the consumer until the
/// lease ends, the attempt charged unless it is a probe) or skip.
pub fn attempt(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let request = match Attempt::decode(body) {
        Ok(r) => r,
        Err(e) => return Ok(bad_request(e)),
    };
    let mut st = super::open_state(sql, ctx)?;
    let presence = super::presence_of(ctx, &st);
    let app = st.name.as_deref().and_then(|key| ctx.settings.destination(key)).cloned();
    let lease_until = ctx.now + request.lease_ms.clamp(1_000, 15 * 60_000);
    let rate = ctx.rate(st.name.as_deref());
    let mut reply = AttemptReply::default();
    let mut fx = Effects::default();
    let mut wake = i64::MAX;
    let mut order = Vec::new();
    for item in &request.items {
        let row = sql.first(
            concat!("SELECT ", delivery_columns!(), ", body, history, conversation FROM deliveries WHERE id = ?"),
            &[Arg::Text(&item.id)],
        )?;
        let Some(mut row) = row else {
            reply.skip.push(item.id.clone());
            continue;
        };
        let conversation = row.take_opt(18);
        let history = row.take_opt(17);
        let body = row.take(16);
        let d = Delivery::from_row(row);
        let taken = d.status == Status::Sending && d.lease_until.is_some_and(|l| l > ctx.now);
        if d.generation != item.generation || !d.status.is_live() || taken {
            reply.skip.push(item.id.clone());
            continue;
        }
        // Whether it still fits its app is decided now, as it is sent: a
        // removed app, or one that no longer wants its type or organisation,
        // never gets it.
        let unfit = match (presence, &app) {
            (Presence::Unknown, _) => {
                // Not known yet: left as it is; the alarm queues it again
                // once the recovery grace is over.
                reply.skip.push(item.id.clone());
                continue;
            }
            (Presence::Removed, _) | (_, None) => Some(super::removed_reason(st.name.as_deref().unwrap_or("?"))),
            (Presence::Here, Some(app)) => no_longer_wanted(app, &d),
        };
        if let Some(reason) = unfit {
            wake = wake.min(rows::settle(sql, &mut st, ctx, &d, Status::Failed, Some(&reason), &Change::NONE)?);
            st.count(&d.event_type).failed += 1;
            fx.log(rows::dead_line(&st, &d, &reason));
            reply.skip.push(item.id.clone());
            continue;
        }
        if st.breaker.holds(&d.id) {
            // No attempt used: it waits for the app, in its place.
            wake = wake.min(rows::hold(sql, &mut st, ctx, &d, &Change::NONE)?);
            st.count(&d.event_type).held += 1;
            reply.skip.push(item.id.clone());
            continue;
        }
        let probe = st.breaker.probing.as_deref() == Some(d.id.as_str());
        if !probe && d.attempts >= MAX_ATTEMPTS {
            // Every attempt was handed out, and the last ones never came back:
            // its consumer stops while sending it.
            let reported = history.as_deref().map_or(0, |h| h.lines().filter(|l| !l.contains("\"probe\":true")).count());
            let reason = format!(
                "gave up after {} attempts; {} of them never reported back (the consumer stopped while sending it)",
                d.attempts,
                (d.attempts as usize).saturating_sub(reported)
            );
            wake = wake.min(rows::settle(sql, &mut st, ctx, &d, Status::Failed, Some(&reason), &Change::NONE)?);
            st.count(&d.event_type).failed += 1;
            fx.log(rows::dead_line(&st, &d, &reason));
            reply.skip.push(item.id.clone());
            continue;
        }
        // An app with a rate: each delivery starts its share of a second
        // after the one before; one whose turn is too far off goes back to
        // the queue for it, no attempt used.
        let wait = match rate {
            Some(rate) if !probe => match st.space(ctx.now, rate, PACE_MAX_MS) {
                Ok(wait) => wait,
                Err(wait) => {
                    let delay = u32::try_from((wait - PACE_MAX_MS) / 1000).unwrap_or(u32::MAX);
                    let (send, at) = rows::queue(sql, &mut st, ctx, &d, Status::Queued, delay, &Change::NONE)?;
                    fx.sends.push(send);
                    wake = wake.min(at);
                    reply.skip.push(item.id.clone());
                    continue;
                }
            },
            _ => 0,
        };
        let lease_until = lease_until + wait;
        let charged = d.attempts + u32::from(!probe);
        // The row is looked at again when the lease ends, not before.
        let args = [
            Arg::Int(i64::from(charged)),
            Arg::Int(i64::from(probe)),
            Arg::Int(lease_until),
            Arg::Int(ctx.now),
            Arg::Int(d.seq),
            Arg::Int(lease_until),
        ];
        if d.wake_at.is_some_and(|w| w >= lease_until) {
            sql.execute(
                "UPDATE deliveries SET status = 'sending', attempts = ?, probe = ?, lease_until = ?, updated_at = ? WHERE seq = ?",
                &args[..5],
            )?;
        } else {
            sql.execute(
                "UPDATE deliveries SET status = 'sending', attempts = ?1, probe = ?2, lease_until = ?3, updated_at = ?4, wake_at = ?6 \
                 WHERE seq = ?5",
                &args,
            )?;
        }
        st.moved(d.status, Status::Sending);
        reply.go.push(Go {
            id: d.id.clone(),
            generation: d.generation,
            attempt: d.attempts + 1,
            probe,
            event_id: d.event_id.clone(),
            body,
            wave: 0,
            delay_ms: u32::try_from(wait).unwrap_or(u32::MAX),
        });
        order.push(conversation);
    }
    for (go, wave) in reply.go.iter_mut().zip(waves(&order, st.breaker.consecutive_failures > 0)) {
        go.wave = wave;
    }
    if wake < i64::MAX {
        fx.alarm = st.alarm_by(wake, ctx.now);
    }
    super::alerting::finish(sql, &mut st, ctx, &mut fx)?;
    st.save(sql)?;
    fx.reply = Some(Reply::ok(reply.encode()));
    Ok(fx)
}

/// Why `d` no longer fits `app`, if it does not: the app no longer
/// subscribes to its type, or no longer takes its organisation.
pub(super) fn no_longer_wanted(app: &super::super::Destination, d: &Delivery) -> Option<String> {
    if app.wants(&d.event_type, d.org.as_deref()) {
        return None;
    }
    if !app.types.iter().any(|t| t == "*" || *t == d.event_type) {
        return Some(format!("its app {} no longer subscribes to {}", app.name, d.event_type));
    }
    Some(match &d.org {
        Some(org) => format!("its app {} no longer takes events of organisation {org}", app.name),
        None => format!("its app {} takes only some organisations (orgIds), and this event's is not known", app.name),
    })
}

/// When each of a batch's deliveries goes, given its conversation: side by
/// side, each after every earlier one of its conversation, so that one
/// conversation's events keep their order. With `scout` (the app's last
/// counted answer was a failure) the first goes alone before the others: an
/// app that is down is sent one request per batch, not ten. A healthy app
/// takes a batch in about one round trip.
pub fn waves(conversations: &[Option<String>], scout: bool) -> Vec<u32> {
    let first = u32::from(scout);
    let mut waves: Vec<u32> = Vec::with_capacity(conversations.len());
    for (i, conversation) in conversations.iter().enumerate() {
        let after = match conversation {
            Some(_) => conversations[..i].iter().zip(&waves).filter(|(c, _)| *c == conversation).map(|(_, w)| w + 1).max(),
            None => None,
        };
        waves.push(if i == 0 { 0 } else { after.unwrap_or(first).max(first) });
    }
    waves
}

/// `/settle`: records each attempt in its delivery's history; the breaker
/// judges the app by it; the delivery becomes delivered, gone, retrying
/// (its next message sent, held back by the retry schedule's wait), held
/// (the app is now down) or failed (its last attempt). Answers what each
/// became, in the admin API's words. Writes one JSON line per attempt.
pub fn settle(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let request = match Settle::decode(body) {
        Ok(r) => r,
        Err(e) => return Ok(bad_request(e)),
    };
    let mut st = super::open_state(sql, ctx)?;
    st.minute.flush(sql, ctx.now)?;
    let name = super::super::destination::name_of_key(st.name.as_deref().unwrap_or("")).to_owned();
    let settings = ctx.settings.circuit;
    let mut fx = Effects::default();
    let mut reply = SettleReply::default();
    let mut wake = i64::MAX;
    for o in &request.outcomes {
        let row = sql.first(concat!("SELECT ", delivery_columns!(), ", history FROM deliveries WHERE id = ?"), &[Arg::Text(&o.id)])?;
        let Some(mut row) = row else {
            reply.results.push((o.id.clone(), "unknown".into()));
            continue;
        };
        let history = row.take_opt(16);
        let d = Delivery::from_row(row);
        // The attempt this outcome is about is the one in flight, unless the
        // row moved on (its lease ran out and it was queued again, or it
        // settled): then its answer is recorded, and a success still counts.
        let current = d.status == Status::Sending && d.generation == o.generation;
        let (code, error) = match &o.tried {
            Tried::Unattempted => {
                if current {
                    // Not sent: the attempt is given back, and it goes again
                    // (or waits, if the app is now down).
                    let attempts = d.attempts.saturating_sub(u32::from(!d.probe));
                    let change = Change { attempts: Some(attempts), ..Change::NONE };
                    if st.breaker.holds(&d.id) {
                        wake = wake.min(rows::hold(sql, &mut st, ctx, &d, &change)?);
                        st.count(&d.event_type).held += 1;
                    } else {
                        let delay = ctx.settings.retry_base_seconds.max(1);
                        let (send, at) = rows::queue(sql, &mut st, ctx, &d, Status::Queued, delay, &change)?;
                        fx.sends.push(send);
                        wake = wake.min(at);
                    }
                }
                reply.results.push((o.id.clone(), status_word(sql, &o.id)?));
                continue;
            }
            Tried::Answered { code, error } => (Some(*code), error.clone()),
            Tried::Nothing { error } => (None, Some(error.clone())),
        };
        let delivered = code.is_some_and(|c| (200..300).contains(&c));
        let line = Writer::object()
            .int("n", i64::from(o.attempt))
            .int("at", ctx.now)
            .int_or_null("code", code.map(i64::from))
            .str_or_null("error", error.as_deref())
            .int("ms", o.latency_ms)
            .bool("probe", d.probe && current)
            .finish();
        let history = appended(history.as_deref(), &line);
        {
            let counters = st.count(&d.event_type);
            counters.attempts += 1;
            counters.succeeded += u64::from(delivered);
            counters.observe_latency(o.latency_ms);
        }
        // What the app's answer says of the app.
        let change = match Signal::of(code) {
            Signal::Up => st.breaker.answered(&d.id, delivered, ctx.now, &settings),
            Signal::Down => st.breaker.failed(&d.id, error.as_deref().unwrap_or("no answer"), ctx.now, &settings),
        };
        match change {
            BreakerChange::Tripped => {
                st.drain = None;
                fx.log(circuit_line(&name, &st, "the last attempts all failed"));
                let summary = format!(
                    "{name} tripped: its last {} attempts failed; its deliveries are held, and it is probed every {} s or more",
                    st.breaker.consecutive_failures,
                    ctx.settings.circuit.probe_ms / 1000
                );
                super::alerting::raise(&mut st, ctx, Kind::Tripped, summary, error.as_deref().unwrap_or("no answer"));
                if let Some(probe) = st.breaker.next_probe_ms {
                    wake = wake.min(probe);
                }
            }
            BreakerChange::Resumed => {
                fx.log(circuit_line(&name, &st, "the app answered again"));
                start_drain(sql, &mut st, ctx)?;
                let summary = format!(
                    "{name} answers again: its {} held deliveries are released in order, {} a second",
                    st.counts.held,
                    ctx.settings.circuit.drain_per_second
                );
                super::alerting::raise(&mut st, ctx, Kind::Recovered, summary, "");
                wake = wake.min(ctx.now);
            }
            BreakerChange::ProbeFailed => {
                if let Some(probe) = st.breaker.next_probe_ms {
                    wake = wake.min(probe);
                }
            }
            BreakerChange::None => {}
        }
        st.touch();
        // A probe is not charged to the delivery's budget, but a probe that
        // settles it is one of its attempts.
        let settles = delivered || code == Some(410);
        let attempts = if current && d.probe && settles { d.attempts + 1 } else { d.attempts };
        let change = Change { attempts: Some(attempts), history: Some(&history), error: error.as_deref() };
        let status = if !current {
            if delivered && (d.status.is_live() || d.status == Status::Held) {
                // Delivered after all: the copy queued since is skipped.
                wake = wake.min(rows::settle(sql, &mut st, ctx, &d, Status::Delivered, None, &change)?);
                st.count(&d.event_type).delivered += 1;
                Status::Delivered
            } else {
                sql.execute("UPDATE deliveries SET history = ? WHERE seq = ?", &[Arg::Text(&history), Arg::Int(d.seq)])?;
                d.status
            }
        } else if delivered {
            wake = wake.min(rows::settle(sql, &mut st, ctx, &d, Status::Delivered, None, &change)?);
            st.count(&d.event_type).delivered += 1;
            Status::Delivered
        } else if code == Some(410) {
            wake = wake.min(rows::settle(sql, &mut st, ctx, &d, Status::Gone, error.as_deref(), &change)?);
            st.count(&d.event_type).failed += 1;
            Status::Gone
        } else if Signal::of(code) == Signal::Down && st.breaker.mode != Mode::Active {
            // The app is down: the delivery waits for it, whatever its budget.
            wake = wake.min(rows::hold(sql, &mut st, ctx, &d, &change)?);
            st.count(&d.event_type).held += 1;
            Status::Held
        } else if attempts >= MAX_ATTEMPTS {
            let reason = format!("gave up after {attempts} attempts; last: {}", error.as_deref().unwrap_or("unknown"));
            wake = wake.min(rows::settle(sql, &mut st, ctx, &d, Status::Failed, Some(&reason), &change)?);
            st.count(&d.event_type).failed += 1;
            fx.log(rows::dead_line(&st, &Delivery { attempts, ..d.clone() }, &reason));
            Status::Failed
        } else {
            let delay = schedule::delay_seconds(ctx.settings.retry_base_seconds, attempts.max(1), ctx.jitter(&d.id));
            let (send, at) = rows::queue(sql, &mut st, ctx, &d, Status::Retrying, delay, &change)?;
            fx.sends.push(send);
            st.count(&d.event_type).retried += 1;
            wake = wake.min(at);
            Status::Retrying
        };
        fx.log(attempt_line(&name, &d, o.attempt, status, code, o.latency_ms, error.as_deref()));
        reply.results.push((o.id.clone(), status.api().as_str().to_owned()));
    }
    if st.counts.held > 0 && st.breaker.mode == Mode::Tripped {
        if let Some(probe) = st.breaker.next_probe_ms {
            wake = wake.min(probe);
        }
    }
    if wake < i64::MAX {
        fx.alarm = st.alarm_by(wake, ctx.now);
    }
    super::alerting::finish(sql, &mut st, ctx, &mut fx)?;
    st.save(sql)?;
    fx.reply = Some(Reply::ok(reply.encode()));
    Ok(fx)
}

/// The backlog to drain now that the app is back: the held deliveries as
/// they are (later ones go out at once).
pub(super) fn start_drain(sql: &impl Sql, st: &mut LogState, ctx: &Context<'_>) -> Result<(), StorageError> {
    let last = sql.number("SELECT MAX(seq) FROM deliveries WHERE status = 'held'", &[])?;
    st.touch().drain = last.map(|up_to| Drain { up_to: st.drain.map_or(up_to, |d| d.up_to.max(up_to)), next: ctx.now });
    Ok(())
}

/// The admin API's word for a delivery's status now.
fn status_word(sql: &impl Sql, id: &str) -> Result<String, StorageError> {
    let status = sql.first("SELECT status FROM deliveries WHERE id = ?", &[Arg::Text(id)])?;
    Ok(status.and_then(|r| r.text(0).and_then(Status::from_sql)).map_or("unknown", |s| s.api().as_str()).to_owned())
}

/// `/dead`: the queue gave up on these messages. A delivery fails only if
/// the message is about its current generation and no consumer has it.
pub fn dead(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let request = match Dead::decode(body) {
        Ok(r) => r,
        Err(e) => return Ok(bad_request(e)),
    };
    let mut st = super::open_state(sql, ctx)?;
    st.minute.flush(sql, ctx.now)?;
    let mut failed = 0;
    let mut fx = Effects::default();
    for item in &request.items {
        let Some(d) = Delivery::find(sql, &item.id)? else { continue };
        let taken = d.status == Status::Sending && d.lease_until.is_some_and(|l| l > ctx.now);
        if d.generation != item.generation || !d.status.is_live() || taken {
            continue;
        }
        let reason = format!(
            "the queue gave up on it after its consumer failed again and again (max_retries in wrangler.toml); {} attempts were made",
            d.attempts
        );
        let end = rows::settle(sql, &mut st, ctx, &d, Status::Failed, Some(&reason), &Change::NONE)?;
        fx.alarm = st.alarm_by(end, ctx.now);
        st.count(&d.event_type).failed += 1;
        fx.log(rows::dead_line(&st, &d, &reason));
        failed += 1;
    }
    super::alerting::finish(sql, &mut st, ctx, &mut fx)?;
    st.save(sql)?;
    fx.reply = Some(Reply::ok(Writer::object().int("failed", failed).finish()));
    Ok(fx)
}

/// One JSON line for the breaker changing state.
pub(super) fn circuit_line(name: &str, st: &LogState, why: &str) -> String {
    Writer::object()
        .str("kind", "circuit")
        .str("destination", super::super::destination::name_of_key(name))
        .str("state", st.breaker.mode.as_str())
        .str("why", why)
        .int("consecutiveFailures", i64::from(st.breaker.consecutive_failures))
        .finish()
}

/// One JSON line per delivery attempt, for Workers Logs: ids, status,
/// attempt, HTTP status, latency and the error; never a body or a secret.
fn attempt_line(name: &str, d: &Delivery, attempt: u32, status: Status, code: Option<u16>, latency: i64, error: Option<&str>) -> String {
    Writer::object()
        .str("kind", "delivery")
        .str("delivery", &d.id)
        .str("eventId", &d.event_id)
        .str("destination", name)
        .int("attempt", i64::from(attempt))
        .str("status", status.api().as_str())
        .int_or_null("code", code.map(i64::from))
        .int("latencyMs", latency)
        .opt_str("error", error)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::waves;

    #[test]
    fn side_by_side_but_one_conversation_in_order_and_a_scout_first_after_a_failure() {
        let cases: &[(&[Option<&str>], bool, &[u32])] = &[
            (&[], false, &[]),
            (&[Some("1")], true, &[0]),
            // Different conversations: all at once; after a failure, a scout first.
            (&[Some("1"), Some("2"), Some("3"), None], false, &[0, 0, 0, 0]),
            (&[Some("1"), Some("2"), Some("3"), None], true, &[0, 1, 1, 1]),
            // One conversation's events one after another, the others beside them.
            (&[Some("1"), Some("2"), Some("1"), Some("2"), Some("1")], false, &[0, 0, 1, 1, 2]),
            (&[Some("1"), Some("2"), Some("1"), Some("2"), Some("1")], true, &[0, 1, 1, 2, 2]),
            (&[Some("1"), Some("1"), Some("1")], false, &[0, 1, 2]),
            // Events without a conversation keep no order among themselves.
            (&[None, None, None], false, &[0, 0, 0]),
            (&[None, None, None], true, &[0, 1, 1]),
        ];
        for (conversations, scout, want) in cases {
            let conversations: Vec<Option<String>> = conversations.iter().map(|c| c.map(str::to_owned)).collect();
            assert_eq!(waves(&conversations, *scout), *want, "{conversations:?} scout {scout}");
        }
    }
}
