//! `drift-bridge listen`: a developer's machine as one of the bridge's apps,
//! without a public URL, as `svix listen` and `hookdeck listen` do it.
//!
//! An app created with `"listen": true` has no URL: the bridge holds its
//! deliveries until a listener connects over a WebSocket to
//! `/admin/destinations/{name}/listen`, then hands each one over as a frame.
//! The listener POSTs it to `--forward` exactly as the bridge would have
//! sent it (headers, signature and body byte for byte, no redirect
//! followed) and sends back what the local app answered, which the bridge
//! records as the delivery's attempt. So the developer sees what production
//! would.
//!
//! The wire, decoded once at the edge into [`Frame`]:
//!
//! | from | frame |
//! |---|---|
//! | bridge | `{"kind":"hello","destination","waiting"}`, once, first |
//! | bridge | `{"kind":"delivery","ticket","id","type","conversation","attempt","headers":[[n,v],…],"body","timeoutMs"}` |
//! | bridge | `{"kind":"bye","reason"}`, then close 4000 (another listener took over) or 4001 (the app was deleted) |
//! | bridge | `pong`, to each `ping` |
//! | listener | `{"kind":"answer","ticket","status","location","excerpt","error","latencyMs"}`, one per delivery |
//! | listener | `ping`, every 30 s |
//!
//! One thread owns the socket and polls it (a short read timeout), so that
//! it alone writes to it and to stdout; a small pool of threads does the
//! local POSTs. Each connection is a generation: what was received on one
//! that has since dropped is neither forwarded nor answered any more, since
//! the bridge hands it over again on the next.

use std::io::{self, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args as ClapArgs, ValueEnum};
use drift_bridge::json::{self, Limits, Value, Writer};
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use ureq::config::AutoHeaderValue;
use ureq::http::Uri;
use ureq::Agent;

use crate::bridge::{self, TOKEN_VARIABLE};
use crate::EXIT_USAGE;

pub const ABOUT: &str = "\
Take an app's deliveries on this machine, without a public URL, as svix listen
and hookdeck listen do.

The app must take a listener: create it with `drift-bridge apps add NAME
--listen`; the bridge holds its deliveries until a listener connects. listen
opens a WebSocket to the bridge (--bridge, with the admin token from
DRIFT_BRIDGE_ADMIN_TOKEN) and POSTs each delivery to --forward exactly as the
bridge would have sent it: the same headers (webhook-id, webhook-timestamp,
webhook-signature) and body, so the app's signature check works, within the
delivery's timeout, never following a redirect. What the local app answers
goes back to the bridge as the delivery's attempt.

One line per delivery on stdout: the local time, its type, conversation and
attempt, the local status (or why there was none) and the latency; with
--output json (the default when stdout is not a terminal) one JSON object per
line: at (ms since the epoch), id, type, conversation, attempt, status,
location, error, latencyMs. Connection messages go to stderr. Up to 6
deliveries are forwarded at once.

When the connection drops, listen connects again by itself, 1 s later,
doubling to 30 s. Ctrl-C waits for the deliveries being forwarded, closes the
connection and prints a summary (Ctrl-C again: close at once). Exit status: 0
after Ctrl-C; 1 when the bridge refuses the listener (no such app, or an app
that sends to a URL) or ends it (another listener took over, the app was
deleted); 2 for a usage error, a refused token, or a bridge that cannot be
reached on the first try.";

/// How many deliveries are forwarded at once.
const WORKERS: usize = 6;
/// How much of a non-2xx answer goes back to the bridge.
const EXCERPT_BYTES: u64 = 4096;
/// The keepalive: a `ping` this often.
const PING_EVERY: Duration = Duration::from_secs(30);
/// Without a frame from the bridge for this long (three pings unanswered),
/// the connection is taken as dead.
const SILENCE: Duration = Duration::from_secs(95);
/// How often the socket's owner looks at what the workers finished.
const POLL: Duration = Duration::from_millis(50);
/// Reaching the bridge: the TCP connection, then the upgrade.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// Waiting for the bridge's close frame after ours.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// Reconnecting: 1 s doubling to 30 s, from 1 s again after a connection
/// that lasted longer than 30 s.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
const STEADY: Duration = Duration::from_secs(30);
/// A delivery frame without `timeoutMs`: the bridge's default.
const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// The close codes with which the bridge ends a listener on purpose.
const REPLACED: u16 = 4000;
const DELETED: u16 = 4001;

const PREFIX: &str = "drift-bridge listen";

#[derive(ClapArgs)]
pub struct Args {
    /// The app whose deliveries to take (one created with apps add --listen)
    #[arg(value_name = "APP", value_parser = crate::apps::parse_name)]
    app: String,
    /// Where to POST each delivery on this machine, e.g. http://localhost:3000/drift
    #[arg(long, value_name = "URL", value_parser = parse_forward)]
    forward: String,
    /// The bridge's base URL, e.g. https://drift-bridge.example.workers.dev
    /// (plain http only for localhost)
    #[arg(long, value_name = "URL", value_parser = bridge::parse_bridge)]
    bridge: Option<String>,
    /// How to print each delivery [default: table when stdout is a
    /// terminal, json otherwise]
    #[arg(long, value_enum, value_name = "FORMAT")]
    output: Option<Format>,
}

/// How a delivery is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One JSON object per line: for scripts and jq
    Json,
    /// One line per delivery, in local time: for people
    Table,
}

