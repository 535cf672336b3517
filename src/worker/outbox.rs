//! The outbox: one Durable Object per deduplication scope (one conversation,
//! or one non-conversation event) where the webhook hands its deliveries off.
//!
//! `/accept` stores a hand-off in one synchronous step per delivery: a
//! delivery (event, destination) already accepted within the deduplication
//! window is dropped, any other is remembered and kept, body and all, until
//! its destination's delivery log has it. The object is strongly consistent
//! and never awaits between the check and the write, so two copies of a
//! webhook racing each other cannot both get the same delivery in. Once
//! `/accept` answers 200 the deliveries are durable, and the webhook answers
//! Drift 200 whatever happens to the queue afterwards.
//!
//! Its alarm forwards what it holds to the destinations' delivery logs
//! (src/worker/destination.rs), retrying with backoff while one is unreachable,
//! and forgets each remembered delivery when the window has passed. An
//! outbox with nothing left holds no rows and no alarm.
//!
//! It is on the path of every webhook that has deliveries, so like the
//! webhook it lives in the hot path's module, without workers-rs: the
//! entry's `Outbox` class (src/worker/entry.mjs) reads the request, calls
//! the functions here once per step, each synchronous over the object's SQL
//! storage ([`super::store`]), and does what must be awaited itself (the
//! alarm, the calls to the delivery logs).

use js_sys::{Array, JsString, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsError, JsValue};

use super::store::{integer, string, Arg, Sql};
use crate::delivery::handoff::HandOff;
use crate::json;

/// At most this much event text goes to a destination in one call.
const FORWARD_BYTES: usize = 1 << 20;
/// At most this many deliveries are forwarded by one alarm; more wait for
/// the next, which follows at once (an alarm must never run out of time).
const FORWARD_ROWS: i64 = 500;

/// Set to "1" only in tests: the outbox refuses to store hand-offs.
const TEST_OUTBOX_FAILS: &str = "DRIFT_BRIDGE_TEST_OUTBOX_FAILS";

const TABLES: [&str; 4] = [
    // Deliveries accepted within the window, by id (`<event>.<destination>`).
    "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at INTEGER NOT NULL)",
    // Every alarm forgets the markers that left the window and finds the
    // oldest one left: by this index, a few rows read whatever the count.
    // (Without it both read every marker: half a millisecond an alarm at
    // 8,000, which a busy conversation reaches within the window.)
    "CREATE INDEX IF NOT EXISTS seen_at ON seen (at)",
    // Bodies waiting to be forwarded, once per event.
    "CREATE TABLE IF NOT EXISTS pending_events (event_id TEXT PRIMARY KEY, type TEXT NOT NULL, scope TEXT NOT NULL, \
     at INTEGER NOT NULL, body TEXT NOT NULL)",
    // Deliveries waiting to be forwarded.
    "CREATE TABLE IF NOT EXISTS pending (id TEXT PRIMARY KEY, destination TEXT NOT NULL, event_id TEXT NOT NULL, \
     tries INTEGER NOT NULL DEFAULT 0, retry_at INTEGER NOT NULL DEFAULT 0)",
];

fn fail(message: impl std::fmt::Display) -> JsError {
    JsError::new(&message.to_string())
}

fn window_ms(env: &JsValue) -> i64 {
    super::hot::config(env).dedup_window_ms()
}

/// Creates the tables, as the object starts.
#[wasm_bindgen(js_name = outboxOpen)]
pub fn open(sql: &Sql) -> Result<(), JsError> {
    sql.create(&TABLES).map_err(fail)
}

