//! The Cloudflare Worker (feature `worker`): Drift's webhook endpoint, the
//! stateless converter, a health check, the admin routes, the outbox Durable
//! Object and the queue consumer, as thin adapters over the core.
//!
//! Two ways in. The hot routes, `POST /webhooks/drift` and `POST /convert`,
//! are served by the entry module (src/worker/entry.mjs) with one call into
//! [`hot`] per request. Everything else comes through workers-rs: [`fetch`]
//! below for `/health`, `/admin/…`, wrong methods and unknown paths, the
//! queue consumer, and the outbox. Everything here is plumbing; the decisions
//! live in the core modules, which know nothing of Workers.

mod admin;
mod delivery;
mod hot;
mod http;
mod outbox;

use worker::{event, Context, Env, MessageBatch, Method, Request, Response, Result};

use crate::config::Config;
use crate::json;
use http::{error_response, json_response, method_not_allowed};

/// Set to "1" only in tests: enables `POST /__test/panic`.
const TEST_ROUTES: &str = "DRIFT_BRIDGE_TEST_ROUTES";

/// Every request the entry module does not serve itself.
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
            Method::Get | Method::Head => health(&env),
            _ => method_not_allowed("GET, HEAD"),
        },
        "/__test/panic" if var(&env, TEST_ROUTES).as_deref() == Some("1") => {
            panic!("deliberate panic from /__test/panic")
        }
        p if p == "/admin/deliveries" || p.starts_with("/admin/deliveries/") => {
            admin::route(&req, &env, &config(&env), p).await
        }
        _ => error_response(
            404,
            "not_found",
            &format!("no route for {} {path}; the routes are POST /webhooks/drift, POST /convert and GET /health", method),
            "",
        ),
    }
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.secret(name).ok().map(|s| s.to_string()).or_else(|| env.var(name).ok().map(|v| v.to_string()))
}

thread_local! {
    /// The configuration, read once per isolate: vars and secrets do not
    /// change while an isolate lives (a deploy or `wrangler secret put` starts
    /// new ones), and reading a dozen bindings and parsing DESTINATIONS on
    /// every request would cost more than the translation itself.
    static CONFIG: std::cell::OnceCell<std::rc::Rc<Config>> = const { std::cell::OnceCell::new() };
}

fn config(env: &Env) -> std::rc::Rc<Config> {
    CONFIG.with(|cell| cell.get_or_init(|| std::rc::Rc::new(read_config(env))).clone())
}

fn read_config(env: &Env) -> Config {
    let mut config = Config::from_env(|name| var(env, name));
    if !config.destinations.list.is_empty() {
        for (binding, kind, ok) in [
            (delivery::QUEUE_BINDING, "queue producer", env.queue(delivery::QUEUE_BINDING).is_ok()),
            (delivery::OUTBOX_BINDING, "Durable Object", env.durable_object(delivery::OUTBOX_BINDING).is_ok()),
        ] {
            if !ok {
                config.problems.push(crate::config::Problem {
                    field: binding.into(),
                    message: format!("DESTINATIONS is set but the {kind} binding {binding} is missing (see wrangler.toml)"),
                });
            }
        }
    }
    config
}

#[event(queue)]
async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
    delivery::consume(batch, env).await
}

fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// `GET /health`.
fn health(env: &Env) -> Result<Response> {
    let config = config(env);
    let mut out = String::with_capacity(256);
    out.push_str("{\"status\":");
    out.push_str(if config.is_complete() { "\"ok\"" } else { "\"misconfigured\"" });
    out.push_str(",\"version\":");
    json::write_str_escaped(&mut out, crate::VERSION);
    out.push_str(&format!(
        ",\"configured\":{},\"legacyPolicy\":\"{}\",\"maxBodyBytes\":{},\"verificationTokens\":{},\"problems\":[",
        config.is_complete(),
        config.legacy,
        config.max_body_bytes,
        config.tokens.as_ref().map_or(0, |t| t.len()),
    ));
    for (i, p) in config.problems.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_str_escaped(&mut out, &p.to_string());
    }
    out.push_str("]}");
    json_response(200, &out)
}
