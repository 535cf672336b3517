//! The admin API's side of the delivery log: the listing, one delivery,
//! replays and bulk recovery, pause and resume, the destination's health.
//! Every one reads a bounded number of rows.

use super::super::alerts::Kind;
use super::super::breaker::Mode;
use super::super::effects::{Effects, Reply};
use super::super::message::{ById, ListQuery, Named, Recover};
use super::super::metrics::{self, Counters, HOUR_MS, MINUTE_MS};
use super::super::sql::{Arg, Row, Sql, StorageError};
use super::super::status::Status;
use super::rows;
use super::sending::{circuit_line, start_drain};
use super::state::{LogState, Recovery};
use super::{bad_request, configured, Context, Delivery, RECOVER_PAGE, SCAN_ROWS};
use crate::json::{self, Limits, Value, Writer};

/// Learns the log's name from an operation that names it.
fn learn(st: &mut LogState, name: &str) -> Result<(), Effects> {
    match &st.name {
        None => {
            st.touch().name = Some(name.to_owned());
            Ok(())
        }
        Some(own) if own != name => Err(bad_request(format!("this is the delivery log of {own}, not of {name}"))),
        Some(_) => Ok(()),
    }
}

/// The columns of a listed delivery.
macro_rules! listed_columns {
    () => {
        "seq, id, status, event_id, type, scope, attempts, created_at, accepted_at, updated_at, last_error, reason, replayed_as"
    };
}

/// A listing statement: up to `?2` rows below position `?1` chosen by
/// `$inner` (which may bind `?7` and `?8`), filtered by status (`?3`, a
/// comma-separated list between commas, or empty for all) and by when
/// Drift's webhook was received (`?4` ≤ at < `?5`), at most `?6`.
macro_rules! listing {
    ($inner:literal) => {
        concat!(
            "SELECT ",
            listed_columns!(),
            " FROM (SELECT ",
            listed_columns!(),
            " FROM deliveries WHERE ",
            $inner,
            " AND seq < ?1 ORDER BY seq DESC LIMIT ?2) WHERE (?3 = '' OR instr(?3, ',' || status || ',') > 0) \
             AND (?4 IS NULL OR created_at >= ?4) AND (?5 IS NULL OR created_at < ?5) ORDER BY seq DESC LIMIT ?6"
        )
    };
}

