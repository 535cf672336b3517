//! The shape of the code, checked: the core knows nothing of wasm, JS or
//! Workers; the delivery system is sans-IO state machines (no await, no
//! clock, no queue and no consumer), whose inputs are decoded once, at the
//! edge, and whose delivery log decides its alarm and saves its state in
//! one finishing step; and no two modules import each other (directly or
//! around a loop), in the core or in the worker's adapter.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments and its `#[cfg(test)]` module.
fn code(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap();
    let text = text.split("#[cfg(test)]").next().unwrap();
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// The names following `prefix` in `code`: `crate::json::…` → `json`.
fn names_after<'c>(code: &'c str, prefix: &str) -> BTreeSet<&'c str> {
    code.match_indices(prefix)
        .map(|(i, _)| {
            let rest = &code[i + prefix.len()..];
            let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
            &rest[..end]
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// A cycle in `graph`, if there is one.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut loop_ = path[at..].to_vec();
            loop_.push(node.to_owned());
            return Some(loop_);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|node| visit(node, graph, &mut Vec::new(), &mut done))
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Core modules: the top-level modules of `src/` but the adapters.
fn core_modules() -> BTreeMap<String, Vec<PathBuf>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(src()).unwrap();
        let first = relative.components().next().unwrap().as_os_str().to_string_lossy().trim_end_matches(".rs").to_owned();
        if ["worker", "bin", "browser", "lib"].contains(&first.as_str()) {
            continue;
        }
        modules.entry(first).or_default().push(file);
    }
    modules
}

#[test]
fn the_core_has_no_wasm_js_or_worker_types() {
    for (module, files) in core_modules() {
        for file in files {
            let code = code(&file);
            for forbidden in ["wasm_bindgen", "js_sys", "worker::", "web_sys", "serde_wasm_bindgen"] {
                assert!(!code.contains(forbidden), "{} ({module}) uses {forbidden}", file.display());
            }
        }
    }
}

#[test]
fn the_delivery_state_machine_names_no_runtime_type_never_awaits_and_reads_no_clock() {
    let mut files = Vec::new();
    rust_files(&src().join("delivery"), &mut files);
    assert!(files.len() >= 15, "found the delivery modules: {files:?}");
    for file in files {
        let code = code(&file);
        for forbidden in [
            // The runtime's types: workers-rs, wasm-bindgen, js-sys.
            "worker::",
            "wasm_bindgen",
            "js_sys",
            "JsValue",
            // Awaiting is the adapter's.
            "async ",
            ".await",
            // Time and randomness come in as arguments.
            "SystemTime",
            "Instant::",
            "Date::now",
            "rand::",
        ] {
            assert!(!code.contains(forbidden), "{} names {forbidden}", file.display());
        }
    }
}

fn delivery_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    rust_files(&src().join("delivery"), &mut files);
    files
}

fn relative(file: &Path) -> String {
    file.strip_prefix(src().join("delivery")).unwrap().to_string_lossy().into_owned()
}

#[test]
fn the_delivery_system_has_no_queue_and_no_consumer() {
    let names: Vec<String> = delivery_files().iter().map(|f| relative(f)).collect();
    for gone in ["consumer.rs", "message.rs", "log/run.rs", "log/operator.rs"] {
        assert!(!names.iter().any(|n| n == gone), "src/delivery/{gone} is back");
    }
    for log in ["log/input.rs", "log/finish.rs", "log/places.rs", "log/intake.rs", "log/sending.rs", "log/timers.rs", "log/ordered.rs", "log/schema.rs"] {
        assert!(names.iter().any(|n| n == log), "the delivery log's {log} is missing: {names:?}");
    }
    let effects = code(&src().join("delivery/effects.rs"));
    for field in ["pub sends", "pub then", "fn then"] {
        assert!(!effects.contains(field), "Effects names {field}: a step asks only for its reply, alarm, requests, calls and lines");
    }
    for file in delivery_files() {
        let code = code(&file);
        for queue in ["QueueMessage", "sendBatch", "DELIVERIES"] {
            assert!(!code.contains(queue), "{} names {queue}", file.display());
        }
    }
}

/// An arm matching a request's path, `"/accept" =>`, and the function it is in.
fn path_arms(code: &str) -> Vec<(String, String)> {
    let mut function = String::new();
    let mut out = Vec::new();
    for line in code.lines() {
        let t = line.trim_start();
        if let Some(at) = t.find("fn ").filter(|_| t.starts_with("fn ") || t.starts_with("pub ") || t.starts_with("pub(crate) ")) {
            function = t[at + 3..].split(['(', '<']).next().unwrap_or("").to_owned();
        }
        if t.starts_with("\"/") && t.contains("=>") {
            out.push((function.clone(), t.to_owned()));
        }
    }
    out
}

