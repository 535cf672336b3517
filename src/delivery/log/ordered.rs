//! An app that takes a conversation's events in order (`"ordered": true`):
//! a conversation's next delivery is not sent before the one before it has
//! settled (delivered, gone or a dead letter); other conversations go side
//! by side.
//!
//! A conversation is busy while a delivery of it is out (the requests out,
//! in the state), or waits unsettled (`heads`: its turn is kept while it is
//! retried, held or queued). A delivery of a busy conversation waits in
//! `lines`, in the order it came; each settling lets the next one go. What
//! it costs: nothing for a delivery whose conversation is free and that is
//! sent at once; two rows for one that waits (its `lines` entry, in and
//! out), two more for one that is held, queued, or leaves the requests out
//! unsettled (its `heads` entry). All of it is in the tables and the state
//! row (which also keeps whether the app wants the order, for the steps
//! that cannot ask: the registry down, the app gone), so it holds through
//! retries, outages, drains and crashes. An app that stops wanting the
//! order gets what waited in line at its next alarm.

use super::super::key::Key;
use super::super::sql::{Arg, Sql, StorageError};
use super::places::{Edit, Place};
use super::rows::{d_row_columns, key_args, Row};
use super::{Log, ALARM_ROWS};

impl<S: Sql> Log<'_, S> {
    /// Whether a delivery of `conversation` is out or waits unsettled.
    pub(crate) fn busy(&self, conversation: &str) -> Result<bool, StorageError> {
        if self.st.flight.iter().any(|f| f.conversation.as_deref() == Some(conversation)) {
            return Ok(true);
        }
        Ok(self.sql.first("SELECT 1 FROM heads WHERE conversation = ?", &[Arg::Text(conversation)])?.is_some()
            || self.sql.first("SELECT 1 FROM lines WHERE conversation = ? LIMIT 1", &[Arg::Text(conversation)])?.is_some())
    }

    /// The delivery `key` of `conversation` left the requests out without
    /// settling: its conversation's turn stays its own.
    pub(crate) fn keep_turn(&mut self, conversation: &str, key: Key) -> Result<(), StorageError> {
        let k = key_args(key);
        self.sql.execute("INSERT OR IGNORE INTO heads (conversation, hour, event, replay) VALUES (?, ?, ?, ?)", &[Arg::Text(conversation), k[0], k[1], k[2]])?;
        Ok(())
    }

    /// The delivery `key` of `conversation` settled: the next one waiting
    /// goes (it is queued now, and sent as the step ends if it may).
    pub(crate) fn conversation_settled(&mut self, conversation: &str, key: Key) -> Result<(), StorageError> {
        let k = key_args(key);
        self.sql.execute(
            "DELETE FROM heads WHERE conversation = ? AND hour = ? AND event = ? AND replay = ?",
            &[Arg::Text(conversation), k[0], k[1], k[2]],
        )?;
        if self.busy_elsewhere(conversation, key)? {
            return Ok(());
        }
        let next = self.sql.first(
            "SELECT hour, event, replay FROM lines WHERE conversation = ? ORDER BY seq LIMIT 1",
            &[Arg::Text(conversation)],
        )?;
        let Some(next) = next else { return Ok(()) };
        let key = Key { hour: next.int0(0), event: next.event(1), replay: next.int0(2).clamp(0, i64::from(u32::MAX)) as u32 };
        if let Some(row) = Row::load(self.sql, key)? {
            let place = if self.sends() { Place::Queued { at: self.ctx.now } } else { Place::Held };
            self.move_to(&row, place, &Edit::NONE)?;
            // It has the conversation's turn now, until it settles.
            self.keep_turn(conversation, key)?;
        }
        Ok(())
    }

    /// An app that no longer takes conversations in order: what waits in
    /// line goes (held, if the app is down or paused), and the turns are
    /// forgotten. Answers whether more is left for the next alarm.
    pub(crate) fn release_lines(&mut self) -> Result<bool, StorageError> {
        let rows: Vec<Row> = self
            .sql
            .query(
                concat!(
                    "SELECT ",
                    d_row_columns!(),
                    " FROM lines l JOIN deliveries d ON d.hour = l.hour AND d.event = l.event AND d.replay = l.replay ORDER BY l.seq LIMIT ?"
                ),
                &[Arg::Int(ALARM_ROWS)],
            )?
            .into_iter()
            .map(Row::from_sql)
            .collect();
        for row in &rows {
            let place = if self.sends() { Place::Queued { at: self.ctx.now } } else { Place::Held };
            self.move_to(row, place, &Edit::NONE)?;
        }
        if (rows.len() as i64) < ALARM_ROWS {
            self.sql.execute("DELETE FROM heads", &[])?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Whether deliveries wait in line or keep a turn (for an app that no
    /// longer takes conversations in order, they are released).
    pub(crate) fn has_lines(&self) -> Result<bool, StorageError> {
        Ok(self.sql.first("SELECT 1 FROM lines UNION ALL SELECT 1 FROM heads LIMIT 1", &[])?.is_some())
    }

    /// Whether another delivery of `conversation` than `key` is out or
    /// keeps its turn (one replayed, say).
    fn busy_elsewhere(&self, conversation: &str, key: Key) -> Result<bool, StorageError> {
        if self.st.flight.iter().any(|f| f.key != key && f.conversation.as_deref() == Some(conversation)) {
            return Ok(true);
        }
        Ok(self.sql.first("SELECT 1 FROM heads WHERE conversation = ?", &[Arg::Text(conversation)])?.is_some())
    }
}
