//! Hand-off and delivery: the I/O around the pure decisions of
//! [`crate::delivery`].
//!
//! ```text
//! Drift ──POST──▶ /webhooks/drift ──claim──▶ Outbox (Durable Object, per conversation)
//!                       │  ◀─new ids──┘
//!                       ├──send_batch──▶ Queue "drift-bridge-deliveries"
//!                       └──200 to Drift (503 if the queue refused: Drift retries)
//!
//! Queue ──batch──▶ consumer ──attempt──▶ Outbox ──▶ POST to the app (signed)
//!                     ├ 2xx: delivered        ├ 410: gone (kept for the admin)
//!                     └ else: retry with backoff … after 12 attempts ──▶ dead-letter queue
//!                                                                        └▶ Outbox "dead-letters"
//! ```

use std::time::Duration;

use futures_util::future::{join_all, select, Either};
use worker::{
    AbortController, Delay, Env, Fetch, Headers, Method, MessageBatch, MessageExt, QueueRetryOptionsBuilder, Request,
    RequestInit, Result,
};

use crate::config::Config;
use crate::delivery::{message::fan_out, payload, schedule, sign, Message};
use crate::json::{self, Limits, Value};
use crate::rules::Outbound;

pub const QUEUE_BINDING: &str = "DELIVERIES";
pub const OUTBOX_BINDING: &str = "OUTBOX";
/// The queue whose messages gave up (wrangler.toml `dead_letter_queue`).
pub const DEAD_LETTER_QUEUE: &str = "drift-bridge-dead-letters";

/// Why a hand-off did not complete; the webhook answers 503 and Drift retries.
pub enum HandOffError {
    /// Another copy of this webhook is being handed off right now.
    Busy,
    /// The queue or the outbox failed.
    Failed(String),
}

/// Puts one message per (destination, event) on the queue, skipping those
/// already handed off in the last 24 hours. Returns how many were queued.
pub async fn hand_off(env: &Env, config: &Config, events: &[Outbound], now: i64) -> std::result::Result<usize, HandOffError> {
    let messages = fan_out(events, &config.destinations, now);
    if messages.is_empty() {
        return Ok(0);
    }
    let failed = |e: worker::Error| HandOffError::Failed(e.to_string());
    let mut queued = 0;
    // All events of one webhook share a scope, but stay general.
    let mut scopes: Vec<&str> = Vec::new();
    for m in &messages {
        if !scopes.contains(&m.scope.as_str()) {
            scopes.push(&m.scope);
        }
    }
    for scope in scopes {
        // (delivery id, encoded message), encoded once for the claim and the queue.
        let batch: Vec<(String, String)> =
            messages.iter().filter(|m| m.scope == scope).map(|m| (m.delivery_id(), m.encode())).collect();
        let body = format!("[{}]", batch.iter().map(|(_, text)| text.as_str()).collect::<Vec<_>>().join(","));
        let reply = outbox(env, scope, "/claim", body).await.map_err(failed)?;
        let reply = json::parse(&reply, &Limits { max_bytes: usize::MAX, ..Limits::default() })
            .map_err(|e| HandOffError::Failed(format!("outbox reply: {e}")))?;
        let list = |name: &str| -> Vec<String> {
            match reply.get(name) {
                Some(Value::Array(items)) => items.iter().filter_map(|v| v.as_str().map(|s| s.text().into_owned())).collect(),
                _ => Vec::new(),
            }
        };
        let claimed = list("claimed");
        let claimed_json = json::string_array(&claimed);
        if !list("busy").is_empty() {
            let _ = outbox(env, scope, "/release", claimed_json).await;
            return Err(HandOffError::Busy);
        }
        if claimed.is_empty() {
            continue;
        }
        let bodies: Vec<String> =
            batch.into_iter().filter(|(id, _)| claimed.contains(id)).map(|(_, text)| text).collect();
        let sent = match env.queue(QUEUE_BINDING) {
            Ok(queue) => queue.send_batch(bodies).await,
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            // Give the claims back so that Drift's retry can take them.
            let _ = outbox(env, scope, "/release", claimed_json).await;
            return Err(HandOffError::Failed(format!("the delivery queue refused the events: {e}")));
        }
        let grace_ms = i64::from(config.recovery_grace_seconds) * 1000;
        if let Err(e) = outbox(env, scope, "/confirm", format!("{{\"graceMs\":{grace_ms},\"ids\":{claimed_json}}}")).await {
            // The messages are on the queue; the claims expire and the
            // consumer tracks them anyway.
            worker::console_error!("hand-off: confirming {scope} failed: {e}");
        }
        queued += claimed.len();
    }
    Ok(queued)
}

