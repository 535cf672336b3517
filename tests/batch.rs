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

mod items {
    //! `translate_items`: the same results as `translate_batch`, with the
    //! form of the body and where each event starts.

    use super::INACTIVE;
    use drift_bridge::batch::{translate_items, Form};
    use drift_bridge::{translate_batch, Batch, LegacyPolicy, Limits, Options};

    fn options() -> Options {
        Options::new(0).legacy(LegacyPolicy::Never)
    }

    const BAD: &str = r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":"x"}}"#;

    /// (name, body, form, each event's (line, text))
    type Case = (&'static str, String, Form, Vec<(u32, String)>);

    fn cases() -> Vec<Case> {
        let pretty = "{\n  \"orgId\": 1,\n  \"type\": \"x\"\n}";
        vec![
            ("one event", INACTIVE.to_owned(), Form::One, vec![(1, INACTIVE.to_owned())]),
            ("one event after blank lines", format!("\n\n  {pretty}\n\n"), Form::One, vec![(3, pretty.to_owned())]),
            ("not JSON", "  nope".to_owned(), Form::One, vec![(1, "nope".to_owned())]),
            ("empty", String::new(), Form::One, vec![(1, String::new())]),
            ("array on one line", format!("[{INACTIVE},{BAD}]"), Form::Array, vec![(1, INACTIVE.to_owned()), (1, BAD.to_owned())]),
            (
                "array, one event a line",
                format!("[\n  {INACTIVE},\n  {BAD}\n]\n"),
                Form::Array,
                vec![(2, INACTIVE.to_owned()), (3, BAD.to_owned())],
            ),
            (
                "array of pretty events",
                format!("[{pretty}, {pretty},\n\n{BAD}]"),
                Form::Array,
                vec![(1, pretty.to_owned()), (4, pretty.to_owned()), (9, BAD.to_owned())],
            ),
            (
                "array with brackets, commas and quotes inside strings",
                r#"[{"type":"a]\"},[","orgId":1} , [1,[2]],"s\\",-1.5e3,true]"#.to_owned(),
                Form::Array,
                vec![
                    (1, r#"{"type":"a]\"},[","orgId":1}"#.to_owned()),
                    (1, "[1,[2]]".to_owned()),
                    (1, r#""s\\""#.to_owned()),
                    (1, "-1.5e3".to_owned()),
                    (1, "true".to_owned()),
                ],
            ),
            ("empty array", " [ ] ".to_owned(), Form::Array, vec![]),
            (
                "ndjson with blank lines",
                format!("{INACTIVE}\n\n{BAD}\n   \n{INACTIVE}\n"),
                Form::Ndjson,
                vec![(1, INACTIVE.to_owned()), (3, BAD.to_owned()), (5, INACTIVE.to_owned())],
            ),
            (
                "ndjson with CRLF",
                format!("{INACTIVE}\r\n{BAD}\r\n"),
                Form::Ndjson,
                vec![(1, INACTIVE.to_owned()), (2, BAD.to_owned())],
            ),
            (
                "ndjson with a broken line",
                format!("{{\"orgId\":\n{INACTIVE}"),
                Form::Ndjson,
                vec![(1, "{\"orgId\":".to_owned()), (2, INACTIVE.to_owned())],
            ),
        ]
    }

    #[test]
    fn forms_lines_and_spans() {
        for (name, body, form, expected) in cases() {
            let (got_form, items) = translate_items(&body, &options(), &Limits::default());
            assert_eq!(got_form, form, "{name}");
            let got: Vec<(u32, String)> = items.iter().map(|i| (i.line, body[i.span.clone()].to_owned())).collect();
            assert_eq!(got, expected, "{name}");
            let indexes: Vec<usize> = items.iter().map(|i| i.index).collect();
            assert_eq!(indexes, (0..expected.len()).collect::<Vec<_>>(), "{name}");
        }
    }

    #[test]
    fn results_are_translate_batchs() {
        for (name, body, _, _) in cases() {
            let (_, items) = translate_items(&body, &options(), &Limits::default());
            let results: Vec<_> = items.into_iter().map(|i| i.result).collect();
            match translate_batch(&body, &options(), &Limits::default()) {
                Batch::One(result) => assert_eq!(results, vec![result], "{name}"),
                Batch::Many(expected) => assert_eq!(results, expected, "{name}"),
            }
        }
    }

    #[test]
    fn errors_keep_their_batch_paths_and_lines() {
        let body = format!("{INACTIVE}\n\n{BAD}\n{{\"orgId\":1,\"type\":tru}}\n");
        let (_, items) = translate_items(&body, &options(), &Limits::default());
        let err = items[1].result.as_ref().unwrap_err();
        assert_eq!((items[1].line, err.path()), (3, "[1].data.conversationId"));
        let err = items[2].result.as_ref().unwrap_err();
        assert_eq!((items[2].line, err.position()), (4, Some((4, 19))));
    }
}
