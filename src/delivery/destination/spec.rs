//! An app's object read field by field ([`read_spec`]): what `DESTINATIONS`
//! and the admin API have in common, with the checks of its name, its event
//! types and its token.

use super::url::{check_url, UrlParser};
use super::{Destination, SigningSecret, Source, TokenMode, MAX_ORG_IDS, MAX_RATE_PER_SECOND, MAX_SIGNING_SECRETS};
use crate::json::Value;

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
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(format!("{} must be 1 to 64 letters, digits, '-' or '_'", crate::escape::quoted(name)));
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::tests::secrets;
    use super::super::Destinations;

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
