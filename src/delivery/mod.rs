//! The delivery system, as pure decisions and one state machine: which
//! destination gets which outbound event ([`destination`], [`handoff`]),
//! the outbox that takes a webhook's deliveries ([`outbox`]), each
//! destination's delivery log with its breaker ([`log`], [`breaker`]), the
//! queue consumer's decisions ([`consumer`]), and what crosses between them
//! ([`message`]).
//!
//! Nothing here knows about Workers: the outbox, the delivery log and the
//! registry are operations over a small synchronous SQL interface
//! ([`sql::Sql`]) that return one typed [`effects::Effects`] (the reply, the
//! alarm, queue sends, calls to other objects, log lines), which the Workers
//! adapter applies and the native tests check on real SQLite. Every await
//! lives in the adapter; time and randomness come in as arguments.

pub mod alerts;
pub mod apps;
pub mod breaker;
pub mod consumer;
pub mod destination;
pub mod effects;
pub mod handoff;
pub mod log;
pub mod message;
pub mod metrics;
pub mod outbox;
pub mod outcome;
pub mod payload;
pub mod redact;
pub mod registry;
pub mod schedule;
pub mod settings;
pub mod sign;
pub mod sql;
pub mod status;

pub use destination::{Destination, Destinations, Source, TokenMode};

/// The `User-Agent` of every delivery.
pub fn user_agent() -> String {
    format!("drift-bridge/{} (+https://github.com/drift-bridge)", crate::VERSION)
}
