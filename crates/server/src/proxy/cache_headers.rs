//! HTTP cache headers of proxy answers: `Cache-Status` (RFC 9211),
//! `Cache-Control: max-age`, `ETag` with `If-None-Match` (304), and the
//! request's `Cache-Control: no-cache`.
//!
//! `Cache-Status` names the cache `prewarm`, then:
//! - `hit; ttl=N`: answered from the store, fresh for `N` more seconds
//!   (negative when stale);
//! - `hit; fwd=stale; ttl=-N`: answered stale at once while a refresh
//!   went upstream in the background (stale-while-revalidate);
//! - `hit; ttl=-N; detail=upstream-held`: answered stale without a call
//!   (host held back, quota spent, or the key's last fetch failed);
//! - `fwd=miss|stale|request; fwd-status=S; stored; ttl=N`: fetched for
//!   this read (`miss`: no entry, `stale`: the entry was stale, `request`:
//!   the client's `no-cache`), `collapsed` instead of `stored` when it
//!   joined another request's fetch;
//! - `fwd=stale; ttl=-N; detail=upstream-failed`: the fetch failed or was
//!   too slow and the stale entry was answered;
//! - on an error: `fwd=miss; detail=CODE`.
//!
//! `Cache-Control: max-age` is the freshness left in whole seconds (0 for
//! a stale answer); errors are `no-store`.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::config::DatasetConfig;
use crate::service::{CacheStatus, Forwarded, FwdReason, Served};

/// The `Cache-Status` header name.
pub const CACHE_STATUS: &str = "cache-status";
/// The cache's name in `Cache-Status`.
const CACHE_NAME: &str = "prewarm";

/// Whether the request says `Cache-Control: no-cache` (or, without a
/// `Cache-Control`, `Pragma: no-cache`).
pub fn wants_no_cache(headers: &HeaderMap) -> bool {
    let has = |name: header::HeaderName| {
        headers.get_all(name).iter().any(|v| {
            v.to_str().is_ok_and(|t| {
                t.split(',').any(|d| {
                    d.trim()
                        .split('=')
                        .next()
                        .is_some_and(|n| n.trim().eq_ignore_ascii_case("no-cache"))
                })
            })
        })
    };
    if headers.contains_key(header::CACHE_CONTROL) {
        has(header::CACHE_CONTROL)
    } else {
        has(header::PRAGMA)
    }
}

/// Whole seconds of freshness `served` has left at `now_s` (negative when
/// stale).
pub fn ttl_left_s(ds: &DatasetConfig, served: &Served, now_s: f64) -> i64 {
    let left = ds.entry_expires_at(&served.entry) - now_s;
    left.floor() as i64
}

/// The `Cache-Status` value of `served` with `ttl_s` seconds left.
pub fn cache_status(served: &Served, ttl_s: i64) -> String {
    let fwd_status = if served.entry.negative { 404 } else { 200 };
    let params = match (served.status, served.forwarded) {
        (_, Forwarded::No) if served.status == CacheStatus::Stale => {
            format!("hit; ttl={ttl_s}; detail=upstream-held")
        }
        (_, Forwarded::No) => format!("hit; ttl={ttl_s}"),
        (_, Forwarded::Background) => format!("hit; fwd=stale; ttl={ttl_s}"),
        (_, Forwarded::FellBack) => format!("fwd=stale; ttl={ttl_s}; detail=upstream-failed"),
        (_, Forwarded::Waited { reason, collapsed }) => {
            let fwd = match reason {
                FwdReason::Miss => "miss",
                FwdReason::Stale => "stale",
                FwdReason::Request => "request",
            };
            let how = if collapsed { "collapsed" } else { "stored" };
            format!("fwd={fwd}; fwd-status={fwd_status}; {how}; ttl={ttl_s}")
        }
    };
    format!("{CACHE_NAME}; {params}")
}

/// Whether `If-None-Match` of the request matches `etag` (weak
/// comparison, RFC 9110 13.1.2; `*` matches any).
pub fn none_match(request: &HeaderMap, etag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_string();
    let ours = opaque(etag);
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == "*" || opaque(t) == ours)
}

/// What a served read's cache headers say, as values: a single read
/// writes them as headers ([`served_response`]), a batch read as fields of
/// each item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheFacts {
    /// The `Cache-Status` value ([`cache_status`]).
    pub cache_status: String,
    /// The `Cache-Control: max-age` value, seconds: the freshness left, 0
    /// for a stale answer.
    pub max_age_s: u64,
    /// The upstream's `ETag` of the entry (never for a negative entry).
    pub etag: Option<String>,
}

