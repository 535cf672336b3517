//! The translation rules, one table per rule, in the words of the issue that
//! defined them.

use drift_bridge::{translate, ErrorCode, LegacyPolicy, Limits, Options};

const NOW: i64 = 1_700_000_000_000;

/// Translates and returns the outbound events' JSON.
fn run(input: &str, policy: LegacyPolicy) -> Vec<String> {
    translate(input, &Options::new(NOW).legacy(policy))
        .unwrap_or_else(|e| panic!("{input} was rejected: {e}"))
        .into_iter()
        .map(|e| e.json)
        .collect()
}

const INACTIVE: &str = r#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}"#;
const PUSH_OF_INACTIVE: &str = r#"{"orgId":1,"type":"conversation_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}"#;
const LEGACY_CLOSE: &str = r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}"#;

#[test]
fn drifts_published_example() {
    assert_eq!(run(INACTIVE, LegacyPolicy::Always), [INACTIVE, PUSH_OF_INACTIVE, LEGACY_CLOSE]);
}

#[test]
fn every_row_of_the_rules_table() {
    let manual = r#"{"orgId":1,"type":"conversation_manual_push","data":{"conversationId":5,"lastUpdated":10},"token":"t"}"#;
    let push = r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":5,"lastUpdated":10},"token":"t"}"#;
    let close = r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":5,"status":"closed","changedAt":10},"token":"t"}"#;
    let open = r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":5,"status":"open","changedAt":10},"token":"t"}"#;
    let message = r#"{"orgId":1,"type":"new_message","data":{"conversationId":5,"body":"hi"},"token":"t"}"#;
    let derived_manual = r#"{"orgId":1,"type":"conversation_manual_push","data":{"conversationId":5,"lastUpdated":10},"token":"t"}"#;
    let cases: &[(&str, &str, Vec<&str>)] = &[
        ("inactive: itself, push, legacy close", INACTIVE, vec![INACTIVE, PUSH_OF_INACTIVE, LEGACY_CLOSE]),
        ("manual push: itself, push, legacy close", manual, vec![manual, push, close]),
        ("push: itself, legacy close", push, vec![push, close]),
        ("status closed: itself, manual push, push", close, vec![close, derived_manual, push]),
        ("status open: itself only", open, vec![open]),
        ("any other type: itself only", message, vec![message]),
    ];
    for (name, input, expected) in cases {
        assert_eq!(&run(input, LegacyPolicy::Always), expected, "{name}");
    }
}

