//! The inbound Drift event: an envelope (`orgId`, `type`, `data`, usually
//! `token`, sometimes more) read without losing a byte of it.
//!
//! [`Event::read`] checks what the rules depend on and nothing else; every
//! other field, known or not, rides along untouched in [`Event::value`].

use crate::error::{Error, ErrorCode};
use crate::json::{Str, Value};
use crate::path;

/// Drift's webhook event types that the rules treat specially.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventType {
    /// No activity in the conversation for the inactivity period.
    ConversationInactive,
    /// A user closed the conversation or ran `/sync`.
    ConversationManualPush,
    /// Fired whenever either of the two above fires.
    ConversationPush,
    /// The retired status webhook; only `"closed"` matters here.
    ConversationStatusUpdated,
}

impl EventType {
    pub const ALL: [EventType; 4] = [
        EventType::ConversationInactive,
        EventType::ConversationManualPush,
        EventType::ConversationPush,
        EventType::ConversationStatusUpdated,
    ];

    /// Drift's name for the type.
    pub const fn name(self) -> &'static str {
        match self {
            EventType::ConversationInactive => "conversation_inactive",
            EventType::ConversationManualPush => "conversation_manual_push",
            EventType::ConversationPush => "conversation_push",
            EventType::ConversationStatusUpdated => "conversation_status_updated",
        }
    }

    pub fn from_name(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The data field that carries the event's time.
    pub const fn time_field(self) -> &'static str {
        match self {
            EventType::ConversationStatusUpdated => "changedAt",
            _ => "lastUpdated",
        }
    }
}

/// A validated inbound event, borrowing the parsed document.
#[derive(Debug)]
pub struct Event<'v, 'a> {
    /// The whole event as received.
    pub value: &'v Value<'a>,
    /// `orgId`, as written (a non-negative integer).
    pub org_id: &'v str,
    /// `type`, decoded.
    pub type_name: std::borrow::Cow<'v, str>,
    /// `token`, when present (always a string).
    pub token: Option<&'v Str<'a>>,
    /// What the rules need from `data`, for the conversation types.
    pub conversation: Option<Conversation<'v>>,
}

/// The fields of `data` that the rules read, for the four conversation types.
#[derive(Debug, Clone)]
pub struct Conversation<'v> {
    pub kind: EventType,
    /// `data.conversationId`, as written.
    pub conversation_id: &'v str,
    /// `data.lastUpdated` (or `data.changedAt` for status events), as written.
    pub time: Option<&'v str>,
    /// `data.status` is `"closed"` (status events only).
    pub closed: bool,
    /// `data.status`, decoded, for status events.
    pub status: Option<std::borrow::Cow<'v, str>>,
}

impl<'v, 'a> Event<'v, 'a> {
    /// Checks the envelope and, for the conversation types, the fields of
    /// `data` the rules use. Paths in errors are relative to the event.
    pub fn read(value: &'v Value<'a>) -> Result<Self, Error> {
        if value.as_object().is_none() {
            return Err(invalid("", format!("expected a JSON object (one Drift event), found {}", value.describe())));
        }
        let org_id = match value.get("orgId") {
            None => return Err(invalid("orgId", "missing; every Drift event has an integer orgId")),
            Some(v) => match v.as_integer() {
                Some(n) if !n.starts_with('-') => n,
                Some(n) => return Err(invalid("orgId", format!("expected a non-negative integer, found {n}"))),
                None => return Err(invalid("orgId", format!("expected a non-negative integer, found {}", v.describe()))),
            },
        };
        let type_name = match value.get("type") {
            None => return Err(invalid("type", "missing; every Drift event has a type such as \"conversation_inactive\"")),
            Some(Value::String(s)) => s.text(),
            Some(v) => return Err(invalid("type", format!("expected a string, found {}", v.describe()))),
        };
        let token = match value.get("token") {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(v) => return Err(invalid("token", format!("expected a string, found {}", v.describe()))),
        };
        let conversation = match EventType::from_name(&type_name) {
            None => None,
            Some(kind) => Some(read_conversation(value, kind)?),
        };
        Ok(Event { value, org_id, type_name, token, conversation })
    }
}

fn read_conversation<'v>(event: &'v Value<'_>, kind: EventType) -> Result<Conversation<'v>, Error> {
    let data = match event.get("data") {
        None => return Err(invalid("data", format!("missing; a {} event has a data object", kind.name()))),
        Some(d) if d.as_object().is_some() => d,
        Some(d) => return Err(invalid("data", format!("expected an object, found {}", d.describe()))),
    };
    let conversation_id = match data.get("conversationId") {
        None => return Err(invalid("data.conversationId", "missing; expected the conversation's integer id")),
        Some(v) => v
            .as_integer()
            .ok_or_else(|| invalid("data.conversationId", format!("expected an integer, found {}", v.describe())))?,
    };
    // Both time fields are checked whatever the type, so a bad value never
    // travels on silently.
    let mut times = [None, None];
    for (slot, field) in times.iter_mut().zip(["lastUpdated", "changedAt"]) {
        if let Some(v) = data.get(field) {
            *slot = Some(v.as_integer().ok_or_else(|| {
                invalid(&path::key("data", field), format!("expected an integer (milliseconds since the epoch), found {}", v.describe()))
            })?);
        }
    }
    let time = if kind == EventType::ConversationStatusUpdated { times[1] } else { times[0] };
    let (closed, status) = if kind == EventType::ConversationStatusUpdated {
        match data.get("status") {
            None => return Err(invalid("data.status", "missing; a conversation_status_updated event has a status string")),
            Some(Value::String(s)) => (s.eq_text("closed"), Some(s.text())),
            Some(v) => return Err(invalid("data.status", format!("expected a string, found {}", v.describe()))),
        }
    } else {
        (false, None)
    };
    Ok(Conversation { kind, conversation_id, time, closed, status })
}

fn invalid(path: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidEvent, path, message)
}
