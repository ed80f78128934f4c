//! `prewarm serve`: builds everything from a [`ServeConfig`], binds the
//! listeners and shuts down gracefully.
//!
//! Order: the admin listener binds first so `/healthz` answers from the
//! start; then state dir, built-in upstream-sim (when no upstream is
//! configured), store, sidecars, upstream client, service, proxy listener;
//! `/readyz` turns 200 last (under `warming.startup = "before_ready"`,
//! once the driver's start-up cycle is done or its deadline passed).
//! [`Running::start_driver`] then starts the engine driver (restoring
//! snapshots, then the start-up cycle). Shutdown stops accepting on both
//! listeners, lets requests in flight finish, then stops the driver, which
//! finishes its warms and saves every snapshot.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::admin::{self, WarmingSlot};
use crate::clock::{Clock, SystemClock};
use crate::config::{ServeConfig, StoreConfig};
use crate::driver::{self, DriverClient, DriverError, DriverHandle, DriverOptions, DriverReport};
use crate::events::{EventReceivers, EventSink, event_channels};
use crate::listener::ConnLimits;
use crate::proxy;
use crate::service::{CacheService, ServiceParts};
use crate::store::{SidecarWriter, Store, StoreError, StoreHealth, StoreOptions};
use crate::upstream::{FetchError, UpstreamClient};
use crate::upstream_sim::{self, SimConfig, SimHandle};

