//! An app's delivery log: one Durable Object per app incarnation that owns
//! every delivery to that app, from the moment a webhook hands it over to
//! the end of its retention, sends it, and keeps the app's circuit breaker.
//!
//! It is one state machine. A step takes typed inputs ([`Input`], read once
//! from what crosses the wire), loads the log's state once, handles them,
//! runs one finishing step (metrics, alerts, registration, the next wake,
//! save) and answers one [`Effects`]: the reply, the alarm, the requests to
//! send to the app, the calls to make, the log lines. Its caller runs the
//! step in one transaction with the alarm, then does the rest.
//!
//! **The short path.** A webhook's deliveries are stored here and, in the
//! same step, the requests that carry them to the app are asked for: the
//! caller answers the webhook and sends them at once, with no queue and no
//! batching window between. What the app answered comes back as one more
//! step (`Sent`), which several answers may share. Retries, the probes of a
//! tripped app, the drain of a backlog and what a stopped process left out
//! go from the alarm, the same way.
//!
//! **Guarantees.** Every accepted delivery is sent at least once, with the
//! same `webhook-id` every time, until the app answers 2xx or 410, or it
//! becomes a dead letter (12 attempts; a hold longer than
//! `HOLD_RETENTION_SECONDS`; its app removed or no longer wanting it; the log
//! full). A request that was out when its process stopped is sent again once
//! its lease is over (so an app can see a delivery twice, with the same
//! `webhook-id`).
//!
//! **Order.** Deliveries go in the order they were taken in, side by side.
//! An app with `"ordered": true` gets a conversation's next event only once
//! the one before has settled (delivered, gone or a dead letter), through
//! retries, outages, drains and crashes; other conversations go side by
//! side. A backlog (held while the app was down, paused, or recovered) is
//! released in its original order, `DRAIN_PER_SECOND` at a time, while new
//! deliveries go out at once.
//!
//! **Bounded work.** A step reads a bounded number of rows: the alarm at
//! most [`ALARM_ROWS`] of each kind, a page of the listing an hour of the
//! log at a time, a deduplication one seek per hour of its window.

#[cfg(feature = "log-admin")]
mod admin;
mod alerting;
mod ending;
mod finish;
pub mod input;
mod intake;
mod ordered;
mod places;
mod replays;
mod rows;
pub mod schema;
mod sending;
pub mod state;
mod timers;

use super::effects::{Effects, Reply};
use super::sql::{Sql, StorageError};
use super::settings::Settings;
use super::Destination;
use input::InputError;
use state::LogState;

pub use input::{Accept, Added, Fill, Input, ListQuery, MetricsQuery, NewDelivery, Recover, TestDelivery};

/// At most this many rows of one kind are handled by one alarm; more wait
/// for the next, which follows at once (an alarm must never run out of time).
pub const ALARM_ROWS: i64 = 500;
/// At most this many dead letters are replayed by one page of a recovery.
pub const RECOVER_PAGE: i64 = 200;
/// The rows a page of a recovery reads at most, replayed or not.
pub const RECOVER_SCAN: i64 = 1000;
/// Attempts in a delivery's history; older probes are dropped first.
pub const HISTORY_MAX: usize = 24;
/// Settled rows are deleted in batches: their deletion time is rounded up
/// to this (or a sixteenth of their retention, if that is shorter), so that
/// one alarm deletes many.
pub const EXPIRY_GRAIN_MS: i64 = 600_000;
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
/// The most requests to one app that are out at once. More wait their turn,
/// in order, and go as the ones out are answered. (A Worker invocation
/// keeps at most 6 connections open; each step's requests are its own.)
pub const MAX_FLIGHT: usize = 64;
/// The most requests out at once to an app that takes a listener: a
/// developer's machine never has more than this many deliveries on hand
/// (`drift-bridge listen` forwards 6 at once).
pub const LISTEN_FLIGHT: usize = 6;
/// How long the caller may hold what an app answered before it reports it,
/// so that the reports of several answers share one write of the state
/// (none while deliveries wait for room among the requests out: each
/// answer makes room at once).
pub const REPORT_WITHIN_MS: u32 = 500;
/// The longest a request waits for its turn (an app with a rate) before it
/// goes; a delivery whose turn is further off waits in the log.
pub const PACE_MAX_MS: i64 = 10_000;

