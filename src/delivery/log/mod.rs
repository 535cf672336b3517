//! A destination's delivery log: one Durable Object per destination that
//! owns every delivery to that app, from the moment an outbox forwards it
//! to the end of its retention, and the app's circuit breaker.
//!
//! Each operation here is synchronous over [`Sql`] and answers one
//! [`Effects`]; the caller runs it in one transaction, applies the alarm in
//! it, then sends and calls what it names. The operations:
//!
//! | operation | from | does |
//! |---|---|---|
//! | [`add`] | an outbox | takes deliveries in (deduplicated), queues or holds them |
//! | [`attempt`] | the consumer | hands out those that may go now, leased to it |
//! | [`settle`] | the consumer | records how the attempts ended; the breaker judges the app |
//! | [`dead`] | the dead-letter consumer | fails what the queue gave up on (that generation only) |
//! | [`alarm`] | the runtime | recovery, probes, the drain, hold and retention ends, recovery pages |
//! | [`list`], [`get`], [`replay`], [`recover`], [`pause`], [`resume`], [`health`] | the admin API | |
//! | [`test`], then [`tested`] | the admin API | a test delivery, sent at once and kept marked as a test |
//!
//! **Guarantees.** Every accepted delivery is sent at least once, with the
//! same `webhook-id` every time, until the app answers 2xx or 410, or it
//! becomes a dead letter (12 attempts; a hold longer than
//! `HOLD_RETENTION_SECONDS`; its destination removed; the log full). A
//! delivery is never handed to two consumers at once: a consumer's lease
//! covers the deadlines of its whole batch, and a message of an older
//! generation is skipped. What the consumer crashed on is sent again once
//! its lease is over (so an app can see a delivery twice, with the same
//! `webhook-id`), and a delivery whose consumer keeps crashing ends as a
//! dead letter at the attempt ceiling.
//!
//! **Order.** Deliveries are queued in the order they were accepted; the
//! queue and retries may reorder them. A backlog (held while the app was
//! down, or paused, or recovered) is released in its original order, at
//! `DRAIN_PER_SECOND`, while deliveries that arrive meanwhile go out at
//! once: after an outage with a backlog of B, the app is current again
//! within about B / `DRAIN_PER_SECOND` seconds.
//!
//! **Bounded work.** Every operation reads a bounded number of rows: the
//! alarm at most [`ALARM_ROWS`] due rows, the drain's rate and a few more;
//! the admin's listing at most [`SCAN_ROWS`]; the health counts are kept in
//! the state row, its percentiles come from at most 60 minute and 25 hour
//! rows of metrics per event type.

mod alerting;
mod ending;
mod intake;
mod operator;
mod rows;
mod run;
pub mod schema;
mod sending;
pub mod state;
mod test_delivery;

use super::effects::Effects;
use super::sql::{Row, Sql, StorageError};
use super::status::Status;
use super::settings::Settings;

pub use ending::end;
pub use intake::add;
pub use operator::{fill, get, health, list, metrics, pause, recover, replay, resume, stats, totals, METRICS_ROWS};
pub use run::{alarm, called};
pub use sending::{attempt, dead, settle, waves, PACE_MAX_MS};
pub use test_delivery::{test, tested, TestDelivery};

/// At most this many due rows are handled by one alarm; more wait for the
/// next, which follows at once (an alarm must never run out of time).
pub const ALARM_ROWS: i64 = 500;
/// At most this many rows are read by one page of the admin's listing.
pub const SCAN_ROWS: i64 = 1000;
/// At most this many dead letters are replayed by one page of a recovery.
pub const RECOVER_PAGE: i64 = 200;
/// Attempts in a delivery's history; older probes are dropped first.
pub const HISTORY_MAX: usize = 24;
/// A log whose deliveries wait looks at least this often whether its app
/// is still there (a declared app removed from `DESTINATIONS` ends what its
/// log holds within this long).
pub const CHECK_MS: i64 = 3_600_000;
/// A declared app that is back this long after its log ended what it held
/// starts afresh; sooner, it was a deploy rolling out, and it goes on.
pub const RESTART_AFTER_MS: i64 = 15 * 60_000;
/// How long a log whose app's presence cannot be confirmed (the registry
/// could not be reached) waits before it looks again.
pub const UNKNOWN_RETRY_MS: i64 = 30_000;
/// Settled rows are deleted in batches: their deletion time is rounded up
/// to this (or a sixteenth of their retention, if that is shorter), so that
/// one alarm deletes many.
pub const EXPIRY_GRAIN_MS: i64 = 600_000;

/// What every operation runs with: the settings and what the caller
/// knows that the state machine must not find out for itself.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    pub settings: &'a Settings,
    /// The time, in ms since the epoch.
    pub now: i64,
    /// A random number, for the jitter of retries.
    pub seed: u32,
    /// Whether the settings hold a current copy of the apps managed at
    /// runtime (the registry answered). Without one, only the declared apps
    /// are known for sure: a runtime app's log then neither sends nor ends
    /// anything until it can tell.
    pub apps_known: bool,
}

