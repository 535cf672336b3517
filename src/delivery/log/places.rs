//! Where a delivery is, and the one place it moves from one status to
//! another: its row, the side table that finds it there (`waits`, `held`,
//! `lines`), the requests out (in the state), the counts by status and
//! size, and the order of an app's conversations, all kept in step by
//! [`Log::insert`] and [`Log::move_to`] alone; and by two pairs that do
//! what `move_to` does for many rows of a step with one statement's writes
//! (each statement costs workerd more than SQLite's work on a row): a
//! drain's held rows going out ([`Log::left_held`] per row, then
//! [`Log::sent_from_held`]) and the answers that deliver
//! ([`Log::settle_delivered`], then [`Log::delivered_out`] per row).

use super::super::key::{event_hex, Key};
use super::super::sql::{Arg, Sql, StorageError};
use super::super::status::Status;
use super::rows::{key_args, row_columns, Row};
use super::state::Flight;
use super::Log;
use crate::escape::write_str_escaped;

/// Where a delivery goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Place<'r> {
    /// Behind an earlier delivery of its conversation that has not settled.
    Waiting { conversation: &'r str },
    /// To be sent at `at`, as its turn comes.
    Queued { at: i64 },
    /// A request is out: its attempt, until when it is leased, whether it
    /// is a probe of a tripped app.
    Sending { attempt: u32, lease_until: i64, probe: bool },
    /// Its last attempt failed; the next goes at `at`.
    Retrying { at: i64 },
    /// Held while its app is down or paused.
    Held,
    /// Delivered, failed, gone or replayed; kept until `expires_at`.
    Settled { status: Status, reason: Option<&'r str>, expires_at: i64 },
}

impl Place<'_> {
    pub fn status(&self) -> Status {
        match self {
            Place::Waiting { .. } => Status::Waiting,
            Place::Queued { .. } => Status::Queued,
            Place::Sending { .. } => Status::Sending,
            Place::Retrying { .. } => Status::Retrying,
            Place::Held => Status::Held,
            Place::Settled { status, .. } => *status,
        }
    }

    fn wake(&self) -> Option<i64> {
        match self {
            Place::Queued { at } | Place::Retrying { at } => Some(*at),
            _ => None,
        }
    }
}

/// What else changes with a move: the attempts charged, the history (the
/// whole new text), the last error. `None` keeps what the row has.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Edit<'a> {
    pub attempts: Option<u32>,
    pub history: Option<&'a str>,
    pub error: Option<&'a str>,
}

impl Edit<'_> {
    pub const NONE: Edit<'static> = Edit { attempts: None, history: None, error: None };
}

/// A new delivery's row.
pub(crate) struct NewRow<'a> {
    pub key: Key,
    pub event_type: &'a str,
    pub scope: &'a str,
    pub org: Option<&'a str>,
    pub received_at: i64,
    pub accepted_at: i64,
    pub body: &'a str,
    pub size: i64,
    pub attempts: u32,
    pub reason: Option<&'a str>,
    pub history: Option<&'a str>,
    pub last_error: Option<&'a str>,
}