/// What every step runs with: the settings and what the caller knows that
/// the state machine must not find out for itself.
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
    /// Whether a `drift-bridge listen` is connected to the log. Without
    /// one, an app that takes a listener has its deliveries held, as while
    /// paused.
    pub listener: bool,
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

    /// When a settled row with `retention_ms` is deleted.
    fn expiry(&self, retention_ms: i64) -> i64 {
        let grain = (retention_ms / 16).clamp(1, EXPIRY_GRAIN_MS);
        let at = self.now + retention_ms;
        at + (grain - at.rem_euclid(grain)) % grain
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

/// Why a delivery of a removed app (the log's key `key`) is a dead letter.
pub(crate) fn removed_reason(key: &str) -> String {
    format!("its app {} was removed", super::destination::name_of_key(key))
}

/// One step of a log: `inputs` in order (what apps answered since the last
/// step first, when the caller has any, then the request or the alarm),
/// over one load of its state and one finish.
pub fn step(sql: &impl Sql, ctx: &Context<'_>, inputs: Vec<Input>) -> Result<Effects, StorageError> {
    let alarm = inputs.contains(&Input::Alarm);
    let mut log = Log::open(sql, ctx)?;
    for input in inputs {
        log.handle(input)?;
    }
    log.finish(alarm)
}

/// Reads a request (or report) and runs its step; a body that cannot be
/// read is answered 400 (404 for an unknown path) and changes nothing.
pub fn serve(sql: &impl Sql, ctx: &Context<'_>, reports: &str, path: &str, body: &str) -> Result<Effects, StorageError> {
    match inputs(reports, path, body) {
        Ok(inputs) => step(sql, ctx, inputs),
        Err(refused) => Ok(refused),
    }
}

/// A step's inputs from what crosses the wire: the caller's report of what
/// apps answered (`reports`, "" for none), then the request (`path`,
/// `body`) or the alarm. `Err`: the answer to what cannot be read (400, or
/// 404 for an unknown path), which changes nothing.
pub fn inputs(reports: &str, path: &str, body: &str) -> Result<Vec<Input>, Effects> {
    let mut inputs = Vec::with_capacity(2);
    if !reports.is_empty() {
        match Input::decode("/sent", reports) {
            Ok(sent) => inputs.push(sent),
            // A report the caller wrote wrongly: a bug, kept out of the step.
            Err(e) => return Err(Effects::reply(Reply::status(500, format!("the caller's report cannot be read: {e}")))),
        }
    }
    match Input::decode(path, body) {
        Ok(input) => inputs.push(input),
        Err(InputError::Unknown(p)) => return Err(Effects::reply(Reply::status(404, format!("unknown delivery log operation {}", crate::escape::quoted(&p))))),
        Err(InputError::Bad(e)) => return Err(Effects::reply(Reply::status(400, e.to_string()))),
    }
    Ok(inputs)
}

/// Creates (or upgrades) the tables, as the object starts.
pub fn open(sql: &impl Sql, ctx: &Context<'_>) -> Result<schema::Found, StorageError> {
    schema::open(sql, ctx.now)
}

/// One step of a log in progress: its storage, its state as loaded, what
/// the step has asked for so far, and when it must wake next.
pub(crate) struct Log<'a, S: Sql> {
    sql: &'a S,
    ctx: &'a Context<'a>,
    st: LogState,
    fx: Effects,
    /// The app, as this step's settings have it (none: removed or unknown).
    app: Option<Destination>,
    /// Work is left that one step does not do: the alarm fires again at once.
    more: bool,
    /// Deliveries due now wait for room among the requests out: the
    /// answers are reported at once rather than held, to make room.
    crowded: bool,
}

