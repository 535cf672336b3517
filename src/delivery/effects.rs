//! What a step of an object asks its caller to do, and in which order.
//!
//! A step (a request to a delivery log, its alarm, what its app answered,
//! …) runs synchronously over [`super::sql::Sql`] and answers one
//! [`Effects`]. The caller does what it says in the order
//! [`Effects::actions`] gives, and nothing else: the writes and the alarm
//! commit together, then the log lines, the reply, the requests to apps and
//! the calls to other objects. Both callers, the Worker's entry module
//! (src/worker/entry.mjs) and the native tests' runtime
//! (tests/support/world.rs), execute that list of actions as it comes, so
//! that they cannot disagree on what a step means.
//!
//! Like quinn-proto's `poll_transmit` or rustls' unbuffered API, the value
//! says everything; nothing happens that it does not name. The state
//! machine never awaits, never reads a clock and never draws a random
//! number: the caller passes them in.

use super::key::Key;
use super::wire::{self, Fields, MessageError};
use crate::json::{Limits, Writer};

/// A step's outcome.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// The answer to the request that started the step (none for an alarm
    /// or a report of what apps answered).
    pub reply: Option<Reply>,
    /// The object's alarm.
    pub alarm: Alarm,
    /// Requests to apps. What each saw comes back as one more step
    /// (`Sent`), all of them together or a few at a time, within
    /// [`Effects::report_within_ms`] of their answers.
    pub posts: Vec<Post>,
    /// Calls to other objects. When any carries a ticket, their results
    /// come back as one more step (`Called`), in the calls' order.
    pub calls: Vec<Call>,
    /// Log lines, in order.
    pub logs: Vec<Line>,
    /// The reply waits until this time (ms): a change to the apps is
    /// answered only once every copy of them taken before it has expired.
    pub hold_until: Option<i64>,
    /// How long the caller may hold what apps answered before it reports
    /// it (so that several reports share one write of the state).
    pub report_within_ms: u32,
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

/// One request to an app: a POST with one deadline for its status and, on
/// a failure, for reading an excerpt of its answer; never a redirect
/// followed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Post {
    pub ticket: Ticket,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub timeout_ms: u32,
    /// Not before this long after the step (an app with a rate).
    pub delay_ms: u32,
    /// For an app that takes a listener: no URL is fetched; the request
    /// goes over the listener's WebSocket as a `delivery` frame with this.
    pub listen: Option<Listen>,
}

/// What a `delivery` frame of `drift-bridge listen` says of the delivery
/// beyond its request (docs/cli.md, "The protocol").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listen {
    /// The delivery's id (`<event>.<app>`).
    pub id: String,
    pub event_type: String,
    pub conversation: Option<String>,
    pub attempt: u32,
}

/// What a request to an app was, given back with what the caller saw of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ticket {
    /// An attempt of a stored delivery.
    Attempt { key: Key, attempt: u32 },
    /// A test delivery, stored once it is answered.
    Test { event: String, event_type: String, subscribed: bool, body: String },
}

impl Ticket {
    pub fn encode(&self) -> String {
        match self {
            Ticket::Attempt { key, attempt } => format!("a:{}:{attempt}", key.encode()),
            Ticket::Test { event, event_type, subscribed, body } => {
                let json = Writer::object().str("event", event).str("type", event_type).bool("subscribed", *subscribed).str("body", body).finish();
                format!("t:{json}")
            }
        }
    }

    pub fn decode(text: &str) -> Result<Ticket, MessageError> {
        let bad = |what: &str| MessageError { message: "ticket", path: String::new(), what: what.into() };
        if let Some(rest) = text.strip_prefix("a:") {
            let (key, attempt) = rest.rsplit_once(':').ok_or_else(|| bad("expected a:<key>:<attempt>"))?;
            let key = Key::decode(key).ok_or_else(|| bad("expected a delivery's key"))?;
            let attempt = attempt.parse().map_err(|_| bad("expected an attempt number"))?;
            return Ok(Ticket::Attempt { key, attempt });
        }
        if let Some(json) = text.strip_prefix("t:") {
            let value = wire::parse("ticket", json, &Limits::INTERNAL)?;
            let f = Fields::parse("ticket", &value)?;
            return Ok(Ticket::Test { event: f.str("event")?, event_type: f.str("type")?, subscribed: f.bool("subscribed")?, body: f.str("body")? });
        }
        Err(bad("unknown ticket"))
    }
}

/// The objects one object calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Object {
    /// The delivery log with this key ([`super::destination::log_key`]).
    DeliveryLog(String),
    /// The registry of apps and delivery logs (one instance).
    Registry,
}

impl Object {
    /// The name the object is found by (`idFromName`).
    pub fn instance_name(&self) -> String {
        match self {
            Object::DeliveryLog(key) => format!("destination:{key}"),
            Object::Registry => "registry".to_owned(),
        }
    }

    /// Its Durable Object namespace's binding (wrangler.toml).
    pub fn namespace(&self) -> &'static str {
        match self {
            Object::DeliveryLog(_) => "DELIVERY_LOG",
            Object::Registry => "REGISTRY",
        }
    }
}

/// A call to another object: `POST https://do<path>` with `body`, an input
/// its decoder reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub to: Object,
    pub path: &'static str,
    pub body: String,
    /// Given back with the call's result; `None`: nothing waits for it.
    pub ticket: Option<CallTicket>,
}

