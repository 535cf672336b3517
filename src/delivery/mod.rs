//! Delivery to the apps behind the bridge, as pure decisions: which
//! destination gets which outbound event ([`destination`], [`handoff`]),
//! what body and headers it receives ([`payload`], [`sign`]), what an
//! attempt's ending means ([`outcome`]), when a failed attempt is tried again
//! ([`schedule`]), what travels on the queue ([`message`]), and how an event
//! is shown without Drift's token ([`redact`]).
//!
//! The worker does the I/O: Durable Objects store the deliveries, a Queue
//! carries references to them, a consumer POSTs them. Nothing here knows
//! about Workers.

pub mod circuit;
pub mod destination;
pub mod handoff;
pub mod message;
pub mod outcome;
pub mod payload;
pub mod redact;
pub mod schedule;
pub mod sign;

pub use destination::{Destination, Destinations, TokenMode};

/// The `User-Agent` of every delivery.
pub fn user_agent() -> String {
    format!("drift-bridge/{} (+https://github.com/drift-bridge)", crate::VERSION)
}
