//! `/health` and the admin API (off unless `ADMIN_TOKEN` is set, to at least
//! 32 characters; every admin call needs `Authorization: Bearer
//! <ADMIN_TOKEN>`), in the operator's module.
//!
//! This file only moves bytes: the route comes from [`crate::api::route`],
//! parameters are read by [`crate::api`], every question to an object is one
//! of its typed inputs ([`log::Input`], [`registry::Input`]) encoded here and
//! decoded once by that object, and the answers of several delivery logs
//! are merged by [`crate::api`] too. The routes and what they answer are in
//! [`crate::api::ROUTES`] (and `GET /openapi.json`).
//!
//! Nothing here ever shows a secret: Drift's token is redacted from every
//! body, and configuration problems name secrets, never their values.

use worker::{Env, Method, Request, RequestInit, Response, Result};

use super::http::{error_response, json_response};
use crate::api::{self, Cursor, ListParams, LogPage, MetricsParams, ParamError, Route};
use crate::config::Config;
use crate::delivery::destination::{incarnation_of_key, log_key, name_of_key};
use crate::delivery::effects::Object;
use crate::delivery::log::{self, ListQuery, TestDelivery};
use crate::delivery::registry::{self, AppChange, ChangeOp, Logs};
use crate::delivery::{redact, Destination, Source};
use crate::json::{self, Limits, Value};

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

/// An object's answer.
struct Replied {
    status: u16,
    body: String,
    /// `idempotent-replayed`, on a change answered before.
    replayed: Option<String>,
}

/// POSTs one input (`(path, body)`, as its `encode` writes it) to an object.
async fn ask(env: &Env, to: &Object, (path, body): (&str, String)) -> Result<Replied> {
    let stub = env.durable_object(to.namespace())?.id_from_name(&to.instance_name())?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let mut response = stub.fetch_with_request(Request::new_with_init(&format!("https://do{path}"), &init)?).await?;
    let replayed = response.headers().get("idempotent-replayed").ok().flatten();
    let body = response.text().await?;
    Ok(Replied { status: response.status_code(), body, replayed })
}

/// Like [`ask`], but anything but 200 is an error with the answer's text.
async fn ask_ok(env: &Env, to: &Object, input: (&str, String)) -> Result<String> {
    let path = input.0;
    match ask(env, to, input).await? {
        Replied { status: 200, body, .. } => Ok(body),
        Replied { status, body, .. } => Err(worker::Error::RustError(format!("{path} answered {status}: {body}"))),
    }
}

fn log_of(key: &str) -> Object {
    Object::DeliveryLog(key.to_owned())
}

async fn ask_log(env: &Env, key: &str, input: log::Input) -> Result<Replied> {
    ask(env, &log_of(key), input.encode()).await
}

async fn ask_log_ok(env: &Env, key: &str, input: log::Input) -> Result<String> {
    ask_ok(env, &log_of(key), input.encode()).await
}

fn has_registry(env: &Env) -> bool {
    env.durable_object(super::env::REGISTRY).is_ok()
}

fn bad_parameter(e: ParamError) -> Result<Response> {
    error_response(400, "invalid_parameter", &e.message, &e.param)
}

fn internal(what: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(what.to_string())
}

// ------------------------------------------------------------------ /health

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
    if admin_token(req, config).is_some() {
        out.push_str(&format!(
            ",\"details\":{{\"legacyPolicy\":\"{}\",\"maxBodyBytes\":{},\"verificationTokens\":{},\"problems\":",
            config.legacy,
            config.max_body_bytes,
            config.tokens.as_ref().map_or(0, |t| t.len()),
        ));
        let problems: Vec<String> = config.problems.iter().map(ToString::to_string).collect();
        out.push_str(&json::string_array(&problems));
        let destinations: Vec<String> = config.delivery.destinations.list.iter().map(destination_json).collect();
        out.push_str(&format!(",\"destinations\":[{}]}}", destinations.join(",")));
    }
    out.push('}');
    json_response(200, &out)
}

/// A configured app's settings as the admin API shows them (never a secret).
fn destination_json(d: &Destination) -> String {
    let mut w = json::Writer::object();
    w.str("name", &d.name);
    if d.listen {
        w.bool("listen", true);
    } else {
        w.str("url", &d.url);
    }
    w.raw("types", &json::string_array(&d.types)).str("token", d.token.as_str()).bool("signed", d.signed());
    if !d.org_ids.is_empty() {
        w.raw("orgIds", &format!("[{}]", d.org_ids.join(",")));
    }
    w.opt_int("ratePerSecond", d.rate_per_second.map(i64::from));
    if d.ordered {
        w.bool("ordered", true);
    }
    w.str("source", d.source.as_str());
    w.finish()
}

