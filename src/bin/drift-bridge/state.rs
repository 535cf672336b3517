//! `send --state FILE`: which lines of an input the bridge has accepted, so
//! that running the same command again carries on where the last run stopped.
//!
//! The file is plain text, appended to one line at a time as answers come in
//! (each write reaches the OS at once, so a killed run loses nothing it was
//! told), and rewritten compactly, as ranges, when a run starts:
//!
//! ```text
//! drift-bridge-send-state 1
//! # Lines of the input below that the bridge accepted; `drift-bridge send` skips them.
//! input 1843 5f0c…e1 events.ndjson
//! to https://drift-bridge.example.workers.dev/webhooks/drift
//! 1-120
//! 122
//! ```
//!
//! `input` names the input by its size (`-` for stdin) and the SHA-256 of its
//! first 64 KiB, then its path as given (for people only): line numbers are
//! only worth keeping for the very same input and bridge, so a state written
//! for another input or another bridge is refused rather than trusted. `to`
//! is the webhook's URL, however it was given (`--bridge <base>` or the older
//! `--to <base>/webhooks/drift`), compared as URLs are: scheme and host in
//! any case, a default port or a trailing `/` or not.
//! Rejected and failed lines are not recorded: a new run sends them again
//! and reports them again.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

const MAGIC: &str = "drift-bridge-send-state 1";
/// How much of the input's start identifies it.
pub const HEAD_BYTES: usize = 64 * 1024;

/// A set of line numbers, kept as ranges: a run accepts lines nearly in
/// order, so a million accepted lines are a handful of ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Lines {
    /// start → end, both inclusive; never overlapping nor touching.
    ranges: BTreeMap<u64, u64>,
    len: u64,
}

impl Lines {
    pub fn contains(&self, line: u64) -> bool {
        self.ranges.range(..=line).next_back().is_some_and(|(_, &end)| line <= end)
    }

    pub fn insert(&mut self, line: u64) {
        self.insert_range(line, line);
    }

    fn insert_range(&mut self, mut start: u64, mut end: u64) {
        // Merge with every range that overlaps or touches [start, end].
        while let Some((&s, &e)) = self.ranges.range(..=end.saturating_add(1)).next_back() {
            if e.saturating_add(1) < start {
                break;
            }
            self.ranges.remove(&s);
            self.len -= e - s + 1;
            start = start.min(s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
        self.len += end - start + 1;
    }

    /// How many lines.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ranges.iter().map(|(&s, &e)| (s, e))
    }

    /// `2, 7-9, 14`, with at most `max` ranges and `…` after them.
    pub fn describe(&self, max: usize) -> String {
        let mut out = String::new();
        for (i, (start, end)) in self.ranges().enumerate() {
            if i == max {
                out.push_str(", …");
                break;
            }
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&range_text(start, end));
        }
        out
    }
}

fn range_text(start: u64, end: u64) -> String {
    if start == end {
        start.to_string()
    } else {
        format!("{start}-{end}")
    }
}

/// What a state file says its lines belong to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The input's size in bytes; `None` for stdin.
    pub size: Option<u64>,
    /// SHA-256 of the first HEAD_BYTES, in hex.
    pub head: String,
    /// The input as named on the command line (not compared).
    pub path: String,
    /// The bridge's webhook URL.
    pub to: String,
}

impl Identity {
    pub fn new(size: Option<u64>, head: &[u8], path: &str, to: &str) -> Self {
        let digest = Sha256::digest(&head[..head.len().min(HEAD_BYTES)]);
        let head = digest.iter().map(|b| format!("{b:02x}")).collect();
        // One line each in the file, whatever the names hold.
        let one_line = |s: &str| s.replace(['\n', '\r'], " ");
        Identity { size, head, path: one_line(path), to: one_line(to) }
    }

    fn size_text(&self) -> String {
        self.size.map_or_else(|| "-".to_owned(), |n| n.to_string())
    }
}

/// An open state file, appended to as lines are accepted.
pub struct State {
    path: PathBuf,
    file: File,
    /// Accepted in earlier runs.
    pub earlier: Lines,
}

