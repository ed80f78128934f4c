//! Exchange calendar (being written).
