//! A test delivery (`POST /admin/destinations/{name}/test`): one event sent
//! to the app at once, signed and handled as its real deliveries are,
//! whatever its breaker says, never retried, and kept in the log marked as
//! a test. It neither counts against the app in the breaker nor in the
//! metrics.
//!
//! Two steps: [`test`] builds the request and asks the caller to POST it
//! (an [`Effects::posts`]); [`tested`] records what the app answered and
//! replies.

use super::super::consumer::{self, Seen};
use super::super::effects::{Effects, Post, Reply};
use super::super::handoff;
use super::super::message::{self, Fields, Go, MessageError, Tried};
use super::super::sql::{Arg, Sql, StorageError};
use super::super::status::Status;
use super::schema::ROW_OVERHEAD;
use super::{bad_request, Context};
use crate::json::{Limits, Writer};

/// Why a test delivery is in the log.
pub const REASON: &str = "a test delivery from the admin API (not retried)";

/// What the admin API asks the log to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestDelivery {
    pub destination: String,
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
            .str("destination", &self.destination)
            .str("eventId", &self.event_id)
            .str("type", &self.event_type)
            .str("body", &self.body)
            .bool("subscribed", self.subscribed)
            .finish()
    }

    pub fn decode(text: &str) -> Result<TestDelivery, MessageError> {
        const KIND: &str = "/test";
        let value = message::parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        Ok(TestDelivery {
            destination: f.str("destination")?,
            event_id: f.str("eventId")?,
            event_type: f.str("type")?,
            body: f.str("body")?,
            subscribed: f.bool("subscribed")?,
        })
    }

    fn delivery_id(&self) -> String {
        handoff::delivery_id(&self.event_id, &self.destination)
    }
}

/// `/test`: the request to send (its result goes to [`tested`]).
pub fn test(_sql: &impl Sql, ctx: &Context<'_>, body: &str) -> Result<Effects, StorageError> {
    let t = match TestDelivery::decode(body) {
        Ok(t) => t,
        Err(e) => return Ok(bad_request(e)),
    };
    let Some(d) = ctx.settings.destination(&t.destination) else {
        return Ok(Effects::reply(Reply::status(404, format!("no destination {} is configured", crate::escape::quoted(&t.destination)))));
    };
    let go = Go {
        id: t.delivery_id(),
        generation: 1,
        attempt: 1,
        probe: false,
        event_id: t.event_id.clone(),
        body: t.body.clone(),
        wave: 0,
        delay_ms: 0,
    };
    let r = consumer::request(Some(d), &t.destination, go, ctx.now, ctx.settings.delivery_timeout_ms);
    if let Some(why) = r.impossible {
        return Ok(Effects::reply(Reply::status(409, why)));
    }
    let mut fx = Effects::default();
    fx.posts.push(Post { url: r.url, headers: r.headers, body: r.body, timeout_ms: r.timeout_ms, ticket: t.encode() });
    fx.then = Some("tested");
    Ok(fx)
}

/// The continuation of [`test`]: `results` is what was seen of the request
/// (the consumer's [`Seen`], its ticket as `id`). Keeps the test in the log
/// and answers `{"destination","delivery","webhookId","type","subscribed",
/// "delivered","status","latencyMs","error"?,"excerpt"?}`.
pub fn tested(sql: &impl Sql, ctx: &Context<'_>, results: &str) -> Result<Effects, StorageError> {
    let seen = match Seen::decode_all(results) {
        Ok(seen) => seen,
        Err(e) => return Ok(bad_request(e)),
    };
    let Some(s) = seen.into_iter().next() else { return Ok(bad_request("no result")) };
    let t = match TestDelivery::decode(&s.id) {
        Ok(t) => t,
        Err(e) => return Ok(bad_request(e)),
    };
    let id = t.delivery_id();
    // What the app said, in the words of a real attempt (an echoed token redacted).
    let request = consumer::Request {
        id: s.id.clone(),
        generation: 1,
        attempt: 1,
        url: String::new(),
        headers: Vec::new(),
        body: t.body.clone(),
        timeout_ms: ctx.settings.delivery_timeout_ms,
        wave: 0,
        delay_ms: 0,
        impossible: None,
    };
    let outcome = consumer::settle(ctx.settings, &t.destination, std::slice::from_ref(&request), std::slice::from_ref(&s))
        .outcomes
        .remove(0);
    let (code, error) = match &outcome.tried {
        Tried::Answered { code, error } => (Some(*code), error.clone()),
        Tried::Nothing { error } => (None, Some(error.clone())),
        Tried::Unattempted => (None, Some("not sent".to_owned())),
    };
    let delivered = code.is_some_and(|c| (200..300).contains(&c));
    let status = if delivered { Status::Delivered } else { Status::Failed };
    let mut st = super::open_state(sql, ctx)?;
    if st.name.is_none() {
        st.touch().name = Some(t.destination.clone());
    }
    let history = Writer::object()
        .int("n", 1)
        .int("at", ctx.now)
        .int_or_null("code", code.map(i64::from))
        .str_or_null("error", error.as_deref())
        .int("ms", s.latency_ms)
        .bool("probe", false)
        .finish();
    let retention = if delivered { ctx.settings.delivery_log_ms() } else { ctx.settings.dead_letter_retention_ms() };
    let expires = ctx.expiry(retention);
    let accepted = st.accept_time(ctx.now);
    let size = t.body.len() as i64 + ROW_OVERHEAD;
    let written = sql.execute(
        "INSERT INTO deliveries (id, event_id, type, scope, conversation, body, status, generation, attempts, created_at, \
         updated_at, accepted_at, wake_at, expires_at, size, reason, history, last_error) \
         VALUES (?, ?, ?, 'test', NULL, ?, ?, 1, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        &[
            Arg::Text(&id),
            Arg::Text(&t.event_id),
            Arg::Text(&t.event_type),
            Arg::Text(&t.body),
            Arg::Text(status.sql()),
            Arg::Int(ctx.now),
            Arg::Int(ctx.now),
            Arg::Int(accepted),
            Arg::Int(expires),
            Arg::Int(expires),
            Arg::Int(size),
            Arg::Text(REASON),
            Arg::Text(&history),
            Arg::from(error.as_deref()),
        ],
    )?;
    let mut fx = Effects::default();
    if written > 0 {
        st.add(status, 1);
        st.bytes += size;
        fx.alarm = st.alarm_by(expires, ctx.now);
        super::intake::register(&mut st, &mut fx, false);
    }
    st.save(sql)?;
    let mut w = Writer::object();
    w.str("destination", &t.destination)
        .str("delivery", &id)
        .str("webhookId", &t.event_id)
        .str("type", &t.event_type)
        .bool("subscribed", t.subscribed)
        .bool("delivered", delivered)
        .int_or_null("status", code.map(i64::from))
        .int("latencyMs", s.latency_ms)
        .opt_str("error", error.as_deref());
    if !delivered && !s.excerpt.is_empty() {
        let excerpt: String = s.excerpt.chars().take(200).collect();
        let d = ctx.settings.destination(&t.destination);
        w.str("excerpt", &consumer::redact_echo(excerpt, &t.body, d));
    }
    fx.log(
        Writer::object()
            .str("kind", "test-delivery")
            .str("delivery", &id)
            .str("destination", &t.destination)
            .bool("delivered", delivered)
            .int_or_null("code", code.map(i64::from))
            .int("latencyMs", s.latency_ms)
            .finish(),
    );
    fx.reply = Some(Reply::ok(w.finish()));
    Ok(fx)
}
