//! The operator's side: `/health`, and the admin API, which is off unless
//! `ADMIN_TOKEN` is set (to at least 32 characters); every admin call needs
//! `Authorization: Bearer <ADMIN_TOKEN>`.
//!
//! - `GET /admin/deliveries?destination=…&status=…&conversation=…&event=…&since=…&until=…&limit=…&cursor=…`:
//!   the delivery logs, merged, newest first, a page at a time.
//! - `GET /admin/deliveries/{id}`: one delivery, its body (Drift's token
//!   redacted) and its attempts.
//! - `POST /admin/deliveries/{id}/replay`: a failed or gone delivery, once more.
//! - `GET /admin/destinations`: each destination's state and health, those
//!   removed from the configuration whose deliveries are still kept too;
//!   `GET /admin/destinations/{name}`, one of them.
//! - `POST /admin/destinations/{name}/pause`, `…/resume`, `…/recover`, and
//!   `…/test` (a test delivery, sent at once).
//! - Apps managed at runtime (by the registry: [`crate::delivery::registry`]):
//!   `POST /admin/destinations`, `PATCH` and `DELETE /admin/destinations/{name}`,
//!   `POST /admin/destinations/{name}/rotate-secret`, and `GET /admin/changes`,
//!   their history.
//!
//! Every call to a delivery log is one of the typed messages of
//! [`crate::delivery::message`], read by the log's state machine. Nothing
//! here ever shows a secret: Drift's token is redacted from every body, and
//! configuration problems name secrets, never their values.

use worker::{Env, Method, Request, RequestInit, Response, Result};

use super::http::{error_response, json_response, method_not_allowed};
use crate::config::Config;
use crate::delivery::effects::Object;
use crate::delivery::log::TestDelivery;
use crate::delivery::message::{ById, ListQuery, Logs, Named, Recover};
use crate::delivery::registry::Change;
use crate::delivery::status::ApiStatus;
use crate::delivery::{handoff, redact};
use crate::json::{self, Limits, Value};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// The admin token from `Authorization: Bearer …` (any letter case of the
/// scheme), checked in constant time: the token, when it is accepted.
fn admin_token(req: &Request, config: &Config) -> Option<String> {
    let tokens = config.admin.as_ref()?;
    let header = req.headers().get("authorization").ok().flatten().unwrap_or_default();
    let header = header.trim();
    match header.split_once(char::is_whitespace) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && tokens.accepts(token.trim()) => Some(token.trim().to_owned()),
        _ => None,
    }
}

fn authorized(req: &Request, config: &Config) -> bool {
    admin_token(req, config).is_some()
}

/// POSTs `body` to operation `op` of an object; answers the status and the
/// reply's text.
async fn call(env: &Env, to: Object, op: &str, body: String) -> Result<(u16, String)> {
    let namespace = match &to {
        Object::DeliveryLog(_) => super::env::DELIVERY_LOG,
        Object::Registry => super::env::REGISTRY,
        Object::Outbox(_) => super::env::OUTBOX,
    };
    let stub = env.durable_object(namespace)?.id_from_name(&to.instance_name())?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let mut response = stub.fetch_with_request(Request::new_with_init(&format!("https://do{op}"), &init)?).await?;
    let text = response.text().await?;
    Ok((response.status_code(), text))
}

/// A change to the apps, passed to the registry: its answer, and whether it
/// is a replay of an earlier answer (an Idempotency-Key seen before). A
/// registry that cannot be reached answers 503, so that the caller knows
/// to try again (with the same key).
async fn call_registry(env: &Env, op: &str, body: String) -> Result<Response> {
    let stub = env.durable_object(super::env::REGISTRY)?.id_from_name(&Object::Registry.instance_name())?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let sent = async { stub.fetch_with_request(Request::new_with_init(&format!("https://do{op}"), &init)?).await };
    let mut response = match sent.await {
        Ok(r) => r,
        Err(e) => return registry_unavailable(&e.to_string()),
    };
    let replayed = response.headers().get("idempotent-replayed").ok().flatten();
    let status = response.status_code();
    let text = response.text().await?;
    if !text.trim_start().starts_with('{') {
        return registry_unavailable(&format!("it answered {status}: {}", text.chars().take(200).collect::<String>()));
    }
    let mut answer = json_response(status, &text)?;
    if let Some(value) = replayed {
        answer.headers_mut().set("idempotent-replayed", &value)?;
    }
    Ok(answer)
}

fn registry_unavailable(why: &str) -> Result<Response> {
    worker::console_error!("admin: the registry could not be reached: {why}");
    error_response(
        503,
        "registry_unavailable",
        "the registry of apps could not be reached; nothing was changed that this answer confirms: try again (with the same Idempotency-Key)",
        "",
    )
}

/// Like [`call`], but anything but 200 is an error with the reply's text.
async fn call_ok(env: &Env, to: Object, op: &str, body: String) -> Result<String> {
    match call(env, to, op, body).await? {
        (200, text) => Ok(text),
        (status, text) => Err(worker::Error::RustError(format!("{op} answered {status}: {text}"))),
    }
}

fn log(key: &str) -> Object {
    Object::DeliveryLog(key.to_owned())
}

/// The delivery log the admin API means by `name`: that of the app (or
/// alert target) of that name now, else `name` itself (a log's key, as the
/// listings show for a removed app).
fn key_of(config: &Config, name: &str) -> String {
    config.delivery.named(name).map_or_else(|| name.to_owned(), |d| d.log_key())
}

/// The log a `destination` parameter means among the logs `keys`: that key
/// itself, else the app of that name now, else a removed app's of that
/// name (the last listed).
fn resolve_key(config: &Config, keys: &[String], given: &str) -> Option<String> {
    if keys.iter().any(|k| k == given) {
        return Some(given.to_owned());
    }
    let current = key_of(config, given);
    if keys.contains(&current) {
        return Some(current);
    }
    keys.iter().rev().find(|k| crate::delivery::destination::name_of_key(k) == given).cloned()
}

