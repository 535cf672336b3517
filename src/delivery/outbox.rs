//! The outbox: one Durable Object per deduplication scope (one
//! conversation, or one non-conversation event) where a webhook hands its
//! deliveries off, so that Drift can be answered `200` before any
//! destination is involved.
//!
//! - **`/accept`** stores the hand-off, one row per destination it names
//!   (that destination's `/add` items, ready to forward), and makes sure
//!   the alarm fires now. One synchronous step: once it answers `200` the
//!   deliveries are durable.
//! - **The alarm** forwards each destination's rows to its delivery log
//!   (one call per destination, up to [`FORWARD_BYTES`]), and its
//!   continuation ([`forwarded`]) forgets what the logs took. A log that
//!   cannot be reached is tried again with backoff (2 s, 4 s, … up to 5
//!   minutes) for as long as a held delivery lives (`HOLD_RETENTION_SECONDS`);
//!   every failed try is logged, and rows still undelivered after that are
//!   dropped with an error line naming how many.
//!
//! Deduplication is the delivery log's (it keeps every delivery at least as
//! long as the window), so the outbox keeps nothing once forwarded: an
//! outbox with nothing to forward holds no rows and no alarm.
//!
//! The alarm's invariant: while rows are waiting, an alarm is set no later
//! than when the first of them may be forwarded. While the alarm awaits its
//! calls it stays set, so that a handler that never finishes (the process
//! stopped) is run again by the runtime.

use super::effects::{Alarm, Call, CallResult, Effects, Object, Reply};
use super::handoff::HandOff;
use super::message::{Added, NewDelivery};
use super::sql::{Arg, Sql, StorageError};
use super::settings::Settings;
use crate::json::Writer;

/// At most this much event text goes to a delivery log in one call.
pub const FORWARD_BYTES: usize = 1 << 20;
/// At most this many rows are read by one alarm; more wait for the next,
/// which follows at once (an alarm must never run out of time).
pub const FORWARD_ROWS: i64 = 500;
/// Rows waiting longer than this, with no delivery log being waited for,
/// mean the alarm was lost (its handler failed more times than the runtime
/// retries it): the next hand-off sets it again.
pub const STUCK_MS: i64 = 60_000;
/// The longest wait between two tries of a delivery log.
pub const BACKOFF_MAX_MS: i64 = 300_000;

/// The outbox's tables.
pub const TABLES: [&str; 2] = [
    // What waits to be forwarded: one destination's deliveries of one
    // hand-off, as the items of its `/add`.
    "CREATE TABLE IF NOT EXISTS outgoing (seq INTEGER PRIMARY KEY, destination TEXT NOT NULL, \
     deliveries TEXT NOT NULL, count INTEGER NOT NULL, at INTEGER NOT NULL)",
    // Destinations whose delivery log could not be reached: when to try again.
    "CREATE TABLE IF NOT EXISTS forwarding (destination TEXT PRIMARY KEY, tries INTEGER NOT NULL, \
     retry_at INTEGER NOT NULL, since INTEGER NOT NULL, last_error TEXT) WITHOUT ROWID",
];

/// Creates the tables, and moves what an outbox of drift-bridge before the
/// state machine still holds (its `pending` rows) into them.
pub fn open(sql: &impl Sql) -> Result<(), StorageError> {
    for statement in TABLES {
        sql.execute(statement, &[])?;
    }
    let old = sql.first("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'pending_events'", &[])?;
    if old.is_none() {
        return Ok(());
    }
    let rows = sql.query(
        "SELECT p.destination, p.id, e.event_id, e.type, e.scope, e.at, e.body FROM pending p \
         JOIN pending_events e ON e.event_id = p.event_id ORDER BY p.rowid",
        &[],
    )?;
    let mut by_destination: Vec<(String, Vec<String>, i64)> = Vec::new();
    for mut row in rows {
        let destination = row.take(0);
        let item = NewDelivery {
            id: row.take(1),
            event_id: row.take(2),
            event_type: row.take(3),
            scope: row.take(4),
            received_at: row.int0(5),
            body: row.take(6),
            org: None,
        };
        let at = item.received_at;
        match by_destination.iter_mut().find(|(d, _, _)| *d == destination) {
            Some((_, items, _)) => items.push(item.encode()),
            None => by_destination.push((destination, vec![item.encode()], at)),
        }
    }
    for (destination, items, at) in &by_destination {
        insert(sql, destination, items, *at)?;
    }
    for statement in ["DROP TABLE IF EXISTS pending", "DROP TABLE IF EXISTS pending_events", "DROP TABLE IF EXISTS seen"] {
        sql.execute(statement, &[])?;
    }
    Ok(())
}

