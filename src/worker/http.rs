//! Small HTTP helpers: JSON bodies and responses, JSON errors, query strings.
//!
//! The bodies are plain strings so that the bridge's module, which has no
//! workers-rs, answers with exactly the same bytes as the routes served
//! through workers-rs. The helpers that build workers-rs values are in the
//! operator's module only (feature `operator`).

#[cfg(feature = "operator")]
use worker::{Headers, Request, Response, Result};

use crate::json;

#[cfg(feature = "operator")]
pub(super) fn json_response(status: u16, body: &str) -> Result<Response> {
    let headers = Headers::new();
    headers.set("content-type", "application/json; charset=utf-8")?;
    protect(&headers)?;
    Ok(Response::builder().with_status(status).with_headers(headers).fixed(body.as_bytes().to_vec()))
}

/// What every answer of the operator's routes (`/health`, `/admin/…`) carries:
/// never cached, never framed, never sniffed as another type. (The admin
/// page itself gets the same from `www/_headers`.)
#[cfg(feature = "operator")]
pub(super) fn protect(headers: &Headers) -> Result<()> {
    headers.set("cache-control", "no-store")?;
    headers.set("x-content-type-options", "nosniff")?;
    headers.set("x-frame-options", "DENY")?;
    headers.set("content-security-policy", "default-src 'none'; frame-ancestors 'none'")?;
    Ok(())
}

/// `{"error":{"code":…,"message":…,"path":…}}`, appended to `out`.
pub(super) fn write_error(out: &mut String, code: &str, message: &str, path: &str) {
    out.reserve(96 + message.len());
    out.push_str("{\"error\":{\"code\":");
    json::write_str_escaped(out, code);
    out.push_str(",\"message\":");
    json::write_str_escaped(out, message);
    out.push_str(",\"path\":");
    json::write_str_escaped(out, path);
    out.push_str("}}");
}

/// `{"error":{"code":…,"message":…,"path":…}}` with `status`.
#[cfg(feature = "operator")]
pub(super) fn error_response(status: u16, code: &str, message: &str, path: &str) -> Result<Response> {
    let mut body = String::new();
    write_error(&mut body, code, message, path);
    json_response(status, &body)
}

#[cfg(feature = "operator")]
pub(super) fn method_not_allowed(allow: &str) -> Result<Response> {
    let mut response = error_response(405, "method_not_allowed", &format!("this route accepts {allow}"), "")?;
    response.headers_mut().set("allow", allow)?;
    Ok(response)
}

/// The query parameters of a request, decoded. Reads the raw URL rather than
/// parsing it with the `url` crate.
#[cfg(feature = "operator")]
pub(super) fn query(req: &Request) -> Vec<(String, String)> {
    let url = req.inner().url();
    match url.split_once('?') {
        Some((_, query)) => query_pairs(query.split('#').next().unwrap_or("")),
        None => Vec::new(),
    }
}

/// The pairs of a query string (the part after `?`), decoded.
#[cfg(feature = "operator")]
pub(super) fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

#[cfg(feature = "operator")]
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

#[cfg(feature = "operator")]
fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}