/// The delivery logs whose deliveries the admin API shows, by key: the
/// configured apps', then those of apps removed (deleted, or no longer
/// declared) whose logs still hold deliveries (the registry knows them).
async fn known(env: &Env, config: &Config) -> Result<Vec<(String, bool)>> {
    let mut names: Vec<(String, bool)> = config.delivery.destinations.list.iter().map(|d| (d.log_key(), true)).collect();
    if env.durable_object(super::env::REGISTRY).is_err() {
        // A bridge that never delivers may leave the Durable Objects out.
        return Ok(names);
    }
    let logs = match call_ok(env, Object::Registry, "/logs", String::new()).await.map(|l| Logs::decode(&l)) {
        Ok(Ok(logs)) => logs,
        Ok(Err(e)) => return Err(worker::Error::RustError(e.to_string())),
        Err(e) => {
            worker::console_error!("admin: the registry could not be asked for removed destinations: {e}");
            return Ok(names);
        }
    };
    for key in logs.destinations {
        if config.delivery.destination(&key).is_none() {
            names.push((key, false));
        }
    }
    Ok(names)
}

/// `GET /health`: whether the bridge is configured and how many problems it
/// has; with the admin token, also what they are and how it is set up.
pub fn health(req: &Request, config: &Config) -> Result<Response> {
    // Served whether or not the registry answered: it says which.
    let registry = super::env::registry_problem();
    let with_registry;
    let config = match &registry {
        Some(why) => {
            let mut c = config.clone();
            c.problems.push(crate::problem::Problem::notice(
                super::env::REGISTRY,
                format!("could not be reached ({why}): the declared apps are delivered; webhooks for apps managed at runtime are answered 503 until it answers"),
            ));
            with_registry = c;
            &with_registry
        }
        None => config,
    };
    let mut out = String::with_capacity(256);
    out.push('{');
    config.write_summary(&mut out);
    if registry.is_some() {
        out.push_str(",\"registry\":\"unreachable\"");
    }
    if authorized(req, config) {
        out.push_str(&format!(
            ",\"details\":{{\"legacyPolicy\":\"{}\",\"maxBodyBytes\":{},\"verificationTokens\":{},\"problems\":",
            config.legacy,
            config.max_body_bytes,
            config.tokens.as_ref().map_or(0, |t| t.len()),
        ));
        let problems: Vec<String> = config.problems.iter().map(ToString::to_string).collect();
        out.push_str(&json::string_array(&problems));
        out.push_str(",\"destinations\":[");
        for (i, d) in config.delivery.destinations.list.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&destination_json(d));
        }
        out.push_str("]}");
    }
    out.push('}');
    json_response(200, &out)
}

/// `{"name","url","types","token","signed","orgIds"?,"ratePerSecond"?,"source"}`
/// of a configured destination.
fn destination_json(d: &crate::delivery::Destination) -> String {
    let mut w = json::Writer::object();
    w.str("name", &d.name).str("url", &d.url).raw("types", &json::string_array(&d.types)).str("token", d.token.as_str()).bool("signed", d.signed());
    if !d.org_ids.is_empty() {
        w.raw("orgIds", &format!("[{}]", d.org_ids.join(",")));
    }
    w.opt_int("ratePerSecond", d.rate_per_second.map(i64::from)).str("source", d.source.as_str());
    w.finish()
}

/// `/admin/…`.
pub async fn route(req: &Request, env: &Env, config: &Config, path: &str) -> Result<Response> {
    if config.admin.is_none() {
        return error_response(404, "not_found", "the admin routes are off; set ADMIN_TOKEN (32 characters or more) to turn them on", "");
    }
    let Some(token) = admin_token(req, config) else {
        return error_response(401, "unauthorized", "missing or invalid admin token (Authorization: Bearer <ADMIN_TOKEN>)", "");
    };
    let method = req.method();
    if let Some(rest) = path.strip_prefix("/admin/destinations") {
        return destinations(req, env, config, &token, rest).await;
    }
    if path == "/admin/metrics" {
        return match method {
            Method::Get => metrics(req, env, config).await,
            _ => method_not_allowed("GET"),
        };
    }
    if path == "/admin/changes" {
        return match method {
            Method::Get => changes(req, env).await,
            _ => method_not_allowed("GET"),
        };
    }
    let rest = path.trim_start_matches("/admin/deliveries");
    if rest.len() == path.len() {
        return error_response(
            404,
            "not_found",
            &format!(
                "no admin route {path}; the routes are /admin/deliveries[/{{id}}[/replay]], /admin/destinations[/{{name}}[/pause|resume|recover|rotate-secret|test]] and /admin/changes"
            ),
            "",
        );
    }
    if rest.is_empty() || rest == "/" {
        return match method {
            Method::Get => list(req, env, config).await,
            _ => method_not_allowed("GET"),
        };
    }
    let rest = rest.trim_start_matches('/');
    if let Some(id) = rest.strip_suffix("/replay") {
        return match method {
            Method::Post => replay(env, config, id).await,
            _ => method_not_allowed("POST"),
        };
    }
    match method {
        Method::Get => one(env, config, rest).await,
        _ => method_not_allowed("GET"),
    }
}

/// The registry's answer to a question, passed on as it is (it is the admin
/// API's own answer, errors included).
async fn registry(env: &Env, op: &str, body: String) -> Result<Response> {
    if env.durable_object(super::env::REGISTRY).is_err() {
        return error_response(503, "not_configured", "apps can be managed at runtime only with the REGISTRY binding (see wrangler.toml)", "");
    }
    call_registry(env, op, body).await
}

