//! Talking to a running bridge: its base URL (`--bridge`), the admin token
//! (`DRIFT_BRIDGE_ADMIN_TOKEN`), one admin-API request with its retries, and
//! what an answer means for the exit status. `apps` and `deliveries` are
//! built on it; `send` shares the URL rules.
//!
//! A request is tried again only when that cannot do it twice: a read
//! (`GET`), a request that never reached the bridge, or a change sent under
//! an `Idempotency-Key`, which the bridge carries out once and, for 24
//! hours, answers again with its first answer (`Idempotent-Replayed: true`).
//! So a change whose answer is lost on the way back is recovered, secret
//! and all, rather than made twice or reported as failed.

use std::fmt::Write as _;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Args as ClapArgs, ValueEnum};
use drift_bridge::json::{self, Limits, Value};
use ureq::http::{self, Uri};
use ureq::Agent;

use crate::EXIT_USAGE;

/// The environment variable holding the admin token.
pub const TOKEN_VARIABLE: &str = "DRIFT_BRIDGE_ADMIN_TOKEN";
/// Where a bridge takes Drift's webhooks, below its base URL.
pub const WEBHOOK_PATH: &str = "/webhooks/drift";
/// How much of an answer is read.
const MAX_ANSWER_BYTES: u64 = 4 * 1024 * 1024;
/// Tries of one request, the first included.
const MAX_TRIES: u32 = 4;
/// The longest one try of a repeatable request waits: above the longest a
/// change's answer is held (APPS_CACHE_MS, at most 60 s, and a second), so
/// that a try that hangs still leaves time for another within --timeout.
const MAX_TRY: Duration = Duration::from_secs(75);
/// Before try n + 1: BACKOFF_BASE × 2^(n−1). One client needs no jitter.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// An `Idempotency-Key`, as the bridge takes it.
const KEY_MAX: usize = 64;

/// `--bridge` and `--timeout`, as every subcommand that calls the admin
/// API takes them (after the subcommand too).
#[derive(ClapArgs)]
pub struct Connection {
    /// The bridge's base URL, e.g. https://drift-bridge.example.workers.dev
    /// (plain http only for localhost)
    #[arg(long, value_name = "URL", value_parser = parse_bridge, global = true)]
    pub bridge: Option<String>,
    /// Seconds to wait for the bridge's answer, retries included (a change
    /// is answered once in force everywhere: APPS_CACHE_MS and a second)
    #[arg(long, value_name = "SECONDS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub timeout: u64,
}

/// How a listing is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// The API's answer, as it came: for scripts and jq
    Json,
    /// Aligned columns, times in UTC: for people
    Table,
}

/// `--output`, for the subcommands that show something.
#[derive(ClapArgs)]
pub struct OutputArg {
    /// How to print it [default: table when stdout is a terminal, json
    /// otherwise]
    #[arg(long, value_enum, value_name = "FORMAT")]
    output: Option<Output>,
}

impl OutputArg {
    pub fn format(&self) -> Output {
        self.output.unwrap_or_else(|| if std::io::stdout().is_terminal() { Output::Table } else { Output::Json })
    }
}

/// An absolute http(s) URL; plain http only for loopback hosts, since a
/// token travels with every request.
pub fn parse_url(text: &str) -> Result<String, String> {
    let uri: Uri = text.parse().map_err(|e| format!("{text:?} is not a URL: {e}"))?;
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| format!("{text:?} is not an absolute URL with a host"))?;
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("https") => Ok(text.to_owned()),
        Some("http") if drift_bridge::delivery::destination::is_loopback(&host.to_ascii_lowercase()) => Ok(text.to_owned()),
        Some("http") => Err("must be https (plain http only for localhost): the token goes with every request".into()),
        Some(other) => Err(format!("scheme {other:?} is not supported; must be https")),
        None => Err(format!("{text:?} is not an absolute URL")),
    }
}

