//! Apps managed at runtime: what the registry stores of each, the copy of
//! them every isolate routes by, and how they join the apps declared in
//! `DESTINATIONS`.
//!
//! An app's object is the one `DESTINATIONS` takes, read by the same field
//! readers ([`super::destination::read_spec`]), but for its signing
//! secrets, which the bridge makes (`"signed": true`) and rotates with an
//! overlap: until the old secret's end, every delivery carries a signature
//! for each secret.
//!
//! **The copy and its lease.** Every isolate routes, delivers and signs by
//! a copy of the registry's apps ([`Routes`]) that is never older than
//! `APPS_CACHE_MS` (the entry module refreshes it first when it is); the
//! registry answers a change only once every copy taken before it has
//! expired ([`super::registry`]). So a webhook answered `200` after a
//! change's answer is routed by the changed configuration, wherever it
//! ran, and no isolate ever routes by a copy it could not confirm.

use super::destination::{Destination, Destinations, SigningSecret, Source, Spec, TokenSetting};
use super::wire::{self as message, Fields, MessageError};
use crate::json::{self, Limits, Writer};
use crate::problem::Problem;

/// The most apps the registry keeps (declared apps are not counted).
pub const MAX_APPS: usize = 100;
/// How long a copy of the apps may be used, by default (`APPS_CACHE_MS`).
pub const DEFAULT_LEASE_MS: u32 = 5_000;
/// What the registry waits beyond the lease before it answers a change:
/// room for clocks that read a little apart.
pub const LEASE_MARGIN_MS: i64 = 1_000;
/// A rotation's overlap, by default: a day.
pub const DEFAULT_OVERLAP_SECONDS: i64 = 86_400;
/// The longest overlap: thirty days.
pub const MAX_OVERLAP_SECONDS: i64 = 30 * 86_400;
/// Random bytes in a secret the bridge makes (`whsec_` and their base64).
pub const SECRET_BYTES: usize = 32;

/// One app as the registry stores it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct App {
    pub spec: Spec,
    /// Its incarnation (16 hex digits), made when it is created: its
    /// delivery log is its own, never that of an earlier app of the same
    /// name (`None`: created before incarnations existed).
    pub id: Option<String>,
    /// Newest first; empty when not signed.
    pub secrets: Vec<SigningSecret>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl App {
    /// Its stored JSON (secrets included: never shown outside the bridge).
    pub fn encode(&self) -> String {
        let mut w = Writer::object();
        write_public(&mut w, &self.spec);
        w.opt_str("id", self.id.as_deref());
        if let TokenSetting::ReplaceWith { value } = &self.spec.token {
            w.str("replacementToken", value);
        }
        let secrets: Vec<String> = self
            .secrets
            .iter()
            .map(|s| Writer::object().str("secret", &s.secret).opt_int("until", s.until).finish())
            .collect();
        w.raw("secrets", &format!("[{}]", secrets.join(",")));
        w.int("createdAt", self.created_at).int("updatedAt", self.updated_at).finish()
    }

    pub(crate) fn decode_fields(f: &Fields<'_, '_>) -> Result<App, MessageError> {
        let token = match f.str("token")?.as_str() {
            "keep" => TokenSetting::Keep,
            "strip" => TokenSetting::Strip,
            "replace" => match f.opt_str("replacementToken")? {
                Some(value) => TokenSetting::ReplaceWith { value },
                None => TokenSetting::Replace { secret: f.str("tokenSecret")? },
            },
            other => return Err(f.error("token", format!("unknown token handling {}", crate::escape::quoted(other)))),
        };
        let rate = match f.opt_int("ratePerSecond")? {
            None => None,
            Some(n) => Some(u32::try_from(n).map_err(|_| f.error("ratePerSecond", "expected a rate"))?),
        };
        let secrets = f.each_opt("secrets", |s| Ok(SigningSecret { secret: s.str("secret")?, until: s.opt_int("until")? }))?;
        Ok(App {
            spec: Spec {
                name: f.str("name")?,
                url: f.opt_str("url")?.unwrap_or_default(),
                types: f.strings("types")?,
                token,
                signing_secrets: Vec::new(),
                signed: !secrets.is_empty(),
                org_ids: f.integers("orgIds")?,
                rate_per_second: rate,
                ordered: f.bool("ordered")?,
                listen: f.bool("listen")?,
            },
            id: f.opt_str("id")?,
            secrets,
            created_at: f.opt_int("createdAt")?.unwrap_or(0),
            updated_at: f.opt_int("updatedAt")?.unwrap_or(0),
        })
    }

    pub fn decode(text: &str) -> Result<App, MessageError> {
        const KIND: &str = "stored app";
        let value = message::parse(KIND, text, &Limits::INTERNAL)?;
        App::decode_fields(&Fields::parse(KIND, &value)?)
    }

    /// Its delivery log's key.
    pub fn log_key(&self) -> String {
        super::destination::log_key(&self.spec.name, self.id.as_deref())
    }

    /// The app as deliveries see it, its token's replacement looked up
    /// through `secret`, which it may read only as [`TokenSetting::check_runtime`]
    /// allows (`declared`: the bindings the declared apps and alert targets
    /// name).
    pub fn destination(&self, secret: &impl Fn(&str) -> Option<String>, declared: &[String]) -> Result<Destination, String> {
        self.spec.token.check_runtime(declared).map_err(|(_, message)| message)?;
        let token = self.spec.token.resolve(secret).map_err(|(_, message)| message)?;
        Ok(Destination {
            name: self.spec.name.clone(),
            url: self.spec.url.clone(),
            types: self.spec.types.clone(),
            token,
            signing: self.secrets.clone(),
            org_ids: self.spec.org_ids.clone(),
            rate_per_second: self.spec.rate_per_second,
            source: Source::Runtime,
            incarnation: self.id.clone(),
            ordered: self.spec.ordered,
            listen: self.spec.listen,
        })
    }

    /// Forgets the secrets whose overlap ended by `now`; answers whether it did.
    pub fn purge_secrets(&mut self, now: i64) -> bool {
        let before = self.secrets.len();
        self.secrets.retain(|s| s.until.is_none_or(|until| until > now));
        self.secrets.len() != before
    }

    /// The end of the previous secret's overlap, while it lasts at `now`.
    pub fn overlap_end(&self, now: i64) -> Option<i64> {
        self.secrets.iter().filter_map(|s| s.until).filter(|u| *u > now).max()
    }

    /// Its public JSON members (no braces): what the admin API shows, never
    /// a secret.
    pub fn write_public(&self, w: &mut Writer, now: i64) {
        write_public(w, &self.spec);
        w.opt_str("incarnation", self.id.as_deref());
        w.bool("signed", !self.secrets.is_empty());
        if let Some(end) = self.overlap_end(now) {
            w.int("previousSecretExpiresAt", end);
        }
        w.int("createdAt", self.created_at).int("updatedAt", self.updated_at);
    }
}

