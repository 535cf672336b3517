//! The operator's side: `/health`, and the admin API, which is off unless
//! `ADMIN_TOKEN` is set (to at least 32 characters); every admin call needs
//! `Authorization: Bearer <ADMIN_TOKEN>`.
//!
//! - `GET /admin/deliveries?destination=…&status=…&conversation=…&event=…&since=…&until=…&limit=…&cursor=…`:
//!   the delivery log, newest first, a page at a time.
//! - `GET /admin/deliveries/{id}`: one delivery, its body (Drift's token
//!   redacted) and its attempts.
//! - `POST /admin/deliveries/{id}/replay`: a failed or gone delivery, once more.
//! - `GET /admin/destinations`: each destination's state and health.
//! - `POST /admin/destinations/{name}/pause`, `…/resume`, `…/recover`.
//!
//! Nothing here ever shows a secret: Drift's token is redacted from every
//! body, and configuration problems name secrets, never their values.

use worker::{Env, Method, Request, Response, Result};

use super::bindings::{self, Instance};
use super::http::{error_response, json_response, method_not_allowed};
use crate::config::Config;
use crate::delivery::{handoff, redact, TokenMode};
use crate::json::{self, Limits, Value};

/// The statuses the admin API knows, and what each stands for in storage.
const STATUSES: [(&str, &[&str]); 6] = [
    ("pending", &["queued", "sending", "retrying"]),
    ("held", &["held"]),
    ("delivered", &["delivered"]),
    ("failed", &["failed"]),
    ("gone", &["gone"]),
    ("replayed", &["replayed"]),
];
const DEFAULT_LIMIT: usize = 50;
const MAX_LIMIT: usize = 200;

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
        for (i, d) in config.destinations.list.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"name\":");
            json::write_str_escaped(&mut out, &d.name);
            out.push_str(",\"url\":");
            json::write_str_escaped(&mut out, &d.url);
            out.push_str(",\"types\":");
            out.push_str(&json::string_array(&d.types));
            out.push_str(",\"token\":");
            out.push_str(match d.token {
                TokenMode::Keep => "\"keep\"",
                TokenMode::Strip => "\"strip\"",
                TokenMode::Replace(_) => "\"replace\"",
            });
            out.push_str(&format!(",\"signed\":{}}}", d.signing_secret.is_some()));
        }
        out.push_str("]}");
    }
    out.push('}');
    json_response(200, &out)
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

/// A delivery log filter's value.
enum Filter {
    Text(String),
    Ms(i64),
}

