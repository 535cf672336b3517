//! drift-bridge translates Drift conversation webhooks between the *push*
//! form (`conversation_inactive`, `conversation_manual_push`,
//! `conversation_push`) and the retired *legacy* close
//! (`conversation_status_updated` with `status: "closed"`), so that apps built
//! on either keep working.
//!
//! This crate's core is plain Rust: no wasm, JS or Worker types, no I/O, no
//! clock. It is the same code behind three thin adapters:
//!
//! - the Cloudflare Worker (`src/worker/`, features `bridge` and `operator`),
//! - the browser playground's exports (`src/browser.rs`, feature `browser`),
//! - the `drift-bridge` command line (`src/bin/drift-bridge/`): `convert`
//!   for backfills, and the bridge's admin API, `send` and `listen`.
//!
//! Data flows one way: bytes → [`json`] → [`event`] → [`rules`] → outbound
//! events with [`id`]s, which the adapters deliver.
//!
//! ```
//! use drift_bridge::{translate, LegacyPolicy, Options};
//!
//! let inbound = r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":7,"lastUpdated":1500000000000}}"#;
//! let options = Options::new(0).legacy(LegacyPolicy::Timeline);
//! let events = translate(inbound, &options).unwrap();
//! // 2017 is outside Drift's 2020 re-broadcast window: no legacy close.
//! assert_eq!(events.len(), 1);
//! ```

pub mod api;
pub mod batch;
pub mod config;
pub mod delivery;
pub mod error;
mod escape;
pub mod event;
pub mod id;
pub mod json;
pub mod legacy;
pub mod log_lines;
pub mod openapi;
pub(crate) mod path;
pub mod problem;
pub mod rules;
mod text;
pub mod verify;

#[cfg(feature = "browser")]
pub mod browser;
#[cfg(any(feature = "bridge", feature = "operator"))]
mod worker;

pub use batch::{translate_batch, Batch};
pub use error::{Error, ErrorCode};
pub use event::EventType;
pub use id::EventId;
pub use json::Limits;
pub use legacy::LegacyPolicy;
pub use rules::{translate, translate_value, Options, Outbound};

/// The crate version, as reported by `/health`, the CLI and `User-Agent`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
