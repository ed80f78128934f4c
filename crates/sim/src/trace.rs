//! Trace reader: `timestamp,key[,client][,...]` CSV, optionally gzip'd.
//!
//! Rules (docs/replay-semantics.md, "Input"):
//! - a `.gz` suffix means gzip (concatenated members are read too);
//! - a first line whose first field does not parse as a finite number is a
//!   header and is skipped; when the header's third column is `client`
//!   (ASCII case-insensitive), that column is the client id;
//! - other extra columns are ignored; fields are trimmed of ASCII
//!   whitespace (so `\r\n` line ends work); there is no CSV quoting;
//! - timestamps are non-decreasing seconds; a decrease, an unparsable or
//!   non-finite timestamp, an empty key or client, a missing column or a
//!   line that is not UTF-8 is an error naming the file and the 1-based
//!   line number. Nothing is skipped silently.
//!
//! The parser reads line by line into one reused buffer and allocates only
//! when it meets a key or client it has not seen before.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use flate2::read::MultiGzDecoder;
use rustc_hash::FxHashMap;

/// A request trace, one entry per request, in file order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    /// Display name: the file name for [`read_trace`], the given name for
    /// [`read_trace_from`].
    pub name: String,
    /// Request timestamps, seconds since the Unix epoch, non-decreasing.
    pub times_s: Vec<f64>,
    /// Interned key of each request; index into [`Trace::keys`].
    pub key_ids: Vec<u32>,
    /// Key id -> key, in order of first appearance.
    pub keys: Vec<Box<str>>,
    /// Interned client of each request, when the header names a `client`
    /// column; index into [`Trace::clients`].
    pub client_ids: Option<Vec<u32>>,
    /// Client id -> client, in order of first appearance (empty without a
    /// client column).
    pub clients: Vec<Box<str>>,
}

impl Trace {
    /// Number of requests.
    pub fn len(&self) -> usize {
        self.times_s.len()
    }

    /// Whether the trace holds no request.
    pub fn is_empty(&self) -> bool {
        self.times_s.is_empty()
    }

    /// Number of distinct keys.
    pub fn distinct_keys(&self) -> usize {
        self.keys.len()
    }

    /// Number of distinct clients (0 without a client column).
    pub fn distinct_clients(&self) -> usize {
        self.clients.len()
    }
}

/// Why a trace could not be read. `file` is the path (or the name given to
/// [`read_trace_from`]).
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("{file}: cannot open trace: {cause}")]
    Open { file: String, cause: io::Error },
    /// A bad line; `line` is 1-based and counts the header.
    #[error("{file}:{line}: {kind}")]
    Line {
        file: String,
        line: u64,
        kind: LineError,
    },
}