/// `/list`: one page, newest first: `{"deliveries":[…],"positions":[…],"next":<position>|null}`
/// (`positions`: each delivery's place in the log, for a caller that merges
/// pages of several logs).
/// A page reads at most [`SCAN_ROWS`] rows; when it found fewer than
/// `limit` in them, `next` continues below what it read.
pub fn list(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let q = match ListQuery::decode(body) {
        Ok(q) => q,
        Err(e) => return Ok(bad_request(e)),
    };
    let st = super::open_state(sql, ctx)?;
    let name = st.name.clone().unwrap_or_default();
    let on = configured(ctx, &st);
    let before = q.before.unwrap_or(i64::MAX);
    let statuses = if q.statuses.is_empty() { String::new() } else { format!(",{},", q.statuses.join(",")) };
    let only = |set: &[&str]| !q.statuses.is_empty() && q.statuses.iter().all(|s| set.contains(&s.as_str()));
    let event_from = q.event.as_ref().map(|e| format!("{e}."));
    let event_to = q.event.as_ref().map(|e| format!("{e}/"));
    let base = [
        Arg::Int(before),
        Arg::Int(SCAN_ROWS),
        Arg::Text(&statuses),
        Arg::from(q.since),
        Arg::from(q.until),
        Arg::Int(i64::from(q.limit)),
    ];
    let (rows, window) = if let (Some(from), Some(to)) = (&event_from, &event_to) {
        let mut args = base.to_vec();
        args.extend([Arg::Text(from), Arg::Text(to)]);
        (sql.query(listing!("id >= ?7 AND id < ?8"), &args)?, None)
    } else if let Some(conversation) = &q.conversation {
        let mut args = base.to_vec();
        args.push(Arg::Text(conversation));
        let window = sql.first(
            "SELECT MIN(seq), COUNT(*) FROM (SELECT seq FROM deliveries WHERE conversation = ?3 AND seq < ?1 ORDER BY seq DESC LIMIT ?2)",
            &[Arg::Int(before), Arg::Int(SCAN_ROWS), Arg::Text(conversation)],
        )?;
        (sql.query(listing!("conversation = ?7"), &args)?, window)
    } else if only(&["held"]) {
        let window = sql.first(
            "SELECT MIN(seq), COUNT(*) FROM (SELECT seq FROM deliveries WHERE status = 'held' AND seq < ?1 ORDER BY seq DESC LIMIT ?2)",
            &[Arg::Int(before), Arg::Int(SCAN_ROWS)],
        )?;
        (sql.query(listing!("status = 'held'"), &base)?, window)
    } else if only(&["failed", "gone"]) {
        let window = sql.first(
            "SELECT MIN(seq), COUNT(*) FROM (SELECT seq FROM deliveries WHERE status IN ('failed', 'gone') AND seq < ?1 \
             ORDER BY seq DESC LIMIT ?2)",
            &[Arg::Int(before), Arg::Int(SCAN_ROWS)],
        )?;
        (sql.query(listing!("status IN ('failed', 'gone')"), &base)?, window)
    } else {
        let window = sql.first(
            "SELECT MIN(seq), COUNT(*) FROM (SELECT seq FROM deliveries WHERE seq < ?1 ORDER BY seq DESC LIMIT ?2)",
            &[Arg::Int(before), Arg::Int(SCAN_ROWS)],
        )?;
        (sql.query(listing!("1"), &base)?, window)
    };
    let mut out = String::from("{\"deliveries\":[");
    let mut last = None;
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        last = row.int(0);
        write_listed(&mut out, row, &name, on);
    }
    let positions: Vec<String> = rows.iter().map(|r| r.int0(0).to_string()).collect();
    out.push_str("],\"positions\":[");
    out.push_str(&positions.join(","));
    out.push_str("],\"next\":");
    let next = if rows.len() as u32 >= q.limit {
        last
    } else {
        // The window read was full: more may match below it.
        window.filter(|w| w.int0(1) >= SCAN_ROWS).and_then(|w| w.int(0))
    };
    out.push_str(&next.map_or_else(|| "null".to_owned(), |n| n.to_string()));
    out.push('}');
    Ok(Effects::reply(Reply::ok(out)))
}

/// One delivery as the admin API lists it, from a row of [`listed_columns`].
fn write_listed(out: &mut String, r: &Row, key: &str, configured: bool) {
    let status = r.text(2).and_then(Status::from_sql).unwrap_or(Status::Failed);
    let mut w = Writer::with_capacity(320);
    w.str("id", r.text(1).unwrap_or(""))
        .str("status", status.api().as_str())
        .str("state", status.sql())
        .str("destination", super::super::destination::name_of_key(key))
        .str("eventId", r.text(3).unwrap_or(""))
        .str("type", r.text(4).unwrap_or(""))
        .str("scope", r.text(5).unwrap_or(""))
        .int("attempts", r.int0(6))
        .int("at", r.int0(7))
        .int("acceptedAt", r.int(8).unwrap_or_else(|| r.int0(7)))
        .int("updatedAt", r.int0(9))
        .opt_str("lastError", r.text(10))
        .opt_str("reason", r.text(11))
        .opt_str("replayedAs", r.text(12));
    if !configured {
        // A removed app's: which incarnation, since an app of the same name
        // may exist now.
        w.bool("configured", false).opt_str("incarnation", super::super::destination::incarnation_of_key(key));
    }
    out.push_str(&w.finish());
}

