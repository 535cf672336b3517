//! The hot path: `POST /webhooks/drift` and `POST /convert`, each one call
//! from the entry module (src/worker/entry.mjs) into the wasm, over bytes.
//! Built alone as the worker's small wasm module (feature `hot`, without
//! workers-rs), which every isolate starts.
//!
//! Going through workers-rs costs more CPU than the translation itself: a
//! `Request`, `Headers` and `Response` converted field by field, a future
//! turned into a promise, glue on every call. Here the entry reads the body
//! and the token header in JavaScript, passes them in once, and gets back one
//! byte string that holds everything it must do next:
//!
//! ```text
//! "<status> <log>\n<body>"          log <log> (if any), answer <status> <body>
//! "200\n<scope>\n<log>\n<log if refused>\n<body>\n<payload>"
//!                                   POST <payload> to the outbox of <scope>
//!                                   (https://outbox/accept); its 200 means log
//!                                   <log> and answer 200 <body>, anything else
//!                                   log <log if refused> and answer 503
//! ```
//!
//! The status is always three digits. No JSON we write contains a raw newline
//! (strings escape theirs), and the payload comes last, so the entry finds
//! each part with short searches. The log lines are [`crate::log`]'s, one per
//! webhook, as the worker has always written them.
//!
//! The arguments are JavaScript values, copied into the wasm here rather than
//! by the glue: the glue would allocate them in wasm memory *before* its
//! check that starts a fresh instance after a panic, and so hand the fresh
//! instance pointers into the dead one's memory.

use std::rc::Rc;

use js_sys::Uint8Array;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use super::http::{query_pairs, write_error};
use crate::config::Config;
use crate::delivery::handoff;
use crate::json;
use crate::rules::{translate_value, Options, Outbound};
use crate::{translate_batch, Batch, LegacyPolicy};

/// Why the webhook accepts nothing: no details here, the public learns
/// nothing of the configuration.
const NOT_CONFIGURED: &str =
    "the worker is not fully configured, so it accepts no events; GET /health with the admin token, or `wrangler tail`, names the problems";

/// Run by the glue as the module starts. A panic is logged with its message
/// and place, then traps (panic = "abort"): the glue marks the instance dead,
/// and the abort handler set here has it start a fresh one on the next call
/// (wasm-bindgen --force-enable-abort-handler; scripts/build.sh). workers-rs
/// does the same in the other module.
#[cfg(not(feature = "worker"))]
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

/// Panics, for the tests of the recovery (`POST /__test/hot-panic`, which
/// the entry serves only with `DRIFT_BRIDGE_TEST_ROUTES=1`).
#[wasm_bindgen(js_name = testPanic)]
pub fn test_panic() {
    panic!("deliberate panic from /__test/hot-panic");
}

/// `MAX_BODY_BYTES`: the entry refuses larger bodies while reading them.
/// Read once per isolate by the entry.
#[wasm_bindgen(js_name = maxBodyBytes)]
pub fn max_body_bytes(env: &JsValue) -> f64 {
    config(env).max_body_bytes as f64
}

/// Runs the hot path once on Drift's example as the isolate starts, and
/// answers the isolate's start line ([`crate::log::start`]), which the entry
/// prints.
///
/// V8 compiles a wasm function on its first call; this takes that off the
/// first request (bench/README.md, "Cold start"). On Workers the isolate
/// starts while the first request's TLS handshake runs. Without side effects:
/// the results are dropped, and the webhook runs once refused (an empty
/// token, which no configuration accepts) and once from past the token check.
#[wasm_bindgen(js_name = warmUp)]
pub fn warm_up(env: &JsValue) -> String {
    const EXAMPLE: &[u8] = br#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}"#;
    let config = config(env);
    answer_convert(&config, EXAMPLE, "", 0, false);
    answer_webhook(&config, EXAMPLE, Some(String::new()), 0, false);
    if let Ok(value) = json::parse_bytes(EXAMPLE, &config.limits()) {
        accepted(&config, &value, 0);
    }
    crate::log::start(&config)
}

/// `POST /webhooks/drift`: `token` is the `X-Verification-Token` header (a
/// string, or null); `over_limit` says the entry stopped reading `body` at
/// `MAX_BODY_BYTES`.
#[wasm_bindgen]
pub fn webhook(env: &JsValue, body: &Uint8Array, token: &JsValue, now_ms: f64, over_limit: bool) -> Vec<u8> {
    answer_webhook(&config(env), &body.to_vec(), token.as_string(), now_ms as i64, over_limit)
}

