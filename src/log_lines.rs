//! Structured log lines: one JSON object per line, which Workers Logs
//! indexes, so an operator can filter on `kind`, `status`, `eventId`,
//! `destination`. They carry ids, types, statuses and counts, never an
//! event body or a secret.

use crate::config::Config;
use crate::json;
use crate::rules::Outbound;

/// The line an isolate writes once, as it starts: what the public `/health`
/// says of the configuration, and how many destinations it has.
pub fn start(config: &Config) -> String {
    let mut out = String::with_capacity(160);
    out.push_str("{\"kind\":\"start\",");
    config.write_summary(&mut out);
    out.push_str(&format!(",\"destinations\":{}}}", config.delivery.destinations.list.len()));
    out
}

/// The line for one webhook: `status` is the HTTP status answered, `error`
/// its error code, `events` the outbound events (empty when it was refused),
/// `deliveries` how many (event, destination) pairs were handed off.
pub fn webhook(status: u16, error: Option<&str>, events: &[Outbound], deliveries: usize) -> String {
    let mut out = String::with_capacity(160);
    out.push_str("{\"kind\":\"webhook\",\"status\":");
    out.push_str(&status.to_string());
    if let Some(error) = error {
        out.push_str(",\"error\":");
        json::write_str_escaped(&mut out, error);
    }
    if let Some(first) = events.first() {
        out.push_str(",\"eventId\":\"");
        first.id.write_hex(&mut out);
        out.push_str("\",\"type\":");
        json::write_str_escaped(&mut out, &first.event_type);
        out.push_str(",\"scope\":");
        json::write_str_escaped(&mut out, &first.scope);
        out.push_str(&format!(",\"events\":{},\"deliveries\":{deliveries}", events.len()));
    }
    out.push('}');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{translate, Options};

    #[test]
    fn lines_name_what_happened_and_nothing_secret() {
        let events = translate(
            r#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789},"token":"s3cret"}"#,
            &Options::new(0),
        )
        .unwrap();
        assert_eq!(
            webhook(200, None, &events, 4),
            r#"{"kind":"webhook","status":200,"eventId":"b624515312c8ce89","type":"conversation_inactive","scope":"conversation:1:123456789","events":3,"deliveries":4}"#
        );
        assert!(!webhook(200, None, &events, 4).contains("s3cret"));
        assert_eq!(webhook(401, Some("unauthorized"), &[], 0), r#"{"kind":"webhook","status":401,"error":"unauthorized"}"#);
    }

    #[test]
    fn the_start_line_says_what_health_says() {
        let get = |name: &str| (name == "DRIFT_VERIFICATION_TOKEN").then(|| "s3cret-token".to_string());
        let line = start(&Config::from_env(get));
        assert_eq!(
            line,
            format!(r#"{{"kind":"start","status":"ok","version":"{}","configured":true,"problems":0,"destinations":0}}"#, crate::VERSION)
        );
        assert!(!line.contains("s3cret"));
        let line = start(&Config::from_env(|_| None));
        assert!(line.starts_with(r#"{"kind":"start","status":"misconfigured","#), "{line}");
        assert!(line.ends_with(r#","configured":false,"problems":1,"destinations":0}"#), "{line}");
    }
}
