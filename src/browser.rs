//! The playground's exports (feature `browser`, built with
//! `wasm-bindgen --target web`): the same core, called from the page.
//!
//! Events cross the boundary as JSON *text*, never as JS objects, so integers
//! above 2^53 reach the page digit for digit. Options come in through
//! `serde-wasm-bindgen`. The page calls [`convert_batch`] once per edit, for
//! one event or thousands; its result is one JSON string, parsed once.

use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::batch::{translate_items, Form, Item};
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
    JsEvent { id: e.id.to_hex(), event_type: e.event_type.to_string(), json: e.json.clone(), pretty: pretty_text(&e.json), record: e.record() }
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

/// Turns increasing byte offsets of a text into UTF-16 offsets in one pass.
struct Utf16<'a> {
    text: &'a str,
    byte: usize,
    unit: usize,
}

impl Utf16<'_> {
    fn at(&mut self, byte: usize) -> usize {
        if byte >= self.byte {
            self.unit += self.text[self.byte..byte].chars().map(char::len_utf16).sum::<usize>();
        } else {
            self.unit = self.text[..byte].chars().map(char::len_utf16).sum();
        }
        self.byte = byte;
        self.unit
    }
}

/// Translates what `POST /convert` accepts (one event, a JSON array of
/// events, or newline-delimited events) with the same results as
/// [`convert_body`], one item per inbound event. Returns JSON text for the
/// page to `JSON.parse` once (one string across the boundary is many times
/// faster than thousands of objects built through `serde-wasm-bindgen`):
/// `{"form":"one"|"array"|"ndjson","items":[{"index","line","start","end",
/// "events":[{"id","type","json","pretty","record"}]} or {…,"error":{"code",
/// "message","path","line"?,"column"?}}]}`. The events stay JSON text inside
/// strings, so no number is ever read as a JS number. `line` is where the
/// event starts in the input (1-based); `start` and `end` are its span in
/// UTF-16 code units, for `input.slice(start, end)`. Error paths are
/// `/convert`'s (`[3].data.status` in a batch). Bad options throw.
#[wasm_bindgen(js_name = convertBatch)]
pub fn convert_batch(input: &str, options_value: JsValue) -> Result<String, JsValue> {
    let opts = options(options_value).map_err(|e| JsValue::from_str(&e.message))?;
    let body_limits = Limits { max_bytes: opts.limits.max_bytes.max(input.len()), ..opts.limits };
    let (form, items) = translate_items(input, &opts, &body_limits);
    let mut out = String::with_capacity(input.len() * 4 + 64);
    out.push_str(match form {
        Form::One => "{\"form\":\"one\",\"items\":[",
        Form::Array => "{\"form\":\"array\",\"items\":[",
        Form::Ndjson => "{\"form\":\"ndjson\",\"items\":[",
    });
    let mut utf16 = Utf16 { text: input, byte: 0, unit: 0 };
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_item(&mut out, item, &mut utf16);
    }
    out.push_str("]}");
    Ok(out)
}

fn write_item(out: &mut String, item: &Item, utf16: &mut Utf16<'_>) {
    let start = utf16.at(item.span.start);
    let end = utf16.at(item.span.end);
    out.push_str(&format!("{{\"index\":{},\"line\":{},\"start\":{start},\"end\":{end},", item.index, item.line));
    match &item.result {
        Ok(events) => {
            out.push_str("\"events\":[");
            for (i, event) in events.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let record = event.record();
                out.push_str("{\"id\":\"");
                event.id.write_hex(out);
                out.push_str("\",\"type\":");
                json::write_str_escaped(out, &event.event_type);
                out.push_str(",\"json\":");
                json::write_str_escaped(out, &event.json);
                out.push_str(",\"pretty\":");
                json::write_str_escaped(out, &pretty_text(&event.json));
                out.push_str(",\"record\":");
                json::write_str_escaped(out, &record);
                out.push('}');
            }
            out.push_str("]}");
        }
        Err(e) => {
            out.push_str("\"error\":");
            out.push_str(&e.to_json());
            out.push('}');
        }
    }
}

fn pretty_text(compact: &str) -> String {
    json::parse(compact, &Limits { max_bytes: usize::MAX, ..Limits::default() })
        .map(|v| v.to_pretty_json())
        .unwrap_or_else(|_| compact.to_owned())
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
