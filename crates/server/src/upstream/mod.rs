//! The upstream side: URL templates, redaction and the HTTP client.

pub mod client;
pub mod redact;
pub mod template;

pub use client::{FetchError, Fetched, RateLimitPolicy, UpstreamClient};
pub use redact::Redactor;
pub use template::{Placeholder, UrlTemplate};
