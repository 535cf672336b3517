//! The delivery system's exports for the entry module (src/worker/entry.mjs):
//! one synchronous call per step of an outbox or a delivery log, over the
//! object's SQL storage ([`SqlStorage`]), answering the
//! step's [`Effects`] as a JavaScript object ([`super::effects`]). (The
//! queue consumer's decisions and the registry, one object that no webhook
//! waits on but for each isolate's copy of the apps every few seconds, are
//! in the operator's module: [`super::consumer`], [`super::admin`].) The entry runs every step the same way: in
//! `transactionSync` with the alarm the step asks for, then the sends and
//! calls it names, then its continuation. Everything here is conversion; the
//! decisions are the core's ([`crate::delivery`]).
//!
//! Strings come in as JavaScript values, copied into the wasm here rather
//! than by the glue (see [`super::webhook`]).

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsError, JsValue};

use super::effects::{answer, fail, text};
use super::storage::SqlStorage;
use super::webhook::config;
use crate::delivery::effects::Effects;
use crate::delivery::log::{self, Context};
use crate::delivery::outbox;

/// Creates (or upgrades) an outbox's tables, as the object starts.
#[wasm_bindgen(js_name = outboxOpen)]
pub fn outbox_open(sql: &SqlStorage) -> Result<(), JsError> {
    outbox::open(sql).map_err(fail)
}

/// One step of an outbox: `accept` (`input`: the hand-off), `alarm`,
/// `forwarded` (`input`: the calls' results), `stats`.
#[wasm_bindgen(js_name = outboxStep)]
pub fn outbox_step(env: &JsValue, sql: &SqlStorage, op: &JsValue, input: &JsValue, now: f64) -> Result<JsValue, JsError> {
    let now = now as i64;
    let input = text(input);
    answer(match text(op).as_str() {
        "accept" => outbox::accept(sql, &input, now),
        "alarm" => outbox::alarm(sql, now),
        "forwarded" => match crate::delivery::message::CallResults::decode(&input) {
            Ok(results) => outbox::forwarded(sql, &config(env).delivery, &results, now),
            Err(e) => return Err(fail(e)),
        },
        "stats" => outbox::stats(sql).map(|s| Effects::reply(crate::delivery::effects::Reply::ok(s))),
        other => return Err(fail(format!("unknown outbox step {}", crate::escape::quoted(other)))),
    })
}

/// Creates (or upgrades) a delivery log's tables, as the object starts.
#[wasm_bindgen(js_name = logOpen)]
pub fn log_open(env: &JsValue, sql: &SqlStorage, now: f64) -> Result<(), JsError> {
    let config = config(env);
    log::open(sql, &Context { settings: &config.delivery, now: now as i64, seed: 0, apps_known: true }).map(drop).map_err(fail)
}

/// One step of a delivery log on the delivery path: `/add`, `/attempt`,
/// `/settle`, `/dead`, `alarm`, or the continuation `called`. (The admin
/// API's operations run in the operator's module: src/worker/admin.rs,
/// `logAdmin`.) `apps_known`: whether the entry could confirm its copy of
/// the apps (the registry answered).
#[wasm_bindgen(js_name = logStep)]
pub fn log_step(env: &JsValue, sql: &SqlStorage, op: &JsValue, input: &JsValue, now: f64, seed: u32, apps_known: bool) -> Result<JsValue, JsError> {
    let config = config(env);
    let ctx = Context { settings: &config.delivery, now: now as i64, seed, apps_known };
    let input = text(input);
    answer(match text(op).as_str() {
        "/add" => log::add(sql, &ctx, &input),
        "/attempt" => log::attempt(sql, &ctx, &input),
        "/settle" => log::settle(sql, &ctx, &input),
        "/dead" => log::dead(sql, &ctx, &input),
        "alarm" => log::alarm(sql, &ctx),
        "called" => log::called(sql, &ctx, &input),
        other => Ok(Effects::reply(crate::delivery::effects::Reply::status(404, format!("unknown delivery log operation {other}")))),
    })
}
