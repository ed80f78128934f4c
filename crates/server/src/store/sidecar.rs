//! Write-through of fetched values into the application's own Redis under
//! a key template such as `quote:{key}`. Best effort: a failed write is
//! logged and counted, never fails a request.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::StoreError;
use crate::config::SidecarConfig;

/// Writes bodies into the application's Redis.
#[derive(Clone)]
pub struct SidecarWriter {
    conn: ConnectionManager,
    key_template: String,
    ttl: Duration,
}

impl std::fmt::Debug for SidecarWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarWriter")
            .field("key_template", &self.key_template)
            .finish_non_exhaustive()
    }
}

impl SidecarWriter {
    /// Connects to the configured Redis.
    pub async fn connect(cfg: &SidecarConfig) -> Result<Self, StoreError> {
        Ok(Self {
            conn: super::redis::connect(&cfg.redis_url).await?,
            key_template: cfg.key_template.clone(),
            ttl: Duration::from_secs_f64(cfg.ttl_s),
        })
    }

    /// The application key for `key`.
    pub fn app_key(&self, key: &str) -> String {
        self.key_template.replace("{key}", key)
    }

    /// Writes `body` under the application key with the configured TTL.
    pub async fn write(&self, key: &str, body: &[u8]) -> Result<(), StoreError> {
        let mut conn = self.conn.clone();
        let ms = u64::try_from(self.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        redis::cmd("SET")
            .arg(self.app_key(key))
            .arg(body)
            .arg("PX")
            .arg(ms)
            .query_async::<()>(&mut conn)
            .await
            .map_err(|e| StoreError::Backend(e.to_string()))
    }
}
