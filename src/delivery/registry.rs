//! The registry: one Durable Object, strongly consistent, that keeps
//!
//! - **the apps managed at runtime** ([`super::apps`]): created, changed,
//!   deleted and their secrets rotated through the admin API, each change
//!   validated exactly as `DESTINATIONS` is, given a new version, kept in a
//!   bounded history (what, when, by which admin token's fingerprint) and
//!   answered only once every isolate's copy of the apps taken before it
//!   has expired (see [`super::apps`], "The copy and its lease");
//! - **which delivery logs hold deliveries**, so that the admin API still
//!   lists a destination's deliveries after the destination is removed
//!   (until their retention ends and the log says it holds none). A log
//!   registers when it first holds a delivery and unregisters when it holds
//!   none; each change carries a growing epoch, and an older message never
//!   undoes a newer one, however the calls are ordered.

use super::apps::{self, App, Routes, DEFAULT_OVERLAP_SECONDS, LEASE_MARGIN_MS, MAX_APPS, MAX_OVERLAP_SECONDS, SECRET_BYTES};
use super::destination::{read_spec, typos, Destinations, SigningSecret, Source, Spec, TokenSetting, UrlParser};
use super::effects::{Call, Effects, Object, Reply};
use super::wire::{self as message, Fields, MessageError};
use super::sql::{Arg, Sql, StorageError};
use crate::json::{self, Limits, Value, Writer};

pub const TABLES: [&str; 5] = [
    "CREATE TABLE IF NOT EXISTS logs (destination TEXT PRIMARY KEY, epoch INTEGER NOT NULL, \
     holds INTEGER NOT NULL, since INTEGER NOT NULL) WITHOUT ROWID",
    // Each app as stored (its JSON, secrets included) and as routing sees it
    // (written with it, so that `/routes` only joins texts).
    "CREATE TABLE IF NOT EXISTS apps (name TEXT PRIMARY KEY, config TEXT NOT NULL, routing TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY, at INTEGER NOT NULL, action TEXT NOT NULL, \
     destination TEXT NOT NULL, by TEXT NOT NULL, version INTEGER NOT NULL, detail TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS registry (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID",
    // The answers of changes made with an Idempotency-Key, so that a change
    // tried again (its answer was lost) gets the same answer, its one-time
    // secret included, rather than being made twice.
    "CREATE TABLE IF NOT EXISTS idempotency (key TEXT PRIMARY KEY, at INTEGER NOT NULL, request TEXT NOT NULL, \
     status INTEGER NOT NULL, body TEXT NOT NULL, hold_until INTEGER NOT NULL) WITHOUT ROWID",
];

/// How long an Idempotency-Key's answer is kept.
pub const IDEMPOTENCY_MS: i64 = 24 * 3_600_000;
/// The most answers kept for Idempotency-Keys (the oldest go first).
pub const IDEMPOTENCY_KEYS: i64 = 1000;
/// The most signing secrets an app has at once: the current one and two
/// still in their overlap.
pub const MAX_SECRETS: usize = 3;

/// A log that holds nothing is forgotten this long after it said so.
pub const FORGET_MS: i64 = 24 * 3_600_000;
/// The change history keeps this many changes, and none older than
/// [`HISTORY_MS`].
pub const HISTORY_CHANGES: i64 = 500;
pub const HISTORY_MS: i64 = 90 * 24 * 3_600_000;
/// The largest body of a change.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

pub fn open(sql: &impl Sql) -> Result<(), StorageError> {
    for statement in TABLES {
        sql.execute(statement, &[])?;
    }
    Ok(())
}

/// What the registry takes: one input per step, read once, here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// A delivery log holds deliveries (or, `holds` false, holds none any more).
    Register { registration: Registration, holds: bool },
    /// Every delivery log that holds deliveries.
    Logs,
    /// The apps, for an isolate's copy (`known`: the version it has).
    Routes { known: Option<i64> },
    /// The apps in the admin API's words.
    Apps,
    /// The history of changes, newest first.
    Changes { limit: i64, before: i64 },
    /// A change to the apps.
    AppChange { op: ChangeOp, change: AppChange },
}

/// A change to the apps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeOp {
    Create,
    Update,
    Delete,
    Rotate,
}

impl ChangeOp {
    fn path(self) -> &'static str {
        match self {
            ChangeOp::Create => "/create",
            ChangeOp::Update => "/update",
            ChangeOp::Delete => "/delete",
            ChangeOp::Rotate => "/rotate",
        }
    }
}

