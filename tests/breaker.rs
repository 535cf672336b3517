//! The circuit breaker against a plain model of its rules, over random
//! histories of attempts, probes, pauses and resumes.

use drift_bridge::delivery::breaker::{Breaker, Transition, Mode, CircuitSettings, PROBE_MAX_MS};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Step {
    /// An attempt of delivery `n` counted against the app.
    Fail(u8),
    /// The app answered an attempt of delivery `n` (with a 2xx or not).
    Answer(u8, bool),
    Pause,
    Resume,
    /// Time passes; a probe starts if one is due, and ends as given.
    Probe { after_ms: i64, up: bool },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..4).prop_map(Step::Fail),
        2 => (0u8..4, any::<bool>()).prop_map(|(n, ok)| Step::Answer(n, ok)),
        1 => Just(Step::Pause),
        1 => Just(Step::Resume),
        2 => (0i64..2_000_000, any::<bool>()).prop_map(|(after_ms, up)| Step::Probe { after_ms, up }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn trips_exactly_when_the_rules_say(failures in 2u32..8, steps in prop::collection::vec(step(), 1..80)) {
        let s = CircuitSettings { failures, probe_ms: 60_000, probe_max_ms: PROBE_MAX_MS, drain_per_second: 10 };
        let mut c = Breaker::new(&s);
        let mut now = 0i64;
        let mut seq = 0i64;
        // The model: failures since the last answer or resume, by delivery.
        let mut run: Vec<u8> = Vec::new();
        for step in steps {
            now += 1;
            let before = c.mode;
            match step {
                Step::Fail(n) => {
                    run.push(n);
                    let change = c.failed(&format!("d{n}"), "down", now, &s);
                    let distinct = run.iter().any(|m| *m != run[0]);
                    let should_trip = before == Mode::Active && run.len() >= failures as usize && distinct;
                    prop_assert_eq!(change == Transition::Tripped, should_trip, "run {:?}", run);
                    if before == Mode::Tripped {
                        prop_assert_eq!(c.mode, Mode::Tripped, "a tripped destination stays tripped on failures");
                    }
                }
                Step::Answer(n, delivered) => {
                    run.clear();
                    let change = c.answered(&format!("d{n}"), delivered, now, &s);
                    prop_assert_eq!(change == Transition::Resumed, before == Mode::Tripped, "any answer brings it back");
                    prop_assert_eq!(c.mode, if before == Mode::Paused { Mode::Paused } else { Mode::Active });
                    if delivered {
                        prop_assert_eq!(c.last_success_ms, Some(now));
                    }
                }
                Step::Pause => {
                    c.pause(now);
                    prop_assert_eq!(c.mode, Mode::Paused);
                }
                Step::Resume => {
                    run.clear();
                    c.resume(now, &s);
                    prop_assert_eq!(c.mode, Mode::Active);
                }
                Step::Probe { after_ms, up } => {
                    now += after_ms;
                    if c.probe_due(now) {
                        seq += 1;
                        let id = format!("p{seq}");
                        c.start_probe(&id, seq, now);
                        prop_assert!(!c.holds(&id), "the probe itself goes");
                        prop_assert!(c.holds("d1"), "nothing else does");
                        prop_assert_eq!(c.probed_seq, seq, "the next probe takes another delivery");
                        if up {
                            run.clear();
                            prop_assert_eq!(c.answered(&id, false, now, &s), Transition::Resumed);
                        } else {
                            run.push(0);
                            prop_assert_eq!(c.failed(&id, "down", now, &s), Transition::ProbeFailed);
                        }
                    } else {
                        c.probe_lost(now, &s);
                    }
                }
            }
            // Invariants after every step.
            prop_assert_eq!(c.holds("anything"), c.mode == Mode::Paused || (c.mode == Mode::Tripped && c.probing.as_deref() != Some("anything")));
            prop_assert_eq!(c.sends(), c.mode == Mode::Active);
            prop_assert!((s.probe_ms..=PROBE_MAX_MS).contains(&c.probe_interval_ms));
            prop_assert_eq!(c.next_probe_ms.is_some() && c.probing.is_none(), c.mode == Mode::Tripped && c.probing.is_none());
            let text = c.encode();
            let value = drift_bridge::json::parse(&text, &drift_bridge::Limits::default()).unwrap();
            prop_assert_eq!(Breaker::decode(&value, &s).unwrap(), c.clone());
        }
    }

    #[test]
    fn a_single_failing_delivery_never_trips(failures in 2u32..8, attempts in 1usize..500) {
        let s = CircuitSettings { failures, ..CircuitSettings::default() };
        let mut c = Breaker::new(&s);
        for i in 0..attempts {
            prop_assert_eq!(c.failed("the-one", "the app answered 503", i as i64, &s), Transition::None);
        }
        prop_assert_eq!(c.mode, Mode::Active);
    }

    #[test]
    fn refusals_never_trip(failures in 2u32..8, attempts in 1usize..500) {
        // An app that refuses every event (a 4xx) is up: each event follows
        // its own schedule, the app keeps its stream.
        let s = CircuitSettings { failures, ..CircuitSettings::default() };
        let mut c = Breaker::new(&s);
        for i in 0..attempts {
            prop_assert_eq!(c.answered(&format!("d{i}"), false, i as i64, &s), Transition::None);
        }
        prop_assert_eq!((c.mode, c.consecutive_failures), (Mode::Active, 0));
    }
}
