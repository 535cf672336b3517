//! Where alerts go: `ALERTS` read ([`parse`]) into [`Target`]s, and the
//! kinds of alert they may choose from.

use super::{ALERTS, ALERT_TYPE};
use crate::delivery::destination::{check_url, read_name, Destination, SigningSecret, Source, TokenMode, UrlParser};
use crate::json::{self, Limits, Value};
use crate::problem::Problem;

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Tripped,
    Recovered,
    Paused,
    Resumed,
    DeadLetter,
    Backlog,
    LogFull,
}

impl Kind {
    pub const ALL: [Kind; 7] = [Kind::Tripped, Kind::Recovered, Kind::Paused, Kind::Resumed, Kind::DeadLetter, Kind::Backlog, Kind::LogFull];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Tripped => "tripped",
            Kind::Recovered => "recovered",
            Kind::Paused => "paused",
            Kind::Resumed => "resumed",
            Kind::DeadLetter => "dead-letter",
            Kind::Backlog => "backlog",
            Kind::LogFull => "log-full",
        }
    }

    pub fn parse(word: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == word)
    }
}

/// How an alert's body is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `{"type":"drift_bridge.alert","kind",…}`.
    Json,
    /// `{"text": "…"}`, what Slack's incoming webhooks (and Mattermost's,
    /// Discord's `/slack`, …) take.
    Slack,
}

/// One place alerts go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// Its delivery's destination: named `@<name>`, signed with the target's secret.
    pub destination: Destination,
    /// The binding its `signingSecret` names, if any: no app managed at
    /// runtime may name it.
    pub secret_name: Option<String>,
    pub format: Format,
    /// The kinds it gets (empty: all).
    pub kinds: Vec<Kind>,
}

impl Target {
    pub fn wants(&self, kind: Kind) -> bool {
        self.kinds.is_empty() || self.kinds.contains(&kind)
    }
}

/// The alerts' settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alerting {
    pub targets: Vec<Target>,
    /// Deliveries waiting (pending and held) past which an app's backlog alerts.
    pub backlog: i64,
    pub coalesce_ms: i64,
    /// The bridge's public URL, for the admin page's link (`PUBLIC_URL`).
    pub public_url: Option<String>,
}

impl Default for Alerting {
    fn default() -> Self {
        Alerting { targets: Vec::new(), backlog: 1000, coalesce_ms: 300_000, public_url: None }
    }
}

impl Alerting {
    pub fn target(&self, log_name: &str) -> Option<&Target> {
        self.targets.iter().find(|t| t.destination.name == log_name)
    }

    /// The admin page's link for an app.
    pub fn link(&self, destination: &str) -> String {
        let base = self.public_url.as_deref().unwrap_or("").trim_end_matches('/');
        format!("{base}/admin.html#destination={destination}")
    }
}

/// Whether a delivery log is an alert target's (`@<name>`): it raises no alerts.
pub fn is_alert_log(name: &str) -> bool {
    name.starts_with('@')
}

const FIELDS: [&str; 5] = ["name", "url", "format", "signingSecret", "kinds"];

