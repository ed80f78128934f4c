//! `POST /v1/access`: accesses the application served itself, reported so
//! the engine learns from them like proxied ones.
//!
//! Body: a JSON array of `{"dataset","key","client"?,"ts"?,"hit"?,"groups"?}`.
//! `groups` lists the groups the key belongs to (a sector, a watchlist
//! name): at most [`MAX_GROUPS_PER_ITEM`] names of 1 to
//! [`MAX_GROUP_NAME_BYTES`] bytes each. The engine learns them as
//! membership, as it learns a universe file's, so the sector strategy
//! warms the key's co-members.
//! The whole batch is validated first; any bad item rejects the batch
//! (400, every error naming its index and field) so a client can fix and
//! resend without duplicates. Accepted: 202 `{"accepted":N,"dropped":M}`
//! (`dropped`: the engine's queue was full).
//!
//! Each proxy listener limits the route with one [`AccessLimiter`]: a token
//! bucket of `server.access_rate_limit_per_min` items per minute holding
//! one minute's worth. A batch takes one token per item, all or none; past
//! the limit the answer is 429 `rate_limited` with `Retry-After` (whole
//! seconds until the batch would fit), and a batch larger than the bucket
//! is refused with 400 `too_many_items`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prewarm_core::budget::TokenBucket;
use serde_json::{Map, Value};

use super::{AppState, error_response};
use crate::config::DatasetConfig;
use crate::events::{AccessEvent, AccessFetch};
use crate::http::{SHOWN_KEY_CHARS, shown_key};
use crate::openapi::{AccessAccepted, ErrorBody, ErrorDetail};

/// Most items in one access batch.
pub const MAX_ACCESS_ITEMS: usize = 10_000;
/// Most item errors one refused batch reports.
pub const MAX_REPORTED_ERRORS: usize = 100;
const FIELDS: [&str; 6] = ["dataset", "key", "client", "ts", "hit", "groups"];
/// Most groups one item may name (the engine keeps as many per key).
pub const MAX_GROUPS_PER_ITEM: usize = prewarm_core::tracker::MAX_GROUPS_PER_KEY;
/// Longest group name, bytes.
pub const MAX_GROUP_NAME_BYTES: usize = 64;

/// One item's problem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ItemError {
    /// Index in the array.
    pub index: usize,
    /// The field at fault.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The rate limit of `POST /v1/access` on one proxy listener.
#[derive(Debug)]
pub struct AccessLimiter {
    bucket: std::sync::Mutex<TokenBucket>,
    max_items: usize,
}

impl AccessLimiter {
    /// A bucket of `rate_per_min` items per minute, holding one minute's
    /// worth.
    pub fn new(rate_per_min: f64) -> Self {
        let bucket = TokenBucket::new(rate_per_min, rate_per_min);
        let whole = bucket.burst().floor();
        let max_items = if whole >= MAX_ACCESS_ITEMS as f64 {
            MAX_ACCESS_ITEMS
        } else {
            whole as usize
        };
        Self {
            bucket: std::sync::Mutex::new(bucket),
            max_items,
        }
    }

    /// Most items one batch may hold: [`MAX_ACCESS_ITEMS`], or fewer when
    /// the bucket holds fewer.
    pub fn max_items(&self) -> usize {
        self.max_items
    }

    /// Takes `items` tokens at `now_s`, or returns the seconds until they
    /// would be there (at least 1, whole).
    pub fn try_take(&self, now_s: f64, items: usize) -> Result<(), u64> {
        let Ok(mut bucket) = self.bucket.lock() else {
            return Ok(());
        };
        let n = items as f64;
        if bucket.try_take_n(now_s, n) {
            return Ok(());
        }
        let wait_s = bucket
            .next_tokens_at(now_s, n)
            .map_or(60.0, |at| (at - now_s).max(0.0));
        Err((wait_s.ceil() as u64).max(1))
    }
}

