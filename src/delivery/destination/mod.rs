//! The apps events are delivered to. An app is declared in the
//! `DESTINATIONS` variable, a JSON array of objects such as
//!
//! ```json
//! [{"name": "legacy-crm", "url": "https://crm.example.com/drift",
//!   "types": ["conversation_status_updated"]},
//!  {"name": "push-app", "url": "https://push.example.com/hooks/drift",
//!   "types": ["conversation_push"], "token": "strip",
//!   "signingSecret": "PUSH_APP_SIGNING_SECRET", "orgIds": [1],
//!   "ratePerSecond": 20}]
//! ```
//!
//! or managed at runtime through the admin API ([`super::apps`]), whose
//! bodies have the same fields but for the signing secret: the bridge makes
//! it (`"signed": true`). Both are read by the same field readers here, so
//! that a field means the same and is refused with the same message either
//! way.
//!
//! Secrets never sit in the array: `signingSecret` and `tokenSecret` name a
//! secret binding (`wrangler secret put NAME`), read through the lookup the
//! worker passes in. Every problem is reported with its place, e.g.
//! `DESTINATIONS[1].url: must be https (plain http only for loopback: …)`.

use crate::problem::Problem;
use crate::json::{self, Limits, Value};

mod spec;
mod url;

pub use self::spec::*;
pub use self::url::*;

/// Environment name of the destinations array.
pub const DESTINATIONS: &str = "DESTINATIONS";

/// The most organisations one app may name in `orgIds`.
pub const MAX_ORG_IDS: usize = 100;
/// The highest `ratePerSecond`.
pub const MAX_RATE_PER_SECOND: u32 = 1000;
/// The most signing secrets one declared app may name (two while rotating).
pub const MAX_SIGNING_SECRETS: usize = 2;

/// What happens to Drift's `token` field on the way to an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenMode {
    /// Passed on as Drift sent it, for apps that check it: the default for
    /// a destination without a signing secret.
    Keep,
    /// Removed: the default for a signed destination, which authenticates
    /// deliveries by their signature instead.
    Strip,
    /// Replaced by this destination's own secret value.
    Replace(String),
}

impl TokenMode {
    /// The API's and `DESTINATIONS`' word for it.
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenMode::Keep => "keep",
            TokenMode::Strip => "strip",
            TokenMode::Replace(_) => "replace",
        }
    }
}

/// Where an app's configuration lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `DESTINATIONS` in wrangler.toml: changed by a deploy.
    Declared,
    /// The registry, through the admin API.
    Runtime,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Declared => "declared",
            Source::Runtime => "runtime",
        }
    }
}

/// One Standard Webhooks secret (`whsec_…`) an app's deliveries are signed
/// with, until `until` (ms; `None`: for as long as it is configured).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningSecret {
    pub secret: String,
    pub until: Option<i64>,
}

/// One app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// Unique, `[A-Za-z0-9_-]{1,64}`; part of delivery ids and queue messages.
    pub name: String,
    /// Where its deliveries are POSTed ("" for an app that takes a listener).
    pub url: String,
    /// Drift type names, or `*` for every type.
    pub types: Vec<String>,
    pub token: TokenMode,
    /// The secrets deliveries are signed with, newest first (none: not
    /// signed). While a secret is rotated, deliveries carry a signature for
    /// each one still valid.
    pub signing: Vec<SigningSecret>,
    /// Only events of these Drift organisations (their `orgId`, as written);
    /// empty: every organisation's.
    pub org_ids: Vec<String>,
    /// At most this many deliveries a second to this app.
    pub rate_per_second: Option<u32>,
    pub source: Source,
    /// Which incarnation of the name this is: an app managed at runtime gets
    /// one when it is created, and a delete ends it, so that an app created
    /// again under the same name shares nothing with the one before
    /// (`None`: a declared app or an alert target, whose name is its
    /// identity, or an app created before incarnations existed).
    pub incarnation: Option<String>,
    /// Whether a conversation's next event waits until the one before it has
    /// settled (`"ordered": true`).
    pub ordered: bool,
    /// Whether it has no URL and takes its deliveries over the WebSocket of
    /// `drift-bridge listen` (`"listen": true`): held while none is connected.
    pub listen: bool,
}

/// Separates an app's name from its incarnation in a delivery log's key:
/// names are `[A-Za-z0-9_-]`, and `~` needs no escaping in a URL.
pub const INCARNATION_MARK: char = '~';

