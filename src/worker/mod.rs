//! The Cloudflare Worker (feature `worker`): Drift's webhook endpoint, the
//! stateless converter, a health check, the admin routes, the Durable
//! Objects and the queue consumer, as thin adapters over the core.
//!
//! Two ways in. The hot routes, `POST /webhooks/drift` and `POST /convert`,
//! are served by the entry module (src/worker/entry.mjs) with one call into
//! [`hot`] per request. Everything else comes through workers-rs: [`fetch`]
//! below for `/health`, `/admin/…`, wrong methods and unknown paths, the
//! queue consumer, and the Durable Objects. Everything here is plumbing; the
//! decisions live in the core modules, which know nothing of Workers.

mod admin;
mod bindings;
mod consumer;
mod destination;
mod hot;
mod http;
mod outbox;

use worker::{event, Context, Env, MessageBatch, Method, Request, Response, Result};

use crate::config::Config;
use http::{error_response, method_not_allowed};

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
    let mut config = Config::from_env_with(|name| var(env, name), parse_url);
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

#[wasm_bindgen::prelude::wasm_bindgen]
extern "C" {
    /// The runtime's WHATWG `URL`: the parser its `fetch` reads a URL with.
    #[wasm_bindgen(js_name = URL)]
    type JsUrl;
    #[wasm_bindgen(constructor, catch, js_class = "URL")]
    fn new(text: &str) -> std::result::Result<JsUrl, wasm_bindgen::JsValue>;
    #[wasm_bindgen(method, getter, js_class = "URL")]
    fn href(this: &JsUrl) -> String;
    #[wasm_bindgen(method, getter, js_class = "URL")]
    fn protocol(this: &JsUrl) -> String;
    #[wasm_bindgen(method, getter, js_class = "URL")]
    fn username(this: &JsUrl) -> String;
    #[wasm_bindgen(method, getter, js_class = "URL")]
    fn password(this: &JsUrl) -> String;
    #[wasm_bindgen(method, getter, js_class = "URL")]
    fn hostname(this: &JsUrl) -> String;
}

/// [`crate::delivery::destination::UrlParser`] over the runtime's own `URL`.
fn parse_url(text: &str) -> std::result::Result<crate::delivery::destination::ParsedUrl, String> {
    let url = JsUrl::new(text).map_err(|e| {
        js_sys::Error::from(e).message().as_string().unwrap_or_else(|| "invalid URL".into())
    })?;
    let scheme = url.protocol();
    Ok(crate::delivery::destination::ParsedUrl {
        scheme: scheme.strip_suffix(':').unwrap_or(&scheme).to_string(),
        credentials: !url.username().is_empty() || !url.password().is_empty(),
        hostname: url.hostname(),
        href: url.href(),
    })
}

fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}
