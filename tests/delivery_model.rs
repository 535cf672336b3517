//! The delivery system as a whole, natively: random webhooks (and repeats
//! of them) straight to the apps' delivery logs, apps that go down and come
//! back, time out and refuse some events, with the process stopping between
//! any two actions of any step (tests/support/world.rs), and alarms.
//! Checked:
//!
//! - nothing accepted is lost: every (event, app) a delivery log answered
//!   200 for reaches the app, always with its event id as `webhook-id`, the
//!   same body and a valid signature whichever attempt it is, or
//!   ends as a dead letter that says why (the app refused it for all its
//!   attempts; with crashes, also: its answers kept being lost); without
//!   crashes, each arrives exactly once;
//! - between any two steps, each log's kept counts are what its rows say,
//!   every delivery is in the one side table its status puts it in, and its
//!   alarm is the one it recorded, no later than the first thing due;
//! - once the app is back the backlog only shrinks, and drains;
//! - rows expire on time: in the end, nothing is left but the metrics and
//!   the alarm that forgets them;
//! - the operator hears of it: every trip and every recovery of an app
//!   reaches the alert target, each alert under one id (once, without
//!   crashes), and no alert is about an alert target;
//! - an app that takes conversations in order (`"ordered": true`) gets each
//!   conversation's events in the order they were accepted, never two of
//!   one conversation at once, through retries, outages, drains and
//!   crashes, and every one of them all the same.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use drift_bridge::delivery::sign;
use proptest::prelude::*;
use support::world::World;

const START: i64 = 1_700_000_000_000;

#[derive(Clone, Debug)]
struct Webhook {
    /// Time since the previous one, ms.
    after_ms: i64,
    conversation: u8,
    kind: u8,
    /// Drift sends the previous webhook again instead.
    repeat: bool,
}

fn webhook() -> impl Strategy<Value = Webhook> {
    (0i64..4000, 0u8..6, 0u8..3, prop::bool::weighted(0.15)).prop_map(|(after_ms, conversation, kind, repeat)| Webhook {
        after_ms,
        conversation,
        kind,
        repeat,
    })
}

#[derive(Clone, Debug)]
struct Scenario {
    webhooks: Vec<Webhook>,
    /// When the apps that go down are down (ms after the start, how long),
    /// and whether they time out (else they answer 503).
    outages: Vec<(i64, i64, bool)>,
    /// Apps "all" and "ordered" refuse events whose id ends with this hex
    /// digit: "all" with a 404 (tried again until its attempts run out),
    /// "ordered" with a 410 (gone at once: a conversation in order waits
    /// for each of its dead letters to end).
    refuses: Option<u8>,
    crash_per_mille: u32,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(webhook(), 1..40),
        prop::collection::vec((0i64..120_000, 1_000i64..300_000, any::<bool>()), 0..3),
        prop::option::of(0u8..16),
    )
        .prop_map(|(webhooks, outages, refuses)| Scenario { webhooks, outages, refuses, crash_per_mille: 0 })
}

fn config(ordered: bool) -> drift_bridge::config::Config {
    let apps = if ordered {
        r#"[{"name":"ordered","url":"https://ordered.example/hook","types":["*"],"ordered":true}]"#
    } else {
        r#"[{"name":"push","url":"https://push.example/hook","types":["conversation_push"],"signingSecret":"PUSH_SECRET"},
            {"name":"all","url":"https://all.example/hook","types":["*"]}]"#
    };
    support::config(&[
        ("DESTINATIONS", apps),
        ("RETRY_BASE_SECONDS", "1"),
        ("RECOVERY_GRACE_SECONDS", "5"),
        ("DELIVERY_TIMEOUT_MS", "1000"),
        ("CIRCUIT_FAILURES", "3"),
        ("CIRCUIT_PROBE_SECONDS", "1"),
        ("DRAIN_PER_SECOND", "5"),
        ("DEDUP_WINDOW_SECONDS", "3600"),
        ("DELIVERY_LOG_SECONDS", "7200"),
        ("DEAD_LETTER_RETENTION_SECONDS", "172800"),
        ("HOLD_RETENTION_SECONDS", "86400"),
        ("ALERTS", r#"[{"name":"ops","url":"https://ops.example/alerts"}]"#),
        ("ALERT_COALESCE_SECONDS", "60"),
        ("PUBLIC_URL", "https://bridge.example"),
        ("PUSH_SECRET", SECRET),
    ])
}

