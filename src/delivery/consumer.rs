//! The queue consumer's decisions, pure: the adapter (src/worker/entry.mjs)
//! does what they say and owns every await.
//!
//! For one batch:
//! 1. [`plan`] groups the messages per destination, in batch order: one
//!    `/attempt` call per destination (or `/dead` for the dead-letter queue),
//!    and one `/add` per message of drift-bridge 0.1 (its event goes into the
//!    new delivery log). Unreadable messages are acked with an error line.
//! 2. For each `/attempt` answer, [`requests`] builds the POSTs: body with the
//!    destination's token handling, `webhook-id`, `webhook-timestamp` and
//!    the Standard Webhooks signature, the deadline.
//! 3. The adapter sends them in the log's waves: side by side, but one
//!    conversation's events one after another, and after a failure the
//!    first alone, as a scout. After each wave, [`stops_batch`] says whether
//!    an answer shows the app in trouble (no answer, redirect, 408, 429,
//!    5xx), in which case the later waves go back unattempted: a down app
//!    costs one deadline per batch and, once it has failed, one request.
//! 4. [`settle`] turns the answers into the `/settle` call (errors in words,
//!    an excerpt of the app's answer, any token the app echoed redacted).
//!
//! Every message is then acked: the delivery log owns retries (it sends a
//! new message, held back by the retry schedule) and recovers what is lost,
//! so the queue's own retry budget is spent only when a consumer crashes.

use super::breaker::Signal;
use super::effects::Line;
use super::message::{Attempt, AttemptReply, Dead, Fields, Item, MessageError, Outcome, QueueMessage, Settle, Tried};
use super::outcome::Answer;
use super::{payload, sign, Destination, TokenMode};
use super::settings::Settings;
use crate::json::{self, Limits, Value};

/// How long a consumer holds a delivery beyond the deadlines of the batch
/// ahead of it: the time to ask for it and to report.
pub const LEASE_SLACK_MS: i64 = 30_000;

/// One call a batch needs, and the messages it is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupCall {
    pub destination: String,
    /// `/attempt`, `/dead` or `/add`.
    pub op: &'static str,
    pub body: String,
    /// Indexes of the batch's messages.
    pub messages: Vec<usize>,
}

/// A batch, planned.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub calls: Vec<GroupCall>,
    pub logs: Vec<Line>,
}

/// Plans a batch of the delivery queue (`dead`: of its dead-letter queue).
pub fn plan(settings: &Settings, dead: bool, bodies: &[&str]) -> Plan {
    let mut plan = Plan::default();
    let mut groups: Vec<(String, Vec<Item>, Vec<usize>)> = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        match QueueMessage::decode(body) {
            Ok(QueueMessage::Ref(r)) => {
                let item = Item { id: r.id, generation: r.generation };
                match groups.iter_mut().find(|(d, ..)| *d == r.destination) {
                    Some((_, items, messages)) => {
                        items.push(item);
                        messages.push(i);
                    }
                    None => groups.push((r.destination, vec![item], vec![i])),
                }
            }
            Ok(QueueMessage::V1(v1)) => plan.calls.push(GroupCall {
                destination: v1.destination.clone(),
                op: "/add",
                body: v1.to_add().encode(),
                messages: vec![i],
            }),
            // Never log the message itself: a version 1 message holds Drift's token.
            Err(e) => plan.logs.push(Line { error: true, text: format!("delivery: dropping an unreadable queue message ({e})") }),
        }
    }
    for (destination, items, messages) in groups {
        let (op, body) = if dead {
            ("/dead", Dead { items }.encode())
        } else {
            let lease_ms = items.len() as i64 * i64::from(settings.delivery_timeout_ms) + LEASE_SLACK_MS;
            ("/attempt", Attempt { lease_ms, items }.encode())
        };
        plan.calls.push(GroupCall { destination, op, body, messages });
    }
    plan
}

/// One POST to an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub id: String,
    pub generation: u32,
    pub attempt: u32,
    pub url: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// One deadline for the status and, on a failure, the excerpt.
    pub timeout_ms: u32,
    /// The requests of a wave go side by side, after the earlier waves'.
    pub wave: u32,
    /// Not before this long after the log's answer (an app with a rate).
    pub delay_ms: u32,
    /// Why it cannot be sent at all (its destination is gone from the
    /// configuration, its stored event cannot be read): reported as its
    /// outcome without a request.
    pub impossible: Option<String>,
}

/// The requests for one destination's `/attempt` answer, in order, signed
/// at `now` (ms).
pub fn requests(settings: &Settings, destination: &str, reply: &str, now: i64) -> Result<Vec<Request>, MessageError> {
    let reply = AttemptReply::decode(reply)?;
    let d = settings.destination(destination);
    let slack = settings.alerts.target(destination).is_some_and(|t| t.format == super::alerts::Format::Slack);
    Ok(reply
        .go
        .into_iter()
        .map(|mut go| {
            // An alert target that takes Slack's form gets it made now.
            if slack {
                go.body = super::alerts::slack(&go.body);
            }
            request(d, destination, go, now, settings.delivery_timeout_ms)
        })
        .collect())
}

