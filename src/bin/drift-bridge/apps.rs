//! `drift-bridge apps`: the apps a running bridge delivers to, managed over
//! its admin API, for scripts.
//!
//! Each subcommand is one call to the admin API (`--bridge`, the worker's
//! URL; the admin token from `DRIFT_BRIDGE_ADMIN_TOKEN`, never an argument,
//! so that it stays out of shell histories and process lists). The API's
//! JSON answer goes to stdout as it came, for `jq`; one line for people goes
//! to stderr. A secret the bridge makes (`add`, `rotate`, `edit --signed
//! true`) is in the answer on stdout, once: the bridge never shows it again.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args as ClapArgs, Subcommand};
use drift_bridge::json::{self, Limits, Value, Writer};
use ureq::Agent;

use crate::EXIT_USAGE;

pub const ABOUT: &str = "\
Manage the apps a running bridge delivers to, over its admin API.

Every subcommand needs --bridge (the worker's URL, e.g.
https://drift-bridge.example.workers.dev) and the admin token in the
environment variable DRIFT_BRIDGE_ADMIN_TOKEN. The API's answer is printed on
stdout as JSON; a summary for people goes to stderr. Apps declared in
DESTINATIONS (wrangler.toml) are listed too, but can only be changed there.

A change is answered once every copy of the apps the bridge's isolates keep
has expired (APPS_CACHE_MS, 5 s by default): from then on every webhook is
routed by it.

Exit status: 0 when the bridge did it; 1 when it refused (a bad field, an
unknown or declared app, a test delivery the app did not accept); 2 on a
usage error, when the bridge cannot be reached or refuses the admin token.";

/// The environment variable holding the admin token.
pub const TOKEN_VARIABLE: &str = "DRIFT_BRIDGE_ADMIN_TOKEN";
/// How much of an answer is read.
const MAX_ANSWER_BYTES: u64 = 4 * 1024 * 1024;

#[derive(ClapArgs)]
pub struct Args {
    /// The bridge's URL, e.g. https://drift-bridge.example.workers.dev
    /// (plain http only for localhost)
    #[arg(long, value_name = "URL", value_parser = parse_bridge, global = true)]
    bridge: Option<String>,
    /// Seconds to wait for an answer (a change takes APPS_CACHE_MS and then some)
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    timeout: u64,
    #[command(subcommand)]
    command: AppsCommand,
}

#[derive(Subcommand)]
enum AppsCommand {
    /// List every app: declared and managed at runtime, with its state
    List,
    /// Add an app; with signing (the default) its secret is printed once
    Add {
        /// Its name: letters, digits, - and _ (up to 64)
        name: String,
        #[command(flatten)]
        fields: Fields,
    },
    /// Change an app's fields; those not given stay as they are
    Edit {
        name: String,
        #[command(flatten)]
        fields: Fields,
        /// Send it events of every organisation again (forget --org-id)
        #[arg(long, conflicts_with = "org_ids")]
        all_orgs: bool,
        /// No rate of its own any more (forget --rate)
        #[arg(long, conflicts_with = "rate")]
        no_rate: bool,
    },
    /// Delete an app: nothing more is sent to it
    Rm { name: String },
    /// Make a new signing secret (printed once); the old one signs too until the overlap ends
    Rotate {
        name: String,
        /// How long deliveries carry both signatures, in seconds [default: 86400, a day]
        #[arg(long, value_name = "SECONDS")]
        overlap: Option<u64>,
    },
    /// Send the app a test delivery (Drift's example, as it would get it) and print its answer
    Test { name: String },
}

/// An app's fields, as `add` and `edit` take them.
#[derive(ClapArgs)]
struct Fields {
    /// Where its deliveries go (https; plain http only for loopback)
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// The Drift event types it gets, comma-separated, or * for all
    #[arg(long, value_name = "TYPE,…", value_delimiter = ',')]
    types: Option<Vec<String>>,
    /// What happens to Drift's token field
    #[arg(long, value_parser = ["keep", "strip", "replace"])]
    token: Option<String>,
    /// With --token replace: the name of the worker secret holding the replacement
    #[arg(long, value_name = "NAME")]
    token_secret: Option<String>,
    /// Sign its deliveries with a secret the bridge makes [add: true]
    #[arg(long, value_name = "BOOL")]
    signed: Option<bool>,
    /// Only events of this Drift organisation (repeat, or comma-separate)
    #[arg(long = "org-id", value_name = "ORGID", value_delimiter = ',')]
    org_ids: Option<Vec<u64>>,
    /// At most N deliveries a second to it
    #[arg(long, value_name = "N")]
    rate: Option<u32>,
}

impl Fields {
    fn write(&self, w: &mut Writer) {
        if let Some(url) = &self.url {
            w.str("url", url);
        }
        if let Some(types) = &self.types {
            w.raw("types", &json::string_array(types));
        }
        if let Some(token) = &self.token {
            w.str("token", token);
        }
        if let Some(secret) = &self.token_secret {
            w.str("tokenSecret", secret);
        }
        if let Some(signed) = self.signed {
            w.bool("signed", signed);
        }
        if let Some(orgs) = &self.org_ids {
            w.raw("orgIds", &format!("[{}]", orgs.iter().map(u64::to_string).collect::<Vec<_>>().join(",")));
        }
        if let Some(rate) = self.rate {
            w.int("ratePerSecond", i64::from(rate));
        }
    }
}

/// The bridge's URL, without a trailing `/`: as `send --bridge` takes it.
fn parse_bridge(text: &str) -> Result<String, String> {
    crate::send::parse_url(text).map(|url| url.trim_end_matches('/').to_owned())
}

/// One call: method, path, body.
struct Call {
    method: &'static str,
    path: String,
    body: Option<String>,
}

pub fn run(args: Args) -> ExitCode {
    let Some(bridge) = args.bridge.clone() else {
        eprintln!("drift-bridge apps: --bridge <URL> is required (the worker's URL)");
        return ExitCode::from(EXIT_USAGE);
    };
    let token = match std::env::var(TOKEN_VARIABLE) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => {
            eprintln!("drift-bridge apps: set {TOKEN_VARIABLE} to the bridge's ADMIN_TOKEN");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let segment = |name: &str| -> Result<String, String> {
        drift_bridge::delivery::destination::check_name(name).map(|()| name.to_owned()).map_err(|e| format!("the app's name {e}"))
    };
    let call = match &args.command {
        AppsCommand::List => Ok(Call { method: "GET", path: "/admin/destinations".into(), body: None }),
        AppsCommand::Add { name, fields } => segment(name).map(|name| {
            let mut w = Writer::object();
            w.str("name", &name);
            fields.write(&mut w);
            Call { method: "POST", path: "/admin/destinations".into(), body: Some(w.finish()) }
        }),
        AppsCommand::Edit { name, fields, all_orgs, no_rate } => segment(name).map(|name| {
            let mut w = Writer::object();
            fields.write(&mut w);
            if *all_orgs {
                w.raw("orgIds", "null");
            }
            if *no_rate {
                w.raw("ratePerSecond", "null");
            }
            Call { method: "PATCH", path: format!("/admin/destinations/{name}"), body: Some(w.finish()) }
        }),
        AppsCommand::Rm { name } => segment(name).map(|name| Call { method: "DELETE", path: format!("/admin/destinations/{name}"), body: None }),
        AppsCommand::Rotate { name, overlap } => segment(name).map(|name| {
            let mut w = Writer::object();
            if let Some(seconds) = overlap {
                w.int("overlapSeconds", i64::try_from(*seconds).unwrap_or(i64::MAX));
            }
            Call { method: "POST", path: format!("/admin/destinations/{name}/rotate-secret"), body: Some(w.finish()) }
        }),
        AppsCommand::Test { name } => {
            segment(name).map(|name| Call { method: "POST", path: format!("/admin/destinations/{name}/test"), body: Some(String::new()) })
        }
    };
    let call = match call {
        Ok(call) => call,
        Err(message) => {
            eprintln!("drift-bridge apps: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let agent: Agent = Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(args.timeout)))
        .user_agent(format!("drift-bridge/{} (apps)", drift_bridge::VERSION))
        .build()
        .into();
    let url = format!("{bridge}{}", call.path);
    let auth = format!("Bearer {token}");
    let result = match (call.method, call.body) {
        ("GET", _) => agent.get(&url).header("Authorization", &auth).call(),
        ("DELETE", _) => agent.delete(&url).header("Authorization", &auth).call(),
        (method, body) => {
            let request = match method {
                "PATCH" => agent.patch(&url),
                _ => agent.post(&url),
            };
            request.header("Authorization", &auth).header("Content-Type", "application/json").send(body.unwrap_or_default().as_bytes())
        }
    };
    let mut response = match result {
        Ok(r) => r,
        Err(e) => {
            // The error never carries the token (it travels only in a header).
            eprintln!("drift-bridge apps: cannot reach {bridge}: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let status = response.status().as_u16();
    let text = response.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_string().unwrap_or_default();
    let value = json::parse(&text, &Limits { max_bytes: usize::MAX, ..Limits::default() }).ok();
    let said = |v: &Option<Value<'_>>, path: &[&str]| -> Option<String> {
        let mut at = v.as_ref()?;
        for key in path {
            at = at.get(key)?;
        }
        match at {
            Value::String(s) => Some(s.text().into_owned()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Null => Some("none".into()),
            other => Some(other.to_json()),
        }
    };
    if status == 401 || status == 403 || (status == 404 && said(&value, &["error", "message"]).is_some_and(|m| m.contains("admin routes are off"))) {
        let why = said(&value, &["error", "message"]).unwrap_or_else(|| format!("status {status}"));
        eprintln!("drift-bridge apps: the bridge refused the admin token ({status}: {why}); check {TOKEN_VARIABLE}");
        return ExitCode::from(EXIT_USAGE);
    }
    if value.is_none() {
        let excerpt: String = text.chars().take(200).collect();
        eprintln!("drift-bridge apps: {} {url} answered {status}, not JSON: {excerpt}", call.method);
        return ExitCode::from(EXIT_USAGE);
    }
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{}", text.trim());
    let _ = stdout.flush();
    if !(200..300).contains(&status) {
        let code = said(&value, &["error", "code"]).unwrap_or_default();
        let message = said(&value, &["error", "message"]).unwrap_or_default();
        let at = said(&value, &["error", "path"]).filter(|p| !p.is_empty()).map(|p| format!(" at {p}")).unwrap_or_default();
        eprintln!("drift-bridge apps: refused ({status} {code}{at}): {message}");
        return ExitCode::from(if status >= 500 { EXIT_USAGE } else { 1 });
    }
    match &args.command {
        AppsCommand::List => {
            let Some(Value::Array(items)) = value.as_ref().and_then(|v| v.get("destinations")) else { return ExitCode::SUCCESS };
            for item in items {
                let f = |k: &str| item.get(k).and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
                let url = f("url");
                eprintln!(
                    "{:<24} {:<9} {:<8} {}",
                    f("name"),
                    if f("source").is_empty() { "removed".to_owned() } else { f("source") },
                    f("state"),
                    if url.is_empty() { "(no longer configured)".to_owned() } else { url }
                );
            }
            eprintln!("{} app(s)", items.len());
        }
        AppsCommand::Add { name, .. } => {
            let version = said(&value, &["version"]).unwrap_or_default();
            match said(&value, &["secret"]) {
                Some(_) => eprintln!("{name} added (version {version}); its signing secret is in the answer on stdout, shown this once"),
                None => eprintln!("{name} added (version {version}), unsigned"),
            }
        }
        AppsCommand::Edit { name, .. } => eprintln!("{name} changed (version {})", said(&value, &["version"]).unwrap_or_default()),
        AppsCommand::Rm { name } => eprintln!("{name} deleted (version {})", said(&value, &["version"]).unwrap_or_default()),
        AppsCommand::Rotate { name, .. } => match said(&value, &["previousSecretExpiresAt"]) {
            Some(end) => eprintln!("{name}: new signing secret on stdout, shown this once; the old one signs too until {}", utc(&end)),
            None => eprintln!("{name}: new signing secret on stdout, shown this once; the old one no longer signs"),
        },
        AppsCommand::Test { name } => {
            let delivered = said(&value, &["delivered"]).as_deref() == Some("true");
            let code = said(&value, &["status"]).unwrap_or_else(|| "none".into());
            let ms = said(&value, &["latencyMs"]).unwrap_or_default();
            if delivered {
                eprintln!("{name} took the test delivery: {code} in {ms} ms");
            } else {
                let why = said(&value, &["error"]).unwrap_or_default();
                eprintln!("{name} did not take the test delivery: {why} ({ms} ms)");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}

/// A time in ms since the epoch, as the admin API gives it, written as UTC
/// (`2026-12-05T12:49:35Z`), with the number beside it for scripts; anything
/// else as it came.
fn utc(ms: &str) -> String {
    let Ok(n) = ms.parse::<i64>() else { return ms.to_owned() };
    let (days, rest) = (n.div_euclid(86_400_000), n.rem_euclid(86_400_000) / 1000);
    // Days to a civil date (Howard Hinnant's days_from_civil, inverted).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z ({n} ms since the epoch)", rest / 3600, rest / 60 % 60, rest % 60)
}

#[cfg(test)]
mod utc_tests {
    use super::utc;

    #[test]
    fn times_are_written_as_utc_with_the_number_beside() {
        assert_eq!(utc("0"), "1970-01-01T00:00:00Z (0 ms since the epoch)");
        assert_eq!(utc("1795467390000"), "2026-11-23T20:56:30Z (1795467390000 ms since the epoch)");
        assert_eq!(utc("951782400000"), "2000-02-29T00:00:00Z (951782400000 ms since the epoch)");
        assert_eq!(utc("1796476175192"), "2026-12-05T13:09:35Z (1796476175192 ms since the epoch)");
        assert_eq!(utc("soon"), "soon");
    }
}
