//! The outbox's operations on real SQLite: what `/accept` stores, what its
//! alarm forwards, what it forgets, how it waits for a delivery log it
//! cannot reach, and how it takes over an outbox of drift-bridge 0.2.

mod support;

use drift_bridge::delivery::effects::{Alarm, CallResult, Object};
use drift_bridge::delivery::handoff;
use drift_bridge::delivery::message::Add;
use drift_bridge::delivery::outbox::{self, BACKOFF_MAX_MS, FORWARD_BYTES, STUCK_MS};
use drift_bridge::{translate, Options};
use support::{config, Db};

const NOW: i64 = 1_700_000_000_000;

fn two_apps() -> drift_bridge::config::Config {
    config(&[(
        "DESTINATIONS",
        r#"[{"name":"legacy","url":"https://l.example","types":["conversation_status_updated"]},
            {"name":"push","url":"https://p.example","types":["conversation_push"]}]"#,
    )])
}

fn handoff(config: &drift_bridge::config::Config, conversation: u64, at: i64) -> String {
    let event = format!(r#"{{"orgId":1,"type":"conversation_inactive","data":{{"lastUpdated":{at},"conversationId":{conversation}}}}}"#);
    let events = translate(&event, &Options::new(at)).unwrap();
    handoff::plan(&events, &config.delivery.destinations, Some("1"), at).unwrap().payload
}

fn opened() -> Db {
    let db = Db::new();
    outbox::open(&db).unwrap();
    db
}

fn ok(ticket: &str) -> CallResult {
    CallResult { ticket: ticket.into(), status: Some(200), body: r#"{"added":1,"duplicates":0,"again":0,"refused":0}"#.into() }
}

#[test]
fn accept_stores_one_row_per_destination_and_wants_the_alarm_now() {
    let c = two_apps();
    let db = opened();
    let fx = db.run(|sql| outbox::accept(sql, &handoff(&c, 7, NOW), NOW)).unwrap();
    assert_eq!(fx.reply.as_ref().unwrap().body, r#"{"accepted":2}"#);
    assert_eq!(fx.alarm, Alarm::At(NOW));
    assert_eq!(db.count("SELECT COUNT(*) FROM outgoing"), 2);
    // A second hand-off while rows wait: the alarm is already due.
    let fx = db.run(|sql| outbox::accept(sql, &handoff(&c, 7, NOW + 1), NOW + 1)).unwrap();
    assert_eq!(fx.alarm, Alarm::Keep);
    // Rows that waited longer than any alarm lets them: it was lost, set it again.
    let later = NOW + STUCK_MS + 1;
    let fx = db.run(|sql| outbox::accept(sql, &handoff(&c, 7, later), later)).unwrap();
    assert_eq!(fx.alarm, Alarm::At(later));
}

#[test]
fn a_hand_off_that_cannot_be_read_is_refused_and_stores_nothing() {
    let db = opened();
    for bad in ["", "{}", r#"{"v":2,"scope":"s","at":1,"events":[{"id":"zz"}]}"#] {
        let fx = db.run(|sql| outbox::accept(sql, bad, NOW)).unwrap();
        let reply = fx.reply.unwrap();
        assert_eq!(reply.status, 400, "{bad}");
        assert!(reply.body.starts_with("the hand-off cannot be read"), "{}", reply.body);
        assert_eq!(fx.alarm, Alarm::Keep);
    }
    assert_eq!(db.count("SELECT COUNT(*) FROM outgoing"), 0);
}

#[test]
fn the_alarm_forwards_each_destination_once_and_forgets_what_the_logs_took() {
    let c = two_apps();
    let db = opened();
    for i in 0..3 {
        db.run(|sql| outbox::accept(sql, &handoff(&c, 7, NOW + i), NOW + i)).unwrap();
    }
    let fx = db.run(|sql| outbox::alarm(sql, NOW + 10)).unwrap();
    assert_eq!(fx.then, Some("forwarded"));
    assert_eq!(fx.alarm, Alarm::Keep, "the alarm stays until the continuation: the runtime runs it again if it never ends");
    let to: Vec<&Object> = fx.calls.iter().map(|c| &c.to).collect();
    // In the order the hand-off names them: the push first, then the legacy close.
    assert_eq!(to, [&Object::DeliveryLog("push".into()), &Object::DeliveryLog("legacy".into())]);
    let add = Add::decode(&fx.calls[0].body).unwrap();
    assert_eq!(add.destination, "push");
    assert_eq!(add.deliveries.len(), 3, "the three hand-offs in one call, in order");
    assert_eq!(add.deliveries[0].received_at, NOW);
    assert!(add.deliveries.iter().all(|d| d.id.ends_with(".push") && d.event_type == "conversation_push"));
    // Only the push log took them.
    let results = [ok(&fx.calls[0].ticket), CallResult { ticket: fx.calls[1].ticket.clone(), status: None, body: "unreachable".into() }];
    let next = db.run(|sql| outbox::forwarded(sql, &c.delivery, &results, NOW + 20)).unwrap();
    assert_eq!(db.count("SELECT COUNT(*) FROM outgoing WHERE destination = 'push'"), 0);
    assert_eq!(db.count("SELECT COUNT(*) FROM outgoing WHERE destination = 'legacy'"), 3);
    assert_eq!(next.alarm, Alarm::At(NOW + 20 + 2000), "the legacy log is tried again in 2 s");
    assert!(next.logs[0].error && next.logs[0].text.contains(r#""status":"retrying""#), "{:?}", next.logs);
    // The next alarm forwards only what is due: the legacy rows, once their wait is over.
    let early = db.run(|sql| outbox::alarm(sql, NOW + 1000)).unwrap();
    assert!(early.calls.is_empty());
    assert_eq!(early.alarm, Alarm::At(NOW + 2020));
    let fx = db.run(|sql| outbox::alarm(sql, NOW + 2020)).unwrap();
    assert_eq!(fx.calls.len(), 1);
    let done = db.run(|sql| outbox::forwarded(sql, &c.delivery, &[ok(&fx.calls[0].ticket)], NOW + 2030)).unwrap();
    assert_eq!(done.alarm, Alarm::Clear, "nothing left: no alarm");
    assert_eq!(db.count("SELECT COUNT(*) FROM outgoing") + db.count("SELECT COUNT(*) FROM forwarding"), 0);
}

#[test]
fn a_hand_off_accepted_while_the_alarm_awaits_is_forwarded_next() {
    let c = two_apps();
    let db = opened();
    db.run(|sql| outbox::accept(sql, &handoff(&c, 7, NOW), NOW)).unwrap();
    let fx = db.run(|sql| outbox::alarm(sql, NOW)).unwrap();
    db.run(|sql| outbox::accept(sql, &handoff(&c, 7, NOW + 1), NOW + 1)).unwrap();
    let results: Vec<CallResult> = fx.calls.iter().map(|c| ok(&c.ticket)).collect();
    let next = db.run(|sql| outbox::forwarded(sql, &c.delivery, &results, NOW + 2)).unwrap();
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
    db.run(|sql| outbox::accept(sql, &handoff(&c, 7, NOW), NOW)).unwrap();
    let mut now = NOW;
    let mut waits = Vec::new();
    loop {
        let fx = db.run(|sql| outbox::alarm(sql, now)).unwrap();
        let failed = [CallResult { ticket: fx.calls[0].ticket.clone(), status: Some(503), body: "overloaded".into() }];
        let next = db.run(|sql| outbox::forwarded(sql, &c.delivery, &failed, now)).unwrap();
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
            Alarm::Keep => panic!("the continuation always sets the alarm"),
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
    db.run(|sql| outbox::accept(sql, &handoff(&c, 7, NOW), NOW)).unwrap();
    let fx = db.run(|sql| outbox::alarm(sql, NOW)).unwrap();
    let results: Vec<CallResult> =
        fx.calls.iter().map(|c| CallResult { ticket: c.ticket.clone(), status: Some(400), body: "/add at deliveries[0]: missing".into() }).collect();
    let next = db.run(|sql| outbox::forwarded(sql, &c.delivery, &results, NOW)).unwrap();
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
        let events = translate(&event, &Options::new(NOW).limits(drift_bridge::Limits { max_bytes: 1 << 20, max_depth: 64 })).unwrap();
        let plan = handoff::plan(&events, &c.delivery.destinations, Some("1"), NOW).unwrap();
        db.run(|sql| outbox::accept(sql, &plan.payload, NOW)).unwrap();
    }
    let mut sizes = Vec::new();
    let mut now = NOW;
    while db.count("SELECT COUNT(*) FROM outgoing") > 0 {
        let fx = db.run(|sql| outbox::alarm(sql, now)).unwrap();
        assert_eq!(fx.calls.len(), 1);
        assert!(fx.calls[0].body.len() <= FORWARD_BYTES + 4096, "{}", fx.calls[0].body.len());
        sizes.push(Add::decode(&fx.calls[0].body).unwrap().deliveries.len());
        let next = db.run(|sql| outbox::forwarded(sql, &c.delivery, &[ok(&fx.calls[0].ticket)], now)).unwrap();
        now += 1;
        if db.count("SELECT COUNT(*) FROM outgoing") > 0 {
            assert_eq!(next.alarm, Alarm::At(now - 1), "more is due at once");
        }
    }
    assert_eq!(sizes, [2, 2, 1]);
}

#[test]
fn takes_over_an_outbox_of_drift_bridge_0_2() {
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
    let fx = db.run(|sql| outbox::alarm(sql, NOW)).unwrap();
    assert_eq!(fx.calls.len(), 1);
    let add = Add::decode(&fx.calls[0].body).unwrap();
    assert_eq!(add.deliveries[0].id, "0123456789abcdef.push");
    assert_eq!(add.deliveries[0].body, r#"{"orgId":1,"n":12345678901234567890}"#, "digit for digit");
    assert_eq!((add.deliveries[0].received_at, add.deliveries[0].scope.as_str()), (5, "conversation:1:7"));
    assert_eq!(db.count("SELECT COUNT(*) FROM sqlite_master WHERE name IN ('seen', 'pending', 'pending_events')"), 0);
}
