//! What a delivery log keeps of its alerts ([`AlertState`]): raised,
//! coalesced per kind, and pending until the targets' logs take them.

use super::alert::{clip, Alert, MAX_DETAIL_CHARS};
use super::{is_alert_log, Alerting, Kind, MAX_PENDING, RETRY_MAX_MS, RETRY_MS};
use crate::delivery::wire::{Fields, MessageError};
use crate::json::{Value, Writer};

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
    /// Raised, not yet taken by every target's log.
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
    use super::super::slack;
    use super::super::tests::settings;
    use crate::json::{self, Limits};

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
}
