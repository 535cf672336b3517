//! Everything that crosses between the bridge's parts, typed: each message
//! has its encoder and its decoder side by side, so that the writer and the
//! reader cannot drift apart.
//!
//! | message | from → to | JSON |
//! |---|---|---|
//! | [`Ref`] | delivery log → queue → consumer | `{"v":2,"d":<destination>,"id":<delivery>,"g":<generation>}` |
//! | [`V1`] | drift-bridge 0.1's queue | `{"v":1,"destination",…,"event":{…}}`, read only |
//! | [`Add`] | outbox → delivery log `/add` | `{"destination","deliveries":[{"id","event","type","scope","at","body"}]}` |
//! | [`Attempt`] | consumer → delivery log `/attempt` | `{"lease":<ms>,"items":[{"id","g"}]}` |
//! | [`AttemptReply`] | its answer | `{"go":[{"id","g","attempt","probe","eventId","body"}],"skip":[…]}` |
//! | [`Settle`] | consumer → delivery log `/settle` | `{"outcomes":[{"id","g","attempt","code","error","latencyMs","tried"}]}` |
//! | [`Dead`] | dead-letter consumer → delivery log `/dead` | `{"items":[{"id","g"}]}` |
//! | [`CallResults`] | the adapter → a continuation | `[{"ticket","status","body"}]` |
//!
//! The queue carries a reference, never the event: a message stays under
//! 200 bytes whatever the event's size (queues take at most 128 KB a
//! message and 256 KB a batch) and carries no secret. Its generation tells
//! copies apart: each time the delivery log queues a delivery anew (a retry,
//! a recovery, a release from hold) it counts up, and a copy of an older
//! generation that resurfaces is skipped. Messages of version 1 (the whole
//! event inside, from drift-bridge 0.1) are still read, so that an upgrade
//! loses nothing that was in flight.
//!
//! Event bodies travel as JSON strings inside these messages, never as
//! nested objects, so a message nests no deeper than its own fields.

use std::fmt;

use crate::json::{self, Limits, Value, Writer};

/// A message that could not be read: which message, which field, and what
/// is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageError {
    pub message: &'static str,
    pub path: String,
    pub what: String,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.message, self.what)
        } else {
            write!(f, "{} at {}: {}", self.message, self.path, self.what)
        }
    }
}

impl std::error::Error for MessageError {}

/// Reads the fields of one JSON object, naming the path of any that is wrong.
///
/// Its readers are never inlined: every decoder calls them dozens of times,
/// and inlined they would repeat the error path at each call (tens of KB of
/// the wasm that serves webhooks).
pub(crate) struct Fields<'v, 'a> {
    message: &'static str,
    path: String,
    value: &'v Value<'a>,
}

impl<'v, 'a> Fields<'v, 'a> {
    pub(crate) fn parse(message: &'static str, value: &'v Value<'a>) -> Result<Fields<'v, 'a>, MessageError> {
        Fields::at(message, String::new(), value)
    }

    pub(crate) fn at(message: &'static str, path: String, value: &'v Value<'a>) -> Result<Fields<'v, 'a>, MessageError> {
        let fields = Fields { message, path, value };
        if value.as_object().is_none() {
            return Err(fields.error("", format!("expected an object, found {}", value.describe())));
        }
        Ok(fields)
    }

