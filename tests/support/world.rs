//! A simulation of the runtime around the delivery state machines: the
//! delivery logs, the registry and the outboxes of an older version over
//! real SQLite, apps that answer as a test says, a clock, and crashes.
//!
//! It runs every step as the production entry (src/worker/entry.mjs) does,
//! by executing [`Effects::actions`] in order and nothing else:
//!
//! 1. the step, with the alarm it asks for, in one transaction (a request
//!    or an alarm step carries the reports of what the object's app
//!    answered since its last step: `log::serve`'s `reports`);
//! 2. `Log`: the lines;
//! 3. `Reply`: the answer, once `hold_until` has passed on the simulated
//!    clock;
//! 4. `Post`: the requests to the app, side by side (one with a delay goes
//!    that much later); each answer is held and reported as one `/sent`
//!    step of the object within `report_within_ms` of its arrival, or
//!    carried by the object's next request or alarm step if that comes
//!    first; a test delivery's answer is reported at once, and that step's
//!    reply answers the request;
//! 5. `Call`: the calls to other objects, one after the other; the results
//!    of those with a ticket come back as one `/called` step right after.
//!
//! A crash can stop the process between any two of these (and between any
//! two requests of a `Post` or calls of a `Call`), as a killed process
//! would: what was committed stays, what was not done is lost, and so are
//! the answers held for a report by the objects of the stopped invocation.
//! Only leases and alarms recover it. There is no queue.
//!
//! Every step is written to [`World::trace`] as `<object> <name> <path>:
//! <actions>` (tests/delivery_trace.rs says the format).
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};

use drift_bridge::config::Config;
use drift_bridge::delivery::effects::{Action, Alarm, Call, CallResult, Effects, Object, Post, Ticket};
use drift_bridge::delivery::log::input::{encode_call_results, Accept};
use drift_bridge::delivery::log::{self, Context};
use drift_bridge::delivery::request::Seen;
use drift_bridge::delivery::{destination, handoff, outbox, registry};
use drift_bridge::json::{self, Value};
use drift_bridge::{translate_value, Limits, Options};

use super::Db;

/// How an app answers one request: a status, or `None` for no answer
/// (the request waits for its deadline).
pub type Behave = Box<dyn FnMut(&Request<'_>) -> Option<u16>>;

/// How long an app that answers takes to answer.
pub const LATENCY_MS: i64 = 20;

/// What an app is asked.
pub struct Request<'a> {
    /// The delivery log's key (the app's name, `~incarnation` for an app
    /// managed at runtime, `@name` for an alert target).
    pub destination: &'a str,
    pub webhook_id: &'a str,
    pub url: &'a str,
    pub headers: &'a [(&'static str, String)],
    pub body: &'a str,
    pub now: i64,
}

/// A request an app answered 2xx.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub destination: String,
    pub webhook_id: String,
    pub at: i64,
    pub body: String,
}

/// A request sent to an app, whatever it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    pub destination: String,
    pub webhook_id: String,
    pub ticket: Ticket,
    pub body: String,
    pub at: i64,
    /// When its answer (or its deadline) came.
    pub until: i64,
    pub status: Option<u16>,
}

/// The objects of the simulated runtime.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Obj {
    /// A delivery log, by its key.
    Log(String),
    /// An outbox of drift-bridge 0.3, by its scope.
    Outbox(String),
    Registry,
}

impl Obj {
    /// `log crm`, `outbox conversation:1:7`, `registry`.
    pub fn label(&self) -> String {
        match self {
            Obj::Log(key) => format!("log {key}"),
            Obj::Outbox(scope) => format!("outbox {scope}"),
            Obj::Registry => "registry".to_owned(),
        }
    }
}

/// An answer held for a report.
struct Pending {
    /// When the answer came.
    arrived: i64,
    /// When it must be reported at the latest.
    due: i64,
    seen: Seen,
}

/// A request that goes later (an app with a rate).
struct Scheduled {
    key: String,
    at: i64,
    post: Post,
    report_within_ms: u32,
}

/// What running a step came to.
#[derive(Clone, Debug, Default)]
pub struct Ran {
    /// The step committed.
    pub committed: bool,
    /// The reply the caller got (the step's, or its test report's).
    pub reply: Option<(u16, String)>,
    /// Every action was done.
    pub finished: bool,
    /// The step set or deleted the alarm.
    pub alarm_set: bool,
    /// Why the step failed (storage refused it), if it did.
    pub error: Option<String>,
}