/// A change to an app, as the registry takes it.
async fn change(req: &Request, env: &Env, token: &str, op: &str, name: &str) -> Result<Response> {
    // Not read at all when it says it is larger than any change.
    let length = req.headers().get("content-length").ok().flatten().and_then(|l| l.trim().parse::<usize>().ok());
    if length.is_some_and(|l| l > crate::delivery::registry::MAX_BODY_BYTES) {
        return error_response(413, "too_large", &format!("the body is over {} bytes", crate::delivery::registry::MAX_BODY_BYTES), "");
    }
    let body = req.clone()?.text().await?;
    let key = req.headers().get("idempotency-key").ok().flatten().map(|k| k.trim().to_owned());
    if let Some(k) = &key {
        if !crate::delivery::registry::valid_idempotency_key(k) {
            return error_response(400, "invalid_parameter", "the Idempotency-Key header is 1 to 64 letters, digits, '-' or '_'", "");
        }
    }
    let change = Change { by: crate::delivery::apps::fingerprint(token), name: name.to_owned(), body, key };
    if env.durable_object(super::env::REGISTRY).is_err() {
        return error_response(503, "not_configured", "apps can be managed at runtime only with the REGISTRY binding (see wrangler.toml)", "");
    }
    call_registry(env, op, change.encode()).await
}

/// `GET /admin/changes?limit=&before=`: the history of changes to the apps.
async fn changes(req: &Request, env: &Env) -> Result<Response> {
    let mut w = json::Writer::object();
    for (key, value) in super::http::query(req) {
        match key.as_str() {
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => {
                    w.int("limit", i64::from(n));
                }
                _ => return error_response(400, "invalid_parameter", &format!("expected a number from 1 to {MAX_LIMIT}"), "limit"),
            },
            "before" => match value.parse::<i64>() {
                Ok(n) => {
                    w.int("before", n);
                }
                Err(_) => return error_response(400, "invalid_parameter", "expected a change's seq, as a previous page's next", "before"),
            },
            _ => {}
        }
    }
    registry(env, "/changes", w.finish()).await
}

/// `/admin/destinations[/{name}[/{action}]]`.
async fn destinations(req: &Request, env: &Env, config: &Config, token: &str, rest: &str) -> Result<Response> {
    let method = req.method();
    if rest.is_empty() || rest == "/" {
        return match method {
            Method::Get => destination_list(env, config).await,
            Method::Post => change(req, env, token, "/create", "").await,
            _ => method_not_allowed("GET, POST"),
        };
    }
    let usage = "admin destination routes: GET|POST /admin/destinations, GET|PATCH|DELETE /admin/destinations/{name}, \
                 POST /admin/destinations/{name}/pause|resume|recover|rotate-secret|test";
    let rest = rest.trim_start_matches('/');
    let (name, action) = match rest.split_once('/') {
        Some((name, action)) => (name, Some(action)),
        None => (rest, None),
    };
    match action {
        None => {
            return match method {
                Method::Get => match destination_one(env, config, name).await? {
                    Some(r) => Ok(r),
                    None => error_response(404, "not_found", &format!("no destination {name:?} is configured"), ""),
                },
                Method::Patch => change(req, env, token, "/update", name).await,
                Method::Delete => change(req, env, token, "/delete", name).await,
                _ => method_not_allowed("GET, PATCH, DELETE"),
            };
        }
        Some("rotate-secret") => {
            return match method {
                Method::Post => change(req, env, token, "/rotate", name).await,
                _ => method_not_allowed("POST"),
            };
        }
        Some("pause" | "resume" | "recover" | "test") => {}
        Some(_) => return error_response(404, "not_found", usage, ""),
    }
    let action = action.unwrap_or_default();
    let Some(destination) = config.delivery.named(name) else {
        return error_response(404, "not_found", &format!("no destination {name:?} is configured"), "");
    };
    if method != Method::Post {
        return method_not_allowed("POST");
    }
    let name = destination.name.clone();
    let key = destination.log_key();
    if action == "test" {
        return test(env, config, destination).await;
    }
    let request = match action {
        "recover" => {
            let body = req.clone()?.text().await?;
            match recover_request(&key, &body) {
                Ok(r) => r.encode(),
                Err(response) => return response,
            }
        }
        _ => Named { destination: key.clone() }.encode(),
    };
    let reply = call_ok(env, log(&key), &format!("/{action}"), request).await?;
    let mut out = String::from("{\"destination\":");
    json::write_str_escaped(&mut out, &name);
    out.push(',');
    out.push_str(reply.trim().trim_start_matches('{'));
    json_response(if action == "recover" { 202 } else { 200 }, &out)
}

/// The apps the registry manages, in the admin API's words, by name.
async fn runtime_apps(env: &Env) -> Result<Vec<(String, String)>> {
    if env.durable_object(super::env::REGISTRY).is_err() {
        return Ok(Vec::new());
    }
    let text = call_ok(env, Object::Registry, "/apps", String::new()).await?;
    let value = json::parse(&text, &Limits::INTERNAL).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let Some(Value::Array(items)) = value.get("apps") else { return Ok(Vec::new()) };
    Ok(items
        .iter()
        .filter_map(|item| {
            let name = item.get("name")?.as_str()?.text().into_owned();
            let incarnation = item.get("incarnation").and_then(Value::as_str).map(|i| i.text().into_owned());
            Some((crate::delivery::destination::log_key(&name, incarnation.as_deref()), item.to_json()))
        })
        .collect())
}

/// One destination's listing: its settings (`fields`, a JSON object, or
/// just its name once it is no longer configured) and its log's health.
fn write_listed_destination(out: &mut String, fields: &str, health: &str) {
    out.push_str(fields.trim().strip_suffix('}').unwrap_or(fields));
    out.push(',');
    let health = health.trim();
    out.push_str(health.strip_prefix('{').and_then(|h| h.strip_suffix('}')).unwrap_or(""));
    out.push('}');
}

