//! `drift-bridge listen`, run as a developer runs it, against a fake bridge
//! (a tungstenite server on loopback speaking the listener's protocol) and a
//! fake local app (a bare TcpListener that keeps each request's bytes):
//! what is forwarded, what is answered, what is printed, and when it
//! connects again or stops. Only generous timeouts, no timing asserts.

#![cfg(not(target_arch = "wasm32"))]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use drift_bridge::json::{self, Limits, Value, Writer};
use tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::CloseFrame;
use tungstenite::{Message, WebSocket};

const BIN: &str = env!("CARGO_BIN_EXE_drift-bridge");
const ADMIN: &str = "admin-token-for-tests-0123456789abcdef";
/// Longer than any test should take: a hang fails rather than blocks.
const PATIENCE: Duration = Duration::from_secs(60);

type Ws = WebSocket<TcpStream>;

// ---------------------------------------------------------------------------
// The fake bridge.

/// What the fake bridge saw.
#[derive(Default)]
struct Seen {
    /// Each upgrade request: its path and Authorization header.
    upgrades: Vec<(String, Option<String>)>,
    /// Each close frame a listener sent: (connection, code).
    closes: Vec<(usize, u16)>,
}

struct Bridge {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

/// A bridge that refuses every upgrade with `status` and `body`, or (None)
/// takes it and runs `script` on connection n (from 0), each in a thread.
fn bridge(refuse: Option<(u16, &'static str)>, script: impl Fn(usize, &mut Ws) + Send + Sync + 'static) -> Bridge {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let seen = Arc::new(Mutex::new(Seen::default()));
    let (log, script) = (Arc::clone(&seen), Arc::new(script));
    thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            let log = Arc::clone(&log);
            let script = Arc::clone(&script);
            thread::spawn(move || {
                // tungstenite's callback type, large error and all.
                #[allow(clippy::result_large_err)]
                let callback = |request: &Request, response: Response| -> Result<Response, ErrorResponse> {
                    let auth = request.headers().get("authorization").map(|v| v.to_str().unwrap().to_owned());
                    log.lock().unwrap().upgrades.push((request.uri().path().to_owned(), auth));
                    match refuse {
                        None => Ok(response),
                        Some((status, body)) => Err(tungstenite::http::Response::builder()
                            .status(status)
                            .header("content-type", "application/json")
                            .body(Some(body.to_owned()))
                            .unwrap()),
                    }
                };
                let Ok(mut ws) = tungstenite::accept_hdr(stream, callback) else { return };
                script(n, &mut ws);
                // Whatever the script left: note a close the listener sends.
                loop {
                    match ws.read() {
                        Ok(Message::Close(frame)) => {
                            let code = frame.map_or(1005, |f| u16::from(f.code));
                            log.lock().unwrap().closes.push((n, code));
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            });
        }
    });
    Bridge { url, seen }
}

fn hello(ws: &mut Ws, waiting: u64) {
    send(ws, &Writer::object().str("kind", "hello").str("destination", "crm").int("waiting", waiting as i64).finish());
}

fn send(ws: &mut Ws, text: &str) {
    ws.send(Message::text(text)).unwrap();
}

/// A delivery frame.
struct Frame<'a> {
    ticket: &'a str,
    event: &'a str,
    conversation: Option<&'a str>,
    attempt: i64,
    body: &'a str,
    timeout_ms: i64,
}

impl Frame<'_> {
    fn headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("content-type", "application/json".to_owned()),
            ("webhook-id", self.event.to_owned()),
            ("webhook-timestamp", "1796476175".to_owned()),
            ("webhook-signature", format!("v1,c2lnbmF0dXJl{}=", &self.event[..4])),
            ("user-agent", "drift-bridge/0.1.0 (+https://github.com/drift-bridge)".to_owned()),
        ]
    }

    fn json(&self) -> String {
        let headers: Vec<String> = self.headers().iter().map(|(n, v)| json::string_array(&[(*n).to_owned(), v.clone()])).collect();
        Writer::object()
            .str("kind", "delivery")
            .str("ticket", self.ticket)
            .str("id", &format!("{}.crm", self.event))
            .str("type", "conversation_push")
            .str_or_null("conversation", self.conversation)
            .int("attempt", self.attempt)
            .raw("headers", &format!("[{}]", headers.join(",")))
            .str("body", self.body)
            .int("timeoutMs", self.timeout_ms)
            .finish()
    }
}

