//! Shared test fixtures: real servers only (upstream-sim, redis-server).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::Arc;

use prewarm_server::clock::TokioClock;
use prewarm_server::config::{RawConfig, ServeConfig};
use prewarm_server::serve::{self, Running};
use prewarm_server::upstream_sim::{self, SimConfig, SimHandle};

/// Starts an upstream-sim on a free loopback port.
pub async fn sim(tweak: impl FnOnce(&mut SimConfig)) -> SimHandle {
    let mut cfg = SimConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        latency_ms: 0,
        ..SimConfig::default()
    };
    tweak(&mut cfg);
    upstream_sim::spawn(cfg)
        .await
        .expect("upstream-sim binds")
        .1
}

/// The bearer token of `POST /v1/access` on test daemons.
pub const ACCESS_TOKEN: &str = "test-access-token";

/// Knobs of a test daemon's config.
#[derive(Debug, Clone)]
pub struct TestCfg {
    pub upstream: SocketAddr,
    pub ttl_s: f64,
    pub request_timeout_s: f64,
    pub max_retries: u32,
    pub max_concurrent: usize,
    pub batch: bool,
    pub store: String,
    pub stale_grace_s: f64,
    pub url: Option<String>,
    pub state_dir: std::path::PathBuf,
    /// Lines added to `[store]`.
    pub store_extra: String,
    /// Lines added to `[server]`.
    pub server_extra: String,
    /// Lines added to `[datasets.quote]`.
    pub extra: String,
    /// Lines added to `[upstream]`.
    pub upstream_extra: String,
}

impl TestCfg {
    pub fn new(upstream: SocketAddr) -> Self {
        Self {
            upstream,
            ttl_s: 30.0,
            request_timeout_s: 5.0,
            max_retries: 0,
            max_concurrent: 8,
            batch: false,
            store: "memory".into(),
            stale_grace_s: 300.0,
            url: None,
            state_dir: std::env::temp_dir()
                .join(format!("prewarm-test-state-{}", std::process::id())),
            store_extra: String::new(),
            server_extra: String::new(),
            extra: String::new(),
            upstream_extra: String::new(),
        }
    }

    pub fn toml(&self) -> String {
        let url = self
            .url
            .clone()
            .unwrap_or_else(|| format!("http://{}/v1/quote/{{key}}", self.upstream));
        let batch = if self.batch {
            format!(
                "batch_url = \"http://{}/v1/quotes?symbols={{keys}}\"\nbatch_items_pointer = \"/quotes\"\nbatch_key_field = \"symbol\"\n",
                self.upstream
            )
        } else {
            String::new()
        };
        format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
state_dir = "{state}"
request_timeout_s = {rt}
access_token = "{access}"
{server_extra}
[store]
backend = "{store}"
stale_grace_s = {grace}
{store_extra}
[upstream]
max_retries = {retries}
max_concurrent = {mc}
backoff_base_ms = 10
backoff_max_ms = 50
timeout_s = 5
{upstream_extra}
[datasets.quote]
url = "{url}"
ttl_s = {ttl}
{batch}{extra}
"#,
            state = self.state_dir.display(),
            rt = self.request_timeout_s,
            store = self.store,
            grace = self.stale_grace_s,
            retries = self.max_retries,
            mc = self.max_concurrent,
            ttl = self.ttl_s,
            extra = self.extra,
            upstream_extra = self.upstream_extra,
            server_extra = self.server_extra,
            access = ACCESS_TOKEN,
            store_extra = self.store_extra,
        )
    }

    pub fn config(&self, env: &dyn Fn(&str) -> Option<String>) -> ServeConfig {
        RawConfig::from_toml(&self.toml(), "test.toml")
            .expect("test TOML parses")
            .validate(env)
            .expect("test config validates")
    }

    pub async fn start(&self) -> Running {
        serve::start(self.config(&|_| None))
            .await
            .expect("daemon starts")
    }

    /// Starts the daemon on a [`TokioClock`]: in a test on tokio's paused
    /// time, the daemon's clock, its timeouts and the upstream-sim's
    /// delays all move with `tokio::time`, so no test waits on the wall
    /// clock.
    pub async fn start_paused(&self, clock: &TokioClock) -> Running {
        serve::start_with_clock(self.config(&|_| None), Arc::new(*clock))
            .await
            .expect("daemon starts")
    }
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().build().expect("client")
}