fn insert(sql: &impl Sql, destination: &str, items: &[String], at: i64) -> Result<(), StorageError> {
    let mut deliveries = String::with_capacity(items.iter().map(|i| i.len() + 1).sum());
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            deliveries.push(',');
        }
        deliveries.push_str(item);
    }
    sql.execute(
        "INSERT INTO outgoing (destination, deliveries, count, at) VALUES (?, ?, ?, ?)",
        &[Arg::Text(destination), Arg::Text(&deliveries), Arg::Int(items.len() as i64), Arg::Int(at)],
    )?;
    Ok(())
}

/// `/accept`: stores a hand-off ([`HandOff`], from the webhook) and answers
/// `{"accepted":<deliveries>}`; a hand-off that cannot be read is answered
/// `400` and nothing is stored.
pub fn accept(sql: &impl Sql, body: &str, now: i64) -> Result<Effects, StorageError> {
    let handoff = match HandOff::decode(body) {
        Ok(h) => h,
        Err(e) => return Ok(Effects::reply(Reply::status(400, format!("the hand-off cannot be read: {e}")))),
    };
    // An alarm is set while rows wait; it is due now unless a delivery log
    // is being waited for, whose destination's rows wait longer (or unless
    // the rows have waited so long that it must have been lost).
    let oldest = sql.first("SELECT at FROM outgoing ORDER BY seq LIMIT 1", &[])?.map(|r| r.int0(0));
    let waiting = oldest.is_some_and(|at| at > now - STUCK_MS);
    let backoff = sql.first("SELECT destination FROM forwarding LIMIT 1", &[])?.is_some();
    let mut destinations: Vec<(&str, Vec<String>)> = Vec::new();
    let mut accepted = 0;
    for event in &handoff.events {
        for destination in &event.to {
            let item = NewDelivery {
                id: event.delivery_id(destination),
                event_id: event.id.clone(),
                event_type: event.event_type.clone(),
                scope: handoff.scope.clone(),
                received_at: handoff.at_ms,
                body: event.body.clone(),
                org: handoff.org.clone(),
            }
            .encode();
            match destinations.iter_mut().find(|(d, _)| d == destination) {
                Some((_, items)) => items.push(item),
                None => destinations.push((destination, vec![item])),
            }
            accepted += 1;
        }
    }
    for (destination, items) in &destinations {
        insert(sql, destination, items, handoff.at_ms)?;
    }
    let mut fx = Effects::reply(Reply::ok(Writer::object().int("accepted", accepted).finish()));
    if accepted > 0 && (!waiting || backoff) {
        fx.alarm = Alarm::At(now);
    }
    Ok(fx)
}

/// A row waiting to be forwarded.
struct Outgoing {
    seq: i64,
    destination: String,
    deliveries: String,
}

