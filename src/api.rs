//! The bridge's HTTP surface, as decisions: which route a request is
//! ([`route`], from the one table of routes, [`ROUTES`], that the 404
//! messages and the OpenAPI description are made from), what its
//! parameters mean ([`ListParams`], [`MetricsParams`], …, every bad one
//! named), and how the answers of several delivery logs become one
//! ([`merge_pages`] with its [`Cursor`], [`metrics_item`], [`scrape`]).
//! The Worker's admin routes (src/worker/admin.rs) only move bytes between
//! these and the objects.

use crate::delivery::log::{ListQuery, MetricsQuery, Recover};
use crate::delivery::metrics::{self, HOUR_MS, MINUTE_MS};
use crate::delivery::status::ApiStatus;
use crate::json::{self, Limits, Value, Writer};

/// One route of the bridge: its method, its path (with `{name}` and `{id}`
/// for a segment), what it does, and who may call it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: &'static str,
    pub path: &'static str,
    /// The OpenAPI `operationId`.
    pub id: &'static str,
    pub summary: &'static str,
    /// Needs `Authorization: Bearer <ADMIN_TOKEN>`.
    pub admin: bool,
}

/// Every route the worker answers (its static assets aside).
pub const ROUTES: &[RouteSpec] = &[
    RouteSpec { method: "POST", path: "/webhooks/drift", id: "receiveWebhook", summary: "Drift's webhook: verify, translate, hand to each app's delivery log", admin: false },
    RouteSpec { method: "POST", path: "/convert", id: "convert", summary: "Translate events without storing or delivering anything", admin: false },
    RouteSpec { method: "GET", path: "/health", id: "health", summary: "Whether the bridge is configured; with the admin token, its problems and setup", admin: false },
    RouteSpec { method: "GET", path: "/openapi.json", id: "openapi", summary: "This description of the bridge's HTTP surface", admin: false },
    RouteSpec { method: "GET", path: "/admin/deliveries", id: "listDeliveries", summary: "The delivery logs, merged, newest first, a page at a time", admin: true },
    RouteSpec { method: "GET", path: "/admin/deliveries/{id}", id: "getDelivery", summary: "One delivery, its body (Drift's token redacted) and its attempts", admin: true },
    RouteSpec { method: "POST", path: "/admin/deliveries/{id}/replay", id: "replayDelivery", summary: "A failed or gone delivery, once more", admin: true },
    RouteSpec { method: "GET", path: "/admin/destinations", id: "listDestinations", summary: "Every app and alert target with its state and health", admin: true },
    RouteSpec { method: "POST", path: "/admin/destinations", id: "createDestination", summary: "A new app managed at runtime", admin: true },
    RouteSpec { method: "GET", path: "/admin/destinations/{name}", id: "getDestination", summary: "One app, with its state and health", admin: true },
    RouteSpec { method: "PATCH", path: "/admin/destinations/{name}", id: "updateDestination", summary: "Change an app managed at runtime", admin: true },
    RouteSpec { method: "DELETE", path: "/admin/destinations/{name}", id: "deleteDestination", summary: "Delete an app managed at runtime, ending its incarnation", admin: true },
    RouteSpec { method: "POST", path: "/admin/destinations/{name}/pause", id: "pauseDestination", summary: "Hold an app's deliveries until it is resumed", admin: true },
    RouteSpec { method: "POST", path: "/admin/destinations/{name}/resume", id: "resumeDestination", summary: "Release what was held, in order", admin: true },
    RouteSpec { method: "POST", path: "/admin/destinations/{name}/recover", id: "recoverDestination", summary: "Replay an app's dead letters since a time", admin: true },
    RouteSpec { method: "POST", path: "/admin/destinations/{name}/test", id: "testDestination", summary: "Send Drift's example to an app at once", admin: true },
    RouteSpec { method: "POST", path: "/admin/destinations/{name}/rotate-secret", id: "rotateSecret", summary: "A new signing secret, the old one signing too for an overlap", admin: true },
    RouteSpec { method: "GET", path: "/admin/destinations/{name}/listen", id: "listenDestination", summary: "A WebSocket that takes a listening app's deliveries (drift-bridge listen)", admin: true },
    RouteSpec { method: "GET", path: "/admin/metrics", id: "metrics", summary: "Counts per app and type over time, as JSON or Prometheus text", admin: true },
    RouteSpec { method: "GET", path: "/admin/changes", id: "listChanges", summary: "The history of changes to the apps managed at runtime", admin: true },
];