    #[inline(never)]
    pub(crate) fn error(&self, name: &str, what: impl Into<String>) -> MessageError {
        let path = match (self.path.is_empty(), name.is_empty()) {
            (_, true) => self.path.clone(),
            (true, false) => name.to_owned(),
            (false, false) => format!("{}.{name}", self.path),
        };
        MessageError { message: self.message, path, what: what.into() }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&'v Value<'a>> {
        self.value.get(name).filter(|v| **v != Value::Null)
    }

    #[inline(never)]
    pub(crate) fn str(&self, name: &str) -> Result<String, MessageError> {
        self.opt_str(name)?.ok_or_else(|| self.error(name, "missing"))
    }

    #[inline(never)]
    pub(crate) fn opt_str(&self, name: &str) -> Result<Option<String>, MessageError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.text().into_owned())),
            Some(v) => Err(self.error(name, format!("expected a string, found {}", v.describe()))),
        }
    }

    #[inline(never)]
    pub(crate) fn int(&self, name: &str) -> Result<i64, MessageError> {
        self.opt_int(name)?.ok_or_else(|| self.error(name, "missing"))
    }

    #[inline(never)]
    pub(crate) fn opt_int(&self, name: &str) -> Result<Option<i64>, MessageError> {
        match self.get(name) {
            None => Ok(None),
            Some(v) => match v.as_integer().and_then(|n| n.parse::<i64>().ok()) {
                Some(n) => Ok(Some(n)),
                None => Err(self.error(name, format!("expected an integer, found {}", v.describe()))),
            },
        }
    }

    #[inline(never)]
    pub(crate) fn bool(&self, name: &str) -> Result<bool, MessageError> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.error(name, format!("expected true or false, found {}", v.describe()))),
        }
    }

    #[inline(never)]
    fn array(&self, name: &str) -> Result<&'v [Value<'a>], MessageError> {
        match self.get(name) {
            Some(Value::Array(items)) => Ok(items),
            Some(v) => Err(self.error(name, format!("expected an array, found {}", v.describe()))),
            None => Err(self.error(name, "missing")),
        }
    }

    #[inline(never)]
    fn opt_array(&self, name: &str) -> Result<&'v [Value<'a>], MessageError> {
        match self.get(name) {
            None => Ok(&[]),
            Some(_) => self.array(name),
        }
    }

    #[inline(never)]
    pub(crate) fn strings(&self, name: &str) -> Result<Vec<String>, MessageError> {
        self.opt_array(name)?
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_str().map(|s| s.text().into_owned()).ok_or_else(|| self.error(&format!("{name}[{i}]"), "expected a string")))
            .collect()
    }

    /// The integers of the array `name` (absent: none), each as written.
    #[inline(never)]
    pub(crate) fn integers(&self, name: &str) -> Result<Vec<String>, MessageError> {
        self.opt_array(name)?
            .iter()
            .enumerate()
            .map(|(i, v)| v.as_integer().map(str::to_owned).ok_or_else(|| self.error(&format!("{name}[{i}]"), "expected an integer")))
            .collect()
    }

    /// [`Fields::each`] over an array that may be absent.
    pub(crate) fn each_opt<T>(&self, name: &str, read: impl FnMut(&Fields<'v, 'a>) -> Result<T, MessageError>) -> Result<Vec<T>, MessageError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(_) => self.each(name, read),
        }
    }

    /// Each object of the array `name`, read by `read`.
    pub(crate) fn each<T>(&self, name: &str, mut read: impl FnMut(&Fields<'v, 'a>) -> Result<T, MessageError>) -> Result<Vec<T>, MessageError> {
        let base = if self.path.is_empty() { name.to_owned() } else { format!("{}.{name}", self.path) };
        let items = self.array(name)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            out.push(read(&Fields::at(self.message, format!("{base}[{i}]"), v)?)?);
        }
        Ok(out)
    }
}

pub(crate) fn parse<'a>(message: &'static str, text: &'a str, limits: &Limits) -> Result<Value<'a>, MessageError> {
    json::parse(text, limits).map_err(|e| MessageError { message, path: e.path().to_owned(), what: e.to_string() })
}

/// A JSON array of the given items' JSON.
fn array<T>(items: &[T], write: impl Fn(&T) -> String) -> String {
    let mut out = String::from("[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&write(item));
    }
    out.push(']');
    out
}

// ---------------------------------------------------------------- the queue

/// A reference to one delivery: what travels on the delivery queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ref {
    pub destination: String,
    /// `<event id>.<destination>` or, for a replay, `<event id>.<destination>.r<n>`.
    pub id: String,
    pub generation: u32,
}

impl Ref {
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(48 + self.destination.len() + self.id.len());
        out.push_str("{\"v\":2,\"d\":");
        json::write_str_escaped(&mut out, &self.destination);
        out.push_str(",\"id\":");
        json::write_str_escaped(&mut out, &self.id);
        out.push_str(",\"g\":");
        out.push_str(&self.generation.to_string());
        out.push('}');
        out
    }
}

/// A version 1 message: one delivery with its event inside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct V1 {
    pub destination: String,
    pub event_id: String,
    pub event_type: String,
    pub scope: String,
    /// The outbound event's JSON.
    pub event: String,
    pub queued_at_ms: i64,
}

