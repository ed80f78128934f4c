//! A small real HTTP upstream started by a test: it records every
//! request's path and headers, answers quotes with an `ETag`, and 404 for
//! symbols starting with `NO`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub key: String,
    pub headers: HeaderMap,
    /// When it arrived (tokio time: paused in most tests).
    pub at: tokio::time::Instant,
}

/// The running upstream.
#[derive(Debug, Clone)]
pub struct Recording {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    delay_ms: Arc<AtomicU64>,
}

#[derive(Debug, Clone)]
struct Upstream {
    seen: Arc<Mutex<Vec<Seen>>>,
    delay_ms: Arc<AtomicU64>,
}

impl Recording {
    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests so far for `key`.
    pub fn calls_for(&self, key: &str) -> usize {
        self.seen().iter().filter(|s| s.key == key).count()
    }

    /// Delays every answer by `ms` (tokio time).
    pub fn set_delay_ms(&self, ms: u64) {
        self.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Requests so far.
    pub fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// The quote URL template for a dataset.
    pub fn url(&self) -> String {
        format!("http://{}/v1/quote/{{key}}", self.addr)
    }
}

async fn quote(
    State(up): State<Upstream>,
    Path(key): Path<String>,
    headers: HeaderMap,
) -> Response {
    let n = {
        let mut seen = up.seen.lock().unwrap();
        seen.push(Seen {
            key: key.clone(),
            headers,
            at: tokio::time::Instant::now(),
        });
        seen.iter().filter(|s| s.key == key).count()
    };
    let delay_ms = up.delay_ms.load(Ordering::SeqCst);
    if delay_ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
    }
    if key.starts_with("NO") {
        return (StatusCode::NOT_FOUND, "{\"error\":\"unknown symbol\"}").into_response();
    }
    let body = format!("{{\"symbol\":\"{key}\",\"version\":{n}}}");
    let etag = format!("\"{key}-v{n}\"");
    (
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::ETAG, etag),
        ],
        body,
    )
        .into_response()
}

/// Starts the upstream on a free loopback port, on the test's runtime.
pub async fn spawn() -> Recording {
    let up = Upstream {
        seen: Arc::new(Mutex::new(Vec::new())),
        delay_ms: Arc::new(AtomicU64::new(0)),
    };
    let app = Router::new()
        .route("/v1/quote/{key}", get(quote))
        .with_state(up.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Recording {
        addr,
        seen: up.seen,
        delay_ms: up.delay_ms,
    }
}
