//! The admin API's side of the delivery log: the listing, one delivery,
//! replays and bulk recovery, pause and resume, the app's health, its
//! metrics, a test delivery. Every one reads a bounded number of rows but
//! the listing, which reads the log an hour at a time, every row of each
//! hour it spans (and stops at an hour's end once it read [`SCAN_ROWS`]),
//! handing over only the page's.

use super::super::alerts::Kind;
use super::super::breaker::Mode;
use super::super::effects::{Reply, Ticket};
use super::super::key::{event_bits, event_hex, hour_of, parse_id, Key};
use super::super::metrics::{self, Counters, HOUR_MS, MINUTE_MS};
use super::super::request::{self, Seen, Tried};
use super::super::sql::{Arg, Row as SqlRow, Sql, StorageError};
use super::super::status::Status;
use super::input::{Fill, Input, ListQuery, MetricsQuery, Recover, TestDelivery};
use super::places::NewRow;
use super::rows::Row;
use super::schema::ROW_OVERHEAD;
use super::state::Recovery;
use super::replays::{kept_hours, position, recover_page};
use super::{bad_request, Log};
use crate::json::{self, Limits, Value, Writer};

/// A page of the listing stops once it read this many rows (at an hour's
/// end), and says where the next one starts.
pub const SCAN_ROWS: i64 = 2000;
/// At most this many rows of metrics are read by one `/metrics`.
pub const METRICS_ROWS: i64 = 20_000;
/// Why a test delivery is in the log.
pub const TEST_REASON: &str = "a test delivery from the admin API (not retried)";


pub(crate) fn handle<S: Sql>(log: &mut Log<'_, S>, input: Input) -> Result<Reply, StorageError> {
    let learnt = match &input {
        Input::Recover(r) => log.learn(&r.key),
        Input::Pause { key } | Input::Resume { key } | Input::Health { key } => log.learn(key),
        Input::Fill(f) => log.learn(&f.key),
        Input::Listen { key } => log.learn(key),
        _ => Ok(()),
    };
    if let Err(reply) = learnt {
        return Ok(reply);
    }
    match input {
        Input::List(q) => list(log, &q),
        Input::Get { id } => get(log, &id),
        Input::Replay { id } => replay(log, &id),
        Input::Recover(r) => recover(log, r),
        Input::Pause { .. } => pause(log),
        Input::Resume { .. } => resume(log),
        Input::Health { .. } => health(log),
        Input::Metrics(q) => metrics(log, q),
        Input::Totals => totals(log),
        Input::Stats => stats(log),
        Input::Fill(f) => fill(log, f),
        Input::Listen { .. } => listen(log),
        other => Ok(bad_request(format!("{:?} is not an admin operation", other.encode().0))),
    }
}

/// The columns of a listed delivery.
macro_rules! listed_columns {
    () => {
        "hour, event, replay, seq, status, type, scope, attempts, received_at, accepted_at, updated_at, last_error, reason, replayed_as"
    };
}

