//! `drift-bridge`, run as a user runs it: `convert` end to end, the command
//! line's usage errors and exit codes, completions, and `send`, `apps` and
//! `deliveries` against a small fake bridge on loopback (what they send,
//! how they print the answers, how they retry). Against the real worker in
//! workerd: tests/worker/send.test.mjs, tests/delivery/apps-cli.test.mjs and
//! tests/delivery/deliveries-cli.test.mjs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_drift-bridge");

fn convert(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .arg("convert")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run drift-bridge");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> &str {
    std::str::from_utf8(bytes).unwrap()
}

const INACTIVE: &str = r#"{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}"#;

#[test]
fn drifts_example_prints_three_lines() {
    let out = convert(&[], INACTIVE.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        concat!(
            r#"{"id":"b624515312c8ce89","event":{"orgId":1,"type":"conversation_inactive","data":{"lastUpdated":1591813767000,"conversationId":123456789}}}"#,
            "\n",
            r#"{"id":"c0b44147a772c080","event":{"orgId":1,"type":"conversation_push","data":{"lastUpdated":1591813767000,"conversationId":123456789}}}"#,
            "\n",
            r#"{"id":"945d7df49ee99b50","event":{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}}"#,
            "\n",
        )
    );
    assert_eq!(text(&out.stderr), "drift-bridge: 1 event in, 3 events out, 0 rejected\n");
}

#[test]
fn bad_lines_are_reported_and_the_rest_converted() {
    let input = format!(
        "{INACTIVE}\n{{\"orgId\":1,\"type\":\"conversation_push\",\"data\":{{\"conversationId\":\"x\"}}}}\n\n{{not json}}\n{INACTIVE}\n?\n"
    );
    let mut bytes = input.into_bytes();
    // make the last line invalid UTF-8 for real
    let n = bytes.len();
    bytes[n - 2] = 0xff;
    let out = convert(&[], &bytes);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).lines().count(), 6, "both good events converted");
    let stderr = text(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines[0], "line 2: invalid_event at data.conversationId: expected an integer, found a string");
    assert!(
        lines[1].starts_with("line 4: invalid_json: expected a member name in double quotes, found 'n' (line 4, column 2)"),
        "{stderr}"
    );
    assert!(lines[2].starts_with("line 6: invalid_json: the input is not valid UTF-8 (line 6, column 1)"), "{stderr}");
    assert_eq!(lines[3], "drift-bridge: 5 events in, 6 events out, 3 rejected");
    assert_eq!(lines.len(), 4, "{stderr}");
}

#[test]
fn pretty_printed_events_span_lines() {
    let input = "{\n  \"orgId\": 1,\n  \"type\": \"conversation_push\",\n  \"data\": {\"conversationId\": 5, \"lastUpdated\": 10}\n}\n{\"orgId\":2,\"type\":\"x\"}\n";
    let out = convert(&["--legacy", "never"], input.as_bytes());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<&str> = text(&out.stdout).lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].ends_with(r#""event":{"orgId":1,"type":"conversation_push","data":{"conversationId":5,"lastUpdated":10}}}"#));
    assert!(lines[1].ends_with(r#""event":{"orgId":2,"type":"x"}}"#));
}

#[test]
fn a_cut_off_line_never_swallows_the_next_ones() {
    let input = format!("{{\"orgId\":1,\"type\":\n{INACTIVE}\n{{\"orgId\":2,\n");
    let out = convert(&[], input.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).lines().count(), 3, "line 2 is converted");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("line 1: invalid_json at type: unexpected end of input; expected a JSON value (line 1, column 19)"),
        "{stderr}"
    );
    assert!(stderr.contains("line 3: invalid_json: unexpected end of input"), "{stderr}");
}