impl<'a, S: Sql> Log<'a, S> {
    /// Loads the state: as stored, or started afresh when the app whose
    /// incarnation had ended is there again (a declared app removed from
    /// `DESTINATIONS`, then declared again: the new one shares nothing with
    /// it; sooner than [`RESTART_AFTER_MS`], it was a deploy rolling out).
    fn open(sql: &'a S, ctx: &'a Context<'a>) -> Result<Log<'a, S>, StorageError> {
        let st = LogState::load(sql, &ctx.settings.circuit)?;
        let mut log = Log { sql, ctx, st, fx: Effects::default(), app: None, more: false, crowded: false };
        log.refresh_app();
        // The minute that is over is written before this step counts
        // anything, so that what it counts lands in its own minute.
        if log.st.minute.due(ctx.now) {
            let counted = !log.st.minute.by_type.is_empty() || log.st.minute.backlog.is_some();
            log.st.minute.flush(sql, ctx.now)?;
            if counted {
                log.st.touch();
            }
        }
        if let Some(ended) = log.st.ended {
            let key = log.st.name.as_deref();
            let plain = key.is_some_and(|k| super::destination::incarnation_of_key(k).is_none());
            if plain && ctx.presence(key) == Presence::Here {
                if ctx.now - ended < RESTART_AFTER_MS {
                    log.st.touch().ended = None;
                } else {
                    ending::restart(&mut log)?;
                }
            }
        }
        Ok(log)
    }

    /// Learns the log's key from an input that names it (a log is created
    /// by its first call), or refuses one meant for another log.
    fn learn(&mut self, key: &str) -> Result<(), Reply> {
        match &self.st.name {
            None => {
                self.st.touch().name = Some(key.to_owned());
                self.refresh_app();
                Ok(())
            }
            Some(own) if own != key => Err(Reply::status(400, format!("this is the delivery log of {own}, not of {key}"))),
            Some(_) => Ok(()),
        }
    }

    fn refresh_app(&mut self) {
        self.app = self.st.name.as_deref().and_then(|k| self.ctx.settings.destination(k)).cloned();
        if let Some(ordered) = self.app.as_ref().map(|a| a.ordered).filter(|o| *o != self.st.ordered) {
            self.st.touch().ordered = ordered;
        }
    }

    /// The log's key ("" until it learns it).
    fn key(&self) -> &str {
        self.st.name.as_deref().unwrap_or("")
    }

    /// The app's name, for log lines and alerts.
    fn name(&self) -> &str {
        super::destination::name_of_key(self.key())
    }

    /// Whether the log's app is there: as the step's copy of the apps says,
    /// but an incarnation that ended is gone for good (a copy a few seconds
    /// old may still list it).
    fn presence(&self) -> Presence {
        let key = self.st.name.as_deref();
        if self.st.ended.is_some() && key.is_some_and(|k| super::destination::incarnation_of_key(k).is_some()) {
            return Presence::Removed;
        }
        self.ctx.presence(key)
    }

    /// For the admin API's `configured`: present, or not known to be gone.
    #[cfg(feature = "log-admin")]
    fn configured(&self) -> bool {
        self.presence() != Presence::Removed
    }

    /// Whether the app wants a conversation's events in order (as last
    /// known, when the step cannot tell).
    fn ordered(&self) -> bool {
        self.app.as_ref().map_or(self.st.ordered, |a| a.ordered)
    }

    /// Whether the app takes a listener and none is connected: what it has
    /// is held, as while paused (not sent, no attempt used, the breaker not
    /// told), and drains once one connects.
    pub(crate) fn unheard(&self) -> bool {
        self.app.as_ref().is_some_and(|a| a.listen) && !self.ctx.listener
    }

    /// Whether deliveries go out now rather than being held.
    pub(crate) fn sends(&self) -> bool {
        self.st.breaker.sends() && !self.unheard()
    }

    /// The most requests out at once to the app.
    pub(crate) fn max_flight(&self) -> usize {
        if self.app.as_ref().is_some_and(|a| a.listen) {
            LISTEN_FLIGHT
        } else {
            MAX_FLIGHT
        }
    }

    /// The app's rate (`ratePerSecond`), if it has one.
    fn rate(&self) -> Option<u32> {
        self.app.as_ref().and_then(|a| a.rate_per_second)
    }

    fn handle(&mut self, input: Input) -> Result<(), StorageError> {
        let reply = match input {
            Input::Accept(a) => {
                if let Err(reply) = self.learn(&a.key) {
                    self.fx.reply = Some(reply);
                    return Ok(());
                }
                Some(intake::accept(self, a)?)
            }
            Input::Sent(seen) => {
                sending::sent(self, seen)?;
                None
            }
            Input::Alarm => {
                timers::alarm(self)?;
                None
            }
            Input::Called(results) => {
                finish::called(self, results);
                None
            }
            Input::End { key } => {
                if let Err(reply) = self.learn(&key) {
                    self.fx.reply = Some(reply);
                    return Ok(());
                }
                Some(ending::end(self)?)
            }
            #[cfg(feature = "log-admin")]
            Input::Test(t) => {
                if let Err(reply) = self.learn(&t.key) {
                    self.fx.reply = Some(reply);
                    return Ok(());
                }
                admin::test(self, t)?
            }
            #[cfg(feature = "log-admin")]
            other => Some(admin::handle(self, other)?),
            // Never here: a build without the admin operations hands them to
            // one with them ([`Input::is_admin`]).
            #[cfg(not(feature = "log-admin"))]
            other => Some(Reply::status(500, format!("{} is an admin operation, which this build leaves out", other.path()))),
        };
        if let Some(reply) = reply {
            self.fx.reply = Some(reply);
        }
        Ok(())
    }
}

/// Why a log's answer is `400`.
#[cfg(feature = "log-admin")]
fn bad_request(e: impl std::fmt::Display) -> Reply {
    Reply::status(400, e.to_string())
}
