//! Single-flight request coalescing.
//!
//! Invariants:
//! - At most one flight per key: the first caller leads, later callers
//!   follow and receive the leader's value.
//! - Every follower gets an outcome: the value when the [`Promise`] is
//!   completed, or [`Abandoned`] when the promise is dropped without one
//!   (the loader panicked or its future was cancelled). Nobody hangs.
//! - [`Coalescer::run`] spawns the load in its own task, so cancelling the
//!   caller that happened to lead never cancels the load.
//! - The std mutex guarding the map is never held across `.await`.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

/// The loader stopped without producing a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the loader stopped without a result (it panicked or was cancelled)")]
pub struct Abandoned;

type Slot<V> = watch::Receiver<Option<V>>;

struct Inflight<K, V> {
    next_id: u64,
    map: HashMap<K, (u64, Slot<V>)>,
}

/// A map of flights in progress, keyed by `K`, producing `V`.
pub struct Coalescer<K, V> {
    inner: Arc<Mutex<Inflight<K, V>>>,
}

impl<K, V> fmt::Debug for Coalescer<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalescer").finish_non_exhaustive()
    }
}

impl<K, V> Clone for Coalescer<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

/// The caller's role in a flight.
#[derive(Debug)]
pub enum Flight<K: Hash + Eq, V> {
    /// This caller must produce the value through the promise.
    Leader(Promise<K, V>, Waiter<V>),
    /// Another caller is producing it.
    Follower(Waiter<V>),
}

/// The obligation to produce a flight's value.
pub struct Promise<K: Hash + Eq, V> {
    key: Option<K>,
    id: u64,
    tx: watch::Sender<Option<V>>,
    inner: Arc<Mutex<Inflight<K, V>>>,
}

impl<K: Hash + Eq, V> fmt::Debug for Promise<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Promise")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// A handle on a flight's outcome.
#[derive(Debug)]
pub struct Waiter<V> {
    rx: Slot<V>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The map is valid after any panic (no invariant spans two statements),
    // so a poisoned lock is taken over rather than propagated.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<K: Hash + Eq + Clone, V: Clone> Default for Coalescer<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Coalescer<K, V> {
    /// An empty coalescer.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inflight {
                next_id: 0,
                map: HashMap::new(),
            })),
        }
    }

    /// Joins the flight for `key`, or starts one and leads it.
    pub fn join_or_lead(&self, key: K) -> Flight<K, V> {
        let mut guard = lock(&self.inner);
        if let Some((_, rx)) = guard.map.get(&key) {
            metrics::counter!("prewarm_coalesced_waiters_total").increment(1);
            return Flight::Follower(Waiter { rx: rx.clone() });
        }
        let (tx, rx) = watch::channel(None);
        guard.next_id += 1;
        let id = guard.next_id;
        guard.map.insert(key.clone(), (id, rx.clone()));
        drop(guard);
        let promise = Promise {
            key: Some(key),
            id,
            tx,
            inner: Arc::clone(&self.inner),
        };
        Flight::Leader(promise, Waiter { rx })
    }

    /// Number of flights in progress.
    pub fn in_flight(&self) -> usize {
        lock(&self.inner).map.len()
    }
}

impl<K, V> Coalescer<K, V>
where
    K: Hash + Eq + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Joins or leads the flight for `key`; a leader spawns `load()` in its
    /// own task. Returns the flight's value, or [`Abandoned`] if the load
    /// panicked.
    pub async fn run<F, Fut>(&self, key: K, load: F) -> Result<V, Abandoned>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        match self.join_or_lead(key) {
            Flight::Follower(waiter) => waiter.wait().await,
            Flight::Leader(promise, waiter) => {
                let fut = load();
                tokio::spawn(async move { promise.complete(fut.await) });
                waiter.wait().await
            }
        }
    }
}

impl<K: Hash + Eq, V> Promise<K, V> {
    /// Delivers `value` to every waiter and ends the flight.
    pub fn complete(mut self, value: V) {
        self.tx.send_replace(Some(value));
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(key) = self.key.take() {
            let mut guard = lock(&self.inner);
            if guard.map.get(&key).is_some_and(|(id, _)| *id == self.id) {
                guard.map.remove(&key);
            }
        }
    }
}

impl<K: Hash + Eq, V> Drop for Promise<K, V> {
    fn drop(&mut self) {
        // Not completed: end the flight; dropping `tx` wakes every waiter
        // with `Abandoned`.
        self.finish();
    }
}