/// `--forward`: an absolute http(s) URL. Any host: nothing secret goes
/// there but what the app would get anyway.
pub fn parse_forward(text: &str) -> Result<String, String> {
    let example = "like http://localhost:3000/drift";
    let uri: Uri = text.parse().map_err(|e| format!("{text:?} is not a URL ({e}); give an http or https URL, {example}"))?;
    match uri.scheme_str().map(str::to_ascii_lowercase).as_deref() {
        Some("http" | "https") => {}
        Some(other) => return Err(format!("scheme {other:?} is not supported: give an http or https URL, {example}")),
        None => return Err(format!("{text:?} is not an absolute URL: give an http or https URL, {example}")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("{text:?} has no host: give an http or https URL, {example}"));
    }
    Ok(text.to_owned())
}

// ---------------------------------------------------------------------------
// The wire.

/// A frame from the bridge, decoded.
#[derive(Debug, PartialEq)]
enum Frame {
    Hello {
        waiting: u64,
    },
    Delivery(Delivery),
    Bye {
        reason: String,
    },
    Pong,
    /// A kind this version does not know: ignored, so that the bridge can
    /// add some.
    Unknown(String),
}

/// One delivery handed over.
#[derive(Clone, Debug, PartialEq)]
struct Delivery {
    ticket: String,
    id: String,
    kind: String,
    conversation: Option<String>,
    attempt: u64,
    headers: Vec<(String, String)>,
    body: String,
    timeout_ms: u64,
}

/// A frame that cannot be read: why, and its ticket when it has one (so
/// that it is still answered, as not delivered).
#[derive(Debug, PartialEq)]
struct BadFrame {
    ticket: Option<String>,
    why: String,
}

impl Frame {
    fn decode(text: &str) -> Result<Frame, BadFrame> {
        if text == "pong" {
            return Ok(Frame::Pong);
        }
        let bad = |ticket: Option<String>, why: String| BadFrame { ticket, why };
        let value = json::parse(text, &Limits::INTERNAL).map_err(|e| bad(None, format!("not JSON: {e}")))?;
        let string = |key: &str| value.get(key).and_then(Value::as_str).map(|s| s.text().into_owned());
        let kind = string("kind").ok_or_else(|| bad(None, "no \"kind\"".into()))?;
        match kind.as_str() {
            "hello" => Ok(Frame::Hello { waiting: integer(value.get("waiting")).unwrap_or(0) }),
            "bye" => Ok(Frame::Bye { reason: string("reason").unwrap_or_default() }),
            "delivery" => {
                let ticket = string("ticket").ok_or_else(|| bad(None, "a delivery without a \"ticket\"".into()))?;
                let field =
                    |key: &str| string(key).ok_or_else(|| bad(Some(ticket.clone()), format!("a delivery without a string \"{key}\"")));
                let (id, kind, body) = (field("id")?, field("type")?, field("body")?);
                let conversation = match value.get("conversation") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => Some(s.text().into_owned()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    Some(other) => return Err(bad(Some(ticket), format!("\"conversation\" is {}", other.describe()))),
                };
                let mut headers = Vec::new();
                match value.get("headers") {
                    Some(Value::Array(pairs)) => {
                        for pair in pairs {
                            match pair {
                                Value::Array(nv) if nv.len() == 2 => match (&nv[0], &nv[1]) {
                                    (Value::String(n), Value::String(v)) => headers.push((n.text().into_owned(), v.text().into_owned())),
                                    _ => return Err(bad(Some(ticket), "a header that is not [name, value]".into())),
                                },
                                _ => return Err(bad(Some(ticket), "a header that is not [name, value]".into())),
                            }
                        }
                    }
                    _ => return Err(bad(Some(ticket), "a delivery without \"headers\"".into())),
                }
                Ok(Frame::Delivery(Delivery {
                    id,
                    kind,
                    body,
                    conversation,
                    attempt: integer(value.get("attempt")).unwrap_or(1),
                    headers,
                    timeout_ms: integer(value.get("timeoutMs")).filter(|&ms| ms > 0).unwrap_or(DEFAULT_TIMEOUT_MS),
                    ticket,
                }))
            }
            other => Ok(Frame::Unknown(other.to_owned())),
        }
    }
}

fn integer(value: Option<&Value<'_>>) -> Option<u64> {
    value?.as_integer()?.parse().ok()
}

/// What the local app did with one delivery.
#[derive(Clone, Debug, Default, PartialEq)]
struct Outcome {
    /// The HTTP status, or `None` for no answer.
    status: Option<u16>,
    /// A redirect's `Location`, reported, never followed.
    location: Option<String>,
    /// Up to 4 KiB of a non-2xx answer.
    excerpt: String,
    /// Why there was no answer.
    error: Option<String>,
    latency_ms: u64,
}

impl Outcome {
    fn ok(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }

    /// The answer frame for `ticket`.
    fn answer(&self, ticket: &str) -> String {
        Writer::object()
            .str("kind", "answer")
            .str("ticket", ticket)
            .int_or_null("status", self.status.map(i64::from))
            .str_or_null("location", self.location.as_deref())
            .str("excerpt", &self.excerpt)
            .str_or_null("error", self.error.as_deref())
            .int("latencyMs", i64::try_from(self.latency_ms).unwrap_or(i64::MAX))
            .finish()
    }
}

// ---------------------------------------------------------------------------
// The local POST.

/// POSTs deliveries to `--forward` as the bridge would.
struct Forward {
    agent: Agent,
    url: String,
}

impl Forward {
    fn new(url: &str) -> Forward {
        let agent: Agent = Agent::config_builder()
            // Any status is an answer to report.
            .http_status_as_error(false)
            // As the bridge: a redirect is reported, never followed.
            .max_redirects(0)
            // Straight to the local app, whatever HTTP_PROXY says.
            .proxy(None)
            // Exactly the delivery's headers: none of ureq's own.
            .user_agent(AutoHeaderValue::None)
            .accept(AutoHeaderValue::None)
            .accept_encoding(AutoHeaderValue::None)
            .build()
            .into();
        Forward { agent, url: url.to_owned() }
    }