pub struct World {
    pub config: Config,
    pub now: i64,
    pub logs: BTreeMap<String, Db>,
    pub outboxes: BTreeMap<String, Db>,
    pub registry: Db,
    pub apps: BTreeMap<String, Behave>,
    /// Every request an app answered 2xx, in the order they were sent.
    pub received: Vec<Received>,
    /// Every request sent to an app.
    pub requests: Vec<Sent>,
    /// The kind of every alert an alert target (`@…`) took.
    pub sent_alerts: Vec<String>,
    /// Every (event id, log key) a delivery log answered 200 for, in the
    /// order they were first accepted.
    pub accepted: Vec<(String, String)>,
    /// Decides, at each point a crash may happen, whether it does.
    pub crash: Box<dyn FnMut() -> bool>,
    pub crashes: u32,
    /// The log lines, in order.
    pub lines: Vec<String>,
    /// Whether the registry answers: without it, only the declared apps
    /// are known for sure.
    pub apps_known: bool,
    /// One line per step: `<object> <name> <path>: <actions>`.
    pub trace: Vec<String>,
    /// The delivery logs (by key) a `drift-bridge listen` is connected to:
    /// their requests with `listen` go to the app through it.
    pub listeners: BTreeSet<String>,
    pending: BTreeMap<String, Vec<Pending>>,
    scheduled: Vec<Scheduled>,
    /// The current invocation's process died.
    died: bool,
    /// The delivery logs whose steps the current invocation is in.
    chain: Vec<String>,
    seed: u32,
}

impl World {
    pub fn new(config: Config, now: i64) -> World {
        let registry = Db::new();
        registry::open(&registry).unwrap();
        World {
            config,
            now,
            logs: BTreeMap::new(),
            outboxes: BTreeMap::new(),
            registry,
            apps: BTreeMap::new(),
            received: Vec::new(),
            requests: Vec::new(),
            sent_alerts: Vec::new(),
            accepted: Vec::new(),
            crash: Box::new(|| false),
            crashes: 0,
            lines: Vec::new(),
            apps_known: true,
            trace: Vec::new(),
            listeners: BTreeSet::new(),
            pending: BTreeMap::new(),
            scheduled: Vec::new(),
            died: false,
            chain: Vec::new(),
            seed: 7,
        }
    }