/// `/get`: one delivery with its body and attempts:
/// `{…listed…,"body":"…","attemptLog":[…]}` (the body as the outbound event
/// before token handling, as text; the admin API redacts it).
pub fn get(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let q = match ById::decode(body) {
        Ok(q) => q,
        Err(e) => return Ok(bad_request(e)),
    };
    let st = super::open_state(sql, ctx)?;
    let name = st.name.clone().unwrap_or_default();
    let row = sql.first(
        concat!("SELECT ", listed_columns!(), ", body, history FROM deliveries WHERE id = ?"),
        &[Arg::Text(&q.id)],
    )?;
    let Some(row) = row else {
        return Ok(Effects::reply(Reply::status(404, not_found(ctx, &q.id))));
    };
    let mut out = String::new();
    write_listed(&mut out, &row, &name, configured(ctx, &st));
    out.pop();
    out.push_str(",\"body\":");
    json::write_str_escaped(&mut out, row.text(13).unwrap_or(""));
    out.push_str(",\"attemptLog\":[");
    let mut first = true;
    for line in row.text(14).unwrap_or("").split('\n').filter(|l| !l.is_empty()) {
        let Ok(v) = json::parse(line, &Limits::INTERNAL) else { continue };
        if !first {
            out.push(',');
        }
        first = false;
        let int = |k: &str| v.get(k).and_then(Value::as_integer).and_then(|n| n.parse::<i64>().ok());
        let probe = matches!(v.get("probe"), Some(Value::Bool(true))) || int("probe") == Some(1);
        let error = v.get("error").and_then(Value::as_str).map(|s| s.text().into_owned());
        out.push_str(
            &Writer::object()
                .int("attempt", int("n").unwrap_or(0))
                .int("at", int("at").unwrap_or(0))
                .int_or_null("code", int("code"))
                .str_or_null("error", error.as_deref())
                .int("latencyMs", int("ms").unwrap_or(0))
                .bool("probe", probe)
                .finish(),
        );
    }
    out.push_str("]}");
    Ok(Effects::reply(Reply::ok(out)))
}

fn not_found(ctx: &Context<'_>, id: &str) -> String {
    format!(
        "no delivery {id}: delivered deliveries are kept for {} s (DELIVERY_LOG_SECONDS) and dead letters for {} s \
         (DEAD_LETTER_RETENTION_SECONDS), so it has expired or never existed",
        ctx.settings.delivery_log_seconds, ctx.settings.dead_letter_retention_seconds
    )
}

/// `/replay`: a failed or gone delivery, once more, as a new delivery
/// `<id>.r<n>` with the same `webhook-id` (held if the app is down or
/// paused). `{"replayed":…,"as":…}`; 404 when unknown or expired, 409 when
/// it is not a dead letter.
pub fn replay(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let q = match ById::decode(body) {
        Ok(q) => q,
        Err(e) => return Ok(bad_request(e)),
    };
    let mut st = super::open_state(sql, ctx)?;
    let Some(d) = Delivery::find(sql, &q.id)? else {
        return Ok(Effects::reply(Reply::status(404, not_found(ctx, &q.id))));
    };
    if st.ended.is_some() || super::presence_of(ctx, &st) == super::Presence::Removed {
        let key = st.name.clone().unwrap_or_default();
        return Ok(Effects::reply(Reply::status(
            409,
            format!("{} cannot be replayed: {}; nothing of it goes to an app created since under the same name", d.id, super::removed_reason(&key)),
        )));
    }
    match d.status {
        Status::Failed | Status::Gone => {}
        Status::Replayed => {
            return Ok(Effects::reply(Reply::status(
                409,
                format!("{} was already replayed as {}", d.id, d.replayed_as.as_deref().unwrap_or("?")),
            )))
        }
        other => {
            return Ok(Effects::reply(Reply::status(
                409,
                format!("{} is {}, not a dead letter; only failed or gone deliveries can be replayed", d.id, other.api().as_str()),
            )))
        }
    }
    let held = !st.breaker.sends();
    let (new_id, send, wake) = rows::replay(sql, &mut st, ctx, &d, held, "replayed by an operator")?;
    let mut fx = Effects::default();
    fx.sends.extend(send);
    fx.alarm = st.alarm_by(wake, ctx.now);
    st.save(sql)?;
    fx.reply = Some(Reply::ok(Writer::object().str("replayed", &d.id).str("as", &new_id).finish()));
    Ok(fx)
}

