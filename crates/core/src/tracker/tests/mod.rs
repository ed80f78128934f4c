//! Behaviour tests of the tracker (acceptance criteria of the module).

mod coaccess;
mod popularity;
mod snapshot;
mod time;

use super::{AccessContext, Tracker, TrackerConfig};
use chrono::TimeZone;

/// Unix seconds of a New York wall-clock time.
pub(super) fn ny(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> f64 {
    let t = chrono_tz::America::New_York
        .with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("unambiguous");
    t.timestamp() as f64
}

pub(super) fn tracker(max_keys: usize) -> Tracker {
    Tracker::new(TrackerConfig::with_max_keys(max_keys)).expect("valid config")
}

pub(super) fn hit(t: &mut Tracker, key: &str, now_s: f64) {
    t.track_access(key, now_s, &AccessContext::default());
}

pub(super) fn hit_by(t: &mut Tracker, client: &str, key: &str, now_s: f64) {
    t.track_access(
        key,
        now_s,
        &AccessContext {
            client: Some(client),
            groups: &[],
        },
    );
}
