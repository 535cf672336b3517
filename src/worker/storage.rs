//! A Durable Object's SQL storage (`ctx.storage.sql`) as the delivery state
//! machine's [`Sql`], bound directly with wasm-bindgen.
//!
//! Each statement is one call into JavaScript with its arguments, which runs
//! it and reads its cursor to the end there: the rows come back as one JSON
//! text of arrays (`JSON.stringify(cursor.raw().toArray())`), read by column
//! position, so that a row of twenty columns crosses into the wasm once,
//! not value by value (which cost a delivery's step more than SQLite did).
//! The text of each statement is made a JavaScript string once per wasm
//! instance.

use std::cell::RefCell;

use js_sys::JsString;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use crate::delivery::sql::{Arg, Row, Sql, StorageError, Value};
use crate::json::{self, Limits};

#[wasm_bindgen(inline_js = "
export function rows(sql, query, args) { return JSON.stringify(sql.exec(query, ...args).raw().toArray()); }
export function run(sql, query, args) { const c = sql.exec(query, ...args); for (const _ of c.raw()); return c.rowsWritten; }
")]
extern "C" {
    /// `ctx.storage.sql`.
    pub type SqlStorage;
    /// Runs a statement: its rows as a JSON array of arrays.
    #[wasm_bindgen(catch)]
    fn rows(sql: &SqlStorage, query: &JsString, arguments: Box<[JsValue]>) -> Result<String, JsValue>;
    /// Runs a statement to its end: the rows it wrote.
    #[wasm_bindgen(catch)]
    fn run(sql: &SqlStorage, query: &JsString, arguments: Box<[JsValue]>) -> Result<f64, JsValue>;
}

thread_local! {
    /// Statement texts already made JavaScript strings, by address.
    static TEXTS: RefCell<Vec<(usize, JsString)>> = const { RefCell::new(Vec::new()) };
}

/// The JavaScript string of a statement's text (made once).
fn text(query: &'static str) -> JsString {
    let key = query.as_ptr() as usize;
    TEXTS.with(|texts| {
        let mut texts = texts.borrow_mut();
        if let Some((_, s)) = texts.iter().find(|(k, _)| *k == key) {
            return s.clone();
        }
        let s = JsString::from(query);
        texts.push((key, s.clone()));
        s
    })
}

fn to_js(arg: &Arg<'_>) -> JsValue {
    match arg {
        // Times, counts and positions: far below 2^53, exact as numbers.
        Arg::Int(n) => JsValue::from_f64(*n as f64),
        Arg::Text(s) => JsValue::from_str(s),
        Arg::Event(bits) => JsValue::from_str(&Arg::event_text(*bits)),
        Arg::Null => JsValue::NULL,
    }
}

/// The message of a JavaScript error.
pub fn message(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| "unknown storage error".to_owned())
}

/// The rows of a statement from their JSON text: arrays of numbers, texts
/// and nulls (SQLite's integers, reals, texts and nulls; the tables hold no
/// blobs).
fn decode(text: &str) -> Result<Vec<Row>, StorageError> {
    let bad = |what: &str| StorageError(format!("the storage answered rows that cannot be read: {what}"));
    let json::Value::Array(rows) = json::parse(text, &Limits::INTERNAL).map_err(|e| bad(&e.to_string()))? else {
        return Err(bad("not an array"));
    };
    rows.into_iter()
        .map(|row| {
            let json::Value::Array(values) = row else { return Err(bad("a row is not an array")) };
            values.into_iter().map(|v| value(v).ok_or_else(|| bad("a value is neither a number, a text nor null"))).collect::<Result<_, _>>().map(Row)
        })
        .collect()
}

fn value(v: json::Value<'_>) -> Option<Value> {
    Some(match v {
        json::Value::Null => Value::Null,
        json::Value::String(s) => Value::Text(s.text().into_owned()),
        json::Value::Number(n) => Value::Int(integer(&n)?),
        _ => return None,
    })
}

/// A number as JavaScript wrote it, as an integer: the columns hold
/// integers (times, counts, positions, all below 2^53), and a real that
/// SQLite computed is read truncated toward zero, as [`Value::int`] reads
/// one (without a float parser, which would add 15 KB to the module).
/// JavaScript writes an exponent only past 10^21 (`None`: no integer)
/// and below 10^-6 (0).
fn integer(n: &str) -> Option<i64> {
    if let Some(e) = n.find(['e', 'E']) {
        return if n[e + 1..].starts_with('-') { Some(0) } else { None };
    }
    n.split('.').next()?.parse().ok()
}

impl SqlStorage {
    fn arguments(args: &[Arg<'_>]) -> Box<[JsValue]> {
        args.iter().map(to_js).collect()
    }
}

impl Sql for SqlStorage {
    fn query(&self, statement: &'static str, args: &[Arg<'_>]) -> Result<Vec<Row>, StorageError> {
        let text = rows(self, &text(statement), Self::arguments(args)).map_err(|e| StorageError(message(&e)))?;
        decode(&text)
    }

    fn execute(&self, statement: &'static str, args: &[Arg<'_>]) -> Result<u64, StorageError> {
        // The count is final once the cursor is read to its end.
        let written = run(self, &text(statement), Self::arguments(args)).map_err(|e| StorageError(message(&e)))?;
        Ok(written as u64)
    }
}