/// What a call was about, for the step that takes its result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallTicket {
    /// The registry was told of the log's registration of this epoch.
    Registration { epoch: i64 },
    /// An alert target's log was handed these alerts.
    Alerts { ids: Vec<String> },
    /// A delivery log was forwarded an outbox's rows `from < seq <= up_to`
    /// of the log `key` (drift-bridge 0.3's outboxes, being drained).
    Forward { from: i64, up_to: i64, key: String },
}

impl CallTicket {
    pub fn encode(&self) -> String {
        match self {
            CallTicket::Registration { epoch } => format!("r:{epoch}"),
            CallTicket::Alerts { ids } => format!("a:{}", ids.join(",")),
            CallTicket::Forward { from, up_to, key } => format!("f:{from}:{up_to}:{key}"),
        }
    }

    pub fn decode(text: &str) -> Option<CallTicket> {
        let (kind, rest) = text.split_once(':')?;
        match kind {
            "r" => Some(CallTicket::Registration { epoch: rest.parse().ok()? }),
            "a" => Some(CallTicket::Alerts { ids: rest.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect() }),
            "f" => {
                let mut parts = rest.splitn(3, ':');
                let from = parts.next()?.parse().ok()?;
                let up_to = parts.next()?.parse().ok()?;
                let key = parts.next().filter(|k| !k.is_empty())?.to_owned();
                Some(CallTicket::Forward { from, up_to, key })
            }
            _ => None,
        }
    }
}

/// How a call ended, as the caller reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallResult {
    pub ticket: CallTicket,
    /// The HTTP status of the object's answer, or `None` when the call itself
    /// failed (the object was unreachable or threw).
    pub status: Option<u16>,
    /// The answer's body, or the error.
    pub body: String,
}

/// A log line: structured JSON lines go to `console.log`, errors to
/// `console.error`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub error: bool,
    pub text: String,
}

/// One thing the caller does, in the order [`Effects::actions`] gives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action<'a> {
    /// Inside the step's transaction, with its writes: set or delete the
    /// alarm (only when it changes).
    Alarm(Alarm),
    /// Write a log line.
    Log(&'a Line),
    /// Answer the request, at once or once `hold_until` has passed.
    Reply { reply: &'a Reply, hold_until: Option<i64> },
    /// Send these requests to apps, side by side, and report what was seen
    /// of them (within `report_within_ms`) as one more step.
    Post { posts: &'a [Post], report_within_ms: u32 },
    /// Call these objects and, if any call has a ticket, report their results
    /// as one more step.
    Call(&'a [Call]),
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

    /// Whether the results of the calls are reported back.
    pub fn reports_calls(&self) -> bool {
        self.calls.iter().any(|c| c.ticket.is_some())
    }

    /// What the caller does, in order. The alarm commits with the writes;
    /// the log lines go before anything can fail; the reply goes before the
    /// requests to apps are awaited (a webhook is answered once its
    /// deliveries are stored, not once they are delivered); the calls last.
    pub fn actions(&self) -> Vec<Action<'_>> {
        let mut out = Vec::with_capacity(3 + self.logs.len());
        if self.alarm != Alarm::Keep {
            out.push(Action::Alarm(self.alarm));
        }
        out.extend(self.logs.iter().map(Action::Log));
        if let Some(reply) = &self.reply {
            out.push(Action::Reply { reply, hold_until: self.hold_until });
        }
        if !self.posts.is_empty() {
            out.push(Action::Post { posts: &self.posts, report_within_ms: self.report_within_ms });
        }
        if !self.calls.is_empty() {
            out.push(Action::Call(&self.calls));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_read_back_what_they_wrote() {
        let key = Key { hour: 472_222, event: -5, replay: 2 };
        for t in [
            Ticket::Attempt { key, attempt: 3 },
            Ticket::Test { event: "0123456789abcdef".into(), event_type: "conversation_push".into(), subscribed: true, body: r#"{"a":"b:c"}"#.into() },
        ] {
            assert_eq!(Ticket::decode(&t.encode()).unwrap(), t);
        }
        assert!(Ticket::decode("x:1").is_err());
        for t in [
            CallTicket::Registration { epoch: -4 },
            CallTicket::Alerts { ids: vec!["a".into(), "b".into()] },
            CallTicket::Forward { from: -1, up_to: 9, key: "crm~0a".into() },
        ] {
            assert_eq!(CallTicket::decode(&t.encode()), Some(t));
        }
        assert_eq!(CallTicket::decode("f:1:2:"), None);
    }

    #[test]
    fn the_actions_come_in_one_order() {
        let mut fx = Effects::reply(Reply::ok("{}"));
        fx.alarm = Alarm::At(5);
        fx.log("a line");
        fx.calls.push(Call { to: Object::Registry, path: "/register", body: "{}".into(), ticket: None });
        fx.posts.push(Post {
            ticket: Ticket::Attempt { key: Key { hour: 1, event: 2, replay: 0 }, attempt: 1 },
            url: "https://a.example".into(),
            headers: vec![],
            body: "{}".into(),
            timeout_ms: 1000,
            delay_ms: 0,
            listen: None,
        });
        let kinds: Vec<&str> = fx
            .actions()
            .iter()
            .map(|a| match a {
                Action::Alarm(_) => "alarm",
                Action::Log(_) => "log",
                Action::Reply { .. } => "reply",
                Action::Post { .. } => "post",
                Action::Call(_) => "call",
            })
            .collect();
        assert_eq!(kinds, ["alarm", "log", "reply", "post", "call"]);
        assert!(!fx.reports_calls());
        assert_eq!(Effects::default().actions(), []);
    }
}
