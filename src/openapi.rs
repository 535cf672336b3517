//! The bridge's HTTP surface as an OpenAPI 3.1 document: what
//! `GET /openapi.json` serves, and what `make test` checks with the
//! ecosystem's own tools (openapi-spec-validator, then Schemathesis against
//! the worker running in workerd: tests/openapi/).
//!
//! The document cannot drift from the code where the code can say it: its
//! paths are [`crate::api::ROUTES`], one operation per route (a route
//! without a description here is marked `x-undescribed`, which
//! tests/openapi.rs refuses); the statuses, legacy policies, breaker states,
//! alert kinds and limits are the code's own constants; and the examples
//! of events, ids and answers are made by the core as the document is
//! written, so they are what the bridge really answers. What only the
//! handlers know (which answer has which fields, which error has which
//! code) is written out here, and Schemathesis compares it with the
//! answers of the running worker.
//!
//! Written with the crate's own JSON writer, like every other answer: no
//! dependency, and the same in the worker's wasm as natively.

use crate::api::{self, RouteSpec, ROUTES};
use crate::delivery::alerts::{self, ALERT_TYPE};
use crate::delivery::apps::{DEFAULT_OVERLAP_SECONDS, MAX_APPS, MAX_OVERLAP_SECONDS};
use crate::delivery::breaker::Mode;
use crate::delivery::destination::{MAX_ORG_IDS, MAX_RATE_PER_SECOND, MAX_REPLACEMENT_TOKEN_BYTES, RUNTIME_SECRET_PREFIX};
use crate::delivery::metrics::{HOUR_MS, LATENCY_BOUNDS_MS, MINUTE_MS};
use crate::delivery::registry;
use crate::delivery::schedule::{CAP_SECONDS, MAX_ATTEMPTS};
use crate::delivery::status::{ApiStatus, Status};
use crate::escape::quoted;
use crate::json::{self, Limits, Value, Writer, DEFAULT_MAX_BYTES};
use crate::{translate, LegacyPolicy, Options, Outbound};

/// JSON text.
type Json = String;

/// The whole document, for the bridge of version `version`.
pub fn document(version: &str) -> String {
    let examples = Examples::new();
    o(&[
        ("openapi", s("3.1.0")),
        (
            "info",
            o(&[
                ("title", s("drift-bridge")),
                ("version", s(version)),
                ("summary", s("Drift's conversation webhooks, translated between the push and legacy close forms and delivered to apps.")),
                ("description", s(INFO)),
                ("license", o(&[("name", s("MIT OR Apache-2.0")), ("identifier", s("MIT OR Apache-2.0"))])),
            ]),
        ),
        ("servers", a(&[o(&[("url", s("/")), ("description", s("the bridge that serves this document"))])])),
        ("tags", tags()),
        ("paths", paths(&examples)),
        ("webhooks", webhooks(&examples)),
        ("components", components(&examples)),
    ])
}

const INFO: &str = "drift-bridge receives Drift's webhooks, checks Drift's verification token, \
rewrites each event into the push form (`conversation_inactive`, `conversation_manual_push`, `conversation_push`) \
and the retired legacy close (`conversation_status_updated` with `status: \"closed\"`), and delivers each app \
exactly the event types it subscribes to, signed with Standard Webhooks, at least once and always under the same \
`webhook-id`. What the apps receive is under `webhooks`.\n\n\
Every error is JSON, `{\"error\":{\"code\",\"message\",\"path\"}}` (the `Error` schema): a stable code, a message \
a person can act on, and the JSON path or parameter it is about. A wrong method answers `405 method_not_allowed` \
with `Allow`; an unknown path `404 not_found`. The admin routes (`/admin/…`) need `Authorization: Bearer \
<ADMIN_TOKEN>` and answer `404` while `ADMIN_TOKEN` is not set. Timestamps are milliseconds since the epoch.";

fn tags() -> Json {
    let tag = |name: &str, description: &str| o(&[("name", s(name)), ("description", s(description))]);
    a(&[
        tag("webhook", "Drift's webhook endpoint"),
        tag("convert", "The stateless converter: no secret, nothing stored or delivered"),
        tag("bridge", "The bridge itself: its health and this document"),
        tag("deliveries", "The delivery log: every delivery with its attempts, and replays"),
        tag("destinations", "Each app's (and alert target's) state and health, pause, resume, recovery, a test delivery"),
        tag("apps", "Apps managed at runtime: created, changed, deleted, their secrets rotated, and the history of changes"),
        tag("metrics", "Counts per app and event type over time, as JSON or Prometheus text"),
        tag("to apps", "What the bridge POSTs to each app (the `webhooks` of this document)"),
    ])
}

// ------------------------------------------------------------------ paths

/// One operation per route of [`ROUTES`], grouped by path, in its order.
fn paths(x: &Examples) -> Json {
    let mut order: Vec<&str> = Vec::new();
    for r in ROUTES {
        if !order.contains(&r.path) {
            order.push(r.path);
        }
    }
    let mut w = Writer::with_capacity(64 * 1024);
    for path in order {
        let mut members: Vec<(String, Json)> = Vec::new();
        for r in ROUTES.iter().filter(|r| r.path == path) {
            members.push((r.method.to_ascii_lowercase(), operation(r, x)));
        }
        if path.contains("{id}") {
            members.push(("parameters".into(), a(&[param_ref("DeliveryId")])));
        } else if path.contains("{name}") {
            members.push(("parameters".into(), a(&[param_ref("DestinationName")])));
        }
        let members: Vec<(&str, Json)> = members.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        w.raw(path, &o(&members));
    }
    w.finish()
}

/// What an operation adds to its route: the rest is the route's own.
struct Operation {
    tag: &'static str,
    description: String,
    parameters: Vec<Json>,
    body: Option<Json>,
    /// By status (`"200"`, `"2XX"`, `"default"`); written sorted.
    responses: Vec<(&'static str, Json)>,
    /// The admin token, unless the route is public ([`Operation::public`]).
    security: Json,
    /// No description of this route here yet (tests/openapi.rs refuses it).
    undescribed: bool,
}

impl Operation {
    fn new(tag: &'static str, description: &str) -> Operation {
        Operation {
            tag,
            description: description.to_owned(),
            parameters: Vec::new(),
            body: None,
            responses: Vec::new(),
            security: a(&[o(&[("adminToken", "[]".into())])]),
            undescribed: false,
        }
    }

    fn param(mut self, p: Json) -> Operation {
        self.parameters.push(p);
        self
    }

    fn body(mut self, b: Json) -> Operation {
        self.body = Some(b);
        self
    }

    fn answer(mut self, status: &'static str, r: Json) -> Operation {
        self.responses.push((status, r));
        self
    }

