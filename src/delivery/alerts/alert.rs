//! One alert: its JSON body, how it is kept in a log's state, and the body
//! a `slack` target gets instead.

use super::{Alerting, Kind, ALERT_TYPE};
use crate::delivery::wire::{Fields, MessageError};
use crate::json::{self, Limits, Value, Writer};

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

    pub(super) fn encode(&self, w: &mut Writer) {
        w.str("id", &self.id)
            .str("kind", self.kind.as_str())
            .int("at", self.at)
            .str("destination", &self.destination)
            .str("state", &self.state)
            .str("summary", &self.summary)
            .opt_str("detail", (!self.detail.is_empty()).then_some(self.detail.as_str()))
            .int("count", i64::from(self.count));
    }

    pub(super) fn decode(f: &Fields<'_, '_>) -> Result<Alert, MessageError> {
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

pub(super) fn clip(text: &str, max: usize) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use super::super::tests::settings;
    use super::super::{About, AlertState};

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