/// 429 `rate_limited` with `Retry-After: retry_after_s`.
fn rate_limited(items: usize, retry_after_s: u64) -> Response {
    let mut resp = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "{items} items exceed the access feed's rate (server.access_rate_limit_per_min); retry in {retry_after_s} s"
        ),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_s));
    resp
}

#[utoipa::path(
    post, path = "/v1/access", tag = "access",
    request_body(content = Vec<crate::openapi::AccessItem>, description = "The accesses, at most 10000 (fewer under a low rate limit)"),
    responses(
        (status = 202, description = "Queued for the engine", body = crate::openapi::AccessAccepted),
        (status = 400, description = "`invalid_body`, `too_many_items`, or `invalid_access` with `errors`: `[{index, field, message}]` (the whole batch is refused)",
         body = crate::openapi::ErrorBody),
        (status = 401, description = "Missing or wrong access token", body = crate::openapi::ErrorBody),
        (status = 403, description = "No access token configured (`disabled`)", body = crate::openapi::ErrorBody),
        (status = 429, description = "`rate_limited`: over server.access_rate_limit_per_min items a minute",
         body = crate::openapi::ErrorBody, headers(("Retry-After" = u64, description = "Seconds until the batch would fit"))),
    ),
    security(("access_token" = []))
)]
pub(super) async fn feed(State(st): State<AppState>, body: axum::body::Bytes) -> Response {
    let items = match decode_items(&body, st.access_limit.max_items()) {
        Ok(items) => items,
        Err(e) => {
            let code = match e {
                BodyError::TooManyItems { .. } => "too_many_items",
                BodyError::NotJson(_) | BodyError::NotArray => "invalid_body",
            };
            return error_response(StatusCode::BAD_REQUEST, code, e.to_string());
        }
    };
    let now_s = st.service.clock().now_s();
    if let Err(retry_after_s) = st.access_limit.try_take(now_s, items.len()) {
        return rate_limited(items.len(), retry_after_s);
    }
    let datasets = |name: &str| st.service.dataset(name).map(|d| &**d);
    match validate(&datasets, &items, now_s) {
        Ok(events) => {
            let total = events.len();
            let accepted = events
                .into_iter()
                .filter(|e| st.service.record_access(e.clone()))
                .count();
            let body = AccessAccepted {
                accepted: accepted as u64,
                dropped: (total - accepted) as u64,
            };
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Err(errors) => {
            let first = &errors[0];
            let message = format!(
                "item {} field {}: {}",
                first.index, first.field, first.message
            );
            let body = ErrorBody {
                error: ErrorDetail {
                    code: "invalid_access".into(),
                    message,
                    errors: Some(errors),
                },
            };
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
    }
}

/// Why an access body was refused as a whole (400, before any item is
/// looked at).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// The body is not JSON (`invalid_body`); the parser's message.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but not an array (`invalid_body`).
    #[error("expected a JSON array")]
    NotArray,
    /// More items than one batch may hold (`too_many_items`).
    #[error("{items} items; at most {max_items} per request")]
    TooManyItems {
        /// Items in the body.
        items: usize,
        /// Most items one batch may hold ([`AccessLimiter::max_items`]).
        max_items: usize,
    },
}

/// Decodes a `/v1/access` body into its items: a JSON array of at most
/// `max_items` values (each checked later by [`validate`]).
pub fn decode_items(body: &[u8], max_items: usize) -> Result<Vec<Value>, BodyError> {
    let items = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items,
        Ok(_) => return Err(BodyError::NotArray),
        Err(e) => return Err(BodyError::NotJson(e.to_string())),
    };
    if items.len() > max_items {
        return Err(BodyError::TooManyItems {
            items: items.len(),
            max_items,
        });
    }
    Ok(items)
}

