//! What a delivery log takes: one [`Input`] per step, read once, here, from
//! what crosses the wire (a request's path and body, the alarm, what apps
//! answered, what other objects answered); every other part of the log
//! works on the typed value. [`Input::encode`] writes what [`Input::decode`]
//! reads, for the callers (the webhook, the registry, the admin API, the
//! tests).

use super::super::effects::{CallResult, CallTicket};
use super::super::key::event_bits;
use super::super::request::Seen;
use super::super::wire::{self, Fields, MessageError};
use crate::json::{self, Limits, Value, Writer};

/// One step's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// Deliveries to take in: a webhook's (or an outbox's of drift-bridge
    /// 0.3, being drained, or alerts for an alert target).
    Accept(Accept),
    /// What apps answered to requests the log asked for.
    Sent(Vec<Seen>),
    /// The log's alarm.
    Alarm,
    /// What other objects answered to calls the log made.
    Called(Vec<CallResult>),
    /// The registry deleted the app: its incarnation ends.
    End { key: String },
    /// The admin API: one page of the log, newest first.
    List(ListQuery),
    /// One delivery, with its body and attempts.
    Get { id: String },
    /// A dead letter, once more.
    Replay { id: String },
    /// Every dead letter since a time, once more, page by page.
    Recover(Recover),
    Pause { key: String },
    Resume { key: String },
    /// The app's state and health.
    Health { key: String },
    /// Counts over time.
    Metrics(MetricsQuery),
    /// Counts since the log began (Prometheus).
    Totals,
    /// A test delivery, sent at once.
    Test(TestDelivery),
    /// Row counts, for tests.
    Stats,
    /// Rows made up in one statement, for tests that measure a large log.
    Fill(Fill),
    /// `drift-bridge listen` connects to the log of `key`'s app (the caller
    /// takes the WebSocket once the step answers 200 with the hello).
    Listen { key: String },
}

/// A path and a body the log cannot take: which, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InputError {
    /// No such operation: answered 404.
    Unknown(String),
    /// The body cannot be read: answered 400.
    Bad(MessageError),
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::Unknown(path) => write!(f, "unknown delivery log operation {}", crate::escape::quoted(path)),
            InputError::Bad(e) => e.fmt(f),
        }
    }
}

impl From<MessageError> for InputError {
    fn from(e: MessageError) -> Self {
        InputError::Bad(e)
    }
}

impl Input {
    /// Reads a request's path and body, or a caller's report (`/sent`,
    /// `/called`) or the alarm (`alarm`). Built without `log-admin`, the
    /// admin API's paths ([`Input::is_admin_path`]) are unknown here.
    pub fn decode(path: &str, body: &str) -> Result<Input, InputError> {
        Ok(match path {
            "/accept" => Input::Accept(Accept::decode(body)?),
            "/sent" => Input::Sent(Seen::decode_all(body)?),
            "alarm" => Input::Alarm,
            "/called" => Input::Called(decode_results(body)?),
            "/end" => Input::End { key: named(body)? },
            #[cfg(feature = "log-admin")]
            "/list" => Input::List(ListQuery::decode(body)?),
            #[cfg(feature = "log-admin")]
            "/get" => Input::Get { id: by_id(body)? },
            #[cfg(feature = "log-admin")]
            "/replay" => Input::Replay { id: by_id(body)? },
            #[cfg(feature = "log-admin")]
            "/recover" => Input::Recover(Recover::decode(body)?),
            #[cfg(feature = "log-admin")]
            "/pause" => Input::Pause { key: named(body)? },
            #[cfg(feature = "log-admin")]
            "/resume" => Input::Resume { key: named(body)? },
            #[cfg(feature = "log-admin")]
            "/health" => Input::Health { key: named(body)? },
            #[cfg(feature = "log-admin")]
            "/metrics" => Input::Metrics(MetricsQuery::decode(body)?),
            #[cfg(feature = "log-admin")]
            "/totals" => Input::Totals,
            #[cfg(feature = "log-admin")]
            "/test" => Input::Test(TestDelivery::decode(body)?),
            #[cfg(feature = "log-admin")]
            "/stats" => Input::Stats,
            #[cfg(feature = "log-admin")]
            "/fill" => Input::Fill(Fill::decode(body)?),
            #[cfg(feature = "log-admin")]
            "/listen" => Input::Listen { key: named(body)? },
            other => return Err(InputError::Unknown(other.to_owned())),
        })
    }

