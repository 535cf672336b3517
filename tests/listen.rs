//! An app that takes a listener (`"listen": true`, `drift-bridge listen`),
//! through the simulated runtime (tests/support/world.rs), which runs its
//! requests through the listener as the entry's `DeliveryLog` does: held
//! while none is connected, as for a paused app; drained once one
//! connects; what a listener that went away had not answered is its
//! attempt's failure and waits for the next listener; at most
//! `LISTEN_FLIGHT` out at once; a listener refused for an app that is not
//! there or sends to a URL.

mod support;

use drift_bridge::delivery::effects::Ticket;
use drift_bridge::delivery::log::{Accept, NewDelivery, LISTEN_FLIGHT};
use drift_bridge::delivery::sign;
use drift_bridge::json::{self, Limits, Value};
use support::config;
use support::world::World;

const NOW: i64 = 1_700_000_000_000;
const LAP: &str = "lap";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn world() -> World {
    let destinations = r#"[{"name":"lap","listen":true,"types":["*"],"signingSecret":"LAP_SECRET"},
                           {"name":"crm","url":"https://crm.example/hook","types":["*"]}]"#;
    World::new(config(&[("DESTINATIONS", destinations), ("LAP_SECRET", SECRET)]), NOW)
}

fn accept(w: &mut World, key: &str, events: std::ops::Range<usize>) {
    let deliveries = events
        .map(|e| NewDelivery {
            event: format!("{e:016x}"),
            event_type: "conversation_push".into(),
            scope: format!("conversation:1:{}", 100 + e),
            received_at: w.now,
            org: Some("1".into()),
            body: format!(r#"{{"orgId":1,"type":"conversation_push","data":{{"conversationId":{},"n":{e}}}}}"#, 100 + e),
        })
        .collect();
    let (status, reply) = w.log_op(key, "/accept", &Accept { key: key.into(), deliveries }.encode()).unwrap();
    assert_eq!(status, 200, "{reply}");
}

fn counts(w: &mut World) -> (i64, i64, i64, i64) {
    let s = w.stats(LAP);
    let counts = s.get("counts").unwrap();
    let n = |k: &str| counts.get(k).and_then(Value::as_integer).unwrap().parse::<i64>().unwrap();
    (n("pending"), n("held"), n("delivered"), n("failed"))
}

fn parse(text: &str) -> Value<'static> {
    json::parse(Box::leak(text.to_owned().into_boxed_str()), &Limits::default()).unwrap()
}

/// The webhook ids the listening app got, in order.
fn got(w: &World) -> Vec<String> {
    w.received.iter().filter(|r| r.destination == LAP).map(|r| r.webhook_id.clone()).collect()
}

