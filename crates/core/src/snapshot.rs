//! The versioned byte format of learned state (pure; files live in
//! `prewarm-persist`).
//!
//! Layout, little-endian:
//!
//! | bytes | field |
//! |---|---|
//! | 6 | magic `PWSNAP` |
//! | 4 | format version ([`FORMAT_VERSION`]) |
//! | 8 | payload length |
//! | 8 | FNV-1a 64 checksum of the payload |
//! | n | payload: `u32` section count, then per section a `u16`-length UTF-8 name, a `u32` section version and a `u64`-length body |
//!
//! An [`Envelope`] carries named, separately versioned sections so each
//! component (tracker, engine, …) adds its own. Invariant: decoding never
//! panics on any input; it returns a typed [`SnapshotError`].

/// Magic bytes that open every snapshot.
pub const MAGIC: &[u8; 6] = b"PWSNAP";
/// The envelope format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 6 + 4 + 8 + 8;

/// Why a snapshot could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The bytes do not start with `PWSNAP`.
    #[error("not a prewarm snapshot (bad magic bytes)")]
    BadMagic,
    /// Written by a newer prewarm (envelope or section version).
    #[error("snapshot {what} version {found} is newer than the supported {supported}")]
    NewerVersion {
        /// `format` or the section name.
        what: String,
        /// Version found.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// Shorter than its header says.
    #[error("snapshot truncated: expected {expected} bytes, found {found}")]
    Truncated {
        /// Bytes the header announces (header included; `u64::MAX` when
        /// that does not fit).
        expected: u64,
        /// Bytes present.
        found: u64,
    },
    /// The payload does not match its checksum.
    #[error(
        "snapshot checksum mismatch: header says {expected:#018x}, payload hashes to {found:#018x}"
    )]
    ChecksumMismatch {
        /// Checksum in the header.
        expected: u64,
        /// Checksum of the payload read.
        found: u64,
    },
    /// A section the reader needs is absent.
    #[error("snapshot has no `{0}` section")]
    MissingSection(String),
    /// Well-formed envelope, inconsistent content.
    #[error("malformed snapshot: {0}")]
    Malformed(String),
}

/// FNV-1a, 64-bit.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A whole snapshot around `payload` (the section table): the header
/// (magic, [`FORMAT_VERSION`], payload length, checksum) then the payload,
/// as [`Envelope::to_bytes`] writes it. [`Envelope::from_bytes`] accepts
/// the result iff `payload` is a well-formed section table, so a fuzzer can
/// reach the section table past the checksum.
pub fn seal(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&fnv1a64(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// One named, versioned section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// Unique name such as `tracker`.
    pub name: String,
    /// Version of the section's own format.
    pub version: u32,
    /// The section body.
    pub bytes: Vec<u8>,
}

/// A snapshot: named sections in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// The sections, names unique.
    pub sections: Vec<Section>,
}

impl Envelope {
    /// Adds (or replaces) a section.
    pub fn put(&mut self, section: Section) {
        self.sections.retain(|s| s.name != section.name);
        self.sections.push(section);
    }

    /// The section called `name`.
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// The section called `name`, checked to be at most version
    /// `supported`.
    pub fn require(&self, name: &str, supported: u32) -> Result<&Section, SnapshotError> {
        let s = self
            .section(name)
            .ok_or_else(|| SnapshotError::MissingSection(name.to_string()))?;
        if s.version > supported {
            return Err(SnapshotError::NewerVersion {
                what: name.to_string(),
                found: s.version,
                supported,
            });
        }
        Ok(s)
    }

