//! The queue consumer: POSTs deliveries to the apps.
//!
//! A message names a delivery; its destination's delivery log
//! ([`super::destination`]) has the body and decides. Per batch, for each
//! destination: ask which deliveries may go (`/attempt`), POST them one
//! after the other (in order), report how each ended (`/settle`), then ack
//! or retry the messages with the delays the log chose. Destinations are
//! served side by side.
//!
//! One attempt: a signed POST that never follows redirects, whose status
//! decides, with one deadline for the whole exchange. The answer's body is
//! read only when the status is a failure, at most
//! [`outcome::EXCERPT_BYTES`] of it, for the log; the rest is dropped.

use std::time::Duration;

use futures_util::future::{join_all, select, Either};
use futures_util::StreamExt;
use worker::{
    AbortController, Delay, Env, Fetch, Headers, Message, MessageBatch, MessageExt, Method, QueueRetryOptionsBuilder,
    Request, RequestInit, RequestRedirect, Result,
};

use super::bindings::{self, Instance};
use crate::config::Config;
use crate::delivery::message::{QueueMessage, Ref, V1};
use crate::delivery::outcome::{Answer, Verdict, EXCERPT_BYTES};
use crate::delivery::{handoff, payload, schedule, sign, Destination, TokenMode};
use crate::json::{self, Limits, Value};

/// One destination's messages in a batch, in batch order.
type Group<'m> = (String, Vec<(&'m Message<String>, Ref)>);

/// The consumer of both the delivery queue and its dead-letter queue.
pub async fn consume(batch: MessageBatch<String>, env: Env) -> Result<()> {
    let config = super::config(&env);
    let dead = batch.queue() == bindings::DEAD_LETTER_QUEUE;
    let messages = batch.messages()?;
    // Per destination, in batch order.
    let mut groups: Vec<Group<'_>> = Vec::new();
    let mut upgrades = Vec::new();
    for m in &messages {
        match QueueMessage::decode(m.body()) {
            Ok(QueueMessage::Ref(r)) => match groups.iter_mut().find(|(d, _)| *d == r.destination) {
                Some((_, list)) => list.push((m, r)),
                None => groups.push((r.destination.clone(), vec![(m, r)])),
            },
            Ok(QueueMessage::V1(v1)) => upgrades.push((m, v1)),
            Err(e) => {
                // Never log the message itself: a version 1 message holds Drift's token.
                worker::console_error!("delivery: dropping an unreadable queue message ({e})");
                m.ack();
            }
        }
    }
    let retry_later = |m: &Message<String>| {
        m.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(config.retry_base_seconds.max(1)).build())
    };
    let upgrades = join_all(upgrades.into_iter().map(|(m, v1)| {
        let env = &env;
        async move {
            match upgrade(env, &v1).await {
                Ok(()) => m.ack(),
                Err(e) => {
                    worker::console_error!("delivery: a version 1 message for {} could not be upgraded: {e}", v1.destination);
                    retry_later(m);
                }
            }
        }
    }));
    let deliveries = join_all(groups.iter().map(|(destination, list)| {
        let (env, config) = (&env, &config);
        async move {
            let outcome =
                if dead { give_up(env, destination, list).await } else { serve(env, config, destination, list).await };
            if let Err(e) = outcome {
                worker::console_error!("delivery: {destination}: {e}; the messages come back later");
                for (m, _) in list {
                    retry_later(m);
                }
            }
        }
    }));
    futures_util::future::join(upgrades, deliveries).await;
    Ok(())
}

/// A message of drift-bridge 0.1 carried its event: hand it to its
/// destination's log, which queues a reference to it.
async fn upgrade(env: &Env, v1: &V1) -> Result<()> {
    let mut body = String::from("{\"destination\":");
    json::write_str_escaped(&mut body, &v1.destination);
    body.push_str(",\"deliveries\":[{\"id\":");
    json::write_str_escaped(&mut body, &handoff::delivery_id(&v1.event_id, &v1.destination));
    body.push_str(",\"event\":");
    json::write_str_escaped(&mut body, &v1.event_id);
    body.push_str(",\"type\":");
    json::write_str_escaped(&mut body, &v1.event_type);
    body.push_str(",\"scope\":");
    json::write_str_escaped(&mut body, &v1.scope);
    body.push_str(&format!(",\"at\":{},\"body\":", v1.queued_at_ms));
    json::write_str_escaped(&mut body, &v1.event);
    body.push_str("}]}");
    bindings::call(env, Instance::Destination(&v1.destination), "/add", body).await.map(|_| ())
}

/// The dead-letter queue: the delivery queue gave up on these messages.
async fn give_up(env: &Env, destination: &str, list: &[(&Message<String>, Ref)]) -> Result<()> {
    for (m, r) in list {
        let mut body = String::from("{\"id\":");
        json::write_str_escaped(&mut body, &r.id);
        body.push('}');
        bindings::call(env, Instance::Destination(destination), "/dead", body).await?;
        m.ack();
    }
    Ok(())
}

