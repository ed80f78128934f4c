//! Snapshot byte format (being written).
