//! The registry's apps on real SQLite: each change checked exactly as
//! `DESTINATIONS` is, refused whole when anything is wrong, kept in a
//! bounded history, answered only after every copy of the apps has expired;
//! secrets made, shown once, rotated with an overlap; the copy isolates
//! route by.

mod support;

use drift_bridge::delivery::apps::{Routes, LEASE_MARGIN_MS, MAX_APPS, SECRET_BYTES};
use drift_bridge::delivery::destination::{parse_url, Destinations, Source};
use drift_bridge::delivery::effects::Effects;
use drift_bridge::delivery::registry::{self, Admin, AppChange, ChangeOp, Input, HISTORY_CHANGES};
use drift_bridge::delivery::sign;
use drift_bridge::json::{self, Limits, Value};
use support::Db;

const NOW: i64 = 1_700_000_000_000;
const LEASE: i64 = 5_000;

fn secrets(name: &str) -> Option<String> {
    match name {
        "APP_TOKEN_CRM" => Some("crm-replacement-token".to_owned()),
        "ADMIN_TOKEN" => Some("the-admin-token-0123456789abcdef0123".to_owned()),
        "LEGACY_SIGNING" => Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()),
        "APP_TOKEN_LEGACY" => Some("legacy-token".to_owned()),
        _ => None,
    }
}

struct Registry {
    db: Db,
    declared: Destinations,
    now: i64,
    entropy: u8,
}

