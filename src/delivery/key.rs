//! Where a delivery is kept in its log: the hour its log took it in, its
//! event's id and which replay of it it is.
//!
//! The delivery log's table is keyed by `(hour, event, replay)`, with no
//! other index, because every index entry is a row written and billed on
//! each insert and each delete: the hour orders the log by time (expiry,
//! listing newest first, the scans of recent deliveries), and the event's 64
//! bits find a delivery (deduplication, the admin API) with one seek per
//! hour of the window searched.
//!
//! A delivery's id, as the admin API and the logs show it, is
//! `<event id>.<app>` (`.r<n>` for the n-th replay): the hour is not part of
//! it, so that an id stays what it always was.

use std::fmt;

/// An hour, in ms.
pub const HOUR_MS: i64 = 3_600_000;

/// A delivery's place in its log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// When its log took it in, in hours since the epoch.
    pub hour: i64,
    /// Its event's id (16 hex digits) as a signed 64-bit integer.
    pub event: i64,
    /// 0 for the delivery itself, n for its n-th replay.
    pub replay: u32,
}

impl Key {
    pub fn new(accepted_at: i64, event: i64, replay: u32) -> Key {
        Key { hour: hour_of(accepted_at), event, replay }
    }

    /// Its id for people: `<event id>.<app>` or `<event id>.<app>.r<n>`.
    pub fn id(&self, app: &str) -> String {
        let mut id = format!("{}.{app}", event_hex(self.event));
        if self.replay > 0 {
            id.push_str(&format!(".r{}", self.replay));
        }
        id
    }

    /// `<hour>:<event>:<replay>`, how it travels in a ticket.
    pub fn encode(&self) -> String {
        format!("{}:{}:{}", self.hour, self.event, self.replay)
    }

    pub fn decode(text: &str) -> Option<Key> {
        let mut parts = text.split(':');
        let key = Key { hour: parts.next()?.parse().ok()?, event: parts.next()?.parse().ok()?, replay: parts.next()?.parse().ok()? };
        parts.next().is_none().then_some(key)
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.encode())
    }
}

/// The hour of a time in ms.
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS)
}

/// An event id (16 hex digits) as the 64-bit integer the log keys by.
pub fn event_bits(hex: &str) -> Option<i64> {
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok()).flatten().map(|n| n as i64)
}

/// The event id of those bits: 16 lower-case hex digits.
pub fn event_hex(bits: i64) -> String {
    format!("{:016x}", bits as u64)
}

/// A delivery id read back: its event's bits, its app and its replay number.
pub fn parse_id(id: &str) -> Option<(i64, &str, u32)> {
    let mut parts = id.split('.');
    let event = event_bits(parts.next()?)?;
    let app = parts.next().filter(|a| !a.is_empty())?;
    let replay = match parts.next() {
        None => 0,
        Some(r) => r.strip_prefix('r').filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))?.parse().ok().filter(|n| *n > 0)?,
    };
    parts.next().is_none().then_some((event, app, replay))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_what_they_always_were_and_read_back() {
        let key = Key::new(1_700_000_000_000, event_bits("c0b44147a772c080").unwrap(), 0);
        assert_eq!(key.hour, 472_222);
        assert_eq!(key.id("push-app"), "c0b44147a772c080.push-app");
        assert_eq!(Key { replay: 2, ..key }.id("push-app"), "c0b44147a772c080.push-app.r2");
        assert_eq!(event_hex(event_bits("ffffffffffffffff").unwrap()), "ffffffffffffffff", "the high bit survives");
        assert_eq!(Key::decode(&key.encode()), Some(key));
        for bad in ["", "1:2", "1:2:x", "1:2:3:4"] {
            assert_eq!(Key::decode(bad), None, "{bad}");
        }
        let cases = [
            ("0123456789abcdef.app", Some(("app", 0))),
            ("0123456789abcdef.push-app.r2", Some(("push-app", 2))),
            ("0123456789abcdef.app.x", None),
            ("0123456789abcdef.app.r", None),
            ("0123456789abcdef.app.r0", None),
            ("0123456789abcdef", None),
            ("short.app", None),
            ("0123456789abcdef.app.r1.r2", None),
        ];
        for (id, want) in cases {
            assert_eq!(parse_id(id).map(|(_, a, r)| (a, r)), want, "{id}");
        }
    }
}