// ---------------------------------------------------------------- /admin/…

/// `/admin/…`: checks the token, then serves `route`.
pub async fn serve(req: &Request, env: &Env, config: &Config, route: Route) -> Result<Response> {
    if config.admin.is_none() {
        return error_response(404, "not_found", "the admin routes are off; set ADMIN_TOKEN (32 characters or more) to turn them on", "");
    }
    let Some(token) = admin_token(req, config) else {
        return error_response(401, "unauthorized", "missing or invalid admin token (Authorization: Bearer <ADMIN_TOKEN>)", "");
    };
    match route {
        Route::ListDeliveries => list(req, env, config).await,
        Route::GetDelivery(id) => one(env, config, &id).await,
        Route::ReplayDelivery(id) => replay(env, config, &id).await,
        Route::ListDestinations => destination_list(env, config).await,
        Route::GetDestination(name) => destination_one(env, config, &name).await,
        Route::CreateDestination => change(req, env, &token, ChangeOp::Create, "").await,
        Route::UpdateDestination(name) => change(req, env, &token, ChangeOp::Update, &name).await,
        Route::DeleteDestination(name) => change(req, env, &token, ChangeOp::Delete, &name).await,
        Route::Rotate(name) => change(req, env, &token, ChangeOp::Rotate, &name).await,
        Route::Pause(name) => control(req, env, config, &name, Control::Pause).await,
        Route::Resume(name) => control(req, env, config, &name, Control::Resume).await,
        Route::Recover(name) => control(req, env, config, &name, Control::Recover).await,
        Route::Test(name) => match config.delivery.named(&name) {
            Some(d) => test(env, config, d).await,
            None => no_destination(&name),
        },
        Route::Listen(name) => listen(req, env, config, &name).await,
        Route::Metrics => metrics(req, env, config).await,
        Route::Changes => changes(req, env).await,
        Route::Webhook | Route::Convert | Route::Health | Route::OpenApi => error_response(404, "not_found", "not an admin route", ""),
    }
}

fn no_destination(name: &str) -> Result<Response> {
    error_response(404, "not_found", &format!("no destination {} is configured", crate::escape::quoted(name)), "")
}

// ------------------------------------------------------- apps at runtime

fn registry_unavailable(why: &str) -> Result<Response> {
    worker::console_error!("admin: the registry could not be reached: {why}");
    error_response(
        503,
        "registry_unavailable",
        "the registry of apps could not be reached; nothing was changed that this answer confirms: try again (with the same Idempotency-Key)",
        "",
    )
}

fn no_registry() -> Result<Response> {
    error_response(503, "not_configured", "apps can be managed at runtime only with the REGISTRY binding (see wrangler.toml)", "")
}

/// The registry's answer to an admin question, passed on as it is (it is the
/// admin API's own answer, errors included). A registry that cannot be
/// reached answers 503, so that the caller tries again (with the same key).
async fn registry(env: &Env, input: registry::Input) -> Result<Response> {
    if !has_registry(env) {
        return no_registry();
    }
    let answer = match ask(env, &Object::Registry, input.encode()).await {
        Ok(a) => a,
        Err(e) => return registry_unavailable(&e.to_string()),
    };
    if !answer.body.trim_start().starts_with('{') {
        return registry_unavailable(&format!("it answered {}: {}", answer.status, answer.body.chars().take(200).collect::<String>()));
    }
    let mut response = json_response(answer.status, &answer.body)?;
    if let Some(value) = answer.replayed {
        response.headers_mut().set("idempotent-replayed", &value)?;
    }
    Ok(response)
}