/// Reads `ALERTS` (absent or blank: none), every problem with its place.
pub fn parse(text: Option<&str>, secret: &impl Fn(&str) -> Option<String>, parse_url: UrlParser) -> Result<Vec<Target>, Vec<Problem>> {
    let Some(text) = text.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(Vec::new()) };
    let value = json::parse(text, &Limits { max_bytes: 1 << 16, ..Limits::default() })
        .map_err(|e| vec![Problem::blocking(crate::path::join(ALERTS, e.path()), format!("{}: {}", e.code(), e.detail()))])?;
    let Value::Array(items) = &value else {
        return Err(vec![Problem::blocking(ALERTS, format!("expected a JSON array of alert targets, found {}", value.describe()))]);
    };
    let mut problems = Vec::new();
    let mut targets: Vec<Target> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |field: &str| format!("{ALERTS}[{i}]{}{field}", if field.is_empty() { "" } else { "." });
        let mut errors: Vec<(String, String)> = Vec::new();
        let Some(members) = item.as_object() else {
            problems.push(Problem::blocking(at(""), format!("expected an object, found {}", item.describe())));
            continue;
        };
        for (key, _) in members {
            if !FIELDS.contains(&key.text().as_ref()) {
                errors.push((key.text().into_owned(), format!("unknown field; the fields are {}", FIELDS.join(", "))));
            }
        }
        let name = read_name(item, &mut errors);
        let url = match item.get("url") {
            None => {
                errors.push(("url".into(), "missing".into()));
                None
            }
            Some(Value::String(s)) => check_url(&s.text(), parse_url).map_err(|m| errors.push(("url".into(), m))).ok(),
            Some(v) => {
                errors.push(("url".into(), format!("expected a string, found {}", v.describe())));
                None
            }
        };
        let format = match item.get("format") {
            None => Format::Json,
            Some(v) if v.as_str().is_some_and(|s| s.eq_text("json")) => Format::Json,
            Some(v) if v.as_str().is_some_and(|s| s.eq_text("slack")) => Format::Slack,
            Some(_) => {
                errors.push(("format".into(), "expected \"json\" or \"slack\"".into()));
                Format::Json
            }
        };
        let mut signing = Vec::new();
        let mut secret_name = None;
        match item.get("signingSecret") {
            None => {}
            Some(Value::String(s)) => {
                let name = s.text().into_owned();
                secret_name = Some(name.clone());
                match secret(&name) {
                    None => errors.push(("signingSecret".into(), format!("secret {name} is not set; `wrangler secret put {name}`"))),
                    Some(value) => match crate::delivery::sign::key_from_secret(&value) {
                        Ok(_) => signing.push(SigningSecret { secret: value, until: None }),
                        Err(message) => errors.push(("signingSecret".into(), format!("secret {name}: {message}"))),
                    },
                }
            }
            Some(v) => errors.push(("signingSecret".into(), format!("expected a secret's name, found {}", v.describe()))),
        }
        let mut kinds = Vec::new();
        match item.get("kinds") {
            None => {}
            Some(Value::Array(list)) if !list.is_empty() => {
                for (j, v) in list.iter().enumerate() {
                    match v.as_str().and_then(|s| Kind::parse(&s.text())) {
                        Some(k) => kinds.push(k),
                        None => errors.push((
                            format!("kinds[{j}]"),
                            format!("expected one of {}", Kind::ALL.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", ")),
                        )),
                    }
                }
            }
            Some(_) => errors.push(("kinds".into(), "expected a non-empty array of alert kinds (or leave it out for all)".into())),
        }
        if let Some(n) = &name {
            if targets.iter().any(|t| t.destination.name == format!("@{n}")) {
                errors.push(("name".into(), format!("{} is used by an earlier alert target", crate::escape::quoted(n))));
            }
        }
        if errors.is_empty() {
            let destination = Destination {
                name: format!("@{}", name.unwrap_or_default()),
                url: url.unwrap_or_default(),
                types: vec![ALERT_TYPE.to_owned()],
                token: TokenMode::Keep,
                signing,
                org_ids: Vec::new(),
                rate_per_second: None,
                source: Source::Declared,
                incarnation: None,
                ordered: false,
                listen: false,
            };
            targets.push(Target { destination, secret_name, format, kinds });
        } else {
            problems.extend(errors.into_iter().map(|(field, message)| Problem::blocking(at(&field), message)));
        }
    }
    if problems.is_empty() {
        Ok(targets)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::tests::settings;

    #[test]
    fn targets_are_read_with_every_problem_named() {
        let s = settings();
        assert_eq!(s.targets.iter().map(|t| t.destination.name.as_str()).collect::<Vec<_>>(), ["@ops", "@pager"]);
        assert!(s.targets[1].destination.signed());
        let cases: &[(&str, &str)] = &[
            ("{}", "ALERTS: expected a JSON array"),
            (r#"[{"url":"https://a"}]"#, "ALERTS[0].name: missing"),
            (r#"[{"name":"a","url":"http://a.example"}]"#, "ALERTS[0].url: must be https"),
            (r#"[{"name":"a","url":"https://a","format":"teams"}]"#, "ALERTS[0].format: expected \"json\" or \"slack\""),
            (r#"[{"name":"a","url":"https://a","kinds":["down"]}]"#, "ALERTS[0].kinds[0]: expected one of tripped"),
            (r#"[{"name":"a","url":"https://a","signingSecret":"NOPE"}]"#, "ALERTS[0].signingSecret: secret NOPE is not set"),
            (r#"[{"name":"a","url":"https://a"},{"name":"a","url":"https://b"}]"#, "ALERTS[1].name: \"a\" is used by an earlier alert target"),
            (r#"[{"name":"a","url":"https://a","colour":1}]"#, "ALERTS[0].colour: unknown field"),
        ];
        for (text, expected) in cases {
            let problems = parse(Some(text), &|_| None, crate::delivery::destination::parse_url).unwrap_err();
            let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
            assert!(rendered.iter().any(|p| p.starts_with(expected)), "{text}: {rendered:?}");
        }
        assert_eq!(parse(None, &|_| None, crate::delivery::destination::parse_url).unwrap().len(), 0);
    }
}