    /// The path and body [`Input::decode`] reads back as this input.
    pub fn encode(&self) -> (&'static str, String) {
        let body = match self {
            Input::Accept(a) => a.encode(),
            Input::Sent(seen) => Seen::encode_all(seen),
            Input::Alarm => String::new(),
            Input::Called(results) => encode_results(results),
            Input::End { key } => Writer::object().str("destination", key).finish(),
            Input::List(q) => q.encode(),
            Input::Get { id } => Writer::object().str("id", id).finish(),
            Input::Replay { id } => Writer::object().str("id", id).finish(),
            Input::Recover(r) => r.encode(),
            Input::Pause { key } => Writer::object().str("destination", key).finish(),
            Input::Resume { key } => Writer::object().str("destination", key).finish(),
            Input::Health { key } => Writer::object().str("destination", key).finish(),
            Input::Metrics(q) => q.encode(),
            Input::Totals => String::new(),
            Input::Test(t) => t.encode(),
            Input::Stats => String::new(),
            Input::Fill(f) => f.encode(),
            Input::Listen { key } => Writer::object().str("destination", key).finish(),
        };
        (self.path(), body)
    }

    /// Whether `path` is one of the admin API's operations (for a caller
    /// built without `log-admin`, to hand it on unread).
    pub fn is_admin_path(path: &str) -> bool {
        matches!(
            path,
            "/list" | "/get" | "/replay" | "/recover" | "/pause" | "/resume" | "/health" | "/metrics" | "/totals" | "/test" | "/stats" | "/fill" | "/listen"
        )
    }

    /// Whether this is one of the admin API's operations (a test delivery's
    /// report included): every build of the core has them but the Worker's
    /// bridge module, which is started by every isolate and kept small
    /// (feature `log-admin`, off there); it hands them to the operator's.
    pub fn is_admin(&self) -> bool {
        match self {
            Input::Sent(seen) => seen.iter().any(|s| matches!(s.ticket, super::super::effects::Ticket::Test { .. })),
            other => Input::is_admin_path(other.path()),
        }
    }

    /// The path this input crosses the wire under.
    pub fn path(&self) -> &'static str {
        match self {
            Input::Accept(_) => "/accept",
            Input::Sent(_) => "/sent",
            Input::Alarm => "alarm",
            Input::Called(_) => "/called",
            Input::End { .. } => "/end",
            Input::List(_) => "/list",
            Input::Get { .. } => "/get",
            Input::Replay { .. } => "/replay",
            Input::Recover(_) => "/recover",
            Input::Pause { .. } => "/pause",
            Input::Resume { .. } => "/resume",
            Input::Health { .. } => "/health",
            Input::Metrics(_) => "/metrics",
            Input::Totals => "/totals",
            Input::Test(_) => "/test",
            Input::Stats => "/stats",
            Input::Fill(_) => "/fill",
            Input::Listen { .. } => "/listen",
        }
    }
}

fn object<'a>(kind: &'static str, text: &'a str) -> Result<Value<'a>, MessageError> {
    wire::parse(kind, text, &Limits::INTERNAL)
}

fn named(body: &str) -> Result<String, MessageError> {
    let value = object("destination operation", body)?;
    Fields::parse("destination operation", &value)?.str("destination")
}

#[cfg(feature = "log-admin")]
fn by_id(body: &str) -> Result<String, MessageError> {
    let value = object("delivery by id", body)?;
    Fields::parse("delivery by id", &value)?.str("id")
}

/// Deliveries for the log `key` to take in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accept {
    /// The log's key ([`crate::delivery::destination::log_key`]).
    pub key: String,
    pub deliveries: Vec<NewDelivery>,
}

/// One delivery to take in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    /// Its event's id: 16 hex digits, its `webhook-id`.
    pub event: String,
    pub event_type: String,
    /// `conversation:<orgId>:<conversationId>` or `event:<id>`.
    pub scope: String,
    /// When Drift's webhook was received (ms).
    pub received_at: i64,
    /// Its Drift organisation (`orgId` as written), when it has one.
    pub org: Option<String>,
    /// The outbound event's JSON (before the app's token handling).
    pub body: String,
}

impl NewDelivery {
    /// Its JSON, as one item of an [`Accept`].
    pub fn encode(&self) -> String {
        Writer::with_capacity(96 + self.body.len() + self.body.len() / 8)
            .str("event", &self.event)
            .str("type", &self.event_type)
            .str("scope", &self.scope)
            .int("at", self.received_at)
            .opt_str("org", self.org.as_deref())
            .str("body", &self.body)
            .finish()
    }

