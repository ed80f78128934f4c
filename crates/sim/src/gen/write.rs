//! Writing a generated trace and its universe.
//!
//! The trace is the CSV of `replay-semantics.md` with a client column:
//! a header `timestamp,key,client`, then one request per line, e.g.
//! `1772461800.123,AAPL,u17`: Unix seconds with exactly three decimals, the
//! ticker, the client label ([`super::ClientLabel`]). Without the client
//! column ([`GenConfig::client_column`] false) the header is
//! `timestamp,key` and lines end after the ticker. A path ending in `.gz`
//! is gzip-compressed. The universe goes beside it (see [`universe_path`])
//! as `key,sector` lines, one per ticker in key order. Both files are
//! written to a hidden temporary file in the same directory and renamed
//! into place, so a failed run never leaves a truncated file under the
//! final name.

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;

use super::config::GenConfig;
use super::error::GenError;
use super::universe::Universe;
use super::{ClientKind, Event, GenSummary, client_kind};

/// Lines formatted before each write and progress report.
const CHUNK_LINES: usize = 1 << 16;
/// Output buffer size, bytes.
const BUFFER_BYTES: usize = 1 << 20;

/// Where [`write_trace`] puts the universe of a trace written to
/// `out_path`: in the same directory, the file name with one trailing
/// `.gz` and then one trailing `.csv` removed, plus `.universe.csv`.
/// `runs/day.csv.gz` → `runs/day.universe.csv`; `day.csv` →
/// `day.universe.csv`; `day.txt` → `day.txt.universe.csv`.
pub fn universe_path(out_path: &Path) -> PathBuf {
    let name = out_path.file_name().map(OsString::from).unwrap_or_default();
    let stem = match name.to_str() {
        Some(s) => {
            let s = s.strip_suffix(".gz").unwrap_or(s);
            OsString::from(s.strip_suffix(".csv").unwrap_or(s))
        }
        None => name,
    };
    let mut file_name = stem;
    file_name.push(".universe.csv");
    out_path.with_file_name(file_name)
}

/// Writes `universe` as `key,sector` CSV to `path` (atomically).
pub fn write_universe(universe: &Universe, path: &Path) -> Result<(), GenError> {
    write_atomically(path, |out| {
        let mut buf = Vec::with_capacity(universe.len() * 24 + 16);
        buf.extend_from_slice(b"key,sector\n");
        for (ticker, sector) in universe.tickers.iter().zip(&universe.sectors) {
            buf.extend_from_slice(ticker.as_bytes());
            buf.push(b',');
            buf.extend_from_slice(sector.as_bytes());
            buf.push(b'\n');
        }
        out.write_all(&buf)
    })
}

/// Generates the workload of `cfg` and writes it to `out_path` (gzip'd if
/// the name ends in `.gz`), with its universe at [`universe_path`].
/// `progress` is called with the number of requests written so far, every
/// 65 536 requests and once at the end.
pub fn write_trace(
    cfg: &GenConfig,
    out_path: &Path,
    mut progress: impl FnMut(u64),
) -> Result<GenSummary, GenError> {
    cfg.validate()?;
    let universe = Universe::generate(cfg);
    write_universe(&universe, &universe_path(out_path))?;
    let tickers: Vec<&[u8]> = universe.tickers.iter().map(|t| t.as_bytes()).collect();
    let gzip = out_path.extension().is_some_and(|e| e == "gz");
    let mut summary = None;
    let mut failure = None;
    write_atomically(out_path, |out| {
        let mut out: Box<dyn Write + '_> = if gzip {
            Box::new(GzEncoder::new(out, Compression::fast()))
        } else {
            Box::new(out)
        };
        let client_column = cfg.client_column;
        out.write_all(if client_column {
            b"timestamp,key,client\n"
        } else {
            b"timestamp,key\n"
        })?;
        let mut written = 0u64;
        let mut buf = Vec::with_capacity(CHUNK_LINES * 32);
        let result = super::run(cfg, &mut |events| {
            for chunk in events.chunks(CHUNK_LINES) {
                buf.clear();
                for e in chunk {
                    push_line(&mut buf, e, &tickers, client_column);
                }
                out.write_all(&buf).map_err(|source| GenError::Io {
                    path: out_path.into(),
                    source,
                })?;
                written += chunk.len() as u64;
                progress(written);
            }
            Ok(())
        });
        match result {
            Ok(s) => summary = Some(s),
            Err(e) => failure = Some(e),
        }
        if failure.is_some() {
            return Err(io::Error::other("generation failed"));
        }
        out.flush()
    })
    .map_err(|e| failure.take().unwrap_or(e))?;
    Ok(summary.expect("set when writing succeeded"))
}

