//! Alerts: the operator is told when an app trips or recovers, is paused
//! or resumed, when a delivery becomes a dead letter, when a backlog passes
//! `ALERT_BACKLOG` and when an app's delivery log nears `MAX_LOG_BYTES`.
//!
//! `ALERTS` names where they go, a JSON array such as
//!
//! ```json
//! [{"name": "ops", "url": "https://hooks.slack.com/services/…", "format": "slack"},
//!  {"name": "pager", "url": "https://alerts.example.com/drift-bridge",
//!   "signingSecret": "ALERT_SIGNING_SECRET", "kinds": ["tripped", "dead-letter"]}]
//! ```
//!
//! **Delivered like deliveries.** Each target is a destination of its own,
//! named `@<name>`, with its own delivery log, breaker and retries. An alert
//! is raised in the delivery log of the app it is about, which keeps it in
//! its state row ([`AlertState`]); as a step finishes, that log hands it by
//! a call to the delivery log of each target that wants it (`/accept`, as a
//! delivery of type [`ALERT_TYPE`] whose event id is the alert's id), which
//! delivers it, signed with Standard Webhooks, exactly as an event. The
//! app's log forgets an alert once every target's log took it, and hands it
//! off again later if a call failed ([`RETRY_MS`], doubling up to
//! [`RETRY_MAX_MS`]); the targets' logs drop what they already have. So an
//! alert about an app never depends on that app, and waits out a target's
//! outage (past [`MAX_PENDING`] waiting, the oldest goes). Alert logs raise
//! no alerts of their own. The hand-off itself is in `log/alerting.rs`.
//!
//! **Coalesced.** The first alert of a kind about an app goes at once; more
//! of that kind within `ALERT_COALESCE_SECONDS` (300) are counted, and go as
//! one alert when that time is over ("and 41 more since …"). An outage of
//! hours sends a handful of alerts, not thousands. Thresholds (backlog, a
//! nearly full log) alert once when passed, and again only after falling
//! well below (half the backlog; 70 % of the log).
//!
//! `config.rs` reads `ALERTS`; `alert.rs` is one alert and its bodies;
//! `coalesce.rs` is what a delivery log keeps of its alerts.

mod alert;
mod coalesce;
mod config;

pub use self::alert::*;
pub use self::coalesce::*;
pub use self::config::*;

pub const ALERTS: &str = "ALERTS";
/// The event type of an alert, in the delivery logs of its targets.
pub const ALERT_TYPE: &str = "drift_bridge.alert";
/// At most this many alerts wait in one log's state to be handed off.
pub const MAX_PENDING: usize = 32;
/// A nearly full log: this share of `MAX_LOG_BYTES`, in percent; it alerts
/// again only after falling below [`FULL_REARM_PERCENT`].
pub const FULL_PERCENT: i64 = 80;
pub const FULL_REARM_PERCENT: i64 = 70;
/// The wait before handing off alerts again, after a failed try: doubles
/// from this, up to [`RETRY_MAX_MS`].
pub const RETRY_MS: i64 = 5_000;
pub const RETRY_MAX_MS: i64 = 300_000;

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn settings() -> Alerting {
        let targets = parse(
            Some(r#"[{"name":"ops","url":"https://hooks.example/ops","format":"slack"},{"name":"pager","url":"https://pager.example/x","signingSecret":"S","kinds":["tripped","dead-letter"]}]"#),
            &|n| (n == "S").then(|| "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
            crate::delivery::destination::parse_url,
        )
        .unwrap();
        Alerting { targets, public_url: Some("https://bridge.example".into()), ..Alerting::default() }
    }
}
