//! What travels on the delivery queue: one message per (destination,
//! outbound event), as JSON text, so the message says exactly what the app
//! will receive however long it waits.

use crate::delivery::Destinations;
use crate::error::{Error, ErrorCode};
use crate::json::{self, Limits, Value};
use crate::rules::Outbound;

/// One delivery of one event to one destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub destination: String,
    /// The event id (hex), sent as `webhook-id`.
    pub event_id: String,
    pub event_type: String,
    /// Where its deduplication record lives: `conversation:<orgId>:<conversationId>`
    /// for conversation events, `event:<id>` for the others.
    pub scope: String,
    /// The outbound event's JSON (before the destination's token handling).
    pub event: String,
    /// When it was first handed off, in ms since the epoch.
    pub queued_at_ms: i64,
}

impl Message {
    /// `<event id>.<destination>`: names the delivery in the admin API.
    pub fn delivery_id(&self) -> String {
        format!("{}.{}", self.event_id, self.destination)
    }

    /// The message as JSON text.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.event.len() + 200);
        out.push_str("{\"v\":1,\"destination\":");
        json::write_str_escaped(&mut out, &self.destination);
        out.push_str(",\"id\":");
        json::write_str_escaped(&mut out, &self.event_id);
        out.push_str(",\"type\":");
        json::write_str_escaped(&mut out, &self.event_type);
        out.push_str(",\"scope\":");
        json::write_str_escaped(&mut out, &self.scope);
        out.push_str(&format!(",\"queuedAt\":{},\"event\":", self.queued_at_ms));
        out.push_str(&self.event);
        out.push('}');
        out
    }

    /// Reads a message written by [`Message::encode`].
    pub fn decode(text: &str) -> Result<Message, Error> {
        Message::from_value(&json::parse(text, &Limits { max_bytes: usize::MAX, ..Limits::default() })?)
    }

    /// Reads a message already parsed (for example an item of a JSON array).
    pub fn from_value(value: &Value<'_>) -> Result<Message, Error> {
        let string = |field: &str| -> Result<String, Error> {
            match value.get(field) {
                Some(Value::String(s)) => Ok(s.text().into_owned()),
                _ => Err(Error::new(ErrorCode::InvalidEvent, field, "missing or not a string in a delivery message")),
            }
        };
        let event = value
            .get("event")
            .filter(|v| v.as_object().is_some())
            .ok_or_else(|| Error::new(ErrorCode::InvalidEvent, "event", "missing or not an object in a delivery message"))?;
        let queued_at_ms = value
            .get("queuedAt")
            .and_then(Value::as_integer)
            .map(crate::legacy::integer_ms)
            .ok_or_else(|| Error::new(ErrorCode::InvalidEvent, "queuedAt", "missing or not an integer in a delivery message"))?;
        Ok(Message {
            destination: string("destination")?,
            event_id: string("id")?,
            event_type: string("type")?,
            scope: string("scope")?,
            event: event.to_json(),
            queued_at_ms,
        })
    }
}

/// One message per destination subscribed to each event, in event order then
/// destination order.
pub fn fan_out(events: &[Outbound], destinations: &Destinations, now_ms: i64) -> Vec<Message> {
    let mut out = Vec::new();
    for event in events {
        for destination in destinations.list.iter().filter(|d| d.wants(&event.event_type)) {
            out.push(Message {
                destination: destination.name.clone(),
                event_id: event.id.to_hex(),
                event_type: event.event_type.to_string(),
                scope: event.scope.to_string(),
                event: event.json.clone(),
                queued_at_ms: now_ms,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{translate, Options};

    #[test]
    fn fan_out_follows_subscriptions_and_roundtrips() {
        let destinations = Destinations::parse(
            Some(r#"[{"name":"legacy","url":"https://l","types":["conversation_status_updated"]},
                     {"name":"push","url":"https://p","types":["conversation_push","conversation_inactive"]},
                     {"name":"all","url":"https://a","types":["*"]}]"#),
            |_| None,
        )
        .unwrap();
        let events = translate(
            r#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}"#,
            &Options::new(0),
        )
        .unwrap();
        let messages = fan_out(&events, &destinations, 5);
        let pairs: Vec<(String, String)> = messages.iter().map(|m| (m.event_type.clone(), m.destination.clone())).collect();
        let expected = [
            ("conversation_inactive", "push"),
            ("conversation_inactive", "all"),
            ("conversation_push", "push"),
            ("conversation_push", "all"),
            ("conversation_status_updated", "legacy"),
            ("conversation_status_updated", "all"),
        ];
        assert_eq!(pairs, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));
        assert!(messages.iter().all(|m| m.scope == "conversation:1:123456789"));
        assert_eq!(messages[2].delivery_id(), "c0b44147a772c080.push");
        for m in &messages {
            assert_eq!(&Message::decode(&m.encode()).unwrap(), m);
        }
        assert!(Message::decode("{}").is_err());
    }
}