/// Each destination's settings as listed: the declared ones, the registry's
/// (a runtime app that is also declared is listed once, as declared), then
/// those removed whose logs still hold deliveries.
async fn listed(env: &Env, config: &Config) -> Result<Vec<(String, String)>> {
    let mut items: Vec<(String, String)> = Vec::new();
    for d in config.delivery.destinations.list.iter().filter(|d| d.source == crate::delivery::Source::Declared) {
        items.push((d.log_key(), destination_json(d)));
    }
    for (key, fields) in runtime_apps(env).await? {
        let name = crate::delivery::destination::name_of_key(&key);
        if !items.iter().any(|(k, _)| crate::delivery::destination::name_of_key(k) == name) {
            items.push((key, fields));
        }
    }
    // Alert targets are delivered to like apps, each with its own log.
    for t in &config.delivery.alerts.targets {
        let d = &t.destination;
        let mut w = json::Writer::object();
        w.str("name", &d.name).str("url", &d.url).raw("types", &json::string_array(&d.types)).bool("signed", d.signed());
        w.str("format", match t.format {
            crate::delivery::alerts::Format::Json => "json",
            crate::delivery::alerts::Format::Slack => "slack",
        });
        let kinds: Vec<String> = t.kinds.iter().map(|k| k.as_str().to_owned()).collect();
        if !kinds.is_empty() {
            w.raw("kinds", &json::string_array(&kinds));
        }
        w.str("source", "alerts");
        items.push((d.name.clone(), w.finish()));
    }
    for (key, configured) in known(env, config).await? {
        if !configured && !items.iter().any(|(k, _)| *k == key) {
            // A removed app: its name, and which incarnation of it this was.
            let mut w = json::Writer::object();
            w.str("name", crate::delivery::destination::name_of_key(&key))
                .opt_str("incarnation", crate::delivery::destination::incarnation_of_key(&key));
            items.push((key, w.finish()));
        }
    }
    Ok(items)
}

/// `GET /admin/destinations`.
async fn destination_list(env: &Env, config: &Config) -> Result<Response> {
    let items = listed(env, config).await?;
    let healths = futures_util::future::join_all(
        items.iter().map(|(key, _)| call_ok(env, log(key), "/health", Named { destination: key.clone() }.encode())),
    )
    .await;
    let mut out = String::from("{\"destinations\":[");
    for (i, ((_, fields), health)) in items.iter().zip(healths).enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_listed_destination(&mut out, fields, &health?);
    }
    out.push_str("]}");
    json_response(200, &out)
}

/// `GET /admin/destinations/{name}`: one destination, as listed.
async fn destination_one(env: &Env, config: &Config, name: &str) -> Result<Option<Response>> {
    let items = listed(env, config).await?;
    // The app of that name now, else a removed one (named by its log's key).
    let found = items.iter().find(|(k, _)| crate::delivery::destination::name_of_key(k) == name && config.delivery.destination(k).is_some());
    let Some((key, fields)) = found.or_else(|| items.iter().find(|(k, _)| k == name || crate::delivery::destination::name_of_key(k) == name)) else {
        return Ok(None);
    };
    let health = call_ok(env, log(key), "/health", Named { destination: key.clone() }.encode()).await?;
    let mut out = String::from("{\"destination\":");
    write_listed_destination(&mut out, fields, &health);
    out.push('}');
    json_response(200, &out).map(Some)
}

/// The delivery logs metrics are read from: every destination listed
/// (declared, runtime, alert targets, removed but kept).
async fn metric_logs(env: &Env, config: &Config) -> Result<Vec<String>> {
    Ok(listed(env, config).await?.into_iter().map(|(n, _)| n).collect())
}