/// One destination's share of a batch: asks which may go, POSTs them in
/// order, stops at the first failure that says the app is in trouble (no
/// answer, 5xx, 408, 429: the rest go back untried, so a down app costs one
/// deadline per batch, not one per message), reports, and acks or retries
/// each message as the delivery log says.
async fn serve(env: &Env, config: &Config, name: &str, list: &[(&Message<String>, Ref)]) -> Result<()> {
    let busy_ms = i64::from(config.delivery_timeout_ms) + config.recovery_grace_ms();
    let mut request = format!("{{\"busyMs\":{busy_ms},\"items\":[");
    for (i, (_, r)) in list.iter().enumerate() {
        if i > 0 {
            request.push(',');
        }
        request.push_str("{\"id\":");
        json::write_str_escaped(&mut request, &r.id);
        request.push_str(&format!(",\"g\":{}}}", r.generation));
    }
    request.push_str("]}");
    let reply = bindings::call(env, Instance::Destination(name), "/attempt", request).await?;
    let limits = Limits::INTERNAL;
    let reply = json::parse(&reply, &limits).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let go = match reply.get("go") {
        Some(Value::Array(go)) => go.as_slice(),
        _ => &[],
    };
    let destination = config.destinations.get(name);
    let mut outcomes = String::new();
    let mut attempts: Vec<Tried> = Vec::new();
    let mut failed_once = false;
    for item in go {
        let field = |n: &str| item.get(n).and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
        let (id, event_id) = (field("id"), field("eventId"));
        let attempt = item.get("attempt").and_then(Value::as_integer).and_then(|a| a.parse::<u32>().ok()).unwrap_or(1);
        outcomes.push_str(if outcomes.is_empty() { "{\"id\":" } else { ",{\"id\":" });
        json::write_str_escaped(&mut outcomes, &id);
        outcomes.push_str(&format!(",\"attempt\":{attempt}"));
        if failed_once {
            outcomes.push_str(",\"verdict\":\"unattempted\"}");
            continue;
        }
        let body = field("body");
        let started = super::now_ms();
        let answer = match destination {
            Some(d) => post(d, &event_id, &body, config.delivery_timeout_ms).await,
            None => Answer::Nothing(format!("destination {name} is no longer configured")),
        };
        let latency = super::now_ms() - started;
        // A destination gone from the configuration will never answer.
        let verdict = if destination.is_none() { Verdict::GiveUp } else { answer.verdict(attempt, schedule::MAX_ATTEMPTS) };
        // A 4xx refuses this event; anything else says the app is in
        // trouble, so the rest of the batch waits instead of piling on.
        let event_specific = matches!(answer.code(), Some(c) if (400..500).contains(&c) && c != 408 && c != 429);
        failed_once = matches!(verdict, Verdict::Retry | Verdict::GiveUp) && !event_specific;
        let error = answer.error().map(|e| redact_echo(e, &body, destination));
        outcomes.push_str(",\"verdict\":\"");
        outcomes.push_str(match verdict {
            Verdict::Delivered => "delivered",
            Verdict::Gone => "gone",
            Verdict::Retry => "retry",
            Verdict::GiveUp => "give_up",
        });
        outcomes.push_str("\",\"code\":");
        outcomes.push_str(&answer.code().map_or_else(|| "null".to_owned(), |c| c.to_string()));
        if let Some(e) = &error {
            outcomes.push_str(",\"error\":");
            json::write_str_escaped(&mut outcomes, e);
        }
        outcomes.push_str(&format!(",\"latencyMs\":{latency}}}"));
        attempts.push(Tried { id, event_id, attempt, code: answer.code(), latency, error });
    }
    let mut results: Vec<(String, String, Option<u32>)> = Vec::new();
    if !outcomes.is_empty() {
        let reply = bindings::call(env, Instance::Destination(name), "/settle", format!("{{\"outcomes\":[{outcomes}]}}")).await?;
        let reply = json::parse(&reply, &limits).map_err(|e| worker::Error::RustError(e.to_string()))?;
        if let Some(Value::Array(list)) = reply.get("results") {
            for r in list {
                let text = |n: &str| r.get(n).and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
                let delay = r.get("delay").and_then(Value::as_integer).and_then(|d| d.parse().ok());
                results.push((text("id"), text("status"), delay));
            }
        }
    }
    for t in &attempts {
        let status = results.iter().find(|(r, _, _)| *r == t.id).map_or("unknown", |(_, s, _)| s.as_str());
        log_attempt(name, t, status);
    }
    for (m, r) in list {
        match results.iter().find(|(id, _, _)| *id == r.id).and_then(|(_, _, delay)| *delay) {
            Some(delay) => m.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(delay).build()),
            None => m.ack(),
        }
    }
    Ok(())
}

/// One attempt made, for the log.
struct Tried {
    id: String,
    event_id: String,
    attempt: u32,
    code: Option<u16>,
    latency: i64,
    error: Option<String>,
}