fn attempts_of(w: &mut World, event: usize) -> Vec<(Option<i64>, Option<String>)> {
    let id = format!("{event:016x}.{LAP}");
    let (status, body) = w.log_op(LAP, "/get", &format!(r#"{{"id":"{id}"}}"#)).unwrap();
    assert_eq!(status, 200, "{body}");
    let v = parse(&body);
    let Some(Value::Array(list)) = v.get("attemptLog") else { panic!("no attempts in {body}") };
    list.iter()
        .map(|a| {
            let code = a.get("code").and_then(Value::as_integer).map(|n| n.parse().unwrap());
            let error = a.get("error").and_then(Value::as_str).map(|s| s.text().into_owned());
            (code, error)
        })
        .collect()
}

#[test]
fn without_a_listener_deliveries_are_held_and_after_listen_delivered_once_each() {
    let mut w = world();
    accept(&mut w, LAP, 0..3);
    assert!(w.requests.is_empty(), "nothing is sent while nobody listens");
    assert_eq!(counts(&mut w), (0, 3, 0, 0), "held, as for a paused app");
    // Time passes: no retries spent, no breaker tripped, no alarm loop.
    w.run_for(3_600_000, 60_000);
    assert!(w.requests.is_empty());
    assert_eq!(counts(&mut w), (0, 3, 0, 0));
    let health = parse(&w.log_op(LAP, "/health", r#"{"destination":"lap"}"#).unwrap().1);
    assert_eq!(health.get("state").and_then(Value::as_str).unwrap().text(), "active");
    w.invariants().unwrap();

    let (status, hello) = w.listen(LAP);
    assert_eq!(status, 200, "{hello}");
    assert_eq!(hello, r#"{"kind":"hello","destination":"lap","waiting":3}"#);
    w.run_until(w.now + 5_000);
    assert_eq!(got(&w), ["0000000000000000", "0000000000000001", "0000000000000002"], "in their order, once each");
    assert_eq!(counts(&mut w), (0, 0, 3, 0));
    // Each went over the listener, signed as it would be to a URL, with
    // what the listener shows of it.
    let sent = w.requests.iter().filter(|r| r.destination == LAP).count();
    assert_eq!(sent, 3, "no request twice");
    assert_eq!(attempts_of(&mut w, 1), [(Some(200), None)]);

    // Live now: a new delivery goes at once.
    accept(&mut w, LAP, 3..4);
    assert_eq!(got(&w).len(), 4);
    w.run_until(w.now + 5_000);
    assert_eq!(counts(&mut w), (0, 0, 4, 0));
    w.invariants().unwrap();
}

#[test]
fn a_request_for_a_listener_carries_what_the_frame_says_and_a_valid_signature() {
    let mut w = world();
    w.listen(LAP);
    let fx = w.commit_only(LAP, "/accept", &Accept {
        key: LAP.into(),
        deliveries: vec![NewDelivery {
            event: "00000000000000aa".into(),
            event_type: "conversation_push".into(),
            scope: "conversation:1:42".into(),
            received_at: NOW,
            org: Some("1".into()),
            body: r#"{"orgId":1,"token":"drift"}"#.into(),
        }],
    }
    .encode());
    assert_eq!(fx.posts.len(), 1);
    let p = &fx.posts[0];
    let l = p.listen.as_ref().expect("a request for the listener");
    assert_eq!((l.id.as_str(), l.event_type.as_str(), l.conversation.as_deref(), l.attempt), ("00000000000000aa.lap", "conversation_push", Some("42"), 1));
    assert_eq!(p.url, "", "no URL is fetched");
    let header = |n: &str| p.headers.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone()).unwrap();
    let key = sign::key_from_secret(SECRET).unwrap();
    let ts: i64 = header("webhook-timestamp").parse().unwrap();
    assert!(sign::verify(&key, "00000000000000aa", ts, &p.body, &header("webhook-signature")));
    assert_eq!(p.body, r#"{"orgId":1}"#, "the app's token handling, as for any app");
    // An app with a URL gets none of it.
    let fx = w.commit_only("crm", "/accept", &Accept { key: "crm".into(), deliveries: vec![] }.encode());
    assert!(fx.posts.is_empty());
}

#[test]
fn a_listener_that_goes_away_mid_flight_loses_nothing_and_delivers_nothing_twice() {
    let mut w = world();
    w.listen(LAP);
    accept(&mut w, LAP, 0..2);
    assert_eq!(w.requests.len(), 2, "sent to the listener at once");
    // It goes before it answered (it had not forwarded them).
    w.unlisten(LAP);
    w.run_until(w.now + 2_000);
    assert_eq!(counts(&mut w), (0, 2, 0, 0), "each attempt failed, and waits for the next listener");
    assert_eq!(attempts_of(&mut w, 0), [(None, Some("the listener disconnected before it answered".into()))]);
    // Meanwhile a new one is held too; nothing is sent, nothing trips.
    accept(&mut w, LAP, 2..3);
    w.run_for(600_000, 60_000);
    assert_eq!(w.requests.len(), 2);
    assert_eq!(counts(&mut w), (0, 3, 0, 0));
    w.invariants().unwrap();

    let (_, hello) = w.listen(LAP);
    assert_eq!(hello, r#"{"kind":"hello","destination":"lap","waiting":3}"#);
    w.run_until(w.now + 5_000);
    assert_eq!(got(&w), ["0000000000000000", "0000000000000001", "0000000000000002"], "each once, in order");
    assert_eq!(counts(&mut w), (0, 0, 3, 0));
    assert_eq!(attempts_of(&mut w, 0).len(), 2, "the second attempt delivered it");
    let attempt = w.requests.iter().rev().find(|r| r.webhook_id == "0000000000000000").map(|r| r.ticket.clone()).unwrap();
    assert!(matches!(attempt, Ticket::Attempt { attempt: 2, .. }), "{attempt:?}");
    w.invariants().unwrap();
}

#[test]
fn a_failure_the_listener_reports_is_retried_on_the_schedule() {
    let mut w = world();
    let mut first = true;
    w.app(LAP, move |_| {
        let status = if first { 500 } else { 200 };
        first = false;
        Some(status)
    });
    w.listen(LAP);
    accept(&mut w, LAP, 0..1);
    w.run_until(w.now + 1_000);
    assert_eq!(counts(&mut w), (1, 0, 0, 0), "retrying, as for any app");
    w.run_for(3_600_000, 10_000);
    assert_eq!(counts(&mut w), (0, 0, 1, 0));
    let codes: Vec<Option<i64>> = attempts_of(&mut w, 0).into_iter().map(|(c, _)| c).collect();
    assert_eq!(codes, [Some(500), Some(200)]);
    w.invariants().unwrap();
}

#[test]
fn at_most_a_few_deliveries_are_out_to_a_listener_at_once() {
    let mut w = world();
    w.app(LAP, |_| None); // the laptop never answers (the deadline ends each)
    w.listen(LAP);
    let fx = w.commit_only(LAP, "/accept", &{
        let deliveries = (0..LISTEN_FLIGHT + 4)
            .map(|e| NewDelivery {
                event: format!("{e:016x}"),
                event_type: "t".into(),
                scope: format!("event:{e}"),
                received_at: NOW,
                org: None,
                body: "{}".into(),
            })
            .collect();
        Accept { key: LAP.into(), deliveries }.encode()
    });
    assert_eq!(fx.posts.len(), LISTEN_FLIGHT);
    assert_eq!(fx.report_within_ms, 0, "the others wait for the room each answer makes");
}

#[test]
fn a_listener_is_refused_for_an_unknown_app_or_one_with_a_url() {
    let mut w = world();
    let (status, body) = w.listen("crm");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("crm sends its deliveries to https://crm.example/…") && body.contains("\"listen\": true"), "{body}");
    assert!(!w.listeners.contains("crm"));
    let (status, body) = w.listen("nope");
    assert_eq!(status, 404, "{body}");
    // An app with a URL is not held for want of a listener.
    accept(&mut w, "crm", 0..1);
    assert_eq!(w.received.len(), 1);
}

#[test]
fn a_listen_app_is_read_with_no_url_and_one_with_both_is_refused() {
    use drift_bridge::delivery::Destinations;
    let ok = Destinations::parse(Some(r#"[{"name":"lap","listen":true,"types":["*"]}]"#), |_| None).unwrap();
    let lap = ok.get("lap").unwrap();
    assert!(lap.listen && lap.url.is_empty());
    let problems = Destinations::parse(Some(r#"[{"name":"lap","listen":true,"url":"https://a.example","types":["*"]}]"#), |_| None).unwrap_err();
    assert!(problems[0].to_string().contains("DESTINATIONS[0].url") && problems[0].to_string().contains("no URL"), "{}", problems[0]);
    let problems = Destinations::parse(Some(r#"[{"name":"lap","listen":"yes","types":["*"]}]"#), |_| None).unwrap_err();
    assert!(problems[0].to_string().contains("listen"), "{}", problems[0]);
}
