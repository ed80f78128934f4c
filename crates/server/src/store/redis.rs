//! The Redis store: keys `prewarm:{dataset}:{key}`, TTL set in Redis to
//! the retention (`ttl_s + stale_grace_s` from the fetch), value framed as
//! in [`super::frame`] (`PW2`: fetch time, flags, content type, `ETag`,
//! body; `PW1` values still read), so freshness and Age are exact.
//!
//! Evictions are not reported to the engine (the memory store reports
//! them). Redis drops keys under `maxmemory` on its own and nothing in the
//! replies to our commands says so. Seeing it takes keyspace notifications:
//! `notify-keyspace-events` must include `Ee` on the server (a config
//! change that managed services often forbid, and off by default), a
//! dedicated pub/sub connection per node (in a cluster each node only
//! publishes its own keys), and the delivery is fire-and-forget, so events
//! are lost on every reconnect. Run Redis with a `maxmemory` that holds the
//! working set; when it evicts anyway, the engine counts the key as cached
//! until its TTL runs out: a read meanwhile is a miss the engine counts as
//! a hit, and the key is not rewarmed before it expires.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::FutureExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::frame::{decode, encode};
use super::redis_conn::RedisTarget;
use super::{Entry, Store, StoreError, StoreFuture, retention_left_s};
use crate::clock::Clock;
use crate::upstream::redact::Redactor;

const KEY_PREFIX: &str = "prewarm";

/// The Redis store. Its connection is opened on first use (and again
/// after it could not be), so a Redis that is down at start does not stop
/// the daemon; [`super::guard::GuardedStore`] keeps operations away from
/// it while it is down.
#[derive(Clone)]
pub struct RedisStore {
    target: RedisTarget,
    conn: Arc<std::sync::Mutex<Option<ConnectionManager>>>,
    op_timeout: Duration,
    clock: Arc<dyn Clock>,
    stale_grace_s: f64,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("target", &self.target)
            .field("stale_grace_s", &self.stale_grace_s)
            .finish_non_exhaustive()
    }
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(Redactor::new().redact(&e.to_string()))
}

/// Opens a managed (auto-reconnecting) connection to `url` with the
/// sidecar's patience (2 s per command, 2 retries). Errors name the
/// address (with any password redacted).
pub async fn connect(url: &str) -> Result<ConnectionManager, StoreError> {
    connect_with(&RedisTarget::from_url(url), Duration::from_secs(2), 2).await
}

/// [`connect`] to `target` (URL, credentials, CA) with `op_timeout` for
/// connecting and for each command, and `retries` retries of a failed
/// command. Errors name the address, redacted (a wrong password:
/// `Redis at redis://:***@HOST:PORT: WRONGPASS …`).
pub async fn connect_with(
    target: &RedisTarget,
    op_timeout: Duration,
    retries: usize,
) -> Result<ConnectionManager, StoreError> {
    let shown = target.shown();
    let at = |e: &dyn std::fmt::Display| {
        StoreError::Backend(format!(
            "Redis at {shown}: {}",
            target.redact(&e.to_string())
        ))
    };
    let client = target.client().map_err(|e| at(&e))?;
    let cfg = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(op_timeout))
        .set_response_timeout(Some(op_timeout))
        .set_number_of_retries(retries);
    let fut = client.get_connection_manager_with_config(cfg);
    let whole = op_timeout.saturating_mul(u32::try_from(retries + 2).unwrap_or(u32::MAX));
    match tokio::time::timeout(whole, fut).await {
        Ok(r) => r.map_err(|e| at(&e)),
        Err(_) => Err(at(&"timed out connecting")),
    }
}

/// The Redis key of `dataset`/`key`.
pub fn redis_key(dataset: &str, key: &str) -> String {
    format!("{KEY_PREFIX}:{dataset}:{key}")
}

