//! What the native tests of the delivery state machine share: real SQLite
//! (rusqlite's bundled build) behind the state machine's `Sql`, one
//! transaction per operation as the Workers adapter runs it, and the
//! configuration from a table of variables.
#![allow(dead_code)]

pub mod world;

use std::cell::{Cell, RefCell};

use drift_bridge::config::Config;
use drift_bridge::delivery::effects::{Alarm, Effects};
use drift_bridge::delivery::sql::{Arg, Row, Sql, StorageError, Value};
use rusqlite::types::ValueRef;

/// One Durable Object's storage: a SQLite database, and its alarm (which
/// the runtime keeps with the database: both change in one transaction).
pub struct Db {
    pub conn: rusqlite::Connection,
    pub alarm: Cell<Option<i64>>,
    /// Statements run and rows they changed, for the tests that count.
    pub statements: Cell<u64>,
    pub changed: Cell<u64>,
    /// Alarms set or deleted (the platform bills each as a row written).
    pub alarm_writes: Cell<u64>,
    /// Rows changed, by statement.
    pub written: RefCell<std::collections::BTreeMap<&'static str, u64>>,
    /// Set to make the next statement fail (a storage error).
    pub fail_next: RefCell<Option<String>>,
}

impl Db {
    pub fn new() -> Db {
        Db {
            conn: rusqlite::Connection::open_in_memory().unwrap(),
            alarm: Cell::new(None),
            statements: Cell::new(0),
            changed: Cell::new(0),
            alarm_writes: Cell::new(0),
            written: RefCell::new(std::collections::BTreeMap::new()),
            fail_next: RefCell::new(None),
        }
    }

    /// Runs one operation as the adapter does: in one transaction with its
    /// alarm, so that a failure leaves neither.
    pub fn run(&self, op: impl FnOnce(&Db) -> Result<Effects, StorageError>) -> Result<Effects, StorageError> {
        self.conn.execute_batch("BEGIN").unwrap();
        match op(self) {
            Ok(fx) => {
                self.conn.execute_batch("COMMIT").unwrap();
                match fx.alarm {
                    Alarm::Keep => {}
                    Alarm::At(t) => self.alarm.set(Some(t)),
                    Alarm::Clear => self.alarm.set(None),
                }
                if fx.alarm != Alarm::Keep {
                    self.alarm_writes.set(self.alarm_writes.get() + 1);
                }
                Ok(fx)
            }
            Err(e) => {
                self.conn.execute_batch("ROLLBACK").unwrap();
                Err(e)
            }
        }
    }

    /// Runs an operation and undoes it: what it would answer now, with
    /// nothing written and nothing counted (for tests that look).
    pub fn peek(&self, op: impl FnOnce(&Db) -> Result<Effects, StorageError>) -> Result<Effects, StorageError> {
        let (statements, changed, written) = (self.statements.get(), self.changed.get(), self.written.borrow().clone());
        self.conn.execute_batch("BEGIN").unwrap();
        let result = op(self);
        self.conn.execute_batch("ROLLBACK").unwrap();
        self.statements.set(statements);
        self.changed.set(changed);
        *self.written.borrow_mut() = written;
        result
    }

    /// Rows written as the platform bills them: rows changed by statements,
    /// and one per alarm set or deleted.
    pub fn rows_written(&self) -> u64 {
        self.changed.get() + self.alarm_writes.get()
    }

    pub fn count(&self, query: &str) -> i64 {
        self.conn.query_row(query, [], |r| r.get::<_, i64>(0)).unwrap()
    }

    fn check_failure(&self) -> Result<(), StorageError> {
        if let Some(message) = self.fail_next.borrow_mut().take() {
            return Err(StorageError(message));
        }
        Ok(())
    }
}

/// The largest integer a JavaScript number holds exactly (2^53 - 1).
const MAX_SAFE: u64 = (1 << 53) - 1;

fn bind(args: &[Arg<'_>]) -> Vec<rusqlite::types::Value> {
    args.iter()
        .map(|a| match a {
            // As the Workers SQL API binds it: a JavaScript number, which
            // SQLite is given as a real (so `? / 3600000` divides as reals,
            // and a column of INTEGER affinity keeps only whole ones as
            // integers), exact only within ±2^53.
            Arg::Int(n) => rusqlite::types::Value::Real(*n as f64),
            Arg::Text(s) => rusqlite::types::Value::Text((*s).to_owned()),
            Arg::Event(bits) => rusqlite::types::Value::Text(Arg::event_text(*bits)),
            Arg::Null => rusqlite::types::Value::Null,
        })
        .collect()
}

impl Sql for Db {
    fn query(&self, statement: &'static str, args: &[Arg<'_>]) -> Result<Vec<Row>, StorageError> {
        self.check_failure()?;
        self.statements.set(self.statements.get() + 1);
        let mut stmt = self.conn.prepare_cached(statement).map_err(|e| StorageError(format!("{e} in {statement}")))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(bind(args))).map_err(|e| StorageError(e.to_string()))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| StorageError(e.to_string()))? {
            let mut values = Vec::with_capacity(columns);
            for i in 0..columns {
                values.push(match row.get_ref(i).unwrap() {
                    ValueRef::Null => Value::Null,
                    // As the Workers SQL API returns it: a JavaScript number.
                    ValueRef::Integer(n) if n.unsigned_abs() > MAX_SAFE => Value::Real(n as f64),
                    ValueRef::Integer(n) => Value::Int(n),
                    ValueRef::Real(r) => Value::Real(r),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(_) => Value::Null,
                });
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn execute(&self, statement: &'static str, args: &[Arg<'_>]) -> Result<u64, StorageError> {
        self.check_failure()?;
        self.statements.set(self.statements.get() + 1);
        let mut stmt = self.conn.prepare_cached(statement).map_err(|e| StorageError(format!("{e} in {statement}")))?;
        let n = stmt.execute(rusqlite::params_from_iter(bind(args))).map_err(|e| StorageError(e.to_string()))? as u64;
        self.changed.set(self.changed.get() + n);
        if n > 0 {
            *self.written.borrow_mut().entry(statement).or_default() += n;
        }
        Ok(n)
    }
}

/// A configuration from `vars` (the verification token is always set).
pub fn config(vars: &[(&str, &str)]) -> Config {
    let c = Config::from_env(|name| {
        if name == "DRIFT_VERIFICATION_TOKEN" {
            return Some("token".into());
        }
        vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    });
    assert!(c.problems.is_empty(), "{:?}", c.problems);
    c
}

/// A configuration with one destination `app` that wants every event.
pub fn one_app(vars: &[(&str, &str)]) -> Config {
    let mut all = vec![("DESTINATIONS", r#"[{"name":"app","url":"https://app.example/hook","types":["*"]}]"#)];
    all.extend_from_slice(vars);
    config(&all)
}