impl Registry {
    fn new() -> Registry {
        let db = Db::new();
        registry::open(&db).unwrap();
        let declared = Destinations::parse(
            Some(r#"[{"name":"legacy","url":"https://legacy.example","types":["*"],"signingSecret":"LEGACY_SIGNING","token":"replace","tokenSecret":"APP_TOKEN_LEGACY"}]"#),
            secrets,
        )
        .unwrap();
        Registry { db, declared, now: NOW, entropy: 1 }
    }

    fn run(&mut self, op: &str, name: &str, body: &str) -> (u16, String, Effects) {
        self.run_keyed(op, name, body, None)
    }

    /// A change with an Idempotency-Key.
    fn run_keyed(&mut self, op: &str, name: &str, body: &str, key: Option<&str>) -> (u16, String, Effects) {
        self.entropy = self.entropy.wrapping_add(1);
        let op = match op {
            "create" => ChangeOp::Create,
            "update" => ChangeOp::Update,
            "delete" => ChangeOp::Delete,
            "rotate" => ChangeOp::Rotate,
            other => panic!("no change {other}"),
        };
        let change = AppChange { by: "0a1b2c3d".into(), name: name.into(), body: body.into(), key: key.map(str::to_owned) };
        // What crosses the wire: the input read back from its encoding.
        let (path, text) = Input::AppChange { op, change }.encode();
        let input = Input::decode(path, &text).unwrap();
        let fx = self.step(input);
        let reply = fx.reply.clone().unwrap();
        (reply.status, reply.body, fx)
    }

    /// One step of the registry.
    fn step(&self, input: Input) -> Effects {
        let reserved = self.declared.secret_names.clone();
        let ctx = Admin {
            declared: &self.declared,
            secret: &secrets,
            parse_url,
            reserved: &reserved,
            allow_loopback: false,
            now: self.now,
            entropy: [self.entropy; SECRET_BYTES],
            lease_ms: LEASE,
        };
        self.db.run(|sql| registry::step(sql, &ctx, input)).unwrap()
    }

    /// A request's answer, read from its path and body as the registry reads them.
    fn ask(&self, path: &str, body: &str) -> String {
        self.step(Input::decode(path, body).unwrap()).reply.unwrap().body
    }

    fn routes(&self, known: i64) -> String {
        self.ask("/routes", &format!(r#"{{"known":{known}}}"#))
    }

    fn copy(&self) -> Routes {
        Routes::decode(&self.routes(-1)).unwrap().1.unwrap()
    }

    fn history(&self) -> String {
        self.ask("/changes", r#"{"limit":200}"#)
    }

    fn listing(&self) -> String {
        self.ask("/apps", "")
    }
}

fn field<'a>(v: &'a Value<'a>, path: &[&str]) -> Option<&'a Value<'a>> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn parse(text: &str) -> Value<'_> {
    json::parse(text, &Limits::INTERNAL).unwrap()
}

const CRM: &str = r#"{"name":"crm","url":"https://crm.example/hooks/drift","types":["conversation_status_updated"]}"#;

#[test]
fn creating_an_app_makes_its_secret_shows_it_once_and_waits_out_every_copy() {
    let mut r = Registry::new();
    let (status, body, fx) = r.run("create", "", CRM);
    assert_eq!(status, 201, "{body}");
    assert_eq!(fx.hold_until, Some(NOW + LEASE + LEASE_MARGIN_MS), "answered once every copy taken before it expired");
    let v = parse(&body);
    let secret = field(&v, &["secret"]).and_then(Value::as_str).unwrap().text().into_owned();
    assert!(sign::key_from_secret(&secret).is_ok(), "a Standard Webhooks secret: {secret}");
    assert_eq!(field(&v, &["destination", "signed"]), Some(&Value::Bool(true)));
    assert_eq!(field(&v, &["destination", "token"]).and_then(Value::as_str).unwrap().text(), "strip", "signed: no Drift token");
    assert_eq!(field(&v, &["destination", "source"]).and_then(Value::as_str).unwrap().text(), "runtime");
    assert_eq!(field(&v, &["version"]).and_then(Value::as_integer), Some("1"));
    assert_eq!(fx.logs.len(), 1);
    assert!(fx.logs[0].text.starts_with(r#"{"kind":"config","action":"create","destination":"crm","by":"0a1b2c3d","version":1"#), "{}", fx.logs[0].text);
    // Never again: not in the listing, the history or the log line.
    let listing = r.listing();
    for shown in [&listing, &r.history(), &fx.logs[0].text] {
        assert!(!shown.contains(&secret) && !shown.contains("whsec_"), "{shown}");
    }
    // The copy isolates route by has it, and says when it is current.
    let copy = r.copy();
    assert_eq!(copy.version, 1);
    let d = copy.apps[0].destination(&secrets, &[]).unwrap();
    assert_eq!((d.source, d.signing_secrets(NOW).collect::<Vec<_>>()), (Source::Runtime, vec![secret.as_str()]));
    assert_eq!(r.routes(1), r#"{"version":1,"same":true}"#);
}

#[test]
fn a_change_is_checked_as_destinations_is_and_refused_whole() {
    // (body, status, code, path, start of the message)
    let cases: &[(&str, u16, &str, &str, &str)] = &[
        (r#"{"name":"crm","url":"http://crm.example","types":["*"]}"#, 400, "invalid_destination", "url", "must be https (plain http only for loopback"),
        (r#"{"name":"crm","url":"https://crm.example","types":[]}"#, 400, "invalid_destination", "types", "empty; list at least one event type"),
        (r#"{"name":"crm","url":"https://crm.example","types":["*",3]}"#, 400, "invalid_destination", "types[1]", "expected an event type name"),
        (r#"{"name":"a b","url":"https://crm.example","types":["*"]}"#, 400, "invalid_destination", "name", "\"a b\" must be 1 to 64 letters"),
        (r#"{"url":"https://crm.example","types":["*"]}"#, 400, "invalid_destination", "name", "missing"),
        (r#"{"name":"crm","url":"https://crm.example","types":["*"],"token":"replace","tokenSecret":"APP_TOKEN_NOPE"}"#, 400, "invalid_destination", "tokenSecret", "secret APP_TOKEN_NOPE is not set"),
        // A runtime app reads no binding but its own: never the admin token, another app's secret or a var.
        (r#"{"name":"crm","url":"https://crm.example","types":["*"],"token":"replace","tokenSecret":"ADMIN_TOKEN"}"#, 400, "invalid_destination", "tokenSecret", "an app managed at runtime may name only a binding whose name starts with APP_TOKEN_"),
        (r#"{"name":"crm","url":"https://crm.example","types":["*"],"token":"replace","tokenSecret":"NOPE"}"#, 400, "invalid_destination", "tokenSecret", "an app managed at runtime may name only a binding whose name starts with APP_TOKEN_"),
        (r#"{"name":"crm","url":"https://crm.example","types":["*"],"token":"replace","tokenSecret":"LEGACY_SIGNING"}"#, 400, "invalid_destination", "tokenSecret", "an app managed at runtime may name only"),
        (r#"{"name":"crm","url":"https://crm.example","types":["*"],"token":"replace","tokenSecret":"APP_TOKEN_LEGACY"}"#, 400, "invalid_destination", "tokenSecret", "APP_TOKEN_LEGACY is named by an app declared in DESTINATIONS"),
        (r#"{"name":"crm","url":"https://crm.example","types":["*"],"token":"replace","tokenSecret":"APP_TOKEN_CRM","replacementToken":"x"}"#, 400, "invalid_destination", "replacementToken", "give either replacementToken"),
        (r#"{"name":"crm","url":"https://crm.example","types":["*"],"token":"replace"}"#, 400, "invalid_destination", "tokenSecret", "missing; \"token\": \"replace\" needs the replacement"),
        (r#"{"name":"crm","url":"https://crm.example","types":["*"],"replacementToken":"x"}"#, 400, "invalid_destination", "replacementToken", "only used with \"token\": \"replace\""),
        // An app is on the internet: no private, link-local, unique-local or loopback address.
        (r#"{"name":"crm","url":"https://169.254.169.254/latest/meta-data","types":["*"]}"#, 400, "invalid_destination", "url", "169.254.169.254 is a link-local address"),
        (r#"{"name":"crm","url":"https://10.0.0.1:6379/","types":["*"]}"#, 400, "invalid_destination", "url", "10.0.0.1 is a private address"),
        (r#"{"name":"crm","url":"https://[fd00::1]:2375/","types":["*"]}"#, 400, "invalid_destination", "url", "[fd00::1] is a unique-local address"),
        (r#"{"name":"crm","url":"https://[::ffff:192.168.1.1]/","types":["*"]}"#, 400, "invalid_destination", "url", "[::ffff:c0a8:101] is a private address"),
        (r#"{"name":"crm","url":"http://127.0.0.1:9000/hook","types":["*"]}"#, 400, "invalid_destination", "url", "127.0.0.1 is a loopback address"),
        (r#"{"name":"crm","url":"https://0x7f.1/","types":["*"]}"#, 400, "invalid_destination", "url", "127.0.0.1 is a loopback address"),
        (r#"{"name":"crm","url":"https://crm.example","types":["*"],"signingSecret":"S"}"#, 400, "invalid_destination", "signingSecret", "apps managed at runtime are signed with a secret the bridge makes"),
        (r#"{"name":"crm","url":"https://crm.example","types":["*"],"orgIds":["7"]}"#, 400, "invalid_destination", "orgIds[0]", "expected a Drift orgId"),
        (r#"{"name":"crm","url":"https://crm.example","types":["*"],"ratePerSecond":0}"#, 400, "invalid_destination", "ratePerSecond", "expected a whole number of deliveries a second"),
        (r#"{"name":"crm","url":"https://crm.example","types":["*"],"signed":"yes"}"#, 400, "invalid_destination", "signed", "expected true or false"),
        (r#"{"name":"crm","url":"https://crm.example","types":["*"],"colour":"red"}"#, 400, "invalid_destination", "colour", "unknown field"),
        (r#"{"name":"legacy","url":"https://crm.example","types":["*"]}"#, 409, "declared", "name", "legacy is declared in DESTINATIONS (wrangler.toml): change it there"),
        (r#"[1]"#, 400, "invalid_body", "", "expected a JSON object, found an array"),
        (r#"{"name":"#, 400, "invalid_json", "name", "unexpected end of input"),
    ];
    for (body, status, code, path, message) in cases {
        let mut r = Registry::new();
        let (got, answer, fx) = r.run("create", "", body);
        let v = parse(&answer);
        let text = |k: &str| field(&v, &["error", k]).and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
        assert_eq!((got, text("code").as_str(), text("path").as_str()), (*status, *code, *path), "{body}: {answer}");
        assert!(text("message").starts_with(message), "{body}: {answer}");
        assert_eq!(fx.hold_until, None, "{body}: a refused change waits for nothing");
        assert_eq!(r.copy().apps.len(), 0, "{body}: nothing changed");
        assert_eq!(r.copy().version, 0, "{body}");
    }
    // Every problem at once.
    let mut r = Registry::new();
    let (_, answer, _) = r.run("create", "", r#"{"name":"","url":"ftp://x","types":[]}"#);
    let v = parse(&answer);
    let Some(Value::Array(problems)) = field(&v, &["error", "problems"]) else { panic!("{answer}") };
    assert_eq!(problems.len(), 3, "{answer}");
}

#[test]
fn names_are_unique_across_declared_and_runtime_apps() {
    let mut r = Registry::new();
    assert_eq!(r.run("create", "", CRM).0, 201);
    let (status, body, _) = r.run("create", "", CRM);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains(r#""code":"exists""#), "{body}");
    for op in ["update", "delete", "rotate"] {
        let (status, body, _) = r.run(op, "legacy", "{}");
        assert_eq!(status, 409, "{op}: {body}");
        assert!(body.contains("declared in DESTINATIONS"), "{op} says where to change it: {body}");
        let (status, _, _) = r.run(op, "nobody", "{}");
        assert_eq!(status, 404, "{op}");
    }
}

#[test]
fn a_patch_replaces_the_fields_it_names_and_is_checked_as_a_whole() {
    let mut r = Registry::new();
    r.run("create", "", CRM);
    r.now += 1000;
    let (status, body, fx) = r.run("update", "crm", r#"{"types":["conversation_push"],"orgIds":[7,8],"ratePerSecond":5}"#);
    assert_eq!(status, 200, "{body}");
    assert!(fx.hold_until.is_some());
    let d = r.copy().apps[0].destination(&secrets, &[]).unwrap();
    assert_eq!((d.types.clone(), d.org_ids.clone(), d.rate_per_second), (vec!["conversation_push".to_owned()], vec!["7".to_owned(), "8".to_owned()], Some(5)));
    assert_eq!(d.url, "https://crm.example/hooks/drift", "untouched");
    // null clears; a bad field refuses the whole change.
    r.run("update", "crm", r#"{"orgIds":null,"ratePerSecond":null}"#);
    let d = r.copy().apps[0].destination(&secrets, &[]).unwrap();
    assert_eq!((d.org_ids.len(), d.rate_per_second), (0, None));
    let version = r.copy().version;
    let (status, body, _) = r.run("update", "crm", r#"{"url":"https://ok.example","types":"all"}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#""path":"types""#), "{body}");
    assert_eq!((r.copy().version, r.copy().apps[0].spec.url.as_str()), (version, "https://crm.example/hooks/drift"), "the previous configuration stays in force");
    for (patch, path) in [(r#"{"name":"other"}"#, "name"), (r#"{"secrets":[]}"#, "secrets")] {
        let (status, body, _) = r.run("update", "crm", patch);
        assert_eq!(status, 400, "{patch}: {body}");
        assert!(body.contains(&format!(r#""path":"{path}""#)), "{patch}: {body}");
    }
    // Token handling: replace with a secret, then back to keep (the secret's name goes with it).
    r.run("update", "crm", r#"{"token":"replace","tokenSecret":"APP_TOKEN_CRM"}"#);
    let d = r.copy().apps[0].destination(&secrets, &[]).unwrap();
    assert_eq!(d.token, drift_bridge::delivery::TokenMode::Replace("crm-replacement-token".into()));
    let (status, body, _) = r.run("update", "crm", r#"{"token":"keep"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(r.copy().apps[0].spec.token.secret(), None);
    // Nothing new: no new version, no wait.
    let version = r.copy().version;
    let (status, _, fx) = r.run("update", "crm", r#"{"token":"keep"}"#);
    assert_eq!((status, fx.hold_until, r.copy().version), (200, None, version));
}

#[test]
fn an_ordered_app_stays_ordered_through_a_patch_and_a_patch_cannot_change_it() {
    let mut r = Registry::new();
    let ordered = CRM.replacen('{', r#"{"ordered":true,"#, 1);
    let (status, body, _) = r.run("create", "", &ordered);
    assert_eq!(status, 201, "{body}");
    r.now += 1000;
    let (status, body, _) = r.run("update", "crm", r#"{"ratePerSecond":5}"#);
    assert_eq!(status, 200, "{body}");
    assert!(r.copy().apps[0].spec.ordered, "a change of another field keeps it ordered");
    let (status, _, _) = r.run("update", "crm", r#"{"ordered":true}"#);
    assert_eq!(status, 200, "the same value is no change");
    let (status, body, _) = r.run("update", "crm", r#"{"ordered":false}"#);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains(r#""path":"ordered""#) && body.contains("create one with"), "{body}");
    assert!(r.copy().apps[0].spec.ordered);
}

#[test]
fn signing_turned_on_makes_a_secret_and_turned_off_forgets_it() {
    let mut r = Registry::new();
    r.run("create", "", r#"{"name":"crm","url":"https://crm.example","types":["*"],"signed":false}"#);
    assert!(r.copy().apps[0].secrets.is_empty());
    assert_eq!(r.copy().apps[0].spec.token.as_str(), "keep", "unsigned apps keep Drift's token");
    let (status, body, _) = r.run("rotate", "crm", "{}");
    assert_eq!(status, 409, "{body}");
    let (_, body, _) = r.run("update", "crm", r#"{"signed":true}"#);
    let secret = field(&parse(&body), &["secret"]).and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap();
    assert_eq!(r.copy().apps[0].secrets[0].secret, secret);
    let (_, body, _) = r.run("update", "crm", r#"{"signed":false}"#);
    assert!(!body.contains("secret\""), "{body}");
    assert!(r.copy().apps[0].secrets.is_empty());
}

#[test]
fn a_rotation_signs_with_both_secrets_until_the_overlap_ends() {
    let mut r = Registry::new();
    let (_, body, _) = r.run("create", "", CRM);
    let old = field(&parse(&body), &["secret"]).and_then(Value::as_str).unwrap().text().into_owned();
    let (status, body, fx) = r.run("rotate", "crm", r#"{"overlapSeconds":3600}"#);
    assert_eq!(status, 200, "{body}");
    assert!(fx.hold_until.is_some());
    let v = parse(&body);
    let new = field(&v, &["secret"]).and_then(Value::as_str).unwrap().text().into_owned();
    assert_ne!(new, old);
    assert_eq!(field(&v, &["previousSecretExpiresAt"]).and_then(Value::as_integer), Some((NOW + 3_600_000).to_string().as_str()));
    let d = r.copy().apps[0].destination(&secrets, &[]).unwrap();
    assert_eq!(d.signing_secrets(NOW).collect::<Vec<_>>(), [new.as_str(), old.as_str()]);
    assert_eq!(d.signing_secrets(NOW + 3_600_000).collect::<Vec<_>>(), [new.as_str()]);
    assert!(r.history().contains(r#""action":"rotate-secret""#));
    assert!(!r.history().contains("whsec_"));
    // The default overlap is a day. A rotation during an overlap keeps the
    // secret still in it (a rotation tried again never drops the secret the
    // app verifies with), up to two of them; no overlap is a hard cut.
    let (_, body, _) = r.run("rotate", "crm", "");
    assert!(body.contains(&format!(r#""previousSecretExpiresAt":{}"#, NOW + 86_400_000)), "{body}");
    let third = field(&parse(&body), &["secret"]).and_then(Value::as_str).unwrap().text().into_owned();
    let d = r.copy().apps[0].destination(&secrets, &[]).unwrap();
    assert_eq!(d.signing_secrets(NOW).collect::<Vec<_>>(), [third.as_str(), new.as_str(), old.as_str()]);
    let (status, body, _) = r.run("rotate", "crm", "");
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("rotation_pending"), "{body}");
    let (_, body, _) = r.run("rotate", "crm", r#"{"overlapSeconds":0}"#);
    assert!(!body.contains("previousSecretExpiresAt"), "{body}");
    assert_eq!(r.copy().apps[0].secrets.len(), 1);
    for bad in [r#"{"overlapSeconds":-1}"#, r#"{"overlapSeconds":2592001}"#, r#"{"overlap":5}"#] {
        assert_eq!(r.run("rotate", "crm", bad).0, 400, "{bad}");
    }
}

#[test]
fn deleting_an_app_routes_nothing_more_to_it() {
    let mut r = Registry::new();
    r.run("create", "", CRM);
    let id = r.copy().apps[0].id.clone().unwrap();
    let (status, body, fx) = r.run("delete", "crm", "");
    assert_eq!((status, body.as_str()), (200, r#"{"deleted":"crm","version":2}"#));
    assert!(fx.hold_until.is_some());
    // Its incarnation's log is told at once.
    assert_eq!(fx.calls.len(), 1);
    assert_eq!((fx.calls[0].path, &fx.calls[0].to), ("/end", &drift_bridge::delivery::effects::Object::DeliveryLog(format!("crm~{id}"))));
    assert!(r.copy().apps.is_empty());
    assert_eq!(r.run("delete", "crm", "").0, 404);
    // Its name is free again, for another incarnation.
    assert_eq!(r.run("create", "", CRM).0, 201);
    assert_ne!(r.copy().apps[0].id.clone().unwrap(), id);
}

#[test]
fn a_change_tried_again_with_its_idempotency_key_gets_the_same_answer() {
    let mut r = Registry::new();
    let (status, first, fx) = r.run_keyed("create", "", CRM, Some("k-1"));
    assert_eq!(status, 201, "{first}");
    let until = fx.hold_until.unwrap();
    // The answer was lost; the same request again: the same answer, the
    // secret with it, held no longer than the first.
    r.now += 100;
    let (status, again, fx) = r.run_keyed("create", "", CRM, Some("k-1"));
    assert_eq!((status, &again), (201, &first));
    assert_eq!(fx.reply.unwrap().headers, [("idempotent-replayed", "true".to_owned())]);
    assert_eq!(fx.hold_until, Some(until));
    assert_eq!(r.copy().version, 1, "made once");
    // Another request under the same key is refused; a new key is a new change.
    let (status, body, _) = r.run_keyed("create", "", r#"{"name":"other","url":"https://o.example","types":["*"]}"#, Some("k-1"));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("idempotency_key_reused"), "{body}");
    let (status, _, _) = r.run_keyed("create", "", CRM, Some("k-2"));
    assert_eq!(status, 409, "a second create under a new key finds it made");
    // A rotation tried again with its key rotates once.
    let (_, rotated, _) = r.run_keyed("rotate", "crm", "{}", Some("r-1"));
    let (_, again, _) = r.run_keyed("rotate", "crm", "{}", Some("r-1"));
    assert_eq!(rotated, again);
    assert_eq!(r.copy().apps[0].secrets.len(), 2);
    // A refusal is not remembered: fixed, the same key goes through.
    let (status, _, _) = r.run_keyed("update", "crm", r#"{"types":[]}"#, Some("u-1"));
    assert_eq!(status, 400);
    assert_eq!(r.run_keyed("update", "crm", r#"{"types":[]}"#, Some("u-1")).0, 400);
    for bad in ["", "a b", &"x".repeat(65)] {
        assert_eq!(r.run_keyed("delete", "crm", "", Some(bad)).0, 400, "{bad:?}");
    }
    // Keys are forgotten after a day.
    r.now += registry::IDEMPOTENCY_MS + 1;
    let (status, body, _) = r.run_keyed("create", "", CRM, Some("k-1"));
    assert_eq!(status, 409, "{body}");
}

#[test]
fn a_token_given_to_the_api_is_kept_and_never_shown() {
    let mut r = Registry::new();
    let (status, body, fx) =
        r.run("create", "", r#"{"name":"crm","url":"https://crm.example","types":["*"],"signed":false,"token":"replace","replacementToken":"tok-123"}"#);
    assert_eq!(status, 201, "{body}");
    let listing = r.listing();
    for shown in [&body, &listing, &r.history(), &fx.logs[0].text] {
        assert!(!shown.contains("tok-123"), "{shown}");
    }
    let d = r.copy().apps[0].destination(&secrets, &[]).unwrap();
    assert_eq!(d.token, drift_bridge::delivery::TokenMode::Replace("tok-123".into()));
    // A change that does not touch it keeps it; a new value replaces it.
    r.run("update", "crm", r#"{"types":["conversation_push"]}"#);
    assert_eq!(r.copy().apps[0].destination(&secrets, &[]).unwrap().token, drift_bridge::delivery::TokenMode::Replace("tok-123".into()));
    let (status, body, fx) = r.run("update", "crm", r#"{"replacementToken":"tok-456"}"#);
    assert_eq!(status, 200, "{body}");
    assert!(fx.hold_until.is_some(), "a new value is a change");
    assert_eq!(r.copy().apps[0].destination(&secrets, &[]).unwrap().token, drift_bridge::delivery::TokenMode::Replace("tok-456".into()));
    r.run("update", "crm", r#"{"token":"strip"}"#);
    assert!(!r.routes(-1).contains("tok-456"), "gone with its handling");
}

#[test]
fn history_and_log_lines_show_an_apps_url_without_its_path() {
    let mut r = Registry::new();
    let (_, _, fx) = r.run("create", "", r#"{"name":"ops","url":"https://hooks.slack.example/services/T000/B000/secretpath","types":["*"]}"#);
    for shown in [&r.history(), &fx.logs[0].text] {
        assert!(!shown.contains("secretpath") && shown.contains("https://hooks.slack.example/… (#"), "{shown}");
    }
}

#[test]
fn a_secret_whose_overlap_ended_leaves_the_registry() {
    let mut r = Registry::new();
    r.run("create", "", CRM);
    r.run("rotate", "crm", r#"{"overlapSeconds":60}"#);
    assert_eq!(r.copy().apps[0].secrets.len(), 2);
    let version = r.copy().version;
    r.now += 60_000;
    // Every copy of the apps taken from now on lacks it.
    let copy = r.copy();
    assert_eq!(copy.apps[0].secrets.len(), 1);
    assert_eq!(copy.version, version + 1);
    assert!(r.history().contains(r#""action":"expire-secret""#));
    assert_eq!(r.copy().version, version + 1, "once");
}

#[test]
fn the_registry_and_its_history_are_bounded() {
    let mut r = Registry::new();
    for i in 0..MAX_APPS {
        let (status, body, _) = r.run("create", "", &format!(r#"{{"name":"app-{i}","url":"https://a.example","types":["*"],"signed":false}}"#));
        assert_eq!(status, 201, "{body}");
    }
    let (status, body, _) = r.run("create", "", CRM);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("too_many"), "{body}");
    for i in 0..(HISTORY_CHANGES as usize) {
        r.run("update", "app-0", &format!(r#"{{"ratePerSecond":{}}}"#, i % 7 + 1));
    }
    assert!(r.db.count("SELECT COUNT(*) FROM changes") <= HISTORY_CHANGES);
    // Newest first, a page at a time.
    let page = r.ask("/changes", r#"{"limit":2}"#);
    let v = parse(&page);
    let Some(Value::Array(items)) = v.get("changes") else { panic!("{page}") };
    assert_eq!(items.len(), 2);
    let next = v.get("next").and_then(Value::as_integer).unwrap().to_owned();
    let older = r.ask("/changes", &format!(r#"{{"limit":2,"before":{next}}}"#));
    assert!(older != page);
}

#[test]
fn a_logs_registrations_are_ordered_by_their_epoch_whatever_order_they_arrive_in() {
    let r = Registry::new();
    let say = |path: &str, epoch: i64| {
        let (path, body) = Input::Register { registration: registry::Registration { destination: "crm~0a".into(), epoch }, holds: path == "/register" }.encode();
        assert_eq!(r.ask(path, &body), "{}");
    };
    let listed = || registry::Logs::decode(&r.ask("/logs", "")).unwrap().keys;
    say("/register", 2);
    say("/unregister", 1);
    assert_eq!(listed(), ["crm~0a"], "an older message never undoes a newer one");
    say("/unregister", 3);
    assert!(listed().is_empty());
    say("/register", 2);
    assert!(listed().is_empty());
    assert_eq!(Input::decode("/nope", "").unwrap_err().0, 404);
    assert_eq!(Input::decode("/register", r#"{"destination":"crm"}"#).unwrap_err().0, 400);
}

/// Through the simulated runtime: a change's answer is held until every
/// copy of the apps taken before it has expired, and a deletion's call ends
/// the app's delivery log at once.
#[test]
fn in_the_runtime_a_change_waits_out_every_copy_and_a_deletion_ends_the_apps_log() {
    use support::world::{Obj, World};
    let base = support::config(&[]);
    let mut w = World::new(base.clone(), NOW);
    let change = |name: &str, body: &str| AppChange { by: "0a1b2c3d".into(), name: name.into(), body: body.into(), key: None };
    let app = r#"{"name":"crm","url":"https://crm.example/hook","types":["conversation_push"],"signed":false}"#;
    let (path, body) = Input::AppChange { op: ChangeOp::Create, change: change("", app) }.encode();
    let (status, answer) = w.request(&Obj::Registry, path, &body).unwrap();
    assert_eq!(status, 201, "{answer}");
    assert_eq!(w.now, NOW + i64::from(base.apps_lease_ms) + LEASE_MARGIN_MS, "answered once every copy taken before it expired");
    // The isolates' copy of the apps, and a webhook routed by it.
    let (_, copy) = w.request(&Obj::Registry, "/routes", r#"{"known":-1}"#).unwrap();
    let routes = Routes::decode(&copy).unwrap().1.unwrap();
    let key = routes.apps[0].log_key();
    w.config = base.with_apps(&routes, &|_| None);
    w.app(&key, |_| None);
    assert_eq!(w.webhook(r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":7}}"#), 200);
    assert_eq!(w.requests.len(), 1);
    // Deleted: its log is told at once, and ends what it holds.
    let (path, body) = Input::AppChange { op: ChangeOp::Delete, change: change("crm", "") }.encode();
    assert_eq!(w.request(&Obj::Registry, path, &body).unwrap().0, 200);
    assert!(w.trace.iter().any(|t| t.starts_with(&format!("log {key} /end:"))), "{:#?}", w.trace);
    let (_, list) = w.log_op(&key, "/list", "{}").unwrap();
    assert!(list.contains(r#""status":"failed""#) && list.contains("its app crm was removed"), "{list}");
    w.config = base;
    w.run_until(w.now + 600_000);
    assert_eq!(w.requests.len(), 1, "nothing of it is sent again");
    w.invariants().unwrap();
}
