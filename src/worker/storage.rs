//! A Durable Object's SQL storage (`ctx.storage.sql`) as the delivery state
//! machine's [`Sql`], bound directly with wasm-bindgen.
//!
//! Each statement is one call into the runtime with its arguments; rows come
//! back as arrays (`cursor.raw().toArray()`), read by column position, so no
//! row is turned into an object and no column name is looked up. The text of
//! each statement is made a JavaScript string once per wasm instance.

use std::cell::RefCell;

use js_sys::{Array, JsString};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use crate::delivery::sql::{Arg, Row, Sql, StorageError, Value};

#[wasm_bindgen]
extern "C" {
    /// `ctx.storage.sql`.
    pub type SqlStorage;
    #[wasm_bindgen(method, catch, variadic)]
    fn exec(this: &SqlStorage, query: &JsString, arguments: Box<[JsValue]>) -> Result<Cursor, JsValue>;

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

fn value(v: JsValue) -> Value {
    if let Some(n) = v.as_f64() {
        if n.fract() == 0.0 && n.abs() < 9.0e15 {
            return Value::Int(n as i64);
        }
        return Value::Real(n);
    }
    match v.as_string() {
        Some(s) => Value::Text(s),
        None => Value::Null,
    }
}

impl SqlStorage {
    fn cursor(&self, query: &'static str, args: &[Arg<'_>]) -> Result<Cursor, StorageError> {
        self.exec(&text(query), args.iter().map(to_js).collect()).map_err(|e| StorageError(message(&e)))
    }
}

impl Sql for SqlStorage {
    fn query(&self, statement: &'static str, args: &[Arg<'_>]) -> Result<Vec<Row>, StorageError> {
        let rows = self.cursor(statement, args)?.raw().to_array().map_err(|e| StorageError(message(&e)))?;
        Ok(rows.iter().map(|r| Row(Array::unchecked_from_js(r).iter().map(value).collect())).collect())
    }

    fn execute(&self, statement: &'static str, args: &[Arg<'_>]) -> Result<u64, StorageError> {
        let cursor = self.cursor(statement, args)?;
        // The count is final once the cursor is read to its end.
        cursor.raw().to_array().map_err(|e| StorageError(message(&e)))?;
        Ok(cursor.rows_written() as u64)
    }
}