    pub fn app(&mut self, name: &str, behave: impl FnMut(&Request<'_>) -> Option<u16> + 'static) {
        self.apps.insert(name.to_owned(), Box::new(behave));
    }

    fn next_seed(&mut self) -> u32 {
        self.seed = self.seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        self.seed
    }

    /// Whether the process dies here. A death loses what the objects of the
    /// current invocation held in memory: answers not reported yet, and
    /// requests not sent yet.
    fn crashed(&mut self) -> bool {
        if self.died {
            return true;
        }
        if (self.crash)() {
            self.crashes += 1;
            self.died = true;
            for key in std::mem::take(&mut self.chain) {
                self.pending.remove(&key);
                self.scheduled.retain(|s| s.key != key);
            }
        }
        self.died
    }

    /// Starts a new invocation (a request from outside, an alarm, a timer).
    fn invocation(&mut self) {
        self.died = false;
        self.chain.clear();
    }

    /// The delivery log of `key` (created, as the runtime does, on first use).
    pub fn log(&mut self, key: &str) -> &Db {
        if !self.logs.contains_key(key) {
            let db = Db::new();
            log::open(&db, &Context { settings: &self.config.delivery, now: self.now, seed: 0, apps_known: true, listener: false }).unwrap();
            self.logs.insert(key.to_owned(), db);
        }
        &self.logs[key]
    }

    /// The outbox of `scope` (one of drift-bridge 0.3, to drain).
    pub fn outbox(&mut self, scope: &str) -> &Db {
        self.outboxes.entry(scope.to_owned()).or_insert_with(|| {
            let db = Db::new();
            outbox::open(&db).unwrap();
            db
        })
    }

    // ------------------------------------------------------------ from outside

    /// A webhook from Drift, as the entry serves it: translated, each app's
    /// share handed to its delivery log (`/accept`, side by side). Answers
    /// what Drift is answered: 200 once every log stored its share, else 503.
    pub fn webhook(&mut self, event: &str) -> u16 {
        let limits = self.config.limits();
        let value = json::parse(event, &limits).unwrap();
        let options = Options { legacy: self.config.legacy, received_at_ms: self.now, limits };
        let events = translate_value(&value, &options).unwrap();
        let org = value.get("orgId").and_then(Value::as_integer);
        let plans = handoff::plan(&events, &self.config.delivery.destinations, org, self.now);
        let mut status = 200;
        for plan in plans {
            self.invocation();
            let ran = self.run_step(&Obj::Log(plan.key.clone()), "/accept", &plan.body, true);
            match ran.reply {
                Some((200, _)) => {
                    for d in Accept::decode(&plan.body).unwrap().deliveries {
                        let pair = (d.event, plan.key.clone());
                        if !self.accepted.contains(&pair) {
                            self.accepted.push(pair);
                        }
                    }
                }
                _ => status = 503,
            }
        }
        status
    }

    /// A request to a delivery log (the admin API's, the registry's):
    /// its step and everything it asks for; answers the reply the caller
    /// got, or why there is none (a crash, a failure).
    pub fn log_op(&mut self, key: &str, path: &str, body: &str) -> Result<(u16, String), String> {
        self.request(&Obj::Log(key.to_owned()), path, body)
    }

    /// A request to any object.
    pub fn request(&mut self, obj: &Obj, path: &str, body: &str) -> Result<(u16, String), String> {
        self.invocation();
        let ran = self.run_step(obj, path, body, true);
        match ran.reply {
            Some(reply) => Ok(reply),
            None if self.died => Err("crashed".into()),
            None if !ran.committed => Err(format!("the step failed: {}", ran.error.unwrap_or_default())),
            None => Err("no reply".into()),
        }
    }

    /// `drift-bridge listen` connects to the log of `key`, as the entry's
    /// `DeliveryLog` takes it: the `/listen` step (which sees no listener
    /// yet); on 200, the WebSocket is the listener's, and the alarm's step
    /// runs at once (what was held drains). Answers the step's reply.
    pub fn listen(&mut self, key: &str) -> (u16, String) {
        let body = drift_bridge::json::Writer::object().str("destination", key).finish();
        let reply = self.log_op(key, "/listen", &body).expect("a reply");
        if reply.0 == 200 {
            self.listeners.insert(key.to_owned());
            self.fire(&Obj::Log(key.to_owned()));
        }
        reply
    }

    /// The listener of `key` goes away: the requests it had not answered
    /// yet fail now, as the entry's `webSocketClose` fails them (the
    /// listener had not forwarded them: the app never got them).
    pub fn unlisten(&mut self, key: &str) {
        self.listeners.remove(key);
        let now = self.now;
        if let Some(list) = self.pending.get_mut(key) {
            for p in list.iter_mut().filter(|p| p.arrived > now) {
                let id = p.seen.ticket.clone();
                p.arrived = now;
                p.due = now;
                p.seen = Seen {
                    ticket: id,
                    status: None,
                    location: None,
                    excerpt: String::new(),
                    error: Some("the listener disconnected before it answered".into()),
                    latency_ms: 0,
                };
                let sent = self.requests.iter().rposition(|r| r.destination == key && r.ticket == p.seen.ticket);
                if let Some(i) = sent {
                    let r = &mut self.requests[i];
                    r.status = None;
                    let wid = r.webhook_id.clone();
                    if let Some(j) = self.received.iter().rposition(|x| x.destination == key && x.webhook_id == wid) {
                        self.received.remove(j);
                    }
                }
            }
        }
    }

    /// A hand-off of drift-bridge 0.3 to the outbox of `scope`.
    pub fn outbox_accept(&mut self, scope: &str, payload: &str) -> Result<(u16, String), String> {
        self.outbox(scope);
        self.request(&Obj::Outbox(scope.to_owned()), "/accept", payload)
    }

    /// One step of a delivery log whose process stops right after it
    /// committed: its writes and alarm stay, none of its actions is done.
    /// Answers its effects, for a test to look at (or to do by hand).
    pub fn commit_only(&mut self, key: &str, path: &str, body: &str) -> Effects {
        self.log(key);
        self.invocation();
        self.trace.push(format!("log {key} {path}: (stopped)"));
        self.commit(&Obj::Log(key.to_owned()), &[], path, body).unwrap()
    }

    /// What the caller saw of requests, reported now as one `/sent` step
    /// (and everything it asks for).
    pub fn report(&mut self, key: &str, seen: &[Seen]) -> Ran {
        self.invocation();
        self.run_step(&Obj::Log(key.to_owned()), "/sent", &Seen::encode_all(seen), false)
    }

    /// What a delivery log would answer to `path` now, without running the
    /// step for real: nothing written, nothing sent, nothing counted.
    pub fn peek(&mut self, key: &str, path: &str, body: &str) -> (u16, String) {
        self.log(key);
        let ctx = Context { settings: &self.config.delivery, now: self.now, seed: 0, apps_known: self.apps_known, listener: self.listeners.contains(key) };
        let fx = self.logs[key].peek(|sql| log::serve(sql, &ctx, "", path, body)).unwrap();
        let reply = fx.reply.expect("a reply");
        (reply.status, reply.body)
    }

    /// The stats of a delivery log, as JSON (looked at, not run).
    pub fn stats(&mut self, key: &str) -> Value<'static> {
        let (_, text) = self.peek(key, "/stats", "");
        let leaked: &'static str = Box::leak(text.into_boxed_str());
        json::parse(leaked, &Limits::default()).unwrap()
    }

