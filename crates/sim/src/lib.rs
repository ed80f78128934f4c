//! Replay and simulation driver of prewarm (being written).