/// What is wrong with a line of a trace.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("read error: {0}")]
    Read(io::Error),
    #[error("line is not valid UTF-8")]
    InvalidUtf8,
    #[error("cannot parse timestamp {text:?} as a finite number of seconds")]
    BadTimestamp { text: String },
    #[error(
        "timestamp {timestamp_s} is not a plausible number of seconds since 1970 \
         (at most {MAX_ABS_TIMESTAMP_S:e} in magnitude; milliseconds?)"
    )]
    ImplausibleTimestamp { timestamp_s: f64 },
    #[error(
        "timestamp {timestamp_s} is before the previous request's {previous_s}; \
         timestamps must be non-decreasing"
    )]
    DecreasingTimestamp { previous_s: f64, timestamp_s: f64 },
    #[error("missing column `{column}`")]
    MissingColumn { column: &'static str },
    #[error("empty key")]
    EmptyKey,
    #[error("empty client")]
    EmptyClient,
    #[error("more than 2^32 distinct values in column `{column}`")]
    TooManyDistinct { column: &'static str },
}

impl TraceError {
    /// The 1-based line the error is about, if it is about one.
    pub fn line(&self) -> Option<u64> {
        match self {
            Self::Open { .. } => None,
            Self::Line { line, .. } => Some(*line),
        }
    }
}

/// Lines between two calls of the progress callback.
const PROGRESS_EVERY_LINES: u64 = 1 << 16;

/// Reads a trace file; gzip'd iff the path ends in `.gz`.
pub fn read_trace(path: &Path) -> Result<Trace, TraceError> {
    read_trace_with_progress(path, &mut |_, _| {})
}

/// Like [`read_trace`], calling `progress(bytes_read, total_bytes)` every
/// few tens of thousands of lines and once at the end. Both counts are of
/// the file on disk (compressed bytes for `.gz`), so they suit a progress
/// bar.
pub fn read_trace_with_progress(
    path: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Trace, TraceError> {
    let file_label = path.display().to_string();
    let open_error = |cause| TraceError::Open {
        file: file_label.clone(),
        cause,
    };
    let file = File::open(path).map_err(open_error)?;
    let total_bytes = file.metadata().map_err(open_error)?.len();
    let bytes_read = Rc::new(Cell::new(0u64));
    let counted = CountingReader {
        inner: file,
        bytes_read: Rc::clone(&bytes_read),
    };
    let mut report = || progress(bytes_read.get(), total_bytes);
    let name = path
        .file_name()
        .map_or_else(|| file_label.clone(), |n| n.to_string_lossy().into_owned());
    let is_gz = path.extension().is_some_and(|e| e == "gz");
    let mut trace = if is_gz {
        let decoder = MultiGzDecoder::new(BufReader::new(counted));
        parse(BufReader::new(decoder), &file_label, &mut report)?
    } else {
        parse(BufReader::new(counted), &file_label, &mut report)?
    };
    trace.name = name;
    Ok(trace)
}

/// Reads an uncompressed trace from any buffered reader; `name` names it in
/// the result and in errors.
pub fn read_trace_from(reader: impl BufRead, name: &str) -> Result<Trace, TraceError> {
    let mut trace = parse(reader, name, &mut || {})?;
    trace.name = name.to_owned();
    Ok(trace)
}

/// Counts the bytes read from the underlying file for progress reporting.
struct CountingReader<R> {
    inner: R,
    bytes_read: Rc<Cell<u64>>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bytes_read.set(self.bytes_read.get() + n as u64);
        Ok(n)
    }
}

/// Maps distinct strings to dense `u32` ids.
///
/// Strings of at most [`INLINE_MAX`] bytes (tickers, CIKs, video ids) are
/// looked up by value packed into two words, so a lookup reads no key
/// bytes from the heap; longer ones go through a map of boxed strings.
#[derive(Default)]
struct Interner {
    short_ids: FxHashMap<[u64; 2], u32>,
    long_ids: FxHashMap<Box<str>, u32>,
    names: Vec<Box<str>>,
}

/// Longest string the interner packs inline (the 16th byte is the length).
const INLINE_MAX: usize = 15;

/// `s` packed with its length, if it fits: distinct strings pack distinctly.
fn pack_inline(s: &str) -> Option<[u64; 2]> {
    let bytes = s.as_bytes();
    if bytes.len() > INLINE_MAX {
        return None;
    }
    let mut buf = [0u8; 16];
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[15] = bytes.len() as u8;
    let (lo, hi) = buf.split_at(8);
    Some([lo, hi].map(|half| {
        let mut word = [0u8; 8];
        word.copy_from_slice(half);
        u64::from_le_bytes(word)
    }))
}

impl Interner {
    /// The id of `s`, allocating one if new; `None` past `u32::MAX` ids.
    fn intern(&mut self, s: &str) -> Option<u32> {
        let packed = pack_inline(s);
        let known = match packed {
            Some(packed) => self.short_ids.get(&packed),
            None => self.long_ids.get(s),
        };
        if let Some(&id) = known {
            return Some(id);
        }
        let id = u32::try_from(self.names.len()).ok()?;
        self.names.push(s.into());
        match packed {
            Some(packed) => self.short_ids.insert(packed, id),
            None => self.long_ids.insert(s.into(), id),
        };
        Some(id)
    }
}

/// Parser state shared by the line loop.
struct Parser<'a> {
    file: &'a str,
    line: u64,
    previous_s: f64,
    times_s: Vec<f64>,
    key_ids: Vec<u32>,
    keys: Interner,
    /// `Some` iff the header names a `client` column.
    client_ids: Option<Vec<u32>>,
    clients: Interner,
}