    // ------------------------------------------------------------------ steps

    /// Runs one step of `obj` and everything it asks for. `carry`: a request
    /// or alarm step, which carries the reports of answers that came.
    fn run_step(&mut self, obj: &Obj, path: &str, body: &str, carry: bool) -> Ran {
        let mut ran = Ran::default();
        if self.crashed() {
            return ran;
        }
        let key = match obj {
            Obj::Log(key) => {
                self.log(key);
                Some(key.clone())
            }
            _ => None,
        };
        if let Some(key) = &key {
            self.chain.push(key.clone());
        }
        let reports = match (&key, carry) {
            (Some(key), true) => self.arrived(key),
            _ => Vec::new(),
        };
        let label = if reports.is_empty() { path.to_owned() } else { format!("/sent+{path}") };
        let line = self.trace.len();
        self.trace.push(format!("{} {label}:", obj.label()));
        let fx = match self.commit(obj, &reports, path, body) {
            Ok(fx) => fx,
            Err(e) => {
                // Nothing was written: the reports are made again later.
                self.lines.push(format!("step failed: {} {path}: {e}", obj.label()));
                if let Some(key) = &key {
                    let arrived = self.now;
                    let list = self.pending.entry(key.clone()).or_default();
                    list.extend(reports.into_iter().map(|seen| Pending { arrived, due: arrived, seen }));
                }
                self.trace[line].push_str(" failed");
                ran.error = Some(e);
                return ran;
            }
        };
        ran.committed = true;
        ran.alarm_set = fx.alarm != Alarm::Keep;
        let mut first = true;
        for action in fx.actions() {
            if !matches!(action, Action::Alarm(_)) && self.crashed() {
                return ran;
            }
            let kind = match action {
                Action::Alarm(_) => "alarm",
                Action::Log(_) => "log",
                Action::Reply { .. } => "reply",
                Action::Post { .. } => "post",
                Action::Call(_) => "call",
            };
            self.trace[line].push_str(if first { " " } else { "," });
            self.trace[line].push_str(kind);
            first = false;
            match action {
                // Set with the writes, in the transaction.
                Action::Alarm(_) => {}
                Action::Log(l) => self.lines.push(l.text.clone()),
                Action::Reply { reply, hold_until } => {
                    if let Some(at) = hold_until.filter(|at| *at > self.now) {
                        self.wait_until(at);
                    }
                    ran.reply = Some((reply.status, reply.body.clone()));
                }
                Action::Post { posts, report_within_ms } => {
                    let key = key.clone().expect("only a delivery log posts");
                    let mut tests = Vec::new();
                    for post in posts {
                        if self.crashed() {
                            return ran;
                        }
                        if matches!(post.ticket, Ticket::Test { .. }) {
                            tests.push(self.answer(&key, post, self.now));
                        } else {
                            self.send(&key, post, report_within_ms);
                        }
                    }
                    // A test delivery is reported at once: that step answers.
                    if !tests.is_empty() {
                        if self.crashed() {
                            return ran;
                        }
                        let sub = self.run_step(obj, "/sent", &Seen::encode_all(&tests), false);
                        ran.reply = ran.reply.or(sub.reply);
                        if !sub.finished {
                            return ran;
                        }
                    }
                }
                Action::Call(calls) => {
                    let mut results = Vec::new();
                    for call in calls {
                        if self.crashed() {
                            return ran;
                        }
                        let result = self.call(call);
                        if let Some(ticket) = &call.ticket {
                            results.push(CallResult { ticket: ticket.clone(), status: result.0, body: result.1 });
                        }
                    }
                    if !results.is_empty() {
                        let sub = self.run_step(obj, "/called", &encode_call_results(&results), false);
                        ran.reply = ran.reply.or(sub.reply);
                        if !sub.finished {
                            return ran;
                        }
                    }
                }
            }
        }
        if first {
            self.trace[line].push_str(" none");
        }
        ran.finished = true;
        ran
    }

