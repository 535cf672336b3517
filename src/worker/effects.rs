//! A step's [`Effects`] as the list of actions the entry module
//! (src/worker/entry.mjs, `run`) executes in order, shared by both wasm
//! modules. The order is [`Effects::actions`]'s, decided in the core; the
//! entry only executes it, as the native tests' runtime does.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsError, JsValue};

use crate::delivery::effects::{Action, Alarm, Effects};
use crate::delivery::sql::StorageError;

pub fn fail(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// A JavaScript string's text ("" for anything else).
pub fn text(value: &JsValue) -> String {
    value.as_string().unwrap_or_default()
}

/// Headers as `fetch` and `Response` take them: `[[name, value], …]`.
pub fn headers(h: &[(&'static str, String)]) -> Array {
    h.iter().map(|(k, v)| JsValue::from(Array::of2(&JsValue::from_str(k), &JsValue::from_str(v)))).collect()
}

pub fn set(o: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(o, &JsValue::from_str(key), value);
}

/// [`Effects`] as `[{do, …}]`, in order:
/// - `{do:"alarm", at}` (`at` null: delete it), inside the step's transaction;
/// - `{do:"log", error, text}`;
/// - `{do:"reply", status, body, headers?, holdUntil?}`;
/// - `{do:"post", posts:[{ticket, url, headers, body, timeoutMs, delayMs?, listen?}], reportWithinMs}`:
///   send them (one with `listen: {id, type, conversation, attempt}` over
///   the listener's WebSocket, not to `url`), and report what was seen as `[{ticket, status, location?, excerpt, error?, latencyMs}]`;
/// - `{do:"call", calls:[{namespace, name, path, body, ticket?}], report}`:
///   call them, and with `report`, report `[{ticket, status, body}]` of those with a ticket.
fn actions(fx: &Effects) -> JsValue {
    let list = Array::new();
    for action in fx.actions() {
        let o = Object::new();
        match action {
            Action::Alarm(alarm) => {
                set(&o, "do", &JsValue::from_str("alarm"));
                let at = match alarm {
                    Alarm::At(at) => JsValue::from_f64(at as f64),
                    Alarm::Clear | Alarm::Keep => JsValue::NULL,
                };
                set(&o, "at", &at);
            }
            Action::Log(line) => {
                set(&o, "do", &JsValue::from_str("log"));
                set(&o, "error", &JsValue::from_bool(line.error));
                set(&o, "text", &JsValue::from_str(&line.text));
            }
            Action::Reply { reply, hold_until } => {
                set(&o, "do", &JsValue::from_str("reply"));
                set(&o, "status", &JsValue::from(reply.status));
                set(&o, "body", &JsValue::from_str(&reply.body));
                if !reply.headers.is_empty() {
                    set(&o, "headers", &headers(&reply.headers));
                }
                if let Some(at) = hold_until {
                    set(&o, "holdUntil", &JsValue::from_f64(at as f64));
                }
            }
            Action::Post { posts, report_within_ms } => {
                set(&o, "do", &JsValue::from_str("post"));
                let items = Array::new();
                for p in posts {
                    let r = Object::new();
                    set(&r, "ticket", &JsValue::from_str(&p.ticket.encode()));
                    set(&r, "url", &JsValue::from_str(&p.url));
                    set(&r, "headers", &headers(&p.headers));
                    set(&r, "body", &JsValue::from_str(&p.body));
                    set(&r, "timeoutMs", &JsValue::from(p.timeout_ms));
                    if p.delay_ms > 0 {
                        set(&r, "delayMs", &JsValue::from(p.delay_ms));
                    }
                    if let Some(l) = &p.listen {
                        let o = Object::new();
                        set(&o, "id", &JsValue::from_str(&l.id));
                        set(&o, "type", &JsValue::from_str(&l.event_type));
                        set(&o, "conversation", &l.conversation.as_deref().map_or(JsValue::NULL, JsValue::from_str));
                        set(&o, "attempt", &JsValue::from(l.attempt));
                        set(&r, "listen", &o);
                    }
                    items.push(&r);
                }
                set(&o, "posts", &items);
                set(&o, "reportWithinMs", &JsValue::from(report_within_ms));
            }
            Action::Call(calls) => {
                set(&o, "do", &JsValue::from_str("call"));
                let items = Array::new();
                for c in calls {
                    let r = Object::new();
                    set(&r, "namespace", &JsValue::from_str(c.to.namespace()));
                    set(&r, "name", &JsValue::from_str(&c.to.instance_name()));
                    set(&r, "path", &JsValue::from_str(c.path));
                    set(&r, "body", &JsValue::from_str(&c.body));
                    if let Some(t) = &c.ticket {
                        set(&r, "ticket", &JsValue::from_str(&t.encode()));
                    }
                    items.push(&r);
                }
                set(&o, "calls", &items);
                set(&o, "report", &JsValue::from_bool(fx.reports_calls()));
            }
        }
        list.push(&o);
    }
    list.into()
}

/// `[{do:"elsewhere"}]`: this module does not run the step (the bridge's,
/// for the delivery log's admin operations); the operator's does, with the
/// same arguments. Nothing was read or written.
#[cfg(not(feature = "log-admin"))]
pub fn elsewhere() -> JsValue {
    let o = Object::new();
    set(&o, "do", &JsValue::from_str("elsewhere"));
    Array::of1(&o).into()
}

pub fn answer(result: Result<Effects, StorageError>) -> Result<JsValue, JsError> {
    result.map(|fx| actions(&fx)).map_err(fail)
}