    fn decode(d: &Fields<'_, '_>) -> Result<NewDelivery, MessageError> {
        let event = d.str("event")?;
        if event_bits(&event).is_none() {
            return Err(d.error("event", "expected an event id of 16 hex digits"));
        }
        Ok(NewDelivery {
            event: event.to_ascii_lowercase(),
            event_type: d.str("type")?,
            scope: d.str("scope")?,
            received_at: d.int("at")?,
            org: d.opt_str("org")?,
            body: d.str("body")?,
        })
    }

    /// The conversation of its scope, if it has one.
    pub fn conversation(&self) -> Option<&str> {
        conversation_of(&self.scope)
    }
}

/// The conversation id of a scope `conversation:<orgId>:<conversationId>`.
pub fn conversation_of(scope: &str) -> Option<&str> {
    scope.strip_prefix("conversation:")?.split_once(':').map(|(_, c)| c)
}

impl Accept {
    /// An accept's body from items already encoded by [`NewDelivery::encode`].
    pub fn encode_items(key: &str, items: &[&str]) -> String {
        let mut out = String::with_capacity(32 + key.len() + items.iter().map(|i| i.len() + 1).sum::<usize>());
        out.push_str("{\"key\":");
        json::write_str_escaped(&mut out, key);
        out.push_str(",\"deliveries\":[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(item);
        }
        out.push_str("]}");
        out
    }

    pub fn encode(&self) -> String {
        let items: Vec<String> = self.deliveries.iter().map(NewDelivery::encode).collect();
        let refs: Vec<&str> = items.iter().map(String::as_str).collect();
        Accept::encode_items(&self.key, &refs)
    }

    pub fn decode(text: &str) -> Result<Accept, MessageError> {
        const KIND: &str = "/accept";
        let value = wire::parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        Ok(Accept { key: f.str("key")?, deliveries: f.each("deliveries", NewDelivery::decode)? })
    }
}

/// `/accept`'s answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Added {
    /// New deliveries taken in.
    pub added: u32,
    /// Deliveries it already had within the deduplication window.
    pub duplicates: u32,
    /// New deliveries failed at once (the log is full, or its app removed).
    pub refused: u32,
}

impl Added {
    pub fn encode(&self) -> String {
        Writer::object()
            .int("added", i64::from(self.added))
            .int("duplicates", i64::from(self.duplicates))
            .int("refused", i64::from(self.refused))
            .finish()
    }

    pub fn decode(text: &str) -> Result<Added, MessageError> {
        const KIND: &str = "/accept's answer";
        let value = wire::parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        let n = |name: &str| -> Result<u32, MessageError> { Ok(f.opt_int(name)?.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32) };
        Ok(Added { added: n("added")?, duplicates: n("duplicates")?, refused: n("refused")? })
    }
}

fn encode_results(results: &[CallResult]) -> String {
    wire::array(results, |r| {
        Writer::with_capacity(48 + r.body.len())
            .str("ticket", &r.ticket.encode())
            .int_or_null("status", r.status.map(i64::from))
            .str("body", &r.body)
            .finish()
    })
}

/// Reads the caller's report of its calls: `[{"ticket","status","body"}]`.
pub fn decode_results(text: &str) -> Result<Vec<CallResult>, MessageError> {
    wire::objects("call results", text, |f| {
        let status = f.opt_status("status")?;
        let ticket = CallTicket::decode(&f.str("ticket")?).ok_or_else(|| f.error("ticket", "unknown call ticket"))?;
        Ok(CallResult { ticket, status, body: f.opt_str("body")?.unwrap_or_default() })
    })
}

/// The results' JSON, as the caller reports them.
pub fn encode_call_results(results: &[CallResult]) -> String {
    encode_results(results)
}

/// `/list`: one page of a delivery log, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Stored status words (none: all).
    pub statuses: Vec<String>,
    pub conversation: Option<String>,
    /// An event id: the deliveries of that event.
    pub event: Option<String>,
    /// When Drift's webhook was received: `since` inclusive, `until` exclusive.
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: u32,
    /// Continue below this position of the log (a previous page's `next`).
    pub before: Option<i64>,
}

