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
//!   removed from the configuration whose deliveries are still kept too.
//! - `POST /admin/destinations/{name}/pause`, `…/resume`, `…/recover`.
//!
//! Every call to a delivery log is one of the typed messages of
//! [`crate::delivery::message`], read by the log's state machine. Nothing
//! here ever shows a secret: Drift's token is redacted from every body, and
//! configuration problems name secrets, never their values.

use worker::{Env, Method, Request, RequestInit, Response, Result};

use super::http::{error_response, json_response, method_not_allowed};
use crate::config::Config;
use crate::delivery::effects::Object;
use crate::delivery::message::{ById, ListQuery, Logs, Named, Recover};
use crate::delivery::status::ApiStatus;
use crate::delivery::{handoff, redact, TokenMode};
use crate::json::{self, Limits, Value};

const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 200;

/// The admin token from `Authorization: Bearer …` (any letter case of the
/// scheme), checked in constant time.
fn authorized(req: &Request, config: &Config) -> bool {
    let Some(tokens) = &config.admin else { return false };
    let header = req.headers().get("authorization").ok().flatten().unwrap_or_default();
    let header = header.trim();
    match header.split_once(char::is_whitespace) {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => tokens.accepts(token.trim()),
        _ => false,
    }
}

/// POSTs `body` to operation `op` of an object; answers the status and the
/// reply's text.
async fn call(env: &Env, to: Object, op: &str, body: String) -> Result<(u16, String)> {
    let namespace = match &to {
        Object::DeliveryLog(_) => super::env::DELIVERY_LOG,
        Object::Registry => super::env::REGISTRY,
    };
    let stub = env.durable_object(namespace)?.id_from_name(&to.instance_name())?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let mut response = stub.fetch_with_request(Request::new_with_init(&format!("https://do{op}"), &init)?).await?;
    let text = response.text().await?;
    Ok((response.status_code(), text))
}

/// Like [`call`], but anything but 200 is an error with the reply's text.
async fn call_ok(env: &Env, to: Object, op: &str, body: String) -> Result<String> {
    match call(env, to, op, body).await? {
        (200, text) => Ok(text),
        (status, text) => Err(worker::Error::RustError(format!("{op} answered {status}: {text}"))),
    }
}

fn log(name: &str) -> Object {
    Object::DeliveryLog(name.to_owned())
}

/// The destinations whose deliveries the admin API shows: the configured
/// ones, then those removed from the configuration whose logs still hold
/// deliveries (the registry knows them).
async fn known(env: &Env, config: &Config) -> Result<Vec<(String, bool)>> {
    let mut names: Vec<(String, bool)> = config.delivery.destinations.list.iter().map(|d| (d.name.clone(), true)).collect();
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
    for name in logs.destinations {
        if config.delivery.destinations.get(&name).is_none() {
            names.push((name, false));
        }
    }
    Ok(names)
}

/// `GET /health`: whether the bridge is configured and how many problems it
/// has; with the admin token, also what they are and how it is set up.
pub fn health(req: &Request, config: &Config) -> Result<Response> {
    let mut out = String::with_capacity(256);
    out.push('{');
    config.write_summary(&mut out);
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
            write_destination(&mut out, d);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push('}');
    json_response(200, &out)
}

/// `{"name","url","types","token","signed"` of a configured destination
/// (without the closing brace).
fn write_destination(out: &mut String, d: &crate::delivery::Destination) {
    out.push_str("{\"name\":");
    json::write_str_escaped(out, &d.name);
    out.push_str(",\"url\":");
    json::write_str_escaped(out, &d.url);
    out.push_str(",\"types\":");
    out.push_str(&json::string_array(&d.types));
    out.push_str(",\"token\":");
    out.push_str(match d.token {
        TokenMode::Keep => "\"keep\"",
        TokenMode::Strip => "\"strip\"",
        TokenMode::Replace(_) => "\"replace\"",
    });
    out.push_str(&format!(",\"signed\":{}", d.signing_secret.is_some()));
}

/// `/admin/…`.
pub async fn route(req: &Request, env: &Env, config: &Config, path: &str) -> Result<Response> {
    if config.admin.is_none() {
        return error_response(404, "not_found", "the admin routes are off; set ADMIN_TOKEN (32 characters or more) to turn them on", "");
    }
    if !authorized(req, config) {
        return error_response(401, "unauthorized", "missing or invalid admin token (Authorization: Bearer <ADMIN_TOKEN>)", "");
    }
    let method = req.method();
    if let Some(rest) = path.strip_prefix("/admin/destinations") {
        return destinations(req, env, config, rest).await;
    }
    let rest = path.trim_start_matches("/admin/deliveries");
    if rest.len() == path.len() {
        return error_response(
            404,
            "not_found",
            &format!("no admin route {path}; the routes are /admin/deliveries[/{{id}}[/replay]] and /admin/destinations[/{{name}}/pause|resume|recover]"),
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
            Method::Post => replay(env, id).await,
            _ => method_not_allowed("POST"),
        };
    }
    match method {
        Method::Get => one(env, rest).await,
        _ => method_not_allowed("GET"),
    }
}

