//! Small HTTP helpers: JSON responses, JSON errors and bounded body reads.

use futures_util::StreamExt;
use worker::{Headers, Request, Response, Result};

use crate::json;

/// Why a body was not read.
pub(super) enum Refusal {
    TooLarge { limit: usize },
}

pub(super) fn json_response(status: u16, body: &str) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json; charset=utf-8")?;
    headers.set("cache-control", "no-store")?;
    Ok(Response::builder().with_status(status).with_headers(headers).fixed(body.as_bytes().to_vec()))
}

/// `{"error":{"code":…,"message":…,"path":…}}` with `status`.
pub(super) fn error_response(status: u16, code: &str, message: &str, path: &str) -> Result<Response> {
    let mut body = String::with_capacity(96 + message.len());
    body.push_str("{\"error\":{\"code\":");
    json::write_str_escaped(&mut body, code);
    body.push_str(",\"message\":");
    json::write_str_escaped(&mut body, message);
    body.push_str(",\"path\":");
    json::write_str_escaped(&mut body, path);
    body.push_str("}}");
    json_response(status, &body)
}

/// A core error as `400`. (Bodies over the size limit never reach the core:
/// [`read_body`] answers 413 first, so a core `too_large` here is about
/// nesting depth, a bad request rather than a big one.)
pub(super) fn core_error(e: &crate::Error) -> Result<Response> {
    json_response(400, &format!("{{\"error\":{}}}", e.to_json()))
}

/// The bridge is not fully configured: no details here, the public learns
/// nothing of the configuration.
pub(super) fn not_configured() -> Result<Response> {
    error_response(
        503,
        "not_configured",
        "the worker is not fully configured, so it accepts no events; GET /health with the admin token, or `wrangler tail`, names the problems",
        "",
    )
}

/// The hand-off could not be stored: Drift retries.
pub(super) fn unavailable() -> Result<Response> {
    error_response(503, "unavailable", "the events could not be stored for delivery; try again", "")
}

/// The same answer for a missing and a wrong token: no hint which.
pub(super) fn unauthorized() -> Result<Response> {
    error_response(401, "unauthorized", "missing or invalid verification token", "")
}

pub(super) fn method_not_allowed(allow: &str) -> Result<Response> {
    let mut response = error_response(405, "method_not_allowed", &format!("this route accepts {allow}"), "")?;
    response.headers_mut().set("allow", allow)?;
    Ok(response)
}

/// Reads the body, refusing it as soon as it is known to exceed `limit`:
/// first from `Content-Length`, then while reading.
pub(super) async fn read_body(req: &mut Request, limit: usize) -> Result<std::result::Result<Vec<u8>, Refusal>> {
    if let Some(length) = req.headers().get("content-length")? {
        match length.trim().parse::<u64>() {
            Ok(n) if n > limit as u64 => return Ok(Err(Refusal::TooLarge { limit })),
            // The runtime holds the body to its declared length: read it in
            // one piece instead of chunk by chunk.
            Ok(_) => return req.bytes().await.map(Ok),
            Err(_) => {}
        }
    }
    let mut stream = match req.stream() {
        Ok(stream) => stream,
        // No body at all.
        Err(_) => return Ok(Ok(Vec::new())),
    };
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Ok(Err(Refusal::TooLarge { limit }));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Ok(body))
}

/// The query parameters of a request, decoded. Reads the raw URL rather than
/// parsing it with the `url` crate, which would pull IDNA tables into the
/// wasm for nothing.
pub(super) fn query(req: &Request) -> Vec<(String, String)> {
    let url = req.inner().url();
    let Some(query) = url.split_once('?').map(|(_, q)| q.split('#').next().unwrap_or("")) else {
        return Vec::new();
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}