/// A route, with what its path names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    Webhook,
    Convert,
    Health,
    OpenApi,
    ListDeliveries,
    GetDelivery(String),
    ReplayDelivery(String),
    ListDestinations,
    CreateDestination,
    GetDestination(String),
    UpdateDestination(String),
    DeleteDestination(String),
    Pause(String),
    Resume(String),
    Recover(String),
    Test(String),
    Rotate(String),
    Listen(String),
    Metrics,
    Changes,
}

/// Why a request matches no route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// No route has this path: what the routes are.
    NotFound(String),
    /// The path is a route's, not with this method: `Allow`.
    MethodNotAllowed(String),
}

/// The route of `method` and `path` (a `HEAD` is a `GET`).
pub fn route(method: &str, path: &str) -> Result<Route, RouteError> {
    let method = if method == "HEAD" { "GET" } else { method };
    let mut allowed = Vec::new();
    for spec in ROUTES {
        let Some(params) = matches(spec.path, path) else { continue };
        if spec.method != method {
            allowed.push(spec.method);
            continue;
        }
        let p = params.into_iter().next().unwrap_or_default();
        return Ok(match spec.id {
            "receiveWebhook" => Route::Webhook,
            "convert" => Route::Convert,
            "health" => Route::Health,
            "openapi" => Route::OpenApi,
            "listDeliveries" => Route::ListDeliveries,
            "getDelivery" => Route::GetDelivery(p),
            "replayDelivery" => Route::ReplayDelivery(p),
            "listDestinations" => Route::ListDestinations,
            "createDestination" => Route::CreateDestination,
            "getDestination" => Route::GetDestination(p),
            "updateDestination" => Route::UpdateDestination(p),
            "deleteDestination" => Route::DeleteDestination(p),
            "pauseDestination" => Route::Pause(p),
            "resumeDestination" => Route::Resume(p),
            "recoverDestination" => Route::Recover(p),
            "testDestination" => Route::Test(p),
            "rotateSecret" => Route::Rotate(p),
            "listenDestination" => Route::Listen(p),
            "metrics" => Route::Metrics,
            _ => Route::Changes,
        });
    }
    if allowed.is_empty() {
        let admin = path == "/admin" || path.starts_with("/admin/");
        let list: Vec<String> = ROUTES.iter().filter(|r| r.admin == admin).map(|r| format!("{} {}", r.method, r.path)).collect();
        let what = if admin { "admin route" } else { "route" };
        return Err(RouteError::NotFound(format!("no {what} for {method} {path}; the {what}s are {}", and_list(&list))));
    }
    if allowed.contains(&"GET") {
        allowed.push("HEAD");
    }
    Err(RouteError::MethodNotAllowed(allowed.join(", ")))
}

/// The `{…}` segments of `path` if it is `template`'s, else `None`.
/// `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

fn matches(template: &str, path: &str) -> Option<Vec<String>> {
    // The admin routes forgive a trailing slash; the public ones are exact,
    // as the entry module serves them.
    let path = if template.starts_with("/admin") { path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path) } else { path };
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    if t.len() != p.len() {
        return None;
    }
    let mut params = Vec::new();
    for (a, b) in t.iter().zip(&p) {
        if a.starts_with('{') {
            if b.is_empty() {
                return None;
            }
            params.push(percent_decoded(b));
        } else if a != b {
            return None;
        }
    }
    Some(params)
}

fn percent_decoded(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(h), Some(l)) = (hex(bytes.get(i + 1).copied()), hex(bytes.get(i + 2).copied())) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: Option<u8>) -> Option<u8> {
    (b? as char).to_digit(16).map(|d| d as u8)
}

/// A bad parameter: what is wrong, and which.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamError {
    pub message: String,
    pub param: String,
}

fn bad(param: &str, message: impl Into<String>) -> ParamError {
    ParamError { message: message.into(), param: param.to_owned() }
}

/// The most a page of the delivery log holds, and how many by default.
pub const MAX_LIMIT: u32 = 200;
pub const DEFAULT_LIMIT: u32 = 50;

/// `GET /admin/deliveries`' parameters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListParams {
    /// What each log is asked (its `before` set per log from the cursor).
    pub query: ListQuery,
    /// Only this app's log (a name, or a removed app's `<name>~<incarnation>`).
    pub destination: Option<String>,
    pub cursor: Option<Cursor>,
}