/// Why the daemon could not start or stopped with an error.
///
/// Each message says what failed; the cause is the error's
/// [`source`](std::error::Error::source), printed once by whoever prints
/// the chain (the binary prints `message: cause: cause …`).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A listener could not bind.
    #[error("cannot listen on {addr} for the {what}; choose another address with {flag}")]
    Bind {
        /// `proxy` or `admin`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The flag and environment variable that set this address.
        flag: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// The state directory could not be created.
    #[error("cannot create the state dir {path}; {STATE_DIR_SETTING}")]
    StateDir {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The state directory exists but no file can be written in it.
    #[error("the state dir {path} is not writable; {STATE_DIR_SETTING}")]
    StateDirNotWritable {
        /// The directory.
        path: PathBuf,
        /// Cause (names the file tried).
        source: prewarm_persist::PersistError,
    },
    /// The final snapshot of at least one dataset could not be saved at
    /// shutdown: what was learned since the last save is lost.
    #[error("the final snapshot failed: {0}")]
    FinalSnapshot(String),
    /// The store (or a sidecar Redis) could not be reached.
    #[error("store")]
    Store(#[from] StoreError),
    /// The upstream client could not be built.
    #[error("upstream client")]
    Upstream(#[from] FetchError),
    /// The built-in upstream-sim could not start.
    #[error("built-in upstream-sim")]
    Sim(#[source] std::io::Error),
    /// A listener failed while serving.
    #[error("server")]
    Server(#[source] std::io::Error),
    /// The engine driver could not start.
    #[error("warming driver")]
    Driver(#[from] DriverError),
}

/// Where the state dir is set, for errors about it.
const STATE_DIR_SETTING: &str =
    "choose another with --state-dir (PREWARM_STATE_DIR, server.state_dir)";

/// A running daemon.
#[derive(Debug)]
pub struct Running {
    /// Where the proxy listens.
    pub proxy_addr: SocketAddr,
    /// Where the admin endpoints listen.
    pub admin_addr: SocketAddr,
    /// The read-through service (`warm` lives here).
    pub service: Arc<CacheService>,
    /// The validated config, with the built-in upstream attached.
    pub config: ServeConfig,
    events: Option<EventReceivers>,
    clock: Arc<dyn Clock>,
    driver: Option<DriverHandle>,
    warming: WarmingSlot,
    sim: Option<SimHandle>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<std::io::Result<()>>>,
    /// `/readyz`'s flag (held by the driver under `before_ready`).
    ready: Arc<AtomicBool>,
}

/// Builds the configured store backend; the memory store reports its
/// evictions to `events` (Redis cannot, see [`crate::store::redis`]); a
/// Redis store reports its outages to `health`.
pub async fn build_store(
    cfg: &StoreConfig,
    clock: Arc<dyn Clock>,
    events: &EventSink,
    health: StoreHealth,
) -> Result<Arc<dyn Store>, StoreError> {
    cfg.backend
        .open(StoreOptions {
            memory_limit_mb: cfg.memory_limit_mb,
            stale_grace_s: cfg.stale_grace_s,
            clock,
            events: events.clone(),
            op_timeout: cfg.timeout,
            backoff: cfg.backoff,
            health,
            redis_auth: cfg.redis_auth.clone(),
        })
        .await
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<tokio::net::TcpListener, ServeError> {
    let flag = if what == "admin" {
        "--admin-listen (PREWARM_ADMIN_LISTEN, server.admin_listen)"
    } else {
        "--listen (PREWARM_LISTEN, server.listen)"
    };
    tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind {
            what,
            addr,
            flag,
            source,
        })
}

/// Serves `app` on `listener` under `limits` ([`crate::listener`]) until
/// `stop` turns true.
fn spawn_server(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    limits: ConnLimits,
    stop: &watch::Sender<bool>,
) -> JoinHandle<std::io::Result<()>> {
    let app = app.layer(axum::middleware::from_fn(crate::http::json_errors));
    tokio::spawn(crate::listener::serve(
        listener,
        app,
        limits,
        stop.subscribe(),
    ))
}

/// Starts the daemon on the system clock.
pub async fn start(config: ServeConfig) -> Result<Running, ServeError> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

/// Starts the daemon with `clock`.
pub async fn start_with_clock(
    mut config: ServeConfig,
    clock: Arc<dyn Clock>,
) -> Result<Running, ServeError> {
    let (stop, _) = watch::channel(false);
    let ready = Arc::new(AtomicBool::new(false));
    let admin_listener = bind("admin", config.server.admin_listen).await?;
    let admin_addr = admin_listener.local_addr().map_err(ServeError::Server)?;
    let warming = WarmingSlot::default();
    let store_health = StoreHealth::new(config.store.backend.kind());
    let mut tasks = vec![spawn_server(
        admin_listener,
        admin::router(
            ready.clone(),
            warming.clone(),
            admin::AdminAuth::new(&config.admin),
            store_health.clone(),
        ),
        config.server.connections,
        &stop,
    )];
    let metrics = admin::prometheus::install();
    tasks.push(admin::prometheus::spawn_upkeep(
        config.server.metrics_upkeep_interval,
        stop.subscribe(),
        move || metrics.run_upkeep(),
    ));
    tracing::info!(%admin_addr, "admin listening (/healthz, /readyz)");
    let built = build(&mut config, clock.clone(), store_health).await;
    let (service, events, sim) = match built {
        Ok(parts) => parts,
        Err(e) => {
            let _ = stop.send(true);
            return Err(e);
        }
    };
    let proxy_listener = match bind("proxy", config.server.listen).await {
        Ok(l) => l,
        Err(e) => {
            let _ = stop.send(true);
            return Err(e);
        }
    };
    let proxy_addr = proxy_listener.local_addr().map_err(ServeError::Server)?;
    let access_token = config.server.access_token.clone().map(Arc::new);
    let app = proxy::router(
        Arc::clone(&service),
        config.server.max_batch_keys,
        config.server.access_rate_limit_per_min,
    )
    .layer(axum::middleware::from_fn_with_state(
        access_token,
        crate::http::require_access_token,
    ));
    tasks.push(spawn_server(
        proxy_listener,
        app,
        config.server.connections,
        &stop,
    ));
    // Under `before_ready` the driver's start-up cycle releases readiness.
    let held = config.warming.driver.startup == crate::driver::settings::StartupMode::BeforeReady
        && config.warming.driver.enabled;
    if !held {
        ready.store(true, Ordering::Release);
    }
    tracing::info!(%proxy_addr, "proxy listening");
    Ok(Running {
        proxy_addr,
        admin_addr,
        service,
        config,
        events: Some(events),
        clock,
        driver: None,
        warming,
        sim,
        stop,
        tasks,
        ready,
    })
}

type Built = (Arc<CacheService>, EventReceivers, Option<SimHandle>);

async fn build(
    config: &mut ServeConfig,
    clock: Arc<dyn Clock>,
    store_health: StoreHealth,
) -> Result<Built, ServeError> {
    prepare_state_dir(&config.server.state_dir)?;
    let sim = if config.builtin_upstream {
        let cfg = SimConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..SimConfig::default()
        };
        let (addr, handle) = upstream_sim::spawn(cfg).await.map_err(ServeError::Sim)?;
        tracing::info!(%addr, "no upstream configured: started the built-in upstream-sim in-process");
        config.attach_builtin_upstream(addr);
        Some(handle)
    } else {
        None
    };
    let (sink, events) = event_channels(
        config.server.access_queue_capacity,
        config.server.fetch_queue_capacity,
    );
    let store = build_store(&config.store, clock.clone(), &sink, store_health).await?;
    let mut sidecars = HashMap::new();
    for (name, ds) in &config.datasets {
        if let Some(sc) = &ds.sidecar {
            sidecars.insert(name.clone(), SidecarWriter::connect(sc).await?);
        }
    }
    let redactor = Arc::new(config.redactor());
    for ds in config.datasets.values() {
        // `pre=60,regular=15,after=60,closed=until_open`, as `prewarm replay
        // --ttl-by-session` takes it; `none` when the TTL is flat.
        let by_session = ds.ttl_by_session.map_or("none".into(), |t| t.to_string());
        // The batch endpoint warming and batch reads go through, if any.
        let batch_url = ds.batch.as_ref().map_or("none".into(), |b| {
            format!(
                "{} (up to {} keys)",
                redactor.redact(b.url.shown()),
                b.max_keys
            )
        });
        tracing::info!(
            dataset = %ds.name,
            url = %redactor.redact(ds.url.shown()),
            batch_url = %batch_url,
            ttl_s = ds.ttl_s,
            ttl_by_session = %by_session,
            "dataset"
        );
    }
    let upstream = Arc::new(UpstreamClient::new(
        config.upstream.clone(),
        clock.clone(),
        redactor,
    )?);
    let service = CacheService::new(ServiceParts {
        datasets: config.datasets.values().cloned().collect(),
        store,
        upstream,
        sidecars,
        events: sink,
        clock,
        request_timeout: config.server.request_timeout,
    });
    Ok((service, events, sim))
}

/// Creates the state dir, checks that files can be written in it, and
/// removes what killed saves left there.
fn prepare_state_dir(dir: &std::path::Path) -> Result<(), ServeError> {
    std::fs::create_dir_all(dir).map_err(|source| ServeError::StateDir {
        path: dir.to_path_buf(),
        source,
    })?;
    prewarm_persist::check_writable(dir).map_err(|source| ServeError::StateDirNotWritable {
        path: dir.to_path_buf(),
        source,
    })?;
    match prewarm_persist::remove_stale_temps(dir) {
        Ok(removed) => {
            for path in removed {
                tracing::info!(path = %path.display(), "removed the temporary file of an interrupted save");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot remove temporary files of interrupted saves"),
    }
    Ok(())
}

impl Running {
    /// Takes the event receivers for the engine driver (once).
    pub fn take_events(&mut self) -> Option<EventReceivers> {
        self.events.take()
    }

    /// Starts the engine driver on the daemon's clock (restoring snapshots
    /// from the state dir) and serves `/warming/*`. Fails if the events
    /// were taken already.
    pub fn start_driver(&mut self) -> Result<&DriverClient, ServeError> {
        let opts = DriverOptions::from_config(&self.config);
        self.start_driver_with(opts)
    }

    /// [`Running::start_driver`] with explicit options (tests: calendar,
    /// publication rate).
    pub fn start_driver_with(
        &mut self,
        mut opts: DriverOptions,
    ) -> Result<&DriverClient, ServeError> {
        opts.ready = Some(Arc::clone(&self.ready));
        let events = self.events.take().ok_or_else(|| {
            ServeError::Server(std::io::Error::other("event receivers already taken"))
        })?;
        let handle = driver::spawn(Arc::clone(&self.service), events, opts, self.clock.clone())?;
        let _ = self.warming.set(handle.client().clone());
        Ok(self.driver.insert(handle).client())
    }

    /// The driver's client, once started.
    pub fn driver(&self) -> Option<&DriverClient> {
        self.driver.as_ref().map(DriverHandle::client)
    }

    /// Address of the built-in upstream-sim, when one was started.
    pub fn builtin_upstream_addr(&self) -> Option<SocketAddr> {
        self.sim.as_ref().map(SimHandle::addr)
    }

    /// Stops accepting on both listeners, waits for requests in flight,
    /// then stops the driver (warms finish, snapshots are saved). An error
    /// if a listener failed or a final snapshot could not be saved
    /// ([`ServeError::FinalSnapshot`], naming each dataset and file).
    pub async fn shutdown(self) -> Result<(), ServeError> {
        let (result, report) = self.shutdown_with_report().await;
        result?;
        let failed: Vec<String> = report
            .saved
            .iter()
            .filter_map(|r| {
                r.error
                    .as_ref()
                    .map(|e| format!("dataset {} to {}: {e}", r.dataset, r.path))
            })
            .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(ServeError::FinalSnapshot(failed.join("; ")))
        }
    }

    /// [`Running::shutdown`], also returning what the driver saved.
    pub async fn shutdown_with_report(self) -> (Result<(), ServeError>, DriverReport) {
        let _ = self.stop.send(true);
        let mut result = Ok(());
        for task in self.tasks {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => result = Err(ServeError::Server(e)),
                Err(e) => result = Err(ServeError::Server(std::io::Error::other(e.to_string()))),
            }
        }
        let report = match self.driver {
            Some(d) => d.shutdown().await,
            None => DriverReport::default(),
        };
        if let Some(sim) = self.sim {
            sim.shutdown().await;
        }
        (result, report)
    }
}

/// The one `ready` line: where to send requests and where to watch.
fn log_ready(running: &Running) {
    let dataset = running
        .config
        .datasets
        .keys()
        .next()
        .map_or("quote", String::as_str);
    let proxy = format!("http://{}/v1/{dataset}/{{key}}", running.proxy_addr);
    let dashboard = format!("http://{}/", running.admin_addr);
    let upstream = running.builtin_upstream_addr().map_or_else(
        || "configured".to_string(),
        |a| format!("built-in upstream-sim at http://{a}"),
    );
    tracing::info!(%proxy, %dashboard, %upstream, "ready");
}

/// Runs the daemon with its driver until `shutdown` resolves, then shuts
/// down gracefully (snapshots saved).
pub async fn run(
    config: ServeConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    run_with_clock(config, Arc::new(SystemClock), shutdown).await
}

/// [`run`] on `clock`.
pub async fn run_with_clock(
    config: ServeConfig,
    clock: Arc<dyn Clock>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let mut running = start_with_clock(config, clock).await?;
    if let Err(e) = running.start_driver() {
        let _ = running.shutdown().await;
        return Err(e);
    }
    log_ready(&running);
    shutdown.await;
    tracing::info!("shutting down: no new connections, finishing requests in flight");
    running.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `message: cause: cause …`, as the binary prints an error.
    fn chain(e: &dyn std::error::Error) -> Vec<String> {
        let mut out = vec![e.to_string()];
        let mut cur = e.source();
        while let Some(c) = cur {
            out.push(c.to_string());
            cur = c.source();
        }
        out
    }

    #[tokio::test]
    async fn a_port_clash_names_the_flag_and_prints_its_cause_once() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let e = bind("proxy", addr).await.expect_err("the port is taken");
        let parts = chain(&e);
        assert!(parts[0].contains("--listen"), "{parts:?}");
        assert!(parts[0].contains(&addr.to_string()), "{parts:?}");
        let os = &parts[1];
        let printed = parts.join(": ");
        assert_eq!(printed.matches(os.as_str()).count(), 1, "{printed}");
        let e = bind("admin", addr).await.expect_err("the port is taken");
        assert!(chain(&e)[0].contains("--admin-listen"));
    }
}