impl State {
    /// Opens (or creates) the state at `path` for `identity`. Fails with a
    /// message for people when the file belongs to another input or bridge,
    /// or cannot be read or written.
    pub fn open(path: &Path, identity: &Identity) -> Result<State, String> {
        let shown = path.display();
        // Read as a stream: a state of millions of lines is a few ranges.
        let earlier = match File::open(path) {
            Ok(f) => parse(BufReader::new(f), identity).map_err(|e| format!("--state {shown}: {e}"))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Lines::default(),
            Err(e) => return Err(format!("cannot read --state {shown}: {e}")),
        };
        // Rewrite compactly (and drop a line cut short by a crash), through a
        // temporary file so that the old state survives a failure here.
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let write = || -> io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(render(identity, &earlier).as_bytes())?;
            f.sync_all()?;
            fs::rename(&tmp, path)
        };
        write().map_err(|e| format!("cannot write --state {shown}: {e}"))?;
        let file = OpenOptions::new().append(true).open(path).map_err(|e| format!("cannot write --state {shown}: {e}"))?;
        Ok(State { path: path.to_owned(), file, earlier })
    }

    /// Records `line` as accepted: written to the OS before returning.
    pub fn record(&mut self, line: u64) -> Result<(), String> {
        // One write per line, unbuffered: a run killed right after still
        // has it.
        self.file.write_all(format!("{line}\n").as_bytes()).map_err(|e| format!("cannot write --state {}: {e}", self.path.display()))
    }

    /// Flushes to disk.
    pub fn close(self) -> Result<(), String> {
        self.file.sync_all().map_err(|e| format!("cannot write --state {}: {e}", self.path.display()))
    }
}

fn render(identity: &Identity, lines: &Lines) -> String {
    let mut out = format!(
        "{MAGIC}\n# Lines of the input below that the bridge accepted; `drift-bridge send` skips them.\ninput {} {} {}\nto {}\n",
        identity.size_text(),
        identity.head,
        identity.path,
        identity.to
    );
    for (start, end) in lines.ranges() {
        out.push_str(&range_text(start, end));
        out.push('\n');
    }
    out
}

/// Reads a state file, checking it belongs to `identity`.
fn parse(mut reader: impl BufRead, identity: &Identity) -> Result<Lines, String> {
    let mut line = String::new();
    let mut read_line = |line: &mut String| -> Result<bool, String> {
        line.clear();
        // A state is text; anything else is not one of ours.
        reader.read_line(line).map(|n| n > 0).map_err(|e| format!("cannot read it: {e}"))
    };
    if !read_line(&mut line)? || line.trim_end() != MAGIC {
        return Err(format!("not a drift-bridge send state (it does not start with {MAGIC:?}); name another file"));
    }
    let mut accepted = Lines::default();
    let (mut input, mut to) = (None, None);
    let mut number = 1;
    while read_line(&mut line)? {
        number += 1;
        // A last line with no newline was cut short by a crash: "12" may
        // have been meant as "123". It is dropped; that line is sent again.
        let Some(line) = line.strip_suffix('\n') else {
            break;
        };
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("input ") {
            let mut parts = rest.splitn(3, ' ');
            input =
                Some((parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned(), parts.next().unwrap_or("").to_owned()));
            continue;
        }
        if let Some(rest) = line.strip_prefix("to ") {
            to = Some(rest.to_owned());
            continue;
        }
        let parsed = match line.split_once('-') {
            Some((a, b)) => a.parse::<u64>().ok().zip(b.parse::<u64>().ok()).filter(|(a, b)| 1 <= *a && a <= b),
            None => line.parse::<u64>().ok().filter(|&n| n >= 1).map(|n| (n, n)),
        };
        match parsed {
            Some((start, end)) => accepted.insert_range(start, end),
            None => return Err(format!("line {number}: expected a line number or a range like 3-17, found {line:?}")),
        }
    }
    let Some((size, head, path)) = input else {
        return Err("no `input` line: not written by drift-bridge send".into());
    };
    if size != identity.size_text() || head != identity.head {
        let was = if size == "-" { "stdin".to_owned() } else { format!("{size} bytes") };
        let now = identity.size.map_or_else(|| "stdin".to_owned(), |n| format!("{n} bytes"));
        return Err(format!(
            "it belongs to another input ({path}, {was}; this one is {now}{}): \
             its line numbers would skip the wrong lines. Name a new --state file, or delete this one to start over",
            if size == identity.size_text() { ", with other first bytes" } else { "" }
        ));
    }
    match to {
        Some(to) if same_url(&to, &identity.to) => {}
        Some(to) => return Err(format!("it records what {to} accepted, not {}. Name a new --state file for this bridge", identity.to)),
        None => return Err("no `to` line: not written by drift-bridge send".into()),
    }
    Ok(accepted)
}

