//! The playground's exports (feature `browser`, built with
//! `wasm-bindgen --target web`): the same core, called from the page.
//!
//! Events cross the boundary as JSON *text*, never as JS objects, so integers
//! above 2^53 reach the page digit for digit. Options come in and results go
//! out through `serde-wasm-bindgen`.

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::{json, translate, translate_batch, Error, Limits, LegacyPolicy, Options, Outbound};

/// `{ legacy?: "always" | "timeline" | "never", now?: number }`
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct JsOptions {
    legacy: Option<String>,
    now: Option<f64>,
}

#[derive(Serialize)]
struct JsEvent {
    id: String,
    #[serde(rename = "type")]
    event_type: String,
    /// Compact JSON, exactly as `/convert` and the CLI give it.
    json: String,
    /// The same, indented for reading.
    pretty: String,
    /// `{"id":…,"event":…}`, the CLI's line.
    record: String,
}

#[derive(Serialize)]
struct JsError {
    code: &'static str,
    message: String,
    path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    column: Option<u32>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum JsResult {
    Ok { ok: bool, events: Vec<JsEvent> },
    Err { ok: bool, error: JsError },
}

fn options(value: JsValue) -> Result<Options, JsError> {
    let js: JsOptions = if value.is_undefined() || value.is_null() {
        JsOptions::default()
    } else {
        serde_wasm_bindgen::from_value(value).map_err(|e| option_error(format!("invalid options: {e}")))?
    };
    let legacy = match js.legacy.as_deref() {
        None => LegacyPolicy::default(),
        Some(name) => name.parse().map_err(|e: crate::legacy::UnknownPolicy| option_error(e.to_string()))?,
    };
    let now = js.now.unwrap_or_else(js_sys::Date::now);
    if !now.is_finite() {
        return Err(option_error("options.now must be a finite number of milliseconds".into()));
    }
    Ok(Options::new(now as i64).legacy(legacy))
}

fn option_error(message: String) -> JsError {
    JsError { code: "invalid_options", message, path: String::new(), line: None, column: None }
}

fn js_error(e: &Error) -> JsError {
    JsError {
        code: e.code().as_str(),
        message: e.detail(),
        path: e.path().to_owned(),
        line: e.position().map(|p| p.0),
        column: e.position().map(|p| p.1),
    }
}

fn js_event(e: &Outbound) -> JsEvent {
    let pretty = json::parse(&e.json, &Limits { max_bytes: usize::MAX, ..Limits::default() })
        .map(|v| v.to_pretty_json())
        .unwrap_or_else(|_| e.json.clone());
    JsEvent { id: e.id.to_hex(), event_type: e.event_type.to_string(), json: e.json.clone(), pretty, record: e.record() }
}

/// Translates one event: `{ ok: true, events: [{ id, type, json, pretty, record }] }`
/// or `{ ok: false, error: { code, message, path, line?, column? } }`.
#[wasm_bindgen]
pub fn convert(input: &str, options_value: JsValue) -> Result<JsValue, JsValue> {
    let result = match options(options_value) {
        Err(error) => JsResult::Err { ok: false, error },
        Ok(opts) => match translate(input, &opts) {
            Ok(events) => JsResult::Ok { ok: true, events: events.iter().map(js_event).collect() },
            Err(e) => JsResult::Err { ok: false, error: js_error(&e) },
        },
    };
    serde_wasm_bindgen::to_value(&result).map_err(|e| JsValue::from_str(&e.to_string()))
}

/// The exact body `POST /convert` answers for the same input and options, so
/// the page can show that the edge and the browser agree byte for byte.
#[wasm_bindgen(js_name = convertBody)]
pub fn convert_body(input: &str, options_value: JsValue) -> Result<String, JsValue> {
    let opts = options(options_value).map_err(|e| JsValue::from_str(&e.message))?;
    let body_limits = Limits { max_bytes: opts.limits.max_bytes.max(input.len()), ..opts.limits };
    Ok(translate_batch(input, &opts, &body_limits).to_json())
}

/// Re-indents JSON text without touching a number or a string.
#[wasm_bindgen]
pub fn pretty(input: &str) -> Result<String, JsValue> {
    json::parse(input, &Limits { max_bytes: usize::MAX, ..Limits::default() })
        .map(|v| v.to_pretty_json())
        .map_err(|e| JsValue::from_str(&e.to_string()))
}

/// The crate version.
#[wasm_bindgen]
pub fn version() -> String {
    crate::VERSION.to_owned()
}
