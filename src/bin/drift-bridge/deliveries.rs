//! `drift-bridge deliveries`: a running bridge's delivery log over its admin
//! API, as `hookdeck gateway event` and `svix message-attempt` show theirs:
//! a list with filters, one delivery with its attempts, a replay.
//!
//! Same `--bridge`, `--timeout`, admin token and errors as `apps`
//! ([`crate::bridge`]). `list` and `show` print the API's JSON (for
//! scripts) or a table (for people); `replay` prints the API's answer.

use std::process::ExitCode;

use clap::{Args as ClapArgs, Subcommand};
use drift_bridge::json::Value;

use crate::bridge::{self, Admin, Answer, Call, Connection, Method, Output, OutputArg, Repeat};

pub const ABOUT: &str = "\
See a running bridge's delivery log and replay dead letters, over its admin API.

Every delivery of every app is kept (delivered ones for DELIVERY_LOG_SECONDS,
7 days by default; dead letters for DEAD_LETTER_RETENTION_SECONDS) with its
attempts. `list` pages through them newest first, with the API's filters;
`show` prints one with its body (Drift's token redacted) and attempts;
`replay` queues a failed or gone delivery once more, as a new delivery
<id>.r<n> with the same webhook-id.

Every subcommand needs --bridge (the bridge's base URL) and the admin token in
the environment variable DRIFT_BRIDGE_ADMIN_TOKEN. list and show print JSON,
or a table with --output table (the default on a terminal); summaries for
people go to stderr.";

/// The statuses the admin API lists deliveries by.
const STATUSES: [&str; 6] = ["pending", "held", "delivered", "failed", "gone", "replayed"];
/// `--all` stops after this many deliveries (50 pages of 200): a listing
/// bigger than that wants a filter.
const ALL_AT_MOST: usize = 10_000;
/// A page's size with `--all`, as large as the API allows.
const ALL_PAGE: u16 = 200;

#[derive(ClapArgs)]
pub struct Args {
    #[command(flatten)]
    connection: Connection,
    #[command(subcommand)]
    command: DeliveriesCommand,
}

#[derive(Subcommand)]
enum DeliveriesCommand {
    /// List deliveries, newest first, a page at a time (--all for every page)
    List(Filters),
    /// Show one delivery: its body and every attempt
    Show {
        /// The delivery's id, as list shows it: <event id>.<app>[.r<n>]
        #[arg(value_name = "ID", value_parser = parse_id)]
        id: String,
        #[command(flatten)]
        output: OutputArg,
    },
    /// Send a failed or gone delivery (a dead letter) once more, as a new delivery
    Replay {
        /// The delivery's id, as list shows it
        #[arg(value_name = "ID", value_parser = parse_id)]
        id: String,
    },
}

/// `list`'s filters, as the admin API takes them.
#[derive(ClapArgs)]
struct Filters {
    /// Only deliveries to this app
    #[arg(long, value_name = "NAME", value_parser = crate::apps::parse_name)]
    destination: Option<String>,
    /// Only deliveries in these statuses (repeat, or comma-separate)
    #[arg(long, value_name = "STATUS", value_delimiter = ',', value_parser = STATUSES)]
    status: Vec<String>,
    /// Only deliveries of this Drift conversation (its conversationId)
    #[arg(long, value_name = "ID")]
    conversation: Option<u64>,
    /// Only deliveries of this event: its id, the webhook-id (16 hex digits)
    #[arg(long, value_name = "EVENT_ID", value_parser = parse_event)]
    event: Option<String>,
    /// Only webhooks received at or after TIME: ms since the epoch, or RFC
    /// 3339 (2026-12-05T13:09:35Z, or a date: 2026-12-05)
    #[arg(long, value_name = "TIME", value_parser = bridge::parse_time)]
    since: Option<i64>,
    /// Only webhooks received before TIME (as --since)
    #[arg(long, value_name = "TIME", value_parser = bridge::parse_time)]
    until: Option<i64>,
    /// Deliveries a page, 1 to 200 [default: 50; with --all, 200]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=200))]
    limit: Option<u16>,
    /// Start at this page: the "next" of the one before
    #[arg(long, value_name = "CURSOR")]
    cursor: Option<String>,
    /// Follow "next" to the last page (at most 10,000 deliveries)
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    output: OutputArg,
}

impl Filters {
    /// `/admin/deliveries?…` for the page at `cursor`.
    fn path(&self, cursor: Option<&str>) -> String {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(d) = &self.destination {
            query.push(("destination", d.clone()));
        }
        if !self.status.is_empty() {
            query.push(("status", self.status.join(",")));
        }
        if let Some(c) = self.conversation {
            query.push(("conversation", c.to_string()));
        }
        if let Some(e) = &self.event {
            query.push(("event", e.clone()));
        }
        if let Some(ms) = self.since {
            query.push(("since", ms.to_string()));
        }
        if let Some(ms) = self.until {
            query.push(("until", ms.to_string()));
        }
        if let Some(n) = self.limit.or(self.all.then_some(ALL_PAGE)) {
            query.push(("limit", n.to_string()));
        }
        if let Some(c) = cursor {
            query.push(("cursor", c.to_owned()));
        }
        let query: Vec<String> = query.into_iter().map(|(k, v)| format!("{k}={}", bridge::encode(&v))).collect();
        if query.is_empty() {
            "/admin/deliveries".into()
        } else {
            format!("/admin/deliveries?{}", query.join("&"))
        }
    }
}

fn parse_event(text: &str) -> Result<String, String> {
    if text.len() == 16 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(text.to_ascii_lowercase())
    } else {
        Err("expected an event id: 16 hex digits, like 945d7df49ee99b50".into())
    }
}

/// A delivery id: `<event id>.<app>`, and `.r<n>` for each replay; it goes
/// in the URL's path as it is.
fn parse_id(text: &str) -> Result<String, String> {
    let (event, rest) = text.split_once('.').unwrap_or((text, ""));
    let fine = parse_event(event).is_ok()
        && !rest.is_empty()
        && text.len() <= 200
        && rest.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if fine {
        Ok(text.to_owned())
    } else {
        Err("expected a delivery id like 945d7df49ee99b50.crm (as deliveries list shows them)".into())
    }
}

pub fn run(args: Args) -> ExitCode {
    let admin = match Admin::connect(&args.connection, "drift-bridge deliveries") {
        Ok(admin) => admin,
        Err(code) => return code,
    };
    match &args.command {
        DeliveriesCommand::List(filters) => list(&admin, filters),
        DeliveriesCommand::Show { id, output } => show(&admin, id, output.format()),
        DeliveriesCommand::Replay { id } => replay(&admin, id),
    }
}

/// `list`: one page, or with `--all` every page (up to ALL_AT_MOST), as
/// one JSON answer or one table.
fn list(admin: &Admin, filters: &Filters) -> ExitCode {
    let output = filters.output.format();
    // Each delivery as JSON, in order, and the cursor after the last page read.
    let mut items: Vec<String> = Vec::new();
    let mut cursor = filters.cursor.clone();
    // Without --all, the one page's answer, printed as it came.
    let mut single = None;
    let mut pages = 0;
    let mut failed = None;
    loop {
        let answer = match admin.send(&Call::get(filters.path(cursor.as_deref()))) {
            Ok(answer) => answer,
            Err(code) => {
                failed = Some(code);
                break;
            }
        };
        if !answer.ok() {
            // On the first page the error is the answer; later, the pages read are.
            if pages == 0 && output == Output::Json {
                admin.print(&answer);
            }
            failed = Some(admin.refused(&answer));
            break;
        }
        pages += 1;
        let value = answer.json();
        if let Some(Value::Array(page)) = value.as_ref().and_then(|v| v.get("deliveries")) {
            items.extend(page.iter().map(Value::to_json));
        }
        cursor = value.as_ref().and_then(|v| v.get("next")).and_then(Value::as_str).map(|s| s.text().into_owned());
        drop(value);
        if !filters.all {
            single = Some(answer);
            break;
        }
        if cursor.is_none() || items.len() >= ALL_AT_MOST {
            break;
        }
    }
    if pages == 0 {
        return failed.unwrap_or(ExitCode::SUCCESS);
    }
    match output {
        Output::Json if filters.all => {
            let next = cursor.as_deref().map_or_else(|| "null".to_owned(), quoted);
            bridge::print_stdout(&format!("{{\"deliveries\":[{}],\"next\":{next}}}", items.join(",")));
        }
        Output::Json => {
            if let Some(answer) = &single {
                admin.print(answer);
            }
        }
        Output::Table => {
            let rows: Vec<Vec<String>> = items.iter().filter_map(|item| row(item)).collect();
            if !rows.is_empty() {
                let headers = ["TIME (UTC)", "STATUS", "DESTINATION", "TYPE", "CONVERSATION", "ATTEMPTS", "ID"];
                bridge::print_stdout(bridge::table(&headers, &[5], &rows).trim_end());
            }
        }
    }
    let count = format!("{} {}", items.len(), if items.len() == 1 { "delivery" } else { "deliveries" });
    match (&cursor, failed.is_some(), filters.all) {
        (None, _, _) => eprintln!("{count}"),
        (Some(next), true, _) => eprintln!("{count}, then it stopped; carry on with --cursor {next}"),
        (Some(next), false, true) => eprintln!("{count} (the most --all reads); more with --cursor {next}"),
        (Some(next), false, false) => eprintln!("{count}; more with --cursor {next}, or --all"),
    }
    failed.unwrap_or(ExitCode::SUCCESS)
}

fn quoted(text: &str) -> String {
    let mut out = String::new();
    drift_bridge::json::write_str_escaped(&mut out, text);
    out
}

/// One delivery's line in the table.
fn row(item: &str) -> Option<Vec<String>> {
    let value = drift_bridge::json::parse(item, &drift_bridge::json::Limits::default()).ok()?;
    let f = |k: &str| bridge::said(&value, &[k]).unwrap_or_default();
    let at = value.get("at").and_then(Value::as_integer).and_then(|n| n.parse().ok()).map(bridge::rfc3339).unwrap_or_default();
    Some(vec![at, f("status"), f("destination"), f("type"), conversation(&f("scope")), f("attempts"), f("id")])
}

/// The conversation of a scope `conversation:<org>:<id>`; another scope as
/// it is.
fn conversation(scope: &str) -> String {
    match scope.strip_prefix("conversation:").and_then(|rest| rest.rsplit_once(':')) {
        Some((_, id)) => id.to_owned(),
        None if scope.is_empty() => "-".to_owned(),
        None => scope.to_owned(),
    }
}

/// `show`: the answer (json) or a summary with the attempts and the body
/// (table).
fn show(admin: &Admin, id: &str, output: Output) -> ExitCode {
    let answer = match admin.send(&Call::get(format!("/admin/deliveries/{id}"))) {
        Ok(answer) => answer,
        Err(code) => return code,
    };
    if output == Output::Json || !answer.ok() {
        if output == Output::Json {
            admin.print(&answer);
        }
        return if answer.ok() { ExitCode::SUCCESS } else { admin.refused(&answer) };
    }
    let value = answer.json();
    let Some(d) = value.as_ref().and_then(|v| v.get("delivery")) else {
        eprintln!("drift-bridge deliveries: the answer has no \"delivery\": {}", answer.text.trim());
        return ExitCode::from(crate::EXIT_USAGE);
    };
    bridge::print_stdout(summary(d).trim_end());
    ExitCode::SUCCESS
}

/// A delivery as people read it: its fields, its attempts, its body.
fn summary(d: &Value<'_>) -> String {
    let f = |k: &str| bridge::said(d, &[k]);
    let time = |k: &str| f(k).and_then(|n| n.parse().ok()).map(bridge::rfc3339);
    let mut fields: Vec<(&str, String)> = Vec::new();
    fields.push(("id", f("id").unwrap_or_default()));
    let status = f("status").unwrap_or_default();
    fields.push((
        "status",
        match f("reason") {
            Some(reason) => format!("{status}: {reason}"),
            None => status,
        },
    ));
    let destination = f("destination").unwrap_or_default();
    fields.push((
        "destination",
        match f("configured").as_deref() {
            Some("false") => format!("{destination} (no longer configured)"),
            _ => destination,
        },
    ));
    fields.push(("event", format!("{} ({})", f("eventId").unwrap_or_default(), f("type").unwrap_or_default())));
    let scope = f("scope").unwrap_or_default();
    fields.push(("conversation", format!("{} (scope {scope})", conversation(&scope))));
    for (label, key) in [("received", "at"), ("accepted", "acceptedAt"), ("updated", "updatedAt")] {
        if let Some(t) = time(key) {
            fields.push((label, t));
        }
    }
    if let Some(r) = f("replayedAs") {
        fields.push(("replayed as", r));
    }
    if let Some(e) = f("lastError") {
        fields.push(("last error", e));
    }
    fields.push(("attempts", f("attempts").unwrap_or_default()));
    let width = fields.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (label, text) in &fields {
        out.push_str(&format!("{label:<width$}  {text}\n"));
    }
    if let Some(Value::Array(log)) = d.get("attemptLog") {
        if !log.is_empty() {
            let rows: Vec<Vec<String>> = log
                .iter()
                .map(|a| {
                    let g = |k: &str| bridge::said(a, &[k]).unwrap_or_default();
                    let probe = if g("probe") == "true" { " (probe)" } else { "" };
                    let at = g("at").parse().map(bridge::rfc3339).unwrap_or_default();
                    let code = if g("code") == "none" { "-".to_owned() } else { g("code") };
                    let error = if g("error") == "none" { String::new() } else { g("error") };
                    vec![format!("{}{probe}", g("attempt")), at, code, format!("{} ms", g("latencyMs")), error]
                })
                .collect();
            out.push('\n');
            out.push_str(&bridge::table(&["ATTEMPT", "TIME (UTC)", "CODE", "LATENCY", "ERROR"], &[0, 2, 3], &rows));
        }
    }
    match d.get("body") {
        Some(Value::Null) | None => {}
        Some(body) => {
            out.push_str("\nbody (Drift's token redacted)\n");
            out.push_str(&body.to_pretty_json());
            out.push('\n');
        }
    }
    out
}

/// `replay`: the answer, and where the new delivery is.
fn replay(admin: &Admin, id: &str) -> ExitCode {
    let bridge = admin.bridge();
    let call = Call {
        method: Method::Post,
        path: format!("/admin/deliveries/{id}/replay"),
        body: None,
        // Sent once: a second replay of the same dead letter is refused (409).
        repeat: Repeat::Once { check: format!("drift-bridge deliveries show {id} --bridge {bridge}") },
    };
    let answer: Answer = match admin.send(&call) {
        Ok(answer) => answer,
        Err(code) => return code,
    };
    admin.print(&answer);
    if !answer.ok() {
        return admin.refused(&answer);
    }
    let new = answer.said(&["as"]).unwrap_or_default();
    eprintln!("{id} replayed as {new}; follow it with: drift-bridge deliveries show {new} --bridge {bridge}");
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_ids() {
        for good in ["945d7df49ee99b50.crm", "c0b44147a772c080.push-app.r1", "C0B44147A772C080.a_b"] {
            assert_eq!(parse_id(good).as_deref(), Ok(good), "{good}");
        }
        for bad in ["", "945d7df49ee99b50", "945d7df49ee99b50.", "nope.crm", "945d7df49ee99b50.a/b", "945d7df49ee99b50.a?b", "../admin"] {
            assert!(parse_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn conversations_from_scopes() {
        assert_eq!(conversation("conversation:1:123456789"), "123456789");
        assert_eq!(conversation("test:crm"), "test:crm");
        assert_eq!(conversation(""), "-");
    }
}
