//! Alerts: the operator is told when an app trips or recovers, is paused
//! or resumed, when a delivery becomes a dead letter, when a backlog passes
//! `ALERT_BACKLOG` and when an app's delivery log nears `MAX_LOG_BYTES`.
//!
//! `ALERTS` names where they go, a JSON array such as
//!
//! ```json
//! [{"name": "ops", "url": "https://hooks.slack.com/services/…", "format": "slack"},
//!  {"name": "pager", "url": "https://alerts.example.com/drift-bridge",
//!   "signingSecret": "ALERT_SIGNING_SECRET", "kinds": ["tripped", "dead-letter"]}]
//! ```
//!
//! **Delivered like deliveries.** Each target is a destination of its own,
//! named `@<name>`, with its own delivery log, breaker and retries; an
//! alert is handed to an outbox and delivered, signed with Standard
//! Webhooks, exactly as an event is. So an alert about an app never depends
//! on that app, and is never lost: the app's delivery log keeps it in its
//! state until an outbox has it. Alert logs raise no alerts of their own.
//!
//! **Coalesced.** The first alert of a kind about an app goes at once; more
//! of that kind within `ALERT_COALESCE_SECONDS` (300) are counted, and go as
//! one alert when that time is over ("and 41 more since …"). An outage of
//! hours sends a handful of alerts, not thousands. Thresholds (backlog, a
//! nearly full log) alert once when passed, and again only after falling
//! well below (half the backlog; 70 % of the log).

use super::destination::{check_url, read_name, Destination, SigningSecret, Source, TokenMode, UrlParser};
use super::wire::{Fields, MessageError};
use crate::json::{self, Limits, Value, Writer};
use crate::problem::Problem;

pub const ALERTS: &str = "ALERTS";
/// The event type of an alert, in the delivery logs of its targets.
pub const ALERT_TYPE: &str = "drift_bridge.alert";
/// At most this many alerts wait in one log's state to be handed off.
pub const MAX_PENDING: usize = 32;
/// A nearly full log: this share of `MAX_LOG_BYTES`, in percent; it alerts
/// again only after falling below [`FULL_REARM_PERCENT`].
pub const FULL_PERCENT: i64 = 80;
pub const FULL_REARM_PERCENT: i64 = 70;
/// The wait before handing off alerts again, after a failed try: doubles
/// from this, up to [`RETRY_MAX_MS`].
pub const RETRY_MS: i64 = 5_000;
pub const RETRY_MAX_MS: i64 = 300_000;

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
                    Some(value) => match super::sign::key_from_secret(&value) {
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

/// One alert about an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    /// 16 hex digits, from the app, the kind and the time: its `webhook-id`,
    /// the same however often it is handed off.
    pub id: String,
    pub kind: Kind,
    pub at: i64,
    pub destination: String,
    /// The app's state when it was raised (`active`, `tripped`, `paused`).
    pub state: String,
    /// What happened, in the bridge's own words.
    pub summary: String,
    /// What the app said (its last error: the HTTP status and an excerpt of
    /// its answer), kept apart from the summary: words that came from the
    /// app are shown as a quote, escaped, never as the bridge's own.
    pub detail: String,
    /// How many events it stands for (more than 1: coalesced).
    pub count: u32,
}

impl Alert {
    pub fn new(kind: Kind, at: i64, destination: &str, state: &str, summary: String, count: u32) -> Alert {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(b"alert\0");
        h.update(destination.as_bytes());
        h.update(b"\0");
        h.update(kind.as_str().as_bytes());
        h.update(b"\0");
        h.update(at.to_string().as_bytes());
        let id = crate::id::EventId::from_digest(&h.finalize()).to_hex();
        Alert { id, kind, at, destination: destination.to_owned(), state: state.to_owned(), summary, detail: String::new(), count }
    }

    /// With what the app said ([`Alert::detail`]), at most
    /// [`MAX_DETAIL_CHARS`] of it.
    pub fn with_detail(mut self, detail: &str) -> Alert {
        self.detail = clip(detail, MAX_DETAIL_CHARS);
        self
    }