    fn post(&self, d: &Delivery) -> Outcome {
        let started = Instant::now();
        let mut request = self.agent.post(&self.url);
        for (name, value) in &d.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request.config().timeout_global(Some(Duration::from_millis(d.timeout_ms))).build();
        let mut outcome = Outcome::default();
        match request.send(d.body.as_str()) {
            Ok(mut answer) => {
                let status = answer.status().as_u16();
                outcome.status = Some(status);
                outcome.location = answer.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
                if !(200..300).contains(&status) {
                    // What came before the deadline or an error is kept.
                    let mut bytes = Vec::new();
                    let _ = answer.body_mut().as_reader().take(EXCERPT_BYTES).read_to_end(&mut bytes);
                    outcome.excerpt = String::from_utf8_lossy(&bytes).into_owned();
                }
            }
            Err(e) => outcome.error = Some(no_answer(&e, d.timeout_ms)),
        }
        outcome.latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        outcome
    }
}

/// Why there was no answer, in the words the bridge's own deliveries use.
fn no_answer(error: &ureq::Error, timeout_ms: u64) -> String {
    use ureq::Error as E;
    match error {
        E::Timeout(_) => format!("no answer within {timeout_ms} ms"),
        E::Io(e) if e.kind() == io::ErrorKind::ConnectionRefused => "network error: connection refused".into(),
        E::ConnectionFailed => "network error: connection refused".into(),
        E::HostNotFound => "network error: host not found".into(),
        E::Http(e) => format!("the delivery cannot be sent as it came: {e}"),
        other => format!("network error: {other}"),
    }
}

// ---------------------------------------------------------------------------
// The workers.

/// Shared between the socket's owner, the workers and the Ctrl-C handler.
struct Shared {
    /// Ctrl-C presses.
    interrupts: AtomicU8,
    /// The connection whose deliveries are still forwarded.
    generation: AtomicU64,
}

impl Shared {
    fn interrupts(&self) -> u8 {
        self.interrupts.load(Ordering::Relaxed)
    }
}

struct Job {
    generation: u64,
    delivery: Delivery,
}

/// A job finished: `None` when it was not forwarded (its connection had
/// dropped, or Ctrl-C came first).
struct Done {
    generation: u64,
    delivery: Delivery,
    at_ms: i64,
    outcome: Option<Outcome>,
}

fn start_workers(forward: Forward, shared: Arc<Shared>, done: Sender<Done>) -> Sender<Job> {
    let (jobs, queue) = mpsc::channel::<Job>();
    let queue = Arc::new(Mutex::new(queue));
    let forward = Arc::new(forward);
    for _ in 0..WORKERS {
        let (queue, forward, shared, done) = (Arc::clone(&queue), Arc::clone(&forward), Arc::clone(&shared), done.clone());
        thread::spawn(move || loop {
            let job = match queue.lock() {
                Ok(queue) => match queue.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                },
                Err(_) => return,
            };
            let at_ms = now_ms();
            let live = job.generation == shared.generation.load(Ordering::Relaxed) && shared.interrupts() == 0;
            let outcome = live.then(|| forward.post(&job.delivery));
            if done.send(Done { generation: job.generation, delivery: job.delivery, at_ms, outcome }).is_err() {
                return;
            }
        });
    }
    jobs
}

// ---------------------------------------------------------------------------
// Printing.

/// What is printed, and counted for the summary.
struct Printer {
    format: Format,
    /// `--forward`, for the hint when nothing answers there.
    forward: String,
    hinted: bool,
    latencies: Vec<u64>,
    classes: [u64; 5],
    connected: Duration,
}

/// Summary rows: index in `classes`.
const CLASSES: [&str; 5] = ["2xx", "3xx", "4xx", "5xx", "no answer"];

impl Printer {
    fn new(format: Format, forward: &str) -> Printer {
        Printer { format, forward: forward.to_owned(), hinted: false, latencies: Vec::new(), classes: [0; 5], connected: Duration::ZERO }
    }

    fn delivered(&mut self, d: &Delivery, at_ms: i64, o: &Outcome) {
        let class = match o.status {
            Some(200..=299) => 0,
            Some(300..=399) => 1,
            Some(400..=499) => 2,
            Some(500..=599) => 3,
            // 1xx and the like count with no answer.
            _ => 4,
        };
        self.classes[class] += 1;
        self.latencies.push(o.latency_ms);
        let line = match self.format {
            Format::Table => line(d, &clock(at_ms), o),
            Format::Json => json_line(d, at_ms, o),
        };
        bridge::print_stdout(&line);
        if !self.hinted && o.error.as_deref().is_some_and(|e| e.ends_with("connection refused")) {
            self.hinted = true;
            eprintln!("{PREFIX}: nothing takes connections at {}: is the app running? (the bridge sends it again later)", self.forward);
        }
    }

    /// The summary for stderr.
    fn summary(&self) -> String {
        let total: u64 = self.classes.iter().sum();
        let mut out =
            format!("{PREFIX}: {total} {} in {} connected\n", if total == 1 { "delivery" } else { "deliveries" }, duration(self.connected));
        for (i, name) in CLASSES.iter().enumerate() {
            // 3xx only when there was one: rare, and a sign of a wrong --forward.
            if i == 1 && self.classes[1] == 0 {
                continue;
            }
            out.push_str(&format!("  {name:<9}  {:>4}\n", self.classes[i]));
        }
        if !self.latencies.is_empty() {
            let mut sorted = self.latencies.clone();
            sorted.sort_unstable();
            let median = sorted[(sorted.len() - 1) / 2];
            let max = sorted[sorted.len() - 1];
            out.push_str(&format!("  latency    median {median} ms, max {max} ms\n"));
        }
        out
    }
}