impl ListParams {
    pub fn parse(pairs: &[(String, String)]) -> Result<ListParams, ParamError> {
        let mut p = ListParams { query: ListQuery { limit: DEFAULT_LIMIT, ..ListQuery::default() }, ..ListParams::default() };
        for (key, value) in pairs {
            match key.as_str() {
                "status" => {
                    for word in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                        let Some(s) = ApiStatus::parse(word) else {
                            let known: Vec<&str> = ApiStatus::ALL.iter().map(|s| s.as_str()).collect();
                            return Err(bad("status", format!("unknown status {word:?}; the statuses are {}", known.join(", "))));
                        };
                        p.query.statuses.extend(s.stored().iter().map(|s| s.sql().to_owned()));
                    }
                }
                "destination" => p.destination = Some(value.clone()),
                "limit" => match value.parse::<u32>() {
                    Ok(n) if (1..=MAX_LIMIT).contains(&n) => p.query.limit = n,
                    _ => return Err(bad("limit", format!("expected a number from 1 to {MAX_LIMIT}"))),
                },
                "cursor" => p.cursor = Some(Cursor::parse(value).ok_or_else(|| bad("cursor", "not a cursor from a previous page's next"))?),
                "conversation" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit() || b == b'-') => p.query.conversation = Some(value.clone()),
                "conversation" => return Err(bad("conversation", "expected a conversation id (an integer)")),
                "event" if value.len() == 16 && value.bytes().all(|b| b.is_ascii_hexdigit()) => p.query.event = Some(value.to_ascii_lowercase()),
                "event" => return Err(bad("event", "expected an event id (16 hex digits)")),
                "since" | "until" => match value.parse::<i64>() {
                    Ok(ms) if key == "since" => p.query.since = Some(ms),
                    Ok(ms) => p.query.until = Some(ms),
                    Err(_) => return Err(bad(key, "expected milliseconds since the epoch")),
                },
                _ => {}
            }
        }
        Ok(p)
    }
}

/// Where a page of the merged listing ends in each delivery log: below a
/// position, or done. Written `key:position` (or `key:-`) joined by `.`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub logs: Vec<(String, Option<i64>)>,
}

impl Cursor {
    pub fn parse(text: &str) -> Option<Cursor> {
        let logs = text
            .split('.')
            .map(|part| {
                let (name, at) = part.rsplit_once(':')?;
                let at = if at == "-" { None } else { Some(at.parse().ok()?) };
                (!name.is_empty()).then(|| (name.to_owned(), at))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Cursor { logs })
    }

    pub fn encode(&self) -> String {
        self.logs.iter().map(|(k, at)| format!("{k}:{}", at.map_or_else(|| "-".to_owned(), |p| p.to_string()))).collect::<Vec<_>>().join(".")
    }

    /// Where the page starts in the log `key`: `Some(None)` from the top,
    /// `Some(Some(p))` below `p`, `None` done.
    pub fn start(cursor: Option<&Cursor>, key: &str) -> Option<Option<i64>> {
        match cursor {
            None => Some(None),
            Some(c) => match c.logs.iter().find(|(k, _)| k == key) {
                Some((_, Some(at))) => Some(Some(*at)),
                Some((_, None)) => None,
                None => Some(None),
            },
        }
    }
}

/// One log's page of the listing, as its `/list` answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogPage {
    /// Each delivery's JSON with its acceptance time, id and position.
    pub items: Vec<(i64, String, i64, String)>,
    pub next: Option<i64>,
}

impl LogPage {
    /// Reads a log's `/list` answer: `{"deliveries":[…],"positions":[…],"next"}`.
    pub fn decode(text: &str) -> Result<LogPage, String> {
        let value = json::parse(text, &Limits::INTERNAL).map_err(|e| e.to_string())?;
        let positions: Vec<i64> = match value.get("positions") {
            Some(Value::Array(p)) => p.iter().filter_map(|v| v.as_integer()?.parse().ok()).collect(),
            _ => Vec::new(),
        };
        let next = value.get("next").and_then(Value::as_integer).and_then(|n| n.parse().ok());
        let Some(Value::Array(items)) = value.get("deliveries") else { return Err("a page without deliveries".into()) };
        let items = items
            .iter()
            .zip(positions)
            .map(|(item, position)| {
                let accepted = item.get("acceptedAt").and_then(Value::as_integer).and_then(|n| n.parse().ok()).unwrap_or(0);
                let id = item.get("id").and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
                (accepted, id, position, item.to_json())
            })
            .collect();
        Ok(LogPage { items, next })
    }
}