/// `name`, `url` (or `"listen": true`), `types`, `token`, `tokenSecret`,
/// `orgIds`, `ratePerSecond`, `ordered`.
fn write_public(w: &mut Writer, spec: &Spec) {
    w.str("name", &spec.name);
    if spec.listen {
        w.bool("listen", true);
    } else {
        w.str("url", &spec.url);
    }
    w.raw("types", &json::string_array(&spec.types))
        .str("token", spec.token.as_str())
        .opt_str("tokenSecret", spec.token.secret());
    if !spec.org_ids.is_empty() {
        w.raw("orgIds", &format!("[{}]", spec.org_ids.join(",")));
    }
    w.opt_int("ratePerSecond", spec.rate_per_second.map(i64::from));
    if spec.ordered {
        w.bool("ordered", true);
    }
}

/// A copy of the registry's apps at one version: what `/routes` answers,
/// and what each isolate keeps for at most its lease.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routes {
    pub version: i64,
    pub apps: Vec<App>,
}

impl Routes {
    /// `{"version","apps":[…]}`: every app as stored (the isolates' copy
    /// holds their URLs and secrets: the delivery logs send from it).
    pub fn encode(&self) -> String {
        let apps: Vec<String> = self.apps.iter().map(App::encode).collect();
        Writer::object().int("version", self.version).raw("apps", &format!("[{}]", apps.join(","))).finish()
    }

    /// `/routes`' answer when the caller's copy is current.
    pub fn encode_same(version: i64) -> String {
        Writer::object().int("version", version).bool("same", true).finish()
    }

    /// Reads `/routes`' answer: `Ok(None)` when it says the copy is current.
    pub fn decode(text: &str) -> Result<(i64, Option<Routes>), MessageError> {
        const KIND: &str = "/routes";
        let value = message::parse(KIND, text, &Limits::INTERNAL)?;
        let f = Fields::parse(KIND, &value)?;
        let version = f.int("version")?;
        if f.bool("same")? {
            return Ok((version, None));
        }
        Ok((version, Some(Routes { version, apps: f.each("apps", App::decode_fields)? })))
    }
}