/// Columns of the lines for people: the longest of Drift's conversation
/// event types (conversation_status_updated), and `conv ` with a ten-digit id.
const TYPE_WIDTH: usize = 27;
const CONVERSATION_WIDTH: usize = 15;

/// A delivery for people:
/// `14:02:11  conversation_push            conv 123456789   → 200  12 ms`.
fn line(d: &Delivery, clock: &str, o: &Outcome) -> String {
    let conversation = format!("conv {}", d.conversation.as_deref().unwrap_or("-"));
    let mut out = format!("{clock}  {:<TYPE_WIDTH$}  {conversation:<CONVERSATION_WIDTH$}", d.kind);
    if d.attempt > 1 {
        out.push_str(&format!("  attempt {}", d.attempt));
    }
    out.push_str("  → ");
    match (o.status, &o.error) {
        (Some(status), _) => {
            out.push_str(&status.to_string());
            if let Some(to) = o.location.as_deref().filter(|_| (300..400).contains(&status)) {
                out.push_str(&format!(" to {to} (not followed)"));
            }
            let said: String = o.excerpt.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(80).collect();
            if !o.ok() && !said.is_empty() {
                out.push_str(&format!(": {said}"));
            }
        }
        (None, error) => out.push_str(error.as_deref().unwrap_or("no answer")),
    }
    out.push_str(&format!("  {} ms", o.latency_ms));
    out
}

/// A delivery for scripts.
fn json_line(d: &Delivery, at_ms: i64, o: &Outcome) -> String {
    Writer::object()
        .int("at", at_ms)
        .str("id", &d.id)
        .str("type", &d.kind)
        .str_or_null("conversation", d.conversation.as_deref())
        .int("attempt", i64::try_from(d.attempt).unwrap_or(i64::MAX))
        .int_or_null("status", o.status.map(i64::from))
        .str_or_null("location", o.location.as_deref())
        .str_or_null("error", o.error.as_deref())
        .int("latencyMs", i64::try_from(o.latency_ms).unwrap_or(i64::MAX))
        .finish()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `ms` as the local time of day, `14:02:11`.
#[cfg(unix)]
fn clock(ms: i64) -> String {
    let seconds = ms.div_euclid(1000) as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value of the plain C struct, and
    // localtime_r (reentrant) writes only into it, which outlives the call.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let local = unsafe { !libc::localtime_r(&seconds, &mut tm).is_null() };
    if local {
        format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec)
    } else {
        utc_clock(ms)
    }
}

/// Elsewhere, UTC, said so.
#[cfg(not(unix))]
fn clock(ms: i64) -> String {
    format!("{}Z", utc_clock(ms))
}

fn utc_clock(ms: i64) -> String {
    let s = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// A duration for people: `42 s`, `3 min 12 s`, `1 h 5 min`.
fn duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s / 60 % 60),
    }
}

// ---------------------------------------------------------------------------
// The connection.

type Socket = WebSocket<MaybeTlsStream<TcpStream>>;

/// Why no connection was made.
enum Refused {
    /// The bridge answered the upgrade with this status and error.
    Answer { status: u16, code: String, message: String, location: Option<String> },
    /// It could not be reached, or gave no answer.
    Unreachable(String),
    /// Not a URL the client can connect to, or a token it cannot send.
    Usage(String),
}

/// `{bridge}/admin/destinations/{app}/listen`, as ws:// or wss://.
fn listen_url(bridge: &str, app: &str) -> String {
    let (scheme, rest) = bridge.split_once("://").unwrap_or(("https", bridge));
    let ws = if scheme.eq_ignore_ascii_case("http") { "ws" } else { "wss" };
    format!("{ws}://{rest}/admin/destinations/{app}/listen")
}

fn connect(url: &str, token: &str) -> Result<Socket, Refused> {
    let mut request = url.into_client_request().map_err(|e| Refused::Usage(format!("{url} cannot be connected to: {e}")))?;
    let authorization = format!("Bearer {token}")
        .parse()
        .map_err(|_| Refused::Usage(format!("{TOKEN_VARIABLE} holds characters that cannot go in a header")))?;
    request.headers_mut().insert("authorization", authorization);
    let agent = format!("drift-bridge/{} (listen)", drift_bridge::VERSION);
    if let Ok(agent) = agent.parse() {
        request.headers_mut().insert("user-agent", agent);
    }
    let parsed = url::Url::parse(url).map_err(|e| Refused::Usage(format!("{url} is not a URL: {e}")))?;
    let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addresses: Vec<_> =
        (host.as_str(), port).to_socket_addrs().map_err(|e| Refused::Unreachable(format!("cannot resolve {host}: {e}")))?.collect();
    let mut last = format!("{host} has no address");
    let mut stream = None;
    for address in addresses {
        match TcpStream::connect_timeout(&address, CONNECT_TIMEOUT) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = format!("cannot connect to {address}: {e}"),
        }
    }
    let stream = stream.ok_or(Refused::Unreachable(last))?;
    let _ = stream.set_nodelay(true);
    // The upgrade's deadline, then short reads: the socket's owner also
    // sends the workers' answers and the pings between them.
    let _ = stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(HANDSHAKE_TIMEOUT));
    let socket = match tungstenite::client_tls_with_config(request, stream, None, None) {
        Ok((socket, _)) => socket,
        Err(HandshakeError::Failure(tungstenite::Error::Http(answer))) => {
            let status = answer.status().as_u16();
            let location = answer.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
            let text = answer.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default().into_owned();
            let value = json::parse(&text, &Limits { max_bytes: usize::MAX, ..Limits::default() }).ok();
            let said = |key: &str| value.as_ref().and_then(|v| bridge::said(v, &["error", key]));
            let message =
                said("message").unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(200).collect());
            return Err(Refused::Answer { status, code: said("code").unwrap_or_default(), message, location });
        }
        Err(HandshakeError::Failure(e)) => return Err(Refused::Unreachable(e.to_string())),
        Err(HandshakeError::Interrupted(_)) => {
            return Err(Refused::Unreachable(format!("no answer to the WebSocket upgrade within {} s", HANDSHAKE_TIMEOUT.as_secs())))
        }
    };
    let tcp = match socket.get_ref() {
        MaybeTlsStream::Plain(s) => s,
        MaybeTlsStream::Rustls(s) => &s.sock,
        _ => unreachable!("only plain and rustls streams are built"),
    };
    let _ = tcp.set_read_timeout(Some(POLL));
    let _ = tcp.set_write_timeout(Some(PING_EVERY));
    Ok(socket)
}

