//! Replays: a dead letter once more as a new delivery `<id>.r<n>` with the
//! same event and `webhook-id`, and the pages of a bulk recovery, which the
//! log's alarm carries on (so this is in every build, while the admin API's
//! operations are in [`super::admin`], the operator's).

use super::super::breaker::Mode;
use super::super::key::{hour_of, Key};
use super::super::metrics::HOUR_MS;
use super::super::sql::{Arg, Sql, StorageError};
use super::super::status::Status;
use super::places::{NewRow, Place};
use super::rows::{row_columns, Row};
use super::{Log, RECOVER_PAGE, RECOVER_SCAN};

/// A position in the log, for a listing's cursor: its hour and its place in
/// the order deliveries were taken in, in one number that orders as they do.
#[cfg(feature = "log-admin")]
pub fn position(key: Key, seq: i64) -> i64 {
    (key.hour << 32) | (seq & 0xffff_ffff)
}

/// The hours a delivery may still be kept in: as old as a hold, a retry
/// ceiling and the longer retention allow.
pub(crate) fn kept_hours<S: Sql>(log: &Log<'_, S>) -> (i64, i64) {
    let s = log.ctx.settings;
    let oldest = s.hold_retention_ms() + s.delivery_log_ms().max(s.dead_letter_retention_ms()) + 2 * 24 * HOUR_MS;
    (hour_of(log.ctx.now - oldest), hour_of(log.st.last_accepted.max(log.ctx.now)))
}

impl<S: Sql> Log<'_, S> {
    /// A new delivery `<id>.r<n>` with the same event (and so the same
    /// `webhook-id`) as `original`, queued now or held; a dead letter
    /// becomes `replayed` and names it. `n` is the first that is free.
    pub(crate) fn replay_row(&mut self, original: &Row, body: Option<&str>, held: bool, reason: &str) -> Result<String, StorageError> {
        // A replay of it is no older than it: the hours since it was taken in.
        let (_, to) = kept_hours(self);
        let from = original.key.hour;
        let mut n = original.key.replay + 1;
        while n < original.key.replay + 1000 && Row::find(self.sql, original.key.event, n, from, to)?.is_some() {
            n += 1;
        }
        let body = match body {
            Some(body) => body.to_owned(),
            None => match Row::load_full(self.sql, original.key)? {
                Some((_, body, _)) => body,
                None => return Ok(String::new()),
            },
        };
        let accepted = self.st.accept_time(self.ctx.now);
        let key = Key::new(accepted, original.key.event, n);
        let new = NewRow {
            key,
            event_type: &original.event_type,
            scope: &original.scope,
            org: original.org.as_deref(),
            received_at: self.ctx.now,
            accepted_at: accepted,
            body: &body,
            size: original.size,
            attempts: 0,
            reason: Some(reason),
            history: None,
            last_error: None,
        };
        // An app that takes a conversation's events in order: behind an
        // earlier one of its conversation, or with the turn.
        let ordered = super::input::conversation_of(&original.scope).filter(|_| self.ordered());
        let behind = match ordered {
            Some(c) => self.busy(c)?,
            None => false,
        };
        let place = match ordered {
            Some(c) if behind => Place::Waiting { conversation: c },
            _ if held => Place::Held,
            _ => Place::Queued { at: self.ctx.now },
        };
        self.insert(&new, place)?;
        if let (Some(c), false) = (ordered, behind) {
            self.keep_turn(c, key)?;
        }
        self.st.count(&original.event_type).accepted += 1;
        let new_id = key.id(self.name());
        let k = super::rows::key_args(original.key);
        if original.status.is_dead() {
            let expires = self.ctx.expiry(self.ctx.settings.dead_letter_retention_ms());
            self.sql.execute(
                "UPDATE deliveries SET status = 'replayed', replayed_as = ?4, expires_at = ?5, updated_at = ?6 WHERE hour = ?1 AND event = ?2 AND replay = ?3",
                &[k[0], k[1], k[2], Arg::Text(&new_id), Arg::Int(expires), Arg::Int(self.ctx.now)],
            )?;
            self.st.moved(original.status, Status::Replayed);
        } else {
            self.sql.execute(
                "UPDATE deliveries SET replayed_as = ?4, updated_at = ?5 WHERE hour = ?1 AND event = ?2 AND replay = ?3",
                &[k[0], k[1], k[2], Arg::Text(&new_id), Arg::Int(self.ctx.now)],
            )?;
        }
        Ok(new_id)
    }
}

/// One page of the recovery in progress; answers whether pages remain.
///
/// Hour by hour from where the last page stopped, oldest hour first; in an
/// hour, in the order of its primary key (the event ids), so that a page
/// reads rows by seeks and never sorts a whole hour: at most
/// [`RECOVER_SCAN`] rows a page, of which at most [`RECOVER_PAGE`] are
/// replayed. What one read of the page finds is replayed in the order it
/// was taken in.
pub(crate) fn recover_page<S: Sql>(log: &mut Log<'_, S>) -> Result<bool, StorageError> {
    let Some(mut job) = log.st.recovery.clone() else { return Ok(false) };
    let mut replayed = 0;
    let mut scanned = 0;
    let mut more = false;
    let until_hour = job.until >> 32;
    let until_seq = job.until & 0xffff_ffff;
    let mut hour = match job.after_key {
        Some(k) => Some(k.hour),
        None => log.sql.number("SELECT MIN(hour) FROM deliveries WHERE hour >= ?", &[Arg::Int(job.after >> 32)])?,
    };
    'hours: while let Some(h) = hour.filter(|h| *h <= until_hour) {
        loop {
            let take = (RECOVER_PAGE - replayed).min(RECOVER_SCAN - scanned);
            if take <= 0 {
                more = true;
                break 'hours;
            }
            let (event, replay) = match job.after_key.filter(|k| k.hour == h) {
                Some(k) => (Arg::Event(k.event), i64::from(k.replay)),
                // Before every event id of the hour.
                None => (Arg::Text(""), -1),
            };
            let rows: Vec<Row> = log
                .sql
                .query(
                    concat!(
                        "SELECT ",
                        row_columns!(),
                        " FROM deliveries WHERE hour = ?1 AND (event, replay) > (?2, ?3) ORDER BY event, replay LIMIT ?4"
                    ),
                    &[Arg::Int(h), event, Arg::Int(replay), Arg::Int(take)],
                )?
                .into_iter()
                .map(Row::from_sql)
                .collect();
            scanned += rows.len() as i64;
            let Some(last) = rows.last().map(|r| r.key) else { break };
            let mut found: Vec<&Row> = rows
                .iter()
                .filter(|r| job.statuses.iter().any(|s| s == r.status.sql()))
                .filter(|r| r.received_at >= job.since && (h < until_hour || r.seq <= until_seq))
                .collect();
            found.sort_by_key(|r| r.seq);
            for row in found {
                log.replay_row(row, None, true, "recovered by an operator")?;
                job.recovered += 1;
                replayed += 1;
            }
            job.after_key = Some(last);
            if (rows.len() as i64) < take {
                break;
            }
        }
        job.after_key = None;
        job.after = (h + 1) << 32;
        hour = log.sql.number("SELECT MIN(hour) FROM deliveries WHERE hour > ?", &[Arg::Int(h)])?;
    }
    if more {
        log.st.touch().recovery = Some(job);
    } else {
        log.st.touch().recovery = None;
        log.st.last_recovery = Some((job.recovered, log.ctx.now));
        if log.st.breaker.mode == Mode::Active && job.recovered > 0 {
            log.start_drain()?;
        }
    }
    Ok(more)
}