/// The alarm: one `/add` call per destination that is due (the oldest rows
/// first, up to [`FORWARD_BYTES`] of them), continued by [`forwarded`].
pub fn alarm(sql: &impl Sql, now: i64) -> Result<Effects, StorageError> {
    let backoff: Vec<(String, i64)> = sql
        .query("SELECT destination, retry_at FROM forwarding", &[])?
        .into_iter()
        .map(|mut r| (r.take(0), r.int0(1)))
        .collect();
    let waits = |d: &str| backoff.iter().any(|(b, at)| b == d && *at > now);
    let rows: Vec<Outgoing> = sql
        .query("SELECT seq, destination, deliveries FROM outgoing ORDER BY seq LIMIT ?", &[Arg::Int(FORWARD_ROWS)])?
        .into_iter()
        .map(|mut r| Outgoing { seq: r.int0(0), destination: r.take(1), deliveries: r.take(2) })
        .collect();
    let mut fx = Effects::default();
    // Per destination, its oldest rows, in order, up to the size of one call.
    struct Batch<'r> {
        destination: &'r str,
        from: i64,
        up_to: i64,
        items: Vec<&'r str>,
        bytes: usize,
        full: bool,
    }
    let mut batches: Vec<Batch<'_>> = Vec::new();
    for row in &rows {
        if waits(&row.destination) {
            continue;
        }
        match batches.iter_mut().find(|b| b.destination == row.destination) {
            Some(b) => {
                if b.full || b.bytes + row.deliveries.len() > FORWARD_BYTES {
                    // The rest of this destination waits for the next call.
                    b.full = true;
                    continue;
                }
                b.up_to = row.seq;
                b.bytes += row.deliveries.len();
                b.items.push(&row.deliveries);
            }
            None => batches.push(Batch {
                destination: &row.destination,
                from: row.seq - 1,
                up_to: row.seq,
                items: vec![&row.deliveries],
                bytes: row.deliveries.len(),
                full: false,
            }),
        }
    }
    for b in batches {
        fx.calls.push(Call {
            to: Object::DeliveryLog(b.destination.to_owned()),
            op: "/add",
            body: super::message::Add::encode_items(b.destination, &b.items),
            ticket: format!("{}:{}:{}", b.from, b.up_to, b.destination),
        });
    }
    if fx.calls.is_empty() {
        fx.alarm = next_alarm(sql, now)?;
    } else {
        // The alarm stays as it is until the continuation sets the next: if
        // the calls never end (the process stops), the runtime runs this
        // alarm again.
        fx.then = Some("forwarded");
    }
    Ok(fx)
}

/// The alarm's continuation: forgets what each delivery log took; what it
/// did not is tried again later. Then sets the alarm for what is left.
pub fn forwarded(sql: &impl Sql, settings: &Settings, results: &[CallResult], now: i64) -> Result<Effects, StorageError> {
    let mut fx = Effects::default();
    for result in results {
        let Some((from, up_to, destination)) = ticket(&result.ticket) else {
            fx.error(format!("outbox: a forwarding result with an unreadable ticket {} was ignored", crate::escape::quoted(&result.ticket)));
            continue;
        };
        let range = [Arg::Text(destination), Arg::Int(from), Arg::Int(up_to)];
        match result.status {
            Some(200) => {
                sql.execute("DELETE FROM outgoing WHERE destination = ? AND seq > ? AND seq <= ?", &range)?;
                sql.execute("DELETE FROM forwarding WHERE destination = ?", &[Arg::Text(destination)])?;
                if let Ok(added) = Added::decode(&result.body) {
                    if added.refused > 0 {
                        fx.error(format!(
                            "outbox: the delivery log of {destination} is full: {} deliveries were failed at once (MAX_LOG_BYTES)",
                            added.refused
                        ));
                    }
                }
            }
            // The log read the request and refused it: trying again cannot help.
            Some(status @ 400..=499) => {
                let dropped = count(sql, destination, from, up_to)?;
                sql.execute("DELETE FROM outgoing WHERE destination = ? AND seq > ? AND seq <= ?", &range)?;
                fx.error(handoff_line(destination, "dropped", dropped, 1, &format!("the delivery log refused them ({status}): {}", clip(&result.body))));
            }
            status => {
                let error = match status {
                    Some(s) => format!("the delivery log answered {s}: {}", clip(&result.body)),
                    None => clip(&result.body),
                };
                let previous = sql.first("SELECT tries, since FROM forwarding WHERE destination = ?", &[Arg::Text(destination)])?;
                let (tries, since) = previous.map_or((1, now), |r| (r.int0(0) + 1, r.int0(1)));
                let waiting = count(sql, destination, from, up_to)?;
                if now - since >= settings.hold_retention_ms() {
                    // As long as a held delivery lives, and no longer.
                    sql.execute("DELETE FROM outgoing WHERE destination = ? AND seq > ? AND seq <= ?", &range)?;
                    sql.execute("DELETE FROM forwarding WHERE destination = ?", &[Arg::Text(destination)])?;
                    fx.error(handoff_line(
                        destination,
                        "dropped",
                        waiting,
                        tries,
                        &format!("its delivery log could not be reached for {} s (HOLD_RETENTION_SECONDS); last: {error}", (now - since) / 1000),
                    ));
                    continue;
                }
                let retry_at = now + (1000i64 << tries.clamp(1, 9)).min(BACKOFF_MAX_MS);
                sql.execute(
                    "INSERT INTO forwarding (destination, tries, retry_at, since, last_error) VALUES (?, ?, ?, ?, ?) \
                     ON CONFLICT (destination) DO UPDATE SET tries = excluded.tries, retry_at = excluded.retry_at, last_error = excluded.last_error",
                    &[Arg::Text(destination), Arg::Int(tries), Arg::Int(retry_at), Arg::Int(since), Arg::Text(&error)],
                )?;
                fx.error(handoff_line(destination, "retrying", waiting, tries, &error));
            }
        }
    }
    fx.alarm = next_alarm(sql, now)?;
    Ok(fx)
}

