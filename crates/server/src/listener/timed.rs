//! The deadlines of one connection: how long a request head may take to
//! arrive, how long a kept-alive connection may sit idle, and how long a
//! response write may make no progress.
//!
//! A connection is in one of three phases:
//!
//! | phase | starts | deadline |
//! |---|---|---|
//! | head | at accept, or at the first byte after an idle spell | `header_read_timeout` after it started |
//! | busy | when the head is parsed and the request handed to the router | none (the request's own timeouts apply) |
//! | idle | when the response is ready | `keep_alive_idle` after it started |
//!
//! [`TimedStream`] enforces the deadline on reads: a read still pending at
//! the deadline fails with [`std::io::ErrorKind::TimedOut`], and hyper
//! closes the connection. [`ConnPhase::begin_request`] marks the busy phase
//! (its guard, dropped when the response is ready, starts the idle one).
//!
//! Writes, in any phase: a write that stays pending (the peer does not
//! read, its window and our send buffer are full) for `write_timeout`
//! fails with [`std::io::ErrorKind::TimedOut`], so a client that never
//! reads its response cannot hold the connection's task. Any progress
//! starts the wait afresh. (The request body has its own deadline:
//! [`super::body`].)

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Head,
    Busy,
    Idle,
}

#[derive(Debug)]
struct PhaseState {
    phase: Phase,
    /// When the current phase started.
    since: Instant,
    /// The task of a read left pending without a deadline (busy phase),
    /// woken when the phase changes so the new deadline is armed.
    reader: Option<Waker>,
}

/// The phase of one connection, shared by its stream and its service.
#[derive(Debug)]
pub struct ConnPhase {
    header_read_timeout: Duration,
    keep_alive_idle: Duration,
    state: Mutex<PhaseState>,
}

impl ConnPhase {
    /// A connection accepted now, waiting for its first request head.
    pub fn new(header_read_timeout: Duration, keep_alive_idle: Duration) -> Arc<Self> {
        Arc::new(Self {
            header_read_timeout,
            keep_alive_idle,
            state: Mutex::new(PhaseState {
                phase: Phase::Head,
                since: Instant::now(),
                reader: None,
            }),
        })
    }

    fn set(&self, phase: Phase) {
        let reader = match self.state.lock() {
            Ok(mut s) => {
                s.phase = phase;
                s.since = Instant::now();
                s.reader.take()
            }
            Err(_) => None,
        };
        if let Some(w) = reader {
            w.wake();
        }
    }

    /// A request head was parsed: no deadline until the guard is dropped
    /// (when the response is ready), which starts the idle phase.
    pub fn begin_request(self: &Arc<Self>) -> RequestGuard {
        self.set(Phase::Busy);
        RequestGuard(Arc::clone(self))
    }

    /// Bytes arrived: an idle connection starts reading a head.
    fn on_bytes(&self) {
        if let Ok(mut s) = self.state.lock()
            && s.phase == Phase::Idle
        {
            s.phase = Phase::Head;
            s.since = Instant::now();
        }
    }

    /// The instant reads must have completed by, if any; without one,
    /// `reader` is woken at the next phase change.
    fn deadline(&self, reader: &Waker) -> Option<Instant> {
        let mut s = self.state.lock().ok()?;
        match s.phase {
            Phase::Head => Some(s.since + self.header_read_timeout),
            Phase::Idle => Some(s.since + self.keep_alive_idle),
            Phase::Busy => {
                s.reader = Some(reader.clone());
                None
            }
        }
    }
}

/// Held while a request is handled; dropping it starts the idle phase.
#[derive(Debug)]
pub struct RequestGuard(Arc<ConnPhase>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.set(Phase::Idle);
    }
}

/// A stream whose reads fail once the connection's phase deadline passes,
/// and whose writes fail once they have been stalled for its write
/// timeout.
#[derive(Debug)]
pub struct TimedStream<S> {
    inner: S,
    phase: Arc<ConnPhase>,
    sleep: Pin<Box<Sleep>>,
    write_timeout: Duration,
    /// When the current write stall ends the connection (`None`: the last
    /// write made progress).
    write_deadline: Option<Instant>,
    write_sleep: Pin<Box<Sleep>>,
}

impl<S> TimedStream<S> {
    /// Wraps `inner`: reads timed by `phase`, writes by `write_timeout`.
    pub fn new(inner: S, phase: Arc<ConnPhase>, write_timeout: Duration) -> Self {
        Self {
            inner,
            phase,
            sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
            write_timeout,
            write_deadline: None,
            write_sleep: Box::pin(tokio::time::sleep_until(Instant::now())),
        }
    }