/// Validates every item against the datasets `datasets` finds by name
/// (the service's, in the daemon); returns one event per item, in order,
/// or the errors (at most [`MAX_REPORTED_ERRORS`], in item order). Items
/// without `ts` are stamped `now_s` (Unix seconds).
pub fn validate<'d>(
    datasets: &dyn Fn(&str) -> Option<&'d DatasetConfig>,
    items: &[Value],
    now_s: f64,
) -> Result<Vec<AccessEvent>, Vec<ItemError>> {
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match validate_item(datasets, item, now_s) {
            Ok(ev) => events.push(ev),
            Err((field, message)) => errors.push(ItemError {
                index,
                field: field.to_string(),
                message,
            }),
        }
        if errors.len() >= MAX_REPORTED_ERRORS {
            break;
        }
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

fn validate_item<'d>(
    datasets: &dyn Fn(&str) -> Option<&'d DatasetConfig>,
    item: &Value,
    now_s: f64,
) -> Result<AccessEvent, (String, String)> {
    let err = |f: &str, m: &str| (f.to_string(), m.to_string());
    let Value::Object(obj) = item else {
        return Err(err("item", "expected an object"));
    };
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err((unknown_field_name(unknown), "unknown field".into()));
    }
    let dataset = required_str(obj, "dataset")?;
    let ds = datasets(dataset).ok_or_else(|| {
        err(
            "dataset",
            &format!("unknown dataset {}", shown_key(dataset)),
        )
    })?;
    let asked = required_str(obj, "key")?;
    // Tracked as the canonical key (case, aliases), as reads are.
    let key = ds.canonical_key(asked);
    if let Some(problem) = ds.key_problem(&key) {
        return Err(err(
            "key",
            &format!(
                "{} is refused: {problem} (dataset {dataset})",
                shown_key(asked)
            ),
        ));
    }
    let client = match obj.get("client") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() && s.len() <= 128 => Some(s.as_str().into()),
        Some(_) => {
            return Err(err(
                "client",
                "expected a non-empty string of at most 128 bytes",
            ));
        }
    };
    let at_s = match obj.get("ts") {
        None | Some(Value::Null) => now_s,
        Some(v) => v
            .as_f64()
            .filter(|t| t.is_finite() && *t > 0.0)
            .ok_or_else(|| err("ts", "expected Unix seconds (a positive number)"))?,
    };
    let hit = match obj.get("hit") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(err("hit", "expected true or false")),
    };
    Ok(AccessEvent {
        dataset: ds.name.clone(),
        key: key.as_ref().into(),
        client,
        at_s,
        hit,
        forced: false,
        fetch: AccessFetch::None,
        groups: groups_of(obj.get("groups"))?,
    })
}

/// The `groups` field: absent, null, or an array of at most
/// [`MAX_GROUPS_PER_ITEM`] non-empty names of at most
/// [`MAX_GROUP_NAME_BYTES`] bytes (repeats dropped).
fn groups_of(value: Option<&Value>) -> Result<Box<[std::sync::Arc<str>]>, (String, String)> {
    let items = match value {
        None | Some(Value::Null) => return Ok(Box::default()),
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(("groups".into(), "expected an array of strings".into()));
        }
    };
    if items.len() > MAX_GROUPS_PER_ITEM {
        let msg = format!(
            "{} groups; at most {MAX_GROUPS_PER_ITEM} per item",
            items.len()
        );
        return Err(("groups".into(), msg));
    }
    let mut out: Vec<std::sync::Arc<str>> = Vec::with_capacity(items.len());
    for (i, g) in items.iter().enumerate() {
        match g {
            Value::String(s) if !s.is_empty() && s.len() <= MAX_GROUP_NAME_BYTES => {
                if !out.iter().any(|o| **o == **s) {
                    out.push(s.as_str().into());
                }
            }
            _ => {
                let msg =
                    format!("expected a non-empty string of at most {MAX_GROUP_NAME_BYTES} bytes");
                return Err((format!("groups[{i}]"), msg));
            }
        }
    }
    Ok(out.into_boxed_slice())
}

