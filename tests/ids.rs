//! Event ids: the same conversation event has the same id whichever webhook
//! it came from; any difference in orgId, type, conversationId or time gives
//! another id. Checked on named cases and on generated events.

use drift_bridge::{translate, EventId, LegacyPolicy, Options, Outbound};
use proptest::prelude::*;

fn events(input: &str) -> Vec<Outbound> {
    translate(input, &Options::new(0).legacy(LegacyPolicy::Always)).unwrap()
}

fn id_of(input: &str) -> EventId {
    events(input)[0].id
}

#[test]
fn ids_are_sixteen_hex_digits() {
    let id = id_of(r#"{"orgId":1,"type":"new_message","data":{}}"#).to_hex();
    assert_eq!(id.len(), 16);
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
}

#[test]
fn derived_events_share_ids_with_drifts_own() {
    let inactive = r#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789},"token":"a"}"#;
    let drift_push = r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":123456789,"lastUpdated":1591813767000,"extra":1}}"#;
    let drift_close = r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}"#;
    let manual = r#"{"orgId":1,"type":"conversation_manual_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}"#;

    let from_inactive = events(inactive);
    let from_push = events(drift_push);
    let from_close = events(drift_close);
    let from_manual = events(manual);
    // push derived from inactive == Drift's push == push derived from manual push == push derived from a real close
    assert_eq!(from_inactive[1].id, from_push[0].id);
    assert_eq!(from_manual[1].id, from_push[0].id);
    assert_eq!(from_close[2].id, from_push[0].id);
    // legacy close derived from inactive == legacy close derived from push == Drift's real close
    assert_eq!(from_inactive[2].id, from_close[0].id);
    assert_eq!(from_push[1].id, from_close[0].id);
    // manual push derived from a close == Drift's manual push
    assert_eq!(from_close[1].id, from_manual[0].id);
    // and the three events of one webhook are three different events
    assert_ne!(from_inactive[0].id, from_inactive[1].id);
    assert_ne!(from_inactive[1].id, from_inactive[2].id);
}

#[test]
fn the_published_ids() {
    let inactive = r#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}"#;
    let ids: Vec<String> = events(inactive).iter().map(|e| e.id.to_hex()).collect();
    // Ids are part of the contract (they become webhook-id): they must not
    // change between versions.
    assert_eq!(ids, ["b624515312c8ce89", "c0b44147a772c080", "945d7df49ee99b50"]);
}

#[test]
fn an_open_status_is_not_a_close() {
    let open = r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":1,"status":"open","changedAt":5}}"#;
    let close = r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":1,"status":"closed","changedAt":5}}"#;
    assert_ne!(id_of(open), id_of(close));
}

#[test]
fn other_types_are_keyed_by_content() {
    let a = r#"{"orgId":1,"type":"new_message","data":{"body":"hi"}}"#;
    let b = r#"{"orgId":1,"type":"new_message","data":{"body":"ho"}}"#;
    assert_eq!(id_of(a), id_of(a));
    assert_ne!(id_of(a), id_of(b));
    // The same content spelled with other whitespace is the same event.
    assert_eq!(id_of(a), id_of("{ \"orgId\": 1, \"type\": \"new_message\", \"data\": { \"body\": \"hi\" } }"));
}

const KINDS: [&str; 3] = ["conversation_inactive", "conversation_manual_push", "conversation_push"];

fn conversation_event() -> impl Strategy<Value = (u64, usize, i128, u64, String, bool)> {
    (
        0u64..4,
        0usize..3,
        prop_oneof![-3i128..3, Just(i128::from(u64::MAX) * 7)],
        prop_oneof![0u64..3, Just(1_591_813_767_000u64)],
        "[a-z]{0,3}",
        any::<bool>(),
    )
}

fn render((org, kind, conv, time, extra, token): &(u64, usize, i128, u64, String, bool)) -> String {
    let token = if *token { r#","token":"t""# } else { "" };
    format!(
        r#"{{"orgId":{org},"type":"{}","data":{{"conversationId":{conv},"lastUpdated":{time},"x":"{extra}"}}{token}}}"#,
        KINDS[*kind]
    )
}

proptest! {
    /// For any two generated events: their push forms (and legacy closes)
    /// share an id exactly when orgId, conversationId and time agree, however
    /// the inbound types, tokens and extra fields differ.
    #[test]
    fn push_and_legacy_ids_depend_on_exactly_the_key(a in conversation_event(), b in conversation_event()) {
        let (ea, eb) = (events(&render(&a)), events(&render(&b)));
        let same_key = a.0 == b.0 && a.2 == b.2 && a.3 == b.3;
        let push = |e: &[Outbound]| e.iter().find(|o| o.event_type == "conversation_push").unwrap().id;
        let close = |e: &[Outbound]| e.iter().find(|o| o.event_type == "conversation_status_updated").unwrap().id;
        prop_assert_eq!(push(&ea) == push(&eb), same_key);
        prop_assert_eq!(close(&ea) == close(&eb), same_key);
        // The inbound ids also separate types.
        prop_assert_eq!(ea[0].id == eb[0].id, same_key && a.1 == b.1);
    }

    /// Ids never collide across the outbound events of one webhook, and
    /// translation is deterministic.
    #[test]
    fn ids_are_stable_and_distinct(a in conversation_event()) {
        let input = render(&a);
        let first = events(&input);
        prop_assert_eq!(&first, &events(&input));
        for i in 0..first.len() {
            for j in i + 1..first.len() {
                prop_assert_ne!(first[i].id, first[j].id);
            }
        }
    }
}