/// Calls one outbox instance.
pub async fn outbox(env: &Env, scope: &str, op: &str, body: String) -> Result<String> {
    let stub = env.durable_object(OUTBOX_BINDING)?.id_from_name(scope)?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let mut response = stub.fetch_with_request(Request::new_with_init(&format!("https://outbox{op}"), &init)?).await?;
    let text = response.text().await?;
    if response.status_code() != 200 {
        return Err(worker::Error::RustError(text));
    }
    Ok(text)
}

/// The queue consumer, for both the delivery queue and its dead-letter queue.
pub async fn consume(batch: MessageBatch<String>, env: Env) -> Result<()> {
    let config = super::config(&env);
    let dead = batch.queue() == DEAD_LETTER_QUEUE;
    let messages = batch.messages()?;
    join_all(messages.iter().map(|m| async {
        let outcome = if dead { dead_letter(&env, m.body()).await } else { deliver(&env, &config, m.body()).await };
        match outcome {
            Ok(Next::Done) => m.ack(),
            Ok(Next::RetryIn(seconds)) => m.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(seconds).build()),
            Err(e) => {
                worker::console_error!("delivery: {e}; retrying");
                m.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(config.retry_base_seconds).build());
            }
        }
    }))
    .await;
    Ok(())
}

enum Next {
    Done,
    RetryIn(u32),
}

async fn deliver(env: &Env, config: &Config, text: &str) -> Result<Next> {
    let message = match Message::decode(text) {
        Ok(m) => m,
        Err(e) => {
            worker::console_error!("delivery: dropping an unreadable queue message ({e}): {text}");
            return Ok(Next::Done);
        }
    };
    let Some(destination) = config.destinations.get(&message.destination) else {
        let reason = format!("destination {} is no longer configured", message.destination);
        record_dead(env, &message, "failed", &reason, 0).await?;
        outbox(env, &message.scope, "/settle", settle_body(&message, "failed", Some(&reason), None)).await?;
        return Ok(Next::Done);
    };
    let timeout_ms = config.delivery_timeout_ms;
    let busy_ms = i64::from(timeout_ms) + i64::from(config.recovery_grace_seconds) * 1000;
    let mut begin = String::from("{\"busyMs\":");
    begin.push_str(&busy_ms.to_string());
    begin.push_str(",\"message\":");
    json::write_str_escaped(&mut begin, &message.encode());
    begin.push('}');
    let reply = outbox(env, &message.scope, "/attempt", begin).await?;
    let reply = json::parse(&reply, &Limits::default()).map_err(|e| worker::Error::RustError(e.to_string()))?;
    if reply.get("go") != Some(&Value::Bool(true)) {
        // Already delivered, gone or failed: a duplicate queue message.
        return Ok(Next::Done);
    }
    let attempt = reply.get("attempt").and_then(Value::as_integer).map_or(1, crate::legacy::integer_ms).max(1) as u32;

    let body = payload::body(&message.event, &destination.token).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let timestamp = super::now_ms() / 1000;
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set("user-agent", &crate::delivery::user_agent())?;
    headers.set("webhook-id", &message.event_id)?;
    headers.set("webhook-timestamp", &timestamp.to_string())?;
    if let Some(secret) = &destination.signing_secret {
        let key = sign::key_from_secret(secret).map_err(worker::Error::RustError)?;
        headers.set("webhook-signature", &sign::signature(&key, &message.event_id, timestamp, &body))?;
    }
    let outcome = post(&destination.url, headers, body, timeout_ms).await;
    let (status, error) = match outcome {
        Ok(code) if (200..300).contains(&code) => ("delivered", None),
        Ok(410) => ("gone", Some("the app answered 410 Gone".to_owned())),
        Ok(code) => ("retrying", Some(format!("the app answered {code}"))),
        Err(e) => ("retrying", Some(e)),
    };
    let delay = schedule::delay_seconds(config.retry_base_seconds, attempt, js_sys::Math::random());
    let due = (status == "retrying").then(|| super::now_ms() + i64::from(delay) * 1000 + busy_ms);
    outbox(env, &message.scope, "/settle", settle_body(&message, status, error.as_deref(), due)).await?;
    match status {
        "delivered" => Ok(Next::Done),
        "gone" => {
            record_dead(env, &message, "gone", error.as_deref().unwrap_or_default(), i64::from(attempt)).await?;
            Ok(Next::Done)
        }
        _ => {
            worker::console_log!(
                "delivery: {} attempt {attempt} failed ({}); retry in {delay} s",
                message.delivery_id(),
                error.unwrap_or_default()
            );
            Ok(Next::RetryIn(delay))
        }
    }
}