fn answer_webhook(config: &Config, body: &[u8], token: Option<String>, now: i64, over_limit: bool) -> Vec<u8> {
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

/// A verified webhook's answer: translated, with its hand-off plan.
fn accepted(config: &Config, value: &json::Value, now: i64) -> Vec<u8> {
    let options = Options { legacy: config.legacy, received_at_ms: now, limits: config.limits() };
    let events = match translate_value(value, &options) {
        Ok(events) => events,
        Err(e) => return refused(400, e.code().as_str(), core_error(&e)),
    };
    // Nothing is answered 200 before the outbox holds every delivery: with a
    // plan, the entry answers only once the outbox accepted it.
    let plan = handoff::plan(&events, &config.destinations, now);
    let mut out = String::with_capacity(256 + events.len() * 64 + plan.as_ref().map_or(0, |p| p.scope.len() + p.payload.len()));
    match &plan {
        None => {
            out.push_str("200 ");
            out.push_str(&crate::log::webhook(200, None, &events, 0));
        }
        Some(plan) => {
            out.push_str("200\n");
            out.push_str(&plan.scope);
            out.push('\n');
            out.push_str(&crate::log::webhook(200, None, &events, plan.deliveries));
            out.push('\n');
            out.push_str(&crate::log::webhook(503, Some("unavailable"), &events, 0));
        }
    }
    out.push('\n');
    write_received(&mut out, &events);
    if let Some(plan) = &plan {
        out.push('\n');
        out.push_str(&plan.payload);
    }
    out.into_bytes()
}

/// `POST /convert`: `query` is the URL's query string, without `?`.
#[wasm_bindgen]
pub fn convert(env: &JsValue, body: &Uint8Array, query: &JsValue, now_ms: f64, over_limit: bool) -> Vec<u8> {
    answer_convert(&config(env), &body.to_vec(), &query.as_string().unwrap_or_default(), now_ms as i64, over_limit)
}

fn answer_convert(config: &Config, body: &[u8], query: &str, now: i64, over_limit: bool) -> Vec<u8> {
    let mut legacy = config.legacy;
    let mut now = now;
    for (key, value) in query_pairs(query) {
        match key.as_str() {
            "legacy" => match value.parse::<LegacyPolicy>() {
                Ok(p) => legacy = p,
                Err(e) => return parameter_error(&e.to_string(), "legacy"),
            },
            "now" => match value.parse::<i64>() {
                Ok(n) => now = n,
                Err(_) => return parameter_error(&format!("expected milliseconds since the epoch, found {value:?}"), "now"),
            },
            _ => {}
        }
    }
    if over_limit {
        return too_large(config.max_body_bytes);
    }
    let limits = config.limits();
    let text = match json::utf8(body, &limits) {
        Ok(text) => text,
        Err(e) => return core_error(&e),
    };
    let options = Options { legacy, received_at_ms: now, limits };
    match translate_batch(text, &options, &limits) {
        Batch::One(Err(e)) => core_error(&e),
        batch => answer(200, &batch.to_json()),
    }
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
fn refused(status: u16, code: &str, body: Vec<u8>) -> Vec<u8> {
    with_log(body, &crate::log::webhook(status, Some(code), &[], 0))
}

/// `"<status> \n<body>"`: an answer with no log line.
fn answer(status: u16, body: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len());
    out.extend_from_slice(status_prefix(status).as_bytes());
    out.extend_from_slice(body.as_bytes());
    out
}

fn status_prefix(status: u16) -> String {
    format!("{status} \n")
}

/// Puts `log` in an answer made by [`answer`] or the error helpers.
fn with_log(answer: Vec<u8>, log: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(answer.len() + log.len());
    out.extend_from_slice(&answer[..4]);
    out.extend_from_slice(log.as_bytes());
    out.extend_from_slice(&answer[4..]);
    out
}

fn error(status: u16, code: &str, message: &str) -> Vec<u8> {
    let mut out = status_prefix(status);
    write_error(&mut out, code, message, "");
    out.into_bytes()
}

fn parameter_error(message: &str, parameter: &str) -> Vec<u8> {
    let mut out = status_prefix(400);
    write_error(&mut out, "invalid_parameter", message, parameter);
    out.into_bytes()
}

/// A core error as `400`. (Bodies over the size limit never reach the core:
/// the entry stops reading them and the answer is 413, so a core `too_large`
/// here is about nesting depth, a bad request rather than a big one.)
fn core_error(e: &crate::Error) -> Vec<u8> {
    let mut out = status_prefix(400);
    out.push_str("{\"error\":");
    out.push_str(&e.to_json());
    out.push('}');
    out.into_bytes()
}

/// The same answer for a missing and a wrong token: no hint which.
fn unauthorized() -> Vec<u8> {
    error(401, "unauthorized", "missing or invalid verification token")
}

fn too_large(limit: usize) -> Vec<u8> {
    error(413, "too_large", &format!("the request body is larger than the limit of {limit} bytes (MAX_BODY_BYTES)"))
}
