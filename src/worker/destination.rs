//! A destination's delivery log: one Durable Object per destination that
//! owns every delivery to that app, from the moment its outbox forwards it
//! to the end of its retention, and the app's circuit breaker.
//!
//! It keeps each delivery's body (the queue only carries a reference, so a
//! message stays small whatever the event's size), its status, its attempts
//! and its last error. It is the safety net under the queue: its alarm
//! queues again a delivery that showed no progress for the recovery grace
//! period (a lost message, a restart). And it runs the breaker
//! ([`crate::delivery::circuit`]): when the app is down its deliveries are
//! held, one is probed now and then, and once the app answers they drain in
//! their original order at `DRAIN_PER_SECOND`. Its alarm also deletes what
//! has outlived its retention; an object with no deliveries left holds no
//! alarm.
//!
//! Statuses: `queued` → `sending` ⇄ `retrying` → `delivered` | `gone` (the
//! app answered 410) | `failed` (gave up); `held` (the app is down or
//! paused, or the delivery waits behind a backlog); `replayed` (an operator
//! queued it again as a new delivery `<id>.r<n>`). The admin API calls
//! `queued`, `sending` and `retrying` `pending`.
//!
//! This object is on the delivery path, not the webhook path: a webhook
//! waits only for its conversation's outbox, so a busy or tripped app never
//! slows Drift's webhooks down.
//!
//! Taking deliveries in (`/add`, once per webhook with deliveries) is not
//! here: the hot path's module does it without workers-rs
//! (src/worker/intake.rs), over the same tables (src/worker/schema.rs). Everything
//! else is.

use serde::Deserialize;
use worker::{durable_object, DurableObject, Env, Request, Response, Result, SqlStorageValue, State};

use super::bindings;
use crate::config::Config;
use crate::delivery::circuit::{Change, Circuit, Mode};
use crate::delivery::handoff;
use crate::delivery::message::Ref;
use crate::delivery::schedule;
use crate::json::{self, Limits, Value};

/// At most this many deliveries are queued again, failed for being held too
/// long, or deleted by one alarm; more wait for the next, which follows at
/// once (an alarm must never run out of time).
const ALARM_ROWS: i64 = 500;
/// Statuses of deliveries on their way.
const LIVE: &str = "('queued', 'sending', 'retrying')";
/// Attempt rows kept per delivery: probes of a long outage are thinned out.
const PROBE_ROWS_KEPT: i64 = 20;