impl Input {
    /// Reads a request's path and body.
    pub fn decode(path: &str, body: &str) -> Result<Input, (u16, String)> {
        let bad = |e: MessageError| (400, e.to_string());
        let int = |name: &str| -> Option<i64> {
            json::parse(body, &Limits::INTERNAL).ok()?.get(name).and_then(Value::as_integer).and_then(|n| n.parse::<i64>().ok())
        };
        Ok(match path {
            "/register" | "/unregister" => Input::Register { registration: Registration::decode(body).map_err(bad)?, holds: path == "/register" },
            "/logs" => Input::Logs,
            "/routes" => Input::Routes { known: int("known") },
            "/apps" => Input::Apps,
            "/changes" => Input::Changes { limit: int("limit").unwrap_or(50).clamp(1, 200), before: int("before").unwrap_or(i64::MAX) },
            "/create" | "/update" | "/delete" | "/rotate" => {
                let op = [ChangeOp::Create, ChangeOp::Update, ChangeOp::Delete, ChangeOp::Rotate].into_iter().find(|o| o.path() == path).unwrap_or(ChangeOp::Create);
                Input::AppChange { op, change: AppChange::decode(body).map_err(bad)? }
            }
            other => return Err((404, format!("unknown registry operation {}", crate::escape::quoted(other)))),
        })
    }

    /// The path and body [`Input::decode`] reads back as this input.
    pub fn encode(&self) -> (&'static str, String) {
        match self {
            Input::Register { registration, holds } => (if *holds { "/register" } else { "/unregister" }, registration.encode()),
            Input::Logs => ("/logs", String::new()),
            Input::Routes { known } => ("/routes", Writer::object().int("known", known.unwrap_or(-1)).finish()),
            Input::Apps => ("/apps", String::new()),
            Input::Changes { limit, before } => ("/changes", Writer::object().int("limit", *limit).int("before", *before).finish()),
            Input::AppChange { op, change } => (op.path(), change.encode()),
        }
    }
}

/// One step of the registry.
pub fn step(sql: &impl Sql, ctx: &Admin<'_>, input: Input) -> Result<Effects, StorageError> {
    match input {
        Input::Register { registration, holds } => register(sql, &registration, holds, ctx.now),
        Input::Logs => logs(sql),
        Input::Routes { known } => routes(sql, known, ctx.now),
        Input::Apps => list(sql, ctx.now),
        Input::Changes { limit, before } => changes(sql, limit, before),
        Input::AppChange { op, change: c } => change(sql, ctx, op, &c),
    }
}

/// A delivery log tells the registry it holds rows (so that the admin API
/// finds it after its app is removed), or that it holds none any more.
/// `epoch` orders them: an older message never undoes a newer one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The log's key.
    pub destination: String,
    pub epoch: i64,
}

impl Registration {
    pub fn encode(&self) -> String {
        Writer::object().str("destination", &self.destination).int("epoch", self.epoch).finish()
    }

    pub fn decode(text: &str) -> Result<Registration, MessageError> {
        const KIND: &str = "registration";
        let value = message::parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        Ok(Registration { destination: f.str("destination")?, epoch: f.int("epoch")? })
    }
}

/// The registry's answer to `Logs`: every delivery log that holds rows, by key.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Logs {
    pub keys: Vec<String>,
}

impl Logs {
    pub fn encode(&self) -> String {
        Writer::object().raw("logs", &json::string_array(&self.keys)).finish()
    }

    pub fn decode(text: &str) -> Result<Logs, MessageError> {
        const KIND: &str = "/logs";
        let value = message::parse(KIND, text, &Limits::INTERNAL)?;
        Ok(Logs { keys: Fields::parse(KIND, &value)?.strings("logs")? })
    }
}

/// `/register` (`holds`) or `/unregister`.
fn register(sql: &impl Sql, r: &Registration, holds: bool, now: i64) -> Result<Effects, StorageError> {
    sql.execute(
        "INSERT INTO logs (destination, epoch, holds, since) VALUES (?, ?, ?, ?) ON CONFLICT (destination) DO UPDATE \
         SET epoch = excluded.epoch, holds = excluded.holds, since = excluded.since WHERE excluded.epoch > logs.epoch",
        &[Arg::Text(&r.destination), Arg::Int(r.epoch), Arg::Int(i64::from(holds)), Arg::Int(now)],
    )?;
    sql.execute("DELETE FROM logs WHERE holds = 0 AND since < ?", &[Arg::Int(now - FORGET_MS)])?;
    Ok(Effects::reply(Reply::ok("{}")))
}

/// `/logs`: the destinations whose logs hold deliveries, by name.
fn logs(sql: &impl Sql) -> Result<Effects, StorageError> {
    let destinations =
        sql.query("SELECT destination FROM logs WHERE holds = 1 ORDER BY destination", &[])?.into_iter().map(|mut r| r.take(0)).collect();
    Ok(Effects::reply(Reply::ok(Logs { keys: destinations }.encode())))
}

// ------------------------------------------------------------------ the apps

fn version(sql: &impl Sql) -> Result<i64, StorageError> {
    Ok(sql.number("SELECT value FROM registry WHERE key = 'version'", &[])?.unwrap_or(0))
}

