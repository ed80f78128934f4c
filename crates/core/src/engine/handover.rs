//! The `cache` snapshot section (version [`SECTION_VERSION`]): which keys
//! the cache held when the snapshot was taken, and when each entry
//! expires. A process that restores it warms those keys first at start-up
//! (they were hot), and a driver whose store kept its values (Redis)
//! enters the ones still fresh there instead of fetching them.
//!
//! Layout, little-endian: `u32` entry count; per entry, a `u16`-length
//! UTF-8 key name and an `f64` expiry (Unix seconds). Entries are sorted
//! by key name, so one state always writes the same bytes.
//!
//! The section is optional: a snapshot without it (an older build's)
//! restores with nothing to hand over. An empty key name, a repeated key,
//! a non-finite expiry or bytes left over are a
//! [`SnapshotError::Malformed`]; reading never panics.

use crate::UnixSeconds;
use crate::snapshot::{Envelope, Reader, Section, SnapshotError, Writer};

/// Name of the section.
pub const SECTION_NAME: &str = "cache";
/// Version of its format.
pub const SECTION_VERSION: u32 = 1;

/// One entry handed over: a key and when its entry expires.
#[derive(Debug, Clone, PartialEq)]
pub struct HandedOver {
    /// The key.
    pub key: Box<str>,
    /// When its entry stops being fresh, Unix seconds.
    pub expires_at_s: UnixSeconds,
}

/// The `cache` section of `entries` (sorted here by key name).
pub fn section(mut entries: Vec<HandedOver>) -> Section {
    entries.sort_by(|a, b| a.key.cmp(&b.key));
    let mut w = Writer::default();
    w.u32(entries.len() as u32);
    for e in &entries {
        w.str16(&e.key);
        w.f64(e.expires_at_s);
    }
    Section {
        name: SECTION_NAME.to_string(),
        version: SECTION_VERSION,
        bytes: w.into_bytes(),
    }
}

/// The entries of `e`'s `cache` section; empty when it has none.
pub fn from_envelope(e: &Envelope) -> Result<Vec<HandedOver>, SnapshotError> {
    match e.section(SECTION_NAME) {
        None => Ok(Vec::new()),
        Some(_) => from_section(e.require(SECTION_NAME, SECTION_VERSION)?),
    }
}

/// Reads a `cache` section.
pub fn from_section(section: &Section) -> Result<Vec<HandedOver>, SnapshotError> {
    if section.version > SECTION_VERSION {
        return Err(SnapshotError::NewerVersion {
            what: section.name.clone(),
            found: section.version,
            supported: SECTION_VERSION,
        });
    }
    let mut r = Reader::new(&section.bytes, "cache section");
    let n = r.u32()? as usize;
    // Each entry takes at least 10 bytes: no count can allocate past them.
    let mut out = Vec::with_capacity(n.min(section.bytes.len() / 10));
    let mut seen = rustc_hash::FxHashSet::default();
    for i in 0..n {
        let key = r.str16()?;
        let expires_at_s = r.f64()?;
        if key.is_empty() {
            return Err(r.error(format_args!("entry {i}: empty key")));
        }
        if !expires_at_s.is_finite() {
            return Err(r.error(format_args!("entry {i} ({key}): expiry {expires_at_s}")));
        }
        if !seen.insert(key) {
            return Err(r.error(format_args!("entry {i}: key {key} repeated")));
        }
        out.push(HandedOver {
            key: key.into(),
            expires_at_s,
        });
    }
    r.finish()?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn entry(key: &str, expires_at_s: f64) -> HandedOver {
        HandedOver {
            key: key.into(),
            expires_at_s,
        }
    }

    #[test]
    fn a_section_round_trips_sorted_by_key() {
        let s = section(vec![entry("MSFT", 20.0), entry("AAPL", 10.5)]);
        let back = from_section(&s).unwrap();
        assert_eq!(back, vec![entry("AAPL", 10.5), entry("MSFT", 20.0)]);
    }

    #[test]
    fn a_snapshot_without_the_section_hands_over_nothing() {
        assert_eq!(from_envelope(&Envelope::default()).unwrap(), vec![]);
    }

    #[test]
    fn malformed_sections_are_typed_errors() {
        let cases = [
            section(vec![entry("", 1.0)]),
            section(vec![entry("A", f64::NAN)]),
            {
                let mut w = Writer::default();
                w.u32(2);
                for _ in 0..2 {
                    w.str16("A");
                    w.f64(1.0);
                }
                Section {
                    name: SECTION_NAME.into(),
                    version: 1,
                    bytes: w.into_bytes(),
                }
            },
        ];
        for s in cases {
            assert!(
                matches!(from_section(&s), Err(SnapshotError::Malformed(_))),
                "{s:?}"
            );
        }
        let newer = Section {
            version: SECTION_VERSION + 1,
            ..section(vec![])
        };
        assert!(matches!(
            from_section(&newer),
            Err(SnapshotError::NewerVersion { .. })
        ));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let s = Section { name: SECTION_NAME.into(), version: SECTION_VERSION, bytes };
            let _ = from_section(&s);
        }

        #[test]
        fn a_cut_section_is_an_error(cut in 0usize..64) {
            let full = section(vec![entry("AAPL", 1.0), entry("MSFT", 2.0)]);
            let s = Section { bytes: full.bytes[..cut.min(full.bytes.len())].to_vec(), ..full.clone() };
            prop_assert_eq!(from_section(&s).is_ok(), cut >= full.bytes.len());
        }
    }
}