/// How many deliveries the rows of a ticket hold.
fn count(sql: &impl Sql, destination: &str, from: i64, up_to: i64) -> Result<i64, StorageError> {
    Ok(sql
        .number(
            "SELECT SUM(count) FROM outgoing WHERE destination = ? AND seq > ? AND seq <= ?",
            &[Arg::Text(destination), Arg::Int(from), Arg::Int(up_to)],
        )?
        .unwrap_or(0))
}

/// `<from>:<up to>:<destination>`: the rows `from < seq <= up to` of that
/// destination.
fn ticket(text: &str) -> Option<(i64, i64, &str)> {
    let mut parts = text.splitn(3, ':');
    let from = parts.next()?.parse().ok()?;
    let up_to = parts.next()?.parse().ok()?;
    Some((from, up_to, parts.next().filter(|d| !d.is_empty())?))
}

/// When the alarm must fire next: now if a destination's rows may go, else
/// when the first waiting destination is tried again, else never.
fn next_alarm(sql: &impl Sql, now: i64) -> Result<Alarm, StorageError> {
    // Destinations that are waited for, but no longer wait for anything.
    sql.execute("DELETE FROM forwarding WHERE destination NOT IN (SELECT destination FROM outgoing)", &[])?;
    let rows = sql.query(
        "SELECT o.destination, f.retry_at FROM outgoing o LEFT JOIN forwarding f ON f.destination = o.destination \
         GROUP BY o.destination",
        &[],
    )?;
    let next = rows.iter().map(|r| r.int(1).map_or(now, |at| at.max(now))).min();
    Ok(next.map_or(Alarm::Clear, Alarm::At))
}

/// One structured line about forwarding to a delivery log.
fn handoff_line(destination: &str, status: &str, deliveries: i64, tries: i64, error: &str) -> String {
    Writer::object()
        .str("kind", "handoff")
        .str("destination", destination)
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

/// Row counts, for tests.
pub fn stats(sql: &impl Sql) -> Result<String, StorageError> {
    let outgoing = sql.number("SELECT COUNT(*) FROM outgoing", &[])?.unwrap_or(0);
    let deliveries = sql.number("SELECT SUM(count) FROM outgoing", &[])?.unwrap_or(0);
    let forwarding = sql.number("SELECT COUNT(*) FROM forwarding", &[])?.unwrap_or(0);
    Ok(Writer::object().int("outgoing", outgoing).int("deliveries", deliveries).int("forwarding", forwarding).finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_name_a_range_of_one_destination() {
        assert_eq!(ticket("3:9:push-app"), Some((3, 9, "push-app")));
        assert_eq!(ticket("-1:0:a"), Some((-1, 0, "a")));
        for bad in ["", "3:9", "3:9:", "x:9:a", "3:y:a"] {
            assert_eq!(ticket(bad), None, "{bad}");
        }
    }
}