/// The signing secret of app "push".
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn event(n: usize, w: &Webhook) -> String {
    let kind = ["conversation_inactive", "conversation_manual_push", "conversation_push"][usize::from(w.kind)];
    format!(r#"{{"orgId":1,"type":"{kind}","data":{{"lastUpdated":{},"conversationId":{}}}}}"#, 1_591_813_767_000 + n as i64, w.conversation)
}

/// Whether `app` refuses the event `id` in scenario `s`.
fn refused(s: &Scenario, app: &str, id: &str) -> bool {
    app != "push" && s.refuses.is_some_and(|d| u8::from_str_radix(&id[15..], 16).unwrap() == d)
}

/// How `app` refuses an event.
fn refusal(app: &str) -> u16 {
    if app == "ordered" {
        410
    } else {
        404
    }
}

/// The apps of a scenario: the one that goes down, and the others.
fn apps(ordered: bool) -> (&'static str, &'static [&'static str]) {
    if ordered {
        ("ordered", &["ordered"])
    } else {
        ("push", &["push", "all"])
    }
}

/// Runs a scenario; answers the world at the end and what went wrong.
fn run(s: &Scenario, crashes: bool, ordered: bool) -> Result<World, String> {
    let mut w = World::new(config(ordered), START);
    let (flaky, all) = apps(ordered);
    for app in all {
        let outages = s.outages.clone();
        let down = move |now: i64| outages.iter().find(|(from, len, _)| now >= START + from && now < START + from + len).map(|o| o.2);
        let scenario = s.clone();
        let goes_down = *app == flaky;
        w.app(app, move |r| {
            if r.destination == "push" {
                // Every request signed, its webhook-id the event's, whichever attempt it is.
                let header = |name: &str| r.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str());
                let key = sign::key_from_secret(SECRET).unwrap();
                let at: i64 = header("webhook-timestamp").unwrap().parse().unwrap();
                assert!(sign::verify(&key, r.webhook_id, at, r.body, header("webhook-signature").unwrap()), "a bad signature");
            }
            if refused(&scenario, r.destination, r.webhook_id) {
                return Some(refusal(r.destination));
            }
            match down(r.now).filter(|_| goes_down) {
                Some(true) => None,
                Some(false) => Some(503),
                None => Some(200),
            }
        });
    }
    if crashes {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d ^ s.webhooks.len() as u64;
        let per_mille = u64::from(s.crash_per_mille);
        w.crash = Box::new(move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % 1000 < per_mille
        });
    }
    let mut last = String::new();
    for (n, hook) in s.webhooks.iter().enumerate() {
        let until = w.now + hook.after_ms;
        w.run_until(until);
        w.invariants()?;
        let body = if hook.repeat && !last.is_empty() { last.clone() } else { event(n, hook) };
        // Drift retries until it gets a 200.
        while w.webhook(&body) != 200 {}
        last = body;
        w.invariants()?;
    }
    let end_of_outages = s.outages.iter().map(|(from, len, _)| START + from + len).max().unwrap_or(START);
    // Once the app is back, its backlog only shrinks.
    let mut held = i64::MAX;
    let mut t = w.now.max(end_of_outages) + 60_000;
    w.run_until(t);
    let end = t + 3_600_000;
    while t < end {
        t += 30_000;
        w.run_until(t);
        w.invariants()?;
        let now_held = held_count(&mut w, flaky);
        if now_held > held {
            return Err(format!("the backlog grew from {held} to {now_held} after the app came back"));
        }
        held = now_held;
    }
    if held_count(&mut w, flaky) != 0 {
        return Err("the backlog did not drain".into());
    }
    // Long enough for every retry schedule to end, then every retention.
    w.run_until(w.now + 30 * 3_600_000);
    w.invariants()?;
    Ok(w)
}

fn held_count(w: &mut World, name: &str) -> i64 {
    if !w.logs.contains_key(name) {
        return 0;
    }
    let s = w.stats(name);
    s.get("counts").and_then(|c| c.get("held")).and_then(|v| v.as_integer()).unwrap().parse().unwrap()
}

