//! The driver's time: the clock as the driver has seen it (it never goes
//! back) and the latest instant handed to an engine (event times are
//! clamped to it, so the engines see time as non-decreasing).

use std::sync::Arc;

use crate::clock::Clock;

/// The driver's readings of the clock, Unix seconds.
pub(super) struct DriverClock {
    clock: Arc<dyn Clock>,
    /// The latest clock reading seen.
    last_s: f64,
    /// The latest instant handed to an engine.
    engine_s: f64,
}

impl DriverClock {
    /// Starts at `clock`'s reading now; no engine was handed anything yet.
    pub(super) fn new(clock: Arc<dyn Clock>) -> Self {
        let last_s = clock.now_s();
        Self {
            clock,
            last_s,
            engine_s: f64::NEG_INFINITY,
        }
    }

    /// The clock, never behind what the driver has already seen.
    pub(super) fn now_s(&mut self) -> f64 {
        self.last_s = self.last_s.max(self.clock.now_s());
        self.last_s
    }

    /// [`DriverClock::now_s`] for a call into an engine (events after it
    /// are clamped to it).
    pub(super) fn engine_now_s(&mut self) -> f64 {
        let now_s = self.now_s();
        self.handed(now_s);
        now_s
    }

    /// Records that the engines were handed `at_s`.
    pub(super) fn handed(&mut self, at_s: f64) {
        self.engine_s = self.engine_s.max(at_s);
    }

    /// The latest instant handed to an engine (`-inf` before the first).
    pub(super) fn engine_s(&self) -> f64 {
        self.engine_s
    }
}