    fn public(mut self, security: Json) -> Operation {
        self.security = security;
        self
    }
}

fn operation(r: &RouteSpec, x: &Examples) -> Json {
    let mut op = describe(r, x);
    if r.admin {
        // Every admin route: no token or a wrong one, and the admin API off.
        if !op.responses.iter().any(|(s, _)| *s == "401") {
            op.responses.push(("401", error_ref("Unauthorized", "")));
        }
        if !op.responses.iter().any(|(s, _)| *s == "404") {
            op.responses.push(("404", error_ref("NotFound", "`not_found`: the admin API is off (no `ADMIN_TOKEN`).")));
        }
    }
    op.responses.sort_by_key(|(status, _)| *status);
    let mut members: Vec<(&str, Json)> =
        vec![("operationId", s(r.id)), ("summary", s(r.summary)), ("description", s(&op.description)), ("tags", a(&[s(op.tag)])), ("security", op.security)];
    if !op.parameters.is_empty() {
        members.push(("parameters", a(&op.parameters)));
    }
    if let Some(body) = op.body {
        members.push(("requestBody", body));
    }
    members.push(("responses", o(&op.responses)));
    if op.undescribed {
        members.push(("x-undescribed", "true".into()));
    }
    o(&members)
}

/// What each route takes and answers, by its `operationId`.
fn describe(r: &RouteSpec, x: &Examples) -> Operation {
    let none = a(&[]);
    match r.id {
        "receiveWebhook" => Operation::new(
            "webhook",
            "Drift's webhook endpoint. The token is checked first (`X-Verification-Token`, or the event's own `token` field, \
             as Drift sends it), then the event is read and translated (docs/rules.md), \
             and each app's share is stored in its delivery log. `200` only once every share is stored: it is durable. \
             A caller without the right token learns nothing of what is wrong with its body.",
        )
        .public(a(&[o(&[("driftVerificationToken", "[]".into())]), o(&[])]))
        .body(o(&[
            ("required", "true".into()),
            ("description", s("One Drift event, at most `MAX_BODY_BYTES` (64 KiB by default).")),
            ("content", o(&[("application/json", media(r_schema("DriftEvent"), &[("inactive", &x.inactive), ("close", &x.close)]))])),
        ]))
        .answer("200", answer("Stored for delivery: the inbound event's id (`received`) and every event it became, in order.", r_schema("Received"), Some(&x.received)))
        .answer("400", error_ref("BadRequest", "`invalid_json`, `invalid_event`, `duplicate_key`, or `too_large` (nested too deeply), with the JSON path: only to a caller with the right token."))
        .answer("401", error_ref("Unauthorized", "`unauthorized`: the token is missing or wrong (the same answer for both)."))
        .answer("413", error_ref("TooLarge", "`too_large`: the body is over `MAX_BODY_BYTES`, refused from `Content-Length` or while reading."))
        .answer("503", error_ref("Unavailable", "`not_configured`: the bridge is not fully configured and accepts nothing (`GET /health` with the admin token says why). `unavailable`: the deliveries could not be stored, or the registry of apps could not be reached (the declared apps' deliveries are stored); Drift sends it again.")),
        "convert" => Operation::new(
            "convert",
            "Translates without storing or delivering anything, and without a token: one event answers \
             `{\"events\":[{\"id\",\"event\"},…]}` (or `400` with its error); a JSON array or NDJSON (one event a line) answers \
             `{\"results\":[…]}`, one `{\"events\"}` or `{\"error\"}` per event, in order, a bad event never stopping the others.",
        )
        .public(none.clone())
        .param(param_ref("Legacy"))
        .param(param_ref("Now"))
        .body(o(&[
            ("required", "true".into()),
            (
                "content",
                o(&[
                    (
                        "application/json",
                        media(
                            o(&[("anyOf", a(&[r_schema("DriftEvent"), array_of(r_schema("DriftEvent"), "Several events, each translated on its own.")]))]),
                            &[("one", &x.inactive)],
                        ),
                    ),
                    ("application/x-ndjson", media(string("Newline-delimited events, one a line."), &[("lines", &s(&x.ndjson))])),
                ]),
            ),
        ]))
        .answer("200", answer("The events each one became.", r_schema("Converted"), Some(&x.converted)))
        .answer("400", error_ref("BadRequest", "The one event's error (`invalid_json`, `invalid_event`, `duplicate_key`, `too_large`), or `invalid_parameter` (`legacy`, `now`)."))
        .answer("413", error_ref("TooLarge", "`too_large`: the body is over `MAX_BODY_BYTES`.")),
        "health" => Operation::new(
            "bridge",
            "Whether the bridge is fully configured and how many problems it has, for anyone. With the admin token, also the problems \
             themselves and the setup (legacy policy, body limit, how many verification tokens, the apps), never a secret. Served whether \
             or not the registry of apps can be reached: `\"registry\":\"unreachable\"` says when it cannot. `HEAD` answers the same without a body.",
        )
        .public(a(&[o(&[]), o(&[("adminToken", "[]".into())])]))
        .answer(
            "200",
            o(&[
                ("description", s("The bridge's health.")),
                ("content", o(&[("application/json", media(r_schema("Health"), &[("public", &x.health), ("admin", &x.health_admin)]))])),
            ]),
        ),
        "openapi" => Operation::new("bridge", "This document: every route of the bridge (made from its one table of routes) and what it sends to apps.")
            .public(none)
            .answer("200", answer("The OpenAPI 3.1 document.", r_schema("OpenApiDocument"), None)),
        "listDeliveries" => Operation::new(
            "deliveries",
            "Every delivery, not only the failed ones, newest first by when its delivery log took it in (`acceptedAt`), across every app's \
             log (those of removed apps whose deliveries are still kept too), a page at a time. A page reads a bounded number of rows of \
             each log, so a rare filter may answer fewer than `limit` deliveries and a `next`: follow it.",
        )
        .param(param_ref("Status"))
        .param(param_ref("DestinationFilter"))
        .param(param_ref("Conversation"))
        .param(param_ref("Event"))
        .param(param_ref("Since"))
        .param(param_ref("Until"))
        .param(param_ref("Limit"))
        .param(param_ref("Cursor"))
        .answer(
            "200",
            with(
                answer("A page of deliveries.", r_schema("DeliveryPage"), Some(&x.page)),
                &[("links", links("$response.body#/deliveries/0/id", "id", &["getDelivery", "replayDelivery"]))],
            ),
        )
        .answer("400", error_ref("BadRequest", "`invalid_parameter`, naming the parameter; also for a `destination` that is not configured and holds no deliveries.")),
        "getDelivery" => Operation::new("deliveries", "One delivery, with its body as stored (Drift's token redacted) and its attempts.")
            .answer("200", answer("The delivery.", object("", &["delivery"], &[("delivery", r_schema("Delivery"))]), None))
            .answer("404", error_ref("NotFound", "`not_found`: not a delivery id, or no such delivery (expired, or never existed: the message says which retention applies).")),
        "replayDelivery" => Operation::new(
            "deliveries",
            "Queues a failed or gone delivery once more, as a new delivery `<id>.r<n>` with the same event and `webhook-id` and a fresh \
             retry budget (held if its app is down or paused); the original becomes `replayed`.",
        )
        .answer("202", with(answer("Queued again, as `as`.", r_schema("Replayed"), None), &[("links", links("$response.body#/as", "id", &["getDelivery"]))]))
        .answer("404", error_ref("NotFound", "`not_found`: not a delivery id, or no such delivery (expired, or never existed)."))
        .answer("409", error_ref("Conflict", "`conflict`: not a dead letter (only failed or gone deliveries are replayed), already replayed, or its app was removed.")),
        "listDestinations" => Operation::new(
            "destinations",
            "Every destination with its settings (never a secret) and its delivery log's health: the declared apps, the apps managed at \
             runtime, the alert targets (`@<name>`), and removed apps whose deliveries are still kept (`\"configured\": false`, only \
             their name and `incarnation`).",
        )
        .answer(
            "200",
            with(
                answer("The destinations.", object("", &["destinations"], &[("destinations", array_of(r_schema("Destination"), ""))]), None),
                &[(
                    "links",
                    links(
                        "$response.body#/destinations/0/name",
                        "name",
                        &["getDestination", "pauseDestination", "resumeDestination", "recoverDestination", "testDestination", "listenDestination"],
                    ),
                )],
            ),
        ),
        "createDestination" => change_operation(
            "A new app, managed at runtime, checked by the same code as `DESTINATIONS`. With `\"signed\": true` (the default) the bridge \
             makes its Standard Webhooks secret and shows it in this answer, once. The answer comes once every isolate routes by it.",
        )
        .body(o(&[("required", "true".into()), ("content", o(&[("application/json", media(r_schema("AppCreate"), &[("crm", &x.app_create)]))]))]))
        .answer(
            "201",
            with(
                change_answer("Created: the app, its secret (shown this once) and the new version of the apps.", "AppChanged", Some(&x.app_created)),
                &[(
                    "links",
                    links(
                        "$response.body#/destination/name",
                        "name",
                        &["getDestination", "updateDestination", "testDestination", "rotateSecret", "pauseDestination", "deleteDestination"],
                    ),
                )],
            ),
        )
        .answer("400", error_ref("BadRequest", "`invalid_destination` (the first problem's `path` and `message`, all of them in `problems`), `invalid_body`, `invalid_json`, `duplicate_key`; `invalid_parameter` for a bad `Idempotency-Key`."))
        .answer("409", error_ref("Conflict", &format!("`declared` (the name is an app of `DESTINATIONS`), `exists`, `too_many` (the registry holds {MAX_APPS} apps, its most).")))
        .answer("413", error_ref("TooLarge", &format!("`too_large`: the body is over {} bytes (or, without `Content-Length`, over `MAX_BODY_BYTES`).", registry::MAX_BODY_BYTES))),
        "getDestination" => Operation::new(
            "destinations",
            "One destination as listed: the app of that name now, else a removed one (by its name, or its log's key `<name>~<incarnation>`).",
        )
        .answer("200", answer("The destination.", object("", &["destination"], &[("destination", r_schema("Destination"))]), None))
        .answer("404", error_ref("NotFound", "`not_found`: no such destination.")),
        "updateDestination" => change_operation(
            "Changes an app managed at runtime: the fields given replace the app's (`null` clears `orgIds`, `ratePerSecond`, `tokenSecret`, \
             `replacementToken`), and the result is checked as a whole, as a new app is. `\"signed\": true` on an unsigned app makes a \
             secret (shown once), `false` forgets its secrets. An app cannot be renamed. A change that changes nothing answers at once, \
             with the version unchanged.",
        )
        .body(o(&[("required", "true".into()), ("content", o(&[("application/json", media(r_schema("AppPatch"), &[("rate", &x.app_patch)]))]))]))
        .answer("200", change_answer("Changed: the app, a new secret if signing was turned on, and the version.", "AppChanged", None))
        .answer("400", error_ref("BadRequest", "`invalid_destination` (with `problems`: an unknown field, a rename, a bad value), `invalid_body`, `invalid_json`, `duplicate_key`; `invalid_parameter` for a bad `Idempotency-Key`."))
        .answer("404", error_ref("NotFound", "`not_found`: no app of that name is managed at runtime (or the admin API is off)."))
        .answer("409", error_ref("Conflict", "`declared`: an app of `DESTINATIONS`, changed in `wrangler.toml`."))
        .answer("413", error_ref("TooLarge", &format!("`too_large`: the body is over {} bytes.", registry::MAX_BODY_BYTES))),
        "deleteDestination" => change_operation(
            "Deletes an app managed at runtime, ending its incarnation: nothing more is routed to it, and what its log still held becomes a \
             dead letter (\"its app … was removed\"), listed apart until its retention ends and never sent, replayed or recovered again.",
        )
        .answer("200", change_answer("Deleted.", "AppDeleted", None))
        .answer("400", error_ref("BadRequest", "`invalid_parameter`: a bad `Idempotency-Key`."))
        .answer("404", error_ref("NotFound", "`not_found`: no app of that name is managed at runtime (or the admin API is off)."))
        .answer("409", error_ref("Conflict", "`declared`: an app of `DESTINATIONS`, removed in `wrangler.toml`."))
        .answer("413", error_ref("TooLarge", &format!("`too_large`: a body over {} bytes.", registry::MAX_BODY_BYTES))),
        "pauseDestination" => Operation::new(
            "destinations",
            "Holds everything of this destination, like a trip but without probes, until it is resumed.",
        )
        .answer("200", answer("Paused.", r_schema("Paused"), None))
        .answer("404", error_ref("NotFound", "`not_found`: no such destination is configured.")),
        "resumeDestination" => Operation::new("destinations", "Active again: what was held is released in its original order, `DRAIN_PER_SECOND` a second.")
            .answer("200", answer("Resumed.", r_schema("Resumed"), None))
            .answer("404", error_ref("NotFound", "`not_found`: no such destination is configured.")),
        "recoverDestination" => Operation::new(
            "destinations",
            "Replays every dead letter of this destination with one of the statuses, received since `since`, each as a replay with its \
             original `webhook-id`, held and drained in order. The first page at once, the rest by the log's alarm; the destination's \
             `recovery` follows it to the end. Recovering again recovers nothing twice.",
        )
        .body(o(&[
            ("required", "false".into()),
            ("description", s("Both optional: an empty body recovers every failed delivery kept.")),
            ("content", o(&[("application/json", media(r_schema("RecoverRequest"), &[("failed", &x.recover)]))])),
        ]))
        .answer("202", answer("Started: how many so far, and whether more pages remain.", r_schema("Recovering"), None))
        .answer("400", error_ref("BadRequest", "`invalid_body`, with the field (`since`, `status[1]`) in `path`."))
        .answer("404", error_ref("NotFound", "`not_found`: no such destination is configured.")),
        "testDestination" => Operation::new(
            "destinations",
            "Sends Drift's example (`conversation_inactive` of conversation 123456789), as this bridge translates it, to the app at once, \
             whatever its breaker says: the first of its events the app subscribes to (or the push, `\"subscribed\": false`), signed and \
             with Drift's token handled as the app's deliveries are, under a random `webhook-id`. Never retried; kept in the log; not \
             counted by the breaker or the metrics. The answer says what the app did.",
        )
        .answer(
            "200",
            with(
                answer("What the app answered (a failure included: `delivered` says which).", r_schema("TestResult"), None),
                &[("links", links("$response.body#/delivery", "id", &["getDelivery"]))],
            ),
        )
        .answer("404", error_ref("NotFound", "`not_found`: no such destination is configured."))
        .answer("409", error_ref("Conflict", "`cannot_send`: the delivery cannot be made at all (its secret or token cannot be read).")),
        "rotateSecret" => change_operation(
            &format!(
                "A new signing secret, shown once. Until the overlap ends (`overlapSeconds`, {DEFAULT_OVERLAP_SECONDS} by default) every \
                 delivery carries a signature with each secret, so the app may switch any time within it."
            ),
        )
        .body(o(&[("required", "false".into()), ("content", o(&[("application/json", media(r_schema("RotateRequest"), &[("hour", &x.rotate)]))]))]))
        .answer("200", change_answer("Rotated: the app, the new secret (shown this once), when the old one stops signing, and the version.", "AppRotated", None))
        .answer("400", error_ref("BadRequest", "`invalid_destination` (an unknown field, a bad `overlapSeconds`), `invalid_body`, `invalid_json`; `invalid_parameter` for a bad `Idempotency-Key`."))
        .answer("404", error_ref("NotFound", "`not_found`: no app of that name is managed at runtime (or the admin API is off)."))
        .answer("409", error_ref("Conflict", "`declared` (rotate a declared app by naming two secrets in `DESTINATIONS`), `not_signed`, `rotation_pending` (two older secrets are still in their overlap; rotate with `\"overlapSeconds\": 0` to cut over at once)."))
        .answer("413", error_ref("TooLarge", &format!("`too_large`: the body is over {} bytes.", registry::MAX_BODY_BYTES))),
        "listenDestination" => Operation::new(
            "destinations",
            "The WebSocket of `drift-bridge listen`: an app that takes a listener gets its deliveries over it, one frame each, and the \
             listener answers each with what the local app said, which the bridge records as the attempt. Only with `Upgrade: websocket`.",
        )
        .answer("101", o(&[("description", s("Switching Protocols: the WebSocket is open."))]))
        .answer("404", error_ref("NotFound", "`not_found`: no such destination is configured."))
        .answer("426", error_ref("UpgradeRequired", "`upgrade_required`: asked without `Upgrade: websocket`.")),
        "metrics" => Operation::new(
            "metrics",
            &format!(
                "Per destination (alert targets included; a removed app apart, `\"configured\": false`) and event type, per minute (kept 48 \
                 hours) or per hour (30 days): deliveries accepted, delivered, failed, retried, held, attempts and how many succeeded, their \
                 latency as a histogram (counts under each of `latencyBucketsMs` and over the last), and each destination's backlog. With \
                 `format=prometheus`, or `Accept: text/plain` without `application/json`, the counters since each delivery log began as \
                 Prometheus text (0.0.4), for a scraper with the admin token as its bearer token. Minutes are {MINUTE_MS} ms, hours {HOUR_MS} ms."
            ),
        )
        .param(param_ref("MetricsSince"))
        .param(param_ref("MetricsUntil"))
        .param(param_ref("Step"))
        .param(param_ref("DestinationFilter"))
        .param(param_ref("TypeFilter"))
        .param(param_ref("Format"))
        .answer(
            "200",
            o(&[
                ("description", s("The counts, as JSON, or as Prometheus text.")),
                (
                    "content",
                    o(&[
                        ("application/json", o(&[("schema", r_schema("Metrics"))])),
                        (
                            "text/plain",
                            o(&[(
                                "schema",
                                string("Prometheus text format 0.0.4: `drift_bridge_deliveries_accepted_total`, `…_delivered_total`, `…_failed_total`, `…_retried_total`, `…_held_total`, `drift_bridge_attempts_total`, `drift_bridge_attempts_succeeded_total`, the histogram `drift_bridge_delivery_latency_seconds`, and the gauges `drift_bridge_deliveries{status}`, `drift_bridge_destination_state{state}`, `drift_bridge_log_bytes`; labels `destination` and `type`."),
                            )]),
                        ),
                    ]),
                ),
            ]),
        )
        .answer("400", error_ref("BadRequest", "`invalid_parameter`, naming the parameter (`since` not before `until`, an unknown `step` or `format`, a `destination` that is not configured and holds no deliveries).")),
        "listChanges" => Operation::new("apps", "The history of changes to the apps managed at runtime, newest first: what, when, by which admin token (its fingerprint, never the token), the new version. Kept 90 days, the last 500.")
            .param(param_ref("Limit"))
            .param(param_ref("Before"))
            .answer("200", answer("A page of the history.", r_schema("Changes"), None))
            .answer("400", error_ref("BadRequest", "`invalid_parameter` (`limit`, `before`)."))
            .answer("503", error_ref("Unavailable", "`registry_unavailable`: the registry of apps could not be reached; `not_configured`: there is no registry (the `REGISTRY` binding).")),
        _ => {
            let mut op = Operation::new("bridge", "Not described yet.").answer("200", o(&[("description", s("Not described yet."))]));
            if !r.admin {
                op = op.public(a(&[]));
            }
            op.undescribed = true;
            op
        }
    }
}

/// A change to the apps: with an `Idempotency-Key`, safe to send again.
fn change_operation(description: &str) -> Operation {
    Operation::new(
        "apps",
        &format!(
            "{description}\n\nWith an `Idempotency-Key`, the same key and the same request within {} hours get the first answer again \
             (its one-time secret included) with `idempotent-replayed: true`, and change nothing more; the same key with another request \
             is refused (`422`).",
            registry::IDEMPOTENCY_MS / HOUR_MS
        ),
    )
    .param(param_ref("IdempotencyKey"))
    .answer("422", error_ref("Unprocessable", "`idempotency_key_reused`: this `Idempotency-Key` was used for another request."))
    .answer("503", error_ref("Unavailable", "`registry_unavailable`: the registry of apps could not be reached; nothing this answer confirms was changed: send it again, with the same `Idempotency-Key`. `not_configured`: there is no registry (the `REGISTRY` binding)."))
}

fn change_answer(description: &str, schema: &str, example: Option<&Json>) -> Json {
    let mut media = vec![("schema", r_schema(schema))];
    if let Some(e) = example {
        media.push(("example", e.clone()));
    }
    o(&[
        ("description", s(description)),
        ("headers", o(&[("idempotent-replayed", o(&[("$ref", s("#/components/headers/IdempotentReplayed"))]))])),
        ("content", o(&[("application/json", o(&media))])),
    ])
}

// --------------------------------------------------------------- webhooks

/// What the bridge sends to apps: one POST per delivery.
fn webhooks(x: &Examples) -> Json {
    let delivery = |id: &str, summary: &str, description: &str, schema: &str, example: &Json| {
        o(&[(
            "post",
            o(&[
                ("operationId", s(id)),
                ("summary", s(summary)),
                ("description", s(&format!("{description}\n\n{DELIVERY}"))),
                ("tags", a(&[s("to apps")])),
                (
                    "parameters",
                    a(&[param_ref("WebhookIdHeader"), param_ref("WebhookTimestampHeader"), param_ref("WebhookSignatureHeader"), param_ref("UserAgentHeader")]),
                ),
                (
                    "requestBody",
                    o(&[
                        ("required", "true".into()),
                        ("content", o(&[("application/json", o(&[("schema", r_schema(schema)), ("example", example.clone())]))])),
                    ]),
                ),
                ("responses", app_responses()),
            ]),
        )])
    };
    o(&[
        (
            "conversation_inactive",
            delivery("deliverConversationInactive", "A conversation went inactive", "Drift's `conversation_inactive`, as Drift sent it: ten minutes without activity.", "ConversationInactive", &x.outbound[0]),
        ),
        (
            "conversation_manual_push",
            delivery(
                "deliverConversationManualPush",
                "A conversation was closed or synced by hand",
                "Drift's `conversation_manual_push`, as Drift sent it; or made by the bridge from a real close (`conversation_status_updated` with `status: \"closed\"`), with `lastUpdated` the close's `changedAt`.",
                "ConversationManualPush",
                &x.manual_push,
            ),
        ),
        (
            "conversation_push",
            delivery(
                "deliverConversationPush",
                "A conversation is ready to be consumed",
                "Drift's `conversation_push`; or made by the bridge from a `conversation_inactive` or `conversation_manual_push` (the same envelope and data, only `type` changed, with the id of the identical push Drift sends itself, so an app gets it once), or from a real close.",
                "ConversationPush",
                &x.outbound[1],
            ),
        ),
        (
            "conversation_status_updated",
            delivery(
                "deliverConversationStatusUpdated",
                "The legacy close, for apps built on the retired event",
                "The close Drift retired, in exactly Drift's published form: `{\"orgId\",\"type\":\"conversation_status_updated\",\"data\":{\"conversationId\",\"status\":\"closed\",\"changedAt\"}}` (and `token` as the app's setting says), `changedAt` being the inactive, manual-push or push event's `lastUpdated`. Made for every one of those under `LEGACY_POLICY=always` (the default), only for those dated 2020-06-01 to 2020-10-01 under `timeline`, never under `never`. Drift's own status events, of any status, are passed on too.",
                "ConversationStatusUpdated",
                &x.outbound[2],
            ),
        ),
        (
            "other",
            delivery(
                "deliverOtherEvent",
                "Any other Drift event, passed through",
                "Every other Drift event type, passed on exactly as received, to the apps that list its type (or `\"*\"`).",
                "DeliveredEvent",
                &x.other,
            ),
        ),
        (
            "drift_bridge.alert",
            delivery(
                "deliverAlert",
                "An alert, to an alert target",
                "To the targets of `ALERTS`: an app tripped or recovered, was paused or resumed, a dead letter, a backlog, a nearly full log. Coalesced: more of a kind about an app within `ALERT_COALESCE_SECONDS` go as one (`count`). A `slack` target gets `{\"text\"}` instead.",
                "Alert",
                &x.alert,
            ),
        ),
    ])
}

const DELIVERY: &str = "Every attempt of a delivery carries the event's id as `webhook-id`; with a signing secret, \
`webhook-signature` is Standard Webhooks' (`v1,<base64 HMAC-SHA256>` over `{webhook-id}.{webhook-timestamp}.{body}`, one for each \
secret while one is rotated). Redirects are never followed. An app can see a delivery twice (at least once): remember the \
`webhook-id`s you processed.";

/// What an app's answer means to the bridge.
fn app_responses() -> Json {
    o(&[
        ("2XX", o(&[("description", s("Delivered: never sent again."))])),
        (
            "410",
            o(&[("description", s("Gone: the app does not want it. Settled at once, never retried; kept as a dead letter (`gone`), which may be replayed."))]),
        ),
        (
            "default",
            o(&[(
                "description",
                s(&format!(
                    "Anything else, a redirect, or no answer within `DELIVERY_TIMEOUT_MS`: tried again, `RETRY_BASE_SECONDS × 3^(n−1)` later \
                     (capped at {} hours, with jitter), {MAX_ATTEMPTS} attempts in all, then a dead letter (`failed`). No answer, a redirect, \
                     `408`, `429` and `5xx` count against the app: after `CIRCUIT_FAILURES` in a row its deliveries are held and it is probed \
                     until it answers, then they are released in order. Any other `4xx` is that event's problem only.",
                    CAP_SECONDS / 3600
                )),
            )]),
        ),
    ])
}

// ------------------------------------------------------------- components

fn components(x: &Examples) -> Json {
    o(&[
        ("schemas", schemas(x)),
        ("parameters", parameters(x)),
        ("headers", o(&[("IdempotentReplayed", o(&[("description", s("`true` when this is the answer to an earlier request with the same `Idempotency-Key`.")), ("schema", enum_of(&["true"], ""))]))])),
        ("responses", error_responses(x)),
        (
            "securitySchemes",
            o(&[
                (
                    "adminToken",
                    o(&[
                        ("type", s("http")),
                        ("scheme", s("bearer")),
                        ("description", s("`Authorization: Bearer <ADMIN_TOKEN>` (32 characters or more; two, comma-separated, while it is rotated). The admin routes answer `404` while `ADMIN_TOKEN` is not set.")),
                    ]),
                ),
                (
                    "driftVerificationToken",
                    o(&[
                        ("type", s("apiKey")),
                        ("in", s("header")),
                        ("name", s("X-Verification-Token")),
                        ("description", s("Drift's verification token (`DRIFT_VERIFICATION_TOKEN`, several comma-separated while it is rotated). Drift may send it in the event's `token` field instead, which is accepted as well.")),
                    ]),
                ),
            ]),
        ),
    ])
}

fn error_responses(x: &Examples) -> Json {
    let response = |description: &str, code: &str, message: &str| {
        let example = o(&[("error", o(&[("code", s(code)), ("message", s(message)), ("path", s(""))]))]);
        o(&[("description", s(description)), ("content", o(&[("application/json", o(&[("schema", r_schema("Error")), ("example", example)]))]))])
    };
    o(&[
        (
            "BadRequest",
            o(&[
                ("description", s("A bad body or parameter: its code, and the JSON path or parameter in `path`.")),
                ("content", o(&[("application/json", o(&[("schema", r_schema("Error")), ("example", x.bad_event.clone())]))])),
            ]),
        ),
        (
            "Unauthorized",
            response(
                "`unauthorized`: a missing or wrong token, the same answer for both.",
                "unauthorized",
                "missing or invalid admin token (Authorization: Bearer <ADMIN_TOKEN>)",
            ),
        ),
        ("NotFound", response("`not_found`.", "not_found", "no destination \"crm\" is configured")),
        ("Conflict", response("A conflict with the state of things.", "exists", "an app \"crm\" exists already; change it with PATCH")),
        (
            "TooLarge",
            response("`too_large`: the body is over the limit.", "too_large", "the request body is larger than the limit of 65536 bytes (MAX_BODY_BYTES)"),
        ),
        (
            "Unprocessable",
            response(
                "`idempotency_key_reused`.",
                "idempotency_key_reused",
                "this Idempotency-Key was used for another request in the last 24 hours; use a new key for a new change",
            ),
        ),
        ("Unavailable", response("Not now: try again.", "unavailable", "the events could not be stored for delivery; try again")),
        ("UpgradeRequired", response("`upgrade_required`.", "upgrade_required", "this route is a WebSocket (drift-bridge listen connects to it)")),
    ])
}

/// Every error code, with when it is answered.
const ERROR_CODES: &[(&str, &str)] = &[
    ("invalid_json", "400: not JSON, or not UTF-8 (with `line` and `column`)"),
    ("invalid_event", "400: not a Drift event (the path says what: `orgId`, `data.conversationId`, …)"),
    ("duplicate_key", "400: an object has the same key twice"),
    ("too_large", "413: a body over the limit; 400: an event nested too deeply"),
    ("invalid_parameter", "400: a bad query parameter or header, named in `path`"),
    ("invalid_body", "400: a body that is not the JSON object the route takes"),
    ("invalid_destination", "400: an app the admin API refuses; every problem in `problems`"),
    ("unauthorized", "401: a missing or wrong token"),
    ("not_found", "404: no such route, delivery or destination, or the admin API is off"),
    ("method_not_allowed", "405: a route's path with another method (`Allow` lists its methods)"),
    ("conflict", "409: a delivery that cannot be replayed"),
    ("cannot_send", "409: a test delivery that cannot be made"),
    ("declared", "409: an app of `DESTINATIONS`, changed only there"),
    ("exists", "409: an app of that name exists already"),
    ("too_many", "409: the registry holds as many apps as it may"),
    ("not_signed", "409: rotating the secret of an unsigned app"),
    ("rotation_pending", "409: two older secrets are still in their overlap"),
    ("idempotency_key_reused", "422: an `Idempotency-Key` used for another request"),
    ("upgrade_required", "426: a WebSocket route asked without `Upgrade: websocket`"),
    ("internal", "500: the bridge's own failure"),
    ("not_configured", "503: the bridge is not fully configured, or has no registry of apps"),
    ("unavailable", "503: the deliveries could not be stored, or the registry could not confirm the apps: Drift sends it again"),
    ("registry_unavailable", "503: the registry of apps could not be reached: try again (with the same `Idempotency-Key`)"),
];

fn schemas(x: &Examples) -> Json {
    let statuses: Vec<&str> = ApiStatus::ALL.iter().map(|s| s.as_str()).collect();
    let states: Vec<&str> = Status::ALL.iter().map(|s| s.sql()).collect();
    let modes: Vec<&str> = [Mode::Active, Mode::Paused, Mode::Tripped].iter().map(|m| m.as_str()).collect();
    let kinds: Vec<&str> = alerts::Kind::ALL.iter().map(|k| k.as_str()).collect();
    let policies: Vec<&str> = LegacyPolicy::ALL.iter().map(|p| p.as_str()).collect();
    let codes: Vec<&str> = ERROR_CODES.iter().map(|(c, _)| *c).collect();
    let code_list: Vec<String> = ERROR_CODES.iter().map(|(c, when)| format!("- `{c}`: {when}")).collect();
    let counts: Vec<(&str, Json)> = statuses.iter().map(|s| (*s, int_min(0, ""))).collect();
    let hex16 = || with(string(""), &[("pattern", s("^[0-9a-f]{16}$"))]);
    let buckets = LATENCY_BOUNDS_MS.len() as i64 + 1;
    o(&[
        // ---- errors
        (
            "Error",
            with(
                object("Every error the bridge answers.", &["error"], &[("error", r_schema("ErrorDetail"))]),
                &[("example", x.bad_event.clone())],
            ),
        ),
        (
            "ErrorDetail",
            object(
                "",
                &["code", "message", "path"],
                &[
                    ("code", r_schema("ErrorCode")),
                    ("message", string("What is wrong, in words a person can act on.")),
                    ("path", string("The JSON path (`data.conversationId`, `[2].orgId`, `types[1]`) or the parameter (`limit`) it is about; empty when it is about the whole request.")),
                    ("line", int_min(1, "For `invalid_json`: the line of the offending byte, from 1.")),
                    ("column", int_min(1, "For `invalid_json`: its column, from 1.")),
                    (
                        "problems",
                        array_of(
                            object("", &["path", "message"], &[("path", string("The field (`url`, `types[1]`).")), ("message", string(""))]),
                            "For `invalid_destination`: every problem of the app, the first of which is `path` and `message`.",
                        ),
                    ),
                ],
            ),
        ),
        ("ErrorCode", enum_of(&codes, &format!("The stable code of an error:\n\n{}", code_list.join("\n")))),
        // ---- Drift's events, in
        (
            "DriftEvent",
            with(
                object(
                    "One Drift webhook event. Every field passes through as received, digit for digit, unknown ones included. The four conversation types need `data` with an integer `conversationId`.",
                    &["orgId", "type"],
                    &[
                        ("orgId", int_min(0, "Drift's organisation.")),
                        ("type", with(string("Drift's event type."), &[("examples", words(&["conversation_inactive", "conversation_manual_push", "conversation_push", "conversation_status_updated", "new_message"]))])),
                        ("data", o(&[("description", s("What happened: an object for the conversation types; anything for the others, which pass through as they are."))])),
                        ("token", string("Drift's verification token, when Drift puts it in the body.")),
                    ],
                ),
                &[
                    ("additionalProperties", "true".into()),
                    (
                        "allOf",
                        a(&[
                            if_type(&["conversation_inactive", "conversation_manual_push", "conversation_push"], "ConversationData"),
                            if_type(&["conversation_status_updated"], "StatusData"),
                        ]),
                    ),
                ],
            ),
        ),
        (
            "ConversationData",
            with(
                object(
                    "",
                    &["conversationId"],
                    &[
                        ("conversationId", integer("Drift's conversation id.")),
                        ("lastUpdated", ms("When it happened. Without it the event is timed by when it was received.")),
                    ],
                ),
                &[("additionalProperties", "true".into())],
            ),
        ),
        (
            "StatusData",
            with(
                object(
                    "",
                    &["conversationId", "status"],
                    &[
                        ("conversationId", integer("Drift's conversation id.")),
                        ("status", with(string("`closed` for a close; a close made by the bridge is always `closed`."), &[("examples", words(&["closed", "open", "pending"]))])),
                        ("changedAt", ms("When it changed.")),
                    ],
                ),
                &[("additionalProperties", "true".into())],
            ),
        ),
        // ---- the webhook's and /convert's answers
        (
            "Received",
            object(
                "",
                &["received", "events"],
                &[
                    ("received", with(hex16(), &[("description", s("The inbound event's id: that of `events[0]`."))])),
                    (
                        "events",
                        with(
                            array_of(object("", &["id", "type"], &[("id", r_schema("EventId")), ("type", string(""))]), "The inbound event first, then each event it became, in order."),
                            &[("minItems", "1".into())],
                        ),
                    ),
                ],
            ),
        ),
        (
            "EventId",
            with(
                hex16(),
                &[("description", s("An event's deterministic id, 16 hex digits: the `webhook-id` of every delivery of it. It depends on the event's `orgId`, `type`, conversation and time, never on when it arrived."))],
            ),
        ),
        (
            "Converted",
            o(&[("oneOf", a(&[r_schema("ConvertedEvents"), object("For an array or NDJSON: one result per event, in order.", &["results"], &[("results", array_of(o(&[("oneOf", a(&[r_schema("ConvertedEvents"), r_schema("Error")]))]), ""))])]))]),
        ),
        (
            "ConvertedEvents",
            object(
                "",
                &["events"],
                &[("events", with(array_of(object("", &["id", "event"], &[("id", r_schema("EventId")), ("event", r_schema("DeliveredEvent"))]), "The inbound event first, then what it became."), &[("minItems", "1".into())]))],
            ),
        ),
        // ---- health and this document
        (
            "Health",
            object(
                "",
                &["status", "version", "configured", "problems"],
                &[
                    ("status", enum_of(&["ok", "degraded", "misconfigured"], "`ok`; `degraded`: configured, with problems that stop nothing; `misconfigured`: nothing is accepted.")),
                    ("version", string("The bridge's version.")),
                    ("configured", boolean("Whether webhooks are accepted.")),
                    ("problems", int_min(0, "How many problems (with the admin token, `details.problems` says which).")),
                    ("registry", enum_of(&["unreachable"], "Only when the registry of apps cannot be reached.")),
                    (
                        "details",
                        object(
                            "With the admin token only.",
                            &["legacyPolicy", "maxBodyBytes", "verificationTokens", "problems", "destinations"],
                            &[
                                ("legacyPolicy", enum_of(&policies, "`LEGACY_POLICY`.")),
                                ("maxBodyBytes", int_min(1, "`MAX_BODY_BYTES`.")),
                                ("verificationTokens", int_min(0, "How many Drift verification tokens are accepted.")),
                                ("problems", array_of(string(""), "Each problem, naming secrets, never their values.")),
                                ("destinations", array_of(r_schema("App"), "The apps, declared and managed at runtime.")),
                            ],
                        ),
                    ),
                ],
            ),
        ),
        ("OpenApiDocument", object("An OpenAPI 3.1 document.", &["openapi", "info", "paths"], &[("openapi", with(string(""), &[("pattern", s("^3\\.1\\."))])), ("info", object("", &["title", "version"], &[])), ("paths", object("", &[], &[]))])),
        // ---- destinations
        (
            "DestinationSettings",
            object(
                "A destination's settings, never a secret. A removed app has only `name` and `incarnation`.",
                &["name"],
                &[
                    ("name", string("Its name: 1 to 64 letters, digits, `-` or `_`; an alert target's is `@<name>`.")),
                    ("url", string("Where its deliveries are POSTed (none for an app that takes a listener).")),
                    ("listen", boolean("No URL: its deliveries go to `drift-bridge listen`, and wait while none is connected.")),
                    ("types", array_of(string(""), "The Drift event types it gets, or `[\"*\"]` for all.")),
                    ("token", r_schema("TokenHandling")),
                    ("tokenSecret", string("With `replace`: the secret binding holding the token it gets instead of Drift's.")),
                    ("signed", boolean("Whether its deliveries carry `webhook-signature`.")),
                    ("orgIds", array_of(int_min(0, ""), "Only events of these Drift organisations.")),
                    ("ratePerSecond", int_range(1, i64::from(MAX_RATE_PER_SECOND), "At most this many deliveries a second.")),
                    ("ordered", boolean("Each conversation's deliveries one at a time, in order.")),
                    ("source", enum_of(&["declared", "runtime", "alerts"], "Where it is configured: `DESTINATIONS`, the admin API, or `ALERTS`.")),
                    ("incarnation", with(hex16(), &[("description", s("An app managed at runtime's incarnation: an app created again under the same name is another."))])),
                    ("previousSecretExpiresAt", ms("While a secret is rotated: when the previous one stops signing.")),
                    ("createdAt", ms("")),
                    ("updatedAt", ms("")),
                    ("format", enum_of(&["json", "slack"], "An alert target's format.")),
                    ("kinds", array_of(enum_of(&kinds, ""), "The alert kinds an alert target gets (all without it).")),
                ],
            ),
        ),
        (
            "App",
            o(&[
                ("description", s("An app's settings as configured.")),
                ("allOf", a(&[r_schema("DestinationSettings"), object("", &["name", "types", "token", "signed", "source"], &[])])),
            ]),
        ),
        (
            "RuntimeApp",
            o(&[
                ("description", s("An app managed at runtime, as a change answers it.")),
                (
                    "allOf",
                    a(&[r_schema("DestinationSettings"), object("", &["name", "types", "token", "signed", "createdAt", "updatedAt", "source"], &[("source", enum_of(&["runtime"], ""))])]),
                ),
            ]),
        ),
        (
            "TokenHandling",
            enum_of(
                &["keep", "strip", "replace"],
                "What happens to Drift's `token` field in its deliveries: passed on (`keep`, the default of an unsigned app), left out (`strip`, the default of a signed one), or replaced by the app's own (`replace`).",
            ),
        ),
        ("Destination", o(&[("description", s("A destination as listed: its settings and its delivery log's health.")), ("allOf", a(&[r_schema("DestinationSettings"), r_schema("DestinationHealth")]))])),
        (
            "DestinationHealth",
            object(
                "",
                &[
                    "state", "stateSince", "consecutiveFailures", "lastError", "lastErrorAt", "lastSuccessAt", "nextProbeAt", "held", "draining", "counts", "bytes", "maxBytes",
                    "full", "refused", "configured", "recovery", "lastHour", "lastDay",
                ],
                &[
                    ("state", enum_of(&modes, "`active`; `paused` by hand; `tripped`: its app is down, its deliveries held and probed.")),
                    ("stateSince", ms_or_null("")),
                    ("consecutiveFailures", int_min(0, "")),
                    ("lastError", nullable("string", "")),
                    ("lastErrorAt", ms_or_null("")),
                    ("lastSuccessAt", ms_or_null("")),
                    ("nextProbeAt", ms_or_null("When tripped: the next probe.")),
                    ("held", int_min(0, "Deliveries held back.")),
                    ("draining", boolean("A backlog is being released.")),
                    ("counts", r_schema("Counts")),
                    ("bytes", int_min(0, "What its delivery log holds.")),
                    ("maxBytes", int_min(0, "`MAX_LOG_BYTES`.")),
                    ("full", boolean("New deliveries are failed: the log is full.")),
                    ("refused", int_min(0, "How many were failed so.")),
                    ("configured", boolean("`false` for a removed app whose deliveries are still kept.")),
                    (
                        "recovery",
                        o(&[
                            ("description", s("A bulk recovery: running (`more`, since when), or the last one finished, or none.")),
                            (
                                "oneOf",
                                a(&[
                                    o(&[("type", s("null"))]),
                                    object("", &["recovered", "more", "since"], &[("recovered", int_min(0, "")), ("more", enum_of_raw(&["true"], "")), ("since", ms(""))]),
                                    object("", &["recovered", "more", "finishedAt"], &[("recovered", int_min(0, "")), ("more", enum_of_raw(&["false"], "")), ("finishedAt", ms(""))]),
                                ]),
                            ),
                        ]),
                    ),
                    ("lastHour", r_schema("Window")),
                    ("lastDay", r_schema("Window")),
                ],
            ),
        ),
        ("Counts", object("Its deliveries by status, kept as they change.", &statuses, &counts)),
        (
            "Window",
            object(
                "Attempts in a window, and their latency (estimated from the metrics' histogram).",
                &["attempts", "succeeded", "successRatio", "p50Ms", "p95Ms"],
                &[
                    ("attempts", int_min(0, "")),
                    ("succeeded", int_min(0, "")),
                    ("successRatio", with(nullable("number", ""), &[("minimum", "0".into()), ("maximum", "1".into())])),
                    ("p50Ms", nullable("integer", "")),
                    ("p95Ms", nullable("integer", "")),
                ],
            ),
        ),
        ("Paused", object("", &["destination", "state", "held"], &[("destination", string("")), ("state", enum_of(&["paused"], "")), ("held", int_min(0, "Held now."))])),
        ("Resumed", object("", &["destination", "state", "draining"], &[("destination", string("")), ("state", enum_of(&["active"], "")), ("draining", int_min(0, "Held deliveries being released."))])),
        ("Recovering", object("", &["destination", "recovered", "more"], &[("destination", string("")), ("recovered", int_min(0, "Replayed so far.")), ("more", boolean("Whether pages remain (the log's alarm goes on).")) ])),
        (
            "RecoverRequest",
            object(
                "",
                &[],
                &[
                    ("since", ms("Only dead letters received since then (all kept, by default).")),
                    ("status", with(array_of(enum_of(&["failed", "gone"], ""), "Which dead letters (`[\"failed\"]` by default)."), &[("minItems", "1".into())])),
                ],
            ),
        ),
        (
            "TestResult",
            object(
                "",
                &["destination", "delivery", "webhookId", "type", "subscribed", "delivered", "status", "latencyMs"],
                &[
                    ("destination", string("")),
                    ("delivery", r_schema("DeliveryIdText")),
                    ("webhookId", r_schema("EventId")),
                    ("type", string("The type of the event sent.")),
                    ("subscribed", boolean("Whether the app subscribes to it (else the push was sent).")),
                    ("delivered", boolean("The app answered `2xx`.")),
                    ("status", nullable("integer", "The app's HTTP status; null for no answer.")),
                    ("latencyMs", int_min(0, "")),
                    ("error", string("What went wrong.")),
                    ("excerpt", string("The start of a failed answer.")),
                ],
            ),
        ),
        // ---- apps managed at runtime
        ("AppCreate", app_body(true)),
        ("AppPatch", app_body(false)),
        (
            "RotateRequest",
            with(
                object(
                    "",
                    &[],
                    &[("overlapSeconds", with(int_range(0, MAX_OVERLAP_SECONDS, &format!("How long the previous secret still signs ({DEFAULT_OVERLAP_SECONDS} by default); 0 drops it at once.")), &[("type", words(&["integer", "null"]))]))],
                ),
                &[("additionalProperties", "false".into())],
            ),
        ),
        (
            "AppChanged",
            object(
                "",
                &["destination", "version"],
                &[
                    ("destination", r_schema("RuntimeApp")),
                    ("secret", r_schema("Secret")),
                    ("version", int_min(0, "The version of the apps this change made.")),
                ],
            ),
        ),
        (
            "AppRotated",
            object(
                "",
                &["destination", "secret", "version"],
                &[
                    ("destination", r_schema("RuntimeApp")),
                    ("secret", r_schema("Secret")),
                    ("previousSecretExpiresAt", ms("When the previous secret stops signing (none with `overlapSeconds: 0`).")),
                    ("version", int_min(0, "")),
                ],
            ),
        ),
        ("Secret", with(string("A Standard Webhooks signing secret the bridge made, shown in this answer only, never again."), &[("pattern", s("^whsec_[A-Za-z0-9+/]+={0,2}$"))])),
        ("AppDeleted", object("", &["deleted", "version"], &[("deleted", string("The app's name.")), ("version", int_min(0, ""))])),
        (
            "Changes",
            object(
                "",
                &["changes", "next"],
                &[
                    (
                        "changes",
                        array_of(
                            object(
                                "",
                                &["seq", "at", "action", "destination", "by", "version", "detail"],
                                &[
                                    ("seq", integer("Its place in the history: `before` for the next page.")),
                                    ("at", ms("")),
                                    ("action", enum_of(&["create", "update", "delete", "rotate-secret", "expire-secret"], "")),
                                    ("destination", string("The app's name.")),
                                    ("by", string("The first 8 hex digits of the SHA-256 of the admin token used, or `bridge` for the bridge's own.")),
                                    ("version", int_min(0, "The version it made.")),
                                    ("detail", object("Its settings (a URL without its path and query), `from` and `to` for an update, the overlap for a rotation; never a secret.", &[], &[])),
                                ],
                            ),
                            "Newest first.",
                        ),
                    ),
                    ("next", nullable("integer", "The `before` of the next page; null on the last.")),
                ],
            ),
        ),
        // ---- deliveries
        (
            "DeliveryIdText",
            with(string("A delivery's id: `<event id>.<destination>`, and `.r<n>` for a replay."), &[("pattern", s("^[0-9a-f]{16}\\.[^.]+(\\.r[0-9]+)?$"))]),
        ),
        (
            "ListedDelivery",
            object(
                "",
                &["id", "status", "state", "destination", "eventId", "type", "scope", "attempts", "at", "acceptedAt", "updatedAt"],
                &[
                    ("id", r_schema("DeliveryIdText")),
                    ("status", enum_of(&statuses, "In the API's words: `pending` (waiting, queued, being sent, or waiting for a retry), `held`, `delivered`, `failed` and `gone` (dead letters), `replayed`.")),
                    ("state", enum_of(&states, "As stored.")),
                    ("destination", string("")),
                    ("eventId", r_schema("EventId")),
                    ("type", string("")),
                    ("scope", string("`conversation:<orgId>:<conversationId>`, `event:<id>`, or `test`.")),
                    ("attempts", int_min(0, "")),
                    ("at", ms("When its webhook was received.")),
                    ("acceptedAt", ms("When its delivery log took it in (the listing's order).")),
                    ("updatedAt", ms("")),
                    ("lastError", string("")),
                    ("reason", string("Why it is what it is (a dead letter, a replay, a test).")),
                    ("replayedAs", r_schema("DeliveryIdText")),
                    ("configured", enum_of_raw(&["false"], "Only for a removed app's delivery.")),
                    ("incarnation", with(hex16(), &[("description", s("A removed app's incarnation."))])),
                ],
            ),
        ),
        (
            "DeliveryPage",
            object(
                "",
                &["deliveries", "next"],
                &[("deliveries", array_of(r_schema("ListedDelivery"), "Newest first.")), ("next", nullable("string", "The `cursor` of the next page; null on the last."))],
            ),
        ),
        (
            "Delivery",
            o(&[(
                "allOf",
                a(&[
                    r_schema("ListedDelivery"),
                    object(
                        "",
                        &["body", "attemptLog"],
                        &[
                            ("body", o(&[("type", words(&["object", "string", "null"])), ("description", s(&format!("The event as stored, before the app's token handling, with Drift's `token` shown as `{}`.", quoted(crate::delivery::redact::REDACTED))))])),
                            (
                                "attemptLog",
                                array_of(
                                    object(
                                        "",
                                        &["attempt", "at", "code", "error", "latencyMs", "probe"],
                                        &[
                                            ("attempt", int_min(0, "")),
                                            ("at", ms("")),
                                            ("code", nullable("integer", "The app's HTTP status; null for no answer.")),
                                            ("error", nullable("string", "")),
                                            ("latencyMs", int_min(0, "")),
                                            ("probe", boolean("A probe of a tripped app, not charged to the delivery.")),
                                        ],
                                    ),
                                    "",
                                ),
                            ),
                        ],
                    ),
                ]),
            )]),
        ),
        ("Replayed", object("", &["replayed", "as"], &[("replayed", r_schema("DeliveryIdText")), ("as", r_schema("DeliveryIdText"))])),
        // ---- metrics
        (
            "Metrics",
            object(
                "",
                &["since", "until", "step", "latencyBucketsMs", "destinations"],
                &[
                    ("since", ms("")),
                    ("until", ms("")),
                    ("step", enum_of_raw(&[&MINUTE_MS.to_string(), &HOUR_MS.to_string()], "A minute or an hour, in ms.")),
                    ("latencyBucketsMs", with(array_of(integer(""), "The histogram's upper bounds, in ms."), &[("examples", a(&[format!("[{}]", LATENCY_BOUNDS_MS.map(|b| b.to_string()).join(","))]))])),
                    (
                        "destinations",
                        array_of(
                            object(
                                "",
                                &["name", "configured", "series", "backlog", "backlogBefore"],
                                &[
                                    ("name", string("")),
                                    ("incarnation", with(hex16(), &[("description", s("A removed app's."))])),
                                    ("configured", boolean("")),
                                    ("series", array_of(r_schema("MetricsSpan"), "Oldest first.")),
                                    ("backlog", array_of(object("", &["start", "backlog", "last"], &[("start", ms("")), ("backlog", int_min(0, "The most waiting in the span.")), ("last", int_min(0, "Waiting at its end."))]), "")),
                                    ("backlogBefore", int_min(0, "Waiting just before `since`.")),
                                ],
                            ),
                            "",
                        ),
                    ),
                ],
            ),
        ),
        (
            "MetricsSpan",
            object(
                "One event type's counts over one minute or hour.",
                &["start", "type", "accepted", "delivered", "failed", "retried", "held", "attempts", "succeeded", "latencyBuckets", "latencySumMs"],
                &[
                    ("start", ms("")),
                    ("type", string("An event type; past 16 a log, the rest together as `(other)`.")),
                    ("accepted", int_min(0, "")),
                    ("delivered", int_min(0, "")),
                    ("failed", int_min(0, "")),
                    ("retried", int_min(0, "")),
                    ("held", int_min(0, "")),
                    ("attempts", int_min(0, "")),
                    ("succeeded", int_min(0, "")),
                    (
                        "latencyBuckets",
                        with(array_of(int_min(0, ""), "Attempts under each of `latencyBucketsMs`, then over the last."), &[("minItems", buckets.to_string()), ("maxItems", buckets.to_string())]),
                    ),
                    ("latencySumMs", int_min(0, "")),
                ],
            ),
        ),
        // ---- what apps receive
        ("ConversationInactive", conversation_event("conversation_inactive", "ConversationData")),
        ("ConversationManualPush", conversation_event("conversation_manual_push", "ConversationData")),
        ("ConversationPush", conversation_event("conversation_push", "ConversationData")),
        ("ConversationStatusUpdated", conversation_event("conversation_status_updated", "StatusData")),
        (
            "DeliveredEvent",
            o(&[
                ("description", s("A Drift event as delivered: exactly as received (or made by the bridge), but for `token`, which follows the app's `token` setting.")),
                ("allOf", a(&[r_schema("DriftEvent")])),
                ("properties", o(&[("token", r_schema("DeliveredToken"))])),
            ]),
        ),
        (
            "DeliveredToken",
            string("Drift's verification token as the app's `token` setting says: passed on (`keep`), left out (`strip`, the default of a signed app), or the app's own (`replace`)."),
        ),
        (
            "Alert",
            o(&[(
                "oneOf",
                a(&[
                    object(
                        "An alert, to a `json` target (the default).",
                        &["type", "id", "kind", "destination", "state", "at", "summary", "count", "link"],
                        &[
                            ("type", enum_of(&[ALERT_TYPE], "")),
                            ("id", r_schema("EventId")),
                            ("kind", enum_of(&kinds, "")),
                            ("destination", string("The app it is about.")),
                            ("state", string("Its state now.")),
                            ("at", ms("")),
                            ("summary", string("What happened, in a sentence.")),
                            ("detail", string("What the app said, if anything.")),
                            ("count", int_min(1, "How many of this kind it stands for (coalesced).")),
                            ("link", string("The admin page, or the admin API's route, for this app.")),
                        ],
                    ),
                    object("An alert, to a `slack` target.", &["text"], &[("text", string(""))]),
                ]),
            )]),
        ),
    ])
}

/// `AppCreate` (`create`) or `AppPatch`: the fields the admin API takes,
/// unknown ones refused.
fn app_body(create: bool) -> Json {
    let clearable = |schema: Json, ty: &str| {
        if create {
            schema
        } else {
            with(schema, &[("type", words(&[ty, "null"]))])
        }
    };
    let mut props: Vec<(&str, Json)> = vec![
        (
            "name",
            with(
                string(if create { "Unique across the declared apps and these: 1 to 64 letters, digits, `-` or `_`." } else { "Only its own: an app cannot be renamed." }),
                &[("pattern", s("^[A-Za-z0-9_-]{1,64}$"))],
            ),
        ),
        (
            "url",
            with(
                string("`https://…` on the internet (loopback only under `LOCAL_DEVELOPMENT`), read as `fetch` reads it; no user name or password, backslash, control character or non-ASCII character."),
                &[("format", s("uri")), ("pattern", s("^https?://"))],
            ),
        ),
        (
            "types",
            with(
                array_of(with(string(""), &[("minLength", "1".into()), ("maxLength", "128".into())]), "Drift event types, or `[\"*\"]` for all. A type within two typing mistakes of a conversation type is refused."),
                &[("minItems", "1".into()), ("maxItems", "100".into())],
            ),
        ),
        ("token", r_schema("TokenHandling")),
        (
            "tokenSecret",
            clearable(
                with(string(&format!("With `replace`: a secret binding whose name starts with `{RUNTIME_SECRET_PREFIX}` and that no declared app or alert target names.")), &[("pattern", s(&format!("^{RUNTIME_SECRET_PREFIX}")))]),
                "string",
            ),
        ),
        (
            "replacementToken",
            clearable(
                with(string("With `replace`: the token itself, stored with the app and never shown again."), &[("minLength", "1".into()), ("maxLength", MAX_REPLACEMENT_TOKEN_BYTES.to_string())]),
                "string",
            ),
        ),
        ("signed", with(boolean("Signed with a secret the bridge makes (`true`, the default)."), &[("default", "true".into())])),
        (
            "orgIds",
            clearable(
                with(array_of(int_min(0, ""), "Only events of these Drift organisations (all without it)."), &[("minItems", "1".into()), ("maxItems", MAX_ORG_IDS.to_string())]),
                "array",
            ),
        ),
        ("ratePerSecond", clearable(int_range(1, i64::from(MAX_RATE_PER_SECOND), "At most this many deliveries a second (as fast as the app answers without it)."), "integer")),
    ];
    if create {
        // A change cannot turn it on or off (it is not one of its fields).
        props.push(("ordered", boolean("Each conversation's deliveries one at a time, in order (`false` by default).")));
        props.push((
            "listen",
            boolean("No `url`: its deliveries go over the WebSocket of `drift-bridge listen` (`/admin/destinations/{name}/listen`), and are held while none is connected (`false` by default; a change cannot turn it on or off)."),
        ));
    }
    let required: &[&str] = if create { &["name", "types"] } else { &[] };
    let description = if create {
        "An app: the fields of a `DESTINATIONS` item, but for its signing secret, which the bridge makes (`signed`)."
    } else {
        "The fields to change; the result is checked as a whole."
    };
    with(object(description, required, &props), &[("additionalProperties", "false".into())])
}

/// An outbound conversation event of `event_type`.
fn conversation_event(event_type: &str, data: &str) -> Json {
    with(
        object(
            "",
            &["orgId", "type", "data"],
            &[("orgId", int_min(0, "")), ("type", enum_of(&[event_type], "")), ("data", r_schema(data)), ("token", r_schema("DeliveredToken"))],
        ),
        &[("additionalProperties", "true".into())],
    )
}

/// `{"if": type is one of `types`, "then": data is `data`}`.
fn if_type(types: &[&str], data: &str) -> Json {
    o(&[("if", object("", &["type"], &[("type", enum_of(types, ""))])), ("then", object("", &["data"], &[("data", r_schema(data))]))])
}

fn parameters(x: &Examples) -> Json {
    let query = |name: &str, schema: Json, description: &str| o(&[("name", s(name)), ("in", s("query")), ("description", s(description)), ("schema", schema)]);
    let header = |name: &str, required: bool, schema: Json, description: &str| {
        o(&[("name", s(name)), ("in", s("header")), ("required", required.to_string()), ("description", s(description)), ("schema", schema)])
    };
    let statuses: Vec<&str> = ApiStatus::ALL.iter().map(|s| s.as_str()).collect();
    let policies: Vec<&str> = LegacyPolicy::ALL.iter().map(|p| p.as_str()).collect();
    o(&[
        (
            "DeliveryId",
            o(&[
                ("name", s("id")),
                ("in", s("path")),
                ("required", "true".into()),
                ("description", s("A delivery's id: `<event id>.<destination>`, and `.r<n>` for a replay.")),
                ("schema", r_schema("DeliveryIdText")),
                ("examples", o(&[("push", o(&[("value", s(&x.delivery_push))])), ("close", o(&[("value", s(&x.delivery_close))]))])),
            ]),
        ),
        (
            "DestinationName",
            o(&[
                ("name", s("name")),
                ("in", s("path")),
                ("required", "true".into()),
                ("description", s("A destination's name (an alert target's is `@<name>`), or a removed app's log key `<name>~<incarnation>`.")),
                ("schema", with(string(""), &[("minLength", "1".into())])),
                ("example", s("push-app")),
            ]),
        ),
        ("Legacy", query("legacy", enum_of(&policies, ""), "The legacy policy for this call (the bridge's `LEGACY_POLICY` without it).")),
        ("Now", query("now", ms(""), "The receive time, for events without one (now without it).")),
        (
            "Status",
            o(&[
                ("name", s("status")),
                ("in", s("query")),
                ("description", s("Only deliveries of these statuses, comma-separated.")),
                ("style", s("form")),
                ("explode", "false".into()),
                ("schema", array_of(enum_of(&statuses, ""), "")),
            ]),
        ),
        (
            "DestinationFilter",
            query("destination", string(""), "Only this destination's: a name (the app of that name now), or `<name>~<incarnation>` for a removed app."),
        ),
        ("Conversation", query("conversation", integer(""), "Only this Drift conversation's (`data.conversationId`).")),
        ("Event", query("event", with(string(""), &[("pattern", s("^[0-9a-fA-F]{16}$"))]), "Only this event's (its id).")),
        ("Since", query("since", ms(""), "Only those whose webhook was received at or after this time.")),
        ("Until", query("until", ms(""), "Only those whose webhook was received before this time.")),
        ("Limit", query("limit", with(int_range(1, i64::from(api::MAX_LIMIT), ""), &[("default", api::DEFAULT_LIMIT.to_string())]), "How many, at most.")),
        ("Cursor", query("cursor", string(""), "The previous page's `next`.")),
        ("Before", query("before", integer(""), "The previous page's `next`: only changes before this `seq`.")),
        ("MetricsSince", query("since", ms(""), "From (24 hours before `until` by default).")),
        ("MetricsUntil", query("until", ms(""), "Up to, not included (now by default).")),
        ("Step", query("step", enum_of(&["minute", "hour"], ""), "By minute or by hour (by minute for up to 48 hours, by default).")),
        ("TypeFilter", query("type", string(""), "Only this event type's counts.")),
        (
            "Format",
            query(
                "format",
                enum_of(&["json", "prometheus"], ""),
                "`prometheus` for Prometheus text (also with `Accept: text/plain` and no `application/json`).",
            ),
        ),
        (
            "IdempotencyKey",
            header(
                "Idempotency-Key",
                false,
                with(string(""), &[("pattern", s("^[A-Za-z0-9_-]{1,64}$"))]),
                "Makes the change safe to send again: the same key and request get the first answer again.",
            ),
        ),
        (
            "WebhookIdHeader",
            header("webhook-id", true, r_schema("EventId"), "The event's id: the same on every attempt, and for every app that gets the event."),
        ),
        ("WebhookTimestampHeader", header("webhook-timestamp", true, integer("Unix seconds."), "When this attempt was signed, in seconds: reject stale ones.")),
        (
            "WebhookSignatureHeader",
            header(
                "webhook-signature",
                false,
                with(string(""), &[("pattern", s("^v1,[A-Za-z0-9+/]+={0,2}( v1,[A-Za-z0-9+/]+={0,2})*$"))]),
                "Only for a signed app: `v1,<signature>`, one for each of its secrets, space-separated.",
            ),
        ),
        ("UserAgentHeader", header("User-Agent", true, string(""), &format!("`{}`.", crate::delivery::user_agent()))),
    ])
}

// --------------------------------------------------------------- examples

/// Examples made by the core, so that they are what the bridge answers.
struct Examples {
    inactive: Json,
    close: Json,
    ndjson: String,
    received: Json,
    converted: Json,
    outbound: Vec<Json>,
    manual_push: Json,
    other: Json,
    alert: Json,
    bad_event: Json,
    health: Json,
    health_admin: Json,
    page: Json,
    /// The ids of the push and the legacy close of Drift's example, to `push-app`.
    delivery_push: String,
    delivery_close: String,
    app_create: Json,
    app_created: Json,
    app_patch: Json,
    recover: Json,
    rotate: Json,
}

/// Drift's own example, from its notice of the change.
const DRIFT_EXAMPLE: &str = r#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}"#;
const DRIFT_CLOSE: &str = r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}"#;
const OTHER_EVENT: &str = r#"{"orgId":1,"type":"new_message","data":{"conversationId":123456789,"body":"Hi!"}}"#;

