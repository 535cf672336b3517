//! A destination's delivery log: one Durable Object per destination that
//! owns every delivery to that app, from the moment its outbox forwards it
//! to the end of its retention.
//!
//! It keeps each delivery's body (the queue only carries a reference, so a
//! message stays small whatever the event's size), its status, its attempts
//! and its last error, and it is the safety net under the queue: its alarm
//! queues again a delivery that showed no progress for the recovery grace
//! period (a lost message, a restart), and deletes what has outlived its
//! retention. A destination object with no deliveries left holds no alarm.
//!
//! Statuses: `queued` → `sending` ⇄ `retrying` → `delivered` | `gone` (the
//! app answered 410) | `failed` (gave up) → `replayed` (an operator queued
//! it again as a new delivery `<id>.r<n>`). The admin API calls the first
//! three `pending`.
//!
//! This object is on the delivery path, not the webhook path: a webhook
//! waits only for its conversation's outbox.

use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorageValue, State};

use super::bindings;
use super::outbox::at;
use crate::delivery::handoff;
use crate::delivery::message::Ref;
use crate::delivery::schedule;
use crate::json::{self, Limits, Value};

/// At most this many deliveries are queued again by one alarm, and as many
/// expired ones deleted; more wait for the next alarm, which follows at once.
const ALARM_ROWS: i64 = 500;
/// Statuses of deliveries still on their way.
const LIVE: &str = "('queued', 'sending', 'retrying')";

#[durable_object]
pub struct Destination {
    state: State,
    env: Env,
}

#[derive(Deserialize)]
struct Live {
    id: String,
    status: String,
    generation: f64,
    attempts: f64,
    event_id: String,
    body: String,
    due_at: Option<f64>,
}

/// A delivery as the admin API lists it (no body).
#[derive(Deserialize)]
struct Listed {
    id: String,
    event_id: String,
    #[serde(rename = "type")]
    event_type: String,
    scope: String,
    status: String,
    attempts: f64,
    created_at: f64,
    updated_at: f64,
    last_error: Option<String>,
    reason: Option<String>,
    replayed_as: Option<String>,
}

#[derive(Deserialize)]
struct Attempt {
    n: f64,
    at: f64,
    code: Option<f64>,
    error: Option<String>,
    latency_ms: f64,
}

#[derive(Deserialize)]
struct One {
    body: String,
}

#[derive(Deserialize)]
struct Count {
    n: f64,
}

#[derive(Deserialize)]
struct Name {
    value: String,
}

#[derive(Deserialize)]
struct Due {
    due: Option<f64>,
}

impl DurableObject for Destination {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        for ddl in [
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
            "CREATE TABLE IF NOT EXISTS deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, \
             event_id TEXT NOT NULL, type TEXT NOT NULL, scope TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL, \
             generation INTEGER NOT NULL DEFAULT 1, attempts INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL, \
             updated_at INTEGER NOT NULL, due_at INTEGER, expires_at INTEGER, last_error TEXT, reason TEXT, replayed_as TEXT)",
            "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (due_at) WHERE due_at IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS deliveries_expiry ON deliveries (expires_at) WHERE expires_at IS NOT NULL",
            "CREATE INDEX IF NOT EXISTS deliveries_log ON deliveries (created_at, id)",
            "CREATE TABLE IF NOT EXISTS attempts (id TEXT NOT NULL, n INTEGER NOT NULL, at INTEGER NOT NULL, code INTEGER, \
             error TEXT, latency_ms INTEGER NOT NULL, PRIMARY KEY (id, n))",
        ] {
            if let Err(e) = sql.exec(ddl, None) {
                worker::console_error!("destination: cannot create its tables: {e}");
            }
        }
        Destination { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        let body = req.text().await?;
        let now = super::now_ms();
        let reply = match path.as_str() {
            "/add" => self.add(&body, now).await,
            "/attempt" => self.attempt(&body, now).await,
            "/settle" => self.settle(&body, now).await,
            "/dead" => self.dead(&body, now).await,
            "/list" => self.list(&body),
            "/get" => self.get(&body),
            "/replay" => self.replay(&body, now).await,
            "/stats" if bindings::switch(&self.env, bindings::TEST_ROUTES) => self.stats().await,
            _ => return Response::error("unknown destination operation", 404),
        };
        match reply {
            Ok(Reply::Ok(text)) => Response::ok(text),
            Ok(Reply::Status(status, text)) => Response::error(text, status),
            Err(e) => Response::error(format!("destination {path}: {e}"), 500),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.run(super::now_ms()).await?;
        Response::ok("ok")
    }
}

enum Reply {
    Ok(String),
    /// An answer the caller passes on (404, 409).
    Status(u16, String),
}

fn fail(message: impl std::fmt::Display) -> worker::Error {
    worker::Error::RustError(message.to_string())
}

fn parse(body: &str) -> Result<Value<'_>> {
    json::parse(body, &Limits { max_bytes: usize::MAX, max_depth: 8 }).map_err(fail)
}

