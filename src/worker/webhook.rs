//! Drift's webhook (`POST /webhooks/drift`), one call from the entry module
//! (src/worker/entry.mjs) into the wasm, over bytes. Part of the bridge's
//! small wasm module (feature `bridge`, no workers-rs), which every isolate
//! starts.
//!
//! Going through workers-rs costs more CPU than the translation itself: a
//! `Request`, `Headers` and `Response` converted field by field, a future
//! turned into a promise, glue on every call. Here the entry reads the body
//! and the token header in JavaScript, passes them in once, and gets back a
//! [`Served`] that says everything it must do next: answer at once, or hand
//! each app's share to its delivery log first and answer 200 only once every
//! log has stored its share (503 if one did not).
//!
//! The arguments are JavaScript values, copied into the wasm here rather than
//! by the glue: the glue would allocate them in wasm memory *before* its
//! check that starts a fresh instance after a panic, and so hand the fresh
//! instance pointers into the dead one's memory.

use std::rc::Rc;

use js_sys::Uint8Array;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use super::answer::{core_error, error, too_large, Served, Shares};
use crate::config::Config;
use crate::delivery::effects::Object;
use crate::delivery::handoff;
use crate::json;
use crate::rules::{translate_value, Options, Outbound};

/// Why the webhook accepts nothing: no details here, the public learns
/// nothing of the configuration.
const NOT_CONFIGURED: &str =
    "the worker is not fully configured, so it accepts no events; GET /health with the admin token, or `wrangler tail`, names the problems";

/// Run by the glue as the module starts. A panic is logged with its message
/// and place, then traps (panic = "abort"): the glue marks the instance dead,
/// and the abort handler set here has it start a fresh one on the next call
/// (wasm-bindgen --force-enable-abort-handler; scripts/build.sh). workers-rs
/// does the same in the operator's module.
#[cfg(not(feature = "operator"))]
#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| super::env::console_error(&format!("Rust panic: {info}"))));
    wasm_bindgen::handler::set_on_abort(wasm_bindgen::handler::schedule_reinit);
}

/// The configuration, for every export of this module. This module is
/// started in every isolate, so it names the configuration's problems on the
/// console, once.
pub(super) fn config(env: &JsValue) -> Rc<Config> {
    super::env::config(env, true)
}

/// Panics, for the tests of the recovery (`POST /__test/bridge-panic` of
/// the test entry, tests/delivery/entry-with-faults.mjs).
#[wasm_bindgen(js_name = testPanic)]
pub fn test_panic() {
    panic!("deliberate panic from /__test/bridge-panic");
}

/// `MAX_BODY_BYTES`: the entry refuses larger bodies while reading them.
/// Read once per isolate by the entry.
#[wasm_bindgen(js_name = maxBodyBytes)]
pub fn max_body_bytes(env: &JsValue) -> f64 {
    config(env).max_body_bytes as f64
}

/// Runs the webhook once on Drift's example as the isolate starts, and
/// answers the isolate's start line ([`crate::log_lines::start`]), which the entry
/// prints.
///
/// V8 compiles a wasm function on its first call; this takes that off the
/// first request (bench/README.md, "Cold start"). On Workers the isolate
/// starts while the first request's TLS handshake runs. Without side effects:
/// the results are dropped, and the webhook runs once refused (an empty
/// token, which no configuration accepts) and once from past the token check.
#[wasm_bindgen(js_name = warmUp)]
pub fn warm_up(env: &JsValue) -> String {
    const EXAMPLE: &[u8] = super::answer::DRIFT_EXAMPLE.as_bytes();
    let config = config(env);
    answer_webhook(&config, EXAMPLE, Some(String::new()), 0, false);
    if let Ok(value) = json::parse_bytes(EXAMPLE, &config.limits()) {
        accepted(&config, &value, 0);
    }
    crate::log_lines::start(&config)
}