/// How one connection ended.
enum Ending {
    /// Ctrl-C: closed with 1000.
    Interrupted,
    /// The bridge ended the listener on purpose (4000, 4001): not again.
    Ended { reason: String },
    /// It dropped: connect again.
    Dropped { why: String },
}

/// One connection, from the handshake to its end.
struct Session<'a> {
    socket: Socket,
    generation: u64,
    shared: &'a Shared,
    jobs: &'a Sender<Job>,
    done: &'a Receiver<Done>,
    printer: &'a mut Printer,
    /// Deliveries of this connection handed to the workers and not done.
    in_flight: usize,
    /// The reason of the last `bye`.
    bye: Option<String>,
}

impl Session<'_> {
    fn run(&mut self, bridge: &str, app: &str, forward: &str, again: bool) -> Ending {
        let mut last_ping = Instant::now();
        let mut last_heard = Instant::now();
        let mut closing = false;
        loop {
            if let Some(why) = self.answer_done() {
                return Ending::Dropped { why };
            }
            let interrupts = self.shared.interrupts();
            if interrupts > 0 && !closing {
                closing = true;
                if self.in_flight > 0 && interrupts == 1 {
                    eprintln!(
                        "{PREFIX}: interrupted: waiting for {} {} being forwarded (Ctrl-C again to stop now)",
                        self.in_flight,
                        if self.in_flight == 1 { "delivery" } else { "deliveries" }
                    );
                }
            }
            if closing && (self.in_flight == 0 || interrupts > 1) {
                self.close();
                return Ending::Interrupted;
            }
            if last_ping.elapsed() >= PING_EVERY {
                if let Err(e) = self.socket.send(Message::text("ping")) {
                    return Ending::Dropped { why: e.to_string() };
                }
                last_ping = Instant::now();
            }
            if last_heard.elapsed() >= SILENCE {
                return Ending::Dropped { why: format!("no word from the bridge in {} s", SILENCE.as_secs()) };
            }
            let message = match self.socket.read() {
                Ok(message) => message,
                Err(tungstenite::Error::Io(e)) if idle(&e) => continue,
                Err(tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed) => {
                    return Ending::Dropped { why: "the connection was closed".into() }
                }
                Err(e) => return Ending::Dropped { why: e.to_string() },
            };
            last_heard = Instant::now();
            match message {
                Message::Text(text) => match Frame::decode(text.as_str()) {
                    Ok(Frame::Hello { waiting }) => {
                        if again {
                            eprintln!("{PREFIX}: connected again to {bridge} as {app}");
                        } else {
                            eprintln!("{PREFIX}: connected to {bridge} as {app}, forwarding to {forward} (Ctrl-C to stop)");
                        }
                        match waiting {
                            0 => {}
                            1 => eprintln!("{PREFIX}: 1 delivery waited for a listener; it comes first"),
                            n => eprintln!("{PREFIX}: {n} deliveries waited for a listener; they come first"),
                        }
                    }
                    Ok(Frame::Delivery(delivery)) => {
                        if closing {
                            // Left unanswered: the bridge hands it over again next time.
                            continue;
                        }
                        self.in_flight += 1;
                        let _ = self.jobs.send(Job { generation: self.generation, delivery });
                    }
                    Ok(Frame::Bye { reason }) => self.bye = Some(reason),
                    Ok(Frame::Pong | Frame::Unknown(_)) => {}
                    Err(BadFrame { ticket, why }) => {
                        eprintln!("{PREFIX}: a frame from the bridge cannot be read ({why}): {}", excerpt(text.as_str()));
                        if let Some(ticket) = ticket {
                            let outcome = Outcome {
                                error: Some(format!("drift-bridge listen cannot read the delivery: {why}")),
                                ..Outcome::default()
                            };
                            if let Err(e) = self.socket.send(Message::text(outcome.answer(&ticket))) {
                                return Ending::Dropped { why: e.to_string() };
                            }
                        }
                    }
                },
                Message::Close(frame) => {
                    let (code, said) = frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())).unwrap_or((1005, String::new()));
                    // Let tungstenite send the close back.
                    let _ = self.socket.flush();
                    if code == REPLACED || code == DELETED {
                        let reason =
                            self.bye.take().filter(|r| !r.is_empty()).or(Some(said).filter(|r| !r.is_empty())).unwrap_or_else(|| {
                                if code == REPLACED {
                                    "another listener took over".into()
                                } else {
                                    "the app was deleted".into()
                                }
                            });
                        return Ending::Ended { reason };
                    }
                    let reason = if said.is_empty() { String::new() } else { format!(": {said}") };
                    return Ending::Dropped { why: format!("the bridge closed the connection ({code}{reason})") };
                }
                Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// Sends the answers the workers finished and prints their lines; the
    /// error that broke the connection, if one did.
    fn answer_done(&mut self) -> Option<String> {
        while let Ok(done) = self.done.try_recv() {
            let current = done.generation == self.generation;
            if current {
                self.in_flight = self.in_flight.saturating_sub(1);
            }
            let Some(outcome) = &done.outcome else { continue };
            self.printer.delivered(&done.delivery, done.at_ms, outcome);
            if current {
                if let Err(e) = self.socket.send(Message::text(outcome.answer(&done.delivery.ticket))) {
                    return Some(e.to_string());
                }
            }
        }
        None
    }

    /// Closes with 1000 and waits a moment for the bridge's close.
    fn close(&mut self) {
        let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
        if self.socket.close(Some(frame)).is_err() {
            return;
        }
        let deadline = Instant::now() + CLOSE_WAIT;
        while Instant::now() < deadline {
            match self.socket.read() {
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if idle(&e) => {}
                Err(_) => return,
            }
        }
    }
}