fn text(value: &Value<'_>, name: &str) -> Result<String> {
    value.get(name).and_then(Value::as_str).map(|s| s.text().into_owned()).ok_or_else(|| fail(format!("missing {name}")))
}

fn integer(value: &Value<'_>, name: &str) -> Option<i64> {
    value.get(name).and_then(Value::as_integer).map(crate::legacy::integer_ms)
}

fn items<'v, 'a>(value: &'v Value<'a>, name: &str) -> Result<&'v [Value<'a>]> {
    match value.get(name) {
        Some(Value::Array(items)) => Ok(items),
        _ => Err(fail(format!("missing {name}"))),
    }
}

fn null_or<T: Into<SqlStorageValue>>(value: Option<T>) -> SqlStorageValue {
    value.map_or(SqlStorageValue::Null, Into::into)
}

impl Destination {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    fn count(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<i64> {
        let rows: Vec<Count> = self.sql().exec(query, bindings)?.to_array()?;
        Ok(rows.first().map_or(0, |r| r.n as i64))
    }

    /// This destination's name, learnt from the first `/add`.
    fn name(&self) -> Result<String> {
        let rows: Vec<Name> = self.sql().exec("SELECT value FROM meta WHERE key = 'name'", None)?.to_array()?;
        rows.into_iter().next().map(|r| r.value).ok_or_else(|| fail("the destination has no name yet"))
    }

    /// Takes deliveries from an outbox; ones it already has are ignored.
    /// The new ones are queued at once. Answers `{"added":n}`.
    async fn add(&self, body: &str, now: i64) -> Result<Reply> {
        let value = parse(body)?;
        let name = text(&value, "destination")?;
        let config = super::config(&self.env);
        let sql = self.sql();
        sql.exec("INSERT OR IGNORE INTO meta (key, value) VALUES ('name', ?)", vec![name.clone().into()])?;
        let mut added = Vec::new();
        for d in items(&value, "deliveries")? {
            let id = text(d, "id")?;
            let cursor = sql.exec(
                "INSERT OR IGNORE INTO deliveries (id, event_id, type, scope, body, status, generation, attempts, \
                 created_at, updated_at, due_at) VALUES (?, ?, ?, ?, ?, 'queued', 1, 0, ?, ?, ?)",
                vec![
                    id.clone().into(),
                    text(d, "event")?.into(),
                    text(d, "type")?.into(),
                    text(d, "scope")?.into(),
                    text(d, "body")?.into(),
                    integer(d, "at").unwrap_or(now).into(),
                    now.into(),
                    (now + config.recovery_grace_ms()).into(),
                ],
            )?;
            if cursor.rows_written() > 0 {
                added.push(Ref { destination: name.clone(), id, generation: 1 }.encode());
            }
        }
        if !added.is_empty() {
            self.schedule(now + config.recovery_grace_ms()).await?;
            if let Err((sent, e)) = bindings::enqueue(&self.env, &added).await {
                // They stay queued; the alarm sends them again after the grace period.
                worker::console_error!("destination {name}: {} of {} deliveries not queued yet: {e}", added.len() - sent, added.len());
            }
        }
        Ok(Reply::Ok(format!("{{\"added\":{}}}", added.len())))
    }

    /// The consumer is about to send. For each `{"id","g"}` answers `go`
    /// (with the attempt number and the body) or `skip` (settled, unknown or
    /// expired, a copy of an older generation, or another consumer is on it).
    async fn attempt(&self, body: &str, now: i64) -> Result<Reply> {
        let value = parse(body)?;
        let busy_ms = integer(&value, "busyMs").unwrap_or(310_000);
        let sql = self.sql();
        let mut go = String::new();
        let mut skip = Vec::new();
        for item in items(&value, "items")? {
            let id = text(item, "id")?;
            let generation = integer(item, "g").unwrap_or(0);
            let rows: Vec<Live> = sql
                .exec(
                    "SELECT id, status, generation, attempts, event_id, body, due_at FROM deliveries WHERE id = ?",
                    vec![id.clone().into()],
                )?
                .to_array()?;
            let Some(row) = rows.into_iter().next() else {
                skip.push(id);
                continue;
            };
            let stale = row.generation as i64 != generation;
            let settled = !matches!(row.status.as_str(), "queued" | "sending" | "retrying");
            let taken = row.status == "sending" && row.due_at.is_some_and(|d| d as i64 > now);
            if stale || settled || taken {
                skip.push(id);
                continue;
            }
            let attempt = row.attempts as i64 + 1;
            sql.exec(
                "UPDATE deliveries SET status = 'sending', attempts = ?, updated_at = ?, due_at = ? WHERE id = ?",
                vec![attempt.into(), now.into(), (now + busy_ms).into(), id.clone().into()],
            )?;
            go.push_str(if go.is_empty() { "" } else { "," });
            go.push_str("{\"id\":");
            json::write_str_escaped(&mut go, &row.id);
            go.push_str(&format!(",\"attempt\":{attempt},\"eventId\":"));
            json::write_str_escaped(&mut go, &row.event_id);
            go.push_str(",\"body\":");
            json::write_str_escaped(&mut go, &row.body);
            go.push('}');
        }
        if !go.is_empty() {
            self.schedule(now + busy_ms).await?;
        }
        Ok(Reply::Ok(format!("{{\"go\":[{go}],\"skip\":{}}}", json::string_array(&skip))))
    }

    /// Records how attempts ended. Each outcome is
    /// `{"id","attempt","verdict":"delivered"|"gone"|"retry"|"give_up","code","error","latencyMs"}`.
    /// Answers `{"retry":[{"id","delay"}]}`: the seconds each retried
    /// delivery waits on the queue.
    async fn settle(&self, body: &str, now: i64) -> Result<Reply> {
        let value = parse(body)?;
        let config = super::config(&self.env);
        let sql = self.sql();
        let mut retry = String::new();
        for outcome in items(&value, "outcomes")? {
            let id = text(outcome, "id")?;
            let attempt = integer(outcome, "attempt").unwrap_or(0);
            let verdict = text(outcome, "verdict")?;
            let error = text(outcome, "error").ok();
            let code = integer(outcome, "code");
            let latency = integer(outcome, "latencyMs").unwrap_or(0);
            // Only the attempt that is in flight may settle it.
            let current = self.count(
                "SELECT COUNT(*) AS n FROM deliveries WHERE id = ? AND status = 'sending' AND attempts = ?",
                vec![id.clone().into(), attempt.into()],
            )?;
            if current == 0 {
                continue;
            }
            sql.exec(
                "INSERT OR REPLACE INTO attempts (id, n, at, code, error, latency_ms) VALUES (?, ?, ?, ?, ?, ?)",
                vec![id.clone().into(), attempt.into(), now.into(), null_or(code), null_or(error.clone()), latency.into()],
            )?;
            let (status, due, expires, reason) = match verdict.as_str() {
                "delivered" => ("delivered", None, Some(now + config.dedup_window_ms()), None),
                "gone" => ("gone", None, Some(now + config.dead_letter_retention_ms()), error.clone()),
                "give_up" => (
                    "failed",
                    None,
                    Some(now + config.dead_letter_retention_ms()),
                    Some(format!("gave up after {attempt} attempts; last: {}", error.as_deref().unwrap_or("unknown"))),
                ),
                _ => {
                    let delay = schedule::delay_seconds(config.retry_base_seconds, attempt.max(1) as u32, js_sys::Math::random());
                    retry.push_str(if retry.is_empty() { "" } else { "," });
                    retry.push_str("{\"id\":");
                    json::write_str_escaped(&mut retry, &id);
                    retry.push_str(&format!(",\"delay\":{delay}}}"));
                    let due = now + i64::from(delay) * 1000 + config.recovery_grace_ms();
                    ("retrying", Some(due), None, None)
                }
            };
            sql.exec(
                "UPDATE deliveries SET status = ?, updated_at = ?, due_at = ?, expires_at = ?, \
                 last_error = COALESCE(?, last_error), reason = ? WHERE id = ?",
                vec![status.into(), now.into(), null_or(due), null_or(expires), null_or(error), null_or(reason), id.into()],
            )?;
            self.schedule(due.or(expires).unwrap_or(now)).await?;
        }
        Ok(Reply::Ok(format!("{{\"retry\":[{retry}]}}")))
    }

    /// The dead-letter queue's consumer: the queue gave up on a message
    /// (its consumer kept failing). The delivery fails unless it is settled.
    async fn dead(&self, body: &str, now: i64) -> Result<Reply> {
        let value = parse(body)?;
        let id = text(&value, "id")?;
        let config = super::config(&self.env);
        self.sql().exec(
            &format!(
                "UPDATE deliveries SET status = 'failed', updated_at = ?, due_at = NULL, expires_at = ?, \
                 reason = 'gave up after ' || attempts || ' attempts; last: ' || COALESCE(last_error, 'no answer recorded') \
                 WHERE id = ? AND status IN {LIVE}"
            ),
            vec![now.into(), (now + config.dead_letter_retention_ms()).into(), id.into()],
        )?;
        self.schedule(now + config.dead_letter_retention_ms()).await?;
        Ok(Reply::Ok("{}".into()))
    }

    /// Lists deliveries, newest first: `{"status":[…],"limit":n,"before":{"at","id"}?}`.
    /// Answers a JSON array of [`Listed`] objects.
    fn list(&self, body: &str) -> Result<Reply> {
        let value = parse(body)?;
        let statuses: Vec<String> = match value.get("status") {
            Some(Value::Array(list)) => list.iter().filter_map(|v| v.as_str().map(|s| s.text().into_owned())).collect(),
            _ => Vec::new(),
        };
        let limit = integer(&value, "limit").unwrap_or(50).clamp(1, 500);
        let mut query = String::from(
            "SELECT id, event_id, type, scope, status, attempts, created_at, updated_at, last_error, reason, replayed_as \
             FROM deliveries WHERE 1",
        );
        let mut binds: Vec<SqlStorageValue> = Vec::new();
        if !statuses.is_empty() {
            query.push_str(" AND status IN (");
            for (i, s) in statuses.into_iter().enumerate() {
                query.push_str(if i == 0 { "?" } else { ", ?" });
                binds.push(s.into());
            }
            query.push(')');
        }
        if let Some(before) = value.get("before") {
            let at = integer(before, "at").unwrap_or(i64::MAX);
            query.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
            binds.extend([at.into(), at.into(), text(before, "id")?.into()]);
        }
        query.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
        binds.push(limit.into());
        let rows: Vec<Listed> = self.sql().exec(&query, binds)?.to_array()?;
        let mut out = String::from("[");
        for (i, row) in rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_listed(&mut out, row);
        }
        out.push(']');
        Ok(Reply::Ok(out))
    }

