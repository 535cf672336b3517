//! Bodies with several events: a JSON array or NDJSON, one result per event.

use drift_bridge::{translate_batch, Batch, ErrorCode, LegacyPolicy, Limits, Options};

const INACTIVE: &str = r#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}"#;

fn batch(body: &str) -> Batch {
    translate_batch(body, &Options::new(0).legacy(LegacyPolicy::Never), &Limits::default())
}

#[test]
fn one_event_array_and_ndjson() {
    match batch(INACTIVE) {
        Batch::One(Ok(events)) => assert_eq!(events.len(), 2),
        other => panic!("{other:?}"),
    }
    let bad = r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":"x"}}"#;
    for (name, body) in [
        ("array", format!("[{INACTIVE},{bad}]")),
        ("ndjson", format!("{INACTIVE}\n\n{bad}\n")),
        ("ndjson with a broken first line", format!("{{\"orgId\":\n{INACTIVE}\n")),
    ] {
        let Batch::Many(results) = batch(&body) else { panic!("{name}: not a batch") };
        assert_eq!(results.len(), 2, "{name}");
        if name.contains("broken") {
            assert_eq!(results[0].as_ref().unwrap_err().code(), ErrorCode::InvalidJson, "{name}");
            assert_eq!(results[0].as_ref().unwrap_err().path(), "[0].orgId", "{name}");
            assert!(results[1].is_ok(), "{name}");
        } else {
            assert_eq!(results[0].as_ref().unwrap().len(), 2, "{name}");
            let err = results[1].as_ref().unwrap_err();
            assert_eq!(err.path(), "[1].data.conversationId", "{name}");
        }
    }
}

#[test]
fn ndjson_errors_give_the_line_of_the_body() {
    let Batch::Many(results) = batch(&format!("{INACTIVE}\n\n{{\"orgId\":1,\"type\":tru}}\n")) else { panic!() };
    let err = results[1].as_ref().unwrap_err();
    assert_eq!(err.position(), Some((3, 19)), "{err}");
}

#[test]
fn response_bodies() {
    assert!(batch(INACTIVE).to_json().starts_with(r#"{"events":[{"id":"b624515312c8ce89","event":{"orgId":1,"#));
    assert_eq!(
        batch("[]").to_json(),
        r#"{"results":[]}"#
    );
    assert_eq!(
        batch("[1]").to_json(),
        r#"{"results":[{"error":{"code":"invalid_event","message":"expected a JSON object (one Drift event), found an integer","path":"[0]"}}]}"#
    );
    assert_eq!(
        batch("{\"a\":").to_json(),
        r#"{"error":{"code":"invalid_json","message":"unexpected end of input; expected a JSON value (line 1, column 6)","path":"a","line":1,"column":6}}"#
    );
    // Trailing data on a single line is one bad event, not a batch.
    assert!(matches!(batch(&format!("{INACTIVE} x")), Batch::One(Err(_))));
    assert!(matches!(batch(&format!("{INACTIVE}{INACTIVE}\n")), Batch::One(Err(_))));
    // A pretty-printed single event is one event, not NDJSON.
    assert!(matches!(batch("{\n  \"orgId\": 1,\n  \"type\": \"x\"\n}"), Batch::One(Ok(_))));
}