/// `GET /admin/metrics?since=&until=&step=minute|hour&destination=&type=`:
/// per destination and type, per minute (kept 48 hours) or per hour (30
/// days), what was accepted, delivered, failed, retried and held, the
/// attempts and their latency (a histogram), and the backlog. With
/// `format=prometheus` or `Accept: text/plain`: the counters since each log
/// began, as Prometheus text.
async fn metrics(req: &Request, env: &Env, config: &Config) -> Result<Response> {
    let now = worker::Date::now().as_millis() as i64;
    let query = super::http::query(req);
    let arg = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let accept = req.headers().get("accept").ok().flatten().unwrap_or_default();
    let prometheus = match arg("format").as_deref() {
        Some("prometheus") => true,
        Some("json") => false,
        Some(other) => return error_response(400, "invalid_parameter", &format!("unknown format {other:?}; the formats are json and prometheus"), "format"),
        None => accept.contains("text/plain") && !accept.contains("application/json"),
    };
    let mut names = metric_logs(env, config).await?;
    if let Some(d) = arg("destination") {
        let Some(key) = resolve_key(config, &names, &d) else {
            return error_response(400, "invalid_parameter", &format!("no destination {d:?} is configured or holds deliveries"), "destination");
        };
        names = vec![key];
    }
    if prometheus {
        // A removed app's counters end with it; an app of the same name
        // created since is another series, starting from zero.
        names.retain(|key| config.delivery.destination(key).is_some());
    }
    let only_type = arg("type");
    if prometheus {
        let totals = futures_util::future::join_all(names.iter().map(|n| call_ok(env, log(n), "/totals", String::new()))).await;
        let mut scrapes = Vec::new();
        for (name, text) in names.iter().zip(totals) {
            let text = text?;
            let value = json::parse(&text, &Limits::INTERNAL).map_err(|e| worker::Error::RustError(e.to_string()))?;
            let state = value.get("state").and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
            let counts = match value.get("counts") {
                Some(Value::Object(members)) => members
                    .iter()
                    .map(|(k, v)| (k.text().into_owned(), v.as_integer().and_then(|n| n.parse().ok()).unwrap_or(0)))
                    .collect(),
                _ => Vec::new(),
            };
            let types = match value.get("types") {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(crate::delivery::metrics::read_span)
                    .filter(|(_, t, _)| only_type.as_ref().is_none_or(|o| o == t))
                    .map(|(_, t, c)| (t, c))
                    .collect(),
                _ => Vec::new(),
            };
            let bytes = value.get("bytes").and_then(Value::as_integer).and_then(|n| n.parse().ok()).unwrap_or(0);
            let destination = crate::delivery::destination::name_of_key(name).to_owned();
            scrapes.push(crate::delivery::metrics::Scrape { destination, state, counts, bytes, types });
        }
        let body = crate::delivery::metrics::prometheus(&scrapes);
        let headers = worker::Headers::new();
        headers.set("content-type", "text/plain; version=0.0.4; charset=utf-8")?;
        headers.set("cache-control", "no-store")?;
        return Ok(Response::builder().with_status(200).with_headers(headers).fixed(body.into_bytes()));
    }
    let int = |name: &str| -> std::result::Result<Option<i64>, Result<Response>> {
        match arg(name) {
            None => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| error_response(400, "invalid_parameter", "expected milliseconds since the epoch", name)),
        }
    };
    let until = match int("until") {
        Ok(v) => v.unwrap_or(now + 1),
        Err(r) => return r,
    };
    let since = match int("since") {
        Ok(v) => v.unwrap_or(until - 24 * 3_600_000),
        Err(r) => return r,
    };
    if since >= until {
        return error_response(400, "invalid_parameter", "since must be before until", "since");
    }
    let step = match arg("step").as_deref() {
        Some("minute") => crate::delivery::metrics::MINUTE_MS,
        Some("hour") => crate::delivery::metrics::HOUR_MS,
        None if until - since <= 48 * 3_600_000 => crate::delivery::metrics::MINUTE_MS,
        None => crate::delivery::metrics::HOUR_MS,
        Some(other) => return error_response(400, "invalid_parameter", &format!("unknown step {other:?}; the steps are minute and hour"), "step"),
    };
    let body = json::Writer::object().int("since", since).int("until", until).int("step", step).finish();
    let replies = futures_util::future::join_all(names.iter().map(|n| call_ok(env, log(n), "/metrics", body.clone()))).await;
    let mut out = json::Writer::object();
    out.int("since", since).int("until", until).int("step", step);
    out.raw("latencyBucketsMs", &format!("[{}]", crate::delivery::metrics::LATENCY_BOUNDS_MS.map(|b| b.to_string()).join(",")));
    let mut items = Vec::new();
    for (name, reply) in names.iter().zip(replies) {
        let reply = reply?;
        let value = json::parse(&reply, &Limits::INTERNAL).map_err(|e| worker::Error::RustError(e.to_string()))?;
        let series: Vec<String> = match value.get("series") {
            Some(Value::Array(items)) => items
                .iter()
                .filter(|s| only_type.as_ref().is_none_or(|o| s.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_text(o))))
                .map(Value::to_json)
                .collect(),
            _ => Vec::new(),
        };
        let backlog = value.get("backlog").map(Value::to_json).unwrap_or_else(|| "[]".into());
        let before = value.get("backlogBefore").and_then(Value::as_integer).unwrap_or("0").to_owned();
        let configured = config.delivery.destination(name).is_some();
        let incarnation = crate::delivery::destination::incarnation_of_key(name).filter(|_| !configured);
        items.push(
            json::Writer::object()
                .str("name", crate::delivery::destination::name_of_key(name))
                .opt_str("incarnation", incarnation)
                .raw("configured", if configured { "true" } else { "false" })
                .raw("series", &format!("[{}]", series.join(",")))
                .raw("backlog", &backlog)
                .raw("backlogBefore", &before)
                .finish(),
        );
    }
    out.raw("destinations", &format!("[{}]", items.join(",")));
    json_response(200, &out.finish())
}

/// `POST /admin/destinations/{name}/test`: Drift's example, translated as
/// this bridge translates it; the first of its events the app subscribes
/// to (or, if none, the push), sent by the app's delivery log at once.
async fn test(env: &Env, config: &Config, d: &crate::delivery::Destination) -> Result<Response> {
    let now = worker::Date::now().as_millis() as i64;
    let value = json::parse(super::answer::DRIFT_EXAMPLE, &config.limits()).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let options = crate::rules::Options { legacy: config.legacy, received_at_ms: now, limits: config.limits() };
    let events = crate::rules::translate_value(&value, &options).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let wanted = events.iter().find(|e| d.wants(&e.event_type, Some("1")));
    let Some(event) = wanted.or_else(|| events.iter().find(|e| e.event_type == "conversation_push")).or(events.first()) else {
        return Err(worker::Error::RustError("Drift's example translates to nothing".into()));
    };
    let random = js_sys::Math::random();
    // 16 hex digits, as every event id: the log and the admin API read it so.
    let event_id = format!("{:016x}", (random * 1.8e19) as u64 ^ (now as u64).rotate_left(17));
    let request = TestDelivery {
        destination: d.log_key(),
        event_id,
        event_type: event.event_type.to_string(),
        body: event.json.clone(),
        subscribed: wanted.is_some(),
    };
    match call(env, log(&d.log_key()), "/test", request.encode()).await? {
        (200, reply) => json_response(200, &reply),
        (404, message) => error_response(404, "not_found", &message, ""),
        (409, message) => error_response(409, "cannot_send", &message, ""),
        (status, message) => Err(worker::Error::RustError(format!("the delivery log answered {status}: {message}"))),
    }
}

