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

#[cfg(test)]
mod tests {
    use super::*;

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
