//! The load generator of `make bench` (bench/worker.mjs): POSTs one Drift
//! event per request over keep-alive HTTP/1.1 connections, each connection
//! closed-loop (its next request leaves once the answer to the last one is
//! read), and prints one JSON line: requests, requests a second, the
//! latency of every request as measured, as percentiles, and the server's
//! stalls: how often, and for how long in all, no answer at all arrived for
//! 5 ms or more.
//!
//! Why not wrk's percentiles: wrk corrects its latency histogram for
//! "coordinated omission". For each response slower than twice the mean
//! interval between requests it adds the samples that requests arriving at
//! that mean rate would have seen, so at concurrency 1 one response held
//! 40 ms among 0.3 ms ones becomes about 130 samples, and one such hold in
//! a hundred requests moves wrk's p90. That answers "what if requests kept
//! arriving regardless", not "how long did requests take", which is what
//! the bench compares between workers.
//!
//! ```text
//! load <url> <connections> <seconds>
//! ```
//!
//! The request comes from the environment: `BENCH_BODY`, `BENCH_TOKEN` (the
//! X-Verification-Token header) and, with
//! `BENCH_VARY=1`, a different conversation_inactive event per request, the
//! same size as Drift's example: its time counts up from `BENCH_OFFSET`, its
//! conversation is one of 16. With `BENCH_TRACE=<file>`, every request's
//! send time and latency (µs) also go to that file, one line each. Plain
//! `http://` only; no dependencies.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

struct Target {
    host: String,
    addr: String,
    path: String,
}

/// The shortest stall counted (see `run`).
const STALL: Duration = Duration::from_millis(5);

/// The two barriers of the start, and when the clock started.
type Clock = (Barrier, Barrier, OnceLock<Instant>);

struct Outcome {
    latencies_ns: Vec<u64>,
    /// When each request was sent, in ns since the run started.
    sent_ns: Vec<u64>,
    non_2xx: u64,
    reconnects: u64,
}

fn main() {
    if let Err(e) = run() {
        eprintln!("load: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, connections, seconds] = args.as_slice() else {
        return Err("usage: load <http://host:port/path> <connections> <seconds>".into());
    };
    let target = Arc::new(parse_url(url)?);
    let connections: usize = connections.parse().map_err(|_| format!("connections: expected a number, found {connections:?}"))?;
    let seconds: f64 = seconds.parse().map_err(|_| format!("seconds: expected a number, found {seconds:?}"))?;
    if connections == 0 || !seconds.is_finite() || seconds <= 0.0 {
        return Err("connections and seconds must be above 0".into());
    }
    let body = std::env::var("BENCH_BODY").unwrap_or_default();
    let token = std::env::var("BENCH_TOKEN").unwrap_or_default();
    let vary = std::env::var("BENCH_VARY").is_ok_and(|v| v == "1");
    let offset: u64 = std::env::var("BENCH_OFFSET").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let counter = Arc::new(AtomicU64::new(offset));

    // Every connection opens and has one request answered before the clock
    // starts (the first barrier), so that neither connecting nor the
    // server's first sight of a connection is measured; then all start
    // together (the second).
    let clock = Arc::new((Barrier::new(connections + 1), Barrier::new(connections + 1), OnceLock::new()));
    let duration = Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..connections)
        .map(|_| {
            let (target, body, token, counter, clock) = (target.clone(), body.clone(), token.clone(), counter.clone(), clock.clone());
            std::thread::spawn(move || connection(&target, &clock, duration, |out| {
                let body = if vary {
                    let n = counter.fetch_add(1, Ordering::Relaxed) + 1;
                    format!(
                        r#"{{"orgId":1,"type":"conversation_inactive","data":{{"lastUpdated":{},"conversationId":{}}}}}"#,
                        1_591_813_767_000u64 + n,
                        123_456_700 + n % 16
                    )
                } else {
                    body.clone()
                };
                out.clear();
                write!(
                    out,
                    "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nX-Verification-Token: {token}\r\nContent-Length: {}\r\n\r\n{body}",
                    target.path,
                    target.host,
                    body.len()
                )
                .expect("writing to a Vec cannot fail");
            }))
        })
        .collect();
    clock.0.wait();
    let started = Instant::now();
    clock.2.set(started).expect("set once");
    clock.1.wait();
    let mut all = Outcome { latencies_ns: Vec::new(), sent_ns: Vec::new(), non_2xx: 0, reconnects: 0 };
    for thread in threads {
        let outcome = thread.join().map_err(|_| "a connection's thread panicked".to_string())??;
        all.latencies_ns.extend(outcome.latencies_ns);
        all.sent_ns.extend(outcome.sent_ns);
        all.non_2xx += outcome.non_2xx;
        all.reconnects += outcome.reconnects;
    }
    let elapsed = started.elapsed().as_secs_f64();
    if let Ok(path) = std::env::var("BENCH_TRACE") {
        // Every request: when it was sent and how long it took, in µs.
        let mut trace: Vec<_> = all.sent_ns.iter().zip(&all.latencies_ns).collect();
        trace.sort_unstable();
        let text: String = trace.iter().map(|(sent, took)| format!("{} {}\n", *sent / 1000, *took / 1000)).collect();
        std::fs::write(&path, text).map_err(|e| format!("writing {path}: {e}"))?;
    }
    // Stalls: stretches of at least STALL in which no answer arrived at all,
    // with requests in flight (every connection always has one). They
    // hold every connection at once, so they are the server's (or the
    // machine's), not one request's.
    let mut ends: Vec<u64> = all.sent_ns.iter().zip(&all.latencies_ns).map(|(s, l)| s + l).collect();
    ends.sort_unstable();
    let gaps: Vec<u64> = ends.windows(2).map(|w| w[1] - w[0]).filter(|&gap| gap >= STALL.as_nanos() as u64).collect();
    let mut l = all.latencies_ns;
    l.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    // Nearest rank: the smallest sample with at least q of them at or below it.
    let q = |q: f64| l.get(((q * l.len() as f64).ceil() as usize).max(1) - 1).map_or(f64::NAN, |&ns| ms(ns));
    let mean = if l.is_empty() { f64::NAN } else { ms(l.iter().sum::<u64>() / l.len() as u64) };
    println!(
        r#"{{"requests":{},"seconds":{elapsed:.3},"rps":{:.1},"meanMs":{mean:.4},"p50Ms":{:.4},"p90Ms":{:.4},"p99Ms":{:.4},"p999Ms":{:.4},"maxMs":{:.4},"stalls":{},"stalledMs":{:.1},"non2xx":{},"reconnects":{}}}"#,
        l.len(),
        l.len() as f64 / elapsed,
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.999),
        l.last().map_or(f64::NAN, |&ns| ms(ns)),
        gaps.len(),
        ms(gaps.iter().sum()),
        all.non_2xx,
        all.reconnects
    );
    Ok(())
}