/// Reads `{"since": <ms>, "status": ["failed", "gone"]}` (both optional).
fn recover_request(name: &str, body: &str) -> std::result::Result<Recover, Result<Response>> {
    let text = body.trim();
    let value = if text.is_empty() { Ok(Value::Object(Vec::new())) } else { json::parse(text, &Limits { max_bytes: 4096, max_depth: 4 }) };
    let value = match value {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Err(error_response(400, "invalid_body", "expected a JSON object {\"since\": <ms>, \"status\": [\"failed\"]}", "")),
        Err(e) => return Err(error_response(400, "invalid_body", &e.to_string(), e.path())),
    };
    let since = match value.get("since") {
        None => 0,
        Some(v) => match v.as_integer().and_then(|n| n.parse::<i64>().ok()) {
            Some(ms) => ms,
            None => return Err(error_response(400, "invalid_body", "expected milliseconds since the epoch", "since")),
        },
    };
    let mut statuses = Vec::new();
    match value.get("status") {
        None => statuses.push("failed".to_owned()),
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, v) in list.iter().enumerate() {
                match v.as_str().map(|s| s.text().into_owned()) {
                    Some(s) if s == "failed" || s == "gone" => statuses.push(s),
                    _ => return Err(error_response(400, "invalid_body", "each status must be \"failed\" or \"gone\"", &format!("status[{i}]"))),
                }
            }
        }
        Some(_) => return Err(error_response(400, "invalid_body", "expected a non-empty array of \"failed\" and \"gone\"", "status")),
    }
    Ok(Recover { destination: name.to_owned(), since, statuses })
}

/// Where a page of the merged listing ends in each delivery log: below a
/// position, or done. Written `name:position` (or `name:-`) joined by `.`.
fn read_cursor(text: &str) -> Option<Vec<(String, Option<i64>)>> {
    text.split('.')
        .map(|part| {
            let (name, at) = part.rsplit_once(':')?;
            let at = if at == "-" { None } else { Some(at.parse().ok()?) };
            (!name.is_empty()).then(|| (name.to_owned(), at))
        })
        .collect()
}

/// `GET /admin/deliveries`: the delivery logs' pages, merged, newest first.
/// `cursor` is the `next` of the previous page.
async fn list(req: &Request, env: &Env, config: &Config) -> Result<Response> {
    let mut q = ListQuery { limit: DEFAULT_LIMIT, ..ListQuery::default() };
    let mut destination = None;
    let mut cursor: Option<Vec<(String, Option<i64>)>> = None;
    for (key, value) in super::http::query(req) {
        match key.as_str() {
            "status" => {
                for word in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    match ApiStatus::parse(word) {
                        Some(s) => q.statuses.extend(s.stored().iter().map(|s| s.sql().to_owned())),
                        None => {
                            let known: Vec<&str> = ApiStatus::ALL.iter().map(|s| s.as_str()).collect();
                            return error_response(
                                400,
                                "invalid_parameter",
                                &format!("unknown status {word:?}; the statuses are {}", known.join(", ")),
                                "status",
                            );
                        }
                    }
                }
            }
            "destination" => destination = Some(value),
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => q.limit = n,
                _ => return error_response(400, "invalid_parameter", &format!("expected a number from 1 to {MAX_LIMIT}"), "limit"),
            },
            "cursor" => match read_cursor(&value) {
                Some(c) => cursor = Some(c),
                None => return error_response(400, "invalid_parameter", "not a cursor from a previous page's next", "cursor"),
            },
            "conversation" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'-') => q.conversation = Some(value),
            "conversation" => return error_response(400, "invalid_parameter", "expected a conversation id (an integer)", "conversation"),
            "event" if value.len() == 16 && value.bytes().all(|b| b.is_ascii_hexdigit()) => q.event = Some(value.to_ascii_lowercase()),
            "event" => return error_response(400, "invalid_parameter", "expected an event id (16 hex digits)", "event"),
            "since" | "until" => match value.parse::<i64>() {
                Ok(ms) if key == "since" => q.since = Some(ms),
                Ok(ms) => q.until = Some(ms),
                Err(_) => return error_response(400, "invalid_parameter", "expected milliseconds since the epoch", &key),
            },
            _ => {}
        }
    }
    let known = known(env, config).await?;
    let mut names: Vec<String> = known.into_iter().map(|(n, _)| n).collect();
    if let Some(d) = &destination {
        let Some(key) = resolve_key(config, &names, d) else {
            return error_response(400, "invalid_parameter", &format!("no destination {d:?} is configured or holds deliveries"), "destination");
        };
        names = vec![key];
    }
    // Where each log's page starts: below its position in the cursor; a log
    // the cursor calls done is not asked again.
    let start: Vec<(String, Option<Option<i64>>)> = names
        .into_iter()
        .map(|n| {
            let at = match &cursor {
                None => Some(None),
                Some(c) => match c.iter().find(|(name, _)| *name == n) {
                    Some((_, Some(at))) => Some(Some(*at)),
                    Some((_, None)) => None,
                    None => Some(None),
                },
            };
            (n, at)
        })
        .collect();
    let asked: Vec<&(String, Option<Option<i64>>)> = start.iter().filter(|(_, at)| at.is_some()).collect();
    let pages = futures_util::future::join_all(asked.iter().map(|(name, at)| {
        let query = ListQuery { before: at.flatten(), ..q.clone() }.encode();
        call_ok(env, log(name), "/list", query)
    }))
    .await;
    struct Page<'t> {
        name: String,
        items: Vec<(i64, i64, String, Value<'t>)>,
        next: Option<i64>,
        taken: usize,
    }
    let mut texts = Vec::with_capacity(pages.len());
    for page in pages {
        texts.push(page?);
    }
    let mut logs: Vec<Page<'_>> = Vec::new();
    for ((name, _), text) in asked.iter().zip(&texts) {
        let value = json::parse(text, &Limits::INTERNAL).map_err(|e| worker::Error::RustError(e.to_string()))?;
        let positions: Vec<i64> = match value.get("positions") {
            Some(Value::Array(p)) => p.iter().filter_map(|v| v.as_integer()?.parse().ok()).collect(),
            _ => Vec::new(),
        };
        let next = value.get("next").and_then(Value::as_integer).and_then(|n| n.parse().ok());
        let Some(Value::Array(items)) = value.get("deliveries") else { continue };
        let items = items
            .iter()
            .zip(positions)
            .map(|(item, seq)| {
                let accepted = item.get("acceptedAt").and_then(Value::as_integer).and_then(|n| n.parse().ok()).unwrap_or(0);
                let id = item.get("id").and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
                (accepted, seq, id, item.clone())
            })
            .collect();
        logs.push(Page { name: name.clone(), items, next, taken: 0 });
    }
    // Newest first across the logs: by acceptance time, which only grows in
    // each log.
    let mut out = String::from("{\"deliveries\":[");
    let mut count = 0;
    while count < q.limit as usize {
        let best = logs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.taken < p.items.len())
            .max_by(|(_, a), (_, b)| {
                let (x, y) = (&a.items[a.taken], &b.items[b.taken]);
                (x.0, &x.2).cmp(&(y.0, &y.2))
            })
            .map(|(i, _)| i);
        let Some(i) = best else { break };
        let page = &mut logs[i];
        if count > 0 {
            out.push(',');
        }
        page.items[page.taken].3.write(&mut out);
        page.taken += 1;
        count += 1;
    }
    out.push_str("],\"next\":");
    // The next page starts, in each log, after what this page took from it.
    let mut parts = Vec::new();
    let mut more = false;
    for (name, at) in &start {
        let position = match at {
            None => None,
            Some(before) => match logs.iter().find(|p| p.name == *name) {
                None => *before,
                Some(p) if p.taken == p.items.len() => p.next,
                // Nothing of it on this page: the next starts where this one
                // did (from the top on a first page), not as if it were done.
                Some(p) if p.taken == 0 => Some(before.unwrap_or(i64::MAX)),
                Some(p) => Some(p.items[p.taken - 1].1),
            },
        };
        more |= position.is_some();
        parts.push(format!("{name}:{}", position.map_or_else(|| "-".to_owned(), |p| p.to_string())));
    }
    if more {
        json::write_str_escaped(&mut out, &parts.join("."));
    } else {
        out.push_str("null");
    }
    out.push('}');
    json_response(200, &out)
}