/// `/recover`: every dead letter with one of the statuses received since a
/// time, once more, each as a replay, held and drained in its original
/// order. One page now, the rest by the alarm, page by page; answers
/// `{"recovered":<so far>,"more":<whether pages remain>}`. Asking
/// again while it runs restarts it with the new parameters; what it already
/// replayed is no longer a dead letter, so nothing is recovered twice.
pub fn recover(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let q = match Recover::decode(body) {
        Ok(q) => q,
        Err(e) => return Ok(bad_request(e)),
    };
    let mut st = super::open_state(sql, ctx)?;
    if let Err(fx) = learn(&mut st, &q.destination) {
        return Ok(fx);
    }
    let statuses: Vec<String> = q.statuses.into_iter().filter(|s| s == "failed" || s == "gone").collect();
    let statuses = if statuses.is_empty() { vec!["failed".to_owned()] } else { statuses };
    let until = sql.number("SELECT MAX(seq) FROM deliveries", &[])?.unwrap_or(0);
    st.touch().recovery = Some(Recovery { since: q.since, statuses, after: 0, until, recovered: 0, started: ctx.now });
    let more = recover_page(sql, &mut st, ctx)?;
    let recovered = st.recovery.as_ref().map_or_else(|| st.last_recovery.map_or(0, |(n, _)| n), |r| r.recovered);
    let alarm = st.alarm_by(ctx.now, ctx.now);
    st.save(sql)?;
    let reply = Some(Reply::ok(Writer::object().int("recovered", recovered).bool("more", more).finish()));
    Ok(Effects { alarm, reply, ..Effects::default() })
}

/// One page of the recovery in progress; answers whether pages remain.
pub(super) fn recover_page(sql: &impl Sql, st: &mut LogState, ctx: &Context<'_>) -> Result<bool, StorageError> {
    let Some(mut job) = st.recovery.clone() else { return Ok(false) };
    let page: Vec<Delivery> = sql
        .query(
            concat!(
                "SELECT ",
                super::delivery_columns!(),
                " FROM deliveries WHERE status IN ('failed', 'gone') AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?"
            ),
            &[Arg::Int(job.after), Arg::Int(job.until), Arg::Int(RECOVER_PAGE)],
        )?
        .into_iter()
        .map(Delivery::from_row)
        .collect();
    for d in &page {
        job.after = d.seq;
        if d.created_at >= job.since && job.statuses.iter().any(|s| s == d.status.sql()) {
            rows::replay(sql, st, ctx, d, true, "recovered by an operator")?;
            job.recovered += 1;
        }
    }
    let more = page.len() as i64 == RECOVER_PAGE;
    if more {
        st.touch().recovery = Some(job);
    } else {
        st.touch().recovery = None;
        st.last_recovery = Some((job.recovered, ctx.now));
        if st.breaker.mode == Mode::Active && job.recovered > 0 {
            start_drain(sql, st, ctx)?;
        }
    }
    Ok(more)
}

/// `/pause`: everything is held until a resume. `{"state":"paused","held":n}`.
pub fn pause(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let q = match Named::decode(body) {
        Ok(q) => q,
        Err(e) => return Ok(bad_request(e)),
    };
    let mut st = super::open_state(sql, ctx)?;
    if let Err(fx) = learn(&mut st, &q.destination) {
        return Ok(fx);
    }
    st.breaker.pause(ctx.now);
    st.touch().drain = None;
    let mut fx = Effects::default();
    fx.log(circuit_line(&q.destination, &st, "paused by hand"));
    let summary = format!("{} was paused by hand: its deliveries are held until it is resumed ({} held now)", q.destination, st.counts.held);
    super::alerting::raise(&mut st, ctx, Kind::Paused, summary, "");
    super::alerting::finish(sql, &mut st, ctx, &mut fx)?;
    st.save(sql)?;
    fx.reply = Some(Reply::ok(Writer::object().str("state", "paused").int("held", st.counts.held).finish()));
    Ok(fx)
}

