//! The outbox: a Durable Object per deduplication scope (one conversation,
//! or one non-conversation event) that knows every delivery handed off in the
//! last 24 hours, and one more instance, `dead-letters`, that keeps the
//! deliveries that gave up.
//!
//! It is strongly consistent, so two copies of a webhook racing each other
//! cannot both claim the same (event, destination). It is also the safety net
//! under the queue: a delivery that shows no progress for the recovery grace
//! period is put on the queue again by an alarm, so a lost queue message (or a
//! restart of a local queue) never loses an event.
//!
//! Delivery states: `claimed` (hand-off in progress) → `queued` → `sending`
//! ↔ `retrying` → `delivered` | `gone` (the app answered 410) | `failed`
//! (dead-lettered). A `claimed` row older than [`CLAIM_LEASE_MS`] belongs to a
//! hand-off that died and may be claimed again.

use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::delivery::{Message, DEDUP_WINDOW_MS};
use crate::json::{self, Limits, Value};

/// How long a hand-off may hold a claim before it is considered dead.
pub const CLAIM_LEASE_MS: i64 = 60_000;
/// Name of the instance that keeps dead letters.
pub const DEAD_LETTERS: &str = "dead-letters";

#[durable_object]
pub struct Outbox {
    state: State,
    env: Env,
}

#[derive(Deserialize)]
struct Row {
    status: String,
    created_at: f64,
    updated_at: f64,
    attempts: f64,
    last_error: Option<String>,
}

#[derive(Deserialize)]
struct DueRow {
    message: String,
}

#[derive(Deserialize)]
struct DeadRow {
    id: String,
    status: String,
    message: String,
    reason: String,
    attempts: f64,
    at: f64,
}

impl DurableObject for Outbox {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        for ddl in [
            "CREATE TABLE IF NOT EXISTS deliveries (id TEXT PRIMARY KEY, status TEXT NOT NULL, message TEXT NOT NULL, \
             attempts INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL, \
             due_at INTEGER, last_error TEXT)",
            "CREATE TABLE IF NOT EXISTS dead_letters (id TEXT PRIMARY KEY, status TEXT NOT NULL, message TEXT NOT NULL, \
             reason TEXT NOT NULL, attempts INTEGER NOT NULL, at INTEGER NOT NULL)",
        ] {
            if let Err(e) = sql.exec(ddl, None) {
                worker::console_error!("outbox: cannot create its tables: {e}");
            }
        }
        Outbox { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        let body = req.text().await?;
        let now = super::now_ms();
        let reply = match path.as_str() {
            "/claim" => self.claim(&body, now),
            "/confirm" => self.confirm(&body, now).await,
            "/release" => self.release(&body),
            "/attempt" => self.attempt(&body, now).await,
            "/settle" => self.settle(&body, now).await,
            "/rearm" => self.rearm(&body, now).await,
            "/dead/add" => self.dead_add(&body, now),
            "/dead/list" => self.dead_list(&body),
            "/dead/get" => self.dead_get(&body),
            "/dead/replayed" => self.dead_replayed(&body),
            _ => return Response::error("unknown outbox operation", 404),
        };
        match reply {
            Ok(text) => Response::ok(text),
            Err(e) => Response::error(format!("outbox {path}: {e}"), 500),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.recover(super::now_ms()).await?;
        Response::ok("ok")
    }
}

fn parse(body: &str) -> Result<Value<'_>> {
    json::parse(body, &Limits { max_bytes: usize::MAX, ..Limits::default() }).map_err(|e| worker::Error::RustError(e.to_string()))
}

fn field(value: &Value<'_>, name: &str) -> Result<String> {
    match value.get(name) {
        Some(Value::String(s)) => Ok(s.text().into_owned()),
        _ => Err(worker::Error::RustError(format!("missing {name}"))),
    }
}

fn messages(body: &str) -> Result<Vec<Message>> {
    match parse(body)? {
        Value::Array(items) => items
            .iter()
            .map(|m| Message::from_value(m).map_err(|e| worker::Error::RustError(e.to_string())))
            .collect(),
        _ => Err(worker::Error::RustError("expected an array of messages".into())),
    }
}

