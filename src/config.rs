//! The worker's configuration, read from its environment (wrangler vars and
//! secrets) into typed values, with every problem named precisely.
//!
//! Reading is pure: the adapter passes a lookup function, so the rules are
//! tested natively and `/health` can list every problem at once.

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
pub const DEDUP_WINDOW_SECONDS: &str = "DEDUP_WINDOW_SECONDS";
pub const DEAD_LETTER_RETENTION_SECONDS: &str = "DEAD_LETTER_RETENTION_SECONDS";
pub const DELIVERY_LOG_SECONDS: &str = "DELIVERY_LOG_SECONDS";
pub const HOLD_RETENTION_SECONDS: &str = "HOLD_RETENTION_SECONDS";
pub const CIRCUIT_FAILURES: &str = "CIRCUIT_FAILURES";
pub const CIRCUIT_PROBE_SECONDS: &str = "CIRCUIT_PROBE_SECONDS";
pub const DRAIN_PER_SECOND: &str = "DRAIN_PER_SECOND";
pub const ADMIN_TOKEN: &str = "ADMIN_TOKEN";
pub const MAX_LOG_BYTES: &str = "MAX_LOG_BYTES";
pub const APPS_CACHE_MS: &str = "APPS_CACHE_MS";
pub const ALERT_BACKLOG: &str = "ALERT_BACKLOG";
pub const ALERT_COALESCE_SECONDS: &str = "ALERT_COALESCE_SECONDS";
pub const PUBLIC_URL: &str = "PUBLIC_URL";
/// "1" on a bridge run for local development (`make dev`): apps managed at
/// runtime may then be on loopback.
pub const LOCAL_DEVELOPMENT: &str = "LOCAL_DEVELOPMENT";

pub use crate::delivery::settings::DEFAULT_MAX_LOG_BYTES;

/// The largest `MAX_BODY_BYTES`: every accepted event is stored in Durable
/// Object rows, whose values may not exceed 2 MB.
pub const MAX_BODY_BYTES_LIMIT: usize = 1 << 20;
/// The shortest accepted `ADMIN_TOKEN` (each of them, when rotating).
pub const ADMIN_TOKEN_MIN_CHARS: usize = 32;

pub use crate::problem::Problem;

/// What the worker runs with.
#[derive(Clone, Debug)]
pub struct Config {
    /// `None` when `DRIFT_VERIFICATION_TOKEN` is unset or blank: the webhook
    /// endpoint then refuses everything.
    pub tokens: Option<Tokens>,
    pub legacy: LegacyPolicy,
    /// Largest accepted request body, and so largest event.
    pub max_body_bytes: usize,
    /// The destinations, and how deliveries to them are retried, kept and
    /// held.
    pub delivery: crate::delivery::settings::Settings,
    /// Bearer token(s) of the admin routes; `None` turns them off.
    pub admin: Option<Tokens>,
    /// How long an isolate may route by its copy of the apps managed at
    /// runtime, and so how long a change to them waits before it is
    /// answered ([`crate::delivery::apps`]).
    pub apps_lease_ms: u32,
    /// `LOCAL_DEVELOPMENT`: apps managed at runtime may be on loopback.
    pub local_development: bool,
    /// Everything that is wrong, in a stable order.
    pub problems: Vec<Problem>,
}

