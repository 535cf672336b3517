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


const DECLARED_FIELDS: [&str; 10] = ["name", "url", "types", "token", "tokenSecret", "signingSecret", "orgIds", "ratePerSecond", "ordered", "listen"];
const RUNTIME_FIELDS: [&str; 11] = ["name", "url", "types", "token", "tokenSecret", "replacementToken", "signed", "orgIds", "ratePerSecond", "ordered", "listen"];

/// The longest `replacementToken`.
pub const MAX_REPLACEMENT_TOKEN_BYTES: usize = 4096;

/// The secret bindings an app managed at runtime may name in `tokenSecret`:
/// those whose name starts with this, and that no declared app or alert
/// target names. Any other binding (`ADMIN_TOKEN`, the verification token,
/// `DESTINATIONS`, a declared app's secret) is out of its reach.
pub const RUNTIME_SECRET_PREFIX: &str = "APP_TOKEN_";

/// How Drift's token is handled, as configured (the replacement still a
/// secret's name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenSetting {
    Keep,
    Strip,
    /// Replaced by the value of the secret binding `secret`.
    Replace { secret: String },
    /// Replaced by this value, given to the admin API (apps managed at
    /// runtime only): stored like a signing secret, never shown.
    ReplaceWith { value: String },
}

impl TokenSetting {
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenSetting::Keep => "keep",
            TokenSetting::Strip => "strip",
            TokenSetting::Replace { .. } | TokenSetting::ReplaceWith { .. } => "replace",
        }
    }

    /// The secret's name, with `replace`.
    pub fn secret(&self) -> Option<&str> {
        match self {
            TokenSetting::Replace { secret } => Some(secret),
            _ => None,
        }
    }

    /// Resolves the replacement's secret through `secret`.
    pub fn resolve(&self, secret: &impl Fn(&str) -> Option<String>) -> Result<TokenMode, (String, String)> {
        Ok(match self {
            TokenSetting::Keep => TokenMode::Keep,
            TokenSetting::Strip => TokenMode::Strip,
            TokenSetting::Replace { secret: name } => match secret(name) {
                Some(value) if !value.is_empty() => TokenMode::Replace(value),
                _ => return Err(("tokenSecret".into(), format!("secret {name} is not set; `wrangler secret put {name}`"))),
            },
            TokenSetting::ReplaceWith { value } => TokenMode::Replace(value.clone()),
        })
    }

    /// Checks that an app managed at runtime may read the binding it names
    /// (see [`RUNTIME_SECRET_PREFIX`]); `declared` are the bindings the
    /// declared apps and alert targets name. The refusal says what is
    /// allowed, never which bindings exist.
    pub fn check_runtime(&self, declared: &[String]) -> Result<(), (String, String)> {
        let Some(name) = self.secret() else { return Ok(()) };
        if !runtime_may_read(name, declared) {
            let message = if runtime_may_read(name, &[]) {
                format!("{name} is named by an app declared in DESTINATIONS or an alert target; an app managed at runtime needs a secret of its own")
            } else {
                format!(
                    "an app managed at runtime may name only a binding whose name starts with {RUNTIME_SECRET_PREFIX} (e.g. `wrangler secret put {RUNTIME_SECRET_PREFIX}CRM`), \
                     or give the token itself as \"replacementToken\", which the bridge stores and never shows"
                )
            };
            return Err(("tokenSecret".into(), message));
        }
        Ok(())
    }
}

/// Whether an app managed at runtime may read the binding `name`.
pub fn runtime_may_read(name: &str, declared: &[String]) -> bool {
    name.strip_prefix(RUNTIME_SECRET_PREFIX)
        .is_some_and(|rest| !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'))
        && !declared.iter().any(|d| d == name)
}

/// An app's object read and checked field by field, its secrets not yet
/// looked up: what `DESTINATIONS` and the admin API have in common.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    /// Normalised, as `fetch` reads it.
    pub url: String,
    pub types: Vec<String>,
    pub token: TokenSetting,
    /// Declared: the names of the signing secrets; runtime: empty.
    pub signing_secrets: Vec<String>,
    /// Runtime: whether the bridge signs with a secret of its own making.
    pub signed: bool,
    pub org_ids: Vec<String>,
    pub rate_per_second: Option<u32>,
    pub ordered: bool,
    /// No URL (`url` is ""): its deliveries go to `drift-bridge listen`.
    pub listen: bool,
}