/// A read that found nothing yet: the poll's timeout, or a signal (Ctrl-C)
/// that interrupted it.
fn idle(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted)
}

fn excerpt(text: &str) -> String {
    text.chars().take(200).collect()
}

/// The wait before connecting again.
struct Backoff {
    next: Duration,
}

impl Backoff {
    fn new() -> Backoff {
        Backoff { next: BACKOFF_FIRST }
    }

    /// The wait before the next try, and the one after it doubled.
    fn take(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        wait
    }

    /// After a connection that held: from the start again.
    fn connected_for(&mut self, lasted: Duration) {
        if lasted > STEADY {
            self.next = BACKOFF_FIRST;
        }
    }
}

pub fn run(args: Args) -> ExitCode {
    let bridge = match bridge::required_bridge(args.bridge.as_deref(), PREFIX) {
        Ok(bridge) => bridge,
        Err(code) => return code,
    };
    let token = match bridge::admin_token(PREFIX) {
        Ok(token) => token,
        Err(code) => return code,
    };
    let format = args.output.unwrap_or_else(|| if io::IsTerminal::is_terminal(&io::stdout()) { Format::Table } else { Format::Json });
    let url = listen_url(&bridge, &args.app);

    let shared = Arc::new(Shared { interrupts: AtomicU8::new(0), generation: AtomicU64::new(0) });
    let handler = {
        let shared = Arc::clone(&shared);
        ctrlc::set_handler(move || {
            // The socket's owner sees it within POLL; a third press, if it is
            // stuck connecting, ends the process.
            if shared.interrupts.fetch_add(1, Ordering::Relaxed) >= 2 {
                std::process::exit(0);
            }
        })
    };
    if let Err(e) = handler {
        eprintln!("{PREFIX}: cannot catch Ctrl-C: {e}");
        return ExitCode::from(EXIT_USAGE);
    }
    let (done_tx, done) = mpsc::channel();
    let jobs = start_workers(Forward::new(&args.forward), Arc::clone(&shared), done_tx);

    let mut printer = Printer::new(format, &args.forward);
    let mut backoff = Backoff::new();
    let mut sessions = 0u64;
    let finish = |printer: &Printer, sessions: u64, code: u8| {
        if sessions > 0 {
            eprint!("{}", printer.summary());
        }
        ExitCode::from(code)
    };
    loop {
        let socket = match connect(&url, &token) {
            Ok(socket) => socket,
            Err(refused) => {
                let code = match refused {
                    Refused::Usage(why) => {
                        eprintln!("{PREFIX}: {why}");
                        Some(EXIT_USAGE)
                    }
                    Refused::Answer { status, code, message, location } => {
                        refusal(status, &code, &message, location.as_deref(), &url, sessions)
                    }
                    Refused::Unreachable(why) if sessions == 0 => {
                        eprintln!("{PREFIX}: cannot reach the bridge at {bridge}: {why}");
                        Some(EXIT_USAGE)
                    }
                    Refused::Unreachable(why) => {
                        eprint!("{PREFIX}: cannot connect: {why}");
                        None
                    }
                };
                if let Some(code) = code {
                    return finish(&printer, sessions, code);
                }
                let wait = backoff.take();
                eprintln!("; trying again in {} s", wait.as_secs());
                if !pause(wait, &shared, &done, &mut printer) {
                    eprintln!("{PREFIX}: stopped while waiting to connect again");
                    return finish(&printer, sessions, 0);
                }
                continue;
            }
        };
        let generation = shared.generation.load(Ordering::Relaxed);
        let started = Instant::now();
        let ending =
            Session { socket, generation, shared: &shared, jobs: &jobs, done: &done, printer: &mut printer, in_flight: 0, bye: None }.run(
                &bridge,
                &args.app,
                &args.forward,
                sessions > 0,
            );
        // What this connection brought and the workers have not started is
        // not forwarded any more: the bridge hands it over again.
        shared.generation.fetch_add(1, Ordering::Relaxed);
        sessions += 1;
        let lasted = started.elapsed();
        printer.connected += lasted;
        backoff.connected_for(lasted);
        match ending {
            Ending::Interrupted => {
                // After the terminal's ^C.
                if io::IsTerminal::is_terminal(&io::stderr()) {
                    eprintln!();
                }
                eprintln!("{PREFIX}: stopped; connection closed");
                return finish(&printer, sessions, 0);
            }
            Ending::Ended { reason } => {
                eprintln!("{PREFIX}: the bridge ended this listener: {reason}");
                return finish(&printer, sessions, 1);
            }
            Ending::Dropped { why } => {
                if shared.interrupts() > 0 {
                    eprintln!("{PREFIX}: stopped; the connection had dropped ({why})");
                    return finish(&printer, sessions, 0);
                }
                let wait = backoff.take();
                eprintln!("{PREFIX}: connection lost ({why}); reconnecting in {} s", wait.as_secs());
                if !pause(wait, &shared, &done, &mut printer) {
                    eprintln!("{PREFIX}: stopped while waiting to connect again");
                    return finish(&printer, sessions, 0);
                }
            }
        }
    }
}

