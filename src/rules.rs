//! The translation rules: one inbound Drift event in, the outbound events out.
//!
//! | inbound `type`                | outbound, in order                                         |
//! |-------------------------------|------------------------------------------------------------|
//! | `conversation_inactive`       | itself, a `conversation_push`, a legacy close (per policy) |
//! | `conversation_manual_push`    | itself, a `conversation_push`, a legacy close (per policy) |
//! | `conversation_push`           | itself, a legacy close (per policy)                        |
//! | `conversation_status_updated` | itself; if `closed`, a `conversation_manual_push` and a `conversation_push` |
//! | anything else                 | itself                                                     |
//!
//! The inbound event is always first and always unchanged, so its id is the
//! id of the webhook as received.

use std::borrow::Cow;
use std::sync::Arc;

use crate::error::Error;
use crate::event::{Conversation, Event, EventType};
use crate::id::{self, EventId};
use crate::json::{self, Limits, Value};
use crate::legacy::{integer_ms, LegacyPolicy};

/// How to translate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Which inactive, manual-push and push events also yield a legacy close.
    pub legacy: LegacyPolicy,
    /// When the event was received, in ms since the epoch. Stands in for
    /// `data.lastUpdated` (or `changedAt`) when the event has none: it decides
    /// the timeline policy and becomes the time of derived events. The core
    /// never reads a clock; callers pass it in.
    pub received_at_ms: i64,
    /// Size and nesting limits for one event.
    pub limits: Limits,
}

impl Options {
    /// The default policy (`always`) and limits, for an event received at
    /// `received_at_ms`.
    pub fn new(received_at_ms: i64) -> Self {
        Options { legacy: LegacyPolicy::default(), received_at_ms, limits: Limits::default() }
    }

    pub fn legacy(mut self, legacy: LegacyPolicy) -> Self {
        self.legacy = legacy;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }
}

/// One outbound event, ready to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbound {
    /// Its deterministic id.
    pub id: EventId,
    /// Its Drift `type`, decoded.
    pub event_type: Cow<'static, str>,
    /// The event as compact JSON.
    pub json: String,
    /// Where deduplication happens: `conversation:<orgId>:<conversationId>`
    /// for the conversation types, `event:<id>` for the others. Shared by
    /// all the events of one inbound event.
    pub scope: Arc<str>,
}

impl Outbound {
    /// Appends `{"id":"…","event":…}`, the line the CLI prints and the object
    /// `/convert` returns.
    pub fn write_record(&self, out: &mut String) {
        out.push_str("{\"id\":\"");
        self.id.write_hex(out);
        out.push_str("\",\"event\":");
        out.push_str(&self.json);
        out.push('}');
    }

    pub fn record(&self) -> String {
        let mut out = String::with_capacity(self.json.len() + 40);
        self.write_record(&mut out);
        out
    }
}

/// Parses and translates one event given as JSON text.
///
/// ```
/// use drift_bridge::{translate, Options};
///
/// let inbound = r#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}"#;
/// let events = translate(inbound, &Options::new(0)).unwrap();
/// let types: Vec<&str> = events.iter().map(|e| e.event_type.as_ref()).collect();
/// assert_eq!(types, ["conversation_inactive", "conversation_push", "conversation_status_updated"]);
/// assert_eq!(
///     events[2].json,
///     r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}"#
/// );
/// ```
pub fn translate(input: &str, options: &Options) -> Result<Vec<Outbound>, Error> {
    let value = json::parse(input, &options.limits)?;
    translate_value(&value, options)
}

