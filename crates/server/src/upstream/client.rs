//! The upstream HTTP client.
//!
//! Invariants:
//! - At most `max_concurrent` requests in flight (a semaphore permit is
//!   held for each attempt, not during backoff or pauses).
//! - 5xx, timeouts and transport errors are retried with full-jitter
//!   exponential backoff, never past the caller's deadline.
//! - A 429 sets `paused_until_s` (from Retry-After). Warming checks it and
//!   stays off; a demand fetch either fails fast (the caller has a stale
//!   entry to serve) or waits out the pause within its deadline.
//! - Every URL and error text passes through the [`Redactor`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::redact::Redactor;
use crate::clock::Clock;
use crate::config::UpstreamConfig;

/// What a fetch got.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// Response body.
    pub body: Bytes,
    /// Response content type.
    pub content_type: Option<String>,
}

/// Why a fetch failed. Cloned to every coalesced waiter; texts are redacted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    /// A non-success status after any retries.
    #[error("upstream answered {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Start of the body (redacted).
        message: String,
    },
    /// Rate limited and the pause outlasts the deadline (or fail-fast).
    #[error("upstream rate limit: retry after {retry_after_s:.1} s")]
    RateLimited {
        /// Seconds until upstream accepts calls again.
        retry_after_s: f64,
    },
    /// No answer before the deadline.
    #[error("upstream timed out")]
    Timeout,
    /// Connection or protocol failure (redacted).
    #[error("upstream unreachable: {0}")]
    Transport(String),
    /// A batch response that could not be split into keys.
    #[error("bad upstream batch response: {0}")]
    BadBatch(String),
    /// The key was absent from the batch response.
    #[error("key missing from the upstream batch response")]
    NotInBatch,
    /// The loader stopped without a result (panicked).
    #[error("upstream fetch abandoned: the loader stopped without a result")]
    Abandoned,
}

/// What to do when upstream is rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitPolicy {
    /// Sleep out the pause if it ends before the deadline.
    WaitWithinDeadline,
    /// Return [`FetchError::RateLimited`] at once.
    FailFast,
}

enum Attempt {
    RateLimited(f64),
    Retryable(FetchError),
    Fatal(FetchError),
}

/// The shared upstream client.
#[derive(Debug)]
pub struct UpstreamClient {
    http: reqwest::Client,
    permits: Arc<Semaphore>,
    cfg: UpstreamConfig,
    paused_until_bits: AtomicU64,
    clock: Arc<dyn Clock>,
    redactor: Arc<Redactor>,
    jitter_state: AtomicU64,
    attempts: AtomicU64,
}

const DEFAULT_RETRY_AFTER_S: f64 = 1.0;
const MIN_RETRY_AFTER_S: f64 = 0.05;

