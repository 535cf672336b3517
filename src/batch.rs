//! Many events in one body: a single event, a JSON array of events, or
//! newline-delimited JSON (NDJSON), as `/convert` and the playground accept.
//!
//! Each event is translated on its own: one bad event yields an error in its
//! slot and never stops or half-translates the others.

use std::ops::Range;

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
    // The same decisions as `shape` (tests/batch.rs checks that both agree),
    // written out here: going through `shape` costs the worker's wasm 0.7 KB.
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

/// Which of the three forms a body took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// One event (or a body that is not JSON at all).
    One,
    /// A JSON array of events.
    Array,
    /// Newline-delimited events, one per non-blank line.
    Ndjson,
}

/// One event of a body, with where it sits in the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// Its place among the body's events, from 0: the `[i]` of its error paths.
    pub index: usize,
    /// The 1-based line of the body on which it starts.
    pub line: u32,
    /// Its bytes in the body (without surrounding whitespace).
    pub span: Range<usize>,
    /// Its outbound events, or why it was rejected, exactly as in
    /// [`translate_batch`].
    pub result: Result<Vec<Outbound>, Error>,
}

/// [`translate_batch`], also saying which form the body took and where each
/// event starts, so that the playground can point at the line of a rejected
/// event and show the events of a long batch by line. The results are the
/// same as [`translate_batch`]'s, in the same order.
pub fn translate_items(body: &str, options: &Options, body_limits: &Limits) -> (Form, Vec<Item>) {
    match shape(body, body_limits) {
        Shape::One(value) => {
            let trimmed = body.trim_start_matches(is_json_ws);
            let start = body.len() - trimmed.len();
            let end = start + trimmed.trim_end_matches(is_json_ws).len();
            let result = value.and_then(|v| translate_value(&v, options));
            (Form::One, vec![Item { index: 0, line: line_of(body, start), span: start..end, result }])
        }
        Shape::Array(values) => {
            let items = values
                .iter()
                .zip(array_spans(body))
                .enumerate()
                .map(|(index, (value, (line, span)))| Item { index, line, span, result: array_item(index, value, options) })
                .collect();
            (Form::Array, items)
        }
        Shape::Ndjson => {
            let items = ndjson_lines(body)
                .enumerate()
                .map(|(index, (line_index, span))| Item {
                    index,
                    line: line_index + 1,
                    result: ndjson_item(index, line_index, &body[span.clone()], options),
                    span,
                })
                .collect();
            (Form::Ndjson, items)
        }
    }
}

/// What a body is, before any event in it is translated.
enum Shape<'a> {
    One(Result<Value<'a>, Error>),
    Array(Vec<Value<'a>>),
    Ndjson,
}

fn shape<'a>(body: &'a str, body_limits: &Limits) -> Shape<'a> {
    match json::parse_detailed(body, body_limits) {
        Ok(Value::Array(items)) => Shape::Array(items),
        Ok(value) => Shape::One(Ok(value)),
        Err((_, Failure::Trailing)) if lines(body) >= 2 => Shape::Ndjson,
        Err(_) if looks_like_ndjson(body) => Shape::Ndjson,
        Err((error, _)) => Shape::One(Err(error)),
    }
}

fn array_item(i: usize, item: &Value<'_>, options: &Options) -> Result<Vec<Outbound>, Error> {
    translate_value(item, options).map_err(|e| e.within(&format!("[{i}]")))
}

fn ndjson_item(i: usize, line_index: u32, line: &str, options: &Options) -> Result<Vec<Outbound>, Error> {
    translate(line, options).map_err(|e| e.shifted(line_index).within(&format!("[{i}]")))
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

/// The non-blank lines of a body, as `str::lines` splits them (on `\n`, and
/// a `\r` before it dropped): each line's 0-based number and its bytes.
fn ndjson_lines(body: &str) -> impl Iterator<Item = (u32, Range<usize>)> + '_ {
    let mut start = 0;
    body.split_inclusive('\n')
        .map(move |piece| {
            let from = start;
            start += piece.len();
            let line = piece.strip_suffix('\n').map_or(piece, |l| l.strip_suffix('\r').unwrap_or(l));
            (line, from..from + line.len())
        })
        .enumerate()
        .filter(|(_, (line, _))| !line.trim().is_empty())
        .map(|(n, (_, span))| (u32::try_from(n).unwrap_or(u32::MAX), span))
}

fn is_json_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// The 1-based line of byte `at`.
fn line_of(body: &str, at: usize) -> u32 {
    let newlines = body.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

/// Where each element of a top-level JSON array starts (its 1-based line)
/// and its bytes. `body` must be a valid JSON array (the parser said so), so
/// this only has to follow strings and brackets.
fn array_spans(body: &str) -> Vec<(u32, Range<usize>)> {
    let bytes = body.as_bytes();
    let mut spans = Vec::new();
    let mut line = 1u32;
    let mut depth = 0usize;
    let mut start = None;
    let mut last = 0; // the end of the current element's last token
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'\n' => line = line.saturating_add(1),
            b' ' | b'\t' | b'\r' => {}
            b'"' => {
                start.get_or_insert((line, i));
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                last = i + 1;
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > 1 {
                    start.get_or_insert((line, i));
                }
            }
            b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    if let Some((l, s)) = start.take() {
                        spans.push((l, s..last));
                    }
                    break;
                }
                last = i + 1;
            }
            b',' if depth == 1 => {
                if let Some((l, s)) = start.take() {
                    spans.push((l, s..last));
                }
            }
            _ => {
                start.get_or_insert((line, i));
                last = i + 1;
            }
        }
        i += 1;
    }
    spans
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
