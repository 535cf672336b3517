//! Many events in one body: a single event, a JSON array of events, or
//! newline-delimited JSON (NDJSON), as `/convert` and the playground accept.
//!
//! Each event is translated on its own: one bad event yields an error in its
//! slot and never stops or half-translates the others.

use crate::error::Error;
use crate::json::{self, Failure, Limits, Value};
use crate::rules::{translate, translate_value, Options, Outbound};

/// The translation of a body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Batch {
    /// The body was one event.
    One(Result<Vec<Outbound>, Error>),
    /// The body was an array or NDJSON: one result per event, in order.
    Many(Vec<Result<Vec<Outbound>, Error>>),
}

/// Translates a body of one or more events. `body_limits` bound the body as a
/// whole; `options.limits` bound each NDJSON line.
pub fn translate_batch(body: &str, options: &Options, body_limits: &Limits) -> Batch {
    match json::parse_detailed(body, body_limits) {
        Ok(Value::Array(items)) => Batch::Many(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| translate_value(item, options).map_err(|e| e.within(&format!("[{i}]"))))
                .collect(),
        ),
        Ok(value) => Batch::One(translate_value(&value, options)),
        Err((_, Failure::Trailing)) if lines(body) >= 2 => Batch::Many(ndjson(body, options)),
        Err(_) if looks_like_ndjson(body) => Batch::Many(ndjson(body, options)),
        Err((error, _)) => Batch::One(Err(error)),
    }
}

/// Several non-blank lines that each start an object: NDJSON with a broken
/// line, rather than one pretty-printed event (whose lines start with keys
/// and braces).
fn lines(body: &str) -> usize {
    body.lines().filter(|l| !l.trim().is_empty()).count()
}

fn looks_like_ndjson(body: &str) -> bool {
    let mut lines = body.lines().map(str::trim_start).filter(|l| !l.is_empty());
    let mut count = 0;
    let all_objects = lines.all(|l| {
        count += 1;
        l.starts_with('{')
    });
    all_objects && count >= 2
}

fn ndjson(body: &str, options: &Options) -> Vec<Result<Vec<Outbound>, Error>> {
    body.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .enumerate()
        .map(|(i, (line_index, line))| {
            translate(line, options).map_err(|e| e.shifted(line_index as u32).within(&format!("[{i}]")))
        })
        .collect()
}

impl Batch {
    /// The `/convert` response body: `{"events":[…]}` or `{"error":{…}}` for
    /// one event, `{"results":[…]}` with one of those per event for several.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(1024);
        match self {
            Batch::One(result) => write_result(&mut out, result),
            Batch::Many(results) => {
                out.push_str("{\"results\":[");
                for (i, result) in results.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_result(&mut out, result);
                }
                out.push_str("]}");
            }
        }
        out
    }

}

/// `{"events":[{"id":…,"event":…},…]}` or `{"error":{…}}`.
pub fn write_result(out: &mut String, result: &Result<Vec<Outbound>, Error>) {
    match result {
        Ok(events) => {
            out.push_str("{\"events\":[");
            for (i, event) in events.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                event.write_record(out);
            }
            out.push_str("]}");
        }
        Err(error) => {
            out.push_str("{\"error\":");
            out.push_str(&error.to_json());
            out.push('}');
        }
    }
}
