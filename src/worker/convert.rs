//! The stateless converter (`POST /convert`), one call from the entry
//! module (src/worker/entry.mjs) into the operator's wasm: one event, a
//! JSON array or NDJSON in, the events it becomes out. In the operator's
//! module rather than the bridge's: it is no webhook's path, and the
//! bridge's module, which every isolate starts, stays under 250 KB without
//! it (bench/README.md, "Size and start").

use js_sys::Uint8Array;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use super::answer::{core_error, parameter_error, too_large, Served};
use super::http::query_pairs;
use crate::config::Config;
use crate::json;
use crate::rules::Options;
use crate::{translate_batch, Batch, LegacyPolicy};

/// `POST /convert`: `query` is the URL's query string, without `?`.
#[wasm_bindgen]
pub fn convert(env: &JsValue, body: &Uint8Array, query: &JsValue, now_ms: f64, over_limit: bool) -> JsValue {
    answer_convert(&super::env::config(env, false), &body.to_vec(), &query.as_string().unwrap_or_default(), now_ms as i64, over_limit).to_js()
}

fn answer_convert(config: &Config, body: &[u8], query: &str, now: i64, over_limit: bool) -> Served {
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
        batch => Served::new(200, batch.to_json()),
    }
}