/// One POST for `go` to `d` (named `name`), signed at `now`.
pub fn request(d: Option<&Destination>, name: &str, go: super::message::Go, now: i64, timeout_ms: u32) -> Request {
    let mut r = Request {
        id: go.id,
        generation: go.generation,
        attempt: go.attempt,
        url: String::new(),
        headers: Vec::new(),
        body: String::new(),
        timeout_ms,
        wave: go.wave,
        delay_ms: go.delay_ms,
        impossible: None,
    };
    let Some(d) = d else {
        r.impossible = Some(format!("the destination {name} is not configured any more"));
        return r;
    };
    let body = match payload::body(&go.body, &d.token) {
        Ok(body) => body,
        Err(e) => {
            r.impossible = Some(format!("the stored event cannot be read: {e}"));
            return r;
        }
    };
    let timestamp = now.div_euclid(1000);
    r.headers = vec![
        ("content-type", "application/json".to_owned()),
        ("user-agent", super::user_agent()),
        ("webhook-id", go.event_id.clone()),
        ("webhook-timestamp", timestamp.to_string()),
    ];
    if d.signed() {
        // While a secret is rotated, one signature for each secret still
        // valid, space-separated, as Standard Webhooks allows.
        let mut signatures = Vec::with_capacity(2);
        for secret in d.signing_secrets(now) {
            match sign::key_from_secret(secret) {
                Ok(key) => signatures.push(sign::signature(&key, &go.event_id, timestamp, &body)),
                Err(_) => {
                    r.impossible = Some("the signing secret cannot be read".into());
                    return r;
                }
            }
        }
        r.headers.push(("webhook-signature", signatures.join(" ")));
    }
    r.url = d.url.clone();
    r.body = body;
    r
}

/// Whether an answer (an HTTP status, or `None` for no answer) says the app
/// is in trouble, so that the later waves of the batch go back unattempted.
pub fn stops_batch(code: Option<u16>) -> bool {
    Signal::of(code) == Signal::Down
}

/// What the adapter saw of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub id: String,
    /// Not sent: an earlier one stopped the batch.
    pub unattempted: bool,
    pub status: Option<u16>,
    pub location: Option<String>,
    /// Up to 4 KiB of a failure's answer.
    pub excerpt: String,
    /// Why there was no answer (a network error, the deadline).
    pub error: Option<String>,
    pub latency_ms: i64,
}

impl Seen {
    /// Reads the adapter's list: `[{"id","unattempted","status","location","excerpt","error","latencyMs"}]`.
    pub fn decode_all(text: &str) -> Result<Vec<Seen>, MessageError> {
        const KIND: &str = "answers";
        let value = super::message::parse(KIND, text, &Limits::INTERNAL)?;
        let Value::Array(items) = &value else {
            return Err(MessageError { message: KIND, path: String::new(), what: "expected an array".into() });
        };
        let mut out = Vec::with_capacity(items.len());
        for v in items {
            let f = Fields::parse(KIND, v)?;
            let status = match f.opt_int("status")? {
                None => None,
                Some(s) => Some(u16::try_from(s).map_err(|_| f.error("status", "expected an HTTP status"))?),
            };
            out.push(Seen {
                id: f.str("id")?,
                unattempted: f.bool("unattempted")?,
                status,
                location: f.opt_str("location")?,
                excerpt: f.opt_str("excerpt")?.unwrap_or_default(),
                error: f.opt_str("error")?,
                latency_ms: f.opt_int("latencyMs")?.unwrap_or(0),
            });
        }
        Ok(out)
    }
}