pub async fn get(client: &reqwest::Client, url: String) -> reqwest::Response {
    client
        .get(url)
        .send()
        .await
        .expect("request reaches the proxy")
}

pub fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

/// A redis-server child on a free port, killed on drop.
#[derive(Debug)]
pub struct RedisGuard {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    /// Arguments added to the command line (kept for restarts).
    extra: Vec<String>,
    /// `port` is a TLS port (`--tls-port`; the plain port is off).
    tls: bool,
}

impl RedisGuard {
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (an outage): connections are refused until
    /// [`RedisGuard::restart`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port (empty) and waits for it.
    pub fn restart(&mut self) {
        self.child = spawn_redis(self.port, self._dir.path(), &self.extra, self.tls)
            .expect("redis-server restarts");
        let start = Instant::now();
        while !ready(self.port, self.tls) {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "redis-server did not come back"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn spawn_redis(
    port: u16,
    dir: &std::path::Path,
    extra: &[String],
    tls: bool,
) -> std::io::Result<Child> {
    let ports = if tls {
        [
            "--port".to_string(),
            "0".into(),
            "--tls-port".into(),
            port.to_string(),
        ]
    } else {
        [
            "--port".to_string(),
            port.to_string(),
            String::new(),
            String::new(),
        ]
    };
    Command::new("redis-server")
        .args(ports.iter().filter(|a| !a.is_empty()))
        .args(extra)
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
}

impl Drop for RedisGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Whether the server on `port` is up: it answers PING (`+PONG`, or
/// `-NOAUTH` when it wants a password); a TLS port, that it accepts.
fn ready(port: u16, tls: bool) -> bool {
    if tls {
        return TcpStream::connect(("127.0.0.1", port)).is_ok();
    }
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut buf = [0u8; 16];
    s.write_all(b"PING\r\n").is_ok()
        && s.read(&mut buf)
            .is_ok_and(|n| buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
}

/// Starts redis-server, or returns `None` (with a notice) when the binary
/// is absent — unless `PREWARM_REQUIRE_SERVICES=1`, which makes it fail.
pub fn redis() -> Option<RedisGuard> {
    redis_with(&[], false)
}

/// [`redis`] with `extra` arguments (`--requirepass`, TLS files); with
/// `tls` the guard's port is a TLS port and the plain port is off.
pub fn redis_with(extra: &[String], tls: bool) -> Option<RedisGuard> {
    let required = std::env::var("PREWARM_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let dir = tempfile::tempdir().expect("temp dir");
    for _attempt in 0..3 {
        let port = free_port();
        let spawned = spawn_redis(port, dir.path(), extra, tls);
        let mut child = match spawned {
            Ok(c) => c,
            Err(e) => {
                assert!(
                    !required,
                    "PREWARM_REQUIRE_SERVICES=1 but redis-server cannot start: {e}"
                );
                eprintln!("NOTICE: redis-server not available ({e}); skipping this Redis test");
                return None;
            }
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if ready(port, tls) {
                return Some(RedisGuard {
                    child,
                    port,
                    _dir: dir,
                    extra: extra.to_vec(),
                    tls,
                });
            }
            if let Ok(Some(_)) = child.try_wait() {
                break; // exited (port taken?): try another port
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("redis-server started but never answered PING");
}

/// A service over `store` built from `cfg` (no listeners), for tests that
/// need a store with injected faults.
pub fn service_with_store(
    cfg: &TestCfg,
    store: std::sync::Arc<dyn prewarm_server::store::Store>,
) -> (
    std::sync::Arc<prewarm_server::service::CacheService>,
    prewarm_server::events::EventReceivers,
) {
    use prewarm_server::clock::SystemClock;
    use prewarm_server::service::{CacheService, ServiceParts};
    use prewarm_server::upstream::UpstreamClient;
    let config = cfg.config(&|_| None);
    let upstream = UpstreamClient::new(
        config.upstream.clone(),
        Arc::new(SystemClock),
        Arc::new(config.redactor()),
    )
    .expect("client builds");
    let (sink, events) = prewarm_server::events::event_channels(1024, 1024);
    let svc = CacheService::new(ServiceParts {
        datasets: config.datasets.values().cloned().collect(),
        store,
        upstream: Arc::new(upstream),
        sidecars: Default::default(),
        events: sink,
        clock: Arc::new(SystemClock),
        request_timeout: config.server.request_timeout,
    });
    (svc, events)
}

/// The upstream-sim's counters read over HTTP, as a client would.
pub async fn sim_stats(addr: SocketAddr) -> prewarm_server::upstream_sim::SimStats {
    http()
        .get(format!("http://{addr}/stats"))
        .send()
        .await
        .expect("sim answers /stats")
        .json()
        .await
        .expect("stats JSON")
}

/// Puts an entry for quote/`key` fetched `age_s` seconds ago.
pub async fn put_aged(d: &Running, key: &str, body: &'static [u8], age_s: f64, ttl_s: f64) {
    let entry = prewarm_server::store::Entry {
        body: bytes::Bytes::from_static(body),
        fetched_at_s: d.service.clock().now_s() - age_s,
        content_type: Some("application/json".into()),
        ..Default::default()
    };
    d.service
        .store()
        .put("quote", key, entry, ttl_s)
        .await
        .expect("store accepts the entry");
}

/// The system clock plus an offset a test moves forward, so entries go
/// stale and engine timers come due without waiting.
#[derive(Debug, Default)]
pub struct SteppedClock {
    offset_ms: std::sync::atomic::AtomicU64,
}

impl SteppedClock {
    /// Moves the clock `s` seconds forward.
    pub fn advance_s(&self, s: f64) {
        self.offset_ms
            .fetch_add((s * 1000.0) as u64, std::sync::atomic::Ordering::SeqCst);
    }
}

impl prewarm_server::clock::Clock for SteppedClock {
    fn now_s(&self) -> f64 {
        prewarm_server::clock::unix_now_s()
            + self.offset_ms.load(std::sync::atomic::Ordering::SeqCst) as f64 / 1000.0
    }
}

/// Sum of the samples of Prometheus family `name` whose labels include
/// every `label="value"` of `labels`, in the `/metrics` text `page`.
pub fn metric_sum(page: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (family, rest) = series.split_once('{').unwrap_or((series, ""));
            (family == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

/// A redis-server on a TLS port with a certificate for 127.0.0.1 signed by
/// a private CA, both made now with the `openssl` CLI, and the CA's
/// certificate (PEM).
/// `None` (with a notice) when `openssl` or redis-server is absent, unless
/// `PREWARM_REQUIRE_SERVICES=1`.
pub fn redis_tls() -> Option<(RedisGuard, Vec<u8>)> {
    let required = std::env::var("PREWARM_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let dir = tempfile::tempdir().expect("temp dir");
    let at = |f: &str| dir.path().join(f);
    std::fs::write(
        at("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .expect("extensions file");
    // A private CA, and the server's certificate for 127.0.0.1 signed by it.
    let steps = [
        "req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=prewarm-test-ca -keyout ca.key -out ca.pem",
        "req -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 -keyout key.pem -out server.csr",
        "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 -extfile ext.cnf -out cert.pem",
    ];
    for step in steps {
        let made = Command::new("openssl")
            .args(step.split(' '))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if !made.as_ref().is_ok_and(|s| s.success()) {
            assert!(
                !required,
                "PREWARM_REQUIRE_SERVICES=1 but openssl cannot make a certificate: {made:?}"
            );
            eprintln!("NOTICE: openssl not available ({made:?}); skipping this TLS test");
            return None;
        }
    }
    let (cert, key, ca) = (at("cert.pem"), at("key.pem"), at("ca.pem"));
    let pem = std::fs::read(&ca).expect("CA certificate written");
    let path = |p: &std::path::Path| p.display().to_string();
    let args = [
        "--tls-cert-file".to_string(),
        path(&cert),
        "--tls-key-file".into(),
        path(&key),
        "--tls-ca-cert-file".into(),
        path(&ca),
        "--tls-auth-clients".into(),
        "no".into(),
    ];
    // The server reads the files at start and on restart: keep them.
    let guard = redis_with(&args, true)?;
    std::mem::forget(dir);
    Some((guard, pem))
}

/// The JSON answer of the admin route `path` (e.g. `/warming/stats`),
/// read over HTTP as a client would, without a token.
pub async fn admin_json(d: &Running, path: &str) -> serde_json::Value {
    http()
        .get(format!("http://{}{path}", d.admin_addr))
        .send()
        .await
        .expect("the admin listener answers")
        .json()
        .await
        .expect("a JSON answer")
}