impl Examples {
    fn new() -> Examples {
        let options = Options::new(0).legacy(LegacyPolicy::Always);
        let events = translate(DRIFT_EXAMPLE, &options).unwrap_or_default();
        let from_close = translate(DRIFT_CLOSE, &options).unwrap_or_default();
        let id = |e: &Outbound| s(&e.id.to_hex());
        let received = o(&[
            ("received", events.first().map(id).unwrap_or_else(|| s(""))),
            ("events", a(&events.iter().map(|e| o(&[("id", id(e)), ("type", s(&e.event_type))])).collect::<Vec<_>>())),
        ]);
        let converted = o(&[("events", a(&events.iter().map(|e| o(&[("id", id(e)), ("event", e.json.clone())])).collect::<Vec<_>>()))]);
        let bad_event = match translate(r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":"7"}}"#, &options) {
            Err(e) => o(&[("error", e.to_json())]),
            Ok(_) => o(&[("error", o(&[("code", s("invalid_event")), ("message", s("")), ("path", s(""))]))]),
        };
        let ids = events.iter().map(|e| e.id.to_hex()).collect::<Vec<_>>();
        let first = ids.first().cloned().unwrap_or_default();
        let app = o(&[
            ("name", s("crm")),
            ("url", s("https://crm.example.com/drift")),
            ("types", words(&["conversation_status_updated"])),
            ("orgIds", "[1]".into()),
            ("ratePerSecond", "20".into()),
        ]);
        Examples {
            inactive: DRIFT_EXAMPLE.into(),
            close: DRIFT_CLOSE.into(),
            ndjson: format!("{DRIFT_EXAMPLE}\n{DRIFT_CLOSE}\n"),
            received,
            converted,
            outbound: events.iter().map(|e| e.json.clone()).chain(std::iter::repeat(String::from("{}"))).take(3).collect(),
            manual_push: from_close.get(1).map_or_else(|| "{}".into(), |e| e.json.clone()),
            other: OTHER_EVENT.into(),
            alert: o(&[
                ("type", s(ALERT_TYPE)),
                ("id", s("5b0f3a7c2e91d4a8")),
                ("kind", s("tripped")),
                ("destination", s("push-app")),
                ("state", s("tripped")),
                ("at", "1795463800000".into()),
                ("summary", s("push-app tripped: its last 5 attempts failed; its deliveries are held and it is probed")),
                ("count", "1".into()),
                ("link", s("https://drift-bridge.example.workers.dev/admin.html#push-app")),
            ]),
            bad_event,
            health: o(&[("status", s("ok")), ("version", s(crate::VERSION)), ("configured", "true".into()), ("problems", "0".into())]),
            health_admin: o(&[
                ("status", s("ok")),
                ("version", s(crate::VERSION)),
                ("configured", "true".into()),
                ("problems", "0".into()),
                (
                    "details",
                    o(&[
                        ("legacyPolicy", s("always")),
                        ("maxBodyBytes", DEFAULT_MAX_BYTES.to_string()),
                        ("verificationTokens", "1".into()),
                        ("problems", "[]".into()),
                        (
                            "destinations",
                            a(&[o(&[
                                ("name", s("push-app")),
                                ("url", s("https://app.example.com/hooks/drift")),
                                ("types", words(&["conversation_push"])),
                                ("token", s("strip")),
                                ("signed", "true".into()),
                                ("source", s("declared")),
                            ])]),
                        ),
                    ]),
                ),
            ]),
            delivery_push: format!("{}.push-app", ids.get(1).cloned().unwrap_or_default()),
            delivery_close: format!("{}.push-app", ids.get(2).cloned().unwrap_or_default()),
            page: o(&[
                (
                    "deliveries",
                    a(&[o(&[
                        ("id", s(&format!("{first}.push-app"))),
                        ("status", s("delivered")),
                        ("state", s("delivered")),
                        ("destination", s("push-app")),
                        ("eventId", s(&first)),
                        ("type", s("conversation_inactive")),
                        ("scope", s("conversation:1:123456789")),
                        ("attempts", "1".into()),
                        ("at", "1795463790000".into()),
                        ("acceptedAt", "1795463790012".into()),
                        ("updatedAt", "1795463790412".into()),
                    ])]),
                ),
                ("next", s("push-app:7730435256795938816")),
            ]),
            app_create: app.clone(),
            app_created: o(&[
                (
                    "destination",
                    o(&[
                        ("name", s("crm")),
                        ("url", s("https://crm.example.com/drift")),
                        ("types", words(&["conversation_status_updated"])),
                        ("token", s("strip")),
                        ("orgIds", "[1]".into()),
                        ("ratePerSecond", "20".into()),
                        ("incarnation", s("0a1b2c3d4e5f6789")),
                        ("signed", "true".into()),
                        ("createdAt", "1795463790000".into()),
                        ("updatedAt", "1795463790000".into()),
                        ("source", s("runtime")),
                    ]),
                ),
                ("secret", s("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")),
                ("version", "7".into()),
            ]),
            app_patch: o(&[("ratePerSecond", "50".into()), ("orgIds", "null".into())]),
            recover: o(&[("since", "1795400000000".into()), ("status", words(&["failed", "gone"]))]),
            rotate: o(&[("overlapSeconds", "3600".into())]),
        }
    }
}

