//! Alerts and a rate per app, natively, through the whole delivery system
//! (tests/support/world.rs: the delivery logs, the registry, apps, a clock):
//! what reaches the alert target, when, and how often; and the spacing an
//! app's rate gives its deliveries, the catch-up after a pause included.

mod support;

use std::cell::Cell;
use std::rc::Rc;

use drift_bridge::json::{self, Limits, Value};
use support::world::World;

const START: i64 = 1_700_000_000_000;

fn world(app: &str, vars: &[(&str, &str)]) -> World {
    let mut all = vec![
        ("DESTINATIONS", app),
        ("ALERTS", r#"[{"name":"ops","url":"https://ops.example/alerts"},{"name":"deads","url":"https://deads.example","kinds":["dead-letter"]}]"#),
        ("PUBLIC_URL", "https://bridge.example"),
        ("CIRCUIT_FAILURES", "3"),
        ("CIRCUIT_PROBE_SECONDS", "1"),
        ("RETRY_BASE_SECONDS", "1"),
    ];
    all.extend_from_slice(vars);
    World::new(support::config(&all), START)
}

const APP: &str = r#"[{"name":"crm","url":"https://crm.example/hook","types":["conversation_push"]}]"#;

fn push(w: &mut World, n: i64) {
    assert_eq!(w.webhook(&format!(r#"{{"orgId":1,"type":"conversation_push","data":{{"lastUpdated":{n},"conversationId":{n}}}}}"#)), 200);
}

/// The alerts the target `@name` took, as JSON values' (kind, count).
fn alerts(w: &World, target: &str) -> Vec<(String, i64)> {
    w.received
        .iter()
        .filter(|r| r.destination == target)
        .map(|r| {
            let v = json::parse(&r.body, &Limits::default()).unwrap();
            let kind = v.get("kind").and_then(Value::as_str).unwrap().text().into_owned();
            let count = v.get("count").and_then(Value::as_integer).unwrap().parse().unwrap();
            (kind, count)
        })
        .collect()
}

#[test]
fn an_outage_of_an_hour_sends_one_tripped_and_one_recovered_alert() {
    let mut w = world(APP, &[]);
    let up = Rc::new(Cell::new(false));
    let app_up = up.clone();
    w.app("crm", move |_| if app_up.get() { Some(200) } else { None });
    // An event every minute for an hour while the app is down: probes fail
    // all along, with the probe's wait doubling up to 15 minutes.
    for n in 0..60 {
        push(&mut w, n);
        w.run_until(w.now + 60_000);
    }
    up.set(true);
    w.run_until(w.now + 20 * 60_000);
    assert_eq!(alerts(&w, "@ops"), [("tripped".to_owned(), 1), ("recovered".to_owned(), 1)]);
    assert!(alerts(&w, "@deads").is_empty(), "deads takes dead letters only, and there are none");
    assert_eq!(w.received.iter().filter(|r| r.destination == "crm").count(), 60, "every event, once the app is back");
    w.invariants().unwrap();
}

#[test]
fn an_app_that_flaps_sends_one_alert_per_kind_per_window_then_one_that_counts_the_rest() {
    let mut w = world(APP, &[("ALERT_COALESCE_SECONDS", "300")]);
    let up = Rc::new(Cell::new(true));
    let app_up = up.clone();
    w.app("crm", move |_| if app_up.get() { Some(200) } else { Some(503) });
    // Down and up again three times within two minutes.
    let mut n = 0;
    for _ in 0..3 {
        up.set(false);
        for _ in 0..4 {
            push(&mut w, n);
            n += 1;
            w.run_until(w.now + 1_000);
        }
        up.set(true);
        w.run_until(w.now + 20_000);
    }
    assert_eq!(alerts(&w, "@ops"), [("tripped".to_owned(), 1), ("recovered".to_owned(), 1)], "the first of each at once");
    w.run_until(w.now + 300_000);
    assert_eq!(
        alerts(&w, "@ops"),
        [("tripped".to_owned(), 1), ("recovered".to_owned(), 1), ("tripped".to_owned(), 2), ("recovered".to_owned(), 2)],
        "the other two of each as one, when the window is over"
    );
    w.invariants().unwrap();
}

#[test]
fn dead_letters_and_a_nearly_full_log_alert_the_targets_that_want_them() {
    let mut w = world(APP, &[("MAX_LOG_BYTES", "1000000")]);
    w.app("crm", |_| Some(410));
    push(&mut w, 1);
    w.run_until(w.now + 5_000);
    assert_eq!(alerts(&w, "@deads"), [("dead-letter".to_owned(), 1)]);
    assert_eq!(alerts(&w, "@ops"), [("dead-letter".to_owned(), 1)]);
    // Fill the log to 80 % of MAX_LOG_BYTES: one alert, not one per delivery.
    let mut pause = world(APP, &[("MAX_LOG_BYTES", "1000000")]);
    pause.log_op("crm", "/pause", r#"{"destination":"crm"}"#).unwrap();
    let big = "x".repeat(50_000);
    for n in 0..17 {
        assert_eq!(
            pause.webhook(&format!(r#"{{"orgId":1,"type":"conversation_push","data":{{"lastUpdated":{n},"conversationId":{n},"pad":"{big}"}}}}"#)),
            200
        );
        pause.run_until(pause.now + 1_000);
    }
    let kinds: Vec<String> = alerts(&pause, "@ops").into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["paused", "log-full"]);
    w.invariants().unwrap();
}

#[test]
fn a_rate_spaces_an_apps_deliveries_and_its_catch_up() {
    let app = r#"[{"name":"crm","url":"https://crm.example/hook","types":["conversation_push"],"ratePerSecond":4}]"#;
    let mut w = world(app, &[("DRAIN_PER_SECOND", "50")]);
    // A burst of 20 at once.
    for n in 0..20 {
        push(&mut w, n);
    }
    w.run_until(w.now + 30_000);
    // A pause, 20 more, and a resume: the catch-up keeps to the rate too.
    w.log_op("crm", "/pause", r#"{"destination":"crm"}"#).unwrap();
    for n in 20..40 {
        push(&mut w, n);
    }
    w.run_until(w.now + 2_000);
    w.log_op("crm", "/resume", r#"{"destination":"crm"}"#).unwrap();
    w.run_until(w.now + 30_000);
    let mut at: Vec<i64> = w.received.iter().filter(|r| r.destination == "crm").map(|r| r.at).collect();
    at.sort_unstable();
    assert_eq!(at.len(), 40, "every event");
    let most = at.iter().map(|t| at.iter().filter(|u| **u >= *t && **u < t + 1_000).count()).max().unwrap();
    assert!(most <= 4, "at most 4 in any second: {most}; {at:?}");
    assert!(at[19] - at[0] >= 4_500, "20 at 4 a second take at least 4.75 s: {} ms", at[19] - at[0]);
    w.invariants().unwrap();
}

/// The backlog as `/metrics` records it, carried forward from one record to
/// the next as the admin page draws it: at every minute of an outage and
/// its catch-up, what really waited then.
#[test]
fn the_backlog_carried_forward_is_what_waited_every_minute() {
    let mut w = world(APP, &[("CIRCUIT_PROBE_SECONDS", "60"), ("DRAIN_PER_SECOND", "1")]);
    let up = Rc::new(Cell::new(false));
    let app_up = up.clone();
    w.app("crm", move |_| if app_up.get() { Some(200) } else { Some(503) });
    let start = w.now - w.now.rem_euclid(60_000);
    let mut truth = Vec::new();
    for minute in 0..40 {
        w.run_until(start + minute * 60_000 + 1_000);
        if minute < 10 {
            push(&mut w, minute);
        }
        if minute == 25 {
            up.set(true);
        }
        w.run_until(start + (minute + 1) * 60_000 - 1);
        let c = w.stats("crm");
        let count = |k: &str| -> i64 { c.get("counts").and_then(|v| v.get(k)).and_then(Value::as_integer).unwrap().parse().unwrap() };
        truth.push(count("held") + count("pending"));
    }
    let (_, answer) = w.log_op("crm", "/metrics", &format!(r#"{{"since":{start},"until":{},"step":60000}}"#, start + 40 * 60_000)).unwrap();
    let v = json::parse(&answer, &Limits::INTERNAL).unwrap();
    let mut at = v.get("backlogBefore").and_then(Value::as_integer).unwrap().parse::<i64>().unwrap();
    let Some(Value::Array(records)) = v.get("backlog") else { panic!("{answer}") };
    let record = |m: i64| records.iter().find(|r| r.get("start").and_then(Value::as_integer) == Some((start + m * 60_000).to_string().as_str()));
    let mut drawn = Vec::new();
    for minute in 0..40 {
        if let Some(r) = record(minute) {
            at = r.get("last").and_then(Value::as_integer).unwrap().parse().unwrap();
        }
        drawn.push(at);
    }
    assert!(truth.iter().any(|n| *n >= 10), "an outage with a backlog: {truth:?}");
    assert_eq!(drawn, truth, "records: {answer}");
    w.invariants().unwrap();
}
