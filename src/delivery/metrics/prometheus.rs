//! The Prometheus text exposition of the delivery logs' figures.

use super::{Counters, LATENCY_BOUNDS_MS};

/// One delivery log's figures for a scrape: its destination, its state, its
/// deliveries by status, its size, and its totals per type.
pub struct Scrape {
    pub destination: String,
    pub state: String,
    pub counts: Vec<(String, i64)>,
    pub bytes: i64,
    pub types: Vec<(String, Counters)>,
}

/// The Prometheus text exposition (version 0.0.4) of the delivery logs'
/// figures: counters with `_total`, the latency as a histogram in seconds
/// (`_bucket` with `le`, `_sum`, `_count`), gauges for what is held now.
pub fn prometheus(logs: &[Scrape]) -> String {
    let mut out = String::with_capacity(4096);
    let label = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
    type Counter = (&'static str, &'static str, fn(&Counters) -> u64);
    let counters: [Counter; 7] = [
        ("drift_bridge_deliveries_accepted_total", "Deliveries taken in by the destination's delivery log.", |c| c.accepted),
        ("drift_bridge_deliveries_delivered_total", "Deliveries the app accepted (2xx).", |c| c.delivered),
        ("drift_bridge_deliveries_failed_total", "Deliveries that became dead letters (failed or gone).", |c| c.failed),
        ("drift_bridge_deliveries_retried_total", "Attempts that failed and are tried again.", |c| c.retried),
        ("drift_bridge_deliveries_held_total", "Deliveries put on hold (the app down or paused).", |c| c.held),
        ("drift_bridge_attempts_total", "Delivery attempts made.", |c| c.attempts),
        ("drift_bridge_attempts_succeeded_total", "Delivery attempts answered 2xx.", |c| c.succeeded),
    ];
    for (name, help, get) in counters {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
        for log in logs {
            for (t, c) in &log.types {
                out.push_str(&format!("{name}{{destination=\"{}\",type=\"{}\"}} {}\n", label(&log.destination), label(t), get(c)));
            }
        }
    }
    let name = "drift_bridge_delivery_latency_seconds";
    out.push_str(&format!("# HELP {name} How long an attempt took, to the app's answer.\n# TYPE {name} histogram\n"));
    for log in logs {
        for (t, c) in &log.types {
            let labels = format!("destination=\"{}\",type=\"{}\"", label(&log.destination), label(t));
            let mut cumulative = 0u64;
            for (i, n) in c.latency.iter().enumerate() {
                cumulative += n;
                let le = match LATENCY_BOUNDS_MS.get(i) {
                    Some(ms) => seconds(*ms),
                    None => "+Inf".to_owned(),
                };
                out.push_str(&format!("{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}\n"));
            }
            out.push_str(&format!("{name}_sum{{{labels}}} {}\n", seconds(c.latency_sum_ms as i64)));
            out.push_str(&format!("{name}_count{{{labels}}} {cumulative}\n"));
        }
    }
    let name = "drift_bridge_deliveries";
    out.push_str(&format!("# HELP {name} Deliveries the destination's delivery log keeps now, by status.\n# TYPE {name} gauge\n"));
    for log in logs {
        for (status, n) in &log.counts {
            out.push_str(&format!("{name}{{destination=\"{}\",status=\"{}\"}} {n}\n", label(&log.destination), label(status)));
        }
    }
    let name = "drift_bridge_destination_state";
    out.push_str(&format!("# HELP {name} The destination's state: 1 for the one it is in.\n# TYPE {name} gauge\n"));
    for log in logs {
        for state in ["active", "paused", "tripped"] {
            out.push_str(&format!("{name}{{destination=\"{}\",state=\"{state}\"}} {}\n", label(&log.destination), u8::from(log.state == state)));
        }
    }
    let name = "drift_bridge_log_bytes";
    out.push_str(&format!("# HELP {name} What the destination's delivery log holds, against MAX_LOG_BYTES.\n# TYPE {name} gauge\n"));
    for log in logs {
        out.push_str(&format!("{name}{{destination=\"{}\"}} {}\n", label(&log.destination), log.bytes));
    }
    out
}

/// Milliseconds as seconds, exactly (`0.005`, `30`).
fn seconds(ms: i64) -> String {
    let (whole, part) = (ms / 1000, (ms % 1000).abs());
    if part == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{}", format!("{part:03}").trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_exposition_is_cumulative_and_in_seconds() {
        let mut c = Counters { accepted: 3, delivered: 2, failed: 1, attempts: 3, succeeded: 2, ..Counters::default() };
        for ms in [4, 40, 40_000] {
            c.observe_latency(ms);
        }
        let text = prometheus(&[Scrape {
            destination: "crm \"x\"".into(),
            state: "tripped".into(),
            counts: vec![("held".into(), 4)],
            bytes: 900,
            types: vec![("conversation_push".into(), c)],
        }]);
        for line in [
            "# TYPE drift_bridge_deliveries_accepted_total counter",
            "drift_bridge_deliveries_accepted_total{destination=\"crm \\\"x\\\"\",type=\"conversation_push\"} 3",
            "drift_bridge_delivery_latency_seconds_bucket{destination=\"crm \\\"x\\\"\",type=\"conversation_push\",le=\"0.005\"} 1",
            "drift_bridge_delivery_latency_seconds_bucket{destination=\"crm \\\"x\\\"\",type=\"conversation_push\",le=\"0.05\"} 2",
            "drift_bridge_delivery_latency_seconds_bucket{destination=\"crm \\\"x\\\"\",type=\"conversation_push\",le=\"30\"} 2",
            "drift_bridge_delivery_latency_seconds_bucket{destination=\"crm \\\"x\\\"\",type=\"conversation_push\",le=\"+Inf\"} 3",
            "drift_bridge_delivery_latency_seconds_sum{destination=\"crm \\\"x\\\"\",type=\"conversation_push\"} 40.044",
            "drift_bridge_delivery_latency_seconds_count{destination=\"crm \\\"x\\\"\",type=\"conversation_push\"} 3",
            "drift_bridge_deliveries{destination=\"crm \\\"x\\\"\",status=\"held\"} 4",
            "drift_bridge_destination_state{destination=\"crm \\\"x\\\"\",state=\"tripped\"} 1",
            "drift_bridge_destination_state{destination=\"crm \\\"x\\\"\",state=\"active\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line}\n{text}");
        }
        assert_eq!(seconds(5), "0.005");
        assert_eq!(seconds(30_000), "30");
        assert_eq!(seconds(1250), "1.25");
    }
}
