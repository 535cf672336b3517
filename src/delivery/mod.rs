//! The delivery system: which app gets which outbound event
//! ([`destination`], [`apps`], [`handoff`]), each app's delivery log, the
//! one state machine that stores, sends, retries and keeps its breaker
//! ([`log`]), the registry of apps managed at runtime ([`registry`]), and
//! the outbox of an older version, drained ([`outbox`]).
//!
//! Nothing here knows about Workers: each object is a state machine over a
//! small synchronous SQL interface ([`sql::Sql`]) that takes one typed input
//! per step and answers one [`effects::Effects`] (the reply, the alarm, the
//! requests to apps, the calls to other objects, the log lines), which the
//! Workers adapter executes and the native tests execute the same way, on
//! real SQLite. Every await lives in the adapter; time and randomness come
//! in as arguments.

pub mod alerts;
pub mod apps;
pub mod breaker;
pub mod destination;
pub mod effects;
pub mod handoff;
pub mod key;
pub mod log;
pub mod metrics;
pub mod outbox;
pub mod outcome;
pub mod payload;
pub mod redact;
pub mod registry;
pub mod request;
pub mod schedule;
pub mod settings;
pub mod sign;
pub mod sql;
pub mod status;
pub mod wire;

pub use destination::{Destination, Destinations, Source, TokenMode};

/// The `User-Agent` of every delivery.
pub fn user_agent() -> String {
    format!("drift-bridge/{} (+https://github.com/drift-bridge)", crate::VERSION)
}