impl V1 {
    /// The `/add` that moves it into its destination's delivery log.
    pub fn to_add(&self) -> Add {
        Add {
            destination: self.destination.clone(),
            deliveries: vec![NewDelivery {
                id: super::handoff::delivery_id(&self.event_id, &self.destination),
                event_id: self.event_id.clone(),
                event_type: self.event_type.clone(),
                scope: self.scope.clone(),
                received_at: self.queued_at_ms,
                body: self.event.clone(),
                org: None,
            }],
        }
    }
}

/// A message read off the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueMessage {
    Ref(Ref),
    V1(V1),
}

impl QueueMessage {
    /// Reads a message; the error says which field is wrong.
    pub fn decode(text: &str) -> Result<QueueMessage, MessageError> {
        const KIND: &str = "queue message";
        // v1 messages nest the event, so allow its depth and then some.
        let value = parse(KIND, text, &Limits { max_bytes: usize::MAX, max_depth: json::DEFAULT_MAX_DEPTH + 2 })?;
        let f = Fields::parse(KIND, &value)?;
        match f.opt_int("v")? {
            Some(2) => {
                let generation = f.int("g")?;
                let generation = u32::try_from(generation).map_err(|_| f.error("g", "expected a generation number"))?;
                Ok(QueueMessage::Ref(Ref { destination: f.str("d")?, id: f.str("id")?, generation }))
            }
            Some(1) => {
                let event = f
                    .get("event")
                    .filter(|v| v.as_object().is_some())
                    .ok_or_else(|| f.error("event", "missing or not an object"))?;
                Ok(QueueMessage::V1(V1 {
                    destination: f.str("destination")?,
                    event_id: f.str("id")?,
                    event_type: f.str("type")?,
                    scope: f.str("scope")?,
                    event: event.to_json(),
                    queued_at_ms: f.int("queuedAt")?,
                }))
            }
            _ => Err(f.error("v", "missing or unknown version")),
        }
    }
}

/// Splits `messages` into sends the queue accepts: at most `max_count`
/// messages and `max_bytes` bytes (their lengths plus `overhead` each) a
/// send. Keeps their order. A message larger than `max_bytes` on its own
/// goes alone (the queue then refuses it, and says why).
pub fn batches<T: AsRef<str>>(messages: &[T], max_count: usize, max_bytes: usize, overhead: usize) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, m) in messages.iter().enumerate() {
        let size = m.as_ref().len() + overhead;
        if i > start && (i - start == max_count || bytes + size > max_bytes) {
            out.push(&messages[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += size;
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

/// The Queues limits a send must respect: 100 messages and 256 KB a batch.
pub const QUEUE_BATCH_MESSAGES: usize = 100;
pub const QUEUE_BATCH_BYTES: usize = 256_000;
/// What each message costs beyond its body, counted generously.
pub const QUEUE_MESSAGE_OVERHEAD: usize = 100;
/// The longest a queue holds a message back (`delaySeconds`): 12 hours.
pub const QUEUE_MAX_DELAY_SECONDS: u32 = 43_200;

// ------------------------------------------------------ outbox → delivery log

/// `/add`: deliveries an outbox forwards to one destination's delivery log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Add {
    pub destination: String,
    pub deliveries: Vec<NewDelivery>,
}

/// One delivery as the outbox forwards it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewDelivery {
    /// `<event id>.<destination>`.
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub scope: String,
    /// When Drift's webhook was received (ms).
    pub received_at: i64,
    /// The outbound event's JSON (before the destination's token handling).
    pub body: String,
    /// Its Drift organisation (`orgId` as written), when it has one: whether
    /// it still fits its app is decided again when it is sent.
    pub org: Option<String>,
}

impl NewDelivery {
    /// Its JSON, as one item of an [`Add`]'s `deliveries`.
    pub fn encode(&self) -> String {
        Writer::with_capacity(96 + self.body.len() + self.body.len() / 8)
            .str("id", &self.id)
            .str("event", &self.event_id)
            .str("type", &self.event_type)
            .str("scope", &self.scope)
            .int("at", self.received_at)
            .str("body", &self.body)
            .opt_str("org", self.org.as_deref())
            .finish()
    }
}

impl Add {
    /// The body of `/add`, from items already encoded by [`NewDelivery::encode`].
    pub fn encode_items(destination: &str, items: &[&str]) -> String {
        let mut out = String::with_capacity(48 + destination.len() + items.iter().map(|i| i.len() + 1).sum::<usize>());
        out.push_str("{\"destination\":");
        json::write_str_escaped(&mut out, destination);
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
        Add::encode_items(&self.destination, &refs)
    }

    pub fn decode(text: &str) -> Result<Add, MessageError> {
        const KIND: &str = "/add";
        let value = parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        let deliveries = f.each("deliveries", |d| {
            Ok(NewDelivery {
                id: d.str("id")?,
                event_id: d.str("event")?,
                event_type: d.str("type")?,
                scope: d.str("scope")?,
                received_at: d.int("at")?,
                body: d.str("body")?,
                org: d.opt_str("org")?,
            })
        })?;
        Ok(Add { destination: f.str("destination")?, deliveries })
    }
}

/// `/add`'s answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Added {
    /// New deliveries taken in.
    pub added: u32,
    /// Deliveries it already had within the deduplication window.
    pub duplicates: u32,
    /// Deliveries it had from before the window, sent again (as `<id>.r<n>`).
    pub again: u32,
    /// New deliveries failed at once because the log is full.
    pub refused: u32,
}

impl Added {
    pub fn encode(&self) -> String {
        Writer::object()
            .int("added", i64::from(self.added))
            .int("duplicates", i64::from(self.duplicates))
            .int("again", i64::from(self.again))
            .int("refused", i64::from(self.refused))
            .finish()
    }

    pub fn decode(text: &str) -> Result<Added, MessageError> {
        const KIND: &str = "/add's answer";
        let value = parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        let n = |name: &str| -> Result<u32, MessageError> { Ok(f.opt_int(name)?.unwrap_or(0).clamp(0, i64::from(u32::MAX)) as u32) };
        Ok(Added { added: n("added")?, duplicates: n("duplicates")?, again: n("again")?, refused: n("refused")? })
    }
}

// ----------------------------------------------------- consumer → delivery log

/// One queue message's delivery, as the consumer names it to its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    pub id: String,
    pub generation: u32,
}

