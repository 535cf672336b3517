//! `drift-bridge send`: replay archived Drift webhooks into a running bridge.
//!
//! A backfill goes through the bridge itself rather than around it, so that
//! archived events get the same verification, translation, deduplication and
//! delivery as live ones. Each line of the input is one webhook body, POSTed
//! as is to `<--bridge>/webhooks/drift` with the verification token in
//! `X-Verification-Token`. (`--to <webhook URL>` is the older way to say
//! where, kept for a release.)
//!
//! What the bridge answers decides what happens to a line:
//!
//! | answer | the line is | and |
//! |---|---|---|
//! | 2xx | accepted | recorded in `--state` |
//! | 400, 413, other 4xx | rejected | reported with the bridge's error; not retried |
//! | 408, 429, 5xx, network error | retried | with exponential backoff and jitter, or after `Retry-After`; failed after `--retries` |
//! | 401, 403 | — | the run stops: every line would get the same |
//! | 3xx, 404, 405 | — | the run stops: `--bridge` is not the bridge's URL |
//!
//! Memory stays flat: lines are read as they are needed, through a bounded
//! queue, and the state keeps line numbers as ranges. A line is sent again
//! only when no answer said it was accepted; the bridge drops events it has
//! already handed off in the last 24 hours, so the rare repeat (a 200 lost
//! on the way back) is harmless.

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, BufRead, BufReader, Cursor, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, sync_channel, Receiver, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use drift_bridge::json::{self, Limits};
use ureq::Agent;

use crate::bridge::{parse_bridge, parse_url, WEBHOOK_PATH};
use crate::progress::{eprint_line, Progress};
use crate::state::{Identity, Lines, State, HEAD_BYTES};

pub const ABOUT: &str = "\
Post archived Drift events to a running bridge, as Drift would have.

Each line of FILE (or stdin, with -) is one webhook body, POSTed to the
bridge's /webhooks/drift with the token in X-Verification-Token (from --token,
or the environment: DRIFT_BRIDGE_VERIFICATION_TOKEN, or the older
DRIFT_VERIFICATION_TOKEN); blank lines are skipped. Lines go
--concurrency at a time and at most --rate per second. 429, 5xx and network
errors are retried with backoff (honouring Retry-After); a line the bridge
rejects (400, 413) is reported with its line number and the bridge's error and
not retried. A wrong token (401) stops the run.

With --state FILE, accepted line numbers are recorded as they come in: after an
interruption (Ctrl-C stops sending, waits for the requests in flight and
exits with status 130), the same command carries on where it stopped. The
bridge drops events it handed off in the last 24 hours, so a line sent twice
is harmless.

Progress and the final report go to stderr; stdout stays empty.

--to <webhook URL> (…/webhooks/drift) still works instead of --bridge, for
this release.";

/// Exit status after Ctrl-C, as shells report a process killed by SIGINT.
const EXIT_INTERRUPTED: u8 = 130;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Backoff before retry n: BACKOFF_BASE × 2^(n−1), at most BACKOFF_MAX, times
/// a random factor in [0.5, 1).
const BACKOFF_BASE: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// How much of an answer is read.
const MAX_ANSWER_BYTES: u64 = 64 * 1024;
/// Where `send` reads the token when `--token` is not given, in order: the
/// name alike the admin token's, then the older one.
const TOKEN_VARIABLES: [&str; 2] = ["DRIFT_BRIDGE_VERIFICATION_TOKEN", "DRIFT_VERIFICATION_TOKEN"];

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["bridge", "to"])))]
pub struct Args {
    /// Drift events, one JSON body per line (NDJSON); - for stdin
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The bridge's base URL, e.g. https://drift-bridge.example.workers.dev
    /// (plain http only for localhost); lines go to its /webhooks/drift
    #[arg(long, value_name = "URL", value_parser = parse_bridge)]
    bridge: Option<String>,
    /// Deprecated, goes in the next release: the webhook's URL
    /// (…/webhooks/drift); use --bridge
    #[arg(long, value_name = "URL", value_parser = parse_url)]
    to: Option<String>,
    /// A verification token the bridge accepts (one of its
    /// DRIFT_VERIFICATION_TOKEN) [default: $DRIFT_BRIDGE_VERIFICATION_TOKEN,
    /// or the older $DRIFT_VERIFICATION_TOKEN]; best given in the
    /// environment, out of the shell's history
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Requests in flight at once
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// At most N requests per second, retries included [default: no limit]
    #[arg(long, value_name = "N", value_parser = parse_rate)]
    rate: Option<f64>,
    /// Record accepted lines in FILE and skip those it already holds, so that
    /// the same command carries on after an interruption
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Retries of a line after 408, 429, 5xx or a network error, before it is
    /// reported as failed
    #[arg(long, value_name = "N", default_value_t = 8)]
    retries: u32,
    /// Seconds to wait for one answer
    #[arg(long, value_name = "SECONDS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!("expected a positive number of requests per second, found {text:?}")),
    }
}

