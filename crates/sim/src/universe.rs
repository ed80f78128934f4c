//! Reading universe files (CSV `key,group[,weight]`): the file I/O around
//! [`prewarm_core::universe::parse_universe`], which owns the format. Every
//! error names the file, and a bad line its line and field.

use std::path::Path;

pub use prewarm_core::universe::{Membership, UniverseError as LineError, apply_universe};
use thiserror::Error;

/// What went wrong reading a universe file.
#[derive(Debug, Error)]
pub enum UniverseError {
    /// The file could not be opened or read.
    #[error("universe {file}: {cause}")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        cause: std::io::Error,
    },
    /// A line is malformed.
    #[error("universe {file}, {cause}")]
    Line {
        /// The file.
        file: String,
        /// The line and field at fault.
        cause: LineError,
    },
}

/// Reads the universe file at `path`.
pub fn read_universe(path: &Path) -> Result<Vec<Membership>, UniverseError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|cause| UniverseError::Io {
        file: file.clone(),
        cause,
    })?;
    prewarm_core::universe::parse_universe(&text)
        .map_err(|cause| UniverseError::Line { file, cause })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_and_names_it_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("u.csv");
        std::fs::write(&good, "key,sector\nAAPL,Tech\nXOM,Energy,2.5\n").unwrap();
        let u = read_universe(&good).unwrap();
        assert_eq!(u.len(), 2);
        assert_eq!(u[1].weight, 2.5);
        let bad = dir.path().join("bad.csv");
        std::fs::write(&bad, "key,sector\nAAPL\n").unwrap();
        let err = read_universe(&bad).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "universe {}, line 2, field group: missing (expected `key,group[,weight]`, found `AAPL`)",
                bad.display()
            )
        );
        let missing = read_universe(&dir.path().join("none.csv")).unwrap_err();
        assert!(matches!(missing, UniverseError::Io { .. }), "{missing}");
    }
}