impl ListQuery {
    pub fn encode(&self) -> String {
        Writer::object()
            .raw("status", &json::string_array(&self.statuses))
            .opt_str("conversation", self.conversation.as_deref())
            .opt_str("event", self.event.as_deref())
            .opt_int("since", self.since)
            .opt_int("until", self.until)
            .int("limit", i64::from(self.limit))
            .opt_int("before", self.before)
            .finish()
    }

    pub fn decode(text: &str) -> Result<ListQuery, MessageError> {
        const KIND: &str = "/list";
        let value = wire::parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        Ok(ListQuery {
            statuses: f.strings("status")?,
            conversation: f.opt_str("conversation")?,
            event: f.opt_str("event")?,
            since: f.opt_int("since")?,
            until: f.opt_int("until")?,
            limit: f.opt_int("limit")?.unwrap_or(50).clamp(1, 500) as u32,
            before: f.opt_int("before")?,
        })
    }
}

/// `/recover`: every dead letter with one of `statuses` received since
/// `since`, once more, page by page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recover {
    pub key: String,
    pub since: i64,
    /// `failed`, `gone`.
    pub statuses: Vec<String>,
}

impl Recover {
    pub fn encode(&self) -> String {
        Writer::object().str("destination", &self.key).int("since", self.since).raw("status", &json::string_array(&self.statuses)).finish()
    }

    pub fn decode(text: &str) -> Result<Recover, MessageError> {
        const KIND: &str = "/recover";
        let value = wire::parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        Ok(Recover { key: f.str("destination")?, since: f.opt_int("since")?.unwrap_or(0), statuses: f.strings("status")? })
    }
}

/// `/metrics`: counts from `since` to `until`, per `step` (a minute or an
/// hour, in ms).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetricsQuery {
    pub since: i64,
    pub until: i64,
    pub step: i64,
}

impl MetricsQuery {
    pub fn encode(&self) -> String {
        Writer::object().int("since", self.since).int("until", self.until).int("step", self.step).finish()
    }

    pub fn decode(text: &str) -> Result<MetricsQuery, MessageError> {
        const KIND: &str = "/metrics";
        let value = wire::parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        let step = if f.opt_int("step")? == Some(super::super::metrics::HOUR_MS) { super::super::metrics::HOUR_MS } else { super::super::metrics::MINUTE_MS };
        Ok(MetricsQuery { since: f.int("since")?, until: f.int("until")?, step })
    }
}

/// What the admin API asks the log to send as a test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestDelivery {
    /// The log's key.
    pub key: String,
    /// The `webhook-id`: 16 hex digits, random.
    pub event_id: String,
    pub event_type: String,
    /// The event's JSON, before the app's token handling.
    pub body: String,
    /// Whether the app subscribes to this type (it is sent either way).
    pub subscribed: bool,
}

impl TestDelivery {
    pub fn encode(&self) -> String {
        Writer::with_capacity(96 + self.body.len())
            .str("destination", &self.key)
            .str("eventId", &self.event_id)
            .str("type", &self.event_type)
            .str("body", &self.body)
            .bool("subscribed", self.subscribed)
            .finish()
    }

    pub fn decode(text: &str) -> Result<TestDelivery, MessageError> {
        const KIND: &str = "/test";
        let value = wire::parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        let event_id = f.str("eventId")?;
        if event_bits(&event_id).is_none() {
            return Err(f.error("eventId", "expected an event id of 16 hex digits"));
        }
        Ok(TestDelivery { key: f.str("destination")?, event_id, event_type: f.str("type")?, body: f.str("body")?, subscribed: f.bool("subscribed")? })
    }
}

/// `/fill`, for tests: `count` deliveries of `status` (held or failed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fill {
    pub key: String,
    pub count: i64,
    pub failed: bool,
}

impl Fill {
    pub fn encode(&self) -> String {
        Writer::object().str("destination", &self.key).int("count", self.count).str("status", if self.failed { "failed" } else { "held" }).finish()
    }

