//! An app is its incarnation, not its name; whether a delivery still fits its
//! app is decided when it is sent; a log whose app's presence cannot be
//! confirmed (the registry is down) neither sends nor ends anything of a
//! runtime app's, and goes on for the declared ones. Natively, through the
//! whole delivery system (tests/support/world.rs). (Issue 30.)

mod support;

use drift_bridge::config::Config;
use drift_bridge::delivery::apps::{App, Routes};
use drift_bridge::delivery::destination::{parse_url, read_spec, Source};
use drift_bridge::json::{self, Limits, Value};
use support::world::World;

const START: i64 = 1_700_000_000_000;

fn base(vars: &[(&str, &str)]) -> Config {
    let mut all = vec![("RETRY_BASE_SECONDS", "1"), ("CIRCUIT_FAILURES", "3"), ("CIRCUIT_PROBE_SECONDS", "1")];
    all.extend_from_slice(vars);
    support::config(&all)
}

/// A runtime app of incarnation `id`, from its admin API object.
fn runtime(id: &str, object: &str) -> App {
    let value = json::parse(object, &Limits::INTERNAL).unwrap();
    App { spec: read_spec(&value, Source::Runtime, parse_url).unwrap(), id: Some(id.into()), secrets: vec![], created_at: 0, updated_at: 0 }
}

fn with(config: &Config, apps: Vec<App>) -> Config {
    config.with_apps(&Routes { version: 1, apps }, &|_| None)
}

fn inactive(w: &mut World, conversation: u64, org: u64) -> u16 {
    w.webhook(&format!(
        r#"{{"orgId":{org},"type":"conversation_inactive","data":{{"lastUpdated":1591813767000,"conversationId":{conversation}}}}}"#
    ))
}