/// What every app must have got: accepted pairs it does not refuse.
fn check_delivered(w: &World, s: &Scenario, exactly_once: bool) -> Result<(), String> {
    let accepted: BTreeSet<(String, String)> = w.accepted.iter().cloned().collect();
    let mut received: BTreeMap<(String, String), usize> = BTreeMap::new();
    let mut bodies: BTreeMap<(&str, &str), &str> = BTreeMap::new();
    for r in &w.received {
        *received.entry((r.webhook_id.clone(), r.destination.clone())).or_default() += 1;
        let body = bodies.entry((r.webhook_id.as_str(), r.destination.as_str())).or_insert(r.body.as_str());
        if *body != r.body {
            return Err(format!("{} reached {} with another body: {body} then {}", r.webhook_id, r.destination, r.body));
        }
    }
    for pair in received.keys().filter(|(_, d)| !d.starts_with('@')) {
        if !accepted.contains(pair) {
            return Err(format!("{pair:?} was received but never accepted"));
        }
    }
    for (event, destination) in &accepted {
        let n = received.get(&(event.clone(), destination.clone())).copied().unwrap_or(0);
        if refused(s, destination, event) {
            if n != 0 {
                return Err(format!("{event} reached {destination}, which refuses it"));
            }
            let says = format!("the app answered {}", refusal(destination));
            match dead_letter(w, event, destination) {
                Some(reason) if reason.contains(&says) || (!exactly_once && reason.contains("never reported back")) => {}
                other => return Err(format!("{event}, refused by {destination}, is not a dead letter that says so: {other:?}")),
            }
        } else if n == 0 && !exactly_once && dead_letter(w, event, destination).is_some_and(|reason| reason.contains("never reported back")) {
            // Its answers kept being lost: a dead letter, with that reason.
        } else if n == 0 {
            let row = w.logs.get(destination).map(|db| {
                db.conn
                    .query_row(
                        "SELECT status, attempts, wake_at, history, reason FROM deliveries WHERE event = ?",
                        [event],
                        |r| {
                            Ok(format!(
                                "{:?} a{:?} wake {:?} {:?} {:?}",
                                r.get::<_, String>(0)?,
                                r.get::<_, i64>(1)?,
                                r.get::<_, Option<i64>>(2)?,
                                r.get::<_, Option<String>>(3)?,
                                r.get::<_, Option<String>>(4)?
                            ))
                        },
                    )
                    .unwrap_or_else(|e| format!("no row ({e})"))
            });
            let lines: Vec<&String> = w.lines.iter().filter(|l| l.contains(event.as_str())).collect();
            return Err(format!("{event} never reached {destination} (lost): {row:?}; {} crashes; {lines:?}", w.crashes));
        } else if exactly_once && n != 1 {
            return Err(format!("{event} reached {destination} {n} times without a crash"));
        }
    }
    Ok(())
}

