//! `drift-bridge apps`: the apps a running bridge delivers to, managed over
//! its admin API, for scripts.
//!
//! Each subcommand is one call to the admin API through [`crate::bridge`]
//! (`--bridge`, the admin token from `DRIFT_BRIDGE_ADMIN_TOKEN`, never an
//! argument, so that it stays out of shell histories and process lists). The
//! API's JSON answer goes to stdout as it came, for `jq`; one line for people
//! goes to stderr. A secret the bridge makes (`add`, `rotate`, `edit --signed
//! true`) is in the answer on stdout, once: the bridge never shows it again,
//! except to a retry of the same change under its `Idempotency-Key`.

use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use drift_bridge::json::{self, Value, Writer};

use crate::bridge::{self, Admin, Call, Connection, Method, Output, OutputArg, Repeat};

pub const ABOUT: &str = "\
Manage the apps a running bridge delivers to, over its admin API.

Every subcommand needs --bridge (the bridge's base URL, e.g.
https://drift-bridge.example.workers.dev) and the admin token in the
environment variable DRIFT_BRIDGE_ADMIN_TOKEN. The API's answer is printed on
stdout as JSON (list: a table with --output table, the default on a
terminal); a summary for people goes to stderr. Apps declared in DESTINATIONS
(wrangler.toml) are listed too, but can only be changed there.

A change is answered once every copy of the apps the bridge's isolates keep
has expired (APPS_CACHE_MS, 5 s by default): from then on every webhook is
routed by it. Each change goes under an Idempotency-Key (a fresh random one,
or --idempotency-key): when no answer comes (a network error, a timeout, 502,
503 or 504), it is sent again with the same key, and the bridge gives its
first answer, secret included, rather than make the change twice. If it still
gets none, it says how to check and the key that gets the answer later.";

#[derive(ClapArgs)]
pub struct Args {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: AppsCommand,
}

/// `--idempotency-key`, for the subcommands that change something.
#[derive(ClapArgs)]
struct Key {
    /// Send the change under this Idempotency-Key (1 to 64 letters, digits, -
    /// and _) rather than a fresh one: run a change that got no answer again
    /// with the key it printed, within 24 hours, to get the first answer
    #[arg(long, value_name = "KEY", value_parser = bridge::parse_key)]
    idempotency_key: Option<String>,
}

/// An app's name, as the bridge takes it (and as it goes in a path).
pub fn parse_name(text: &str) -> Result<String, String> {
    drift_bridge::delivery::destination::check_name(text).map(|()| text.to_owned())
}

impl Key {
    fn repeat(&self, bridge: &str) -> Repeat {
        Repeat::Keyed {
            key: self.idempotency_key.clone().unwrap_or_else(bridge::fresh_key),
            check: format!("drift-bridge apps list --bridge {bridge}"),
        }
    }
}

#[derive(Subcommand)]
enum AppsCommand {
    /// List every app: declared and managed at runtime, with its state
    List {
        #[command(flatten)]
        output: OutputArg,
    },
    /// Add an app; with signing (the default) its secret is printed once
    Add {
        /// Its name: letters, digits, - and _ (up to 64)
        #[arg(value_parser = parse_name)]
        name: String,
        #[command(flatten)]
        fields: Fields,
        /// No URL: its deliveries wait for `drift-bridge listen NAME`, which
        /// forwards them on the developer's machine
        #[arg(long, conflicts_with = "url")]
        listen: bool,
        #[command(flatten)]
        key: Key,
    },
    /// Change an app's fields; those not given stay as they are
    Edit {
        #[arg(value_parser = parse_name)]
        name: String,
        #[command(flatten)]
        fields: Fields,
        /// Send it events of every organisation again (forget --org-id)
        #[arg(long, conflicts_with = "org_ids")]
        all_orgs: bool,
        /// No rate of its own any more (forget --rate)
        #[arg(long, conflicts_with = "rate")]
        no_rate: bool,
        #[command(flatten)]
        key: Key,
    },
    /// Delete an app: nothing more is sent to it
    Rm {
        #[arg(value_parser = parse_name)]
        name: String,
        #[command(flatten)]
        key: Key,
    },
    /// Make a new signing secret (printed once); the old one signs too until the overlap ends
    Rotate {
        #[arg(value_parser = parse_name)]
        name: String,
        /// How long deliveries carry both signatures, in seconds [default: 86400, a day]
        #[arg(long, value_name = "SECONDS")]
        overlap: Option<u64>,
        #[command(flatten)]
        key: Key,
    },
    /// Send the app a test delivery (Drift's example, as it would get it) and print its answer
    Test {
        #[arg(value_parser = parse_name)]
        name: String,
    },
}

/// An app's fields, as `add` and `edit` take them.
#[derive(ClapArgs)]
struct Fields {
    /// Where its deliveries go (https; plain http only for loopback) [add:
    /// this or --listen]
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

pub fn run(args: Args) -> ExitCode {
    if let AppsCommand::Add { fields: Fields { url: None, .. }, listen: false, .. } = &args.command {
        eprintln!("drift-bridge apps: add needs --url (where its deliveries go) or --listen (they wait for drift-bridge listen)");
        return ExitCode::from(crate::EXIT_USAGE);
    }
    let admin = match Admin::connect(&args.connection, "drift-bridge apps") {
        Ok(admin) => admin,
        Err(code) => return code,
    };
    let bridge = admin.bridge();
    // Names are checked by clap (parse_name): they go in paths as they are.
    let call = match &args.command {
        AppsCommand::List { .. } => Call::get("/admin/destinations".into()),
        AppsCommand::Add { name, fields, listen, key } => {
            let mut w = Writer::object();
            w.str("name", name);
            fields.write(&mut w);
            if *listen {
                w.bool("listen", true);
            }
            Call { method: Method::Post, path: "/admin/destinations".into(), body: Some(w.finish()), repeat: key.repeat(bridge) }
        }
        AppsCommand::Edit { name, fields, all_orgs, no_rate, key } => {
            let mut w = Writer::object();
            fields.write(&mut w);
            if *all_orgs {
                w.raw("orgIds", "null");
            }
            if *no_rate {
                w.raw("ratePerSecond", "null");
            }
            Call { method: Method::Patch, path: format!("/admin/destinations/{name}"), body: Some(w.finish()), repeat: key.repeat(bridge) }
        }
        AppsCommand::Rm { name, key } => {
            Call { method: Method::Delete, path: format!("/admin/destinations/{name}"), body: None, repeat: key.repeat(bridge) }
        }
        AppsCommand::Rotate { name, overlap, key } => {
            let mut w = Writer::object();
            if let Some(seconds) = overlap {
                w.int("overlapSeconds", i64::try_from(*seconds).unwrap_or(i64::MAX));
            }
            Call {
                method: Method::Post,
                path: format!("/admin/destinations/{name}/rotate-secret"),
                body: Some(w.finish()),
                repeat: key.repeat(bridge),
            }
        }
        // A test delivery is not a change the bridge remembers: sent once.
        AppsCommand::Test { name } => Call {
            method: Method::Post,
            path: format!("/admin/destinations/{name}/test"),
            body: None,
            repeat: Repeat::Once { check: format!("drift-bridge deliveries list --destination {name} --bridge {bridge}") },
        },
    };
    let answer = match admin.send(&call) {
        Ok(answer) => answer,
        Err(code) => return code,
    };
    if let AppsCommand::List { output } = &args.command {
        return list(&admin, &answer, output.format());
    }
    admin.print(&answer);
    if !answer.ok() {
        return admin.refused(&answer);
    }
    let said = |path: &[&str]| answer.said(path);
    match &args.command {
        AppsCommand::List { .. } => {}
        AppsCommand::Add { name, listen, .. } => {
            let version = said(&["version"]).unwrap_or_default();
            match said(&["secret"]) {
                Some(_) => eprintln!("{name} added (version {version}); its signing secret is in the answer on stdout, shown this once"),
                None => eprintln!("{name} added (version {version}), unsigned"),
            }
            if *listen {
                eprintln!("{name} takes a listener: drift-bridge listen {name} --forward http://localhost:PORT/PATH --bridge {bridge}");
            }
        }
        AppsCommand::Edit { name, .. } => eprintln!("{name} changed (version {})", said(&["version"]).unwrap_or_default()),
        AppsCommand::Rm { name, .. } => eprintln!("{name} deleted (version {})", said(&["version"]).unwrap_or_default()),
        AppsCommand::Rotate { name, .. } => match said(&["previousSecretExpiresAt"]) {
            Some(end) => {
                eprintln!("{name}: new signing secret on stdout, shown this once; the old one signs too until {}", bridge::utc(&end))
            }
            None => eprintln!("{name}: new signing secret on stdout, shown this once; the old one no longer signs"),
        },
        AppsCommand::Test { name } => {
            let delivered = said(&["delivered"]).as_deref() == Some("true");
            let code = said(&["status"]).unwrap_or_else(|| "none".into());
            let ms = said(&["latencyMs"]).unwrap_or_default();
            if delivered {
                eprintln!("{name} took the test delivery: {code} in {ms} ms");
            } else {
                let why = said(&["error"]).unwrap_or_default();
                eprintln!("{name} did not take the test delivery: {why} ({ms} ms)");
                return ExitCode::from(1);
            }
        }
    }
    ExitCode::SUCCESS
}

/// `apps list`: the answer as it came (json) or one line per app (table);
/// the count on stderr.
fn list(admin: &Admin, answer: &bridge::Answer, output: Output) -> ExitCode {
    if output == Output::Json {
        admin.print(answer);
    }
    if !answer.ok() {
        return admin.refused(answer);
    }
    let value = answer.json();
    let items = match value.as_ref().and_then(|v| v.get("destinations")) {
        Some(Value::Array(items)) => items.as_slice(),
        _ => &[],
    };
    if output == Output::Table && !items.is_empty() {
        let rows: Vec<Vec<String>> = items
            .iter()
            .map(|item| {
                let f = |k: &str| item.get(k).and_then(Value::as_str).map(|s| s.text().into_owned()).unwrap_or_default();
                let (source, url) = (f("source"), f("url"));
                let listen = matches!(item.get("listen"), Some(Value::Bool(true)));
                vec![
                    f("name"),
                    if source.is_empty() { "removed".to_owned() } else { source },
                    f("state"),
                    match (listen, url.is_empty()) {
                        (true, _) => "(drift-bridge listen)".to_owned(),
                        (false, true) => "(no longer configured)".to_owned(),
                        (false, false) => url,
                    },
                ]
            })
            .collect();
        bridge::print_stdout(bridge::table(&["NAME", "SOURCE", "STATE", "URL"], &[], &rows).trim_end());
    }
    eprintln!("{} {}", items.len(), if items.len() == 1 { "app" } else { "apps" });
    ExitCode::SUCCESS
}
