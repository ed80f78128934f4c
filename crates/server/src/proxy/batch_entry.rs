//! One key's item in a batch read's answer (`GET`/`POST /v1/{dataset}`):
//! the value with the same cache facts a single read gives as headers
//! ([`super::cache_headers::cache_facts`]), or that key's own error.

use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::cache_headers;
use crate::config::DatasetConfig;
use crate::service::{BatchItem, Served};

/// One key's answer in a batch read: the value, or the key's own error.
/// Absent fields are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct BatchEntry {
    /// `HIT`, `MISS` or `STALE`, as `X-Cache` (absent on error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<&'static str>,
    /// Whole seconds since the fetch, as `Age` (absent on error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub age_s: Option<u64>,
    /// The `Cache-Status` (RFC 9211) a single read of the key would carry,
    /// e.g. `prewarm; hit; ttl=42` or, on error, `prewarm; fwd=miss;
    /// detail=upstream_timeout`.
    pub cache_status: String,
    /// Seconds of freshness left, as `Cache-Control: max-age` (0 when
    /// stale; absent on error, which a single read marks `no-store`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age_s: Option<u64>,
    /// The upstream's `ETag` of the entry; absent when the upstream gave
    /// none, for a negative (404) entry, and on error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// The upstream's body: its JSON, or a string if it is not JSON.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
    /// Why this key has no value: the upstream answered 404 (a negative
    /// entry, with the cache facts above) or the read failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<BatchItemError>,
}

/// The `error` of a [`BatchEntry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BatchItemError {
    /// Machine-readable code, as a single read's error body has it, e.g.
    /// `upstream_not_found`, `invalid_key`, `upstream_timeout`.
    pub code: &'static str,
    /// The HTTP status a single read of the key would have answered.
    pub status: u16,
    /// What a person reads (upstream failures in general terms only).
    pub message: String,
}

impl BatchEntry {
    /// The item of `item` (a key of dataset `ds`, read at `now_s`), keyed
    /// as asked.
    pub fn of(ds: &DatasetConfig, item: BatchItem, now_s: f64) -> (String, BatchEntry) {
        let entry = match item.result {
            Ok(served) => Self::served(ds, served, now_s),
            Err(e) => {
                let (status, code) = super::classify(&e);
                BatchEntry {
                    cache: None,
                    age_s: None,
                    cache_status: cache_headers::error_status(code),
                    max_age_s: None,
                    etag: None,
                    data: None,
                    error: Some(BatchItemError {
                        code,
                        status: status.as_u16(),
                        message: super::public_message(&e),
                    }),
                }
            }
        };
        (item.key, entry)
    }

    fn served(ds: &DatasetConfig, served: Served, now_s: f64) -> BatchEntry {
        let facts = cache_headers::cache_facts(ds, &served, now_s);
        let (data, error) = if served.entry.negative {
            let error = BatchItemError {
                code: "upstream_not_found",
                status: 404,
                message: "upstream answered HTTP 404".into(),
            };
            (None, Some(error))
        } else {
            let body = &served.entry.body;
            let data = serde_json::from_slice::<Value>(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
            (Some(data), None)
        };
        BatchEntry {
            cache: Some(served.status.as_str()),
            age_s: Some(served.entry.age_s(now_s)),
            cache_status: facts.cache_status,
            max_age_s: Some(facts.max_age_s),
            etag: facts.etag,
            data,
            error,
        }
    }
}