fn settle_body(message: &Message, status: &str, error: Option<&str>, due: Option<i64>) -> String {
    let mut out = String::from("{\"id\":");
    json::write_str_escaped(&mut out, &message.delivery_id());
    out.push_str(",\"status\":");
    json::write_str_escaped(&mut out, status);
    if let Some(error) = error {
        out.push_str(",\"error\":");
        json::write_str_escaped(&mut out, error);
    }
    if let Some(due) = due {
        out.push_str(&format!(",\"dueMs\":{due}"));
    }
    out.push('}');
    out
}

/// A message that used up its retries: settle it as failed and keep it.
async fn dead_letter(env: &Env, text: &str) -> Result<Next> {
    let Ok(message) = Message::decode(text) else {
        worker::console_error!("dead letters: dropping an unreadable message: {text}");
        return Ok(Next::Done);
    };
    let reply = outbox(env, &message.scope, "/settle", settle_body(&message, "failed", None, None)).await?;
    let reply = json::parse(&reply, &Limits::default()).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let attempts = reply.get("attempts").and_then(Value::as_integer).map_or(0, crate::legacy::integer_ms);
    let last = reply.get("lastError").and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
    let reason = format!("gave up after {attempts} attempts; last: {last}");
    record_dead(env, &message, "failed", &reason, attempts).await?;
    Ok(Next::Done)
}

async fn record_dead(env: &Env, message: &Message, status: &str, reason: &str, attempts: i64) -> Result<()> {
    let mut body = String::from("{\"message\":");
    json::write_str_escaped(&mut body, &message.encode());
    body.push_str(",\"status\":");
    json::write_str_escaped(&mut body, status);
    body.push_str(",\"reason\":");
    json::write_str_escaped(&mut body, reason);
    body.push_str(&format!(",\"attempts\":{attempts}}}"));
    outbox(env, super::outbox::DEAD_LETTERS, "/dead/add", body).await.map(|_| ())
}

/// POSTs with a timeout; answers the status code, or why there is none.
async fn post(url: &str, headers: Headers, body: String, timeout_ms: u32) -> std::result::Result<u16, String> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_headers(headers).with_body(Some(body.into()));
    let request = Request::new_with_init(url, &init).map_err(|e| e.to_string())?;
    let fetch = Box::pin(async move { Fetch::Request(request).send_with_signal(&signal).await });
    let timeout = Box::pin(Delay::from(Duration::from_millis(u64::from(timeout_ms))));
    match select(fetch, timeout).await {
        Either::Left((Ok(mut response), _)) => {
            // Drain the body so the connection can be reused.
            let _ = response.bytes().await;
            Ok(response.status_code())
        }
        Either::Left((Err(e), _)) => Err(format!("network error: {e}")),
        Either::Right(_) => {
            controller.abort();
            Err(format!("no answer within {timeout_ms} ms"))
        }
    }
}