/// Alerts: every trip and every recovery an app's log wrote a line for
/// reached the alert target as an alert of that kind (coalesced, so at
/// least one per kind); each alert under one id, once without crashes; none
/// about the alert target itself.
fn check_alerts(w: &World, exactly_once: bool) -> Result<(), String> {
    let mut ids: BTreeMap<&str, usize> = BTreeMap::new();
    for r in w.received.iter().filter(|r| r.destination == "@ops") {
        *ids.entry(r.webhook_id.as_str()).or_default() += 1;
        if r.body.contains(r#""destination":"@"#) {
            return Err(format!("an alert about an alert target: {}", r.body));
        }
    }
    if exactly_once {
        if let Some((id, n)) = ids.iter().find(|(_, n)| **n > 1) {
            return Err(format!("alert {id} arrived {n} times without a crash"));
        }
    }
    let alerts: Vec<String> = w.lines.iter().filter(|l| l.contains(r#""kind":"circuit""#)).cloned().collect();
    for (state, kind) in [("tripped", "tripped"), ("active", "recovered")] {
        let happened = alerts.iter().any(|l| l.contains(&format!(r#""state":"{state}""#)) && !l.contains(r#""destination":"@"#));
        let told = w.sent_alerts.iter().any(|k| k == kind);
        if happened && !told {
            return Err(format!("an app became {state} but no {kind} alert reached the target; sent {:?}", w.sent_alerts));
        }
    }
    Ok(())
}

/// Why a delivery is a dead letter, if it is one (its row, kept longer than
/// the scenario runs: a line may be lost with a crash).
fn dead_letter(w: &World, event: &str, destination: &str) -> Option<String> {
    w.logs.get(destination)?.conn.query_row(
        "SELECT reason FROM deliveries WHERE event = ? AND status IN ('failed', 'gone') ORDER BY accepted_at DESC LIMIT 1",
        [event],
        |r| r.get::<_, Option<String>>(0),
    ).ok().flatten()
}

/// Lets every dead letter's retention end.
fn expire(w: &mut World) -> Result<(), String> {
    w.run_until(w.now + 3 * 86_400_000);
    w.invariants()
}

fn check_nothing_left(w: &World) -> Result<(), String> {
    for (name, db) in &w.logs {
        let rows = db.count("SELECT COUNT(*) FROM deliveries");
        let sides = db.count("SELECT (SELECT COUNT(*) FROM waits) + (SELECT COUNT(*) FROM held) + (SELECT COUNT(*) FROM lines) + (SELECT COUNT(*) FROM heads)");
        // What is left is the metrics (48 hours by the minute, 30 days by the
        // hour; some minutes may have gone already), and the one alarm that
        // forgets them.
        let metrics: Option<i64> = db
            .conn
            .query_row("SELECT (MIN(start + CASE span WHEN 60000 THEN 172800000 ELSE 2592000000 END) + 599999) / 600000 * 600000 FROM metrics WHERE span > 0", [], |r| r.get(0))
            .unwrap();
        if rows > 0 || sides > 0 || db.alarm.get() != metrics {
            return Err(format!("log {name}: {rows} rows and {sides} side rows left, alarm {:?} (metrics end {metrics:?})", db.alarm.get()));
        }
    }
    if w.pending_reports() > 0 {
        return Err(format!("{} answers never reported", w.pending_reports()));
    }
    Ok(())
}

/// For the app that takes conversations in order: per conversation, its
/// 2xx receipts in the order the log accepted them, and no two requests of
/// one conversation at once.
fn check_order(w: &World) -> Result<(), String> {
    let order: BTreeMap<&str, usize> = w.accepted.iter().filter(|(_, d)| d == "ordered").enumerate().map(|(i, (e, _))| (e.as_str(), i)).collect();
    let conversation = |body: &str| -> String {
        let v = drift_bridge::json::parse(body, &drift_bridge::Limits::default()).unwrap();
        v.get("data").and_then(|d| d.get("conversationId")).map(|c| c.to_json()).unwrap_or_default()
    };
    let mut last: BTreeMap<String, (usize, &str)> = BTreeMap::new();
    for r in w.received.iter().filter(|r| r.destination == "ordered") {
        let at = order[r.webhook_id.as_str()];
        let c = conversation(&r.body);
        if let Some((before, id)) = last.get(&c) {
            if at < *before {
                return Err(format!("conversation {c}: {} arrived after {id}, accepted later", r.webhook_id));
            }
        }
        last.insert(c, (at, r.webhook_id.as_str()));
    }
    let mut requests: Vec<(String, i64, i64, &str)> =
        w.requests.iter().filter(|r| r.destination == "ordered").map(|r| (conversation(&r.body), r.at, r.until, r.webhook_id.as_str())).collect();
    requests.sort();
    for pair in requests.windows(2) {
        if pair[0].0 == pair[1].0 && pair[1].1 < pair[0].2 {
            return Err(format!("conversation {}: {} went out at {} while {} was out until {}", pair[0].0, pair[1].3, pair[1].1, pair[0].3, pair[0].2));
        }
    }
    Ok(())
}

/// Cases per property: 48, or `PROPTEST_CASES` for a longer search.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn without_crashes_every_accepted_event_arrives_once(s in scenario()) {
        let mut w = run(&s, false, false).map_err(TestCaseError::fail)?;
        check_delivered(&w, &s, true).map_err(TestCaseError::fail)?;
        check_alerts(&w, true).map_err(TestCaseError::fail)?;
        // Refused events ended as dead letters, and every row's lifetime ended.
        expire(&mut w).map_err(TestCaseError::fail)?;
        check_nothing_left(&w).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn with_crashes_between_any_two_actions_nothing_accepted_is_lost(s in scenario(), crash_per_mille in 1u32..80) {
        let s = Scenario { crash_per_mille, ..s };
        let mut w = run(&s, true, false).map_err(TestCaseError::fail)?;
        check_delivered(&w, &s, false).map_err(TestCaseError::fail)?;
        check_alerts(&w, false).map_err(TestCaseError::fail)?;
        expire(&mut w).map_err(TestCaseError::fail)?;
        check_nothing_left(&w).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn an_ordered_app_gets_each_conversation_in_order_one_at_a_time(s in scenario(), crashes in any::<bool>(), crash_per_mille in 1u32..60) {
        let s = Scenario { crash_per_mille, ..s };
        let mut w = run(&s, crashes, true).map_err(TestCaseError::fail)?;
        check_order(&w).map_err(TestCaseError::fail)?;
        check_delivered(&w, &s, !crashes).map_err(TestCaseError::fail)?;
        expire(&mut w).map_err(TestCaseError::fail)?;
        check_nothing_left(&w).map_err(TestCaseError::fail)?;
    }
}

/// Issue 24's first scenario, natively: an app that refuses five unknown
/// conversations and accepts the rest gets the rest at once.
#[test]
fn a_few_refused_events_never_hold_the_others() {
    let mut w = World::new(
        support::config(&[
            ("DESTINATIONS", r#"[{"name":"app","url":"https://app.example/hook","types":["conversation_push"]}]"#),
            ("CIRCUIT_FAILURES", "3"),
            ("CIRCUIT_PROBE_SECONDS", "1"),
            ("DRAIN_PER_SECOND", "2"),
            ("RETRY_BASE_SECONDS", "10"),
        ]),
        START,
    );
    w.app("app", |r| if r.body.contains("\"conversationId\":9") { Some(404) } else { Some(200) });
    for i in 0..5 {
        w.webhook(&format!(r#"{{"orgId":1,"type":"conversation_push","data":{{"lastUpdated":{i},"conversationId":9{i}}}}}"#));
        w.run_until(w.now + 100);
    }
    let first_known = w.now;
    for i in 0..20 {
        w.webhook(&format!(r#"{{"orgId":1,"type":"conversation_push","data":{{"lastUpdated":{i},"conversationId":{}}}}}"#, 100 + i));
        w.run_until(w.now + 100);
    }
    w.run_until(first_known + 60_000);
    let known: Vec<_> = w.received.iter().filter(|r| r.at - first_known <= 60_000).collect();
    assert_eq!(known.len(), 20, "20 of 20 within 60 s");
    assert!(known.iter().all(|r| r.at - first_known < 5_000), "without delay");
    w.invariants().unwrap();
}

/// Issue 24's second scenario, natively: after a 40-event outage, with
/// events arriving at three times DRAIN_PER_SECOND, the backlog drains
/// before the stream ends and the last events arrive within 5 s.
#[test]
fn the_catch_up_ends_while_events_keep_coming() {
    let mut w = World::new(
        support::config(&[
            ("DESTINATIONS", r#"[{"name":"app","url":"https://app.example/hook","types":["conversation_push"]}]"#),
            ("CIRCUIT_FAILURES", "3"),
            ("CIRCUIT_PROBE_SECONDS", "1"),
            ("DRAIN_PER_SECOND", "2"),
            ("RETRY_BASE_SECONDS", "1"),
        ]),
        START,
    );
    let back = std::rc::Rc::new(std::cell::Cell::new(false));
    let up = back.clone();
    w.app("app", move |_| if up.get() { Some(200) } else { Some(503) });
    let mut sent_at: Vec<(String, i64)> = Vec::new();
    let mut n = 0;
    let mut send = |w: &mut World, n: &mut i64| {
        let status = w.webhook(&format!(r#"{{"orgId":1,"type":"conversation_push","data":{{"lastUpdated":{n},"conversationId":{n}}}}}"#));
        assert_eq!(status, 200);
        sent_at.push((w.accepted.last().unwrap().0.clone(), w.now));
        *n += 1;
    };
    for _ in 0..40 {
        send(&mut w, &mut n);
        w.run_until(w.now + 250);
    }
    back.set(true);
    // 6 a second for 60 s.
    for _ in 0..360 {
        send(&mut w, &mut n);
        w.run_until(w.now + 166);
    }
    let stream_end = w.now;
    w.run_until(w.now + 10_000);
    let arrived: BTreeMap<&String, i64> = w.received.iter().map(|r| (&r.webhook_id, r.at)).collect();
    assert_eq!(arrived.len(), 400, "every event arrived");
    let last_backlog = sent_at.iter().take(40).map(|(id, _)| arrived[id]).max().unwrap();
    assert!(last_backlog < stream_end, "the backlog drained before the stream ended");
    let lag = sent_at.iter().skip(380).map(|(id, at)| arrived[id] - at).max().unwrap();
    assert!(lag <= 5_000, "the last events arrive within 5 s of their 200: {lag} ms");
    w.invariants().unwrap();
}