impl Spec {
    /// A declared app, its secrets looked up through `secret`.
    pub fn declared(self, secret: &impl Fn(&str) -> Option<String>) -> Result<Destination, Vec<(String, String)>> {
        let mut errors = Vec::new();
        let token = self.token.resolve(secret).unwrap_or_else(|e| {
            errors.push(e);
            TokenMode::Keep
        });
        let many = self.signing_secrets.len() > 1;
        let mut signing = Vec::new();
        for (i, name) in self.signing_secrets.iter().enumerate() {
            let field = if many { format!("signingSecret[{i}]") } else { "signingSecret".to_owned() };
            match secret(name) {
                None => errors.push((field, format!("secret {name} is not set; `wrangler secret put {name}`"))),
                Some(value) => match crate::delivery::sign::key_from_secret(&value) {
                    Ok(_) => signing.push(SigningSecret { secret: value, until: None }),
                    Err(message) => errors.push((field, format!("secret {name}: {message}"))),
                },
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Destination {
            name: self.name,
            url: self.url,
            types: self.types,
            token,
            signing,
            org_ids: self.org_ids,
            rate_per_second: self.rate_per_second,
            source: Source::Declared,
            incarnation: None,
            ordered: self.ordered,
            listen: self.listen,
        })
    }
}

/// Reads one app's object as `kind` has it (an item of `DESTINATIONS`,
/// signed with the secrets `signingSecret` names; or a body of the admin
/// API, where `signed` asks the bridge to make a secret): every problem,
/// each with the field it is about (`url`, `types[1]`), not just the first.
pub fn read_spec(item: &Value<'_>, kind: Source, parse_url: UrlParser) -> Result<Spec, Vec<(String, String)>> {
    let Some(members) = item.as_object() else {
        return Err(vec![(String::new(), format!("expected an object, found {}", item.describe()))]);
    };
    let fields: &[&str] = match kind {
        Source::Declared => &DECLARED_FIELDS,
        Source::Runtime => &RUNTIME_FIELDS,
    };
    let mut errors: Vec<(String, String)> = Vec::new();
    for (key, _) in members {
        let key = key.text();
        if fields.contains(&key.as_ref()) {
            continue;
        }
        let message = match (kind, key.as_ref()) {
            (Source::Runtime, "signingSecret") => {
                "apps managed at runtime are signed with a secret the bridge makes: use \"signed\": true, and rotate it with …/rotate-secret".to_owned()
            }
            (Source::Declared, "signed") => "declared apps name their secret: \"signingSecret\": \"<secret name>\"".to_owned(),
            _ => format!("unknown field; the fields are {}", fields.join(", ")),
        };
        errors.push((key.to_string(), message));
    }
    let string = |field: &str, errors: &mut Vec<(String, String)>| -> Option<String> {
        match item.get(field) {
            None => None,
            Some(Value::String(s)) => Some(s.text().into_owned()),
            Some(v) => {
                errors.push((field.into(), format!("expected a string, found {}", v.describe())));
                None
            }
        }
    };
    let name = read_name(item, &mut errors);
    let listen = match item.get("listen") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            errors.push(("listen".into(), format!("expected true or false, found {}", v.describe())));
            false
        }
    };
    let url = match string("url", &mut errors) {
        // An app that takes a listener has no URL.
        _ if listen && matches!(item.get("url"), None | Some(Value::Null)) => None,
        _ if listen => {
            errors.push(("url".into(), "an app with \"listen\": true has no URL: its deliveries go to drift-bridge listen".into()));
            None
        }
        None if item.get("url").is_none() => {
            errors.push(("url".into(), "missing".into()));
            None
        }
        None => None,
        Some(u) => check_url(&u, parse_url).map_err(|message| errors.push(("url".into(), message))).ok(),
    };
    let mut types = Vec::new();
    match item.get("types") {
        None => errors.push(("types".into(), "missing; list Drift event types, e.g. [\"conversation_push\"], or [\"*\"] for all".into())),
        Some(Value::Array(list)) if list.is_empty() => errors.push(("types".into(), "empty; list at least one event type, or \"*\"".into())),
        Some(Value::Array(list)) => {
            for (j, t) in list.iter().enumerate() {
                match t {
                    Value::String(s) if !s.text().trim().is_empty() && s.text().len() <= 128 => types.push(s.text().into_owned()),
                    Value::String(_) if list.len() <= 100 => errors.push((format!("types[{j}]"), "expected an event type name of 1 to 128 characters".into())),
                    other => errors.push((format!("types[{j}]"), format!("expected an event type name, found {}", other.describe()))),
                }
            }
            if list.len() > 100 {
                errors.push(("types".into(), format!("{} types; list at most 100, or \"*\"", list.len())));
            }
        }
        Some(v) => errors.push(("types".into(), format!("expected an array of event type names, found {}", v.describe()))),
    }
    let token_secret = string("tokenSecret", &mut errors);
    let signing_secrets = match (kind, item.get("signingSecret")) {
        (Source::Declared, Some(Value::String(s))) => vec![s.text().into_owned()],
        (Source::Declared, Some(Value::Array(list))) if list.is_empty() || list.len() > MAX_SIGNING_SECRETS => {
            errors.push(("signingSecret".into(), "name one secret, or two while rotating (the new one first)".into()));
            Vec::new()
        }
        (Source::Declared, Some(Value::Array(list))) => {
            let mut names = Vec::new();
            for (j, v) in list.iter().enumerate() {
                match v {
                    Value::String(s) if !s.text().is_empty() => names.push(s.text().into_owned()),
                    other => errors.push((format!("signingSecret[{j}]"), format!("expected a secret's name, found {}", other.describe()))),
                }
            }
            names
        }
        (Source::Declared, Some(v)) => {
            errors.push(("signingSecret".into(), format!("expected a secret's name (or two, to rotate), found {}", v.describe())));
            Vec::new()
        }
        _ => Vec::new(),
    };
    let signed = match (kind, item.get("signed")) {
        (Source::Runtime, None) => true,
        (Source::Runtime, Some(Value::Bool(b))) => *b,
        (Source::Runtime, Some(v)) => {
            errors.push(("signed".into(), format!("expected true or false, found {}", v.describe())));
            true
        }
        _ => false,
    };
    // An app that verifies signatures does not need Drift's token, so it
    // only gets it when it asks for it.
    let is_signed = match kind {
        Source::Declared => item.get("signingSecret").is_some(),
        Source::Runtime => signed,
    };
    let replacement = match (kind, item.get("replacementToken")) {
        (_, None | Some(Value::Null)) => None,
        (Source::Runtime, Some(Value::String(s))) => {
            let value = s.text().into_owned();
            if value.is_empty() || value.len() > MAX_REPLACEMENT_TOKEN_BYTES || value.chars().any(char::is_control) {
                errors.push((
                    "replacementToken".into(),
                    format!("expected the token an app gets in Drift's place: 1 to {MAX_REPLACEMENT_TOKEN_BYTES} bytes, no control characters"),
                ));
                None
            } else {
                Some(value)
            }
        }
        (Source::Runtime, Some(v)) => {
            errors.push(("replacementToken".into(), format!("expected a string, found {}", v.describe())));
            None
        }
        // Declared apps never reach here: it is not one of their fields.
        (Source::Declared, Some(_)) => None,
    };
    let token = match string("token", &mut errors).as_deref() {
        None if is_signed => TokenSetting::Strip,
        None | Some("keep") => TokenSetting::Keep,
        Some("strip") => TokenSetting::Strip,
        Some("replace") => match (&token_secret, &replacement) {
            (Some(_), Some(_)) => {
                errors.push(("replacementToken".into(), "give either replacementToken (the token itself) or tokenSecret (a binding's name), not both".into()));
                TokenSetting::Keep
            }
            (None, Some(value)) => TokenSetting::ReplaceWith { value: value.clone() },
            (None, None) => {
                let message = match kind {
                    Source::Declared => "missing; \"token\": \"replace\" needs the name of a secret holding the replacement",
                    Source::Runtime => "missing; \"token\": \"replace\" needs the replacement: \"replacementToken\" (the token itself, stored and never shown) or \"tokenSecret\" (an APP_TOKEN_… binding)",
                };
                errors.push(("tokenSecret".into(), message.into()));
                TokenSetting::Keep
            }
            (Some(name), None) => TokenSetting::Replace { secret: name.clone() },
        },
        Some(other) => {
            errors.push(("token".into(), format!("{} is not one of keep, strip, replace", crate::escape::quoted(other))));
            TokenSetting::Keep
        }
    };
    if token_secret.is_some() && token.secret().is_none() && !errors.iter().any(|(f, _)| f == "token" || f == "tokenSecret" || f == "replacementToken") {
        errors.push(("tokenSecret".into(), "only used with \"token\": \"replace\"".into()));
    }
    if replacement.is_some() && token.as_str() != "replace" && !errors.iter().any(|(f, _)| f == "token" || f == "replacementToken") {
        errors.push(("replacementToken".into(), "only used with \"token\": \"replace\"".into()));
    }
    let mut org_ids: Vec<String> = Vec::new();
    match item.get("orgIds") {
        None | Some(Value::Null) => {}
        Some(Value::Array(list)) if list.is_empty() => {
            errors.push(("orgIds".into(), "empty; list the Drift organisations (orgId) this app gets, or leave it out for all".into()))
        }
        Some(Value::Array(list)) if list.len() > MAX_ORG_IDS => {
            errors.push(("orgIds".into(), format!("{} organisations; list at most {MAX_ORG_IDS}", list.len())))
        }
        Some(Value::Array(list)) => {
            for (j, v) in list.iter().enumerate() {
                match v.as_integer().filter(|n| !n.starts_with('-') && n.len() <= 20) {
                    Some(n) if !org_ids.iter().any(|o| o == n) => org_ids.push(n.to_owned()),
                    Some(_) => {}
                    None => errors.push((format!("orgIds[{j}]"), format!("expected a Drift orgId (an integer), found {}", v.describe()))),
                }
            }
        }
        Some(v) => errors.push(("orgIds".into(), format!("expected an array of Drift orgIds, found {}", v.describe()))),
    }
    let rate_per_second = match item.get("ratePerSecond") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_integer().and_then(|n| n.parse::<u32>().ok()) {
            Some(n) if (1..=MAX_RATE_PER_SECOND).contains(&n) => Some(n),
            _ => {
                errors.push(("ratePerSecond".into(), format!("expected a whole number of deliveries a second from 1 to {MAX_RATE_PER_SECOND}")));
                None
            }
        },
    };
    let ordered = match item.get("ordered") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(v) => {
            errors.push(("ordered".into(), format!("expected true or false, found {}", v.describe())));
            false
        }
    };
    if errors.is_empty() {
        Ok(Spec {
            ordered,
            listen,
            name: name.unwrap_or_default(),
            url: url.unwrap_or_default(),
            types,
            token,
            signing_secrets,
            signed,
            org_ids,
            rate_per_second,
        })
    } else {
        Err(errors)
    }
}

