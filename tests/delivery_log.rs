//! The delivery log's operations on real SQLite, one rule a test: what
//! `/add` takes in and drops, what `/attempt` hands out, what `/settle`
//! makes of an answer, what the breaker holds, probes and drains, what the
//! alarm recovers and deletes, what the admin sees, and how a log of
//! drift-bridge 0.2 is taken over.

mod support;

use drift_bridge::delivery::message::{Add, Added, Attempt, AttemptReply, Dead, Item, NewDelivery, Outcome, QueueMessage, Settle, Tried};
use drift_bridge::json::{self, Value};
use support::world::World;
use support::{config, one_app};

const NOW: i64 = 1_700_000_000_000;
const APP: &str = "app";

fn delivery(event: usize, conversation: u64) -> NewDelivery {
    let event_id = format!("{event:016x}");
    NewDelivery {
        id: format!("{event_id}.{APP}"),
        event_id,
        event_type: "conversation_push".into(),
        scope: format!("conversation:1:{conversation}"),
        received_at: NOW,
        body: format!(r#"{{"orgId":1,"type":"conversation_push","data":{{"conversationId":{conversation},"n":{event}}}}}"#),
        org: Some("1".into()),
    }
}

fn add(w: &mut World, events: std::ops::Range<usize>) -> Added {
    let body = Add { destination: APP.into(), deliveries: events.map(|e| delivery(e, 7)).collect() }.encode();
    let (status, reply) = w.log_op(APP, "/add", &body).unwrap();
    assert_eq!(status, 200, "{reply}");
    Added::decode(&reply).unwrap()
}

/// The references waiting on the queue, taken off it.
fn refs(w: &mut World) -> Vec<(String, u32)> {
    w.take_messages()
        .into_iter()
        .map(|m| match QueueMessage::decode(&m).unwrap() {
            QueueMessage::Ref(r) => (r.id, r.generation),
            other => panic!("{other:?}"),
        })
        .collect()
}

fn attempt(w: &mut World, items: &[(String, u32)]) -> AttemptReply {
    let body = Attempt { lease_ms: 40_000, items: items.iter().map(|(id, g)| Item { id: id.clone(), generation: *g }).collect() }.encode();
    let (status, reply) = w.log_op(APP, "/attempt", &body).unwrap();
    assert_eq!(status, 200, "{reply}");
    AttemptReply::decode(&reply).unwrap()
}

fn answered(w: &mut World, go: &AttemptReply, code: Option<u16>) -> Vec<(String, String)> {
    let outcomes = go
        .go
        .iter()
        .map(|g| Outcome {
            id: g.id.clone(),
            generation: g.generation,
            attempt: g.attempt,
            tried: match code {
                Some(code) => Tried::Answered { code, error: (code >= 300).then(|| format!("the app answered {code}")) },
                None => Tried::Nothing { error: "no answer within 10000 ms".into() },
            },
            latency_ms: 30,
        })
        .collect();
    let (status, reply) = w.log_op(APP, "/settle", &Settle { outcomes }.encode()).unwrap();
    assert_eq!(status, 200, "{reply}");
    drift_bridge::delivery::message::SettleReply::decode(&reply).unwrap().results
}

/// One round: whatever is queued is attempted and answered `code`.
fn round(w: &mut World, code: Option<u16>) -> Vec<(String, String)> {
    let items = refs(w);
    if items.is_empty() {
        return Vec::new();
    }
    let go = attempt(w, &items);
    answered(w, &go, code)
}

fn stats(w: &mut World) -> (i64, i64, i64, i64) {
    let s = w.stats(APP);
    let counts = s.get("counts").unwrap();
    let n = |k: &str| counts.get(k).and_then(Value::as_integer).unwrap().parse::<i64>().unwrap();
    (n("pending"), n("held"), n("delivered"), n("failed"))
}

fn health(w: &mut World) -> Value<'static> {
    let (_, text) = w.log_op(APP, "/health", r#"{"destination":"app"}"#).unwrap();
    json::parse(Box::leak(text.into_boxed_str()), &drift_bridge::Limits::default()).unwrap()
}

fn text(v: &Value<'_>, k: &str) -> String {
    v.get(k).and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default()
}

fn int(v: &Value<'_>, k: &str) -> i64 {
    v.get(k).and_then(Value::as_integer).and_then(|n| n.parse().ok()).unwrap_or(-1)
}

fn world(vars: &[(&str, &str)]) -> World {
    World::new(one_app(vars), NOW)
}

#[test]
fn new_deliveries_are_stored_and_queued_once() {
    let mut w = world(&[]);
    assert_eq!(add(&mut w, 0..3), Added { added: 3, ..Added::default() });
    assert_eq!(refs(&mut w), [("0000000000000000.app".into(), 1), ("0000000000000001.app".into(), 1), ("0000000000000002.app".into(), 1)]);
    assert_eq!(stats(&mut w), (3, 0, 0, 0));
    assert_eq!(w.logs[APP].alarm.get(), Some(NOW + 300_000), "a lost message is recovered after the grace period");
    // The same deliveries again (an outbox's retry, Drift sending twice):
    // nothing new, nothing queued.
    assert_eq!(add(&mut w, 0..3), Added { duplicates: 3, ..Added::default() });
    assert!(refs(&mut w).is_empty());
}

#[test]
fn a_repeat_inside_the_window_is_dropped_and_after_it_sent_again_with_the_same_webhook_id() {
    let mut w = world(&[("DEDUP_WINDOW_SECONDS", "600")]);
    add(&mut w, 0..1);
    round(&mut w, Some(200));
    w.now += 599_000;
    assert_eq!(add(&mut w, 0..1).duplicates, 1);
    w.now += 2_000;
    assert_eq!(add(&mut w, 0..1), Added { again: 1, ..Added::default() });
    let again = refs(&mut w);
    assert_eq!(again, [("0000000000000000.app.r1".into(), 1)]);
    let go = attempt(&mut w, &again);
    assert_eq!(go.go[0].event_id, "0000000000000000", "the same webhook-id");
    answered(&mut w, &go, Some(200));
    // The repeat is now the latest: inside its window, dropped again.
    assert_eq!(add(&mut w, 0..1).duplicates, 1);
    let (_, listing) = w.log_op(APP, "/list", r#"{"limit":10}"#).unwrap();
    assert!(listing.contains("sent again: the event came in again after the deduplication window"), "{listing}");
}

#[test]
fn attempts_are_leased_and_stale_or_taken_copies_skipped() {
    let mut w = world(&[]);
    add(&mut w, 0..2);
    let items = refs(&mut w);
    let go = attempt(&mut w, &items);
    assert_eq!(go.go.len(), 2);
    assert_eq!((go.go[0].attempt, go.go[0].probe), (1, false));
    assert!(go.go[0].body.contains(r#""n":0"#));
    // A duplicate of the same message while the consumer has it: skipped.
    assert_eq!(attempt(&mut w, &items).skip.len(), 2);
    // A copy of another generation: skipped.
    assert_eq!(attempt(&mut w, &[("0000000000000000.app".into(), 9)]).skip, ["0000000000000000.app"]);
    answered(&mut w, &go, Some(200));
    // Settled: skipped.
    assert_eq!(attempt(&mut w, &items).skip.len(), 2);
    assert_eq!(stats(&mut w), (0, 0, 2, 0));
}

#[test]
fn a_failure_is_retried_on_the_schedule_with_a_new_message_and_a_refusal_does_not_count_against_the_app() {
    let mut w = world(&[("RETRY_BASE_SECONDS", "10")]);
    add(&mut w, 0..1);
    assert_eq!(round(&mut w, Some(500)), [("0000000000000000.app".into(), "pending".into())]);
    let messages = w.messages();
    assert_eq!(messages.len(), 1);
    let wait = messages[0].1 - NOW;
    assert!((5_000..=10_000).contains(&wait), "the first retry waits 10 s, jittered: {wait}");
    assert!(messages[0].0.contains(r#""g":2"#), "a new generation: {}", messages[0].0);
    w.now += wait;
    let results = round(&mut w, Some(404));
    assert_eq!(results[0].1, "pending");
    let h = health(&mut w);
    assert_eq!((text(&h, "state"), int(&h, "consecutiveFailures")), ("active".into(), 0), "a 404 says the app is up");
    let (_, one) = w.log_op(APP, "/get", r#"{"id":"0000000000000000.app"}"#).unwrap();
    let one = json::parse(&one, &drift_bridge::Limits::default()).unwrap();
    let log = match one.get("attemptLog") {
        Some(Value::Array(a)) => a.clone(),
        _ => panic!("no attemptLog"),
    };
    let codes: Vec<i64> = log.iter().map(|a| int(a, "code")).collect();
    assert_eq!(codes, [500, 404]);
}

#[test]
fn twelve_attempts_then_a_dead_letter() {
    let mut w = world(&[("RETRY_BASE_SECONDS", "0")]);
    add(&mut w, 0..1);
    for n in 1..=12 {
        let results = round(&mut w, Some(422));
        assert_eq!(results.len(), 1, "attempt {n}");
        assert_eq!(results[0].1, if n < 12 { "pending" } else { "failed" }, "attempt {n}");
    }
    assert!(refs(&mut w).is_empty());
    let (_, listing) = w.log_op(APP, "/list", r#"{"status":["failed"]}"#).unwrap();
    assert!(listing.contains("gave up after 12 attempts; last: the app answered 422"), "{listing}");
}

#[test]
fn a_delivery_whose_consumer_keeps_crashing_ends_at_the_attempt_ceiling() {
    let mut w = world(&[("RECOVERY_GRACE_SECONDS", "1")]);
    add(&mut w, 0..1);
    for _ in 0..12 {
        let items = refs(&mut w);
        assert_eq!(attempt(&mut w, &items).go.len(), 1);
        // The consumer dies after the POST: no /settle. The lease ends, the
        // alarm queues it again.
        w.now += 41_000;
        w.alarms();
    }
    let items = refs(&mut w);
    assert_eq!(attempt(&mut w, &items).go.len(), 0, "the ceiling");
    let (_, listing) = w.log_op(APP, "/list", r#"{"status":["failed"]}"#).unwrap();
    assert!(listing.contains("gave up after 12 attempts; 12 of them never reported back"), "{listing}");
}

#[test]
fn what_a_consumer_has_in_flight_is_not_queued_again_before_its_lease_ends() {
    let mut w = world(&[("RECOVERY_GRACE_SECONDS", "1")]);
    add(&mut w, 0..1);
    let items = refs(&mut w);
    let go = attempt(&mut w, &items);
    // Past the grace period, within the lease (40 s).
    w.now += 30_000;
    w.alarms();
    assert!(refs(&mut w).is_empty(), "not queued again while leased");
    w.now += 11_000;
    w.alarms();
    assert_eq!(refs(&mut w), [("0000000000000000.app".into(), 2)], "queued again once the lease is over");
    assert!(w.lines.iter().any(|l| l.contains("no progress on 1 deliveries")));
    // The late answer of the first attempt still counts: delivered, and the
    // new copy is skipped.
    assert_eq!(answered(&mut w, &go, Some(200))[0].1, "delivered");
    assert_eq!(attempt(&mut w, &[("0000000000000000.app".into(), 2)]).skip.len(), 1);
}

#[test]
fn dead_letters_only_for_the_generation_the_message_is_about_and_never_in_flight() {
    let mut w = world(&[]);
    add(&mut w, 0..2);
    let items = refs(&mut w);
    let go = attempt(&mut w, &items[..1]);
    let dead = |id: &str, g: u32| Dead { items: vec![Item { id: id.into(), generation: g }] }.encode();
    // In flight: not failed.
    let (_, r) = w.log_op(APP, "/dead", &dead(&items[0].0, 1)).unwrap();
    assert_eq!(r, r#"{"failed":0}"#);
    // An older generation than the current: not failed.
    let (_, r) = w.log_op(APP, "/dead", &dead(&items[1].0, 0)).unwrap();
    assert_eq!(r, r#"{"failed":0}"#);
    let (_, r) = w.log_op(APP, "/dead", &dead(&items[1].0, 1)).unwrap();
    assert_eq!(r, r#"{"failed":1}"#);
    answered(&mut w, &go, Some(200));
    assert_eq!(stats(&mut w), (0, 0, 1, 1));
}

fn trip(w: &mut World) {
    add(w, 0..6);
    assert_eq!(round(w, Some(503)).len(), 6);
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
    let (_, added) = w.log_op(APP, "/add", &Add { destination: APP.into(), deliveries: vec![delivery(50, 7)] }.encode()).unwrap();
    assert_eq!(Added::decode(&added).unwrap().added, 1);
    assert!(w.messages().iter().all(|(m, _)| !m.contains("0000000000000032")), "new deliveries are held, not queued");
    // The retries of the five come back and are held without an attempt.
    w.now += 60_000;
    let items = refs(&mut w);
    let go = attempt(&mut w, &items);
    assert!(go.go.iter().all(|g| g.probe), "only a probe goes: {:?}", go.go);
    assert_eq!(stats(&mut w).1 + go.go.len() as i64, 7);
}

#[test]
fn failed_probes_try_another_delivery_each_time_and_any_answer_brings_the_app_back() {
    let mut w = world(&[("CIRCUIT_PROBE_SECONDS", "1"), ("RETRY_BASE_SECONDS", "0")]);
    trip(&mut w);
    // Everything ends up held.
    for _ in 0..3 {
        let items = refs(&mut w);
        if !items.is_empty() {
            let go = attempt(&mut w, &items);
            answered(&mut w, &go, Some(503));
        }
    }
    let mut probed = Vec::new();
    for _ in 0..4 {
        w.now += 16 * 60_000;
        w.alarms();
        let items = refs(&mut w);
        assert_eq!(items.len(), 1, "one probe at a time: {items:?}");
        let go = attempt(&mut w, &items);
        assert!(go.go[0].probe);
        probed.push(go.go[0].id.clone());
        answered(&mut w, &go, Some(503));
    }
    let distinct: std::collections::BTreeSet<&String> = probed.iter().collect();
    assert_eq!(distinct.len(), 4, "a failed probe does not pin its delivery: {probed:?}");
    // The next probe is refused (404) by the app: it is up.
    w.now += 16 * 60_000;
    w.alarms();
    let items = refs(&mut w);
    let go = attempt(&mut w, &items);
    answered(&mut w, &go, Some(404));
    let h = health(&mut w);
    assert_eq!((text(&h, "state"), h.get("draining")), ("active".into(), Some(&Value::Bool(true))));
    assert!(w.lines.iter().any(|l| l.contains(r#""state":"active""#) && l.contains("the app answered again")));
}

#[test]
fn the_backlog_drains_in_order_at_its_rate_while_new_deliveries_go_out_at_once() {
    let mut w = world(&[("DRAIN_PER_SECOND", "2")]);
    let (_, r) = w.log_op(APP, "/pause", r#"{"destination":"app"}"#).unwrap();
    assert_eq!(r, r#"{"state":"paused","held":0}"#);
    add(&mut w, 0..5);
    assert!(refs(&mut w).is_empty(), "paused: held");
    let (_, r) = w.log_op(APP, "/resume", r#"{"destination":"app"}"#).unwrap();
    assert_eq!(r, r#"{"state":"active","draining":5}"#);
    let mut released = Vec::new();
    for second in 0..4 {
        w.alarms();
        let batch = refs(&mut w);
        released.extend(batch.iter().map(|(id, _)| id.clone()));
        // A new delivery arrives every second, and goes out at once.
        add(&mut w, 10 + second..11 + second);
        let new = refs(&mut w);
        assert_eq!(new.len(), 1, "second {second}: not behind the backlog");
        w.now += 1_000;
    }
    let expected: Vec<String> = (0..5).map(|e| format!("{e:016x}.app")).collect();
    assert_eq!(released, expected, "the backlog, in its original order, 2 a second");
    assert_eq!(health(&mut w).get("draining"), Some(&Value::Bool(false)));
}

#[test]
fn a_batch_goes_side_by_side_but_one_conversation_in_order_and_after_a_failure_a_scout_first() {
    // A breaker that does not trip on these five failures.
    let mut w = world(&[("CIRCUIT_FAILURES", "20")]);
    // Conversations 7, 8, 7, 9, 7.
    let batch = |w: &mut World, from: usize| {
        let deliveries = [7, 8, 7, 9, 7].iter().enumerate().map(|(e, c)| delivery(from + e, *c)).collect();
        w.log_op(APP, "/add", &Add { destination: APP.into(), deliveries }.encode()).unwrap();
        let items = refs(w);
        attempt(w, &items)
    };
    let go = batch(&mut w, 0);
    let waves: Vec<u32> = go.go.iter().map(|g| g.wave).collect();
    assert_eq!(waves, [0, 0, 1, 0, 2], "7's events one after another, the others beside them");
    // The app fails them: the next batch sends a scout first.
    answered(&mut w, &go, Some(503));
    refs(&mut w); // their retries, for later
    let go = batch(&mut w, 10);
    let waves: Vec<u32> = go.go.iter().map(|g| g.wave).collect();
    assert_eq!(waves, [0, 1, 1, 1, 2], "the first alone, then the same order as before");
    answered(&mut w, &go, Some(200));
    let go = batch(&mut w, 20);
    assert_eq!(go.go.iter().map(|g| g.wave).collect::<Vec<_>>(), [0, 0, 1, 0, 2], "healthy again: no scout");
}

#[test]
fn rows_live_for_their_retention_and_then_nothing_is_left_not_even_the_alarm() {
    let mut w = world(&[("DELIVERY_LOG_SECONDS", "86400"), ("DEAD_LETTER_RETENTION_SECONDS", "172800")]);
    add(&mut w, 0..2);
    let items = refs(&mut w);
    let go = attempt(&mut w, &items);
    let outcomes = vec![
        Outcome { id: go.go[0].id.clone(), generation: 1, attempt: 1, tried: Tried::Answered { code: 200, error: None }, latency_ms: 5 },
        Outcome {
            id: go.go[1].id.clone(),
            generation: 1,
            attempt: 1,
            tried: Tried::Answered { code: 410, error: Some("the app answered 410".into()) },
            latency_ms: 5,
        },
    ];
    w.log_op(APP, "/settle", &Settle { outcomes }.encode()).unwrap();
    w.run_for(86_400_000 + 700_000, 600_000);
    assert_eq!(w.stats(APP).get("rows").and_then(Value::as_integer), Some("1"), "delivered gone after a day, within ten minutes");
    w.run_for(86_400_000, 600_000);
    assert_eq!(w.stats(APP).get("rows").and_then(Value::as_integer), Some("0"));
    assert_eq!(w.logs[APP].count("SELECT COUNT(*) FROM deliveries"), 0);
    // What is left is the metrics, and the one alarm that forgets them.
    let end = w.logs[APP].count("SELECT MIN(start + CASE span WHEN 60000 THEN 172800000 ELSE 2592000000 END) FROM metrics WHERE span > 0");
    assert_eq!(w.logs[APP].alarm.get(), Some(end));
    w.run_until(w.now + 31 * 86_400_000);
    assert_eq!(w.logs[APP].count("SELECT COUNT(*) FROM metrics"), 0);
    assert_eq!(w.logs[APP].alarm.get(), None, "an empty log keeps no alarm");
}

#[test]
fn a_hold_ends_with_the_hold_retention() {
    let mut w = world(&[("HOLD_RETENTION_SECONDS", "3600")]);
    w.log_op(APP, "/pause", r#"{"destination":"app"}"#).unwrap();
    add(&mut w, 0..2);
    w.run_for(3_600_000 + 1_000, 60_000);
    assert_eq!(stats(&mut w), (0, 0, 0, 2));
    let (_, listing) = w.log_op(APP, "/list", r#"{"status":["failed"]}"#).unwrap();
    assert!(listing.contains("held for longer than 3600 s (HOLD_RETENTION_SECONDS)"), "{listing}");
}

#[test]
fn a_removed_destination_is_not_probed_and_its_deliveries_stay_listed_until_their_retention_ends() {
    let mut w = world(&[("RETRY_BASE_SECONDS", "0")]);
    trip(&mut w);
    w.config = config(&[("DESTINATIONS", r#"[{"name":"other","url":"https://o.example","types":["*"]}]"#)]);
    w.take_messages();
    w.run_for(3_600_000, 60_000);
    assert!(refs(&mut w).is_empty(), "no probes");
    let (_, listing) = w.log_op(APP, "/list", r#"{"limit":50}"#).unwrap();
    assert!(listing.contains(r#""configured":false"#), "{listing}");
    assert!(listing.contains("its app app was removed"), "{listing}");
    assert_eq!(stats(&mut w), (0, 0, 0, 6));
    // The registry still lists it until its rows are gone.
    let (_, logs) = {
        let now = w.now;
        let fx = w.registry.run(drift_bridge::delivery::registry::logs).unwrap();
        let _ = now;
        (200, fx.reply.unwrap().body)
    };
    assert_eq!(logs, r#"{"logs":["app"]}"#);
    w.run_for(15 * 86_400_000, 3_600_000);
    let fx = w.registry.run(drift_bridge::delivery::registry::logs).unwrap();
    assert_eq!(fx.reply.unwrap().body, r#"{"logs":[]}"#);
}

#[test]
fn a_full_log_fails_new_deliveries_with_the_reason_and_keeps_no_body() {
    let mut w = world(&[("MAX_LOG_BYTES", "1000000")]);
    let big = |e: usize| NewDelivery { body: format!(r#"{{"pad":"{}"}}"#, "x".repeat(300_000)), ..delivery(e, 7) };
    let body = Add { destination: APP.into(), deliveries: (0..4).map(big).collect() }.encode();
    let (_, reply) = w.log_op(APP, "/add", &body).unwrap();
    assert_eq!(Added::decode(&reply).unwrap(), Added { added: 3, refused: 1, ..Added::default() });
    let h = health(&mut w);
    assert_eq!((h.get("full"), int(&h, "refused")), (Some(&Value::Bool(false)), 1));
    let (_, one) = w.log_op(APP, "/get", r#"{"id":"0000000000000003.app"}"#).unwrap();
    assert!(one.contains(r#""status":"failed""#) && one.contains("MAX_LOG_BYTES is 1000000") && one.contains(r#""body":"""#), "{one}");
}

#[test]
fn replays_never_collide_and_a_replay_twice_is_refused() {
    let mut w = world(&[("RETRY_BASE_SECONDS", "0")]);
    add(&mut w, 0..1);
    for _ in 0..12 {
        round(&mut w, Some(400));
    }
    let (status, r) = w.log_op(APP, "/replay", r#"{"id":"0000000000000000.app"}"#).unwrap();
    assert_eq!((status, r.as_str()), (200, r#"{"replayed":"0000000000000000.app","as":"0000000000000000.app.r1"}"#));
    let (status, r) = w.log_op(APP, "/replay", r#"{"id":"0000000000000000.app"}"#).unwrap();
    assert_eq!(status, 409, "{r}");
    let (status, _) = w.log_op(APP, "/replay", r#"{"id":"0000000000000000.app.r1"}"#).unwrap();
    assert_eq!(status, 409, "pending, not a dead letter");
    let (status, r) = w.log_op(APP, "/replay", r#"{"id":"ffffffffffffffff.app"}"#).unwrap();
    assert_eq!(status, 404);
    assert!(r.contains("DEAD_LETTER_RETENTION_SECONDS"), "{r}");
    // An .r1 left over from an earlier life of the same delivery.
    w.logs[APP].conn.execute_batch("UPDATE deliveries SET replayed_as = NULL, status = 'failed' WHERE id = '0000000000000000.app'").unwrap();
    let (status, r) = w.log_op(APP, "/replay", r#"{"id":"0000000000000000.app"}"#).unwrap();
    assert_eq!((status, r.as_str()), (200, r#"{"replayed":"0000000000000000.app","as":"0000000000000000.app.r2"}"#));
}

#[test]
fn listing_pages_through_every_delivery_newest_first_reading_a_bounded_number_of_rows() {
    let mut w = world(&[]);
    add(&mut w, 0..25);
    let mut seen = Vec::new();
    let mut before: Option<i64> = None;
    loop {
        let q = match before {
            Some(b) => format!(r#"{{"limit":10,"before":{b}}}"#),
            None => r#"{"limit":10}"#.to_owned(),
        };
        let (_, page) = w.log_op(APP, "/list", &q).unwrap();
        let page = json::parse(Box::leak(page.into_boxed_str()), &drift_bridge::Limits::default()).unwrap();
        let Some(Value::Array(items)) = page.get("deliveries") else { panic!() };
        seen.extend(items.iter().map(|i| text(i, "id")));
        match page.get("next").and_then(Value::as_integer) {
            Some(n) => before = Some(n.parse().unwrap()),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|e| format!("{e:016x}.app")).collect();
    assert_eq!(seen, expected);
    let (_, by_event) = w.log_op(APP, "/list", r#"{"event":"0000000000000003"}"#).unwrap();
    assert!(by_event.contains("0000000000000003.app") && !by_event.contains("0000000000000004"), "{by_event}");
    let (_, by_conversation) = w.log_op(APP, "/list", r#"{"conversation":"8"}"#).unwrap();
    assert_eq!(by_conversation, r#"{"deliveries":[],"positions":[],"next":null}"#);
}

#[test]
fn a_log_of_a_hundred_thousand_held_deliveries_stays_bounded_and_recovers_them_all() {
    let mut w = world(&[("DRAIN_PER_SECOND", "1000")]);
    w.log_op(APP, "/pause", r#"{"destination":"app"}"#).unwrap();
    for chunk in 0..100 {
        add(&mut w, chunk * 1000..(chunk + 1) * 1000);
    }
    assert_eq!(stats(&mut w), (0, 100_000, 0, 0));
    // An alarm while paused, and the health, read a handful of rows.
    let db = &w.logs[APP];
    let before = db.statements.get();
    w.now += 1000;
    w.alarms();
    health(&mut w);
    let statements = w.logs[APP].statements.get() - before;
    assert!(statements < 40, "{statements} statements");
    // Fail them all (a hold retention of a second), then recover them all.
    let mut w2 = w;
    w2.logs[APP].conn.execute_batch("UPDATE deliveries SET status = 'failed', wake_at = wake_at + 999999999999").unwrap();
    w2.logs[APP]
        .conn
        .execute_batch(
            "UPDATE meta SET value = json_set(value, '$.counts.held', 0, '$.counts.failed', 100000) WHERE key = 'state'",
        )
        .unwrap();
    w2.log_op(APP, "/resume", r#"{"destination":"app"}"#).unwrap();
    let (status, r) = w2.log_op(APP, "/recover", r#"{"destination":"app","since":0,"status":["failed"]}"#).unwrap();
    assert_eq!((status, r.as_str()), (200, r#"{"recovered":200,"more":true}"#));
    let mut alarms = 0;
    while health(&mut w2).get("recovery").and_then(|r| r.get("more")) == Some(&Value::Bool(true)) {
        w2.now += 10;
        w2.alarms();
        alarms += 1;
        assert!(alarms < 600, "recovery never ends");
    }
    let h = health(&mut w2);
    assert_eq!(int(h.get("recovery").unwrap(), "recovered"), 100_000);
    let (status, r) = w2.log_op(APP, "/recover", r#"{"destination":"app","since":0,"status":["failed"]}"#).unwrap();
    assert_eq!((status, r.as_str()), (200, r#"{"recovered":0,"more":false}"#), "recovering again recovers nothing twice");
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
    let found = drift_bridge::delivery::log::open(&db, &drift_bridge::delivery::log::Context { apps_known: true, settings: &config.delivery, now: NOW, seed: 0 }).unwrap();
    assert_eq!(found, drift_bridge::delivery::log::schema::Found::Upgraded);
    let mut w = w;
    w.logs.insert(APP.into(), db);
    let h = health(&mut w);
    assert_eq!(text(&h, "state"), "tripped", "the breaker is taken over");
    assert_eq!(stats(&mut w), (1, 1, 0, 0), "counted once");
    let (_, one) = w.log_op(APP, "/get", r#"{"id":"0000000000000001.app"}"#).unwrap();
    assert!(one.contains(r#""body":"{\"n\":12345678901234567890}""#), "{one}");
    assert!(one.contains(r#""attemptLog":[{"attempt":1,"at":1699999999500,"code":503,"error":"the app answered 503","latencyMs":40,"probe":false},{"attempt":2,"at":1699999999600,"code":null,"error":"no answer","latencyMs":400,"probe":true}]"#), "{one}");
    assert_eq!(w.logs[APP].count("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('attempts', 'deliveries_due', 'deliveries_status')"), 0);
    // The retrying one is looked at when its time comes: held, as the app is down.
    w.now = 1_700_000_005_000 + 1;
    w.logs[APP].alarm.set(Some(w.now));
    w.alarms();
    assert_eq!(stats(&mut w), (0, 2, 0, 0));
}