/// `/list`: one page, newest first: `{"deliveries":[…],"positions":[…],"next":<position>|null}`
/// (`positions`: each delivery's place in the log, for a caller that merges
/// pages of several logs).
fn list<S: Sql>(log: &mut Log<'_, S>, q: &ListQuery) -> Result<Reply, StorageError> {
    let configured = log.configured();
    let key_text = log.key().to_owned();
    let statuses = if q.statuses.is_empty() { String::new() } else { format!(",{},", q.statuses.join(",")) };
    let before = q.before.unwrap_or(i64::MAX);
    let lowest = match q.since {
        // A delivery is taken in no earlier than its webhook was received.
        Some(since) => hour_of(since),
        None => log.sql.number("SELECT MIN(hour) FROM deliveries", &[])?.unwrap_or(0),
    };
    let mut hour = log.sql.number("SELECT MAX(hour) FROM deliveries WHERE hour <= ?", &[Arg::Int(before >> 32)])?;
    let mut out: Vec<(i64, String)> = Vec::new();
    let mut read = 0;
    let mut next = None;
    let conversation = q.conversation.as_ref().map(|c| format!("conversation:%:{c}"));
    let event = q.event.as_deref().and_then(event_bits);
    if q.event.is_some() && event.is_none() {
        return Ok(bad_request("event: expected an event id of 16 hex digits"));
    }
    while let Some(h) = hour.filter(|h| *h >= lowest) {
        // Newest first within the hour: SQLite reads the hour's rows and
        // hands over only the page's (there is no index on `seq`: it would
        // cost two rows written per delivery).
        let before_seq = if before >> 32 == h { before & 0xffff_ffff } else { i64::MAX };
        let wanted = i64::from(q.limit) - out.len() as i64;
        let rows = log.sql.query(
            concat!(
                "SELECT ",
                listed_columns!(),
                " FROM deliveries WHERE hour = ?1 AND (?2 = '' OR instr(?2, ',' || status || ',') > 0) AND (?3 IS NULL OR received_at >= ?3) \
                 AND (?4 IS NULL OR received_at < ?4) AND (?5 IS NULL OR scope LIKE ?5) AND (?6 IS NULL OR event = ?6) AND seq < ?7 \
                 ORDER BY seq DESC LIMIT ?8"
            ),
            &[
                Arg::Int(h),
                Arg::Text(&statuses),
                Arg::from(q.since),
                Arg::from(q.until),
                Arg::from(conversation.as_deref()),
                event.map_or(Arg::Null, Arg::Event),
                Arg::Int(before_seq),
                Arg::Int(wanted),
            ],
        )?;
        for r in &rows {
            let key = Key { hour: r.int0(0), event: r.event(1), replay: r.int0(2).clamp(0, i64::from(u32::MAX)) as u32 };
            out.push((position(key, r.int0(3)), listed(r, &key_text, configured)));
        }
        if out.len() as u32 >= q.limit {
            next = out.last().map(|(p, _)| *p);
            break;
        }
        // The page is not full: what this hour cost counts towards the page's reading.
        read += log.sql.number("SELECT COUNT(*) FROM deliveries WHERE hour = ?", &[Arg::Int(h)])?.unwrap_or(0);
        hour = log.sql.number("SELECT MAX(hour) FROM deliveries WHERE hour < ?", &[Arg::Int(h)])?;
        if read >= SCAN_ROWS && hour.is_some_and(|h| h >= lowest) {
            // Read enough for one page: the next starts at the next hour down.
            next = hour.map(|h| (h + 1) << 32);
            break;
        }
    }
    let items: Vec<&str> = out.iter().map(|(_, j)| j.as_str()).collect();
    let positions: Vec<String> = out.iter().map(|(p, _)| p.to_string()).collect();
    let body = format!(
        "{{\"deliveries\":[{}],\"positions\":[{}],\"next\":{}}}",
        items.join(","),
        positions.join(","),
        next.map_or_else(|| "null".to_owned(), |n| n.to_string())
    );
    Ok(Reply::ok(body))
}

/// One delivery as the admin API lists it, from a row of [`listed_columns`].
fn listed(r: &SqlRow, key: &str, configured: bool) -> String {
    let name = super::super::destination::name_of_key(key);
    let k = Key { hour: r.int0(0), event: r.event(1), replay: r.int0(2).clamp(0, i64::from(u32::MAX)) as u32 };
    let status = r.text(4).and_then(Status::from_sql).unwrap_or(Status::Failed);
    let mut w = Writer::with_capacity(320);
    w.str("id", &k.id(name))
        .str("status", status.api().as_str())
        .str("state", status.sql())
        .str("destination", name)
        .str("eventId", &event_hex(k.event))
        .str("type", r.text(5).unwrap_or(""))
        .str("scope", r.text(6).unwrap_or(""))
        .int("attempts", r.int0(7))
        .int("at", r.int0(8))
        .int("acceptedAt", r.int0(9))
        .int("updatedAt", r.int0(10))
        .opt_str("lastError", r.text(11))
        .opt_str("reason", r.text(12))
        .opt_str("replayedAs", r.text(13));
    if !configured {
        // A removed app's: which incarnation, since an app of the same name
        // may exist now.
        w.bool("configured", false).opt_str("incarnation", super::super::destination::incarnation_of_key(key));
    }
    w.finish()
}