#[test]
fn every_input_is_decoded_once_at_the_edge() {
    // What crosses the wire is read into a typed input by a `decode`, and
    // every other part of an object works on the typed value.
    let mut found = 0;
    for file in delivery_files() {
        for (function, arm) in path_arms(&code(&file)) {
            assert_eq!(function, "decode", "{}: a path matched outside a decoder: {arm}", file.display());
            found += 1;
        }
    }
    assert!(found >= 20, "found the decoders' arms: {found}");
}

#[test]
fn the_delivery_log_sets_its_alarm_and_saves_its_state_in_one_place() {
    for file in delivery_files().iter().filter(|f| relative(f).starts_with("log/")) {
        let name = relative(file);
        let code = code(file);
        if name != "log/finish.rs" {
            assert!(!code.contains("fx.alarm ="), "{name} sets the alarm: the rule is log/finish.rs's alone");
            assert!(!code.contains(".save(") || name == "log/state.rs", "{name} saves the state: log/finish.rs does, once a step");
        }
    }
}

#[test]
fn delivery_modules_import_no_loop() {
    let dir = src().join("delivery");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    // A module's name: its path under src/delivery/ (`log/run`), a mod.rs
    // its directory's (`log`).
    let name = |f: &Path| {
        let relative = f.strip_prefix(&dir).unwrap().with_extension("");
        let text = relative.to_string_lossy().into_owned();
        text.strip_suffix("/mod").map(str::to_owned).unwrap_or(text)
    };
    let names: BTreeSet<String> = files.iter().map(|f| name(f)).filter(|n| n != "mod").collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let own = name(file);
        if own == "mod" {
            continue;
        }
        let code = code(file);
        let parent = own.rsplit_once('/').map_or("", |(p, _)| p).to_owned();
        let edges = graph.entry(own.clone()).or_default();
        for used in names_after(&code, "crate::delivery::") {
            if names.contains(used) && used != own {
                edges.insert(used.to_owned());
            }
        }
        // `super::x` from log/run is log/x; `super::super::x` is x.
        for used in names_after(&code, "super::super::") {
            if names.contains(used) {
                edges.insert(used.to_owned());
            }
        }
        for used in names_after(&code, "super::") {
            let sibling = if parent.is_empty() { used.to_owned() } else { format!("{parent}/{used}") };
            if names.contains(&sibling) && sibling != own {
                edges.insert(sibling);
            }
        }
    }
    assert!(graph.len() >= 15, "found the delivery modules: {:?}", graph.keys());
    assert_eq!(cycle(&graph), None, "an import loop among the delivery modules: {graph:?}");
}

#[test]
fn core_modules_import_no_loop() {
    let modules = core_modules();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, files) in &modules {
        let edges = graph.entry(module.clone()).or_default();
        for file in files {
            for name in names_after(&code(file), "crate::") {
                if name != module && modules.contains_key(name) {
                    edges.insert(name.to_owned());
                }
            }
        }
    }
    assert!(graph.len() >= 10, "found the core modules: {:?}", graph.keys());
    assert_eq!(cycle(&graph), None, "an import loop among the core modules: {graph:?}");
}

#[test]
fn worker_modules_import_no_loop() {
    let dir = src().join("worker");
    let mut files = Vec::new();
    rust_files(&dir, &mut files);
    let name = |f: &Path| f.file_stem().unwrap().to_string_lossy().into_owned();
    // mod.rs is their parent: it declares them and they use its helpers.
    let siblings: BTreeSet<String> = files.iter().map(|f| name(f)).filter(|n| n != "mod").collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files.iter().filter(|f| name(f) != "mod") {
        let code = code(file);
        let edges = graph.entry(name(file)).or_default();
        for prefix in ["super::", "crate::worker::"] {
            for used in names_after(&code, prefix) {
                if siblings.contains(used) && used != name(file) {
                    edges.insert(used.to_owned());
                }
            }
        }
    }
    assert!(graph.len() >= 5, "found the worker modules: {:?}", graph.keys());
    assert_eq!(cycle(&graph), None, "an import loop among the worker's modules: {graph:?}");
}

#[test]
fn the_loop_finder_finds_loops() {
    let graph: BTreeMap<String, BTreeSet<String>> = [("a", vec!["b"]), ("b", vec!["c"]), ("c", vec!["a"]), ("d", vec![])]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
        .collect();
    assert_eq!(cycle(&graph), Some(vec!["a".into(), "b".into(), "c".into(), "a".into()]));
}
