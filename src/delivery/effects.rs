//! What an operation of the state machine asks its caller to do.
//!
//! An operation (the outbox's `/accept`, the delivery log's `/settle`, an
//! alarm, …) runs synchronously over [`super::sql::Sql`] and answers one
//! [`Effects`]: the reply to send, what to do with the object's alarm, the
//! queue messages to send, the calls to make to other objects and the log
//! lines to write. The caller (the Workers adapter, src/worker/entry.mjs, or
//! a native test) applies the alarm in the same transaction as the writes,
//! then does the rest, which is everything that must be awaited. The state
//! machine itself never awaits, never reads a clock and never draws a
//! random number: the caller passes them in.
//!
//! Like quinn-proto's `poll_transmit` or rustls' unbuffered API, the value
//! says everything; nothing happens that it does not name.

use super::message::{batches, QUEUE_BATCH_BYTES, QUEUE_BATCH_MESSAGES, QUEUE_MESSAGE_OVERHEAD};
pub use super::message::CallResult;

/// An operation's outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// The answer to the request that started the operation (none for an
    /// alarm or a continuation).
    pub reply: Option<Reply>,
    /// The object's alarm.
    pub alarm: Alarm,
    /// Messages for the delivery queue, in order.
    pub sends: Vec<Send>,
    /// Calls to make to other objects; when there are any and
    /// [`Effects::then`] names a continuation, their results go back to the
    /// state machine in one step.
    pub calls: Vec<Call>,
    /// Which continuation takes the results of [`Effects::calls`].
    pub then: Option<&'static str>,
    /// Log lines, in order.
    pub logs: Vec<Line>,
    /// Requests to apps (the admin API's test delivery); their results go
    /// to the continuation [`Effects::then`], like the calls'.
    pub posts: Vec<Post>,
    /// The reply waits until this time (ms): a change to the apps is
    /// answered only once every copy of them taken before it has expired.
    pub hold_until: Option<i64>,
}

/// One request to an app, sent as the consumer sends a delivery: a POST
/// with one deadline, its answer's excerpt read within it, no redirects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub timeout_ms: u32,
    pub ticket: String,
}

/// The answer to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// Headers beyond the status and body (rare: a replayed change says so).
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn ok(body: impl Into<String>) -> Reply {
        Reply { status: 200, body: body.into(), headers: Vec::new() }
    }

    pub fn status(status: u16, body: impl Into<String>) -> Reply {
        Reply { status, body: body.into(), headers: Vec::new() }
    }
}

/// What to do with the object's alarm. The state machine keeps the time it
/// last set in its own storage, so the caller never has to read the alarm
/// (an await, which would split the writes from it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Alarm {
    /// Leave it as it is.
    #[default]
    Keep,
    /// Set it to fire at this time (ms since the epoch).
    At(i64),
    /// Delete it.
    Clear,
}

/// One message for the delivery queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send {
    /// The message's JSON text.
    pub body: String,
    /// How long the queue holds it back before it is delivered.
    pub delay_seconds: u32,
}

impl AsRef<str> for Send {
    fn as_ref(&self) -> &str {
        &self.body
    }
}

/// The objects one object calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    /// The delivery log of the destination with this name.
    DeliveryLog(String),
    /// The registry of destinations and their delivery logs (one instance).
    Registry,
    /// The outbox of this scope (alerts are handed off through one).
    Outbox(String),
}

impl Object {
    /// The name the object is found by (`idFromName`).
    pub fn instance_name(&self) -> String {
        match self {
            Object::DeliveryLog(name) => format!("destination:{name}"),
            Object::Registry => "registry".to_owned(),
            Object::Outbox(scope) => scope.clone(),
        }
    }
}

/// A call to another object: `POST https://do<op>` with `body`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub to: Object,
    /// The operation, a path such as `/add`.
    pub op: &'static str,
    pub body: String,
    /// Given back with the call's result, so that the continuation knows
    /// what the call was about (for the outbox: which rows it carried).
    pub ticket: String,
}

/// A log line: structured JSON lines go to `console.log`, errors to
/// `console.error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub error: bool,
    pub text: String,
}

impl Effects {
    /// Effects with only a reply.
    pub fn reply(reply: Reply) -> Effects {
        Effects { reply: Some(reply), ..Effects::default() }
    }

    pub fn log(&mut self, text: impl Into<String>) {
        self.logs.push(Line { error: false, text: text.into() });
    }

    pub fn error(&mut self, text: impl Into<String>) {
        self.logs.push(Line { error: true, text: text.into() });
    }

    /// The sends, split into batches the queue accepts in one `sendBatch`
    /// (at most 100 messages and 256 KB each).
    pub fn send_batches(&self) -> Vec<&[Send]> {
        batches(&self.sends, QUEUE_BATCH_MESSAGES, QUEUE_BATCH_BYTES, QUEUE_MESSAGE_OVERHEAD)
    }
}
