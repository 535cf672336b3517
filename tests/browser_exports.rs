//! The playground's wasm exports, run in Node by wasm-bindgen-test-runner
//! (`make test-wasm`). Big integers must reach JS as text, digit for digit.
#![cfg(all(target_arch = "wasm32", feature = "browser"))]

use drift_bridge::browser::{convert, convert_batch, convert_body, pretty, version};
use js_sys::{Array, JsString, Object, Reflect, JSON};
use wasm_bindgen::JsValue;
use wasm_bindgen_test::wasm_bindgen_test;

fn get(v: &JsValue, key: &str) -> JsValue {
    Reflect::get(v, &JsValue::from_str(key)).unwrap()
}

fn options(legacy: &str, now: f64) -> JsValue {
    let o = Object::new();
    Reflect::set(&o, &"legacy".into(), &legacy.into()).unwrap();
    Reflect::set(&o, &"now".into(), &now.into()).unwrap();
    o.into()
}

const INACTIVE: &str = r#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}"#;

#[wasm_bindgen_test]
fn converts_drifts_example() {
    let result = convert(INACTIVE, options("always", 0.0)).unwrap();
    assert_eq!(get(&result, "ok"), JsValue::TRUE);
    let events = Array::from(&get(&result, "events"));
    assert_eq!(events.length(), 3);
    let third = events.get(2);
    assert_eq!(get(&third, "type").as_string().unwrap(), "conversation_status_updated");
    assert_eq!(get(&third, "id").as_string().unwrap(), "945d7df49ee99b50");
    assert_eq!(
        get(&third, "json").as_string().unwrap(),
        r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}"#
    );
    assert!(get(&third, "pretty").as_string().unwrap().contains("\n  \"data\": {\n    \"conversationId\": 123456789,"));
    assert!(get(&third, "record").as_string().unwrap().starts_with(r#"{"id":"945d7df49ee99b50","event":{"#));
}

#[wasm_bindgen_test]
fn big_integers_survive_the_boundary() {
    let input = r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":12345678901234567890123,"lastUpdated":1591813767000,"score":1.10}}"#;
    let result = convert(input, options("never", 0.0)).unwrap();
    let first = Array::from(&get(&result, "events")).get(0);
    assert_eq!(get(&first, "json").as_string().unwrap(), input);
}

#[wasm_bindgen_test]
fn errors_are_structured() {
    let result = convert(r#"{"orgId":1,"type":"conversation_inactive","data":{"conversationId":"5"}}"#, JsValue::UNDEFINED).unwrap();
    assert_eq!(get(&result, "ok"), JsValue::FALSE);
    let error = get(&result, "error");
    assert_eq!(get(&error, "code").as_string().unwrap(), "invalid_event");
    assert_eq!(get(&error, "path").as_string().unwrap(), "data.conversationId");
    assert_eq!(get(&error, "message").as_string().unwrap(), "expected an integer, found a string");

    let result = convert("{\n \"a\": }", JsValue::UNDEFINED).unwrap();
    let error = get(&result, "error");
    assert_eq!(get(&error, "code").as_string().unwrap(), "invalid_json");
    assert_eq!(get(&error, "path").as_string().unwrap(), "a");
    assert_eq!(get(&error, "line").as_f64(), Some(2.0));
    assert_eq!(get(&error, "column").as_f64(), Some(7.0));

    let result = convert(INACTIVE, options("sometimes", 0.0)).unwrap();
    assert_eq!(get(&get(&result, "error"), "code").as_string().unwrap(), "invalid_options");
}

#[wasm_bindgen_test]
fn timeline_policy_in_the_browser() {
    let at = |ms: u64| format!(r#"{{"orgId":1,"type":"conversation_inactive","data":{{"conversationId":1,"lastUpdated":{ms}}}}}"#);
    for (ms, count) in [(1_590_969_599_999u64, 2), (1_590_969_600_000, 3), (1_601_510_399_999, 3), (1_601_510_400_000, 2)] {
        let result = convert(&at(ms), options("timeline", 0.0)).unwrap();
        assert_eq!(Array::from(&get(&result, "events")).length(), count, "at {ms}");
    }
}

#[wasm_bindgen_test]
fn convert_body_matches_the_edge_shape() {
    let body = convert_body(INACTIVE, options("never", 0.0)).unwrap();
    assert_eq!(
        body,
        concat!(
            r#"{"events":[{"id":"b624515312c8ce89","event":{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}},"#,
            r#"{"id":"c0b44147a772c080","event":{"orgId":1,"type":"conversation_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}}]}"#
        )
    );
    let two = format!("{INACTIVE}\n{{\"orgId\":1}}\n");
    let body = convert_body(&two, options("never", 0.0)).unwrap();
    assert!(body.starts_with(r#"{"results":[{"events":["#), "{body}");
    assert!(body.ends_with(r#"{"error":{"code":"invalid_event","message":"missing; every Drift event has a type such as \"conversation_inactive\"","path":"[1].type"}}]}"#), "{body}");
}

#[wasm_bindgen_test]
fn pretty_and_version() {
    assert_eq!(pretty(r#"{"a":[1.10]}"#).unwrap(), "{\n  \"a\": [\n    1.10\n  ]\n}");
    assert!(pretty("{").is_err());
    assert_eq!(version(), env!("CARGO_PKG_VERSION"));
}

/// `convertBatch`'s result, parsed as the page parses it.
fn batch(input: &str, legacy: &str) -> JsValue {
    JSON::parse(&convert_batch(input, options(legacy, 0.0)).unwrap()).unwrap()
}

fn items(result: &JsValue) -> Vec<JsValue> {
    Array::from(&get(result, "items")).iter().collect()
}

fn text(v: &JsValue, key: &str) -> String {
    get(v, key).as_string().unwrap_or_else(|| panic!("{key} is not a string"))
}

fn number(v: &JsValue, key: &str) -> f64 {
    get(v, key).as_f64().unwrap_or_else(|| panic!("{key} is not a number"))
}

const BAD: &str = r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":"x"}}"#;

#[wasm_bindgen_test]
fn batch_of_one_event_is_the_single_view() {
    let result = batch(INACTIVE, "always");
    assert_eq!(text(&result, "form"), "one");
    let [item] = items(&result).try_into().unwrap();
    assert_eq!((number(&item, "index"), number(&item, "line")), (0.0, 1.0));
    assert_eq!((number(&item, "start"), number(&item, "end")), (0.0, INACTIVE.len() as f64));
    let single = Array::from(&get(&convert(INACTIVE, options("always", 0.0)).unwrap(), "events"));
    let events = Array::from(&get(&item, "events"));
    assert_eq!(events.length(), 3);
    for (mine, theirs) in events.iter().zip(single.iter()) {
        for key in ["id", "type", "json", "pretty", "record"] {
            assert_eq!(text(&mine, key), text(&theirs, key), "{key}");
        }
    }
}

#[wasm_bindgen_test]
fn batch_array_with_a_bad_item() {
    let input = format!("[\n  {INACTIVE},\n  {BAD}\n]");
    let result = batch(&input, "never");
    assert_eq!(text(&result, "form"), "array");
    let [good, bad] = items(&result).try_into().unwrap();
    assert_eq!((number(&good, "line"), number(&bad, "line")), (2.0, 3.0));
    assert_eq!(Array::from(&get(&good, "events")).length(), 2);
    assert!(get(&good, "error").is_undefined());
    let error = get(&bad, "error");
    assert!(get(&bad, "events").is_undefined());
    assert_eq!(number(&bad, "index"), 1.0);
    assert_eq!(text(&error, "code"), "invalid_event");
    assert_eq!(text(&error, "path"), "[1].data.conversationId");
    assert_eq!(text(&error, "message"), "expected an integer, found a string");
    let slice = |item: &JsValue| String::from(JsString::from(input.as_str()).slice(number(item, "start") as u32, number(item, "end") as u32));
    assert_eq!((slice(&good), slice(&bad)), (INACTIVE.to_owned(), BAD.to_owned()));
}

#[wasm_bindgen_test]
fn batch_ndjson_gives_each_line() {
    let input = format!("{INACTIVE}\n\n{BAD}\n{{\"orgId\":1,\"type\":tru}}\n");
    let result = batch(&input, "never");
    assert_eq!(text(&result, "form"), "ndjson");
    let lines: Vec<f64> = items(&result).iter().map(|i| number(i, "line")).collect();
    assert_eq!(lines, [1.0, 3.0, 4.0]);
    let [_, bad, broken] = items(&result).try_into().unwrap();
    assert_eq!(text(&get(&bad, "error"), "path"), "[1].data.conversationId");
    let syntax = get(&broken, "error");
    assert_eq!(text(&syntax, "code"), "invalid_json");
    assert_eq!((number(&syntax, "line"), number(&syntax, "column")), (4.0, 19.0), "the line of the input, not of the event");
}

#[wasm_bindgen_test]
fn batch_spans_are_js_string_indexes_and_numbers_stay_text() {
    // "é" is 2 bytes and 1 UTF-16 unit, "😀" 4 bytes and 2 units.
    let big = r#"{"orgId":1,"type":"new_message","data":{"id":9007199254740993,"body":"é😀","score":1.10}}"#;
    let input = format!("{big}\n{big}\n");
    let result = batch(&input, "never");
    let js = JsString::from(input.as_str());
    for item in items(&result) {
        let slice = String::from(js.slice(number(&item, "start") as u32, number(&item, "end") as u32));
        assert_eq!(slice, big);
        let event = Array::from(&get(&item, "events")).get(0);
        assert_eq!(text(&event, "json"), big, "digit for digit");
        assert_eq!(text(&event, "record"), format!(r#"{{"id":"{}","event":{big}}}"#, text(&event, "id")));
    }
}

#[wasm_bindgen_test]
fn batch_agrees_with_the_convert_body() {
    // Rebuild /convert's body from the items: the same events, the same errors.
    for input in [
        INACTIVE.to_owned(),
        format!("[{INACTIVE},{BAD},1]"),
        format!("{INACTIVE}\n{BAD}\n{{\"orgId\":\n"),
        "{\"a\":".to_owned(),
        "[]".to_owned(),
    ] {
        let result = batch(&input, "always");
        let rebuilt: Vec<String> = items(&result)
            .iter()
            .map(|item| match get(item, "events").is_undefined() {
                false => {
                    let records: Vec<String> = Array::from(&get(item, "events")).iter().map(|e| text(&e, "record")).collect();
                    format!(r#"{{"events":[{}]}}"#, records.join(","))
                }
                true => format!(r#"{{"error":{}}}"#, String::from(JSON::stringify(&get(item, "error")).unwrap())),
            })
            .collect();
        let expected = convert_body(&input, options("always", 0.0)).unwrap();
        let rebuilt = match text(&result, "form").as_str() {
            "one" => rebuilt.concat(),
            _ => format!(r#"{{"results":[{}]}}"#, rebuilt.join(",")),
        };
        assert_eq!(rebuilt, expected, "{input}");
    }
}

#[wasm_bindgen_test]
fn batch_refuses_bad_options() {
    let error = convert_batch(INACTIVE, options("sometimes", 0.0)).unwrap_err();
    assert!(error.as_string().unwrap().contains("sometimes"), "{error:?}");
}