/// `/admin/destinations[/{name}/pause|resume|recover]`.
async fn destinations(req: &Request, env: &Env, config: &Config, rest: &str) -> Result<Response> {
    let method = req.method();
    if rest.is_empty() || rest == "/" {
        if method != Method::Get {
            return method_not_allowed("GET");
        }
        let healths = futures_util::future::join_all(
            config.destinations.list.iter().map(|d| bindings::call(env, Instance::Destination(&d.name), "/health", String::new())),
        )
        .await;
        let mut out = String::from("{\"destinations\":[");
        for (i, (d, health)) in config.destinations.list.iter().zip(healths).enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"name\":");
            json::write_str_escaped(&mut out, &d.name);
            out.push_str(",\"url\":");
            json::write_str_escaped(&mut out, &d.url);
            out.push_str(",\"types\":");
            out.push_str(&json::string_array(&d.types));
            out.push_str(&format!(",\"signed\":{},", d.signing_secret.is_some()));
            // The log's own fields, without their braces.
            let health = health?;
            let health = health.trim();
            out.push_str(health.strip_prefix('{').and_then(|h| h.strip_suffix('}')).unwrap_or(""));
            out.push('}');
        }
        out.push_str("]}");
        return json_response(200, &out);
    }
    let rest = rest.trim_start_matches('/');
    let Some((name, action)) = rest.split_once('/') else {
        return error_response(404, "not_found", "admin destination routes: POST /admin/destinations/{name}/pause, /resume or /recover", "");
    };
    let Some(destination) = config.destinations.get(name) else {
        return error_response(404, "not_found", &format!("no destination {name:?} is configured"), "");
    };
    if !matches!(action, "pause" | "resume" | "recover") {
        return error_response(404, "not_found", "admin destination routes: POST /admin/destinations/{name}/pause, /resume or /recover", "");
    }
    if method != Method::Post {
        return method_not_allowed("POST");
    }
    let mut request = String::from("{\"destination\":");
    json::write_str_escaped(&mut request, &destination.name);
    if action == "recover" {
        let body = req.clone()?.text().await?;
        let text = body.trim();
        let value = if text.is_empty() { Ok(Value::Object(Vec::new())) } else { json::parse(text, &Limits { max_bytes: 4096, max_depth: 4 }) };
        let value = match value {
            Ok(v @ Value::Object(_)) => v,
            Ok(_) => return error_response(400, "invalid_body", "expected a JSON object {\"since\": <ms>, \"status\": [\"failed\"]}", ""),
            Err(e) => return error_response(400, "invalid_body", &e.to_string(), e.path()),
        };
        let since = match value.get("since") {
            None => 0,
            Some(v) => match v.as_integer().and_then(|n| n.parse::<i64>().ok()) {
                Some(ms) => ms,
                None => return error_response(400, "invalid_body", "expected milliseconds since the epoch", "since"),
            },
        };
        let mut statuses = Vec::new();
        match value.get("status") {
            None => statuses.push("failed".to_owned()),
            Some(Value::Array(list)) if !list.is_empty() => {
                for (i, v) in list.iter().enumerate() {
                    match v.as_str().map(|s| s.text().into_owned()) {
                        Some(s) if s == "failed" || s == "gone" => statuses.push(s),
                        _ => return error_response(400, "invalid_body", "each status must be \"failed\" or \"gone\"", &format!("status[{i}]")),
                    }
                }
            }
            Some(_) => return error_response(400, "invalid_body", "expected a non-empty array of \"failed\" and \"gone\"", "status"),
        }
        request.push_str(&format!(",\"since\":{since},\"status\":{}", json::string_array(&statuses)));
    }
    request.push('}');
    let reply = bindings::call(env, Instance::Destination(&destination.name), &format!("/{action}"), request).await?;
    let mut out = String::from("{\"destination\":");
    json::write_str_escaped(&mut out, &destination.name);
    out.push(',');
    out.push_str(reply.trim().trim_start_matches('{'));
    json_response(if action == "recover" { 202 } else { 200 }, &out)
}

