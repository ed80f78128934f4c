//! Bearer-token access to the admin listener.
//!
//! Invariants:
//! - Mutating routes (POST) need `Authorization: Bearer <token>`; with no
//!   token configured they answer 403 `disabled`, never open.
//! - Read routes need the token only under `admin.protect_reads`.
//! - Tokens are compared in constant time (for a given length) and never
//!   logged or echoed.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::config::{AdminConfig, AdminToken};
use crate::proxy::error_response;

/// Who may use the admin routes.
#[derive(Debug, Clone, Default)]
pub struct AdminAuth {
    token: Option<Arc<AdminToken>>,
    protect_reads: bool,
}

/// Which kind of route a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A GET that only reads.
    Read,
    /// A POST that changes something.
    Write,
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token is configured: the route is off.
    Disabled,
    /// No `Authorization: Bearer` header.
    Missing,
    /// The token does not match.
    Wrong,
}

impl AdminAuth {
    /// From the validated `[admin]` config.
    pub fn new(cfg: &AdminConfig) -> Self {
        Self {
            token: cfg.token.clone().map(Arc::new),
            protect_reads: cfg.protect_reads,
        }
    }

    /// Whether read routes need the token.
    pub fn protects_reads(&self) -> bool {
        self.protect_reads
    }

    /// Decides one request.
    pub fn check(&self, access: Access, headers: &HeaderMap) -> Result<(), Refusal> {
        if access == Access::Read && !self.protect_reads {
            return Ok(());
        }
        let Some(token) = &self.token else {
            return Err(Refusal::Disabled);
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer)
            .ok_or(Refusal::Missing)?;
        if constant_time_eq(given.as_bytes(), token.expose()) {
            Ok(())
        } else {
            Err(Refusal::Wrong)
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let token = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Equality whose time depends only on the lengths, not on where the
/// bytes differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let len = a.len().max(b.len());
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..len {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

fn refusal_response(r: Refusal) -> Response {
    let mut resp = match r {
        Refusal::Disabled => error_response(
            StatusCode::FORBIDDEN,
            "disabled",
            "disabled: no admin token is configured (set PREWARM_ADMIN_TOKEN)".into(),
        ),
        Refusal::Missing => error_response(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing `Authorization: Bearer <token>`".into(),
        ),
        Refusal::Wrong => error_response(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong admin token".into(),
        ),
    };
    if r != Refusal::Disabled {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"prewarm-admin\""),
        );
    }
    resp
}

/// Middleware of read routes.
pub async fn require_read(State(auth): State<AdminAuth>, req: Request, next: Next) -> Response {
    gate(&auth, Access::Read, req, next).await
}

/// Middleware of mutating routes.
pub async fn require_write(State(auth): State<AdminAuth>, req: Request, next: Next) -> Response {
    gate(&auth, Access::Write, req, next).await
}

async fn gate(auth: &AdminAuth, access: Access, req: Request, next: Next) -> Response {
    match auth.check(access, req.headers()) {
        Ok(()) => next.run(req).await,
        Err(r) => {
            tracing::warn!(path = %req.uri().path(), refusal = ?r, "admin request refused");
            refusal_response(r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(token: Option<&str>, protect_reads: bool) -> AdminAuth {
        AdminAuth::new(&AdminConfig {
            token: token.map(AdminToken::new),
            protect_reads,
        })
    }

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn constant_time_eq_compares_whole_and_lengths() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a\0", b"a"));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive_and_needs_a_token() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
        assert_eq!(bearer("abc"), None);
    }

    #[test]
    fn writes_are_disabled_without_token_and_reads_open_by_default() {
        let a = auth(None, false);
        assert_eq!(
            a.check(Access::Write, &with("Bearer x")),
            Err(Refusal::Disabled)
        );
        assert_eq!(a.check(Access::Read, &HeaderMap::new()), Ok(()));
    }

    #[test]
    fn token_decides_writes_and_protected_reads() {
        let a = auth(Some("s3cret"), true);
        assert_eq!(
            a.check(Access::Write, &HeaderMap::new()),
            Err(Refusal::Missing)
        );
        assert_eq!(
            a.check(Access::Write, &with("Bearer nope")),
            Err(Refusal::Wrong)
        );
        assert_eq!(a.check(Access::Write, &with("Bearer s3cret")), Ok(()));
        assert_eq!(
            a.check(Access::Read, &HeaderMap::new()),
            Err(Refusal::Missing)
        );
        assert_eq!(a.check(Access::Read, &with("Bearer s3cret")), Ok(()));
    }
}
