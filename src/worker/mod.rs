//! The Cloudflare Worker: Drift's webhook endpoint, the stateless converter,
//! a health check, the admin routes, the Durable Objects and the queue
//! consumer, as thin adapters over the core.
//!
//! Two wasm modules from this one crate, built by scripts/build.sh:
//! - feature `hot`: the hot routes, `POST /webhooks/drift` and
//!   `POST /convert`, which the entry module (src/worker/entry.mjs) serves
//!   with one call into [`hot`] per request, and the hand-off: the outbox
//!   ([`outbox`]) and the delivery log's `/add` ([`intake`]), one call per
//!   step over the object's SQL storage ([`store`]). No workers-rs: every
//!   isolate starts this module, so it is kept small.
//! - feature `worker`: everything else, through workers-rs: [`fetch`] below
//!   for `/health`, `/admin/…`, wrong methods and unknown paths, the queue
//!   consumer, and the delivery log's other operations (`destination`). The
//!   entry module starts it on its first use.
//!
//! Both read the configuration the same way ([`env`]) and write the same
//! answers ([`http`]). Everything here is plumbing; the decisions live in
//! the core modules, which know nothing of Workers.

// Both modules: the configuration from `env`, and answers as bytes.
mod env;
mod http;

// The hot path's module (feature `hot`): no workers-rs.
#[cfg(feature = "hot")]
mod hot;
#[cfg(feature = "hot")]
mod intake;
#[cfg(feature = "hot")]
mod outbox;
#[cfg(feature = "hot")]
mod schema;
#[cfg(feature = "hot")]
mod store;

// The workers-rs module (feature `worker`).
#[cfg(feature = "worker")]
mod admin;
#[cfg(feature = "worker")]
mod bindings;
#[cfg(feature = "worker")]
mod consumer;
#[cfg(feature = "worker")]
mod destination;

#[cfg(feature = "worker")]
use worker::{event, Context, Env, MessageBatch, Method, Request, Response, Result};

#[cfg(feature = "worker")]
use crate::config::Config;
#[cfg(feature = "worker")]
use http::{error_response, method_not_allowed};

/// Every request the entry module does not serve itself.
#[cfg(feature = "worker")]
#[event(fetch)]
async fn fetch(req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let method = req.method();
    match path.as_str() {
        // The entry serves POST on both; any other method lands here.
        "/webhooks/drift" | "/convert" => match method {
            Method::Post => error_response(500, "internal", &format!("POST {path} is served by the entry module"), ""),
            _ => method_not_allowed("POST"),
        },
        "/health" => match method {
            Method::Get | Method::Head => admin::health(&req, &config(&env)),
            _ => method_not_allowed("GET, HEAD"),
        },
        p if p.starts_with("/__test/") && bindings::switch(&env, bindings::TEST_ROUTES) => admin::test_route(&req, &env, p).await,
        p if p == "/admin" || p.starts_with("/admin/") => admin::route(&req, &env, &config(&env), p).await,
        _ => error_response(
            404,
            "not_found",
            &format!("no route for {} {path}; the routes are POST /webhooks/drift, POST /convert and GET /health", method),
            "",
        ),
    }
}

/// The configuration (see [`env::config`]); problems are logged by the hot
/// path's module.
#[cfg(feature = "worker")]
fn config(env: &Env) -> std::rc::Rc<Config> {
    env::config(env, false)
}

#[cfg(feature = "worker")]
#[event(queue)]
async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
    consumer::consume(batch, env).await
}

#[cfg(feature = "worker")]
fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}