impl Context<'_> {
    /// A jitter in [0, 1) for one delivery.
    fn jitter(&self, id: &str) -> f64 {
        // FNV-1a of the id, mixed with the seed (xorshift).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ u64::from(self.seed);
        for b in id.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        (h >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The rate of the destination `name` (`ratePerSecond`), if it has one.
    fn rate(&self, name: Option<&str>) -> Option<u32> {
        self.settings.destination(name?)?.rate_per_second
    }

    /// Whether the app of the log with the key `key` is still there.
    pub fn presence(&self, key: Option<&str>) -> Presence {
        let Some(key) = key else { return Presence::Removed };
        match self.settings.destination(key) {
            Some(d) if d.source == super::Source::Declared => Presence::Here,
            Some(_) if self.apps_known => Presence::Here,
            None if self.apps_known => Presence::Removed,
            _ => Presence::Unknown,
        }
    }

    /// When a settled row with `retention_ms` is deleted.
    fn expiry(&self, retention_ms: i64) -> i64 {
        let grain = (retention_ms / 16).clamp(1, EXPIRY_GRAIN_MS);
        let at = self.now + retention_ms;
        at + (grain - at.rem_euclid(grain)) % grain
    }
}

/// Whether a log's app is still there, as far as a step can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    Here,
    /// Deleted (or removed from `DESTINATIONS`): what its log holds ends.
    Removed,
    /// Not known: the registry could not be asked (only for runtime apps).
    Unknown,
}

/// The columns of [`Delivery`], in its order.
macro_rules! delivery_columns {
    () => {
        "seq, id, status, generation, attempts, probe, lease_until, wake_at, accepted_at, created_at, event_id, type, size, replayed_as, org, scope"
    };
}
pub(crate) use delivery_columns;

/// One delivery's row, without its body and history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Delivery {
    pub seq: i64,
    pub id: String,
    pub status: Status,
    pub generation: u32,
    pub attempts: u32,
    pub probe: bool,
    pub lease_until: Option<i64>,
    pub wake_at: Option<i64>,
    pub accepted_at: i64,
    pub created_at: i64,
    pub event_id: String,
    pub event_type: String,
    pub size: i64,
    pub replayed_as: Option<String>,
    /// The Drift organisation of its event (its `orgId` as written), when
    /// known.
    pub org: Option<String>,
}

impl Delivery {
    /// Reads a row of [`delivery_columns`]; a status it does not know is
    /// read as failed (never sent again).
    fn from_row(mut r: Row) -> Delivery {
        Delivery {
            seq: r.int0(0),
            id: r.take(1),
            status: r.text(2).and_then(Status::from_sql).unwrap_or(Status::Failed),
            generation: r.int0(3).clamp(0, i64::from(u32::MAX)) as u32,
            attempts: r.int0(4).clamp(0, i64::from(u32::MAX)) as u32,
            probe: r.int0(5) == 1,
            lease_until: r.int(6),
            wake_at: r.int(7),
            accepted_at: r.int(8).unwrap_or_else(|| r.int0(9)),
            created_at: r.int0(9),
            event_id: r.take(10),
            event_type: r.take(11),
            size: r.int(12).unwrap_or(schema::ROW_OVERHEAD),
            replayed_as: r.take_opt(13),
            org: r.take_opt(14).or_else(|| org_of_scope(r.text(15)?).map(str::to_owned)),
        }
    }

    fn find(sql: &impl Sql, id: &str) -> Result<Option<Delivery>, StorageError> {
        Ok(sql
            .first(concat!("SELECT ", delivery_columns!(), " FROM deliveries WHERE id = ?"), &[super::sql::Arg::Text(id)])?
            .map(Delivery::from_row))
    }
}

/// Why a delivery of a removed app (the log's key `key`) is a dead letter.
pub(crate) fn removed_reason(key: &str) -> String {
    format!("its app {} was removed", super::destination::name_of_key(key))
}

/// The organisation in a scope `conversation:<orgId>:<conversationId>`
/// (rows from before the `org` column).
fn org_of_scope(scope: &str) -> Option<&str> {
    scope.strip_prefix("conversation:")?.split_once(':').map(|(org, _)| org)
}

/// The log's state for a step: as stored, or started afresh when the app
/// whose incarnation had ended is there again (a declared app removed from
/// `DESTINATIONS`, then declared again: the new one shares nothing with it).
pub(crate) fn open_state(sql: &impl Sql, ctx: &Context<'_>) -> Result<state::LogState, StorageError> {
    let mut st = state::LogState::load(sql, &ctx.settings.circuit)?;
    if let Some(ended) = st.ended {
        let key = st.name.as_deref();
        // An incarnation that ended never comes back (an app created again
        // has a log of its own); a declared app may be declared again.
        if key.is_some_and(|k| super::destination::incarnation_of_key(k).is_none()) && ctx.presence(key) == Presence::Here {
            if ctx.now - ended < RESTART_AFTER_MS {
                // Back so soon: a deploy's isolates disagreeing while it
                // rolls out, not an app removed. What ended stays ended.
                st.touch().ended = None;
            } else {
                ending::restart(sql, &mut st, ctx)?;
            }
        }
    }
    Ok(st)
}

/// Whether the app of the log whose state is `st` is there: as the step's
/// copy of the apps says, but an incarnation that ended is gone for good
/// (a copy a few seconds old may still list it).
pub(crate) fn presence_of(ctx: &Context<'_>, st: &state::LogState) -> Presence {
    let key = st.name.as_deref();
    if st.ended.is_some() && key.is_some_and(|k| super::destination::incarnation_of_key(k).is_some()) {
        return Presence::Removed;
    }
    ctx.presence(key)
}

/// Creates (or upgrades) the tables, as the object starts.
pub fn open(sql: &impl Sql, ctx: &Context<'_>) -> Result<schema::Found, StorageError> {
    schema::open(sql, ctx.now, ctx.settings.hold_retention_ms())
}

/// Whether the log's app is there, for the admin API's `configured`:
/// present, or not known to be gone.
fn configured(ctx: &Context<'_>, st: &state::LogState) -> bool {
    presence_of(ctx, st) != Presence::Removed
}

/// Effects with only a reply, for a request that could not be read.
fn bad_request(e: impl std::fmt::Display) -> Effects {
    Effects::reply(super::effects::Reply::status(400, e.to_string()))
}