    /// Encodes header and payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u32(self.sections.len() as u32);
        for s in &self.sections {
            w.str16(&s.name);
            w.u32(s.version);
            w.u64(s.bytes.len() as u64);
            w.bytes(&s.bytes);
        }
        seal(&w.into_bytes())
    }

    /// Decodes and verifies a snapshot.
    pub fn from_bytes(bytes: &[u8]) -> Result<Envelope, SnapshotError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        if bytes.len() < HEADER_LEN {
            let expected = HEADER_LEN as u64;
            return Err(SnapshotError::Truncated {
                expected,
                found: bytes.len() as u64,
            });
        }
        let mut h = Reader::new(&bytes[MAGIC.len()..HEADER_LEN], "header");
        let version = h.u32()?;
        if version == 0 {
            // No prewarm ever wrote format 0: reading it as 1 would accept
            // bytes that save back differently.
            return Err(SnapshotError::Malformed("format version 0".into()));
        }
        if version > FORMAT_VERSION {
            let what = "format".to_string();
            return Err(SnapshotError::NewerVersion {
                what,
                found: version,
                supported: FORMAT_VERSION,
            });
        }
        let len = h.u64()?;
        let sum = h.u64()?;
        let body = &bytes[HEADER_LEN..];
        if (body.len() as u64) < len {
            // A corrupt length may be near u64::MAX: saturate, never wrap.
            let expected = (HEADER_LEN as u64).saturating_add(len);
            return Err(SnapshotError::Truncated {
                expected,
                found: bytes.len() as u64,
            });
        }
        if body.len() as u64 > len {
            return Err(SnapshotError::Malformed(format!(
                "{} bytes after the payload",
                body.len() as u64 - len
            )));
        }
        let found = fnv1a64(body);
        if found != sum {
            return Err(SnapshotError::ChecksumMismatch {
                expected: sum,
                found,
            });
        }
        let mut r = Reader::new(body, "section table");
        let n = r.u32()?;
        let mut sections = Vec::new();
        for _ in 0..n {
            let name = r.str16()?.to_string();
            let version = r.u32()?;
            let len = r.len_u64()?;
            let bytes = r.take(len)?.to_vec();
            sections.push(Section {
                name,
                version,
                bytes,
            });
        }
        r.finish()?;
        Ok(Envelope { sections })
    }
}

/// Little-endian byte writer for section bodies.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// The bytes written.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
    /// Appends raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    /// Appends a `u8`.
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    /// Appends a `u16`.
    pub fn u16(&mut self, v: u16) {
        self.bytes(&v.to_le_bytes());
    }
    /// Appends a `u32`.
    pub fn u32(&mut self, v: u32) {
        self.bytes(&v.to_le_bytes());
    }
    /// Appends an `i32`.
    pub fn i32(&mut self, v: i32) {
        self.bytes(&v.to_le_bytes());
    }
    /// Appends a `u64`.
    pub fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    /// Appends an `f32` (bit-exact).
    pub fn f32(&mut self, v: f32) {
        self.bytes(&v.to_le_bytes());
    }
    /// Appends an `f64` (bit-exact).
    pub fn f64(&mut self, v: f64) {
        self.bytes(&v.to_le_bytes());
    }
    /// Appends a string of at most 65,535 bytes (longer ones are cut at a
    /// character boundary).
    pub fn str16(&mut self, s: &str) {
        let mut end = s.len().min(u16::MAX as usize);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        self.u16(end as u16);
        self.bytes(&s.as_bytes()[..end]);
    }
}