#[test]
fn policies_and_both_timeline_boundaries() {
    let at = |ms: i64, kind: &str| {
        format!(r#"{{"orgId":1,"type":"{kind}","data":{{"conversationId":9,"lastUpdated":{ms}}}}}"#)
    };
    // (event time, legacy close under timeline)
    let times = [
        (1_590_969_599_999, false), // 2020-05-31T23:59:59.999Z
        (1_590_969_600_000, true),  // 2020-06-01T00:00:00Z
        (1_601_510_399_999, true),  // 2020-09-30T23:59:59.999Z
        (1_601_510_400_000, false), // 2020-10-01T00:00:00Z
        (1_591_813_767_000, true),  // Drift's example
        (NOW, false),
    ];
    for kind in ["conversation_inactive", "conversation_manual_push", "conversation_push"] {
        let base = if kind == "conversation_push" { 1 } else { 2 };
        for (ms, inside) in times {
            let input = at(ms, kind);
            let count = |p| run(&input, p).len();
            assert_eq!(count(LegacyPolicy::Always), base + 1, "{kind} at {ms}, always");
            assert_eq!(count(LegacyPolicy::Never), base, "{kind} at {ms}, never");
            assert_eq!(count(LegacyPolicy::Timeline), base + usize::from(inside), "{kind} at {ms}, timeline");
        }
    }
}

#[test]
fn without_a_time_the_receive_clock_decides() {
    let input = r#"{"orgId":1,"type":"conversation_inactive","data":{"conversationId":9}}"#;
    let inside = Options::new(1_591_000_000_000).legacy(LegacyPolicy::Timeline);
    let events = translate(input, &inside).unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[2].json,
        r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":9,"status":"closed","changedAt":1591000000000}}"#
    );
    let outside = Options::new(NOW).legacy(LegacyPolicy::Timeline);
    assert_eq!(translate(input, &outside).unwrap().len(), 2);

    let close = r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":9,"status":"closed"}}"#;
    let events = translate(close, &Options::new(42)).unwrap();
    assert_eq!(events[1].json, r#"{"orgId":1,"type":"conversation_manual_push","data":{"conversationId":9,"lastUpdated":42}}"#);
}

#[test]
fn without_a_time_ids_come_from_the_content_so_a_repeat_is_harmless() {
    let ids = |input: &str, now: i64| -> Vec<String> {
        translate(input, &Options::new(now)).unwrap().iter().map(|e| e.id.to_hex()).collect()
    };
    let cases = [
        ("inactive", r#"{"orgId":1,"type":"conversation_inactive","data":{"conversationId":9}}"#),
        ("manual push", r#"{"orgId":1,"type":"conversation_manual_push","data":{"conversationId":9,"x":[1]}}"#),
        ("push", r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":9}}"#),
        ("close", r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":9,"status":"closed"}}"#),
    ];
    for (name, input) in cases {
        // Received a day apart: the same ids, while the derived events carry
        // each time they were received.
        assert_eq!(ids(input, NOW), ids(input, NOW + 86_400_000), "{name}");
        let later = translate(input, &Options::new(NOW + 1)).unwrap();
        assert!(later.iter().skip(1).all(|e| !e.json.contains(&NOW.to_string())), "{name}: the derived events carry the receive time");
    }
    // Other data, another event.
    assert_ne!(ids(cases[0].1, NOW), ids(r#"{"orgId":1,"type":"conversation_inactive","data":{"conversationId":9,"n":1}}"#, NOW));
    // The push derived from a timeless inactive is Drift's own timeless push
    // with the same data.
    assert_eq!(ids(cases[0].1, NOW)[1], ids(cases[2].1, NOW + 5)[0]);
    // And no timeless event takes the id of one with a time.
    let timed = r#"{"orgId":1,"type":"conversation_inactive","data":{"conversationId":9,"lastUpdated":1}}"#;
    assert!(ids(timed, NOW).iter().all(|id| !ids(cases[0].1, NOW).contains(id)));
}

#[test]
fn legacy_close_has_orgid_and_token_and_nothing_else() {
    let input = r#"{"token":"s3cr\"et","extra":{"x":1},"orgId":7,"type":"conversation_push","data":{"conversationId":3,"lastUpdated":99,"more":[1,2]}}"#;
    let out = run(input, LegacyPolicy::Always);
    assert_eq!(out[0], input, "the inbound event passes unchanged");
    assert_eq!(
        out[1],
        r#"{"orgId":7,"type":"conversation_status_updated","data":{"conversationId":3,"status":"closed","changedAt":99},"token":"s3cr\"et"}"#
    );
}

#[test]
fn numbers_pass_digit_for_digit_and_unknown_fields_stay() {
    let input = r#"{"orgId":18446744073709551617,"type":"conversation_inactive","data":{"conversationId":12345678901234567890123,"lastUpdated":1591813767000,"score":1.10,"tiny":1e-400,"nested":{"deep":[9007199254740993,{"k":-0.0}]}},"future":{"field":true},"token":"x"}"#;
    let out = run(input, LegacyPolicy::Always);
    assert_eq!(out[0], input);
    assert_eq!(out[1], input.replace("conversation_inactive", "conversation_push"));
    assert!(out[2].starts_with(r#"{"orgId":18446744073709551617,"type":"conversation_status_updated","data":{"conversationId":12345678901234567890123,"#));

    // Whitespace goes, every token stays.
    let spaced = "{ \"orgId\" : 1 ,\n \"type\":\"x\", \"data\": { \"v\": 1.50 } }";
    assert_eq!(run(spaced, LegacyPolicy::Always), [r#"{"orgId":1,"type":"x","data":{"v":1.50}}"#]);
}

#[test]
fn escaped_type_and_status_are_understood_and_kept() {
    let input = r#"{"orgId":1,"type":"conversation\u005finactive","data":{"conversationId":1,"lastUpdated":2}}"#;
    let events = translate(input, &Options::new(NOW)).unwrap();
    assert_eq!(events.len(), 3);
    assert_eq!(events[0].json, input);
    assert_eq!(events[0].event_type, "conversation_inactive");

    let close = r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":1,"status":"clos\u0065d","changedAt":2}}"#;
    assert_eq!(translate(close, &Options::new(NOW)).unwrap().len(), 3);
}

#[test]
fn errors_have_a_code_a_path_and_say_what() {
    let cases: &[(&str, &str, ErrorCode, &str, &str)] = &[
        ("not JSON", "{\"orgId\":1,", ErrorCode::InvalidJson, "", "unexpected end of input; expected a member name in double quotes (line 1, column 12)"),
        ("bad token inside", "{\"orgId\":1,\"data\":{\"a\":[1,}}", ErrorCode::InvalidJson, "data.a[1]", "line 1"),
        ("not an object", "[1,2]", ErrorCode::InvalidEvent, "", "found an array"),
        ("type missing", r#"{"orgId":1,"data":{}}"#, ErrorCode::InvalidEvent, "type", "missing"),
        ("type not a string", r#"{"orgId":1,"type":3}"#, ErrorCode::InvalidEvent, "type", "found an integer"),
        ("orgId missing", r#"{"type":"x"}"#, ErrorCode::InvalidEvent, "orgId", "missing"),
        ("orgId negative", r#"{"orgId":-1,"type":"x"}"#, ErrorCode::InvalidEvent, "orgId", "non-negative integer, found -1"),
        ("orgId a string", r#"{"orgId":"1","type":"x"}"#, ErrorCode::InvalidEvent, "orgId", "found a string"),
        ("orgId decimal", r#"{"orgId":1.5,"type":"x"}"#, ErrorCode::InvalidEvent, "orgId", "found a non-integer number"),
        ("token not a string", r#"{"orgId":1,"type":"x","token":5}"#, ErrorCode::InvalidEvent, "token", "expected a string"),
        ("data missing", r#"{"orgId":1,"type":"conversation_push"}"#, ErrorCode::InvalidEvent, "data", "missing"),
        ("data not an object", r#"{"orgId":1,"type":"conversation_push","data":[]}"#, ErrorCode::InvalidEvent, "data", "found an array"),
        ("conversationId missing", r#"{"orgId":1,"type":"conversation_inactive","data":{}}"#, ErrorCode::InvalidEvent, "data.conversationId", "missing"),
        ("conversationId a string", r#"{"orgId":1,"type":"conversation_inactive","data":{"conversationId":"5"}}"#, ErrorCode::InvalidEvent, "data.conversationId", "expected an integer, found a string"),
        ("conversationId decimal", r#"{"orgId":1,"type":"conversation_manual_push","data":{"conversationId":5.0}}"#, ErrorCode::InvalidEvent, "data.conversationId", "found a non-integer number"),
        ("lastUpdated not an integer", r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":5,"lastUpdated":"yesterday"}}"#, ErrorCode::InvalidEvent, "data.lastUpdated", "found a string"),
        ("lastUpdated null", r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":5,"lastUpdated":null}}"#, ErrorCode::InvalidEvent, "data.lastUpdated", "found null"),
        ("changedAt not an integer", r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":5,"status":"closed","changedAt":1.5}}"#, ErrorCode::InvalidEvent, "data.changedAt", "expected an integer"),
        ("status missing", r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":5}}"#, ErrorCode::InvalidEvent, "data.status", "missing"),
        ("status not a string", r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":5,"status":true}}"#, ErrorCode::InvalidEvent, "data.status", "found a boolean"),
        ("duplicate token", r#"{"orgId":1,"type":"x","token":"a","token":"b"}"#, ErrorCode::DuplicateKey, "token", "\"token\" appears more than once"),
        ("duplicate nested key", r#"{"orgId":1,"type":"x","data":{"a":{"b":1,"b":1}}}"#, ErrorCode::DuplicateKey, "data.a.b", "more than once"),
    ];
    for (name, input, code, path, says) in cases {
        let err = translate(input, &Options::new(NOW)).expect_err(name);
        assert_eq!(err.code(), *code, "{name}: {err}");
        assert_eq!(err.path(), *path, "{name}: {err}");
        assert!(err.to_string().contains(says), "{name}: {err:?} should say {says:?}");
    }
    let err = translate(r#"{"orgId":1,"type":"conversation_inactive","data":{"conversationId":"5"}}"#, &Options::new(NOW)).unwrap_err();
    assert_eq!(err.to_string(), "invalid_event at data.conversationId: expected an integer, found a string");
}

#[test]
fn size_and_depth_limits() {
    let big = format!(r#"{{"orgId":1,"type":"x","data":{{"pad":"{}"}}}}"#, "a".repeat(70_000));
    let err = translate(&big, &Options::new(NOW)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::TooLarge);
    assert!(err.to_string().contains("limit is 65536 bytes"), "{err}");

    let roomy = Options::new(NOW).limits(Limits { max_bytes: 100_000, ..Limits::default() });
    assert!(translate(&big, &roomy).is_ok(), "the limit is configurable");

    let exact = |n: usize| {
        let head = r#"{"orgId":1,"type":"x","data":{"pad":""#;
        let tail = r#""}}"#;
        format!("{head}{}{tail}", "a".repeat(n - head.len() - tail.len()))
    };
    assert!(translate(&exact(65_536), &Options::new(NOW)).is_ok(), "exactly at the limit");
    assert_eq!(translate(&exact(65_537), &Options::new(NOW)).unwrap_err().code(), ErrorCode::TooLarge);

    let deep = format!(r#"{{"orgId":1,"type":"x","data":{}1{}}}"#, "[".repeat(200), "]".repeat(200));
    let err = translate(&deep, &Options::new(NOW)).unwrap_err();
    assert_eq!(err.code(), ErrorCode::TooLarge);
    assert!(err.path().starts_with("data[0][0]"), "{err}");
}