    /// The step itself, in one transaction with its alarm.
    fn commit(&mut self, obj: &Obj, reports: &[Seen], path: &str, body: &str) -> Result<Effects, String> {
        let seed = self.next_seed();
        let now = self.now;
        let settings = &self.config.delivery;
        match obj {
            Obj::Log(key) => {
                let reports = if reports.is_empty() { String::new() } else { Seen::encode_all(reports) };
                let ctx = Context { settings, now, seed, apps_known: self.apps_known, listener: self.listeners.contains(key) };
                self.logs[key].run(|sql| log::serve(sql, &ctx, &reports, path, body)).map_err(|e| e.to_string())
            }
            Obj::Outbox(scope) => {
                let db = self.outboxes.get(scope).ok_or("no such outbox")?;
                match outbox::Input::decode(path, body) {
                    Ok(input) => db.run(|sql| outbox::step(sql, settings, now, input)).map_err(|e| e.to_string()),
                    Err(e) => Ok(Effects::reply(drift_bridge::delivery::effects::Reply::status(404, e))),
                }
            }
            Obj::Registry => {
                let input = match registry::Input::decode(path, body) {
                    Ok(input) => input,
                    Err((status, message)) => return Ok(Effects::reply(drift_bridge::delivery::effects::Reply::status(status, message))),
                };
                // Only the declared apps' names are taken: the registry knows its own.
                let declared = destination::Destinations {
                    list: settings.destinations.list.iter().filter(|d| d.source == destination::Source::Declared).cloned().collect(),
                    secret_names: settings.destinations.secret_names.clone(),
                };
                let reserved = settings.reserved_secret_names();
                let mut entropy = [0u8; drift_bridge::delivery::apps::SECRET_BYTES];
                for (i, b) in entropy.iter_mut().enumerate() {
                    *b = (seed >> (i % 4 * 8)) as u8 ^ i as u8;
                }
                let ctx = registry::Admin {
                    declared: &declared,
                    secret: &|_| None,
                    parse_url: destination::parse_url,
                    reserved: &reserved,
                    allow_loopback: false,
                    now,
                    entropy,
                    lease_ms: i64::from(self.config.apps_lease_ms),
                };
                self.registry.run(|sql| registry::step(sql, &ctx, input)).map_err(|e| e.to_string())
            }
        }
    }

    /// One call to another object: its status (none: the call failed) and body.
    fn call(&mut self, call: &Call) -> (Option<u16>, String) {
        let obj = match &call.to {
            Object::DeliveryLog(key) => Obj::Log(key.clone()),
            Object::Registry => Obj::Registry,
        };
        let ran = self.run_step(&obj, call.path, &call.body, true);
        match ran.reply {
            Some((status, body)) => (Some(status), body),
            None => (None, format!("{} {} did not answer", obj.label(), call.path)),
        }
    }