/// `/resume`: active again; what was held drains in order.
/// `{"state":"active","draining":n}`.
pub fn resume(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let q = match Named::decode(body) {
        Ok(q) => q,
        Err(e) => return Ok(bad_request(e)),
    };
    let mut st = super::open_state(sql, ctx)?;
    if let Err(fx) = learn(&mut st, &q.destination) {
        return Ok(fx);
    }
    st.breaker.resume(ctx.now, &ctx.settings.circuit);
    st.touch();
    start_drain(sql, &mut st, ctx)?;
    let mut fx = Effects::default();
    fx.log(circuit_line(&q.destination, &st, "resumed by hand"));
    fx.alarm = st.alarm_by(ctx.now, ctx.now);
    let summary = format!("{} was resumed by hand: its {} held deliveries are released in order", q.destination, st.counts.held);
    super::alerting::raise(&mut st, ctx, Kind::Resumed, summary, "");
    super::alerting::finish(sql, &mut st, ctx, &mut fx)?;
    st.save(sql)?;
    fx.reply = Some(Reply::ok(Writer::object().str("state", "active").int("draining", st.counts.held).finish()));
    Ok(fx)
}

/// `/health`: the destination's state and health for the admin API
/// (without its URL and types, which the worker adds from the
/// configuration): counts kept in the state, percentiles estimated from the
/// metrics.
pub fn health(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let mut st = super::open_state(sql, ctx)?;
    if let Ok(q) = Named::decode(body) {
        if let Err(fx) = learn(&mut st, &q.destination) {
            return Ok(fx);
        }
    }
    let b = &st.breaker;
    let now = ctx.now;
    let mut w = Writer::with_capacity(768);
    w.str("state", b.mode.as_str())
        .int_or_null("stateSince", b.since_ms)
        .int("consecutiveFailures", i64::from(b.consecutive_failures))
        .str_or_null("lastError", b.last_error.as_deref())
        .int_or_null("lastErrorAt", b.last_error_ms)
        .int_or_null("lastSuccessAt", b.last_success_ms)
        .int_or_null("nextProbeAt", b.next_probe_ms.filter(|_| b.mode == Mode::Tripped))
        .int("held", st.counts.held)
        .bool("draining", st.drain.is_some() && b.mode == Mode::Active)
        .raw("counts", &st.counts.encode())
        .int("bytes", st.bytes)
        .int("maxBytes", ctx.settings.max_log_bytes)
        .bool("full", st.bytes >= ctx.settings.max_log_bytes)
        .int("refused", st.refused)
        .bool("configured", configured(ctx, &st));
    match &st.recovery {
        Some(r) => w.raw("recovery", &Writer::object().int("recovered", r.recovered).bool("more", true).int("since", r.since).finish()),
        None => match st.last_recovery {
            Some((n, at)) => w.raw("recovery", &Writer::object().int("recovered", n).bool("more", false).int("finishedAt", at).finish()),
            None => w.raw("recovery", "null"),
        },
    };
    let hour = metrics::total_since(sql, &st.minute, MINUTE_MS, now - HOUR_MS, now)?;
    let day = metrics::total_since(sql, &st.minute, HOUR_MS, now - 24 * HOUR_MS, now)?;
    w.raw("lastHour", &window(&hour)).raw("lastDay", &window(&day));
    st.save(sql)?;
    Ok(Effects::reply(Reply::ok(w.finish())))
}