// ------------------------------------------------------------ JSON pieces

/// An object of `members` (keys are this module's own, never input).
fn o(members: &[(&str, Json)]) -> Json {
    let mut w = Writer::with_capacity(members.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>() + 2);
    for (k, v) in members {
        w.raw(k, v);
    }
    w.finish()
}

/// `object` with `members` set (replacing those of the same name).
fn with(object: Json, members: &[(&str, Json)]) -> Json {
    let Ok(Value::Object(old)) = json::parse(&object, &Limits { max_bytes: usize::MAX, max_depth: 64 }) else {
        return object;
    };
    let mut w = Writer::with_capacity(object.len() + 64);
    for (key, value) in &old {
        let key = key.text();
        if !members.iter().any(|(k, _)| *k == key) {
            w.raw(&key, &value.to_json());
        }
    }
    for (k, v) in members {
        w.raw(k, v);
    }
    w.finish()
}

fn s(text: &str) -> Json {
    quoted(text)
}

fn a(items: &[Json]) -> Json {
    format!("[{}]", items.join(","))
}

fn words(items: &[&str]) -> Json {
    a(&items.iter().map(|w| s(w)).collect::<Vec<_>>())
}

fn r_schema(name: &str) -> Json {
    o(&[("$ref", s(&format!("#/components/schemas/{name}")))])
}

