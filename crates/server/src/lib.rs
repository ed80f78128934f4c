//! The tokio daemon of prewarm (being written).
