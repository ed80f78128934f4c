//! `prewarm serve` as a real process: its start-up checks of the state
//! dir, the clean-up of interrupted saves, its log lines on a pipe, and
//! its exit status when the final snapshot fails.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A `prewarm serve` child with its stderr lines arriving on a channel.
struct Serve {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

/// `prewarm serve` on free loopback ports with `state_dir`.
fn serve_command(state_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_prewarm"));
    cmd.args([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        "127.0.0.1:0",
    ])
    .arg("--state-dir")
    .arg(state_dir);
    cmd
}

fn serve(state_dir: &Path, extra: &[&str]) -> Serve {
    let mut child = serve_command(state_dir)
        .args(extra)
        .env_remove("PREWARM_CONFIG")
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prewarm serve starts");
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    Serve {
        child,
        lines,
        seen: Vec::new(),
    }
}

impl Serve {
    /// Reads stderr until the `ready` line (text or JSON), bounded.
    fn wait_ready(&mut self) {
        let text = "ready";
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    let found =
                        line.contains("serve: ready ") || line.contains("\"message\":\"ready\"");
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!("no line with {text:?}; seen:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// SIGTERM, then the exit status and every stderr line.
    fn stop(mut self) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(killed.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let status = self.child.wait().expect("serve exits");
        self.seen.extend(self.lines.iter());
        (status, self.seen)
    }
}

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
