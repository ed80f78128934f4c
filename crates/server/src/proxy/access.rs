//! `POST /v1/access`: accesses the application served itself, reported so
//! the engine learns from them like proxied ones.
//!
//! Body: a JSON array of `{"dataset","key","client"?,"ts"?,"hit"?}`.
//! The whole batch is validated first; any bad item rejects the batch
//! (400, every error naming its index and field) so a client can fix and
//! resend without duplicates. Accepted: 202 `{"accepted":N,"dropped":M}`
//! (`dropped`: the engine's queue was full).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{AppState, error_response};
use crate::events::AccessEvent;
use crate::service::CacheService;

/// Most items in one access batch.
pub const MAX_ACCESS_ITEMS: usize = 10_000;
const MAX_REPORTED_ERRORS: usize = 100;
const FIELDS: [&str; 5] = ["dataset", "key", "client", "ts", "hit"];

/// One item's problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemError {
    /// Index in the array.
    pub index: usize,
    /// The field at fault.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

pub(super) async fn feed(State(st): State<AppState>, body: axum::body::Bytes) -> Response {
    let items = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Array(items)) => items,
        Ok(_) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                "expected a JSON array".into(),
            );
        }
        Err(e) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("not JSON: {e}"),
            );
        }
    };
    if items.len() > MAX_ACCESS_ITEMS {
        let msg = format!(
            "{} items; at most {MAX_ACCESS_ITEMS} per request",
            items.len()
        );
        return error_response(StatusCode::BAD_REQUEST, "too_many_items", msg);
    }
    let now_s = st.service.clock().now_s();
    match validate(&st.service, &items, now_s) {
        Ok(events) => {
            let total = events.len();
            let accepted = events
                .into_iter()
                .filter(|e| st.service.record_access(e.clone()))
                .count();
            let body = json!({"accepted": accepted, "dropped": total - accepted});
            (StatusCode::ACCEPTED, Json(body)).into_response()
        }
        Err(errors) => {
            let list: Vec<Value> = errors
                .iter()
                .map(|e| json!({"index": e.index, "field": e.field, "message": e.message}))
                .collect();
            let first = &errors[0];
            let message = format!(
                "item {} field {}: {}",
                first.index, first.field, first.message
            );
            let body =
                json!({"error": {"code": "invalid_access", "message": message, "errors": list}});
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
    }
}

/// Validates every item; returns the events or the errors (at most 100).
pub fn validate(
    svc: &CacheService,
    items: &[Value],
    now_s: f64,
) -> Result<Vec<AccessEvent>, Vec<ItemError>> {
    let mut events = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match validate_item(svc, item, now_s) {
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

fn validate_item(
    svc: &CacheService,
    item: &Value,
    now_s: f64,
) -> Result<AccessEvent, (String, String)> {
    let err = |f: &str, m: &str| (f.to_string(), m.to_string());
    let Value::Object(obj) = item else {
        return Err(err("item", "expected an object"));
    };
    if let Some(unknown) = obj.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err((unknown.clone(), "unknown field".into()));
    }
    let dataset = required_str(obj, "dataset")?;
    let ds = svc
        .dataset(dataset)
        .ok_or_else(|| err("dataset", &format!("unknown dataset {dataset:?}")))?;
    let key = required_str(obj, "key")?;
    if let Some(problem) = ds.key_problem(key) {
        return Err(err(
            "key",
            &format!(
                "{} is refused: {problem} (dataset {dataset})",
                crate::http::shown_key(key)
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
        key: key.into(),
        client,
        at_s,
        hit,
    })
}

fn required_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, (String, String)> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err((field.to_string(), "expected a string".into())),
        None => Err((field.to_string(), "missing".into())),
    }
}