/// What a refused upgrade means: the exit status, or `None` to try again.
/// Says so on stderr (without a newline when trying again: the wait follows).
fn refusal(status: u16, code: &str, message: &str, location: Option<&str>, url: &str, sessions: u64) -> Option<u8> {
    let said = if code.is_empty() { message.to_owned() } else { format!("{code}: {message}") };
    match status {
        401 | 403 => {
            eprintln!("{PREFIX}: the bridge refused the admin token ({status}: {said}); check {TOKEN_VARIABLE}");
            Some(EXIT_USAGE)
        }
        404 if message.contains("admin routes are off") => {
            eprintln!("{PREFIX}: the bridge refused the admin token ({status}: {said})");
            Some(EXIT_USAGE)
        }
        300..=399 => {
            let to = location.unwrap_or("elsewhere");
            eprintln!("{PREFIX}: {url} answered {status}, a redirect to {to}: give --bridge the bridge's final base URL");
            Some(EXIT_USAGE)
        }
        // The bridge failing, or busy: again later, unless it never worked.
        429 | 500..=599 if sessions > 0 => {
            eprint!("{PREFIX}: the bridge answered {status} ({said})");
            None
        }
        429 | 500..=599 => {
            eprintln!("{PREFIX}: the bridge failed ({status}: {said})");
            Some(EXIT_USAGE)
        }
        405 | 426 => {
            eprintln!("{PREFIX}: {url} answered {status} ({said}): is --bridge the bridge's base URL, and does it take listeners?");
            Some(EXIT_USAGE)
        }
        // 404: no such app; 409 not_a_listener: an app that sends to a URL.
        // The reason may not have come with the headers (the handshake reads
        // no further): then it is said here.
        _ => {
            let message = match (message.trim().is_empty(), status) {
                (false, _) => message.to_owned(),
                (true, 404) => "the bridge has no app of that name (drift-bridge apps list shows its apps)".to_owned(),
                (true, 409) => "that app sends its deliveries to a URL; only an app created with --listen takes a listener".to_owned(),
                (true, _) => "no reason given".to_owned(),
            };
            let code = if code.is_empty() {
                match status {
                    404 => "not_found",
                    409 => "not_a_listener",
                    _ => "",
                }
            } else {
                code
            };
            eprintln!("{PREFIX}: refused ({status} {code}): {message}");
            Some(1)
        }
    }
}

