//! A small simulation of the runtime around the delivery state machine:
//! outboxes, delivery logs and the registry over real SQLite, a queue with
//! delays, redelivery and a dead-letter queue, a consumer, apps that answer
//! as a test says, a clock, and crashes. It applies `Effects` exactly as
//! src/worker/entry.mjs does: the step's writes and alarm in one
//! transaction, then the sends and calls, then the continuation. A crash
//! stops between any two of these, as a killed process would: what was
//! committed stays, what was not done is not done.
#![allow(dead_code)]

use std::collections::BTreeMap;

use drift_bridge::config::Config;
use drift_bridge::delivery::consumer::{self, Seen};
use drift_bridge::delivery::effects::{Call, CallResult, Effects, Object};
use drift_bridge::delivery::handoff;
use drift_bridge::delivery::log::{self, Context};
use drift_bridge::delivery::message::{CallResults, QUEUE_MAX_DELAY_SECONDS};
use drift_bridge::delivery::{outbox, registry};
use drift_bridge::{translate, Options};

use super::Db;

/// How an app answers one request: a status, or `None` for no answer.
pub type Behave = Box<dyn FnMut(&Request<'_>) -> Option<u16>>;

/// What an app is asked.
pub struct Request<'a> {
    pub destination: &'a str,
    pub webhook_id: &'a str,
    pub body: &'a str,
    pub now: i64,
}

/// A request an app answered 2xx.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub destination: String,
    pub webhook_id: String,
    pub at: i64,
}

struct Message {
    body: String,
    visible_at: i64,
    /// Deliveries to a consumer that did not end in an ack.
    tries: u32,
    dead: bool,
}

/// The queue's `max_retries`, as in wrangler.toml.
pub const MAX_RETRIES: u32 = 11;
/// Messages a consumer gets at once.
pub const BATCH: usize = 10;

pub struct World {
    pub config: Config,
    pub now: i64,
    pub outboxes: BTreeMap<String, Db>,
    pub logs: BTreeMap<String, Db>,
    pub registry: Db,
    queue: Vec<Message>,
    pub apps: BTreeMap<String, Behave>,
    pub received: Vec<Received>,
    /// The kind of every alert an alert target (`@…`) took.
    pub sent_alerts: Vec<String>,
    /// Every (event id, destination) an outbox answered 200 for.
    pub accepted: Vec<(String, String)>,
    /// Decides, at each point a crash may happen, whether it does.
    pub crash: Box<dyn FnMut() -> bool>,
    pub crashes: u32,
    /// The current invocation's process died.
    died: bool,
    pub lines: Vec<String>,
    seed: u32,
    /// Whether the queue loses a message now and then (it is at least once,
    /// but a restart of local workerd loses what it held).
    pub lossy_queue: bool,
    /// Whether the registry answers: without it, only the declared apps
    /// are known for sure.
    pub apps_known: bool,
    rng: u64,
}