impl Config {
    /// Reads the configuration through `get`, which returns a variable's value
    /// or `None` when it is not set; destination URLs with the `url` crate.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Config {
        Config::from_env_with(get, crate::delivery::destination::parse_url)
    }

    /// [`Config::from_env`], with destination URLs read by `parse_url` (a WHATWG URL parser, see
    /// [`crate::delivery::destination::UrlParser`]).
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>, parse_url: crate::delivery::destination::UrlParser) -> Config {
        let mut problems = Vec::new();
        let tokens = get(VERIFICATION_TOKEN).as_deref().and_then(Tokens::parse);
        if tokens.is_none() {
            problems.push(Problem::blocking(
                VERIFICATION_TOKEN,
                "not set; set it with `wrangler secret put DRIFT_VERIFICATION_TOKEN` (comma-separate several tokens to rotate)",
            ));
        }
        let legacy = match get(LEGACY_POLICY).as_deref().map(str::trim) {
            None | Some("") => LegacyPolicy::default(),
            Some(name) => name.parse::<LegacyPolicy>().unwrap_or_else(|e| {
                problems.push(Problem::blocking(LEGACY_POLICY, e.to_string()));
                LegacyPolicy::default()
            }),
        };
        let max_body_bytes = match get(MAX_BODY_BYTES).as_deref().map(str::trim) {
            None | Some("") => DEFAULT_MAX_BYTES,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (256..=MAX_BODY_BYTES_LIMIT).contains(&n) => n,
                _ => {
                    problems.push(Problem::blocking(
                        MAX_BODY_BYTES,
                        format!("expected a number of bytes from 256 to {MAX_BODY_BYTES_LIMIT}, found {}", crate::escape::quoted(text)),
                    ));
                    DEFAULT_MAX_BYTES
                }
            },
        };
        let mut number = |name: &str, default: u32, min: u32, max: u32| match get(name).as_deref().map(str::trim) {
            None | Some("") => default,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (min..=max).contains(&n) => n,
                _ => {
                    problems.push(Problem::blocking(name, format!("expected a whole number from {min} to {max}, found {}", crate::escape::quoted(text))));
                    default
                }
            },
        };
        const DAY: u32 = 86_400;
        let retry_base_seconds = number(RETRY_BASE_SECONDS, schedule::DEFAULT_BASE_SECONDS, 0, 3600);
        let delivery_timeout_ms = number(DELIVERY_TIMEOUT_MS, 10_000, 100, 60_000);
        let recovery_grace_seconds = number(RECOVERY_GRACE_SECONDS, 300, 1, DAY);
        let dedup_window_seconds = number(DEDUP_WINDOW_SECONDS, DAY, 1, 30 * DAY);
        let dead_letter_retention_seconds = number(DEAD_LETTER_RETENTION_SECONDS, 14 * DAY, 1, 365 * DAY);
        let delivery_log_seconds = number(DELIVERY_LOG_SECONDS, 7 * DAY, 1, 365 * DAY);
        let hold_retention_seconds = number(HOLD_RETENTION_SECONDS, 30 * DAY, 60, 365 * DAY);
        let circuit = crate::delivery::breaker::CircuitSettings {
            failures: number(CIRCUIT_FAILURES, 5, 2, 1000),
            probe_ms: i64::from(number(CIRCUIT_PROBE_SECONDS, 60, 1, 900)) * 1000,
            probe_max_ms: crate::delivery::breaker::PROBE_MAX_MS,
            drain_per_second: number(DRAIN_PER_SECOND, 10, 1, 10_000),
        };
        let apps_lease_ms = number(APPS_CACHE_MS, crate::delivery::apps::DEFAULT_LEASE_MS, 100, 60_000);
        let alert_backlog = number(ALERT_BACKLOG, 1000, 1, 100_000_000);
        let alert_coalesce_seconds = number(ALERT_COALESCE_SECONDS, 300, 1, 86_400);
        let max_log_bytes = match get(MAX_LOG_BYTES).as_deref().map(str::trim) {
            None | Some("") => DEFAULT_MAX_LOG_BYTES,
            Some(text) => match text.parse::<i64>() {
                Ok(n) if (1_000_000..=10_000_000_000).contains(&n) => n,
                _ => {
                    problems.push(Problem::blocking(
                        MAX_LOG_BYTES,
                        format!("expected a number of bytes from 1000000 to 10000000000, found {}", crate::escape::quoted(text)),
                    ));
                    DEFAULT_MAX_LOG_BYTES
                }
            },
        };
        if delivery_log_seconds < dedup_window_seconds {
            problems.push(Problem::blocking(
                DELIVERY_LOG_SECONDS,
                format!(
                    "{delivery_log_seconds} is shorter than DEDUP_WINDOW_SECONDS ({dedup_window_seconds}); the log must keep a delivery at least as long as it deduplicates"
                ),
            ));
        }
        let destinations = match Destinations::parse_with(get(crate::delivery::destination::DESTINATIONS).as_deref(), &get, parse_url) {
            Ok(d) => {
                problems.extend(d.notices());
                d
            }
            Err(found) => {
                problems.extend(found);
                Destinations::default()
            }
        };
        let admin = match get(ADMIN_TOKEN).as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) if text.split(',').map(str::trim).any(|t| !t.is_empty() && t.chars().count() < ADMIN_TOKEN_MIN_CHARS) => {
                problems.push(Problem::notice(
                    ADMIN_TOKEN,
                    format!("shorter than {ADMIN_TOKEN_MIN_CHARS} characters, so the admin API stays off; use a long random token, e.g. `openssl rand -hex 32`"),
                ));
                None
            }
            Some(text) => Tokens::parse(text),
        };
        let alerts = match crate::delivery::alerts::parse(get(crate::delivery::alerts::ALERTS).as_deref(), &get, parse_url) {
            Ok(targets) => targets,
            Err(found) => {
                problems.extend(found);
                Vec::new()
            }
        };
        let public_url = match get(PUBLIC_URL).as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => match parse_url(text) {
                Ok(url) if url.scheme == "https" || url.scheme == "http" => Some(url.href),
                _ => {
                    problems.push(Problem::notice(PUBLIC_URL, format!("expected the bridge's URL, e.g. https://drift-bridge.example.workers.dev, found {}", crate::escape::quoted(text))));
                    None
                }
            },
        };
        if !alerts.is_empty() && public_url.is_none() {
            problems.push(Problem::notice(PUBLIC_URL, "not set: alerts link to the admin page by its path alone; set it to the bridge's URL"));
        }
        let alerts = crate::delivery::alerts::Alerting {
            targets: alerts,
            backlog: i64::from(alert_backlog),
            coalesce_ms: i64::from(alert_coalesce_seconds) * 1000,
            public_url,
        };
        let delivery = crate::delivery::settings::Settings {
            destinations,
            retry_base_seconds,
            delivery_timeout_ms,
            recovery_grace_seconds,
            dedup_window_seconds,
            dead_letter_retention_seconds,
            delivery_log_seconds,
            hold_retention_seconds,
            circuit,
            max_log_bytes,
            alerts,
        };
        let local_development = get(LOCAL_DEVELOPMENT).is_some_and(|v| v.trim() == "1");
        Config { tokens, legacy, max_body_bytes, delivery, admin, apps_lease_ms, local_development, problems }
    }

    /// This configuration with the registry's apps (`routes`) after the
    /// declared ones; an app that cannot join is named as a problem.
    pub fn with_apps(&self, routes: &crate::delivery::apps::Routes, secret: &impl Fn(&str) -> Option<String>) -> Config {
        let reserved = self.delivery.reserved_secret_names();
        let (destinations, problems) = crate::delivery::apps::merge(&self.delivery.destinations, &reserved, routes, secret);
        let mut config = self.clone();
        config.delivery.destinations = destinations;
        config.problems.extend(problems);
        config
    }

    /// Whether the worker may accept webhooks: no blocking problem.
    pub fn is_complete(&self) -> bool {
        !self.problems.iter().any(|p| p.blocking)
    }

    /// What `/health` and the start line call this configuration: `ok`,
    /// `degraded` (problems, none blocking) or `misconfigured`.
    pub fn status(&self) -> &'static str {
        match (self.is_complete(), self.problems.is_empty()) {
            (true, true) => "ok",
            (true, false) => "degraded",
            (false, _) => "misconfigured",
        }
    }

    /// What anyone may know of this configuration, as JSON members (no
    /// braces): `"status":…,"version":…,"configured":…,"problems":<count>`.
    /// The public `/health` answer, and the start line after its `kind`.
    pub fn write_summary(&self, out: &mut String) {
        out.push_str("\"status\":\"");
        out.push_str(self.status());
        out.push_str("\",\"version\":");
        crate::json::write_str_escaped(out, crate::VERSION);
        out.push_str(&format!(",\"configured\":{},\"problems\":{}", self.is_complete(), self.problems.len()));
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
        assert_eq!(problems[1], "DESTINATIONS[0].url: must be https (plain http only for loopback: localhost, 127.0.0.0/8, [::1])");
        assert!(!c.is_complete());

        let c = config(&[("DRIFT_VERIFICATION_TOKEN", "a"), ("MAX_BODY_BYTES", "2097152"), ("DEDUP_WINDOW_SECONDS", "0")]);
        let problems: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems[0], "MAX_BODY_BYTES: expected a number of bytes from 256 to 1048576, found \"2097152\"");
        assert!(problems[1].starts_with("DEDUP_WINDOW_SECONDS: expected a whole number from 1 to 2592000"));

        let c = config(&[("DRIFT_VERIFICATION_TOKEN", " , "), ("LEGACY_POLICY", "timeline"), ("MAX_BODY_BYTES", "1024")]);
        assert!(c.tokens.is_none());
        assert_eq!(c.legacy, LegacyPolicy::Timeline);
        assert_eq!(c.max_body_bytes, 1024);
    }

    #[test]
    fn retention_and_circuit_defaults() {
        let c = config(&[("DRIFT_VERIFICATION_TOKEN", "a")]);
        assert_eq!(c.delivery.dedup_window_seconds, 86_400);
        assert_eq!(c.delivery.dead_letter_retention_seconds, 1_209_600);
        assert_eq!(c.delivery.delivery_log_seconds, 604_800);
        assert_eq!(c.delivery.hold_retention_seconds, 2_592_000);
        assert_eq!(c.delivery.circuit, crate::delivery::breaker::CircuitSettings::default());
        let c = config(&[("DRIFT_VERIFICATION_TOKEN", "a"), ("CIRCUIT_PROBE_SECONDS", "2"), ("DRAIN_PER_SECOND", "50"), ("CIRCUIT_FAILURES", "3")]);
        assert_eq!((c.delivery.circuit.probe_ms, c.delivery.circuit.drain_per_second, c.delivery.circuit.failures), (2000, 50, 3));
    }

    #[test]
    fn the_log_keeps_deliveries_at_least_as_long_as_it_deduplicates() {
        let c = config(&[("DRIFT_VERIFICATION_TOKEN", "a"), ("DEDUP_WINDOW_SECONDS", "600"), ("DELIVERY_LOG_SECONDS", "60")]);
        assert!(!c.is_complete());
        assert!(c.problems[0].to_string().starts_with("DELIVERY_LOG_SECONDS: 60 is shorter than DEDUP_WINDOW_SECONDS (600)"));
        for probe in ["0", "901"] {
            assert!(!config(&[("DRIFT_VERIFICATION_TOKEN", "a"), ("CIRCUIT_PROBE_SECONDS", probe)]).is_complete(), "{probe}");
        }
    }

    #[test]
    fn a_short_admin_token_keeps_the_admin_api_off_but_webhooks_flowing() {
        let long = "0123456789abcdef0123456789abcdef";
        let cases: &[(&str, bool)] = &[
            (long, true),
            (&long[..31], false),
            ("tiny-token-x9", false),
            // Rotating: every token must be long enough.
            ("0123456789abcdef0123456789abcdef, fedcba9876543210fedcba9876543210", true),
            ("0123456789abcdef0123456789abcdef, tiny-token-x9", false),
        ];
        for (token, on) in cases {
            let c = config(&[("DRIFT_VERIFICATION_TOKEN", "a"), ("ADMIN_TOKEN", token)]);
            assert_eq!(c.admin.is_some(), *on, "{token}");
            assert!(c.is_complete(), "{token}: webhooks keep flowing");
            assert_eq!(c.problems.len(), usize::from(!on), "{token}");
            if !on {
                assert!(c.problems[0].to_string().starts_with("ADMIN_TOKEN: shorter than 32 characters"));
                assert!(!c.problems[0].to_string().contains(token.split(',').next_back().unwrap().trim()), "no secret quoted");
            }
        }
        assert!(config(&[("DRIFT_VERIFICATION_TOKEN", "a")]).admin.is_none());
    }
}