/// The `name` field, checked ([`check_name`]); a problem goes to `errors`.
pub(crate) fn read_name(item: &Value<'_>, errors: &mut Vec<(String, String)>) -> Option<String> {
    match item.get("name") {
        None => {
            errors.push(("name".into(), "missing".into()));
            None
        }
        Some(Value::String(s)) => {
            let n = s.text().into_owned();
            if let Err(message) = check_name(&n) {
                errors.push(("name".into(), message));
            }
            Some(n)
        }
        Some(v) => {
            errors.push(("name".into(), format!("expected a string, found {}", v.describe())));
            None
        }
    }
}

/// An app's name: 1 to 64 letters, digits, `-` or `_` (it is part of
/// delivery ids, where `.` separates).
/// The types of `types` that are one or two typing mistakes away from one
/// of the four conversation types, as (`types[j]`, what is wrong): such a
/// type matches no event and delivers nothing, silently. Any other name
/// passes, since an app may take any of Drift's event types. The admin API
/// refuses a change with one; declared apps get a notice in /health (a
/// refusal there would stop every app's webhooks after an upgrade).
pub fn typos(types: &[String]) -> Vec<(String, String)> {
    types
        .iter()
        .enumerate()
        .filter_map(|(j, t)| near_miss(t).map(|meant| (format!("types[{j}]"), format!("{} is not a Drift event type; did you mean \"{meant}\"?", crate::escape::quoted(t)))))
        .collect()
}