/// `text` with Redis glob characters escaped, for `SCAN MATCH`.
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RedisStore {
    /// Connects to `url` (`redis://HOST:PORT`) now; fails if it cannot.
    pub async fn connect(
        url: &str,
        stale_grace_s: f64,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        Self::connect_to(RedisTarget::from_url(url), stale_grace_s, clock).await
    }

    /// Connects to `target` (URL, credentials, CA) now; fails if it
    /// cannot, naming the redacted address.
    pub async fn connect_to(
        target: RedisTarget,
        stale_grace_s: f64,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let store = Self::lazy(target, stale_grace_s, clock, Duration::from_secs(2))?;
        store.conn().await?;
        Ok(store)
    }

    /// A store on `target` that connects on first use; each connection
    /// attempt and command waits at most `op_timeout`. Fails only on a URL
    /// that is not one, or a CA that cannot be used (no network is used).
    pub fn lazy(
        target: RedisTarget,
        stale_grace_s: f64,
        clock: Arc<dyn Clock>,
        op_timeout: Duration,
    ) -> Result<Self, StoreError> {
        target
            .client()
            .map_err(|e| StoreError::Backend(format!("Redis at {}: {e}", target.shown())))?;
        Ok(Self {
            target,
            conn: Arc::default(),
            op_timeout,
            clock,
            stale_grace_s,
        })
    }

    /// The connection, opened now if there is none yet.
    async fn conn(&self) -> Result<ConnectionManager, StoreError> {
        if let Some(c) = self.conn.lock().ok().and_then(|c| c.clone()) {
            return Ok(c);
        }
        let c = connect_with(&self.target, self.op_timeout, 0).await?;
        if let Ok(mut slot) = self.conn.lock() {
            *slot = Some(c.clone());
        }
        Ok(c)
    }

    /// Every key of the store.
    async fn scan_keys(&self) -> Result<Vec<String>, StoreError> {
        self.scan_matching(&format!("{KEY_PREFIX}:*")).await
    }

    /// Every key matching the glob `pattern`.
    async fn scan_matching(&self, pattern: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn().await?;
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(backend)?;
            keys.extend(batch);
            if next == 0 {
                return Ok(keys);
            }
            cursor = next;
        }
    }
}

impl Store for RedisStore {
    fn get<'a>(&'a self, dataset: &'a str, key: &'a str) -> StoreFuture<'a, Option<Entry>> {
        async move {
            let mut conn = self.conn().await?;
            let raw: Option<Bytes> = redis::cmd("GET")
                .arg(redis_key(dataset, key))
                .query_async(&mut conn)
                .await
                .map_err(backend)?;
            let Some(raw) = raw else { return Ok(None) };
            decode(raw).map(Some).map_err(|reason| StoreError::Corrupt {
                dataset: dataset.to_string(),
                key: key.to_string(),
                reason,
            })
        }
        .boxed()
    }

    fn put<'a>(
        &'a self,
        dataset: &'a str,
        key: &'a str,
        entry: Entry,
        ttl_s: f64,
    ) -> StoreFuture<'a, ()> {
        async move {
            let mut conn = self.conn().await?;
            let left_s = retention_left_s(&entry, ttl_s, self.stale_grace_s, self.clock.now_s());
            let k = redis_key(dataset, key);
            let left_ms = (left_s * 1000.0).ceil();
            if left_ms < 1.0 {
                let _: i64 = redis::cmd("DEL")
                    .arg(k)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend)?;
                return Ok(());
            }
            let _: () = redis::cmd("SET")
                .arg(k)
                .arg(encode(&entry))
                .arg("PX")
                .arg(left_ms.min(1.0e15) as u64)
                .query_async(&mut conn)
                .await
                .map_err(backend)?;
            Ok(())
        }
        .boxed()
    }

    fn remove<'a>(&'a self, dataset: &'a str, key: &'a str) -> StoreFuture<'a, bool> {
        async move {
            let mut conn = self.conn().await?;
            let n: i64 = redis::cmd("DEL")
                .arg(redis_key(dataset, key))
                .query_async(&mut conn)
                .await
                .map_err(backend)?;
            Ok(n > 0)
        }
        .boxed()
    }

    fn remove_dataset<'a>(&'a self, dataset: &'a str) -> StoreFuture<'a, u64> {
        async move {
            let pattern = format!("{}*", glob_escape(&redis_key(dataset, "")));
            let keys = self.scan_matching(&pattern).await?;
            let mut conn = self.conn().await?;
            let mut removed = 0u64;
            for chunk in keys.chunks(500) {
                let n: u64 = redis::cmd("DEL")
                    .arg(chunk)
                    .query_async(&mut conn)
                    .await
                    .map_err(backend)?;
                removed += n;
            }
            Ok(removed)
        }
        .boxed()
    }

    fn len(&self) -> StoreFuture<'_, u64> {
        async move { Ok(self.scan_keys().await?.len() as u64) }.boxed()
    }

    fn approx_bytes(&self) -> StoreFuture<'_, u64> {
        async move {
            let keys = self.scan_keys().await?;
            let mut conn = self.conn().await?;
            let mut total = 0u64;
            for chunk in keys.chunks(500) {
                let mut pipe = redis::pipe();
                for k in chunk {
                    pipe.cmd("STRLEN").arg(k);
                }
                let lens: Vec<u64> = pipe.query_async(&mut conn).await.map_err(backend)?;
                total +=
                    lens.iter().sum::<u64>() + chunk.iter().map(|k| k.len() as u64).sum::<u64>();
            }
            Ok(total)
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_error_names_the_address_and_hides_the_password() {
        // Port 1 on loopback: nothing listens, the connection is refused.
        let e = connect("redis://:hunter2@127.0.0.1:1")
            .await
            .expect_err("nothing listens on port 1");
        let text = e.to_string();
        assert!(text.contains("127.0.0.1:1"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }
}