/// Appends `seconds.mmm,TICKER,client\n`, or `seconds.mmm,TICKER\n`
/// without `client_column`.
fn push_line(buf: &mut Vec<u8>, e: &Event, tickers: &[&[u8]], client_column: bool) {
    let ms = e.ms.max(0) as u64;
    push_u64(buf, ms / 1000);
    let frac = ms % 1000;
    let digit = |d: u64| b'0' + d as u8;
    buf.extend_from_slice(&[
        b'.',
        digit(frac / 100),
        digit(frac / 10 % 10),
        digit(frac % 10),
        b',',
    ]);
    buf.extend_from_slice(tickers[e.key as usize]);
    if !client_column {
        buf.push(b'\n');
        return;
    }
    buf.push(b',');
    let (prefix, index): (&[u8], u32) = match client_kind(e.client) {
        Some((ClientKind::User, i)) => (b"u", i),
        Some((ClientKind::Scanner, i)) => (b"scan", i),
        Some((ClientKind::Anonymous, i)) => (b"a", i),
        None => (b"c", e.client),
    };
    buf.extend_from_slice(prefix);
    push_u64(buf, u64::from(index));
    buf.push(b'\n');
}

fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

/// Runs `body` on a buffered writer into a temporary file beside `path`,
/// then syncs it and renames it to `path`; on any failure the temporary
/// file is removed and the error names `path`.
fn write_atomically(
    path: &Path,
    body: impl FnOnce(&mut BufWriter<File>) -> io::Result<()>,
) -> Result<(), GenError> {
    let io_error = |source| GenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp_name = OsString::from(".");
    tmp_name.push(path.file_name().unwrap_or_default());
    tmp_name.push(".tmp");
    let tmp = path.with_file_name(tmp_name);
    let result = (|| {
        let mut out = BufWriter::with_capacity(BUFFER_BYTES, File::create(&tmp)?);
        body(&mut out)?;
        let file = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        file.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn universe_path_replaces_csv_and_gz_suffixes() {
        let p = |s: &str| universe_path(Path::new(s));
        assert_eq!(p("runs/day.csv.gz"), PathBuf::from("runs/day.universe.csv"));
        assert_eq!(p("day.csv"), PathBuf::from("day.universe.csv"));
        assert_eq!(p("day.gz"), PathBuf::from("day.universe.csv"));
        assert_eq!(p("day.txt"), PathBuf::from("day.txt.universe.csv"));
    }

    #[test]
    fn lines_have_millisecond_timestamps_and_client_labels() {
        let mut buf = Vec::new();
        let tickers: Vec<&[u8]> = vec![b"AAPL", b"F"];
        let client = super::super::client_id(ClientKind::Scanner, 4);
        push_line(
            &mut buf,
            &Event {
                ms: 1_772_461_800_003,
                key: 1,
                client,
            },
            &tickers,
            true,
        );
        push_line(
            &mut buf,
            &Event {
                ms: 1_772_461_800_123,
                key: 0,
                client: 17,
            },
            &tickers,
            true,
        );
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(text, "1772461800.003,F,scan4\n1772461800.123,AAPL,u17\n");
    }

    #[test]
    fn milliseconds_above_255_are_not_truncated() {
        // The fraction was once narrowed to a u8, turning .999 into .231
        // and breaking the time order.
        let mut buf = Vec::new();
        let event = Event {
            ms: 1_772_461_800_999,
            key: 0,
            client: 0,
        };
        push_line(&mut buf, &event, &[b"F"], true);
        assert_eq!(buf, b"1772461800.999,F,u0\n");
        buf.clear();
        push_line(&mut buf, &event, &[b"F"], false);
        assert_eq!(buf, b"1772461800.999,F\n");
    }
}
