//! The accept loop of both listeners (proxy and admin): HTTP/1 with a
//! header-read timeout, a keep-alive idle timeout, a cap on open
//! connections, and graceful shutdown.
//!
//! - A connection is accepted only once a permit of the listener's
//!   [`ConnLimits::max_connections`] is free; past the cap, new
//!   connections wait in the kernel's accept queue (they are neither
//!   served nor given a file descriptor) until one closes.
//! - A request head must arrive within `header_read_timeout` of the
//!   connection's start or of its first byte after an idle spell; a kept-
//!   alive connection with no request for `keep_alive_idle` is closed
//!   ([`timed`] has the phases).
//! - A request body must arrive within `body_read_timeout` of its head,
//!   else the answer is 408 and the connection closes ([`body`]); a
//!   response write that makes no progress for `write_timeout` (the
//!   client does not read) closes the connection ([`timed`]).
//! - Shutdown stops accepting, closes idle connections, lets requests in
//!   flight finish, and returns once every connection has closed.

mod body;
mod timed;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulConnection, GracefulShutdown};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

pub use body::{BodyTimedOut, DeadlineBody};
pub use timed::{ConnPhase, RequestGuard, TimedStream};

/// File descriptors left for everything but client connections (upstream
/// and Redis connections, snapshot files, logs) when the connection cap is
/// derived from the process limit.
pub const FD_RESERVE: u64 = 256;
/// Connection cap per listener when the process's file limit cannot be
/// read.
pub const FALLBACK_MAX_CONNECTIONS: usize = 1024;
/// The smallest derived connection cap per listener.
pub const MIN_MAX_CONNECTIONS: usize = 16;

/// The connection policy of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Longest a request head may take to arrive (from the connection's
    /// start, or from its first byte after an idle spell).
    pub header_read_timeout: Duration,
    /// Longest a request body may take to arrive once its head has.
    pub body_read_timeout: Duration,
    /// Longest a response write may make no progress.
    pub write_timeout: Duration,
    /// Longest a kept-alive connection may wait for its next request.
    pub keep_alive_idle: Duration,
    /// Most connections open at once on the listener.
    pub max_connections: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(30),
            keep_alive_idle: Duration::from_secs(60),
            max_connections: default_max_connections(),
        }
    }
}

/// The default connection cap per listener: half of the soft
/// `RLIMIT_NOFILE` after [`FD_RESERVE`] (two listeners share the
/// process's limit), at least [`MIN_MAX_CONNECTIONS`];
/// [`FALLBACK_MAX_CONNECTIONS`] when the limit cannot be read.
pub fn default_max_connections() -> usize {
    match soft_fd_limit() {
        Some(soft) => max_connections_for(soft),
        None => FALLBACK_MAX_CONNECTIONS,
    }
}

/// The cap [`default_max_connections`] derives from a soft fd limit.
pub fn max_connections_for(soft_fd_limit: u64) -> usize {
    let per_listener = soft_fd_limit.saturating_sub(FD_RESERVE) / 2;
    usize::try_from(per_listener)
        .unwrap_or(usize::MAX)
        .max(MIN_MAX_CONNECTIONS)
}

#[cfg(unix)]
fn soft_fd_limit() -> Option<u64> {
    let (soft, _hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).ok()?;
    (soft != rlimit::INFINITY).then_some(soft)
}

#[cfg(not(unix))]
fn soft_fd_limit() -> Option<u64> {
    None
}

/// Serves `app` on `listener` under `limits` until `stop` turns true, then
/// shuts down gracefully. An error only if the listener itself fails in a
/// way accepting again cannot cure.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    limits: ConnLimits,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    // The phases of `TimedStream` time heads and idle spells; hyper's own
    // header timer would also run while idle.
    http.header_read_timeout(None);
    loop {
        let permit = tokio::select! {
            p = Arc::clone(&permits).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            () = stopped(&mut stop) => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = stopped(&mut stop) => break,
        };
        let conn = serve_connection(&http, stream, app.clone(), limits);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One HTTP/1 connection: its stream timed by its phase and its writes,
/// each request marking the busy phase until its response is ready and
/// its body read under its deadline.
fn serve_connection(
    http: &hyper::server::conn::http1::Builder,
    stream: TcpStream,
    app: axum::Router,
    limits: ConnLimits,
) -> impl GracefulConnection<Error = hyper::Error> + Send + 'static {
    let phase = ConnPhase::new(limits.header_read_timeout, limits.keep_alive_idle);
    let io = TokioIo::new(TimedStream::new(
        stream,
        Arc::clone(&phase),
        limits.write_timeout,
    ));
    let svc = TowerToHyperService::new(app);
    let body_timeout = limits.body_read_timeout;
    let handler = move |req: hyper::Request<Incoming>| {
        let guard = phase.begin_request();
        let timed_out = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&timed_out);
        let req = req.map(|b| DeadlineBody::new(b, body_timeout, flag));
        let fut = hyper::service::Service::call(&svc, req);
        async move {
            let resp = fut.await;
            drop(guard);
            if timed_out.load(Ordering::Acquire) {
                return Ok(body::timed_out_response(body_timeout));
            }
            resp
        }
    };
    http.serve_connection(io, hyper::service::service_fn(handler))
}

/// Resolves once `stop` is true (or its sender is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// An accept error: a connection-level one (the peer gave up) is skipped;
/// any other (out of file descriptors) is logged and accepting pauses a
/// second so the loop does not spin.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed; retrying in 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_a_reserve_and_halves_the_rest() {
        assert_eq!(max_connections_for(1024), 384);
        assert_eq!(max_connections_for(65_536), (65_536 - 256) / 2);
        assert_eq!(max_connections_for(100), MIN_MAX_CONNECTIONS);
        assert!(default_max_connections() >= MIN_MAX_CONNECTIONS);
    }
}
