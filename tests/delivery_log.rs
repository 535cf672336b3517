//! The delivery log on real SQLite, one rule a test, through the simulated
//! runtime (tests/support/world.rs) that executes each step's actions as
//! the production entry does: what `/accept` takes in, drops and sends in
//! the same step; what the reports of the app's answers make of each
//! delivery; what the lease recovers; what the breaker holds, probes and
//! drains; what the alarm deletes; what the admin sees; a test delivery;
//! an app that takes conversations in order; and how a log of
//! drift-bridge 0.2 is taken over.

mod support;

use std::cell::Cell;
use std::rc::Rc;

use drift_bridge::delivery::effects::{Alarm, Effects, Ticket};
use drift_bridge::delivery::log::{Accept, Added, Input, NewDelivery, TestDelivery, MAX_FLIGHT, REPORT_WITHIN_MS};
use drift_bridge::delivery::request::Seen;
use drift_bridge::json::{self, Value};
use support::world::{Obj, World};
use support::{config, one_app};

const NOW: i64 = 1_700_000_000_000;
const APP: &str = "app";
/// A request's lease with the default settings: its deadline, the time to
/// report it, and RECOVERY_GRACE_SECONDS.
const LEASE_MS: i64 = 10_000 + REPORT_WITHIN_MS as i64 + 300_000;

fn delivery(event: usize, conversation: u64) -> NewDelivery {
    NewDelivery {
        event: format!("{event:016x}"),
        event_type: "conversation_push".into(),
        scope: format!("conversation:1:{conversation}"),
        received_at: NOW,
        org: Some("1".into()),
        body: format!(r#"{{"orgId":1,"type":"conversation_push","data":{{"conversationId":{conversation},"n":{event}}}}}"#),
    }
}

fn body(deliveries: Vec<NewDelivery>) -> String {
    Accept { key: APP.into(), deliveries }.encode()
}

fn events(range: std::ops::Range<usize>) -> String {
    body(range.map(|e| delivery(e, 7)).collect())
}

fn add(w: &mut World, range: std::ops::Range<usize>) -> Added {
    let (status, reply) = w.log_op(APP, "/accept", &events(range)).unwrap();
    assert_eq!(status, 200, "{reply}");
    Added::decode(&reply).unwrap()
}

fn stats(w: &mut World) -> (i64, i64, i64, i64) {
    let s = w.stats(APP);
    let counts = s.get("counts").unwrap();
    let n = |k: &str| counts.get(k).and_then(Value::as_integer).unwrap().parse::<i64>().unwrap();
    (n("pending"), n("held"), n("delivered"), n("failed"))
}

fn parse(text: String) -> Value<'static> {
    json::parse(Box::leak(text.into_boxed_str()), &drift_bridge::Limits::default()).unwrap()
}

fn health(w: &mut World) -> Value<'static> {
    let (_, text) = w.log_op(APP, "/health", r#"{"destination":"app"}"#).unwrap();
    parse(text)
}

