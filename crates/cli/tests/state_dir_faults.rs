//! The state dir going bad, as root can see it: a state path under a
//! regular file and a read-only mount at start (serve refuses, naming the
//! dir); a dir that turns read-only or fills up under a running daemon
//! (saves fail loudly, the previous snapshot stays, no temp file is left,
//! serving goes on).
//!
//! Root ignores permission bits, so a read-only or full file system is a
//! small tmpfs mounted for the test (`mount -t tmpfs -o size=…`): a real
//! `EROFS` and a real `ENOSPC`.

mod support;

use std::path::Path;
use std::process::Stdio;

use support::{Serve, Tmpfs, http, post_accesses, save, serve, serve_command, temp_files};

/// Runs serve on `dir` expecting it to refuse to start; its stderr.
fn refused_start(dir: &Path) -> String {
    let out = serve_command(dir)
        .env_remove("PREWARM_CONFIG")
        .stdin(Stdio::null())
        .output()
        .expect("prewarm serve runs");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "serve started on {}:\n{err}",
        dir.display()
    );
    err
}

#[test]
fn a_state_path_under_a_regular_file_stops_serve_with_an_error_naming_it() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let dir = file.join("state");
    let err = refused_start(&dir);
    for needle in [dir.to_str().unwrap(), "--state-dir", "PREWARM_STATE_DIR"] {
        assert!(err.contains(needle), "{needle:?} missing from:\n{err}");
    }
}

#[test]
fn a_read_only_state_dir_stops_serve_with_an_error_naming_it() {
    let Some(fs) = support::tmpfs_or_notice("1m") else {
        return;
    };
    fs.make_read_only();
    let err = refused_start(&fs.dir);
    for needle in [
        fs.dir.to_str().unwrap(),
        "not writable",
        "Read-only file system",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from:\n{err}");
    }
}

/// Starts serve on `fs`, teaches it `keys` keys and saves; the snapshot's
/// bytes.
fn serve_with_a_saved_snapshot(fs: &Tmpfs, keys: usize) -> (Serve, Vec<u8>) {
    let mut s = serve(&fs.dir, &[]);
    s.wait_ready();
    post_accesses(&s, (0..keys).map(|k| format!("FIRST{k}")));
    let a = save(&s);
    assert_eq!(a.status, 200, "{}", a.body);
    let bytes = std::fs::read(fs.dir.join("quote.snapshot")).expect("first snapshot");
    (s, bytes)
}

/// After a failed save: the answer named the file and `cause`, the old
/// snapshot is byte for byte there, no temp file is left, the status page
/// reports the error, and both listeners still serve.
fn assert_failed_save_kept_the_old_snapshot(s: &mut Serve, fs: &Tmpfs, old: &[u8], cause: &str) {
    post_accesses(s, (0..2_000).map(|k| format!("SECOND{k}")));
    let a = save(s);
    assert_eq!(a.status, 500, "{}", a.body);
    assert!(a.body.contains(cause), "{cause:?} missing from {}", a.body);
    assert!(a.body.contains("quote.snapshot"), "{}", a.body);
    assert_eq!(std::fs::read(fs.dir.join("quote.snapshot")).unwrap(), old);
    assert!(temp_files(&fs.dir).is_empty(), "{:?}", temp_files(&fs.dir));
    // The status page shows it once the driver's view is next published.
    let status = (0..100)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            http(s.admin(), "GET", "/warming/status", None, "")
        })
        .find(|a| a.body.contains(cause))
        .expect("the status page reports the failed save within 10 s");
    assert_eq!(status.status, 200);
    let lines = s.drain().join("\n");
    assert!(lines.contains("snapshot not saved"), "{lines}");
    assert_eq!(http(s.admin(), "GET", "/healthz", None, "").status, 200);
    let read = http(s.proxy(), "GET", "/v1/quote/AAPL", None, "");
    assert_eq!(read.status, 200, "{}", read.body);
}

#[test]
fn a_state_dir_turning_read_only_fails_saves_keeps_the_snapshot_and_serving_goes_on() {
    let Some(fs) = support::tmpfs_or_notice("8m") else {
        return;
    };
    let (mut s, old) = serve_with_a_saved_snapshot(&fs, 100);
    fs.make_read_only();
    assert_failed_save_kept_the_old_snapshot(&mut s, &fs, &old, "Read-only file system");
    // The final snapshot fails too: a non-zero exit, the old file kept.
    let (status, lines) = s.stop();
    assert!(!status.success(), "{lines:#?}");
    assert_eq!(std::fs::read(fs.dir.join("quote.snapshot")).unwrap(), old);
}

#[test]
fn a_full_state_dir_fails_saves_removes_the_temp_file_and_keeps_the_snapshot() {
    let Some(fs) = support::tmpfs_or_notice("1m") else {
        return;
    };
    let (mut s, old) = serve_with_a_saved_snapshot(&fs, 100);
    // Fill what is left: the next, larger snapshot cannot fit.
    let filler = fs.dir.join("filler");
    let mut f = std::fs::File::create(&filler).unwrap();
    let chunk = vec![0u8; 4096];
    let full = loop {
        if let Err(e) = std::io::Write::write_all(&mut f, &chunk) {
            break e;
        }
    };
    assert_eq!(full.raw_os_error(), Some(28), "ENOSPC expected: {full}");
    drop(f);
    assert_failed_save_kept_the_old_snapshot(&mut s, &fs, &old, "No space left on device");
    // Space again: the next save succeeds.
    std::fs::remove_file(&filler).unwrap();
    let a = save(&s);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_ne!(std::fs::read(fs.dir.join("quote.snapshot")).unwrap(), old);
    let (status, lines) = s.stop();
    assert!(status.success(), "{lines:#?}");
}
