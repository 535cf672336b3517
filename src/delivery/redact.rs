//! Drift's verification token must never reach a log line or an admin
//! answer: events are shown with it replaced.

use crate::json::{self, Limits, Str, Value};

/// What a redacted token reads as.
pub const REDACTED: &str = "[redacted]";

/// The event's JSON with the value of its top-level `token` replaced by
/// `"[redacted]"` (where Drift puts it); everything else digit for digit.
/// Text that is not a JSON object is not shown at all.
pub fn token(event_json: &str) -> String {
    let Ok(Value::Object(mut members)) = json::parse(event_json, &Limits { max_bytes: usize::MAX, ..Limits::default() }) else {
        return "\"(not a JSON object)\"".to_owned();
    };
    for (key, value) in &mut members {
        if key.eq_text("token") {
            *value = Value::String(Str::new(REDACTED));
        }
    }
    Value::Object(members).to_json()
}

/// An app's URL as log lines and the history of changes show it: its
/// scheme, host and port, and for the rest (whose path or query may be a
/// credential: a Slack webhook's `/services/…`, a `?code=`) only `/…` and
/// the first 8 hex digits of the whole URL's SHA-256, so that two URLs can
/// still be told apart. `https://hooks.slack.com/services/T0/B0/x` reads
/// `https://hooks.slack.com/… (#4f1c2a9e)`.
pub fn url(url: &str) -> String {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    let rest = &url[end..];
    if rest.is_empty() || rest == "/" {
        return url.to_owned();
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(url.as_bytes());
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}/… (#{hex})", &url[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_path_and_query() {
        assert_eq!(url("https://crm.example/"), "https://crm.example/");
        assert_eq!(url("https://crm.example:8443"), "https://crm.example:8443");
        let slack = url("https://hooks.slack.com/services/T000/B000/XXXXXXXX");
        assert!(slack.starts_with("https://hooks.slack.com/… (#") && !slack.contains("T000") && !slack.contains("XXXX"), "{slack}");
        let code = url("https://crm.example/?code=secret");
        assert!(code.starts_with("https://crm.example/… (#") && !code.contains("secret"), "{code}");
        assert_ne!(url("https://a.example/x"), url("https://a.example/y"), "told apart");
    }

    #[test]
    fn only_the_token_changes() {
        let cases = [
            (
                r#"{"orgId":1,"data":{"token":"inner","n":12345678901234567890},"token":"s3cret"}"#,
                r#"{"orgId":1,"data":{"token":"inner","n":12345678901234567890},"token":"[redacted]"}"#,
            ),
            (r#"{"orgId":1,"\u0074oken":"s3cret"}"#, r#"{"orgId":1,"\u0074oken":"[redacted]"}"#),
            (r#"{"orgId":1,"token":7}"#, r#"{"orgId":1,"token":"[redacted]"}"#),
            (r#"{"orgId":1}"#, r#"{"orgId":1}"#),
            ("[1]", "\"(not a JSON object)\""),
            (r#"{"token":"s3cret""#, "\"(not a JSON object)\""),
        ];
        for (input, expected) in cases {
            assert_eq!(token(input), expected, "{input}");
        }
    }
}
