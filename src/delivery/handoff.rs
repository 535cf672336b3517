//! The hand-off: what the webhook gives the outbox so that Drift can be
//! answered `200`.
//!
//! One inbound event yields up to three outbound events, all in one
//! deduplication scope (one conversation, or one non-conversation event).
//! The webhook turns them into a [`Plan`]: the scope, which names the outbox
//! instance, and one payload listing each outbound event once with the
//! destinations that want it. The outbox stores the payload's deliveries in
//! one step and only then does the webhook answer `200`.
//!
//! Event bodies travel as JSON *strings*, not nested objects, so a payload
//! nests no deeper than the events it carries allow: an event at the deepest
//! accepted nesting hands off like any other.
//!
//! ```json
//! {"v":2,"scope":"conversation:1:123456789","at":1700000000000,
//!  "events":[{"id":"c0b44147a772c080","type":"conversation_push","to":["push-app"],
//!             "body":"{\"orgId\":1,\"type\":\"conversation_push\",…}"}]}
//! ```

use crate::delivery::Destinations;
use crate::error::{Error, ErrorCode};
use crate::json::{self, Limits, Value};
use crate::rules::Outbound;

/// What the webhook sends to the outbox of [`Plan::scope`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The outbox instance: `conversation:<orgId>:<conversationId>` or `event:<id>`.
    pub scope: String,
    /// The JSON text the outbox reads with [`HandOff::decode`].
    pub payload: String,
    /// How many (event, destination) deliveries it holds.
    pub deliveries: usize,
}

/// Plans the hand-off of one inbound event's outbound `events` received at
/// `now_ms`, of Drift organisation `org` (its `orgId` as written, if any):
/// `None` when no destination wants any of them.
pub fn plan(events: &[Outbound], destinations: &Destinations, org: Option<&str>, now_ms: i64) -> Option<Plan> {
    let scope = events.first()?.scope.to_string();
    let mut payload = String::new();
    let mut deliveries = 0;
    for event in events {
        let mut wanted = destinations.list.iter().filter(|d| d.wants(&event.event_type, org)).peekable();
        if wanted.peek().is_none() {
            continue;
        }
        if payload.is_empty() {
            payload.reserve(160 + events.iter().map(|e| e.json.len() + 80).sum::<usize>());
            payload.push_str("{\"v\":2,\"scope\":");
            json::write_str_escaped(&mut payload, &scope);
            payload.push_str(",\"at\":");
            payload.push_str(&now_ms.to_string());
            if let Some(org) = org.filter(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit() || b == b'-')) {
                payload.push_str(",\"org\":\"");
                payload.push_str(org);
                payload.push('"');
            }
            payload.push_str(",\"events\":[");
        } else {
            payload.push(',');
        }
        payload.push_str("{\"id\":\"");
        event.id.write_hex(&mut payload);
        payload.push_str("\",\"type\":");
        json::write_str_escaped(&mut payload, &event.event_type);
        payload.push_str(",\"to\":[");
        for (i, d) in wanted.enumerate() {
            if i > 0 {
                payload.push(',');
            }
            // Its delivery log: this incarnation of the app.
            match &d.incarnation {
                None => json::write_str_escaped(&mut payload, &d.name),
                Some(_) => json::write_str_escaped(&mut payload, &d.log_key()),
            }
            deliveries += 1;
        }
        payload.push_str("],\"body\":");
        json::write_str_escaped(&mut payload, &event.json);
        payload.push('}');
    }
    if payload.is_empty() {
        return None;
    }
    payload.push_str("]}");
    Some(Plan { scope, payload, deliveries })
}

/// A hand-off as the outbox reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandOff {
    pub scope: String,
    /// When the webhook was received, in ms since the epoch.
    pub at_ms: i64,
    /// The inbound event's `orgId`, as written, when it has one.
    pub org: Option<String>,
    pub events: Vec<HandOffEvent>,
}

/// One outbound event and the destinations that get it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandOffEvent {
    /// The event id, 16 hex digits: the `webhook-id` of its deliveries.
    pub id: String,
    pub event_type: String,
    /// The delivery logs that get it: each app's log key
    /// ([`super::destination::log_key`]).
    pub to: Vec<String>,
    /// The outbound event's JSON (before any destination's token handling).
    pub body: String,
}