/// The cache facts of `served` at `now_s`.
pub fn cache_facts(ds: &DatasetConfig, served: &Served, now_s: f64) -> CacheFacts {
    let ttl_s = ttl_left_s(ds, served, now_s);
    let max_age_s = if served.status == CacheStatus::Stale {
        0
    } else {
        ttl_s.max(0).unsigned_abs()
    };
    CacheFacts {
        cache_status: cache_status(served, ttl_s),
        max_age_s,
        etag: served.entry.etag.clone().filter(|_| !served.entry.negative),
    }
}

/// The answer to a served read: the body (or 404 for a negative entry,
/// 304 when `If-None-Match` matches its `ETag`) with `X-Cache`, `Age`,
/// `Cache-Status`, `Cache-Control` and `ETag` ([`cache_facts`]).
pub fn served_response(
    ds: &DatasetConfig,
    served: Served,
    request: &HeaderMap,
    now_s: f64,
) -> Response {
    let age = served.entry.age_s(now_s);
    let facts = cache_facts(ds, &served, now_s);
    let etag = facts.etag;
    let mut resp = if served.entry.negative {
        super::error_response(
            StatusCode::NOT_FOUND,
            "upstream_not_found",
            "upstream answered HTTP 404".into(),
        )
    } else if etag.as_deref().is_some_and(|t| none_match(request, t)) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let ct = served
            .entry
            .content_type
            .as_deref()
            .unwrap_or("application/json");
        let mut resp = (StatusCode::OK, served.entry.body).into_response();
        if let Ok(v) = HeaderValue::from_str(ct) {
            resp.headers_mut().insert(header::CONTENT_TYPE, v);
        }
        resp
    };
    let h = resp.headers_mut();
    h.insert("x-cache", HeaderValue::from_static(served.status.as_str()));
    h.insert(header::AGE, HeaderValue::from(age));
    if let Ok(v) = HeaderValue::from_str(&facts.cache_status) {
        h.insert(CACHE_STATUS, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("max-age={}", facts.max_age_s)) {
        h.insert(header::CACHE_CONTROL, v);
    }
    if let Some(v) = etag.and_then(|t| HeaderValue::from_str(&t).ok()) {
        h.insert(header::ETAG, v);
    }
    resp
}

/// The `Cache-Status` value of an error answer with error `code`.
pub fn error_status(code: &str) -> String {
    format!("{CACHE_NAME}; fwd=miss; detail={code}")
}

/// Adds `Cache-Status` (`fwd=miss; detail=CODE`) and `Cache-Control:
/// no-store` to an error answer.
pub fn mark_error(resp: &mut Response, code: &str) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&error_status(code)) {
        h.insert(CACHE_STATUS, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Entry;

    fn served(status: CacheStatus, forwarded: Forwarded) -> Served {
        Served {
            entry: Entry::default(),
            status,
            forwarded,
        }
    }

    #[test]
    fn cache_status_says_hit_forward_and_ttl() {
        let hit = served(CacheStatus::Hit, Forwarded::No);
        assert_eq!(cache_status(&hit, 42), "prewarm; hit; ttl=42");
        let swr = served(CacheStatus::Stale, Forwarded::Background);
        assert_eq!(cache_status(&swr, -3), "prewarm; hit; fwd=stale; ttl=-3");
        let fwd = Forwarded::Waited {
            reason: FwdReason::Miss,
            collapsed: false,
        };
        let miss = served(CacheStatus::Miss, fwd);
        assert_eq!(
            cache_status(&miss, 60),
            "prewarm; fwd=miss; fwd-status=200; stored; ttl=60"
        );
        let fwd = Forwarded::Waited {
            reason: FwdReason::Request,
            collapsed: true,
        };
        let mut negative = served(CacheStatus::Miss, fwd);
        negative.entry.negative = true;
        assert_eq!(
            cache_status(&negative, 30),
            "prewarm; fwd=request; fwd-status=404; collapsed; ttl=30"
        );
    }

    #[test]
    fn if_none_match_compares_weakly_and_lists() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("\"a\", W/\"b\""),
        );
        assert!(none_match(&h, "\"b\""));
        assert!(none_match(&h, "W/\"a\""));
        assert!(!none_match(&h, "\"c\""));
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_static("*"));
        assert!(none_match(&h, "\"c\""));
        assert!(!none_match(&HeaderMap::new(), "\"c\""));
    }

    #[test]
    fn no_cache_is_read_from_cache_control_or_pragma() {
        let mut h = HeaderMap::new();
        assert!(!wants_no_cache(&h));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        assert!(wants_no_cache(&h));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
        assert!(!wants_no_cache(&h), "Cache-Control wins over Pragma");
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("max-age=0, No-Cache"),
        );
        assert!(wants_no_cache(&h));
    }
}