/// Where lines go and what says so, for messages that name the flag.
struct Target {
    /// The webhook's URL: what the state names the bridge by.
    url: String,
    /// `--bridge` or `--to`.
    flag: &'static str,
}

impl Target {
    /// From `--bridge`, or the deprecated `--to` (said so on stderr).
    fn of(args: &Args) -> Option<Target> {
        match (&args.bridge, &args.to) {
            (Some(base), _) => Some(Target { url: format!("{base}{WEBHOOK_PATH}"), flag: "--bridge" }),
            (None, Some(to)) => {
                let base = to.trim_end_matches('/').strip_suffix(WEBHOOK_PATH).unwrap_or("<the bridge's base URL>");
                eprintln!("drift-bridge: --to is deprecated and goes in the next release; use --bridge {base}");
                Some(Target { url: to.clone(), flag: "--to" })
            }
            (None, None) => None,
        }
    }

    /// What to fix when the URL is not the webhook's (404, 405).
    fn hint(&self) -> String {
        match self.flag {
            "--to" => format!("is --to the bridge's webhook URL (…{WEBHOOK_PATH})?"),
            _ => format!("is --bridge the bridge's base URL (it takes webhooks at …{WEBHOOK_PATH})?"),
        }
    }

    /// What to fix when the URL redirects (3xx).
    fn redirected(&self) -> &'static str {
        match self.flag {
            "--to" => "set --to to the webhook's final URL",
            _ => "set --bridge to the bridge's final base URL",
        }
    }
}

/// The verification token and where it came from (`--token` or a variable),
/// to name in a message.
fn token(args: &Args) -> Option<(String, &'static str)> {
    if let Some(token) = &args.token {
        return Some((token.clone(), "--token"));
    }
    TOKEN_VARIABLES.iter().find_map(|name| std::env::var(name).ok().filter(|t| !t.trim().is_empty()).map(|t| (t, *name)))
}

/// One line to send.
struct Job {
    line: u64,
    body: Vec<u8>,
    /// Bytes of input the line took, newline included.
    size: u64,
}

/// What became of a line.
enum Outcome {
    Accepted {
        line: u64,
        requests: u32,
    },
    /// The bridge refused the line itself; `why` is its error.
    Rejected {
        line: u64,
        requests: u32,
        status: u16,
        why: String,
    },
    /// Every try met 408/429/5xx or a network error; `why` is the last.
    Failed {
        line: u64,
        requests: u32,
        why: String,
    },
    /// Not sent (or not to the end) because the run stopped; sent again
    /// by the next run.
    Unsent {
        requests: u32,
    },
}

/// What every thread of a run sees.
struct Shared {
    /// Set on Ctrl-C (or SIGTERM).
    interrupted: AtomicBool,
    /// Why the run must stop (a wrong token, a wrong URL, an I/O error).
    fatal: Mutex<Option<String>>,
    stop: AtomicBool,
    /// Bytes of input done with (sent, skipped or blank): the bar's position.
    bytes_done: AtomicU64,
    skipped: AtomicU64,
}