    /// Its JSON body: what every target stores and a `json` target gets
    /// (a `slack` one gets [`slack`] of it).
    pub fn render(&self, settings: &Alerting) -> String {
        Writer::object()
            .str("type", ALERT_TYPE)
            .str("id", &self.id)
            .str("kind", self.kind.as_str())
            .str("destination", &self.destination)
            .str("state", &self.state)
            .int("at", self.at)
            .str("summary", &self.summary)
            .opt_str("detail", (!self.detail.is_empty()).then_some(self.detail.as_str()))
            .int("count", i64::from(self.count))
            .str("link", &settings.link(&self.destination))
            .finish()
    }

    fn encode(&self, w: &mut Writer) {
        w.str("id", &self.id)
            .str("kind", self.kind.as_str())
            .int("at", self.at)
            .str("destination", &self.destination)
            .str("state", &self.state)
            .str("summary", &self.summary)
            .opt_str("detail", (!self.detail.is_empty()).then_some(self.detail.as_str()))
            .int("count", i64::from(self.count));
    }

    fn decode(f: &Fields<'_, '_>) -> Result<Alert, MessageError> {
        let kind = Kind::parse(&f.str("kind")?).ok_or_else(|| f.error("kind", "unknown alert kind"))?;
        Ok(Alert {
            id: f.str("id")?,
            kind,
            at: f.int("at")?,
            destination: f.str("destination")?,
            state: f.str("state")?,
            summary: f.str("summary")?,
            detail: f.opt_str("detail")?.unwrap_or_default(),
            count: u32::try_from(f.int("count")?).unwrap_or(1),
        })
    }
}

/// The most of an app's words an alert quotes.
pub const MAX_DETAIL_CHARS: usize = 300;

fn clip(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

/// Text for Slack's `mrkdwn`, as its documentation asks: `&`, `<` and `>`
/// escaped, so that nothing in it becomes a mention (`<!channel>`), a link
/// (`<url|text>`) or a user reference.
pub fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// The body a `slack` target gets for an alert's JSON body: `{"text": …}`,
/// what Slack's incoming webhooks take (Mattermost's and Discord's `/slack`
/// too). Made as the alert is sent, so that the webhook's module does not
/// carry it.
pub fn slack(alert_json: &str) -> String {
    let value = json::parse(alert_json, &Limits::INTERNAL).unwrap_or(Value::Null);
    let text = |name: &str| value.get(name).and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
    let (summary, detail, link) = (text("summary"), text("detail"), text("link"));
    let mut out = format!("[drift-bridge] {}", slack_escape(&summary));
    // A link of our own only where its URL cannot end the link early.
    if link.starts_with("http") && !link.contains(|c: char| c == '|' || c == '<' || c == '>' || c.is_whitespace()) {
        out.push_str(&format!(" <{link}|Open the admin page>"));
    } else {
        out.push_str(&format!(" (admin page: {})", slack_escape(&link)));
    }
    if !detail.is_empty() {
        // The app's words, set apart as a quote, a line at a time.
        out.push_str("\nThe app said:");
        for line in detail.lines() {
            out.push_str("\n>");
            out.push_str(&slack_escape(line));
        }
    }
    Writer::object().str("text", &out).finish()
}

/// What an alert is about: its kind, when, which app, the app's state.
#[derive(Clone, Copy, Debug)]
pub struct About<'a> {
    pub kind: Kind,
    pub now: i64,
    pub destination: &'a str,
    pub state: &'a str,
}

/// One kind's coalescing: when its last alert went, and what came since.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Coalesce {
    pub sent: i64,
    pub more: u32,
    /// The summary of the latest event not yet sent.
    pub last: String,
    /// What the app said in it.
    pub last_detail: String,
}

/// What a delivery log keeps of its alerts, in its state row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AlertState {
    pub kinds: Vec<(Kind, Coalesce)>,
    /// Raised, not yet taken by an outbox.
    pub pending: Vec<Alert>,
    /// When to hand the pending ones off again, and how many tries failed.
    pub retry_at: Option<i64>,
    pub tries: u32,
    /// A threshold alert went and it has not fallen back below since.
    pub backlog_raised: bool,
    pub full_raised: bool,
}

impl AlertState {
    fn coalesce(&mut self, kind: Kind) -> &mut Coalesce {
        let i = match self.kinds.iter().position(|(k, _)| *k == kind) {
            Some(i) => i,
            None => {
                self.kinds.push((kind, Coalesce::default()));
                self.kinds.len() - 1
            }
        };
        &mut self.kinds[i].1
    }

