//! `drift-bridge convert`: translate Drift events from a file or stdin, for
//! backfills and for trying the rules out.
//!
//! Reads one JSON event, or newline-delimited events (an event may also span
//! several lines, as pretty-printed JSON does), and prints one line per
//! outbound event: `{"id":"…","event":…}`. A bad event is reported on stderr
//! with its line number and never stops the others; the exit status is 1 when
//! any event was rejected. Memory stays flat whatever the input's size.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use drift_bridge::json::{self, Failure, Limits};
use drift_bridge::{translate_value, Error, ErrorCode, LegacyPolicy, Options};

const USAGE: &str = "\
drift-bridge: translate Drift conversation webhooks between push and legacy forms

Usage:
  drift-bridge convert [--legacy always|timeline|never] [--now <ms>] [--max-bytes <n>] [FILE]
  drift-bridge --version

convert reads one JSON event, or newline-delimited events, from FILE (or
stdin when FILE is absent or -) and writes one line per outbound event:
  {\"id\":\"<id>\",\"event\":<outbound event>}

Options:
  --legacy <policy>   which inactive/manual-push/push events also yield a legacy
                      conversation_status_updated close: always (default),
                      timeline (only 2020-06-01..2020-10-01, as Drift did), never
  --now <ms>          the receive time, in ms since the epoch, used for events
                      with no lastUpdated/changedAt (default: the current time)
  --max-bytes <n>     largest accepted event, in bytes (default 65536)

Rejected events are reported on stderr as `line N: <code> at <path>: <message>`;
the exit status is 1 when any event was rejected, 2 on a usage or I/O error.
";

struct Args {
    options: Options,
    file: Option<String>,
}

fn main() -> ExitCode {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match argv.first().map(String::as_str) {
        Some("convert") => {}
        Some("--version" | "-V") => {
            println!("drift-bridge {}", drift_bridge::VERSION);
            return ExitCode::SUCCESS;
        }
        Some("--help" | "-h" | "help") => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => return usage_error(&format!("unknown command {other:?}")),
        None => return usage_error("missing command"),
    }
    let args = match parse_args(&argv[1..]) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => return usage_error(&message),
    };
    let (input, size): (Box<dyn Read>, Option<u64>) = match args.file.as_deref() {
        None | Some("-") => (Box::new(io::stdin().lock()), None),
        Some(path) => match File::open(path) {
            Ok(f) => {
                let size = f.metadata().ok().map(|m| m.len());
                (Box::new(f), size)
            }
            Err(e) => {
                eprintln!("drift-bridge: cannot open {path}: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let progress = io::stderr().is_terminal().then(|| Progress::new(size));
    let mut out = PipeWriter::new(io::stdout());
    let outcome = convert(input, &mut out, &args.options, progress).and_then(|summary| out.finish().map(|()| summary));
    match outcome {
        Ok(summary) if summary.rejected == 0 => ExitCode::SUCCESS,
        Ok(summary) => {
            eprintln!("drift-bridge: {} of {} events rejected", summary.rejected, summary.rejected + summary.converted);
            ExitCode::from(1)
        }
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drift-bridge: {e}");
            ExitCode::from(2)
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("drift-bridge: {message}\nRun `drift-bridge --help` for usage.");
    ExitCode::from(2)
}

fn parse_args(args: &[String]) -> Result<Option<Args>, String> {
    let mut legacy = LegacyPolicy::default();
    let mut now = None;
    let mut limits = Limits::default();
    let mut file = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        let mut value = |name: &str| inline.clone().or_else(|| it.next().cloned()).ok_or(format!("{name} needs a value"));
        match flag {
            "--help" | "-h" => return Ok(None),
            "--legacy" => legacy = value("--legacy")?.parse().map_err(|e| format!("--legacy: {e}"))?,
            "--now" => {
                let v = value("--now")?;
                now = Some(v.parse::<i64>().map_err(|_| format!("--now: expected milliseconds since the epoch, found {v:?}"))?);
            }
            "--max-bytes" => {
                let v = value("--max-bytes")?;
                limits.max_bytes = v.parse().map_err(|_| format!("--max-bytes: expected a number of bytes, found {v:?}"))?;
            }
            "-" => file = Some("-".to_owned()),
            f if f.starts_with('-') => return Err(format!("unknown option {f}")),
            path if file.is_none() => file = Some(path.to_owned()),
            extra => return Err(format!("unexpected argument {extra:?}; convert reads one FILE")),
        }
    }
    let received_at_ms = now.unwrap_or_else(|| {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    });
    Ok(Some(Args { options: Options::new(received_at_ms).legacy(legacy).limits(limits), file }))
}

#[derive(Default)]
struct Summary {
    converted: u64,
    rejected: u64,
}

/// An event spread over several lines, waiting for its end.
struct Pending {
    start_line: u64,
    lines: Vec<Vec<u8>>,
    /// What the first line alone was found to be: reported if no later line
    /// completes the event.
    first_error: Error,
}

fn convert<W: Write>(input: impl Read, mut out: W, options: &Options, mut progress: Option<Progress>) -> io::Result<Summary> {
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut summary = Summary::default();
    let mut line_buf = Vec::with_capacity(1024);
    // Lines to read again after an unfinished multi-line event gave up on them.
    let mut replay: VecDeque<(u64, Vec<u8>)> = VecDeque::new();
    let mut pending: Option<Pending> = None;
    let mut line_no = 0u64;
    let mut eof = false;

    let emit = |value: &json::Value<'_>, start_line: u64, out: &mut W, summary: &mut Summary| -> io::Result<()> {
        match translate_value(value, options) {
            Ok(events) => {
                summary.converted += 1;
                // Straight into the buffered writer: no per-event record string.
                for event in &events {
                    let mut id = [0u8; 16];
                    event.id.write_hex_bytes(&mut id);
                    out.write_all(b"{\"id\":\"")?;
                    out.write_all(&id)?;
                    out.write_all(b"\",\"event\":")?;
                    out.write_all(event.json.as_bytes())?;
                    out.write_all(b"}\n")?;
                }
                Ok(())
            }
            Err(e) => {
                reject(summary, start_line, &e.shifted(line_offset(start_line)));
                Ok(())
            }
        }
    };

    loop {
        let (number, bytes): (u64, Cow<'_, [u8]>) = if let Some((n, line)) = replay.pop_front() {
            (n, Cow::Owned(line))
        } else if !eof {
            line_buf.clear();
            let read = reader.read_until(b'\n', &mut line_buf)?;
            if let Some(p) = progress.as_mut() {
                p.advance(read as u64);
            }
            if read == 0 {
                eof = true;
                continue;
            }
            line_no += 1;
            trim_newline(&mut line_buf);
            (line_no, Cow::Borrowed(line_buf.as_slice()))
        } else if let Some(p) = pending.take() {
            give_up(p, &mut replay, &mut summary);
            continue;
        } else {
            break;
        };

        match pending.take() {
            None => {
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                let text = match json::utf8(&bytes, &options.limits) {
                    Ok(t) => t,
                    Err(e) => {
                        reject(&mut summary, number, &e.shifted(line_offset(number)));
                        continue;
                    }
                };
                match json::parse_detailed(text, &options.limits) {
                    Ok(value) => emit(&value, number, &mut out, &mut summary)?,
                    Err((e, Failure::Incomplete)) => {
                        pending = Some(Pending { start_line: number, lines: vec![bytes.into_owned()], first_error: e })
                    }
                    Err((e, _)) => reject(&mut summary, number, &e.shifted(line_offset(number))),
                }
            }
            Some(mut p) => {
                p.lines.push(bytes.into_owned());
                let joined = p.lines.join(&b'\n');
                let parsed = json::utf8(&joined, &options.limits)
                    .map_err(|e| (e, Failure::Other))
                    .and_then(|text| json::parse_detailed(text, &options.limits));
                match parsed {
                    Ok(value) => emit(&value, p.start_line, &mut out, &mut summary)?,
                    Err((_, Failure::Incomplete)) => pending = Some(p),
                    Err((e, _)) => {
                        if e.code() == ErrorCode::TooLarge {
                            p.first_error = e;
                        }
                        give_up(p, &mut replay, &mut summary);
                    }
                }
            }
        }
    }
    out.flush()?;
    if let Some(p) = progress.as_mut() {
        p.finish();
    }
    Ok(summary)
}

/// Output written by a second thread in 1 MiB chunks, so that translating
/// the next lines overlaps with writing the last ones (writes are a third of
/// the work on large inputs). Memory stays bounded: at most four chunks wait.
struct PipeWriter {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    writer: Option<JoinHandle<io::Result<()>>>,
}

const CHUNK: usize = 1 << 20;

impl PipeWriter {
    fn new(mut sink: impl Write + Send + 'static) -> Self {
        let (tx, rx) = sync_channel::<Vec<u8>>(4);
        let writer = std::thread::spawn(move || {
            for chunk in rx {
                sink.write_all(&chunk)?;
            }
            sink.flush()
        });
        PipeWriter { buf: Vec::with_capacity(CHUNK + 4096), tx: Some(tx), writer: Some(writer) }
    }

    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK + 4096));
        match self.tx.as_ref().map(|tx| tx.send(chunk)) {
            Some(Ok(())) => Ok(()),
            // The writer stopped: report why.
            _ => Err(self.join().err().unwrap_or_else(|| io::ErrorKind::BrokenPipe.into())),
        }
    }

    fn join(&mut self) -> io::Result<()> {
        self.tx = None;
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(io::Error::other("the output thread panicked")),
            None => Ok(()),
        }
    }

    /// Writes what is left and waits for the writer.
    fn finish(&mut self) -> io::Result<()> {
        self.send()?;
        self.join()
    }
}

