//! The delivery system as a whole, natively: random webhooks (and repeats
//! of them) through outboxes, delivery logs, the queue and the consumer, to
//! apps that go down and come back and refuse some events, with the process
//! crashing between any two steps and the queue losing messages. Checked:
//!
//! - nothing accepted is lost: every event an outbox answered 200 for
//!   reaches every app subscribed to it, always with its event id as
//!   `webhook-id`, or ends as a dead letter that says why (the app refused
//!   it for all its attempts; with crashes, also: its consumer kept
//!   stopping while sending it); without crashes, each arrives exactly once;
//! - every object with rows has an alarm, no later than its first row's
//!   time, and a delivery log's kept counts are what its rows say;
//! - once the app is back the backlog only shrinks, and no delivery is held
//!   longer than its bound;
//! - rows expire on time: in the end, nothing is left and no alarm is set;
//! - the operator hears of it: every trip and every recovery of an app
//!   reaches the alert target, each alert under one id (once, without
//!   crashes), and no alert is about an alert target.

mod support;

use std::collections::{BTreeMap, BTreeSet};

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
    /// When app "push" is down (ms after the start, how long), and whether
    /// it times out (else it answers 503).
    outages: Vec<(i64, i64, bool)>,
    /// App "all" refuses (404) events whose id ends with this hex digit.
    refuses: Option<u8>,
    crash_per_mille: u32,
    lossy: bool,
}

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        prop::collection::vec(webhook(), 1..40),
        prop::collection::vec((0i64..120_000, 1_000i64..300_000, any::<bool>()), 0..3),
        prop::option::of(0u8..16),
    )
        .prop_map(|(webhooks, outages, refuses)| Scenario { webhooks, outages, refuses, crash_per_mille: 0, lossy: false })
}

fn config() -> drift_bridge::config::Config {
    support::config(&[
        (
            "DESTINATIONS",
            r#"[{"name":"push","url":"https://push.example/hook","types":["conversation_push"]},
                {"name":"all","url":"https://all.example/hook","types":["*"]}]"#,
        ),
        ("RETRY_BASE_SECONDS", "1"),
        ("RECOVERY_GRACE_SECONDS", "5"),
        ("DELIVERY_TIMEOUT_MS", "1000"),
        ("CIRCUIT_FAILURES", "3"),
        ("CIRCUIT_PROBE_SECONDS", "1"),
        ("DRAIN_PER_SECOND", "5"),
        ("DEDUP_WINDOW_SECONDS", "3600"),
        ("DELIVERY_LOG_SECONDS", "7200"),
        ("DEAD_LETTER_RETENTION_SECONDS", "7200"),
        ("HOLD_RETENTION_SECONDS", "86400"),
        ("ALERTS", r#"[{"name":"ops","url":"https://ops.example/alerts"}]"#),
        ("ALERT_COALESCE_SECONDS", "60"),
        ("PUBLIC_URL", "https://bridge.example"),
    ])
}

