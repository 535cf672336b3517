//! The outbox of drift-bridge 0.3, kept to drain what it holds: one Durable
//! Object per deduplication scope (a conversation) where a webhook used to
//! hand its deliveries off. Webhooks now hand each app's share to the app's
//! delivery log directly ([`super::handoff`]); an outbox only forwards what
//! it still holds (and, while a deploy rolls out, what an isolate of the
//! older version hands it), then holds nothing and keeps no alarm.
//!
//! - **`Accept`** (a hand-off of drift-bridge 0.3) stores one row per
//!   delivery log it names, and wants the alarm now.
//! - **The alarm** forwards each log's rows to it as an `Accept` (one call
//!   per log, up to [`FORWARD_BYTES`]); what each log took is forgotten
//!   (`Called`). A log that cannot be reached is tried again with backoff (2
//!   s, 4 s, … up to 5 minutes) for as long as a held delivery lives
//!   (`HOLD_RETENTION_SECONDS`); every failed try is logged.

use super::effects::{Alarm, Call, CallResult, CallTicket, Effects, Object, Reply};
use super::log::input::{decode_results, Accept, NewDelivery};
use super::settings::Settings;
use super::sql::{Arg, Sql, StorageError};
use crate::json::{self, Limits, Value, Writer};

/// At most this much event text goes to a delivery log in one call.
pub const FORWARD_BYTES: usize = 1 << 20;
/// At most this many rows are read by one alarm; more wait for the next,
/// which follows at once (an alarm must never run out of time).
pub const FORWARD_ROWS: i64 = 500;
/// Rows waiting longer than this, with no delivery log being waited for,
/// mean the alarm was lost: the next hand-off sets it again.
pub const STUCK_MS: i64 = 60_000;
/// The longest wait between two tries of a delivery log.
pub const BACKOFF_MAX_MS: i64 = 300_000;

/// The outbox's tables.
pub const TABLES: [&str; 2] = [
    // What waits to be forwarded: one log's deliveries of one hand-off, as
    // the items of its `Accept`.
    "CREATE TABLE IF NOT EXISTS outgoing (seq INTEGER PRIMARY KEY, destination TEXT NOT NULL, \
     deliveries TEXT NOT NULL, count INTEGER NOT NULL, at INTEGER NOT NULL)",
    // Logs that could not be reached: when to try again.
    "CREATE TABLE IF NOT EXISTS forwarding (destination TEXT PRIMARY KEY, tries INTEGER NOT NULL, \
     retry_at INTEGER NOT NULL, since INTEGER NOT NULL, last_error TEXT) WITHOUT ROWID",
];

/// What an outbox takes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A hand-off of drift-bridge 0.3 (`{"v":2,"scope","at","org"?,"events":[…]}`).
    Accept(String),
    Alarm,
    /// What the delivery logs answered to its forwarding.
    Called(Vec<CallResult>),
    /// Row counts, for tests.
    Stats,
}

impl Input {
    /// Reads a request's path and body (`alarm` for the alarm).
    pub fn decode(path: &str, body: &str) -> Result<Input, String> {
        Ok(match path {
            "/accept" => Input::Accept(body.to_owned()),
            "alarm" => Input::Alarm,
            "/called" => Input::Called(decode_results(body).map_err(|e| e.to_string())?),
            "/stats" => Input::Stats,
            other => return Err(format!("unknown outbox operation {}", crate::escape::quoted(other))),
        })
    }
}

/// Creates the tables, and moves what an outbox of drift-bridge 0.2 still
/// holds (its `pending` rows) into them.
pub fn open(sql: &impl Sql) -> Result<(), StorageError> {
    for statement in TABLES {
        sql.execute(statement, &[])?;
    }
    if sql.first("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'pending_events'", &[])?.is_none() {
        return Ok(());
    }
    let rows = sql.query(
        "SELECT p.destination, e.event_id, e.type, e.scope, e.at, e.body FROM pending p \
         JOIN pending_events e ON e.event_id = p.event_id ORDER BY p.rowid",
        &[],
    )?;
    let mut by_log: Vec<(String, Vec<String>, i64)> = Vec::new();
    for mut row in rows {
        let key = row.take(0);
        let item = NewDelivery { event: row.take(1), event_type: row.take(2), scope: row.take(3), received_at: row.int0(4), org: None, body: row.take(5) };
        let at = item.received_at;
        match by_log.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, items, _)) => items.push(item.encode()),
            None => by_log.push((key, vec![item.encode()], at)),
        }
    }
    for (key, items, at) in &by_log {
        insert(sql, key, items, *at)?;
    }
    for statement in ["DROP TABLE IF EXISTS pending", "DROP TABLE IF EXISTS pending_events", "DROP TABLE IF EXISTS seen"] {
        sql.execute(statement, &[])?;
    }
    Ok(())
}