/// `GET /admin/deliveries`: every configured destination's log, merged,
/// newest first. `cursor` is the `next` of the previous page.
async fn list(req: &Request, env: &Env, config: &Config) -> Result<Response> {
    let mut statuses: Vec<&str> = Vec::new();
    let mut destination = None;
    let mut limit = DEFAULT_LIMIT;
    let mut before: Option<(i64, String)> = None;
    let mut filters: Vec<(&str, Filter)> = Vec::new();
    for (key, value) in super::http::query(req) {
        match key.as_str() {
            "status" => {
                for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    match STATUSES.iter().find(|(s, _)| *s == name) {
                        Some((_, stored)) => statuses.extend_from_slice(stored),
                        None => {
                            let known: Vec<&str> = STATUSES.iter().map(|(s, _)| *s).collect();
                            return error_response(
                                400,
                                "invalid_parameter",
                                &format!("unknown status {name:?}; the statuses are {}", known.join(", ")),
                                "status",
                            );
                        }
                    }
                }
            }
            "destination" => match config.destinations.get(&value) {
                Some(d) => destination = Some(d.name.clone()),
                None => return error_response(400, "invalid_parameter", &format!("no destination {value:?} is configured"), "destination"),
            },
            "limit" => match value.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = n,
                _ => return error_response(400, "invalid_parameter", &format!("expected a number from 1 to {MAX_LIMIT}"), "limit"),
            },
            "cursor" => match value.split_once(':').and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_owned()))) {
                Some(c) => before = Some(c),
                None => return error_response(400, "invalid_parameter", "not a cursor from a previous page's next", "cursor"),
            },
            "conversation" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'-') => {
                filters.push(("conversation", Filter::Text(value)))
            }
            "conversation" => return error_response(400, "invalid_parameter", "expected a conversation id (an integer)", "conversation"),
            "event" if value.len() == 16 && value.bytes().all(|b| b.is_ascii_hexdigit()) => {
                filters.push(("event", Filter::Text(value.to_ascii_lowercase())))
            }
            "event" => return error_response(400, "invalid_parameter", "expected an event id (16 hex digits)", "event"),
            "since" | "until" => match value.parse::<i64>() {
                Ok(ms) => filters.push((if key == "since" { "since" } else { "until" }, Filter::Ms(ms))),
                Err(_) => return error_response(400, "invalid_parameter", "expected milliseconds since the epoch", &key),
            },
            _ => {}
        }
    }
    let mut request = String::from("{\"status\":");
    let statuses: Vec<String> = statuses.iter().map(|s| (*s).to_owned()).collect();
    request.push_str(&json::string_array(&statuses));
    request.push_str(&format!(",\"limit\":{limit}"));
    for (name, filter) in &filters {
        request.push_str(&format!(",\"{name}\":"));
        match filter {
            Filter::Text(text) => json::write_str_escaped(&mut request, text),
            Filter::Ms(ms) => request.push_str(&ms.to_string()),
        }
    }
    if let Some((at, id)) = &before {
        request.push_str(&format!(",\"before\":{{\"at\":{at},\"id\":"));
        json::write_str_escaped(&mut request, id);
        request.push('}');
    }
    request.push('}');
    let names: Vec<&str> = match &destination {
        Some(name) => vec![name.as_str()],
        None => config.destinations.list.iter().map(|d| d.name.as_str()).collect(),
    };
    let pages = futures_util::future::join_all(
        names.iter().map(|name| bindings::call(env, Instance::Destination(name), "/list", request.clone())),
    )
    .await;
    let mut texts = Vec::with_capacity(pages.len());
    for page in pages {
        texts.push(page?);
    }
    let limits = Limits::INTERNAL;
    let mut rows: Vec<(i64, String, String)> = Vec::new();
    for text in &texts {
        let Ok(Value::Array(items)) = json::parse(text, &limits) else { continue };
        for item in &items {
            let at = item.get("at").and_then(Value::as_integer).map_or(0, |a| a.parse().unwrap_or(0));
            let id = item.get("id").and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
            rows.push((at, id, item.to_json()));
        }
    }
    rows.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
    let more = rows.len() > limit;
    rows.truncate(limit);
    let mut out = String::from("{\"deliveries\":[");
    for (i, (_, _, row)) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(row);
    }
    out.push_str("],\"next\":");
    match rows.last().filter(|_| more || rows.len() == limit) {
        Some((at, id, _)) => json::write_str_escaped(&mut out, &format!("{at}:{id}")),
        None => out.push_str("null"),
    }
    out.push('}');
    json_response(200, &out)
}

/// `GET /admin/deliveries/{id}`.
async fn one(env: &Env, id: &str) -> Result<Response> {
    let Some(destination) = handoff::destination_of(id) else {
        return error_response(404, "not_found", &format!("{id:?} is not a delivery id (<event id>.<destination>)"), "");
    };
    let mut request = String::from("{\"id\":");
    json::write_str_escaped(&mut request, id);
    request.push('}');
    let reply = match bindings::call_status(env, Instance::Destination(destination), "/get", request).await? {
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
    let mut request = String::from("{\"id\":");
    json::write_str_escaped(&mut request, id);
    request.push('}');
    match bindings::call_status(env, Instance::Destination(destination), "/replay", request).await? {
        (200, reply) => json_response(202, &reply),
        (404, message) => error_response(404, "not_found", &message, ""),
        (409, message) => error_response(409, "conflict", &message, ""),
        (_, message) => Err(worker::Error::RustError(message)),
    }
}

/// `/__test/…` (only with `DRIFT_BRIDGE_TEST_ROUTES=1`): a deliberate panic,
/// and the row counts of an outbox or a destination.
pub async fn test_route(req: &Request, env: &Env, path: &str) -> Result<Response> {
    let query = super::http::query(req);
    let arg = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
    match path {
        "/__test/panic" => panic!("deliberate panic from /__test/panic"),
        "/__test/outbox" => json_response(200, &bindings::call(env, Instance::Outbox(&arg("scope")), "/stats", String::new()).await?),
        "/__test/destination" => {
            json_response(200, &bindings::call(env, Instance::Destination(&arg("name")), "/stats", String::new()).await?)
        }
        _ => error_response(404, "not_found", "no such test route", ""),
    }
}