/// Waits `wait` while printing what the workers finish; false when Ctrl-C
/// came.
fn pause(wait: Duration, shared: &Shared, done: &Receiver<Done>, printer: &mut Printer) -> bool {
    let until = Instant::now() + wait;
    loop {
        if shared.interrupts() > 0 {
            return false;
        }
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return true;
        }
        // What finished after its connection dropped: printed, not answered
        // (the bridge hands it over again).
        if let Ok(d) = done.recv_timeout(left.min(POLL)) {
            if let Some(outcome) = &d.outcome {
                printer.delivered(&d.delivery, d.at_ms, outcome);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery() -> Delivery {
        Delivery {
            ticket: "t-1".into(),
            id: "c0b44147a772c080.crm".into(),
            kind: "conversation_push".into(),
            conversation: Some("123456789".into()),
            attempt: 1,
            headers: vec![("content-type".into(), "application/json".into()), ("webhook-id".into(), "c0b44147a772c080".into())],
            body: "{\"a\":\"\u{e9}\\\"\"}".into(),
            timeout_ms: 10_000,
        }
    }

    #[test]
    fn frames_are_decoded_once() {
        let cases: &[(&str, Frame)] = &[
            (r#"{"kind":"hello","destination":"crm","waiting":3}"#, Frame::Hello { waiting: 3 }),
            (r#"{"kind":"bye","reason":"another listener took over"}"#, Frame::Bye { reason: "another listener took over".into() }),
            ("pong", Frame::Pong),
            (r#"{"kind":"stats","n":1}"#, Frame::Unknown("stats".into())),
            (
                r#"{"kind":"delivery","ticket":"t-1","id":"c0b44147a772c080.crm","type":"conversation_push","conversation":"123456789","attempt":1,"headers":[["content-type","application/json"],["webhook-id","c0b44147a772c080"]],"body":"{\"a\":\"\u00e9\\\"\"}","timeoutMs":10000}"#,
                Frame::Delivery(delivery()),
            ),
            (
                r#"{"kind":"delivery","ticket":"t-1","id":"c0b44147a772c080.crm","type":"conversation_push","conversation":null,"attempt":4,"headers":[],"body":""}"#,
                Frame::Delivery(Delivery { conversation: None, attempt: 4, headers: vec![], body: String::new(), ..delivery() }),
            ),
        ];
        for (text, frame) in cases {
            assert_eq!(Frame::decode(text).as_ref(), Ok(frame), "{text}");
        }
        let bad: &[(&str, Option<&str>, &str)] = &[
            ("{", None, "not JSON"),
            (r#"{"waiting":3}"#, None, "no \"kind\""),
            (r#"{"kind":"delivery"}"#, None, "without a \"ticket\""),
            (r#"{"kind":"delivery","ticket":"t","id":"x","type":"y","body":"z","headers":[["a"]]}"#, Some("t"), "not [name, value]"),
            (r#"{"kind":"delivery","ticket":"t","type":"y","body":"z","headers":[]}"#, Some("t"), "string \"id\""),
        ];
        for (text, ticket, says) in bad {
            let e = Frame::decode(text).unwrap_err();
            assert_eq!(e.ticket.as_deref(), *ticket, "{text}");
            assert!(e.why.contains(says), "{text}: {}", e.why);
        }
    }

    #[test]
    fn answers_say_what_the_local_app_did() {
        let ok = Outcome { status: Some(200), latency_ms: 12, ..Outcome::default() };
        assert_eq!(
            ok.answer("t-1"),
            r#"{"kind":"answer","ticket":"t-1","status":200,"location":null,"excerpt":"","error":null,"latencyMs":12}"#
        );
        let none = Outcome { error: Some("network error: connection refused".into()), ..Outcome::default() };
        assert_eq!(
            none.answer("t\"2"),
            r#"{"kind":"answer","ticket":"t\"2","status":null,"location":null,"excerpt":"","error":"network error: connection refused","latencyMs":0}"#
        );
    }

    #[test]
    fn lines_for_people() {
        let d = delivery();
        let cases: &[(Delivery, Outcome, &str)] = &[
            (
                d.clone(),
                Outcome { status: Some(200), latency_ms: 12, ..Outcome::default() },
                "14:02:11  conversation_push            conv 123456789   → 200  12 ms",
            ),
            (
                Delivery { attempt: 3, conversation: None, ..d.clone() },
                Outcome { status: Some(500), excerpt: "  upstream\n down ".into(), latency_ms: 41, ..Outcome::default() },
                "14:02:11  conversation_push            conv -           attempt 3  → 500: upstream down  41 ms",
            ),
            (
                d.clone(),
                Outcome { status: Some(302), location: Some("/login".into()), latency_ms: 3, ..Outcome::default() },
                "14:02:11  conversation_push            conv 123456789   → 302 to /login (not followed)  3 ms",
            ),
            (
                d.clone(),
                Outcome { error: Some("no answer within 10000 ms".into()), latency_ms: 10_001, ..Outcome::default() },
                "14:02:11  conversation_push            conv 123456789   → no answer within 10000 ms  10001 ms",
            ),
        ];
        for (d, o, want) in cases {
            assert_eq!(line(d, "14:02:11", o), *want);
        }
        assert_eq!(
            json_line(&d, 1_796_476_175_192, &Outcome { status: Some(200), latency_ms: 12, ..Outcome::default() }),
            r#"{"at":1796476175192,"id":"c0b44147a772c080.crm","type":"conversation_push","conversation":"123456789","attempt":1,"status":200,"location":null,"error":null,"latencyMs":12}"#
        );
    }

    #[test]
    fn the_summary_counts_by_class_with_median_and_max() {
        let mut p = Printer::new(Format::Json, "http://localhost:3000/");
        p.connected = Duration::from_secs(192);
        for (status, ms) in [(Some(200), 10), (Some(204), 30), (Some(500), 20), (None, 1000), (Some(200), 5)] {
            p.classes[match status {
                Some(200..=299) => 0,
                Some(500..=599) => 3,
                _ => 4,
            }] += 1;
            p.latencies.push(ms);
        }
        assert_eq!(
            p.summary(),
            "drift-bridge listen: 5 deliveries in 3 min 12 s connected\n  2xx           3\n  4xx           0\n  5xx           1\n  no answer     1\n  latency    median 20 ms, max 1000 ms\n"
        );
    }

    #[test]
    fn backoff_doubles_to_30_s_and_starts_over_after_a_steady_connection() {
        let mut b = Backoff::new();
        let waits: Vec<u64> = (0..7).map(|_| b.take().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        b.connected_for(Duration::from_secs(5));
        assert_eq!(b.take().as_secs(), 30);
        b.connected_for(Duration::from_secs(31));
        assert_eq!(b.take().as_secs(), 1);
    }

    #[test]
    fn urls() {
        assert_eq!(listen_url("http://127.0.0.1:8787", "crm"), "ws://127.0.0.1:8787/admin/destinations/crm/listen");
        assert_eq!(listen_url("https://b.example/bridge", "crm"), "wss://b.example/bridge/admin/destinations/crm/listen");
        assert_eq!(listen_url("HTTP://localhost:8787", "a_b"), "ws://localhost:8787/admin/destinations/a_b/listen");
        for good in ["http://localhost:3000/drift", "https://app.example/hook?x=1", "http://[::1]:3000/"] {
            assert!(parse_forward(good).is_ok(), "{good}");
        }
        for (bad, says) in [
            ("localhost:3000", "give an http or https URL"),
            ("ftp://localhost/", "scheme \"ftp\" is not supported"),
            ("/drift", "is not an absolute URL"),
            ("not a url", "is not a URL"),
        ] {
            let e = parse_forward(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn durations_for_people() {
        assert_eq!(duration(Duration::from_secs(42)), "42 s");
        assert_eq!(duration(Duration::from_secs(192)), "3 min 12 s");
        assert_eq!(duration(Duration::from_secs(3900)), "1 h 5 min");
        assert_eq!(utc_clock(1_796_476_175_192), "13:09:35");
    }
}
