//! A step's [`Effects`] as the JavaScript object the entry module
//! (src/worker/entry.mjs, `step`) applies; shared by both wasm modules.

use js_sys::{Array, Object, Reflect};
use wasm_bindgen::{JsError, JsValue};

use crate::delivery::effects::{Alarm, Effects, Object as Callee};
use crate::delivery::sql::StorageError;

pub fn fail(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

/// A JavaScript string's text ("" for anything else).
pub fn text(value: &JsValue) -> String {
    value.as_string().unwrap_or_default()
}

/// Request headers as the entry's `fetch` takes them: `[[name, value], …]`.
pub fn headers(h: &[(&'static str, String)]) -> Array {
    h.iter().map(|(k, v)| JsValue::from(Array::of2(&JsValue::from_str(k), &JsValue::from_str(v)))).collect()
}

pub fn set(o: &Object, key: &str, value: &JsValue) {
    let _ = Reflect::set(o, &JsValue::from_str(key), value);
}

/// [`Effects`] as `{status?, body?, headers?, alarm?, sends?, calls?, posts?, then?, holdUntil?, logs?}`:
/// `alarm` absent to keep it, a time to set it, `null` to delete it; `sends`
/// in batches the queue takes in one `sendBatch` (`{body, contentType,
/// delaySeconds?}` each); `calls` as `{namespace, name, op, body, ticket}`;
/// `posts` as the consumer's requests (`{id, url, headers, body, timeoutMs}`,
/// their ticket as `id`); `logs` as `{error, text}`.
fn effects(fx: Effects) -> JsValue {
    let o = Object::new();
    if let Some(reply) = &fx.reply {
        set(&o, "status", &JsValue::from(reply.status));
        set(&o, "body", &JsValue::from_str(&reply.body));
        if !reply.headers.is_empty() {
            set(&o, "headers", &headers(&reply.headers));
        }
    }
    match fx.alarm {
        Alarm::Keep => {}
        Alarm::At(at) => set(&o, "alarm", &JsValue::from_f64(at as f64)),
        Alarm::Clear => set(&o, "alarm", &JsValue::NULL),
    }
    if !fx.sends.is_empty() {
        let batches = Array::new();
        for batch in fx.send_batches() {
            let messages = Array::new();
            for send in batch {
                let m = Object::new();
                set(&m, "body", &JsValue::from_str(&send.body));
                set(&m, "contentType", &JsValue::from_str("json"));
                if send.delay_seconds > 0 {
                    set(&m, "delaySeconds", &JsValue::from(send.delay_seconds));
                }
                messages.push(&m);
            }
            batches.push(&messages);
        }
        set(&o, "sends", &batches);
    }
    if !fx.calls.is_empty() {
        let calls = Array::new();
        for call in &fx.calls {
            let c = Object::new();
            let namespace = match call.to {
                Callee::DeliveryLog(_) => super::env::DELIVERY_LOG,
                Callee::Registry => super::env::REGISTRY,
                Callee::Outbox(_) => super::env::OUTBOX,
            };
            set(&c, "namespace", &JsValue::from_str(namespace));
            set(&c, "name", &JsValue::from_str(&call.to.instance_name()));
            set(&c, "op", &JsValue::from_str(call.op));
            set(&c, "body", &JsValue::from_str(&call.body));
            set(&c, "ticket", &JsValue::from_str(&call.ticket));
            calls.push(&c);
        }
        set(&o, "calls", &calls);
    }
    if !fx.posts.is_empty() {
        let posts = Array::new();
        for post in &fx.posts {
            let r = Object::new();
            set(&r, "id", &JsValue::from_str(&post.ticket));
            set(&r, "url", &JsValue::from_str(&post.url));
            set(&r, "headers", &headers(&post.headers));
            set(&r, "body", &JsValue::from_str(&post.body));
            set(&r, "timeoutMs", &JsValue::from(post.timeout_ms));
            posts.push(&r);
        }
        set(&o, "posts", &posts);
    }
    // The continuation of the calls' or the posts' results.
    if let Some(then) = fx.then.filter(|_| !fx.calls.is_empty() || !fx.posts.is_empty()) {
        set(&o, "then", &JsValue::from_str(then));
    }
    if let Some(at) = fx.hold_until {
        set(&o, "holdUntil", &JsValue::from_f64(at as f64));
    }
    if !fx.logs.is_empty() {
        let logs = Array::new();
        for line in &fx.logs {
            let l = Object::new();
            set(&l, "error", &JsValue::from_bool(line.error));
            set(&l, "text", &JsValue::from_str(&line.text));
            logs.push(&l);
        }
        set(&o, "logs", &logs);
    }
    o.into()
}

pub fn answer(result: Result<Effects, StorageError>) -> Result<JsValue, JsError> {
    result.map(effects).map_err(fail)
}