impl<S: Sql> Log<'_, S> {
    /// Stores a new delivery at `place`, at the end of the log; answers its
    /// position, or `None` when a delivery of that key is already there.
    pub(crate) fn insert(&mut self, new: &NewRow<'_>, place: Place<'_>) -> Result<Option<i64>, StorageError> {
        let seq = self.st.seq + 1;
        let (expires, reason) = match place {
            Place::Settled { reason, expires_at, .. } => (Some(expires_at), reason.or(new.reason)),
            _ => (None, new.reason),
        };
        let k = key_args(new.key);
        let written = self.sql.execute(
            "INSERT INTO deliveries (hour, event, replay, seq, status, attempts, type, scope, org, received_at, accepted_at, updated_at, \
             wake_at, expires_at, size, body, history, last_error, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
            &[
                k[0],
                k[1],
                k[2],
                Arg::Int(seq),
                Arg::Text(place.status().sql()),
                Arg::Int(i64::from(new.attempts)),
                Arg::Text(new.event_type),
                Arg::Text(new.scope),
                Arg::from(new.org),
                Arg::Int(new.received_at),
                Arg::Int(new.accepted_at),
                Arg::Int(self.ctx.now),
                Arg::from(place.wake()),
                Arg::from(expires),
                Arg::Int(new.size),
                Arg::Text(new.body),
                Arg::from(new.history),
                Arg::from(new.last_error),
                Arg::from(reason),
            ],
        )?;
        if written == 0 {
            return Ok(None);
        }
        self.st.seq = seq;
        self.st.add(place.status(), 1);
        self.st.bytes += new.size;
        let conversation = super::input::conversation_of(new.scope).map(str::to_owned);
        self.enter(new.key, seq, conversation.as_deref(), place)?;
        if let Place::Settled { expires_at, .. } = place {
            self.expires(expires_at);
        }
        Ok(Some(seq))
    }

    /// Moves `row` to `place`, with `change`: one update of its row, and its
    /// side tables, the requests out and the counts kept in step. A
    /// delivery that settles lets the next of its conversation go (an app
    /// that wants them in order); one that leaves the requests out unsettled
    /// keeps its conversation's turn.
    pub(crate) fn move_to(&mut self, row: &Row, place: Place<'_>, change: &Edit<'_>) -> Result<(), StorageError> {
        self.leave(row)?;
        let (expires, reason) = match place {
            Place::Settled { reason, expires_at, .. } => (Some(expires_at), reason),
            _ => (None, None),
        };
        let k = key_args(row.key);
        self.sql.execute(
            "UPDATE deliveries SET status = ?4, wake_at = ?5, expires_at = ?6, reason = COALESCE(?7, reason), updated_at = ?8, \
             attempts = COALESCE(?9, attempts), history = COALESCE(?10, history), last_error = COALESCE(?11, last_error) \
             WHERE hour = ?1 AND event = ?2 AND replay = ?3",
            &[
                k[0],
                k[1],
                k[2],
                Arg::Text(place.status().sql()),
                Arg::from(place.wake()),
                Arg::from(expires),
                Arg::from(reason),
                Arg::Int(self.ctx.now),
                change.attempts.map(i64::from).into(),
                change.history.into(),
                change.error.into(),
            ],
        )?;
        self.moved(row, place, change)
    }

    /// Deliveries out whose first attempt their app took, each `(key, its
    /// history's line, whether the attempt was a probe, which a success
    /// charges)`: delivered, in one statement for them all that also reads
    /// them, those still out with no history yet (nearly every one). Answers
    /// their rows as they were (out), for [`Log::delivered_out`] to finish;
    /// the others are left as they are, for [`Log::move_to`].
    pub(crate) fn settle_delivered(&mut self, items: &[(Key, String, bool)], expires_at: i64) -> Result<Vec<Row>, StorageError> {
        // [[hour, event, replay, probe, history], …]
        let mut list = String::from("[");
        for (key, line, probe) in items {
            if list.len() > 1 {
                list.push(',');
            }
            list.push('[');
            list.push_str(&key.hour.to_string());
            list.push_str(",\"");
            list.push_str(&event_hex(key.event));
            list.push_str("\",");
            list.push_str(&key.replay.to_string());
            list.push_str(if *probe { ",1," } else { ",0," });
            write_str_escaped(&mut list, line);
            list.push(']');
        }
        list.push(']');
        let rows = self.sql.query(
            concat!(
                "UPDATE deliveries SET status = ?1, wake_at = NULL, expires_at = ?2, updated_at = ?3, \
                 attempts = attempts + json_extract(j.value, '$[3]'), history = json_extract(j.value, '$[4]') FROM json_each(?5) AS j \
                 WHERE deliveries.hour = json_extract(j.value, '$[0]') AND deliveries.event = json_extract(j.value, '$[1]') \
                 AND deliveries.replay = json_extract(j.value, '$[2]') AND deliveries.status = ?4 AND deliveries.history IS NULL RETURNING ",
                row_columns!()
            ),
            &[Arg::Text(Status::Delivered.sql()), Arg::Int(expires_at), Arg::Int(self.ctx.now), Arg::Text(Status::Sending.sql()), Arg::Text(&list)],
        )?;
        // As they were: out.
        Ok(rows.into_iter().map(|r| Row { status: Status::Sending, ..Row::from_sql(r) }).collect())
    }

    /// The rest of a delivery out becoming delivered, once
    /// [`Log::settle_delivered`] wrote its row (`row` as it was).
    pub(crate) fn delivered_out(&mut self, row: &Row, expires_at: i64) -> Result<(), StorageError> {
        self.leave(row)?;
        self.moved(row, Place::Settled { status: Status::Delivered, reason: None, expires_at }, &Edit::NONE)
    }

    /// A held `row` goes out (`place`, `Sending`): all of [`Log::move_to`]
    /// but its writes, which [`Log::sent_from_held`] makes for every row of
    /// the drain's step at once.
    pub(crate) fn left_held(&mut self, row: &Row, place: Place<'_>, change: &Edit<'_>) -> Result<(), StorageError> {
        self.moved(row, place, change)
    }

    /// The writes of [`Log::move_to`] for the held rows at positions
    /// `first..=last` of `held` whose requests went out
    /// ([`Log::left_held`]; the others there have left `held` already):
    /// two statements for them all. Each statement costs workerd far more
    /// than SQLite's work on a row, so a drain's step of 15 deliveries
    /// runs 2 statements rather than 30.
    pub(crate) fn sent_from_held(&mut self, first: i64, last: i64) -> Result<(), StorageError> {
        self.sql.execute(
            "UPDATE deliveries SET status = ?3, wake_at = NULL, expires_at = NULL, updated_at = ?4, attempts = attempts + 1 \
             WHERE status = ?5 AND (hour, event, replay) IN (SELECT hour, event, replay FROM held WHERE seq BETWEEN ?1 AND ?2)",
            &[Arg::Int(first), Arg::Int(last), Arg::Text(Status::Sending.sql()), Arg::Int(self.ctx.now), Arg::Text(Status::Held.sql())],
        )?;
        self.sql.execute("DELETE FROM held WHERE seq BETWEEN ? AND ?", &[Arg::Int(first), Arg::Int(last)])?;
        Ok(())
    }

    /// What follows the update of `row` to `place` (it has left its old
    /// place): the counts, its new side table, its conversation's turn, its
    /// expiry, and the alert of a dead letter.
    fn moved(&mut self, row: &Row, place: Place<'_>, change: &Edit<'_>) -> Result<(), StorageError> {
        self.st.moved(row.status, place.status());
        self.enter(row.key, row.seq, row.conversation(), place)?;
        if let (true, Some(conversation)) = (self.ordered(), row.conversation()) {
            match place {
                Place::Settled { .. } => self.conversation_settled(conversation, row.key)?,
                Place::Queued { .. } | Place::Retrying { .. } | Place::Held if row.status == Status::Sending => {
                    self.keep_turn(conversation, row.key)?;
                }
                _ => {}
            }
        }
        if let Place::Settled { status, reason, expires_at } = place {
            self.expires(expires_at);
            if status.is_dead() {
                let why = reason.or(change.error).unwrap_or("no reason kept").to_owned();
                let summary = format!("{} to {} is a dead letter", row.key.id(self.name()), self.name());
                super::alerting::raise(self, super::super::alerts::Kind::DeadLetter, summary, &why);
            }
        }
        Ok(())
    }

    /// Deletes `row` (its retention is over, or the log starts afresh).
    pub(crate) fn delete(&mut self, row: &Row) -> Result<(), StorageError> {
        self.leave(row)?;
        self.sql.execute("DELETE FROM deliveries WHERE hour = ? AND event = ? AND replay = ?", &key_args(row.key))?;
        self.st.add(row.status, -1);
        self.st.bytes = (self.st.bytes - row.size).max(0);
        Ok(())
    }

    /// Takes `row` out of the side table (or the requests out) its status
    /// put it in.
    fn leave(&mut self, row: &Row) -> Result<(), StorageError> {
        let k = key_args(row.key);
        match row.status {
            Status::Queued | Status::Retrying => {
                if let Some(at) = row.wake_at {
                    self.sql.execute("DELETE FROM waits WHERE at = ? AND hour = ? AND event = ? AND replay = ?", &[Arg::Int(at), k[0], k[1], k[2]])?;
                }
            }
            Status::Held => {
                self.sql.execute("DELETE FROM held WHERE seq = ?", &[Arg::Int(row.seq)])?;
            }
            Status::Waiting => {
                if let Some(conversation) = row.conversation() {
                    self.sql.execute("DELETE FROM lines WHERE conversation = ? AND seq = ?", &[Arg::Text(conversation), Arg::Int(row.seq)])?;
                }
            }
            Status::Sending => {
                let before = self.st.flight.len();
                self.st.flight.retain(|f| f.key != row.key);
                if self.st.flight.len() != before {
                    self.st.touch();
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Puts the delivery `key` (at position `seq`) in the side table (or
    /// the requests out) of `place`.
    fn enter(&mut self, key: Key, seq: i64, conversation: Option<&str>, place: Place<'_>) -> Result<(), StorageError> {
        let k = key_args(key);
        match place {
            Place::Queued { at } | Place::Retrying { at } => {
                self.sql.execute("INSERT OR IGNORE INTO waits (at, hour, event, replay) VALUES (?, ?, ?, ?)", &[Arg::Int(at), k[0], k[1], k[2]])?;
            }
            Place::Held => {
                self.sql.execute("INSERT OR REPLACE INTO held (seq, hour, event, replay) VALUES (?, ?, ?, ?)", &[Arg::Int(seq), k[0], k[1], k[2]])?;
            }
            Place::Waiting { conversation } => {
                self.sql.execute(
                    "INSERT OR REPLACE INTO lines (conversation, seq, hour, event, replay) VALUES (?, ?, ?, ?, ?)",
                    &[Arg::Text(conversation), Arg::Int(seq), k[0], k[1], k[2]],
                )?;
            }
            Place::Sending { attempt, lease_until, probe } => {
                let conversation = conversation.filter(|_| self.ordered()).map(str::to_owned);
                self.st.touch().flight.push(Flight { key, attempt, lease_until, probe, conversation });
            }
            Place::Settled { .. } => {}
        }
        Ok(())
    }

    /// A settled row's retention ends at `at`: the expiry's alarm is no later.
    fn expires(&mut self, at: i64) {
        if self.st.next_expiry.is_none_or(|n| at < n) {
            self.st.touch().next_expiry = Some(at);
        }
    }
}