impl HandOffEvent {
    /// The id of this event's delivery to `destination`.
    pub fn delivery_id(&self, destination: &str) -> String {
        delivery_id(&self.id, destination)
    }
}

/// `<event id>.<destination>`: names a delivery in the outbox, the queue and
/// the admin API. Destination names never contain a `.`; `destination` may
/// be a delivery log's key, whose incarnation is not part of the id.
pub fn delivery_id(event_id: &str, destination: &str) -> String {
    let destination = super::destination::name_of_key(destination);
    let mut id = String::with_capacity(event_id.len() + 1 + destination.len());
    id.push_str(event_id);
    id.push('.');
    id.push_str(destination);
    id
}

/// The destination a delivery id names: `<event id>.<destination>[.r<n>]`.
pub fn destination_of(delivery_id: &str) -> Option<&str> {
    let mut parts = delivery_id.split('.');
    let (event, destination) = (parts.next()?, parts.next()?);
    let replay_ok = match parts.next() {
        None => true,
        Some(r) => r.strip_prefix('r').is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())),
    };
    (event.len() == 16 && !destination.is_empty() && replay_ok && parts.next().is_none()).then_some(destination)
}

/// The id of the next replay of a delivery: `….<destination>` → `….r1`,
/// `….r1` → `….r2`.
pub fn replay_id(delivery_id: &str) -> String {
    let mut parts: Vec<&str> = delivery_id.split('.').collect();
    let n = match parts.get(2).and_then(|p| p.strip_prefix('r')).and_then(|n| n.parse::<u32>().ok()) {
        Some(n) => {
            parts.truncate(2);
            n + 1
        }
        None => 1,
    };
    format!("{}.r{n}", parts.join("."))
}