/// Attempts in a window: how many, how many succeeded, and the latency's
/// median and 95th percentile.
fn window(c: &Counters) -> String {
    let mut w = Writer::object();
    w.int("attempts", c.attempts as i64).int("succeeded", c.succeeded as i64);
    if c.attempts == 0 {
        w.raw("successRatio", "null");
    } else {
        // Four decimals without float formatting (which costs the wasm 14 KB).
        let ten_thousandths = (c.succeeded * 10_000 + c.attempts / 2) / c.attempts;
        let (whole, part) = (ten_thousandths / 10_000, ten_thousandths % 10_000);
        let part = format!("{part:04}");
        let part = part.trim_end_matches('0');
        let text = if part.is_empty() { whole.to_string() } else { format!("{whole}.{part}") };
        w.raw("successRatio", &text);
    }
    w.int_or_null("p50Ms", c.latency_quantile(0.5)).int_or_null("p95Ms", c.latency_quantile(0.95)).finish()
}

/// At most this many rows of metrics are read by one `/metrics`.
pub const METRICS_ROWS: i64 = 20_000;

/// `/metrics` (`{"since","until","step"}`, `step` a minute or an hour in
/// ms): the log's counts over time, oldest first, the current minute's
/// included: `{"step","series":[{"start","type",…counts}],"backlog":[{"start","backlog","last"}],
/// "backlogBefore"}` (the backlog's records, the most waiting in the span
/// and how many at its end; between two records it stayed at the first
/// one's end, and before the first at `backlogBefore`).
pub fn metrics(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let value = json::parse(body, &Limits::INTERNAL).unwrap_or(Value::Null);
    let int = |name: &str| value.get(name).and_then(Value::as_integer).and_then(|n| n.parse::<i64>().ok());
    let step = if int("step") == Some(HOUR_MS) { HOUR_MS } else { MINUTE_MS };
    let until = int("until").unwrap_or(ctx.now + 1);
    let since = int("since").unwrap_or(until - 24 * HOUR_MS);
    let from = since - since.rem_euclid(step);
    let st = super::open_state(sql, ctx)?;
    let mut series = Vec::new();
    let mut backlog = Vec::new();
    let mut current = st.minute.clone();
    let current_start = current.start - current.start.rem_euclid(step);
    let in_range = current.start > 0 && current.start >= since && current.start < until;
    let record = |start: i64, (most, last): (i64, i64)| Writer::object().int("start", start).int("backlog", most).int("last", last).finish();
    for span in metrics::spans(sql, step, from, until, METRICS_ROWS)? {
        if span.event_type == metrics::BACKLOG_TYPE {
            let mut b = span.backlog;
            if in_range && span.start == current_start {
                if let Some((most, last)) = current.backlog.take() {
                    b = (b.0.max(most), last);
                }
            }
            backlog.push(record(span.start, b));
            continue;
        }
        let mut c = span.counters;
        // An hour's row does not hold the current minute yet.
        if in_range && span.start == current_start {
            if let Some(i) = current.by_type.iter().position(|(t, _)| *t == span.event_type) {
                c.add(&current.by_type.remove(i).1);
            }
        }
        series.push(metrics::span_json(span.start, &span.event_type, &c));
    }
    if in_range {
        for (t, c) in &current.by_type {
            series.push(metrics::span_json(current_start, t, c));
        }
        if let Some(b) = current.backlog.filter(|(most, _)| *most > 0 || current.backlog_recorded > 0) {
            backlog.push(record(current_start, b));
        }
    }
    let out = Writer::with_capacity(64 + series.iter().map(String::len).sum::<usize>())
        .int("step", step)
        .raw("series", &format!("[{}]", series.join(",")))
        .raw("backlog", &format!("[{}]", backlog.join(",")))
        .int("backlogBefore", metrics::backlog_before(sql, step, from)?)
        .finish();
    Ok(Effects::reply(Reply::ok(out)))
}

/// `/totals`: what Prometheus scrapes of this log: its counts since it
/// began, per type (counters that only grow), its deliveries by status, its
/// state and size (gauges).
pub fn totals(sql: &impl Sql, ctx: &Context<'_>) -> Result<Effects, StorageError> {
    let st = super::open_state(sql, ctx)?;
    let types: Vec<String> = metrics::totals(sql, &st.minute)?.iter().map(|(t, c)| metrics::span_json(0, t, c)).collect();
    let out = Writer::object()
        .str("state", st.breaker.mode.as_str())
        .raw("counts", &st.counts.encode())
        .int("bytes", st.bytes)
        .raw("types", &format!("[{}]", types.join(",")))
        .finish();
    Ok(Effects::reply(Reply::ok(out)))
}

