//! The admin API: dead letters and replays. Off unless `ADMIN_TOKEN` is set;
//! every call needs `Authorization: Bearer <ADMIN_TOKEN>`.
//!
//! - `GET /admin/deliveries?status=failed` (or `gone`, `replayed`)
//! - `POST /admin/deliveries/{delivery id}/replay`

use worker::{Env, Method, Request, Response, Result};

use super::delivery::{outbox, QUEUE_BINDING};
use super::http::{error_response, json_response, method_not_allowed};
use super::outbox::DEAD_LETTERS;
use crate::config::Config;
use crate::delivery::Message;
use crate::json::{self, Limits, Value};

pub async fn route(req: &Request, env: &Env, config: &Config, path: &str) -> Result<Response> {
    let Some(tokens) = &config.admin else {
        return error_response(404, "not_found", "the admin routes are off; set ADMIN_TOKEN to turn them on", "");
    };
    let presented = req.headers().get("authorization")?.unwrap_or_default();
    let authorized = presented.strip_prefix("Bearer ").is_some_and(|t| tokens.accepts(t.trim()));
    if !authorized {
        return error_response(401, "unauthorized", "missing or invalid admin token (Authorization: Bearer <ADMIN_TOKEN>)", "");
    }
    let rest = path.trim_start_matches("/admin/deliveries");
    if rest.is_empty() || rest == "/" {
        if req.method() != Method::Get {
            return method_not_allowed("GET");
        }
        return list(req, env).await;
    }
    if let Some(id) = rest.strip_prefix('/').and_then(|r| r.strip_suffix("/replay")) {
        if req.method() != Method::Post {
            return method_not_allowed("POST");
        }
        return replay(env, config, id).await;
    }
    error_response(404, "not_found", "admin routes: GET /admin/deliveries?status=failed, POST /admin/deliveries/{id}/replay", "")
}

async fn list(req: &Request, env: &Env) -> Result<Response> {
    let status = super::http::query(req).into_iter().find(|(k, _)| k == "status").map_or_else(|| "failed".into(), |(_, v)| v);
    if !matches!(status.as_str(), "failed" | "gone" | "replayed") {
        return error_response(400, "invalid_parameter", "status must be failed, gone or replayed", "status");
    }
    let mut body = String::from("{\"status\":");
    json::write_str_escaped(&mut body, &status);
    body.push('}');
    let rows = outbox(env, DEAD_LETTERS, "/dead/list", body).await?;
    json_response(200, &format!("{{\"deliveries\":{rows}}}"))
}

async fn replay(env: &Env, config: &Config, id: &str) -> Result<Response> {
    let mut body = String::from("{\"id\":");
    json::write_str_escaped(&mut body, id);
    body.push('}');
    let row = outbox(env, DEAD_LETTERS, "/dead/get", body.clone()).await?;
    let row = json::parse(&row, &Limits { max_bytes: usize::MAX, ..Limits::default() }).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let Some(message) = row.get("message").and_then(|m| Message::from_value(m).ok()) else {
        return error_response(404, "not_found", &format!("no dead letter {id}"), "");
    };
    if row.get("status").and_then(Value::as_str).is_some_and(|s| s.eq_text("replayed")) {
        return error_response(409, "already_replayed", &format!("{id} was already replayed"), "");
    }
    let mut rearm = format!("{{\"graceMs\":{},\"message\":", i64::from(config.recovery_grace_seconds) * 1000);
    json::write_str_escaped(&mut rearm, &message.encode());
    rearm.push('}');
    outbox(env, &message.scope, "/rearm", rearm).await?;
    if let Err(e) = env.queue(QUEUE_BINDING)?.send(message.encode()).await {
        return error_response(503, "queue_unavailable", &format!("the delivery queue refused the replay: {e}"), "");
    }
    outbox(env, DEAD_LETTERS, "/dead/replayed", body).await?;
    let mut out = String::from("{\"replayed\":");
    json::write_str_escaped(&mut out, id);
    out.push('}');
    json_response(202, &out)
}