fn parse(
    mut reader: impl BufRead,
    file: &str,
    progress: &mut dyn FnMut(),
) -> Result<Trace, TraceError> {
    let mut p = Parser {
        file,
        line: 0,
        previous_s: f64::NEG_INFINITY,
        times_s: Vec::new(),
        key_ids: Vec::new(),
        keys: Interner::default(),
        client_ids: None,
        clients: Interner::default(),
    };
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        p.line += 1;
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| p.error(LineError::Read(e)))?;
        if n == 0 {
            break;
        }
        let text = std::str::from_utf8(&buf).map_err(|_| p.error(LineError::InvalidUtf8))?;
        if p.line == 1 && is_header(text) {
            p.client_ids = has_client_column(text).then(Vec::new);
            continue;
        }
        p.record(text)?;
        if p.line.is_multiple_of(PROGRESS_EVERY_LINES) {
            progress();
        }
    }
    progress();
    Ok(Trace {
        name: String::new(),
        times_s: p.times_s,
        key_ids: p.key_ids,
        keys: p.keys.names,
        client_ids: p.client_ids,
        clients: p.clients.names,
    })
}

/// Whether a first line is a header: its first field is not a number.
fn is_header(line: &str) -> bool {
    let first = line.split(',').next().unwrap_or("");
    parse_seconds(first).is_none()
}

/// Whether a header line names `client` as its third column.
fn has_client_column(header: &str) -> bool {
    header
        .split(',')
        .nth(2)
        .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case("client"))
}

/// The largest timestamp magnitude read, seconds (year 5138): a larger
/// one is almost surely in milliseconds or microseconds, and would make a
/// replay walk its timers over millennia.
pub const MAX_ABS_TIMESTAMP_S: f64 = 1e11;

/// A finite number of seconds, or `None`.
fn parse_seconds(field: &str) -> Option<f64> {
    field
        .trim_ascii()
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite())
}

