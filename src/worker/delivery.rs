//! The delivery system's exports for the entry module (src/worker/entry.mjs):
//! one synchronous call per step of a delivery log, an outbox or the
//! registry, over the object's SQL storage ([`SqlStorage`]), answering the
//! step's actions ([`super::effects`]). The entry runs every step the same
//! way: the call and its alarm in one `transactionSync`, then the rest of
//! the actions in order. Everything here is conversion; the decisions, the
//! reading of inputs included, are the core's ([`crate::delivery`]).
//!
//! A delivery log's steps run in the bridge's module, but for the admin
//! API's operations ([`log::Input::is_admin`]), which that module is built
//! without (feature `log-admin`): for those it answers the one action
//! `elsewhere`, having read and written nothing, and the entry runs the same
//! step in the operator's module, which has them.

use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsError, JsValue};

use super::effects::{answer, fail, text};
use super::storage::SqlStorage;
#[cfg(feature = "operator")]
use crate::delivery::effects::{Effects, Reply};
use crate::delivery::log::{self, Context};
#[cfg(feature = "operator")]
use crate::delivery::{outbox, registry};

fn config(env: &JsValue) -> std::rc::Rc<crate::config::Config> {
    // The bridge's module names the configuration's problems; the operator's keeps quiet.
    super::env::config(env, cfg!(not(feature = "operator")))
}

/// Creates (or upgrades) a delivery log's tables, as the object starts.
#[wasm_bindgen(js_name = logOpen)]
pub fn log_open(env: &JsValue, sql: &SqlStorage, now: f64) -> Result<(), JsError> {
    let config = config(env);
    log::open(sql, &Context { settings: &config.delivery, now: now as i64, seed: 0, apps_known: true, listener: false }).map(drop).map_err(fail)
}

/// One step of a delivery log: what its app answered since the last step
/// (`reports`, as the entry reports it; "" for none), then the request
/// (`path`, `body`) or the alarm (`path` "alarm"). `apps_known`: whether the
/// entry could confirm its copy of the apps (the registry answered);
/// `listener`: whether a `drift-bridge listen` is connected to the log.
#[wasm_bindgen(js_name = logStep)]
#[allow(clippy::too_many_arguments)]
pub fn log_step(env: &JsValue, sql: &SqlStorage, reports: &JsValue, path: &JsValue, body: &JsValue, now: f64, seed: u32, apps_known: bool, listener: bool) -> Result<JsValue, JsError> {
    let path = text(path);
    #[cfg(not(feature = "log-admin"))]
    if log::Input::is_admin_path(&path) {
        return Ok(super::effects::elsewhere());
    }
    let inputs = match log::inputs(&text(reports), &path, &text(body)) {
        Ok(inputs) => inputs,
        Err(refused) => return answer(Ok(refused)),
    };
    #[cfg(not(feature = "log-admin"))]
    if inputs.iter().any(log::Input::is_admin) {
        return Ok(super::effects::elsewhere());
    }
    let config = config(env);
    let ctx = Context { settings: &config.delivery, now: now as i64, seed, apps_known, listener };
    answer(log::step(sql, &ctx, inputs))
}

#[cfg(feature = "operator")]
/// Creates an outbox's tables (an outbox of drift-bridge 0.3, drained: off
/// the webhook's path, so in the operator's module).
#[wasm_bindgen(js_name = outboxOpen)]
pub fn outbox_open(sql: &SqlStorage) -> Result<(), JsError> {
    outbox::open(sql).map_err(fail)
}

#[cfg(feature = "operator")]
/// One step of an outbox: `/accept`, `alarm`, `/called`, `/stats`.
#[wasm_bindgen(js_name = outboxStep)]
pub fn outbox_step(env: &JsValue, sql: &SqlStorage, path: &JsValue, body: &JsValue, now: f64) -> Result<JsValue, JsError> {
    let config = config(env);
    match outbox::Input::decode(&text(path), &text(body)) {
        Ok(input) => answer(outbox::step(sql, &config.delivery, now as i64, input)),
        Err(e) => answer(Ok(Effects::reply(Reply::status(404, e)))),
    }
}

#[cfg(feature = "operator")]
/// Creates the registry's tables, as the object starts.
#[wasm_bindgen(js_name = registryOpen)]
pub fn registry_open(sql: &SqlStorage) -> Result<(), JsError> {
    registry::open(sql).map_err(fail)
}

#[cfg(feature = "operator")]
/// One step of the registry (src/delivery/registry.rs): for the delivery
/// logs their registrations; for every isolate's copy of the apps `/routes`;
/// for the admin API the changes to the apps, their listing and history.
/// `entropy`: 32 random bytes, for a new signing secret and incarnation.
#[wasm_bindgen(js_name = registryStep)]
pub fn registry_step(env: &JsValue, sql: &SqlStorage, path: &JsValue, body: &JsValue, now: f64, entropy: &[u8]) -> Result<JsValue, JsError> {
    let mut bytes = [0u8; crate::delivery::apps::SECRET_BYTES];
    if entropy.len() != bytes.len() {
        return Err(JsError::new(&format!("registryStep: expected {} random bytes", bytes.len())));
    }
    bytes.copy_from_slice(entropy);
    let input = match registry::Input::decode(&text(path), &text(body)) {
        Ok(input) => input,
        Err((status, message)) => return answer(Ok(Effects::reply(Reply::status(status, message)))),
    };
    // Only the declared apps' names are taken: the registry knows its own.
    let base = super::env::declared(env, false);
    let secret = |name: &str| super::env::var(env, name);
    let reserved = base.delivery.reserved_secret_names();
    let ctx = registry::Admin {
        declared: &base.delivery.destinations,
        secret: &secret,
        parse_url: super::env::parse_url,
        reserved: &reserved,
        allow_loopback: base.local_development,
        now: now as i64,
        entropy: bytes,
        lease_ms: i64::from(base.apps_lease_ms),
    };
    answer(registry::step(sql, &ctx, input))
}
