//! The outbox of drift-bridge 0.3, kept to drain what it holds, on real
//! SQLite: what a hand-off of that version stores, what its alarm forwards
//! to the delivery logs (`/accept`, with a `Forward` ticket), what it
//! forgets once they took it, how it waits for a log it cannot reach, how
//! it takes over an outbox of drift-bridge 0.2, and, through the simulated
//! runtime, that what it held reaches the apps.

mod support;

use drift_bridge::delivery::effects::{Alarm, CallResult, CallTicket, Effects, Object};
use drift_bridge::delivery::log::Accept;
use drift_bridge::delivery::outbox::{self, Input, BACKOFF_MAX_MS, FORWARD_BYTES, STUCK_MS};
use drift_bridge::json::Writer;
use drift_bridge::{translate, Options};
use support::world::World;
use support::{config, Db};

const NOW: i64 = 1_700_000_000_000;

fn two_apps() -> drift_bridge::config::Config {
    config(&[(
        "DESTINATIONS",
        r#"[{"name":"legacy","url":"https://l.example","types":["conversation_status_updated"]},
            {"name":"push","url":"https://p.example","types":["conversation_push"]}]"#,
    )])
}

/// A hand-off as an isolate of drift-bridge 0.3 wrote it:
/// `{"v":2,"scope","at","org","events":[{"id","type","to","body"}]}`, each
/// event to the apps of `config` that want it.
fn legacy_handoff(config: &drift_bridge::config::Config, event: &str, at: i64) -> String {
    let events = translate(event, &Options::new(at).limits(drift_bridge::Limits { max_bytes: 1 << 20, max_depth: 64 })).unwrap();
    let items: Vec<String> = events
        .iter()
        .map(|e| {
            let to: Vec<String> = config.delivery.destinations.list.iter().filter(|d| d.wants(&e.event_type, Some("1"))).map(|d| d.log_key()).collect();
            Writer::object()
                .str("id", &e.id.to_hex())
                .str("type", &e.event_type)
                .raw("to", &drift_bridge::json::string_array(&to))
                .str("body", &e.json)
                .finish()
        })
        .collect();
    Writer::object()
        .int("v", 2)
        .str("scope", events[0].scope.as_ref())
        .int("at", at)
        .str("org", "1")
        .raw("events", &format!("[{}]", items.join(",")))
        .finish()
}

