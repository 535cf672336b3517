//! The configuration, read from the runtime's `env` object: shared by both
//! wasm modules of the worker, the bridge's (feature `bridge`) and the
//! operator's (feature `operator`, workers-rs). Over plain `JsValue`s, so
//! that the bridge's module needs no workers-rs.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use js_sys::Reflect;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::JsValue;

use crate::config::{Config, Problem};
use crate::delivery::destination::ParsedUrl;

/// Durable Object namespace of the per-destination delivery logs.
pub const DELIVERY_LOG: &str = "DELIVERY_LOG";
/// Durable Object namespace of the registry of delivery logs (one instance).
pub const REGISTRY: &str = "REGISTRY";

thread_local! {
    /// The configuration, read once per isolate: vars and secrets do not
    /// change while an isolate lives (a deploy or `wrangler secret put` starts
    /// new ones), and reading a dozen bindings and parsing DESTINATIONS on
    /// every request would cost more than the translation itself.
    static CONFIG: OnceCell<Rc<Config>> = const { OnceCell::new() };
    /// The configuration with the registry's apps, and their version: the
    /// entry module sets it from its copy ([`set_apps`]) before any call
    /// that routes, delivers or signs.
    static WITH_APPS: RefCell<Option<(i64, Rc<Config>)>> = const { RefCell::new(None) };
    /// Why the entry could not refresh its copy of the apps for the request
    /// being served (the registry could not be reached), if it could not.
    static REGISTRY_PROBLEM: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// `setRegistryProblem(message | null)`: the entry says, before a request it
/// serves with the copy of the apps it has, whether the registry answered.
#[cfg(feature = "operator")]
#[wasm_bindgen(js_name = setRegistryProblem)]
pub fn set_registry_problem(message: Option<String>) {
    REGISTRY_PROBLEM.with(|cell| *cell.borrow_mut() = message);
}

/// Why the registry could not be reached for this request, if it could not.
#[cfg(feature = "operator")]
pub fn registry_problem() -> Option<String> {
    REGISTRY_PROBLEM.with(|cell| cell.borrow().clone())
}

/// The configuration, with the registry's apps once the entry gave them.
/// `log_problems`: the first read in this wasm module names each problem on
/// the console (names only, never a value), for `wrangler tail`. The
/// bridge's module, which every isolate starts, does that; the operator's
/// keeps quiet so that nothing is said twice.
pub fn config(env: &JsValue, log_problems: bool) -> Rc<Config> {
    if let Some(config) = WITH_APPS.with(|cell| cell.borrow().as_ref().map(|(_, c)| c.clone())) {
        return config;
    }
    declared(env, log_problems)
}

/// The configuration from the bindings alone.
pub(super) fn declared(env: &JsValue, log_problems: bool) -> Rc<Config> {
    CONFIG.with(|cell| cell.get_or_init(|| Rc::new(read(env, log_problems))).clone())
}

/// The version of the apps this module routes by (-1: none yet).
pub fn apps_version() -> f64 {
    WITH_APPS.with(|cell| cell.borrow().as_ref().map_or(-1.0, |(v, _)| *v as f64))
}

/// Takes the registry's apps from `/routes`' answer (`text`); answers
/// their version. An answer that only says the copy is current changes
/// nothing.
///
/// Both modules keep all of each app: the bridge's sends deliveries (their
/// URLs, token handling and secrets), the operator's shows them.
pub fn set_apps(env: &JsValue, text: &str, log_problems: bool) -> Result<f64, String> {
    let (version, apps) = crate::delivery::apps::Routes::decode(text).map_err(|e| e.to_string())?;
    let Some(apps) = apps else { return Ok(version as f64) };
    if apps_version() == version as f64 {
        return Ok(version as f64);
    }
    let base = declared(env, log_problems);
    let merged = base.with_apps(&apps, &|name| var(env, name));
    if log_problems {
        for p in merged.problems.iter().skip(base.problems.len()) {
            console_error(&format!("configuration problem: {p}"));
        }
    }
    WITH_APPS.with(|cell| *cell.borrow_mut() = Some((version, Rc::new(merged))));
    Ok(version as f64)
}

fn read(env: &JsValue, log_problems: bool) -> Config {
    let mut config = Config::from_env_with(|name| var(env, name), parse_url);
    if !config.delivery.destinations.list.is_empty() {
        for (binding, kind) in [(DELIVERY_LOG, "Durable Object"), (REGISTRY, "Durable Object")] {
            if !has(env, binding) {
                config.problems.push(Problem::blocking(
                    binding,
                    format!("DESTINATIONS is set but the {kind} binding {binding} is missing (see wrangler.toml)"),
                ));
            }
        }
    }
    if log_problems {
        for p in &config.problems {
            console_error(&format!("configuration problem: {p}"));
        }
    }
    config
}

/// A var or secret: both are strings on `env`.
pub fn var(env: &JsValue, name: &str) -> Option<String> {
    Reflect::get(env, &JsValue::from_str(name)).ok()?.as_string()
}

fn has(env: &JsValue, name: &str) -> bool {
    Reflect::get(env, &JsValue::from_str(name)).is_ok_and(|v| !v.is_undefined() && !v.is_null())
}

#[wasm_bindgen]
extern "C" {
    /// `console.error`.
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    pub fn console_error(line: &str);

    /// The runtime's WHATWG `URL`: the parser its `fetch` reads a URL with.
    #[wasm_bindgen(js_name = URL)]
    type JsUrl;
    #[wasm_bindgen(constructor, catch, js_class = "URL")]
    fn new(text: &str) -> Result<JsUrl, JsValue>;
    #[wasm_bindgen(method, getter, js_class = "URL")]
    fn href(this: &JsUrl) -> String;
    #[wasm_bindgen(method, getter, js_class = "URL")]
    fn protocol(this: &JsUrl) -> String;
    #[wasm_bindgen(method, getter, js_class = "URL")]
    fn username(this: &JsUrl) -> String;
    #[wasm_bindgen(method, getter, js_class = "URL")]
    fn password(this: &JsUrl) -> String;
    #[wasm_bindgen(method, getter, js_class = "URL")]
    fn hostname(this: &JsUrl) -> String;
}

/// [`crate::delivery::destination::UrlParser`] over the runtime's own `URL`.
pub fn parse_url(text: &str) -> Result<ParsedUrl, String> {
    let url = JsUrl::new(text).map_err(|e| js_sys::Error::from(e).message().as_string().unwrap_or_else(|| "invalid URL".into()))?;
    let scheme = url.protocol();
    Ok(ParsedUrl {
        scheme: scheme.strip_suffix(':').unwrap_or(&scheme).to_string(),
        credentials: !url.username().is_empty() || !url.password().is_empty(),
        hostname: url.hostname(),
        href: url.href(),
    })
}

/// `setApps(env, text)`: the registry's apps, from `/routes`' answer, for
/// every later call into this module; answers their version, or -1 (and
/// says why on the console) when the answer cannot be read.
#[wasm_bindgen(js_name = setApps)]
pub fn set_apps_export(env: &JsValue, text: &JsValue) -> f64 {
    let text = text.as_string().unwrap_or_default();
    match set_apps(env, &text, cfg!(not(feature = "operator"))) {
        Ok(version) => version,
        Err(e) => {
            console_error(&format!("apps: the registry's answer cannot be read: {e}"));
            -1.0
        }
    }
}

/// `appsVersion()`: the version of the apps this module routes by (-1:
/// none; a fresh instance, after a panic, has none).
#[wasm_bindgen(js_name = appsVersion)]
pub fn apps_version_export() -> f64 {
    apps_version()
}

/// `appsLeaseMs(env)`: `APPS_CACHE_MS`, how long a copy of the apps may be used.
#[wasm_bindgen(js_name = appsLeaseMs)]
pub fn apps_lease_ms(env: &JsValue) -> f64 {
    f64::from(declared(env, false).apps_lease_ms)
}
