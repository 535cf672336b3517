//! The steps a small scenario runs, compared to tests/fixtures/trace-basic.json,
//! the file the workerd end-to-end test compares the production entry's
//! steps to: the two interpreters of `Effects::actions` (src/worker/entry.mjs
//! and tests/support/world.rs) agree when both match it.
//!
//! ## The fixture
//!
//! `{"about", "vars", "webhooks", "answers", "steps"}`:
//! - `vars`: the worker's variables beyond `DRIFT_VERIFICATION_TOKEN` (one
//!   declared app `crm`, taking `conversation_push`; `RETRY_BASE_SECONDS` 1);
//! - `webhooks`: the two bodies posted to `/webhooks/drift` (Drift's
//!   example, then the same conversation a minute later), each answered 200;
//! - `answers`: what `crm` answers its requests, in order (200, then 500,
//!   then 200 to the retry), at once;
//! - `steps`: one line per step, in the order the steps start.
//!
//! ## The procedure
//!
//! Post the first webhook; wait 2 s (its request's answer is reported on
//! its own, `REPORT_WITHIN_MS` after it came, as no other step of the log
//! comes sooner); post the second webhook; wait 10 s (its 500 is reported,
//! the alarm sends the retry within a second, and that answer is reported).
//!
//! ## A line
//!
//! `<object> <path>: <actions>`
//! - `<object>`: `log <key>` for a delivery log (`<key>` as in its
//!   `idFromName`, `destination:<key>`), `outbox <scope>` for an outbox,
//!   `registry` for the registry;
//! - `<path>`: the step's input as the object reads it: the request's path
//!   (`/accept`, a call's `/register`), `alarm`, `/sent` for a report of
//!   answers on its own, `/called` for the results of ticketed calls; a
//!   request or alarm step that carries held reports is `/sent+<path>`
//!   (only those carry them: a `/called` step never does, so that when the
//!   calls come back against the answers does not change the steps);
//! - `<actions>`: the kinds of the actions the step's `Effects::actions()`
//!   gave, in order, joined by `,` (`alarm`, `log` once per line, `reply`,
//!   `post`, `call`), or `none`.
//!
//! Listed: every step of a delivery log and of an outbox, and every step of
//! an object a `call` action reached. Not listed: the registry's `/routes`
//! (each isolate's copy of the apps, which the native runtime does not
//! model) and the admin API's requests.

mod support;

use std::path::Path;

use drift_bridge::json::{self, Limits, Value};
use support::world::World;

const START: i64 = 1_700_000_000_000;

fn fixture() -> (String, Value<'static>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trace-basic.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let leaked: &'static str = Box::leak(text.clone().into_boxed_str());
    (text, json::parse(leaked, &Limits::default()).unwrap())
}

fn strings(v: &Value<'_>) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().map(|i| i.as_str().unwrap().text().into_owned()).collect(),
        _ => panic!("expected an array"),
    }
}

#[test]
fn the_basic_scenario_runs_the_steps_the_fixture_lists() {
    let (_, f) = fixture();
    let Some(Value::Object(vars)) = f.get("vars") else { panic!("vars") };
    let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.text().into_owned(), v.as_str().unwrap().text().into_owned())).collect();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let webhooks = strings(f.get("webhooks").unwrap());
    let Some(Value::Array(answers)) = f.get("answers") else { panic!("answers") };
    let mut answers: Vec<u16> = answers.iter().map(|a| a.as_integer().unwrap().parse().unwrap()).collect();
    answers.reverse();

    let mut w = World::new(support::config(&vars), START);
    w.app("crm", move |_| Some(answers.pop().expect("no more requests than answers")));
    assert_eq!(w.webhook(&webhooks[0]), 200);
    w.run_until(w.now + 2_000);
    assert_eq!(w.webhook(&webhooks[1]), 200);
    w.run_until(w.now + 10_000);
    assert_eq!(w.received.len(), 2, "both delivered");
    w.invariants().unwrap();

    if std::env::var_os("DRIFT_BRIDGE_UPDATE_TRACE").is_some() {
        write_steps(&w.trace);
    }
    let expected = strings(f.get("steps").unwrap());
    assert_eq!(w.trace, expected, "the steps (DRIFT_BRIDGE_UPDATE_TRACE=1 writes them to the fixture)");
}

/// Writes `steps` into the fixture, the rest as it is.
fn write_steps(steps: &[String]) {
    let (text, _) = fixture();
    let start = text.find("\"steps\"").unwrap();
    let end = text.rfind('}').unwrap();
    let lines: Vec<String> = steps
        .iter()
        .map(|s| {
            let mut line = "    ".to_owned();
            json::write_str_escaped(&mut line, s);
            line
        })
        .collect();
    let new = format!("{}\"steps\": [\n{}\n  ]\n{}", &text[..start], lines.join(",\n"), &text[end..]);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/trace-basic.json");
    std::fs::write(path, new).unwrap();
}
