//! `prewarm serve` killed with SIGKILL around a snapshot save, again and
//! again on one state dir: every restart must start, restore either the
//! snapshot that was there before the save or the complete new one (never
//! a corrupt or partial file), and leave no temporary file behind.
//!
//! Iterations: `PREWARM_KILL_SAVES` (default 20; `.ci/run` runs 100). The
//! kill comes at a moment that varies with the iteration (0 to 99 ms after
//! the save was asked for), so kills land before, during and after the
//! write; no assertion depends on where one landed.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use support::{
    ADMIN_TOKEN, Serve, files_where, post_accesses, request_bytes, save, serve, temp_files,
};

/// New keys learned per iteration.
const KEYS_PER_ROUND: usize = 200;

/// What one start restored: the tracked keys of the `restored learned
/// state` line, 0 for a cold start. Panics on a corrupt or unreadable
/// snapshot.
fn restored_keys(s: &Serve) -> usize {
    for line in &s.seen {
        assert!(
            !line.contains("snapshot not restored"),
            "a snapshot failed to restore: {line}\n{}",
            s.seen.join("\n")
        );
        if line.contains("restored learned state") {
            let n = line
                .split("tracked_keys=")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok());
            return n.unwrap_or_else(|| panic!("no tracked_keys in {line}"));
        }
    }
    assert!(
        s.seen
            .iter()
            .any(|l| l.contains("no snapshot: starting cold")),
        "neither restored nor cold:\n{}",
        s.seen.join("\n")
    );
    0
}

/// Asks for a save without waiting for the answer; the stream is kept
/// open so the request is not cut short by a close.
fn ask_for_save(s: &Serve) -> TcpStream {
    let mut conn = TcpStream::connect(s.admin()).expect("admin listener");
    conn.write_all(&request_bytes(
        "POST",
        "/warming/save",
        Some(ADMIN_TOKEN),
        "",
    ))
    .expect("save request sent");
    conn
}

fn snapshot_bytes(dir: &Path) -> Option<Vec<u8>> {
    std::fs::read(dir.join("quote.snapshot")).ok()
}

#[test]
fn sigkill_around_snapshot_saves_never_leaves_a_corrupt_snapshot_or_a_temp_file() {
    let rounds: usize = std::env::var("PREWARM_KILL_SAVES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let (mut kept_old, mut got_new, mut temp_seen) = (0, 0, 0);
    let mut restored = 0;
    for round in 0..rounds {
        let mut s = serve(dir, &[]);
        s.wait_ready();
        let now = restored_keys(&s);
        if round > 0 {
            assert!(
                (restored..=restored + KEYS_PER_ROUND).contains(&now),
                "round {round}: restored {now} keys, before the save {restored}"
            );
        }
        restored = now;
        assert_eq!(
            temp_files(dir),
            Vec::<std::path::PathBuf>::new(),
            "round {round}"
        );
        let corrupt = files_where(dir, |n| n.contains(".corrupt-"));
        assert!(corrupt.is_empty(), "round {round}: {corrupt:?}");
        let before = snapshot_bytes(dir);
        post_accesses(&s, (0..KEYS_PER_ROUND).map(|k| format!("R{round}K{k}")));
        let _conn = ask_for_save(&s);
        // 0, 13, 26, … 91, 4, 17, … ms: a different moment each round.
        std::thread::sleep(Duration::from_millis((round as u64 * 13) % 100));
        s.kill_9();
        if !temp_files(dir).is_empty() {
            temp_seen += 1;
        }
        if snapshot_bytes(dir) == before {
            kept_old += 1;
        } else {
            got_new += 1;
        }
    }
    // The last kill's aftermath: one more start restores and cleans up.
    let mut s = serve(dir, &[]);
    s.wait_ready();
    let now = restored_keys(&s);
    assert!((restored..=restored + KEYS_PER_ROUND).contains(&now));
    assert!(temp_files(dir).is_empty(), "{:?}", temp_files(dir));
    let a = save(&s);
    assert_eq!(a.status, 200, "{}", a.body);
    let (status, lines) = s.stop();
    assert!(status.success(), "{lines:#?}");
    eprintln!(
        "{rounds} kills: {kept_old} kept the previous snapshot, {got_new} had the new one, \
         {temp_seen} left a temporary file (removed at the next start); {now} keys at the end"
    );
}
