//! The `POST /v1/access` body decoder on arbitrary bytes: a typed error
//! or events, never a panic, and output bounded by the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use prewarm_fuzz::dataset;
use prewarm_server::proxy::access::{
    BodyError, ItemError, MAX_ACCESS_ITEMS, MAX_REPORTED_ERRORS, decode_items, validate,
};

/// Stamp of items without `ts`, Unix seconds.
const NOW_S: f64 = 1_772_000_000.0;
/// Longest field name or message one item error may carry, bytes: keys
/// and names are shortened, never echoed whole.
const MAX_ERROR_TEXT: usize = 1024;
/// A small batch limit, so the fuzzer also meets `too_many_items`.
const SMALL_MAX_ITEMS: usize = 4;

fuzz_target!(|body: &[u8]| {
    for max_items in [MAX_ACCESS_ITEMS, SMALL_MAX_ITEMS] {
        check(body, max_items);
    }
});

fn check(body: &[u8], max_items: usize) {
    let items = match decode_items(body, max_items) {
        Ok(items) => items,
        Err(BodyError::TooManyItems {
            items,
            max_items: m,
        }) => {
            assert!(items > max_items && m == max_items);
            return;
        }
        Err(BodyError::NotJson(_) | BodyError::NotArray) => return,
    };
    assert!(items.len() <= max_items);
    match validate(&dataset, &items, NOW_S) {
        Ok(events) => {
            assert_eq!(events.len(), items.len(), "one event per item");
            for e in &events {
                let ds = dataset(&e.dataset).expect("events name known datasets");
                assert_eq!(ds.key_problem(&e.key), None, "events carry valid keys");
                assert!(e.at_s.is_finite() && e.at_s > 0.0);
                let client_len = e.client.as_deref().map_or(1, str::len);
                assert!((1..=128).contains(&client_len));
            }
        }
        Err(errors) => check_errors(&errors, items.len()),
    }
}

fn check_errors(errors: &[ItemError], items: usize) {
    assert!(!errors.is_empty() && errors.len() <= MAX_REPORTED_ERRORS);
    assert!(errors.windows(2).all(|w| w[0].index < w[1].index));
    assert!(errors.iter().all(|e| e.index < items));
    for e in errors {
        assert!(!e.field.is_empty() && !e.message.is_empty());
        assert!(
            e.field.len() <= MAX_ERROR_TEXT,
            "field of {} bytes",
            e.field.len()
        );
        assert!(
            e.message.len() <= MAX_ERROR_TEXT,
            "message of {} bytes",
            e.message.len()
        );
    }
}