/// One closed-loop connection for `duration` once the clock starts: a
/// request (made by `make`), its whole answer read, the time between the
/// two recorded. Its first request goes before the clock starts, untimed
/// (see `run`); a failure there still passes both barriers, so that no
/// thread waits for ever, and is reported after them.
fn connection(target: &Target, clock: &Clock, duration: Duration, mut make: impl FnMut(&mut Vec<u8>)) -> Result<Outcome, String> {
    let mut outcome = Outcome { latencies_ns: Vec::with_capacity(1 << 16), sent_ns: Vec::with_capacity(1 << 16), non_2xx: 0, reconnects: 0 };
    let mut request = Vec::with_capacity(512);
    let first = connect(target).and_then(|mut stream| {
        make(&mut request);
        stream.get_mut().write_all(&request).and_then(|()| read_response(&mut stream)).map_err(|e| format!("{}{}: {e}", target.addr, target.path))?;
        Ok(stream)
    });
    clock.0.wait();
    clock.1.wait();
    let mut stream = first?;
    let started = *clock.2.get().expect("set before the second barrier");
    let deadline = started + duration;
    while Instant::now() < deadline {
        make(&mut request);
        let mut sent = Instant::now();
        let mut answer = stream.get_mut().write_all(&request).and_then(|()| read_response(&mut stream));
        // The server may close a kept-alive connection between two requests
        // (workerd does, now and then): then the request is sent again, on a
        // new connection, and timed from there.
        if answer.as_ref().is_err_and(|e| matches!(e.kind(), io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe)) {
            stream = connect(target)?;
            outcome.reconnects += 1;
            sent = Instant::now();
            answer = stream.get_mut().write_all(&request).and_then(|()| read_response(&mut stream));
        }
        match answer {
            Ok((status, keep_alive)) => {
                outcome.latencies_ns.push(sent.elapsed().as_nanos() as u64);
                outcome.sent_ns.push(sent.duration_since(started).as_nanos() as u64);
                if !(200..300).contains(&status) {
                    outcome.non_2xx += 1;
                }
                if !keep_alive {
                    stream = connect(target)?;
                    outcome.reconnects += 1;
                }
            }
            Err(e) => return Err(format!("{}{}: {e}", target.addr, target.path)),
        }
    }
    Ok(outcome)
}

fn connect(target: &Target) -> Result<BufReader<TcpStream>, String> {
    let stream = TcpStream::connect(&target.addr).map_err(|e| format!("connecting to {}: {e}", target.addr))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(BufReader::with_capacity(1 << 16, stream))
}

/// Reads one response: its status and whether the connection stays open.
fn read_response(stream: &mut BufReader<TcpStream>) -> io::Result<(u16, bool)> {
    let mut line = String::new();
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    if stream.read_line(&mut line)? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed the connection before answering"));
    }
    let status: u16 = line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status line"))?;
    let (mut length, mut chunked, mut keep_alive) = (None, false, true);
    loop {
        line.clear();
        if stream.read_line(&mut line)? == 0 {
            return Err(bad("the headers end early"));
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else { continue };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse::<u64>().map_err(|_| bad("a bad Content-Length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.eq_ignore_ascii_case("chunked");
        } else if name.eq_ignore_ascii_case("connection") {
            keep_alive = !value.eq_ignore_ascii_case("close");
        }
    }
    if chunked {
        loop {
            line.clear();
            stream.read_line(&mut line)?;
            let size = u64::from_str_radix(line.trim_end().split(';').next().unwrap_or(""), 16).map_err(|_| bad("a bad chunk size"))?;
            skip(stream, size)?;
            line.clear();
            stream.read_line(&mut line)?;
            if size == 0 {
                break;
            }
        }
    } else if let Some(length) = length {
        skip(stream, length)?;
    } else {
        return Err(bad("a response without a length"));
    }
    Ok((status, keep_alive))
}

fn skip(stream: &mut BufReader<TcpStream>, bytes: u64) -> io::Result<()> {
    let copied = io::copy(&mut stream.by_ref().take(bytes), &mut io::sink())?;
    if copied == bytes {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the body ends early"))
    }
}

fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url:?}: only http:// URLs"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr = if authority.contains(':') { authority.to_string() } else { format!("{authority}:80") };
    Ok(Target { host: authority.to_string(), addr, path: if path.is_empty() { "/".into() } else { path.into() } })
}