    /// One delivery with its body and attempts: `{…listed…,"body":"…","attempts":[…]}`
    /// (the body is the outbound event before token handling, as text).
    fn get(&self, body: &str) -> Result<Reply> {
        let id = text(&parse(body)?, "id")?;
        let sql = self.sql();
        let rows: Vec<Listed> = sql
            .exec(
                "SELECT id, event_id, type, scope, status, attempts, created_at, updated_at, last_error, reason, replayed_as \
                 FROM deliveries WHERE id = ?",
                vec![id.clone().into()],
            )?
            .to_array()?;
        let Some(row) = rows.first() else {
            return Ok(Reply::Status(404, format!("no delivery {id}")));
        };
        let bodies: Vec<One> = sql.exec("SELECT body FROM deliveries WHERE id = ?", vec![id.clone().into()])?.to_array()?;
        let attempts: Vec<Attempt> =
            sql.exec("SELECT n, at, code, error, latency_ms FROM attempts WHERE id = ? ORDER BY n", vec![id.into()])?.to_array()?;
        let mut out = String::new();
        write_listed(&mut out, row);
        out.pop();
        out.push_str(",\"body\":");
        json::write_str_escaped(&mut out, bodies.first().map_or("", |b| b.body.as_str()));
        out.push_str(",\"attemptLog\":[");
        for (i, a) in attempts.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("{{\"attempt\":{},\"at\":{},\"code\":", a.n as i64, a.at as i64));
            out.push_str(&a.code.map_or_else(|| "null".to_owned(), |c| (c as i64).to_string()));
            out.push_str(",\"error\":");
            match &a.error {
                Some(e) => json::write_str_escaped(&mut out, e),
                None => out.push_str("null"),
            }
            out.push_str(&format!(",\"latencyMs\":{}}}", a.latency_ms as i64));
        }
        out.push_str("]}");
        Ok(Reply::Ok(out))
    }

    /// Queues a failed or gone delivery once more, as a new delivery
    /// `<id>.r<n>` with the same event (and so the same `webhook-id`).
    /// Answers `{"replayed":…,"as":…}`; 404 when unknown or expired, 409
    /// when it is not a dead letter or was replayed already.
    async fn replay(&self, body: &str, now: i64) -> Result<Reply> {
        let id = text(&parse(body)?, "id")?;
        let config = super::config(&self.env);
        let sql = self.sql();
        let rows: Vec<Listed> = sql
            .exec(
                "SELECT id, event_id, type, scope, status, attempts, created_at, updated_at, last_error, reason, replayed_as \
                 FROM deliveries WHERE id = ?",
                vec![id.clone().into()],
            )?
            .to_array()?;
        let Some(row) = rows.first() else {
            return Ok(Reply::Status(
                404,
                format!(
                    "no delivery {id}: dead letters are kept for {} s (DEAD_LETTER_RETENTION_SECONDS), so it has expired or never existed",
                    config.dead_letter_retention_seconds
                ),
            ));
        };
        match row.status.as_str() {
            "failed" | "gone" => {}
            "replayed" => {
                return Ok(Reply::Status(409, format!("{id} was already replayed as {}", row.replayed_as.as_deref().unwrap_or("?"))))
            }
            other => return Ok(Reply::Status(409, format!("{id} is {other}, not a dead letter; only failed or gone deliveries can be replayed"))),
        }
        let new_id = handoff::replay_id(&id);
        let name = self.name()?;
        sql.exec(
            "INSERT INTO deliveries (id, event_id, type, scope, body, status, generation, attempts, created_at, updated_at, due_at) \
             SELECT ?, event_id, type, scope, body, 'queued', 1, 0, ?, ?, ? FROM deliveries WHERE id = ?",
            vec![new_id.clone().into(), now.into(), now.into(), (now + config.recovery_grace_ms()).into(), id.clone().into()],
        )?;
        sql.exec(
            "UPDATE deliveries SET status = 'replayed', replayed_as = ?, updated_at = ?, expires_at = ? WHERE id = ?",
            vec![new_id.clone().into(), now.into(), (now + config.dead_letter_retention_ms()).into(), id.clone().into()],
        )?;
        self.schedule(now + config.recovery_grace_ms()).await?;
        let message = Ref { destination: name, id: new_id.clone(), generation: 1 }.encode();
        if let Err((_, e)) = bindings::enqueue(&self.env, &[message]).await {
            worker::console_error!("replay of {id}: not queued yet ({e}); the alarm queues it after the grace period");
        }
        let mut out = String::from("{\"replayed\":");
        json::write_str_escaped(&mut out, &id);
        out.push_str(",\"as\":");
        json::write_str_escaped(&mut out, &new_id);
        out.push('}');
        Ok(Reply::Ok(out))
    }

    /// The alarm: queues again what made no progress, deletes what outlived
    /// its retention, and sets the next alarm (or none).
    async fn run(&self, now: i64) -> Result<()> {
        let config = super::config(&self.env);
        let sql = self.sql();
        let overdue: Vec<Live> = sql
            .exec(
                &format!(
                    "SELECT id, status, generation, attempts, event_id, '' AS body, due_at FROM deliveries \
                     WHERE status IN {LIVE} AND due_at <= ? ORDER BY seq LIMIT ?"
                ),
                vec![now.into(), ALARM_ROWS.into()],
            )?
            .to_array()?;
        let mut more = overdue.len() as i64 == ALARM_ROWS;
        if !overdue.is_empty() {
            let name = self.name()?;
            let mut messages = Vec::with_capacity(overdue.len());
            for row in &overdue {
                let generation = row.generation as i64 + 1;
                sql.exec(
                    "UPDATE deliveries SET status = 'queued', generation = ?, updated_at = ?, due_at = ? WHERE id = ?",
                    vec![generation.into(), now.into(), (now + config.recovery_grace_ms()).into(), row.id.clone().into()],
                )?;
                messages.push(Ref { destination: name.clone(), id: row.id.clone(), generation: generation as u32 }.encode());
            }
            match bindings::enqueue(&self.env, &messages).await {
                Ok(()) => worker::console_log!("destination {name}: no progress on {} deliveries; queued them again", messages.len()),
                Err((sent, e)) => {
                    worker::console_error!("destination {name}: {} deliveries not queued again yet: {e}", messages.len() - sent)
                }
            }
        }
        let expired: Vec<Name> = sql
            .exec("SELECT id AS value FROM deliveries WHERE expires_at <= ? LIMIT ?", vec![now.into(), ALARM_ROWS.into()])?
            .to_array()?;
        more |= expired.len() as i64 == ALARM_ROWS;
        for row in expired {
            sql.exec("DELETE FROM attempts WHERE id = ?", vec![row.value.clone().into()])?;
            sql.exec("DELETE FROM deliveries WHERE id = ?", vec![row.value.into()])?;
        }
        let next: Vec<Due> = sql
            .exec(&format!("SELECT MIN(COALESCE(CASE WHEN status IN {LIVE} THEN due_at END, expires_at)) AS due FROM deliveries"), None)?
            .to_array()?;
        let storage = self.state.storage();
        match next.first().and_then(|d| d.due) {
            _ if more => storage.set_alarm(at(now)).await,
            Some(due) => storage.set_alarm(at((due as i64).max(now + 1))).await,
            None => storage.delete_alarm().await,
        }
    }

    /// Makes sure the alarm fires no later than `when`.
    async fn schedule(&self, when: i64) -> Result<()> {
        let storage = self.state.storage();
        match storage.get_alarm().await? {
            Some(current) if current <= when => Ok(()),
            _ => storage.set_alarm(at(when)).await,
        }
    }

    /// Row counts by status, attempts and the alarm, for tests.
    async fn stats(&self) -> Result<Reply> {
        #[derive(Deserialize)]
        struct ByStatus {
            status: String,
            n: f64,
        }
        let alarm = self.state.storage().get_alarm().await?;
        let rows: Vec<ByStatus> =
            self.sql().exec("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status ORDER BY status", None)?.to_array()?;
        let mut out = String::from("{\"deliveries\":{");
        for (i, r) in rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json::write_str_escaped(&mut out, &r.status);
            out.push_str(&format!(":{}", r.n as i64));
        }
        out.push_str(&format!(
            "}},\"rows\":{},\"attempts\":{},\"alarm\":{}}}",
            self.count("SELECT COUNT(*) AS n FROM deliveries", Vec::new())?,
            self.count("SELECT COUNT(*) AS n FROM attempts", Vec::new())?,
            alarm.map_or_else(|| "null".to_owned(), |a| a.to_string())
        ));
        Ok(Reply::Ok(out))
    }
}