/// Reads frames until `n` answers came (answering pings); the answers.
fn answers(ws: &mut Ws, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    while out.len() < n {
        match ws.read().expect("the listener's answers") {
            Message::Text(text) if text.as_str() == "ping" => send(ws, "pong"),
            Message::Text(text) => {
                assert_eq!(field(text.as_str(), "kind"), "answer", "{text}");
                out.push(text.as_str().to_owned());
            }
            _ => {}
        }
    }
    out
}

/// Ends the connection as the bridge does on purpose: bye, then `code`.
fn bye(ws: &mut Ws, code: u16, reason: Option<&str>) {
    if let Some(reason) = reason {
        send(ws, &Writer::object().str("kind", "bye").str("reason", reason).finish());
    }
    let _ = ws.close(Some(CloseFrame { code: CloseCode::from(code), reason: "".into() }));
}

/// A member of a JSON object: a string's text, anything else as JSON.
fn field(text: &str, key: &str) -> String {
    let value = json::parse(text, &Limits { max_bytes: usize::MAX, max_depth: 8 }).unwrap_or_else(|e| panic!("{text}: {e}"));
    match value.get(key) {
        Some(Value::String(s)) => s.text().into_owned(),
        Some(other) => other.to_json(),
        None => "<missing>".to_owned(),
    }
}

/// The answer for `ticket`.
fn answer_for<'a>(answers: &'a [String], ticket: &str) -> &'a str {
    answers.iter().find(|a| field(a, "ticket") == ticket).unwrap_or_else(|| panic!("no answer for {ticket}: {answers:?}"))
}

// ---------------------------------------------------------------------------
// The fake local app.

struct App {
    url: String,
    /// Each request, as its bytes came.
    requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

/// An app at `/drift/hook?x=1` that answers each request by its webhook-id:
/// the raw response, or None to say nothing for 5 s.
fn app(reply: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> App {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/drift/hook?x=1", listener.local_addr().unwrap().port());
    let requests = Arc::new(Mutex::new(Vec::new()));
    let (log, reply) = (Arc::clone(&requests), Arc::new(reply));
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let (log, reply) = (Arc::clone(&log), Arc::clone(&reply));
            thread::spawn(move || {
                stream.set_read_timeout(Some(PATIENCE)).unwrap();
                let Some(raw) = read_request(&mut stream) else { return };
                let text = String::from_utf8_lossy(&raw).into_owned();
                let id = text.lines().find_map(|l| l.strip_prefix("webhook-id: ")).map(|v| v.trim().to_owned()).unwrap_or_default();
                log.lock().unwrap().push(raw);
                match reply(&id) {
                    Some(response) => {
                        let _ = stream.write_all(response.as_bytes());
                    }
                    None => thread::sleep(Duration::from_secs(5)),
                }
            });
        }
    });
    App { url, requests }
}

fn read_request(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).to_ascii_lowercase();
    let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length: ")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    stream.read_exact(&mut body).ok()?;
    raw.extend(body);
    Some(raw)
}

fn http(status: &str, headers: &str, body: &str) -> String {
    format!("HTTP/1.1 {status}\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}", body.len())
}

// ---------------------------------------------------------------------------
// The listener.

fn listen(bridge: &Bridge, forward: &str, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(["listen", "crm", "--forward", forward, "--bridge", &bridge.url])
        .args(extra)
        .env_clear()
        .env("DRIFT_BRIDGE_ADMIN_TOKEN", ADMIN)
        .env("TZ", "UTC")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Its exit code, stdout and stderr, within PATIENCE.
fn finish(mut child: Child) -> (Option<i32>, String, String) {
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).unwrap();
        s
    });
    let err = thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("drift-bridge listen did not stop: {}", err.join().unwrap());
        }
        thread::sleep(Duration::from_millis(20));
    };
    (status.code(), out.join().unwrap(), err.join().unwrap())
}

const BODY: &str = "{\"orgId\":1,\"type\":\"conversation_push\",\"data\":{\"conversationId\":123456789,\"lastUpdated\":1591813767000},\"note\":\"é \u{2028} \\\"q\\\" 1.10\"}";