fn handoff(config: &drift_bridge::config::Config, conversation: u64, at: i64) -> String {
    let event = format!(r#"{{"orgId":1,"type":"conversation_inactive","data":{{"lastUpdated":{at},"conversationId":{conversation}}}}}"#);
    legacy_handoff(config, &event, at)
}

fn opened() -> Db {
    let db = Db::new();
    outbox::open(&db).unwrap();
    db
}

fn step(db: &Db, c: &drift_bridge::config::Config, now: i64, input: Input) -> Effects {
    db.run(|sql| outbox::step(sql, &c.delivery, now, input)).unwrap()
}

fn accept(db: &Db, c: &drift_bridge::config::Config, payload: String, now: i64) -> Effects {
    step(db, c, now, Input::Accept(payload))
}

fn ok(ticket: &Option<CallTicket>) -> CallResult {
    CallResult { ticket: ticket.clone().unwrap(), status: Some(200), body: r#"{"added":1,"duplicates":0,"refused":0}"#.into() }
}

#[test]
fn a_hand_off_stores_one_row_per_delivery_log_and_wants_the_alarm_now() {
    let c = two_apps();
    let db = opened();
    let fx = accept(&db, &c, handoff(&c, 7, NOW), NOW);
    assert_eq!(fx.reply.as_ref().unwrap().body, r#"{"accepted":2}"#);
    assert_eq!(fx.alarm, Alarm::At(NOW));
    assert_eq!(db.count("SELECT COUNT(*) FROM outgoing"), 2);
    // A second hand-off while rows wait: the alarm is already due.
    let fx = accept(&db, &c, handoff(&c, 7, NOW + 1), NOW + 1);
    assert_eq!(fx.alarm, Alarm::Keep);
    // Rows that waited longer than any alarm lets them: it was lost, set it again.
    let later = NOW + STUCK_MS + 1;
    let fx = accept(&db, &c, handoff(&c, 7, later), later);
    assert_eq!(fx.alarm, Alarm::At(later));
}

#[test]
fn a_hand_off_that_cannot_be_read_is_refused_and_stores_nothing() {
    let c = two_apps();
    let db = opened();
    for bad in ["", "{}", r#"{"v":2,"scope":"s","at":1,"events":[{"id":"zz"}]}"#, r#"{"v":1,"scope":"s","at":1,"events":[]}"#] {
        let fx = accept(&db, &c, bad.to_owned(), NOW);
        let reply = fx.reply.unwrap();
        assert_eq!(reply.status, 400, "{bad}");
        assert!(reply.body.starts_with("the hand-off cannot be read"), "{}", reply.body);
        assert_eq!(fx.alarm, Alarm::Keep);
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM outgoing"), 0);
    assert!(Input::decode("/add", "").is_err(), "only what an outbox does");
}

#[test]
fn the_alarm_forwards_each_log_once_and_forgets_what_the_logs_took() {
    let c = two_apps();
    let db = opened();
    for i in 0..3 {
        accept(&db, &c, handoff(&c, 7, NOW + i), NOW + i);
    }
    let fx = step(&db, &c, NOW + 10, Input::Alarm);
    assert_eq!(fx.alarm, Alarm::Keep, "the alarm stays until the results come: the runtime runs it again if they never do");
    assert!(fx.reports_calls());
    let to: Vec<&Object> = fx.calls.iter().map(|c| &c.to).collect();
    // In the order the hand-off names them: the push first, then the legacy close.
    assert_eq!(to, [&Object::DeliveryLog("push".into()), &Object::DeliveryLog("legacy".into())]);
    assert!(fx.calls.iter().all(|c| c.path == "/accept"));
    let add = Accept::decode(&fx.calls[0].body).unwrap();
    assert_eq!(add.key, "push");
    assert_eq!(add.deliveries.len(), 3, "the three hand-offs in one call, in order");
    assert_eq!(add.deliveries[0].received_at, NOW);
    assert!(add.deliveries.iter().all(|d| d.event_type == "conversation_push" && d.scope == "conversation:1:7" && d.org.as_deref() == Some("1")));
    assert_eq!(fx.calls[0].ticket, Some(CallTicket::Forward { from: 0, up_to: 5, key: "push".into() }));
    // Only the push log took them.
    let results = vec![ok(&fx.calls[0].ticket), CallResult { ticket: fx.calls[1].ticket.clone().unwrap(), status: None, body: "unreachable".into() }];
    let next = step(&db, &c, NOW + 20, Input::Called(results));
    assert_eq!(db.count("SELECT COUNT(*) FROM outgoing WHERE destination = 'push'"), 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM outgoing WHERE destination = 'legacy'"), 3);
    assert_eq!(next.alarm, Alarm::At(NOW + 20 + 2000), "the legacy log is tried again in 2 s");
    assert!(next.logs[0].error && next.logs[0].text.contains(r#""status":"retrying""#), "{:?}", next.logs);
    // The next alarm forwards only what is due: the legacy rows, once their wait is over.
    let early = step(&db, &c, NOW + 1000, Input::Alarm);
    assert!(early.calls.is_empty());
    assert_eq!(early.alarm, Alarm::At(NOW + 2020));
    let fx = step(&db, &c, NOW + 2020, Input::Alarm);
    assert_eq!(fx.calls.len(), 1);
    let done = step(&db, &c, NOW + 2030, Input::Called(vec![ok(&fx.calls[0].ticket)]));
    assert_eq!(done.alarm, Alarm::Clear, "nothing left: no alarm");
    assert_eq!(db.count("SELECT COUNT(*) FROM outgoing") + db.count("SELECT COUNT(*) FROM forwarding"), 0);
}

#[test]
fn a_hand_off_accepted_while_the_alarm_awaits_is_forwarded_next() {
    let c = two_apps();
    let db = opened();
    accept(&db, &c, handoff(&c, 7, NOW), NOW);
    let fx = step(&db, &c, NOW, Input::Alarm);
    accept(&db, &c, handoff(&c, 7, NOW + 1), NOW + 1);
    let results: Vec<CallResult> = fx.calls.iter().map(|c| ok(&c.ticket)).collect();
    let next = step(&db, &c, NOW + 2, Input::Called(results));
    assert_eq!(db.count("SELECT COUNT(*) FROM outgoing"), 2, "the later hand-off's rows stay");
    assert_eq!(next.alarm, Alarm::At(NOW + 2), "and go at once");
}

#[test]
fn waits_double_up_to_five_minutes_and_end_with_the_hold_retention() {
    let c = config(&[
        ("DESTINATIONS", r#"[{"name":"push","url":"https://p.example","types":["conversation_push"]}]"#),
        ("HOLD_RETENTION_SECONDS", "3600"),
    ]);
    let db = opened();
    accept(&db, &c, handoff(&c, 7, NOW), NOW);
    let mut now = NOW;
    let mut waits = Vec::new();
    loop {
        let fx = step(&db, &c, now, Input::Alarm);
        let failed = vec![CallResult { ticket: fx.calls[0].ticket.clone().unwrap(), status: Some(503), body: "overloaded".into() }];
        let next = step(&db, &c, now, Input::Called(failed));
        match next.alarm {
            Alarm::At(at) => {
                waits.push(at - now);
                now = at;
            }
            Alarm::Clear => {
                let line = &next.logs.last().unwrap().text;
                assert!(line.contains(r#""status":"dropped""#) && line.contains("HOLD_RETENTION_SECONDS"), "{line}");
                assert!(line.contains(r#""deliveries":1"#), "{line}");
                break;
            }
            Alarm::Keep => panic!("the results always set the alarm"),
        }
    }
    assert_eq!(&waits[..9], [2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, BACKOFF_MAX_MS]);
    assert!(waits[9..].iter().all(|w| *w == BACKOFF_MAX_MS));
    assert!(now - NOW >= 3_600_000 && now - NOW < 3_600_000 + BACKOFF_MAX_MS, "given up after an hour");
    assert_eq!(db.count("SELECT COUNT(*) FROM outgoing") + db.count("SELECT COUNT(*) FROM forwarding"), 0);
}

#[test]
fn a_log_that_refuses_the_request_is_not_asked_again() {
    let c = two_apps();
    let db = opened();
    accept(&db, &c, handoff(&c, 7, NOW), NOW);
    let fx = step(&db, &c, NOW, Input::Alarm);
    let results: Vec<CallResult> = fx
        .calls
        .iter()
        .map(|c| CallResult { ticket: c.ticket.clone().unwrap(), status: Some(400), body: "/accept at deliveries[0]: missing".into() })
        .collect();
    let next = step(&db, &c, NOW, Input::Called(results));
    assert_eq!(next.alarm, Alarm::Clear);
    assert_eq!(next.logs.len(), 2);
    assert!(next.logs.iter().all(|l| l.error && l.text.contains(r#""status":"dropped""#)));
}

#[test]
fn big_hand_offs_go_in_calls_of_at_most_a_mebibyte() {
    let c = config(&[("DESTINATIONS", r#"[{"name":"all","url":"https://a.example","types":["*"]}]"#), ("MAX_BODY_BYTES", "1048576")]);
    let db = opened();
    let pad = "x".repeat(400_000);
    for i in 0..5 {
        let event = format!(r#"{{"orgId":1,"type":"new_message","data":{{"n":{i},"pad":"{pad}"}}}}"#);
        accept(&db, &c, legacy_handoff(&c, &event, NOW), NOW);
    }
    let mut sizes = Vec::new();
    let mut now = NOW;
    while db.count("SELECT COUNT(*) FROM outgoing") > 0 {
        let fx = step(&db, &c, now, Input::Alarm);
        assert_eq!(fx.calls.len(), 1);
        assert!(fx.calls[0].body.len() <= FORWARD_BYTES + 4096, "{}", fx.calls[0].body.len());
        sizes.push(Accept::decode(&fx.calls[0].body).unwrap().deliveries.len());
        let next = step(&db, &c, now, Input::Called(vec![ok(&fx.calls[0].ticket)]));
        now += 1;
        if db.count("SELECT COUNT(*) FROM outgoing") > 0 {
            assert_eq!(next.alarm, Alarm::At(now - 1), "more is due at once");
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
}

#[test]
fn takes_over_an_outbox_of_drift_bridge_0_2() {
    let c = two_apps();
    let db = Db::new();
    db.conn
        .execute_batch(
            r#"CREATE TABLE seen (id TEXT PRIMARY KEY, at INTEGER NOT NULL);
               CREATE INDEX seen_at ON seen (at);
               CREATE TABLE pending_events (event_id TEXT PRIMARY KEY, type TEXT NOT NULL, scope TEXT NOT NULL, at INTEGER NOT NULL, body TEXT NOT NULL);
               CREATE TABLE pending (id TEXT PRIMARY KEY, destination TEXT NOT NULL, event_id TEXT NOT NULL, tries INTEGER NOT NULL DEFAULT 0, retry_at INTEGER NOT NULL DEFAULT 0);
               INSERT INTO seen VALUES ('0123456789abcdef.push', 5), ('0123456789abcdef.legacy', 5);
               INSERT INTO pending_events VALUES ('0123456789abcdef', 'conversation_push', 'conversation:1:7', 5, '{"orgId":1,"n":12345678901234567890}');
               INSERT INTO pending VALUES ('0123456789abcdef.push', 'push', '0123456789abcdef', 2, 0);"#,
        )
        .unwrap();
    outbox::open(&db).unwrap();
    let fx = step(&db, &c, NOW, Input::Alarm);
    assert_eq!(fx.calls.len(), 1);
    let add = Accept::decode(&fx.calls[0].body).unwrap();
    assert_eq!(add.key, "push");
    assert_eq!(add.deliveries[0].event, "0123456789abcdef");
    assert_eq!(add.deliveries[0].body, r#"{"orgId":1,"n":12345678901234567890}"#, "digit for digit");
    assert_eq!((add.deliveries[0].received_at, add.deliveries[0].scope.as_str()), (5, "conversation:1:7"));
    assert_eq!(db.count("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('seen', 'pending', 'pending_events')"), 0);
}

#[test]
fn what_an_old_outbox_holds_reaches_the_apps_once_and_it_keeps_nothing() {
    let c = two_apps();
    let mut w = World::new(c.clone(), NOW);
    let payload = handoff(&c, 7, NOW);
    assert_eq!(w.outbox_accept("conversation:1:7", &payload).unwrap().0, 200);
    // An isolate of the older version hands the same off again.
    assert_eq!(w.outbox_accept("conversation:1:7", &payload).unwrap().0, 200);
    w.run_until(NOW + 5_000);
    let got: Vec<&str> = w.received.iter().map(|r| r.destination.as_str()).collect();
    assert_eq!(got, ["push", "legacy"], "each once");
    assert!(w.trace.iter().any(|t| t == "outbox conversation:1:7 alarm: call"), "{:#?}", w.trace);
    assert!(w.trace.iter().any(|t| t == "outbox conversation:1:7 /called: alarm"), "{:#?}", w.trace);
    assert_eq!(w.outboxes["conversation:1:7"].count("SELECT COUNT(*) FROM outgoing"), 0);
    assert_eq!(w.outboxes["conversation:1:7"].alarm.get(), None);
    w.invariants().unwrap();
}