/// The logs' pages merged, newest first across them (by acceptance time,
/// which only grows in each log), up to `limit`; and the cursor of the next
/// page: in each log, after what this page took from it.
pub fn merge_pages(pages: &[(String, Option<i64>, LogPage)], done: &[String], limit: u32) -> (Vec<String>, Option<String>) {
    let mut taken = vec![0usize; pages.len()];
    let mut out = Vec::new();
    while out.len() < limit as usize {
        let best = pages
            .iter()
            .enumerate()
            .filter(|(i, (_, _, p))| taken[*i] < p.items.len())
            .max_by(|(i, (_, _, a)), (j, (_, _, b))| {
                let (x, y) = (&a.items[taken[*i]], &b.items[taken[*j]]);
                (x.0, &x.1).cmp(&(y.0, &y.1))
            })
            .map(|(i, _)| i);
        let Some(i) = best else { break };
        out.push(pages[i].2.items[taken[i]].3.clone());
        taken[i] += 1;
    }
    let mut logs = Vec::new();
    let mut more = false;
    for (i, (key, before, page)) in pages.iter().enumerate() {
        let position = if taken[i] == page.items.len() {
            page.next
        } else if taken[i] == 0 {
            // Nothing of it on this page: the next starts where this one did.
            Some(before.unwrap_or(i64::MAX))
        } else {
            Some(page.items[taken[i] - 1].2)
        };
        more |= position.is_some();
        logs.push((key.clone(), position));
    }
    logs.extend(done.iter().map(|k| (k.clone(), None)));
    (out, more.then(|| Cursor { logs }.encode()))
}

/// `GET /admin/metrics`' parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MetricsParams {
    pub prometheus: bool,
    pub query: MetricsQuery,
    pub destination: Option<String>,
    pub event_type: Option<String>,
}

impl MetricsParams {
    /// `accept`: the request's `Accept` header (Prometheus text when it asks
    /// for `text/plain` and not JSON, unless `format` says).
    pub fn parse(pairs: &[(String, String)], accept: &str, now: i64) -> Result<MetricsParams, ParamError> {
        let arg = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let prometheus = match arg("format") {
            Some("prometheus") => true,
            Some("json") => false,
            Some(other) => return Err(bad("format", format!("unknown format {other:?}; the formats are json and prometheus"))),
            None => accept.contains("text/plain") && !accept.contains("application/json"),
        };
        let int = |name: &str| -> Result<Option<i64>, ParamError> {
            arg(name).map(|v| v.parse::<i64>().map_err(|_| bad(name, "expected milliseconds since the epoch"))).transpose()
        };
        let until = int("until")?.unwrap_or(now + 1);
        let since = int("since")?.unwrap_or(until - 24 * HOUR_MS);
        if since >= until {
            return Err(bad("since", "since must be before until"));
        }
        let step = match arg("step") {
            Some("minute") => MINUTE_MS,
            Some("hour") => HOUR_MS,
            None if until - since <= 48 * HOUR_MS => MINUTE_MS,
            None => HOUR_MS,
            Some(other) => return Err(bad("step", format!("unknown step {other:?}; the steps are minute and hour"))),
        };
        Ok(MetricsParams {
            prometheus,
            query: MetricsQuery { since, until, step },
            destination: arg("destination").map(str::to_owned),
            event_type: arg("type").map(str::to_owned),
        })
    }
}

/// One app's entry of `GET /admin/metrics`, from its log's `/metrics`
/// answer (`reply`), only the series of `event_type` if given.
pub fn metrics_item(name: &str, removed: Option<&str>, configured: bool, reply: &str, event_type: Option<&str>) -> Result<String, String> {
    let value = json::parse(reply, &Limits::INTERNAL).map_err(|e| e.to_string())?;
    let series: Vec<String> = match value.get("series") {
        Some(Value::Array(items)) => items
            .iter()
            .filter(|s| event_type.is_none_or(|o| s.get("type").and_then(Value::as_str).is_some_and(|t| t.eq_text(o))))
            .map(Value::to_json)
            .collect(),
        _ => Vec::new(),
    };
    let backlog = value.get("backlog").map(Value::to_json).unwrap_or_else(|| "[]".into());
    let before = value.get("backlogBefore").and_then(Value::as_integer).unwrap_or("0").to_owned();
    Ok(Writer::object()
        .str("name", name)
        .opt_str("incarnation", removed)
        .bool("configured", configured)
        .raw("series", &format!("[{}]", series.join(",")))
        .raw("backlog", &backlog)
        .raw("backlogBefore", &before)
        .finish())
}

