//! Drift's webhook (`POST /webhooks/drift`) and the stateless converter
//! (`POST /convert`), each one call from the entry module
//! (src/worker/entry.mjs) into the wasm, over bytes. Part of the bridge's
//! small wasm module (feature `bridge`, no workers-rs), which every isolate
//! starts.
//!
//! Going through workers-rs costs more CPU than the translation itself: a
//! `Request`, `Headers` and `Response` converted field by field, a future
//! turned into a promise, glue on every call. Here the entry reads the body
//! and the token header in JavaScript, passes them in once, and gets back a
//! [`Answer`] that says everything it must do next: answer at once, or hand
//! the deliveries to the conversation's outbox first and answer 200 only once
//! the outbox has them (503 if it does not).
//!
//! The arguments are JavaScript values, copied into the wasm here rather than
//! by the glue: the glue would allocate them in wasm memory *before* its
//! check that starts a fresh instance after a panic, and so hand the fresh
//! instance pointers into the dead one's memory.

use std::rc::Rc;

use js_sys::{Object, Reflect, Uint8Array};
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

/// Panics, for the tests of the recovery (`POST /__test/bridge-panic`,
/// which the entry serves only with `DRIFT_BRIDGE_TEST_ROUTES=1`).
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

/// What the entry does with a request to one of these routes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    pub body: String,
    /// The log line, if any, written once the answer is final.
    pub log: Option<String>,
    /// Deliveries to hand off first: answer `status` (200) only once this
    /// conversation's outbox stored them.
    pub handoff: Option<HandOff>,
}

/// A hand-off to an outbox.
#[derive(Debug, PartialEq, Eq)]
pub struct HandOff {
    /// The outbox (`idFromName`).
    pub scope: String,
    /// The body of its `/accept`.
    pub payload: String,
    /// The log line if the outbox refused it (answered then 503 `unavailable`).
    pub refused_log: String,
}

impl Answer {
    fn new(status: u16, body: String) -> Answer {
        Answer { status, body, ..Answer::default() }
    }

    /// As a JavaScript object: `{status, body, log?, scope?, payload?, refusedLog?}`.
    fn to_js(&self) -> JsValue {
        let o = Object::new();
        let set = |k: &str, v: JsValue| {
            let _ = Reflect::set(&o, &JsValue::from_str(k), &v);
        };
        set("status", JsValue::from(self.status));
        set("body", JsValue::from_str(&self.body));
        if let Some(log) = &self.log {
            set("log", JsValue::from_str(log));
        }
        if let Some(h) = &self.handoff {
            set("scope", JsValue::from_str(&h.scope));
            set("payload", JsValue::from_str(&h.payload));
            set("refusedLog", JsValue::from_str(&h.refused_log));
        }
        o.into()
    }
}

/// `POST /webhooks/drift`: `token` is the `X-Verification-Token` header (a
/// string, or null); `over_limit` says the entry stopped reading `body` at
/// `MAX_BODY_BYTES`.
#[wasm_bindgen]
pub fn webhook(env: &JsValue, body: &Uint8Array, token: &JsValue, now_ms: f64, over_limit: bool) -> JsValue {
    answer_webhook(&config(env), &body.to_vec(), token.as_string(), now_ms as i64, over_limit).to_js()
}

fn answer_webhook(config: &Config, body: &[u8], token: Option<String>, now: i64, over_limit: bool) -> Answer {
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
fn accepted(config: &Config, value: &json::Value, now: i64) -> Answer {
    let options = Options { legacy: config.legacy, received_at_ms: now, limits: config.limits() };
    let events = match translate_value(value, &options) {
        Ok(events) => events,
        Err(e) => return refused(400, e.code().as_str(), core_error(&e)),
    };
    // Nothing is answered 200 before the outbox holds every delivery.
    let plan = handoff::plan(&events, &config.delivery.destinations, now);
    let mut body = String::with_capacity(64 + events.len() * 64);
    write_received(&mut body, &events);
    let deliveries = plan.as_ref().map_or(0, |p| p.deliveries);
    Answer {
        status: 200,
        body,
        log: Some(crate::log::webhook(200, None, &events, deliveries)),
        handoff: plan.map(|p| HandOff {
            scope: p.scope,
            payload: p.payload,
            refused_log: crate::log::webhook(503, Some("unavailable"), &events, 0),
        }),
    }
}

/// `POST /convert`: `query` is the URL's query string, without `?`.
#[wasm_bindgen]
pub fn convert(env: &JsValue, body: &Uint8Array, query: &JsValue, now_ms: f64, over_limit: bool) -> JsValue {
    answer_convert(&config(env), &body.to_vec(), &query.as_string().unwrap_or_default(), now_ms as i64, over_limit).to_js()
}

fn answer_convert(config: &Config, body: &[u8], query: &str, now: i64, over_limit: bool) -> Answer {
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
                Err(_) => return parameter_error(&format!("expected milliseconds since the epoch, found {}", crate::escape::quoted(&value)), "now"),
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
        batch => Answer::new(200, batch.to_json()),
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
fn refused(status: u16, code: &str, answer: Answer) -> Answer {
    Answer { log: Some(crate::log::webhook(status, Some(code), &[], 0)), ..answer }
}

fn error(status: u16, code: &str, message: &str) -> Answer {
    let mut out = String::new();
    write_error(&mut out, code, message, "");
    Answer::new(status, out)
}

fn parameter_error(message: &str, parameter: &str) -> Answer {
    let mut out = String::new();
    write_error(&mut out, "invalid_parameter", message, parameter);
    Answer::new(400, out)
}

/// A core error as `400`. (Bodies over the size limit never reach the core:
/// the entry stops reading them and the answer is 413, so a core `too_large`
/// here is about nesting depth, a bad request rather than a big one.)
fn core_error(e: &crate::Error) -> Answer {
    Answer::new(400, format!("{{\"error\":{}}}", e.to_json()))
}

/// The same answer for a missing and a wrong token: no hint which.
fn unauthorized() -> Answer {
    error(401, "unauthorized", "missing or invalid verification token")
}

fn too_large(limit: usize) -> Answer {
    error(413, "too_large", &format!("the request body is larger than the limit of {limit} bytes (MAX_BODY_BYTES)"))
}