/// The delivery logs a delivery id may be in, most likely first: that of
/// the app of its name now, then those of removed apps of that name.
async fn logs_of(env: &Env, config: &Config, id: &str) -> Result<Option<Vec<String>>> {
    let Some(name) = handoff::destination_of(id) else { return Ok(None) };
    let mut keys = vec![key_of(config, name)];
    for (key, configured) in known(env, config).await? {
        if !configured && crate::delivery::destination::name_of_key(&key) == name && !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(Some(keys))
}

/// Asks each log of `keys` in turn until one knows the delivery: its answer,
/// or the first's 404.
async fn ask_logs(env: &Env, keys: &[String], op: &str, id: &str) -> Result<(u16, String)> {
    let mut first = None;
    for key in keys {
        let answer = call(env, log(key), op, ById { id: id.to_owned() }.encode()).await?;
        if answer.0 != 404 {
            return Ok(answer);
        }
        first.get_or_insert(answer);
    }
    Ok(first.unwrap_or((404, format!("no delivery {id}"))))
}

/// `GET /admin/deliveries/{id}`.
async fn one(env: &Env, config: &Config, id: &str) -> Result<Response> {
    let Some(keys) = logs_of(env, config, id).await? else {
        return error_response(404, "not_found", &format!("{id:?} is not a delivery id (<event id>.<destination>)"), "");
    };
    let reply = match ask_logs(env, &keys, "/get", id).await? {
        (200, reply) => reply,
        (404, message) => return error_response(404, "not_found", &message, ""),
        (_, message) => return Err(worker::Error::RustError(message)),
    };
    let value = json::parse(&reply, &Limits::INTERNAL).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let Some(members) = value.as_object() else {
        return Err(worker::Error::RustError("the delivery log answered something unreadable".into()));
    };
    // The stored body is the event as Drift sent it: show it without the token.
    let mut out = String::with_capacity(reply.len() + 64);
    out.push_str("{\"delivery\":{");
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_str_escaped(&mut out, &key.text());
        out.push(':');
        match value.as_str() {
            Some(body) if key.eq_text("body") && body.text().is_empty() => out.push_str("null"),
            Some(body) if key.eq_text("body") => out.push_str(&redact::token(&body.text())),
            _ => value.write(&mut out),
        }
    }
    out.push_str("}}");
    json_response(200, &out)
}

/// `POST /admin/deliveries/{id}/replay`.
async fn replay(env: &Env, config: &Config, id: &str) -> Result<Response> {
    let Some(keys) = logs_of(env, config, id).await? else {
        return error_response(404, "not_found", &format!("{id:?} is not a delivery id (<event id>.<destination>)"), "");
    };
    match ask_logs(env, &keys, "/replay", id).await? {
        (200, reply) => json_response(202, &reply),
        (404, message) => error_response(404, "not_found", &message, ""),
        (409, message) => error_response(409, "conflict", &message, ""),
        (_, message) => Err(worker::Error::RustError(message)),
    }
}

/// `/__test/…` (only with `DRIFT_BRIDGE_TEST_ROUTES=1`): a deliberate panic,
/// and the row counts of an outbox or a delivery log.
pub async fn test_route(req: &Request, env: &Env, path: &str) -> Result<Response> {
    let query = super::http::query(req);
    let arg = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    match path {
        "/__test/panic" => panic!("deliberate panic from /__test/panic"),
        "/__test/outbox" => {
            let stub = env.durable_object(super::env::OUTBOX)?.id_from_name(&arg("scope"))?.get_stub()?;
            let mut init = RequestInit::new();
            init.with_method(Method::Post);
            let mut response = stub.fetch_with_request(Request::new_with_init("https://do/stats", &init)?).await?;
            json_response(response.status_code(), &response.text().await?)
        }
        "/__test/destination" => {
            let config = super::env::config(&env.clone().into(), false);
            let (status, text) = call(env, log(&key_of(&config, &arg("name"))), "/stats", String::new()).await?;
            json_response(status, &text)
        }
        "/__test/fill" => {
            let config = super::env::config(&env.clone().into(), false);
            let key = key_of(&config, &arg("name"));
            let body = json::Writer::object()
                .str("destination", &key)
                .raw("count", &arg("count").parse::<u32>().unwrap_or(0).to_string())
                .str("status", &arg("status"))
                .finish();
            let (status, text) = call(env, log(&key), "/fill", body).await?;
            json_response(status, &text)
        }
        _ => error_response(404, "not_found", "no such test route", ""),
    }
}