impl Item {
    fn encode(&self) -> String {
        Writer::object().str("id", &self.id).int("g", i64::from(self.generation)).finish()
    }

    fn decode(f: &Fields<'_, '_>) -> Result<Item, MessageError> {
        let g = f.int("g")?;
        Ok(Item { id: f.str("id")?, generation: u32::try_from(g).map_err(|_| f.error("g", "expected a generation number"))? })
    }
}

/// `/attempt`: the consumer is about to send these; for how long they are
/// its own (`lease_ms`: the batch's deadlines, one per delivery, and then
/// some).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attempt {
    pub lease_ms: i64,
    pub items: Vec<Item>,
}

impl Attempt {
    pub fn encode(&self) -> String {
        Writer::object().int("lease", self.lease_ms).raw("items", &array(&self.items, Item::encode)).finish()
    }

    pub fn decode(text: &str) -> Result<Attempt, MessageError> {
        const KIND: &str = "/attempt";
        let value = parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        let items = f.each("items", Item::decode)?;
        Ok(Attempt { lease_ms: f.int("lease")?, items })
    }
}

/// A delivery the consumer may send now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Go {
    pub id: String,
    pub generation: u32,
    /// Which attempt this is (1-based); a probe repeats the number of the
    /// attempt it stands in for.
    pub attempt: u32,
    /// A probe of a tripped app: not charged to the delivery's budget.
    pub probe: bool,
    pub event_id: String,
    /// The outbound event's JSON (before the destination's token handling).
    pub body: String,
    /// When it goes: the deliveries of one wave side by side, after every
    /// earlier wave's have answered (see the log's `waves`).
    pub wave: u32,
    /// And not before this long after the answer (an app with a rate).
    pub delay_ms: u32,
}

/// `/attempt`'s answer: which may go, in order; the rest are skipped (the
/// log has seen to them: settled, stale, held, another consumer has them).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttemptReply {
    pub go: Vec<Go>,
    pub skip: Vec<String>,
}