/// `--bridge`: the bridge's base URL, without a trailing `/`, to which the
/// routes' paths are appended.
pub fn parse_bridge(text: &str) -> Result<String, String> {
    let url = parse_url(text)?;
    if url.contains(['?', '#']) {
        return Err("the bridge's base URL takes no query or fragment".into());
    }
    let base = url.trim_end_matches('/');
    if let Some(bare) = base.strip_suffix(WEBHOOK_PATH) {
        return Err(format!("give the bridge's base URL, without {WEBHOOK_PATH}: {bare}"));
    }
    Ok(base.to_owned())
}

/// `--bridge`, which every subcommand that talks to a bridge needs, or the
/// exit status after saying so on stderr.
pub fn required_bridge(bridge: Option<&str>, prefix: &str) -> Result<String, ExitCode> {
    match bridge {
        Some(bridge) => Ok(bridge.to_owned()),
        None => {
            eprintln!("{prefix}: --bridge <URL> is required (the bridge's base URL, e.g. https://drift-bridge.example.workers.dev)");
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// The admin token, from the environment only (never an argument: it stays
/// out of shell histories and process lists), or the exit status after
/// saying on stderr what is missing.
pub fn admin_token(prefix: &str) -> Result<String, ExitCode> {
    match std::env::var(TOKEN_VARIABLE) {
        Ok(t) if !t.trim().is_empty() => Ok(t.trim().to_owned()),
        _ => {
            eprintln!("{prefix}: set {TOKEN_VARIABLE} to the bridge's ADMIN_TOKEN");
            Err(ExitCode::from(EXIT_USAGE))
        }
    }
}

/// `--idempotency-key`: 1 to 64 letters, digits, `-` or `_`.
pub fn parse_key(text: &str) -> Result<String, String> {
    if text.is_empty() || text.len() > KEY_MAX || !text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err(format!("must be 1 to {KEY_MAX} letters, digits, '-' or '_'"));
    }
    Ok(text.to_owned())
}

/// A fresh `Idempotency-Key`: 16 random bytes in hex.
pub fn fresh_key() -> String {
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        // No /dev/urandom (Windows): std's hasher keys are random per
        // process; the time and the pid tell runs apart besides.
        use std::hash::{BuildHasher, Hasher};
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        for (i, chunk) in bytes.chunks_mut(8).enumerate() {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(nanos);
            h.write_u32(std::process::id());
            h.write_usize(i);
            chunk.copy_from_slice(&h.finish().to_le_bytes());
        }
    }
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A query string's value, percent-encoded.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// Whether a request may be sent again when no answer came.
pub enum Repeat {
    /// A read: always.
    Read,
    /// A change under this `Idempotency-Key`: always, with the same key.
    /// `check` is the command that shows whether it was made.
    Keyed { key: String, check: String },
    /// Only if it never reached the bridge; `check` tells how to find out
    /// whether it was done.
    Once { check: String },
}

/// One admin-API request: `path` (query included) below the base URL.
pub struct Call {
    pub method: Method,
    pub path: String,
    pub body: Option<String>,
    pub repeat: Repeat,
}

impl Call {
    pub fn get(path: String) -> Call {
        Call { method: Method::Get, path, body: None, repeat: Repeat::Read }
    }
}

/// The bridge's JSON answer, whatever its status.
pub struct Answer {
    pub status: u16,
    pub text: String,
    /// The bridge's first answer to this `Idempotency-Key`, given again.
    pub replayed: bool,
    retry_after: Option<Duration>,
    location: Option<String>,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> Option<Value<'_>> {
        json::parse(&self.text, &Limits { max_bytes: usize::MAX, ..Limits::default() }).ok()
    }

    /// The value at `path` as text (a string without its quotes, `none`
    /// for null, anything else as JSON).
    pub fn said(&self, path: &[&str]) -> Option<String> {
        said(self.json().as_ref()?, path)
    }
}

/// The value at `path` in `value`, as [`Answer::said`] gives it.
pub fn said(value: &Value<'_>, path: &[&str]) -> Option<String> {
    let mut at = value;
    for key in path {
        at = at.get(key)?;
    }
    Some(match at {
        Value::String(s) => s.text().into_owned(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "none".into(),
        other => other.to_json(),
    })
}

/// A client of one bridge's admin API.
pub struct Admin {
    agent: Agent,
    bridge: String,
    token: String,
    timeout: Duration,
    /// Starts every line for people, e.g. `drift-bridge apps`.
    prefix: &'static str,
}

/// Why a try brought no answer to use.
struct Miss {
    why: String,
    /// The request may have reached the bridge.
    reached: bool,
    /// Sending it again cannot help (TLS, a bad URL).
    lasting: bool,
    retry_after: Option<Duration>,
    /// The bridge answered, but 502, 503 or 504.
    answered: bool,
}

impl Admin {
    /// The client for `connection`, or the exit status after saying on
    /// stderr what is missing.
    pub fn connect(connection: &Connection, prefix: &'static str) -> Result<Admin, ExitCode> {
        let bridge = required_bridge(connection.bridge.as_deref(), prefix)?;
        let token = admin_token(prefix)?;
        let agent: Agent = Agent::config_builder()
            // 4xx and 5xx are answers to read, not errors.
            .http_status_as_error(false)
            // A redirect is a wrong --bridge, said so rather than followed.
            .max_redirects(0)
            .user_agent(format!("drift-bridge/{} ({})", drift_bridge::VERSION, prefix.trim_start_matches("drift-bridge ")))
            .build()
            .into();
        Ok(Admin { agent, bridge, token, timeout: Duration::from_secs(connection.timeout), prefix })
    }

    pub fn bridge(&self) -> &str {
        &self.bridge
    }

    /// Sends `call`, again when that is safe and no answer came, until
    /// --timeout. A JSON answer is returned whatever its status; anything
    /// else (no answer, a refused token, a redirect, not JSON) is said on
    /// stderr and comes back as the exit status.
    pub fn send(&self, call: &Call) -> Result<Answer, ExitCode> {
        let prefix = self.prefix;
        let started = Instant::now();
        let deadline = started + self.timeout;
        let url = format!("{}{}", self.bridge, call.path);
        let repeatable = !matches!(call.repeat, Repeat::Once { .. });
        let mut reached = false;
        let mut tries = 0;
        let miss = loop {
            tries += 1;
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            let this_try = if repeatable { left.min(MAX_TRY) } else { left };
            let miss = match self.once(call, &url, this_try) {
                Ok(answer) if repeatable && matches!(answer.status, 502..=504) => Miss {
                    why: format!("{} {}", answer.status, describe(&answer)),
                    reached: true,
                    lasting: false,
                    retry_after: answer.retry_after,
                    answered: true,
                },
                Ok(answer) => return self.sort(call, &url, answer),
                Err(miss) => miss,
            };
            reached |= miss.reached;
            let delay = miss.retry_after.unwrap_or_else(|| BACKOFF_BASE.saturating_mul(1 << (tries - 1)));
            let again = !miss.lasting && (repeatable || !miss.reached) && tries < MAX_TRIES && Instant::now() + delay < deadline;
            if !again {
                break miss;
            }
            let same_key = match &call.repeat {
                Repeat::Keyed { .. } => " with the same Idempotency-Key",
                _ => "",
            };
            eprintln!("{prefix}: {}; trying again in {:.1} s{same_key} (try {} of {MAX_TRIES})", miss.why, delay.as_secs_f64(), tries + 1);
            thread::sleep(delay);
        };
        let tried = if tries == 1 { String::new() } else { format!(" after {tries} tries in {:.0} s", started.elapsed().as_secs_f64()) };
        if !reached {
            let unchanged = if call.method == Method::Get { "" } else { "; nothing was changed" };
            eprintln!("{prefix}: cannot reach {}{tried}: {}{unchanged}", self.bridge, miss.why);
            return Err(ExitCode::from(EXIT_USAGE));
        }
        let none = if miss.answered { "no answer but failures" } else { "no answer" };
        eprintln!("{prefix}: {none} from {}{tried}: {}", self.bridge, miss.why);
        match &call.repeat {
            Repeat::Read => {}
            Repeat::Keyed { key, check } => {
                eprintln!("{prefix}: the change may have been made; to check: {check}");
                eprintln!(
                    "{prefix}: to get its answer (the secret included), run the same command again with --idempotency-key {key} \
                     within 24 hours:\n  {}",
                    command_with_key(key)
                );
            }
            Repeat::Once { check } => eprintln!("{prefix}: it may have been done; to check: {check}"),
        }
        Err(ExitCode::from(EXIT_USAGE))
    }

    /// One try: the answer, or why there is none.
    fn once(&self, call: &Call, url: &str, timeout: Duration) -> Result<Answer, Miss> {
        let mut request =
            http::Request::builder().method(call.method.as_str()).uri(url).header("Authorization", format!("Bearer {}", self.token));
        if let Repeat::Keyed { key, .. } = &call.repeat {
            request = request.header("Idempotency-Key", key);
        }
        let result = match &call.body {
            None if call.method == Method::Get => request.body(()).map(|r| self.run(r, timeout)),
            body => {
                let body = body.clone().unwrap_or_default();
                if !body.is_empty() {
                    request = request.header("Content-Type", "application/json");
                }
                request.body(body.into_bytes()).map(|r| self.run(r, timeout))
            }
        };
        let mut response = match result {
            Ok(Ok(response)) => response,
            Ok(Err(ureq::Error::Timeout(_))) => {
                let why = format!("timed out after {:.1} s", timeout.as_secs_f64());
                return Err(Miss { why, reached: true, lasting: false, retry_after: None, answered: false });
            }
            Ok(Err(e)) => return Err(miss(e)),
            Err(e) => return Err(Miss { why: e.to_string(), reached: false, lasting: true, retry_after: None, answered: false }),
        };
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let replayed = header("idempotent-replayed").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        let location = header("location");
        let status = response.status().as_u16();
        match response.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_string() {
            Ok(text) => Ok(Answer { status, text, replayed, retry_after, location }),
            // An answer cut off is as good as none.
            Err(e) => Err(Miss { reached: true, ..miss(e) }),
        }
    }

    fn run<S: ureq::AsSendBody>(&self, request: http::Request<S>, timeout: Duration) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let request = self.agent.configure_request(request).timeout_global(Some(timeout)).build();
        self.agent.run(request)
    }

    /// What an answer means before its JSON is read: a refused token, a
    /// redirect and an answer that is not JSON end the command.
    fn sort(&self, call: &Call, url: &str, answer: Answer) -> Result<Answer, ExitCode> {
        let prefix = self.prefix;
        let status = answer.status;
        let message = answer.said(&["error", "message"]);
        if status == 401 || status == 403 || (status == 404 && message.as_deref().is_some_and(|m| m.contains("admin routes are off"))) {
            let why = message.unwrap_or_else(|| format!("status {status}"));
            eprintln!("{prefix}: the bridge refused the admin token ({status}: {why}); check {TOKEN_VARIABLE}");
            return Err(ExitCode::from(EXIT_USAGE));
        }
        if (300..400).contains(&status) {
            let to = answer.location.as_deref().unwrap_or("elsewhere");
            eprintln!(
                "{prefix}: {} {url} answered {status}, a redirect to {to}: give --bridge the bridge's final base URL",
                call.method.as_str()
            );
            return Err(ExitCode::from(EXIT_USAGE));
        }
        if answer.json().is_none() {
            eprintln!("{prefix}: {} {url} answered {status}, not JSON: {}", call.method.as_str(), excerpt(&answer.text));
            return Err(ExitCode::from(EXIT_USAGE));
        }
        if answer.replayed {
            let key = match &call.repeat {
                Repeat::Keyed { key, .. } => key.as_str(),
                _ => "",
            };
            eprintln!("{prefix}: the bridge had already done this (Idempotency-Key {key}); this is its first answer, given again");
        }
        Ok(answer)
    }

    /// Says on stderr what the bridge refused and why; the exit status: 1,
    /// or 2 for the bridge's own failure (5xx).
    pub fn refused(&self, answer: &Answer) -> ExitCode {
        let code = answer.said(&["error", "code"]).unwrap_or_default();
        let at = answer.said(&["error", "path"]).filter(|p| !p.is_empty()).map(|p| format!(" at {p}")).unwrap_or_default();
        let message = answer.said(&["error", "message"]).unwrap_or_default();
        eprintln!("{}: refused ({} {code}{at}): {message}", self.prefix, answer.status);
        if code == "idempotency_key_reused" {
            eprintln!(
                "{}: that key went with another change in the last 24 hours; leave --idempotency-key out for a fresh one",
                self.prefix
            );
        }
        ExitCode::from(if answer.status >= 500 { EXIT_USAGE } else { 1 })
    }

    /// Prints the answer on stdout as it came, for scripts.
    pub fn print(&self, answer: &Answer) {
        print_stdout(answer.text.trim());
    }
}

/// Writes `text` and a newline to stdout (a closed pipe is not an error
/// worth more than the exit status it already has).
pub fn print_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
}

