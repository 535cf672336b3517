//! What the delivery system runs with: the destinations, and the retry,
//! retention and breaker settings, as [`crate::config`] reads them from the
//! worker's variables. Its own type so that the delivery system depends on
//! nothing but these values.

use super::alerts::Alerting;
use super::breaker;
use super::{Destination, Destinations};

/// The delivery settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where outbound events go (none: the bridge only answers Drift).
    pub destinations: Destinations,
    /// First retry wait; see [`super::schedule`].
    pub retry_base_seconds: u32,
    /// How long one delivery attempt may take.
    pub delivery_timeout_ms: u32,
    /// How long past its deadline (and the report window) a request may go
    /// unreported before its delivery log sends it again (the object was
    /// evicted or the process died while the request was out).
    pub recovery_grace_seconds: u32,
    /// How long an accepted (event, destination) keeps the same pair from
    /// being delivered again.
    pub dedup_window_seconds: u32,
    /// How long failed, gone and replayed deliveries are kept for the admin.
    pub dead_letter_retention_seconds: u32,
    /// How long delivered deliveries stay in the delivery log (at least the
    /// deduplication window).
    pub delivery_log_seconds: u32,
    /// How long a delivery may be held (its app down, or paused) before it
    /// fails.
    pub hold_retention_seconds: u32,
    /// The circuit breaker and the catch-up after it.
    pub circuit: breaker::CircuitSettings,
    /// What one destination's delivery log may hold (bodies and a row's
    /// overhead); past it, new deliveries for that app fail at once.
    pub max_log_bytes: i64,
    /// Where alerts go, and when they are raised.
    pub alerts: Alerting,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            destinations: Destinations::default(),
            retry_base_seconds: super::schedule::DEFAULT_BASE_SECONDS,
            delivery_timeout_ms: 10_000,
            recovery_grace_seconds: 300,
            dedup_window_seconds: 86_400,
            dead_letter_retention_seconds: 14 * 86_400,
            delivery_log_seconds: 7 * 86_400,
            hold_retention_seconds: 30 * 86_400,
            circuit: breaker::CircuitSettings::default(),
            max_log_bytes: DEFAULT_MAX_LOG_BYTES,
            alerts: Alerting::default(),
        }
    }
}

/// The default cap on what one destination's delivery log holds: 1 GB (a
/// Durable Object holds up to 10 GB).
pub const DEFAULT_MAX_LOG_BYTES: i64 = 1_000_000_000;

impl Settings {
    /// The destination of the delivery log with the key `key`
    /// ([`super::destination::log_key`]): an app (that incarnation of it),
    /// or an alert target (`@<name>`).
    pub fn destination(&self, key: &str) -> Option<&Destination> {
        match self.destinations.by_key(key) {
            Some(d) => Some(d),
            None => self.alerts.target(key).map(|t| &t.destination),
        }
    }

    /// The destination named `name`, as the admin API names it: an app
    /// (its current incarnation) or an alert target.
    pub fn named(&self, name: &str) -> Option<&Destination> {
        match self.destinations.get(name) {
            Some(d) => Some(d),
            None => self.alerts.target(name).map(|t| &t.destination),
        }
    }

    /// The secret bindings the declared apps and alert targets name: no app
    /// managed at runtime may read them.
    pub fn reserved_secret_names(&self) -> Vec<String> {
        let mut names = self.destinations.secret_names.clone();
        names.extend(self.alerts.targets.iter().filter_map(|t| t.secret_name.clone()));
        names
    }

    /// The deduplication window in milliseconds.
    pub fn dedup_window_ms(&self) -> i64 {
        i64::from(self.dedup_window_seconds) * 1000
    }

    /// Dead-letter retention in milliseconds.
    pub fn dead_letter_retention_ms(&self) -> i64 {
        i64::from(self.dead_letter_retention_seconds) * 1000
    }

    /// Delivery log retention in milliseconds.
    pub fn delivery_log_ms(&self) -> i64 {
        i64::from(self.delivery_log_seconds) * 1000
    }

    /// Hold retention in milliseconds.
    pub fn hold_retention_ms(&self) -> i64 {
        i64::from(self.hold_retention_seconds) * 1000
    }

    /// Recovery grace in milliseconds.
    pub fn recovery_grace_ms(&self) -> i64 {
        i64::from(self.recovery_grace_seconds) * 1000
    }
}
