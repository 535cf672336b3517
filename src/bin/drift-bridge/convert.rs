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
use std::io::{self, BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use drift_bridge::json::{self, Failure, Limits};
use drift_bridge::{translate_value, Error, ErrorCode, LegacyPolicy, Options};

use crate::progress::Progress;

pub const ABOUT: &str = "\
Translate Drift events from FILE (or stdin) into the events the bridge delivers.

Reads one JSON event, or newline-delimited events (an event may span lines, as
pretty-printed JSON does), and writes one line per outbound event on stdout:
  {\"id\":\"<id>\",\"event\":<outbound event>}

Rejected events are reported on stderr as `line N: <code> at <path>: <message>`
and never stop the others; a summary follows at the end. On a terminal, a
progress bar shows once a run takes more than half a second.";

#[derive(clap::Args)]
pub struct Args {
    /// Which inactive, manual-push and push events also yield a legacy
    /// conversation_status_updated close
    #[arg(long, value_name = "POLICY", value_enum, default_value_t = Legacy::Always)]
    legacy: Legacy,
    /// The receive time, in ms since the epoch, for events with no
    /// lastUpdated/changedAt [default: the current time]
    #[arg(long, value_name = "MS", allow_negative_numbers = true, value_parser = parse_now)]
    now: Option<i64>,
    /// The largest accepted event, in bytes
    #[arg(long, value_name = "N", default_value_t = Limits::default().max_bytes)]
    max_bytes: usize,
    /// Newline-delimited events, or one JSON event; - or nothing for stdin
    #[arg(value_name = "FILE")]
    file: Option<PathBuf>,
}

/// `--legacy`, as clap lists and completes it.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Legacy {
    /// Every one of them: legacy apps keep working today
    Always,
    /// Only 2020-06-01..2020-10-01, as Drift did
    Timeline,
    /// None
    Never,
}

impl From<Legacy> for LegacyPolicy {
    fn from(legacy: Legacy) -> Self {
        match legacy {
            Legacy::Always => LegacyPolicy::Always,
            Legacy::Timeline => LegacyPolicy::Timeline,
            Legacy::Never => LegacyPolicy::Never,
        }
    }
}

fn parse_now(text: &str) -> Result<i64, String> {
    text.parse().map_err(|_| format!("expected milliseconds since the epoch, found {text:?}"))
}

pub fn run(args: Args) -> ExitCode {
    let received_at_ms = args
        .now
        .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)));
    let limits = Limits { max_bytes: args.max_bytes, ..Limits::default() };
    let options = Options::new(received_at_ms).legacy(args.legacy.into()).limits(limits);
    let (input, size): (Box<dyn Read>, Option<u64>) = match args.file.as_deref() {
        None => (Box::new(io::stdin().lock()), None),
        Some(path) if path.as_os_str() == "-" => (Box::new(io::stdin().lock()), None),
        Some(path) => match File::open(path) {
            Ok(f) => {
                let size = f.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
                (Box::new(f), size)
            }
            Err(e) => {
                eprintln!("drift-bridge: cannot open {}: {e}", path.display());
                return ExitCode::from(crate::EXIT_USAGE);
            }
        },
    };
    let progress = Progress::on_terminal(size);
    let mut out = PipeWriter::new(io::stdout());
    let outcome = convert(input, &mut out, &options, progress).and_then(|summary| out.finish().map(|()| summary));
    match outcome {
        Ok(summary) => {
            eprintln!("drift-bridge: {}", summary.line());
            if summary.rejected == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        // The reader went away (`| head`): not an error, and no summary of
        // a run that did not finish.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("drift-bridge: {e}");
            ExitCode::from(crate::EXIT_USAGE)
        }
    }
}

/// What a run did so far, and the bar that shows it.
#[derive(Default)]
struct Summary {
    /// Events translated (each yields one or more outbound events).
    converted: u64,
    rejected: u64,
    /// Outbound events written.
    written: u64,
    progress: Option<Progress>,
}

impl Summary {
    /// `3 events in, 5 events out, 1 rejected`.
    fn line(&self) -> String {
        let events = |n: u64| if n == 1 { "event" } else { "events" };
        let read = self.converted + self.rejected;
        format!("{read} {} in, {} {} out, {} rejected", events(read), self.written, events(self.written), self.rejected)
    }
}

/// Input read between two looks at the progress bar: keeps the bar's cost
/// out of the per-line path.
const PROGRESS_STEP: u64 = 1 << 16;

/// An event spread over several lines, waiting for its end.
struct Pending {
    start_line: u64,
    lines: Vec<Vec<u8>>,
    /// What the first line alone was found to be: reported if no later line
    /// completes the event.
    first_error: Error,
}

fn convert<W: Write>(input: impl Read, mut out: W, options: &Options, progress: Option<Progress>) -> io::Result<Summary> {
    let mut reader = BufReader::with_capacity(1 << 16, input);
    let mut summary = Summary { progress, ..Summary::default() };
    let (mut bytes_read, mut next_look) = (0u64, PROGRESS_STEP);
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
                summary.written += events.len() as u64;
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
            bytes_read += read as u64;
            if bytes_read >= next_look {
                next_look = bytes_read + PROGRESS_STEP;
                let events = summary.converted + summary.rejected;
                if let Some(p) = summary.progress.as_mut() {
                    p.update(bytes_read, events, String::new);
                }
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
    if let Some(p) = summary.progress.take() {
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
    crate::progress::eprint_line(summary.progress.as_ref(), format_args!("line {line}: {error}"));
}

fn trim_newline(buf: &mut Vec<u8>) {
    if buf.last() == Some(&b'\n') {
        buf.pop();
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
    }
}