impl Write for PipeWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.write(data).map(|_| ())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Reports the first line of an unfinished event and reads the rest again on
/// their own, so that one cut-off line never swallows the events after it.
fn give_up(p: Pending, replay: &mut VecDeque<(u64, Vec<u8>)>, summary: &mut Summary) {
    reject(summary, p.start_line, &p.first_error.clone().shifted(line_offset(p.start_line)));
    for (i, line) in p.lines.into_iter().enumerate().skip(1).rev() {
        replay.push_front((p.start_line + i as u64, line));
    }
}

fn line_offset(line: u64) -> u32 {
    u32::try_from(line.saturating_sub(1)).unwrap_or(u32::MAX)
}

fn reject(summary: &mut Summary, line: u64, error: &Error) {
    summary.rejected += 1;
    eprintln!("line {line}: {error}");
}

fn trim_newline(buf: &mut Vec<u8>) {
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
}

/// A progress bar on stderr, shown only on a terminal and only once a run has
/// taken more than half a second.
struct Progress {
    total: Option<u64>,
    done: u64,
    started: Instant,
    last_draw: Option<Instant>,
}

impl Progress {
    fn new(total: Option<u64>) -> Self {
        Progress { total, done: 0, started: Instant::now(), last_draw: None }
    }

    fn advance(&mut self, bytes: u64) {
        self.done += bytes;
        let now = Instant::now();
        if now.duration_since(self.started) < Duration::from_millis(500) {
            return;
        }
        if self.last_draw.is_some_and(|t| now.duration_since(t) < Duration::from_millis(100)) {
            return;
        }
        self.last_draw = Some(now);
        self.draw();
    }

    fn draw(&self) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        let rate = self.done as f64 / secs / 1e6;
        let line = match self.total {
            Some(total) if total > 0 => {
                let frac = (self.done as f64 / total as f64).min(1.0);
                let filled = (frac * 30.0) as usize;
                format!(
                    "\r[{}{}] {:>3}% {:.1}/{:.1} MB {:.1} MB/s ",
                    "#".repeat(filled),
                    "-".repeat(30 - filled),
                    (frac * 100.0) as u32,
                    self.done as f64 / 1e6,
                    total as f64 / 1e6,
                    rate
                )
            }
            _ => format!("\r{:.1} MB read, {:.1} MB/s ", self.done as f64 / 1e6, rate),
        };
        let _ = io::stderr().write_all(line.as_bytes());
    }

    fn finish(&mut self) {
        if self.last_draw.is_some() {
            self.draw();
            let _ = io::stderr().write_all(b"\n");
        }
    }
}