/// The delivery log of an app: `<name>` or `<name>~<incarnation>`.
pub fn log_key(name: &str, incarnation: Option<&str>) -> String {
    match incarnation {
        None => name.to_owned(),
        Some(i) => format!("{name}{INCARNATION_MARK}{i}"),
    }
}

/// The app's name in a delivery log's key.
pub fn name_of_key(key: &str) -> &str {
    key.split(INCARNATION_MARK).next().unwrap_or(key)
}

/// The incarnation in a delivery log's key, if it has one.
pub fn incarnation_of_key(key: &str) -> Option<&str> {
    key.split_once(INCARNATION_MARK).map(|(_, i)| i)
}

impl Destination {
    /// Its delivery log's key ([`log_key`]).
    pub fn log_key(&self) -> String {
        log_key(&self.name, self.incarnation.as_deref())
    }

    /// Whether its delivery log's key is `key`.
    pub fn has_key(&self, key: &str) -> bool {
        match (&self.incarnation, key.split_once(INCARNATION_MARK)) {
            (None, None) => self.name == key,
            (Some(i), Some((name, j))) => self.name == name && i == j,
            _ => false,
        }
    }

    /// Whether this app subscribes to `event_type` of organisation `org`
    /// (the event's `orgId` as written, if it has one).
    pub fn wants(&self, event_type: &str, org: Option<&str>) -> bool {
        self.types.iter().any(|t| t == "*" || t == event_type)
            && (self.org_ids.is_empty() || org.is_some_and(|o| self.org_ids.iter().any(|id| id == o)))
    }

    /// Whether deliveries are signed.
    pub fn signed(&self) -> bool {
        !self.signing.is_empty()
    }

    /// The secrets a delivery made at `now` is signed with, newest first.
    pub fn signing_secrets(&self, now: i64) -> impl Iterator<Item = &str> {
        self.signing.iter().filter(move |s| s.until.is_none_or(|until| now < until)).map(|s| s.secret.as_str())
    }
}

/// The configured destinations (possibly none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Destinations {
    pub list: Vec<Destination>,
    /// The secret bindings the declared apps name (`tokenSecret`,
    /// `signingSecret`): an app managed at runtime may never name them.
    pub secret_names: Vec<String>,
}

impl Destinations {
    pub fn get(&self, name: &str) -> Option<&Destination> {
        self.list.iter().find(|d| d.name == name)
    }

    /// The app whose delivery log has the key `key` ([`log_key`]).
    pub fn by_key(&self, key: &str) -> Option<&Destination> {
        self.list.iter().find(|d| d.has_key(key))
    }