    /// An event `about` an app: an alert now, or counted for the coalesced
    /// one. `summary` in the bridge's words, `detail` what the app said.
    pub fn raise(&mut self, settings: &Alerting, about: About<'_>, summary: String, detail: &str) {
        let About { kind, now, destination, state } = about;
        if settings.targets.is_empty() || is_alert_log(destination) || !settings.targets.iter().any(|t| t.wants(kind)) {
            return;
        }
        let window = settings.coalesce_ms;
        let c = self.coalesce(kind);
        if c.sent > 0 && now < c.sent + window {
            c.more += 1;
            c.last = summary;
            c.last_detail = clip(detail, MAX_DETAIL_CHARS);
            return;
        }
        c.sent = now;
        c.more = 0;
        c.last.clear();
        c.last_detail.clear();
        self.push(Alert::new(kind, now, destination, state, summary, 1).with_detail(detail));
    }

    fn push(&mut self, alert: Alert) {
        if self.pending.len() >= MAX_PENDING {
            // The oldest goes: what the operator needs is what is happening now.
            self.pending.remove(0);
        }
        self.pending.push(alert);
        self.retry_at = None;
    }

    /// The coalesced alerts whose window is over at `now`, raised.
    pub fn flush(&mut self, settings: &Alerting, now: i64, destination: &str, state: &str) {
        let window = settings.coalesce_ms;
        let mut due = Vec::new();
        for (kind, c) in &mut self.kinds {
            if c.more > 0 && now >= c.sent + window {
                let since = c.sent;
                let summary = format!("{} (and {} more like it since {} ms)", c.last, c.more.saturating_sub(1), since);
                let summary = if c.more == 1 { c.last.clone() } else { summary };
                due.push(Alert::new(*kind, now, destination, state, summary, c.more).with_detail(&c.last_detail));
                c.sent = now;
                c.more = 0;
                c.last.clear();
                c.last_detail.clear();
            }
        }
        for alert in due {
            self.push(alert);
        }
    }

    /// When something must happen next: a coalesced alert's window ends,
    /// or pending ones are handed off again.
    pub fn due(&self, settings: &Alerting) -> Option<i64> {
        let windows = self.kinds.iter().filter(|(_, c)| c.more > 0).map(|(_, c)| c.sent + settings.coalesce_ms);
        let retry = if self.pending.is_empty() { None } else { Some(self.retry_at.unwrap_or(0)) };
        windows.chain(retry).min()
    }

    /// The hand-off of the pending alerts: for each target that wants any
    /// of them, its log's key and those alerts (id and JSON body); empty
    /// when there is nothing to hand off now.
    pub fn handoff(&self, settings: &Alerting, now: i64) -> Vec<(String, Vec<(String, String)>)> {
        if self.pending.is_empty() || self.retry_at.is_some_and(|r| r > now) {
            return Vec::new();
        }
        let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
        for target in &settings.targets {
            let alerts: Vec<(String, String)> =
                self.pending.iter().filter(|a| target.wants(a.kind)).map(|a| (a.id.clone(), a.render(settings))).collect();
            if !alerts.is_empty() {
                out.push((target.destination.name.clone(), alerts));
            }
        }
        out
    }

    /// The hand-off of these alerts (their ids) was taken: forget them.
    pub fn taken(&mut self, ids: &[&str]) {
        self.pending.retain(|a| !ids.contains(&a.id.as_str()));
        self.tries = 0;
        self.retry_at = None;
    }

    /// The hand-off failed: try again later.
    pub fn failed(&mut self, now: i64) {
        self.tries = self.tries.saturating_add(1);
        let wait = RETRY_MS.saturating_mul(1 << self.tries.min(10).saturating_sub(1)).min(RETRY_MAX_MS);
        self.retry_at = Some(now + wait);
    }

    pub fn is_empty(&self) -> bool {
        *self == AlertState::default()
    }

    pub fn encode(&self) -> String {
        let mut w = Writer::object();
        let kinds: Vec<String> = self
            .kinds
            .iter()
            .map(|(k, c)| Writer::object().str("kind", k.as_str()).int("sent", c.sent).int("more", i64::from(c.more)).str("last", &c.last).opt_str("lastDetail", (!c.last_detail.is_empty()).then_some(c.last_detail.as_str())).finish())
            .collect();
        w.raw("kinds", &format!("[{}]", kinds.join(",")));
        let pending: Vec<String> = self
            .pending
            .iter()
            .map(|a| {
                let mut w = Writer::object();
                a.encode(&mut w);
                w.finish()
            })
            .collect();
        w.raw("pending", &format!("[{}]", pending.join(",")));
        w.opt_int("retryAt", self.retry_at).int("tries", i64::from(self.tries)).bool("backlog", self.backlog_raised).bool("full", self.full_raised);
        w.finish()
    }