fn apps(sql: &impl Sql) -> Result<Vec<App>, StorageError> {
    let mut out = Vec::new();
    for row in sql.query("SELECT config FROM apps ORDER BY name", &[])? {
        let text = row.text(0).unwrap_or("");
        out.push(App::decode(text).map_err(|e| StorageError(format!("a stored app cannot be read ({e})")))?);
    }
    Ok(out)
}

fn find(sql: &impl Sql, name: &str) -> Result<Option<App>, StorageError> {
    match sql.first("SELECT config FROM apps WHERE name = ?", &[Arg::Text(name)])? {
        None => Ok(None),
        Some(row) => App::decode(row.text(0).unwrap_or("")).map(Some).map_err(|e| StorageError(format!("a stored app cannot be read ({e})"))),
    }
}

/// `/routes` (`{"known": <version>}`): the apps and their version, for an
/// isolate's copy ([`Routes`]); only the version when the caller's copy is
/// current. The stored texts joined, nothing decoded.
fn routes(sql: &impl Sql, known: Option<i64>, now: i64) -> Result<Effects, StorageError> {
    // A secret whose overlap ended leaves every copy of the apps with this answer.
    let purged = purge_expired(sql, now)?;
    let version = version(sql)?;
    let mut fx = purged.unwrap_or_default();
    if known == Some(version) {
        fx.reply = Some(Reply::ok(Routes::encode_same(version)));
        return Ok(fx);
    }
    let rows = sql.query("SELECT config FROM apps ORDER BY name", &[])?;
    let apps = rows.iter().map(|r| r.text(0).unwrap_or("null")).collect::<Vec<_>>().join(",");
    let answer = format!("{{\"version\":{version},\"apps\":[{apps}]}}");
    fx.reply = Some(Reply::ok(answer));
    Ok(fx)
}

/// What a change runs with.
pub struct Admin<'a> {
    /// The apps declared in `DESTINATIONS`: their names are taken.
    pub declared: &'a Destinations,
    /// The worker's secrets, by name (for `tokenSecret`).
    pub secret: &'a dyn Fn(&str) -> Option<String>,
    pub parse_url: UrlParser,
    /// The bindings the declared apps and alert targets name, out of a
    /// runtime app's reach.
    pub reserved: &'a [String],
    /// `LOCAL_DEVELOPMENT`: an app may be on loopback.
    pub allow_loopback: bool,
    pub now: i64,
    /// Random bytes for a new signing secret.
    pub entropy: [u8; SECRET_BYTES],
    /// `APPS_CACHE_MS`: how long an isolate may use its copy of the apps.
    pub lease_ms: i64,
}

/// A change as the admin API passes it on: who asks, which app, and the
/// admin's body as it came.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AppChange {
    /// The admin token's fingerprint ([`apps::fingerprint`]).
    pub by: String,
    pub name: String,
    pub body: String,
    /// The request's `Idempotency-Key`, if it has one.
    pub key: Option<String>,
}

impl AppChange {
    pub fn encode(&self) -> String {
        Writer::object().str("by", &self.by).str("name", &self.name).str("body", &self.body).opt_str("key", self.key.as_deref()).finish()
    }

    pub fn decode(text: &str) -> Result<AppChange, MessageError> {
        const KIND: &str = "registry change";
        let value = message::parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        Ok(AppChange {
            by: f.str("by")?,
            name: f.opt_str("name")?.unwrap_or_default(),
            body: f.opt_str("body")?.unwrap_or_default(),
            key: f.opt_str("key")?,
        })
    }
}

/// Whether `key` may be an Idempotency-Key: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn valid_idempotency_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 64 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One change, as the admin API asks for it: what it does is `op`
/// (`create`, `update`, `delete`, `rotate`). With an Idempotency-Key, the
/// same key and the same request answer what the first did (held as long as
/// the first answer was); the same key with another request is refused.
fn change(sql: &impl Sql, ctx: &Admin<'_>, op: ChangeOp, change: &AppChange) -> Result<Effects, StorageError> {
    let Some(key) = &change.key else { return run(sql, ctx, op, change) };
    if !valid_idempotency_key(key) {
        return Ok(refuse(400, "invalid_parameter", "an Idempotency-Key is 1 to 64 letters, digits, '-' or '_'", "", &[]));
    }
    sql.execute(
        "DELETE FROM idempotency WHERE at < ? OR key IN (SELECT key FROM idempotency ORDER BY at DESC LIMIT -1 OFFSET ?)",
        &[Arg::Int(ctx.now - IDEMPOTENCY_MS), Arg::Int(IDEMPOTENCY_KEYS - 1)],
    )?;
    let request = request_fingerprint(op, change);
    if let Some(row) = sql.first("SELECT request, status, body, hold_until FROM idempotency WHERE key = ?", &[Arg::Text(key)])? {
        if row.text(0) != Some(request.as_str()) {
            return Ok(refuse(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used for another request in the last 24 hours; use a new key for a new change",
                "",
                &[],
            ));
        }
        let mut reply = Reply::status(u16::try_from(row.int0(1)).unwrap_or(500), row.text(2).unwrap_or(""));
        reply.headers.push(("idempotent-replayed", "true".to_owned()));
        let mut fx = Effects::reply(reply);
        fx.hold_until = row.int(3).filter(|at| *at > ctx.now);
        return Ok(fx);
    }
    let fx = run(sql, ctx, op, change)?;
    // Only what was done is remembered: a refusal may be tried again as it is.
    if let Some(reply) = fx.reply.as_ref().filter(|r| r.status < 300) {
        sql.execute(
            "INSERT INTO idempotency (key, at, request, status, body, hold_until) VALUES (?, ?, ?, ?, ?, ?)",
            &[
                Arg::Text(key),
                Arg::Int(ctx.now),
                Arg::Text(&request),
                Arg::Int(i64::from(reply.status)),
                Arg::Text(&reply.body),
                Arg::Int(fx.hold_until.unwrap_or(ctx.now)),
            ],
        )?;
    }
    Ok(fx)
}