#[test]
fn options_legacy_now_and_file() {
    let no_time = r#"{"orgId":1,"type":"conversation_push","data":{"conversationId":5}}"#;
    let out = convert(&["--legacy=timeline", "--now", "1591000000000"], no_time.as_bytes());
    let stdout = text(&out.stdout);
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    assert!(stdout.contains(r#""changedAt":1591000000000"#));
    let out = convert(&["--legacy", "timeline", "--now", "1700000000000"], no_time.as_bytes());
    assert_eq!(text(&out.stdout).lines().count(), 1);

    let dir = std::env::temp_dir().join(format!("drift-bridge-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("events.ndjson");
    std::fs::write(&file, format!("{INACTIVE}\n{INACTIVE}\n")).unwrap();
    let out = Command::new(BIN).args(["convert", "--legacy", "never"]).arg(&file).output().unwrap();
    assert!(out.status.success());
    assert_eq!(text(&out.stdout).lines().count(), 4);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn usage_errors_exit_2_and_say_why() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "unknown policy",
            &["convert", "--legacy", "sometimes"],
            "invalid value 'sometimes' for '--legacy <POLICY>'\n  [possible values: always, timeline, never]",
        ),
        (
            "bad --now",
            &["convert", "--now", "soon"],
            "invalid value 'soon' for '--now <MS>': expected milliseconds since the epoch, found \"soon\"",
        ),
        ("bad --max-bytes", &["convert", "--max-bytes", "lots"], "invalid value 'lots' for '--max-bytes <N>'"),
        ("unknown option", &["convert", "--frobnicate"], "unexpected argument '--frobnicate' found"),
        ("two files", &["convert", "a.ndjson", "b.ndjson"], "unexpected argument 'b.ndjson' found"),
        ("missing file", &["convert", "/nonexistent/events.ndjson"], "drift-bridge: cannot open /nonexistent/events.ndjson: "),
        ("unknown command", &["transmogrify"], "unrecognized subcommand 'transmogrify'"),
        ("no command", &[], "Usage: drift-bridge <COMMAND>"),
        ("unknown shell", &["completions", "cmd"], "invalid value 'cmd' for '<SHELL>'"),
        (
            "send without --bridge",
            &["send", "events.ndjson", "--token", "t"],
            "the following required arguments were not provided:\n  <--bridge <URL>|--to <URL>>",
        ),
        (
            "send with --bridge and --to",
            &["send", "-", "--token", "t", "--bridge", "https://b.example", "--to", "https://b.example/webhooks/drift"],
            "the argument '--bridge <URL>' cannot be used with '--to <URL>'",
        ),
        (
            "send --bridge with the webhook's path",
            &["send", "-", "--token", "t", "--bridge", "https://b.example/webhooks/drift"],
            "give the bridge's base URL, without /webhooks/drift: https://b.example",
        ),
        (
            "send without a token",
            &["send", "events.ndjson", "--bridge", "https://bridge.example"],
            "drift-bridge: send needs the verification token: set DRIFT_BRIDGE_VERIFICATION_TOKEN (or give --token)",
        ),
        ("send without a file", &["send", "--bridge", "https://bridge.example", "--token", "t"], "<FILE>"),
        (
            "plain http elsewhere",
            &["send", "-", "--to", "http://bridge.example/webhooks/drift", "--token", "t"],
            "must be https (plain http only for localhost)",
        ),
        ("a relative URL", &["send", "-", "--to", "/webhooks/drift", "--token", "t"], "is not an absolute URL"),
        (
            "no concurrency",
            &["send", "-", "--to", "https://b.example/", "--token", "t", "--concurrency", "0"],
            "invalid value '0' for '--concurrency <N>'",
        ),
        (
            "a zero rate",
            &["send", "-", "--to", "https://b.example/", "--token", "t", "--rate", "0"],
            "expected a positive number of requests per second",
        ),
        (
            "send: missing file",
            &["send", "/nonexistent/events.ndjson", "--bridge", "https://b.example/", "--token", "t"],
            "drift-bridge: cannot open /nonexistent/events.ndjson: ",
        ),
        ("apps without --bridge", &["apps", "list"], "drift-bridge apps: --bridge <URL> is required (the bridge's base URL"),
        (
            "apps: a bad name",
            &["apps", "rm", "a.b", "--bridge", "https://b.example"],
            "invalid value 'a.b' for '<NAME>': \"a.b\" must be 1 to 64 letters",
        ),
        (
            "apps: a bad idempotency key",
            &["apps", "rm", "crm", "--idempotency-key", "a b", "--bridge", "https://b.example"],
            "invalid value 'a b' for '--idempotency-key <KEY>': must be 1 to 64 letters, digits, '-' or '_'",
        ),
        (
            "apps: an unknown output",
            &["apps", "list", "--output", "yaml", "--bridge", "https://b.example"],
            "[possible values: json, table]",
        ),
        ("apps test has no key", &["apps", "test", "crm", "--idempotency-key", "k"], "unexpected argument '--idempotency-key' found"),
        (
            "deliveries: an unknown status",
            &["deliveries", "list", "--status", "failed,lost"],
            "invalid value 'lost' for '--status <STATUS>'\n  [possible values: pending, held, delivered, failed, gone, replayed]",
        ),
        (
            "deliveries: a time without a zone",
            &["deliveries", "list", "--since", "2026-12-05T13:09:35"],
            "has no time zone: end it with Z for UTC, or an offset like +01:00",
        ),
        ("deliveries: a bad event id", &["deliveries", "list", "--event", "b624"], "expected an event id: 16 hex digits"),
        ("deliveries: a limit over 200", &["deliveries", "list", "--limit", "201"], "201 is not in 1..=200"),
        ("deliveries: a bad delivery id", &["deliveries", "show", "../admin"], "expected a delivery id like 945d7df49ee99b50.crm"),
        ("deliveries without a token", &["deliveries", "list", "--bridge", "https://b.example"], "set DRIFT_BRIDGE_ADMIN_TOKEN"),
        (
            "apps add without --url or --listen",
            &["apps", "add", "crm", "--types", "*", "--bridge", "https://b.example"],
            "drift-bridge apps: add needs --url (where its deliveries go) or --listen (they wait for drift-bridge listen)",
        ),
        (
            "apps add with --url and --listen",
            &["apps", "add", "crm", "--url", "https://crm.example.com/drift", "--listen"],
            "the argument '--url <URL>' cannot be used with '--listen'",
        ),
        (
            "listen: a forward URL that is not http",
            &["listen", "crm", "--forward", "ws://localhost:3000/", "--bridge", "https://b.example"],
            "scheme \"ws\" is not supported: give an http or https URL, like http://localhost:3000/drift",
        ),
        (
            "listen without a token",
            &["listen", "crm", "--forward", "http://localhost:3000/", "--bridge", "https://b.example"],
            "set DRIFT_BRIDGE_ADMIN_TOKEN",
        ),
    ];
    for (name, args, says) in cases {
        let out = Command::new(BIN)
            .args(*args)
            .env_remove("DRIFT_VERIFICATION_TOKEN")
            .env_remove("DRIFT_BRIDGE_VERIFICATION_TOKEN")
            .env_remove("DRIFT_BRIDGE_ADMIN_TOKEN")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(says), "{name}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), "", "{name}: usage errors go to stderr");
    }
}

#[test]
fn help_and_version_go_to_stdout_and_exit_0() {
    let cases: &[(&[&str], &str)] = &[
        (&["--help"], "Usage: drift-bridge <COMMAND>"),
        (&["help"], "Commands:\n  convert"),
        (&["--help"], "Exit status, for every subcommand (the table per subcommand is in docs/cli.md):\n  0    done"),
        (&["--help"], "  130  send was interrupted"),
        (&["apps", "--help"], "Usage: drift-bridge apps [OPTIONS] <COMMAND>"),
        (&["apps", "add", "--help"], "--org-id <ORGID>"),
        (&["apps", "add", "--help"], "--idempotency-key <KEY>"),
        (&["apps", "--help"], "DRIFT_BRIDGE_ADMIN_TOKEN"),
        (&["apps", "--help"], "[default: 120]"),
        (&["apps", "list", "--help"], "[default: table when stdout is a terminal, json otherwise]"),
        (&["deliveries", "--help"], "Usage: drift-bridge deliveries [OPTIONS] <COMMAND>"),
        (&["deliveries", "list", "--help"], "--status <STATUS>"),
        (&["deliveries", "list", "--help"], "- table: Aligned columns, times in UTC: for people"),
        (&["deliveries", "show", "--help"], "Usage: drift-bridge deliveries show [OPTIONS] <ID>"),
        (&["apps", "add", "--help"], "--listen"),
        (&["listen", "--help"], "Usage: drift-bridge listen [OPTIONS] --forward <URL> <APP>"),
        (&["listen", "--help"], "- table: One line per delivery, in local time: for people"),
        (&["help"], "  listen       Take an app's deliveries on this machine"),
        (&["convert", "--help"], "Usage: drift-bridge convert [OPTIONS] [FILE]"),
        (&["help", "convert"], "--legacy <POLICY>"),
        (&["send", "--help"], "Usage: drift-bridge send [OPTIONS] <--bridge <URL>|--to <URL>> <FILE>"),
        (&["send", "--help"], "[default: $DRIFT_BRIDGE_VERIFICATION_TOKEN, or the older $DRIFT_VERIFICATION_TOKEN]"),
        (&["send", "--help"], "Deprecated, goes in the next release"),
        (&["--version"], "drift-bridge 0.1.0\n"),
        (&["-V"], "drift-bridge 0.1.0\n"),
    ];
    for (args, says) in cases {
        let out = Command::new(BIN).args(*args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains(says), "{args:?}: {}", text(&out.stdout));
        assert_eq!(text(&out.stderr), "", "{args:?}");
    }
    // The token in the environment is never shown, not even in help.
    let out = Command::new(BIN)
        .args(["send", "--help"])
        .env("DRIFT_VERIFICATION_TOKEN", "tok_secret_81aa")
        .env("DRIFT_BRIDGE_VERIFICATION_TOKEN", "tok_secret_81ab")
        .output()
        .unwrap();
    assert!(!text(&out.stdout).contains("tok_secret_81a"));
}

#[test]
fn completions_for_each_shell() {
    let cases: &[(&str, &str)] = &[
        ("bash", "_drift__bridge()"),
        ("zsh", "#compdef drift-bridge"),
        ("fish", "complete -c drift-bridge"),
        ("elvish", "drift-bridge"),
        ("powershell", "drift-bridge"),
    ];
    for (shell, says) in cases {
        let out = Command::new(BIN).args(["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains(says), "{shell}: {script}");
        for word in ["convert", "send", "legacy", "concurrency", "state", "deliveries", "bridge", "idempotency-key", "listen", "forward"] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
}

#[test]
fn send_refuses_a_state_written_for_another_input() {
    let dir = std::env::temp_dir().join(format!("drift-bridge-cli-state-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b, state) = (dir.join("a.ndjson"), dir.join("b.ndjson"), dir.join("send.state"));
    std::fs::write(&a, format!("{INACTIVE}\n")).unwrap();
    std::fs::write(&b, format!("{INACTIVE}\n{INACTIVE}\n")).unwrap();
    let send = |input: &std::path::Path, to: &str| {
        // A port nothing listens on: the state is checked before anything is sent.
        let flag = if to.ends_with("/webhooks/drift") { "--to" } else { "--bridge" };
        Command::new(BIN).args(["send", "--token", "t", "--retries", "0", flag, to, "--state"]).arg(&state).arg(input).output().unwrap()
    };
    let first = send(&a, "http://127.0.0.1:9/webhooks/drift");
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    assert!(text(&first.stderr).contains("line 1: failed after 1 try: "), "{}", text(&first.stderr));
    assert!(
        text(&first.stderr).starts_with("drift-bridge: --to is deprecated and goes in the next release; use --bridge http://127.0.0.1:9\n"),
        "{}",
        text(&first.stderr)
    );
    let written = std::fs::read_to_string(&state).unwrap();
    assert!(written.starts_with("drift-bridge-send-state 1\n"), "{written}");
    assert!(written.contains(&format!("\ninput {} ", INACTIVE.len() + 1)), "{written}");
    assert!(written.ends_with("\nto http://127.0.0.1:9/webhooks/drift\n"), "nothing accepted: {written}");

    let other_input = send(&b, "http://127.0.0.1:9/webhooks/drift");
    assert_eq!(other_input.status.code(), Some(2));
    assert!(text(&other_input.stderr).contains("it belongs to another input"), "{}", text(&other_input.stderr));
    // The same bridge by its base URL: the same webhook, so the same state.
    for same in ["http://127.0.0.1:9", "http://127.0.0.1:9/"] {
        let again = send(&a, same);
        assert_eq!(again.status.code(), Some(1), "{same}: {}", text(&again.stderr));
        assert!(text(&again.stderr).contains("line 1: failed after 1 try: "), "{same}: {}", text(&again.stderr));
        assert!(!text(&again.stderr).contains("deprecated"), "{same}");
    }
    let other_bridge = send(&a, "http://127.0.0.1:10");
    assert_eq!(other_bridge.status.code(), Some(2));
    assert!(
        text(&other_bridge.stderr).contains("it records what http://127.0.0.1:9/webhooks/drift accepted"),
        "{}",
        text(&other_bridge.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Streams about 60 MB through the CLI while watching its resident memory:
/// it must stay flat (well under the input's size).
#[test]
#[cfg(target_os = "linux")]
fn memory_stays_flat_on_large_input() {
    let mut child = Command::new(BIN)
        .args(["convert", "--now", "0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut lines = 0u64;
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break lines,
                Ok(n) => lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64,
            }
        }
    });
    let rss_kb = || -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| s.lines().find(|l| l.starts_with("VmRSS:")).map(|l| l.split_whitespace().nth(1).unwrap().parse().unwrap()))
            .unwrap_or(0)
    };
    let mut stdin = child.stdin.take().unwrap();
    let chunk: String = (0..1000)
        .map(|i| {
            format!(
                r#"{{"orgId":1,"type":"conversation_inactive","data":{{"conversationId":{i},"lastUpdated":1591813767000,"note":"{}"}}}}"#,
                "x".repeat(400)
            ) + "\n"
        })
        .collect();
    let mut peak = 0;
    let mut written = 0usize;
    for _ in 0..120 {
        stdin.write_all(chunk.as_bytes()).unwrap();
        written += chunk.len();
        peak = peak.max(rss_kb());
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert_eq!(reader.join().unwrap(), 120_000 * 3);
    assert!(written > 55_000_000);
    assert!(peak < 20_000, "resident memory peaked at {peak} KiB for {written} bytes of input");
}

// ---------------------------------------------------------------------------
// Against a fake bridge: a loopback listener answering what each test says.

/// A request the fake bridge got.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    /// Path and query.
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the fake bridge does with request n (from 0).
enum Reply {
    /// Status, extra headers, body.
    Answer(u16, Vec<(&'static str, &'static str)>, String),
    /// Reads the request and closes the connection without a word: an
    /// answer lost on the way back.
    Drop,
}

fn json(status: u16, body: &str) -> Reply {
    Reply::Answer(status, Vec::new(), body.to_owned())
}

struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    fn start(reply: impl Fn(usize, &Seen) -> Reply + Send + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        // Lives as long as the test process: one connection, one request.
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let Some(request) = read_request(&stream) else { continue };
                let n = {
                    let mut log = log.lock().unwrap();
                    log.push(request.clone());
                    log.len() - 1
                };
                if let Reply::Answer(status, headers, body) = reply(n, &request) {
                    let mut head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                        body.len()
                    );
                    for (name, value) in headers {
                        head.push_str(&format!("{name}: {value}\r\n"));
                    }
                    let _ = stream.write_all(format!("{head}\r\n{body}").as_bytes());
                }
            }
        });
        Fake { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut words = line.split_whitespace();
    let (method, target) = (words.next()?.to_owned(), words.next()?.to_owned());
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let Some((name, value)) = line.trim_end().split_once(':') else { break };
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    let length = headers.iter().find(|(n, _)| n == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Seen { method, target, headers, body: String::from_utf8(body).ok()? })
}

const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";

/// Runs the CLI with the admin token and nothing else from the environment.
fn cli(args: &[&str]) -> Output {
    Command::new(BIN).args(args).env_clear().env("DRIFT_BRIDGE_ADMIN_TOKEN", ADMIN).stdin(Stdio::null()).output().unwrap()
}

const ADDED: &str = r#"{"destination":{"name":"crm","url":"https://crm.example.com/drift","types":["conversation_push"],"signed":true},"secret":"whsec_Tn8N0d0sQ2c5ZWNyZXQ=","version":3}"#;

#[test]
fn a_change_whose_answer_is_lost_is_sent_again_with_the_same_key() {
    // The first try reaches the bridge, which makes the change; its answer
    // is lost. The retry, under the same key, gets the first answer again.
    let bridge = Fake::start(|n, _| match n {
        0 => Reply::Drop,
        _ => Reply::Answer(201, vec![("idempotent-replayed", "true")], ADDED.to_owned()),
    });
    let out =
        cli(&["apps", "add", "crm", "--url", "https://crm.example.com/drift", "--types", "conversation_push", "--bridge", &bridge.url]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(text(&out.stdout), format!("{ADDED}\n"), "the first answer, secret and all");
    let seen = bridge.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    let key = seen[0].header("idempotency-key").expect("a key on the first try");
    assert_eq!(key.len(), 32, "16 random bytes in hex: {key}");
    assert!(key.bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
    assert_eq!(seen[1].header("idempotency-key"), Some(key), "the retry carries the same key");
    assert_eq!(seen[0].body, seen[1].body, "and the same request");
    assert_eq!((seen[1].method.as_str(), seen[1].target.as_str()), ("POST", "/admin/destinations"));
    assert_eq!(seen[1].header("authorization"), Some(format!("Bearer {ADMIN}").as_str()));
    assert_eq!(seen[0].body, r#"{"name":"crm","url":"https://crm.example.com/drift","types":["conversation_push"]}"#);
    assert!(stderr.contains("; trying again in 0.5 s with the same Idempotency-Key (try 2 of 4)\n"), "{stderr}");
    assert!(
        stderr.contains(&format!("the bridge had already done this (Idempotency-Key {key}); this is its first answer, given again\n")),
        "{stderr}"
    );
    assert!(stderr.ends_with("crm added (version 3); its signing secret is in the answer on stdout, shown this once\n"), "{stderr}");
    assert!(!stderr.contains("whsec_"), "the secret only on stdout");

    // Each run makes a fresh key.
    let again = Fake::start(|_, _| json(200, r#"{"deleted":"crm","version":4}"#));
    assert_eq!(cli(&["apps", "rm", "crm", "--bridge", &again.url]).status.code(), Some(0));
    assert_eq!(cli(&["apps", "rm", "crm", "--bridge", &again.url]).status.code(), Some(0));
    let keys: Vec<String> = again.seen().iter().map(|s| s.header("idempotency-key").unwrap().to_owned()).collect();
    assert_ne!(keys[0], keys[1]);
}

#[test]
fn a_change_that_never_gets_an_answer_says_how_to_check_and_names_its_key() {
    let bridge = Fake::start(|_, _| Reply::Drop);
    let out = cli(&["apps", "rotate", "crm", "--overlap", "60", "--bridge", &bridge.url]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(text(&out.stdout), "");
    let seen = bridge.seen();
    assert_eq!(seen.len(), 4, "a few tries: {seen:?}");
    let key = seen[0].header("idempotency-key").unwrap().to_owned();
    assert!(seen.iter().all(|s| s.header("idempotency-key") == Some(key.as_str()) && s.body == r#"{"overlapSeconds":60}"#));
    assert!(stderr.contains(&format!("drift-bridge apps: no answer from {} after 4 tries in ", bridge.url)), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "drift-bridge apps: the change may have been made; to check: drift-bridge apps list --bridge {}\n",
            bridge.url
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "run the same command again with --idempotency-key {key} within 24 hours:\n  drift-bridge apps rotate crm --overlap 60 --bridge {} --idempotency-key {key}\n",
            bridge.url
        )),
        "{stderr}"
    );
    assert!(stderr.contains("to get its answer (the secret included)"), "{stderr}");

    // Run again with the key, as it says: the bridge sees that very key.
    let later = Fake::start(|_, _| {
        Reply::Answer(
            200,
            vec![("idempotent-replayed", "true")],
            r#"{"secret":"whsec_bmV3","previousSecretExpiresAt":1795467390000}"#.into(),
        )
    });
    let out = cli(&["apps", "rotate", "crm", "--overlap", "60", "--bridge", &later.url, "--idempotency-key", &key]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(later.seen()[0].header("idempotency-key"), Some(key.as_str()));
    assert!(text(&out.stdout).contains("whsec_bmV3"));
    assert!(text(&out.stderr).contains("the old one signs too until 2026-11-23T20:56:30Z (1795467390000 ms since the epoch)"));
}

#[test]
fn what_the_bridge_says_decides_the_exit_status() {
    let reused = r#"{"error":{"code":"idempotency_key_reused","message":"this key went with another request","path":""}}"#;
    let cases: &[(&str, Reply, &[&str], i32, &str)] = &[
        ("a key reused for another change", json(422, reused), &["apps", "rm", "crm", "--idempotency-key", "k1"], 1, "refused (422 idempotency_key_reused): this key went with another request\ndrift-bridge apps: that key went with another change in the last 24 hours; leave --idempotency-key out for a fresh one"),
        ("a bad field", json(400, r#"{"error":{"code":"invalid_destination","message":"must be https","path":"url"}}"#), &["apps", "edit", "crm", "--url", "http://x"], 1, "drift-bridge apps: refused (400 invalid_destination at url): must be https"),
        ("a wrong token", json(401, r#"{"error":{"code":"unauthorized","message":"missing or invalid admin token","path":""}}"#), &["apps", "list"], 2, "the bridge refused the admin token (401: missing or invalid admin token); check DRIFT_BRIDGE_ADMIN_TOKEN"),
        ("not JSON", Reply::Answer(200, vec![("content-type", "text/html")], "<html>hello</html>".into()), &["deliveries", "list"], 2, "GET http://127.0.0.1:"),
        ("a redirect", Reply::Answer(301, vec![("location", "https://elsewhere.example/")], String::new()), &["deliveries", "list"], 2, "a redirect to https://elsewhere.example/: give --bridge the bridge's final base URL"),
        ("the bridge failing", json(500, r#"{"error":{"code":"internal","message":"boom","path":""}}"#), &["deliveries", "show", "945d7df49ee99b50.crm"], 2, "refused (500 internal): boom"),
        ("a replay of what is not a dead letter", json(409, r#"{"error":{"code":"conflict","message":"945d7df49ee99b50.crm was already replayed as 945d7df49ee99b50.crm.r1","path":""}}"#), &["deliveries", "replay", "945d7df49ee99b50.crm"], 1, "refused (409 conflict): 945d7df49ee99b50.crm was already replayed"),
    ];
    for (name, reply, args, code, says) in cases {
        let reply = match reply {
            Reply::Answer(s, h, b) => Reply::Answer(*s, h.clone(), b.clone()),
            Reply::Drop => Reply::Drop,
        };
        let once = Mutex::new(Some(reply));
        let bridge = Fake::start(move |_, _| once.lock().unwrap().take().unwrap_or_else(|| json(500, "{}")));
        let mut args = args.to_vec();
        args.extend(["--bridge", &bridge.url]);
        let out = cli(&args);
        assert_eq!(out.status.code(), Some(*code), "{name}: {}", text(&out.stderr));
        assert!(text(&out.stderr).contains(says), "{name}: {}", text(&out.stderr));
        assert_eq!(bridge.seen().len(), 1, "{name}: tried once");
    }
}

#[test]
fn a_bridge_not_listening_changes_nothing_and_is_said_so() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}");
    let out = cli(&["apps", "rm", "crm", "--bridge", &url]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&format!("drift-bridge apps: cannot reach {url} after 4 tries in ")), "{stderr}");
    assert!(stderr.trim_end().ends_with("; nothing was changed"), "{stderr}");
    assert!(!stderr.contains("idempotency-key"), "nothing to recover: {stderr}");
}

#[test]
fn reads_are_tried_again_after_502_to_504() {
    let bridge = Fake::start(|n, _| match n {
        0 => json(503, r#"{"error":{"code":"unavailable","message":"try later","path":""}}"#),
        _ => json(200, r#"{"destinations":[]}"#),
    });
    let out = cli(&["apps", "list", "--bridge", &bridge.url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).starts_with("drift-bridge apps: 503 unavailable: try later; trying again in 0.5 s (try 2 of 4)\n"));
    assert_eq!(bridge.seen()[0].header("idempotency-key"), None, "a read needs no key");
    // Retry-After is honoured; a change keeps its key through 502s.
    let bridge = Fake::start(|_, _| Reply::Answer(502, vec![("retry-after", "1")], "<html>bad gateway</html>".into()));
    let out = cli(&["apps", "rm", "crm", "--bridge", &bridge.url]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(
            "drift-bridge apps: 502 <html>bad gateway</html>; trying again in 1.0 s with the same Idempotency-Key (try 2 of 4)\n"
        ),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("drift-bridge apps: no answer but failures from {} after 4 tries in ", bridge.url)), "{stderr}");
    assert!(stderr.contains("the change may have been made"), "{stderr}");
    let seen = bridge.seen();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|s| s.header("idempotency-key") == seen[0].header("idempotency-key")));
    // A replay is sent once: a second would be refused as already replayed.
    let bridge = Fake::start(|_, _| Reply::Drop);
    let out = cli(&["deliveries", "replay", "945d7df49ee99b50.crm", "--bridge", &bridge.url]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(bridge.seen().len(), 1);
    assert!(
        text(&out.stderr).contains(&format!(
            "drift-bridge deliveries: it may have been done; to check: drift-bridge deliveries show 945d7df49ee99b50.crm --bridge {}",
            bridge.url
        )),
        "{}",
        text(&out.stderr)
    );
}

const APPS: &str = r#"{"destinations":[{"name":"legacy-crm","source":"declared","state":"active","url":"https://legacy.example.com/drift"},{"name":"crm","source":"runtime","state":"tripped","url":"https://crm.example.com/drift"},{"name":"old","state":"active","configured":false}]}"#;

#[test]
fn apps_add_listen_makes_an_app_without_a_url() {
    let added =
        r#"{"destination":{"name":"laptop","listen":true,"types":["*"],"signed":true},"secret":"whsec_Tn8N0d0sQ2c5ZWNyZXQ=","version":5}"#;
    let bridge = Fake::start(move |_, _| json(201, added));
    let out = cli(&["apps", "add", "laptop", "--listen", "--types", "*", "--bridge", &bridge.url]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(bridge.seen()[0].body, r#"{"name":"laptop","types":["*"],"listen":true}"#);
    assert_eq!(text(&out.stdout), format!("{added}\n"));
    assert!(
        stderr.ends_with(&format!(
            "laptop takes a listener: drift-bridge listen laptop --forward http://localhost:PORT/PATH --bridge {}\n",
            bridge.url
        )),
        "{stderr}"
    );
    // Listed without a URL, as the listener's.
    let list = r#"{"destinations":[{"name":"laptop","source":"runtime","state":"active","listen":true,"types":["*"]}]}"#;
    let bridge = Fake::start(move |_, _| json(200, list));
    let out = cli(&["apps", "list", "--output", "table", "--bridge", &bridge.url]);
    assert_eq!(text(&out.stdout), "NAME    SOURCE   STATE   URL\nlaptop  runtime  active  (drift-bridge listen)\n");
}

#[test]
fn apps_list_prints_json_or_a_table() {
    let bridge = Fake::start(|_, _| json(200, APPS));
    let out = cli(&["apps", "list", "--bridge", &bridge.url]);
    assert_eq!(text(&out.stdout), format!("{APPS}\n"), "json when stdout is not a terminal");
    assert_eq!(text(&out.stderr), "3 apps\n");
    let out = cli(&["apps", "list", "--output", "table", "--bridge", &bridge.url]);
    assert_eq!(
        text(&out.stdout),
        concat!(
            "NAME        SOURCE    STATE    URL\n",
            "legacy-crm  declared  active   https://legacy.example.com/drift\n",
            "crm         runtime   tripped  https://crm.example.com/drift\n",
            "old         removed   active   (no longer configured)\n",
        )
    );
    assert_eq!(text(&out.stderr), "3 apps\n");
    assert_eq!(bridge.seen()[1].target, "/admin/destinations");
}

const PAGE_1: &str = r#"{"deliveries":[{"id":"945d7df49ee99b50.legacy-crm","status":"delivered","state":"delivered","destination":"legacy-crm","eventId":"945d7df49ee99b50","type":"conversation_status_updated","scope":"conversation:1:123456789","attempts":1,"at":1795463790000,"acceptedAt":1795463790012,"updatedAt":1795463790412}],"next":"legacy-crm:41.push-app:-"}"#;
const PAGE_2: &str = r#"{"deliveries":[{"id":"c0b44147a772c080.push-app","status":"failed","state":"failed","destination":"push-app","eventId":"c0b44147a772c080","type":"conversation_push","scope":"conversation:1:123456789","attempts":12,"at":1795463700000,"acceptedAt":1795463700020,"updatedAt":1795467300000,"lastError":"the app answered 500: upstream down","reason":"gave up after 12 attempts; last: the app answered 500: upstream down"}],"next":null}"#;

#[test]
fn deliveries_list_passes_the_filters_and_prints_a_table() {
    let bridge = Fake::start(|n, _| json(200, if n % 2 == 0 { PAGE_1 } else { PAGE_2 }));
    let out = cli(&[
        "deliveries",
        "list",
        "--destination",
        "legacy-crm",
        "--status",
        "failed",
        "--status",
        "gone,delivered",
        "--conversation",
        "123456789",
        "--event",
        "945D7DF49EE99B50",
        "--since",
        "2026-11-23T00:00:00Z",
        "--until",
        "1795500000000",
        "--limit",
        "1",
        "--output",
        "table",
        "--bridge",
        &bridge.url,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        bridge.seen()[0].target,
        "/admin/deliveries?destination=legacy-crm&status=failed%2Cgone%2Cdelivered&conversation=123456789&event=945d7df49ee99b50&since=1795392000000&until=1795500000000&limit=1"
    );
    assert_eq!(
        text(&out.stdout),
        concat!(
            "TIME (UTC)            STATUS     DESTINATION  TYPE                         CONVERSATION  ATTEMPTS  ID\n",
            "2026-11-23T19:56:30Z  delivered  legacy-crm   conversation_status_updated  123456789            1  945d7df49ee99b50.legacy-crm\n",
        )
    );
    assert_eq!(text(&out.stderr), "1 delivery; more with --cursor legacy-crm:41.push-app:-, or --all\n");

    // The next page, by its cursor; json as it came.
    let out = cli(&["deliveries", "list", "--cursor", "legacy-crm:41.push-app:-", "--bridge", &bridge.url]);
    assert_eq!(bridge.seen()[1].target, "/admin/deliveries?cursor=legacy-crm%3A41.push-app%3A-");
    assert_eq!(text(&out.stdout), format!("{PAGE_2}\n"));
    assert_eq!(text(&out.stderr), "1 delivery\n");
}

#[test]
fn deliveries_list_all_follows_next_to_the_end() {
    let bridge = Fake::start(|n, _| json(200, if n == 0 { PAGE_1 } else { PAGE_2 }));
    let out = cli(&["deliveries", "list", "--all", "--status", "failed,delivered", "--bridge", &bridge.url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let seen = bridge.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].target, "/admin/deliveries?status=failed%2Cdelivered&limit=200");
    assert_eq!(seen[1].target, "/admin/deliveries?status=failed%2Cdelivered&limit=200&cursor=legacy-crm%3A41.push-app%3A-");
    let one = |page: &str| page[page.find('[').unwrap() + 1..page.rfind(']').unwrap()].to_owned();
    assert_eq!(text(&out.stdout), format!("{{\"deliveries\":[{},{}],\"next\":null}}\n", one(PAGE_1), one(PAGE_2)));
    assert_eq!(text(&out.stderr), "2 deliveries\n");

    // A page that fails half-way: what was read, and where to carry on.
    let bridge = Fake::start(|n, _| {
        if n == 0 {
            json(200, PAGE_1)
        } else {
            json(400, r#"{"error":{"code":"invalid_parameter","message":"not a cursor","path":"cursor"}}"#)
        }
    });
    let out = cli(&["deliveries", "list", "--all", "--output", "table", "--bridge", &bridge.url]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout).lines().count(), 2, "the header and the first page's delivery");
    assert!(text(&out.stderr).contains("refused (400 invalid_parameter at cursor): not a cursor\n1 delivery, then it stopped; carry on with --cursor legacy-crm:41.push-app:-\n"), "{}", text(&out.stderr));
}

const ONE: &str = r#"{"delivery":{"id":"c0b44147a772c080.push-app","status":"failed","state":"failed","destination":"push-app","eventId":"c0b44147a772c080","type":"conversation_push","scope":"conversation:1:123456789","attempts":2,"at":1795463700000,"acceptedAt":1795463700020,"updatedAt":1795463760000,"lastError":"no answer within 10000 ms","reason":"gave up after 2 attempts; last: no answer within 10000 ms","configured":false,"body":{"orgId":1,"type":"conversation_push","data":{"conversationId":123456789},"token":"[redacted]"},"attemptLog":[{"attempt":1,"at":1795463700100,"code":500,"error":"the app answered 500: upstream down","latencyMs":41,"probe":false},{"attempt":2,"at":1795463760000,"code":null,"error":"no answer within 10000 ms","latencyMs":10000,"probe":true}]}}"#;

#[test]
fn deliveries_show_prints_the_delivery_with_its_attempts() {
    let bridge = Fake::start(|_, _| json(200, ONE));
    let out = cli(&["deliveries", "show", "c0b44147a772c080.push-app", "--bridge", &bridge.url]);
    assert_eq!(text(&out.stdout), format!("{ONE}\n"));
    let out = cli(&["deliveries", "show", "c0b44147a772c080.push-app", "--output", "table", "--bridge", &bridge.url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(bridge.seen()[1].target, "/admin/deliveries/c0b44147a772c080.push-app");
    assert_eq!(
        text(&out.stdout),
        concat!(
            "id            c0b44147a772c080.push-app\n",
            "status        failed: gave up after 2 attempts; last: no answer within 10000 ms\n",
            "destination   push-app (no longer configured)\n",
            "event         c0b44147a772c080 (conversation_push)\n",
            "conversation  123456789 (scope conversation:1:123456789)\n",
            "received      2026-11-23T19:55:00Z\n",
            "accepted      2026-11-23T19:55:00Z\n",
            "updated       2026-11-23T19:56:00Z\n",
            "last error    no answer within 10000 ms\n",
            "attempts      2\n",
            "\n",
            "  ATTEMPT  TIME (UTC)            CODE   LATENCY  ERROR\n",
            "        1  2026-11-23T19:55:00Z   500     41 ms  the app answered 500: upstream down\n",
            "2 (probe)  2026-11-23T19:56:00Z     -  10000 ms  no answer within 10000 ms\n",
            "\n",
            "body (Drift's token redacted)\n",
            "{\n",
            "  \"orgId\": 1,\n",
            "  \"type\": \"conversation_push\",\n",
            "  \"data\": {\n",
            "    \"conversationId\": 123456789\n",
            "  },\n",
            "  \"token\": \"[redacted]\"\n",
            "}\n",
        )
    );
}

#[test]
fn deliveries_replay_prints_the_answer_and_the_new_id() {
    let bridge = Fake::start(|_, _| json(202, r#"{"replayed":"c0b44147a772c080.push-app","as":"c0b44147a772c080.push-app.r1"}"#));
    let out = cli(&["deliveries", "replay", "c0b44147a772c080.push-app", "--bridge", &bridge.url]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let seen = bridge.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].target.as_str()), ("POST", "/admin/deliveries/c0b44147a772c080.push-app/replay"));
    assert_eq!(text(&out.stdout), "{\"replayed\":\"c0b44147a772c080.push-app\",\"as\":\"c0b44147a772c080.push-app.r1\"}\n");
    assert_eq!(
        text(&out.stderr),
        format!(
            "c0b44147a772c080.push-app replayed as c0b44147a772c080.push-app.r1; follow it with: drift-bridge deliveries show c0b44147a772c080.push-app.r1 --bridge {}\n",
            bridge.url
        )
    );
}

#[test]
fn send_takes_the_bridge_and_a_token_from_the_environment() {
    let bridge = Fake::start(|n, _| match n {
        0 => json(200, r#"{"received":"b624515312c8ce89","events":[]}"#),
        _ => json(401, r#"{"error":{"code":"unauthorized","message":"missing or invalid verification token","path":""}}"#),
    });
    let send = |env: &[(&str, &str)]| {
        let mut command = Command::new(BIN);
        command
            .args(["send", "-", "--bridge", &bridge.url])
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().unwrap();
        child.stdin.take().unwrap().write_all(format!("{INACTIVE}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = send(&[("DRIFT_BRIDGE_VERIFICATION_TOKEN", "tok-new"), ("DRIFT_VERIFICATION_TOKEN", "tok-old")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let seen = bridge.seen();
    assert_eq!((seen[0].method.as_str(), seen[0].target.as_str()), ("POST", "/webhooks/drift"));
    assert_eq!(seen[0].header("x-verification-token"), Some("tok-new"), "the new name first");
    assert_eq!(seen[0].body, INACTIVE);
    assert!(
        text(&out.stderr).starts_with(&format!("drift-bridge: sent 1 line to {}/webhooks/drift in ", bridge.url)),
        "{}",
        text(&out.stderr)
    );
    // The older name still works; a wrong token names where it came from.
    let out = send(&[("DRIFT_VERIFICATION_TOKEN", "tok-old")]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(bridge.seen()[1].header("x-verification-token"), Some("tok-old"));
    assert!(
        text(&out.stderr).contains(
            "drift-bridge: the bridge refused the token (401 unauthorized: missing or invalid verification token): check DRIFT_VERIFICATION_TOKEN\n"
        ),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("tok-old"));
}