/// `POST /webhooks/drift`: `token` is the `X-Verification-Token` header (a
/// string, or null); `over_limit` says the entry stopped reading `body` at
/// `MAX_BODY_BYTES`; `declared_only`: route to the declared apps alone (the
/// registry could not be asked for the others: the entry stores their
/// share, then answers 503 so that Drift sends it again).
#[wasm_bindgen]
pub fn webhook(env: &JsValue, body: &Uint8Array, token: &JsValue, now_ms: f64, over_limit: bool, declared_only: bool) -> JsValue {
    let config = if declared_only { super::env::declared(env, true) } else { config(env) };
    answer_webhook(&config, &body.to_vec(), token.as_string(), now_ms as i64, over_limit).to_js()
}

fn answer_webhook(config: &Config, body: &[u8], token: Option<String>, now: i64, over_limit: bool) -> Served {
    let Some(tokens) = config.tokens.as_ref().filter(|_| config.is_complete()) else {
        return refused(503, "not_configured", error(503, "not_configured", NOT_CONFIGURED));
    };
    if over_limit {
        return refused(413, "too_large", too_large(config.max_body_bytes));
    }
    let header_ok = token.is_some_and(|candidate| tokens.accepts(candidate.trim()));
    let limits = config.limits();
    let value = match json::parse_bytes(body, &limits) {
        Ok(value) => value,
        // Only an authenticated caller learns what is wrong with its body.
        Err(e) if header_ok => return refused(400, e.code().as_str(), core_error(&e)),
        Err(_) => return refused(401, "unauthorized", unauthorized()),
    };
    let body_ok = || value.get("token").and_then(json::Value::as_str).is_some_and(|t| tokens.accepts(&t.text()));
    if !header_ok && !body_ok() {
        return refused(401, "unauthorized", unauthorized());
    }
    accepted(config, &value, now)
}

/// A verified webhook's answer: translated, with its hand-off.
fn accepted(config: &Config, value: &json::Value, now: i64) -> Served {
    let options = Options { legacy: config.legacy, received_at_ms: now, limits: config.limits() };
    let events = match translate_value(value, &options) {
        Ok(events) => events,
        Err(e) => return refused(400, e.code().as_str(), core_error(&e)),
    };
    // Nothing is answered 200 before every app's delivery log holds its share.
    let org = value.get("orgId").and_then(json::Value::as_integer);
    let plans = handoff::plan(&events, &config.delivery.destinations, org, now);
    let mut body = String::with_capacity(64 + events.len() * 64);
    write_received(&mut body, &events);
    let deliveries = plans.iter().map(|p| p.deliveries).sum();
    let handoff = (!plans.is_empty()).then(|| Shares {
        logs: plans.into_iter().map(|p| (Object::DeliveryLog(p.key).instance_name(), p.body)).collect(),
        refused_log: crate::log_lines::webhook(503, Some("unavailable"), &events, 0),
    });
    Served { status: 200, body, log: Some(crate::log_lines::webhook(200, None, &events, deliveries)), handoff }
}

/// `{"received":"<inbound id>","events":[{"id":…,"type":…},…]}`
fn write_received(out: &mut String, events: &[Outbound]) {
    out.push_str("{\"received\":\"");
    if let Some(first) = events.first() {
        first.id.write_hex(out);
    }
    out.push_str("\",\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"id\":\"");
        e.id.write_hex(out);
        out.push_str("\",\"type\":");
        json::write_str_escaped(out, &e.event_type);
        out.push('}');
    }
    out.push_str("]}");
}

/// A refused webhook's answer, with its log line.
fn refused(status: u16, code: &str, answer: Served) -> Served {
    Served { log: Some(crate::log_lines::webhook(status, Some(code), &[], 0)), ..answer }
}

/// The same answer for a missing and a wrong token: no hint which.
fn unauthorized() -> Served {
    error(401, "unauthorized", "missing or invalid verification token")
}