fn run(sql: &impl Sql, ctx: &Admin<'_>, op: ChangeOp, change: &AppChange) -> Result<Effects, StorageError> {
    purge_expired(sql, ctx.now)?;
    match op {
        ChangeOp::Create => create(sql, ctx, change),
        ChangeOp::Update => update(sql, ctx, change),
        ChangeOp::Delete => delete(sql, ctx, change),
        ChangeOp::Rotate => rotate(sql, ctx, change),
    }
}

/// What identifies a request for its Idempotency-Key: what it does, to
/// which app, with which body (not who asks: a rotated admin token may try
/// again).
fn request_fingerprint(op: ChangeOp, change: &AppChange) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(op.path().as_bytes())
        .chain_update(b"\0")
        .chain_update(change.name.as_bytes())
        .chain_update(b"\0")
        .chain_update(change.body.trim().as_bytes())
        .finalize();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Forgets every signing secret whose overlap ended, as a change of the
/// bridge's own (a new version, so that every isolate's copy drops it too).
pub fn purge_expired(sql: &impl Sql, now: i64) -> Result<Option<Effects>, StorageError> {
    let mut purged = Vec::new();
    for mut app in apps(sql)? {
        if app.purge_secrets(now) {
            store(sql, &app)?;
            purged.push(app.spec.name.clone());
        }
    }
    if purged.is_empty() {
        return Ok(None);
    }
    let mut fx = Effects::default();
    for name in &purged {
        let version = bump(sql)?;
        record(sql, now, "expire-secret", name, "bridge", version, "{}")?;
        fx.log(config_line("expire-secret", name, "bridge", version, "{}"));
    }
    Ok(Some(fx))
}

/// A new version of the apps.
fn bump(sql: &impl Sql) -> Result<i64, StorageError> {
    let version = version(sql)? + 1;
    sql.execute(
        "INSERT INTO registry (key, value) VALUES ('version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        &[Arg::Int(version)],
    )?;
    Ok(version)
}

/// One entry of the history (bounded).
fn record(sql: &impl Sql, now: i64, action: &str, name: &str, by: &str, version: i64, detail: &str) -> Result<(), StorageError> {
    sql.execute(
        "INSERT INTO changes (at, action, destination, by, version, detail) VALUES (?, ?, ?, ?, ?, ?)",
        &[Arg::Int(now), Arg::Text(action), Arg::Text(name), Arg::Text(by), Arg::Int(version), Arg::Text(detail)],
    )?;
    sql.execute(
        "DELETE FROM changes WHERE seq <= (SELECT MAX(seq) FROM changes) - ? OR at < ?",
        &[Arg::Int(HISTORY_CHANGES), Arg::Int(now - HISTORY_MS)],
    )?;
    Ok(())
}

fn config_line(action: &str, name: &str, by: &str, version: i64, detail: &str) -> String {
    Writer::object()
        .str("kind", "config")
        .str("action", action)
        .str("destination", name)
        .str("by", by)
        .int("version", version)
        .raw("detail", detail)
        .finish()
}

/// An answer of the admin API: `{"error":{"code","message","path"[,"problems"]}}`.
fn refuse(status: u16, code: &str, message: &str, path: &str, problems: &[(String, String)]) -> Effects {
    let mut e = Writer::object();
    e.str("code", code).str("message", message).str("path", path);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|(p, m)| Writer::object().str("path", p).str("message", m).finish()).collect();
        e.raw("problems", &format!("[{}]", list.join(",")));
    }
    Effects::reply(Reply::status(status, Writer::object().raw("error", &e.finish()).finish()))
}