/// `/fill` (`{"destination","count","status"}`), for tests only (the entry
/// serves it with `DRIFT_BRIDGE_TEST_ROUTES=1`): `count` deliveries of
/// `status` (`held` or `failed`) in one statement, as if they had come in,
/// so that a test can measure what a large log costs without sending every
/// one of them.
pub fn fill(sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let value = json::parse(body, &Limits::INTERNAL).unwrap_or(Value::Null);
    let destination = value.get("destination").and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
    let count = value.get("count").and_then(Value::as_integer).and_then(|n| n.parse::<i64>().ok()).unwrap_or(0).clamp(0, 1_000_000);
    let status = match value.get("status").and_then(Value::as_str).map(|s| s.text().into_owned()).as_deref() {
        Some("failed") => Status::Failed,
        _ => Status::Held,
    };
    let mut st = super::open_state(sql, ctx)?;
    if let Err(fx) = learn(&mut st, &destination) {
        return Ok(fx);
    }
    let body = r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":1}}"#;
    let size = body.len() as i64 + super::schema::ROW_OVERHEAD;
    let first = st.last_accepted.max(ctx.now) + 1;
    let wake = if status == Status::Held { super::rows::hold_end(ctx, first) } else { ctx.now + ctx.settings.dead_letter_retention_ms() };
    sql.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) \
         INSERT INTO deliveries (id, event_id, type, scope, conversation, body, status, generation, attempts, created_at, updated_at, \
         accepted_at, wake_at, expires_at, size, reason) SELECT printf('%016x', ?2 + i) || '.' || ?3, printf('%016x', ?2 + i), \
         'conversation_push', 'conversation:1:' || (i % 1000), CAST(i % 1000 AS TEXT), ?4, ?5, 1, 0, ?6, ?6, ?2 + i, ?7, \
         CASE WHEN ?5 = 'held' THEN NULL ELSE ?7 END, ?8, CASE WHEN ?5 = 'held' THEN NULL ELSE 'filled by a test' END FROM n",
        &[
            Arg::Int(count),
            Arg::Int(first),
            Arg::Text(&destination),
            Arg::Text(body),
            Arg::Text(status.sql()),
            Arg::Int(ctx.now),
            Arg::Int(wake),
            Arg::Int(size),
        ],
    )?;
    st.add(status, count);
    st.bytes += count * size;
    st.last_accepted = first + count;
    let mut fx = Effects::default();
    super::intake::register(&mut st, &mut fx, false);
    fx.alarm = st.alarm_by(wake, ctx.now);
    st.save(sql)?;
    fx.reply = Some(Reply::ok(Writer::object().int("filled", count).finish()));
    Ok(fx)
}

/// Row counts by status (counted, to check the kept counts), the kept
/// state and the recorded alarm, for tests.
pub fn stats(sql: &impl Sql, ctx: &Context<'_>) -> Result<Effects, StorageError> {
    let st = super::open_state(sql, ctx)?;
    let mut by_status = Writer::object();
    let mut rows = 0;
    for r in sql.query("SELECT status, COUNT(*) FROM deliveries GROUP BY status ORDER BY status", &[])? {
        by_status.int(r.text(0).unwrap_or("?"), r.int0(1));
        rows += r.int0(1);
    }
    let metrics = sql.number("SELECT COUNT(*) FROM metrics", &[])?.unwrap_or(0);
    let out = Writer::object()
        .raw("deliveries", &by_status.finish())
        .int("rows", rows)
        .int("metricRows", metrics)
        .raw("counts", &st.counts.encode())
        .int("bytes", st.bytes)
        .int_or_null("recordedAlarm", st.alarm)
        .str("breaker", st.breaker.mode.as_str())
        .bool("draining", st.drain.is_some())
        .finish();
    Ok(Effects::reply(Reply::ok(out)))
}
