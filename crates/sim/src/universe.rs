//! Universe files: CSV `key,group[,weight]`, one membership per line.
//!
//! A key may appear on several lines to belong to several groups (a sector
//! and an index, say). A first line whose third field is not a number, or
//! whose first two fields are `key,group`/`key,sector`, is a header. Every
//! bad line is an error naming the file and line.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use thiserror::Error;

/// One membership.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    /// The key.
    pub key: String,
    /// The group (sector, index, watchlist).
    pub group: String,
    /// Optional weight of the key in the group (1 when absent).
    pub weight: f64,
}

/// What went wrong reading a universe file.
#[derive(Debug, Error)]
pub enum UniverseError {
    /// The file could not be opened or read.
    #[error("universe {file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is malformed.
    #[error("universe {file}, line {line}: {problem}")]
    Line {
        /// The file.
        file: String,
        /// 1-based line number.
        line: u64,
        /// What is wrong.
        problem: String,
    },
}

/// Reads the universe file at `path`.
pub fn read_universe(path: &Path) -> Result<Vec<Membership>, UniverseError> {
    let file = path.display().to_string();
    let f = File::open(path).map_err(|source| UniverseError::Io {
        file: file.clone(),
        source,
    })?;
    parse_universe(BufReader::new(f), &file)
}

/// Parses a universe from `reader`; `file` names it in errors.
pub fn parse_universe(reader: impl BufRead, file: &str) -> Result<Vec<Membership>, UniverseError> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line_no = i as u64 + 1;
        let line = line.map_err(|source| UniverseError::Io {
            file: file.to_string(),
            source,
        })?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |problem: String| UniverseError::Line {
            file: file.to_string(),
            line: line_no,
            problem,
        };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if line_no == 1 && is_header(&fields) {
            continue;
        }
        let (key, group) = match fields.as_slice() {
            [k, g, ..] if !k.is_empty() && !g.is_empty() => (*k, *g),
            [""] | ["", ..] => return Err(bad("empty key".into())),
            _ => {
                return Err(bad(format!(
                    "expected `key,group[,weight]`, found `{line}`"
                )));
            }
        };
        let weight = match fields.get(2) {
            None | Some(&"") => 1.0,
            Some(w) => match w.parse::<f64>() {
                Ok(w) if w.is_finite() && w >= 0.0 => w,
                _ => return Err(bad(format!("weight `{w}` is not a non-negative number"))),
            },
        };
        out.push(Membership {
            key: key.to_string(),
            group: group.to_string(),
            weight,
        });
    }
    Ok(out)
}

fn is_header(fields: &[&str]) -> bool {
    let named = fields
        .first()
        .is_some_and(|k| k.eq_ignore_ascii_case("key"));
    let weight_word = fields.get(2).is_some_and(|w| w.parse::<f64>().is_err());
    named || weight_word
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_memberships_with_header_and_weights() {
        let src = "key,sector\nAAPL,Tech\nXOM,Energy,2.5\nAAPL,SP500\n";
        let u = parse_universe(src.as_bytes(), "u.csv").unwrap();
        assert_eq!(u.len(), 3);
        assert_eq!(u[1].weight, 2.5);
        assert_eq!((u[2].key.as_str(), u[2].group.as_str()), ("AAPL", "SP500"));
    }

    #[test]
    fn bad_lines_name_file_and_line() {
        let err = parse_universe("key,sector\nAAPL\n".as_bytes(), "u.csv").unwrap_err();
        assert_eq!(
            err.to_string(),
            "universe u.csv, line 2: expected `key,group[,weight]`, found `AAPL`"
        );
        let err = parse_universe("A,B,-1\n".as_bytes(), "u.csv").unwrap_err();
        assert!(err.to_string().contains("line 1: weight `-1`"), "{err}");
        let err = parse_universe("A,B\n,C\n".as_bytes(), "u.csv").unwrap_err();
        assert!(err.to_string().contains("line 2: empty key"), "{err}");
    }
}