#[durable_object]
pub struct Destination {
    state: State,
    env: Env,
    /// The alarm as last set by this instance (`Some(None)`: none), so
    /// that most requests need not read it from storage.
    alarm: std::cell::Cell<Option<Option<i64>>>,
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

const LISTED: &str = "id, event_id, type, scope, status, attempts, created_at, updated_at, last_error, reason, replayed_as";

#[derive(Deserialize)]
struct Attempt {
    n: f64,
    at: f64,
    code: Option<f64>,
    error: Option<String>,
    latency_ms: f64,
    probe: f64,
}

#[derive(Deserialize)]
struct Text {
    value: String,
}

#[derive(Deserialize)]
struct Count {
    n: f64,
}

#[derive(Deserialize)]
struct Due {
    due: Option<f64>,
}

impl DurableObject for Destination {
    /// The tables exist: the entry's `Destination` creates them as the
    /// object starts, before it makes this (src/worker/schema.rs).
    fn new(state: State, env: Env) -> Self {
        Destination { state, env, alarm: std::cell::Cell::new(None) }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        let body = req.text().await?;
        let now = super::now_ms();
        // Every operation is synchronous (SQL in a Durable Object is); what
        // needs awaiting, the alarm and the queue, happens once, after it.
        let mut fx = Effects::default();
        let reply = match path.as_str() {
            "/attempt" => self.attempt(&body, now, &mut fx),
            "/settle" => self.settle(&body, now, &mut fx),
            "/dead" => self.dead(&body, now, &mut fx),
            "/list" => self.list(&body),
            "/get" => self.get(&body),
            "/replay" => self.replay(&body, now, &mut fx),
            "/health" => self.health(&body, now),
            "/pause" => self.pause(&body, now, &mut fx),
            "/resume" => self.resume(&body, now, &mut fx),
            "/recover" => self.recover(&body, now, &mut fx),
            "/stats" if bindings::switch(&self.env, bindings::TEST_ROUTES) => self.stats().await,
            _ => return Response::error("unknown destination operation", 404),
        };
        let reply = match reply {
            Ok(reply) => self.apply(fx).await.map(|()| reply),
            Err(e) => Err(e),
        };
        match reply {
            Ok(Reply::Ok(text)) => Response::ok(text),
            Ok(Reply::Status(status, text)) => Response::error(text, status),
            Err(e) => Response::error(format!("destination {path}: {e}"), 500),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        // The alarm that fired is gone; `run` sets the next one.
        self.alarm.set(Some(None));
        let mut fx = Effects::default();
        self.run(super::now_ms(), &mut fx)?;
        self.apply(fx).await?;
        Response::ok("ok")
    }
}

/// What an operation leaves to do once its SQL is done.
#[derive(Default)]
struct Effects {
    /// The alarm must fire no later than this.
    wake: Option<i64>,
    /// The alarm must be exactly this (or none); wins over `wake`.
    exact: Option<Option<i64>>,
    /// Queue messages to send.
    send: Vec<String>,
}

impl Effects {
    fn wake(&mut self, at: i64) {
        self.wake = Some(self.wake.map_or(at, |w| w.min(at)));
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
    json::parse(body, &Limits::INTERNAL).map_err(fail)
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

fn strings(value: &Value<'_>, name: &str) -> Vec<String> {
    match value.get(name) {
        Some(Value::Array(list)) => list.iter().filter_map(|v| v.as_str().map(|s| s.text().into_owned())).collect(),
        _ => Vec::new(),
    }
}

fn null_or<T: Into<SqlStorageValue>>(value: Option<T>) -> SqlStorageValue {
    value.map_or(SqlStorageValue::Null, Into::into)
}

/// One structured log line (Workers Logs indexes JSON lines).
fn log_json(fields: &[(&str, LogValue<'_>)]) {
    let mut out = String::from("{");
    for (i, (key, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json::write_str_escaped(&mut out, key);
        out.push(':');
        match value {
            LogValue::Str(s) => json::write_str_escaped(&mut out, s),
            LogValue::Int(n) => out.push_str(&n.to_string()),
        }
    }
    out.push('}');
    worker::console_log!("{out}");
}

enum LogValue<'a> {
    Str(&'a str),
    Int(i64),
}

#[wasm_bindgen::prelude::wasm_bindgen]
impl Destination {
    /// Forgets the alarm this instance last set: the entry's `/add`
    /// (src/worker/intake.rs) changed it.
    #[wasm_bindgen(js_name = forgetAlarm)]
    pub fn forget_alarm(&self) {
        self.alarm.set(None);
    }
}

impl Destination {
    fn sql(&self) -> worker::SqlStorage {
        self.state.storage().sql()
    }

    fn count(&self, query: &str, bindings: Vec<SqlStorageValue>) -> Result<i64> {
        let rows: Vec<Count> = self.sql().exec(query, bindings)?.to_array()?;
        Ok(rows.first().map_or(0, |r| r.n as i64))
    }

    fn meta(&self, key: &str) -> Result<Option<String>> {
        let rows: Vec<Text> = self.sql().exec("SELECT value FROM meta WHERE key = ?", vec![key.into()])?.to_array()?;
        Ok(rows.into_iter().next().map(|r| r.value))
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.sql().exec("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", vec![key.into(), value.into()])?;
        Ok(())
    }

    /// This destination's name, learnt from the first call that names it.
    fn name(&self) -> Result<String> {
        self.meta("name")?.ok_or_else(|| fail("the destination has no name yet"))
    }

    fn learn_name(&self, value: &Value<'_>) -> Result<String> {
        let name = text(value, "destination")?;
        self.sql().exec("INSERT OR IGNORE INTO meta (key, value) VALUES ('name', ?)", vec![name.clone().into()])?;
        Ok(name)
    }

    fn circuit(&self, config: &Config) -> Result<Circuit> {
        Ok(match self.meta("circuit")? {
            Some(text) => Circuit::decode(&text, &config.circuit),
            None => Circuit::new(&config.circuit),
        })
    }

    fn save_circuit(&self, circuit: &Circuit) -> Result<()> {
        self.set_meta("circuit", &circuit.encode())
    }

    fn log_state(&self, name: &str, circuit: &Circuit, why: &str) {
        log_json(&[
            ("kind", LogValue::Str("circuit")),
            ("destination", LogValue::Str(name)),
            ("state", LogValue::Str(circuit.mode.as_str())),
            ("why", LogValue::Str(why)),
            ("consecutiveFailures", LogValue::Int(i64::from(circuit.consecutive_failures))),
        ]);
    }

    /// The consumer is about to send. For each `{"id","g"}` answers `go`
    /// (with the attempt number, whether it is a probe, and the body) or
    /// `skip`: settled, unknown or expired, a copy of an older generation,
    /// another consumer is on it, or held because the app is down or paused.
    fn attempt(&self, body: &str, now: i64, fx: &mut Effects) -> Result<Reply> {
        let value = parse(body)?;
        let busy_ms = integer(&value, "busyMs").unwrap_or(310_000);
        let config = super::config(&self.env);
        let circuit = self.circuit(&config)?;
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
            if circuit.holds(&id) {
                // No attempt used: it waits for the app, in its place.
                sql.exec(
                    "UPDATE deliveries SET status = 'held', due_at = NULL, updated_at = ? WHERE id = ?",
                    vec![now.into(), id.clone().into()],
                )?;
                skip.push(id);
                continue;
            }
            let probe = circuit.probing.as_deref() == Some(id.as_str());
            // A probe is not charged to the delivery's retry budget.
            let charged = row.attempts as i64 + i64::from(!probe);
            sql.exec(
                "UPDATE deliveries SET status = 'sending', attempts = ?, probe = ?, updated_at = ?, due_at = ? WHERE id = ?",
                vec![charged.into(), i64::from(probe).into(), now.into(), (now + busy_ms).into(), id.clone().into()],
            )?;
            go.push_str(if go.is_empty() { "" } else { "," });
            go.push_str("{\"id\":");
            json::write_str_escaped(&mut go, &row.id);
            go.push_str(&format!(",\"attempt\":{},\"probe\":{probe},\"eventId\":", row.attempts as i64 + 1));
            json::write_str_escaped(&mut go, &row.event_id);
            go.push_str(",\"body\":");
            json::write_str_escaped(&mut go, &row.body);
            go.push('}');
        }
        if !go.is_empty() {
            fx.wake(now + busy_ms);
        }
        Ok(Reply::Ok(format!("{{\"go\":[{go}],\"skip\":{}}}", json::string_array(&skip))))
    }

    /// Records how attempts ended. Each outcome is
    /// `{"id","attempt","verdict":"delivered"|"gone"|"retry"|"give_up"|"unattempted","code","error","latencyMs"}`
    /// (`unattempted`: handed out but not sent, because an earlier one of the
    /// batch failed). Answers `{"results":[{"id","status","delay"?}]}`: what
    /// each delivery became, and for those to try again, the seconds to wait.
    fn settle(&self, body: &str, now: i64, fx: &mut Effects) -> Result<Reply> {
        let value = parse(body)?;
        let config = super::config(&self.env);
        let name = self.name()?;
        let mut circuit = self.circuit(&config)?;
        let sql = self.sql();
        let mut results = String::new();
        let mut wake = None::<i64>;
        for outcome in items(&value, "outcomes")? {
            let id = text(outcome, "id")?;
            let attempt = integer(outcome, "attempt").unwrap_or(0);
            let verdict = text(outcome, "verdict")?;
            let error = text(outcome, "error").ok();
            let code = integer(outcome, "code");
            let latency = integer(outcome, "latencyMs").unwrap_or(0);
            #[derive(Deserialize)]
            struct InFlight {
                attempts: f64,
                probe: f64,
            }
            // Only the attempt that is in flight may settle it.
            let rows: Vec<InFlight> = sql
                .exec("SELECT attempts, probe FROM deliveries WHERE id = ? AND status = 'sending'", vec![id.clone().into()])?
                .to_array()?;
            let Some(row) = rows.first() else { continue };
            let probe = row.probe as i64 == 1;
            if row.attempts as i64 + i64::from(probe) != attempt {
                continue;
            }
            let write = |status: &str, attempts: i64, due: Option<i64>, expires: Option<i64>, reason: Option<String>| {
                sql.exec(
                    "UPDATE deliveries SET status = ?, attempts = ?, probe = 0, updated_at = ?, due_at = ?, expires_at = ?, \
                     last_error = COALESCE(?, last_error), reason = COALESCE(?, reason) WHERE id = ?",
                    vec![
                        status.into(),
                        attempts.into(),
                        now.into(),
                        null_or(due),
                        null_or(expires),
                        null_or(error.clone()),
                        null_or(reason),
                        id.clone().into(),
                    ],
                )
            };
            let charged = row.attempts as i64;
            if verdict == "unattempted" {
                // Not sent: give the attempt back; it comes back with its message.
                let delay = config.retry_base_seconds.max(1);
                write("retrying", (charged - i64::from(!probe)).max(0), Some(now + i64::from(delay) * 1000 + config.recovery_grace_ms()), None, None)?;
                push_result(&mut results, &id, "pending", Some(delay));
                continue;
            }
            sql.exec(
                "INSERT INTO attempts (id, n, at, code, error, latency_ms, probe) VALUES (?, ?, ?, ?, ?, ?, ?)",
                vec![id.clone().into(), attempt.into(), now.into(), null_or(code), null_or(error.clone()), latency.into(), i64::from(probe).into()],
            )?;
            if probe {
                sql.exec(
                    "DELETE FROM attempts WHERE id = ? AND probe = 1 AND seq NOT IN \
                     (SELECT seq FROM attempts WHERE id = ? AND probe = 1 ORDER BY seq DESC LIMIT ?)",
                    vec![id.clone().into(), id.clone().into(), PROBE_ROWS_KEPT.into()],
                )?;
            }
            let answered = matches!(verdict.as_str(), "delivered" | "gone");
            let change = if answered {
                circuit.succeeded(&id, now, &config.circuit)
            } else {
                circuit.failed(&id, error.as_deref().unwrap_or("unknown"), now, &config.circuit)
            };
            match change {
                Change::Tripped => self.log_state(&name, &circuit, "the last attempts all failed"),
                Change::Resumed => {
                    self.log_state(&name, &circuit, "a delivery got through");
                    wake = Some(now);
                }
                Change::ProbeFailed | Change::None => {}
            }
            let attempts = if probe { charged + 1 } else { charged };
            let status = match verdict.as_str() {
                "delivered" => {
                    write("delivered", attempts, None, Some(now + config.delivery_log_ms()), None)?;
                    "delivered"
                }
                "gone" => {
                    write("gone", attempts, None, Some(now + config.dead_letter_retention_ms()), error.clone())?;
                    "gone"
                }
                // The app is down (or being probed): hold it, whatever its budget.
                _ if circuit.mode != Mode::Active => {
                    write("held", charged, None, None, None)?;
                    wake = Some(wake.unwrap_or(now + 1000).min(circuit.next_probe_ms.unwrap_or(now + 1000)));
                    "held"
                }
                "give_up" => {
                    let reason = format!("gave up after {attempts} attempts; last: {}", error.as_deref().unwrap_or("unknown"));
                    write("failed", attempts, None, Some(now + config.dead_letter_retention_ms()), Some(reason))?;
                    "failed"
                }
                _ => {
                    let delay = schedule::delay_seconds(config.retry_base_seconds, attempt.max(1) as u32, js_sys::Math::random());
                    let due = now + i64::from(delay) * 1000 + config.recovery_grace_ms();
                    write("retrying", attempts, Some(due), None, None)?;
                    push_result(&mut results, &id, "pending", Some(delay));
                    continue;
                }
            };
            push_result(&mut results, &id, status, None);
        }
        self.save_circuit(&circuit)?;
        if let Some(when) = wake {
            fx.wake(when);
        } else {
            fx.wake(now + config.delivery_log_ms());
        }
        Ok(Reply::Ok(format!("{{\"results\":[{results}]}}")))
    }

    /// The dead-letter queue's consumer: the queue gave up on a message
    /// (its consumer kept failing). The delivery fails unless it is settled.
    fn dead(&self, body: &str, now: i64, fx: &mut Effects) -> Result<Reply> {
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
        fx.wake(now + config.dead_letter_retention_ms());
        Ok(Reply::Ok("{}".into()))
    }

    /// Lists deliveries, newest first:
    /// `{"status":[…],"conversation","event","since","until","limit","before":{"at","id"}}`,
    /// each filter optional. Answers a JSON array of [`Listed`] objects.
    fn list(&self, body: &str) -> Result<Reply> {
        let value = parse(body)?;
        let statuses = strings(&value, "status");
        let limit = integer(&value, "limit").unwrap_or(50).clamp(1, 500);
        let mut query = format!("SELECT {LISTED} FROM deliveries WHERE 1");
        let mut binds: Vec<SqlStorageValue> = Vec::new();
        if !statuses.is_empty() {
            query.push_str(" AND status IN (");
            for (i, s) in statuses.into_iter().enumerate() {
                query.push_str(if i == 0 { "?" } else { ", ?" });
                binds.push(s.into());
            }
            query.push(')');
        }
        if let Ok(conversation) = text(&value, "conversation") {
            query.push_str(" AND conversation = ?");
            binds.push(conversation.into());
        }
        if let Ok(event) = text(&value, "event") {
            query.push_str(" AND event_id = ?");
            binds.push(event.into());
        }
        if let Some(since) = integer(&value, "since") {
            query.push_str(" AND created_at >= ?");
            binds.push(since.into());
        }
        if let Some(until) = integer(&value, "until") {
            query.push_str(" AND created_at < ?");
            binds.push(until.into());
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

    /// One delivery with its body and attempts:
    /// `{…listed…,"body":"…","attemptLog":[…]}` (the body is the outbound
    /// event before token handling, as text; the admin API redacts it).
    fn get(&self, body: &str) -> Result<Reply> {
        let id = text(&parse(body)?, "id")?;
        let sql = self.sql();
        let rows: Vec<Listed> = sql.exec(&format!("SELECT {LISTED} FROM deliveries WHERE id = ?"), vec![id.clone().into()])?.to_array()?;
        let Some(row) = rows.first() else {
            return Ok(Reply::Status(404, format!("no delivery {id}")));
        };
        let bodies: Vec<Text> = sql.exec("SELECT body AS value FROM deliveries WHERE id = ?", vec![id.clone().into()])?.to_array()?;
        let attempts: Vec<Attempt> = sql
            .exec("SELECT n, at, code, error, latency_ms, probe FROM attempts WHERE id = ? ORDER BY seq", vec![id.into()])?
            .to_array()?;
        let mut out = String::new();
        write_listed(&mut out, row);
        out.pop();
        out.push_str(",\"body\":");
        json::write_str_escaped(&mut out, bodies.first().map_or("", |b| b.value.as_str()));
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
            out.push_str(&format!(",\"latencyMs\":{},\"probe\":{}}}", a.latency_ms as i64, a.probe as i64 == 1));
        }
        out.push_str("]}");
        Ok(Reply::Ok(out))
    }

    /// A new delivery `<id>.r<n>` with the same event (and so the same
    /// `webhook-id`) as the dead letter `id`, which becomes `replayed`.
    /// Answers the new id, or why not.
    fn make_replay(&self, id: &str, now: i64, held: bool, config: &Config) -> Result<std::result::Result<String, Reply>> {
        let sql = self.sql();
        let rows: Vec<Listed> = sql.exec(&format!("SELECT {LISTED} FROM deliveries WHERE id = ?"), vec![id.into()])?.to_array()?;
        let Some(row) = rows.first() else {
            return Ok(Err(Reply::Status(
                404,
                format!(
                    "no delivery {id}: dead letters are kept for {} s (DEAD_LETTER_RETENTION_SECONDS), so it has expired or never existed",
                    config.dead_letter_retention_seconds
                ),
            )));
        };
        match row.status.as_str() {
            "failed" | "gone" => {}
            "replayed" => {
                return Ok(Err(Reply::Status(409, format!("{id} was already replayed as {}", row.replayed_as.as_deref().unwrap_or("?")))))
            }
            other => {
                return Ok(Err(Reply::Status(
                    409,
                    format!("{id} is {other}, not a dead letter; only failed or gone deliveries can be replayed"),
                )))
            }
        }
        let new_id = handoff::replay_id(id);
        sql.exec(
            "INSERT INTO deliveries (id, event_id, type, scope, conversation, body, status, generation, attempts, created_at, \
             updated_at, due_at) SELECT ?, event_id, type, scope, conversation, body, ?, 1, 0, ?, ?, ? FROM deliveries WHERE id = ?",
            vec![
                new_id.clone().into(),
                (if held { "held" } else { "queued" }).into(),
                now.into(),
                now.into(),
                if held { SqlStorageValue::Null } else { (now + config.recovery_grace_ms()).into() },
                id.into(),
            ],
        )?;
        sql.exec(
            "UPDATE deliveries SET status = 'replayed', replayed_as = ?, updated_at = ?, expires_at = ? WHERE id = ?",
            vec![new_id.clone().into(), now.into(), (now + config.dead_letter_retention_ms()).into(), id.into()],
        )?;
        Ok(Ok(new_id))
    }

    /// Queues a failed or gone delivery once more (held if the app is down
    /// or paused). Answers `{"replayed":…,"as":…}`; 404 when unknown or
    /// expired, 409 when it is not a dead letter or was replayed already.
    fn replay(&self, body: &str, now: i64, fx: &mut Effects) -> Result<Reply> {
        let id = text(&parse(body)?, "id")?;
        let config = super::config(&self.env);
        let held = self.circuit(&config)?.queues_behind();
        let new_id = match self.make_replay(&id, now, held, &config)? {
            Ok(new_id) => new_id,
            Err(reply) => return Ok(reply),
        };
        fx.wake(if held { now + 1000 } else { now + config.recovery_grace_ms() });
        if !held {
            fx.send.push(Ref { destination: self.name()?, id: new_id.clone(), generation: 1 }.encode());
        }
        let mut out = String::from("{\"replayed\":");
        json::write_str_escaped(&mut out, &id);
        out.push_str(",\"as\":");
        json::write_str_escaped(&mut out, &new_id);
        out.push('}');
        Ok(Reply::Ok(out))
    }

    /// Every failed (or gone) delivery since a time, once more: `{"since","status":[…]}`.
    /// They are held and drain in their original order at `DRAIN_PER_SECOND`.
    /// Answers `{"recovered":n}`.
    fn recover(&self, body: &str, now: i64, fx: &mut Effects) -> Result<Reply> {
        let value = parse(body)?;
        self.learn_name(&value)?;
        let config = super::config(&self.env);
        let since = integer(&value, "since").unwrap_or(0);
        let statuses = strings(&value, "status");
        let mut circuit = self.circuit(&config)?;
        let mut recovered = 0;
        for status in statuses.iter().filter(|s| matches!(s.as_str(), "failed" | "gone")) {
            let rows: Vec<Text> = self
                .sql()
                .exec("SELECT id AS value FROM deliveries WHERE status = ? AND created_at >= ? ORDER BY seq", vec![status.clone().into(), since.into()])?
                .to_array()?;
            for row in rows {
                if self.make_replay(&row.value, now, true, &config)?.is_ok() {
                    recovered += 1;
                }
            }
        }
        if recovered > 0 && circuit.mode == Mode::Active {
            circuit.draining = true;
            self.save_circuit(&circuit)?;
        }
        fx.wake(now);
        Ok(Reply::Ok(format!("{{\"recovered\":{recovered}}}")))
    }

    /// Paused by hand: everything is held until a resume.
    fn pause(&self, body: &str, now: i64, fx: &mut Effects) -> Result<Reply> {
        let name = self.learn_name(&parse(body)?)?;
        let config = super::config(&self.env);
        let mut circuit = self.circuit(&config)?;
        circuit.pause(now);
        self.save_circuit(&circuit)?;
        self.log_state(&name, &circuit, "paused by hand");
        let held = self.count("SELECT COUNT(*) AS n FROM deliveries WHERE status = 'held'", Vec::new())?;
        fx.wake(now + config.hold_retention_ms());
        Ok(Reply::Ok(format!("{{\"state\":\"paused\",\"held\":{held}}}")))
    }

    /// Resumed by hand: active again, held deliveries drain in order.
    fn resume(&self, body: &str, now: i64, fx: &mut Effects) -> Result<Reply> {
        let name = self.learn_name(&parse(body)?)?;
        let config = super::config(&self.env);
        let mut circuit = self.circuit(&config)?;
        circuit.resume(now, &config.circuit);
        self.save_circuit(&circuit)?;
        self.log_state(&name, &circuit, "resumed by hand");
        let held = self.count("SELECT COUNT(*) AS n FROM deliveries WHERE status = 'held'", Vec::new())?;
        fx.wake(now);
        Ok(Reply::Ok(format!("{{\"state\":\"active\",\"draining\":{held}}}")))
    }

    /// The destination's health for the admin API (without its name, URL
    /// and types, which the worker adds from the configuration).
    fn health(&self, _body: &str, now: i64) -> Result<Reply> {
        let config = super::config(&self.env);
        let circuit = self.circuit(&config)?;
        #[derive(Deserialize)]
        struct ByStatus {
            status: String,
            n: f64,
        }
        let rows: Vec<ByStatus> = self.sql().exec("SELECT status, COUNT(*) AS n FROM deliveries GROUP BY status", None)?.to_array()?;
        let count = |names: &[&str]| rows.iter().filter(|r| names.contains(&r.status.as_str())).map(|r| r.n as i64).sum::<i64>();
        let mut out = format!("{{\"state\":\"{}\",\"stateSince\":", circuit.mode.as_str());
        push_opt(&mut out, circuit.since_ms);
        out.push_str(&format!(",\"consecutiveFailures\":{},\"lastError\":", circuit.consecutive_failures));
        match &circuit.last_error {
            Some(e) => json::write_str_escaped(&mut out, e),
            None => out.push_str("null"),
        }
        out.push_str(",\"lastErrorAt\":");
        push_opt(&mut out, circuit.last_error_ms);
        out.push_str(",\"lastSuccessAt\":");
        push_opt(&mut out, circuit.last_success_ms);
        out.push_str(",\"nextProbeAt\":");
        push_opt(&mut out, circuit.next_probe_ms.filter(|_| circuit.mode == Mode::Tripped));
        let held = count(&["held"]);
        out.push_str(&format!(
            ",\"held\":{held},\"draining\":{},\"counts\":{{\"pending\":{},\"held\":{held},\"delivered\":{},\"failed\":{},\"gone\":{},\"replayed\":{}}}",
            circuit.draining && circuit.mode == Mode::Active,
            count(&["queued", "sending", "retrying"]),
            count(&["delivered"]),
            count(&["failed"]),
            count(&["gone"]),
            count(&["replayed"]),
        ));
        for (label, span) in [("lastHour", 3_600_000), ("lastDay", 86_400_000)] {
            out.push_str(&format!(",\"{label}\":"));
            out.push_str(&self.window(now - span)?);
        }
        out.push('}');
        Ok(Reply::Ok(out))
    }

    /// Attempts since `since`: how many, how many succeeded, and the median
    /// and 95th percentile latency.
    fn window(&self, since: i64) -> Result<String> {
        let attempts = self.count("SELECT COUNT(*) AS n FROM attempts WHERE at >= ?", vec![since.into()])?;
        let succeeded = self.count(
            "SELECT COUNT(*) AS n FROM attempts WHERE at >= ? AND code BETWEEN 200 AND 299",
            vec![since.into()],
        )?;
        let percentile = |p: f64| -> Result<Option<i64>> {
            if attempts == 0 {
                return Ok(None);
            }
            let offset = ((attempts as f64 - 1.0) * p).round() as i64;
            let rows: Vec<Count> = self
                .sql()
                .exec(
                    "SELECT latency_ms AS n FROM attempts WHERE at >= ? ORDER BY latency_ms LIMIT 1 OFFSET ?",
                    vec![since.into(), offset.into()],
                )?
                .to_array()?;
            Ok(rows.first().map(|r| r.n as i64))
        };
        let mut out = format!("{{\"attempts\":{attempts},\"succeeded\":{succeeded},\"successRatio\":");
        if attempts == 0 {
            out.push_str("null");
        } else {
            // Four decimals without float formatting (which costs the wasm 14 KB).
            let ten_thousandths = (succeeded * 10_000 + attempts / 2) / attempts;
            let (whole, part) = (ten_thousandths / 10_000, ten_thousandths % 10_000);
            let part = format!("{part:04}");
            let part = part.trim_end_matches('0');
            out.push_str(&whole.to_string());
            if !part.is_empty() {
                out.push('.');
                out.push_str(part);
            }
        }
        out.push_str(",\"p50Ms\":");
        push_opt(&mut out, percentile(0.5)?);
        out.push_str(",\"p95Ms\":");
        push_opt(&mut out, percentile(0.95)?);
        out.push('}');
        Ok(out)
    }

    /// The alarm: probes a tripped app, drains a backlog, queues again what
    /// made no progress, fails what was held too long, deletes what outlived
    /// its retention, and sets the next alarm (or none).
    fn run(&self, now: i64, fx: &mut Effects) -> Result<()> {
        let config = super::config(&self.env);
        let sql = self.sql();
        let Some(name) = self.meta("name")? else {
            fx.exact = Some(None);
            return Ok(());
        };
        let mut circuit = self.circuit(&config)?;
        let mut messages = Vec::new();
        let mut more = false;

        // What made no progress: queued again (or held, if the app is down).
        let overdue: Vec<Live> = sql
            .exec(
                &format!(
                    "SELECT id, status, generation, attempts, event_id, '' AS body, due_at FROM deliveries \
                     WHERE status IN {LIVE} AND due_at <= ? ORDER BY seq LIMIT ?"
                ),
                vec![now.into(), ALARM_ROWS.into()],
            )?
            .to_array()?;
        more |= overdue.len() as i64 == ALARM_ROWS;
        circuit.probe_lost(now, &config.circuit);
        for row in &overdue {
            if circuit.holds(&row.id) {
                sql.exec("UPDATE deliveries SET status = 'held', due_at = NULL, probe = 0, updated_at = ? WHERE id = ?", vec![now.into(), row.id.clone().into()])?;
                continue;
            }
            let generation = row.generation as i64 + 1;
            sql.exec(
                "UPDATE deliveries SET status = 'queued', generation = ?, updated_at = ?, due_at = ? WHERE id = ?",
                vec![generation.into(), now.into(), (now + config.recovery_grace_ms()).into(), row.id.clone().into()],
            )?;
            messages.push(Ref { destination: name.clone(), id: row.id.clone(), generation: generation as u32 }.encode());
        }
        if !messages.is_empty() {
            worker::console_log!("destination {name}: no progress on {} deliveries; queued them again", messages.len());
        }

        // A tripped app: probe it with its oldest held delivery.
        if circuit.probe_due(now) {
            if let Some(row) = self.oldest_held(1)?.into_iter().next() {
                messages.push(self.release(&row, &name, now, &config)?);
                circuit.start_probe(&row.id, now);
                log_json(&[("kind", LogValue::Str("probe")), ("destination", LogValue::Str(&name)), ("delivery", LogValue::Str(&row.id))]);
            }
        }

        // Catching up: the oldest held deliveries, DRAIN_PER_SECOND a second.
        if circuit.mode == Mode::Active && !circuit.draining && !self.oldest_held(1)?.is_empty() {
            circuit.draining = true;
        }
        if circuit.mode == Mode::Active && circuit.draining {
            let batch = self.oldest_held(i64::from(config.circuit.drain_per_second))?;
            if (batch.len() as i64) < i64::from(config.circuit.drain_per_second) {
                circuit.drained();
            }
            for row in &batch {
                messages.push(self.release(row, &name, now, &config)?);
            }
        }
        self.save_circuit(&circuit)?;
        fx.send.extend(messages);

        // Held for too long (the app never came back): failed.
        let too_old = now - config.hold_retention_ms();
        let stale: Vec<Text> = sql
            .exec("SELECT id AS value FROM deliveries WHERE status = 'held' AND created_at <= ? LIMIT ?", vec![too_old.into(), ALARM_ROWS.into()])?
            .to_array()?;
        more |= stale.len() as i64 == ALARM_ROWS;
        for row in stale {
            sql.exec(
                "UPDATE deliveries SET status = 'failed', due_at = NULL, updated_at = ?, expires_at = ?, reason = ? WHERE id = ?",
                vec![
                    now.into(),
                    (now + config.dead_letter_retention_ms()).into(),
                    format!("held for longer than {} s (HOLD_RETENTION_SECONDS) while the app was down or paused", config.hold_retention_seconds).into(),
                    row.value.into(),
                ],
            )?;
        }

        // Past their retention: deleted, attempts and all.
        let expired: Vec<Text> = sql
            .exec("SELECT id AS value FROM deliveries WHERE expires_at <= ? LIMIT ?", vec![now.into(), ALARM_ROWS.into()])?
            .to_array()?;
        more |= expired.len() as i64 == ALARM_ROWS;
        for row in expired {
            sql.exec("DELETE FROM attempts WHERE id = ?", vec![row.value.clone().into()])?;
            sql.exec("DELETE FROM deliveries WHERE id = ?", vec![row.value.into()])?;
        }

        let next: Vec<Due> = sql
            .exec(
                &format!(
                    "SELECT MIN(due) AS due FROM (\
                       SELECT MIN(due_at) AS due FROM deliveries WHERE status IN {LIVE} \
                       UNION ALL SELECT MIN(expires_at) FROM deliveries \
                       UNION ALL SELECT MIN(created_at) + ? FROM deliveries WHERE status = 'held')"
                ),
                vec![(config.hold_retention_ms() + 1).into()],
            )?
            .to_array()?;
        let held = self.count("SELECT COUNT(*) AS n FROM deliveries WHERE status = 'held' LIMIT 1", Vec::new())? > 0;
        let mut wake = next.first().and_then(|d| d.due).map(|d| d as i64);
        let mut sooner = |t: i64| wake = Some(wake.map_or(t, |w| w.min(t)));
        if held && circuit.mode == Mode::Active && circuit.draining {
            sooner(now + 1000);
        }
        if held && circuit.mode == Mode::Tripped {
            if let Some(probe) = circuit.next_probe_ms {
                sooner(probe);
            }
        }
        fx.exact = Some(match wake {
            _ if more => Some(now),
            Some(due) => Some(due.max(now + 1)),
            None => None,
        });
        Ok(())
    }

    /// The `limit` oldest held deliveries, in the order they were accepted.
    fn oldest_held(&self, limit: i64) -> Result<Vec<Live>> {
        self.sql()
            .exec(
                "SELECT id, status, generation, attempts, event_id, '' AS body, due_at FROM deliveries \
                 WHERE status = 'held' ORDER BY seq LIMIT ?",
                vec![limit.into()],
            )?
            .to_array()
    }

    /// A held delivery goes back on the queue; answers its message.
    fn release(&self, row: &Live, name: &str, now: i64, config: &Config) -> Result<String> {
        let generation = row.generation as i64 + 1;
        self.sql().exec(
            "UPDATE deliveries SET status = 'queued', generation = ?, updated_at = ?, due_at = ? WHERE id = ?",
            vec![generation.into(), now.into(), (now + config.recovery_grace_ms()).into(), row.id.clone().into()],
        )?;
        Ok(Ref { destination: name.to_owned(), id: row.id.clone(), generation: generation as u32 }.encode())
    }

    /// Does what an operation left to do: the alarm, then the queue. A
    /// refused send leaves its deliveries queued: the alarm sends them again
    /// after the grace period.
    async fn apply(&self, fx: Effects) -> Result<()> {
        match fx.exact {
            Some(Some(when)) => self.set_alarm(when).await?,
            Some(None) => self.delete_alarm().await?,
            None => {
                if let Some(when) = fx.wake {
                    self.schedule(when).await?;
                }
            }
        }
        if !fx.send.is_empty() {
            if let Err((sent, e)) = bindings::enqueue(&self.env, &fx.send).await {
                let name = self.meta("name")?.unwrap_or_default();
                worker::console_error!("destination {name}: {} of {} deliveries not queued yet: {e}", fx.send.len() - sent, fx.send.len());
            }
        }
        Ok(())
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

fn push_opt(out: &mut String, value: Option<i64>) {
    match value {
        Some(v) => out.push_str(&v.to_string()),
        None => out.push_str("null"),
    }
}

fn push_result(out: &mut String, id: &str, status: &str, delay: Option<u32>) {
    out.push_str(if out.is_empty() { "{\"id\":" } else { ",{\"id\":" });
    json::write_str_escaped(out, id);
    out.push_str(",\"status\":");
    json::write_str_escaped(out, status);
    if let Some(delay) = delay {
        out.push_str(&format!(",\"delay\":{delay}"));
    }
    out.push('}');
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

/// An absolute alarm time (a bare i64 would be read as an offset).
fn at(ms: i64) -> worker::ScheduledTime {
    worker::ScheduledTime::new(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64)))
}
