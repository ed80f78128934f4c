//! The upstream side: URL templates, redaction, the HTTP client and each
//! host's health (pause, breaker, warming pace).

pub mod client;
pub mod gate;
pub mod redact;
pub mod retry_after;
pub mod template;

pub use client::{Call, FetchError, Fetched, RateLimitPolicy, UpstreamClient};
pub use gate::{HoldCause, HostGate, Refusal, Role};
pub use redact::Redactor;
pub use template::{Placeholder, UrlTemplate};