fn param_ref(name: &str) -> Json {
    o(&[("$ref", s(&format!("#/components/parameters/{name}")))])
}

/// A reference to an error response, its description replaced when given
/// (OpenAPI 3.1 lets a reference carry its own).
fn error_ref(name: &str, description: &str) -> Json {
    let mut members = vec![("$ref", s(&format!("#/components/responses/{name}")))];
    if !description.is_empty() {
        members.push(("description", s(description)));
    }
    o(&members)
}

/// A JSON answer.
fn answer(description: &str, schema: Json, example: Option<&Json>) -> Json {
    let mut media = vec![("schema", schema)];
    if let Some(e) = example {
        media.push(("example", e.clone()));
    }
    o(&[("description", s(description)), ("content", o(&[("application/json", o(&media))]))])
}

/// Links from an answer to the operations `to`, their parameter `param`
/// taken from the answer at `expression`.
fn links(expression: &str, param: &str, to: &[&str]) -> Json {
    let each: Vec<(&str, Json)> = to.iter().map(|id| (*id, o(&[("operationId", s(id)), ("parameters", o(&[(param, s(expression))]))]))).collect();
    o(&each)
}

/// A media type with named examples.
fn media(schema: Json, examples: &[(&str, &Json)]) -> Json {
    let named: Vec<(&str, Json)> = examples.iter().map(|(name, value)| (*name, o(&[("value", (*value).clone())]))).collect();
    o(&[("schema", schema), ("examples", o(&named))])
}

