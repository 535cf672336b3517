//! The Cloudflare Worker: Drift's webhook endpoint, the stateless converter,
//! the Durable Objects and the queue consumer, a health check and the admin
//! routes, as thin adapters over the core.
//!
//! Two wasm modules from this one crate, built by scripts/build.sh, behind
//! one entry module (src/worker/entry.mjs) that owns every await:
//! - feature `bridge`, started by every isolate and kept small: Drift's
//!   webhook and `/convert` ([`webhook`], one call per request), and the
//!   Durable Objects ([`delivery`]): every step of the outbox, the delivery
//!   log and the registry, one synchronous call over the object's SQL
//!   storage ([`storage`]). No workers-rs.
//! - feature `operator`: what runs off the webhook's path. The operator's
//!   surface through workers-rs: [`fetch`] below for `/health`, `/admin/…`
//!   ([`admin`]), wrong methods and unknown paths, and the delivery log's
//!   side of the admin API (its steps run in the log's object like every
//!   other); and the queue consumer's decisions ([`consumer`]). The entry
//!   starts it on its first use; it keeps no state.
//!
//! Both read the configuration the same way ([`env`]) and write the same
//! answers ([`http`]). The decisions live in the core, which knows nothing
//! of Workers.

// Both modules: the configuration from `env`, and answers as bytes.
mod answer;
mod env;
mod http;

// Both run steps of the Durable Objects: their SQL storage, and a step's
// effects for the entry.
mod effects;
mod storage;

// The bridge's module (feature `bridge`): no workers-rs.
#[cfg(feature = "bridge")]
mod delivery;
#[cfg(feature = "bridge")]
mod webhook;

// The operator's module (feature `operator`).
#[cfg(feature = "operator")]
mod admin;
#[cfg(feature = "operator")]
mod consumer;
#[cfg(feature = "operator")]
mod convert;

#[cfg(feature = "operator")]
use worker::{event, Context, Env, Method, Request, Response, Result};

#[cfg(feature = "operator")]
use http::{error_response, method_not_allowed};

/// Set to "1" only in tests: enables the `/__test/…` routes.
#[cfg(feature = "operator")]
const TEST_ROUTES: &str = "DRIFT_BRIDGE_TEST_ROUTES";

/// Every request the entry module does not serve itself.
#[cfg(feature = "operator")]
#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let method = req.method();
    let config = env::config(&env, false);
    match path.as_str() {
        // The entry serves POST on both; any other method lands here.
        "/webhooks/drift" | "/convert" => match method {
            Method::Post => error_response(500, "internal", &format!("POST {path} is served by the entry module"), ""),
            _ => method_not_allowed("POST"),
        },
        "/health" => match method {
            Method::Get | Method::Head => admin::health(&req, &config),
            _ => method_not_allowed("GET, HEAD"),
        },
        p if p.starts_with("/__test/") && env::switch(&env, TEST_ROUTES) => admin::test_route(&req, &env, p).await,
        p if p == "/admin" || p.starts_with("/admin/") => admin::route(&req, &env, &config, p).await,
        _ => error_response(
            404,
            "not_found",
            &format!("no route for {} {path}; the routes are POST /webhooks/drift, POST /convert and GET /health", method),
            "",
        ),
    }
}
