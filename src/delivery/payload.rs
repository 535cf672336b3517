//! The body an app receives: the outbound event, with Drift's `token` kept,
//! stripped or replaced as the destination asks. Nothing else changes.

use crate::delivery::TokenMode;
use crate::json::{self, Limits, Str, Value};

/// The body for a destination, from the outbound event's JSON.
pub fn body(event_json: &str, token: &TokenMode) -> Result<String, crate::Error> {
    if *token == TokenMode::Keep {
        return Ok(event_json.to_owned());
    }
    let value = json::parse(event_json, &Limits { max_bytes: usize::MAX, ..Limits::default() })?;
    let Value::Object(mut members) = value else {
        return Ok(event_json.to_owned());
    };
    let position = members.iter().position(|(k, _)| k.eq_text("token"));
    match token {
        TokenMode::Keep => {}
        TokenMode::Strip => {
            if let Some(i) = position {
                members.remove(i);
            }
        }
        TokenMode::Replace(secret) => {
            let replacement = Value::String(Str::new(secret));
            match position {
                Some(i) => members[i].1 = replacement,
                None => members.push((Str::new("token"), replacement)),
            }
        }
    }
    Ok(Value::Object(members).to_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_modes() {
        let event = r#"{"orgId":1,"type":"x","data":{"n":12345678901234567890},"token":"drift"}"#;
        let cases = [
            (TokenMode::Keep, event.to_owned()),
            (TokenMode::Strip, r#"{"orgId":1,"type":"x","data":{"n":12345678901234567890}}"#.to_owned()),
            (TokenMode::Replace("app\"s".into()), r#"{"orgId":1,"type":"x","data":{"n":12345678901234567890},"token":"app\"s"}"#.to_owned()),
        ];
        for (mode, expected) in cases {
            assert_eq!(body(event, &mode).unwrap(), expected, "{mode:?}");
        }
        let tokenless = r#"{"orgId":1,"type":"x"}"#;
        assert_eq!(body(tokenless, &TokenMode::Strip).unwrap(), tokenless);
        assert_eq!(body(tokenless, &TokenMode::Replace("t".into())).unwrap(), r#"{"orgId":1,"type":"x","token":"t"}"#);
    }
}
