//! `drift-bridge`, run as a user runs it: `convert` end to end, the command
//! line's usage errors and exit codes, completions. (`send` against the
//! worker is in tests/worker/send.test.mjs.)

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};

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
    assert!(lines[1].starts_with("line 4: invalid_json: expected a member name in double quotes, found 'n' (line 4, column 2)"), "{stderr}");
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
    assert!(stderr.contains("line 1: invalid_json at type: unexpected end of input; expected a JSON value (line 1, column 19)"), "{stderr}");
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
            "send without --to",
            &["send", "events.ndjson", "--token", "t"],
            "the following required arguments were not provided:\n  --to <URL>",
        ),
        ("send without a token", &["send", "events.ndjson", "--to", "https://bridge.example/webhooks/drift"], "--token <TOKEN>"),
        ("send without a file", &["send", "--to", "https://bridge.example/webhooks/drift", "--token", "t"], "<FILE>"),
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
            &["send", "/nonexistent/events.ndjson", "--to", "https://b.example/", "--token", "t"],
            "drift-bridge: cannot open /nonexistent/events.ndjson: ",
        ),
    ];
    for (name, args, says) in cases {
        let out = Command::new(BIN).args(*args).env_remove("DRIFT_VERIFICATION_TOKEN").stdin(Stdio::null()).output().unwrap();
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
        (&["--help"], "Exit status: 0 when every event went through (apps: when the bridge did it);"),
        (&["apps", "--help"], "Usage: drift-bridge apps [OPTIONS] <COMMAND>"),
        (&["apps", "add", "--help"], "--org-id <ORGID>"),
        (&["apps", "--help"], "DRIFT_BRIDGE_ADMIN_TOKEN"),
        (&["convert", "--help"], "Usage: drift-bridge convert [OPTIONS] [FILE]"),
        (&["help", "convert"], "--legacy <POLICY>"),
        (&["send", "--help"], "Usage: drift-bridge send [OPTIONS] --to <URL> --token <TOKEN> <FILE>"),
        (&["send", "--help"], "[env: DRIFT_VERIFICATION_TOKEN]"),
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
    let out = Command::new(BIN).args(["send", "--help"]).env("DRIFT_VERIFICATION_TOKEN", "tok_secret_81aa").output().unwrap();
    assert!(!text(&out.stdout).contains("tok_secret_81aa"));
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
        for word in ["convert", "send", "legacy", "concurrency", "state"] {
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
        Command::new(BIN).args(["send", "--token", "t", "--retries", "0", "--to", to, "--state"]).arg(&state).arg(input).output().unwrap()
    };
    let first = send(&a, "http://127.0.0.1:9/webhooks/drift");
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stderr));
    assert!(text(&first.stderr).contains("line 1: failed after 1 try: "), "{}", text(&first.stderr));
    let written = std::fs::read_to_string(&state).unwrap();
    assert!(written.starts_with("drift-bridge-send-state 1\n"), "{written}");
    assert!(written.contains(&format!("\ninput {} ", INACTIVE.len() + 1)), "{written}");
    assert!(written.ends_with("\nto http://127.0.0.1:9/webhooks/drift\n"), "nothing accepted: {written}");

    let other_input = send(&b, "http://127.0.0.1:9/webhooks/drift");
    assert_eq!(other_input.status.code(), Some(2));
    assert!(text(&other_input.stderr).contains("it belongs to another input"), "{}", text(&other_input.stderr));
    let other_bridge = send(&a, "http://127.0.0.1:10/webhooks/drift");
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
