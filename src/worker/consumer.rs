//! The queue consumer's decisions, for the entry module's consumer
//! (src/worker/entry.mjs, `consume`): the batch's plan, the signed POSTs of
//! each destination's share, whether an answer stops the batch, and the
//! report to the delivery log. Pure conversion over
//! [`crate::delivery::consumer`]; the entry makes the calls and the POSTs.
//!
//! They are in the operator's module, which every isolate that takes queue
//! batches starts, rather than the bridge's: they are not on a webhook's
//! path, and the bridge's module, which every isolate starts, stays under
//! 250 KB without them (bench/README.md, "Size and start").

use js_sys::{Array, Object};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsError, JsValue};

use super::effects::{fail, set, text};
use crate::delivery::consumer::{self, Seen};
use crate::delivery::effects::Object as Callee;

fn config(env: &JsValue) -> std::rc::Rc<crate::config::Config> {
    super::env::config(env, false)
}

/// The consumer's plan for a batch (`bodies`: the messages' bodies, as
/// text): `{calls: [{namespace, name, destination, op, body, messages}], logs}`.
#[wasm_bindgen(js_name = consumerPlan)]
pub fn consumer_plan(env: &JsValue, dead: bool, bodies: &Array) -> JsValue {
    let bodies: Vec<String> = bodies.iter().map(|b| text(&b)).collect();
    let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
    let plan = consumer::plan(&config(env).delivery, dead, &refs);
    let o = Object::new();
    let calls = Array::new();
    for call in &plan.calls {
        let c = Object::new();
        set(&c, "namespace", &JsValue::from_str(super::env::DELIVERY_LOG));
        set(&c, "name", &JsValue::from_str(&Callee::DeliveryLog(call.destination.clone()).instance_name()));
        set(&c, "destination", &JsValue::from_str(&call.destination));
        set(&c, "op", &JsValue::from_str(call.op));
        set(&c, "body", &JsValue::from_str(&call.body));
        set(&c, "messages", &call.messages.iter().map(|i| JsValue::from(*i as u32)).collect::<Array>());
        calls.push(&c);
    }
    set(&o, "calls", &calls);
    let logs: Array = plan.logs.iter().map(|l| JsValue::from_str(&l.text)).collect();
    set(&o, "logs", &logs);
    o.into()
}

/// The POSTs for one destination's `/attempt` answer, signed at `now`:
/// `[{id, url, headers: [[name, value]], body, timeoutMs, wave, delayMs?, impossible?}]`.
#[wasm_bindgen(js_name = consumerRequests)]
pub fn consumer_requests(env: &JsValue, destination: &JsValue, reply: &JsValue, now: f64) -> Result<Array, JsError> {
    let requests = consumer::requests(&config(env).delivery, &text(destination), &text(reply), now as i64).map_err(fail)?;
    Ok(requests
        .iter()
        .map(|r| {
            let o = Object::new();
            set(&o, "id", &JsValue::from_str(&r.id));
            match &r.impossible {
                Some(why) => set(&o, "impossible", &JsValue::from_str(why)),
                None => {
                    set(&o, "url", &JsValue::from_str(&r.url));
                    set(&o, "headers", &super::effects::headers(&r.headers));
                    set(&o, "body", &JsValue::from_str(&r.body));
                }
            }
            set(&o, "timeoutMs", &JsValue::from(r.timeout_ms));
            set(&o, "wave", &JsValue::from(r.wave));
            if r.delay_ms > 0 {
                set(&o, "delayMs", &JsValue::from(r.delay_ms));
            }
            JsValue::from(o)
        })
        .collect())
}

/// Whether an answer (an HTTP status, or null for none) says the app is in
/// trouble: the rest of the batch then goes back unattempted.
#[wasm_bindgen(js_name = stopsBatch)]
pub fn stops_batch(status: &JsValue) -> bool {
    consumer::stops_batch(status.as_f64().map(|s| s as u16))
}

/// The `/settle` body for what was seen of one destination's requests
/// (`seen`: `[{id, unattempted?, status, location, excerpt, error, latencyMs}]`).
#[wasm_bindgen(js_name = consumerSettle)]
pub fn consumer_settle(env: &JsValue, destination: &JsValue, reply: &JsValue, seen: &JsValue) -> Result<String, JsError> {
    let config = config(env);
    let destination = text(destination);
    let requests = consumer::requests(&config.delivery, &destination, &text(reply), 0).map_err(fail)?;
    let seen = Seen::decode_all(&text(seen)).map_err(fail)?;
    Ok(consumer::settle(&config.delivery, &destination, &requests, &seen).encode())
}