impl Parser<'_> {
    /// Parses one request line and appends it.
    fn record(&mut self, text: &str) -> Result<(), TraceError> {
        let mut fields = text.split(',');
        let ts_field = fields.next().unwrap_or("").trim_ascii();
        let time_s = parse_seconds(ts_field).ok_or_else(|| {
            let text = ts_field.to_owned();
            self.error(LineError::BadTimestamp { text })
        })?;
        if time_s.abs() > MAX_ABS_TIMESTAMP_S {
            return Err(self.error(LineError::ImplausibleTimestamp {
                timestamp_s: time_s,
            }));
        }
        if time_s < self.previous_s {
            return Err(self.error(LineError::DecreasingTimestamp {
                previous_s: self.previous_s,
                timestamp_s: time_s,
            }));
        }
        let key = self.field(fields.next(), "key", LineError::EmptyKey)?;
        let key_id = self.keys.intern(key).ok_or_else(|| self.too_many("key"))?;
        if self.client_ids.is_some() {
            let client = self.field(fields.next(), "client", LineError::EmptyClient)?;
            let client_id = self.clients.intern(client);
            let client_id = client_id.ok_or_else(|| self.too_many("client"))?;
            if let Some(ids) = self.client_ids.as_mut() {
                ids.push(client_id);
            }
        }
        self.previous_s = time_s;
        self.times_s.push(time_s);
        self.key_ids.push(key_id);
        Ok(())
    }

    /// A present, non-empty column, trimmed.
    fn field<'t>(
        &self,
        field: Option<&'t str>,
        column: &'static str,
        if_empty: LineError,
    ) -> Result<&'t str, TraceError> {
        match field.map(str::trim_ascii) {
            None => Err(self.error(LineError::MissingColumn { column })),
            Some("") => Err(self.error(if_empty)),
            Some(value) => Ok(value),
        }
    }

    fn too_many(&self, column: &'static str) -> TraceError {
        self.error(LineError::TooManyDistinct { column })
    }

    fn error(&self, kind: LineError) -> TraceError {
        TraceError::Line {
            file: self.file.to_owned(),
            line: self.line,
            kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn read(text: &str) -> Result<Trace, TraceError> {
        read_trace_from(text.as_bytes(), "t.csv")
    }

    /// The line error of `text`, with its line number.
    fn line_error(text: &str) -> (u64, LineError) {
        match read(text) {
            Err(TraceError::Line { line, kind, .. }) => (line, kind),
            other => panic!("expected a line error, got {other:?}"),
        }
    }

    #[test]
    fn header_is_skipped_and_keys_are_interned() {
        let t = read("timestamp,key\n1,a\n2,b\n2,a\n").unwrap();
        assert_eq!(t.name, "t.csv");
        assert_eq!(t.times_s, vec![1.0, 2.0, 2.0]);
        assert_eq!(t.key_ids, vec![0, 1, 0]);
        assert_eq!(t.keys, vec!["a".into(), "b".into()] as Vec<Box<str>>);
        assert_eq!((t.len(), t.distinct_keys()), (3, 2));
        assert!(t.client_ids.is_none());
    }

    #[test]
    fn first_line_that_is_a_number_is_data() {
        let t = read("1.5,a\n2,b\n").unwrap();
        assert_eq!(t.times_s, vec![1.5, 2.0]);
    }

    #[test]
    fn header_is_only_recognised_on_the_first_line() {
        let (line, kind) = line_error("1,a\ntimestamp,key\n");
        assert!(line == 2 && matches!(kind, LineError::BadTimestamp { .. }));
    }

    #[test]
    fn client_column_is_read_when_the_header_names_it() {
        let t = read("timestamp,key,Client,extra\n1,a,c1,x\n2,b,c2,y\n3,a,c1,z\n").unwrap();
        assert_eq!(t.client_ids, Some(vec![0, 1, 0]));
        assert_eq!(t.clients, vec!["c1".into(), "c2".into()] as Vec<Box<str>>);
        assert_eq!(t.distinct_clients(), 2);
    }

    #[test]
    fn third_column_not_named_client_is_ignored() {
        let t = read("timestamp,key,agent\n1,a,c1\n2,b\n").unwrap();
        assert!(t.client_ids.is_none());
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn missing_or_empty_client_names_the_line() {
        let (line, kind) = line_error("timestamp,key,client\n1,a,c\n2,b\n");
        assert!(line == 3 && matches!(kind, LineError::MissingColumn { column: "client" }));
        let (line, kind) = line_error("timestamp,key,client\n1,a, \n");
        assert!(line == 2 && matches!(kind, LineError::EmptyClient));
    }

    /// A timestamp in milliseconds after ones in seconds made a replay walk
    /// its timers for days; 1e16 made it spin (f64 steps of 2 s).
    #[test]
    fn a_timestamp_in_milliseconds_is_refused_naming_its_line() {
        let (line, kind) = line_error("timestamp,key\n1772429174.35,a\n1772429174350,b\n");
        assert_eq!(line, 3);
        assert!(
            matches!(kind, LineError::ImplausibleTimestamp { .. }),
            "{kind}"
        );
        let (line, kind) = line_error("timestamp,key\n1e16,a\n");
        assert_eq!(line, 2);
        assert!(kind.to_string().contains("milliseconds"), "{kind}");
    }

    #[test]
    fn decreasing_timestamp_reports_its_line() {
        let text = "timestamp,key\n1,a\n5,b\n5,c\n4,d\n6,e\n";
        let err = read(text).unwrap_err();
        assert_eq!(err.line(), Some(5));
        assert!(
            err.to_string().starts_with("t.csv:5: timestamp 4 "),
            "{err}"
        );
        let (_, kind) = line_error(text);
        assert!(
            matches!(kind, LineError::DecreasingTimestamp { previous_s, timestamp_s }
            if previous_s == 5.0 && timestamp_s == 4.0)
        );
    }

    #[test]
    fn bad_lines_are_errors_naming_the_line() {
        let (line, kind) = line_error("1,a\nx1,b\n");
        assert!(line == 2 && matches!(&kind, LineError::BadTimestamp { text } if text == "x1"));
        let (line, kind) = line_error("1,a\nNaN,b\n");
        assert!(line == 2 && matches!(kind, LineError::BadTimestamp { .. }));
        let (line, kind) = line_error("1,a\n2,\n");
        assert!(line == 2 && matches!(kind, LineError::EmptyKey));
        let (line, kind) = line_error("1,a\n2\n");
        assert!(line == 2 && matches!(kind, LineError::MissingColumn { column: "key" }));
        let (line, kind) = line_error("1,a\n\n3,b\n");
        assert!(line == 2 && matches!(kind, LineError::BadTimestamp { .. }));
        let err = read_trace_from(&b"1,a\n2,\xff\n"[..], "t.csv").unwrap_err();
        assert!(matches!(
            err,
            TraceError::Line {
                line: 2,
                kind: LineError::InvalidUtf8,
                ..
            }
        ));
    }

    #[test]
    fn short_and_long_keys_intern_distinctly() {
        let long = "k".repeat(INLINE_MAX + 1);
        let at_max = "k".repeat(INLINE_MAX);
        let keys = ["a", "a\0", "a\0\0", &at_max, &long, "a", &long, &at_max];
        let mut interner = Interner::default();
        let ids: Vec<u32> = keys.iter().map(|k| interner.intern(k).unwrap()).collect();
        assert_eq!(ids, vec![0, 1, 2, 3, 4, 0, 4, 3]);
        assert_eq!(&*interner.names[4], long.as_str());
    }

    #[test]
    fn crlf_whitespace_and_extra_columns_are_tolerated() {
        let t = read("timestamp,key\r\n 1 , a \r\n2,b,ignored,more\r\n").unwrap();
        assert_eq!(t.times_s, vec![1.0, 2.0]);
        assert_eq!(t.keys, vec!["a".into(), "b".into()] as Vec<Box<str>>);
    }

    #[test]
    fn empty_input_and_header_only_give_an_empty_trace() {
        assert!(read("").unwrap().is_empty());
        assert!(read("timestamp,key\n").unwrap().is_empty());
    }

    #[test]
    fn gz_file_is_decompressed_by_suffix() {
        let dir = tempfile::tempdir().unwrap();
        let body = "timestamp,key\n1,a\n2,b\n3,a\n";
        let gz_path = dir.path().join("small.csv.gz");
        let file = File::create(&gz_path).unwrap();
        let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        enc.write_all(body.as_bytes()).unwrap();
        enc.finish().unwrap();
        let csv_path = dir.path().join("small.csv");
        std::fs::write(&csv_path, body).unwrap();

        let mut calls = Vec::new();
        let gz = read_trace_with_progress(&gz_path, &mut |read, total| calls.push((read, total)));
        let gz = gz.unwrap();
        let csv = read_trace(&csv_path).unwrap();
        assert_eq!(gz.name, "small.csv.gz");
        assert_eq!(gz.key_ids, csv.key_ids);
        assert_eq!(gz.times_s, vec![1.0, 2.0, 3.0]);
        let total = std::fs::metadata(&gz_path).unwrap().len();
        assert_eq!(calls.last(), Some(&(total, total)));
    }

    #[test]
    fn errors_in_files_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, "timestamp,key\n2,a\n1,b\n").unwrap();
        let msg = read_trace(&path).unwrap_err().to_string();
        assert!(msg.contains("bad.csv:3:"), "{msg}");
        let err = read_trace(&dir.path().join("missing.csv")).unwrap_err();
        assert!(matches!(err, TraceError::Open { .. }) && err.to_string().contains("missing.csv"));
    }

    proptest::proptest! {
        #[test]
        fn written_traces_read_back(
            rows in proptest::collection::vec((0u32..1000, 0u8..20), 0..200),
        ) {
            let mut time_s = 0.0;
            let mut text = String::from("timestamp,key\n");
            let mut expected = Vec::new();
            for (dt, key) in rows {
                time_s += f64::from(dt) / 8.0;
                text.push_str(&format!("{time_s},k{key}\n"));
                expected.push((time_s, format!("k{key}")));
            }
            let t = read(&text).unwrap();
            let got: Vec<(f64, String)> = t.times_s.iter().zip(&t.key_ids)
                .map(|(&ts, &id)| (ts, t.keys[id as usize].to_string())).collect();
            proptest::prop_assert_eq!(got, expected);
        }
    }
}