/// `/accept`: stores a hand-off, answers `{"accepted":n,"duplicates":m}`.
/// When `n` > 0 the entry makes sure the alarm fires now.
#[wasm_bindgen(js_name = outboxAccept)]
pub fn accept(env: &JsValue, sql: &Sql, body: &Uint8Array, now: f64) -> Result<String, JsError> {
    if super::env::switch(env, TEST_OUTBOX_FAILS) {
        return Err(fail("storage refused the hand-off (DRIFT_BRIDGE_TEST_OUTBOX_FAILS)"));
    }
    let body = body.to_vec();
    let text = std::str::from_utf8(&body).map_err(|_| fail("the hand-off is not UTF-8"))?;
    let handoff = HandOff::decode(text).map_err(fail)?;
    let now = now as i64;
    let window = window_ms(env);
    let (mut accepted, mut duplicates) = (0, 0);
    // Every statement below is synchronous: no other request runs between
    // them.
    for event in &handoff.events {
        let mut body_stored = false;
        for destination in &event.to {
            let id = event.delivery_id(destination);
            // Remembered now, unless it was within the window: the check and
            // the write in one statement, which writes no row for a duplicate.
            let written = sql
                .write(
                    "INSERT INTO seen (id, at) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET at = excluded.at WHERE seen.at <= ?",
                    &[Arg::Str(&id), Arg::Int(now), Arg::Int(now - window)],
                )
                .map_err(fail)?;
            if written == 0 {
                duplicates += 1;
                continue;
            }
            if !body_stored {
                sql.run(
                    "INSERT OR IGNORE INTO pending_events (event_id, type, scope, at, body) VALUES (?, ?, ?, ?, ?)",
                    &[
                        Arg::Str(&event.id),
                        Arg::Str(&event.event_type),
                        Arg::Str(&handoff.scope),
                        Arg::Int(handoff.at_ms),
                        Arg::Str(&event.body),
                    ],
                )
                .map_err(fail)?;
                body_stored = true;
            }
            sql.run(
                "INSERT OR REPLACE INTO pending (id, destination, event_id, tries, retry_at) VALUES (?, ?, ?, 0, 0)",
                &[Arg::Str(&id), Arg::Str(destination), Arg::Str(&event.id)],
            )
            .map_err(fail)?;
            accepted += 1;
        }
    }
    Ok(format!("{{\"accepted\":{accepted},\"duplicates\":{duplicates}}}"))
}

/// A pending delivery, as the alarm reads it.
struct Pending {
    id: String,
    destination: String,
    event_id: String,
    event_type: String,
    scope: String,
    at: i64,
    body: String,
    tries: i64,
}

/// The alarm's first step: what is due, as calls to make, in order:
/// `[more, [destination, body, ids, tries], …]`. `body` is the `/add` of
/// that destination's delivery log, `ids` the deliveries in it, `tries` the
/// try this is; `more` says that more is due than one alarm forwards. For
/// each call, the entry calls [`forwarded`]; then [`finish`].
#[wasm_bindgen(js_name = outboxDue)]
pub fn due(sql: &Sql, now: f64) -> Result<Array, JsError> {
    let rows = sql
        .rows(
            "SELECT p.id, p.destination, p.event_id, e.type, e.scope, e.at, e.body, p.tries FROM pending p \
             JOIN pending_events e ON e.event_id = p.event_id WHERE p.retry_at <= ? ORDER BY p.rowid LIMIT ?",
            &[Arg::Int(now as i64), Arg::Int(FORWARD_ROWS)],
        )
        .map_err(fail)?;
    let due: Vec<Pending> = rows
        .iter()
        .map(|r| Pending {
            id: string(r, 0),
            destination: string(r, 1),
            event_id: string(r, 2),
            event_type: string(r, 3),
            scope: string(r, 4),
            at: integer(r, 5),
            body: string(r, 6),
            tries: integer(r, 7),
        })
        .collect();
    let calls = Array::new();
    calls.push(&JsValue::from_bool(due.len() as i64 == FORWARD_ROWS));
    // Per destination, in order of acceptance.
    let mut destinations: Vec<&str> = Vec::new();
    for p in &due {
        if !destinations.contains(&p.destination.as_str()) {
            destinations.push(&p.destination);
        }
    }
    for destination in destinations {
        let rows: Vec<&Pending> = due.iter().filter(|p| p.destination == destination).collect();
        for chunk in chunks(&rows) {
            let ids: Array = chunk.iter().map(|p| JsValue::from_str(&p.id)).collect();
            let tries = chunk.iter().map(|p| p.tries).max().unwrap_or(0) + 1;
            let call = Array::of4(
                &JsString::from(destination),
                &JsString::from(add_body(destination, chunk)),
                &ids,
                &JsValue::from_f64(tries as f64),
            );
            calls.push(&call);
        }
    }
    Ok(calls)
}

