//! A proxied read says a demand fetch of its key follows only when one
//! does: the warming engine holds the key until that fetch is reported
//! (or the longest fetch passes), so a promise no fetch keeps holds a hot
//! key's warming back for nothing.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prewarm_server::clock::{Clock, SystemClock};
use prewarm_server::events::{AccessFetch, EventReceivers, FetchOrigin};
use prewarm_server::service::CacheService;
use prewarm_server::store::{Entry, MemoryStore};

use crate::hooked_store::HookedStore;
use crate::support::{self, TestCfg};

/// The accesses of `key` received so far that said a demand fetch
/// follows, and the demand fetches of `key` reported (sent or refused).
fn promised_and_reported(events: &mut EventReceivers, key: &str) -> (usize, usize) {
    let mut promised = 0;
    while let Ok(a) = events.accesses.try_recv() {
        promised += usize::from(&*a.key == key && a.fetch == AccessFetch::Follows);
    }
    let mut reported = 0;
    while let Ok(f) = events.fetches.try_recv() {
        reported += usize::from(&*f.key == key && f.origin == FetchOrigin::Demand);
    }
    (promised, reported)
}

/// A service whose upstream fails every call, over a memory store.
async fn failing(
    extra: &str,
) -> (
    prewarm_server::upstream_sim::SimHandle,
    Arc<CacheService>,
    EventReceivers,
) {
    let sim = support::sim(|c| c.error_rate = 1.0).await;
    let mut cfg = TestCfg::new(sim.addr());
    cfg.extra = extra.into();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = Arc::new(MemoryStore::new(8, cfg.stale_grace_s, clock));
    let (svc, events) = support::service_with_store(&cfg, store);
    (sim, svc, events)
}

/// Puts quote/`key` fetched 40 s ago (past its 30 s TTL, within grace).
async fn put_stale(svc: &CacheService, key: &str) {
    let entry = Entry {
        body: bytes::Bytes::from_static(br#"{"p":1}"#),
        fetched_at_s: svc.clock().now_s() - 40.0,
        content_type: Some("application/json".into()),
        ..Default::default()
    };
    svc.store()
        .put("quote", key, entry, 30.0)
        .await
        .expect("store accepts the entry");
}

/// Regression: a read answered from the failure memo (an error, or a
/// stale entry) made no upstream call yet said a demand fetch followed,
/// so warming of its key was held for the longest fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_answered_from_the_failure_memo_promises_no_demand_fetch() {
    let (sim, svc, mut events) = failing("serve_stale = true\n").await;
    svc.read("quote", "AAPL", None).await.unwrap_err();
    assert_eq!(promised_and_reported(&mut events, "AAPL"), (1, 1));
    let calls = sim.stats().requests;
    svc.read("quote", "AAPL", None).await.unwrap_err();
    put_stale(&svc, "AAPL").await;
    let served = svc.read("quote", "AAPL", None).await.expect("stale answer");
    assert!(!served.entry.negative);
    assert_eq!(sim.stats().requests, calls, "the failure was remembered");
    assert_eq!(
        promised_and_reported(&mut events, "AAPL"),
        (0, 0),
        "no fetch went, none was promised"
    );
}

/// Regression: a stale-while-revalidate read whose refresh did not start
/// (the key's last fetch failed) said a demand fetch followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revalidating_read_whose_refresh_did_not_start_promises_no_demand_fetch() {
    let extra = "serve_stale = true\nstale_while_revalidate_s = 60\n";
    let (sim, svc, mut events) = failing(extra).await;
    svc.read("quote", "MSFT", None).await.unwrap_err();
    assert_eq!(promised_and_reported(&mut events, "MSFT"), (1, 1));
    let calls = sim.stats().requests;
    put_stale(&svc, "MSFT").await;
    svc.read("quote", "MSFT", None).await.expect("stale answer");
    assert_eq!(sim.stats().requests, calls, "no refresh went");
    assert_eq!(promised_and_reported(&mut events, "MSFT"), (0, 0));
}

/// Regression: a read that missed but whose flight found the key stored
/// fresh meanwhile made no call and reported nothing, so warming of its
/// key was held for the longest fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flight_that_finds_its_key_already_fresh_reports_its_demand_fetch() {
    let sim = support::sim(|_| {}).await;
    let cfg = TestCfg::new(sim.addr());
    // A store whose first read of each key misses (a replica that lags a
    // write), so the read's flight finds the key already fresh.
    let mut store = HookedStore::new(8, cfg.stale_grace_s);
    let read_before = Mutex::new(HashSet::new());
    store.on_get = Box::new(move |key| !read_before.lock().unwrap().insert(key.to_string()));
    let (svc, mut events) = support::service_with_store(&cfg, Arc::new(store));
    let fresh = Entry {
        fetched_at_s: svc.clock().now_s(),
        ..Entry::default()
    };
    svc.store().put("quote", "IBM", fresh, 30.0).await.unwrap();
    let served = svc.read("quote", "IBM", None).await.expect("fresh answer");
    assert!(!served.entry.negative);
    assert_eq!(sim.stats().requests, 0, "the flight found the key fresh");
    let (promised, reported) = promised_and_reported(&mut events, "IBM");
    assert_eq!(promised, 1, "the read missed");
    assert_eq!(reported, promised, "and its fetch was reported");
}
