//! The OpenAPI document (`GET /openapi.json`, src/openapi.rs), checked: it
//! is JSON, every route of the one table is in it and nothing else, every
//! `$ref` resolves, every operation says how it succeeds and the admin ones
//! how they refuse, every error code the code answers is listed, and the
//! app bodies take the fields the admin API takes. It is then written to
//! target/openapi.json, for openapi-spec-validator and Schemathesis
//! (tests/openapi/check.sh).

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use drift_bridge::api::ROUTES;
use drift_bridge::delivery::destination::{parse_url, read_spec, Source};
use drift_bridge::json::{self, Limits, Value};
use drift_bridge::openapi::document;
use drift_bridge::ErrorCode;

const DEEP: Limits = Limits { max_bytes: usize::MAX, max_depth: 64 };

fn text() -> String {
    document(drift_bridge::VERSION)
}

fn get<'v, 'a>(v: &'v Value<'a>, path: &[&str]) -> &'v Value<'a> {
    path.iter().fold(v, |v, key| v.get(key).unwrap_or_else(|| panic!("no {key} in {}", path.join("/"))))
}

fn members<'v, 'a>(v: &'v Value<'a>) -> &'v [(json::Str<'a>, Value<'a>)] {
    v.as_object().unwrap_or_else(|| panic!("not an object: {}", v.to_json()))
}

fn str_of(v: &Value<'_>) -> String {
    v.as_str().map(|s| s.text().into_owned()).unwrap_or_else(|| panic!("not a string: {}", v.to_json()))
}

/// Each operation of `paths`: (path, method, operation).
fn operations<'v, 'a>(doc: &'v Value<'a>) -> Vec<(String, String, &'v Value<'a>)> {
    let mut out = Vec::new();
    for (path, item) in members(get(doc, &["paths"])) {
        for (method, op) in members(item) {
            if method.eq_text("parameters") {
                continue;
            }
            out.push((path.text().into_owned(), method.text().to_ascii_uppercase(), op));
        }
    }
    out
}

/// What a local reference (`#/components/schemas/Error`) points at.
fn resolve<'v, 'a>(doc: &'v Value<'a>, reference: &str) -> Option<&'v Value<'a>> {
    let pointer = reference.strip_prefix("#/")?;
    pointer.split('/').map(|p| p.replace("~1", "/").replace("~0", "~")).try_fold(doc, |v, key| match v {
        Value::Array(items) => items.get(key.parse::<usize>().ok()?),
        _ => v.get(&key),
    })
}

