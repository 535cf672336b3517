//! What travels on the delivery queue: a small reference to one delivery,
//! `{"v":2,"d":"<destination>","id":"<delivery id>","g":<generation>}`,
//! never the event itself. The destination's Durable Object keeps the body,
//! so a message stays under 200 bytes whatever the event's size (queues take
//! at most 128 KB a message and 256 KB a batch) and carries no secret.
//!
//! The generation tells copies apart: each time the bridge queues a delivery
//! anew (first hand-off, recovery of a lost message, drain after a hold) it
//! counts up, and a copy of an older generation that resurfaces is skipped.
//!
//! Messages of version 1 (the whole event inside, from drift-bridge 0.1) are
//! still read, so that an upgrade loses nothing that was in flight.

use crate::error::{Error, ErrorCode};
use crate::json::{self, Limits, Value};

/// A reference to one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ref {
    pub destination: String,
    /// `<event id>.<destination>` or, for a replay, `<event id>.<destination>.r<n>`.
    pub id: String,
    pub generation: u32,
}

impl Ref {
    /// The message as JSON text.
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

/// A message read off the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueMessage {
    Ref(Ref),
    V1(V1),
}

impl QueueMessage {
    /// Reads a message; the error says which field is wrong.
    pub fn decode(text: &str) -> Result<QueueMessage, Error> {
        // v1 messages nest the event, so allow its depth and then some.
        let value = json::parse(text, &Limits { max_bytes: usize::MAX, max_depth: json::DEFAULT_MAX_DEPTH + 2 })?;
        let string = |field: &str| -> Result<String, Error> {
            match value.get(field) {
                Some(Value::String(s)) => Ok(s.text().into_owned()),
                _ => Err(Error::new(ErrorCode::InvalidEvent, field, "missing or not a string in a queue message")),
            }
        };
        match value.get("v").and_then(Value::as_integer) {
            Some("2") => {
                let generation = value
                    .get("g")
                    .and_then(Value::as_integer)
                    .and_then(|g| g.parse::<u32>().ok())
                    .ok_or_else(|| Error::new(ErrorCode::InvalidEvent, "g", "missing or not a generation number in a queue message"))?;
                Ok(QueueMessage::Ref(Ref { destination: string("d")?, id: string("id")?, generation }))
            }
            Some("1") => {
                let event = value
                    .get("event")
                    .filter(|v| v.as_object().is_some())
                    .ok_or_else(|| Error::new(ErrorCode::InvalidEvent, "event", "missing or not an object in a queue message"))?;
                let queued_at_ms = value
                    .get("queuedAt")
                    .and_then(Value::as_integer)
                    .map(crate::legacy::integer_ms)
                    .ok_or_else(|| Error::new(ErrorCode::InvalidEvent, "queuedAt", "missing or not an integer in a queue message"))?;
                Ok(QueueMessage::V1(V1 {
                    destination: string("destination")?,
                    event_id: string("id")?,
                    event_type: string("type")?,
                    scope: string("scope")?,
                    event: event.to_json(),
                    queued_at_ms,
                }))
            }
            _ => Err(Error::new(ErrorCode::InvalidEvent, "v", "missing or unknown version of a queue message")),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_roundtrip_and_stay_small() {
        let r = Ref { destination: "push-app".into(), id: "c0b44147a772c080.push-app.r2".into(), generation: 3 };
        let text = r.encode();
        assert_eq!(text, r#"{"v":2,"d":"push-app","id":"c0b44147a772c080.push-app.r2","g":3}"#);
        assert_eq!(QueueMessage::decode(&text).unwrap(), QueueMessage::Ref(r));
        let longest = Ref { destination: "x".repeat(64), id: format!("0123456789abcdef.{}.r4294967295", "x".repeat(64)), generation: u32::MAX };
        assert!(longest.encode().len() < 200);
    }

    #[test]
    fn reads_version_1_messages() {
        let v1 = r#"{"v":1,"destination":"a","id":"c0b44147a772c080","type":"conversation_push","scope":"conversation:1:2","queuedAt":5,"event":{"orgId":1,"n":12345678901234567890}}"#;
        let QueueMessage::V1(m) = QueueMessage::decode(v1).unwrap() else { panic!("not v1") };
        assert_eq!(m.event, r#"{"orgId":1,"n":12345678901234567890}"#);
        assert_eq!((m.destination.as_str(), m.queued_at_ms), ("a", 5));
    }

    #[test]
    fn bad_messages_name_the_field() {
        for (text, path) in [
            ("{}", "v"),
            (r#"{"v":3}"#, "v"),
            (r#"{"v":2,"d":"a","id":"b"}"#, "g"),
            (r#"{"v":2,"d":"a","g":1}"#, "id"),
            (r#"{"v":1,"destination":"a","id":"b","type":"t","scope":"s","queuedAt":1}"#, "event"),
        ] {
            assert_eq!(QueueMessage::decode(text).unwrap_err().path(), path, "{text}");
        }
        assert_eq!(QueueMessage::decode("not json").unwrap_err().code(), ErrorCode::InvalidJson);
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
