//! The byte format of an [`Entry`] in Redis.
//!
//! Two versions are read; the newer is written:
//! - `PW1`: magic, fetch time (f64 LE), content type length (u16 LE),
//!   content type, body. No `ETag`, never negative.
//! - `PW2`: magic, fetch time (f64 LE), flags (u8: bit 0 negative),
//!   content type length (u16 LE), content type, `ETag` length (u16 LE),
//!   `ETag`, body.
//!
//! Entries written by an older daemon (`PW1`) still read, with no `ETag`.
//! A content type or `ETag` longer than 65,535 bytes is dropped, not cut.

use bytes::Bytes;

use super::Entry;

const MAGIC_V1: &[u8; 3] = b"PW1";
const MAGIC_V2: &[u8; 3] = b"PW2";
const FLAG_NEGATIVE: u8 = 1;

/// `entry` as `PW2` bytes.
pub(super) fn encode(entry: &Entry) -> Vec<u8> {
    let ct = short(entry.content_type.as_deref());
    let etag = short(entry.etag.as_deref());
    let mut out = Vec::with_capacity(16 + ct.len() + etag.len() + entry.body.len());
    out.extend_from_slice(MAGIC_V2);
    out.extend_from_slice(&entry.fetched_at_s.to_le_bytes());
    out.push(if entry.negative { FLAG_NEGATIVE } else { 0 });
    for field in [ct, etag] {
        out.extend_from_slice(&(field.len() as u16).to_le_bytes());
        out.extend_from_slice(field);
    }
    out.extend_from_slice(&entry.body);
    out
}

/// The bytes of an optional text field, empty when absent or too long.
fn short(text: Option<&str>) -> &[u8] {
    let bytes = text.unwrap_or("").as_bytes();
    if bytes.len() > usize::from(u16::MAX) {
        &[]
    } else {
        bytes
    }
}

/// Reads `PW2` or `PW1` bytes; the error says what is wrong.
pub(super) fn decode(raw: Bytes) -> Result<Entry, String> {
    let mut r = Reader { raw, at: 0 };
    let magic = r.take(3)?;
    let v2 = match magic.as_ref() {
        m if m == MAGIC_V2 => true,
        m if m == MAGIC_V1 => false,
        _ => return Err("missing PW1/PW2 header".into()),
    };
    let mut f = [0u8; 8];
    f.copy_from_slice(&r.take(8)?);
    let flags = if v2 { r.take(1)?[0] } else { 0 };
    let content_type = r.text("content type")?;
    let etag = if v2 { r.text("ETag")? } else { None };
    Ok(Entry {
        fetched_at_s: f64::from_le_bytes(f),
        content_type,
        etag,
        negative: flags & FLAG_NEGATIVE != 0,
        body: r.raw.slice(r.at..),
    })
}

struct Reader {
    raw: Bytes,
    at: usize,
}

impl Reader {
    fn take(&mut self, n: usize) -> Result<Bytes, String> {
        if self.raw.len() < self.at + n {
            return Err(format!("truncated at byte {}", self.at));
        }
        let out = self.raw.slice(self.at..self.at + n);
        self.at += n;
        Ok(out)
    }

    /// A u16-length-prefixed UTF-8 field; empty is `None`.
    fn text(&mut self, what: &str) -> Result<Option<String>, String> {
        let len = self.take(2)?;
        let len = usize::from(u16::from_le_bytes([len[0], len[1]]));
        let bytes = self.take(len).map_err(|_| format!("truncated {what}"))?;
        let text = std::str::from_utf8(&bytes).map_err(|e| format!("{what}: {e}"))?;
        Ok((!text.is_empty()).then(|| text.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> Entry {
        Entry {
            body: Bytes::from_static(b"{\"p\":1}"),
            fetched_at_s: 1_772_461_800.123_456,
            content_type: Some("application/json".into()),
            etag: Some("W/\"abc\"".into()),
            negative: false,
        }
    }

    #[test]
    fn framing_round_trips() {
        let e = full();
        assert_eq!(decode(Bytes::from(encode(&e))).unwrap(), e);
        let bare = Entry {
            content_type: None,
            etag: None,
            ..full()
        };
        assert_eq!(decode(Bytes::from(encode(&bare))).unwrap(), bare);
        let negative = Entry {
            body: Bytes::new(),
            negative: true,
            ..full()
        };
        assert_eq!(decode(Bytes::from(encode(&negative))).unwrap(), negative);
        assert!(decode(Bytes::from_static(b"junk")).is_err());
        let mut cut = encode(&e);
        cut.truncate(14);
        assert!(decode(Bytes::from(cut)).is_err());
    }

    /// Entries written before the ETag was kept (`PW1`) must still read.
    #[test]
    fn pw1_entries_written_before_etags_still_read() {
        let ct = b"application/json";
        let mut old = Vec::new();
        old.extend_from_slice(b"PW1");
        old.extend_from_slice(&1_772_461_800.5f64.to_le_bytes());
        old.extend_from_slice(&(ct.len() as u16).to_le_bytes());
        old.extend_from_slice(ct);
        old.extend_from_slice(b"{\"p\":2}");
        let e = decode(Bytes::from(old)).unwrap();
        assert_eq!(e.fetched_at_s, 1_772_461_800.5);
        assert_eq!(e.content_type.as_deref(), Some("application/json"));
        assert_eq!(e.body.as_ref(), b"{\"p\":2}");
        assert_eq!((e.etag, e.negative), (None, false));
    }
}