/// The strings of a JSON array.
fn ids(value: &Value<'_>) -> Result<Vec<String>> {
    match value {
        Value::Array(items) => Ok(items.iter().filter_map(|v| v.as_str().map(|s| s.text().into_owned())).collect()),
        _ => Err(worker::Error::RustError("expected an array of ids".into())),
    }
}

impl Outbox {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    fn row(&self, id: &str) -> Result<Option<Row>> {
        let rows: Vec<Row> = self
            .sql()
            .exec("SELECT status, created_at, updated_at, attempts, last_error FROM deliveries WHERE id = ?", vec![id.into()])?
            .to_array()?;
        Ok(rows.into_iter().next())
    }

    /// Claims each (event, destination) not handed off in the last 24 hours.
    /// Answers `{"claimed":[…],"duplicates":[…],"busy":[…]}`.
    fn claim(&self, body: &str, now: i64) -> Result<String> {
        let (mut claimed, mut duplicates, mut busy) = (Vec::new(), Vec::new(), Vec::new());
        for message in messages(body)? {
            let id = message.delivery_id();
            let fresh = match self.row(&id)? {
                None => true,
                Some(row) if (row.created_at as i64) <= now - DEDUP_WINDOW_MS => true,
                Some(row) if row.status == "claimed" && (row.updated_at as i64) <= now - CLAIM_LEASE_MS => true,
                Some(row) if row.status == "claimed" => {
                    busy.push(id.clone());
                    false
                }
                Some(_) => {
                    duplicates.push(id.clone());
                    false
                }
            };
            if fresh {
                self.sql().exec(
                    "INSERT OR REPLACE INTO deliveries (id, status, message, attempts, created_at, updated_at, due_at, last_error) \
                     VALUES (?, 'claimed', ?, 0, ?, ?, NULL, NULL)",
                    vec![id.clone().into(), message.encode().into(), now.into(), now.into()],
                )?;
                claimed.push(id);
            }
        }
        Ok(format!(
            "{{\"claimed\":{},\"duplicates\":{},\"busy\":{}}}",
            json::string_array(&claimed),
            json::string_array(&duplicates),
            json::string_array(&busy)
        ))
    }

    /// The hand-off reached the queue: the claims become queued deliveries,
    /// watched by the recovery alarm.
    async fn confirm(&self, body: &str, now: i64) -> Result<String> {
        let value = parse(body)?;
        let grace = value.get("graceMs").and_then(Value::as_integer).map_or(300_000, crate::legacy::integer_ms);
        let due = now + grace;
        let list = value.get("ids").map_or(Ok(Vec::new()), ids)?;
        for id in list {
            self.sql().exec(
                "UPDATE deliveries SET status = 'queued', updated_at = ?, due_at = ? WHERE id = ? AND status = 'claimed'",
                vec![now.into(), due.into(), id.into()],
            )?;
        }
        self.schedule(due).await?;
        Ok("{}".into())
    }

    /// The hand-off failed: forget its claims so that Drift's retry can claim them.
    fn release(&self, body: &str) -> Result<String> {
        for id in ids(&parse(body)?)? {
            self.sql().exec("DELETE FROM deliveries WHERE id = ? AND status = 'claimed'", vec![id.into()])?;
        }
        Ok("{}".into())
    }

    /// The consumer is about to send. Answers `{"go":true,"attempt":n}`, or
    /// `{"go":false,"status":…}` when the delivery is already settled (a
    /// duplicate queue message).
    async fn attempt(&self, body: &str, now: i64) -> Result<String> {
        let value = parse(body)?;
        let message = Message::decode(&field(&value, "message")?).map_err(|e| worker::Error::RustError(e.to_string()))?;
        let busy_ms = value.get("busyMs").and_then(Value::as_integer).map_or(310_000, crate::legacy::integer_ms);
        let id = message.delivery_id();
        let attempts = match self.row(&id)? {
            Some(row) if matches!(row.status.as_str(), "delivered" | "gone" | "failed") => {
                return Ok(format!("{{\"go\":false,\"status\":\"{}\"}}", row.status));
            }
            Some(row) => row.attempts as i64 + 1,
            None => {
                // Replayed or recovered after the row expired: track it again.
                self.sql().exec(
                    "INSERT INTO deliveries (id, status, message, attempts, created_at, updated_at) VALUES (?, 'queued', ?, 0, ?, ?)",
                    vec![id.clone().into(), message.encode().into(), now.into(), now.into()],
                )?;
                1
            }
        };
        let due = now + busy_ms;
        self.sql().exec(
            "UPDATE deliveries SET status = 'sending', attempts = ?, updated_at = ?, due_at = ? WHERE id = ?",
            vec![attempts.into(), now.into(), due.into(), id.into()],
        )?;
        self.schedule(due).await?;
        Ok(format!("{{\"go\":true,\"attempt\":{attempts}}}"))
    }

