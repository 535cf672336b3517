//! A destination's delivery log taking deliveries in from an outbox
//! (`/add`): the one operation of src/worker/destination.rs on the path of every
//! webhook with deliveries, so it lives in the hot path's module, without
//! workers-rs. The entry's `Destination` class (src/worker/entry.mjs) serves
//! `/add` with one call here, over the object's SQL storage
//! ([`super::store`]), then sets the alarm and sends to the queue itself;
//! every other operation goes to the workers-rs object.

use js_sys::{Array, JsString, Uint8Array};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsError, JsValue};

use super::schema::DESTINATION_TABLES;
use super::store::{Arg, Sql};
use crate::delivery::circuit::Circuit;
use crate::delivery::message::{batches, Ref, QUEUE_BATCH_BYTES, QUEUE_BATCH_MESSAGES, QUEUE_MESSAGE_OVERHEAD};
use crate::json::{self, Limits, Value};

fn fail(message: impl std::fmt::Display) -> JsError {
    JsError::new(&message.to_string())
}

fn text(value: &Value<'_>, name: &str) -> Result<String, JsError> {
    value.get(name).and_then(Value::as_str).map(|s| s.text().into_owned()).ok_or_else(|| fail(format!("missing {name}")))
}

/// Creates the tables, as the object starts.
#[wasm_bindgen(js_name = destinationOpen)]
pub fn open(sql: &Sql) -> Result<(), JsError> {
    sql.create(&DESTINATION_TABLES).map_err(fail)
}

/// `/add`: stores the deliveries of `{"destination","deliveries":[…]}`; ones
/// it already has are ignored. New ones are queued at once, or held when the
/// app is down or paused or a backlog is draining (they wait their turn).
///
/// Answers `[reply, wake, destination, batches]`: the reply
/// (`{"added":n}`), when the alarm must fire at the latest (ms, or -1 if it
/// need not change), the destination's name, and the queue messages to send,
/// in sends within the queue's limits.
#[wasm_bindgen(js_name = destinationAdd)]
pub fn add(env: &JsValue, sql: &Sql, body: &Uint8Array, now: f64) -> Result<Array, JsError> {
    let body = body.to_vec();
    let body = std::str::from_utf8(&body).map_err(|_| fail("the body is not UTF-8"))?;
    let value = json::parse(body, &Limits::INTERNAL).map_err(fail)?;
    let now = now as i64;
    let name = text(&value, "destination")?;
    // The first call that names the destination teaches it its name.
    sql.run("INSERT OR IGNORE INTO meta (key, value) VALUES ('name', ?)", &[Arg::Str(&name)]).map_err(fail)?;
    let config = super::hot::config(env);
    let circuit = match sql.rows("SELECT value FROM meta WHERE key = 'circuit'", &[]).map_err(fail)?.first() {
        Some(row) => Circuit::decode(&row.get(0).as_string().unwrap_or_default(), &config.circuit),
        None => Circuit::new(&config.circuit),
    };
    let hold = circuit.queues_behind();
    let Some(Value::Array(deliveries)) = value.get("deliveries") else {
        return Err(fail("missing deliveries"));
    };
    // Queued ones show progress within the grace period, or are queued again.
    let due = if hold { None } else { Some(now + config.recovery_grace_ms()) };
    let (mut added, mut messages) = (0, Vec::new());
    for d in deliveries {
        let id = text(d, "id")?;
        let scope = text(d, "scope")?;
        let created = d.get("at").and_then(Value::as_integer).map_or(now, crate::legacy::integer_ms);
        let written = sql
            .write(
                "INSERT OR IGNORE INTO deliveries (id, event_id, type, scope, conversation, body, status, generation, attempts, \
                 created_at, updated_at, due_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, 0, ?, ?, ?)",
                &[
                    Arg::Str(&id),
                    Arg::Str(&text(d, "event")?),
                    Arg::Str(&text(d, "type")?),
                    Arg::Str(&scope),
                    conversation_of(&scope).map_or(Arg::Null, Arg::Str),
                    Arg::Str(&text(d, "body")?),
                    Arg::Str(if hold { "held" } else { "queued" }),
                    Arg::Int(created),
                    Arg::Int(now),
                    due.map_or(Arg::Null, Arg::Int),
                ],
            )
            .map_err(fail)?;
        if written > 0 {
            added += 1;
            if !hold {
                messages.push(Ref { destination: name.clone(), id, generation: 1 }.encode());
            }
        }
    }
    // Held ones need the alarm too: to drain, to probe, or to expire.
    let wake = match added {
        0 => -1.0,
        _ if hold => (now + 1000) as f64,
        _ => (now + config.recovery_grace_ms()) as f64,
    };
    let sends: Array = batches(&messages, QUEUE_BATCH_MESSAGES, QUEUE_BATCH_BYTES, QUEUE_MESSAGE_OVERHEAD)
        .into_iter()
        .map(|batch| batch.iter().map(|m| JsValue::from_str(m)).collect::<Array>())
        .collect();
    Ok(Array::of4(
        &JsString::from(format!("{{\"added\":{added}}}")),
        &JsValue::from_f64(wake),
        &JsString::from(name),
        &sends,
    ))
}

/// The conversation id of a scope `conversation:<orgId>:<conversationId>`.
fn conversation_of(scope: &str) -> Option<&str> {
    let rest = scope.strip_prefix("conversation:")?;
    rest.split_once(':').map(|(_, conversation)| conversation)
}
