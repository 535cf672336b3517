//! Delivery to the apps behind the bridge, as pure decisions: which
//! destination gets which outbound event ([`destination`]), what body and
//! headers it receives ([`payload`], [`sign`]), when a failed attempt is tried
//! again ([`schedule`]), and what travels on the queue ([`message`]).
//!
//! The worker does the I/O: it stores claims in a Durable Object, puts
//! messages on a Queue and POSTs them. Nothing here knows about Workers.

pub mod destination;
pub mod handoff;
pub mod message;
pub mod payload;
pub mod schedule;
pub mod sign;

pub use destination::{Destination, Destinations, TokenMode};
pub use message::Message;

/// How long a delivered or queued event id keeps a destination from getting
/// the same id again.
pub const DEDUP_WINDOW_MS: i64 = 24 * 60 * 60 * 1000;

/// The `User-Agent` of every delivery.
pub fn user_agent() -> String {
    format!("drift-bridge/{} (+https://github.com/drift-bridge)", crate::VERSION)
}