/// One JSON line per delivery attempt, for Workers Logs: ids, status,
/// attempt, HTTP status, latency and the error; never a body or a secret.
fn log_attempt(destination: &str, t: &Tried, status: &str) {
    let (attempt, code, latency, error) = (t.attempt, t.code, t.latency, t.error.as_deref());
    let mut line = String::from("{\"kind\":\"delivery\",\"delivery\":");
    json::write_str_escaped(&mut line, &t.id);
    line.push_str(",\"eventId\":");
    json::write_str_escaped(&mut line, &t.event_id);
    line.push_str(",\"destination\":");
    json::write_str_escaped(&mut line, destination);
    line.push_str(&format!(",\"attempt\":{attempt},\"status\":"));
    json::write_str_escaped(&mut line, status);
    line.push_str(",\"code\":");
    line.push_str(&code.map_or_else(|| "null".to_owned(), |c| c.to_string()));
    line.push_str(&format!(",\"latencyMs\":{latency}"));
    if let Some(e) = error {
        line.push_str(",\"error\":");
        json::write_str_escaped(&mut line, e);
    }
    line.push('}');
    worker::console_log!("{line}");
}

/// One attempt: a signed POST, redirects not followed, one deadline for
/// the status and the excerpt of a failure's answer.
async fn post(destination: &Destination, event_id: &str, event: &str, timeout_ms: u32) -> Answer {
    let body = match payload::body(event, &destination.token) {
        Ok(body) => body,
        Err(e) => return Answer::Nothing(format!("the stored event cannot be read: {e}")),
    };
    let timestamp = super::now_ms() / 1000;
    let headers = Headers::new();
    let set = |name: &str, value: &str| headers.set(name, value).is_ok();
    let mut ok = set("content-type", "application/json")
        && set("user-agent", &crate::delivery::user_agent())
        && set("webhook-id", event_id)
        && set("webhook-timestamp", &timestamp.to_string());
    if let Some(secret) = &destination.signing_secret {
        ok &= match sign::key_from_secret(secret) {
            Ok(key) => set("webhook-signature", &sign::signature(&key, event_id, timestamp, &body)),
            Err(_) => false,
        };
    }
    if !ok {
        return Answer::Nothing("the request headers could not be built".into());
    }
    let controller = AbortController::default();
    let signal = controller.signal();
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(body.into())).with_redirect(RequestRedirect::Manual);
    let request = match Request::new_with_init(&destination.url, &init) {
        Ok(r) => r,
        Err(e) => return Answer::Nothing(format!("the request could not be built: {e}")),
    };
    let deadline = super::now_ms() + i64::from(timeout_ms);
    let fetch = Box::pin(async move { Fetch::Request(request).send_with_signal(&signal).await });
    let timeout = Box::pin(Delay::from(Duration::from_millis(u64::from(timeout_ms))));
    let answer = match select(fetch, timeout).await {
        Either::Left((Ok(mut response), _)) => {
            let code = response.status_code();
            let location = response.headers().get("location").ok().flatten();
            let mut excerpt = String::new();
            if !(200..300).contains(&code) {
                let left = (deadline - super::now_ms()).max(0) as u64;
                let read = Box::pin(read_excerpt(&mut response));
                if let Either::Left((text, _)) = select(read, Box::pin(Delay::from(Duration::from_millis(left)))).await {
                    excerpt = text;
                }
            }
            Answer::Status { code, location, excerpt }
        }
        Either::Left((Err(e), _)) => Answer::Nothing(format!("network error: {e}")),
        Either::Right(_) => Answer::Nothing(format!("no answer within {timeout_ms} ms")),
    };
    // Whatever is left of the exchange (a body still trickling in) is dropped.
    controller.abort();
    answer
}

/// Up to [`EXCERPT_BYTES`] of an answer's body, as text.
async fn read_excerpt(response: &mut worker::Response) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut stream) = response.stream() {
        while bytes.len() < EXCERPT_BYTES {
            match stream.next().await {
                Some(Ok(chunk)) => bytes.extend_from_slice(&chunk),
                _ => break,
            }
        }
    }
    bytes.truncate(EXCERPT_BYTES);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// An app may echo what it was sent in its error: never let a token it got
/// reach the log.
fn redact_echo(error: String, event: &str, destination: Option<&Destination>) -> String {
    let mut secrets: Vec<String> = Vec::new();
    if let Ok(value) = json::parse(event, &Limits { max_bytes: usize::MAX, ..Limits::default() }) {
        if let Some(token) = value.get("token").and_then(Value::as_str) {
            secrets.push(token.text().into_owned());
        }
    }
    if let Some(TokenMode::Replace(token)) = destination.map(|d| &d.token) {
        secrets.push(token.clone());
    }
    secrets.into_iter().filter(|s| s.len() >= 4).fold(error, |e, s| e.replace(&s, crate::delivery::redact::REDACTED))
}