/// A change to the apps, as the registry takes it.
async fn change(req: &Request, env: &Env, token: &str, op: ChangeOp, name: &str) -> Result<Response> {
    // Not read at all when it says it is larger than any change.
    let length = req.headers().get("content-length").ok().flatten().and_then(|l| l.trim().parse::<usize>().ok());
    if length.is_some_and(|l| l > registry::MAX_BODY_BYTES) {
        return error_response(413, "too_large", &format!("the body is over {} bytes", registry::MAX_BODY_BYTES), "");
    }
    let body = req.clone()?.text().await?;
    if body.len() > registry::MAX_BODY_BYTES {
        return error_response(413, "too_large", &format!("the body is over {} bytes", registry::MAX_BODY_BYTES), "");
    }
    let key = req.headers().get("idempotency-key").ok().flatten().map(|k| k.trim().to_owned());
    if key.as_deref().is_some_and(|k| !registry::valid_idempotency_key(k)) {
        return error_response(400, "invalid_parameter", "the Idempotency-Key header is 1 to 64 letters, digits, '-' or '_'", "Idempotency-Key");
    }
    let change = AppChange { by: crate::delivery::apps::fingerprint(token), name: name.to_owned(), body, key };
    registry(env, registry::Input::AppChange { op, change }).await
}

/// `GET /admin/changes?limit=&before=`: the history of changes to the apps.
async fn changes(req: &Request, env: &Env) -> Result<Response> {
    match api::changes_params(&super::http::query(req)) {
        Ok((limit, before)) => registry(env, registry::Input::Changes { limit, before }).await,
        Err(e) => bad_parameter(e),
    }
}

// ---------------------------------------------------- which delivery logs

/// The delivery log the admin API means by `name`: that of the app (or
/// alert target) of that name now, else `name` itself (a log's key, as the
/// listings show for a removed app).
fn key_of(config: &Config, name: &str) -> String {
    config.delivery.named(name).map_or_else(|| name.to_owned(), Destination::log_key)
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
    keys.iter().rev().find(|k| name_of_key(k) == given).cloned()
}

/// The logs of removed apps (deleted, or no longer declared) that still
/// hold deliveries: the registry knows them. Empty when it cannot be asked.
async fn removed_logs(env: &Env, config: &Config) -> Result<Vec<String>> {
    if !has_registry(env) {
        // A bridge that never delivers may leave the Durable Objects out.
        return Ok(Vec::new());
    }
    let logs = match ask_ok(env, &Object::Registry, registry::Input::Logs.encode()).await {
        Ok(text) => Logs::decode(&text).map_err(internal)?,
        Err(e) => {
            worker::console_error!("admin: the registry could not be asked for removed destinations: {e}");
            return Ok(Vec::new());
        }
    };
    Ok(logs.keys.into_iter().filter(|k| config.delivery.destination(k).is_none()).collect())
}

/// Every delivery log whose deliveries the admin API shows, by key: the
/// configured apps' and alert targets', then those of removed apps.
async fn known(env: &Env, config: &Config) -> Result<Vec<String>> {
    let mut keys: Vec<String> = config.delivery.destinations.list.iter().map(Destination::log_key).collect();
    keys.extend(removed_logs(env, config).await?);
    Ok(keys)
}

/// The apps the registry manages, in the admin API's words, by log key.
async fn runtime_apps(env: &Env) -> Result<Vec<(String, String)>> {
    if !has_registry(env) {
        return Ok(Vec::new());
    }
    let text = ask_ok(env, &Object::Registry, registry::Input::Apps.encode()).await?;
    let value = json::parse(&text, &Limits::INTERNAL).map_err(internal)?;
    let Some(Value::Array(items)) = value.get("apps") else { return Ok(Vec::new()) };
    Ok(items
        .iter()
        .filter_map(|item| {
            let name = item.get("name")?.as_str()?.text().into_owned();
            let incarnation = item.get("incarnation").and_then(Value::as_str).map(|i| i.text().into_owned());
            Some((log_key(&name, incarnation.as_deref()), item.to_json()))
        })
        .collect())
}