impl AttemptReply {
    pub fn encode(&self) -> String {
        let go = array(&self.go, |g| {
            Writer::with_capacity(96 + g.body.len())
                .str("id", &g.id)
                .int("g", i64::from(g.generation))
                .int("attempt", i64::from(g.attempt))
                .bool("probe", g.probe)
                .str("eventId", &g.event_id)
                .str("body", &g.body)
                .int("wave", i64::from(g.wave))
                .opt_int("delay", (g.delay_ms > 0).then_some(i64::from(g.delay_ms)))
                .finish()
        });
        Writer::with_capacity(go.len() + 32).raw("go", &go).raw("skip", &json::string_array(&self.skip)).finish()
    }

    pub fn decode(text: &str) -> Result<AttemptReply, MessageError> {
        const KIND: &str = "/attempt's answer";
        let value = parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        let go = f.each("go", |g| {
                let generation = g.int("g")?;
                let attempt = g.int("attempt")?;
                let wave = g.int("wave")?;
                Ok(Go {
                    id: g.str("id")?,
                    generation: u32::try_from(generation).map_err(|_| g.error("g", "expected a generation number"))?,
                    attempt: u32::try_from(attempt).map_err(|_| g.error("attempt", "expected an attempt number"))?,
                    probe: g.bool("probe")?,
                    event_id: g.str("eventId")?,
                    body: g.str("body")?,
                    wave: u32::try_from(wave).map_err(|_| g.error("wave", "expected a wave number"))?,
                    delay_ms: u32::try_from(g.opt_int("delay")?.unwrap_or(0)).map_err(|_| g.error("delay", "expected a delay in ms"))?,
                })
            })?;
        Ok(AttemptReply { go, skip: f.strings("skip")? })
    }
}

/// How one handed-out delivery went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub id: String,
    pub generation: u32,
    pub attempt: u32,
    pub tried: Tried,
    pub latency_ms: i64,
}

/// What happened when the consumer tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tried {
    /// The app answered with this status; `error` says what was wrong (none
    /// for a 2xx), from the answer's excerpt, redacted.
    Answered { code: u16, error: Option<String> },
    /// No answer: a network error or the deadline.
    Nothing { error: String },
    /// Handed out but not sent: an earlier delivery of the batch showed the
    /// app in trouble.
    Unattempted,
}

/// `/settle`: how the batch's attempts ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settle {
    pub outcomes: Vec<Outcome>,
}

impl Settle {
    pub fn encode(&self) -> String {
        let outcomes = array(&self.outcomes, |o| {
            let mut w = Writer::object();
            w.str("id", &o.id).int("g", i64::from(o.generation)).int("attempt", i64::from(o.attempt));
            match &o.tried {
                Tried::Answered { code, error } => {
                    w.str("tried", "answered").int("code", i64::from(*code)).opt_str("error", error.as_deref());
                }
                Tried::Nothing { error } => {
                    w.str("tried", "nothing").str("error", error);
                }
                Tried::Unattempted => {
                    w.str("tried", "unattempted");
                }
            }
            w.int("latencyMs", o.latency_ms).finish()
        });
        Writer::with_capacity(outcomes.len() + 16).raw("outcomes", &outcomes).finish()
    }

    pub fn decode(text: &str) -> Result<Settle, MessageError> {
        const KIND: &str = "/settle";
        let value = parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        let outcomes = f.each("outcomes", |o| {
                let tried = match o.str("tried")?.as_str() {
                    "answered" => {
                        let code = o.int("code")?;
                        Tried::Answered {
                            code: u16::try_from(code).map_err(|_| o.error("code", "expected an HTTP status"))?,
                            error: o.opt_str("error")?,
                        }
                    }
                    "nothing" => Tried::Nothing { error: o.str("error")? },
                    "unattempted" => Tried::Unattempted,
                    other => return Err(o.error("tried", format!("unknown {}; expected answered, nothing or unattempted", crate::escape::quoted(other)))),
                };
                let generation = o.int("g")?;
                let attempt = o.int("attempt")?;
                Ok(Outcome {
                    id: o.str("id")?,
                    generation: u32::try_from(generation).map_err(|_| o.error("g", "expected a generation number"))?,
                    attempt: u32::try_from(attempt).map_err(|_| o.error("attempt", "expected an attempt number"))?,
                    tried,
                    latency_ms: o.opt_int("latencyMs")?.unwrap_or(0),
                })
            })?;
        Ok(Settle { outcomes })
    }
}

/// `/settle`'s answer: what each delivery became (in the admin API's
/// words).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SettleReply {
    pub results: Vec<(String, String)>,
}