/// Translates one parsed event.
pub fn translate_value(value: &Value<'_>, options: &Options) -> Result<Vec<Outbound>, Error> {
    let event = Event::read(value)?;
    let mut out = Vec::with_capacity(3);
    let inbound_json = value.to_json();
    let Some(conv) = &event.conversation else {
        let id = id::content(&inbound_json);
        let scope: Arc<str> = format!("event:{id}").into();
        out.push(Outbound { id, event_type: Cow::Owned(event.type_name.into_owned()), json: inbound_json, scope });
        return Ok(out);
    };
    let scope: Arc<str> = format!("conversation:{}:{}", event.org_id, conv.conversation_id).into();
    // The time the derived events carry: the event's own, or when it was
    // received. Their ids never depend on the clock: an event without a time
    // is keyed by its content instead, so a repeat has the same ids.
    let received;
    let content;
    let (time, key) = match conv.time {
        Some(t) => (t, t),
        None => {
            received = options.received_at_ms.to_string();
            content = id::content_key(&event.value.get("data").map(json::Value::to_json).unwrap_or_default());
            (received.as_str(), content.as_str())
        }
    };
    let time_ms = conv.time.map_or(options.received_at_ms, integer_ms);
    out.push(Outbound {
        id: conversation_id(&event, conv, conv.kind, key, conv.status.as_deref()),
        event_type: Cow::Borrowed(conv.kind.name()),
        json: inbound_json,
        scope: Arc::clone(&scope),
    });

    match conv.kind {
        EventType::ConversationInactive | EventType::ConversationManualPush => {
            out.push(push_copy(&event, conv, key, &scope));
            if options.legacy.allows(time_ms) {
                out.push(legacy_close(&event, conv, time, key, &scope));
            }
        }
        EventType::ConversationPush => {
            if options.legacy.allows(time_ms) {
                out.push(legacy_close(&event, conv, time, key, &scope));
            }
        }
        EventType::ConversationStatusUpdated if conv.closed => {
            out.push(push_from_close(&event, conv, EventType::ConversationManualPush, time, key, &scope));
            out.push(push_from_close(&event, conv, EventType::ConversationPush, time, key, &scope));
        }
        EventType::ConversationStatusUpdated => {}
    }
    Ok(out)
}

fn conversation_id(event: &Event<'_, '_>, conv: &Conversation<'_>, kind: EventType, time: &str, status: Option<&str>) -> EventId {
    id::conversation(event.org_id, kind.name(), conv.conversation_id, time, status)
}

/// The inbound event with only its `type` changed to `conversation_push`.
/// `key` is what the ids are keyed by: the event's time, or its content.
fn push_copy(event: &Event<'_, '_>, conv: &Conversation<'_>, key: &str, scope: &Arc<str>) -> Outbound {
    let kind = EventType::ConversationPush;
    let mut json = String::with_capacity(256);
    json.push('{');
    for (i, (key, value)) in event.value.as_object().unwrap_or_default().iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push('"');
        json.push_str(key.raw());
        json.push_str("\":");
        if key.eq_text("type") {
            json.push('"');
            json.push_str(kind.name());
            json.push('"');
        } else {
            value.write(&mut json);
        }
    }
    json.push('}');
    Outbound { id: conversation_id(event, conv, kind, key, None), event_type: Cow::Borrowed(kind.name()), json, scope: Arc::clone(scope) }
}

/// Drift's published legacy close: `orgId`, `type`, `data` with
/// `conversationId`, `status` and `changedAt`, then `token` if the inbound had
/// one, and nothing else.
fn legacy_close(event: &Event<'_, '_>, conv: &Conversation<'_>, time: &str, key: &str, scope: &Arc<str>) -> Outbound {
    let kind = EventType::ConversationStatusUpdated;
    let mut json = envelope_start(event, kind);
    json.push_str("{\"conversationId\":");
    json.push_str(conv.conversation_id);
    json.push_str(",\"status\":\"closed\",\"changedAt\":");
    json.push_str(time);
    envelope_end(event, &mut json);
    Outbound { id: conversation_id(event, conv, kind, key, Some("closed")), event_type: Cow::Borrowed(kind.name()), json, scope: Arc::clone(scope) }
}

/// A `conversation_manual_push` or `conversation_push` for a real close.
fn push_from_close(event: &Event<'_, '_>, conv: &Conversation<'_>, kind: EventType, time: &str, key: &str, scope: &Arc<str>) -> Outbound {
    let mut json = envelope_start(event, kind);
    json.push_str("{\"conversationId\":");
    json.push_str(conv.conversation_id);
    json.push_str(",\"lastUpdated\":");
    json.push_str(time);
    envelope_end(event, &mut json);
    Outbound { id: conversation_id(event, conv, kind, key, None), event_type: Cow::Borrowed(kind.name()), json, scope: Arc::clone(scope) }
}

fn envelope_start(event: &Event<'_, '_>, kind: EventType) -> String {
    let mut json = String::with_capacity(160);
    json.push_str("{\"orgId\":");
    json.push_str(event.org_id);
    json.push_str(",\"type\":\"");
    json.push_str(kind.name());
    json.push_str("\",\"data\":");
    json
}

fn envelope_end(event: &Event<'_, '_>, json: &mut String) {
    json.push('}');
    if let Some(token) = event.token {
        json.push_str(",\"token\":\"");
        json.push_str(token.raw());
        json.push('"');
    }
    json.push('}');
}