/// An unknown field as its error names it: as written when it has 1 to
/// [`SHOWN_KEY_CHARS`] characters, else quoted and shortened
/// ([`shown_key`]), so the name is never empty and never echoed whole.
fn unknown_field_name(name: &str) -> String {
    if name.is_empty() || name.chars().count() > SHOWN_KEY_CHARS {
        shown_key(name)
    } else {
        name.to_string()
    }
}

fn required_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, (String, String)> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err((field.to_string(), "expected a string".into())),
        None => Err((field.to_string(), "missing".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawConfig;
    use serde_json::json;

    #[test]
    fn groups_are_bounded_in_count_and_length_and_deduplicated() {
        let ok = groups_of(Some(&json!(["Tech", "Tech", "SP500"]))).unwrap();
        assert_eq!(
            ok.iter().map(|g| &**g).collect::<Vec<_>>(),
            ["Tech", "SP500"]
        );
        assert!(groups_of(None).unwrap().is_empty());
        assert!(groups_of(Some(&Value::Null)).unwrap().is_empty());
        let five = json!(["a", "b", "c", "d", "e"]);
        assert_eq!(groups_of(Some(&five)).unwrap_err().0, "groups");
        let long = json!(["ok", "x".repeat(MAX_GROUP_NAME_BYTES + 1)]);
        assert_eq!(groups_of(Some(&long)).unwrap_err().0, "groups[1]");
        assert_eq!(groups_of(Some(&json!([""]))).unwrap_err().0, "groups[0]");
        assert_eq!(groups_of(Some(&json!("Tech"))).unwrap_err().0, "groups");
        let longest = json!(["x".repeat(MAX_GROUP_NAME_BYTES)]);
        assert_eq!(groups_of(Some(&longest)).unwrap().len(), 1);
    }

    fn quote() -> DatasetConfig {
        let toml = "[datasets.quote]\nurl = \"http://h/{key}\"\n";
        let cfg = RawConfig::from_toml(toml, "t.toml").unwrap();
        cfg.validate(&|_| None).unwrap().datasets["quote"].clone()
    }

    fn errors(body: &str) -> Vec<ItemError> {
        let ds = quote();
        let lookup = |name: &str| (name == "quote").then_some(&ds);
        let items = decode_items(body.as_bytes(), MAX_ACCESS_ITEMS).unwrap();
        validate(&lookup, &items, 1.7e9).unwrap_err()
    }

    #[test]
    fn an_unknown_field_with_an_empty_name_is_named_in_its_error() {
        let e = errors(r#"[{"dataset":"quote","key":"A","":1}]"#);
        assert_eq!((e[0].index, e[0].field.as_str()), (0, "\"\""));
        let e = errors(r#"[{"dataset":"quote","key":"A","hits":1}]"#);
        assert_eq!(e[0].field, "hits");
    }

    #[test]
    fn a_long_unknown_field_or_dataset_name_is_shortened_in_its_error() {
        let long = "x".repeat(100_000);
        let e = errors(&format!(r#"[{{"dataset":"quote","key":"A","{long}":1}}]"#));
        assert!(e[0].field.len() < 200 && e[0].field.contains("100000 bytes"));
        let e = errors(&format!(r#"[{{"dataset":"{long}","key":"A"}}]"#));
        assert_eq!(e[0].field, "dataset");
        assert!(e[0].message.len() < 200, "{}", e[0].message);
    }

    #[test]
    fn bodies_that_are_not_an_array_of_few_enough_items_are_refused_whole() {
        assert!(matches!(decode_items(b"{", 10), Err(BodyError::NotJson(_))));
        assert_eq!(decode_items(b"{}", 10), Err(BodyError::NotArray));
        assert_eq!(
            decode_items(b"[1,2,3]", 2),
            Err(BodyError::TooManyItems {
                items: 3,
                max_items: 2
            })
        );
        assert_eq!(decode_items(b"[1,2]", 2).unwrap().len(), 2);
    }
}