/// The conversation type `name` is one or two typing mistakes away from, if any.
fn near_miss(name: &str) -> Option<&'static str> {
    crate::event::EventType::ALL.iter().map(|t| t.name()).find(|known| *known != name && edits(name, known) <= 2)
}

/// Levenshtein distance, stopping early past 2 (names are at most 128 bytes).
fn edits(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len().abs_diff(b.len()) > 2 {
        return 3;
    }
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &y) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (prev + usize::from(x != y)).min(row[j] + 1).min(here + 1);
            prev = here;
        }
    }
    row[b.len()]
}

pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(format!("{} must be 1 to 64 letters, digits, '-' or '_'", crate::escape::quoted(name)));
    }
    Ok(())
}

/// A URL as a WHATWG URL parser reads it: what [`check_url`] needs of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParsedUrl {
    /// The normalised URL, what gets fetched.
    pub href: String,
    /// Without the `:`, lower case.
    pub scheme: String,
    /// A user name or a password is present.
    pub credentials: bool,
    /// The host as serialised: a domain, an IPv4 address, or an IPv6 address
    /// in brackets; empty when there is none.
    pub hostname: String,
}

/// A WHATWG URL parser: an error says why the text is not an absolute URL.
/// Natively (the CLI, the tests) it is [`parse_url`], the `url` crate; the
/// Worker passes the runtime's own `URL`, the parser its `fetch` uses, which
/// keeps about 50 KB of parser and IDNA tables out of its wasm.
pub type UrlParser = fn(&str) -> Result<ParsedUrl, String>;

