//! The upstream HTTP client.
//!
//! Invariants:
//! - At most `max_concurrent` requests in flight (a semaphore permit is
//!   held for each attempt, not during backoff or pauses).
//! - Every attempt passes its host's [`HostGate`] first: no call during a
//!   429 pause or while the breaker is open (one probe goes first after
//!   either), warming also not during its back-off.
//! - 5xx, timeouts and transport errors are retried (up to the call's
//!   `max_retries`) with full-jitter exponential backoff, never past the
//!   call's deadline.
//! - A 429 pauses the host for its `Retry-After` (seconds or HTTP-date,
//!   capped at `retry_after_max_s`; 1 s when absent or invalid). A call
//!   either fails fast or waits the pause out while its policy allows.
//! - With an upstream quota ([`UpstreamQuota`]), every attempt (retries
//!   included) takes a call from it after its gate admits it: demand waits
//!   for one while its policy and `quota.queue_s` allow, else fails with
//!   [`FetchError::QuotaExhausted`]; warming never waits and never takes
//!   the calls reserved for demand.
//! - Every URL and error text passes through the [`Redactor`]; a dataset's
//!   request headers are sent as configured and never logged.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::HeaderMap;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::gate::{Admission, GateSettings, HoldCause, HostGate, Outcome, Refusal, Role};
use super::quota::UpstreamQuota;

mod quota_wait;
use super::redact::Redactor;
use super::retry_after::{RetryAfter, parse_retry_after};
use crate::clock::Clock;
use crate::config::UpstreamConfig;

/// What a fetch got.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// Response body.
    pub body: Bytes,
    /// Response content type.
    pub content_type: Option<String>,
    /// Response `ETag`, as sent.
    pub etag: Option<String>,
}

/// Why a fetch failed. Cloned to every coalesced waiter; texts are redacted
/// and meant for logs (clients get a generic message).
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
    /// Rate limited and the pause outlasts what the call may wait.
    #[error("upstream rate limit: retry after {retry_after_s:.1} s")]
    RateLimited {
        /// Seconds until upstream accepts calls again.
        retry_after_s: f64,
    },
    /// The upstream quota (`upstream.rate_limit_per_min`) has no call
    /// left for this one within what it may wait.
    #[error("upstream quota spent: a call frees in {retry_after_s:.1} s")]
    QuotaExhausted {
        /// Seconds until a call frees.
        retry_after_s: f64,
    },
    /// The host's circuit breaker is open after repeated failures.
    #[error("upstream unavailable (circuit open): retry after {retry_after_s:.1} s")]
    Unavailable {
        /// Seconds until the next probe.
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

/// What to do when the host is rate limiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitPolicy {
    /// Sleep out a pause that ends before this instant.
    WaitUntil(Instant),
    /// Return [`FetchError::RateLimited`] at once.
    FailFast,
}

/// How one `get` may behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// No attempt runs past this (the flight's deadline, see
    /// [`UpstreamClient::flight_deadline`]).
    pub deadline: Instant,
    /// While rate limited.
    pub policy: RateLimitPolicy,
    /// Demand or warming.
    pub role: Role,
    /// Retries after a 5xx, timeout or transport error.
    pub max_retries: u32,
}

enum Attempt {
    /// Never reached the host (no permit before the deadline).
    NotSent(FetchError),
    /// The host answered a 4xx other than 429.
    Refused(FetchError),
    /// 429.
    RateLimited(RetryAfter),
    /// 5xx, timeout, transport error.
    Failed(FetchError),
}

/// The shared upstream client.
#[derive(Debug)]
pub struct UpstreamClient {
    http: reqwest::Client,
    permits: Arc<Semaphore>,
    cfg: UpstreamConfig,
    gates: Mutex<HashMap<String, Arc<HostGate>>>,
    quota: Option<UpstreamQuota>,
    clock: Arc<dyn Clock>,
    redactor: Arc<Redactor>,
    jitter_state: AtomicU64,
    attempts: AtomicU64,
}

