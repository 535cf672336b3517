//! The worker's bindings (wrangler.toml) and the two ways it reaches its
//! parts: a call to a Durable Object instance, and a send to the delivery
//! queue. One module that every other names, so that no two of them import
//! each other for a constant.

use worker::{Env, Method, Request, RequestInit, Result};

use crate::delivery::message::{batches, QUEUE_BATCH_BYTES, QUEUE_BATCH_MESSAGES, QUEUE_MESSAGE_OVERHEAD};

pub use super::env::{switch, DESTINATION, OUTBOX, QUEUE};

/// The queue whose messages the delivery consumer gave up on
/// (wrangler.toml `dead_letter_queue`).
pub const DEAD_LETTER_QUEUE: &str = "drift-bridge-dead-letters";

/// Set to "1" only in tests: enables the `/__test/…` routes.
pub const TEST_ROUTES: &str = "DRIFT_BRIDGE_TEST_ROUTES";
/// Set to "1" only in tests: every send to the delivery queue fails.
pub const TEST_QUEUE_FAILS: &str = "DRIFT_BRIDGE_TEST_QUEUE_FAILS";

/// Which Durable Object instance a name refers to.
pub enum Instance<'a> {
    /// The outbox of a deduplication scope.
    Outbox(&'a str),
    /// The delivery log of a destination.
    Destination(&'a str),
}

/// POSTs `body` to operation `op` (a path such as `/accept`) of a Durable
/// Object instance and answers its reply, or an error with the reply's text
/// when it is not 200.
pub async fn call(env: &Env, instance: Instance<'_>, op: &str, body: String) -> Result<String> {
    match call_status(env, instance, op, body).await? {
        (200, text) => Ok(text),
        (_, text) => Err(worker::Error::RustError(text)),
    }
}

/// Like [`call`], answering the status with the reply's text.
pub async fn call_status(env: &Env, instance: Instance<'_>, op: &str, body: String) -> Result<(u16, String)> {
    let (namespace, name) = match instance {
        Instance::Outbox(scope) => (OUTBOX, scope.to_owned()),
        Instance::Destination(destination) => (DESTINATION, format!("destination:{destination}")),
    };
    let stub = env.durable_object(namespace)?.id_from_name(&name)?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post).with_body(Some(body.into()));
    let mut response = stub.fetch_with_request(Request::new_with_init(&format!("https://do{op}"), &init)?).await?;
    let text = response.text().await?;
    Ok((response.status_code(), text))
}

/// Sends messages to the delivery queue in as many sends as its limits need
/// (100 messages, 256 KB a send). Stops at the first refusal and answers
/// how many were sent before it, with the error.
pub async fn enqueue(env: &Env, messages: &[String]) -> std::result::Result<(), (usize, String)> {
    if switch(env, TEST_QUEUE_FAILS) {
        return Err((0, "the delivery queue refused the send (DRIFT_BRIDGE_TEST_QUEUE_FAILS)".into()));
    }
    let queue = env.queue(QUEUE).map_err(|e| (0, e.to_string()))?;
    let mut sent = 0;
    for batch in batches(messages, QUEUE_BATCH_MESSAGES, QUEUE_BATCH_BYTES, QUEUE_MESSAGE_OVERHEAD) {
        queue.send_batch(batch.to_vec()).await.map_err(|e| (sent, e.to_string()))?;
        sent += batch.len();
    }
    Ok(())
}
