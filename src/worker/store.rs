//! A Durable Object's SQL storage (`ctx.storage.sql`) as the hot path's
//! module sees it: the few calls the outbox needs, bound directly with
//! wasm-bindgen, without workers-rs.
//!
//! Each statement is one call into the runtime with its arguments; rows come
//! back as arrays (`cursor.raw().toArray()`), read by column position, so no
//! row is turned into an object and no column name is looked up. The text of
//! each statement is made a JavaScript string once per wasm instance.

use std::cell::RefCell;

use js_sys::{Array, JsString};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

#[wasm_bindgen]
extern "C" {
    /// `ctx.storage.sql`.
    pub type Sql;
    #[wasm_bindgen(method, catch, variadic)]
    fn exec(this: &Sql, query: &JsString, arguments: Box<[JsValue]>) -> Result<Cursor, JsValue>;

    type Cursor;
    #[wasm_bindgen(method)]
    fn raw(this: &Cursor) -> RawRows;
    #[wasm_bindgen(method, getter, js_name = rowsWritten)]
    fn rows_written(this: &Cursor) -> f64;

    type RawRows;
    #[wasm_bindgen(method, catch, js_name = toArray)]
    fn to_array(this: &RawRows) -> Result<Array, JsValue>;
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

/// A bound argument.
pub enum Arg<'a> {
    Int(i64),
    Str(&'a str),
    Null,
}

impl Arg<'_> {
    fn to_js(&self) -> JsValue {
        match self {
            // Times and counts: far below 2^53, exact as numbers.
            Arg::Int(n) => JsValue::from_f64(*n as f64),
            Arg::Str(s) => JsValue::from_str(s),
            Arg::Null => JsValue::NULL,
        }
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

impl Sql {
    /// Runs a statement.
    fn cursor(&self, query: &'static str, args: &[Arg<'_>]) -> Result<Cursor, String> {
        self.exec(&text(query), args.iter().map(Arg::to_js).collect()).map_err(|e| message(&e))
    }

    /// Runs a statement and answers its rows, each an array of its columns.
    pub fn rows(&self, query: &'static str, args: &[Arg<'_>]) -> Result<Vec<Array>, String> {
        let rows = self.cursor(query, args)?.raw().to_array().map_err(|e| message(&e))?;
        Ok(rows.iter().map(Array::unchecked_from_js).collect())
    }

    /// Runs a statement whose rows, if any, are not needed.
    pub fn run(&self, query: &'static str, args: &[Arg<'_>]) -> Result<(), String> {
        self.cursor(query, args).map(drop)
    }

    /// Creates tables and indexes (`CREATE … IF NOT EXISTS`), in order.
    pub fn create(&self, ddl: &[&'static str]) -> Result<(), String> {
        for statement in ddl {
            self.run(statement, &[]).map_err(|e| format!("cannot create its tables: {e}"))?;
        }
        Ok(())
    }

    /// Runs a statement that writes, and answers how many rows it wrote.
    pub fn write(&self, query: &'static str, args: &[Arg<'_>]) -> Result<u64, String> {
        Ok(self.cursor(query, args)?.rows_written() as u64)
    }

    /// The first column of the first row as a number, if there is one and it
    /// is not NULL.
    pub fn number(&self, query: &'static str, args: &[Arg<'_>]) -> Result<Option<f64>, String> {
        Ok(self.rows(query, args)?.first().and_then(|row| row.get(0).as_f64()))
    }
}

/// Column `i` of a row as a string ("" when it is not one).
pub fn string(row: &Array, i: u32) -> String {
    row.get(i).as_string().unwrap_or_default()
}

/// Column `i` of a row as an integer (0 when it is not a number).
pub fn integer(row: &Array, i: u32) -> i64 {
    row.get(i).as_f64().map_or(0, |n| n as i64)
}
