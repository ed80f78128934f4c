//! Atomic snapshot files for prewarm.
//!
//! Module map and invariants:
//! - [`write_atomic`]: a reader sees either the old file or the complete new
//!   one, never a mix: the bytes go to a temporary file in the same
//!   directory, which is fsynced, renamed over the target, and the directory
//!   fsynced. On failure the temporary file is removed.
//! - [`read_snapshot_file`]: a missing file is `Ok(None)` (first start); a
//!   file that fails to parse is moved aside to `<name>.corrupt-<n>` (the
//!   smallest free `n`, never overwriting an earlier quarantine, never
//!   deleted) and the error names the file, where it went and why.
//!
//! - [`remove_stale_temps`]: at start, the temporary files a killed save
//!   left behind (`.<name>.tmp-<pid>-<n>` of another process) are removed.
//! - [`check_writable`]: at start, whether a file can be created in the
//!   state directory.
//!
//! The byte format itself is `prewarm_core::snapshot`; this crate does the
//! file I/O only.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// What failed while persisting or loading a snapshot file.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// An I/O operation failed.
    #[error("{op} `{path}`: {cause}")]
    Io {
        /// What was being done (`write`, `rename`, …).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The OS error.
        cause: io::Error,
    },
    /// The file exists but could not be parsed; it was kept aside.
    #[error("snapshot `{path}` is unreadable ({reason}); moved aside to `{moved_to}`")]
    Corrupt {
        /// The snapshot file that failed.
        path: PathBuf,
        /// Where it now is, byte-for-byte unchanged.
        moved_to: PathBuf,
        /// Why parsing failed.
        reason: String,
    },
    /// The file could not be parsed and could not be moved aside either; it
    /// was left in place untouched.
    #[error("snapshot `{path}` is unreadable ({reason}) and could not be moved aside: {cause}")]
    CorruptNotMoved {
        /// The snapshot file that failed.
        path: PathBuf,
        /// Why parsing failed.
        reason: String,
        /// Why the move failed.
        cause: io::Error,
    },
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PersistError + 'a {
    move |cause| PersistError::Io {
        op,
        path: path.to_path_buf(),
        cause,
    }
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` atomically: temp file in the same directory,
/// fsync, rename over `path`, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PersistError> {
    let dir = parent_dir(path);
    let name = path.file_name().ok_or_else(|| PersistError::Io {
        op: "write",
        path: path.to_path_buf(),
        cause: io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"),
    })?;
    let (tmp, mut file) = create_temp(dir, &name.to_string_lossy())?;
    let result = (|| {
        file.write_all(bytes).map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("fsync", &tmp))?;
        drop(file);
        fs::rename(&tmp, path).map_err(io_err("rename into place", path))?;
        sync_dir(dir)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Creates a fresh `.<name>.tmp-<pid>-<n>` file next to the target.
fn create_temp(dir: &Path, name: &str) -> Result<(PathBuf, File), PersistError> {
    let pid = std::process::id();
    for n in 0u32.. {
        let tmp = dir.join(format!(".{name}.tmp-{pid}-{n}"));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 1000 => continue,
            Err(e) => {
                return Err(PersistError::Io {
                    op: "create temporary file",
                    path: tmp,
                    cause: e,
                });
            }
        }
    }
    unreachable!("the loop returns")
}

/// Whether `file_name` is a temporary file of [`write_atomic`] made by a
/// process other than `own_pid`: `.<name>.tmp-<pid>-<n>`.
fn is_foreign_temp(file_name: &str, own_pid: u32) -> bool {
    let Some(rest) = file_name.strip_prefix('.') else {
        return false;
    };
    let Some((_, tail)) = rest.rsplit_once(".tmp-") else {
        return false;
    };
    let Some((pid, n)) = tail.split_once('-') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(pid) && digits(n) && pid.parse::<u32>().is_ok_and(|p| p != own_pid)
}

/// Removes the temporary files that saves of other (killed) processes left
/// in `dir`; returns the files removed. A missing `dir` has none.
pub fn remove_stale_temps(dir: &Path) -> Result<Vec<PathBuf>, PersistError> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    let own = std::process::id();
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        let name = entry.file_name();
        if is_foreign_temp(&name.to_string_lossy(), own) {
            let path = entry.path();
            fs::remove_file(&path).map_err(io_err("remove stale temporary file", &path))?;
            removed.push(path);
        }
    }
    Ok(removed)
}

/// Checks that a file can be created (and removed) in `dir`; the error
/// names the directory and the OS cause.
pub fn check_writable(dir: &Path) -> Result<(), PersistError> {
    let (probe, file) = create_temp(dir, "write-check")?;
    drop(file);
    fs::remove_file(&probe).map_err(io_err("remove", &probe))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> Result<(), PersistError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> Result<(), PersistError> {
    Ok(())
}

/// Reads and parses the snapshot at `path`.
///
/// - missing file: `Ok(None)`;
/// - parsed: `Ok(Some(value))`;
/// - parse error: the file is moved to `<name>.corrupt-<n>` and
///   [`PersistError::Corrupt`] says where and why.
pub fn read_snapshot_file<T, E: fmt::Display>(
    path: &Path,
    parse: impl FnOnce(&[u8]) -> Result<T, E>,
) -> Result<Option<T>, PersistError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(PersistError::Io {
                op: "read",
                path: path.to_path_buf(),
                cause: e,
            });
        }
    };
    match parse(&bytes) {
        Ok(v) => Ok(Some(v)),
        Err(e) => {
            let reason = e.to_string();
            match quarantine(path) {
                Ok(moved_to) => Err(PersistError::Corrupt {
                    path: path.to_path_buf(),
                    moved_to,
                    reason,
                }),
                Err(cause) => Err(PersistError::CorruptNotMoved {
                    path: path.to_path_buf(),
                    reason,
                    cause,
                }),
            }
        }
    }
}

/// Moves `path` to the first free `<name>.corrupt-<n>`, `n >= 1`, without
/// ever replacing an existing file (hard link then unlink; a plain rename
/// after an existence check where links are unsupported).
pub fn quarantine(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = parent_dir(path);
    for n in 1u32..=10_000 {
        let target = dir.join(format!("{name}.corrupt-{n}"));
        match fs::hard_link(path, &target) {
            Ok(()) => {
                fs::remove_file(path)?;
                let _ = File::open(dir).and_then(|d| d.sync_all());
                return Ok(target);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(_) if !target.exists() => {
                fs::rename(path, &target)?;
                return Ok(target);
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("10,000 quarantined copies already exist"))
}

#[cfg(test)]
mod tests;
