//! The playground's wasm exports, run in Node by wasm-bindgen-test-runner
//! (`make test-wasm`). Big integers must reach JS as text, digit for digit.
#![cfg(all(target_arch = "wasm32", feature = "browser"))]

use drift_bridge::browser::{convert, convert_body, pretty, version};
use js_sys::{Array, Object, Reflect};
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
