//! Deterministic event ids.
//!
//! An id names an event, not a delivery: the same conversation event gets the
//! same id whichever inbound webhook it came from, so a `conversation_push`
//! derived from `conversation_inactive` collides on purpose with the identical
//! `conversation_push` Drift sends itself, and deduplication downstream sees
//! one event. Conversation events are keyed by `orgId`, `type`,
//! `data.conversationId` and their time (`lastUpdated`, or `changedAt` for
//! status events, plus the status itself), or for one without a time, its
//! `data` ([`content_key`]); every other event by its whole content. Ids are
//! the first 64 bits of a SHA-256, in hex. None depends on when an event was
//! received.

use std::fmt;

use sha2::{Digest, Sha256};

/// A 16-hex-digit event id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId([u8; 8]);

impl EventId {
    /// The id as 16 lowercase hex digits.
    pub fn to_hex(self) -> String {
        let mut out = String::with_capacity(16);
        self.write_hex(&mut out);
        out
    }

    /// Appends the 16 hex digits to `out`.
    pub fn write_hex(self, out: &mut String) {
        let mut hex = [0u8; 16];
        self.write_hex_bytes(&mut hex);
        out.push_str(std::str::from_utf8(&hex).unwrap_or_default());
    }

    /// Writes the 16 hex digits into `out`.
    pub fn write_hex_bytes(self, out: &mut [u8; 16]) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for (i, b) in self.0.iter().enumerate() {
            out[2 * i] = HEX[usize::from(b >> 4)];
            out[2 * i + 1] = HEX[usize::from(b & 15)];
        }
    }

    pub(crate) fn from_digest(digest: &[u8]) -> EventId {
        let mut id = [0u8; 8];
        id.copy_from_slice(&digest[..8]);
        EventId(id)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({})", self.to_hex())
    }
}

/// The id of a conversation event. Integers are given as their JSON text;
/// `status` only for `conversation_status_updated`.
pub fn conversation(org_id: &str, type_name: &str, conversation_id: &str, time: &str, status: Option<&str>) -> EventId {
    let mut h = Sha256::new();
    h.update(b"drift-bridge/id/v1\0conversation\0");
    for part in [canonical(org_id), type_name, canonical(conversation_id), canonical(time)] {
        h.update(part.as_bytes());
        h.update(b"\0");
    }
    if let Some(status) = status {
        // Last, so its free text cannot run into another field.
        h.update(status.as_bytes());
    }
    EventId::from_digest(&h.finalize())
}

/// What stands for the time in the id of a conversation event that has
/// none: `~` and a digest of its `data` as compact JSON (never an integer's
/// spelling, so never another event's time). A repeat of the event has the
/// same key whenever it arrives; a `conversation_push` derived from such a
/// `conversation_inactive` has the id of Drift's own push with the same data.
pub fn content_key(data_json: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"drift-bridge/id/v1\0data\0");
    h.update(data_json.as_bytes());
    let mut out = String::with_capacity(17);
    out.push('~');
    EventId::from_digest(&h.finalize()).write_hex(&mut out);
    out
}

/// The id of any other event: a hash of its compact JSON.
pub fn content(json: &str) -> EventId {
    let mut h = Sha256::new();
    h.update(b"drift-bridge/id/v1\0content\0");
    h.update(json.as_bytes());
    EventId::from_digest(&h.finalize())
}

/// JSON integers have one spelling each, but for `-0`.
fn canonical(integer: &str) -> &str {
    if integer == "-0" {
        "0"
    } else {
        integer
    }
}