/// Each destination as listed, with its log's key: the declared apps, the
/// registry's (one also declared is listed once, as declared), the alert
/// targets, then removed apps whose logs still hold deliveries.
async fn listed(env: &Env, config: &Config) -> Result<Vec<(String, String)>> {
    let mut items: Vec<(String, String)> = Vec::new();
    for d in config.delivery.destinations.list.iter().filter(|d| d.source == Source::Declared) {
        items.push((d.log_key(), destination_json(d)));
    }
    for (key, fields) in runtime_apps(env).await? {
        if !items.iter().any(|(k, _)| name_of_key(k) == name_of_key(&key)) {
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
        items.push((d.log_key(), w.finish()));
    }
    for key in removed_logs(env, config).await? {
        if !items.iter().any(|(k, _)| *k == key) {
            // A removed app: its name, and which incarnation of it this was.
            let fields = json::Writer::object().str("name", name_of_key(&key)).opt_str("incarnation", incarnation_of_key(&key)).finish();
            items.push((key, fields));
        }
    }
    Ok(items)
}

/// A listed destination: its settings (a JSON object) and its log's health
/// (another), as one object.
fn with_health(fields: &str, health: &str) -> String {
    let fields = fields.trim();
    let health = health.trim();
    let inner = health.strip_prefix('{').and_then(|h| h.strip_suffix('}')).unwrap_or("").trim();
    let head = fields.strip_suffix('}').unwrap_or(fields);
    if inner.is_empty() {
        return format!("{head}}}");
    }
    let sep = if head.trim_end().ends_with('{') { "" } else { "," };
    format!("{head}{sep}{inner}}}")
}

// ------------------------------------------------------------ destinations

/// `GET /admin/destinations`.
async fn destination_list(env: &Env, config: &Config) -> Result<Response> {
    let items = listed(env, config).await?;
    let healths = futures_util::future::join_all(items.iter().map(|(key, _)| ask_log_ok(env, key, log::Input::Health { key: key.clone() }))).await;
    let mut out = Vec::with_capacity(items.len());
    for ((_, fields), health) in items.iter().zip(healths) {
        out.push(with_health(fields, &health?));
    }
    json_response(200, &format!("{{\"destinations\":[{}]}}", out.join(",")))
}

/// `GET /admin/destinations/{name}`: the app of that name now, else a
/// removed one (by name or by its log's key).
async fn destination_one(env: &Env, config: &Config, name: &str) -> Result<Response> {
    let items = listed(env, config).await?;
    let current = items.iter().find(|(k, _)| name_of_key(k) == name && config.delivery.destination(k).is_some());
    let Some((key, fields)) = current.or_else(|| items.iter().find(|(k, _)| k == name || name_of_key(k) == name)) else {
        return no_destination(name);
    };
    let health = ask_log_ok(env, key, log::Input::Health { key: key.clone() }).await?;
    json_response(200, &format!("{{\"destination\":{}}}", with_health(fields, &health)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Control {
    Pause,
    Resume,
    Recover,
}

/// `POST /admin/destinations/{name}/pause|resume|recover`.
async fn control(req: &Request, env: &Env, config: &Config, name: &str, what: Control) -> Result<Response> {
    let Some(d) = config.delivery.named(name) else { return no_destination(name) };
    let key = d.log_key();
    let input = match what {
        Control::Pause => log::Input::Pause { key: key.clone() },
        Control::Resume => log::Input::Resume { key: key.clone() },
        Control::Recover => {
            let body = req.clone()?.text().await?;
            match api::recover_request(&key, &body) {
                Ok(r) => log::Input::Recover(r),
                Err(e) => return error_response(400, "invalid_body", &e.message, &e.param),
            }
        }
    };
    let reply = ask_log_ok(env, &key, input).await?;
    let head = json::Writer::object().str("destination", &d.name).finish();
    let status = if what == Control::Recover { 202 } else { 200 };
    json_response(status, &with_health(&head, &reply))
}

/// `POST /admin/destinations/{name}/test`: Drift's example, translated as
/// this bridge translates it; the first of its events the app subscribes
/// to (or, if none, the push), sent by the app's delivery log at once.
async fn test(env: &Env, config: &Config, d: &Destination) -> Result<Response> {
    let now = worker::Date::now().as_millis() as i64;
    let value = json::parse(super::answer::DRIFT_EXAMPLE, &config.limits()).map_err(internal)?;
    let options = crate::rules::Options { legacy: config.legacy, received_at_ms: now, limits: config.limits() };
    let events = crate::rules::translate_value(&value, &options).map_err(internal)?;
    let wanted = events.iter().find(|e| d.wants(&e.event_type, Some("1")));
    let Some(event) = wanted.or_else(|| events.iter().find(|e| e.event_type == "conversation_push")).or(events.first()) else {
        return Err(internal("Drift's example translates to nothing"));
    };
    let random = js_sys::Math::random();
    // 16 hex digits, as every event id: the log and the admin API read it so.
    let event_id = format!("{:016x}", (random * 1.8e19) as u64 ^ (now as u64).rotate_left(17));
    let request = TestDelivery {
        key: d.log_key(),
        event_id,
        event_type: event.event_type.to_string(),
        body: event.json.clone(),
        subscribed: wanted.is_some(),
    };
    match ask_log(env, &d.log_key(), log::Input::Test(request)).await? {
        Replied { status: 200, body, .. } => json_response(200, &body),
        Replied { status: 404, body, .. } => error_response(404, "not_found", &body, ""),
        Replied { status: 409, body, .. } => error_response(409, "cannot_send", &body, ""),
        Replied { status, body, .. } => Err(internal(format!("the delivery log answered {status}: {body}"))),
    }
}

/// `GET /admin/destinations/{name}/listen`: the WebSocket of `drift-bridge
/// listen`, passed to the app's delivery log, which takes it (or refuses it
/// with the admin API's error) and sends the app's deliveries over it.
async fn listen(req: &Request, env: &Env, config: &Config, name: &str) -> Result<Response> {
    let Some(d) = config.delivery.named(name) else { return no_destination(name) };
    if !req.headers().get("upgrade").ok().flatten().is_some_and(|u| u.eq_ignore_ascii_case("websocket")) {
        return error_response(426, "upgrade_required", "this route is a WebSocket (drift-bridge listen connects to it)", "");
    }
    let to = log_of(&d.log_key());
    let stub = env.durable_object(to.namespace())?.id_from_name(&to.instance_name())?.get_stub()?;
    let url = format!("https://do/listen?key={}", percent_encode(&d.log_key()));
    let mut init = RequestInit::new();
    init.with_method(Method::Get).with_headers(req.headers().clone());
    stub.fetch_with_request(Request::new_with_init(&url, &init)?).await
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// -------------------------------------------------------------- metrics

/// `GET /admin/metrics?since=&until=&step=minute|hour&destination=&type=`
/// (JSON), or with `format=prometheus` / `Accept: text/plain` the counters
/// since each log began, as Prometheus text.
async fn metrics(req: &Request, env: &Env, config: &Config) -> Result<Response> {
    let now = worker::Date::now().as_millis() as i64;
    let accept = req.headers().get("accept").ok().flatten().unwrap_or_default();
    let p = match MetricsParams::parse(&super::http::query(req), &accept, now) {
        Ok(p) => p,
        Err(e) => return bad_parameter(e),
    };
    let mut keys: Vec<String> = listed(env, config).await?.into_iter().map(|(k, _)| k).collect();
    if let Some(d) = &p.destination {
        let Some(key) = resolve_key(config, &keys, d) else {
            return error_response(400, "invalid_parameter", &format!("no destination {} is configured or holds deliveries", crate::escape::quoted(d)), "destination");
        };
        keys = vec![key];
    }
    let only_type = p.event_type.as_deref();
    if p.prometheus {
        // A removed app's counters end with it; an app of the same name
        // created since is another series, starting from zero.
        keys.retain(|key| config.delivery.destination(key).is_some());
        let totals = futures_util::future::join_all(keys.iter().map(|k| ask_log_ok(env, k, log::Input::Totals))).await;
        let mut scrapes = Vec::with_capacity(keys.len());
        for (key, text) in keys.iter().zip(totals) {
            scrapes.push(api::scrape(name_of_key(key), &text?, only_type).map_err(internal)?);
        }
        let body = crate::delivery::metrics::prometheus(&scrapes);
        let headers = worker::Headers::new();
        headers.set("content-type", "text/plain; version=0.0.4; charset=utf-8")?;
        super::http::protect(&headers)?;
        return Ok(Response::builder().with_status(200).with_headers(headers).fixed(body.into_bytes()));
    }
    let replies = futures_util::future::join_all(keys.iter().map(|k| ask_log_ok(env, k, log::Input::Metrics(p.query)))).await;
    let mut items = Vec::with_capacity(keys.len());
    for (key, reply) in keys.iter().zip(replies) {
        let configured = config.delivery.destination(key).is_some();
        let removed = incarnation_of_key(key).filter(|_| !configured);
        items.push(api::metrics_item(name_of_key(key), removed, configured, &reply?, only_type).map_err(internal)?);
    }
    json_response(200, &api::metrics_answer(&p.query, &items))
}

// ------------------------------------------------------------- deliveries

/// `GET /admin/deliveries`: the delivery logs' pages, merged, newest first;
/// `cursor` is the previous page's `next`.
async fn list(req: &Request, env: &Env, config: &Config) -> Result<Response> {
    let p = match ListParams::parse(&super::http::query(req)) {
        Ok(p) => p,
        Err(e) => return bad_parameter(e),
    };
    let mut keys = known(env, config).await?;
    if let Some(d) = &p.destination {
        let Some(key) = resolve_key(config, &keys, d) else {
            return error_response(400, "invalid_parameter", &format!("no destination {} is configured or holds deliveries", crate::escape::quoted(d)), "destination");
        };
        keys = vec![key];
    }
    // Where each log's page starts; a log the cursor calls done is not asked.
    let mut asked = Vec::new();
    let mut done = Vec::new();
    for key in keys {
        match Cursor::start(p.cursor.as_ref(), &key) {
            Some(before) => asked.push((key, before)),
            None => done.push(key),
        }
    }
    let answers = futures_util::future::join_all(
        asked.iter().map(|(key, before)| ask_log_ok(env, key, log::Input::List(ListQuery { before: *before, ..p.query.clone() }))),
    )
    .await;
    let mut pages = Vec::with_capacity(asked.len());
    for ((key, before), text) in asked.into_iter().zip(answers) {
        pages.push((key, before, LogPage::decode(&text?).map_err(internal)?));
    }
    let (items, next) = api::merge_pages(&pages, &done, p.query.limit);
    let next = next.map_or_else(|| "null".to_owned(), |n| {
        let mut quoted = String::new();
        json::write_str_escaped(&mut quoted, &n);
        quoted
    });
    json_response(200, &format!("{{\"deliveries\":[{}],\"next\":{next}}}", items.join(",")))
}

/// The delivery logs a delivery id may be in, most likely first: that of
/// the app of its name now, then those of removed apps of that name.
async fn logs_of(env: &Env, config: &Config, id: &str) -> Result<Option<Vec<String>>> {
    let Some((_, name, _)) = crate::delivery::key::parse_id(id) else { return Ok(None) };
    let mut keys = vec![key_of(config, name)];
    for key in removed_logs(env, config).await? {
        if name_of_key(&key) == name && !keys.contains(&key) {
            keys.push(key);
        }
    }
    Ok(Some(keys))
}

/// Asks each log of `keys` in turn until one knows the delivery: its answer,
/// or the first's 404.
async fn ask_logs(env: &Env, keys: &[String], input: impl Fn() -> log::Input) -> Result<Replied> {
    let mut first = None;
    for key in keys {
        let answer = ask_log(env, key, input()).await?;
        if answer.status != 404 {
            return Ok(answer);
        }
        first.get_or_insert(answer);
    }
    Ok(first.unwrap_or(Replied { status: 404, body: "no such delivery".into(), replayed: None }))
}

fn not_a_delivery_id(id: &str) -> Result<Response> {
    error_response(404, "not_found", &format!("{} is not a delivery id (<event id>.<destination>)", crate::escape::quoted(id)), "")
}

/// `GET /admin/deliveries/{id}`: the delivery, its stored body without
/// Drift's token.
async fn one(env: &Env, config: &Config, id: &str) -> Result<Response> {
    let Some(keys) = logs_of(env, config, id).await? else { return not_a_delivery_id(id) };
    let reply = match ask_logs(env, &keys, || log::Input::Get { id: id.to_owned() }).await? {
        Replied { status: 200, body, .. } => body,
        Replied { status: 404, body, .. } => return error_response(404, "not_found", &body, ""),
        Replied { body, .. } => return Err(internal(body)),
    };
    let value = json::parse(&reply, &Limits::INTERNAL).map_err(internal)?;
    let Some(members) = value.as_object() else { return Err(internal("the delivery log answered something unreadable")) };
    let mut w = json::Writer::object();
    for (key, value) in members {
        let key = key.text();
        match value.as_str() {
            Some(body) if key == "body" && body.text().is_empty() => w.raw(&key, "null"),
            Some(body) if key == "body" => w.raw(&key, &redact::token(&body.text())),
            _ => w.raw(&key, &value.to_json()),
        };
    }
    json_response(200, &format!("{{\"delivery\":{}}}", w.finish()))
}

/// `POST /admin/deliveries/{id}/replay`.
async fn replay(env: &Env, config: &Config, id: &str) -> Result<Response> {
    let Some(keys) = logs_of(env, config, id).await? else { return not_a_delivery_id(id) };
    match ask_logs(env, &keys, || log::Input::Replay { id: id.to_owned() }).await? {
        Replied { status: 200, body, .. } => json_response(202, &body),
        Replied { status: 404, body, .. } => error_response(404, "not_found", &body, ""),
        Replied { status: 409, body, .. } => error_response(409, "conflict", &body, ""),
        Replied { body, .. } => Err(internal(body)),
    }
}