    pub fn decode(text: &str) -> Result<Fill, MessageError> {
        const KIND: &str = "/fill";
        let value = wire::parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        Ok(Fill { key: f.str("destination")?, count: f.opt_int("count")?.unwrap_or(0).clamp(0, 1_000_000), failed: f.opt_str("status")?.as_deref() == Some("failed") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::effects::Ticket;
    use crate::delivery::key::Key;

    #[test]
    fn every_input_reads_back_what_it_wrote() {
        let accept = Accept {
            key: "crm~0123456789abcdef".into(),
            deliveries: vec![NewDelivery {
                event: "0123456789abcdef".into(),
                event_type: "conversation_push".into(),
                scope: "conversation:1:7".into(),
                received_at: 5,
                org: Some("1".into()),
                body: r#"{"orgId":1,"n":12345678901234567890,"s":"a\"b"}"#.into(),
            }],
        };
        let inputs = [
            Input::Accept(accept),
            Input::Sent(vec![Seen {
                ticket: Ticket::Attempt { key: Key { hour: 1, event: 2, replay: 0 }, attempt: 1 },
                status: Some(200),
                location: None,
                excerpt: String::new(),
                error: None,
                latency_ms: 4,
            }]),
            Input::Alarm,
            Input::Called(vec![CallResult { ticket: CallTicket::Registration { epoch: 3 }, status: None, body: "down".into() }]),
            Input::End { key: "crm~1".into() },
            Input::List(ListQuery { statuses: vec!["failed".into()], conversation: Some("7".into()), event: None, since: Some(1), until: None, limit: 20, before: Some(9) }),
            Input::Get { id: "0123456789abcdef.crm".into() },
            Input::Replay { id: "0123456789abcdef.crm".into() },
            Input::Recover(Recover { key: "crm".into(), since: 9, statuses: vec!["gone".into()] }),
            Input::Pause { key: "crm".into() },
            Input::Resume { key: "crm".into() },
            Input::Health { key: "crm".into() },
            Input::Metrics(MetricsQuery { since: 1, until: 2, step: 60_000 }),
            Input::Totals,
            Input::Test(TestDelivery { key: "crm".into(), event_id: "0123456789abcdef".into(), event_type: "t".into(), body: "{}".into(), subscribed: true }),
            Input::Stats,
            Input::Fill(Fill { key: "crm".into(), count: 3, failed: true }),
            Input::Listen { key: "laptop~0123456789abcdef".into() },
        ];
        let mut sampled = [false; VARIANTS];
        for input in inputs {
            sampled[variant(&input)] = true;
            let (path, body) = input.encode();
            // What the bridge's module, built without the admin
            // operations, hands on unread: exactly the admin API's inputs.
            let core = matches!(input, Input::Accept(_) | Input::Sent(_) | Input::Alarm | Input::Called(_) | Input::End { .. });
            assert_eq!(Input::is_admin_path(path), !core, "{path}: is_admin_path must list every admin operation and nothing else");
            assert_eq!(Input::decode(path, &body).unwrap(), input, "{path}");
        }
        assert!(sampled.iter().all(|s| *s), "every kind of input has a sample here: {sampled:?}");
    }

    const VARIANTS: usize = 18;

    /// Each kind of input by number: a new one does not compile until it
    /// has one, and the test above then wants a sample of it.
    fn variant(input: &Input) -> usize {
        match input {
            Input::Accept(_) => 0,
            Input::Sent(_) => 1,
            Input::Alarm => 2,
            Input::Called(_) => 3,
            Input::End { .. } => 4,
            Input::List(_) => 5,
            Input::Get { .. } => 6,
            Input::Replay { .. } => 7,
            Input::Recover(_) => 8,
            Input::Pause { .. } => 9,
            Input::Resume { .. } => 10,
            Input::Health { .. } => 11,
            Input::Metrics(_) => 12,
            Input::Totals => 13,
            Input::Test(_) => 14,
            Input::Stats => 15,
            Input::Fill(_) => 16,
            Input::Listen { .. } => 17,
        }
    }

    #[test]
    fn bad_inputs_name_what_is_wrong() {
        assert_eq!(Input::decode("/nope", "").unwrap_err(), InputError::Unknown("/nope".into()));
        let e = Input::decode("/accept", r#"{"key":"a","deliveries":[{"event":"x","type":"t","scope":"s","at":1,"body":"{}"}]}"#).unwrap_err();
        assert!(e.to_string().contains("deliveries[0].event"), "{e}");
        let e = Input::decode("/accept", r#"{"key":"a","deliveries":[{"event":"0123456789abcdef","type":"t","scope":"s","at":"1","body":"{}"}]}"#).unwrap_err();
        assert!(e.to_string().contains("deliveries[0].at") && e.to_string().contains("expected an integer"), "{e}");
        assert_eq!(conversation_of("conversation:1:7"), Some("7"));
        assert_eq!(conversation_of("event:abc"), None);
    }
}