/// The apps deliveries go to: the declared ones, then those of the
/// registry's copy (one whose name is declared too, or whose token secret
/// is gone, is left out and named as a problem).
pub fn merge(
    declared: &Destinations,
    reserved: &[String],
    routes: &Routes,
    secret: &impl Fn(&str) -> Option<String>,
) -> (Destinations, Vec<Problem>) {
    let mut list = declared.list.clone();
    let mut problems = Vec::new();
    for app in &routes.apps {
        let field = format!("app {}", app.spec.name);
        if declared.get(&app.spec.name).is_some() {
            problems.push(Problem::notice(
                field,
                "managed at runtime but also declared in DESTINATIONS, which wins; delete one of them",
            ));
            continue;
        }
        match app.destination(secret, reserved) {
            Ok(d) => list.push(d),
            Err(message) => problems.push(Problem::notice(field, format!("left out: {message}"))),
        }
    }
    (Destinations { list, secret_names: declared.secret_names.clone() }, problems)
}

/// A signing secret made from `entropy` (random bytes from the caller):
/// `whsec_` and their base64, as Standard Webhooks libraries expect.
pub fn new_secret(entropy: &[u8; SECRET_BYTES]) -> String {
    use base64::Engine;
    format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(entropy))
}

/// A new app's incarnation: 16 hex digits, drawn from `entropy` apart from
/// its secret (a hash of them, so that neither says anything of the other).
pub fn new_incarnation(entropy: &[u8; SECRET_BYTES]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new().chain_update(b"incarnation\0").chain_update(entropy).finalize();
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Who made a change: the first 8 hex digits of the admin token's SHA-256
/// (the token itself is never stored or shown).
pub fn fingerprint(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(token.as_bytes());
    digest[..4].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::destination::{read_spec, Source};

    fn spec(text: &str) -> Spec {
        let value = json::parse(text, &Limits::INTERNAL).unwrap();
        read_spec(&value, Source::Runtime, crate::delivery::destination::parse_url).unwrap()
    }

    #[test]
    fn an_app_round_trips_through_its_stored_form() {
        let app = App {
            spec: spec(r#"{"name":"crm","url":"https://crm.example/x","types":["conversation_push"],"orgIds":[7],"ratePerSecond":3}"#),
            id: Some("0123456789abcdef".into()),
            secrets: vec![
                SigningSecret { secret: "whsec_new".into(), until: None },
                SigningSecret { secret: "whsec_old".into(), until: Some(99) },
            ],
            created_at: 1,
            updated_at: 2,
        };
        assert_eq!(app.spec.token, TokenSetting::Strip, "signed by default, so no Drift token");
        let back = App::decode(&app.encode()).unwrap();
        assert_eq!(back, App { spec: Spec { signed: true, ..app.spec.clone() }, ..app.clone() });
        let routes = Routes { version: 4, apps: vec![app.clone()] };
        assert_eq!(Routes::decode(&routes.encode()).unwrap(), (4, Some(Routes { version: 4, apps: vec![back] })));
        assert_eq!(Routes::decode(&Routes::encode_same(4)).unwrap(), (4, None));
        // What the isolates' copy routes by is the app as stored.
        let whole = app.destination(&|_| None, &[]).unwrap();
        assert_eq!(whole.log_key(), "crm~0123456789abcdef");
        assert!(whole.wants("conversation_push", Some("7")) && !whole.wants("conversation_push", Some("8")));
        assert!(!whole.wants("conversation_inactive", Some("7")));
    }

    #[test]
    fn what_the_admin_api_shows_carries_no_secret() {
        let app = App {
            spec: spec(r#"{"name":"crm","url":"https://crm.example/x","types":["*"]}"#),
            id: None,
            secrets: vec![
                SigningSecret { secret: "whsec_bmV3LXNlY3JldA==".into(), until: None },
                SigningSecret { secret: "whsec_b2xkLXNlY3JldA==".into(), until: Some(50) },
            ],
            created_at: 1,
            updated_at: 2,
        };
        let mut w = Writer::object();
        app.write_public(&mut w, 10);
        let shown = w.finish();
        assert!(!shown.contains("whsec") && !shown.contains("bmV3") && !shown.contains("b2xk"), "{shown}");
        assert!(shown.contains(r#""signed":true"#) && shown.contains(r#""previousSecretExpiresAt":50"#), "{shown}");
        let mut w = Writer::object();
        app.write_public(&mut w, 50);
        assert!(!w.finish().contains("previousSecretExpiresAt"), "the overlap is over");
    }

    #[test]
    fn declared_apps_win_a_shared_name() {
        let declared = Destinations::parse(Some(r#"[{"name":"crm","url":"https://a.example","types":["*"]}]"#), |_| None).unwrap();
        let app = |name: &str| App { spec: spec(&format!(r#"{{"name":"{name}","url":"https://b.example","types":["*"],"signed":false}}"#)), id: None, secrets: vec![], created_at: 0, updated_at: 0 };
        let (merged, problems) = merge(&declared, &[], &Routes { version: 1, apps: vec![app("crm"), app("push")] }, &|_| None);
        assert_eq!(merged.list.iter().map(|d| (d.name.as_str(), d.source)).collect::<Vec<_>>(), [("crm", Source::Declared), ("push", Source::Runtime)]);
        assert_eq!(merged.get("crm").unwrap().url, "https://a.example/");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].to_string().starts_with("app crm: managed at runtime but also declared"), "{}", problems[0]);
    }

    #[test]
    fn secrets_are_standard_webhooks_secrets() {
        let secret = new_secret(&[7; SECRET_BYTES]);
        assert!(secret.starts_with("whsec_"));
        assert_eq!(crate::delivery::sign::key_from_secret(&secret).unwrap(), vec![7; SECRET_BYTES]);
        assert_eq!(fingerprint("0123456789abcdef0123456789abcdef").len(), 8);
        assert_ne!(fingerprint("a"), fingerprint("b"));
    }

    #[test]
    fn a_runtime_app_reads_only_the_bindings_it_may_and_keeps_a_token_given_to_it() {
        use crate::delivery::destination::TokenMode;
        let secret = |name: &str| match name {
            "ADMIN_TOKEN" => Some("admin-token-value".to_owned()),
            "APP_TOKEN_CRM" => Some("crm-token".to_owned()),
            "APP_TOKEN_DECLARED" => Some("declared-token".to_owned()),
            _ => None,
        };
        let reserved = vec!["APP_TOKEN_DECLARED".to_owned()];
        let with = |token: &str| App {
            spec: spec(&format!(r#"{{"name":"crm","url":"https://crm.example/x","types":["*"],"signed":false,"token":"replace",{token}}}"#)),
            id: Some("00000000000000aa".into()),
            secrets: vec![],
            created_at: 0,
            updated_at: 0,
        };
        for refused in ["ADMIN_TOKEN", "DRIFT_VERIFICATION_TOKEN", "DESTINATIONS", "APP_TOKEN_DECLARED", "APP_TOKEN_", "app_token_crm"] {
            let app = with(&format!(r#""tokenSecret":"{refused}""#));
            let e = app.destination(&secret, &reserved).unwrap_err();
            assert!(!e.contains("admin-token-value") && !e.contains("is not set"), "{refused}: {e}");
        }
        assert_eq!(with(r#""tokenSecret":"APP_TOKEN_CRM""#).destination(&secret, &reserved).unwrap().token, TokenMode::Replace("crm-token".into()));
        // A token given to the API: stored with the app, never shown.
        let app = with(r#""replacementToken":"tok-123""#);
        assert_eq!(app.destination(&secret, &reserved).unwrap().token, TokenMode::Replace("tok-123".into()));
        let back = App::decode(&app.encode()).unwrap();
        assert_eq!(back.spec.token, app.spec.token);
        let mut w = Writer::object();
        app.write_public(&mut w, 0);
        assert!(!w.finish().contains("tok-123"));
    }

    #[test]
    fn expired_secrets_are_forgotten() {
        let mut app = App {
            spec: spec(r#"{"name":"crm","url":"https://crm.example/x","types":["*"]}"#),
            id: None,
            secrets: vec![SigningSecret { secret: "whsec_a".into(), until: None }, SigningSecret { secret: "whsec_b".into(), until: Some(10) }],
            created_at: 0,
            updated_at: 0,
        };
        assert!(!app.purge_secrets(9));
        assert!(app.purge_secrets(10));
        assert_eq!(app.secrets.len(), 1);
        assert_eq!(new_incarnation(&[1; SECRET_BYTES]).len(), 16);
        assert_ne!(new_incarnation(&[1; SECRET_BYTES]), new_incarnation(&[2; SECRET_BYTES]));
    }
}
