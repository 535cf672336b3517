//! The load generator against a server that holds one answer in 200 for
//! 20 ms: each hold is counted as a stall, and the percentiles are the
//! requests' own. A generator that "corrected" its figures for coordinated
//! omission (as wrk does) would count each hold as about as many samples as
//! requests could have been answered meanwhile, and report a p99 of
//! milliseconds here.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const HOLD: Duration = Duration::from_millis(20);
const EVERY: u64 = 200;

/// Serves one keep-alive connection: reads each request's head and body,
/// holds every EVERY-th answer (counted in `held`), answers 200.
fn serve(stream: TcpStream, requests: &AtomicU64, held: &AtomicU64) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut line = String::new();
    loop {
        let mut length = 0usize;
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert!(String::from_utf8(body).unwrap().contains("conversation_inactive"), "the request carries the event");
        if requests.fetch_add(1, Ordering::SeqCst) % EVERY == EVERY - 1 {
            std::thread::sleep(HOLD);
            held.fetch_add(1, Ordering::SeqCst);
        }
        if writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").is_err() {
            return;
        }
    }
}

/// A number field of the generator's one-line JSON output.
fn field(json: &str, name: &str) -> f64 {
    let start = json.find(&format!("\"{name}\":")).unwrap_or_else(|| panic!("no {name} in {json}")) + name.len() + 3;
    let end = json[start..].find([',', '}']).unwrap() + start;
    json[start..end].parse().unwrap()
}

#[test]
fn counts_each_hold_as_a_stall_and_keeps_the_requests_own_percentiles() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/webhooks/drift", listener.local_addr().unwrap());
    let (requests, held) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    {
        let (requests, held) = (requests.clone(), held.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let (stream, requests, held) = (stream.unwrap(), requests.clone(), held.clone());
                std::thread::spawn(move || serve(stream, &requests, &held));
            }
        });
    }
    let out = Command::new(env!("CARGO_BIN_EXE_load"))
        .args([&url, "1", "2"])
        .env("BENCH_VARY", "1")
        .env("BENCH_TOKEN", "t")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let json = String::from_utf8(out.stdout).unwrap();
    let held = held.load(Ordering::SeqCst) as f64;
    // The first request of the connection is untimed: one fewer than served.
    assert_eq!(field(&json, "requests") + 1.0, requests.load(Ordering::SeqCst) as f64, "{json}");
    assert!(held >= 2.0, "the server held {held} answers in 2 s: {json}");
    assert_eq!(field(&json, "non2xx"), 0.0);
    // Every hold is a stall of at least HOLD; on a busy machine the
    // scheduler may add a few of its own.
    let stalls = field(&json, "stalls");
    assert!(stalls >= held && stalls <= held + 5.0, "{held} holds, {json}");
    assert!(field(&json, "stalledMs") >= held * 20.0, "{json}");
    // Half a percent of the answers were held: the maximum shows them, p99
    // does not.
    assert!(field(&json, "maxMs") >= 20.0, "{json}");
    assert!(field(&json, "p99Ms") < 10.0, "{json}");
    assert!(field(&json, "p50Ms") < field(&json, "p99Ms") + 1e-9, "{json}");
}

#[test]
fn names_what_is_wrong_with_its_arguments() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_load")).args(args).output().unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    assert!(run(&[]).contains("usage: load"));
    assert!(run(&["http://127.0.0.1:1/", "x", "1"]).contains("connections: expected a number, found \"x\""));
    assert!(run(&["https://127.0.0.1/", "1", "1"]).contains("only http:// URLs"));
    assert!(run(&["http://127.0.0.1:1/", "1", "1"]).contains("connecting to 127.0.0.1:1"));
}