impl Shared {
    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Stops the run for `why`; the first reason wins.
    fn fail(&self, why: String) {
        let mut fatal = lock(&self.fatal);
        if fatal.is_none() {
            *fatal = Some(why);
        }
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The counts of a run, and the line numbers worth naming.
#[derive(Default)]
struct Report {
    accepted: u64,
    rejected: Lines,
    failed: Lines,
    requests: u64,
}

pub fn run(args: Args) -> ExitCode {
    let usage = |message: String| {
        eprintln!("drift-bridge: {message}");
        ExitCode::from(crate::EXIT_USAGE)
    };
    let started = Instant::now();
    let Some(target) = Target::of(&args) else {
        return usage("send needs --bridge <URL>, the bridge's base URL".into());
    };
    let Some((token, token_from)) = token(&args) else {
        return usage(format!("send needs the verification token: set {} (or give --token)", TOKEN_VARIABLES[0]));
    };

    let name = args.file.display().to_string();
    let (mut input, size): (Box<dyn Read + Send>, Option<u64>) = if args.file.as_os_str() == "-" {
        (Box::new(io::stdin()), None)
    } else {
        match File::open(&args.file) {
            Ok(f) => {
                let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
                (Box::new(f), size)
            }
            Err(e) => return usage(format!("cannot open {name}: {e}")),
        }
    };
    // The first bytes name the input in the state; they are read once and
    // then sent like the rest.
    let mut head = Vec::with_capacity(HEAD_BYTES);
    if let Err(e) = input.by_ref().take(HEAD_BYTES as u64).read_to_end(&mut head) {
        return usage(format!("cannot read {name}: {e}"));
    }
    let mut state = match &args.state {
        Some(path) => match State::open(path, &Identity::new(size, &head, &name, &target.url)) {
            Ok(state) => Some(state),
            Err(e) => return usage(e),
        },
        None => None,
    };
    let earlier = state.as_mut().map(|s| std::mem::take(&mut s.earlier)).unwrap_or_default();
    let reader = BufReader::with_capacity(1 << 16, Cursor::new(head).chain(input));

    let shared = Shared {
        interrupted: AtomicBool::new(false),
        fatal: Mutex::new(None),
        stop: AtomicBool::new(false),
        bytes_done: AtomicU64::new(0),
        skipped: AtomicU64::new(0),
    };
    let shared: &'static Shared = Box::leak(Box::new(shared));
    let handler = ctrlc::set_handler(move || {
        if shared.interrupted.swap(true, Ordering::Relaxed) {
            eprintln!("\ndrift-bridge: interrupted twice: stopping now");
            std::process::exit(EXIT_INTERRUPTED.into());
        }
        shared.stop.store(true, Ordering::Relaxed);
        eprintln!("\ndrift-bridge: interrupted: waiting for the requests in flight (Ctrl-C again to stop now)");
    });
    if let Err(e) = handler {
        return usage(format!("cannot catch Ctrl-C: {e}"));
    }

    let concurrency = usize::from(args.concurrency);
    let client = Client::new(&args, concurrency, &target, token, token_from);
    let pacer = Pacer::new(args.rate);
    let progress = Progress::on_terminal(size);

    let (job_tx, job_rx) = sync_channel::<Job>(concurrency * 2);
    let job_rx = Mutex::new(job_rx);
    let (outcome_tx, outcome_rx) = mpsc::channel::<Outcome>();
    let report = thread::scope(|scope| {
        for seed in 0..concurrency {
            let (job_rx, outcome_tx, client, pacer) = (&job_rx, outcome_tx.clone(), &client, &pacer);
            scope.spawn(move || {
                let mut rng = Rng::new(seed as u64);
                loop {
                    let Ok(job) = lock(job_rx).recv() else { break };
                    let outcome =
                        if shared.stopped() { Outcome::Unsent { requests: 0 } } else { client.send(&job, pacer, shared, &mut rng) };
                    shared.bytes_done.fetch_add(job.size, Ordering::Relaxed);
                    if outcome_tx.send(outcome).is_err() {
                        break;
                    }
                }
            });
        }
        drop(outcome_tx);
        let collector = scope.spawn(|| collect(outcome_rx, state, progress, shared));
        read_lines(reader, &name, &earlier, job_tx, shared);
        collector.join().unwrap_or_default()
    });

    // The report: what each line became, then why the run stopped early.
    let (accepted, rejected, failed) = (report.accepted, report.rejected.len(), report.failed.len());
    let sent = accepted + rejected + failed;
    let plural = |n: u64, one: &str, many: &str| {
        if n == 1 {
            one.to_owned()
        } else {
            many.to_owned()
        }
    };
    eprintln!(
        "drift-bridge: sent {sent} {} to {} in {:.1} s ({} {})",
        plural(sent, "line", "lines"),
        target.url,
        started.elapsed().as_secs_f64(),
        report.requests,
        plural(report.requests, "request", "requests")
    );
    eprintln!("  accepted  {accepted}");
    let lines = |set: &Lines| {
        if set.len() == 0 {
            String::new()
        } else {
            format!("  {} {}", plural(set.len(), "line", "lines"), set.describe(20))
        }
    };
    eprintln!("  rejected  {rejected}{}", lines(&report.rejected));
    eprintln!("  failed    {failed}{}", lines(&report.failed));
    if let Some(path) = &args.state {
        let skipped = shared.skipped.load(Ordering::Relaxed);
        eprintln!("  skipped   {skipped}  accepted in an earlier run (--state {})", path.display());
    }
    if let Some(why) = lock(&shared.fatal).take() {
        eprintln!("drift-bridge: {why}");
        return ExitCode::from(crate::EXIT_USAGE);
    }
    if shared.interrupted.load(Ordering::Relaxed) {
        match &args.state {
            Some(_) => {
                eprintln!("drift-bridge: interrupted; run the same command again to carry on")
            }
            None => eprintln!(
                "drift-bridge: interrupted; without --state a new run sends every line again \
                 (the bridge drops those it handed off in the last 24 hours)"
            ),
        }
        return ExitCode::from(EXIT_INTERRUPTED);
    }
    if rejected + failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Feeds the workers the lines to send, in order, until the input ends or
/// the run stops. Blank lines and lines accepted in an earlier run are
/// skipped; line numbers count every line, from 1.
fn read_lines(mut reader: impl BufRead, name: &str, earlier: &Lines, jobs: mpsc::SyncSender<Job>, shared: &Shared) {
    let mut number = 0u64;
    let mut buf = Vec::with_capacity(1024);
    while !shared.stopped() {
        buf.clear();
        let read = match reader.read_until(b'\n', &mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                shared.fail(format!("cannot read {name}: {e}"));
                break;
            }
        };
        number += 1;
        if buf.last() == Some(&b'\n') {
            buf.pop();
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
        }
        let size = read as u64;
        let blank = buf.iter().all(u8::is_ascii_whitespace);
        if blank || earlier.contains(number) {
            if !blank {
                shared.skipped.fetch_add(1, Ordering::Relaxed);
            }
            shared.bytes_done.fetch_add(size, Ordering::Relaxed);
            continue;
        }
        let body = std::mem::replace(&mut buf, Vec::with_capacity(1024));
        if jobs.send(Job { line: number, body, size }).is_err() {
            break;
        }
    }
}

/// Takes the workers' outcomes in: records accepted lines in the state,
/// reports the others as they come, keeps the bar moving.
fn collect(outcomes: Receiver<Outcome>, mut state: Option<State>, mut progress: Option<Progress>, shared: &Shared) -> Report {
    let mut report = Report::default();
    loop {
        match outcomes.recv_timeout(Duration::from_millis(100)) {
            Ok(outcome) => {
                let requests = match outcome {
                    Outcome::Accepted { line, requests } => {
                        report.accepted += 1;
                        if let Some(Err(e)) = state.as_mut().map(|s| s.record(line)) {
                            shared.fail(e);
                        }
                        requests
                    }
                    Outcome::Rejected { line, requests, status, why } => {
                        report.rejected.insert(line);
                        eprint_line(progress.as_ref(), format_args!("line {line}: rejected ({status}): {why}"));
                        requests
                    }
                    Outcome::Failed { line, requests, why } => {
                        report.failed.insert(line);
                        eprint_line(
                            progress.as_ref(),
                            format_args!("line {line}: failed after {requests} {}: {why}", if requests == 1 { "try" } else { "tries" }),
                        );
                        requests
                    }
                    Outcome::Unsent { requests } => requests,
                };
                report.requests += u64::from(requests);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if let Some(p) = progress.as_mut() {
            let done = report.accepted + report.rejected.len() + report.failed.len();
            let bytes = shared.bytes_done.load(Ordering::Relaxed);
            p.update(bytes, done, || {
                // Only what is there, to keep the bar on one line.
                let skipped = shared.skipped.load(Ordering::Relaxed);
                [(report.rejected.len(), "rejected"), (report.failed.len(), "failed"), (skipped, "skipped")]
                    .iter()
                    .filter(|(n, _)| *n > 0)
                    .map(|(n, what)| format!(", {n} {what}"))
                    .collect()
            });
        }
    }
    if let Some(p) = progress.take() {
        p.finish();
    }
    if let Some(Err(e)) = state.map(State::close) {
        shared.fail(e);
    }
    report
}

/// The HTTP side: one agent (a pool of kept-alive connections) for all
/// workers.
struct Client {
    agent: Agent,
    url: String,
    /// What to fix when the URL is not the webhook's, or redirects.
    hint: String,
    redirected: &'static str,
    /// Who to blame for a wrong token: a flag or a variable.
    flag: &'static str,
    token: String,
    retries: u32,
}

/// What one request came to.
enum Answer {
    Accepted,
    Rejected { status: u16, why: String },
    Retry { why: String, after: Option<Duration> },
    Fatal(String),
}

impl Client {
    fn new(args: &Args, concurrency: usize, target: &Target, token: String, token_from: &'static str) -> Self {
        let config = Agent::config_builder()
            // 4xx and 5xx are answers to read, not errors.
            .http_status_as_error(false)
            // A redirect of a POST is a wrong --bridge, said so rather than followed.
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(args.timeout)))
            .max_idle_connections(concurrency)
            .max_idle_connections_per_host(concurrency)
            .user_agent(format!("drift-bridge/{} (send)", drift_bridge::VERSION))
            .build();
        Client {
            agent: config.into(),
            url: target.url.clone(),
            hint: target.hint(),
            redirected: target.redirected(),
            flag: token_from,
            token,
            retries: args.retries,
        }
    }

    /// Sends one line until it is accepted, rejected, given up on, or the
    /// run stops.
    fn send(&self, job: &Job, pacer: &Pacer, shared: &Shared, rng: &mut Rng) -> Outcome {
        let mut requests = 0;
        loop {
            if !pacer.wait(shared) {
                return Outcome::Unsent { requests };
            }
            requests += 1;
            let (why, after) = match self.post(&job.body) {
                Answer::Accepted => return Outcome::Accepted { line: job.line, requests },
                Answer::Rejected { status, why } => return Outcome::Rejected { line: job.line, requests, status, why },
                Answer::Fatal(why) => {
                    shared.fail(why);
                    return Outcome::Unsent { requests };
                }
                Answer::Retry { why, after } => (why, after),
            };
            if requests > self.retries {
                return Outcome::Failed { line: job.line, requests, why };
            }
            let delay = after.map(|d| d.min(MAX_RETRY_AFTER)).unwrap_or_else(|| backoff(requests, rng));
            if !sleep_unless_stopped(Instant::now() + delay, shared) {
                return Outcome::Unsent { requests };
            }
        }
    }

    fn post(&self, body: &[u8]) -> Answer {
        let result =
            self.agent.post(&self.url).header("Content-Type", "application/json").header("X-Verification-Token", &self.token).send(body);
        let mut response = match result {
            Ok(response) => response,
            Err(e) => return self.network_error(e),
        };
        let status = response.status();
        let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
        let location = header("location");
        // Read to the end, so that the connection can serve the next line.
        let text = response.body_mut().with_config().limit(MAX_ANSWER_BYTES).read_to_vec().unwrap_or_default();
        let code = status.as_u16();
        let why = || self.describe(status, &text);
        match code {
            200..=299 => Answer::Accepted,
            300..=399 => Answer::Fatal(format!(
                "the bridge answered {status} to {}{}: {}",
                self.url,
                location.map(|l| format!(" (Location: {l})")).unwrap_or_default(),
                self.redirected
            )),
            401 | 403 => Answer::Fatal(format!("the bridge refused the token ({code} {}): check {}", why(), self.flag)),
            404 | 405 => Answer::Fatal(format!("POST {} answered {code} ({}): {}", self.url, why(), self.hint)),
            408 | 429 | 500..=599 => Answer::Retry { why: format!("{code} {}", why()), after: retry_after },
            _ => Answer::Rejected { status: code, why: why() },
        }
    }

    fn network_error(&self, error: ureq::Error) -> Answer {
        use ureq::Error as E;
        let why = self.redact(&error.to_string());
        match error {
            E::Io(_) | E::Timeout(_) | E::HostNotFound | E::ConnectionFailed | E::Protocol(_) => Answer::Retry { why, after: None },
            _ => Answer::Fatal(format!("cannot send to {}: {why}", self.url)),
        }
    }

    /// The bridge's error as `code at path: message`, or what else the
    /// answer says.
    fn describe(&self, status: ureq::http::StatusCode, body: &[u8]) -> String {
        let parsed = json::parse_bytes(body, &Limits::default()).ok();
        let error = parsed.as_ref().and_then(|v| v.get("error"));
        let field = |name: &str| error.and_then(|e| e.get(name)).and_then(|v| v.as_str()).map(|s| s.text().into_owned());
        let text = match (field("code"), field("message")) {
            (Some(code), Some(message)) => match field("path").filter(|p| !p.is_empty()) {
                Some(path) => format!("{code} at {path}: {message}"),
                None => format!("{code}: {message}"),
            },
            _ => {
                let reason = status.canonical_reason().unwrap_or("");
                let body = String::from_utf8_lossy(body);
                let body: String = body.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(200).collect();
                match (reason, body.is_empty()) {
                    (_, false) => format!("{reason}: {body}"),
                    ("", true) => format!("status {}", status.as_u16()),
                    (reason, true) => reason.to_owned(),
                }
            }
        };
        self.redact(&text)
    }

    /// Never show the token, whatever a server echoes.
    fn redact(&self, text: &str) -> String {
        if self.token.is_empty() {
            text.to_owned()
        } else {
            text.replace(&self.token, "<token>")
        }
    }
}

/// Before retry `n` (from 1): BACKOFF_BASE × 2^(n−1), at most BACKOFF_MAX,
/// spread by a random factor in [0.5, 1) so that workers do not retry in
/// step.
fn backoff(n: u32, rng: &mut Rng) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << n.saturating_sub(1).min(16)).min(BACKOFF_MAX);
    exp.mul_f64(0.5 + 0.5 * rng.unit())
}