/// One step of an outbox.
pub fn step(sql: &impl Sql, settings: &Settings, now: i64, input: Input) -> Result<Effects, StorageError> {
    match input {
        Input::Accept(body) => accept(sql, &body, now),
        Input::Alarm => alarm(sql, now),
        Input::Called(results) => forwarded(sql, settings, &results, now),
        Input::Stats => Ok(Effects::reply(Reply::ok(stats(sql)?))),
    }
}

/// A hand-off of drift-bridge 0.3, as an isolate of that version wrote it.
struct LegacyHandOff {
    scope: String,
    at_ms: i64,
    org: Option<String>,
    /// (event id, type, the logs that get it, body).
    events: Vec<(String, String, Vec<String>, String)>,
}

fn decode_legacy(payload: &str) -> Result<LegacyHandOff, String> {
    let value = json::parse(payload, &Limits::INTERNAL).map_err(|e| e.to_string())?;
    if value.get("v").and_then(Value::as_integer) != Some("2") {
        return Err("v: missing or unknown version in a hand-off".into());
    }
    let text = |v: Option<&Value<'_>>, path: &str| -> Result<String, String> {
        v.and_then(Value::as_str).map(|s| s.text().into_owned()).ok_or_else(|| format!("{path}: expected a string in a hand-off"))
    };
    let scope = text(value.get("scope"), "scope")?;
    let org = value.get("org").and_then(Value::as_str).map(|s| s.text().into_owned());
    let at_ms = value.get("at").and_then(Value::as_integer).map(crate::legacy::integer_ms).ok_or("at: expected an integer in a hand-off")?;
    let Some(Value::Array(items)) = value.get("events") else { return Err("events: expected an array in a hand-off".into()) };
    let mut events = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let id = text(item.get("id"), &format!("events[{i}].id"))?;
        if super::key::event_bits(&id).is_none() {
            return Err(format!("events[{i}].id: expected 16 hex digits in a hand-off"));
        }
        let Some(Value::Array(names)) = item.get("to") else { return Err(format!("events[{i}].to: expected an array of destination names in a hand-off")) };
        let to = names.iter().enumerate().map(|(j, n)| text(Some(n), &format!("events[{i}].to[{j}]"))).collect::<Result<Vec<_>, _>>()?;
        events.push((id, text(item.get("type"), &format!("events[{i}].type"))?, to, text(item.get("body"), &format!("events[{i}].body"))?));
    }
    Ok(LegacyHandOff { scope, at_ms, org, events })
}

fn insert(sql: &impl Sql, key: &str, items: &[String], at: i64) -> Result<(), StorageError> {
    sql.execute(
        "INSERT INTO outgoing (destination, deliveries, count, at) VALUES (?, ?, ?, ?)",
        &[Arg::Text(key), Arg::Text(&items.join(",")), Arg::Int(items.len() as i64), Arg::Int(at)],
    )?;
    Ok(())
}