/// The `/settle` call for what was seen of `requests`.
pub fn settle(settings: &Settings, destination: &str, requests: &[Request], seen: &[Seen]) -> Settle {
    let d = settings.destination(destination);
    let outcomes = requests
        .iter()
        .map(|r| {
            let s = seen.iter().find(|s| s.id == r.id);
            let tried = match (s, &r.impossible) {
                (_, Some(why)) => Tried::Nothing { error: why.clone() },
                (None, None) => Tried::Unattempted,
                (Some(s), None) if s.unattempted => Tried::Unattempted,
                (Some(s), None) => {
                    let answer = match s.status {
                        Some(code) => Answer::Status { code, location: s.location.clone(), excerpt: s.excerpt.clone() },
                        None => Answer::Nothing(s.error.clone().unwrap_or_else(|| "no answer".into())),
                    };
                    let error = answer.error().map(|e| redact_echo(e, &r.body, d));
                    match s.status {
                        Some(code) => Tried::Answered { code, error },
                        None => Tried::Nothing { error: error.unwrap_or_default() },
                    }
                }
            };
            Outcome { id: r.id.clone(), generation: r.generation, attempt: r.attempt, tried, latency_ms: s.map_or(0, |s| s.latency_ms) }
        })
        .collect();
    Settle { outcomes }
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
    secrets.into_iter().filter(|s| s.len() >= 4).fold(error, |e, s| e.replace(&s, super::redact::REDACTED))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::message::{Go, Ref};

    fn config() -> Settings {
        let vars = [
            ("DRIFT_VERIFICATION_TOKEN", "t"),
            (
                "DESTINATIONS",
                r#"[{"name":"a","url":"https://a.example/hook","types":["*"],"signingSecret":"S"},
                    {"name":"b","url":"https://b.example/hook","types":["*"],"token":"replace","tokenSecret":"R"}]"#,
            ),
            ("S", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            ("R", "app-secret-token"),
            ("DELIVERY_TIMEOUT_MS", "1000"),
        ];
        crate::config::Config::from_env(|name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())).delivery
    }

    fn r(d: &str, id: &str, g: u32) -> String {
        Ref { destination: d.into(), id: id.into(), generation: g }.encode()
    }

    #[test]
    fn a_batch_is_grouped_per_destination_in_order() {
        let bodies = [r("a", "1.a", 1), r("b", "1.b", 1), "garbage".into(), r("a", "2.a", 3)];
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        let plan = plan(&config(), false, &refs);
        assert_eq!(plan.calls.len(), 2);
        assert_eq!((plan.calls[0].destination.as_str(), plan.calls[0].op, &plan.calls[0].messages), ("a", "/attempt", &vec![0, 3]));
        let attempt = Attempt::decode(&plan.calls[0].body).unwrap();
        assert_eq!(attempt.lease_ms, 2 * 1000 + LEASE_SLACK_MS, "the batch's deadlines and then some");
        assert_eq!(attempt.items.iter().map(|i| (i.id.as_str(), i.generation)).collect::<Vec<_>>(), [("1.a", 1), ("2.a", 3)]);
        assert_eq!(plan.logs.len(), 1);
        assert!(plan.logs[0].text.contains("unreadable"));
        let dead = super::plan(&config(), true, &refs);
        assert_eq!(dead.calls[0].op, "/dead");
    }

    #[test]
    fn requests_are_signed_and_carry_the_event_id() {
        let reply = AttemptReply {
            go: vec![Go {
                id: "0123456789abcdef.a".into(),
                generation: 2,
                attempt: 1,
                probe: false,
                event_id: "0123456789abcdef".into(),
                body: r#"{"orgId":1,"token":"drift"}"#.into(),
                wave: 0,
                delay_ms: 0,
            }],
            skip: vec![],
        };
        let requests = requests(&config(), "a", &reply.encode(), 1_700_000_000_999).unwrap();
        let r = &requests[0];
        assert_eq!(r.body, r#"{"orgId":1}"#, "a signed destination gets no Drift token by default");
        let header = |n: &str| r.headers.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(header("webhook-id"), Some("0123456789abcdef"));
        assert_eq!(header("webhook-timestamp"), Some("1700000000"));
        let key = sign::key_from_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert!(sign::verify(&key, "0123456789abcdef", 1_700_000_000, &r.body, header("webhook-signature").unwrap()));
        let gone = super::requests(&config(), "removed", &reply.encode(), 0).unwrap();
        assert!(gone[0].impossible.as_deref().unwrap().contains("not configured"));
    }

    #[test]
    fn the_app_in_trouble_stops_the_batch() {
        for (code, stops) in [(None, true), (Some(200), false), (Some(404), false), (Some(429), true), (Some(503), true), (Some(302), true)] {
            assert_eq!(stops_batch(code), stops, "{code:?}");
        }
    }

    #[test]
    fn settle_says_what_happened_and_redacts_echoed_tokens() {
        let config = config();
        let mk = |id: &str, body: &str| Request {
            id: id.into(),
            generation: 1,
            attempt: 2,
            url: "https://b.example/hook".into(),
            headers: vec![],
            body: body.into(),
            timeout_ms: 1000,
            wave: 0,
            delay_ms: 0,
            impossible: None,
        };
        let requests = [mk("x", r#"{"token":"app-secret-token"}"#), mk("y", "{}"), mk("z", "{}")];
        let seen = Seen::decode_all(
            r#"[{"id":"x","status":500,"excerpt":"bad token app-secret-token","latencyMs":12},
                {"id":"y","unattempted":true},{"id":"z","error":"no answer within 1000 ms","latencyMs":1000}]"#,
        )
        .unwrap();
        let s = settle(&config, "b", &requests, &seen);
        assert_eq!(
            s.outcomes[0].tried,
            Tried::Answered { code: 500, error: Some("the app answered 500: bad token [redacted]".into()) }
        );
        assert_eq!(s.outcomes[1].tried, Tried::Unattempted);
        assert_eq!(s.outcomes[2].tried, Tried::Nothing { error: "no answer within 1000 ms".into() });
        assert_eq!((s.outcomes[0].attempt, s.outcomes[0].latency_ms), (2, 12));
    }
}