/// A schema of `type` with a description (none when empty).
fn typed(ty: &str, description: &str) -> Json {
    if description.is_empty() {
        o(&[("type", s(ty))])
    } else {
        o(&[("type", s(ty)), ("description", s(description))])
    }
}

fn string(description: &str) -> Json {
    typed("string", description)
}

fn integer(description: &str) -> Json {
    typed("integer", description)
}

fn boolean(description: &str) -> Json {
    typed("boolean", description)
}

fn int_min(min: i64, description: &str) -> Json {
    with(integer(description), &[("minimum", min.to_string())])
}

fn int_range(min: i64, max: i64, description: &str) -> Json {
    with(integer(description), &[("minimum", min.to_string()), ("maximum", max.to_string())])
}

/// Milliseconds since the epoch.
fn ms(description: &str) -> Json {
    let d = if description.is_empty() { "Milliseconds since the epoch.".to_owned() } else { format!("{description} Milliseconds since the epoch.") };
    with(integer(&d), &[("format", s("int64"))])
}

fn ms_or_null(description: &str) -> Json {
    with(ms(description), &[("type", words(&["integer", "null"]))])
}

fn nullable(ty: &str, description: &str) -> Json {
    let mut members = vec![("type", words(&[ty, "null"]))];
    if !description.is_empty() {
        members.push(("description", s(description)));
    }
    o(&members)
}

fn enum_of(items: &[&str], description: &str) -> Json {
    let mut members = vec![("type", s("string")), ("enum", words(items))];
    if !description.is_empty() {
        members.push(("description", s(description)));
    }
    o(&members)
}

/// An enum of JSON values written as they are (`true`, `60000`).
fn enum_of_raw(items: &[&str], description: &str) -> Json {
    let mut members = vec![("enum", a(&items.iter().map(|i| (*i).to_owned()).collect::<Vec<_>>()))];
    if !description.is_empty() {
        members.push(("description", s(description)));
    }
    o(&members)
}

fn array_of(items: Json, description: &str) -> Json {
    let mut members = vec![("type", s("array")), ("items", items)];
    if !description.is_empty() {
        members.push(("description", s(description)));
    }
    o(&members)
}

fn object(description: &str, required: &[&str], properties: &[(&str, Json)]) -> Json {
    let mut members = vec![("type", s("object"))];
    if !description.is_empty() {
        members.push(("description", s(description)));
    }
    if !required.is_empty() {
        members.push(("required", words(required)));
    }
    if !properties.is_empty() {
        members.push(("properties", o(properties)));
    }
    o(&members)
}