/// The delivery log's side of the admin API: its operations by path
/// (`/list`, `/get`, `/replay`, `/recover`, `/pause`, `/resume`, `/health`,
/// `/stats`, `/test` and its continuation `tested`), run by the entry's
/// `DeliveryLog` like every other step, in
/// this module (started only where the admin API is used) so that the
/// bridge's, on every webhook's path, stays small.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = logAdmin)]
pub fn log_admin(
    env: &wasm_bindgen::JsValue,
    sql: &super::storage::SqlStorage,
    op: &wasm_bindgen::JsValue,
    input: &wasm_bindgen::JsValue,
    now: f64,
    seed: u32,
    apps_known: bool,
) -> std::result::Result<wasm_bindgen::JsValue, wasm_bindgen::JsError> {
    use crate::delivery::log::{self, Context};
    let config = super::env::config(env, false);
    let ctx = Context { settings: &config.delivery, now: now as i64, seed, apps_known };
    let input = super::effects::text(input);
    super::effects::answer(match super::effects::text(op).as_str() {
        "/list" => log::list(sql, &ctx, &input),
        "/get" => log::get(sql, &ctx, &input),
        "/replay" => log::replay(sql, &ctx, &input),
        "/recover" => log::recover(sql, &ctx, &input),
        "/pause" => log::pause(sql, &ctx, &input),
        "/resume" => log::resume(sql, &ctx, &input),
        "/health" => log::health(sql, &ctx, &input),
        "/stats" => log::stats(sql, &ctx),
        "/fill" if super::env::switch(env, "DRIFT_BRIDGE_TEST_ROUTES") => log::fill(sql, &ctx, &input),
        "/test" => log::test(sql, &ctx, &input),
        "/end" => log::end(sql, &ctx, &input),
        "/metrics" => log::metrics(sql, &ctx, &input),
        "/totals" => log::totals(sql, &ctx),
        "tested" => log::tested(sql, &ctx, &input),
        other => Ok(crate::delivery::effects::Effects::reply(crate::delivery::effects::Reply::status(
            404,
            format!("unknown delivery log operation {other}"),
        ))),
    })
}

/// Creates the registry's tables, as the object starts.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = registryOpen)]
pub fn registry_open(sql: &super::storage::SqlStorage) -> std::result::Result<(), wasm_bindgen::JsError> {
    crate::delivery::registry::open(sql).map_err(super::effects::fail)
}

/// Every step of the registry (src/delivery/registry.rs), run by the entry's
/// `Registry` like every other object's: for the delivery logs `/register`,
/// `/unregister` and `/logs`; for every isolate's copy of the apps
/// `/routes`; for the admin API the changes to the apps (`/create`,
/// `/update`, `/delete`, `/rotate`), their listing (`/apps`) and history
/// (`/changes`). In this module rather than the bridge's, which every
/// isolate starts: the registry is one object, and no webhook waits on it
/// but for its isolate's copy of the apps, every few seconds. `entropy`: 32
/// random bytes, for a new signing secret.
#[wasm_bindgen::prelude::wasm_bindgen(js_name = registryStep)]
pub fn registry_step(
    env: &wasm_bindgen::JsValue,
    sql: &super::storage::SqlStorage,
    op: &wasm_bindgen::JsValue,
    input: &wasm_bindgen::JsValue,
    now: f64,
    entropy: &[u8],
) -> std::result::Result<wasm_bindgen::JsValue, wasm_bindgen::JsError> {
    use crate::delivery::registry::{self, Admin, Change};
    let input = super::effects::text(input);
    let op = super::effects::text(op);
    let now = now as i64;
    let mut bytes = [0u8; crate::delivery::apps::SECRET_BYTES];
    if entropy.len() != bytes.len() {
        return Err(wasm_bindgen::JsError::new(&format!("registryStep: expected {} random bytes", bytes.len())));
    }
    bytes.copy_from_slice(entropy);
    super::effects::answer(match op.as_str() {
        "/register" => registry::register(sql, &input, true, now),
        "/unregister" => registry::register(sql, &input, false, now),
        "/logs" => registry::logs(sql),
        "/routes" => registry::routes(sql, &input, now),
        "/apps" => registry::list(sql, now),
        "/changes" => registry::changes(sql, &input),
        "/create" | "/update" | "/delete" | "/rotate" => match Change::decode(&input) {
            Ok(change) => {
                // Only the declared apps' names are taken: the registry knows its own.
                let base = super::env::declared(env, false);
                let secret = |name: &str| super::env::var(env, name);
                let reserved = base.delivery.reserved_secret_names();
                let ctx = Admin {
                    declared: &base.delivery.destinations,
                    secret: &secret,
                    parse_url: super::env::parse_url,
                    reserved: &reserved,
                    allow_loopback: base.local_development,
                    now,
                    entropy: bytes,
                    lease_ms: i64::from(base.apps_lease_ms),
                };
                registry::change(sql, &ctx, op.trim_start_matches('/'), &change)
            }
            Err(e) => Ok(crate::delivery::effects::Effects::reply(crate::delivery::effects::Reply::status(400, e.to_string()))),
        },
        other => Ok(crate::delivery::effects::Effects::reply(crate::delivery::effects::Reply::status(
            404,
            format!("unknown registry operation {other}"),
        ))),
    })
}
