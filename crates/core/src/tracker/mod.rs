//! Access tracker (being written).