    /// [`Destinations::parse_with`] with the `url` crate as the URL parser.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn parse(text: Option<&str>, secret: impl Fn(&str) -> Option<String>) -> Result<Destinations, Vec<Problem>> {
        Destinations::parse_with(text, secret, parse_url)
    }

    /// Reads `DESTINATIONS` (absent or blank means none). `secret` looks up a
    /// secret binding by name; `parse_url` is the WHATWG URL parser (see
    /// [`UrlParser`]). All problems are returned, not just the first.
    pub fn parse_with(
        text: Option<&str>,
        secret: impl Fn(&str) -> Option<String>,
        parse_url: UrlParser,
    ) -> Result<Destinations, Vec<Problem>> {
        let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Destinations::default());
        };
        let problem = |field: String, message: String| Problem::blocking(field, message);
        let value = json::parse(text, &Limits { max_bytes: 1 << 20, ..Limits::default() }).map_err(|e| {
            vec![problem(
                crate::path::join(DESTINATIONS, e.path()),
                format!("{}: {}", e.code(), e.detail()),
            )]
        })?;
        let Value::Array(items) = &value else {
            return Err(vec![problem(DESTINATIONS.into(), format!("expected a JSON array of destinations, found {}", value.describe()))]);
        };
        let mut problems = Vec::new();
        let mut list = Vec::new();
        let mut secret_names = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = |field: &str| format!("{DESTINATIONS}[{i}]{}{field}", if field.is_empty() || field.starts_with('[') { "" } else { "." });
            let spec = read_spec(item, Source::Declared, parse_url);
            if let Ok(spec) = &spec {
                secret_names.extend(spec.signing_secrets.iter().cloned());
                secret_names.extend(spec.token.secret().map(str::to_owned));
            }
            match spec.and_then(|spec| spec.declared(&secret)) {
                Ok(d) => {
                    if list.iter().any(|o: &Destination| o.name == d.name) {
                        problems.push(problem(at("name"), format!("{} is used by an earlier destination; names must be unique", crate::escape::quoted(&d.name))));
                    }
                    list.push(d);
                }
                Err(errors) => problems.extend(errors.into_iter().map(|(field, message)| problem(at(&field), message))),
            }
        }
        if problems.is_empty() {
            Ok(Destinations { list, secret_names })
        } else {
            Err(problems)
        }
    }

    /// What is probably wrong but stops nothing: a type a typo away from a
    /// conversation type ([`typos`]).
    pub fn notices(&self) -> Vec<Problem> {
        let mut notices = Vec::new();
        for (i, d) in self.list.iter().enumerate() {
            for (field, message) in typos(&d.types) {
                notices.push(Problem::notice(format!("{DESTINATIONS}[{i}].{field}"), message));
            }
        }
        notices
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn secrets(name: &str) -> Option<String> {
        match name {
            "SIGN" => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            "BAD_SIGN" => Some("not-a-secret".into()),
            "REPLACEMENT" => Some("app-token".into()),
            _ => None,
        }
    }

    #[test]
    fn reads_a_legacy_app_and_a_push_app() {
        let text = r#"[
          {"name":"legacy-crm","url":"https://crm.example.com/drift","types":["conversation_status_updated"]},
          {"name":"push-app","url":"http://127.0.0.1:9000/hook","types":["conversation_push","*"],"token":"replace","tokenSecret":"REPLACEMENT","signingSecret":"SIGN"}
        ]"#;
        let d = Destinations::parse(Some(text), secrets).unwrap();
        assert_eq!(d.list.len(), 2);
        assert_eq!(d.list[0].token, TokenMode::Keep);
        assert!(d.list[0].wants("conversation_status_updated", Some("1")));
        assert!(!d.list[0].wants("conversation_push", Some("1")));
        assert_eq!(d.list[1].token, TokenMode::Replace("app-token".into()));
        assert!(d.list[1].wants("new_message", None), "* matches every type");
        assert!(d.list[1].signed());
        assert_eq!((d.list[0].source, d.list[0].org_ids.len(), d.list[0].rate_per_second), (Source::Declared, 0, None));
        assert_eq!(Destinations::parse(None, secrets).unwrap().list.len(), 0);
        assert_eq!(Destinations::parse(Some("  "), secrets).unwrap().list.len(), 0);
    }

    #[test]
    fn every_problem_is_named_with_its_place() {
        let cases: &[(&str, &str)] = &[
            ("{}", "DESTINATIONS: expected a JSON array of destinations, found an object"),
            ("[1", "DESTINATIONS[0]: invalid_json"),
            ("[3]", "DESTINATIONS[0]: expected an object, found an integer"),
            (r#"[{"url":"https://a","types":["*"]}]"#, "DESTINATIONS[0].name: missing"),
            (r#"[{"name":"a b","url":"https://a","types":["*"]}]"#, "DESTINATIONS[0].name: \"a b\" must be 1 to 64 letters"),
            (r#"[{"name":"a","url":"https://a","types":["*"]},{"name":"b","url":"http://example.com/x","types":["*"]}]"#, "DESTINATIONS[1].url: must be https (plain http only for loopback"),
            (r#"[{"name":"a","url":"ftp://a","types":["*"]}]"#, "DESTINATIONS[0].url: scheme \"ftp\" is not supported"),
            (r#"[{"name":"a","url":"example.com","types":["*"]}]"#, "DESTINATIONS[0].url: \"example.com\" is not an absolute URL"),
            (r#"[{"name":"a","url":"https://a"}]"#, "DESTINATIONS[0].types: missing"),
            (r#"[{"name":"a","url":"https://a","types":[]}]"#, "DESTINATIONS[0].types: empty"),
            (r#"[{"name":"a","url":"https://a","types":[""]}]"#, "DESTINATIONS[0].types[0]: expected an event type name"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"token":"drop"}]"#, "DESTINATIONS[0].token: \"drop\" is not one of keep, strip, replace"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"token":"replace"}]"#, "DESTINATIONS[0].tokenSecret: missing"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"token":"replace","tokenSecret":"NOPE"}]"#, "DESTINATIONS[0].tokenSecret: secret NOPE is not set"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"signingSecret":"NOPE"}]"#, "DESTINATIONS[0].signingSecret: secret NOPE is not set"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"signingSecret":"BAD_SIGN"}]"#, "DESTINATIONS[0].signingSecret: secret BAD_SIGN: must start with whsec_"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"tpyes":1}]"#, "DESTINATIONS[0].tpyes: unknown field"),
            (r#"[{"name":"a","url":"https://a","types":["*"]},{"name":"a","url":"https://b","types":["*"]}]"#, "DESTINATIONS[1].name: \"a\" is used by an earlier destination"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"orgIds":[]}]"#, "DESTINATIONS[0].orgIds: empty"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"orgIds":[1,"2"]}]"#, "DESTINATIONS[0].orgIds[1]: expected a Drift orgId (an integer), found a string"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"orgIds":[-1]}]"#, "DESTINATIONS[0].orgIds[0]: expected a Drift orgId"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"orgIds":7}]"#, "DESTINATIONS[0].orgIds: expected an array of Drift orgIds"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"ratePerSecond":0}]"#, "DESTINATIONS[0].ratePerSecond: expected a whole number of deliveries a second from 1 to 1000"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"ratePerSecond":2.5}]"#, "DESTINATIONS[0].ratePerSecond: expected a whole number"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"signingSecret":["SIGN","NOPE"]}]"#, "DESTINATIONS[0].signingSecret[1]: secret NOPE is not set"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"signingSecret":["SIGN","SIGN","SIGN"]}]"#, "DESTINATIONS[0].signingSecret: name one secret, or two while rotating"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"signingSecret":[3]}]"#, "DESTINATIONS[0].signingSecret[0]: expected a secret's name, found an integer"),
            (r#"[{"name":"a","url":"https://a","types":["*"],"signed":true}]"#, "DESTINATIONS[0].signed: declared apps name their secret"),
        ];
        for (text, expected) in cases {
            let problems = Destinations::parse(Some(text), secrets).expect_err(text);
            let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
            assert!(rendered.iter().any(|p| p.starts_with(expected)), "{text}\n  expected {expected}\n  got {rendered:?}");
        }
    }

    #[test]
    fn org_ids_and_a_rate_narrow_what_an_app_gets() {
        let text = r#"[{"name":"a","url":"https://a.example","types":["conversation_push"],"orgIds":[1,20,1],"ratePerSecond":5}]"#;
        let d = Destinations::parse(Some(text), secrets).unwrap().list.remove(0);
        assert_eq!(d.org_ids, ["1", "20"], "as written, each once");
        assert_eq!(d.rate_per_second, Some(5));
        let cases: &[(&str, Option<&str>, bool)] = &[
            ("conversation_push", Some("1"), true),
            ("conversation_push", Some("20"), true),
            ("conversation_push", Some("2"), false),
            ("conversation_push", None, false),
            ("conversation_inactive", Some("1"), false),
        ];
        for (event_type, org, wanted) in cases {
            assert_eq!(d.wants(event_type, *org), *wanted, "{event_type} {org:?}");
        }
    }

    #[test]
    fn a_declared_app_rotates_by_naming_two_secrets_and_signs_with_both() {
        let two = |name: &str| match name {
            "NEW" => Some("whsec_bmV3LXNlY3JldC1rZXktMDEyMzQ1Njc4OQ==".to_owned()),
            other => secrets(other),
        };
        let text = r#"[{"name":"a","url":"https://a.example","types":["*"],"signingSecret":["NEW","SIGN"]}]"#;
        let d = Destinations::parse(Some(text), two).unwrap().list.remove(0);
        let now = 1_700_000_000_000;
        assert_eq!(d.signing_secrets(now).count(), 2);
        assert_eq!(d.token, TokenMode::Strip);
        let rotating = Destination {
            signing: vec![
                SigningSecret { secret: "new".into(), until: None },
                SigningSecret { secret: "old".into(), until: Some(now + 1) },
            ],
            ..d
        };
        assert_eq!(rotating.signing_secrets(now).collect::<Vec<_>>(), ["new", "old"]);
        assert_eq!(rotating.signing_secrets(now + 1).collect::<Vec<_>>(), ["new"], "the old one ends at its time");
    }
}