#[test]
fn deliveries_are_forwarded_byte_for_byte_and_answered() {
    let long = format!("upstream down {}", "x".repeat(5000));
    let app = {
        let long = long.clone();
        app(move |id| match id {
            "aaaaaaaaaaaaaaa1" => Some(http("200 OK", "", "ok")),
            "aaaaaaaaaaaaaaa2" => Some(http("500 Internal Server Error", "content-type: text/plain\r\n", &long)),
            "aaaaaaaaaaaaaaa3" => Some(http("302 Found", "location: /elsewhere\r\n", "")),
            _ => None,
        })
    };
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let frames = [
        Frame { ticket: "t-1", event: "aaaaaaaaaaaaaaa1", conversation: Some("123456789"), attempt: 1, body: BODY, timeout_ms: 10_000 },
        Frame { ticket: "t-2", event: "aaaaaaaaaaaaaaa2", conversation: Some("123456789"), attempt: 2, body: "{}", timeout_ms: 10_000 },
        Frame { ticket: "t-3", event: "aaaaaaaaaaaaaaa3", conversation: None, attempt: 1, body: "{}", timeout_ms: 10_000 },
        // The app never answers this one.
        Frame { ticket: "t-4", event: "aaaaaaaaaaaaaaa4", conversation: Some("5"), attempt: 1, body: "{}", timeout_ms: 500 },
    ];
    let sent: Vec<String> = frames.iter().map(Frame::json).collect();
    let bridge = bridge(None, move |_, ws| {
        hello(ws, 2);
        for frame in &sent {
            send(ws, frame);
        }
        let got = answers(ws, 4);
        tx.lock().unwrap().send(got).unwrap();
        bye(ws, 4000, Some("another listener took over (from 127.0.0.2)"));
    });
    let (code, stdout, stderr) = finish(listen(&bridge, &app.url, &["--output", "table"]));
    assert_eq!(code, Some(1), "{stderr}");
    let got = rx.recv_timeout(PATIENCE).unwrap();

    // What the bridge saw: the upgrade, then one answer per ticket.
    let seen = bridge.seen.lock().unwrap();
    assert_eq!(seen.upgrades, [("/admin/destinations/crm/listen".to_owned(), Some(format!("Bearer {ADMIN}")))]);
    let a1 = answer_for(&got, "t-1");
    assert_eq!(
        (field(a1, "status"), field(a1, "location"), field(a1, "excerpt"), field(a1, "error")),
        ("200".into(), "null".into(), String::new(), "null".into())
    );
    assert!(field(a1, "latencyMs").parse::<u64>().is_ok(), "{a1}");
    let a2 = answer_for(&got, "t-2");
    assert_eq!(field(a2, "status"), "500");
    assert_eq!(field(a2, "excerpt"), long[..4096], "4 KiB of a failure's answer");
    let a3 = answer_for(&got, "t-3");
    assert_eq!((field(a3, "status"), field(a3, "location")), ("302".into(), "/elsewhere".into()), "{a3}");
    let a4 = answer_for(&got, "t-4");
    assert_eq!((field(a4, "status"), field(a4, "error")), ("null".into(), "no answer within 500 ms".into()), "{a4}");

    // What the app saw: each delivery's headers and body, exactly; the 302
    // was not followed.
    let requests = app.requests.lock().unwrap();
    assert_eq!(requests.len(), 4, "one request each, no redirect followed");
    let first = requests.iter().find(|r| String::from_utf8_lossy(r).contains("webhook-id: aaaaaaaaaaaaaaa1")).unwrap();
    let text = std::str::from_utf8(first).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert_eq!(body, BODY, "the body byte for byte");
    let mut lines = head.split("\r\n");
    assert_eq!(lines.next(), Some("POST /drift/hook?x=1 HTTP/1.1"));
    let mut headers: Vec<&str> = lines.collect();
    headers.sort_unstable();
    let port = app.url.split(':').nth(2).unwrap().split('/').next().unwrap();
    let mut want = vec![
        format!("content-length: {}", BODY.len()),
        "content-type: application/json".to_owned(),
        format!("host: 127.0.0.1:{port}"),
        "user-agent: drift-bridge/0.1.0 (+https://github.com/drift-bridge)".to_owned(),
        "webhook-id: aaaaaaaaaaaaaaa1".to_owned(),
        "webhook-signature: v1,c2lnbmF0dXJlaaaa=".to_owned(),
        "webhook-timestamp: 1796476175".to_owned(),
    ];
    want.sort_unstable();
    assert_eq!(headers, want, "the delivery's headers and no others");

    // What the developer sees.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    let line = |says: &str| lines.iter().any(|l| l.contains(says));
    assert!(line("  conversation_push            conv 123456789   → 200  "), "{stdout}");
    assert!(line("  conversation_push            conv 123456789   attempt 2  → 500: upstream down xxx"), "{stdout}");
    assert!(line("  conversation_push            conv -           → 302 to /elsewhere (not followed)  "), "{stdout}");
    assert!(line("  conversation_push            conv 5           → no answer within 500 ms  "), "{stdout}");
    assert!(lines.iter().all(|l| l.as_bytes()[2] == b':' && l.as_bytes()[5] == b':' && l.ends_with(" ms")), "{stdout}");
    assert!(
        stderr.starts_with(&format!(
            "drift-bridge listen: connected to {} as crm, forwarding to {} (Ctrl-C to stop)\n\
             drift-bridge listen: 2 deliveries waited for a listener; they come first\n",
            bridge.url, app.url
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains("drift-bridge listen: the bridge ended this listener: another listener took over (from 127.0.0.2)\n"),
        "{stderr}"
    );
    assert!(stderr.contains("drift-bridge listen: 4 deliveries in "), "{stderr}");
    for row in ["  2xx           1\n", "  3xx           1\n", "  5xx           1\n", "  no answer     1\n", "  latency    median "] {
        assert!(stderr.contains(row), "{row:?} in {stderr}");
    }
    assert!(!stderr.contains("reconnecting"), "4000 ends it: {stderr}");
    assert_eq!(seen.upgrades.len(), 1, "no second connection");
}

#[test]
fn a_refused_forward_is_no_answer_and_json_lines_are_for_scripts() {
    // A port nothing listens on.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let forward = format!("http://127.0.0.1:{}/drift", dead.local_addr().unwrap().port());
    drop(dead);
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let frame = Frame { ticket: "t-9", event: "bbbbbbbbbbbbbbb1", conversation: None, attempt: 3, body: BODY, timeout_ms: 5000 }.json();
    let bridge = bridge(None, move |_, ws| {
        hello(ws, 0);
        send(ws, &frame);
        tx.lock().unwrap().send(answers(ws, 1)).unwrap();
        // 4001 without a bye: the listener says why itself.
        bye(ws, 4001, None);
    });
    let (code, stdout, stderr) = finish(listen(&bridge, &forward, &["--output", "json"]));
    assert_eq!(code, Some(1), "{stderr}");
    let got = rx.recv_timeout(PATIENCE).unwrap();
    let a = &got[0];
    assert_eq!(field(a, "ticket"), "t-9");
    assert_eq!(field(a, "status"), "null", "{a}");
    assert!(field(a, "error").contains("connection refused"), "{a}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let l = lines[0];
    assert!(field(l, "at").parse::<i64>().unwrap() > 1_700_000_000_000, "{l}");
    assert_eq!(
        ["id", "type", "conversation", "attempt", "status", "location"].map(|k| field(l, k)),
        ["bbbbbbbbbbbbbbb1.crm", "conversation_push", "null", "3", "null", "null"]
    );
    assert!(field(l, "error").contains("connection refused"), "{l}");
    assert!(field(l, "latencyMs").parse::<u64>().is_ok(), "{l}");
    assert!(stderr.contains("drift-bridge listen: the bridge ended this listener: the app was deleted\n"), "{stderr}");
    assert!(stderr.contains(&format!("drift-bridge listen: nothing takes connections at {forward}: is the app running?")), "{stderr}");
    assert!(stderr.contains("  no answer     1\n"), "{stderr}");
}

#[test]
fn a_listener_the_bridge_refuses_says_why_and_is_not_tried_again() {
    let cases: &[(u16, &str, i32, &str)] = &[
        (
            409,
            r#"{"error":{"code":"not_a_listener","message":"crm sends to https://crm.example.com/drift; only an app created with \"listen\": true takes a listener","path":""}}"#,
            1,
            "drift-bridge listen: refused (409 not_a_listener): crm sends to https://crm.example.com/drift; only an app created with \"listen\": true takes a listener\n",
        ),
        (
            404,
            r#"{"error":{"code":"not_found","message":"no app named crm","path":""}}"#,
            1,
            "drift-bridge listen: refused (404 not_found): no app named crm\n",
        ),
        (
            401,
            r#"{"error":{"code":"unauthorized","message":"missing or wrong token","path":""}}"#,
            2,
            "drift-bridge listen: the bridge refused the admin token (401: unauthorized: missing or wrong token); check DRIFT_BRIDGE_ADMIN_TOKEN\n",
        ),
    ];
    for (status, body, exit, says) in cases {
        let bridge = bridge(Some((*status, body)), |_, _| {});
        let (code, stdout, stderr) = finish(listen(&bridge, "http://localhost:3000/drift", &[]));
        assert_eq!(code, Some(*exit), "{status}: {stderr}");
        assert!(stderr.contains(says), "{status}: {stderr}");
        assert_eq!(stdout, "");
        assert!(!stderr.contains("trying again") && !stderr.contains("deliveries in"), "{status}: {stderr}");
        assert_eq!(bridge.seen.lock().unwrap().upgrades.len(), 1, "{status}: tried once");
    }
}

#[test]
fn a_dropped_connection_is_made_again() {
    let app = app(|_| Some(http("204 No Content", "", "")));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let frame =
        Frame { ticket: "t-after", event: "ccccccccccccccc1", conversation: Some("7"), attempt: 1, body: "{}", timeout_ms: 5000 }.json();
    let bridge = bridge(None, move |n, ws| {
        hello(ws, 0);
        if n == 0 {
            // Gone without a close frame, as a crashed bridge or a cut network.
            let _ = ws.get_mut().shutdown(std::net::Shutdown::Both);
            return;
        }
        send(ws, &frame);
        tx.lock().unwrap().send(answers(ws, 1)).unwrap();
        bye(ws, 4000, Some("another listener took over"));
    });
    let (code, stdout, stderr) = finish(listen(&bridge, &app.url, &["--output", "json"]));
    assert_eq!(code, Some(1), "{stderr}");
    let got = rx.recv_timeout(PATIENCE).unwrap();
    assert_eq!((field(&got[0], "ticket"), field(&got[0], "status")), ("t-after".into(), "204".into()));
    assert_eq!(bridge.seen.lock().unwrap().upgrades.len(), 2, "{stderr}");
    assert!(stderr.contains("drift-bridge listen: connection lost ("), "{stderr}");
    assert!(stderr.contains("); reconnecting in 1 s\n"), "{stderr}");
    assert!(stderr.contains(&format!("drift-bridge listen: connected again to {} as crm", bridge.url)), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

#[test]
fn ctrl_c_closes_cleanly_and_prints_a_summary() {
    let app = app(|_| Some(http("200 OK", "", "")));
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let frame =
        Frame { ticket: "t-c", event: "ddddddddddddddd1", conversation: Some("8"), attempt: 1, body: "{}", timeout_ms: 5000 }.json();
    let bridge = bridge(None, move |_, ws| {
        hello(ws, 0);
        send(ws, &frame);
        tx.lock().unwrap().send(answers(ws, 1)).unwrap();
    });
    let child = listen(&bridge, &app.url, &["--output", "table"]);
    rx.recv_timeout(PATIENCE).expect("the delivery's answer");
    let killed = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let (code, stdout, stderr) = finish(child);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stderr.contains("drift-bridge listen: stopped; connection closed\n"), "{stderr}");
    assert!(stderr.contains("drift-bridge listen: 1 delivery in "), "{stderr}");
    assert!(stderr.contains("  2xx           1\n"), "{stderr}");
    // The bridge got a close frame with 1000 (its thread may note it just
    // after the listener exits).
    let deadline = Instant::now() + PATIENCE;
    while bridge.seen.lock().unwrap().closes.is_empty() && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(bridge.seen.lock().unwrap().closes, [(0, 1000)]);
}

#[test]
fn usage_errors_come_before_connecting() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["listen", "crm", "--forward", "ftp://localhost/drift", "--bridge", "http://127.0.0.1:9"],
            "invalid value 'ftp://localhost/drift' for '--forward <URL>': scheme \"ftp\" is not supported: give an http or https URL, like http://localhost:3000/drift",
        ),
        (
            &["listen", "crm", "--forward", "localhost:3000", "--bridge", "http://127.0.0.1:9"],
            "give an http or https URL, like http://localhost:3000/drift",
        ),
        (&["listen", "crm", "--bridge", "http://127.0.0.1:9"], "the following required arguments were not provided:\n  --forward <URL>"),
        (&["listen", "a.b", "--forward", "http://localhost:3000/"], "invalid value 'a.b' for '<APP>'"),
        (&["listen", "crm", "--forward", "http://localhost:3000/"], "drift-bridge listen: --bridge <URL> is required"),
        (&["listen", "crm", "--forward", "http://localhost:3000/", "--bridge", "http://bridge.example"], "must be https (plain http only for localhost)"),
    ];
    for (args, says) in cases {
        let out = Command::new(BIN).args(*args).env_clear().env("DRIFT_BRIDGE_ADMIN_TOKEN", ADMIN).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // No token: said before anything is tried.
    let out = Command::new(BIN)
        .args(["listen", "crm", "--forward", "http://localhost:3000/", "--bridge", "http://127.0.0.1:9"])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drift-bridge listen: set DRIFT_BRIDGE_ADMIN_TOKEN to the bridge's ADMIN_TOKEN"));
    // A bridge that is not there, on the first try: not tried forever.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}", dead.local_addr().unwrap().port());
    drop(dead);
    let out = Command::new(BIN)
        .args(["listen", "crm", "--forward", "http://localhost:3000/", "--bridge", &url])
        .env_clear()
        .env("DRIFT_BRIDGE_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("drift-bridge listen: cannot reach the bridge at {url}: cannot connect to 127.0.0.1:")),
        "{stderr}"
    );
}
