//! The daemon's clock: Unix seconds as `f64`, the unit the engine takes.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current time in seconds since the Unix epoch.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Seconds since the Unix epoch.
    fn now_s(&self) -> f64;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_s(&self) -> f64 {
        unix_now_s()
    }
}

/// Seconds since the Unix epoch from the system clock.
pub fn unix_now_s() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A clock anchored to the wall clock at creation that then advances with
/// `tokio::time::Instant`, so tests running on tokio's paused time can move
/// it with `tokio::time::advance`.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    base_unix_s: f64,
    base_instant: tokio::time::Instant,
}

impl TokioClock {
    /// A clock reading `base_unix_s` now.
    pub fn starting_at(base_unix_s: f64) -> Self {
        Self {
            base_unix_s,
            base_instant: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::starting_at(unix_now_s())
    }
}

impl Clock for TokioClock {
    fn now_s(&self) -> f64 {
        self.base_unix_s + self.base_instant.elapsed().as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::starting_at(1_000.0);
        assert_eq!(clock.now_s(), 1_000.0);
        tokio::time::advance(std::time::Duration::from_millis(2_500)).await;
        assert!((clock.now_s() - 1_002.5).abs() < 1e-6);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(SystemClock.now_s() > 1_577_836_800.0);
    }
}