impl HandOff {
    /// Reads a payload written by [`plan`]. Errors name the field at fault.
    pub fn decode(payload: &str) -> Result<HandOff, Error> {
        let value = json::parse(payload, &Limits::INTERNAL)?;
        let bad = |path: &str, what: &str| Error::new(ErrorCode::InvalidEvent, path, format!("{what} in a hand-off"));
        if value.get("v").and_then(Value::as_integer) != Some("2") {
            return Err(bad("v", "missing or unknown version"));
        }
        let text = |v: &Value<'_>, path: &str| -> Result<String, Error> {
            v.as_str().map(|s| s.text().into_owned()).ok_or_else(|| bad(path, "expected a string"))
        };
        let scope = text(value.get("scope").unwrap_or(&Value::Null), "scope")?;
        let org = value.get("org").and_then(Value::as_str).map(|s| s.text().into_owned());
        let at_ms = value
            .get("at")
            .and_then(Value::as_integer)
            .map(crate::legacy::integer_ms)
            .ok_or_else(|| bad("at", "expected an integer"))?;
        let Some(Value::Array(items)) = value.get("events") else {
            return Err(bad("events", "expected an array"));
        };
        let mut events = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = |field: &str| format!("events[{i}].{field}");
            let field = |name: &str| item.get(name).unwrap_or(&Value::Null);
            let id = text(field("id"), &at("id"))?;
            if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(&at("id"), "expected 16 hex digits"));
            }
            let Value::Array(names) = field("to") else {
                return Err(bad(&at("to"), "expected an array of destination names"));
            };
            let to = names
                .iter()
                .enumerate()
                .map(|(j, n)| text(n, &format!("{}[{j}]", at("to"))))
                .collect::<Result<Vec<_>, _>>()?;
            events.push(HandOffEvent {
                id,
                event_type: text(field("type"), &at("type"))?,
                to,
                body: text(field("body"), &at("body"))?,
            });
        }
        Ok(HandOff { scope, at_ms, org, events })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{translate, Options};

    fn destinations() -> Destinations {
        Destinations::parse(
            Some(
                r#"[{"name":"legacy","url":"https://l.example","types":["conversation_status_updated"]},
                    {"name":"push","url":"https://p.example","types":["conversation_push"]},
                    {"name":"all","url":"https://a.example","types":["*"]}]"#,
            ),
            |_| None,
        )
        .unwrap()
    }

    #[test]
    fn lists_each_event_once_with_the_destinations_that_want_it() {
        let events = translate(
            r#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789,"n":12345678901234567890}}"#,
            &Options::new(0),
        )
        .unwrap();
        let plan = plan(&events, &destinations(), Some("1"), 1_700_000_000_000).unwrap();
        assert_eq!((plan.scope.as_str(), plan.deliveries), ("conversation:1:123456789", 5));
        let handoff = HandOff::decode(&plan.payload).unwrap();
        assert_eq!(handoff.at_ms, 1_700_000_000_000);
        let got: Vec<(&str, Vec<&str>)> =
            handoff.events.iter().map(|e| (e.event_type.as_str(), e.to.iter().map(String::as_str).collect())).collect();
        assert_eq!(
            got,
            [
                ("conversation_inactive", vec!["all"]),
                ("conversation_push", vec!["push", "all"]),
                ("conversation_status_updated", vec!["legacy", "all"]),
            ]
        );
        for (e, original) in handoff.events.iter().zip(&events) {
            assert_eq!(e.body, original.json, "bodies digit for digit");
            assert_eq!(e.id, original.id.to_hex());
        }
        assert_eq!(handoff.events[1].delivery_id("push"), "c0b44147a772c080.push");
    }

    #[test]
    fn nothing_to_hand_off() {
        let only_legacy = Destinations::parse(
            Some(r#"[{"name":"legacy","url":"https://l.example","types":["conversation_status_updated"]}]"#),
            |_| None,
        )
        .unwrap();
        let events = translate(r#"{"orgId":1,"type":"new_message","data":{}}"#, &Options::new(0)).unwrap();
        assert_eq!(plan(&events, &only_legacy, Some("1"), 0), None);
        assert_eq!(plan(&[], &destinations(), Some("1"), 0), None);
        assert_eq!(plan(&events, &Destinations::default(), Some("1"), 0), None);
    }

    #[test]
    fn deep_events_add_no_depth() {
        let deep = format!("{{\"orgId\":1,\"type\":\"x\",\"data\":{}1{}}}", "[".repeat(61), "]".repeat(61));
        let events = translate(&deep, &Options::new(0)).unwrap();
        let plan = plan(&events, &destinations(), Some("1"), 0).unwrap();
        assert_eq!(HandOff::decode(&plan.payload).unwrap().events[0].body, deep);
    }

    #[test]
    fn delivery_ids_name_their_destination_and_replays_count_up() {
        let cases = [
            ("0123456789abcdef.app", Some("app")),
            ("0123456789abcdef.push-app.r2", Some("push-app")),
            ("0123456789abcdef.r2", Some("r2")),
            ("0123456789abcdef.app.x", None),
            ("0123456789abcdef.app.r", None),
            ("0123456789abcdef", None),
            ("short.app", None),
            ("0123456789abcdef.app.r1.r2", None),
        ];
        for (id, destination) in cases {
            assert_eq!(destination_of(id), destination, "{id}");
        }
        assert_eq!(replay_id("0123456789abcdef.app"), "0123456789abcdef.app.r1");
        assert_eq!(replay_id("0123456789abcdef.app.r1"), "0123456789abcdef.app.r2");
        assert_eq!(replay_id("0123456789abcdef.r7.r41"), "0123456789abcdef.r7.r42");
        assert_eq!(replay_id("0123456789abcdef.r7"), "0123456789abcdef.r7.r1");
    }

    #[test]
    fn bad_payloads_name_the_field() {
        for (payload, path) in [
            ("{}", "v"),
            (r#"{"v":2,"at":1,"events":[]}"#, "scope"),
            (r#"{"v":2,"scope":"s","events":[]}"#, "at"),
            (r#"{"v":2,"scope":"s","at":1}"#, "events"),
            (r#"{"v":2,"scope":"s","at":1,"events":[{"id":"zz","type":"t","to":[],"body":"{}"}]}"#, "events[0].id"),
            (r#"{"v":2,"scope":"s","at":1,"events":[{"id":"0123456789abcdef","type":"t","to":[1],"body":"{}"}]}"#, "events[0].to[0]"),
        ] {
            assert_eq!(HandOff::decode(payload).unwrap_err().path(), path, "{payload}");
        }
    }
}