/// `GET /admin/metrics`' JSON answer, from each app's entry.
pub fn metrics_answer(q: &MetricsQuery, items: &[String]) -> String {
    Writer::object()
        .int("since", q.since)
        .int("until", q.until)
        .int("step", q.step)
        .raw("latencyBucketsMs", &format!("[{}]", metrics::LATENCY_BOUNDS_MS.map(|b| b.to_string()).join(",")))
        .raw("destinations", &format!("[{}]", items.join(",")))
        .finish()
}

/// What Prometheus scrapes of one app, from its log's `/totals` answer.
pub fn scrape(name: &str, reply: &str, event_type: Option<&str>) -> Result<metrics::Scrape, String> {
    let value = json::parse(reply, &Limits::INTERNAL).map_err(|e| e.to_string())?;
    let state = value.get("state").and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
    let counts = match value.get("counts") {
        Some(Value::Object(members)) => members.iter().map(|(k, v)| (k.text().into_owned(), v.as_integer().and_then(|n| n.parse().ok()).unwrap_or(0))).collect(),
        _ => Vec::new(),
    };
    let types = match value.get("types") {
        Some(Value::Array(items)) => {
            items.iter().filter_map(metrics::read_span).filter(|(_, t, _)| event_type.is_none_or(|o| o == t)).map(|(_, t, c)| (t, c)).collect()
        }
        _ => Vec::new(),
    };
    let bytes = value.get("bytes").and_then(Value::as_integer).and_then(|n| n.parse().ok()).unwrap_or(0);
    Ok(metrics::Scrape { destination: name.to_owned(), state, counts, bytes, types })
}

/// `GET /admin/changes`' parameters, as the registry takes them.
pub fn changes_params(pairs: &[(String, String)]) -> Result<(i64, i64), ParamError> {
    let mut limit = 50;
    let mut before = i64::MAX;
    for (key, value) in pairs {
        match key.as_str() {
            "limit" => match value.parse::<i64>() {
                Ok(n) if (1..=i64::from(MAX_LIMIT)).contains(&n) => limit = n,
                _ => return Err(bad("limit", format!("expected a number from 1 to {MAX_LIMIT}"))),
            },
            "before" => before = value.parse::<i64>().map_err(|_| bad("before", "expected a change's seq, as a previous page's next"))?,
            _ => {}
        }
    }
    Ok((limit, before))
}