impl<V: Clone> Waiter<V> {
    /// The flight's value, or [`Abandoned`].
    pub async fn wait(mut self) -> Result<V, Abandoned> {
        match self.rx.wait_for(Option::is_some).await {
            Ok(r) => r.clone().ok_or(Abandoned),
            Err(_) => Err(Abandoned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn many_callers_one_load() {
        let c: Coalescer<&str, u32> = Coalescer::new();
        let loads = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let (c, loads) = (c.clone(), loads.clone());
            tasks.push(tokio::spawn(async move {
                c.run("A", move || async move {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    7
                })
                .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(loads.load(Ordering::SeqCst), 1);
        assert_eq!(c.in_flight(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn dropped_promise_wakes_followers_with_abandoned() {
        let c: Coalescer<&str, u32> = Coalescer::new();
        let Flight::Leader(promise, _) = c.join_or_lead("A") else {
            panic!("first caller leads")
        };
        let Flight::Follower(w) = c.join_or_lead("A") else {
            panic!("second caller follows")
        };
        drop(promise);
        assert_eq!(w.wait().await, Err(Abandoned));
        assert_eq!(c.in_flight(), 0, "a new flight can start");
    }

    #[tokio::test(start_paused = true)]
    async fn panicking_loader_does_not_strand_waiters() {
        let c: Coalescer<&str, u32> = Coalescer::new();
        let c2 = c.clone();
        let follower = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(10)).await;
            c2.run("A", || async { 1 }).await
        });
        let leader = c
            .run("A", || async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                panic!("loader exploded")
            })
            .await;
        assert_eq!(leader, Err(Abandoned));
        assert_eq!(follower.await.unwrap(), Err(Abandoned));
        assert_eq!(c.run("A", || async { 3 }).await, Ok(3), "the key recovers");
    }

    #[tokio::test(start_paused = true)]
    async fn cancelled_leader_does_not_cancel_the_load() {
        let c: Coalescer<&str, u32> = Coalescer::new();
        let c1 = c.clone();
        let leader = tokio::spawn(async move {
            c1.run("A", || async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                9
            })
            .await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let Flight::Follower(w) = c.join_or_lead("A") else {
            panic!("leader's flight is in progress")
        };
        leader.abort();
        assert_eq!(w.wait().await, Ok(9));
    }

    #[tokio::test(start_paused = true)]
    async fn late_joiner_after_value_but_before_removal_gets_value() {
        let c: Coalescer<&str, u32> = Coalescer::new();
        let Flight::Leader(promise, w1) = c.join_or_lead("A") else {
            panic!("leads")
        };
        promise.tx.send_replace(Some(4));
        let Flight::Follower(w2) = c.join_or_lead("A") else {
            panic!("follows")
        };
        promise.complete(4);
        assert_eq!(w1.wait().await, Ok(4));
        assert_eq!(w2.wait().await, Ok(4));
    }

    mod single_flight {
        use super::*;
        use proptest::prelude::*;
        use tokio::time::Instant;

        /// Per key: loads running now and the most ever running at once.
        #[derive(Debug, Default)]
        struct Loads {
            running: HashMap<u8, (u32, u32)>,
            /// Per flight number: its key, when it started and ended.
            flights: Vec<(u8, Instant, Option<Instant>)>,
        }

        /// One caller: its key, when it calls (ms after the start) and how
        /// long its load takes if it leads (ms).
        type Call = (u8, u64, u64);

        async fn load(loads: Arc<Mutex<Loads>>, key: u8, took_ms: u64) -> (u8, usize) {
            let flight = {
                let mut l = lock(&loads);
                let (running, max) = l.running.entry(key).or_default();
                *running += 1;
                *max = (*max).max(*running);
                l.flights.push((key, Instant::now(), None));
                l.flights.len() - 1
            };
            tokio::time::sleep(Duration::from_millis(took_ms)).await;
            let mut l = lock(&loads);
            l.running.get_mut(&key).expect("started above").0 -= 1;
            l.flights[flight].2 = Some(Instant::now());
            (key, flight)
        }

        async fn run(calls: Vec<Call>) -> Result<(), TestCaseError> {
            let c: Coalescer<u8, (u8, usize)> = Coalescer::new();
            let loads = Arc::new(Mutex::new(Loads::default()));
            let mut tasks = Vec::new();
            for (key, at_ms, took_ms) in calls {
                let (c, loads) = (c.clone(), loads.clone());
                tasks.push(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(at_ms)).await;
                    let joined = Instant::now();
                    let got = c.run(key, move || load(loads, key, took_ms)).await;
                    (key, joined, got)
                }));
            }
            let mut delivered = std::collections::HashSet::new();
            for t in tasks {
                let (key, joined, got) = t.await.unwrap();
                let (flight_key, flight) = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let l = lock(&loads);
                let (_, started, ended) = l.flights[flight];
                prop_assert_eq!(flight_key, key, "a waiter got another key's value");
                let ended = ended.expect("a delivered flight has ended");
                prop_assert!(
                    started <= joined && joined <= ended,
                    "joined a flight not in progress for {key}"
                );
                delivered.insert(flight);
            }
            let l = lock(&loads);
            for (key, (running, max)) in &l.running {
                prop_assert_eq!(*running, 0);
                prop_assert_eq!(*max, 1, "key {} had {} loads at once", key, max);
            }
            prop_assert_eq!(delivered.len(), l.flights.len(), "a flight went to nobody");
            prop_assert_eq!(c.in_flight(), 0);
            Ok(())
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(32))]

            /// Random callers over three keys, calling at random instants
            /// with loads of random length: one load at a time per key,
            /// and every caller gets the value of the flight of its key
            /// that was in progress when it called (or that it started).
            #[test]
            fn one_load_at_a_time_per_key_and_every_waiter_gets_its_flights_value(
                calls in proptest::collection::vec((0u8..3, 0u64..20, 0u64..10), 1..40)
            ) {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .start_paused(true)
                    .build()
                    .unwrap();
                rt.block_on(run(calls))?;
            }
        }
    }
}