    /// Records an outcome: `delivered`, `gone`, `failed` (final) or
    /// `retrying` (with `dueMs`, when the recovery alarm should step in if the
    /// queue never brings it back). Answers the row's attempts and last error.
    async fn settle(&self, body: &str, now: i64) -> Result<String> {
        let value = parse(body)?;
        let id = field(&value, "id")?;
        let status = field(&value, "status")?;
        let error = field(&value, "error").ok();
        let due = value.get("dueMs").and_then(Value::as_integer).map(crate::legacy::integer_ms);
        self.sql().exec(
            "UPDATE deliveries SET status = ?, updated_at = ?, due_at = ?, last_error = COALESCE(?, last_error) WHERE id = ?",
            vec![
                status.into(),
                now.into(),
                due.map_or(worker::SqlStorageValue::Null, Into::into),
                error.map_or(worker::SqlStorageValue::Null, Into::into),
                id.clone().into(),
            ],
        )?;
        if let Some(due) = due {
            self.schedule(due).await?;
        }
        let row = self.row(&id)?;
        let mut out = String::from("{\"attempts\":");
        out.push_str(&row.as_ref().map_or(0, |r| r.attempts as i64).to_string());
        out.push_str(",\"lastError\":");
        json::write_str_escaped(&mut out, row.as_ref().and_then(|r| r.last_error.as_deref()).unwrap_or(""));
        out.push('}');
        Ok(out)
    }

    /// A replay: the delivery starts over.
    async fn rearm(&self, body: &str, now: i64) -> Result<String> {
        let value = parse(body)?;
        let message = Message::decode(&field(&value, "message")?).map_err(|e| worker::Error::RustError(e.to_string()))?;
        let grace = value.get("graceMs").and_then(Value::as_integer).map_or(300_000, crate::legacy::integer_ms);
        self.sql().exec(
            "INSERT OR REPLACE INTO deliveries (id, status, message, attempts, created_at, updated_at, due_at, last_error) \
             VALUES (?, 'queued', ?, 0, ?, ?, ?, NULL)",
            vec![message.delivery_id().into(), message.encode().into(), now.into(), now.into(), (now + grace).into()],
        )?;
        self.schedule(now + grace).await?;
        Ok("{}".into())
    }

    /// Puts deliveries that made no progress in time back on the queue.
    async fn recover(&self, now: i64) -> Result<()> {
        let due: Vec<DueRow> = self
            .sql()
            .exec(
                "SELECT message FROM deliveries WHERE status IN ('queued', 'sending', 'retrying') AND due_at IS NOT NULL AND due_at <= ?",
                vec![now.into()],
            )?
            .to_array()?;
        if !due.is_empty() {
            let config = super::config(&self.env);
            let grace = i64::from(config.recovery_grace_seconds) * 1000;
            let queue = self.env.queue(super::delivery::QUEUE_BINDING)?;
            let bodies: Vec<String> = due.iter().map(|r| r.message.clone()).collect();
            queue.send_batch(bodies).await?;
            for row in &due {
                if let Ok(message) = Message::decode(&row.message) {
                    worker::console_log!("outbox: no progress on {}; queued it again", message.delivery_id());
                    self.sql().exec(
                        "UPDATE deliveries SET status = 'queued', due_at = ?, updated_at = ? WHERE id = ?",
                        vec![(now + grace).into(), now.into(), message.delivery_id().into()],
                    )?;
                }
            }
        }
        let next: Vec<NextRow> = self
            .sql()
            .exec(
                "SELECT MIN(due_at) AS due FROM deliveries WHERE status IN ('queued', 'sending', 'retrying') AND due_at IS NOT NULL",
                None,
            )?
            .to_array()?;
        if let Some(due) = next.first().and_then(|r| r.due) {
            self.state.storage().set_alarm(at(due.max(now as f64 + 1.0) as i64)).await?;
        }
        // Forget what can no longer deduplicate anything.
        self.sql().exec(
            "DELETE FROM deliveries WHERE created_at < ? AND status IN ('delivered', 'gone', 'failed')",
            vec![(now - DEDUP_WINDOW_MS).into()],
        )?;
        Ok(())
    }

