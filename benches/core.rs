//! Core throughput: translations per second, native, one thread, over the
//! generated mix in `bench/work/events.ndjson` (made by `bench/gen.mjs`;
//! `make bench` does it all). Prints one JSON object.
//!
//!   cargo bench --bench core -- <events.ndjson> [runs]

use std::time::Instant;

use drift_bridge::{translate, Options};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let path = args.first().map_or("bench/work/events.ndjson", String::as_str);
    let runs: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(7);
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path} ({e}); run `make bench`"));
    let events: Vec<&str> = text.lines().take(200_000).collect();
    let bytes: usize = events.iter().map(|e| e.len()).sum();
    let options = Options::new(1_700_000_000_000);
    let mut rates = Vec::with_capacity(runs);
    let mut outbound = 0;
    for _ in 0..runs {
        let start = Instant::now();
        outbound = 0;
        for event in &events {
            outbound += std::hint::black_box(translate(event, &options)).map_or(0, |o| o.len());
        }
        rates.push(events.len() as f64 / start.elapsed().as_secs_f64());
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[runs / 2];
    println!(
        "{{\"events\":{},\"bytes\":{},\"outbound\":{},\"runs\":{},\"translations_per_second_median\":{:.0},\"min\":{:.0},\"max\":{:.0},\"mb_per_second_median\":{:.1}}}",
        events.len(),
        bytes,
        outbound,
        runs,
        median,
        rates[0],
        rates[runs - 1],
        median * bytes as f64 / events.len() as f64 / 1e6
    );
}