/// Rows in aligned columns two spaces apart, under `headers`; the columns
/// in `right` aligned right (numbers), the last never padded.
pub fn table(headers: &[&str], right: &[usize], rows: &[Vec<String>]) -> String {
    let width = |i: usize| rows.iter().map(|r| r[i].chars().count()).chain([headers[i].chars().count()]).max().unwrap_or(0);
    let widths: Vec<usize> = (0..headers.len()).map(width).collect();
    let mut out = String::new();
    let header: Vec<String> = headers.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let last = i + 1 == row.len();
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            if right.contains(&i) {
                line.extend(std::iter::repeat_n(' ', pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if !last {
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Sorts a ureq error: never reached the bridge (retry), may have
/// (retry only what is safe to), or lasting.
fn miss(error: ureq::Error) -> Miss {
    use std::io::ErrorKind;
    use ureq::Error as E;
    let why = error.to_string();
    let (reached, lasting) = match &error {
        E::HostNotFound | E::ConnectionFailed => (false, false),
        E::Io(e) if matches!(e.kind(), ErrorKind::ConnectionRefused | ErrorKind::AddrNotAvailable) => (false, false),
        E::Io(_) | E::Timeout(_) | E::Protocol(_) => (true, false),
        _ => (false, true),
    };
    Miss { why, reached, lasting, retry_after: None, answered: false }
}

/// The bridge's error as `code: message`, or the start of the answer.
fn describe(answer: &Answer) -> String {
    match (answer.said(&["error", "code"]), answer.said(&["error", "message"])) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => excerpt(&answer.text),
    }
}

fn excerpt(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(200).collect()
}

/// This command line, with `--idempotency-key KEY` unless it has one, for
/// people to paste.
fn command_with_key(key: &str) -> String {
    let mut words: Vec<String> = std::env::args().skip(1).collect();
    if !words.iter().any(|w| w == "--idempotency-key" || w.starts_with("--idempotency-key=")) {
        words.extend(["--idempotency-key".to_owned(), key.to_owned()]);
    }
    let quoted: Vec<String> = words.iter().map(|w| shell_quoted(w)).collect();
    format!("drift-bridge {}", quoted.join(" "))
}

fn shell_quoted(word: &str) -> String {
    let plain = !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"@%+=:,./-_".contains(&b));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Milliseconds since the epoch as RFC 3339 UTC, to the second:
/// `2026-12-05T13:09:35Z`.
pub fn rfc3339(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000) / 1000);
    // Days to a civil date (Howard Hinnant's civil_from_days).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rest / 3600, rest / 60 % 60, rest % 60)
}

/// A time in ms since the epoch, as the admin API gives it, written as UTC
/// with the number beside it for scripts; anything else as it came.
pub fn utc(ms: &str) -> String {
    match ms.parse::<i64>() {
        Ok(n) => format!("{} ({n} ms since the epoch)", rfc3339(n)),
        Err(_) => ms.to_owned(),
    }
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's days_from_civil).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// A time as `--since` and `--until` take it: ms since the epoch, an RFC 3339
/// time (`2026-12-05T13:09:35Z`, `…35.250+01:00`) or a date (`2026-12-05`,
/// midnight UTC). In ms since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = || format!("expected ms since the epoch or an RFC 3339 time like 2026-12-05T13:09:35Z, found {text:?}");
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().map_err(|_| bad());
    }
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let (Some(year), Some(month), Some(day)) = (digits(0..4), digits(5..7), digits(8..10)) else { return Err(bad()) };
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return Err(bad());
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month) || day < 1 || day > month_days[(month - 1) as usize] {
        return Err(format!("{text:?} is not a date in the calendar"));
    }
    let date_ms = days_from_civil(year, month, day) * 86_400_000;
    if b.len() == 10 {
        return Ok(date_ms);
    }
    if !matches!(b.get(10), Some(b'T' | b't' | b' ')) || b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return Err(bad());
    }
    let (Some(hour), Some(minute), Some(second)) = (digits(11..13), digits(14..16), digits(17..19)) else { return Err(bad()) };
    if hour > 23 || minute > 59 || second > 60 {
        return Err(format!("{text:?} is not a time of day"));
    }
    let mut at = 19;
    let mut millis = 0;
    if b.get(at) == Some(&b'.') {
        let start = at + 1;
        at = start;
        while b.get(at).is_some_and(u8::is_ascii_digit) {
            at += 1;
        }
        if at == start {
            return Err(bad());
        }
        // Milliseconds: the first three digits of the fraction.
        millis = (start..start + 3).map(|i| b.get(i).filter(|_| i < at).map_or(0, |d| i64::from(d - b'0'))).fold(0, |n, d| n * 10 + d);
    }
    let offset_minutes = match &b[at..] {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), ..] if b.len() == at + 6 && b[at + 3] == b':' => {
            let (Some(h), Some(m)) = (digits(at + 1..at + 3), digits(at + 4..at + 6)) else { return Err(bad()) };
            if h > 23 || m > 59 {
                return Err(bad());
            }
            if *sign == b'+' {
                h * 60 + m
            } else {
                -(h * 60 + m)
            }
        }
        _ => return Err(format!("{text:?} has no time zone: end it with Z for UTC, or an offset like +01:00")),
    };
    Ok(date_ms + ((hour * 60 + minute - offset_minutes) * 60 + second) * 1000 + millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_utc_with_the_number_beside() {
        assert_eq!(utc("0"), "1970-01-01T00:00:00Z (0 ms since the epoch)");
        assert_eq!(utc("1795467390000"), "2026-11-23T20:56:30Z (1795467390000 ms since the epoch)");
        assert_eq!(utc("951782400000"), "2000-02-29T00:00:00Z (951782400000 ms since the epoch)");
        assert_eq!(utc("1796476175192"), "2026-12-05T13:09:35Z (1796476175192 ms since the epoch)");
        assert_eq!(utc("soon"), "soon");
    }

    #[test]
    fn times_are_read_as_ms_or_rfc_3339() {
        let cases: &[(&str, i64)] = &[
            ("1796476175192", 1_796_476_175_192),
            ("0", 0),
            ("2026-12-05T13:09:35Z", 1_796_476_175_000),
            ("2026-12-05t13:09:35z", 1_796_476_175_000),
            ("2026-12-05 13:09:35Z", 1_796_476_175_000),
            ("2026-12-05T13:09:35.192Z", 1_796_476_175_192),
            ("2026-12-05T13:09:35.1Z", 1_796_476_175_100),
            ("2026-12-05T13:09:35.123456Z", 1_796_476_175_123),
            ("2026-12-05T14:09:35+01:00", 1_796_476_175_000),
            ("2026-12-05T08:39:35-04:30", 1_796_476_175_000),
            ("2026-12-05", 1_796_428_800_000),
            ("2000-02-29T00:00:00Z", 951_782_400_000),
            ("1970-01-01T00:00:00Z", 0),
        ];
        for (text, ms) in cases {
            assert_eq!(parse_time(text), Ok(*ms), "{text}");
        }
        // Read back what is written.
        for ms in [0, 951_782_400_000, 1_796_476_175_000, 4_102_444_800_000] {
            assert_eq!(parse_time(&rfc3339(ms)), Ok(ms));
        }
        let refused: &[(&str, &str)] = &[
            ("2026-12-05T13:09:35", "has no time zone"),
            ("2026-02-30T00:00:00Z", "is not a date in the calendar"),
            ("2025-02-29", "is not a date in the calendar"),
            ("2026-12-05T24:00:00Z", "is not a time of day"),
            ("2026-12-05T13:09Z", "expected ms since the epoch or an RFC 3339 time"),
            ("2026-12-05T13:09:35.Z", "expected ms since the epoch"),
            ("yesterday", "expected ms since the epoch"),
            ("-5", "expected ms since the epoch"),
            ("", "expected ms since the epoch"),
        ];
        for (text, says) in refused {
            let e = parse_time(text).unwrap_err();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn urls() {
        let cases: &[(&str, Result<(), &str>)] = &[
            ("https://drift-bridge.example.workers.dev/webhooks/drift", Ok(())),
            ("http://127.0.0.1:8787/webhooks/drift", Ok(())),
            ("http://localhost:8787/webhooks/drift", Ok(())),
            ("http://[::1]:8787/webhooks/drift", Ok(())),
            ("http://example.com/webhooks/drift", Err("must be https (plain http only for localhost)")),
            ("ftp://example.com/", Err("scheme \"ftp\" is not supported")),
            ("/webhooks/drift", Err("is not an absolute URL")),
            ("not a url", Err("is not a URL")),
        ];
        for (url, expected) in cases {
            match (parse_url(url), expected) {
                (Ok(_), Ok(())) => {}
                (Err(e), Err(says)) => assert!(e.contains(says), "{url}: {e}"),
                (got, _) => panic!("{url}: {got:?}"),
            }
        }
    }

    #[test]
    fn bridge_urls() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("https://drift-bridge.example.workers.dev", Ok("https://drift-bridge.example.workers.dev")),
            ("https://drift-bridge.example.workers.dev/", Ok("https://drift-bridge.example.workers.dev")),
            ("http://127.0.0.1:8787", Ok("http://127.0.0.1:8787")),
            ("http://[::1]:8787/", Ok("http://[::1]:8787")),
            ("https://example.com/bridge/", Ok("https://example.com/bridge")),
            ("http://localhost:8787/webhooks/drift", Err("without /webhooks/drift: http://localhost:8787")),
            ("https://b.example/?x=1", Err("takes no query or fragment")),
            ("http://bridge.example", Err("must be https (plain http only for localhost)")),
            ("ftp://example.com/", Err("scheme \"ftp\" is not supported")),
            ("/webhooks/drift", Err("is not an absolute URL")),
            ("not a url", Err("is not a URL")),
        ];
        for (text, expected) in cases {
            match (parse_bridge(text), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, *want, "{text}"),
                (Err(e), Err(says)) => assert!(e.contains(says), "{text}: {e}"),
                (got, _) => panic!("{text}: {got:?}"),
            }
        }
    }

    #[test]
    fn keys() {
        let key = fresh_key();
        assert_eq!(key.len(), 32);
        assert!(parse_key(&key).is_ok());
        assert_ne!(key, fresh_key(), "fresh each time");
        for good in ["a", "A-z_09", &"k".repeat(64)] {
            assert!(parse_key(good).is_ok(), "{good}");
        }
        for bad in ["", "a b", "ключ", "a.b", &"k".repeat(65)] {
            assert!(parse_key(bad).unwrap_err().contains("1 to 64 letters"), "{bad}");
        }
    }

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("push-app:41.crm:-"), "push-app%3A41.crm%3A-");
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }

    #[test]
    fn tables_align_their_columns() {
        let rows = vec![
            vec!["crm".to_owned(), "1".to_owned(), "https://crm.example.com".to_owned()],
            vec!["legacy-crm".to_owned(), "12".to_owned(), "-".to_owned()],
        ];
        assert_eq!(
            table(&["NAME", "N", "URL"], &[1], &rows),
            "NAME         N  URL\ncrm          1  https://crm.example.com\nlegacy-crm  12  -\n"
        );
    }

    #[test]
    fn command_lines_are_quoted_for_a_shell() {
        assert_eq!(shell_quoted("--url"), "--url");
        assert_eq!(shell_quoted("https://crm.example.com/drift"), "https://crm.example.com/drift");
        assert_eq!(shell_quoted("*"), "'*'");
        assert_eq!(shell_quoted("it's"), r"'it'\''s'");
        assert_eq!(shell_quoted(""), "''");
    }
}