/// `Accept`: stores a hand-off and answers `{"accepted":<deliveries>}`; a
/// hand-off that cannot be read is answered `400` and nothing is stored.
fn accept(sql: &impl Sql, body: &str, now: i64) -> Result<Effects, StorageError> {
    let handoff = match decode_legacy(body) {
        Ok(h) => h,
        Err(e) => return Ok(Effects::reply(Reply::status(400, format!("the hand-off cannot be read: {e}")))),
    };
    let oldest = sql.first("SELECT at FROM outgoing ORDER BY seq LIMIT 1", &[])?.map(|r| r.int0(0));
    let waiting = oldest.is_some_and(|at| at > now - STUCK_MS);
    let backoff = sql.first("SELECT destination FROM forwarding LIMIT 1", &[])?.is_some();
    let mut logs: Vec<(&str, Vec<String>)> = Vec::new();
    let mut accepted = 0;
    for (id, event_type, to, body) in &handoff.events {
        for key in to {
            let item = NewDelivery {
                event: id.clone(),
                event_type: event_type.clone(),
                scope: handoff.scope.clone(),
                received_at: handoff.at_ms,
                org: handoff.org.clone(),
                body: body.clone(),
            }
            .encode();
            match logs.iter_mut().find(|(k, _)| k == key) {
                Some((_, items)) => items.push(item),
                None => logs.push((key, vec![item])),
            }
            accepted += 1;
        }
    }
    for (key, items) in &logs {
        insert(sql, key, items, handoff.at_ms)?;
    }
    let mut fx = Effects::reply(Reply::ok(Writer::object().int("accepted", accepted).finish()));
    if accepted > 0 && (!waiting || backoff) {
        fx.alarm = Alarm::At(now);
    }
    Ok(fx)
}

/// The alarm: one `Accept` per log that is due (the oldest rows first, up
/// to [`FORWARD_BYTES`] of them), whose results come back as `Called`.
fn alarm(sql: &impl Sql, now: i64) -> Result<Effects, StorageError> {
    let backoff: Vec<(String, i64)> = sql.query("SELECT destination, retry_at FROM forwarding", &[])?.into_iter().map(|mut r| (r.take(0), r.int0(1))).collect();
    let waits = |d: &str| backoff.iter().any(|(b, at)| b == d && *at > now);
    let rows: Vec<(i64, String, String)> = sql
        .query("SELECT seq, destination, deliveries FROM outgoing ORDER BY seq LIMIT ?", &[Arg::Int(FORWARD_ROWS)])?
        .into_iter()
        .map(|mut r| (r.int0(0), r.take(1), r.take(2)))
        .collect();
    struct Batch<'r> {
        key: &'r str,
        from: i64,
        up_to: i64,
        items: Vec<&'r str>,
        bytes: usize,
        full: bool,
    }
    let mut batches: Vec<Batch<'_>> = Vec::new();
    for (seq, key, items) in &rows {
        if waits(key) {
            continue;
        }
        match batches.iter_mut().find(|b| b.key == key) {
            Some(b) => {
                if b.full || b.bytes + items.len() > FORWARD_BYTES {
                    b.full = true;
                    continue;
                }
                b.up_to = *seq;
                b.bytes += items.len();
                b.items.push(items);
            }
            None => batches.push(Batch { key, from: seq - 1, up_to: *seq, items: vec![items], bytes: items.len(), full: false }),
        }
    }
    let mut fx = Effects::default();
    for b in batches {
        fx.calls.push(Call {
            to: Object::DeliveryLog(b.key.to_owned()),
            path: "/accept",
            body: Accept::encode_items(b.key, &b.items),
            ticket: Some(CallTicket::Forward { from: b.from, up_to: b.up_to, key: b.key.to_owned() }),
        });
    }
    if fx.calls.is_empty() {
        fx.alarm = next_alarm(sql, now)?;
    }
    // Otherwise the alarm stays as it is until the results set the next:
    // if the calls never end (the process stops), the runtime runs it again.
    Ok(fx)
}