/// One delivery as the admin API lists it.
fn write_listed(out: &mut String, row: &Listed) {
    let status = match row.status.as_str() {
        "queued" | "sending" | "retrying" => "pending",
        other => other,
    };
    out.push_str("{\"id\":");
    json::write_str_escaped(out, &row.id);
    out.push_str(",\"status\":");
    json::write_str_escaped(out, status);
    out.push_str(",\"state\":");
    json::write_str_escaped(out, &row.status);
    out.push_str(",\"destination\":");
    json::write_str_escaped(out, handoff::destination_of(&row.id).unwrap_or_default());
    out.push_str(",\"eventId\":");
    json::write_str_escaped(out, &row.event_id);
    out.push_str(",\"type\":");
    json::write_str_escaped(out, &row.event_type);
    out.push_str(",\"scope\":");
    json::write_str_escaped(out, &row.scope);
    out.push_str(&format!(
        ",\"attempts\":{},\"at\":{},\"updatedAt\":{}",
        row.attempts as i64, row.created_at as i64, row.updated_at as i64
    ));
    for (name, value) in [("lastError", &row.last_error), ("reason", &row.reason), ("replayedAs", &row.replayed_as)] {
        if let Some(v) = value {
            out.push_str(",\"");
            out.push_str(name);
            out.push_str("\":");
            json::write_str_escaped(out, v);
        }
    }
    out.push('}');
}