/// Whether two URLs name the same place: compared with the scheme and host
/// in lower case, without a default port and without a trailing `/`.
fn same_url(a: &str, b: &str) -> bool {
    fn key(url: &str) -> String {
        let Ok(uri) = url.parse::<ureq::http::Uri>() else { return url.to_owned() };
        let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
        let host = uri.host().unwrap_or("").to_ascii_lowercase();
        let port = match (scheme.as_str(), uri.port_u16()) {
            ("https", Some(443)) | ("http", Some(80)) | (_, None) => String::new(),
            (_, Some(p)) => format!(":{p}"),
        };
        let path = uri.path_and_query().map_or("", |p| p.as_str()).trim_end_matches('/');
        format!("{scheme}://{host}{port}{path}")
    }
    a == b || key(a) == key(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(items: &[u64]) -> Lines {
        let mut set = Lines::default();
        for &n in items {
            set.insert(n);
        }
        set
    }

    #[test]
    fn ranges_merge_whatever_the_order() {
        let cases: &[(&str, &[u64], &str, u64)] = &[
            ("in order", &[1, 2, 3, 4], "1-4", 4),
            ("reversed", &[4, 3, 2, 1], "1-4", 4),
            ("a gap", &[1, 2, 4, 5], "1-2, 4-5", 4),
            ("a gap filled", &[1, 2, 4, 5, 3], "1-5", 5),
            ("repeats count once", &[7, 7, 8, 7], "7-8", 2),
            ("scattered", &[10, 1, 5, 2, 11], "1-2, 5, 10-11", 5),
        ];
        for (name, items, described, len) in cases {
            let set = lines(items);
            assert_eq!(set.describe(10), *described, "{name}");
            assert_eq!(set.len(), *len, "{name}");
            for n in 0..15 {
                assert_eq!(set.contains(n), items.contains(&n), "{name}: {n}");
            }
        }
        assert_eq!(lines(&[1, 3, 5, 7]).describe(2), "1, 3, …");
    }

    fn identity() -> Identity {
        Identity::new(Some(1843), b"{\"orgId\":1}\n", "events.ndjson", "http://127.0.0.1:8787/webhooks/drift")
    }

    #[test]
    fn a_state_reads_back_what_was_written() {
        let id = identity();
        let set = lines(&[1, 2, 3, 9, 12, 13]);
        let text = render(&id, &set);
        assert!(text.starts_with("drift-bridge-send-state 1\n#"), "{text}");
        assert!(text.ends_with("to http://127.0.0.1:8787/webhooks/drift\n1-3\n9\n12-13\n"), "{text}");
        assert_eq!(parse(text.as_bytes(), &id), Ok(set.clone()));
        // Lines appended one at a time, and one cut short by a crash.
        let appended = format!("{text}20\n21\n2");
        assert_eq!(parse(appended.as_bytes(), &id).map(|s| s.describe(10)), Ok("1-3, 9, 12-13, 20-21".into()));
    }

    #[test]
    fn a_state_for_something_else_is_refused() {
        let id = identity();
        let text = render(&id, &lines(&[1]));
        let cases: &[(&str, Identity, &str)] = &[
            ("another size", Identity { size: Some(99), ..identity() }, "another input (events.ndjson, 1843 bytes; this one is 99 bytes)"),
            (
                "other first bytes",
                Identity { head: "00".into(), ..identity() },
                "1843 bytes; this one is 1843 bytes, with other first bytes",
            ),
            ("stdin", Identity { size: None, ..identity() }, "this one is stdin"),
            (
                "another bridge",
                Identity { to: "https://elsewhere/webhooks/drift".into(), ..identity() },
                "records what http://127.0.0.1:8787/webhooks/drift accepted",
            ),
        ];
        for (name, other, says) in cases {
            let error = parse(text.as_bytes(), other).unwrap_err();
            assert!(error.contains(says), "{name}: {error}");
        }
        // The same bridge, written another way (--bridge http://127.0.0.1:8787/).
        for same in
            ["http://127.0.0.1:8787/webhooks/drift/", "HTTP://127.0.0.1:8787/webhooks/drift", "http://127.0.0.1:8787/webhooks/drift"]
        {
            assert!(parse(text.as_bytes(), &Identity { to: same.into(), ..identity() }).is_ok(), "{same}");
        }
        assert!(same_url("https://B.example:443/webhooks/drift", "https://b.example/webhooks/drift"));
        assert!(!same_url("https://b.example:8443/webhooks/drift", "https://b.example/webhooks/drift"));
        assert!(!same_url("https://b.example/webhooks/Drift", "https://b.example/webhooks/drift"), "paths are case-sensitive");
        // Moving the input elsewhere is fine: the path is for people.
        assert!(parse(text.as_bytes(), &Identity { path: "/elsewhere/events.ndjson".into(), ..identity() }).is_ok());
        for (name, text, says) in [
            ("not a state", "hello\n", "not a drift-bridge send state"),
            ("a bad line", &format!("{text}x\n"), "expected a line number or a range like 3-17, found \"x\""),
            ("a backwards range", &format!("{text}9-3\n"), "found \"9-3\""),
            ("line zero", &format!("{text}0\n"), "found \"0\""),
        ] {
            let error = parse(text.as_bytes(), &id).unwrap_err();
            assert!(error.contains(says), "{name}: {error}");
        }
    }
}