    pub fn decode(value: &Value<'_>) -> Result<AlertState, MessageError> {
        let f = Fields::parse("alerts", value)?;
        let kinds = f.each_opt("kinds", |k| {
            let kind = Kind::parse(&k.str("kind")?).ok_or_else(|| k.error("kind", "unknown alert kind"))?;
            Ok((kind, Coalesce { sent: k.int("sent")?, more: u32::try_from(k.int("more")?).unwrap_or(0), last: k.opt_str("last")?.unwrap_or_default(), last_detail: k.opt_str("lastDetail")?.unwrap_or_default() }))
        })?;
        Ok(AlertState {
            kinds,
            pending: f.each_opt("pending", Alert::decode)?,
            retry_at: f.opt_int("retryAt")?,
            tries: u32::try_from(f.opt_int("tries")?.unwrap_or(0)).unwrap_or(0),
            backlog_raised: f.bool("backlog")?,
            full_raised: f.bool("full")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Alerting {
        let targets = parse(
            Some(r#"[{"name":"ops","url":"https://hooks.example/ops","format":"slack"},{"name":"pager","url":"https://pager.example/x","signingSecret":"S","kinds":["tripped","dead-letter"]}]"#),
            &|n| (n == "S").then(|| "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
            super::super::destination::parse_url,
        )
        .unwrap();
        Alerting { targets, public_url: Some("https://bridge.example".into()), ..Alerting::default() }
    }

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
            let problems = parse(Some(text), &|_| None, super::super::destination::parse_url).unwrap_err();
            let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
            assert!(rendered.iter().any(|p| p.starts_with(expected)), "{text}: {rendered:?}");
        }
        assert_eq!(parse(None, &|_| None, super::super::destination::parse_url).unwrap().len(), 0);
    }

    #[test]
    fn the_first_alert_goes_at_once_and_the_rest_of_the_window_as_one() {
        let s = settings();
        let mut a = AlertState::default();
        let t0 = 1_000_000;
        a.raise(&s, About { kind: Kind::Tripped, now: t0, destination: "crm", state: "tripped" }, "crm tripped".into(), "");
        assert_eq!(a.pending.len(), 1);
        for i in 1..=40 {
            a.raise(&s, About { kind: Kind::Tripped, now: t0 + i * 1000, destination: "crm", state: "tripped" }, format!("crm tripped #{i}"), "");
        }
        assert_eq!(a.pending.len(), 1, "coalesced");
        assert_eq!(a.due(&s), Some(0), "the pending one goes now");
        a.taken(&[a.pending[0].id.clone().as_str()]);
        assert_eq!(a.due(&s), Some(t0 + s.coalesce_ms), "and the coalesced one when the window ends");
        a.flush(&s, t0 + s.coalesce_ms - 1, "crm", "tripped");
        assert!(a.pending.is_empty());
        a.flush(&s, t0 + s.coalesce_ms, "crm", "tripped");
        assert_eq!(a.pending.len(), 1);
        assert_eq!(a.pending[0].count, 40);
        assert!(a.pending[0].summary.contains("crm tripped #40 (and 39 more like it since"), "{}", a.pending[0].summary);
        // Another kind is its own.
        a.raise(&s, About { kind: Kind::Recovered, now: t0 + 1, destination: "crm", state: "active" }, "crm answers".into(), "");
        assert_eq!(a.pending.len(), 2);
        // Nobody wants backlog alerts but ops; alert logs and a bridge without targets raise none.
        a.raise(&s, About { kind: Kind::Tripped, now: t0, destination: "@ops", state: "tripped" }, "x".into(), "");
        a.raise(&Alerting::default(), About { kind: Kind::Tripped, now: t0, destination: "other", state: "tripped" }, "x".into(), "");
        assert_eq!(a.pending.len(), 2);
    }

    #[test]
    fn an_alert_is_handed_off_once_per_format_with_a_stable_id() {
        let s = settings();
        let mut a = AlertState::default();
        a.raise(&s, About { kind: Kind::Tripped, now: 5, destination: "crm", state: "tripped" }, "crm tripped: its last 5 attempts failed".into(), "");
        a.raise(&s, About { kind: Kind::Backlog, now: 5, destination: "crm", state: "tripped" }, "crm has 1001 deliveries waiting".into(), "");
        let handed = a.handoff(&s, 10);
        let (tripped, backlog) = (a.pending[0].id.clone(), a.pending[1].id.clone());
        let got: Vec<(&str, Vec<&str>)> = handed.iter().map(|(t, alerts)| (t.as_str(), alerts.iter().map(|(id, _)| id.as_str()).collect())).collect();
        assert_eq!(got, [("@ops", vec![tripped.as_str(), backlog.as_str()]), ("@pager", vec![tripped.as_str()])]);
        let body = &handed[0].1[0].1;
        assert_eq!(
            *body,
            format!(r#"{{"type":"drift_bridge.alert","id":"{tripped}","kind":"tripped","destination":"crm","state":"tripped","at":5,"summary":"crm tripped: its last 5 attempts failed","count":1,"link":"https://bridge.example/admin.html#destination=crm"}}"#)
        );
        assert_eq!(slack(body), r#"{"text":"[drift-bridge] crm tripped: its last 5 attempts failed <https://bridge.example/admin.html#destination=crm|Open the admin page>"}"#);
        assert_eq!(Alert::new(Kind::Tripped, 5, "crm", "x", "y".into(), 1).id, tripped, "the same alert, the same id");
        // A failed hand-off waits, doubling; a taken one is forgotten.
        a.failed(10);
        assert!(a.handoff(&s, 11).is_empty());
        assert_eq!(a.retry_at, Some(10 + RETRY_MS));
        a.failed(20);
        assert_eq!(a.retry_at, Some(20 + 2 * RETRY_MS));
        let ids: Vec<String> = a.pending.iter().map(|p| p.id.clone()).collect();
        a.taken(&ids.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(a.pending.is_empty());
        // It survives the state row.
        a.raise(&s, About { kind: Kind::DeadLetter, now: 99, destination: "crm", state: "active" }, "a dead letter".into(), "");
        let text = a.encode();
        let value = json::parse(&text, &Limits::INTERNAL).unwrap();
        assert_eq!(AlertState::decode(&value).unwrap(), a);
    }

    #[test]
    fn an_apps_words_reach_slack_escaped_and_set_apart_as_a_quote() {
        let s = settings();
        let mut a = AlertState::default();
        let said = "the app answered 500: <!channel> urgent <https://evil.example/login|Open the admin page> & more\nsecond line";
        a.raise(&s, About { kind: Kind::Tripped, now: 5, destination: "crm", state: "tripped" }, "crm tripped: its last 5 attempts failed".into(), said);
        let body = a.pending[0].render(&s);
        let text = json::parse(&slack(&body), &Limits::INTERNAL).unwrap().get("text").unwrap().as_str().unwrap().text().into_owned();
        assert_eq!(
            text,
            "[drift-bridge] crm tripped: its last 5 attempts failed <https://bridge.example/admin.html#destination=crm|Open the admin page>\n\
             The app said:\n>the app answered 500: &lt;!channel&gt; urgent &lt;https://evil.example/login|Open the admin page&gt; &amp; more\n>second line"
        );
        assert!(!text.contains("<!channel>") && !text.contains("<https://evil"), "{text}");
        // A JSON target gets the app's words in their own field.
        let value = json::parse(&body, &Limits::INTERNAL).unwrap();
        assert_eq!(value.get("summary").unwrap().as_str().unwrap().text(), "crm tripped: its last 5 attempts failed");
        assert!(value.get("detail").unwrap().as_str().unwrap().text().starts_with("the app answered 500: <!channel>"));
        // A PUBLIC_URL that would end the link early is not made a link.
        let odd = Alerting { public_url: Some("https://x.example/a|b>".into()), ..settings() };
        let text = slack(&a.pending[0].render(&odd));
        assert!(text.contains("(admin page: https://x.example/a|b&gt;/admin.html"), "{text}");
        // Long answers are clipped.
        let mut b = AlertState::default();
        b.raise(&s, About { kind: Kind::Tripped, now: 5, destination: "crm", state: "tripped" }, "x".into(), &"y".repeat(1000));
        assert_eq!(b.pending[0].detail.chars().count(), MAX_DETAIL_CHARS + 1);
    }
}
