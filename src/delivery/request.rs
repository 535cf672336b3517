//! One request to an app, and what its answer means: the signed POST a
//! delivery log asks its caller to send ([`post`]), and what the caller saw
//! of it read back into words for the log ([`Seen`], [`Tried`]).

use super::alerts;
use super::effects::{Post, Ticket};
use super::outcome::Outcome;
use super::wire::{self, MessageError};
use super::{payload, sign, Destination, TokenMode};
use crate::json::{self, Limits, Value};

/// The POST of `event_body` (the event's JSON as stored, before the app's
/// token handling) to `d`, with `webhook-id` `event_id`, signed at `now`
/// (ms) with each of its secrets still valid; for an alert target that
/// takes Slack's form, in that form. `Err`: why it cannot be sent at all.
pub fn post(d: &Destination, ticket: Ticket, event_id: &str, event_body: &str, now: i64, timeout_ms: u32, slack: bool) -> Result<Post, String> {
    let event_body = if slack { alerts::slack(event_body) } else { event_body.to_owned() };
    let body = payload::body(&event_body, &d.token).map_err(|e| format!("the stored event cannot be read: {e}"))?;
    let timestamp = now.div_euclid(1000);
    let mut headers = vec![
        ("content-type", "application/json".to_owned()),
        ("user-agent", super::user_agent()),
        ("webhook-id", event_id.to_owned()),
        ("webhook-timestamp", timestamp.to_string()),
    ];
    if d.signed() {
        // While a secret is rotated, one signature for each secret still
        // valid, space-separated, as Standard Webhooks allows.
        let mut signatures = Vec::with_capacity(2);
        for secret in d.signing_secrets(now) {
            let key = sign::key_from_secret(secret).map_err(|_| "the signing secret cannot be read".to_owned())?;
            signatures.push(sign::signature(&key, event_id, timestamp, &body));
        }
        headers.push(("webhook-signature", signatures.join(" ")));
    }
    Ok(Post { ticket, url: d.url.clone(), headers, body, timeout_ms, delay_ms: 0, listen: None })
}

/// What the caller saw of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub ticket: Ticket,
    /// The HTTP status, or `None` for no answer.
    pub status: Option<u16>,
    /// A redirect's `Location`.
    pub location: Option<String>,
    /// Up to 4 KiB of a failure's answer.
    pub excerpt: String,
    /// Why there was no answer (a network error, the deadline).
    pub error: Option<String>,
    pub latency_ms: i64,
}

impl Seen {
    /// Reads the caller's report: `[{"ticket","status","location","excerpt","error","latencyMs"}]`.
    pub fn decode_all(text: &str) -> Result<Vec<Seen>, MessageError> {
        wire::objects("answers", text, |f| {
            let status = f.opt_status("status")?;
            Ok(Seen {
                ticket: Ticket::decode(&f.str("ticket")?).map_err(|e| f.error("ticket", e.what))?,
                status,
                location: f.opt_str("location")?,
                excerpt: f.opt_str("excerpt")?.unwrap_or_default(),
                error: f.opt_str("error")?,
                latency_ms: f.opt_int("latencyMs")?.unwrap_or(0),
            })
        })
    }

    /// Its JSON, as the caller reports it (for tests and the native runtime).
    pub fn encode_all(seen: &[Seen]) -> String {
        wire::array(seen, |s| {
            crate::json::Writer::object()
                .str("ticket", &s.ticket.encode())
                .int_or_null("status", s.status.map(i64::from))
                .opt_str("location", s.location.as_deref())
                .str("excerpt", &s.excerpt)
                .opt_str("error", s.error.as_deref())
                .int("latencyMs", s.latency_ms)
                .finish()
        })
    }

    /// What it means, in words for the log: an answer (with its error, for
    /// anything but a 2xx) or none. A token the app echoes back (Drift's,
    /// in `sent`, or the app's own replacement) is redacted.
    pub fn tried(&self, sent: &str, d: Option<&Destination>) -> Tried {
        let answer = match self.status {
            Some(code) => Outcome::Status { code, location: self.location.clone(), excerpt: self.excerpt.clone() },
            None => Outcome::Nothing(self.error.clone().unwrap_or_else(|| "no answer".into())),
        };
        let error = answer.error().map(|e| redact_echo(e, sent, d));
        match self.status {
            Some(code) => Tried::Answered { code, error },
            None => Tried::Nothing { error: error.unwrap_or_default() },
        }
    }
}

