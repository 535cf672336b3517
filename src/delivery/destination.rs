//! The apps events are delivered to, from the `DESTINATIONS` variable: a JSON
//! array of objects such as
//!
//! ```json
//! [{"name": "legacy-crm", "url": "https://crm.example.com/drift",
//!   "types": ["conversation_status_updated"]},
//!  {"name": "push-app", "url": "https://push.example.com/hooks/drift",
//!   "types": ["conversation_push"], "token": "strip",
//!   "signingSecret": "PUSH_APP_SIGNING_SECRET"}]
//! ```
//!
//! Secrets never sit in the array: `signingSecret` and `tokenSecret` name a
//! secret binding (`wrangler secret put NAME`), read through the lookup the
//! worker passes in. Every problem is reported with its place, e.g.
//! `DESTINATIONS[1].url: must be https (plain http only for loopback: …)`.

use crate::problem::Problem;
use crate::json::{self, Limits, Value};

/// Environment name of the destinations array.
pub const DESTINATIONS: &str = "DESTINATIONS";

/// What happens to Drift's `token` field on the way to an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenMode {
    /// Passed on as Drift sent it, for apps that check it: the default for
    /// a destination without a `signingSecret`.
    Keep,
    /// Removed: the default for a destination with a `signingSecret`, which
    /// authenticates deliveries by their signature instead.
    Strip,
    /// Replaced by this destination's own secret value.
    Replace(String),
}

/// One app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination {
    /// Unique, `[A-Za-z0-9_-]{1,64}`; part of delivery ids and queue messages.
    pub name: String,
    pub url: String,
    /// Drift type names, or `*` for every type.
    pub types: Vec<String>,
    pub token: TokenMode,
    /// Standard Webhooks secret (`whsec_…`), when deliveries are signed.
    pub signing_secret: Option<String>,
}

impl Destination {
    /// Whether this app subscribes to `event_type`.
    pub fn wants(&self, event_type: &str) -> bool {
        self.types.iter().any(|t| t == "*" || t == event_type)
    }
}

/// The configured destinations (possibly none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Destinations {
    pub list: Vec<Destination>,
}

impl Destinations {
    pub fn get(&self, name: &str) -> Option<&Destination> {
        self.list.iter().find(|d| d.name == name)
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
        for (i, item) in items.iter().enumerate() {
            let at = |field: &str| format!("{DESTINATIONS}[{i}]{}{field}", if field.is_empty() { "" } else { "." });
            match read_one(item, &secret, parse_url) {
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
            Ok(Destinations { list })
        } else {
            Err(problems)
        }
    }
}

const FIELDS: [&str; 6] = ["name", "url", "types", "token", "tokenSecret", "signingSecret"];

fn read_one(
    item: &Value<'_>,
    secret: &impl Fn(&str) -> Option<String>,
    parse_url: UrlParser,
) -> Result<Destination, Vec<(String, String)>> {
    let Some(members) = item.as_object() else {
        return Err(vec![(String::new(), format!("expected an object, found {}", item.describe()))]);
    };
    let mut errors: Vec<(String, String)> = Vec::new();
    for (key, _) in members {
        let key = key.text();
        if !FIELDS.contains(&key.as_ref()) {
            errors.push((key.to_string(), format!("unknown field; the fields are {}", FIELDS.join(", "))));
        }
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
    let name = string("name", &mut errors);
    match &name {
        None if item.get("name").is_none() => errors.push(("name".into(), "missing".into())),
        Some(n) if n.is_empty() || n.len() > 64 || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') => {
            errors.push(("name".into(), format!("{} must be 1 to 64 letters, digits, '-' or '_'", crate::escape::quoted(n))))
        }
        _ => {}
    }
    let url = match string("url", &mut errors) {
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
                    Value::String(s) if !s.text().trim().is_empty() => types.push(s.text().into_owned()),
                    other => errors.push((format!("types[{j}]"), format!("expected an event type name, found {}", other.describe()))),
                }
            }
        }
        Some(v) => errors.push(("types".into(), format!("expected an array of event type names, found {}", v.describe()))),
    }
    let token_secret_name = string("tokenSecret", &mut errors);
    // An app that verifies signatures does not need Drift's token, so it
    // only gets it when it asks for it.
    let signed = item.get("signingSecret").is_some();
    let token = match string("token", &mut errors).as_deref() {
        None if signed => TokenMode::Strip,
        None | Some("keep") => TokenMode::Keep,
        Some("strip") => TokenMode::Strip,
        Some("replace") => match &token_secret_name {
            None => {
                errors.push(("tokenSecret".into(), "missing; \"token\": \"replace\" needs the name of a secret holding the replacement".into()));
                TokenMode::Keep
            }
            Some(name) => match secret(name) {
                Some(value) if !value.is_empty() => TokenMode::Replace(value),
                _ => {
                    errors.push(("tokenSecret".into(), format!("secret {name} is not set; `wrangler secret put {name}`")));
                    TokenMode::Keep
                }
            },
        },
        Some(other) => {
            errors.push(("token".into(), format!("{} is not one of keep, strip, replace", crate::escape::quoted(other))));
            TokenMode::Keep
        }
    };
    if token_secret_name.is_some() && !matches!(token, TokenMode::Replace(_)) && !errors.iter().any(|(f, _)| f == "token" || f == "tokenSecret") {
        errors.push(("tokenSecret".into(), "only used with \"token\": \"replace\"".into()));
    }
    let signing_secret = match string("signingSecret", &mut errors) {
        None => None,
        Some(name) => match secret(&name) {
            None => {
                errors.push(("signingSecret".into(), format!("secret {name} is not set; `wrangler secret put {name}`")));
                None
            }
            Some(value) => match crate::delivery::sign::key_from_secret(&value) {
                Ok(_) => Some(value),
                Err(message) => {
                    errors.push(("signingSecret".into(), format!("secret {name}: {message}")));
                    None
                }
            },
        },
    };
    if errors.is_empty() {
        Ok(Destination { name: name.unwrap_or_default(), url: url.unwrap_or_default(), types, token, signing_secret })
    } else {
        Err(errors)
    }
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
fn check_url(text: &str, parse_url: UrlParser) -> Result<String, String> {
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
    fn reads_a_legacy_app_and_a_push_app() {
        let text = r#"[
          {"name":"legacy-crm","url":"https://crm.example.com/drift","types":["conversation_status_updated"]},
          {"name":"push-app","url":"http://127.0.0.1:9000/hook","types":["conversation_push","*"],"token":"replace","tokenSecret":"REPLACEMENT","signingSecret":"SIGN"}
        ]"#;
        let d = Destinations::parse(Some(text), secrets).unwrap();
        assert_eq!(d.list.len(), 2);
        assert_eq!(d.list[0].token, TokenMode::Keep);
        assert!(d.list[0].wants("conversation_status_updated"));
        assert!(!d.list[0].wants("conversation_push"));
        assert_eq!(d.list[1].token, TokenMode::Replace("app-token".into()));
        assert!(d.list[1].wants("new_message"), "* matches every type");
        assert!(d.list[1].signing_secret.is_some());
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
