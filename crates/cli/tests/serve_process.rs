//! `prewarm serve` as a real process: its start-up checks of the state
//! dir, the clean-up of interrupted saves, its log lines on a pipe, and
//! its exit status when the final snapshot fails.

mod support;

use std::path::Path;
use std::process::Stdio;

use support::{serve, serve_command};

#[test]
fn json_logs_are_one_object_per_line_and_text_logs_have_no_colour_on_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = serve(dir.path(), &["--log-format", "json"]);
    s.wait_ready();
    let (status, lines) = s.stop();
    assert!(status.success(), "{lines:#?}");
    for line in &lines {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string(), "{line}");
    }
    let mut s = serve(dir.path(), &[]);
    s.wait_ready();
    let (status, lines) = s.stop();
    assert!(status.success(), "{lines:#?}");
    assert!(lines.iter().any(|l| l.contains("ready")));
    for line in &lines {
        assert!(!line.contains('\u{1b}'), "ANSI escape on a pipe: {line:?}");
    }
}

#[test]
fn an_unwritable_state_dir_stops_serve_with_an_error_naming_it_and_its_setting() {
    // sysfs: the directory exists, and not even root may create a file in it.
    let dir = Path::new("/sys/kernel");
    if !dir.is_dir() {
        eprintln!("NOTICE: no /sys/kernel here; skipping");
        return;
    }
    let out = serve_command(dir)
        .stdin(Stdio::null())
        .output()
        .expect("prewarm serve runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "/sys/kernel",
        "not writable",
        "--state-dir",
        "PREWARM_STATE_DIR",
        "server.state_dir",
    ] {
        assert!(err.contains(needle), "{needle:?} missing from:\n{err}");
    }
}

#[test]
fn a_killed_saves_temp_file_is_removed_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let stale = dir.path().join(".quote.snapshot.tmp-4194305-0");
    std::fs::write(&stale, b"half a snapshot").unwrap();
    let mut s = serve(dir.path(), &[]);
    s.wait_ready();
    assert!(
        !stale.exists(),
        "the temp file of the interrupted save is gone"
    );
    let (status, lines) = s.stop();
    assert!(status.success(), "{lines:#?}");
}

#[test]
fn shutdown_exits_non_zero_when_the_final_snapshot_fails() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = serve(dir.path(), &[]);
    s.wait_ready();
    // A directory where the snapshot must go: the rename over it fails.
    std::fs::create_dir_all(dir.path().join("quote.snapshot").join("blocker")).unwrap();
    let (status, lines) = s.stop();
    assert!(!status.success(), "exit status {status}: {lines:#?}");
    let all = lines.join("\n");
    assert!(all.contains("final snapshot failed"), "{all}");
    assert!(all.contains("quote.snapshot"), "{all}");
}