/// The row of a delivery id, if it is this log's and still kept.
fn by_id<S: Sql>(log: &Log<'_, S>, id: &str) -> Result<Option<Row>, StorageError> {
    let Some((event, app, replay)) = parse_id(id) else { return Ok(None) };
    if app != log.name() {
        return Ok(None);
    }
    let (from, to) = kept_hours(log);
    Row::find(log.sql, event, replay, from, to)
}

fn not_found<S: Sql>(log: &Log<'_, S>, id: &str) -> Reply {
    Reply::status(
        404,
        format!(
            "no delivery {id}: delivered deliveries are kept for {} s (DELIVERY_LOG_SECONDS) and dead letters for {} s \
             (DEAD_LETTER_RETENTION_SECONDS), so it has expired or never existed",
            log.ctx.settings.delivery_log_seconds, log.ctx.settings.dead_letter_retention_seconds
        ),
    )
}

/// `/get`: one delivery with its body and attempts:
/// `{…listed…,"body":"…","attemptLog":[…]}` (the body as the outbound event
/// before token handling, as text; the admin API redacts it).
fn get<S: Sql>(log: &mut Log<'_, S>, id: &str) -> Result<Reply, StorageError> {
    let Some(row) = by_id(log, id)? else { return Ok(not_found(log, id)) };
    let r = log.sql.first(
        concat!("SELECT ", listed_columns!(), ", body, history FROM deliveries WHERE hour = ? AND event = ? AND replay = ?"),
        &super::rows::key_args(row.key),
    )?;
    let Some(r) = r else { return Ok(not_found(log, id)) };
    let mut out = listed(&r, log.key(), log.configured());
    out.pop();
    out.push_str(",\"body\":");
    json::write_str_escaped(&mut out, r.text(14).unwrap_or(""));
    out.push_str(",\"attemptLog\":[");
    let mut first = true;
    for line in r.text(15).unwrap_or("").split('\n').filter(|l| !l.is_empty()) {
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
    Ok(Reply::ok(out))
}

/// `/replay`: a failed or gone delivery, once more, as a new delivery
/// `<id>.r<n>` with the same `webhook-id` (held if the app is down or
/// paused). `{"replayed":…,"as":…}`; 404 when unknown or expired, 409 when
/// it is not a dead letter or its app was removed.
fn replay<S: Sql>(log: &mut Log<'_, S>, id: &str) -> Result<Reply, StorageError> {
    let Some(row) = by_id(log, id)? else { return Ok(not_found(log, id)) };
    if log.st.ended.is_some() || log.presence() == super::Presence::Removed {
        return Ok(Reply::status(
            409,
            format!("{id} cannot be replayed: {}; nothing of it goes to an app created since under the same name", super::removed_reason(log.key())),
        ));
    }
    match row.status {
        Status::Failed | Status::Gone => {}
        Status::Replayed => return Ok(Reply::status(409, format!("{id} was already replayed as {}", row.replayed_as.as_deref().unwrap_or("?")))),
        other => {
            return Ok(Reply::status(409, format!("{id} is {}, not a dead letter; only failed or gone deliveries can be replayed", other.api().as_str())))
        }
    }
    let held = !log.sends();
    let new_id = log.replay_row(&row, None, held, "replayed by an operator")?;
    Ok(Reply::ok(Writer::object().str("replayed", id).str("as", &new_id).finish()))
}

/// `/recover`: every dead letter with one of the statuses received since a
/// time, once more, each as a replay, held and drained in its original
/// order. One page now, the rest by the alarm, page by page; answers
/// `{"recovered":<so far>,"more":<whether pages remain>}`. Asking again
/// while it runs restarts it with the new parameters; what it already
/// replayed is no longer a dead letter, so nothing is recovered twice.
fn recover<S: Sql>(log: &mut Log<'_, S>, r: Recover) -> Result<Reply, StorageError> {
    let statuses: Vec<String> = r.statuses.into_iter().filter(|s| s == "failed" || s == "gone").collect();
    let statuses = if statuses.is_empty() { vec!["failed".to_owned()] } else { statuses };
    // Up to the end of the log as it is now: what it replays comes after.
    let until = position(Key { hour: hour_of(log.st.last_accepted.max(log.ctx.now)), event: 0, replay: 0 }, log.st.seq);
    let after = position(Key { hour: hour_of(r.since) - 1, event: 0, replay: 0 }, 0);
    log.st.touch().recovery = Some(Recovery { since: r.since, statuses, after, after_key: None, until, recovered: 0, started: log.ctx.now });
    let more = recover_page(log)?;
    let recovered = log.st.recovery.as_ref().map_or_else(|| log.st.last_recovery.map_or(0, |(n, _)| n), |r| r.recovered);
    Ok(Reply::ok(Writer::object().int("recovered", recovered).bool("more", more).finish()))
}

/// `/pause`: everything is held until a resume. `{"state":"paused","held":n}`.
fn pause<S: Sql>(log: &mut Log<'_, S>) -> Result<Reply, StorageError> {
    log.st.breaker.pause(log.ctx.now);
    log.st.touch().drain = None;
    let line = log.circuit_line("paused by hand");
    log.fx.log(line);
    let summary = format!("{} was paused by hand: its deliveries are held until it is resumed ({} held now)", log.name(), log.st.counts.held);
    super::alerting::raise(log, Kind::Paused, summary, "");
    Ok(Reply::ok(Writer::object().str("state", "paused").int("held", log.st.counts.held).finish()))
}

/// `/resume`: active again; what was held drains in order.
/// `{"state":"active","draining":n}`.
fn resume<S: Sql>(log: &mut Log<'_, S>) -> Result<Reply, StorageError> {
    let settings = log.ctx.settings.circuit;
    log.st.breaker.resume(log.ctx.now, &settings);
    log.st.touch();
    log.start_drain()?;
    let line = log.circuit_line("resumed by hand");
    log.fx.log(line);
    let summary = format!("{} was resumed by hand: its {} held deliveries are released in order", log.name(), log.st.counts.held);
    super::alerting::raise(log, Kind::Resumed, summary, "");
    // The drain starts at once: the alarm.
    log.more = true;
    Ok(Reply::ok(Writer::object().str("state", "active").int("draining", log.st.counts.held).finish()))
}

/// `/listen`: `drift-bridge listen` connects. 404 when the app is not
/// there, 409 `not_a_listener` when it sends to a URL; else the hello,
/// `{"kind":"hello","destination","waiting"}` (`waiting`: the deliveries
/// held for a listener, which follow). What is held drains as after a
/// resume, from the alarm, which the caller runs once it has taken the
/// WebSocket (this step still sees none, and sends nothing). A tripped
/// app is active again: a new listener is a new chance; a paused one
/// stays paused.
fn listen<S: Sql>(log: &mut Log<'_, S>) -> Result<Reply, StorageError> {
    let app = log.app.clone().filter(|_| log.presence() == super::Presence::Here);
    let Some(app) = app else { return Ok(Reply::status(404, format!("no app {} is configured", crate::escape::quoted(log.name())))) };
    if !app.listen {
        return Ok(Reply::status(
            409,
            format!("{} sends its deliveries to {}; only an app created with \"listen\": true takes a listener", app.name, super::super::redact::url(&app.url)),
        ));
    }
    if log.st.breaker.mode == Mode::Tripped {
        let settings = log.ctx.settings.circuit;
        log.st.breaker.resume(log.ctx.now, &settings);
        let line = log.circuit_line("a listener connected");
        log.fx.log(line);
    }
    log.st.touch();
    log.start_drain()?;
    log.more = true;
    let line = Writer::object().str("kind", "listener").str("destination", &app.name).int("waiting", log.st.counts.held).finish();
    log.fx.log(line);
    Ok(Reply::ok(Writer::object().str("kind", "hello").str("destination", &app.name).int("waiting", log.st.counts.held).finish()))
}

/// `/health`: the app's state and health for the admin API (without its
/// URL and types, which the worker adds from the configuration): counts
/// kept in the state, percentiles estimated from the metrics.
fn health<S: Sql>(log: &mut Log<'_, S>) -> Result<Reply, StorageError> {
    let b = &log.st.breaker;
    let now = log.ctx.now;
    let mut w = Writer::with_capacity(768);
    w.str("state", b.mode.as_str())
        .int_or_null("stateSince", b.since_ms)
        .int("consecutiveFailures", i64::from(b.consecutive_failures))
        .str_or_null("lastError", b.last_error.as_deref())
        .int_or_null("lastErrorAt", b.last_error_ms)
        .int_or_null("lastSuccessAt", b.last_success_ms)
        .int_or_null("nextProbeAt", b.next_probe_ms.filter(|_| b.mode == Mode::Tripped))
        .int("held", log.st.counts.held)
        .bool("draining", log.st.drain.is_some() && b.mode == Mode::Active)
        .raw("counts", &log.st.counts.encode())
        .int("bytes", log.st.bytes)
        .int("maxBytes", log.ctx.settings.max_log_bytes)
        .bool("full", log.st.bytes >= log.ctx.settings.max_log_bytes)
        .int("refused", log.st.refused)
        .bool("configured", log.configured());
    match &log.st.recovery {
        Some(r) => w.raw("recovery", &Writer::object().int("recovered", r.recovered).bool("more", true).int("since", r.since).finish()),
        None => match log.st.last_recovery {
            Some((n, at)) => w.raw("recovery", &Writer::object().int("recovered", n).bool("more", false).int("finishedAt", at).finish()),
            None => w.raw("recovery", "null"),
        },
    };
    let hour = metrics::total_since(log.sql, &log.st.minute, MINUTE_MS, now - HOUR_MS, now)?;
    let day = metrics::total_since(log.sql, &log.st.minute, HOUR_MS, now - 24 * HOUR_MS, now)?;
    w.raw("lastHour", &window(&hour)).raw("lastDay", &window(&day));
    Ok(Reply::ok(w.finish()))
}

/// Attempts in a window: how many, how many succeeded, and the latency's
/// median and 95th percentile.
fn window(c: &Counters) -> String {
    let mut w = Writer::object();
    w.int("attempts", c.attempts as i64).int("succeeded", c.succeeded as i64);
    if let Some(ten_thousandths) = (c.succeeded * 10_000 + c.attempts / 2).checked_div(c.attempts) {
        // Four decimals without float formatting (which costs the wasm 14 KB).
        let (whole, part) = (ten_thousandths / 10_000, ten_thousandths % 10_000);
        let part = format!("{part:04}");
        let part = part.trim_end_matches('0');
        let text = if part.is_empty() { whole.to_string() } else { format!("{whole}.{part}") };
        w.raw("successRatio", &text);
    } else {
        w.raw("successRatio", "null");
    }
    w.int_or_null("p50Ms", c.latency_quantile(0.5)).int_or_null("p95Ms", c.latency_quantile(0.95)).finish()
}

/// `/metrics`: the log's counts over time, oldest first, the current
/// minute's included: `{"step","series":[{"start","type",…counts}],"backlog":[{"start","backlog","last"}],
/// "backlogBefore"}`.
fn metrics<S: Sql>(log: &mut Log<'_, S>, q: MetricsQuery) -> Result<Reply, StorageError> {
    let (since, until, step) = (q.since, q.until, q.step);
    let from = since - since.rem_euclid(step);
    let mut series = Vec::new();
    let mut backlog = Vec::new();
    let mut current = log.st.minute.clone();
    let current_start = current.start - current.start.rem_euclid(step);
    let in_range = current.start > 0 && current.start >= since && current.start < until;
    let record = |start: i64, (most, last): (i64, i64)| Writer::object().int("start", start).int("backlog", most).int("last", last).finish();
    for span in metrics::spans(log.sql, step, from, until, METRICS_ROWS)? {
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
        .int("backlogBefore", metrics::backlog_before(log.sql, step, from)?)
        .finish();
    Ok(Reply::ok(out))
}

/// `/totals`: what Prometheus scrapes of this log: its counts since it
/// began, per type (counters that only grow), its deliveries by status, its
/// state and size (gauges).
fn totals<S: Sql>(log: &mut Log<'_, S>) -> Result<Reply, StorageError> {
    let types: Vec<String> = metrics::totals(log.sql, &log.st.minute)?.iter().map(|(t, c)| metrics::span_json(0, t, c)).collect();
    let out = Writer::object()
        .str("state", log.st.breaker.mode.as_str())
        .raw("counts", &log.st.counts.encode())
        .int("bytes", log.st.bytes)
        .raw("types", &format!("[{}]", types.join(",")))
        .finish();
    Ok(Reply::ok(out))
}

/// `/test`: the request to send (its answer comes back as `Sent`, whose step
/// replies).
pub(crate) fn test<S: Sql>(log: &mut Log<'_, S>, t: TestDelivery) -> Result<Option<Reply>, StorageError> {
    let Some(d) = log.app.clone() else {
        return Ok(Some(Reply::status(404, format!("no destination {} is configured", crate::escape::quoted(log.name())))));
    };
    let ticket = Ticket::Test { event: t.event_id.clone(), event_type: t.event_type.clone(), subscribed: t.subscribed, body: t.body.clone() };
    let slack = log.ctx.settings.alerts.target(&d.name).is_some_and(|x| x.format == super::super::alerts::Format::Slack);
    match request::post(&d, ticket, &t.event_id, &t.body, log.ctx.now, log.ctx.settings.delivery_timeout_ms, slack) {
        Ok(post) => {
            log.fx.posts.push(post);
            Ok(None)
        }
        Err(why) => Ok(Some(Reply::status(409, why))),
    }
}

/// What the app answered to a test delivery: kept in the log, marked as a
/// test, and said: `{"destination","delivery","webhookId","type","subscribed",
/// "delivered","status","latencyMs","error"?,"excerpt"?}`.
pub(crate) fn tested<S: Sql>(log: &mut Log<'_, S>, s: &Seen) -> Result<Reply, StorageError> {
    let Ticket::Test { event, event_type, subscribed, body } = &s.ticket else { return Ok(bad_request("not a test")) };
    let Some(bits) = event_bits(event) else { return Ok(bad_request("not an event id")) };
    let tried = s.tried(body, log.app.as_ref());
    let (code, error) = match &tried {
        Tried::Answered { code, error } => (Some(*code), error.clone()),
        Tried::Nothing { error } => (None, Some(error.clone())),
    };
    let delivered = code.is_some_and(|c| (200..300).contains(&c));
    let status = if delivered { Status::Delivered } else { Status::Failed };
    let history = Writer::object()
        .int("n", 1)
        .int("at", log.ctx.now)
        .int_or_null("code", code.map(i64::from))
        .str_or_null("error", error.as_deref())
        .int("ms", s.latency_ms)
        .bool("probe", false)
        .finish();
    let retention = if delivered { log.ctx.settings.delivery_log_ms() } else { log.ctx.settings.dead_letter_retention_ms() };
    let expires_at = log.ctx.expiry(retention);
    let accepted = log.st.accept_time(log.ctx.now);
    let key = Key::new(accepted, bits, 0);
    let new = NewRow {
        key,
        event_type,
        scope: "test",
        org: None,
        received_at: log.ctx.now,
        accepted_at: accepted,
        body,
        size: body.len() as i64 + ROW_OVERHEAD,
        attempts: 1,
        reason: Some(TEST_REASON),
        history: Some(&history),
        last_error: error.as_deref(),
    };
    // Not counted against the app by the breaker, nor in the metrics.
    let alerts = log.st.alerts.clone();
    log.insert(&new, super::places::Place::Settled { status, reason: Some(TEST_REASON), expires_at })?;
    log.st.alerts = alerts;
    let id = key.id(log.name());
    let mut w = Writer::object();
    w.str("destination", log.name())
        .str("delivery", &id)
        .str("webhookId", event)
        .str("type", event_type)
        .bool("subscribed", *subscribed)
        .bool("delivered", delivered)
        .int_or_null("status", code.map(i64::from))
        .int("latencyMs", s.latency_ms)
        .opt_str("error", error.as_deref());
    if !delivered && !s.excerpt.is_empty() {
        let excerpt: String = s.excerpt.chars().take(200).collect();
        w.str("excerpt", &request::redact_echo(excerpt, body, log.app.as_ref()));
    }
    let line = Writer::object()
        .str("kind", "test-delivery")
        .str("delivery", &id)
        .str("destination", log.name())
        .bool("delivered", delivered)
        .int_or_null("code", code.map(i64::from))
        .int("latencyMs", s.latency_ms)
        .finish();
    log.fx.log(line);
    Ok(Reply::ok(w.finish()))
}

/// `/stats`, for tests: row counts by status (counted, to check the kept
/// counts), the side tables, the kept state and the recorded alarm.
fn stats<S: Sql>(log: &mut Log<'_, S>) -> Result<Reply, StorageError> {
    let mut by_status = Writer::object();
    let mut rows = 0;
    for r in log.sql.query("SELECT status, COUNT(*) FROM deliveries GROUP BY status ORDER BY status", &[])? {
        by_status.int(r.text(0).unwrap_or("?"), r.int0(1));
        rows += r.int0(1);
    }
    let count = |table: &'static str| log.sql.number(table, &[]);
    let out = Writer::object()
        .raw("deliveries", &by_status.finish())
        .int("rows", rows)
        .int("waits", count("SELECT COUNT(*) FROM waits")?.unwrap_or(0))
        .int("held", count("SELECT COUNT(*) FROM held")?.unwrap_or(0))
        .int("lines", count("SELECT COUNT(*) FROM lines")?.unwrap_or(0))
        .int("heads", count("SELECT COUNT(*) FROM heads")?.unwrap_or(0))
        .int("flight", log.st.flight.len() as i64)
        .int("metricRows", count("SELECT COUNT(*) FROM metrics")?.unwrap_or(0))
        .raw("counts", &log.st.counts.encode())
        .int("bytes", log.st.bytes)
        .int_or_null("recordedAlarm", log.st.alarm)
        .str("breaker", log.st.breaker.mode.as_str())
        .bool("draining", log.st.drain.is_some())
        .finish();
    Ok(Reply::ok(out))
}

/// `/fill`, for tests only (the test entry serves it): `count` deliveries
/// held or failed, in one statement, as if they had come in, so that a test
/// can measure what a large log costs without sending every one of them.
fn fill<S: Sql>(log: &mut Log<'_, S>, f: Fill) -> Result<Reply, StorageError> {
    let body = r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":1}}"#;
    let size = body.len() as i64 + ROW_OVERHEAD;
    let first = log.st.last_accepted.max(log.ctx.now) + 1;
    let (status, expires) = if f.failed {
        (Status::Failed, Some(log.ctx.now + log.ctx.settings.dead_letter_retention_ms()))
    } else {
        (Status::Held, None)
    };
    if f.count <= 0 {
        return Ok(Reply::ok(Writer::object().int("filled", 0).finish()));
    }
    let seq = log.st.seq;
    // The hour is the caller's: the Workers API binds numbers as reals, and
    // SQL would divide them as such.
    let hour = hour_of(first);
    log.sql.execute(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) \
         INSERT INTO deliveries (hour, event, replay, seq, status, attempts, type, scope, received_at, accepted_at, updated_at, \
         expires_at, size, body, reason) SELECT ?8, printf('%016x', CAST(?2 AS INTEGER) + i), 0, ?3 + 1 + i, ?4, 0, 'conversation_push', \
         'conversation:1:' || (i % 1000), ?2, ?2 + i, ?2, ?5, ?6, ?7, CASE WHEN ?4 = 'held' THEN NULL ELSE 'filled by a test' END FROM n",
        &[Arg::Int(f.count), Arg::Int(first), Arg::Int(seq), Arg::Text(status.sql()), Arg::from(expires), Arg::Int(size), Arg::Text(body), Arg::Int(hour)],
    )?;
    if !f.failed {
        log.sql.execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1) \
             INSERT INTO held (seq, hour, event, replay) SELECT ?3 + 1 + i, ?4, printf('%016x', CAST(?2 AS INTEGER) + i), 0 FROM n",
            &[Arg::Int(f.count), Arg::Int(first), Arg::Int(seq), Arg::Int(hour)],
        )?;
    }
    log.st.add(status, f.count);
    log.st.bytes += f.count * size;
    log.st.seq += f.count;
    log.st.last_accepted = first + f.count;
    if let Some(at) = expires {
        if log.st.next_expiry.is_none_or(|n| at < n) {
            log.st.next_expiry = Some(at);
        }
    }
    Ok(Reply::ok(Writer::object().int("filled", f.count).finish()))
}