impl World {
    pub fn new(config: Config, now: i64) -> World {
        let registry = Db::new();
        registry::open(&registry).unwrap();
        World {
            config,
            now,
            outboxes: BTreeMap::new(),
            logs: BTreeMap::new(),
            registry,
            queue: Vec::new(),
            apps: BTreeMap::new(),
            received: Vec::new(),
            sent_alerts: Vec::new(),
            accepted: Vec::new(),
            crash: Box::new(|| false),
            crashes: 0,
            died: false,
            lines: Vec::new(),
            seed: 7,
            lossy_queue: false,
            apps_known: true,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn crashed(&mut self) -> bool {
        if self.died {
            return true;
        }
        if (self.crash)() {
            self.crashes += 1;
            self.died = true;
        }
        self.died
    }

    fn ctx(&mut self) -> Context<'_> {
        self.seed = self.seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        Context { settings: &self.config.delivery, now: self.now, seed: self.seed, apps_known: self.apps_known }
    }

    pub fn app(&mut self, name: &str, behave: impl FnMut(&Request<'_>) -> Option<u16> + 'static) {
        self.apps.insert(name.to_owned(), Box::new(behave));
    }

    /// The delivery log of `name` (created, as the runtime does, on first use).
    pub fn log(&mut self, name: &str) -> &Db {
        if !self.logs.contains_key(name) {
            let db = Db::new();
            let config = self.config.clone();
            log::open(&db, &Context { settings: &config.delivery, now: self.now, seed: 0, apps_known: true }).unwrap();
            self.logs.insert(name.to_owned(), db);
        }
        &self.logs[name]
    }

    fn outbox(&mut self, scope: &str) -> &Db {
        self.outboxes.entry(scope.to_owned()).or_insert_with(|| {
            let db = Db::new();
            outbox::open(&db).unwrap();
            db
        })
    }

    /// A webhook from Drift: translated, handed to its outbox. Answers the
    /// outbox's status (what Drift is answered: 200 or 503).
    pub fn webhook(&mut self, event: &str) -> u16 {
        self.died = false;
        let events = translate(event, &Options::new(self.now)).unwrap();
        let value = drift_bridge::json::parse(event, &drift_bridge::Limits::default()).unwrap();
        let org = value.get("orgId").and_then(drift_bridge::json::Value::as_integer).map(str::to_owned);
        let Some(plan) = handoff::plan(&events, &self.config.delivery.destinations, org.as_deref(), self.now) else { return 200 };
        let now = self.now;
        let db = self.outbox(&plan.scope);
        let fx = db.run(|sql| outbox::accept(sql, &plan.payload, now)).unwrap();
        let status = fx.reply.as_ref().map_or(500, |r| r.status);
        if status == 200 {
            for e in handoff::HandOff::decode(&plan.payload).unwrap().events {
                for d in &e.to {
                    self.accepted.push((e.id.clone(), d.clone()));
                }
            }
        }
        status
    }

    /// Sends what effects name (a crash may stop before or between them).
    fn send(&mut self, fx: &Effects) -> bool {
        for s in &fx.sends {
            if self.crashed() {
                return false;
            }
            let lost = self.lossy_queue && self.random().is_multiple_of(10);
            if !lost {
                self.queue.push(Message {
                    body: s.body.clone(),
                    visible_at: self.now + i64::from(s.delay_seconds.min(QUEUE_MAX_DELAY_SECONDS)) * 1000,
                    tries: 0,
                    dead: false,
                });
            }
        }
        true
    }

    /// One object call, as another object makes it.
    fn call(&mut self, call: &Call) -> CallResult {
        let body = call.body.clone();
        let result = match &call.to {
            Object::DeliveryLog(name) => {
                let name = name.clone();
                self.log_op(&name, call.op, &body)
            }
            Object::Registry => {
                let now = self.now;
                let fx = match call.op {
                    "/register" => self.registry.run(|sql| registry::register(sql, &body, true, now)),
                    "/unregister" => self.registry.run(|sql| registry::register(sql, &body, false, now)),
                    _ => self.registry.run(registry::logs),
                };
                fx.map(|fx| fx.reply.map(|r| (r.status, r.body)).unwrap_or((200, String::new()))).map_err(|e| e.to_string())
            }
            // Alerts, handed to an outbox: its alarm forwards them to the alert targets' logs.
            Object::Outbox(scope) => {
                let now = self.now;
                let db = self.outbox(&scope.clone());
                db.run(|sql| outbox::accept(sql, &body, now))
                    .map(|fx| fx.reply.map(|r| (r.status, r.body)).unwrap_or((200, String::new())))
                    .map_err(|e| e.to_string())
            }
        };
        match result {
            Ok((status, body)) => CallResult { ticket: call.ticket.clone(), status: Some(status), body },
            Err(e) => CallResult { ticket: call.ticket.clone(), status: None, body: e },
        }
    }

    /// Runs one operation of a delivery log and everything it asks for;
    /// answers its reply (or why there is none: a crash, a failure).
    pub fn log_op(&mut self, name: &str, op: &str, body: &str) -> Result<(u16, String), String> {
        self.log(name);
        let ctx_config = self.config.clone();
        let seed = {
            self.seed = self.seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            self.seed
        };
        let ctx = Context { settings: &ctx_config.delivery, now: self.now, seed, apps_known: self.apps_known };
        let db = &self.logs[name];
        let fx = db
            .run(|sql| match op {
                "/add" => log::add(sql, &ctx, body),
                "/attempt" => log::attempt(sql, &ctx, body),
                "/settle" => log::settle(sql, &ctx, body),
                "/dead" => log::dead(sql, &ctx, body),
                "/list" => log::list(sql, &ctx, body),
                "/get" => log::get(sql, &ctx, body),
                "/replay" => log::replay(sql, &ctx, body),
                "/recover" => log::recover(sql, &ctx, body),
                "/pause" => log::pause(sql, &ctx, body),
                "/resume" => log::resume(sql, &ctx, body),
                "/health" => log::health(sql, &ctx, body),
                "/stats" => log::stats(sql, &ctx),
                "/metrics" => log::metrics(sql, &ctx, body),
                "/totals" => log::totals(sql, &ctx),
                "/end" => log::end(sql, &ctx, body),
                other => panic!("unknown op {other}"),
            })
            .map_err(|e| e.to_string())?;
        let reply = fx.reply.clone().map(|r| (r.status, r.body));
        self.after(Some(name), fx)?;
        reply.ok_or_else(|| "no reply".into())
    }

    /// What the adapter does after a step committed: log, send, call, then
    /// the continuation. `Err` when a crash stopped it.
    fn after(&mut self, log_name: Option<&str>, fx: Effects) -> Result<(), String> {
        for line in &fx.logs {
            self.lines.push(line.text.clone());
        }
        if !self.send(&fx) {
            return Err("crashed".into());
        }
        if fx.calls.is_empty() {
            return Ok(());
        }
        let mut results = Vec::new();
        for call in &fx.calls {
            if self.crashed() {
                return Err("crashed".into());
            }
            results.push(self.call(call));
        }
        if self.crashed() {
            return Err("crashed".into());
        }
        let Some(then) = fx.then else { return Ok(()) };
        let text = CallResults::encode(&results);
        let config = self.config.clone();
        let now = self.now;
        let apps_known = self.apps_known;
        let next = match (then, log_name) {
            ("called", Some(name)) => {
                let db = &self.logs[name];
                db.run(|sql| log::called(sql, &Context { settings: &config.delivery, now, seed: 0, apps_known }, &text))
            }
            (other, _) => panic!("unexpected continuation {other}"),
        }
        .map_err(|e| e.to_string())?;
        self.after(log_name, next)
    }

    /// Fires every alarm that is due.
    pub fn alarms(&mut self) {
        let now = self.now;
        let due: Vec<String> = self.outboxes.iter().filter(|(_, db)| db.alarm.get().is_some_and(|a| a <= now)).map(|(k, _)| k.clone()).collect();
        for scope in due {
            self.died = false;
            // The alarm that fires stays set until its handler ends; then it
            // is gone unless the handler set another.
            let db = &self.outboxes[&scope];
            let fired = db.alarm.get();
            let fx = match db.run(|sql| outbox::alarm(sql, now)) {
                Ok(fx) => fx,
                Err(_) => continue,
            };
            self.lines.extend(fx.logs.iter().map(|l| l.text.clone()));
            let mut results = Vec::new();
            let mut crashed = false;
            for call in &fx.calls {
                if self.crashed() {
                    crashed = true;
                    break;
                }
                results.push(self.call(call));
            }
            if crashed || (fx.then.is_some() && self.crashed()) {
                // The handler never ended: the runtime runs it again.
                continue;
            }
            let config = self.config.clone();
            let db = &self.outboxes[&scope];
            if fx.then.is_some() {
                match db.run(|sql| outbox::forwarded(sql, &config.delivery, &results, now)) {
                    Ok(next) => self.lines.extend(next.logs.iter().map(|l| l.text.clone())),
                    Err(_) => continue,
                }
            }
            if db.alarm.get() == fired {
                db.alarm.set(None);
            }
        }
        let due: Vec<String> = self.logs.iter().filter(|(_, db)| db.alarm.get().is_some_and(|a| a <= now)).map(|(k, _)| k.clone()).collect();
        for name in due {
            self.died = false;
            let config = self.config.clone();
            let seed = {
                self.seed = self.seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                self.seed
            };
            let apps_known = self.apps_known;
            let db = &self.logs[&name];
            let fired = db.alarm.get();
            match db.run(|sql| log::alarm(sql, &Context { settings: &config.delivery, now, seed, apps_known })) {
                Ok(fx) => {
                    let done = self.after(Some(&name), fx).is_ok();
                    let db = &self.logs[&name];
                    if done && db.alarm.get() == fired {
                        db.alarm.set(None);
                    }
                }
                // A failed handler is run again.
                Err(_) => {}
            }
        }
        self.died = false;
    }

    /// One batch of the delivery queue (and of the dead-letter queue), as
    /// the consumer serves it. Answers how many messages it took.
    pub fn consume(&mut self) -> usize {
        let now = self.now;
        let mut taken = 0;
        for dead in [false, true] {
            let picked: Vec<usize> =
                (0..self.queue.len()).filter(|&i| self.queue[i].dead == dead && self.queue[i].visible_at <= now).take(BATCH).collect();
            if picked.is_empty() {
                continue;
            }
            taken += picked.len();
            let bodies: Vec<String> = picked.iter().map(|&i| self.queue[i].body.clone()).collect();
            self.died = false;
            let acked = self.consume_batch(dead, &bodies);
            self.died = false;
            // Acked messages go; the others come back later (the consumer
            // crashed), and after max_retries to the dead-letter queue.
            let mut keep = Vec::new();
            for (i, m) in std::mem::take(&mut self.queue).into_iter().enumerate() {
                match picked.iter().position(|&p| p == i) {
                    Some(_) if acked => {}
                    Some(_) => {
                        let mut m = m;
                        m.tries += 1;
                        m.visible_at = now + 1000;
                        if m.tries > MAX_RETRIES {
                            if m.dead {
                                continue;
                            }
                            m.dead = true;
                            m.tries = 0;
                        }
                        keep.push(m);
                    }
                    None => keep.push(m),
                }
            }
            self.queue = keep;
        }
        taken
    }

    /// Serves one batch; answers whether it ended with the messages acked.
    fn consume_batch(&mut self, dead: bool, bodies: &[String]) -> bool {
        let refs: Vec<&str> = bodies.iter().map(String::as_str).collect();
        let plan = consumer::plan(&self.config.delivery, dead, &refs);
        self.lines.extend(plan.logs.iter().map(|l| l.text.clone()));
        for group in &plan.calls {
            if self.crashed() {
                return false;
            }
            let reply = match self.log_op(&group.destination, group.op, &group.body) {
                Ok((200, reply)) => reply,
                _ if self.died => return false,
                // The log refused or failed: ack anyway; its alarm recovers
                // what made no progress.
                _ => continue,
            };
            if group.op != "/attempt" {
                continue;
            }
            let requests = consumer::requests(&self.config.delivery, &group.destination, &reply, self.now).unwrap();
            let mut seen = Vec::new();
            // As the adapter does, wave by wave: an answer that shows the app
            // in trouble stops the later waves, not the rest of its own.
            let mut stopped = false;
            let mut stops = false;
            let mut in_order: Vec<&consumer::Request> = requests.iter().collect();
            in_order.sort_by_key(|r| r.wave);
            let mut wave = 0;
            for r in in_order {
                if r.impossible.is_some() {
                    continue;
                }
                if r.wave != wave {
                    wave = r.wave;
                    stopped |= stops;
                }
                if stopped {
                    seen.push(Seen { id: r.id.clone(), unattempted: true, status: None, location: None, excerpt: String::new(), error: None, latency_ms: 0 });
                    continue;
                }
                let webhook_id = r.headers.iter().find(|(k, _)| *k == "webhook-id").map(|(_, v)| v.clone()).unwrap_or_default();
                let now = self.now;
                let status = match self.apps.get_mut(&group.destination) {
                    Some(app) => app(&Request { destination: &group.destination, webhook_id: &webhook_id, body: &r.body, now }),
                    None => Some(200),
                };
                if status.is_some_and(|s| (200..300).contains(&s)) {
                    // A delivery with a delay (an app with a rate) starts that much later.
                    let at = now + i64::from(r.delay_ms);
                    self.received.push(Received { destination: group.destination.clone(), webhook_id, at });
                    if group.destination.starts_with('@') {
                        let kind = drift_bridge::json::parse(&r.body, &drift_bridge::Limits::default())
                            .ok()
                            .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(|k| k.text().into_owned()));
                        self.sent_alerts.extend(kind);
                    }
                }
                if self.crashed() {
                    // After the POST, before /settle.
                    return false;
                }
                stops |= consumer::stops_batch(status);
                seen.push(Seen {
                    id: r.id.clone(),
                    unattempted: false,
                    status,
                    location: None,
                    excerpt: String::new(),
                    error: status.is_none().then(|| "no answer within the deadline".to_owned()),
                    latency_ms: 20,
                });
            }
            let settle = consumer::settle(&self.config.delivery, &group.destination, &requests, &seen);
            if self.crashed() {
                return false;
            }
            let _ = self.log_op(&group.destination, "/settle", &settle.encode());
            if self.died {
                return false;
            }
        }
        true
    }

    /// Lets time pass in steps of `step_ms`, firing alarms and consuming.
    pub fn run_for(&mut self, ms: i64, step_ms: i64) {
        let end = self.now + ms;
        while self.now < end {
            self.alarms();
            while self.consume() > 0 {
                self.alarms();
            }
            self.now += step_ms;
        }
        self.alarms();
        while self.consume() > 0 {
            self.alarms();
        }
    }

    /// Runs until nothing is due before `until`, jumping from one due time
    /// to the next (alarms, messages held back).
    pub fn run_until(&mut self, until: i64) {
        loop {
            self.alarms();
            while self.consume() > 0 {
                self.alarms();
            }
            let alarms = self.outboxes.values().chain(self.logs.values()).filter_map(|db| db.alarm.get());
            let messages = self.queue.iter().map(|m| m.visible_at);
            let Some(next) = alarms.chain(messages).min() else { break };
            if next > until {
                break;
            }
            self.now = next.max(self.now + 1);
        }
        self.now = self.now.max(until);
    }

    /// Checks what must hold between any two steps: every object with rows
    /// has an alarm, no later than the first row's time (and the delivery
    /// log's counts are what its rows say). Answers what is wrong.
    pub fn invariants(&mut self) -> Result<(), String> {
        for (scope, db) in &self.outboxes {
            let rows = db.count("SELECT COUNT(*) FROM outgoing");
            if rows > 0 && db.alarm.get().is_none() {
                return Err(format!("outbox {scope}: {rows} rows and no alarm"));
            }
        }
        let names: Vec<String> = self.logs.keys().cloned().collect();
        for name in names {
            let db = &self.logs[&name];
            let rows = db.count("SELECT COUNT(*) FROM deliveries");
            let first: Option<i64> = db.conn.query_row("SELECT MIN(wake_at) FROM deliveries", [], |r| r.get(0)).unwrap();
            match (first, db.alarm.get()) {
                (Some(_), None) => return Err(format!("log {name}: {rows} rows and no alarm")),
                (Some(first), Some(alarm)) if alarm > first.max(self.now) => {
                    return Err(format!("log {name}: the alarm at {alarm} is after the first row's time {first} (now {})", self.now))
                }
                _ => {}
            }
            let stats = self.stats(&name);
            let counted = |words: &[&str]| -> i64 {
                let Some(drift_bridge::json::Value::Object(m)) = stats.get("deliveries") else { return 0 };
                m.iter().filter(|(k, _)| words.contains(&k.text().as_ref())).map(|(_, v)| v.as_integer().unwrap().parse::<i64>().unwrap()).sum()
            };
            let kept = |word: &str| -> i64 { stats.get("counts").and_then(|c| c.get(word)).and_then(|v| v.as_integer()).unwrap().parse().unwrap() };
            for (word, stored) in [
                ("pending", &["queued", "sending", "retrying"][..]),
                ("held", &["held"]),
                ("delivered", &["delivered"]),
                ("failed", &["failed"]),
                ("gone", &["gone"]),
                ("replayed", &["replayed"]),
            ] {
                if kept(word) != counted(stored) {
                    return Err(format!("log {name}: {word} kept as {} but {} rows", kept(word), counted(stored)));
                }
            }
        }
        Ok(())
    }

    /// Messages waiting in the queues.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// The messages waiting in the delivery queue: body, and when it is
    /// delivered.
    pub fn messages(&self) -> Vec<(String, i64)> {
        self.queue.iter().filter(|m| !m.dead).map(|m| (m.body.clone(), m.visible_at)).collect()
    }

    /// Takes every waiting message off the queue (as if a consumer took
    /// them and acked), answering their bodies.
    pub fn take_messages(&mut self) -> Vec<String> {
        std::mem::take(&mut self.queue).into_iter().map(|m| m.body).collect()
    }

    /// The stats of a delivery log, as JSON.
    pub fn stats(&mut self, name: &str) -> drift_bridge::json::Value<'static> {
        let (_, text) = self.log_op(name, "/stats", "{}").unwrap();
        let leaked: &'static str = Box::leak(text.into_boxed_str());
        drift_bridge::json::parse(leaked, &drift_bridge::Limits::default()).unwrap()
    }
}
