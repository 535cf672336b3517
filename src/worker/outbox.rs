//! The outbox: one Durable Object per deduplication scope (one conversation,
//! or one non-conversation event) where the webhook hands its deliveries off.
//!
//! `/accept` stores a hand-off in one synchronous step per delivery: a
//! delivery (event, destination) already accepted within the deduplication
//! window is dropped, any other is remembered and kept, body and all, until
//! its destination's delivery log has it. The object is strongly consistent
//! and never awaits between the check and the write, so two copies of a
//! webhook racing each other cannot both get the same delivery in. Once
//! `/accept` answers 200 the deliveries are durable, and the webhook answers
//! Drift 200 whatever happens to the queue afterwards.
//!
//! Its alarm forwards what it holds to the destinations' delivery logs
//! ([`super::destination`]), retrying with backoff while one is unreachable,
//! and forgets each remembered delivery when the window has passed. An
//! outbox with nothing left holds no rows and no alarm.

use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use super::bindings::{self, Instance};
use crate::delivery::handoff::HandOff;
use crate::json;

/// At most this much event text goes to a destination in one call.
const FORWARD_BYTES: usize = 1 << 20;
/// At most this many deliveries are forwarded by one alarm; more wait for
/// the next, which follows at once (an alarm must never run out of time).
const FORWARD_ROWS: i64 = 500;

#[durable_object]
pub struct Outbox {
    state: State,
    env: Env,
    /// The alarm as last set by this instance (`Some(None)`: none), so
    /// that most requests need not read it from storage.
    alarm: std::cell::Cell<Option<Option<i64>>>,
}

#[derive(Deserialize)]
struct Pending {
    id: String,
    destination: String,
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    scope: String,
    at: f64,
    body: String,
    tries: f64,
}

#[derive(Deserialize)]
struct Count {
    n: f64,
}

#[derive(Deserialize)]
struct Due {
    due: Option<f64>,
}

impl DurableObject for Outbox {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        for ddl in [
            // Deliveries accepted within the window, by id (`<event>.<destination>`).
            "CREATE TABLE IF NOT EXISTS seen (id TEXT PRIMARY KEY, at INTEGER NOT NULL)",
            // Bodies waiting to be forwarded, once per event.
            "CREATE TABLE IF NOT EXISTS pending_events (event_id TEXT PRIMARY KEY, type TEXT NOT NULL, scope TEXT NOT NULL, \
             at INTEGER NOT NULL, body TEXT NOT NULL)",
            // Deliveries waiting to be forwarded.
            "CREATE TABLE IF NOT EXISTS pending (id TEXT PRIMARY KEY, destination TEXT NOT NULL, event_id TEXT NOT NULL, \
             tries INTEGER NOT NULL DEFAULT 0, retry_at INTEGER NOT NULL DEFAULT 0)",
        ] {
            if let Err(e) = sql.exec(ddl, None) {
                worker::console_error!("outbox: cannot create its tables: {e}");
            }
        }
        Outbox { state, env, alarm: std::cell::Cell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        let body = req.text().await?;
        let now = super::now_ms();
        let reply = match path.as_str() {
            "/accept" => self.accept(&body, now).await,
            "/stats" if bindings::switch(&self.env, bindings::TEST_ROUTES) => self.stats().await,
            _ => return Response::error("unknown outbox operation", 404),
        };
        match reply {
            Ok(text) => Response::ok(text),
            Err(e) => Response::error(format!("outbox {path}: {e}"), 500),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        // The alarm that fired is gone; `run` sets the next one.
        self.alarm.set(Some(None));
        self.run(super::now_ms()).await?;
        Response::ok("ok")
    }
}

fn fail(message: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(message.to_string())
}

impl Outbox {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    fn count(&self, query: &str) -> Result<i64> {
        let rows: Vec<Count> = self.sql().exec(query, None)?.to_array()?;
        Ok(rows.first().map_or(0, |r| r.n as i64))
    }