impl SettleReply {
    pub fn encode(&self) -> String {
        let results = array(&self.results, |(id, status)| Writer::object().str("id", id).str("status", status).finish());
        Writer::with_capacity(results.len() + 16).raw("results", &results).finish()
    }

    pub fn decode(text: &str) -> Result<SettleReply, MessageError> {
        const KIND: &str = "/settle's answer";
        let value = parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        let results = f.each("results", |r| Ok((r.str("id")?, r.str("status")?)))?;
        Ok(SettleReply { results })
    }
}

/// `/dead`: the queue gave up on these messages (their consumer kept
/// failing). Only the generation a message is about may be failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dead {
    pub items: Vec<Item>,
}

impl Dead {
    pub fn encode(&self) -> String {
        Writer::object().raw("items", &array(&self.items, Item::encode)).finish()
    }

    pub fn decode(text: &str) -> Result<Dead, MessageError> {
        const KIND: &str = "/dead";
        let value = parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        Ok(Dead { items: f.each("items", Item::decode)? })
    }
}

// ------------------------------------------------------------ continuations

/// How a call ended, as the caller passes it to the continuation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallResult {
    pub ticket: String,
    /// The HTTP status of the object's answer, or `None` when the call itself
    /// failed (the object was unreachable or threw).
    pub status: Option<u16>,
    /// The answer's body, or the error.
    pub body: String,
}


/// The results of an [`super::effects::Effects`]' calls, as the adapter
/// passes them to its continuation, in the calls' order.
pub struct CallResults;

impl CallResults {
    pub fn encode(results: &[CallResult]) -> String {
        array(results, |r| {
            Writer::with_capacity(48 + r.body.len())
                .str("ticket", &r.ticket)
                .int_or_null("status", r.status.map(i64::from))
                .str("body", &r.body)
                .finish()
        })
    }

    pub fn decode(text: &str) -> Result<Vec<CallResult>, MessageError> {
        const KIND: &str = "call results";
        let value = parse(KIND, text, &Limits::INTERNAL)?;
        let Value::Array(items) = &value else {
            return Err(MessageError { message: KIND, path: String::new(), what: "expected an array".into() });
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, v) in items.iter().enumerate() {
            let f = Fields::at(KIND, format!("[{i}]"), v)?;
            let status = match f.opt_int("status")? {
                None => None,
                Some(s) => Some(u16::try_from(s).map_err(|_| f.error("status", "expected an HTTP status"))?),
            };
            out.push(CallResult { ticket: f.str("ticket")?, status, body: f.opt_str("body")?.unwrap_or_default() });
        }
        Ok(out)
    }
}

// -------------------------------------------------------- operator → delivery log

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
        let value = parse(KIND, text, &Limits::INTERNAL)?;
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

/// `/get`, `/replay`: one delivery by id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ById {
    pub id: String,
}

impl ById {
    pub fn encode(&self) -> String {
        Writer::object().str("id", &self.id).finish()
    }

    pub fn decode(text: &str) -> Result<ById, MessageError> {
        const KIND: &str = "delivery by id";
        let value = parse(KIND, text, &Limits::INTERNAL)?;
        Ok(ById { id: Fields::parse(KIND, &value)?.str("id")? })
    }
}

/// `/pause`, `/resume`, `/health`: which destination the operator means
/// (a log learns its name from the first call that names it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    pub destination: String,
}

impl Named {
    pub fn encode(&self) -> String {
        Writer::object().str("destination", &self.destination).finish()
    }

    pub fn decode(text: &str) -> Result<Named, MessageError> {
        const KIND: &str = "destination operation";
        let value = parse(KIND, text, &Limits::INTERNAL)?;
        Ok(Named { destination: Fields::parse(KIND, &value)?.str("destination")? })
    }
}

/// `/recover`: queue every dead letter with one of `statuses` received
/// since `since` once more, page by page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recover {
    pub destination: String,
    pub since: i64,
    /// `failed`, `gone`.
    pub statuses: Vec<String>,
}

impl Recover {
    pub fn encode(&self) -> String {
        Writer::object()
            .str("destination", &self.destination)
            .int("since", self.since)
            .raw("status", &json::string_array(&self.statuses))
            .finish()
    }

