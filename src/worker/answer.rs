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
    pub fn new(status: u16, body: String) -> Answer {
        Answer { status, body, ..Answer::default() }
    }

    /// As a JavaScript object: `{status, body, log?, scope?, payload?, refusedLog?}`.
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
            set("scope", JsValue::from_str(&h.scope));
            set("payload", JsValue::from_str(&h.payload));
            set("refusedLog", JsValue::from_str(&h.refused_log));
        }
        o.into()
    }
}

/// `{"error":{"code","message","path":""}}` with `status`.
pub fn error(status: u16, code: &str, message: &str) -> Answer {
    let mut out = String::new();
    write_error(&mut out, code, message, "");
    Answer::new(status, out)
}

#[cfg(feature = "operator")]
pub fn parameter_error(message: &str, parameter: &str) -> Answer {
    let mut out = String::new();
    write_error(&mut out, "invalid_parameter", message, parameter);
    Answer::new(400, out)
}

/// A core error as `400`. (Bodies over the size limit never reach the core:
/// the entry stops reading them and the answer is 413, so a core `too_large`
/// here is about nesting depth, a bad request rather than a big one.)
pub fn core_error(e: &crate::Error) -> Answer {
    Answer::new(400, format!("{{\"error\":{}}}", e.to_json()))
}

pub fn too_large(limit: usize) -> Answer {
    error(413, "too_large", &format!("the request body is larger than the limit of {limit} bytes (MAX_BODY_BYTES)"))
}
