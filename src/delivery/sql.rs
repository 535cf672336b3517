//! The storage the delivery state machine runs on: a synchronous SQL
//! interface, the one a Durable Object's `ctx.storage.sql` offers.
//!
//! Every operation of the outbox and the delivery log is written against
//! [`Sql`], never against a runtime type, so that the same code runs over
//! Workers storage in production (src/worker/storage.rs) and over real
//! SQLite in the native tests (tests/support/mod.rs). The interface is as
//! small as the state machine needs: run a statement with bound arguments,
//! read its rows, learn how many rows it wrote.
//!
//! Statements are `&'static str`: the text of every statement the bridge
//! runs is in this crate, never assembled from input, so no argument can
//! change what a statement does (and the Workers adapter turns each text
//! into a JavaScript string once).

use std::fmt;

/// A bound argument.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg<'a> {
    /// An integer within ±2^53: the Workers SQL API carries numbers as
    /// JavaScript numbers, exact only that far (times, counts, positions).
    Int(i64),
    Text(&'a str),
    /// An event id (64 bits, [`crate::delivery::key::event_bits`]), bound as
    /// its 16 hex digits, the only form in which all 64 bits cross the
    /// Workers SQL API and come back ([`Row::event`]).
    Event(i64),
    Null,
}

impl Arg<'_> {
    /// The text an [`Arg::Event`] is bound as.
    pub fn event_text(bits: i64) -> String {
        crate::delivery::key::event_hex(bits)
    }
}

impl From<i64> for Arg<'_> {
    fn from(n: i64) -> Self {
        Arg::Int(n)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(s: &'a str) -> Self {
        Arg::Text(s)
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(s: &'a String) -> Self {
        Arg::Text(s)
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(n: Option<i64>) -> Self {
        n.map_or(Arg::Null, Arg::Int)
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(s: Option<&'a str>) -> Self {
        s.map_or(Arg::Null, Arg::Text)
    }
}

/// A column's value in a result row.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Value {
    /// The value as an integer (a real is truncated; text and null are `None`).
    pub fn int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            Value::Real(r) if r.is_finite() => Some(*r as i64),
            _ => None,
        }
    }

    /// The value as text, when it is text.
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// Takes the text out, leaving null.
    pub fn take_text(&mut self) -> Option<String> {
        match std::mem::replace(self, Value::Null) {
            Value::Text(s) => Some(s),
            other => {
                *self = other;
                None
            }
        }
    }
}

/// One result row: its columns in the order the statement names them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    /// Column `i` as an integer; `None` when null or missing.
    pub fn int(&self, i: usize) -> Option<i64> {
        self.0.get(i).and_then(Value::int)
    }

    /// Column `i` as an integer, 0 when null or missing.
    pub fn int0(&self, i: usize) -> i64 {
        self.int(i).unwrap_or(0)
    }

    /// Column `i` as an event id stored by [`Arg::Event`], 0 when it is not one.
    pub fn event(&self, i: usize) -> i64 {
        self.text(i).and_then(crate::delivery::key::event_bits).unwrap_or(0)
    }

    /// Column `i` as text; `None` when null or missing.
    pub fn text(&self, i: usize) -> Option<&str> {
        self.0.get(i).and_then(Value::text)
    }

    /// Column `i` taken out as text ("" when null or missing).
    pub fn take(&mut self, i: usize) -> String {
        self.0.get_mut(i).and_then(Value::take_text).unwrap_or_default()
    }

    /// Column `i` taken out as text, `None` when null or missing.
    pub fn take_opt(&mut self, i: usize) -> Option<String> {
        self.0.get_mut(i).and_then(Value::take_text)
    }
}

/// Storage refused a statement (full, broken, or a bug in the statement):
/// the operation fails as a whole and nothing it wrote is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StorageError(pub String);

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "storage: {}", self.0)
    }
}

impl std::error::Error for StorageError {}

/// A synchronous SQL database: one Durable Object's storage.
///
/// The callers run each operation's statements inside one transaction (the
/// Workers adapter in `transactionSync`, the native tests in a SQLite
/// transaction), so an operation that fails half way writes nothing.
pub trait Sql {
    /// Runs `statement` with `args` and answers its rows.
    fn query(&self, statement: &'static str, args: &[Arg<'_>]) -> Result<Vec<Row>, StorageError>;

    /// Runs `statement` with `args` and answers how many rows it changed
    /// (0 for an `INSERT … ON CONFLICT DO NOTHING` that found its key).
    fn execute(&self, statement: &'static str, args: &[Arg<'_>]) -> Result<u64, StorageError>;

    /// The first row, if any.
    fn first(&self, statement: &'static str, args: &[Arg<'_>]) -> Result<Option<Row>, StorageError> {
        Ok(self.query(statement, args)?.into_iter().next())
    }

    /// The first column of the first row as an integer, if there is one and
    /// it is not null.
    fn number(&self, statement: &'static str, args: &[Arg<'_>]) -> Result<Option<i64>, StorageError> {
        Ok(self.first(statement, args)?.and_then(|row| row.int(0)))
    }
}