/// Little-endian byte reader; every error is [`SnapshotError::Malformed`]
/// naming the context and offset.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    context: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads `buf`; `context` names it in errors.
    pub fn new(buf: &'a [u8], context: &'static str) -> Self {
        Reader {
            buf,
            pos: 0,
            context,
        }
    }
    /// A malformed-content error at the current offset.
    pub fn error(&self, what: impl std::fmt::Display) -> SnapshotError {
        SnapshotError::Malformed(format!("{} at byte {}: {what}", self.context, self.pos))
    }
    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        if self.buf.len() - self.pos < n {
            return Err(self.error(format_args!(
                "needs {n} more bytes, {} left",
                self.buf.len() - self.pos
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn arr<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8, SnapshotError> {
        Ok(self.arr::<1>()?[0])
    }
    /// Reads a `u16`.
    pub fn u16(&mut self) -> Result<u16, SnapshotError> {
        self.arr().map(u16::from_le_bytes)
    }
    /// Reads a `u32`.
    pub fn u32(&mut self) -> Result<u32, SnapshotError> {
        self.arr().map(u32::from_le_bytes)
    }
    /// Reads an `i32`.
    pub fn i32(&mut self) -> Result<i32, SnapshotError> {
        self.arr().map(i32::from_le_bytes)
    }
    /// Reads a `u64`.
    pub fn u64(&mut self) -> Result<u64, SnapshotError> {
        self.arr().map(u64::from_le_bytes)
    }
    /// Reads a `u64` length that must fit in what is left.
    pub fn len_u64(&mut self) -> Result<usize, SnapshotError> {
        let n = self.u64()?;
        if n > (self.buf.len() - self.pos) as u64 {
            return Err(self.error(format_args!(
                "length {n} exceeds the {} bytes left",
                self.buf.len() - self.pos
            )));
        }
        Ok(n as usize)
    }
    /// Reads an `f32`.
    pub fn f32(&mut self) -> Result<f32, SnapshotError> {
        self.arr().map(f32::from_le_bytes)
    }
    /// Reads an `f64`.
    pub fn f64(&mut self) -> Result<f64, SnapshotError> {
        self.arr().map(f64::from_le_bytes)
    }
    /// Reads a string written by [`Writer::str16`].
    pub fn str16(&mut self) -> Result<&'a str, SnapshotError> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        std::str::from_utf8(b).map_err(|e| self.error(format_args!("invalid UTF-8: {e}")))
    }
    /// Fails unless every byte was read.
    pub fn finish(&self) -> Result<(), SnapshotError> {
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(self.error(format_args!("{} trailing bytes", self.buf.len() - self.pos)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut e = Envelope::default();
        e.put(Section {
            name: "a".into(),
            version: 1,
            bytes: vec![1, 2, 3],
        });
        e.put(Section {
            name: "b".into(),
            version: 2,
            bytes: vec![],
        });
        e.to_bytes()
    }

    #[test]
    fn round_trip_keeps_sections() {
        let e = Envelope::from_bytes(&sample()).unwrap();
        assert_eq!(e.sections.len(), 2);
        assert_eq!(e.require("a", 1).unwrap().bytes, vec![1, 2, 3]);
        assert!(matches!(
            e.require("b", 1),
            Err(SnapshotError::NewerVersion {
                found: 2,
                supported: 1,
                ..
            })
        ));
        assert_eq!(
            e.require("c", 1),
            Err(SnapshotError::MissingSection("c".into()))
        );
    }

    #[test]
    fn a_format_version_0_is_malformed_not_read_as_1() {
        let env = Envelope::default();
        let mut bytes = env.to_bytes();
        bytes[6..10].copy_from_slice(&0u32.to_le_bytes());
        assert_eq!(
            Envelope::from_bytes(&bytes),
            Err(SnapshotError::Malformed("format version 0".into()))
        );
    }

    #[test]
    fn corrupt_inputs_give_typed_errors() {
        let good = sample();
        assert_eq!(
            Envelope::from_bytes(b"JUNKJUNKJUNK"),
            Err(SnapshotError::BadMagic)
        );
        assert_eq!(Envelope::from_bytes(b""), Err(SnapshotError::BadMagic));
        for cut in [7, HEADER_LEN, good.len() - 1] {
            assert!(
                matches!(
                    Envelope::from_bytes(&good[..cut]),
                    Err(SnapshotError::Truncated { .. })
                ),
                "cut {cut}"
            );
        }
        let mut flipped = good.clone();
        *flipped.last_mut().unwrap() ^= 0x40;
        assert!(matches!(
            Envelope::from_bytes(&flipped),
            Err(SnapshotError::ChecksumMismatch { .. })
        ));
        let mut newer = good.clone();
        newer[6..10].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        assert!(matches!(
            Envelope::from_bytes(&newer),
            Err(SnapshotError::NewerVersion { .. })
        ));
    }

    #[test]
    fn every_single_byte_corruption_is_an_error_not_a_panic() {
        let good = sample();
        for i in 0..good.len() {
            let mut b = good.clone();
            b[i] ^= 0xA5;
            assert!(Envelope::from_bytes(&b).is_err(), "byte {i}");
        }
    }

    /// A header announcing a payload of nearly `u64::MAX` bytes overflowed
    /// the expected length (a panic with overflow checks on).
    #[test]
    fn a_payload_length_near_u64_max_is_truncated_not_an_overflow() {
        let mut b = sample();
        b[10..18].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
        assert_eq!(
            Envelope::from_bytes(&b),
            Err(SnapshotError::Truncated {
                expected: u64::MAX,
                found: b.len() as u64
            })
        );
    }

    #[test]
    fn seal_wraps_a_section_table_as_to_bytes_does() {
        let good = sample();
        assert_eq!(seal(&good[HEADER_LEN..]), good);
        let empty_table = 0u32.to_le_bytes();
        assert_eq!(
            Envelope::from_bytes(&seal(&empty_table)),
            Ok(Envelope::default())
        );
        assert!(matches!(
            Envelope::from_bytes(&seal(b"xy")),
            Err(SnapshotError::Malformed(_))
        ));
    }

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
    }
}