    /// Makes sure the alarm fires no later than `at`.
    async fn schedule(&self, at: i64) -> Result<()> {
        let storage = self.state.storage();
        match storage.get_alarm().await? {
            Some(current) if current <= at => Ok(()),
            _ => storage.set_alarm(self::at(at)).await,
        }
    }

    fn dead_add(&self, body: &str, now: i64) -> Result<String> {
        let value = parse(body)?;
        let message = field(&value, "message")?;
        let id = Message::decode(&message).map_err(|e| worker::Error::RustError(e.to_string()))?.delivery_id();
        let attempts = value.get("attempts").and_then(Value::as_integer).map_or(0, crate::legacy::integer_ms);
        self.sql().exec(
            "INSERT OR REPLACE INTO dead_letters (id, status, message, reason, attempts, at) VALUES (?, ?, ?, ?, ?, ?)",
            vec![id.into(), field(&value, "status")?.into(), message.into(), field(&value, "reason")?.into(), attempts.into(), now.into()],
        )?;
        Ok("{}".into())
    }

    fn dead_rows(&self, query: &str, binding: &str) -> Result<Vec<DeadRow>> {
        self.sql().exec(query, vec![binding.into()])?.to_array()
    }

    fn dead_list(&self, body: &str) -> Result<String> {
        let status = field(&parse(body)?, "status")?;
        let rows = self.dead_rows("SELECT id, status, message, reason, attempts, at FROM dead_letters WHERE status = ? ORDER BY at", &status)?;
        let mut out = String::from("[");
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_dead(&mut out, row);
        }
        out.push(']');
        Ok(out)
    }

    fn dead_get(&self, body: &str) -> Result<String> {
        let id = field(&parse(body)?, "id")?;
        let rows = self.dead_rows("SELECT id, status, message, reason, attempts, at FROM dead_letters WHERE id = ?", &id)?;
        let mut out = String::new();
        match rows.first() {
            Some(row) => write_dead(&mut out, row),
            None => out.push_str("null"),
        }
        Ok(out)
    }

    fn dead_replayed(&self, body: &str) -> Result<String> {
        let id = field(&parse(body)?, "id")?;
        self.sql().exec("UPDATE dead_letters SET status = 'replayed', at = ? WHERE id = ?", vec![super::now_ms().into(), id.into()])?;
        Ok("{}".into())
    }
}

/// An absolute alarm time (a bare i64 would be read as an offset).
fn at(ms: i64) -> worker::ScheduledTime {
    worker::ScheduledTime::new(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64)))
}

#[derive(Deserialize)]
struct NextRow {
    due: Option<f64>,
}

/// One dead letter as the admin API shows it.
fn write_dead(out: &mut String, row: &DeadRow) {
    let message = Message::decode(&row.message).ok();
    out.push_str("{\"id\":");
    json::write_str_escaped(out, &row.id);
    out.push_str(",\"status\":");
    json::write_str_escaped(out, &row.status);
    if let Some(m) = &message {
        out.push_str(",\"destination\":");
        json::write_str_escaped(out, &m.destination);
        out.push_str(",\"eventId\":");
        json::write_str_escaped(out, &m.event_id);
        out.push_str(",\"type\":");
        json::write_str_escaped(out, &m.event_type);
    }
    out.push_str(",\"reason\":");
    json::write_str_escaped(out, &row.reason);
    out.push_str(&format!(",\"attempts\":{},\"at\":{}", row.attempts as i64, row.at as i64));
    out.push_str(",\"message\":");
    out.push_str(&row.message);
    out.push('}');
}
