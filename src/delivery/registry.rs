//! The registry: one Durable Object that knows which delivery logs hold
//! deliveries, so that the admin API still lists a destination's deliveries
//! after the destination is removed from the configuration (until their
//! retention ends and the log tells the registry it holds none).
//!
//! A log registers when it first holds a delivery and unregisters when it
//! holds none; each change carries a growing epoch, and an older message
//! never undoes a newer one, however the calls are ordered.

use super::effects::{Effects, Reply};
use super::message::{Logs, Registration};
use super::sql::{Arg, Sql, StorageError};

pub const TABLES: [&str; 1] = ["CREATE TABLE IF NOT EXISTS logs (destination TEXT PRIMARY KEY, epoch INTEGER NOT NULL, \
     holds INTEGER NOT NULL, since INTEGER NOT NULL) WITHOUT ROWID"];

/// A log that holds nothing is forgotten this long after it said so.
pub const FORGET_MS: i64 = 24 * 3_600_000;

pub fn open(sql: &impl Sql) -> Result<(), StorageError> {
    for statement in TABLES {
        sql.execute(statement, &[])?;
    }
    Ok(())
}

/// `/register` (`holds`) or `/unregister`.
pub fn register(sql: &impl Sql, body: &str, holds: bool, now: i64) -> Result<Effects, StorageError> {
    let r = match Registration::decode(body) {
        Ok(r) => r,
        Err(e) => return Ok(Effects::reply(Reply::status(400, e.to_string()))),
    };
    sql.execute(
        "INSERT INTO logs (destination, epoch, holds, since) VALUES (?, ?, ?, ?) ON CONFLICT (destination) DO UPDATE \
         SET epoch = excluded.epoch, holds = excluded.holds, since = excluded.since WHERE excluded.epoch > logs.epoch",
        &[Arg::Text(&r.destination), Arg::Int(r.epoch), Arg::Int(i64::from(holds)), Arg::Int(now)],
    )?;
    sql.execute("DELETE FROM logs WHERE holds = 0 AND since < ?", &[Arg::Int(now - FORGET_MS)])?;
    Ok(Effects::reply(Reply::ok("{}")))
}

/// `/logs`: the destinations whose logs hold deliveries, by name.
pub fn logs(sql: &impl Sql) -> Result<Effects, StorageError> {
    let destinations =
        sql.query("SELECT destination FROM logs WHERE holds = 1 ORDER BY destination", &[])?.into_iter().map(|mut r| r.take(0)).collect();
    Ok(Effects::reply(Reply::ok(Logs { destinations }.encode())))
}