/// Spaces requests `1 / rate` apart across all workers: at most `rate` in
/// any second, with no burst (a token bucket holding one token).
struct Pacer {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(rate: Option<f64>) -> Self {
        Pacer { interval: rate.map(|r| Duration::from_secs_f64(1.0 / r)), next: Mutex::new(Instant::now()) }
    }

    /// Waits for this worker's turn; false if the run stopped meanwhile.
    fn wait(&self, shared: &Shared) -> bool {
        let Some(interval) = self.interval else {
            return !shared.stopped();
        };
        let slot = {
            let mut next = lock(&self.next);
            let slot = (*next).max(Instant::now());
            *next = slot + interval;
            slot
        };
        sleep_unless_stopped(slot, shared)
    }
}

/// Sleeps until `deadline`, waking early when the run stops; false then.
fn sleep_unless_stopped(deadline: Instant, shared: &Shared) -> bool {
    loop {
        if shared.stopped() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        thread::sleep((deadline - now).min(Duration::from_millis(50)));
    }
}

/// xorshift64*, seeded from std's per-process random hasher keys: jitter
/// needs nothing better.
struct Rng(u64);

impl Rng {
    fn new(stream: u64) -> Self {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(stream);
        Rng(hasher.finish() | 1)
    }

    /// In [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds() {
        let mut rng = Rng::new(7);
        for (n, low, high) in [(1, 250, 500), (2, 500, 1000), (3, 1000, 2000), (7, 15_000, 30_000), (40, 15_000, 30_000)] {
            for _ in 0..50 {
                let ms = backoff(n, &mut rng).as_millis();
                assert!((low..high).contains(&ms), "retry {n}: {ms} ms");
            }
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("2.5"), Ok(2.5));
        for bad in ["0", "-1", "NaN", "inf", "fast"] {
            assert!(parse_rate(bad).unwrap_err().contains("expected a positive number"), "{bad}");
        }
    }
}
