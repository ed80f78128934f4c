//! What the process tests share: `prewarm serve` as a child process with
//! its stderr lines on a channel, the addresses from its `ready` line,
//! plain HTTP/1.1 requests over loopback, and a tmpfs mount for the state
//! dir (the only way to get a read-only or full file system as root).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The admin token the process tests configure.
pub const ADMIN_TOKEN: &str = "process-test-admin";
/// The access token the process tests configure.
pub const ACCESS_TOKEN: &str = "process-test-access";

/// A `prewarm serve` child with its stderr lines arriving on a channel.
pub struct Serve {
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stderr line read so far.
    pub seen: Vec<String>,
    /// The proxy listener, once `ready` was seen.
    pub proxy: Option<String>,
    /// The admin listener, once `ready` was seen.
    pub admin: Option<String>,
}

/// `prewarm serve` on free loopback ports with `state_dir`.
pub fn serve_command(state_dir: &Path) -> Command {
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

/// Starts `prewarm serve` on `state_dir` with `extra` flags, both tokens
/// set, no config file, `info` logs on a pipe.
pub fn serve(state_dir: &Path, extra: &[&str]) -> Serve {
    let mut child = serve_command(state_dir)
        .args(extra)
        .env_remove("PREWARM_CONFIG")
        .env("RUST_LOG", "info")
        .env("PREWARM_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("PREWARM_ACCESS_TOKEN", ACCESS_TOKEN)
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
        proxy: None,
        admin: None,
    }
}

/// The `host:port` after `prefix` in `line` (up to the next `/`).
fn addr_after(line: &str, prefix: &str) -> Option<String> {
    let rest = &line[line.find(prefix)? + prefix.len()..];
    Some(rest.split('/').next()?.to_string())
}

impl Serve {
    /// Reads stderr until the `ready` line (text or JSON), bounded, and
    /// takes the listeners' addresses from it.
    pub fn wait_ready(&mut self) {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    let found =
                        line.contains("serve: ready ") || line.contains("\"message\":\"ready\"");
                    if found {
                        self.proxy = addr_after(&line, "proxy=http://")
                            .or_else(|| addr_after(&line, "\"proxy\":\"http://"));
                        self.admin = addr_after(&line, "dashboard=http://")
                            .or_else(|| addr_after(&line, "\"dashboard\":\"http://"));
                    }
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => panic!("no ready line; seen:\n{}", self.seen.join("\n")),
            }
        }
    }

    /// The admin listener's address (after [`Serve::wait_ready`]).
    pub fn admin(&self) -> &str {
        self.admin
            .as_deref()
            .expect("ready line names the admin listener")
    }

    /// The proxy listener's address (after [`Serve::wait_ready`]).
    pub fn proxy(&self) -> &str {
        self.proxy
            .as_deref()
            .expect("ready line names the proxy listener")
    }

    /// Every stderr line that has arrived so far, without waiting.
    pub fn drain(&mut self) -> &[String] {
        self.seen.extend(self.lines.try_iter());
        &self.seen
    }

    /// SIGTERM, then the exit status and every stderr line.
    pub fn stop(mut self) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let killed = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(killed.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let status = self.child.wait().expect("serve exits");
        let rest: Vec<String> = self.lines.iter().collect();
        self.seen.extend(rest);
        (status, std::mem::take(&mut self.seen))
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Serve {
    /// A test that fails midway leaves no daemon behind.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// An answer: status code and body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

/// The bytes of an HTTP/1.1 request with `Connection: close`.
pub fn request_bytes(method: &str, path: &str, token: Option<&str>, body: &str) -> Vec<u8> {
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!(
        "{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n{auth}\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One request to `addr`, its answer read to the end (bounded).
pub fn http(addr: &str, method: &str, path: &str, token: Option<&str>, body: &str) -> Answer {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(&request_bytes(method, path, token, body))
        .expect("request sent");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("answer read");
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Answer { status, body }
}

/// `POST /v1/access` of `keys` of dataset `quote`; asserts 202.
pub fn post_accesses(s: &Serve, keys: impl Iterator<Item = String>) {
    let items: Vec<String> = keys
        .map(|k| format!("{{\"dataset\":\"quote\",\"key\":\"{k}\"}}"))
        .collect();
    let body = format!("[{}]", items.join(","));
    let a = http(s.proxy(), "POST", "/v1/access", Some(ACCESS_TOKEN), &body);
    assert_eq!(a.status, 202, "{}", a.body);
}

/// `POST /warming/save`; the answer.
pub fn save(s: &Serve) -> Answer {
    http(s.admin(), "POST", "/warming/save", Some(ADMIN_TOKEN), "")
}

/// The temporary files of saves in `dir`.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    files_where(dir, |name| name.starts_with('.') && name.contains(".tmp-"))
}

/// The files of `dir` whose name passes `keep`.
pub fn files_where(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| keep(&e.file_name().to_string_lossy()))
        .map(|e| e.path())
        .collect()
}

/// A tmpfs of `size` (as `mount -o size=` reads it) mounted on a fresh
/// directory; unmounted when dropped.
pub struct Tmpfs {
    pub dir: PathBuf,
    _parent: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one; `Err` with mount's words when this machine does not
    /// allow it (not root, no `CAP_SYS_ADMIN`).
    pub fn mount(size: &str) -> Result<Self, String> {
        let parent = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dir = parent.path().join("state");
        std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        Ok(Self {
            dir,
            _parent: parent,
        })
    }

    /// Remounts it read-only (files stay as they are).
    pub fn make_read_only(&self) {
        let ok = Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "remount read-only of {}", self.dir.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A tmpfs for a test, or the reason there is none: a failure when
/// `PREWARM_REQUIRE_SERVICES=1` (CI), else `None` after a notice.
pub fn tmpfs_or_notice(size: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(size) {
        Ok(t) => Some(t),
        Err(why) if std::env::var("PREWARM_REQUIRE_SERVICES").as_deref() == Ok("1") => {
            panic!("this test needs `mount -t tmpfs` (root): {why}")
        }
        Err(why) => {
            eprintln!("NOTICE: cannot mount a tmpfs here ({why}); test not run");
            None
        }
    }
}