/// Every `$ref` in `v`, with where it is.
fn refs(v: &Value<'_>, at: &str, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(members) => {
            for (k, value) in members {
                if k.eq_text("$ref") {
                    out.push((at.to_owned(), str_of(value)));
                } else {
                    refs(value, &format!("{at}/{}", k.text()), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                refs(item, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_document_is_json_with_no_repeated_key() {
    let text = text();
    let doc = json::parse(&text, &DEEP).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(str_of(get(&doc, &["openapi"])), "3.1.0");
    assert_eq!(str_of(get(&doc, &["info", "version"])), drift_bridge::VERSION);
    assert!(document("9.9.9").contains(r#""version":"9.9.9""#));
}

#[test]
fn every_route_is_an_operation_and_every_operation_a_route() {
    let text = text();
    let doc = json::parse(&text, &DEEP).unwrap();
    let ops = operations(&doc);
    for r in ROUTES {
        let found = ops.iter().find(|(path, method, _)| path == r.path && method == r.method);
        let Some((_, _, op)) = found else { panic!("{} {} is not in the document", r.method, r.path) };
        assert_eq!(str_of(get(op, &["operationId"])), r.id, "{} {}", r.method, r.path);
        assert_eq!(str_of(get(op, &["summary"])), r.summary, "{} {}", r.method, r.path);
        assert!(op.get("x-undescribed").is_none(), "{} ({} {}) has no description in src/openapi.rs: add its parameters and answers", r.id, r.method, r.path);
    }
    for (path, method, _) in &ops {
        assert!(ROUTES.iter().any(|r| r.path == path && r.method == method), "{method} {path} is in the document but not in api::ROUTES");
    }
    assert_eq!(ops.len(), ROUTES.len());
    let ids: BTreeSet<String> = ops.iter().map(|(_, _, op)| str_of(get(op, &["operationId"]))).collect();
    assert_eq!(ids.len(), ops.len(), "operationIds are unique");
}

#[test]
fn every_path_parameter_is_declared() {
    let text = text();
    let doc = json::parse(&text, &DEEP).unwrap();
    for (path, item) in members(get(&doc, &["paths"])) {
        let path = path.text();
        let templated: BTreeSet<&str> = path.split('/').filter_map(|s| s.strip_prefix('{')?.strip_suffix('}')).collect();
        let mut declared = BTreeSet::new();
        if let Some(Value::Array(params)) = item.get("parameters") {
            for p in params {
                let p = match p.get("$ref") {
                    Some(r) => resolve(&doc, &str_of(r)).unwrap(),
                    None => p,
                };
                if str_of(get(p, &["in"])) == "path" {
                    assert!(matches!(p.get("required"), Some(Value::Bool(true))), "{path}: a path parameter is required");
                    declared.insert(str_of(get(p, &["name"])));
                }
            }
        }
        let declared: BTreeSet<&str> = declared.iter().map(String::as_str).collect();
        assert_eq!(templated, declared, "{path}");
    }
}

#[test]
fn every_reference_resolves() {
    let text = text();
    let doc = json::parse(&text, &DEEP).unwrap();
    let mut all = Vec::new();
    refs(&doc, "#", &mut all);
    assert!(all.len() > 100, "found the references: {}", all.len());
    for (at, reference) in &all {
        assert!(reference.starts_with("#/components/"), "{at}: {reference} is not a component");
        assert!(resolve(&doc, reference).is_some(), "{at}: {reference} does not resolve");
    }
    // And every component is used.
    let used: BTreeSet<&str> = all.iter().map(|(_, r)| r.as_str()).collect();
    for kind in ["schemas", "parameters", "responses", "headers"] {
        for (name, _) in members(get(&doc, &["components", kind])) {
            let reference = format!("#/components/{kind}/{}", name.text());
            assert!(used.contains(reference.as_str()), "{reference} is never used");
        }
    }
}

#[test]
fn every_operation_succeeds_somehow_and_every_admin_one_refuses_a_wrong_token() {
    let text = text();
    let doc = json::parse(&text, &DEEP).unwrap();
    for (path, method, op) in operations(&doc) {
        let route = ROUTES.iter().find(|r| r.path == path && r.method == method).unwrap();
        let statuses: Vec<String> = members(get(op, &["responses"])).iter().map(|(s, _)| s.text().into_owned()).collect();
        // A WebSocket succeeds by switching protocols.
        assert!(statuses.iter().any(|s| s.starts_with('2') || s == "101"), "{method} {path}: no success answer in {statuses:?}");
        let security = get(op, &["security"]).to_json();
        if route.admin {
            assert!(statuses.iter().any(|s| s == "401"), "{method} {path}: no 401");
            assert!(statuses.iter().any(|s| s == "404"), "{method} {path}: no 404 (the admin API off)");
            assert_eq!(security, r#"[{"adminToken":[]}]"#, "{method} {path}");
        } else {
            assert!(!security.contains("adminToken") || path == "/health", "{method} {path}: {security}");
        }
        // Every error answer is the one Error.
        for (status, response) in members(get(op, &["responses"])) {
            if !(status.text().starts_with('4') || status.text().starts_with('5')) {
                continue;
            }
            let response = match response.get("$ref") {
                Some(r) => resolve(&doc, &str_of(r)).unwrap(),
                None => response,
            };
            let schema = get(response, &["content", "application/json", "schema", "$ref"]);
            assert_eq!(str_of(schema), "#/components/schemas/Error", "{method} {path} {}", status.text());
        }
    }
    let schemes = get(&doc, &["components", "securitySchemes"]);
    assert_eq!(str_of(get(schemes, &["adminToken", "scheme"])), "bearer");
    assert_eq!(str_of(get(schemes, &["driftVerificationToken", "name"])), "X-Verification-Token");
}

#[test]
fn what_apps_receive_is_described_with_the_standard_webhooks_headers() {
    let text = text();
    let doc = json::parse(&text, &DEEP).unwrap();
    let hooks = get(&doc, &["webhooks"]);
    for name in ["conversation_inactive", "conversation_manual_push", "conversation_push", "conversation_status_updated", "other", "drift_bridge.alert"] {
        let op = get(hooks, &[name, "post"]);
        let headers: Vec<String> = match get(op, &["parameters"]) {
            Value::Array(p) => p.iter().map(|p| str_of(get(resolve(&doc, &str_of(get(p, &["$ref"]))).unwrap(), &["name"]))).collect(),
            _ => panic!("{name}: no parameters"),
        };
        for h in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            assert!(headers.iter().any(|x| x == h), "{name}: no {h}");
        }
        let statuses: Vec<String> = members(get(op, &["responses"])).iter().map(|(s, _)| s.text().into_owned()).collect();
        assert_eq!(statuses, ["2XX", "410", "default"], "{name}");
    }
    // The legacy close, in exactly Drift's published form (made by the core).
    let close = get(hooks, &["conversation_status_updated", "post", "requestBody", "content", "application/json", "example"]);
    assert_eq!(
        close.to_json(),
        r#"{"orgId":1,"type":"conversation_status_updated","data":{"conversationId":123456789,"status":"closed","changedAt":1591813767000}}"#
    );
}

#[test]
fn every_link_leads_to_an_operation() {
    let text = text();
    let doc = json::parse(&text, &DEEP).unwrap();
    let ids: BTreeSet<String> = operations(&doc).iter().map(|(_, _, op)| str_of(get(op, &["operationId"]))).collect();
    let mut found = 0;
    for (path, method, op) in operations(&doc) {
        for (status, response) in members(get(op, &["responses"])) {
            let Some(links) = response.get("links") else { continue };
            for (name, link) in members(links) {
                let to = str_of(get(link, &["operationId"]));
                assert!(ids.contains(&to), "{method} {path} {}: link {} leads to {to}, which is no operation", status.text(), name.text());
                for (_, expression) in members(get(link, &["parameters"])) {
                    assert!(str_of(expression).starts_with("$response.body#/"), "{method} {path}: {}", expression.to_json());
                }
                found += 1;
            }
        }
    }
    assert!(found >= 10, "found the links: {found}");
}

/// The error codes written as literals in the code: `error_response(401,
/// "unauthorized", …)`, the registry's `refuse(409, "exists", …)`, the
/// webhook's `error(503, "not_configured", …)`, and the entry's JSON.
fn codes_in_the_code() -> BTreeSet<String> {
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs" || e == "mjs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    let mut codes = BTreeSet::new();
    for file in files.iter().filter(|f| !f.components().any(|c| c.as_os_str() == "bin")) {
        let text = fs::read_to_string(file).unwrap();
        for call in ["error_response(", "refuse(", " error(", "write_error(&mut out, "] {
            for (i, _) in text.match_indices(call) {
                // The second argument, when it is a literal.
                let rest = &text[i + call.len()..];
                let rest = if call.ends_with(", ") { rest } else { rest.split_once(',').map_or("", |(_, r)| r) };
                let rest = rest.trim_start();
                if let Some(code) = rest.strip_prefix('"').and_then(|r| r.split_once('"')).map(|(c, _)| c) {
                    if !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                        codes.insert(code.to_owned());
                    }
                }
            }
        }
        for marker in [r#"{"error":{"code":""#, r#"error: { code: ""#] {
            for (i, _) in text.match_indices(marker) {
                if let Some((code, _)) = text[i + marker.len()..].split_once('"') {
                    codes.insert(code.to_owned());
                }
            }
        }
    }
    for code in [ErrorCode::InvalidJson, ErrorCode::InvalidEvent, ErrorCode::DuplicateKey, ErrorCode::TooLarge] {
        codes.insert(code.as_str().to_owned());
    }
    codes
}

#[test]
fn every_error_code_the_code_answers_is_listed() {
    let text = text();
    let doc = json::parse(&text, &DEEP).unwrap();
    let listed: BTreeSet<String> = match get(&doc, &["components", "schemas", "ErrorCode", "enum"]) {
        Value::Array(items) => items.iter().map(str_of).collect(),
        _ => panic!("ErrorCode has no enum"),
    };
    let found = codes_in_the_code();
    assert!(found.len() >= 15, "found the codes: {found:?}");
    for code in ["unauthorized", "registry_unavailable", "exists", "not_configured", "unavailable"] {
        assert!(found.contains(code), "the scan finds {code}: {found:?}");
    }
    let missing: Vec<&String> = found.difference(&listed).collect();
    assert!(missing.is_empty(), "error codes answered but not in the ErrorCode schema: {missing:?}");
}

#[test]
fn an_app_body_takes_the_fields_the_admin_api_takes() {
    let text = text();
    let doc = json::parse(&text, &DEEP).unwrap();
    let properties = |schema: &str| -> BTreeSet<String> {
        members(get(&doc, &["components", "schemas", schema, "properties"])).iter().map(|(k, _)| k.text().into_owned()).collect()
    };
    // The admin API names its fields when it refuses an unknown one.
    let body = json::parse(r#"{"name":"crm","url":"https://crm.example.com/","types":["*"],"zzz":1}"#, &DEEP).unwrap();
    let problems = read_spec(&body, Source::Runtime, parse_url).unwrap_err();
    let (_, message) = problems.iter().find(|(path, _)| path == "zzz").expect("an unknown field is refused");
    let fields: BTreeSet<String> = message.rsplit_once("are ").unwrap().1.split(", ").map(str::to_owned).collect();
    assert_eq!(properties("AppCreate"), fields, "AppCreate against what the admin API takes");
    let patch = properties("AppPatch");
    assert!(patch.is_subset(&fields), "AppPatch: {patch:?}");
    for schema in ["AppCreate", "AppPatch", "RotateRequest"] {
        assert_eq!(
            get(&doc, &["components", "schemas", schema, "additionalProperties"]),
            &Value::Bool(false),
            "{schema} refuses unknown fields, as the API does"
        );
    }
}

/// Last: the document for the tools of tests/openapi/check.sh.
#[test]
fn the_document_is_written_to_target_for_the_tools() {
    let text = text();
    let doc = json::parse(&text, &DEEP).unwrap();
    let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    fs::create_dir_all(&target).unwrap();
    let path = target.join("openapi.json");
    // Written whole, then moved: a reader never sees half of it.
    let partial = target.join(format!("openapi.json.{}", std::process::id()));
    fs::write(&partial, doc.to_pretty_json() + "\n").unwrap();
    fs::rename(&partial, &path).unwrap();
}