fn invalid(problems: Vec<(String, String)>) -> Effects {
    let (path, message) = problems.first().cloned().unwrap_or_default();
    refuse(400, "invalid_destination", &message, &path, &problems)
}

/// Reads a change's body as a JSON object (or the answer refusing it).
#[allow(clippy::result_large_err)]
fn body_object(text: &str) -> Result<Value<'_>, Effects> {
    let text = text.trim();
    if text.len() > MAX_BODY_BYTES {
        return Err(refuse(413, "too_large", &format!("the body is over {MAX_BODY_BYTES} bytes"), "", &[]));
    }
    if text.is_empty() {
        return Ok(Value::Object(Vec::new()));
    }
    match json::parse(text, &Limits { max_bytes: MAX_BODY_BYTES, max_depth: 8 }) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(v) => Err(refuse(400, "invalid_body", &format!("expected a JSON object, found {}", v.describe()), "", &[])),
        Err(e) => Err(refuse(400, e.code().as_str(), &e.detail(), e.path(), &[])),
    }
}

/// A declared app cannot be changed here.
fn declared(name: &str) -> Effects {
    refuse(
        409,
        "declared",
        &format!("{name} is declared in DESTINATIONS (wrangler.toml): change it there and deploy, or remove it there and create it here"),
        "name",
        &[],
    )
}

fn unknown(name: &str) -> Effects {
    refuse(404, "not_found", &format!("no app {} is managed at runtime", crate::escape::quoted(name)), "", &[])
}

/// Records a change: the new version, the history (bounded), the log line;
/// the answer is held until every copy of the apps taken before it expired.
fn commit(
    sql: &impl Sql,
    ctx: &Admin<'_>,
    change: &AppChange,
    action: &str,
    detail: &str,
    reply: impl FnOnce(i64) -> Reply,
) -> Result<Effects, StorageError> {
    let version = bump(sql)?;
    record(sql, ctx.now, action, &change.name, &change.by, version, detail)?;
    let mut fx = Effects::reply(reply(version));
    fx.hold_until = Some(ctx.now + ctx.lease_ms + LEASE_MARGIN_MS);
    fx.log(config_line(action, &change.name, &change.by, version, detail));
    Ok(fx)
}

fn store(sql: &impl Sql, app: &App) -> Result<(), StorageError> {
    sql.execute(
        "INSERT INTO apps (name, config, routing) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET config = excluded.config, \
         routing = excluded.routing",
        // (`routing`: kept for the tables of drift-bridge 0.3; nothing reads it.)
        &[Arg::Text(&app.spec.name), Arg::Text(&app.encode()), Arg::Text("")],
    )?;
    Ok(())
}

/// `{"destination":{…},"secret"?,"version"}`.
fn answer(app: &App, now: i64, secret: Option<&str>, version: i64) -> String {
    let mut d = Writer::object();
    app.write_public(&mut d, now);
    d.str("source", "runtime");
    let mut w = Writer::object();
    w.raw("destination", &d.finish()).opt_str("secret", secret).int("version", version);
    w.finish()
}

/// What the history says of an app: its settings, never a secret.
fn settings_detail(spec: &Spec, signed: bool) -> String {
    settings_json(spec, signed, true)
}

/// The app's settings in the API's words; `redact`: its URL's path and
/// query left out (they may carry a credential: a Slack webhook's path, a
/// `?code=`), as the history and log lines show it.
fn settings_json(spec: &Spec, signed: bool, redact: bool) -> String {
    let mut w = Writer::object();
    if spec.listen {
        w.bool("listen", true);
    } else if redact {
        w.str("url", &super::redact::url(&spec.url));
    } else {
        w.str("url", &spec.url);
    }
    w
        .raw("types", &json::string_array(&spec.types))
        .str("token", spec.token.as_str())
        .opt_str("tokenSecret", spec.token.secret())
        .bool("signed", signed);
    if !spec.org_ids.is_empty() {
        w.raw("orgIds", &format!("[{}]", spec.org_ids.join(",")));
    }
    w.opt_int("ratePerSecond", spec.rate_per_second.map(i64::from));
    if spec.ordered {
        w.bool("ordered", true);
    }
    w.finish()
}