/// What the logs answered: forgets what each took; what it did not is
/// tried again later. Then sets the alarm for what is left.
fn forwarded(sql: &impl Sql, settings: &Settings, results: &[CallResult], now: i64) -> Result<Effects, StorageError> {
    let mut fx = Effects::default();
    for result in results {
        let CallTicket::Forward { from, up_to, key } = &result.ticket else { continue };
        let range = [Arg::Text(key), Arg::Int(*from), Arg::Int(*up_to)];
        match result.status {
            Some(200) => {
                sql.execute("DELETE FROM outgoing WHERE destination = ? AND seq > ? AND seq <= ?", &range)?;
                sql.execute("DELETE FROM forwarding WHERE destination = ?", &[Arg::Text(key)])?;
            }
            // The log read the request and refused it: trying again cannot help.
            Some(status @ 400..=499) => {
                let dropped = count(sql, key, *from, *up_to)?;
                sql.execute("DELETE FROM outgoing WHERE destination = ? AND seq > ? AND seq <= ?", &range)?;
                fx.error(handoff_line(key, "dropped", dropped, 1, &format!("the delivery log refused them ({status}): {}", clip(&result.body))));
            }
            status => {
                let error = match status {
                    Some(s) => format!("the delivery log answered {s}: {}", clip(&result.body)),
                    None => clip(&result.body),
                };
                let previous = sql.first("SELECT tries, since FROM forwarding WHERE destination = ?", &[Arg::Text(key)])?;
                let (tries, since) = previous.map_or((1, now), |r| (r.int0(0) + 1, r.int0(1)));
                let waiting = count(sql, key, *from, *up_to)?;
                if now - since >= settings.hold_retention_ms() {
                    sql.execute("DELETE FROM outgoing WHERE destination = ? AND seq > ? AND seq <= ?", &range)?;
                    sql.execute("DELETE FROM forwarding WHERE destination = ?", &[Arg::Text(key)])?;
                    let why = format!("its delivery log could not be reached for {} s (HOLD_RETENTION_SECONDS); last: {error}", (now - since) / 1000);
                    fx.error(handoff_line(key, "dropped", waiting, tries, &why));
                    continue;
                }
                let retry_at = now + (1000i64 << tries.clamp(1, 9)).min(BACKOFF_MAX_MS);
                sql.execute(
                    "INSERT INTO forwarding (destination, tries, retry_at, since, last_error) VALUES (?, ?, ?, ?, ?) \
                     ON CONFLICT (destination) DO UPDATE SET tries = excluded.tries, retry_at = excluded.retry_at, last_error = excluded.last_error",
                    &[Arg::Text(key), Arg::Int(tries), Arg::Int(retry_at), Arg::Int(since), Arg::Text(&error)],
                )?;
                fx.error(handoff_line(key, "retrying", waiting, tries, &error));
            }
        }
    }
    fx.alarm = next_alarm(sql, now)?;
    Ok(fx)
}

fn count(sql: &impl Sql, key: &str, from: i64, up_to: i64) -> Result<i64, StorageError> {
    Ok(sql
        .number("SELECT SUM(count) FROM outgoing WHERE destination = ? AND seq > ? AND seq <= ?", &[Arg::Text(key), Arg::Int(from), Arg::Int(up_to)])?
        .unwrap_or(0))
}

/// When the alarm must fire next: now if a log's rows may go, else when
/// the first waiting log is tried again, else never.
fn next_alarm(sql: &impl Sql, now: i64) -> Result<Alarm, StorageError> {
    sql.execute("DELETE FROM forwarding WHERE destination NOT IN (SELECT destination FROM outgoing)", &[])?;
    let rows = sql.query(
        "SELECT o.destination, f.retry_at FROM outgoing o LEFT JOIN forwarding f ON f.destination = o.destination GROUP BY o.destination",
        &[],
    )?;
    let next = rows.iter().map(|r| r.int(1).map_or(now, |at| at.max(now))).min();
    Ok(next.map_or(Alarm::Clear, Alarm::At))
}

fn handoff_line(key: &str, status: &str, deliveries: i64, tries: i64, error: &str) -> String {
    Writer::object()
        .str("kind", "handoff")
        .str("destination", super::destination::name_of_key(key))
        .str("status", status)
        .int("deliveries", deliveries)
        .int("tries", tries)
        .str("error", error)
        .finish()
}

fn clip(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

fn stats(sql: &impl Sql) -> Result<String, StorageError> {
    let outgoing = sql.number("SELECT COUNT(*) FROM outgoing", &[])?.unwrap_or(0);
    let deliveries = sql.number("SELECT SUM(count) FROM outgoing", &[])?.unwrap_or(0);
    let forwarding = sql.number("SELECT COUNT(*) FROM forwarding", &[])?.unwrap_or(0);
    Ok(Writer::object().int("outgoing", outgoing).int("deliveries", deliveries).int("forwarding", forwarding).finish())
}