    pub fn decode(text: &str) -> Result<Recover, MessageError> {
        const KIND: &str = "/recover";
        let value = parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        Ok(Recover { destination: f.str("destination")?, since: f.opt_int("since")?.unwrap_or(0), statuses: f.strings("status")? })
    }
}

// ---------------------------------------------------- delivery log → registry

/// `/register`, `/unregister`: a delivery log tells the registry it holds
/// rows (so that the admin API finds it after its destination is removed
/// from the configuration), or that it holds none any more. `epoch` orders
/// them: an older message never undoes a newer one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    pub destination: String,
    pub epoch: i64,
}

impl Registration {
    pub fn encode(&self) -> String {
        Writer::object().str("destination", &self.destination).int("epoch", self.epoch).finish()
    }

    pub fn decode(text: &str) -> Result<Registration, MessageError> {
        const KIND: &str = "registration";
        let value = parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        Ok(Registration { destination: f.str("destination")?, epoch: f.int("epoch")? })
    }
}

/// The registry's `/logs`: every delivery log that holds rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Logs {
    pub destinations: Vec<String>,
}

impl Logs {
    pub fn encode(&self) -> String {
        Writer::object().raw("logs", &json::string_array(&self.destinations)).finish()
    }

    pub fn decode(text: &str) -> Result<Logs, MessageError> {
        const KIND: &str = "/logs";
        let value = parse(KIND, text, &Limits::INTERNAL)?;
        Ok(Logs { destinations: Fields::parse(KIND, &value)?.strings("logs")? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_roundtrip_and_stay_small() {
        let r = Ref { destination: "push-app".into(), id: "c0b44147a772c080.push-app.r2".into(), generation: 3 };
        let text = r.encode();
        assert_eq!(text, r#"{"v":2,"d":"push-app","id":"c0b44147a772c080.push-app.r2","g":3}"#);
        assert_eq!(QueueMessage::decode(&text).unwrap(), QueueMessage::Ref(r));
        let longest =
            Ref { destination: "x".repeat(64), id: format!("0123456789abcdef.{}.r4294967295", "x".repeat(64)), generation: u32::MAX };
        assert!(longest.encode().len() < 200);
    }

    #[test]
    fn reads_version_1_messages_and_upgrades_them_to_an_add() {
        let v1 = r#"{"v":1,"destination":"a","id":"c0b44147a772c080","type":"conversation_push","scope":"conversation:1:2","queuedAt":5,"event":{"orgId":1,"n":12345678901234567890}}"#;
        let QueueMessage::V1(m) = QueueMessage::decode(v1).unwrap() else { panic!("not v1") };
        assert_eq!(m.event, r#"{"orgId":1,"n":12345678901234567890}"#);
        let add = m.to_add();
        assert_eq!(add.deliveries[0].id, "c0b44147a772c080.a");
        assert_eq!(Add::decode(&add.encode()).unwrap(), add);
    }

    #[test]
    fn bad_messages_name_the_field() {
        for (text, path) in [
            ("{}", "v"),
            (r#"{"v":3}"#, "v"),
            (r#"{"v":2,"d":"a","id":"b"}"#, "g"),
            (r#"{"v":2,"d":"a","id":"b","g":-1}"#, "g"),
            (r#"{"v":2,"d":"a","g":1}"#, "id"),
            (r#"{"v":1,"destination":"a","id":"b","type":"t","scope":"s","queuedAt":1}"#, "event"),
        ] {
            assert_eq!(QueueMessage::decode(text).unwrap_err().path, path, "{text}");
        }
        assert!(QueueMessage::decode("not json").unwrap_err().to_string().starts_with("queue message"));
        let e = Add::decode(r#"{"destination":"a","deliveries":[{"id":"x","event":"e","type":"t","scope":"s","at":"1","body":"{}"}]}"#)
            .unwrap_err();
        assert_eq!((e.path.as_str(), e.to_string().contains("expected an integer")), ("deliveries[0].at", true));
        let e = Settle::decode(r#"{"outcomes":[{"id":"x","g":1,"attempt":1,"tried":"maybe"}]}"#).unwrap_err();
        assert_eq!(e.path, "outcomes[0].tried");
    }

    #[test]
    fn every_message_reads_back_what_it_wrote() {
        let body = r#"{"orgId":1,"n":12345678901234567890,"s":"a\"b\n"}"#.to_owned();
        let add = Add {
            destination: "app".into(),
            deliveries: vec![NewDelivery {
                id: "0123456789abcdef.app".into(),
                event_id: "0123456789abcdef".into(),
                event_type: "conversation_push".into(),
                scope: "conversation:1:2".into(),
                received_at: 1_700_000_000_000,
                body: body.clone(),
                org: Some("1".into()),
            }],
        };
        assert_eq!(Add::decode(&add.encode()).unwrap(), add);
        let added = Added { added: 3, duplicates: 1, again: 2, refused: 0 };
        assert_eq!(Added::decode(&added.encode()).unwrap(), added);
        let attempt = Attempt { lease_ms: 4000, items: vec![Item { id: "a".into(), generation: 2 }] };
        assert_eq!(Attempt::decode(&attempt.encode()).unwrap(), attempt);
        let reply = AttemptReply {
            go: vec![Go { id: "a".into(), generation: 2, attempt: 3, probe: true, event_id: "e".into(), body, wave: 0, delay_ms: 250 }],
            skip: vec!["b".into()],
        };
        assert_eq!(AttemptReply::decode(&reply.encode()).unwrap(), reply);
        let settle = Settle {
            outcomes: vec![
                Outcome { id: "a".into(), generation: 2, attempt: 3, tried: Tried::Answered { code: 200, error: None }, latency_ms: 5 },
                Outcome {
                    id: "b".into(),
                    generation: 1,
                    attempt: 1,
                    tried: Tried::Answered { code: 500, error: Some("the app answered 500".into()) },
                    latency_ms: 9,
                },
                Outcome { id: "c".into(), generation: 1, attempt: 1, tried: Tried::Nothing { error: "timeout".into() }, latency_ms: 400 },
                Outcome { id: "d".into(), generation: 1, attempt: 1, tried: Tried::Unattempted, latency_ms: 0 },
            ],
        };
        assert_eq!(Settle::decode(&settle.encode()).unwrap(), settle);
        let results = SettleReply { results: vec![("a".into(), "delivered".into())] };
        assert_eq!(SettleReply::decode(&results.encode()).unwrap(), results);
        let dead = Dead { items: vec![Item { id: "a".into(), generation: 7 }] };
        assert_eq!(Dead::decode(&dead.encode()).unwrap(), dead);
        let calls = vec![
            CallResult { ticket: "t1".into(), status: Some(200), body: "{}".into() },
            CallResult { ticket: "t2".into(), status: None, body: "unreachable".into() },
        ];
        assert_eq!(CallResults::decode(&CallResults::encode(&calls)).unwrap(), calls);
        let list = ListQuery {
            statuses: vec!["failed".into()],
            conversation: Some("7".into()),
            event: None,
            since: Some(5),
            until: None,
            limit: 20,
            before: Some(99),
        };
        assert_eq!(ListQuery::decode(&list.encode()).unwrap(), list);
        let recover = Recover { destination: "app".into(), since: 9, statuses: vec!["gone".into()] };
        assert_eq!(Recover::decode(&recover.encode()).unwrap(), recover);
        let reg = Registration { destination: "app".into(), epoch: 4 };
        assert_eq!(Registration::decode(&reg.encode()).unwrap(), reg);
        let logs = Logs { destinations: vec!["a".into(), "b".into()] };
        assert_eq!(Logs::decode(&logs.encode()).unwrap(), logs);
    }

    #[test]
    fn batches_respect_count_and_bytes_and_order() {
        let small: Vec<String> = (0..250).map(|i| format!("m{i}")).collect();
        let sizes: Vec<usize> = batches(&small, 100, 256_000, 100).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
        let big: Vec<String> = (0..5).map(|_| "x".repeat(100_000)).collect();
        let sizes: Vec<usize> = batches(&big, 100, 256_000, 100).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        let huge = vec!["x".repeat(300_000), "y".into()];
        let sizes: Vec<usize> = batches(&huge, 100, 256_000, 100).iter().map(|b| b.len()).collect();
        assert_eq!(sizes, [1, 1], "an oversized message goes alone");
        let flat: Vec<String> = batches(&small, 7, 50, 0).concat();
        assert_eq!(flat, small, "order kept, nothing lost");
        assert!(batches::<String>(&[], 100, 1, 0).is_empty());
    }
}
