//! The publisher of the view: a [`DriverSnapshot`] in a watch channel,
//! replaced at most once per `publish_every`, and only when something
//! changed since the last one.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::view::DriverSnapshot;

/// Publishes the driver's view to the monitoring API.
pub(super) struct Publisher {
    tx: watch::Sender<Arc<DriverSnapshot>>,
    /// Least time between two publications.
    every: Duration,
    last: Option<Instant>,
    /// Whether anything changed since the last publication.
    dirty: bool,
}

impl Publisher {
    /// A publisher on `tx`, publishing at most once per `every`; the first
    /// publication is due at once.
    pub(super) fn new(tx: watch::Sender<Arc<DriverSnapshot>>, every: Duration) -> Self {
        Self {
            tx,
            every,
            last: None,
            dirty: true,
        }
    }

    /// Notes that the view changed.
    pub(super) fn mark_dirty(&mut self) {
        self.dirty = true;
    }

    /// How long until a publication is allowed.
    fn wait(&self) -> Duration {
        match self.last {
            None => Duration::ZERO,
            Some(at) => self.every.saturating_sub(at.elapsed()),
        }
    }

    /// How long until the pending publication is allowed; `None` when
    /// nothing changed.
    pub(super) fn pending_wait(&self) -> Option<Duration> {
        self.dirty.then(|| self.wait())
    }

    /// Whether something changed and may be published now.
    pub(super) fn is_due(&self) -> bool {
        self.dirty && self.wait().is_zero()
    }

    /// Publishes `snap` now.
    pub(super) fn publish(&mut self, snap: DriverSnapshot) -> Arc<DriverSnapshot> {
        let snap = Arc::new(snap);
        self.tx.send_replace(snap.clone());
        self.last = Some(Instant::now());
        self.dirty = false;
        snap
    }
}
