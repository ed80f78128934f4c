//! Atomic snapshot files (being written).