/// What happened when the caller tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tried {
    /// The app answered with this status; `error` says what was wrong (none
    /// for a 2xx), from the answer's excerpt, redacted.
    Answered { code: u16, error: Option<String> },
    /// No answer: a network error or the deadline.
    Nothing { error: String },
}

impl Tried {
    pub fn code(&self) -> Option<u16> {
        match self {
            Tried::Answered { code, .. } => Some(*code),
            Tried::Nothing { .. } => None,
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            Tried::Answered { error, .. } => error.as_deref(),
            Tried::Nothing { error } => Some(error),
        }
    }
}

/// An app may echo what it was sent in its error: never let a token it got
/// reach the log.
pub fn redact_echo(error: String, body: &str, destination: Option<&Destination>) -> String {
    let mut secrets: Vec<String> = Vec::new();
    if let Ok(value) = json::parse(body, &Limits { max_bytes: usize::MAX, ..Limits::default() }) {
        if let Some(token) = value.get("token").and_then(Value::as_str) {
            secrets.push(token.text().into_owned());
        }
    }
    if let Some(TokenMode::Replace(token)) = destination.map(|d| &d.token) {
        secrets.push(token.clone());
    }
    secrets.into_iter().filter(|s| s.len() >= 4).fold(error, |e, s| crate::text::replace(&e, &s, super::redact::REDACTED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::key::Key;

    fn destinations() -> crate::delivery::Destinations {
        let vars = [
            ("DRIFT_VERIFICATION_TOKEN", "t"),
            (
                "DESTINATIONS",
                r#"[{"name":"a","url":"https://a.example/hook","types":["*"],"signingSecret":"S"},
                    {"name":"b","url":"https://b.example/hook","types":["*"],"token":"replace","tokenSecret":"R"}]"#,
            ),
            ("S", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("R", "app-secret-token"),
        ];
        crate::config::Config::from_env(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())).delivery.destinations
    }

    const TICKET: Ticket = Ticket::Attempt { key: Key { hour: 1, event: 2, replay: 0 }, attempt: 1 };

    #[test]
    fn a_post_is_signed_and_carries_the_event_id() {
        let ds = destinations();
        let p = post(ds.get("a").unwrap(), TICKET, "0123456789abcdef", r#"{"orgId":1,"token":"drift"}"#, 1_700_000_000_999, 1000, false).unwrap();
        assert_eq!(p.body, r#"{"orgId":1}"#, "a signed destination gets no Drift token by default");
        let header = |n: &str| p.headers.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(header("webhook-id"), Some("0123456789abcdef"));
        assert_eq!(header("webhook-timestamp"), Some("1700000000"));
        let key = sign::key_from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert!(sign::verify(&key, "0123456789abcdef", 1_700_000_000, &p.body, header("webhook-signature").unwrap()));
        let replaced = post(ds.get("b").unwrap(), TICKET, "0123456789abcdef", r#"{"token":"drift"}"#, 0, 1000, false).unwrap();
        assert_eq!(replaced.body, r#"{"token":"app-secret-token"}"#);
        assert!(post(ds.get("b").unwrap(), TICKET, "0123456789abcdef", "not json", 0, 1000, false).unwrap_err().contains("cannot be read"));
    }

    #[test]
    fn what_was_seen_is_said_in_words_with_echoed_tokens_redacted() {
        let ds = destinations();
        let seen = Seen::decode_all(&format!(
            r#"[{{"ticket":"{t}","status":500,"excerpt":"bad token app-secret-token and drift-token-1","latencyMs":12}},
                {{"ticket":"{t}","error":"no answer within 1000 ms","latencyMs":1000}},
                {{"ticket":"{t}","status":302,"location":"https://elsewhere.example"}}]"#,
            t = TICKET.encode()
        ))
        .unwrap();
        let sent = r#"{"token":"drift-token-1"}"#;
        assert_eq!(
            seen[0].tried(sent, ds.get("b")),
            Tried::Answered { code: 500, error: Some("the app answered 500: bad token [redacted] and [redacted]".into()) }
        );
        assert_eq!(seen[1].tried(sent, ds.get("b")), Tried::Nothing { error: "no answer within 1000 ms".into() });
        assert!(seen[2].tried(sent, None).error().unwrap().contains("redirects are not followed"));
        assert_eq!(Seen::decode_all(&Seen::encode_all(&seen)).unwrap(), seen);
        assert_eq!(Seen::decode_all(r#"[{"ticket":"zz"}]"#).unwrap_err().path, "[0].ticket");
    }
}