fn get(w: &mut World, id: &str) -> Value<'static> {
    let (status, text) = w.log_op(APP, "/get", &format!(r#"{{"id":"{id}"}}"#)).unwrap();
    assert_eq!(status, 200, "{text}");
    parse(text)
}

fn text(v: &Value<'_>, k: &str) -> String {
    v.get(k).and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default()
}

fn int(v: &Value<'_>, k: &str) -> i64 {
    v.get(k).and_then(Value::as_integer).and_then(|n| n.parse().ok()).unwrap_or(-1)
}

/// The codes of a delivery's attempts, as `/get` lists them (-1: none).
fn codes(w: &mut World, id: &str) -> Vec<i64> {
    let one = get(w, id);
    let Some(Value::Array(log)) = one.get("attemptLog") else { panic!("no attemptLog") };
    log.iter().map(|a| int(a, "code")).collect()
}

fn listing(w: &mut World, query: &str) -> String {
    w.log_op(APP, "/list", query).unwrap().1
}

fn webhook_id(post: &drift_bridge::delivery::effects::Post) -> String {
    post.headers.iter().find(|(k, _)| *k == "webhook-id").map(|(_, v)| v.clone()).unwrap()
}

fn seen(ticket: &Ticket, status: Option<u16>) -> Seen {
    Seen { ticket: ticket.clone(), status, location: None, excerpt: String::new(), error: status.is_none().then(|| "no answer".into()), latency_ms: 30 }
}

/// The event numbers (the `n` of the body) the app took, in order.
fn taken(w: &World) -> Vec<i64> {
    w.received.iter().filter(|r| r.destination == APP).map(|r| i64::from_str_radix(&r.webhook_id, 16).unwrap()).collect()
}

fn world(vars: &[(&str, &str)]) -> World {
    World::new(one_app(vars), NOW)
}

#[test]
fn new_deliveries_are_stored_and_sent_in_the_step_that_takes_them_in_once() {
    let mut w = world(&[]);
    let fx: Effects = w.commit_only(APP, "/accept", &events(0..3));
    assert_eq!(Added::decode(&fx.reply.as_ref().unwrap().body).unwrap(), Added { added: 3, ..Added::default() });
    let ids: Vec<String> = fx.posts.iter().map(webhook_id).collect();
    assert_eq!(ids, ["0000000000000000", "0000000000000001", "0000000000000002"], "each with its event's id as webhook-id");
    assert!(fx.posts.iter().all(|p| matches!(p.ticket, Ticket::Attempt { attempt: 1, .. }) && p.delay_ms == 0 && p.url == "https://app.example/hook"));
    assert_eq!(fx.report_within_ms, REPORT_WITHIN_MS);
    assert_eq!(fx.alarm, Alarm::At(NOW + LEASE_MS), "a request that never reports back goes again after its lease");
    assert_eq!(stats(&mut w), (3, 0, 0, 0));
    // The same deliveries again (Drift sending the webhook twice): nothing
    // new, nothing sent.
    let fx = w.commit_only(APP, "/accept", &events(0..3));
    assert_eq!(Added::decode(&fx.reply.unwrap().body).unwrap(), Added { duplicates: 3, ..Added::default() });
    assert!(fx.posts.is_empty());
    w.invariants().unwrap();
}

#[test]
fn the_caller_replies_then_sends_then_reports_several_answers_in_one_step() {
    let mut w = world(&[]);
    assert_eq!(add(&mut w, 0..3).added, 3);
    assert_eq!(w.received.len(), 3, "sent as the step's actions, at once");
    assert_eq!(w.pending_reports(), 3, "their answers are held for a report");
    w.run_until(NOW + 1_000);
    assert_eq!(
        w.trace,
        [
            "log app /accept: alarm,reply,post,call",
            "registry /register: reply",
            "log app /called: none",
            "log app /sent: log,log,log",
        ],
        "the three answers in one report, within REPORT_WITHIN_MS"
    );
    assert_eq!(stats(&mut w), (0, 0, 3, 0));
    // An answer held when the next request comes goes with it.
    add(&mut w, 3..4);
    w.now += 100;
    add(&mut w, 4..5);
    assert_eq!(w.trace.last().unwrap(), "log app /sent+/accept: log,reply,post");
    w.run_until(w.now + 1_000);
    assert_eq!(stats(&mut w), (0, 0, 5, 0));
    w.invariants().unwrap();
}

#[test]
fn a_repeat_inside_the_window_is_dropped_and_after_it_sent_again_with_the_same_webhook_id() {
    let mut w = world(&[("DEDUP_WINDOW_SECONDS", "600")]);
    add(&mut w, 0..1);
    w.run_until(NOW + 1_000);
    w.now += 598_000;
    assert_eq!(add(&mut w, 0..1), Added { duplicates: 1, ..Added::default() });
    w.now += 2_000;
    assert_eq!(add(&mut w, 0..1), Added { added: 1, ..Added::default() });
    w.run_until(w.now + 1_000);
    assert_eq!(w.received.len(), 2);
    assert_eq!(w.received[0].webhook_id, w.received[1].webhook_id, "the same event, the same webhook-id");
    let again = get(&mut w, "0000000000000000.app.r1");
    assert_eq!(text(&again, "status"), "delivered");
    assert!(text(&again, "reason").starts_with("sent again: the event came in again after the deduplication window"), "{}", again.to_json());
    assert_eq!(text(&get(&mut w, "0000000000000000.app"), "replayedAs"), "0000000000000000.app.r1");
    // The repeat is now the latest: inside its window, dropped again.
    assert_eq!(add(&mut w, 0..1).duplicates, 1);
    w.invariants().unwrap();
}

#[test]
fn a_request_that_never_reports_back_goes_again_after_its_lease_and_a_late_answer_still_counts() {
    let mut w = world(&[("RECOVERY_GRACE_SECONDS", "1")]);
    let lease = 10_000 + i64::from(REPORT_WITHIN_MS) + 1_000;
    w.app(APP, |_| Some(503));
    // The process stops right after the step: its request never went out,
    // or went and its answer was lost; the log cannot tell.
    let fx = w.commit_only(APP, "/accept", &events(0..1));
    assert_eq!(fx.alarm, Alarm::At(NOW + lease));
    w.now += lease - 1;
    w.alarms();
    assert!(w.received.is_empty() && w.requests.is_empty(), "not sent again while leased");
    w.now += 1;
    w.alarms();
    assert_eq!(w.requests.len(), 1, "sent again once the lease is over");
    assert!(matches!(w.requests[0].ticket, Ticket::Attempt { attempt: 2, .. }), "{:?}", w.requests[0].ticket);
    assert!(w.lines.iter().any(|l| l.contains("1 requests never reported back within their lease")), "{:?}", w.lines);
    w.run_until(w.now + 1_000);
    assert_eq!(stats(&mut w), (1, 0, 0, 0), "retrying");
    // The first request did reach the app, which took it: its answer, late,
    // still counts, and what was to go again does not.
    w.report(APP, &[seen(&fx.posts[0].ticket, Some(200))]);
    assert_eq!(stats(&mut w), (0, 0, 1, 0));
    assert_eq!(codes(&mut w, "0000000000000000.app"), [503, 200]);
    w.invariants().unwrap();
    w.run_until(w.now + 600_000);
    assert_eq!(w.requests.len(), 1, "nothing goes again");
}

#[test]
fn a_failure_is_retried_on_the_schedule_and_a_refusal_does_not_count_against_the_app() {
    let mut w = world(&[("RETRY_BASE_SECONDS", "10")]);
    let answers = Rc::new(Cell::new(0));
    let n = answers.clone();
    w.app(APP, move |_| {
        n.set(n.get() + 1);
        Some(if n.get() == 1 { 500 } else { 404 })
    });
    add(&mut w, 0..1);
    w.run_until(NOW + 1_000);
    assert_eq!(stats(&mut w), (1, 0, 0, 0));
    let alarm = w.logs[APP].alarm.get().unwrap();
    let wait = alarm - (NOW + LATENCY + i64::from(REPORT_WITHIN_MS));
    assert!((5_000..=10_000).contains(&wait), "the first retry waits 10 s, jittered: {wait}");
    w.run_until(alarm);
    assert_eq!(answers.get(), 2);
    w.run_until(alarm + 1_000);
    let h = health(&mut w);
    assert_eq!((text(&h, "state"), int(&h, "consecutiveFailures")), ("active".into(), 0), "a 404 says the app is up");
    assert_eq!(codes(&mut w, "0000000000000000.app"), [500, 404]);
    w.invariants().unwrap();
}

const LATENCY: i64 = support::world::LATENCY_MS;

#[test]
fn twelve_attempts_then_a_dead_letter() {
    let mut w = world(&[("RETRY_BASE_SECONDS", "0")]);
    w.app(APP, |_| Some(422));
    add(&mut w, 0..1);
    w.run_until(NOW + 60_000);
    assert_eq!(w.requests.len(), 12);
    assert_eq!(stats(&mut w), (0, 0, 0, 1));
    assert!(listing(&mut w, r#"{"status":["failed"]}"#).contains("gave up after 12 attempts; last: the app answered 422"));
    assert!(w.lines.iter().any(|l| l.contains(r#""kind":"dead-letter""#) && l.contains(r#""attempts":12"#)));
    w.invariants().unwrap();
}

#[test]
fn a_delivery_whose_answers_never_come_back_ends_at_the_attempt_ceiling() {
    let mut w = world(&[("RECOVERY_GRACE_SECONDS", "1")]);
    // The app takes every request, and the process stops before each report.
    let doom = Rc::new(Cell::new(false));
    let (set, take) = (doom.clone(), doom.clone());
    w.app(APP, move |_| {
        set.set(true);
        Some(200)
    });
    w.crash = Box::new(move || take.replace(false));
    add(&mut w, 0..1);
    w.run_until(NOW + 13 * 12_000);
    assert_eq!(w.requests.len(), 12, "twelve attempts, each leased");
    assert_eq!(stats(&mut w), (0, 0, 0, 1));
    assert!(listing(&mut w, r#"{"status":["failed"]}"#).contains("gave up after 12 attempts; the last never reported back"));
    w.invariants().unwrap();
}

fn trip(w: &mut World) {
    w.app(APP, |_| Some(503));
    add(w, 0..6);
    w.run_until(w.now + 1_000);
    let h = health(w);
    assert_eq!(text(&h, "state"), "tripped", "{}", h.to_json());
}

#[test]
fn five_failures_across_deliveries_trip_the_breaker_and_hold_everything() {
    let mut w = world(&[]);
    trip(&mut w);
    // The fifth failure tripped it: that delivery and the sixth are held
    // (no more attempts used); the first four wait for their retry.
    assert_eq!(stats(&mut w), (4, 2, 0, 0));
    assert!(w.lines.iter().any(|l| l.contains(r#""kind":"circuit""#) && l.contains(r#""state":"tripped""#)));
    assert_eq!(add(&mut w, 50..51).added, 1);
    assert_eq!(w.requests.len(), 6, "new deliveries are held, not sent");
    // Their retries come due and are held without an attempt.
    w.run_until(NOW + 59_000);
    assert_eq!(stats(&mut w), (0, 7, 0, 0));
    assert_eq!(w.requests.len(), 6);
    // Then one probe a minute.
    w.run_until(NOW + 61_000);
    assert_eq!(w.requests.len(), 7, "one probe");
    w.invariants().unwrap();
}

#[test]
fn failed_probes_try_another_delivery_each_time_and_any_answer_brings_the_app_back() {
    let mut w = world(&[("CIRCUIT_PROBE_SECONDS", "1"), ("RETRY_BASE_SECONDS", "0")]);
    trip(&mut w);
    w.run_until(w.now + 200);
    let tripped = w.requests.len();
    w.run_until(w.now + 40_000);
    let probed: Vec<String> = w.requests[tripped..].iter().map(|r| r.webhook_id.clone()).collect();
    assert!(probed.len() >= 4, "probes at 1, 2, 4, 8 … s: {probed:?}");
    let distinct: std::collections::BTreeSet<&String> = probed.iter().take(4).collect();
    assert_eq!(distinct.len(), 4, "a failed probe does not pin its delivery: {probed:?}");
    // The next probe is refused (404) by the app: it is up.
    w.app(APP, |_| Some(404));
    w.run_until(w.now + 40_000);
    let h = health(&mut w);
    assert_eq!(text(&h, "state"), "active", "{}", h.to_json());
    assert!(w.lines.iter().any(|l| l.contains(r#""state":"active""#) && l.contains("the app answered again")));
    w.invariants().unwrap();
}

#[test]
fn the_backlog_drains_in_order_at_its_rate_while_new_deliveries_go_out_at_once() {
    let mut w = world(&[("DRAIN_PER_SECOND", "2")]);
    let (_, r) = w.log_op(APP, "/pause", r#"{"destination":"app"}"#).unwrap();
    assert_eq!(r, r#"{"state":"paused","held":0}"#);
    add(&mut w, 0..5);
    assert!(w.requests.is_empty(), "paused: held");
    let (_, r) = w.log_op(APP, "/resume", r#"{"destination":"app"}"#).unwrap();
    assert_eq!(r, r#"{"state":"active","draining":5}"#);
    let resumed = w.now;
    for second in 0..4 {
        w.run_until(resumed + second * 1_000 + 500);
        // A new delivery arrives every second, and goes out at once.
        let before = w.requests.len();
        add(&mut w, 10 + second as usize..11 + second as usize);
        assert_eq!(w.requests.len(), before + 1, "second {second}: not behind the backlog");
    }
    let backlog: Vec<(i64, i64)> = w.received.iter().filter(|r| r.webhook_id.as_str() < "000000000000000a").map(|r| (i64::from_str_radix(&r.webhook_id, 16).unwrap(), (r.at - resumed) / 1_000)).collect();
    assert_eq!(backlog, [(0, 0), (1, 0), (2, 1), (3, 1), (4, 2)], "the backlog, in its original order, 2 a second");
    w.run_until(w.now + 2_000);
    assert_eq!(health(&mut w).get("draining"), Some(&Value::Bool(false)));
    w.invariants().unwrap();
}

#[test]
fn a_drain_sends_its_share_with_a_few_statements_however_large_the_share() {
    // Each statement costs workerd far more than SQLite's work on a row:
    // the held rows that go out in one step are written together.
    let mut w = world(&[("DRAIN_PER_SECOND", "1000")]);
    w.log_op(APP, "/pause", r#"{"destination":"app"}"#).unwrap();
    add(&mut w, 0..40);
    let before = w.logs[APP].statements.get();
    let (_, r) = w.log_op(APP, "/resume", r#"{"destination":"app"}"#).unwrap();
    assert_eq!(r, r#"{"state":"active","draining":40}"#);
    let statements = w.logs[APP].statements.get() - before;
    assert_eq!(w.requests.len(), 40, "the share went out in the step");
    assert!(statements <= 15, "{statements} statements for a step that sent 40 held deliveries");
    let (pending, held, ..) = stats(&mut w);
    assert_eq!((pending, held), (40, 0), "out, none held");
    w.run_until(w.now + 1_000);
    assert_eq!(stats(&mut w).2, 40, "delivered");
    w.invariants().unwrap();
}

#[test]
fn answers_that_deliver_are_written_in_one_statement_however_many() {
    let mut w = world(&[]);
    add(&mut w, 0..40);
    assert_eq!(w.requests.len(), 40, "out at once");
    // The 40 answers come within REPORT_WITHIN_MS of each other: one step.
    let before = w.logs[APP].statements.get();
    w.run_until(w.now + 1_000);
    let statements = w.logs[APP].statements.get() - before;
    assert_eq!(stats(&mut w).2, 40, "delivered");
    assert!(statements <= 12, "{statements} statements to settle 40 deliveries");
    w.invariants().unwrap();
}

#[test]
fn past_the_requests_an_app_may_have_out_deliveries_wait_their_turn_in_order() {
    let mut w = world(&[]);
    let fx = w.commit_only(APP, "/accept", &events(0..MAX_FLIGHT + 6));
    assert_eq!(fx.posts.len(), MAX_FLIGHT, "at most MAX_FLIGHT out at once");
    assert_eq!(fx.report_within_ms, 0, "the others wait for room: each answer is reported at once");
    assert_eq!(stats(&mut w), (MAX_FLIGHT as i64 + 6, 0, 0, 0));
    // Their answers make room: the next ones go with the report, in order.
    let answers: Vec<Seen> = fx.posts.iter().take(4).map(|p| seen(&p.ticket, Some(200))).collect();
    w.report(APP, &answers);
    let next: Vec<i64> = w.requests.iter().map(|r| i64::from_str_radix(&r.webhook_id, 16).unwrap()).collect();
    assert_eq!(next, [64, 65, 66, 67]);
    w.invariants().unwrap();
}

#[test]
fn rows_live_for_their_retention_and_then_nothing_is_left_not_even_the_alarm() {
    let mut w = world(&[("DELIVERY_LOG_SECONDS", "86400"), ("DEAD_LETTER_RETENTION_SECONDS", "172800")]);
    w.app(APP, |r| if r.webhook_id.ends_with('1') { Some(410) } else { Some(200) });
    add(&mut w, 0..2);
    w.run_until(NOW + 1_000);
    assert_eq!(stats(&mut w), (0, 0, 1, 0));
    assert_eq!(text(&get(&mut w, "0000000000000001.app"), "status"), "gone");
    w.run_for(86_400_000 + 700_000, 600_000);
    assert_eq!(w.stats(APP).get("rows").and_then(Value::as_integer), Some("1"), "delivered gone after a day, within ten minutes");
    w.run_for(86_400_000, 600_000);
    assert_eq!(w.logs[APP].count("SELECT COUNT(*) FROM deliveries"), 0);
    // What is left is the metrics, and the one alarm that forgets them.
    let end = w.logs[APP].count("SELECT (MIN(start + CASE span WHEN 60000 THEN 172800000 ELSE 2592000000 END) + 599999) / 600000 * 600000 FROM metrics WHERE span > 0");
    assert_eq!(w.logs[APP].alarm.get(), Some(end));
    w.invariants().unwrap();
    w.run_until(w.now + 31 * 86_400_000);
    assert_eq!(w.logs[APP].count("SELECT COUNT(*) FROM metrics"), 0);
    assert_eq!(w.logs[APP].alarm.get(), None, "an empty log keeps no alarm");
    let (_, logs) = w.request(&Obj::Registry, "/logs", "").unwrap();
    assert_eq!(logs, r#"{"logs":[]}"#, "and the registry no longer lists it");
}

#[test]
fn a_hold_ends_with_the_hold_retention() {
    let mut w = world(&[("HOLD_RETENTION_SECONDS", "3600")]);
    w.log_op(APP, "/pause", r#"{"destination":"app"}"#).unwrap();
    add(&mut w, 0..2);
    w.run_for(3_600_000 + 1_000, 60_000);
    assert_eq!(stats(&mut w), (0, 0, 0, 2));
    assert!(listing(&mut w, r#"{"status":["failed"]}"#).contains("held for longer than 3600 s (HOLD_RETENTION_SECONDS)"));
    w.invariants().unwrap();
}

#[test]
fn a_removed_destination_is_not_probed_and_its_deliveries_stay_listed_until_their_retention_ends() {
    let mut w = world(&[("RETRY_BASE_SECONDS", "0")]);
    trip(&mut w);
    w.config = config(&[("DESTINATIONS", r#"[{"name":"other","url":"https://o.example","types":["*"]}]"#)]);
    let sent = w.requests.len();
    w.run_for(3_600_000 + 60_000, 60_000);
    assert_eq!(w.requests.len(), sent, "no probes");
    let list = listing(&mut w, r#"{"limit":50}"#);
    assert!(list.contains(r#""configured":false"#), "{list}");
    assert!(list.contains("its app app was removed"), "{list}");
    assert_eq!(stats(&mut w), (0, 0, 0, 6));
    // The registry still lists it until its rows are gone.
    assert_eq!(w.request(&Obj::Registry, "/logs", "").unwrap().1, r#"{"logs":["app"]}"#);
    w.invariants().unwrap();
    w.run_for(15 * 86_400_000, 3_600_000);
    assert_eq!(w.request(&Obj::Registry, "/logs", "").unwrap().1, r#"{"logs":[]}"#);
}

#[test]
fn a_full_log_fails_new_deliveries_with_the_reason_and_keeps_no_body() {
    let mut w = world(&[("MAX_LOG_BYTES", "1000000")]);
    w.log_op(APP, "/pause", r#"{"destination":"app"}"#).unwrap();
    let big = |e: usize| NewDelivery { body: format!(r#"{{"pad":"{}"}}"#, "x".repeat(300_000)), ..delivery(e, 7) };
    let (_, reply) = w.log_op(APP, "/accept", &body((0..4).map(big).collect())).unwrap();
    assert_eq!(Added::decode(&reply).unwrap(), Added { added: 3, refused: 1, ..Added::default() });
    let h = health(&mut w);
    assert_eq!((h.get("full"), int(&h, "refused")), (Some(&Value::Bool(false)), 1));
    let one = get(&mut w, "0000000000000003.app");
    assert_eq!((text(&one, "status"), text(&one, "body")), ("failed".into(), String::new()));
    assert!(text(&one, "reason").contains("MAX_LOG_BYTES is 1000000"), "{}", one.to_json());
    w.invariants().unwrap();
}

#[test]
fn replays_never_collide_and_a_replay_twice_is_refused() {
    let mut w = world(&[("RETRY_BASE_SECONDS", "0"), ("CIRCUIT_FAILURES", "50")]);
    w.app(APP, |_| Some(400));
    add(&mut w, 0..1);
    w.run_until(NOW + 60_000);
    assert_eq!(stats(&mut w), (0, 0, 0, 1));
    let (status, r) = w.log_op(APP, "/replay", r#"{"id":"0000000000000000.app"}"#).unwrap();
    assert_eq!((status, r.as_str()), (200, r#"{"replayed":"0000000000000000.app","as":"0000000000000000.app.r1"}"#));
    assert_eq!(w.requests.last().unwrap().webhook_id, "0000000000000000", "sent at once, with the same webhook-id");
    let (status, r) = w.log_op(APP, "/replay", r#"{"id":"0000000000000000.app"}"#).unwrap();
    assert_eq!(status, 409, "{r}");
    let (status, _) = w.log_op(APP, "/replay", r#"{"id":"0000000000000000.app.r1"}"#).unwrap();
    assert_eq!(status, 409, "pending, not a dead letter");
    let (status, r) = w.log_op(APP, "/replay", r#"{"id":"ffffffffffffffff.app"}"#).unwrap();
    assert_eq!(status, 404);
    assert!(r.contains("DEAD_LETTER_RETENTION_SECONDS"), "{r}");
    w.invariants().unwrap();
    // Its replay fails too: replayed again, it becomes .r2.
    w.run_until(w.now + 60_000);
    let (status, r) = w.log_op(APP, "/replay", r#"{"id":"0000000000000000.app.r1"}"#).unwrap();
    assert_eq!((status, r.as_str()), (200, r#"{"replayed":"0000000000000000.app.r1","as":"0000000000000000.app.r2"}"#));
    w.invariants().unwrap();
}

#[test]
fn listing_pages_through_every_delivery_newest_first() {
    let mut w = world(&[]);
    add(&mut w, 0..25);
    let mut seen = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let q = match before {
            Some(b) => format!(r#"{{"limit":10,"before":{b}}}"#),
            None => r#"{"limit":10}"#.to_owned(),
        };
        let page = parse(listing(&mut w, &q));
        let Some(Value::Array(items)) = page.get("deliveries") else { panic!() };
        seen.extend(items.iter().map(|i| text(i, "id")));
        match page.get("next").and_then(Value::as_integer) {
            Some(n) => before = Some(n.parse().unwrap()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|e| format!("{e:016x}.app")).collect();
    assert_eq!(seen, expected);
    let by_event = listing(&mut w, r#"{"event":"0000000000000003"}"#);
    assert!(by_event.contains("0000000000000003.app") && !by_event.contains("0000000000000004"), "{by_event}");
    assert_eq!(listing(&mut w, r#"{"conversation":"8"}"#), r#"{"deliveries":[],"positions":[],"next":null}"#);
}

#[test]
fn a_log_of_a_hundred_thousand_held_deliveries_stays_bounded() {
    let mut w = world(&[]);
    w.log_op(APP, "/pause", r#"{"destination":"app"}"#).unwrap();
    let (status, r) = w.log_op(APP, "/fill", r#"{"destination":"app","count":100000,"status":"held"}"#).unwrap();
    assert_eq!((status, r.as_str()), (200, r#"{"filled":100000}"#));
    assert_eq!(stats(&mut w), (0, 100_000, 0, 0));
    // An alarm while paused, a new delivery and the health read a handful of rows.
    let before = w.logs[APP].statements.get();
    w.logs[APP].alarm.set(Some(w.now));
    w.alarms();
    add(&mut w, 200_000..200_001);
    health(&mut w);
    let statements = w.logs[APP].statements.get() - before;
    assert!(statements < 60, "{statements} statements");
    w.invariants().unwrap();
}

#[test]
fn a_recovery_replays_every_dead_letter_page_by_page_and_nothing_twice() {
    let mut w = world(&[("DRAIN_PER_SECOND", "1000")]);
    w.log_op(APP, "/pause", r#"{"destination":"app"}"#).unwrap();
    w.log_op(APP, "/fill", r#"{"destination":"app","count":10000,"status":"failed"}"#).unwrap();
    let (status, r) = w.log_op(APP, "/recover", r#"{"destination":"app","since":0,"status":["failed"]}"#).unwrap();
    assert_eq!((status, r.as_str()), (200, r#"{"recovered":200,"more":true}"#));
    let mut alarms = 0;
    while health(&mut w).get("recovery").and_then(|r| r.get("more")) == Some(&Value::Bool(true)) {
        w.now += 10;
        w.alarms();
        alarms += 1;
        assert!(alarms < 100, "recovery never ends");
    }
    let h = health(&mut w);
    assert_eq!(int(h.get("recovery").unwrap(), "recovered"), 10_000);
    assert_eq!(stats(&mut w), (0, 10_000, 0, 0), "held: the app is paused");
    // Again: a page reads at most RECOVER_SCAN rows, so it takes pages
    // (alarms) to read the log through, and it finds nothing to replay.
    let (status, r) = w.log_op(APP, "/recover", r#"{"destination":"app","since":0,"status":["failed"]}"#).unwrap();
    assert_eq!((status, r.as_str()), (200, r#"{"recovered":0,"more":true}"#));
    let mut alarms = 0;
    while health(&mut w).get("recovery").and_then(|r| r.get("more")) == Some(&Value::Bool(true)) {
        w.now += 10;
        w.alarms();
        alarms += 1;
        assert!(alarms < 100, "recovery never ends");
    }
    assert_eq!(int(health(&mut w).get("recovery").unwrap(), "recovered"), 0, "recovering again recovers nothing twice");
    assert_eq!(stats(&mut w), (0, 10_000, 0, 0));
    w.invariants().unwrap();
    // Resumed: they drain, each once (here, where event ids grow with the
    // order they were taken in, in that order).
    w.log_op(APP, "/resume", r#"{"destination":"app"}"#).unwrap();
    w.run_until(w.now + 15_000);
    assert_eq!(stats(&mut w), (0, 0, 10_000, 0));
    let order: Vec<i64> = w.received.iter().map(|r| i64::from_str_radix(&r.webhook_id, 16).unwrap()).collect();
    assert_eq!(order.len(), 10_000);
    assert!(order.windows(2).all(|p| p[0] < p[1]), "each once, in order");
    w.invariants().unwrap();
}

#[test]
fn a_test_delivery_is_sent_at_once_and_its_answer_answers_the_request() {
    let mut w = world(&[]);
    w.app(APP, |_| Some(500));
    let test = TestDelivery {
        key: APP.into(),
        event_id: "0123456789abcdef".into(),
        event_type: "conversation_push".into(),
        body: r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":7}}"#.into(),
        subscribed: true,
    };
    let (path, body) = Input::Test(test).encode();
    let fx = w.commit_only(APP, path, &body);
    assert_eq!(fx.reply, None, "no reply before the app answered");
    assert!(matches!(&fx.posts[..], [p] if matches!(p.ticket, Ticket::Test { .. })));
    let (status, answer) = w.log_op(APP, path, &body).unwrap();
    assert_eq!(status, 200, "{answer}");
    let v = parse(answer);
    assert_eq!((v.get("delivered"), int(&v, "status"), text(&v, "webhookId")), (Some(&Value::Bool(false)), 500, "0123456789abcdef".into()));
    let at = w.trace.iter().rposition(|t| t == "log app /test: post").unwrap();
    assert_eq!(w.trace[at + 1], "log app /sent: alarm,log,reply,call", "reported at once; kept until its retention ends; and the log, now holding a delivery, registers");
    // Kept in the log as a test, not counted against the app.
    let list = listing(&mut w, r#"{"limit":5}"#);
    assert!(list.contains("a test delivery from the admin API"), "{list}");
    assert_eq!(int(&health(&mut w), "consecutiveFailures"), 0);
    w.invariants().unwrap();
}

#[test]
fn a_rate_spaces_the_requests_and_a_turn_too_far_off_waits_in_the_log() {
    let app = r#"[{"name":"app","url":"https://app.example/hook","types":["*"],"ratePerSecond":4}]"#;
    let mut w = World::new(config(&[("DESTINATIONS", app)]), NOW);
    let fx = w.commit_only(APP, "/accept", &events(0..50));
    let delays: Vec<u32> = fx.posts.iter().map(|p| p.delay_ms).collect();
    assert_eq!(&delays[..4], [0, 250, 500, 750]);
    assert_eq!(fx.posts.len(), 41, "turns up to PACE_MAX_MS ahead go with the step: {delays:?}");
    let mut w = World::new(config(&[("DESTINATIONS", app)]), NOW);
    add(&mut w, 0..50);
    w.run_until(NOW + 30_000);
    let at: Vec<i64> = w.received.iter().map(|r| r.at).collect();
    assert_eq!(at.len(), 50);
    assert!(at.windows(2).all(|p| p[1] - p[0] >= 250), "{at:?}");
    assert_eq!(taken(&w), (0..50).collect::<Vec<i64>>(), "in order");
    w.invariants().unwrap();
}

#[test]
fn event_ids_keep_all_their_64_bits_through_storage() {
    // Storage carries integers as JavaScript numbers (tests/support/mod.rs
    // binds them so): an event id does not fit, and must not be one.
    let mut w = world(&[("RETRY_BASE_SECONDS", "0")]);
    let ids = ["ffffffffffffffff", "8000000000000001", "0020000000000001"];
    let deliveries = ids.iter().map(|id| NewDelivery { event: (*id).into(), ..delivery(0, 7) }).collect();
    let mut failed = false;
    w.app(APP, move |r| if r.webhook_id.starts_with('8') && !std::mem::replace(&mut failed, true) { Some(500) } else { Some(200) });
    let (_, reply) = w.log_op(APP, "/accept", &body(deliveries)).unwrap();
    assert_eq!(Added::decode(&reply).unwrap().added, 3);
    w.run_until(NOW + 5_000);
    let got: Vec<&str> = w.received.iter().map(|r| r.webhook_id.as_str()).collect();
    assert_eq!(got, ["ffffffffffffffff", "0020000000000001", "8000000000000001"], "the failed one retried under the same id");
    for id in ids {
        assert_eq!(text(&get(&mut w, &format!("{id}.app")), "status"), "delivered", "{id}");
    }
    w.invariants().unwrap();
}

#[test]
fn a_storage_failure_writes_nothing_and_answers_nothing() {
    let mut w = world(&[]);
    w.log(APP);
    *w.logs[APP].fail_next.borrow_mut() = Some("disk full".into());
    assert!(w.log_op(APP, "/accept", &events(0..1)).is_err());
    assert!(w.requests.is_empty());
    assert_eq!(w.logs[APP].count("SELECT COUNT(*) FROM deliveries"), 0);
    assert_eq!(add(&mut w, 0..1).added, 1, "Drift sends it again, and it is taken");
}

// ------------------------------------------------------- conversations in order

fn ordered_world(vars: &[(&str, &str)]) -> World {
    let mut all = vec![("DESTINATIONS", r#"[{"name":"app","url":"https://app.example/hook","types":["*"],"ordered":true}]"#)];
    all.extend_from_slice(vars);
    World::new(config(&all), NOW)
}

/// Deliveries `from..` in conversations `conversations`.
fn in_conversations(from: usize, conversations: &[u64]) -> String {
    body(conversations.iter().enumerate().map(|(i, c)| delivery(from + i, *c)).collect())
}

#[test]
fn an_ordered_app_gets_a_conversations_next_event_once_the_one_before_settled() {
    let mut w = ordered_world(&[("RETRY_BASE_SECONDS", "1")]);
    // Event 2 fails once.
    let failed = Rc::new(Cell::new(false));
    let once = failed.clone();
    w.app(APP, move |r| if r.webhook_id.ends_with('2') && !once.replace(true) { Some(503) } else { Some(200) });
    w.log_op(APP, "/accept", &in_conversations(0, &[7, 8, 7, 9, 7])).unwrap();
    assert_eq!(taken(&w), [0, 1, 3], "one of each conversation at once, side by side");
    assert_eq!(w.stats(APP).get("lines").and_then(Value::as_integer), Some("2"));
    w.run_until(NOW + 1_000);
    assert_eq!(taken(&w), [0, 1, 3], "2 failed once: 4 still waits behind it");
    w.invariants().unwrap();
    w.run_until(NOW + 10_000);
    assert_eq!(taken(&w), [0, 1, 3, 2, 4]);
    assert_eq!(stats(&mut w), (0, 0, 5, 0));
    let s = w.stats(APP);
    assert_eq!((s.get("lines").and_then(Value::as_integer), s.get("heads").and_then(Value::as_integer)), (Some("0"), Some("0")));
    w.invariants().unwrap();
}

#[test]
fn an_ordered_app_keeps_the_order_through_an_outage_its_drain_and_a_lost_report() {
    let mut w = ordered_world(&[("RETRY_BASE_SECONDS", "1"), ("CIRCUIT_PROBE_SECONDS", "1"), ("DRAIN_PER_SECOND", "50"), ("RECOVERY_GRACE_SECONDS", "1")]);
    let up = Rc::new(Cell::new(false));
    let app_up = up.clone();
    w.app(APP, move |_| if app_up.get() { Some(200) } else { Some(503) });
    // Down: five conversations trip it, then more of the same conversations come.
    w.log_op(APP, "/accept", &in_conversations(0, &[1, 2, 3, 4, 5])).unwrap();
    w.run_until(NOW + 1_000);
    assert_eq!(text(&health(&mut w), "state"), "tripped");
    w.log_op(APP, "/accept", &in_conversations(5, &[1, 1, 2, 6, 6])).unwrap();
    w.invariants().unwrap();
    // A request whose report is lost: the process stops after the step.
    w.commit_only(APP, "/accept", &in_conversations(10, &[7]));
    w.run_until(NOW + 5_000);
    up.set(true);
    w.run_until(NOW + 400_000);
    w.invariants().unwrap();
    assert_eq!(stats(&mut w), (0, 0, 11, 0));
    // Each conversation in the order it came, one request at a time.
    let conversation = |n: i64| [1, 2, 3, 4, 5, 1, 1, 2, 6, 6, 7][n as usize];
    for c in 1..=7 {
        let got: Vec<i64> = taken(&w).into_iter().filter(|n| conversation(*n) == c).collect();
        let mut sorted = got.clone();
        sorted.sort_unstable();
        assert_eq!(got, sorted, "conversation {c}");
    }
    let mut sent: Vec<(i64, i64, i64)> = w.requests.iter().map(|r| (conversation(i64::from_str_radix(&r.webhook_id, 16).unwrap()), r.at, r.until)).collect();
    sent.sort_unstable();
    for pair in sent.windows(2) {
        if pair[0].0 == pair[1].0 {
            assert!(pair[1].1 >= pair[0].2, "two requests of conversation {} at once: {pair:?}", pair[0].0);
        }
    }
}

#[test]
fn an_app_that_no_longer_wants_the_order_gets_what_waited_at_once() {
    let mut w = ordered_world(&[]);
    w.app(APP, |_| None);
    w.log_op(APP, "/accept", &in_conversations(0, &[7, 7, 7])).unwrap();
    assert_eq!(taken(&w).len() + w.requests.len(), 1, "one out, two in line");
    w.config = one_app(&[]);
    // The next step (here the report of the request out, at its deadline)
    // sees it, and the alarm releases them.
    w.run_until(NOW + 11_000);
    assert_eq!(w.requests.len(), 3, "released");
    let s = w.stats(APP);
    assert_eq!((s.get("lines").and_then(Value::as_integer), s.get("heads").and_then(Value::as_integer)), (Some("0"), Some("0")));
    w.invariants().unwrap();
}

#[test]
fn an_ordered_apps_replay_waits_behind_its_conversation_and_an_ended_log_leaves_no_line() {
    let mut w = ordered_world(&[("RETRY_BASE_SECONDS", "0")]);
    w.app(APP, |r| if r.webhook_id.ends_with('0') { Some(410) } else { None });
    w.log_op(APP, "/accept", &in_conversations(0, &[7, 7, 7])).unwrap();
    w.run_until(NOW + 1_000);
    assert_eq!(text(&get(&mut w, "0000000000000000.app"), "status"), "gone");
    // 1 is out (its app takes its time), 2 waits behind it; the replay of 0 waits too.
    let (status, r) = w.log_op(APP, "/replay", r#"{"id":"0000000000000000.app"}"#).unwrap();
    assert_eq!(status, 200, "{r}");
    assert_eq!(text(&get(&mut w, "0000000000000000.app.r1"), "state"), "waiting");
    assert_eq!(w.requests.len(), 2);
    w.invariants().unwrap();
    // The app is gone: everything ends, nothing waits in line any more.
    w.config = config(&[]);
    w.run_until(NOW + 2 * 3_600_000);
    assert_eq!(stats(&mut w), (0, 0, 0, 3));
    let s = w.stats(APP);
    assert_eq!((s.get("lines").and_then(Value::as_integer), s.get("heads").and_then(Value::as_integer), s.get("waits").and_then(Value::as_integer)), (Some("0"), Some("0"), Some("0")));
    w.invariants().unwrap();
}

#[test]
fn an_ordered_app_paused_holds_one_of_each_conversation_and_releases_them_in_order() {
    let mut w = ordered_world(&[("DRAIN_PER_SECOND", "100")]);
    w.log_op(APP, "/pause", r#"{"destination":"app"}"#).unwrap();
    w.log_op(APP, "/accept", &in_conversations(0, &[7, 8, 7, 8, 7])).unwrap();
    let s = w.stats(APP);
    assert_eq!((s.get("held").and_then(Value::as_integer), s.get("lines").and_then(Value::as_integer)), (Some("2"), Some("3")), "{}", s.to_json());
    w.invariants().unwrap();
    w.log_op(APP, "/resume", r#"{"destination":"app"}"#).unwrap();
    w.run_until(NOW + 10_000);
    assert_eq!(stats(&mut w), (0, 0, 5, 0));
    let sevens: Vec<i64> = taken(&w).into_iter().filter(|n| n % 2 == 0).collect();
    assert_eq!(sevens, [0, 2, 4]);
    w.invariants().unwrap();
}

#[test]
fn takes_over_a_log_of_drift_bridge_0_2() {
    let w = world(&[]);
    let db = support::Db::new();
    db.conn
        .execute_batch(
            r#"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
               CREATE TABLE deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, event_id TEXT NOT NULL, type TEXT NOT NULL, scope TEXT NOT NULL, conversation TEXT, body TEXT NOT NULL, status TEXT NOT NULL, generation INTEGER NOT NULL DEFAULT 1, attempts INTEGER NOT NULL DEFAULT 0, probe INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, due_at INTEGER, expires_at INTEGER, last_error TEXT, reason TEXT, replayed_as TEXT);
               CREATE INDEX deliveries_due ON deliveries (due_at) WHERE due_at IS NOT NULL;
               CREATE INDEX deliveries_status ON deliveries (status, seq);
               CREATE TABLE attempts (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, n INTEGER NOT NULL, at INTEGER NOT NULL, code INTEGER, error TEXT, latency_ms INTEGER NOT NULL, probe INTEGER NOT NULL DEFAULT 0);
               INSERT INTO meta VALUES ('name', 'app'), ('circuit', '{"mode":"tripped","failures":5,"spans":true,"probeInterval":60000,"nextProbe":1700000060000}');
               INSERT INTO deliveries (id, event_id, type, scope, conversation, body, status, generation, attempts, created_at, updated_at, due_at) VALUES
                 ('0000000000000001.app', '0000000000000001', 'conversation_push', 'conversation:1:7', '7', '{"n":12345678901234567890}', 'held', 2, 3, 1699999999000, 1699999999000, NULL),
                 ('0000000000000002.app', '0000000000000002', 'conversation_push', 'conversation:1:7', '7', '{}', 'retrying', 1, 1, 1699999999000, 1699999999000, 1700000005000);
               INSERT INTO attempts (id, n, at, code, error, latency_ms, probe) VALUES ('0000000000000001.app', 1, 1699999999500, 503, 'the app answered 503', 40, 0), ('0000000000000001.app', 2, 1699999999600, NULL, 'no answer', 400, 1);"#,
        )
        .unwrap();
    let config = w.config.clone();
    let found = drift_bridge::delivery::log::open(&db, &drift_bridge::delivery::log::Context { apps_known: true, listener: false, settings: &config.delivery, now: NOW, seed: 0 }).unwrap();
    assert_eq!(found, drift_bridge::delivery::log::schema::Found::Upgraded);
    let mut w = w;
    w.logs.insert(APP.into(), db);
    assert_eq!(stats(&mut w), (1, 1, 0, 0), "counted once");
    let h = health(&mut w);
    assert_eq!(text(&h, "state"), "tripped", "the breaker is taken over");
    let one = get(&mut w, "0000000000000001.app");
    assert_eq!(text(&one, "body"), r#"{"n":12345678901234567890}"#);
    let Some(Value::Array(log)) = one.get("attemptLog") else { panic!() };
    assert_eq!(
        log.iter().map(Value::to_json).collect::<Vec<_>>(),
        [
            r#"{"attempt":1,"at":1699999999500,"code":503,"error":"the app answered 503","latencyMs":40,"probe":false}"#,
            r#"{"attempt":2,"at":1699999999600,"code":null,"error":"no answer","latencyMs":400,"probe":true}"#
        ]
    );
    assert_eq!(w.logs[APP].count("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('attempts', 'deliveries_due', 'deliveries_status', 'deliveries_old')"), 0);
    // What was on its way goes again at once: held, as the app is down.
    w.run_until(NOW + 1_000);
    assert_eq!(stats(&mut w), (0, 2, 0, 0));
    assert!(w.requests.is_empty());
    w.invariants().unwrap();
}