impl UpstreamClient {
    /// A client with `cfg`'s limits.
    pub fn new(
        cfg: UpstreamConfig,
        clock: Arc<dyn Clock>,
        redactor: Arc<Redactor>,
    ) -> Result<Self, FetchError> {
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout)
            .pool_max_idle_per_host(cfg.max_concurrent)
            .build()
            .map_err(|e| FetchError::Transport(redactor.redact(&e.to_string())))?;
        let seed = crate::clock::unix_now_s().to_bits() | 1;
        Ok(Self {
            http,
            permits: Arc::new(Semaphore::new(cfg.max_concurrent)),
            cfg,
            paused_until_bits: AtomicU64::new(0f64.to_bits()),
            clock,
            redactor,
            jitter_state: AtomicU64::new(seed),
            attempts: AtomicU64::new(0),
        })
    }

    /// Until when upstream asked us to stop (Unix seconds; past = not paused).
    pub fn paused_until_s(&self) -> f64 {
        f64::from_bits(self.paused_until_bits.load(Ordering::Acquire))
    }

    /// Whether upstream is rate limiting us now.
    pub fn is_paused(&self) -> bool {
        self.paused_until_s() > self.clock.now_s()
    }

    /// Extends the pause to at least `until_s`.
    pub fn pause_until(&self, until_s: f64) {
        let _ = self
            .paused_until_bits
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                (until_s > f64::from_bits(bits)).then_some(until_s.to_bits())
            });
    }

    /// Configured concurrency limit.
    pub fn max_concurrent(&self) -> usize {
        self.cfg.max_concurrent
    }

    /// HTTP attempts made so far (including retries).
    pub fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    /// The redactor used for every URL and error text.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// GETs `url`, retrying as configured, giving up at `deadline`.
    pub async fn get(
        &self,
        url: &str,
        deadline: Instant,
        policy: RateLimitPolicy,
    ) -> Result<Fetched, FetchError> {
        let mut retries = 0u32;
        loop {
            self.wait_out_pause(deadline, policy).await?;
            match self.attempt(url, deadline).await {
                Ok(fetched) => return Ok(fetched),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::RateLimited(retry_after_s)) => {
                    metrics::counter!("prewarm_upstream_rate_limited_total").increment(1);
                    tracing::warn!(url = %self.redactor.redact(url), retry_after_s, "upstream rate limit; pausing warming");
                    self.pause_until(self.clock.now_s() + retry_after_s);
                }
                Err(Attempt::Retryable(e)) => {
                    let backoff = self.backoff(retries);
                    if retries >= self.cfg.max_retries || Instant::now() + backoff >= deadline {
                        return Err(e);
                    }
                    retries += 1;
                    metrics::counter!("prewarm_upstream_retries_total").increment(1);
                    tracing::debug!(url = %self.redactor.redact(url), error = %e, retries, "retrying upstream");
                    tokio::time::sleep(backoff).await;
                }
            }
        }
    }

    async fn wait_out_pause(
        &self,
        deadline: Instant,
        policy: RateLimitPolicy,
    ) -> Result<(), FetchError> {
        let left_s = self.paused_until_s() - self.clock.now_s();
        if left_s <= 0.0 {
            return Ok(());
        }
        let wait = Duration::from_secs_f64(left_s);
        if policy == RateLimitPolicy::FailFast || Instant::now() + wait >= deadline {
            return Err(FetchError::RateLimited {
                retry_after_s: left_s,
            });
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    async fn attempt(&self, url: &str, deadline: Instant) -> Result<Fetched, Attempt> {
        let _permit = match tokio::time::timeout_at(deadline, self.permits.acquire()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => {
                return Err(Attempt::Fatal(FetchError::Transport(
                    "client closed".into(),
                )));
            }
            Err(_) => return Err(Attempt::Fatal(FetchError::Timeout)),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Attempt::Fatal(FetchError::Timeout));
        }
        self.attempts.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("prewarm_upstream_requests_total").increment(1);
        let per_try = left.min(self.cfg.timeout);
        let sent = tokio::time::timeout(per_try, async {
            let resp = self.http.get(url).timeout(per_try).send().await?;
            let status = resp.status().as_u16();
            let retry_after = resp.headers().get(reqwest::header::RETRY_AFTER).cloned();
            let ct = resp.headers().get(reqwest::header::CONTENT_TYPE).cloned();
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, retry_after, ct, body))
        })
        .await;
        let (status, retry_after, ct, body) = match sent {
            Err(_) => return Err(Attempt::Retryable(FetchError::Timeout)),
            Ok(Err(e)) if e.is_timeout() => return Err(Attempt::Retryable(FetchError::Timeout)),
            Ok(Err(e)) => return Err(Attempt::Retryable(self.transport(&e))),
            Ok(Ok(parts)) => parts,
        };
        match status {
            200..=299 => Ok(Fetched {
                body,
                content_type: ct.and_then(|v| v.to_str().ok().map(str::to_string)),
            }),
            429 => Err(Attempt::RateLimited(parse_retry_after(
                retry_after.as_ref(),
            ))),
            _ => {
                let snippet = String::from_utf8_lossy(&body[..body.len().min(200)]).to_string();
                let e = FetchError::Status {
                    status,
                    message: self.redactor.redact(&snippet),
                };
                if status >= 500 {
                    Err(Attempt::Retryable(e))
                } else {
                    Err(Attempt::Fatal(e))
                }
            }
        }
    }

    fn transport(&self, e: &reqwest::Error) -> FetchError {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        FetchError::Transport(self.redactor.redact(&text))
    }

    /// Full jitter: uniform in `[0, min(max, base * 2^retries)]`.
    fn backoff(&self, retries: u32) -> Duration {
        let cap = self
            .cfg
            .backoff_base
            .saturating_mul(1u32.checked_shl(retries.min(20)).unwrap_or(u32::MAX))
            .min(self.cfg.backoff_max);
        let unit = (self.next_random() >> 11) as f64 / (1u64 << 53) as f64;
        cap.mul_f64(unit)
    }

    fn next_random(&self) -> u64 {
        // splitmix64 over an atomic counter: cheap, lock-free, good enough
        // to decorrelate retries.
        let mut z = self
            .jitter_state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Seconds from a Retry-After header (delta-seconds form); 1 s if absent
/// or unreadable (HTTP-date form included), never below 50 ms.
pub fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> f64 {
    value
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .unwrap_or(DEFAULT_RETRY_AFTER_S)
        .max(MIN_RETRY_AFTER_S)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use reqwest::header::HeaderValue;

    fn client() -> UpstreamClient {
        UpstreamClient::new(
            UpstreamConfig::default(),
            Arc::new(SystemClock),
            Arc::new(Redactor::new()),
        )
        .unwrap()
    }

    #[test]
    fn retry_after_parses_seconds_with_fallback() {
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("12"))),
            12.0
        );
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("soon"))),
            1.0
        );
        assert_eq!(parse_retry_after(None), 1.0);
        assert_eq!(
            parse_retry_after(Some(&HeaderValue::from_static("0"))),
            0.05
        );
    }

    #[test]
    fn backoff_stays_under_its_cap() {
        let c = client();
        for retries in 0..30 {
            let cap =
                (c.cfg.backoff_base * 2u32.saturating_pow(retries.min(20))).min(c.cfg.backoff_max);
            assert!(c.backoff(retries) <= cap);
        }
    }

    #[test]
    fn pause_only_extends() {
        let c = client();
        let now = c.clock.now_s();
        c.pause_until(now + 100.0);
        c.pause_until(now + 10.0);
        assert_eq!(c.paused_until_s(), now + 100.0);
        assert!(c.is_paused());
    }

    #[tokio::test]
    async fn fail_fast_while_paused_makes_no_call() {
        let c = client();
        c.pause_until(c.clock.now_s() + 30.0);
        let deadline = Instant::now() + Duration::from_secs(60);
        let err = c
            .get("http://127.0.0.1:9/x", deadline, RateLimitPolicy::FailFast)
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::RateLimited { .. }), "{err:?}");
        assert_eq!(c.attempts(), 0);
    }
}