/// `/admin/destinations[/{name}/pause|resume|recover]`.
async fn destinations(req: &Request, env: &Env, config: &Config, rest: &str) -> Result<Response> {
    let method = req.method();
    if rest.is_empty() || rest == "/" {
        if method != Method::Get {
            return method_not_allowed("GET");
        }
        let names = known(env, config).await?;
        let healths = futures_util::future::join_all(
            names.iter().map(|(name, _)| call_ok(env, log(name), "/health", Named { destination: name.clone() }.encode())),
        )
        .await;
        let mut out = String::from("{\"destinations\":[");
        for (i, ((name, configured), health)) in names.iter().zip(healths).enumerate() {
            if i > 0 {
                out.push(',');
            }
            match config.delivery.destinations.get(name).filter(|_| *configured) {
                Some(d) => {
                    write_destination(&mut out, d);
                    out.push(',');
                }
                None => {
                    out.push_str("{\"name\":");
                    json::write_str_escaped(&mut out, name);
                    out.push(',');
                }
            }
            // The log's own fields, without their braces.
            let health = health?;
            let health = health.trim();
            out.push_str(health.strip_prefix('{').and_then(|h| h.strip_suffix('}')).unwrap_or(""));
            out.push('}');
        }
        out.push_str("]}");
        return json_response(200, &out);
    }
    let usage = "admin destination routes: POST /admin/destinations/{name}/pause, /resume or /recover";
    let rest = rest.trim_start_matches('/');
    let Some((name, action)) = rest.split_once('/') else {
        return error_response(404, "not_found", usage, "");
    };
    let Some(destination) = config.delivery.destinations.get(name) else {
        return error_response(404, "not_found", &format!("no destination {name:?} is configured"), "");
    };
    if !matches!(action, "pause" | "resume" | "recover") {
        return error_response(404, "not_found", usage, "");
    }
    if method != Method::Post {
        return method_not_allowed("POST");
    }
    let name = destination.name.clone();
    let request = match action {
        "recover" => {
            let body = req.clone()?.text().await?;
            match recover_request(&name, &body) {
                Ok(r) => r.encode(),
                Err(response) => return response,
            }
        }
        _ => Named { destination: name.clone() }.encode(),
    };
    let reply = call_ok(env, log(&name), &format!("/{action}"), request).await?;
    let mut out = String::from("{\"destination\":");
    json::write_str_escaped(&mut out, &name);
    out.push(',');
    out.push_str(reply.trim().trim_start_matches('{'));
    json_response(if action == "recover" { 202 } else { 200 }, &out)
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
        if !names.contains(d) {
            return error_response(400, "invalid_parameter", &format!("no destination {d:?} is configured or holds deliveries"), "destination");
        }
        names = vec![d.clone()];
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
                Some(p) if p.taken == 0 => *before,
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

/// `GET /admin/deliveries/{id}`.
async fn one(env: &Env, id: &str) -> Result<Response> {
    let Some(destination) = handoff::destination_of(id) else {
        return error_response(404, "not_found", &format!("{id:?} is not a delivery id (<event id>.<destination>)"), "");
    };
    let reply = match call(env, log(destination), "/get", ById { id: id.to_owned() }.encode()).await? {
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
async fn replay(env: &Env, id: &str) -> Result<Response> {
    let Some(destination) = handoff::destination_of(id) else {
        return error_response(404, "not_found", &format!("{id:?} is not a delivery id (<event id>.<destination>)"), "");
    };
    match call(env, log(destination), "/replay", ById { id: id.to_owned() }.encode()).await? {
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
            let (status, text) = call(env, log(&arg("name")), "/stats", String::new()).await?;
            json_response(status, &text)
        }
        _ => error_response(404, "not_found", "no such test route", ""),
    }
}

/// The delivery log's side of the admin API: its operations by path
/// (`/list`, `/get`, `/replay`, `/recover`, `/pause`, `/resume`, `/health`,
/// `/stats`), run by the entry's `DeliveryLog` like every other step, in
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
) -> std::result::Result<wasm_bindgen::JsValue, wasm_bindgen::JsError> {
    use crate::delivery::log::{self, Context};
    let config = super::env::config(env, false);
    let ctx = Context { settings: &config.delivery, now: now as i64, seed };
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
        other => Ok(crate::delivery::effects::Effects::reply(crate::delivery::effects::Reply::status(
            404,
            format!("unknown delivery log operation {other}"),
        ))),
    })
}
