//! The upstream side: URL templates, request headers, redaction, the HTTP
//! client, each host's health (pause, breaker, warming pace) and the
//! upstream quota (calls per minute, demand first).

pub mod client;
pub mod gate;
pub mod headers;
pub mod quota;
pub mod redact;
pub mod retry_after;
pub mod template;

pub use client::{Call, FetchError, Fetched, RateLimitPolicy, UpstreamClient};
pub use gate::{HoldCause, HostGate, Refusal, Role};
pub use headers::RequestHeaders;
pub use quota::{QuotaConfig, UpstreamQuota};
pub use redact::Redactor;
pub use template::{Placeholder, UrlTemplate};
