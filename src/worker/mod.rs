//! The Cloudflare Worker (feature `worker`): Drift's webhook endpoint, the
//! stateless converter and a health check, as a thin adapter over the core.
//!
//! request → route → read body (bounded) → verify → parse → translate →
//! hand off → answer. Everything here is plumbing; the decisions live in the
//! core modules, which know nothing of Workers.

mod admin;
mod bindings;
mod consumer;
mod destination;
mod http;
mod outbox;

use worker::{event, Context, Env, MessageBatch, Method, Request, Response, Result};

use crate::config::Config;
use crate::json;
use crate::rules::{translate_value, Options, Outbound};
use crate::{translate_batch, LegacyPolicy};
use http::{error_response, json_response, method_not_allowed, read_body, Refusal};

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    let method = req.method();
    match path.as_str() {
        "/webhooks/drift" => match method {
            Method::Post => webhook(&mut req, &env).await,
            _ => method_not_allowed("POST"),
        },
        "/convert" => match method {
            Method::Post => convert(&mut req, &env).await,
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
            (bindings::QUEUE, "queue producer", env.queue(bindings::QUEUE).is_ok()),
            (bindings::OUTBOX, "Durable Object", env.durable_object(bindings::OUTBOX).is_ok()),
            (bindings::DESTINATION, "Durable Object", env.durable_object(bindings::DESTINATION).is_ok()),
        ] {
            if !ok {
                config.problems.push(crate::config::Problem::blocking(
                    binding,
                    format!("DESTINATIONS is set but the {kind} binding {binding} is missing (see wrangler.toml)"),
                ));
            }
        }
    }
    // Once per isolate, for `wrangler tail`: names only, never a value.
    for p in &config.problems {
        worker::console_error!("configuration problem: {p}");
    }
    config
}

#[event(queue)]
async fn queue(batch: MessageBatch<String>, env: Env, _ctx: Context) -> Result<()> {
    consumer::consume(batch, env).await
}

fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// `POST /webhooks/drift`, with its log line.
async fn webhook(req: &mut Request, env: &Env) -> Result<Response> {
    let (response, line) = webhook_answer(req, env).await?;
    worker::console_log!("{line}");
    Ok(response)
}

async fn webhook_answer(req: &mut Request, env: &Env) -> Result<(Response, String)> {
    let refused = |response: Result<Response>, status: u16, code: &str| -> Result<(Response, String)> {
        Ok((response?, crate::log::webhook(status, Some(code), &[], 0)))
    };
    let config = config(env);
    let Some(tokens) = config.tokens.as_ref().filter(|_| config.is_complete()) else {
        return refused(http::not_configured(), 503, "not_configured");
    };
    let body = match read_body(req, config.max_body_bytes).await? {
        Ok(body) => body,
        Err(refusal) => return refused(refusal.response(), 413, "too_large"),
    };
    let header_ok = req
        .headers()
        .get("X-Verification-Token")?
        .is_some_and(|candidate| tokens.accepts(candidate.trim()));
    let limits = config.limits();
    let value = match json::parse_bytes(&body, &limits) {
        Ok(value) => value,
        // Only an authenticated caller learns what is wrong with its body.
        Err(e) if header_ok => return refused(http::core_error(&e), 400, e.code().as_str()),
        Err(_) => return refused(http::unauthorized(), 401, "unauthorized"),
    };
    let body_ok = || value.get("token").and_then(json::Value::as_str).is_some_and(|t| tokens.accepts(&t.text()));
    if !header_ok && !body_ok() {
        return refused(http::unauthorized(), 401, "unauthorized");
    }
    let now = now_ms();
    let options = Options { legacy: config.legacy, received_at_ms: now, limits };
    let events = match translate_value(&value, &options) {
        Ok(events) => events,
        Err(e) => return refused(http::core_error(&e), 400, e.code().as_str()),
    };
    // Nothing is answered 200 before every delivery is durable in the outbox.
    let Some(plan) = crate::delivery::handoff::plan(&events, &config.destinations, now) else {
        return Ok((json_response(200, &received_body(&events))?, crate::log::webhook(200, None, &events, 0)));
    };
    let deliveries = plan.deliveries;
    match bindings::call(env, bindings::Instance::Outbox(&plan.scope), "/accept", plan.payload).await {
        Ok(_) => Ok((json_response(200, &received_body(&events))?, crate::log::webhook(200, None, &events, deliveries))),
        Err(e) => {
            worker::console_error!("hand-off to the outbox {} failed: {e}", plan.scope);
            Ok((http::unavailable()?, crate::log::webhook(503, Some("unavailable"), &events, 0)))
        }
    }
}

/// `{"received":"<inbound id>","events":[{"id":…,"type":…},…]}`
fn received_body(events: &[Outbound]) -> String {
    let mut out = String::with_capacity(64 + events.len() * 64);
    out.push_str("{\"received\":\"");
    if let Some(first) = events.first() {
        first.id.write_hex(&mut out);
    }
    out.push_str("\",\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"id\":\"");
        e.id.write_hex(&mut out);
        out.push_str("\",\"type\":");
        json::write_str_escaped(&mut out, &e.event_type);
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// `POST /convert?legacy=…&now=…`.
async fn convert(req: &mut Request, env: &Env) -> Result<Response> {
    let config = config(env);
    let mut legacy = config.legacy;
    let mut now = now_ms();
    for (key, value) in http::query(req) {
        match key.as_str() {
            "legacy" => match value.parse::<LegacyPolicy>() {
                Ok(p) => legacy = p,
                Err(e) => return error_response(400, "invalid_parameter", &e.to_string(), "legacy"),
            },
            "now" => match value.parse::<i64>() {
                Ok(n) => now = n,
                Err(_) => {
                    return error_response(
                        400,
                        "invalid_parameter",
                        &format!("expected milliseconds since the epoch, found {value:?}"),
                        "now",
                    )
                }
            },
            _ => {}
        }
    }
    let body = match read_body(req, config.max_body_bytes).await? {
        Ok(body) => body,
        Err(refusal) => return refusal.response(),
    };
    let limits = config.limits();
    let text = match json::utf8(&body, &limits) {
        Ok(text) => text,
        Err(e) => return http::core_error(&e),
    };
    let options = Options { legacy, received_at_ms: now, limits };
    match translate_batch(text, &options, &limits) {
        crate::Batch::One(Err(e)) => http::core_error(&e),
        batch => json_response(200, &batch.to_json()),
    }
}

impl Refusal {
    fn response(self) -> Result<Response> {
        match self {
            Refusal::TooLarge { limit } => error_response(
                413,
                "too_large",
                &format!("the request body is larger than the limit of {limit} bytes (MAX_BODY_BYTES)"),
                "",
            ),
        }
    }
}