    /// Stores a hand-off. Answers `{"accepted":n,"duplicates":m}`.
    async fn accept(&self, body: &str, now: i64) -> Result<String> {
        if bindings::switch(&self.env, bindings::TEST_OUTBOX_FAILS) {
            return Err(fail("storage refused the hand-off (DRIFT_BRIDGE_TEST_OUTBOX_FAILS)"));
        }
        let handoff = HandOff::decode(body).map_err(fail)?;
        let window = super::config(&self.env).dedup_window_ms();
        let sql = self.sql();
        let (mut accepted, mut duplicates) = (0, 0);
        // Every statement below is synchronous: no other request runs
        // between a check and its write.
        for event in &handoff.events {
            let mut body_stored = false;
            for destination in &event.to {
                let id = event.delivery_id(destination);
                let seen: Vec<Count> =
                    sql.exec("SELECT at AS n FROM seen WHERE id = ?", vec![id.clone().into()])?.to_array()?;
                if seen.first().is_some_and(|s| s.n as i64 > now - window) {
                    duplicates += 1;
                    continue;
                }
                sql.exec("INSERT OR REPLACE INTO seen (id, at) VALUES (?, ?)", vec![id.clone().into(), now.into()])?;
                if !body_stored {
                    sql.exec(
                        "INSERT OR IGNORE INTO pending_events (event_id, type, scope, at, body) VALUES (?, ?, ?, ?, ?)",
                        vec![
                            event.id.clone().into(),
                            event.event_type.clone().into(),
                            handoff.scope.clone().into(),
                            handoff.at_ms.into(),
                            event.body.clone().into(),
                        ],
                    )?;
                    body_stored = true;
                }
                sql.exec(
                    "INSERT OR REPLACE INTO pending (id, destination, event_id, tries, retry_at) VALUES (?, ?, ?, 0, 0)",
                    vec![id.into(), destination.clone().into(), event.id.clone().into()],
                )?;
                accepted += 1;
            }
        }
        if accepted > 0 {
            // Forward at once.
            self.schedule(now).await?;
        }
        Ok(format!("{{\"accepted\":{accepted},\"duplicates\":{duplicates}}}"))
    }

    /// The alarm: forwards what is due, forgets what left the window, and
    /// sets the next alarm (or none).
    async fn run(&self, now: i64) -> Result<()> {
        let config = super::config(&self.env);
        let window = config.dedup_window_ms();
        let due: Vec<Pending> = self
            .sql()
            .exec(
                "SELECT p.id, p.destination, p.event_id, e.type, e.scope, e.at, e.body, p.tries FROM pending p \
                 JOIN pending_events e ON e.event_id = p.event_id WHERE p.retry_at <= ? ORDER BY p.rowid LIMIT ?",
                vec![now.into(), FORWARD_ROWS.into()],
            )?
            .to_array()?;
        let more = due.len() as i64 == FORWARD_ROWS;
        // Per destination, in order of acceptance.
        let mut destinations: Vec<&str> = Vec::new();
        for p in &due {
            if !destinations.contains(&p.destination.as_str()) {
                destinations.push(&p.destination);
            }
        }
        for destination in destinations {
            let rows: Vec<&Pending> = due.iter().filter(|p| p.destination == destination).collect();
            for chunk in chunks(&rows) {
                let result = bindings::call(&self.env, Instance::Destination(destination), "/add", add_body(destination, chunk)).await;
                let ids: Vec<worker::SqlStorageValue> = chunk.iter().map(|p| p.id.clone().into()).collect();
                match result {
                    Ok(_) => {
                        for id in ids {
                            self.sql().exec("DELETE FROM pending WHERE id = ?", vec![id])?;
                        }
                    }
                    Err(e) => {
                        let tries = chunk.iter().map(|p| p.tries as i64).max().unwrap_or(0) + 1;
                        // 2 s, 4 s, 8 s … up to 5 minutes.
                        let retry_at = now + (1000i64 << tries.min(8)).min(300_000);
                        worker::console_error!(
                            "outbox: forwarding {} deliveries to {destination} failed (try {tries}): {e}",
                            chunk.len()
                        );
                        for id in ids {
                            self.sql().exec(
                                "UPDATE pending SET tries = ?, retry_at = ? WHERE id = ?",
                                vec![tries.into(), retry_at.into(), id],
                            )?;
                        }
                    }
                }
            }
        }
        let sql = self.sql();
        sql.exec("DELETE FROM pending_events WHERE event_id NOT IN (SELECT event_id FROM pending)", None)?;
        sql.exec("DELETE FROM seen WHERE at <= ?", vec![(now - window).into()])?;
        let next: Vec<Due> = sql
            .exec(
                "SELECT MIN(due) AS due FROM (SELECT MIN(retry_at) AS due FROM pending UNION ALL SELECT MIN(at) + ? AS due FROM seen)",
                vec![(window + 1).into()],
            )?
            .to_array()?;
        match next.first().and_then(|d| d.due) {
            _ if more => self.set_alarm(now).await,
            Some(due) => self.set_alarm((due as i64).max(now + 1)).await,
            None => self.delete_alarm().await,
        }
    }