/// [`UrlParser`] over the `url` crate.
#[cfg(not(target_arch = "wasm32"))]
pub fn parse_url(text: &str) -> Result<ParsedUrl, String> {
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    Ok(ParsedUrl {
        scheme: url.scheme().to_string(),
        credentials: !url.username().is_empty() || url.password().is_some(),
        hostname: url.host_str().unwrap_or("").to_string(),
        href: url.into(),
    })
}

/// Reads a destination URL the way the runtime's `fetch` will (WHATWG URL
/// parsing, by `parse_url`), and answers its normalised form, which is what
/// gets fetched. https anywhere; plain http only for loopback hosts.
/// Refused: credentials in the URL, backslashes (a WHATWG parser reads `\\`
/// as `/`, so `http://evil.example\\@localhost/` is evil.example, not
/// localhost), control characters, and characters outside ASCII (write the
/// host in punycode and percent-encode the rest), so that every parser reads
/// the same URL.
pub(crate) fn check_url(text: &str, parse_url: UrlParser) -> Result<String, String> {
    if text.chars().any(char::is_control) {
        return Err("contains a control character".into());
    }
    if text.contains('\\') {
        return Err("contains a backslash; URL parsers read it as '/', so the host may not be what it seems".into());
    }
    if !text.is_ascii() {
        return Err("contains a character outside ASCII; write the host in punycode (xn--…) and percent-encode the rest".into());
    }
    let url = parse_url(text).map_err(|e| format!("{} is not an absolute URL ({e})", crate::escape::quoted(text)))?;
    if url.credentials {
        return Err("must not carry a user name or password; use signingSecret or tokenSecret instead".into());
    }
    if url.hostname.is_empty() {
        return Err(format!("{} has no host", crate::escape::quoted(text)));
    }
    match url.scheme.as_str() {
        "https" => Ok(url.href),
        "http" if is_loopback(&url.hostname) => Ok(url.href),
        "http" => Err("must be https (plain http only for loopback: localhost, 127.0.0.0/8, [::1])".into()),
        other => Err(format!("scheme {} is not supported; must be https", crate::escape::quoted(other))),
    }
}

