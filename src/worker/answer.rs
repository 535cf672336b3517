//! What the entry module does with a request the wasm answered: the
//! webhook's (src/worker/webhook.rs, the bridge's module) and `/convert`'s
//! (src/worker/convert.rs, the operator's), and the errors they share.

use js_sys::{Object, Reflect};
use wasm_bindgen::JsValue;

use super::http::write_error;

/// Drift's example event (from its notice of the change): what the bridge
/// runs once as an isolate starts, and what a test delivery sends.
pub const DRIFT_EXAMPLE: &str = r#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}"#;

/// What the entry does with a request to one of these routes.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Served {
    pub status: u16,
    pub body: String,
    /// The log line, if any, written once the answer is final.
    pub log: Option<String>,
    /// Deliveries to hand off first: answer `status` (200) only once every
    /// app's delivery log stored its share.
    pub handoff: Option<Shares>,
}

/// A webhook's shares: each app's deliveries, for its delivery log.
#[derive(Debug, PartialEq, Eq)]
pub struct Shares {
    /// (the log's `idFromName`, the body of its `/accept`), one per app.
    pub logs: Vec<(String, String)>,
    /// The log line if a log did not store its share (answered then 503 `unavailable`).
    pub refused_log: String,
}

impl Served {
    pub fn new(status: u16, body: String) -> Served {
        Served { status, body, ..Served::default() }
    }

    /// As a JavaScript object: `{status, body, log?, handoffs?: [{name, body}], refusedLog?}`.
    pub fn to_js(&self) -> JsValue {
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
            let logs = js_sys::Array::new();
            for (name, body) in &h.logs {
                let item = Object::new();
                let _ = Reflect::set(&item, &JsValue::from_str("name"), &JsValue::from_str(name));
                let _ = Reflect::set(&item, &JsValue::from_str("body"), &JsValue::from_str(body));
                logs.push(&item);
            }
            set("handoffs", logs.into());
            set("refusedLog", JsValue::from_str(&h.refused_log));
        }
        o.into()
    }
}

/// `{"error":{"code","message","path":""}}` with `status`.
pub fn error(status: u16, code: &str, message: &str) -> Served {
    let mut out = String::new();
    write_error(&mut out, code, message, "");
    Served::new(status, out)
}

#[cfg(feature = "operator")]
pub fn parameter_error(message: &str, parameter: &str) -> Served {
    let mut out = String::new();
    write_error(&mut out, "invalid_parameter", message, parameter);
    Served::new(400, out)
}

/// A core error as `400`. (Bodies over the size limit never reach the core:
/// the entry stops reading them and the answer is 413, so a core `too_large`
/// here is about nesting depth, a bad request rather than a big one.)
pub fn core_error(e: &crate::Error) -> Served {
    Served::new(400, format!("{{\"error\":{}}}", e.to_json()))
}

pub fn too_large(limit: usize) -> Served {
    error(413, "too_large", &format!("the request body is larger than the limit of {limit} bytes (MAX_BODY_BYTES)"))
}