    /// Sends a request to the app of `key`, now or after its delay (one
    /// for a listener fails at once when none is connected).
    fn send(&mut self, key: &str, post: &Post, report_within_ms: u32) {
        if post.listen.is_some() && !self.listeners.contains(key) {
            let seen = Seen {
                ticket: post.ticket.clone(),
                status: None,
                location: None,
                excerpt: String::new(),
                error: Some("no drift-bridge listen is connected".into()),
                latency_ms: 0,
            };
            self.pending.entry(key.to_owned()).or_default().push(Pending { arrived: self.now, due: self.now, seen });
            return;
        }
        if post.delay_ms > 0 {
            let at = self.now + i64::from(post.delay_ms);
            self.scheduled.push(Scheduled { key: key.to_owned(), at, post: post.clone(), report_within_ms });
            return;
        }
        let seen = self.answer(key, post, self.now);
        let arrived = self.now + seen.latency_ms;
        self.pending.entry(key.to_owned()).or_default().push(Pending { arrived, due: arrived + i64::from(report_within_ms), seen });
    }

    /// The app of `key` gets `post` at `at`: what the caller sees of it.
    fn answer(&mut self, key: &str, post: &Post, at: i64) -> Seen {
        let webhook_id = post.headers.iter().find(|(k, _)| *k == "webhook-id").map(|(_, v)| v.clone()).unwrap_or_default();
        let request = Request { destination: key, webhook_id: &webhook_id, url: &post.url, headers: &post.headers, body: &post.body, now: at };
        let status = match self.apps.get_mut(key) {
            Some(app) => app(&request),
            None => Some(200),
        };
        let latency = if status.is_some() { LATENCY_MS } else { i64::from(post.timeout_ms) };
        if status.is_some_and(|s| (200..300).contains(&s)) {
            self.received.push(Received { destination: key.to_owned(), webhook_id: webhook_id.clone(), at, body: post.body.clone() });
            if key.starts_with('@') {
                let kind = json::parse(&post.body, &Limits::default())
                    .ok()
                    .and_then(|v| v.get("kind").and_then(Value::as_str).map(|k| k.text().into_owned()));
                self.sent_alerts.extend(kind);
            }
        }
        self.requests.push(Sent {
            destination: key.to_owned(),
            webhook_id,
            ticket: post.ticket.clone(),
            body: post.body.clone(),
            at,
            until: at + latency,
            status,
        });
        Seen {
            ticket: post.ticket.clone(),
            status,
            location: None,
            excerpt: String::new(),
            error: status.is_none().then(|| format!("no answer within {} ms", post.timeout_ms)),
            latency_ms: latency,
        }
    }

    /// The answers held for `key` that came by now, taken to be reported.
    fn arrived(&mut self, key: &str) -> Vec<Seen> {
        let Some(list) = self.pending.get_mut(key) else { return Vec::new() };
        let now = self.now;
        let (came, later): (Vec<Pending>, Vec<Pending>) = std::mem::take(list).into_iter().partition(|p| p.arrived <= now);
        *list = later;
        if list.is_empty() {
            self.pending.remove(key);
        }
        came.into_iter().map(|p| p.seen).collect()
    }

    // ------------------------------------------------------------------- time

