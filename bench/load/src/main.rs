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
    let stalls = stalls(&all.sent_ns, &all.latencies_ns, STALL.as_nanos() as u64);
    let mut l = all.latencies_ns;
    l.sort_unstable();
    let ms = |ns: u64| ns as f64 / 1e6;
    let q = |q: f64| nearest_rank(&l, q).map_or(f64::NAN, ms);
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
        stalls.len(),
        ms(stalls.iter().sum()),
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

/// Stalls: the stretches of at least `min` ns in which no answer arrived at
/// all, given when each request was sent and how long it took. With every
/// connection closed-loop, each always has a request in flight, so a stall
/// holds every connection at once: it is the server's (or the machine's),
/// not one request's. Their lengths, in order of time.
fn stalls(sent_ns: &[u64], latencies_ns: &[u64], min: u64) -> Vec<u64> {
    let mut ends: Vec<u64> = sent_ns.iter().zip(latencies_ns).map(|(s, l)| s + l).collect();
    ends.sort_unstable();
    ends.windows(2).map(|w| w[1] - w[0]).filter(|&gap| gap >= min).collect()
}

/// The nearest-rank percentile of `sorted`: its smallest sample with at
/// least the share `q` of them at or below it (None if there are none).
fn nearest_rank(sorted: &[u64], q: f64) -> Option<u64> {
    sorted.get(((q * sorted.len() as f64).ceil() as usize).max(1) - 1).copied()
}

/// Reads one response: its status and whether the connection stays open.
fn read_response(stream: &mut impl BufRead) -> io::Result<(u16, bool)> {
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

fn skip(stream: &mut impl Read, bytes: u64) -> io::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn read(answer: &str) -> io::Result<(u16, bool)> {
        read_response(&mut answer.as_bytes())
    }

    #[test]
    fn reads_answers_with_a_length_chunked_or_closing() {
        assert_eq!(read("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").unwrap(), (200, true));
        assert_eq!(read("HTTP/1.1 202 Accepted\r\ntransfer-encoding: chunked\r\n\r\n2;x=y\r\nok\r\n0\r\n\r\n").unwrap(), (202, true));
        assert_eq!(read("HTTP/1.1 503 Unavailable\r\nConnection: close\r\ncontent-length: 0\r\n\r\n").unwrap(), (503, false));
        // Two answers on one connection: the first is read to its end, no further.
        let mut two = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcHTTP/1.1 401 No\r\nContent-Length: 0\r\n\r\n".as_bytes();
        assert_eq!(read_response(&mut two).unwrap(), (200, true));
        assert_eq!(read_response(&mut two).unwrap(), (401, true));
    }

    #[test]
    fn says_what_is_wrong_with_an_answer() {
        let kind_and_text = |answer: &str| read(answer).map_err(|e| (e.kind(), e.to_string())).unwrap_err();
        assert_eq!(kind_and_text("").0, io::ErrorKind::UnexpectedEof);
        assert_eq!(kind_and_text("HTTP/1.1 200 OK\r\n\r\n").1, "a response without a length");
        assert_eq!(kind_and_text("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok").1, "the body ends early");
        assert_eq!(kind_and_text("HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").1, "a bad Content-Length");
        assert_eq!(kind_and_text("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n").1, "the headers end early");
        assert_eq!(kind_and_text("garbage\r\n\r\n").1, "no status line");
    }

    #[test]
    fn percentiles_are_samples_by_nearest_rank() {
        let hundred: Vec<u64> = (1..=100).collect();
        assert_eq!(nearest_rank(&hundred, 0.5), Some(50));
        assert_eq!(nearest_rank(&hundred, 0.99), Some(99));
        assert_eq!(nearest_rank(&hundred, 0.999), Some(100));
        assert_eq!(nearest_rank(&hundred, 0.0), Some(1));
        assert_eq!(nearest_rank(&[7], 0.99), Some(7));
        assert_eq!(nearest_rank(&[], 0.5), None);
    }

    #[test]
    fn a_stall_is_a_stretch_without_any_answer() {
        const MS: u64 = 1_000_000;
        // Two connections: one answers every 1 ms, the other every 2 ms, up
        // to 10 ms; then both are held until 30 ms.
        let (mut sent, mut took) = (vec![], vec![]);
        for (every, count) in [(1, 10), (2, 5)] {
            for i in 0..count {
                sent.push(i * every * MS);
                took.push(every * MS);
            }
            sent.push(10 * MS);
            took.push(20 * MS);
        }
        assert_eq!(stalls(&sent, &took, 5 * MS), vec![20 * MS]);
        assert_eq!(stalls(&sent, &took, 21 * MS), Vec::<u64>::new());
        // One slow answer while the other connection keeps answering is no stall.
        let sent = [0, 0, MS, 2 * MS, 3 * MS, 4 * MS, 5 * MS, 6 * MS];
        let took = [8 * MS, MS, MS, MS, MS, MS, MS, MS];
        assert_eq!(stalls(&sent, &took, 5 * MS), Vec::<u64>::new());
    }

    #[test]
    fn parses_plain_http_urls_only() {
        let t = parse_url("http://127.0.0.1:8787/webhooks/drift").unwrap();
        assert_eq!((t.host.as_str(), t.addr.as_str(), t.path.as_str()), ("127.0.0.1:8787", "127.0.0.1:8787", "/webhooks/drift"));
        let t = parse_url("http://localhost").unwrap();
        assert_eq!((t.addr.as_str(), t.path.as_str()), ("localhost:80", "/"));
        assert_eq!(parse_url("https://x/").err().unwrap(), "\"https://x/\": only http:// URLs");
    }
}
