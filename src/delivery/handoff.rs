//! The hand-off: what a webhook gives each app's delivery log, so that Drift
//! can be answered `200`.
//!
//! One inbound event yields up to three outbound events. The webhook routes
//! each to the apps that want it (by type and organisation), and hands each
//! app's share to that app's log in one request ([`HandOff`]: an `Accept`),
//! all of them side by side; Drift is answered `200` once every one of them
//! stored its share, and `503` otherwise (Drift sends it again, and the logs
//! drop what they already have). No other object stands between.
//!
//! Event bodies travel as JSON *strings*, not nested objects, so an accept
//! nests no deeper than the events it carries allow: an event at the deepest
//! accepted nesting hands off like any other.

use super::log::input::Accept;
use super::log::NewDelivery;
use crate::delivery::Destinations;
use crate::rules::Outbound;

/// One app's share of a webhook, for its delivery log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HandOff {
    /// The app's delivery log ([`crate::delivery::destination::log_key`]).
    pub key: String,
    /// The `Accept` its log reads.
    pub body: String,
    /// How many deliveries it holds.
    pub deliveries: usize,
}

/// Plans the hand-offs of one inbound event's outbound `events` received at
/// `now_ms`, of Drift organisation `org` (its `orgId` as written, if any):
/// one per app that wants any of them, in the order the apps are
/// configured; none when no app wants any.
pub fn plan(events: &[Outbound], destinations: &Destinations, org: Option<&str>, now_ms: i64) -> Vec<HandOff> {
    let Some(first) = events.first() else { return Vec::new() };
    let scope = first.scope.to_string();
    let org = org.filter(|o| !o.is_empty() && o.bytes().all(|b| b.is_ascii_digit() || b == b'-'));
    let mut out = Vec::new();
    for d in &destinations.list {
        let mine: Vec<NewDelivery> = events
            .iter()
            .filter(|e| d.wants(&e.event_type, org))
            .map(|e| NewDelivery {
                event: e.id.to_hex(),
                event_type: e.event_type.to_string(),
                scope: scope.clone(),
                received_at: now_ms,
                org: org.map(str::to_owned),
                body: e.json.clone(),
            })
            .collect();
        if mine.is_empty() {
            continue;
        }
        let deliveries = mine.len();
        let key = d.log_key();
        out.push(HandOff { body: Accept { key: key.clone(), deliveries: mine }.encode(), key, deliveries });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{translate, Options};

    fn destinations() -> Destinations {
        Destinations::parse(
            Some(
                r#"[{"name":"legacy","url":"https://l.example","types":["conversation_status_updated"]},
                    {"name":"push","url":"https://p.example","types":["conversation_push"],"orgIds":[1]},
                    {"name":"all","url":"https://a.example","types":["*"]}]"#,
            ),
            |_| None,
        )
        .unwrap()
    }

    #[test]
    fn each_app_gets_its_share_in_one_accept() {
        let events = translate(
            r#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789,"n":12345678901234567890}}"#,
            &Options::new(0),
        )
        .unwrap();
        let plans = plan(&events, &destinations(), Some("1"), 1_700_000_000_000);
        let got: Vec<(&str, usize)> = plans.iter().map(|p| (p.key.as_str(), p.deliveries)).collect();
        assert_eq!(got, [("legacy", 1), ("push", 1), ("all", 3)]);
        let all = Accept::decode(&plans[2].body).unwrap();
        assert_eq!(all.key, "all");
        for (d, original) in all.deliveries.iter().zip(&events) {
            assert_eq!(d.body, original.json, "bodies digit for digit");
            assert_eq!(d.event, original.id.to_hex());
            assert_eq!((d.scope.as_str(), d.received_at, d.org.as_deref()), ("conversation:1:123456789", 1_700_000_000_000, Some("1")));
        }
        // Another organisation: not for the app that takes only org 1.
        let plans = plan(&events, &destinations(), Some("2"), 0);
        assert_eq!(plans.iter().map(|p| p.key.as_str()).collect::<Vec<_>>(), ["legacy", "all"]);
    }

    #[test]
    fn nothing_to_hand_off() {
        let only_legacy = Destinations::parse(Some(r#"[{"name":"legacy","url":"https://l.example","types":["conversation_status_updated"]}]"#), |_| None).unwrap();
        let events = translate(r#"{"orgId":1,"type":"new_message","data":{}}"#, &Options::new(0)).unwrap();
        assert!(plan(&events, &only_legacy, Some("1"), 0).is_empty());
        assert!(plan(&[], &destinations(), Some("1"), 0).is_empty());
        assert!(plan(&events, &Destinations::default(), Some("1"), 0).is_empty());
    }

    #[test]
    fn deep_events_add_no_depth() {
        let deep = format!("{{\"orgId\":1,\"type\":\"x\",\"data\":{}1{}}}", "[".repeat(61), "]".repeat(61));
        let events = translate(&deep, &Options::new(0)).unwrap();
        let plans = plan(&events, &destinations(), Some("1"), 0);
        assert_eq!(Accept::decode(&plans[0].body).unwrap().deliveries[0].body, deep);
    }
}