/// The alarm, once a call of [`due`] is done: `error` is `None` when the
/// delivery log has the deliveries, which are then forgotten here; else they
/// wait for try `tries` + 1, after 2 s, 4 s, 8 s … up to 5 minutes.
///
/// The arguments are JavaScript values, copied into the wasm here rather
/// than by the glue (as in [`super::hot`]).
#[wasm_bindgen(js_name = outboxForwarded)]
pub fn forwarded(sql: &Sql, destination: &JsString, ids: &Array, tries: f64, error: &JsValue, now: f64) -> Result<(), JsError> {
    let ids: Vec<String> = ids.iter().filter_map(|id| id.as_string()).collect();
    match error.as_string() {
        None => {
            for id in &ids {
                sql.run("DELETE FROM pending WHERE id = ?", &[Arg::Str(id)]).map_err(fail)?;
            }
        }
        Some(error) => {
            let tries = tries as i64;
            let retry_at = now as i64 + (1000i64 << tries.min(8)).min(300_000);
            super::env::console_error(&format!(
                "outbox: forwarding {} deliveries to {} failed (try {tries}): {error}",
                ids.len(),
                String::from(destination)
            ));
            for id in &ids {
                sql.run("UPDATE pending SET tries = ?, retry_at = ? WHERE id = ?", &[Arg::Int(tries), Arg::Int(retry_at), Arg::Str(id)])
                    .map_err(fail)?;
            }
        }
    }
    Ok(())
}

/// The alarm's last step: forgets what left the window and answers when the
/// alarm must fire next (ms since the epoch), or -1 for no alarm.
#[wasm_bindgen(js_name = outboxFinish)]
pub fn finish(env: &JsValue, sql: &Sql, now: f64, more: bool) -> Result<f64, JsError> {
    let now = now as i64;
    let window = window_ms(env);
    sql.run("DELETE FROM pending_events WHERE event_id NOT IN (SELECT event_id FROM pending)", &[]).map_err(fail)?;
    sql.run("DELETE FROM seen WHERE at <= ?", &[Arg::Int(now - window)]).map_err(fail)?;
    let next = sql
        .number(
            "SELECT MIN(due) FROM (SELECT MIN(retry_at) AS due FROM pending UNION ALL SELECT (SELECT MIN(at) FROM seen) + ? AS due)",
            &[Arg::Int(window + 1)],
        )
        .map_err(fail)?;
    Ok(match next {
        _ if more => now as f64,
        Some(due) => (due as i64).max(now + 1) as f64,
        None => -1.0,
    })
}

/// Row counts and the alarm, for tests (`DRIFT_BRIDGE_TEST_ROUTES=1`).
#[wasm_bindgen(js_name = outboxStats)]
pub fn stats(sql: &Sql, alarm: Option<f64>) -> Result<String, JsError> {
    let count = |query: &'static str| sql.number(query, &[]).map(|n| n.unwrap_or(0.0) as i64).map_err(fail);
    Ok(format!(
        "{{\"seen\":{},\"pending\":{},\"pendingEvents\":{},\"alarm\":{}}}",
        count("SELECT COUNT(*) FROM seen")?,
        count("SELECT COUNT(*) FROM pending")?,
        count("SELECT COUNT(*) FROM pending_events")?,
        alarm.map_or_else(|| "null".to_owned(), |a| (a as i64).to_string()),
    ))
}

/// Splits one destination's rows into calls of at most [`FORWARD_BYTES`] of
/// bodies (a bigger body goes alone).
fn chunks<'a, 'p>(rows: &'a [&'p Pending]) -> Vec<&'a [&'p Pending]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, p) in rows.iter().enumerate() {
        if i > start && bytes + p.body.len() > FORWARD_BYTES {
            out.push(&rows[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += p.body.len();
    }
    if start < rows.len() {
        out.push(&rows[start..]);
    }
    out
}

/// `{"destination":…,"deliveries":[{"id","event","type","scope","at","body"},…]}`
fn add_body(destination: &str, rows: &[&Pending]) -> String {
    let mut out = String::with_capacity(64 + rows.iter().map(|p| p.body.len() + 160).sum::<usize>());
    out.push_str("{\"destination\":");
    json::write_str_escaped(&mut out, destination);
    out.push_str(",\"deliveries\":[");
    for (i, p) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"id\":");
        json::write_str_escaped(&mut out, &p.id);
        out.push_str(",\"event\":");
        json::write_str_escaped(&mut out, &p.event_id);
        out.push_str(",\"type\":");
        json::write_str_escaped(&mut out, &p.event_type);
        out.push_str(",\"scope\":");
        json::write_str_escaped(&mut out, &p.scope);
        out.push_str(&format!(",\"at\":{},\"body\":", p.at));
        json::write_str_escaped(&mut out, &p.body);
        out.push('}');
    }
    out.push_str("]}");
    out
}