/// The deliveries a log lists, as (type, status, reason).
fn listed(w: &mut World, key: &str) -> Vec<(String, String, String)> {
    let (_, text) = w.log_op(key, "/list", r#"{"limit":200}"#).unwrap();
    let v = json::parse(&text, &Limits::INTERNAL).unwrap();
    let Some(Value::Array(items)) = v.get("deliveries") else { panic!("{text}") };
    let s = |d: &Value<'_>, k: &str| d.get(k).and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
    items.iter().map(|d| (s(d, "type"), s(d, "status"), s(d, "reason"))).collect()
}

/// A field of the log's health, as text.
fn health(w: &mut World, key: &str, field: &str) -> String {
    let (_, text) = w.log_op(key, "/health", &format!(r#"{{"destination":"{key}"}}"#)).unwrap();
    let v = json::parse(&text, &Limits::INTERNAL).unwrap();
    match v.get(field) {
        Some(Value::String(s)) => s.text().into_owned(),
        Some(other) => other.to_json(),
        None => String::new(),
    }
}

#[test]
fn a_name_used_again_is_a_new_app_with_nothing_of_the_old_one() {
    // The issue's scenario: `reuse` (org 1, every type) paused with 3 held,
    // deleted, added again with another URL, orgIds [2], only conversation_push.
    let plain = base(&[]);
    let old = runtime("00000000000000a1", r#"{"name":"reuse","url":"https://old.example/hook","types":["*"],"signed":false}"#);
    let mut w = World::new(with(&plain, vec![old]), START);
    let old_key = "reuse~00000000000000a1";
    w.log_op(old_key, "/pause", &format!(r#"{{"destination":"{old_key}"}}"#)).unwrap();
    assert_eq!(inactive(&mut w, 7, 1), 200);
    w.run_for(10_000, 1_000);
    assert_eq!(health(&mut w, old_key, "held"), "3");
    // Deleted: the registry tells its log, which ends what it held.
    w.config = plain.clone();
    w.log_op(old_key, "/end", &format!(r#"{{"destination":"{old_key}"}}"#)).unwrap();
    let ended = listed(&mut w, old_key);
    assert_eq!(ended.len(), 3);
    assert!(ended.iter().all(|(_, status, reason)| status == "failed" && reason == "its app reuse was removed"), "{ended:?}");
    // Added again: another incarnation, with a log of its own.
    let new = runtime(
        "00000000000000b2",
        r#"{"name":"reuse","url":"https://new.example/hook","types":["conversation_push"],"orgIds":[2],"signed":false}"#,
    );
    w.config = with(&plain, vec![new]);
    let new_key = "reuse~00000000000000b2";
    assert_eq!((health(&mut w, new_key, "state"), health(&mut w, new_key, "held")), ("active".into(), "0".into()));
    w.log_op(new_key, "/resume", &format!(r#"{{"destination":"{new_key}"}}"#)).unwrap();
    w.run_for(60_000, 1_000);
    assert!(w.received.is_empty(), "neither URL got the old app's deliveries: {:?}", w.received);
    // The old dead letters cannot be replayed to the new app.
    let (_, page) = w.log_op(old_key, "/list", r#"{"limit":1}"#).unwrap();
    let page = json::parse(&page, &Limits::INTERNAL).unwrap();
    let Some(Value::Array(items)) = page.get("deliveries") else { panic!() };
    let id = items[0].get("id").and_then(Value::as_str).unwrap().text().into_owned();
    let (status, answer) = w.log_op(old_key, "/replay", &format!(r#"{{"id":"{id}"}}"#)).unwrap();
    assert_eq!(status, 409, "{answer}");
    assert!(answer.contains("its app reuse was removed"), "{answer}");
    // The new one gets only what it subscribes to, of its organisation.
    assert_eq!(inactive(&mut w, 8, 1), 200);
    assert_eq!(inactive(&mut w, 9, 2), 200);
    w.run_for(10_000, 1_000);
    let got: Vec<&str> = w.received.iter().map(|r| r.destination.as_str()).collect();
    assert_eq!(got, [new_key], "one push of org 2");
    // Its metrics begin with it.
    let (_, totals) = w.log_op(new_key, "/totals", "").unwrap();
    assert!(totals.contains(r#""accepted":1"#), "{totals}");
    w.invariants().unwrap();
}

#[test]
fn a_narrowed_filter_decides_what_is_sent_not_what_was_routed() {
    let all = r#"[{"name":"app","url":"https://app.example/hook","types":["*"]}]"#;
    let mut w = World::new(base(&[("DESTINATIONS", all)]), START);
    w.log_op("app", "/pause", r#"{"destination":"app"}"#).unwrap();
    assert_eq!(inactive(&mut w, 7, 1), 200);
    w.run_for(10_000, 1_000);
    assert_eq!(health(&mut w, "app", "held"), "3");
    // Narrowed to the push while they waited.
    w.config = base(&[("DESTINATIONS", r#"[{"name":"app","url":"https://app.example/hook","types":["conversation_push"]}]"#)]);
    w.log_op("app", "/resume", r#"{"destination":"app"}"#).unwrap();
    w.run_for(30_000, 1_000);
    assert_eq!(w.received.len(), 1, "only the push");
    let mut got = listed(&mut w, "app");
    got.sort();
    assert_eq!(
        got,
        [
            ("conversation_inactive".into(), "failed".into(), "its app app no longer subscribes to conversation_inactive".into()),
            ("conversation_push".into(), "delivered".into(), String::new()),
            ("conversation_status_updated".into(), "failed".into(), "its app app no longer subscribes to conversation_status_updated".into()),
        ]
    );
    // And an organisation taken away is no longer sent either.
    w.log_op("app", "/pause", r#"{"destination":"app"}"#).unwrap();
    assert_eq!(inactive(&mut w, 8, 1), 200);
    w.run_for(10_000, 1_000);
    w.config = base(&[("DESTINATIONS", r#"[{"name":"app","url":"https://app.example/hook","types":["*"],"orgIds":[2]}]"#)]);
    w.log_op("app", "/resume", r#"{"destination":"app"}"#).unwrap();
    w.run_for(30_000, 1_000);
    assert_eq!(w.received.len(), 1, "nothing of org 1");
    assert!(listed(&mut w, "app").iter().any(|(_, _, reason)| reason == "its app app no longer takes events of organisation 1"));
    w.invariants().unwrap();
}

#[test]
fn a_declared_app_removed_ends_its_log_and_declared_again_starts_afresh() {
    let declared = r#"[{"name":"app","url":"https://app.example/hook","types":["conversation_push"]}]"#;
    let mut w = World::new(base(&[("DESTINATIONS", declared)]), START);
    w.app("app", |_| Some(503));
    for n in 0..6 {
        assert_eq!(w.webhook(&format!(r#"{{"orgId":1,"type":"conversation_push","data":{{"conversationId":{n}}}}}"#)), 200);
    }
    w.run_for(20_000, 1_000);
    assert_eq!(health(&mut w, "app", "state"), "tripped");
    // Removed from DESTINATIONS (a deploy): within an hour its log ends what it holds.
    w.config = base(&[]);
    w.run_for(3_600_000, 60_000);
    let ended = listed(&mut w, "app");
    assert!(!ended.is_empty() && ended.iter().all(|(_, status, _)| status == "failed"), "{ended:?}");
    // Declared again: nothing of the one before.
    w.config = base(&[("DESTINATIONS", declared)]);
    w.app("app", |_| Some(200));
    assert_eq!((health(&mut w, "app", "state"), health(&mut w, "app", "consecutiveFailures")), ("active".into(), "0".into()));
    assert!(listed(&mut w, "app").is_empty(), "no history of the old one");
    let (_, totals) = w.log_op("app", "/totals", "").unwrap();
    assert!(!totals.contains("\"accepted\""), "no metrics of the old one: {totals}");
    assert_eq!(w.webhook(r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":99}}"#), 200);
    w.run_for(10_000, 1_000);
    assert_eq!(w.received.len(), 1);
    w.invariants().unwrap();
}

#[test]
fn without_the_registry_a_runtime_apps_log_waits_and_the_declared_ones_go_on() {
    let declared = r#"[{"name":"legacy","url":"https://legacy.example/hook","types":["conversation_status_updated"]}]"#;
    let plain = base(&[("DESTINATIONS", declared), ("RECOVERY_GRACE_SECONDS", "5")]);
    let app = runtime("00000000000000c3", r#"{"name":"crm","url":"https://crm.example/hook","types":["conversation_push"],"signed":false}"#);
    let key = "crm~00000000000000c3";
    let mut w = World::new(with(&plain, vec![app.clone()]), START);
    // Each app fails its first request: its delivery waits for a retry.
    for name in ["legacy", key] {
        let mut first = true;
        w.app(name, move |_| if std::mem::replace(&mut first, false) { Some(503) } else { Some(200) });
    }
    // Routed while the registry answered; then it stops answering, and the
    // copy of the apps is gone with its lease.
    assert_eq!(inactive(&mut w, 7, 1), 200);
    w.run_until(w.now + 600);
    assert!(w.received.is_empty());
    w.apps_known = false;
    w.config = plain.clone();
    w.run_for(120_000, 1_000);
    let got: Vec<&str> = w.received.iter().map(|r| r.destination.as_str()).collect();
    assert_eq!(got, ["legacy"], "the declared app is delivered; the runtime app's delivery waits");
    let waiting = listed(&mut w, key);
    assert_eq!(waiting.len(), 1);
    assert_ne!(waiting[0].1, "failed", "not ended for an app that may still be there: {waiting:?}");
    // The registry answers again: it goes.
    w.apps_known = true;
    w.config = with(&plain, vec![app]);
    w.run_for(60_000, 1_000);
    assert_eq!(w.received.iter().filter(|r| r.destination == key).count(), 1);
    assert_eq!(listed(&mut w, key)[0].1, "delivered");
    w.invariants().unwrap();
}

#[test]
fn without_the_registry_an_ordered_runtime_apps_log_keeps_each_conversation_in_order() {
    let plain = base(&[("RECOVERY_GRACE_SECONDS", "5")]);
    let app = runtime("00000000000000d4", r#"{"name":"crm","url":"https://crm.example/hook","types":["*"],"signed":false,"ordered":true}"#);
    let key = "crm~00000000000000d4";
    let mut w = World::new(with(&plain, vec![app.clone()]), START);
    // The app takes its time: its first request is answered while the
    // registry cannot be asked.
    w.app(key, |_| None);
    assert_eq!(inactive(&mut w, 7, 1), 200);
    assert_eq!(w.requests.len(), 1, "one of the conversation's three at a time");
    w.apps_known = false;
    w.config = plain.clone();
    w.app(key, |_| Some(200));
    w.run_for(120_000, 1_000);
    assert_eq!(w.requests.len(), 1, "nothing goes while its app cannot be confirmed");
    w.invariants().unwrap();
    // The registry answers again: the rest go, one after the other, in order.
    w.apps_known = true;
    w.config = with(&plain, vec![app]);
    w.run_for(60_000, 1_000);
    let sent: Vec<(i64, i64)> = w.requests.iter().map(|r| (r.at, r.until)).collect();
    assert_eq!(sent.len(), 4, "the first again (it timed out), then the other two: {sent:?}");
    assert_eq!(w.requests[0].webhook_id, w.requests[1].webhook_id);
    assert!(sent.windows(2).all(|p| p[1].0 >= p[0].1), "one at a time: {sent:?}");
    let types: Vec<String> = listed(&mut w, key).into_iter().map(|(t, status, _)| format!("{t} {status}")).collect();
    assert!(types.iter().all(|t| t.ends_with("delivered")), "{types:?}");
    w.invariants().unwrap();
}