fn event(n: usize, w: &Webhook) -> String {
    let kind = ["conversation_inactive", "conversation_manual_push", "conversation_push"][usize::from(w.kind)];
    format!(r#"{{"orgId":1,"type":"{kind}","data":{{"lastUpdated":{},"conversationId":{}}}}}"#, 1_591_813_767_000 + n as i64, w.conversation)
}

/// Runs a scenario; answers the world at the end and what went wrong.
fn run(s: &Scenario, crashes: bool) -> Result<World, String> {
    let mut w = World::new(config(), START);
    let outages = s.outages.clone();
    let down = move |now: i64| outages.iter().find(|(from, len, _)| now >= START + from && now < START + from + len).map(|o| o.2);
    w.app("push", move |r| match down(r.now) {
        Some(true) => None,
        Some(false) => Some(503),
        None => Some(200),
    });
    let refuses = s.refuses;
    w.app("all", move |r| {
        let last = u8::from_str_radix(&r.webhook_id[15..], 16).unwrap();
        if Some(last) == refuses {
            Some(404)
        } else {
            Some(200)
        }
    });
    if crashes {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d ^ s.webhooks.len() as u64;
        let per_mille = u64::from(s.crash_per_mille);
        w.crash = Box::new(move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % 1000 < per_mille
        });
        w.lossy_queue = s.lossy;
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
        let now_held = held_count(&mut w, "push");
        if now_held > held {
            return Err(format!("the backlog grew from {held} to {now_held} after the app came back"));
        }
        held = now_held;
    }
    if held_count(&mut w, "push") != 0 {
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
    for r in &w.received {
        *received.entry((r.webhook_id.clone(), r.destination.clone())).or_default() += 1;
    }
    for pair in received.keys().filter(|(_, d)| !d.starts_with('@')) {
        if !accepted.contains(pair) {
            return Err(format!("{pair:?} was received but never accepted"));
        }
    }
    for (event, destination) in &accepted {
        let refused = destination == "all" && s.refuses.is_some_and(|d| u8::from_str_radix(&event[15..], 16).unwrap() == d);
        let n = received.get(&(event.clone(), destination.clone())).copied().unwrap_or(0);
        if refused {
            if n != 0 {
                return Err(format!("{event} reached {destination}, which refuses it"));
            }
            match dead_letter(w, event, destination) {
                Some(reason) if reason.contains("the app answered 404") || !exactly_once => {}
                other => return Err(format!("{event}, refused by {destination}, is not a dead letter that says so: {other:?}")),
            }
        } else if n == 0 && !exactly_once && dead_letter(w, event, destination).is_some_and(|reason| {
            reason.contains("never reported back (the consumer stopped while sending it)") || reason.contains("the queue gave up on it")
        }) {
            // Its consumer kept crashing: a dead letter, with that reason.
        } else if n == 0 {
            let row = w.logs.get(destination).map(|db| {
                db.conn
                    .query_row(
                        "SELECT status, generation, attempts, wake_at, lease_until, history, reason FROM deliveries WHERE event_id = ?",
                        [event],
                        |r| Ok(format!("{:?} g{:?} a{:?} wake {:?} lease {:?} {:?} {:?}", r.get::<_, String>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?, r.get::<_, Option<i64>>(3)?, r.get::<_, Option<i64>>(4)?, r.get::<_, Option<String>>(5)?, r.get::<_, Option<String>>(6)?)),
                    )
                    .unwrap_or_else(|e| format!("no row ({e})"))
            });
            let outboxes: Vec<String> = w.outboxes.iter().map(|(k, db)| format!("{k}: {} rows, alarm {:?}", db.count("SELECT COUNT(*) FROM outgoing"), db.alarm.get())).collect();
            let dropped: Vec<&String> = w.lines.iter().filter(|l| l.contains("dropped") || l.contains("handoff") || l.contains(event.as_str())).collect();
            return Err(format!("{event} never reached {destination} (lost): {row:?}; {} crashes; outboxes {outboxes:?}; {dropped:?}", w.crashes));
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

/// The reason of the dead-letter line of a delivery, if it became one.
fn dead_letter(w: &World, event: &str, destination: &str) -> Option<String> {
    let id = format!("{event}.{destination}");
    w.lines
        .iter()
        .filter(|l| l.contains(r#""kind":"dead-letter""#) && l.contains(&format!(r#""delivery":"{id}""#)))
        .filter_map(|l| {
            let v = drift_bridge::json::parse(l, &drift_bridge::Limits::default()).ok()?;
            v.get("reason").and_then(|r| r.as_str()).map(|r| r.text().into_owned())
        })
        .next_back()
}

fn check_nothing_left(w: &World) -> Result<(), String> {
    for (name, db) in &w.logs {
        let rows = db.count("SELECT COUNT(*) FROM deliveries");
        // What is left is the metrics (48 hours by the minute, 30 days by the
        // hour), and the one alarm that forgets them.
        let metrics: Option<i64> = db
            .conn
            .query_row("SELECT MIN(start + CASE span WHEN 60000 THEN 172800000 ELSE 2592000000 END) FROM metrics WHERE span > 0", [], |r| r.get(0))
            .unwrap();
        if rows > 0 || db.alarm.get() != metrics {
            return Err(format!("log {name}: {rows} rows left, alarm {:?} (metrics end {metrics:?})", db.alarm.get()));
        }
    }
    for (scope, db) in &w.outboxes {
        if db.count("SELECT COUNT(*) FROM outgoing") > 0 || db.alarm.get().is_some() {
            return Err(format!("outbox {scope} still holds something"));
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn without_crashes_every_accepted_event_arrives_once(s in scenario()) {
        let w = run(&s, false).map_err(TestCaseError::fail)?;
        check_delivered(&w, &s, true).map_err(TestCaseError::fail)?;
        check_alerts(&w, true).map_err(TestCaseError::fail)?;
        // Refused events ended as dead letters, and every row's lifetime ended.
        check_nothing_left(&w).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn with_crashes_between_any_two_steps_and_a_lossy_queue_nothing_accepted_is_lost(
        s in scenario(),
        crash_per_mille in 1u32..80,
        lossy in any::<bool>(),
    ) {
        let s = Scenario { crash_per_mille, lossy, ..s };
        let w = run(&s, true).map_err(TestCaseError::fail)?;
        check_delivered(&w, &s, false).map_err(TestCaseError::fail)?;
        check_alerts(&w, false).map_err(TestCaseError::fail)?;
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
}