    /// Makes sure the alarm fires no later than `when`.
    async fn schedule(&self, when: i64) -> Result<()> {
        let storage = self.state.storage();
        let current = match self.alarm.get() {
            Some(known) => known,
            None => storage.get_alarm().await?,
        };
        match current {
            Some(current) if current <= when => Ok(()),
            _ => self.set_alarm(when).await,
        }
    }

    async fn set_alarm(&self, when: i64) -> Result<()> {
        self.state.storage().set_alarm(at(when)).await?;
        self.alarm.set(Some(Some(when)));
        Ok(())
    }

    async fn delete_alarm(&self) -> Result<()> {
        self.state.storage().delete_alarm().await?;
        self.alarm.set(Some(None));
        Ok(())
    }

    /// Row counts and the alarm, for tests (`DRIFT_BRIDGE_TEST_ROUTES=1`).
    async fn stats(&self) -> Result<String> {
        let alarm = self.state.storage().get_alarm().await?;
        Ok(format!(
            "{{\"seen\":{},\"pending\":{},\"pendingEvents\":{},\"alarm\":{}}}",
            self.count("SELECT COUNT(*) AS n FROM seen")?,
            self.count("SELECT COUNT(*) AS n FROM pending")?,
            self.count("SELECT COUNT(*) AS n FROM pending_events")?,
            alarm.map_or_else(|| "null".to_owned(), |a| a.to_string()),
        ))
    }
}

/// Splits one destination's rows into calls of at most [`FORWARD_BYTES`] of
/// bodies (a bigger body goes alone).
fn chunks<'a, 'p>(rows: &'a [&'p Pending]) -> Vec<&'a [&'p Pending]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, p) in rows.iter().enumerate() {
        if i > start && bytes + p.body.len() > FORWARD_BYTES {
            out.push(&rows[start..i]);
            start = i;
            bytes = 0;
        }
        bytes += p.body.len();
    }
    if start < rows.len() {
        out.push(&rows[start..]);
    }
    out
}

/// `{"destination":…,"deliveries":[{"id","event","type","scope","at","body"},…]}`
fn add_body(destination: &str, rows: &[&Pending]) -> String {
    let mut out = String::with_capacity(64 + rows.iter().map(|p| p.body.len() + 160).sum::<usize>());
    out.push_str("{\"destination\":");
    json::write_str_escaped(&mut out, destination);
    out.push_str(",\"deliveries\":[");
    for (i, p) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"id\":");
        json::write_str_escaped(&mut out, &p.id);
        out.push_str(",\"event\":");
        json::write_str_escaped(&mut out, &p.event_id);
        out.push_str(",\"type\":");
        json::write_str_escaped(&mut out, &p.event_type);
        out.push_str(",\"scope\":");
        json::write_str_escaped(&mut out, &p.scope);
        out.push_str(&format!(",\"at\":{},\"body\":", p.at as i64));
        json::write_str_escaped(&mut out, &p.body);
        out.push('}');
    }
    out.push_str("]}");
    out
}

/// An absolute alarm time (a bare i64 would be read as an offset).
pub(super) fn at(ms: i64) -> worker::ScheduledTime {
    worker::ScheduledTime::new(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64)))
}