/// A serialised host (see [`ParsedUrl::hostname`]: lower case, IPv6 in
/// brackets) that is this machine: `localhost`, `*.localhost`, 127.0.0.0/8
/// or `[::1]`.
pub fn is_loopback(hostname: &str) -> bool {
    if let Some(v6) = hostname.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok_and(|a| a.is_loopback());
    }
    if let Ok(v4) = hostname.parse::<std::net::Ipv4Addr>() {
        return v4.is_loopback();
    }
    hostname == "localhost" || hostname.ends_with(".localhost")
}

/// Why an app managed at runtime may not be at `hostname` (a serialised
/// host, see [`ParsedUrl::hostname`]), if it may not: an address that is not
/// on the internet (private, shared, link-local, unique-local, multicast,
/// reserved), or loopback, unless `allow_loopback` (local development).
/// Only literal addresses and `localhost` names are judged: names are not
/// resolved here, and a Worker's `fetch` reaches no private network by name.
pub fn refuse_address(hostname: &str, allow_loopback: bool) -> Option<String> {
    use std::net::{Ipv4Addr, Ipv6Addr};
    fn v4(a: Ipv4Addr) -> Option<&'static str> {
        let [b0, b1, b2, _] = a.octets();
        Some(match () {
            () if a.is_loopback() => "loopback",
            () if a.is_private() => "private",
            () if a.is_link_local() => "link-local",
            () if b0 == 0 => "this-network",
            () if b0 == 100 && (64..128).contains(&b1) => "shared (carrier-grade NAT)",
            () if b0 == 192 && b1 == 0 && b2 == 0 => "IETF-reserved",
            () if b0 == 198 && (b1 == 18 || b1 == 19) => "benchmarking",
            () if a.is_documentation() => "documentation",
            () if a.is_multicast() => "multicast",
            () if b0 >= 240 => "reserved",
            () => return None,
        })
    }
    let class = if let Some(text) = hostname.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        let Ok(a) = text.parse::<Ipv6Addr>() else { return Some(format!("{hostname} is not an IPv6 address")) };
        let s = a.segments();
        if let Some(mapped) = a.to_ipv4_mapped() {
            v4(mapped)
        } else if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
            // NAT64: the IPv4 address in its last 32 bits.
            v4(Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8))
        } else {
            match () {
                () if a.is_loopback() => Some("loopback"),
                () if a.is_unspecified() => Some("unspecified"),
                () if s[0] & 0xfe00 == 0xfc00 => Some("unique-local"),
                () if s[0] & 0xffc0 == 0xfe80 => Some("link-local"),
                () if a.is_multicast() => Some("multicast"),
                () if s[0] == 0x2001 && s[1] == 0x0db8 => Some("documentation"),
                () => None,
            }
        }
    } else if let Ok(a) = hostname.parse::<Ipv4Addr>() {
        v4(a)
    } else if hostname == "localhost" || hostname.ends_with(".localhost") {
        Some("loopback")
    } else {
        None
    }?;
    if class == "loopback" && allow_loopback {
        return None;
    }
    let hint = if class == "loopback" { " (allowed only with LOCAL_DEVELOPMENT=1, for a bridge run by `make dev`)" } else { "" };
    Some(format!("{hostname} is a {class} address, not on the internet; an app managed at runtime must be reachable there{hint}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(name: &str) -> Option<String> {
        match name {
            "SIGN" => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()),
            "BAD_SIGN" => Some("not-a-secret".into()),
            "REPLACEMENT" => Some("app-token".into()),
            _ => None,
        }
    }

    #[test]
    fn a_type_a_typo_away_from_a_conversation_type_is_refused_and_others_pass() {
        for (name, meant) in [
            ("conversation_psuh", Some("conversation_push")),
            ("conversation_pushes", Some("conversation_push")),
            ("conversation_inactiv", Some("conversation_inactive")),
            ("conversation-manual-push", Some("conversation_manual_push")),
            ("conversation_closed", None),
            ("conversation_manual_push", None),
            ("conversation_push", None),
            ("new_message", None),
            ("contact_identified", None),
            ("*", None),
        ] {
            assert_eq!(near_miss(name), meant, "{name}");
        }
        let d = Destinations::parse(Some(r#"[{"name":"a","url":"https://a","types":["conversation_push","Conversation_Inactive"]}]"#), secrets).unwrap();
        let notices: Vec<String> = d.notices().iter().map(ToString::to_string).collect();
        assert_eq!(notices, ["DESTINATIONS[0].types[1]: \"Conversation_Inactive\" is not a Drift event type; did you mean \"conversation_inactive\"?"]);
        assert!(d.notices().iter().all(|p| !p.blocking), "a notice: the declared apps keep working");
        assert_eq!(edits("kitten", "sitting"), 3);
        assert_eq!(edits("", "ab"), 2);
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
    fn urls_are_read_as_fetch_reads_them() {
        // (input, Ok(normalised URL) or Err(start of the message))
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("https://example.com", Ok("https://example.com/")),
            ("HTTPS://Example.COM/hook?x=1", Ok("https://example.com/hook?x=1")),
            ("http://localhost:8080/x", Ok("http://localhost:8080/x")),
            ("http://a.localhost/", Ok("http://a.localhost/")),
            ("http://127.0.0.1/x", Ok("http://127.0.0.1/x")),
            ("http://127.1/x", Ok("http://127.0.0.1/x")),
            ("http://0x7f.0.0.1/x", Ok("http://127.0.0.1/x")),
            ("http://[::1]:9/x", Ok("http://[::1]:9/x")),
            // A hand-written check took these for loopback; fetch goes to evil.example.
            ("http://evil.example\\@localhost/", Err("contains a backslash")),
            ("http://evil.example\\.localhost/", Err("contains a backslash")),
            ("http://localhost@evil.example/", Err("must not carry a user name or password")),
            ("https://user:pass@example.com/", Err("must not carry a user name or password")),
            ("http://example.com", Err("must be https")),
            ("http://127.0.0.1.evil.com/", Err("must be https")),
            ("http://localhost.evil.com/", Err("must be https")),
            ("http://[::ffff:127.0.0.1]/", Err("must be https")),
            ("https://exa\tmple.com/", Err("contains a control character")),
            ("https://example.com/\n", Err("contains a control character")),
            ("https://bücher.example/", Err("contains a character outside ASCII")),
            ("https://example.com/caf\u{e9}", Err("contains a character outside ASCII")),
            ("file:///etc/passwd", Err("\"file:///etc/passwd\" has no host")),
            ("ftp://a.example/", Err("scheme \"ftp\" is not supported")),
            ("example.com", Err("\"example.com\" is not an absolute URL")),
            ("https://", Err("\"https://\" is not an absolute URL")),
        ];
        for (input, expected) in cases {
            match (check_url(input, parse_url), expected) {
                (Ok(url), Ok(want)) => assert_eq!(&url, want, "{input}"),
                (Err(message), Err(want)) => assert!(message.starts_with(want), "{input}: {message}"),
                (got, _) => panic!("{input}: expected {expected:?}, got {got:?}"),
            }
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

    #[test]
    fn signed_destinations_get_no_drift_token_unless_they_ask() {
        let parse = |text: &str| Destinations::parse(Some(text), secrets).unwrap().list.remove(0).token;
        let cases = [
            (r#"[{"name":"a","url":"https://a.example","types":["*"]}]"#, TokenMode::Keep),
            (r#"[{"name":"a","url":"https://a.example","types":["*"],"signingSecret":"SIGN"}]"#, TokenMode::Strip),
            (r#"[{"name":"a","url":"https://a.example","types":["*"],"signingSecret":"SIGN","token":"keep"}]"#, TokenMode::Keep),
            (r#"[{"name":"a","url":"https://a.example","types":["*"],"token":"strip"}]"#, TokenMode::Strip),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), expected, "{text}");
        }
    }

    #[test]
    fn problems_never_quote_a_secret() {
        let secret = |name: &str| (name == "LEAKY").then(|| "whsec_se!cret-value".to_owned());
        let problems = Destinations::parse(
            Some(r#"[{"name":"a","url":"https://a.example","types":["*"],"signingSecret":"LEAKY"}]"#),
            secret,
        )
        .unwrap_err();
        let rendered = problems[0].to_string();
        assert_eq!(rendered, "DESTINATIONS[0].signingSecret: secret LEAKY: the part after whsec_ is not valid base64");
        for piece in ["!", "cret-", "value"] {
            assert!(!rendered.contains(piece), "{rendered}");
        }
    }
}
