//! The Cloudflare Worker: Drift's webhook endpoint, the stateless converter,
//! the Durable Objects, a health check and the admin routes, as thin
//! adapters over the core.
//!
//! Two wasm modules from this one crate, built by scripts/build.sh, behind
//! one entry module (src/worker/entry.mjs) that owns every await:
//! - feature `bridge`, started by every isolate and kept small: Drift's
//!   webhook ([`webhook`], one call per request), and every step of the
//!   delivery logs ([`delivery`]), one synchronous call each over the
//!   object's SQL storage ([`storage`]), but their admin operations. No
//!   workers-rs.
//! - feature `operator`: what runs off the webhook's path. `/health`,
//!   `/openapi.json`, `/admin/…` ([`admin`]), wrong methods and unknown
//!   paths through workers-rs ([`fetch`] below); `/convert`; the registry's
//!   steps, an old outbox's drain and the delivery logs' admin operations.
//!   The entry starts it on its first use; it keeps no state.
//!
//! Both read the configuration the same way ([`env`]) and write the same
//! answers ([`http`]). The decisions live in the core, which knows nothing
//! of Workers.

// Both modules: the configuration from `env`, and answers as bytes.
mod answer;
mod env;
mod http;

// Both run steps of the Durable Objects: their SQL storage, a step's
// actions for the entry, and the steps (the delivery logs' in the bridge's
// module, the registry's and the old outboxes' in the operator's).
mod delivery;
mod effects;
mod storage;

// The bridge's module (feature `bridge`): no workers-rs.
#[cfg(feature = "bridge")]
mod webhook;

// The operator's module (feature `operator`).
#[cfg(feature = "operator")]
mod admin;
#[cfg(feature = "operator")]
mod convert;

#[cfg(feature = "operator")]
use worker::{event, Context, Env, Request, Response, Result};

#[cfg(feature = "operator")]
use http::{error_response, method_not_allowed};


/// Every request the entry module does not serve itself: the route from
/// the one table ([`crate::api::route`]), then its handler.
#[cfg(feature = "operator")]
#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    use crate::api::{route, Route, RouteError};
    let path = req.path();
    let config = env::config(&env, false);
    match route(req.method().as_ref(), &path) {
        // The entry serves POST on both.
        Ok(Route::Webhook | Route::Convert) => error_response(500, "internal", &format!("POST {path} is served by the entry module"), ""),
        Ok(Route::Health) => admin::health(&req, &config),
        Ok(Route::OpenApi) => openapi(),
        Ok(route) => admin::serve(&req, &env, &config, route).await,
        Err(RouteError::MethodNotAllowed(allow)) => method_not_allowed(&allow),
        Err(RouteError::NotFound(message)) => error_response(404, "not_found", &message, ""),
    }
}

/// `GET /openapi.json`: the bridge's HTTP surface, made from the route table
/// (src/openapi.rs) once per isolate.
#[cfg(feature = "operator")]
fn openapi() -> Result<Response> {
    thread_local! {
        static DOCUMENT: std::cell::OnceCell<String> = const { std::cell::OnceCell::new() };
    }
    let document = DOCUMENT.with(|d| d.get_or_init(|| crate::openapi::document(crate::VERSION)).clone());
    let mut response = http::json_response(200, &document)?;
    response.headers_mut().set("access-control-allow-origin", "*")?;
    Ok(response)
}

/// Panics, for the tests of the recovery: only the test entry
/// (tests/delivery/entry-with-faults.mjs) calls it.
#[cfg(feature = "operator")]
#[wasm_bindgen::prelude::wasm_bindgen(js_name = testPanic)]
pub fn test_panic() {
    panic!("deliberate panic from /__test/panic");
}