/// Pause after a 429 without a valid `Retry-After`, seconds.
const DEFAULT_RETRY_AFTER_S: f64 = 1.0;
/// Shortest pause after a 429, seconds.
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
            quota: cfg.quota.map(UpstreamQuota::new),
            cfg,
            gates: Mutex::new(HashMap::new()),
            clock,
            redactor,
            jitter_state: AtomicU64::new(seed),
            attempts: AtomicU64::new(0),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> &UpstreamConfig {
        &self.cfg
    }

    /// The gate of `url`'s host (scheme, host and port), made on first use.
    pub fn gate(&self, url: &str) -> Arc<HostGate> {
        let host = host_of(url);
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(gate) = gates.get(&host) {
            return Arc::clone(gate);
        }
        let settings = GateSettings {
            breaker_failures: self.cfg.breaker_failures,
            breaker_open_s: self.cfg.breaker_open_s,
            breaker_window_calls: self.cfg.breaker_window_calls,
            breaker_min_calls: self.cfg.breaker_min_calls,
            breaker_failure_ratio: self.cfg.breaker_failure_ratio,
            warm_backoff_base_s: self.cfg.warm_backoff_base_s,
            warm_backoff_max_s: self.cfg.warm_backoff_max_s,
        };
        let gate = Arc::new(HostGate::new(self.redactor.redact(&host), settings));
        gates.insert(host, Arc::clone(&gate));
        gate
    }

    /// Until when warming is held back on some host (429 pause, open
    /// breaker or warming back-off) or by the upstream quota (no call
    /// above the demand reserve), Unix seconds; past = not held.
    pub fn paused_until_s(&self) -> f64 {
        let gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        let quota_s = self.quota_free_at_s(Role::Warm);
        gates
            .values()
            .map(|g| g.warm_held_until_s())
            .fold(quota_s.unwrap_or(0.0), f64::max)
    }

    /// The upstream quota, if one is configured.
    pub fn quota(&self) -> Option<&UpstreamQuota> {
        self.quota.as_ref()
    }

    /// When the quota frees a call for `role` (Unix seconds), if it has
    /// none now; `None` without a quota or with a call free.
    pub fn quota_free_at_s(&self, role: Role) -> Option<f64> {
        let now_s = self.clock.now_s();
        let at_s = self.quota.as_ref()?.free_at_s(role, now_s);
        (at_s > now_s).then_some(at_s)
    }

    /// Whether a call of `role` to `url` would be refused now.
    pub fn refusal(&self, url: &str, role: Role) -> Option<Refusal> {
        self.gate(url).refusal(role, self.clock.now_s())
    }

    /// The deadline of a flight started now: every attempt and retry of
    /// the configured limits fits before it, that is
    /// `timeout × (max_retries + 1) + backoff_max × max_retries`. Clients
    /// may give up earlier; the flight does not.
    pub fn flight_deadline(&self) -> Instant {
        Instant::now() + self.flight_budget()
    }

    /// How long a flight may take: every attempt and retry of the
    /// configured limits (see [`UpstreamClient::flight_deadline`]).
    pub fn flight_budget(&self) -> Duration {
        let retries = self.cfg.max_retries;
        self.cfg.timeout.saturating_mul(retries.saturating_add(1))
            + self.cfg.backoff_max.saturating_mul(retries)
    }

    /// The longest a demand fetch can take from the read that starts it
    /// to its report, seconds: a wait in the quota's queue, then a whole
    /// flight. The driver holds warming of a key that long at most while
    /// its demand fetch is awaited.
    pub fn longest_demand_fetch_s(&self) -> f64 {
        let queue_s = self.quota.as_ref().map_or(0.0, |q| q.config().queue_s);
        queue_s + self.flight_budget().as_secs_f64()
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

    /// GETs `url` as `call` allows.
    pub async fn get(&self, url: &str, call: Call) -> Result<Fetched, FetchError> {
        self.get_with(url, &HeaderMap::new(), call).await
    }

    /// GETs `url` with `headers` (a dataset's request headers) as `call`
    /// allows.
    pub async fn get_with(
        &self,
        url: &str,
        headers: &HeaderMap,
        call: Call,
    ) -> Result<Fetched, FetchError> {
        self.get_sent(url, headers, call).await.0
    }

    /// [`UpstreamClient::get_with`], and whether any attempt reached the
    /// host: `false` when the quota, the host's hold or the breaker refused
    /// the call before it was sent (no API call was made).
    pub async fn get_sent(
        &self,
        url: &str,
        headers: &HeaderMap,
        call: Call,
    ) -> (Result<Fetched, FetchError>, bool) {
        let mut sent = false;
        let result = self.get_counting(url, headers, call, &mut sent).await;
        (result, sent)
    }

    async fn get_counting(
        &self,
        url: &str,
        headers: &HeaderMap,
        call: Call,
        sent: &mut bool,
    ) -> Result<Fetched, FetchError> {
        let gate = self.gate(url);
        let queue_until = self
            .quota
            .as_ref()
            .map(|q| Instant::now() + Duration::from_secs_f64(q.config().queue_s));
        let mut retries = 0u32;
        loop {
            let admission = self.admit_within_quota(&gate, &call, queue_until).await?;
            let attempt = self.attempt(url, headers, call.deadline).await;
            *sent |= !matches!(attempt, Err(Attempt::NotSent(_)));
            let now_s = self.clock.now_s();
            let e = match attempt {
                Ok(fetched) => {
                    gate.report(admission, call.role, Outcome::Answered, now_s);
                    return Ok(fetched);
                }
                Err(Attempt::NotSent(e)) => return Err(e),
                Err(Attempt::Refused(e)) => {
                    gate.report(admission, call.role, Outcome::Answered, now_s);
                    return Err(e);
                }
                Err(Attempt::RateLimited(header)) => {
                    let pause_s = self.pause_for(url, header);
                    gate.report(admission, call.role, Outcome::RateLimited(pause_s), now_s);
                    continue;
                }
                Err(Attempt::Failed(e)) => {
                    gate.report(admission, call.role, Outcome::Failed, now_s);
                    e
                }
            };
            let backoff = self.backoff(retries);
            if retries >= call.max_retries || Instant::now() + backoff >= call.deadline {
                return Err(e);
            }
            retries += 1;
            metrics::counter!("prewarm_upstream_retries_total").increment(1);
            tracing::debug!(url = %self.redactor.redact(url), error = %e, retries, "retrying upstream");
            tokio::time::sleep(backoff).await;
        }
    }

    /// Seconds to pause after a 429 whose `Retry-After` said `header`.
    fn pause_for(&self, url: &str, header: RetryAfter) -> f64 {
        let cap_s = self.cfg.retry_after_max_s;
        let pause_s = header.pause_s(DEFAULT_RETRY_AFTER_S, MIN_RETRY_AFTER_S, cap_s);
        let url = self.redactor.redact(url);
        metrics::counter!("prewarm_upstream_rate_limited_total").increment(1);
        match header {
            RetryAfter::Invalid => {
                tracing::warn!(%url, pause_s, "upstream rate limit with an invalid Retry-After (neither digits nor an HTTP-date); treated as absent");
            }
            RetryAfter::After(s) if s > cap_s => {
                tracing::warn!(%url, retry_after_s = s, pause_s, "upstream rate limit; Retry-After capped by upstream.retry_after_max_s");
            }
            _ => tracing::warn!(%url, pause_s, "upstream rate limit; pausing"),
        }
        pause_s
    }

    /// Waits for the gate to admit the call, as its policy allows.
    async fn admit(&self, gate: &HostGate, call: &Call) -> Result<Admission, FetchError> {
        loop {
            let now_s = self.clock.now_s();
            let refusal = match gate.admit(call.role, now_s) {
                Ok(admission) => return Ok(admission),
                Err(r) => r,
            };
            let left_s = (refusal.until_s - now_s).max(0.0);
            let wake = Instant::now() + Duration::from_secs_f64(left_s);
            match (refusal.cause, call.policy) {
                (HoldCause::RateLimit, RateLimitPolicy::WaitUntil(limit))
                    if wake < limit.min(call.deadline) =>
                {
                    tokio::time::sleep_until(wake).await;
                }
                (HoldCause::Breaker, _) => {
                    return Err(FetchError::Unavailable {
                        retry_after_s: left_s,
                    });
                }
                _ => {
                    return Err(FetchError::RateLimited {
                        retry_after_s: left_s,
                    });
                }
            }
        }
    }

    async fn attempt(
        &self,
        url: &str,
        headers: &HeaderMap,
        deadline: Instant,
    ) -> Result<Fetched, Attempt> {
        let _permit = match tokio::time::timeout_at(deadline, self.permits.acquire()).await {
            Ok(Ok(p)) => p,
            Ok(Err(_)) => {
                return Err(Attempt::NotSent(FetchError::Transport(
                    "client closed".into(),
                )));
            }
            Err(_) => return Err(Attempt::NotSent(FetchError::Timeout)),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Attempt::NotSent(FetchError::Timeout));
        }
        self.attempts.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("prewarm_upstream_requests_total").increment(1);
        let per_try = left.min(self.cfg.timeout);
        let sent = tokio::time::timeout(per_try, async {
            let resp = self
                .http
                .get(url)
                .headers(headers.clone())
                .timeout(per_try)
                .send()
                .await?;
            let status = resp.status().as_u16();
            let got = |name| resp.headers().get(name).cloned();
            let retry_after = got(reqwest::header::RETRY_AFTER);
            let texts = (
                got(reqwest::header::CONTENT_TYPE),
                got(reqwest::header::ETAG),
            );
            let body = resp.bytes().await?;
            Ok::<_, reqwest::Error>((status, retry_after, texts, body))
        })
        .await;
        let (status, retry_after, (ct, etag), body) = match sent {
            Err(_) => return Err(Attempt::Failed(FetchError::Timeout)),
            Ok(Err(e)) if e.is_timeout() => return Err(Attempt::Failed(FetchError::Timeout)),
            Ok(Err(e)) => return Err(Attempt::Failed(self.transport(&e))),
            Ok(Ok(parts)) => parts,
        };
        match status {
            200..=299 => Ok(Fetched {
                body,
                content_type: ct.and_then(|v| v.to_str().ok().map(str::to_string)),
                etag: etag.and_then(|v| v.to_str().ok().map(str::to_string)),
            }),
            429 => {
                let header = retry_after.as_ref().map(|v| v.as_bytes());
                Err(Attempt::RateLimited(parse_retry_after(
                    header,
                    self.clock.now_s(),
                )))
            }
            _ => {
                let snippet = String::from_utf8_lossy(&body[..body.len().min(200)]).to_string();
                let e = FetchError::Status {
                    status,
                    message: self.redactor.redact(&snippet),
                };
                if status >= 500 {
                    Err(Attempt::Failed(e))
                } else {
                    Err(Attempt::Refused(e))
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

/// The gate key of `url`: scheme, host and port (the whole text when it
/// does not parse).
fn host_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}:{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port_or_known_default().unwrap_or(0)
        ),
        Err(_) => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    fn client() -> UpstreamClient {
        UpstreamClient::new(
            UpstreamConfig::default(),
            Arc::new(SystemClock),
            Arc::new(Redactor::new()),
        )
        .unwrap()
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
    fn hosts_have_their_own_gates() {
        let c = client();
        let a = c.gate("http://127.0.0.1:9/x/AAPL");
        assert!(Arc::ptr_eq(&a, &c.gate("http://127.0.0.1:9/y?k=1")));
        assert!(!Arc::ptr_eq(&a, &c.gate("http://127.0.0.1:10/x")));
        assert!(!Arc::ptr_eq(&a, &c.gate("https://127.0.0.1:9/x")));
    }

    #[tokio::test]
    async fn fail_fast_while_paused_makes_no_call() {
        let c = client();
        let url = "http://127.0.0.1:9/x";
        let gate = c.gate(url);
        let now_s = c.clock.now_s();
        let a = gate.admit(Role::Demand, now_s).unwrap();
        gate.report(a, Role::Demand, Outcome::RateLimited(30.0), now_s);
        assert!(c.paused_until_s() >= now_s + 30.0);
        let call = Call {
            deadline: Instant::now() + Duration::from_secs(60),
            policy: RateLimitPolicy::FailFast,
            role: Role::Demand,
            max_retries: 0,
        };
        let err = c.get(url, call).await.unwrap_err();
        assert!(matches!(err, FetchError::RateLimited { .. }), "{err:?}");
        assert_eq!(c.attempts(), 0);
    }
}
