//! The worker's configuration, read from its environment (wrangler vars and
//! secrets) into typed values, with every problem named precisely.
//!
//! Reading is pure: the adapter passes a lookup function, so the rules are
//! tested natively and `/health` can list every problem at once.

use std::fmt;

use crate::delivery::{schedule, Destinations};
use crate::json::{Limits, DEFAULT_MAX_BYTES};
use crate::legacy::LegacyPolicy;
use crate::verify::Tokens;

/// Environment names.
pub const VERIFICATION_TOKEN: &str = "DRIFT_VERIFICATION_TOKEN";
pub const LEGACY_POLICY: &str = "LEGACY_POLICY";
pub const MAX_BODY_BYTES: &str = "MAX_BODY_BYTES";
pub const RETRY_BASE_SECONDS: &str = "RETRY_BASE_SECONDS";
pub const DELIVERY_TIMEOUT_MS: &str = "DELIVERY_TIMEOUT_MS";
pub const RECOVERY_GRACE_SECONDS: &str = "RECOVERY_GRACE_SECONDS";
pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";

/// One thing wrong with the configuration: `MAX_BODY_BYTES: expected …`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The variable (and path inside it) at fault, e.g. `DESTINATIONS[1].url`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// What the worker runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// `None` when `DRIFT_VERIFICATION_TOKEN` is unset or blank: the webhook
    /// endpoint then refuses everything.
    pub tokens: Option<Tokens>,
    pub legacy: LegacyPolicy,
    /// Largest accepted request body, and so largest event.
    pub max_body_bytes: usize,
    /// Where outbound events go (none: the bridge only answers Drift).
    pub destinations: Destinations,
    /// First retry wait; see [`schedule`].
    pub retry_base_seconds: u32,
    /// How long one delivery attempt may take.
    pub delivery_timeout_ms: u32,
    /// How long a handed-off delivery may show no progress before the outbox
    /// puts it on the queue again (guards against a lost queue message).
    pub recovery_grace_seconds: u32,
    /// Bearer token of the admin routes; `None` turns them off.
    pub admin: Option<Tokens>,
    /// Everything that is wrong, in a stable order.
    pub problems: Vec<Problem>,
}

impl Config {
    /// Reads the configuration through `get`, which returns a variable's value
    /// or `None` when it is not set.
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Config {
        let mut problems = Vec::new();
        let tokens = get(VERIFICATION_TOKEN).as_deref().and_then(Tokens::parse);
        if tokens.is_none() {
            problems.push(Problem {
                field: VERIFICATION_TOKEN.into(),
                message: "not set; set it with `wrangler secret put DRIFT_VERIFICATION_TOKEN` (comma-separate several tokens to rotate)".into(),
            });
        }
        let legacy = match get(LEGACY_POLICY).as_deref().map(str::trim) {
            None | Some("") => LegacyPolicy::default(),
            Some(name) => name.parse::<LegacyPolicy>().unwrap_or_else(|e| {
                problems.push(Problem { field: LEGACY_POLICY.into(), message: e.to_string() });
                LegacyPolicy::default()
            }),
        };
        let max_body_bytes = match get(MAX_BODY_BYTES).as_deref().map(str::trim) {
            None | Some("") => DEFAULT_MAX_BYTES,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n >= 256 => n,
                _ => {
                    problems.push(Problem {
                        field: MAX_BODY_BYTES.into(),
                        message: format!("expected a number of bytes of at least 256, found {text:?}"),
                    });
                    DEFAULT_MAX_BYTES
                }
            },
        };
        let mut number = |name: &str, default: u32, min: u32, max: u32| match get(name).as_deref().map(str::trim) {
            None | Some("") => default,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    problems.push(Problem { field: name.into(), message: format!("expected a whole number from {min} to {max}, found {text:?}") });
                    default
                }
            },
        };
        let retry_base_seconds = number(RETRY_BASE_SECONDS, schedule::DEFAULT_BASE_SECONDS, 0, 3600);
        let delivery_timeout_ms = number(DELIVERY_TIMEOUT_MS, 10_000, 100, 60_000);
        let recovery_grace_seconds = number(RECOVERY_GRACE_SECONDS, 300, 1, 86_400);
        let destinations = match Destinations::parse(get(crate::delivery::destination::DESTINATIONS).as_deref(), &get) {
            Ok(d) => d,
            Err(found) => {
                problems.extend(found);
                Destinations::default()
            }
        };
        let admin = get(ADMIN_TOKEN).as_deref().and_then(Tokens::parse);
        Config {
            tokens,
            legacy,
            max_body_bytes,
            destinations,
            retry_base_seconds,
            delivery_timeout_ms,
            recovery_grace_seconds,
            admin,
            problems,
        }
    }

    /// Whether the worker may accept webhooks.
    pub fn is_complete(&self) -> bool {
        self.problems.is_empty()
    }

    /// Limits for one event or body.
    pub fn limits(&self) -> Limits {
        Limits { max_bytes: self.max_body_bytes, ..Limits::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(vars: &[(&str, &str)]) -> Config {
        Config::from_env(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn defaults_and_problems() {
        let c = config(&[("DRIFT_VERIFICATION_TOKEN", "a,b")]);
        assert!(c.is_complete());
        assert_eq!(c.legacy, LegacyPolicy::Always);
        assert_eq!(c.max_body_bytes, 65536);
        assert_eq!(c.tokens.unwrap().len(), 2);

        let c = config(&[("LEGACY_POLICY", "sometimes"), ("MAX_BODY_BYTES", "lots")]);
        let problems: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].starts_with("DRIFT_VERIFICATION_TOKEN: not set"));
        assert!(problems[1].starts_with("LEGACY_POLICY: unknown legacy policy \"sometimes\""));
        assert!(problems[2].starts_with("MAX_BODY_BYTES: expected a number of bytes"));

        let c = config(&[
            ("DRIFT_VERIFICATION_TOKEN", "a"),
            ("DESTINATIONS", r#"[{"name":"a","url":"http://example.com","types":["*"]}]"#),
            ("RETRY_BASE_SECONDS", "-1"),
        ]);
        let problems: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("RETRY_BASE_SECONDS: expected a whole number from 0 to 3600"));
        assert_eq!(problems[1], "DESTINATIONS[0].url: must be https (plain http only for localhost)");
        assert!(!c.is_complete());

        let c = config(&[("DRIFT_VERIFICATION_TOKEN", " , "), ("LEGACY_POLICY", "timeline"), ("MAX_BODY_BYTES", "1024")]);
        assert!(c.tokens.is_none());
        assert_eq!(c.legacy, LegacyPolicy::Timeline);
        assert_eq!(c.max_body_bytes, 1024);
    }
}