/// `POST …/recover`'s body, `{"since": <ms>, "status": ["failed", "gone"]}`
/// (both optional), for the log `key`.
pub fn recover_request(key: &str, body: &str) -> Result<Recover, ParamError> {
    let text = body.trim();
    let value = if text.is_empty() { Ok(Value::Object(Vec::new())) } else { json::parse(text, &Limits { max_bytes: 4096, max_depth: 4 }) };
    let value = match value {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return Err(bad("", "expected a JSON object {\"since\": <ms>, \"status\": [\"failed\"]}")),
        Err(e) => return Err(bad(e.path(), e.to_string())),
    };
    let since = match value.get("since") {
        None => 0,
        Some(v) => v.as_integer().and_then(|n| n.parse::<i64>().ok()).ok_or_else(|| bad("since", "expected milliseconds since the epoch"))?,
    };
    let mut statuses = Vec::new();
    match value.get("status") {
        None => statuses.push("failed".to_owned()),
        Some(Value::Array(list)) if !list.is_empty() => {
            for (i, v) in list.iter().enumerate() {
                match v.as_str().map(|s| s.text().into_owned()) {
                    Some(s) if s == "failed" || s == "gone" => statuses.push(s),
                    _ => return Err(bad(&format!("status[{i}]"), "each status must be \"failed\" or \"gone\"")),
                }
            }
        }
        Some(_) => return Err(bad("status", "expected a non-empty array of \"failed\" and \"gone\"")),
    }
    Ok(Recover { key: key.to_owned(), since, statuses })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_found_by_method_and_path_from_the_one_table() {
        let cases: &[(&str, &str, Result<Route, &str>)] = &[
            ("POST", "/webhooks/drift", Ok(Route::Webhook)),
            ("GET", "/health", Ok(Route::Health)),
            ("HEAD", "/health", Ok(Route::Health)),
            ("GET", "/admin/deliveries", Ok(Route::ListDeliveries)),
            ("GET", "/admin/deliveries/", Ok(Route::ListDeliveries)),
            ("GET", "/admin/deliveries/0123456789abcdef.crm", Ok(Route::GetDelivery("0123456789abcdef.crm".into()))),
            ("POST", "/admin/deliveries/0123456789abcdef.crm/replay", Ok(Route::ReplayDelivery("0123456789abcdef.crm".into()))),
            ("PATCH", "/admin/destinations/crm", Ok(Route::UpdateDestination("crm".into()))),
            ("POST", "/admin/destinations/crm%7Eab/pause", Ok(Route::Pause("crm~ab".into()))),
            ("POST", "/admin/destinations/crm/rotate-secret", Ok(Route::Rotate("crm".into()))),
            ("PUT", "/admin/destinations/crm", Err("method GET, PATCH, DELETE, HEAD")),
            ("GET", "/webhooks/drift", Err("method POST")),
            ("GET", "/admin/nope", Err("not found no admin route for GET /admin/nope")),
            ("GET", "/nope", Err("not found no route for GET /nope")),
            ("POST", "/admin/destinations/crm/explode", Err("not found")),
        ];
        for (method, path, want) in cases {
            match (route(method, path), want) {
                (Ok(r), Ok(w)) => assert_eq!(&r, w, "{method} {path}"),
                (Err(RouteError::MethodNotAllowed(allow)), Err(w)) => assert_eq!(format!("method {allow}"), *w, "{method} {path}"),
                (Err(RouteError::NotFound(m)), Err(w)) => assert!(format!("not found {m}").starts_with(w), "{method} {path}: {m}"),
                (got, want) => panic!("{method} {path}: {got:?} against {want:?}"),
            }
        }
    }

    #[test]
    fn pages_of_several_logs_merge_newest_first_with_a_cursor_per_log() {
        let item = |at: i64, id: &str, p: i64| (at, id.to_owned(), p, format!(r#"{{"id":"{id}"}}"#));
        let a = LogPage { items: vec![item(9, "a3", 30), item(5, "a2", 20), item(1, "a1", 10)], next: None };
        let b = LogPage { items: vec![item(7, "b2", 2), item(3, "b1", 1)], next: Some(0) };
        let (items, next) = merge_pages(&[("a".into(), None, a.clone()), ("b".into(), None, b.clone())], &["c".to_owned()], 3);
        assert_eq!(items, [r#"{"id":"a3"}"#, r#"{"id":"b2"}"#, r#"{"id":"a2"}"#]);
        let next = Cursor::parse(&next.unwrap()).unwrap();
        assert_eq!(next.logs, [("a".to_owned(), Some(20)), ("b".to_owned(), Some(2)), ("c".to_owned(), None)]);
        assert_eq!(Cursor::start(Some(&next), "c"), None, "done");
        assert_eq!(Cursor::start(Some(&next), "a"), Some(Some(20)));
        assert_eq!(Cursor::start(None, "z"), Some(None));
        // The last page says so.
        let (_, next) = merge_pages(&[("a".into(), None, LogPage { items: vec![], next: None })], &[], 3);
        assert_eq!(next, None);
        assert_eq!(Cursor::parse("a:5.b:-.crm~0a1:7").unwrap().encode(), "a:5.b:-.crm~0a1:7");
        for bad in ["", "a", ":5", "a:x"] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn bad_parameters_are_named() {
        let pairs = |p: &[(&str, &str)]| p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        for (p, param) in [
            (pairs(&[("status", "nope")]), "status"),
            (pairs(&[("limit", "0")]), "limit"),
            (pairs(&[("cursor", "x")]), "cursor"),
            (pairs(&[("event", "xyz")]), "event"),
            (pairs(&[("conversation", "a")]), "conversation"),
            (pairs(&[("since", "soon")]), "since"),
        ] {
            assert_eq!(ListParams::parse(&p).unwrap_err().param, param);
        }
        let ok = ListParams::parse(&pairs(&[("status", "pending,held"), ("limit", "7")])).unwrap();
        assert_eq!(ok.query.statuses, ["waiting", "queued", "sending", "retrying", "held"]);
        assert_eq!(MetricsParams::parse(&pairs(&[("step", "day")]), "", 0).unwrap_err().param, "step");
        assert!(MetricsParams::parse(&[], "text/plain", 0).unwrap().prometheus);
        assert_eq!(recover_request("k", r#"{"status":["x"]}"#).unwrap_err().param, "status[0]");
        assert_eq!(recover_request("k", "").unwrap().statuses, ["failed"]);
    }
}