    /// What a write that returned `poll` means under the write timeout:
    /// progress (or an error) clears the stall; pending starts or goes on
    /// with it, failing once it has lasted `write_timeout`.
    fn timed_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.write_deadline = None;
            return poll;
        }
        let deadline = *self
            .write_deadline
            .get_or_insert_with(|| Instant::now() + self.write_timeout);
        if self.write_sleep.deadline() != deadline {
            self.write_sleep.as_mut().reset(deadline);
        }
        match self.write_sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "response write stalled past the write timeout (the client does not read)",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        "connection deadline passed (header read or keep-alive idle)",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedStream<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.phase.on_bytes();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some(deadline) = this.phase.deadline(cx.waker()) else {
                    return Poll::Pending;
                };
                if this.sleep.deadline() != deadline {
                    this.sleep.as_mut().reset(deadline);
                }
                match this.sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(timed_out())),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedStream<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.timed_write(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.timed_write(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.timed_write(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const HEAD: Duration = Duration::from_secs(10);
    const IDLE: Duration = Duration::from_secs(60);
    const WRITE: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_times_out_at_the_header_deadline() {
        let (a, _b) = tokio::io::duplex(64);
        let mut s = TimedStream::new(a, ConnPhase::new(HEAD, IDLE), WRITE);
        let start = Instant::now();
        let e = s.read(&mut [0u8; 8]).await.expect_err("times out");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), HEAD);
    }

    #[tokio::test(start_paused = true)]
    async fn idle_uses_its_own_deadline_and_busy_has_none() {
        let (a, b) = tokio::io::duplex(64);
        let phase = ConnPhase::new(HEAD, IDLE);
        let mut s = TimedStream::new(a, Arc::clone(&phase), WRITE);
        let guard = phase.begin_request();
        // Busy: a read waits past both deadlines.
        let read = tokio::time::timeout(IDLE * 2, s.read(&mut [0u8; 8])).await;
        assert!(read.is_err(), "no deadline while busy");
        drop(guard);
        let start = Instant::now();
        let e = s.read(&mut [0u8; 8]).await.expect_err("idle times out");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), IDLE);
        drop(b);
    }

    #[tokio::test(start_paused = true)]
    async fn bytes_after_an_idle_spell_start_the_header_deadline() {
        let (a, mut b) = tokio::io::duplex(64);
        let phase = ConnPhase::new(HEAD, IDLE);
        let mut s = TimedStream::new(a, Arc::clone(&phase), WRITE);
        drop(phase.begin_request());
        tokio::time::advance(IDLE / 2).await;
        b.write_all(b"GET").await.unwrap();
        assert_eq!(s.read(&mut [0u8; 8]).await.unwrap(), 3);
        let start = Instant::now();
        let e = s.read(&mut [0u8; 8]).await.expect_err("head times out");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), HEAD);
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_pending_while_busy_gets_the_idle_deadline_when_the_response_is_ready() {
        let (a, _b) = tokio::io::duplex(64);
        let phase = ConnPhase::new(HEAD, IDLE);
        let guard = phase.begin_request();
        let mut s = TimedStream::new(a, Arc::clone(&phase), WRITE);
        let read = tokio::spawn(async move { s.read(&mut [0u8; 8]).await });
        tokio::time::advance(HEAD * 2).await;
        assert!(!read.is_finished(), "no deadline while busy");
        let start = Instant::now();
        drop(guard);
        let e = read.await.unwrap().expect_err("idle times out");
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_the_peer_never_reads_fails_at_the_write_timeout() {
        let (a, mut b) = tokio::io::duplex(64);
        let mut s = TimedStream::new(a, ConnPhase::new(HEAD, IDLE), WRITE);
        // The peer reads the first 64 bytes late: the stall starts afresh.
        s.write_all(&[7u8; 64]).await.unwrap();
        let write = tokio::spawn(async move {
            let start = Instant::now();
            let e = s.write_all(&[7u8; 128]).await.expect_err("times out");
            (e.kind(), start.elapsed())
        });
        tokio::task::yield_now().await;
        tokio::time::advance(WRITE / 2).await;
        let mut got = [0u8; 64];
        b.read_exact(&mut got).await.unwrap();
        let (kind, waited) = write.await.unwrap();
        assert_eq!(kind, io::ErrorKind::TimedOut);
        assert_eq!(waited, WRITE / 2 + WRITE, "the stall restarted on progress");
        drop(b);
    }
}