/// Reads and checks an app's object as the admin API takes it.
fn check(ctx: &Admin<'_>, value: &Value<'_>) -> Result<Spec, Vec<(String, String)>> {
    let spec = read_spec(value, Source::Runtime, ctx.parse_url)?;
    let mut problems = typos(&spec.types);
    if let Some(Ok(url)) = (!spec.listen).then(|| (ctx.parse_url)(&spec.url)) {
        if let Some(why) = super::destination::refuse_address(&url.hostname, ctx.allow_loopback) {
            problems.push(("url".into(), why));
        }
    }
    if let Err(e) = spec.token.check_runtime(ctx.reserved) {
        problems.push(e);
    } else if let Err(e) = spec.token.resolve(&ctx.secret) {
        problems.push(e);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(spec)
}

/// `POST /admin/destinations`: a new app; with signing on (the default), its
/// secret is made here and shown once, in this answer.
fn create(sql: &impl Sql, ctx: &Admin<'_>, change: &AppChange) -> Result<Effects, StorageError> {
    let value = match body_object(&change.body) {
        Ok(v) => v,
        Err(fx) => return Ok(fx),
    };
    let spec = match check(ctx, &value) {
        Ok(spec) => spec,
        Err(problems) => return Ok(invalid(problems)),
    };
    if ctx.declared.get(&spec.name).is_some() {
        return Ok(declared(&spec.name));
    }
    if find(sql, &spec.name)?.is_some() {
        return Ok(refuse(409, "exists", &format!("an app {} exists already; change it with PATCH", crate::escape::quoted(&spec.name)), "name", &[]));
    }
    let count = sql.number("SELECT COUNT(*) FROM apps", &[])?.unwrap_or(0);
    if count >= MAX_APPS as i64 {
        return Ok(refuse(409, "too_many", &format!("the registry holds {MAX_APPS} apps, its most; delete one first"), "", &[]));
    }
    let secret = spec.signed.then(|| apps::new_secret(&ctx.entropy));
    let app = App {
        id: Some(apps::new_incarnation(&ctx.entropy)),
        secrets: secret.iter().map(|s| SigningSecret { secret: s.clone(), until: None }).collect(),
        created_at: ctx.now,
        updated_at: ctx.now,
        spec,
    };
    store(sql, &app)?;
    let change = AppChange { name: app.spec.name.clone(), ..change.clone() };
    let detail = settings_detail(&app.spec, app.spec.signed);
    commit(sql, ctx, &change, "create", &detail, |v| Reply::status(201, answer(&app, ctx.now, secret.as_deref(), v)))
}

/// The fields a change may carry.
const PATCH_FIELDS: [&str; 8] = ["url", "types", "token", "tokenSecret", "replacementToken", "signed", "orgIds", "ratePerSecond"];

/// `PATCH /admin/destinations/{name}`: the fields given replace the app's
/// (`null` clears `orgIds`, `ratePerSecond` and `tokenSecret`); the result
/// is checked as a whole, as a new app would be. Turning signing on makes a
/// secret, shown once; turning it off forgets the secrets.
fn update(sql: &impl Sql, ctx: &Admin<'_>, change: &AppChange) -> Result<Effects, StorageError> {
    if ctx.declared.get(&change.name).is_some() {
        return Ok(declared(&change.name));
    }
    let Some(current) = find(sql, &change.name)? else { return Ok(unknown(&change.name)) };
    let value = match body_object(&change.body) {
        Ok(v) => v,
        Err(fx) => return Ok(fx),
    };
    let Some(patch) = value.as_object() else { return Ok(refuse(400, "invalid_body", "expected a JSON object", "", &[])) };
    let mut problems = Vec::new();
    for (key, v) in patch {
        let key = key.text();
        if key == "name" {
            if !v.as_str().is_some_and(|s| s.eq_text(&change.name)) {
                problems.push(("name".to_owned(), "an app cannot be renamed: create one under the new name and delete this one".to_owned()));
            }
        } else if key == "listen" {
            if *v != Value::Bool(current.spec.listen) {
                let message = "an app cannot start or stop taking a listener: create one with (or without) \"listen\": true and delete this one";
                problems.push(("listen".to_owned(), message.to_owned()));
            }
        } else if key == "ordered" {
            // Its log keeps a conversation's waiting events in line: they
            // would be left there, or overtake each other, by a change.
            if *v != Value::Bool(current.spec.ordered) {
                let message = "an app cannot start or stop taking a conversation's events in order: create one with (or without) \"ordered\": true and delete this one";
                problems.push(("ordered".to_owned(), message.to_owned()));
            }
        } else if !PATCH_FIELDS.contains(&key.as_ref()) {
            problems.push((key.to_string(), format!("unknown field; the fields a change may carry are {}", PATCH_FIELDS.join(", "))));
        }
    }
    if !problems.is_empty() {
        return Ok(invalid(problems));
    }
    // The app as it is, in the API's words, with the change laid over it.
    let before = settings_detail(&current.spec, !current.secrets.is_empty());
    let before_whole = settings_json(&current.spec, !current.secrets.is_empty(), false);
    let before_value = json::parse(&before_whole, &Limits::INTERNAL).map_err(|e| StorageError(e.to_string()))?;
    let kept_value = match &current.spec.token {
        TokenSetting::ReplaceWith { value } => Some(value.as_str()),
        _ => None,
    };
    let mut members: Vec<(json::Str<'_>, Value<'_>)> = vec![(json::Str::new("name"), Value::String(json::Str::new(&current.spec.name)))];
    if let Some(old) = before_value.as_object() {
        members.extend(old.iter().cloned());
    }
    for (key, v) in patch {
        let key_text = key.text();
        if key_text == "name" || key_text == "listen" || key_text == "ordered" {
            continue;
        }
        members.retain(|(k, _)| !k.eq_text(&key_text));
        // A token handling without a secret leaves the old secret's name behind.
        if key_text == "token" && v.as_str().is_some_and(|t| !t.eq_text("replace")) && !patch.iter().any(|(k, _)| k.eq_text("tokenSecret")) {
            members.retain(|(k, _)| !k.eq_text("tokenSecret"));
        }
        // A replacement given one way replaces the one given the other.
        if key_text == "replacementToken" && *v != Value::Null {
            members.retain(|(k, _)| !k.eq_text("tokenSecret"));
        }
        if *v != Value::Null {
            members.push((key.clone(), v.clone()));
        }
    }
    // The stored replacement stays, unless the change gives another or
    // another way of handling the token.
    let replaces = members.iter().any(|(k, v)| k.eq_text("token") && v.as_str().is_some_and(|t| t.eq_text("replace")));
    let given = members.iter().any(|(k, _)| k.eq_text("tokenSecret") || k.eq_text("replacementToken"));
    if let (true, false, Some(value)) = (replaces, given, kept_value) {
        members.push((json::Str::new("replacementToken"), Value::String(json::Str::new(value))));
    }
    let merged = Value::Object(members);
    let spec = match check(ctx, &merged) {
        Ok(spec) => spec,
        Err(problems) => return Ok(invalid(problems)),
    };
    let was_signed = !current.secrets.is_empty();
    let (secrets, secret) = match (was_signed, spec.signed) {
        (false, true) => {
            let s = apps::new_secret(&ctx.entropy);
            (vec![SigningSecret { secret: s.clone(), until: None }], Some(s))
        }
        (true, true) => (current.secrets.clone(), None),
        (_, false) => (Vec::new(), None),
    };
    let after = settings_detail(&spec, spec.signed);
    let same = settings_json(&spec, spec.signed, false) == before_whole && spec.token == current.spec.token;
    let app = App { spec, secrets, created_at: current.created_at, updated_at: ctx.now, id: current.id.clone() };
    if same {
        // Nothing changed: no new version, nothing to wait for.
        return Ok(Effects::reply(Reply::ok(answer(&app, ctx.now, None, version(sql)?))));
    }
    store(sql, &app)?;
    let detail = Writer::object().raw("from", &before).raw("to", &after).finish();
    commit(sql, ctx, change, "update", &detail, |v| Reply::ok(answer(&app, ctx.now, secret.as_deref(), v)))
}

/// `DELETE /admin/destinations/{name}`: from the next webhook on, nothing
/// goes to it; what it still had on its way becomes a dead letter.
fn delete(sql: &impl Sql, ctx: &Admin<'_>, change: &AppChange) -> Result<Effects, StorageError> {
    if ctx.declared.get(&change.name).is_some() {
        return Ok(declared(&change.name));
    }
    let Some(current) = find(sql, &change.name)? else { return Ok(unknown(&change.name)) };
    sql.execute("DELETE FROM apps WHERE name = ?", &[Arg::Text(&change.name)])?;
    let detail = settings_detail(&current.spec, !current.secrets.is_empty());
    let mut fx = commit(sql, ctx, change, "delete", &detail, |v| Reply::ok(Writer::object().str("deleted", &change.name).int("version", v).finish()))?;
    // Its incarnation ends now: its log makes dead letters of what it held,
    // and nothing of it reaches an app created later under the same name.
    let key = current.log_key();
    let body = Writer::object().str("destination", &key).finish();
    fx.calls.push(Call { to: Object::DeliveryLog(key), path: "/end", body, ticket: None });
    Ok(fx)
}

/// `POST /admin/destinations/{name}/rotate-secret` (`{"overlapSeconds": n}`,
/// a day by default): a new secret, shown once; until the overlap ends,
/// deliveries are signed with both. Answers `{"destination":{…},"secret",
/// "previousSecretExpiresAt"?,"version"}`, as a create does.
fn rotate(sql: &impl Sql, ctx: &Admin<'_>, change: &AppChange) -> Result<Effects, StorageError> {
    if ctx.declared.get(&change.name).is_some() {
        return Ok(refuse(
            409,
            "declared",
            &format!(
                "{} is declared in DESTINATIONS: rotate its secret by naming two secrets, \"signingSecret\": [\"NEW\", \"OLD\"], then only the new one",
                change.name
            ),
            "name",
            &[],
        ));
    }
    let Some(current) = find(sql, &change.name)? else { return Ok(unknown(&change.name)) };
    let value = match body_object(&change.body) {
        Ok(v) => v,
        Err(fx) => return Ok(fx),
    };
    let mut problems = Vec::new();
    for (key, _) in value.as_object().unwrap_or(&[]) {
        if !key.eq_text("overlapSeconds") {
            problems.push((key.text().into_owned(), "unknown field; a rotation takes only overlapSeconds".to_owned()));
        }
    }
    let overlap = match value.get("overlapSeconds") {
        None | Some(Value::Null) => DEFAULT_OVERLAP_SECONDS,
        Some(v) => match v.as_integer().and_then(|n| n.parse::<i64>().ok()) {
            Some(n) if (0..=MAX_OVERLAP_SECONDS).contains(&n) => n,
            _ => {
                problems.push(("overlapSeconds".into(), format!("expected a whole number of seconds from 0 to {MAX_OVERLAP_SECONDS}")));
                0
            }
        },
    };
    if !problems.is_empty() {
        return Ok(invalid(problems));
    }
    let Some(old) = current.secrets.iter().find(|s| s.until.is_none()).cloned() else {
        return Ok(refuse(409, "not_signed", &format!("{} is not signed; turn signing on with PATCH {{\"signed\": true}}", change.name), "", &[]));
    };
    // Secrets still in an earlier rotation's overlap stay until it ends: a
    // rotation tried again (its answer lost) never drops the secret the app
    // still verifies with.
    let overlapping: Vec<SigningSecret> = current.secrets.iter().filter(|s| s.until.is_some_and(|u| u > ctx.now)).cloned().collect();
    if overlapping.len() + 2 > MAX_SECRETS && overlap > 0 {
        let ends = overlapping.iter().filter_map(|s| s.until).min().unwrap_or(ctx.now);
        return Ok(refuse(
            409,
            "rotation_pending",
            &format!(
                "{} already has {} older secrets in their overlap (the first ends at {ends} ms); rotate again after that, or with \"overlapSeconds\": 0 to drop the current secret at once",
                change.name,
                overlapping.len()
            ),
            "",
            &[],
        ));
    }
    let secret = apps::new_secret(&ctx.entropy);
    let until = ctx.now + overlap * 1000;
    let mut secrets = vec![SigningSecret { secret: secret.clone(), until: None }];
    if overlap > 0 {
        secrets.push(SigningSecret { secret: old.secret, until: Some(until) });
        secrets.extend(overlapping);
    }
    let app = App { secrets, updated_at: ctx.now, ..current };
    store(sql, &app)?;
    let detail = Writer::object().int("overlapSeconds", overlap).opt_int("previousSecretExpiresAt", (overlap > 0).then_some(until)).finish();
    commit(sql, ctx, change, "rotate-secret", &detail, |v| {
        let mut d = Writer::object();
        app.write_public(&mut d, ctx.now);
        d.str("source", "runtime");
        let mut w = Writer::object();
        w.raw("destination", &d.finish()).str("secret", &secret);
        w.opt_int("previousSecretExpiresAt", (overlap > 0).then_some(until)).int("version", v);
        Reply::ok(w.finish())
    })
}

/// `/apps`: the apps in the admin API's words (never a secret), and the version.
fn list(sql: &impl Sql, now: i64) -> Result<Effects, StorageError> {
    let items: Vec<String> = apps(sql)?
        .iter()
        .map(|a| {
            let mut w = Writer::object();
            a.write_public(&mut w, now);
            w.str("source", "runtime");
            w.finish()
        })
        .collect();
    Ok(Effects::reply(Reply::ok(Writer::object().int("version", version(sql)?).raw("apps", &format!("[{}]", items.join(","))).finish())))
}

/// `/changes` (`{"limit": n, "before": seq}`): the history, newest first.
fn changes(sql: &impl Sql, limit: i64, before: i64) -> Result<Effects, StorageError> {
    let rows = sql.query(
        "SELECT seq, at, action, destination, by, version, detail FROM changes WHERE seq < ? ORDER BY seq DESC LIMIT ?",
        &[Arg::Int(before), Arg::Int(limit + 1)],
    )?;
    let more = rows.len() as i64 > limit;
    let items: Vec<String> = rows
        .iter()
        .take(limit as usize)
        .map(|r| {
            Writer::object()
                .int("seq", r.int0(0))
                .int("at", r.int0(1))
                .str("action", r.text(2).unwrap_or(""))
                .str("destination", r.text(3).unwrap_or(""))
                .str("by", r.text(4).unwrap_or(""))
                .int("version", r.int0(5))
                .raw("detail", r.text(6).filter(|d| d.starts_with('{')).unwrap_or("{}"))
                .finish()
        })
        .collect();
    let next = if more { rows.get(limit as usize - 1).map(|r| r.int0(0).to_string()) } else { None };
    let mut w = Writer::object();
    w.raw("changes", &format!("[{}]", items.join(",")));
    match next {
        Some(n) => w.raw("next", &n),
        None => w.raw("next", "null"),
    };
    Ok(Effects::reply(Reply::ok(w.finish())))
}
