//! What a delivery costs the delivery log in rows written, as the platform
//! bills them: every row a statement inserts, changes or deletes (the
//! log's tables have no secondary index, so that is every B-tree entry),
//! and every alarm set or deleted. Counted through the `Sql` interface
//! (tests/support/mod.rs) over each row's whole life: taken in, sent,
//! delivered, and deleted when its retention ends; the state row, the
//! metrics and the alarms shared by many deliveries are counted in full and
//! spread over them.

mod support;

use support::world::World;

const START: i64 = 1_700_000_000_000;
const DAY: i64 = 86_400_000;

fn push(w: &mut World, n: i64) {
    let body = format!(r#"{{"orgId":1,"type":"conversation_push","data":{{"lastUpdated":{n},"conversationId":{}}}}}"#, n % 50);
    assert_eq!(w.webhook(&body), 200);
}

/// Rows written per delivered event, over `webhooks` webhooks `every_ms`
/// apart to one app that answers 200 at once, until nothing is left.
fn rows_per_delivery(webhooks: i64, every_ms: i64) -> f64 {
    let app = r#"[{"name":"crm","url":"https://crm.example/hook","types":["conversation_push"]}]"#;
    let mut w = World::new(support::config(&[("DESTINATIONS", app)]), START);
    for n in 0..webhooks {
        push(&mut w, n);
        w.run_until(w.now + every_ms);
    }
    assert_eq!(w.received.len() as i64, webhooks, "each delivered once");
    w.invariants().unwrap();
    // Every retention over: the deliveries (7 days), the metrics (30 days).
    w.run_until(w.now + 31 * DAY);
    let db = &w.logs["crm"];
    assert_eq!(db.count("SELECT COUNT(*) FROM deliveries") + db.count("SELECT COUNT(*) FROM metrics"), 0, "nothing left");
    assert_eq!(db.alarm.get(), None);
    // Rows changed are rows written: no table has an index of its own.
    assert_eq!(db.count("SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"), 0);
    for (statement, rows) in db.written.borrow().iter() {
        let words: String = statement.split_whitespace().take(4).collect::<Vec<_>>().join(" ");
        println!("  {:>7.3}  {words}", *rows as f64 / webhooks as f64);
    }
    println!("  {:>7.3}  alarms set or deleted", db.alarm_writes.get() as f64 / webhooks as f64);
    db.rows_written() as f64 / webhooks as f64
}

#[test]
fn a_delivered_event_costs_its_log_at_most_five_rows_written_over_its_whole_life() {
    // Four webhooks a second: each answer is reported with the next
    // webhook's step, so the state row is written once per delivery.
    let steady = rows_per_delivery(2_400, 250);
    println!("rows written per delivered (event, app), 4 a second for 10 minutes: {steady:.3}");
    assert!(steady <= 5.0, "{steady:.3} rows written per delivery");
    // One every two seconds: each answer is reported on its own.
    let sparse = rows_per_delivery(300, 2_000);
    println!("rows written per delivered (event, app), one every 2 s for 10 minutes: {sparse:.3}");
    assert!(sparse <= 5.5, "{sparse:.3} rows written per delivery");
}
