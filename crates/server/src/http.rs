//! What both listeners share, whatever the route: every error is JSON
//! (`{"error":{"code","message"}}`), including the ones axum answers
//! itself before a handler runs (a body over the limit, 413; a path that
//! is not UTF-8, 400; a wrong method, 405), and a key a client sent is
//! shown shortened when it is long ([`shown_key`]).
//!
//! On the proxy listener, `POST /v1/access` (which steers warming) needs
//! `Authorization: Bearer <server.access_token>`; without a configured
//! token it answers 403 `disabled` ([`require_access_token`]).

use axum::body::Body;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;

use crate::admin::auth::constant_time_eq;
use crate::config::AdminToken;
use crate::proxy::error_response;

/// The route that feeds accesses to the engine.
pub const ACCESS_PATH: &str = "/v1/access";

/// Middleware of the proxy listener: requests to [`ACCESS_PATH`] need the
/// bearer `token`; other routes pass.
pub async fn require_access_token(
    axum::extract::State(token): axum::extract::State<Option<std::sync::Arc<AdminToken>>>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path() != ACCESS_PATH {
        return next.run(req).await;
    }
    let Some(token) = token else {
        return error_response(
            StatusCode::FORBIDDEN,
            "disabled",
            "disabled: no access token is configured (set PREWARM_ACCESS_TOKEN or server.access_token)"
                .into(),
        );
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Bearer "))
        .map(str::trim);
    match given {
        Some(t) if constant_time_eq(t.as_bytes(), token.expose()) => next.run(req).await,
        _ => {
            let mut resp = error_response(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "POST /v1/access needs `Authorization: Bearer <access token>`".into(),
            );
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer realm=\"prewarm-access\""),
            );
            resp
        }
    }
}

/// Longest key shown whole in an error message, in characters.
pub const SHOWN_KEY_CHARS: usize = 64;

/// Longest plain-text error body kept as the JSON message, in bytes.
const MAX_MESSAGE_BYTES: usize = 512;

/// `key` quoted for an error message: whole up to [`SHOWN_KEY_CHARS`]
/// characters, else its first ones, an ellipsis and its length in bytes,
/// so a client's megabyte of junk is not echoed back.
pub fn shown_key(key: &str) -> String {
    if key.chars().count() <= SHOWN_KEY_CHARS {
        return format!("{key:?}");
    }
    let head: String = key.chars().take(SHOWN_KEY_CHARS / 2).collect();
    format!("{head:?}… ({} bytes)", key.len())
}

/// The error code of a status axum answered on its own.
fn code_of(status: StatusCode) -> &'static str {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        s if s.is_server_error() => "internal_error",
        _ => "bad_request",
    }
}

/// Middleware: an error response that is not JSON becomes the JSON error
/// shape, with the same status and headers and its text as the message.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = match body.collect().await {
        Ok(b) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
        Err(_) => String::new(),
    };
    let mut message = text.trim().to_string();
    if message.len() > MAX_MESSAGE_BYTES {
        let mut cut = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    if message.is_empty() {
        message = status.canonical_reason().unwrap_or("error").to_string();
    }
    let json = error_response(status, code_of(status), message);
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::new(json.into_body()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_keys_are_shortened_with_their_length() {
        assert_eq!(shown_key("AAPL"), "\"AAPL\"");
        let long = "x".repeat(10_000);
        let shown = shown_key(&long);
        assert!(shown.len() < 60, "{shown}");
        assert!(
            shown.contains('…') && shown.contains("10000 bytes"),
            "{shown}"
        );
        let exact = "y".repeat(SHOWN_KEY_CHARS);
        assert_eq!(shown_key(&exact), format!("{exact:?}"));
    }
}
