//! The Cloudflare Worker (feature `worker`): Drift's webhook endpoint, the
//! stateless converter and a health check, as a thin adapter over the core.
//!
//! request → route → read body (bounded) → verify → parse → translate →
//! hand off → answer. Everything here is plumbing; the decisions live in the
//! core modules, which know nothing of Workers.

mod admin;
mod delivery;
mod http;
mod outbox;

use worker::{event, Context, Env, MessageBatch, Method, Request, Response, Result};

use crate::config::Config;
use crate::json;
use crate::rules::{translate_value, Options, Outbound};
use crate::{translate_batch, LegacyPolicy};
use http::{error_response, json_response, method_not_allowed, read_body, Refusal};

/// Set to "1" only in tests: enables `POST /__test/panic`.
const TEST_ROUTES: &str = "DRIFT_BRIDGE_TEST_ROUTES";

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

/// `POST /webhooks/drift`.
async fn webhook(req: &mut Request, env: &Env) -> Result<Response> {
    let config = config(env);
    let Some(tokens) = config.tokens.as_ref().filter(|_| config.is_complete()) else {
        let problems: Vec<String> = config.problems.iter().map(ToString::to_string).collect();
        return error_response(
            503,
            "not_configured",
            &format!("the worker is not fully configured, so it accepts no events: {}", problems.join("; ")),
            "",
        );
    };
    let body = match read_body(req, config.max_body_bytes).await? {
        Ok(body) => body,
        Err(refusal) => return refusal.response(),
    };
    let header_ok = req
        .headers()
        .get("X-Verification-Token")?
        .is_some_and(|candidate| tokens.accepts(candidate.trim()));
    let limits = config.limits();
    let value = match json::parse_bytes(&body, &limits) {
        Ok(value) => value,
        // Only an authenticated caller learns what is wrong with its body.
        Err(e) if header_ok => return http::core_error(&e),
        Err(_) => return http::unauthorized(),
    };
    let body_ok = || value.get("token").and_then(json::Value::as_str).is_some_and(|t| tokens.accepts(&t.text()));
    if !header_ok && !body_ok() {
        return http::unauthorized();
    }
    let now = now_ms();
    let options = Options { legacy: config.legacy, received_at_ms: now, limits };
    let events = match translate_value(&value, &options) {
        Ok(events) => events,
        Err(e) => return http::core_error(&e),
    };
    // Nothing is answered 200 before every delivery is safely on the queue.
    match delivery::hand_off(env, &config, &events, now).await {
        Ok(_) => json_response(200, &received_body(&events)),
        Err(delivery::HandOffError::Busy) => error_response(
            503,
            "busy",
            "the same webhook is being handed off by another request; try again shortly",
            "",
        ),
        Err(delivery::HandOffError::Failed(reason)) => {
            worker::console_error!("hand-off failed: {reason}");
            error_response(503, "unavailable", "the events could not be queued for delivery; try again", "")
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