    /// Does everything due by now: requests whose delay is over, alarms,
    /// reports whose time came.
    pub fn alarms(&mut self) {
        let now = self.now;
        let mut due: Vec<Scheduled> = Vec::new();
        let mut i = 0;
        while i < self.scheduled.len() {
            if self.scheduled[i].at <= now {
                due.push(self.scheduled.remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|s| s.at);
        for s in due {
            self.invocation();
            self.chain.push(s.key.clone());
            if self.crashed() {
                continue;
            }
            let seen = self.answer(&s.key, &s.post, s.at);
            let arrived = s.at + seen.latency_ms;
            self.pending.entry(s.key).or_default().push(Pending { arrived, due: arrived + i64::from(s.report_within_ms), seen });
        }
        let logs: Vec<String> = self.logs.iter().filter(|(_, db)| db.alarm.get().is_some_and(|a| a <= now)).map(|(k, _)| k.clone()).collect();
        for key in logs {
            self.fire(&Obj::Log(key));
        }
        let outboxes: Vec<String> = self.outboxes.iter().filter(|(_, db)| db.alarm.get().is_some_and(|a| a <= now)).map(|(k, _)| k.clone()).collect();
        for scope in outboxes {
            self.fire(&Obj::Outbox(scope));
        }
        let reports: Vec<String> =
            self.pending.iter().filter(|(_, list)| list.iter().any(|p| p.due <= now)).map(|(k, _)| k.clone()).collect();
        for key in reports {
            self.invocation();
            self.chain.push(key.clone());
            if self.crashed() {
                continue;
            }
            let seen = self.arrived(&key);
            if !seen.is_empty() {
                self.run_step(&Obj::Log(key), "/sent", &Seen::encode_all(&seen), false);
            }
        }
        self.invocation();
    }

    /// The alarm of `obj` fires: its handler runs; once it ended, the alarm
    /// is gone unless the handler set another. A handler that did not end
    /// is run again.
    fn fire(&mut self, obj: &Obj) {
        self.invocation();
        let ran = self.run_step(obj, "alarm", "", true);
        if ran.finished && !ran.alarm_set {
            let db = match obj {
                Obj::Log(key) => &self.logs[key],
                Obj::Outbox(scope) => &self.outboxes[scope],
                Obj::Registry => &self.registry,
            };
            db.alarm.set(None);
        }
    }

    /// When anything is due next.
    pub fn next_due(&self) -> Option<i64> {
        let alarms = self.logs.values().chain(self.outboxes.values()).filter_map(|db| db.alarm.get());
        let posts = self.scheduled.iter().map(|s| s.at);
        let reports = self.pending.values().flat_map(|list| list.iter().map(|p| p.due));
        alarms.chain(posts).chain(reports).min()
    }

    /// Runs until nothing is due before `until`, jumping from one due time
    /// to the next; the clock ends at `until`.
    pub fn run_until(&mut self, until: i64) {
        loop {
            self.alarms();
            match self.next_due() {
                Some(next) if next <= until => self.now = next.max(self.now + 1),
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }

    /// Lets `ms` pass, `step_ms` at a time.
    pub fn run_for(&mut self, ms: i64, step_ms: i64) {
        let end = self.now + ms;
        while self.now < end {
            let next = (self.now + step_ms).min(end);
            self.run_until(next);
        }
        self.alarms();
    }

    /// Holds a reply until `at`, the world going on meanwhile.
    fn wait_until(&mut self, at: i64) {
        let (died, chain) = (self.died, self.chain.clone());
        self.run_until(at);
        self.died = died;
        self.chain = chain;
    }

    // ------------------------------------------------------------- invariants

    /// Checks what must hold between any two steps, for every delivery log:
    /// its kept counts are what its rows say; every delivery is in the one
    /// side table (or the requests out) its status puts it in; an app that
    /// takes conversations in order has one request out per conversation at
    /// most, and no conversation waits with nothing ahead of it; the alarm
    /// is the one the state recorded, set whenever rows are kept, and no
    /// later than the first thing due. Answers what is wrong.
    pub fn invariants(&mut self) -> Result<(), String> {
        let keys: Vec<String> = self.logs.keys().cloned().collect();
        for key in keys {
            let stats = self.stats(&key);
            let db = &self.logs[&key];
            let int = |v: Option<&Value<'_>>| v.and_then(Value::as_integer).map_or(0, |n| n.parse::<i64>().unwrap());
            let counted = |words: &[&str]| -> i64 { words.iter().map(|w| int(stats.get("deliveries").and_then(|d| d.get(w)))).sum() };
            let kept = |word: &str| int(stats.get("counts").and_then(|c| c.get(word)));
            for (word, stored) in [
                ("pending", &["waiting", "queued", "sending", "retrying"][..]),
                ("held", &["held"]),
                ("delivered", &["delivered"]),
                ("failed", &["failed"]),
                ("gone", &["gone"]),
                ("replayed", &["replayed"]),
            ] {
                if kept(word) != counted(stored) {
                    return Err(format!("log {key}: {word} kept as {} but {} rows", kept(word), counted(stored)));
                }
            }
            let wrong = |what: &str, query: &str| -> Result<(), String> {
                let n = db.count(query);
                if n > 0 {
                    return Err(format!("log {key}: {n} {what}"));
                }
                Ok(())
            };
            wrong(
                "queued or retrying deliveries without their wait",
                "SELECT COUNT(*) FROM deliveries d WHERE status IN ('queued', 'retrying') AND NOT EXISTS \
                 (SELECT 1 FROM waits w WHERE w.at = d.wake_at AND w.hour = d.hour AND w.event = d.event AND w.replay = d.replay)",
            )?;
            wrong(
                "waits of no queued or retrying delivery",
                "SELECT COUNT(*) FROM waits w WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE w.at = d.wake_at AND w.hour = d.hour \
                 AND w.event = d.event AND w.replay = d.replay AND d.status IN ('queued', 'retrying'))",
            )?;
            wrong(
                "held deliveries not in held, or held entries of no held delivery",
                "SELECT (SELECT COUNT(*) FROM deliveries d WHERE status = 'held' AND NOT EXISTS (SELECT 1 FROM held h WHERE h.seq = d.seq \
                 AND h.hour = d.hour AND h.event = d.event AND h.replay = d.replay)) + (SELECT COUNT(*) FROM held h WHERE NOT EXISTS \
                 (SELECT 1 FROM deliveries d WHERE h.seq = d.seq AND h.hour = d.hour AND h.event = d.event AND h.replay = d.replay AND d.status = 'held'))",
            )?;
            wrong(
                "waiting deliveries not in lines, or lines of no waiting delivery",
                "SELECT (SELECT COUNT(*) FROM deliveries d WHERE status = 'waiting' AND NOT EXISTS (SELECT 1 FROM lines l WHERE l.seq = d.seq \
                 AND l.hour = d.hour AND l.event = d.event AND l.replay = d.replay)) + (SELECT COUNT(*) FROM lines l WHERE NOT EXISTS \
                 (SELECT 1 FROM deliveries d WHERE l.seq = d.seq AND l.hour = d.hour AND l.event = d.event AND l.replay = d.replay AND d.status = 'waiting'))",
            )?;
            wrong(
                "heads of no unsettled delivery",
                "SELECT COUNT(*) FROM heads h WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE h.hour = d.hour AND h.event = d.event \
                 AND h.replay = d.replay AND d.status IN ('queued', 'sending', 'retrying', 'held'))",
            )?;
            let sending = db.count("SELECT COUNT(*) FROM deliveries WHERE status = 'sending'");
            if int(stats.get("flight")) != sending {
                return Err(format!("log {key}: {} requests out but {sending} deliveries sending", int(stats.get("flight"))));
            }
            let ordered = self.config.delivery.destination(&key).is_some_and(|d| d.ordered);
            if ordered {
                wrong(
                    "conversations with two requests out",
                    "SELECT COUNT(*) FROM (SELECT scope FROM deliveries WHERE status = 'sending' AND scope LIKE 'conversation:%' \
                     GROUP BY scope HAVING COUNT(*) > 1)",
                )?;
                wrong(
                    "conversations waiting behind nothing",
                    "SELECT COUNT(DISTINCT l.conversation) FROM lines l WHERE NOT EXISTS (SELECT 1 FROM heads h WHERE h.conversation = l.conversation) \
                     AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.status = 'sending' AND d.scope LIKE 'conversation:%:' || l.conversation)",
                )?;
            }
            let recorded = stats.get("recordedAlarm").and_then(Value::as_integer).map(|n| n.parse::<i64>().unwrap());
            let alarm = db.alarm.get();
            if recorded != alarm {
                return Err(format!("log {key}: the alarm is {alarm:?} but the state recorded {recorded:?}"));
            }
            let rows = db.count("SELECT COUNT(*) FROM deliveries");
            if rows > 0 && alarm.is_none() {
                return Err(format!("log {key}: {rows} rows and no alarm"));
            }
            let now = self.now;
            let first = |query: &str| -> Option<i64> { db.conn.query_row(query, [], |r| r.get::<_, Option<i64>>(0)).unwrap() };
            let mut due = vec![("the first delivery's expiry", first("SELECT MIN(expires_at) FROM deliveries"))];
            if int(stats.get("flight")) < log::MAX_FLIGHT as i64 {
                due.push(("the first wait", first("SELECT MIN(at) FROM waits")));
            }
            for (what, at) in due {
                if let (Some(at), Some(alarm)) = (at, alarm) {
                    if alarm > at.max(now) && self.apps_known {
                        return Err(format!("log {key}: the alarm at {alarm} is after {what} at {at} (now {now})"));
                    }
                }
            }
        }
        for (scope, db) in &self.outboxes {
            let rows = db.count("SELECT COUNT(*) FROM outgoing");
            if rows > 0 && db.alarm.get().is_none() {
                return Err(format!("outbox {scope}: {rows} rows and no alarm"));
            }
        }
        Ok(())
    }

    /// Answers held for a report, for every log.
    pub fn pending_reports(&self) -> usize {
        self.pending.values().map(Vec::len).sum()
    }
}
