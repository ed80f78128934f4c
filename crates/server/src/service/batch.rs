//! Batch reads: many keys of one dataset in one client request.
//!
//! Each key is decided as a single read is ([`Decision`]), as its
//! canonical key (items stay keyed as asked). Misses are
//! fetched through the dataset's batch endpoint (in chunks of
//! `batch_max_keys`) when one is configured, else one flight per key; the
//! upstream semaphore bounds concurrency either way. Keys already in flight
//! join their flight. Per-key failures never fail the batch.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::join_all;
use tokio::time::Instant;

use super::load::{KeyPromise, Load};
use super::read::{Decision, Seen};
use super::{CacheService, Forwarded, FwdReason, ReadError, ReadOptions, Served};
use crate::coalesce::Flight;
use crate::config::{BatchConfig, DatasetConfig};
use crate::events::FetchOrigin;
use crate::store::Entry;
use crate::upstream::{FetchError, Role};

/// One key's outcome in a batch read.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchItem {
    /// The key as asked.
    pub key: String,
    /// Its outcome.
    pub result: Result<Served, ReadError>,
}

enum Pending {
    Done(Result<Served, ReadError>),
    Wait(
        crate::coalesce::Waiter<super::FetchResult>,
        Option<Entry>,
        Forwarded,
    ),
}

/// A flight a batch leads: the canonical key, its promise, whether it has
/// a stale entry, whether it is forced (`no-cache`).
type Leader = (Arc<str>, KeyPromise, bool, bool);

impl CacheService {
    /// Reads many keys of `dataset`; duplicates are read once. Fails as a
    /// whole only for an unknown dataset.
    pub async fn read_many(
        self: &Arc<Self>,
        dataset: &str,
        keys: &[String],
        client: Option<&str>,
    ) -> Result<Vec<BatchItem>, ReadError> {
        let options = ReadOptions {
            client,
            no_cache: false,
        };
        self.read_many_with(dataset, keys, options).await
    }

    /// [`CacheService::read_many`] as `options` say (`no_cache` applies
    /// to every key).
    pub async fn read_many_with(
        self: &Arc<Self>,
        dataset: &str,
        keys: &[String],
        options: ReadOptions<'_>,
    ) -> Result<Vec<BatchItem>, ReadError> {
        let ds = Arc::clone(
            self.dataset(dataset)
                .ok_or_else(|| ReadError::UnknownDataset(dataset.to_string()))?,
        );
        let deadline = Instant::now() + self.request_timeout;
        let mut seen = HashSet::new();
        let keys: Vec<&String> = keys.iter().filter(|k| seen.insert(k.as_str())).collect();
        let canonical: Vec<Arc<str>> = keys
            .iter()
            .map(|k| ds.canonical_key(k).as_ref().into())
            .collect();
        let cached = join_all(canonical.iter().map(|k| async {
            if ds.key_is_valid(k) {
                Some(self.store_get(&ds, k).await)
            } else {
                None
            }
        }))
        .await;
        let now_s = self.clock.now_s();
        let mut leaders = Vec::new();
        let mut pending = Vec::with_capacity(keys.len());
        for ((asked, key), found) in keys.iter().zip(canonical).zip(cached) {
            let read = (asked.as_str(), key, options);
            pending.push(self.classify(&ds, read, found, now_s, &mut leaders));
        }
        if !leaders.is_empty() {
            self.spawn_leaders(&ds, leaders, deadline);
        }
        let results = join_all(pending.into_iter().map(|p| {
            let ds = &ds;
            async move {
                match p {
                    Pending::Done(r) => r,
                    Pending::Wait(w, stale, fwd) => {
                        self.await_flight(ds, w, stale, deadline, fwd).await
                    }
                }
            }
        }))
        .await;
        Ok(keys
            .into_iter()
            .zip(results)
            .map(|(key, result)| BatchItem {
                key: key.clone(),
                result,
            })
            .collect())
    }

    /// Decides one key (`read`: as asked, canonical, options).
    fn classify(
        self: &Arc<Self>,
        ds: &Arc<DatasetConfig>,
        read: (&str, Arc<str>, ReadOptions<'_>),
        found: Option<Option<Entry>>,
        now_s: f64,
        leaders: &mut Vec<Leader>,
    ) -> Pending {
        let (asked, key, options) = read;
        let Some(cached) = found else {
            let problem = ds.key_problem(&key);
            return Pending::Done(Err(ReadError::InvalidKey {
                dataset: ds.name.to_string(),
                key: asked.to_string(),
                problem: problem.unwrap_or(crate::config::KeyProblem::DotSegment),
            }));
        };
        let seen = Seen::of(ds, cached.as_ref(), now_s, options.no_cache);
        let decision = self.decide(ds, &key, cached, now_s, options.no_cache);
        self.access_seen(ds, &key, (options, now_s), seen, &decision);
        match decision {
            Decision::Answer(answer) => Pending::Done(answer),
            Decision::Revalidate(served) => Pending::Done(Ok(self.revalidate(ds, &key, served))),
            Decision::Fetch { stale, reason } => {
                let flight = self.flights.join_or_lead((ds.name.clone(), key.clone()));
                let collapsed = matches!(flight, Flight::Follower(_));
                let fwd = Forwarded::Waited { reason, collapsed };
                match flight {
                    Flight::Follower(w) => Pending::Wait(w, stale, fwd),
                    Flight::Leader(promise, w) => {
                        let forced = reason == FwdReason::Request;
                        leaders.push((key, promise, stale.is_some(), forced));
                        Pending::Wait(w, stale, fwd)
                    }
                }
            }
        }
    }

    fn spawn_leaders(
        self: &Arc<Self>,
        ds: &Arc<DatasetConfig>,
        leaders: Vec<Leader>,
        deadline: Instant,
    ) {
        let Some(batch) = ds.batch.clone() else {
            for (key, promise, has_stale, forced) in leaders {
                let load = Load::demand(has_stale, deadline).forced(forced);
                self.spawn_load(Arc::clone(ds), key, promise, FetchOrigin::Demand, load);
            }
            return;
        };
        let mut leaders = leaders;
        while !leaders.is_empty() {
            let rest = leaders.split_off(leaders.len().min(batch.max_keys));
            let chunk = std::mem::replace(&mut leaders, rest);
            let load = Load::demand(chunk.iter().all(|(_, _, stale, _)| *stale), deadline);
            let chunk = chunk
                .into_iter()
                .map(|(key, promise, _, _)| (key, promise, FetchOrigin::Demand))
                .collect();
            let (svc, ds, batch) = (Arc::clone(self), Arc::clone(ds), batch.clone());
            tokio::spawn(async move { svc.load_batch(&ds, &batch, chunk, load).await });
        }
    }

    /// One upstream call through the batch endpoint for the keys of
    /// `chunk` (each with its flight's promise and origin: all demand, or
    /// all warming), each stored, reported and completed as a single
    /// load's would be. A key missing from the answer fails alone.
    pub(super) async fn load_batch(
        &self,
        ds: &DatasetConfig,
        batch: &BatchConfig,
        chunk: Vec<(Arc<str>, KeyPromise, FetchOrigin)>,
        load: Load,
    ) {
        let keys: Vec<&str> = chunk.iter().map(|(k, _, _)| k.as_ref()).collect();
        let url = batch.url.render_keys(&keys);
        let warming = chunk
            .iter()
            .any(|(_, _, o)| matches!(o, FetchOrigin::Warm(_)));
        let (role, kind) = if warming {
            (Role::Warm, "warm")
        } else {
            (Role::Demand, "demand")
        };
        let started = std::time::Instant::now();
        let call = self.call(role, load);
        let (fetched, sent) = self.upstream.get_sent(&url, ds.headers.map(), call).await;
        let took = started.elapsed();
        let split = match fetched {
            Ok(fetched) => split_batch(batch, &fetched.body).map_err(FetchError::BadBatch),
            Err(e) => Err(e),
        };
        if sent {
            // An answer that cannot be split is a failed call.
            super::load::record_upstream_call(&ds.name, kind, took, split.is_ok());
        }
        for (i, (key, promise, origin)) in chunk.into_iter().enumerate() {
            let result = match &split {
                Err(e) => Err(e.clone()),
                Ok(bodies) => match bodies.get(key.as_ref()) {
                    Some(body) => Ok(self.store_batch_item(ds, &key, body.clone()).await),
                    None => Err(FetchError::NotInBatch),
                },
            };
            let took_s = result.is_ok().then_some(took.as_secs_f64());
            let call = super::load::Called {
                upstream_s: took_s,
                sent,
                batched: i > 0,
            };
            self.complete_fetch(ds, &key, origin, (result, call), promise)
                .await;
        }
    }
}

/// Splits a batch response into one JSON body per key.
pub fn split_batch(batch: &BatchConfig, body: &[u8]) -> Result<HashMap<String, Bytes>, String> {
    let root: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let items = if batch.items_pointer.is_empty() {
        &root
    } else {
        root.pointer(&batch.items_pointer)
            .ok_or_else(|| format!("no value at {}", batch.items_pointer))?
    };
    let encode = |v: &serde_json::Value| {
        serde_json::to_vec(v)
            .map(Bytes::from)
            .map_err(|e| e.to_string())
    };
    let mut out = HashMap::new();
    match (&batch.key_field, items) {
        (Some(field), serde_json::Value::Array(list)) => {
            for item in list {
                if let Some(k) = item.get(field).and_then(serde_json::Value::as_str) {
                    out.insert(k.to_string(), encode(item)?);
                }
            }
        }
        (None, serde_json::Value::Object(map)) => {
            for (k, v) in map {
                out.insert(k.clone(), encode(v)?);
            }
        }
        (Some(field), _) => {
            return Err(format!(
                "expected an array of objects with a {field:?} field"
            ));
        }
        (None, _) => return Err("expected an object keyed by key".into()),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upstream::{Placeholder, UrlTemplate};

    fn batch(pointer: &str, key_field: Option<&str>) -> BatchConfig {
        BatchConfig {
            url: UrlTemplate::parse("http://h/q?s={keys}", Placeholder::Keys, &|_| None).unwrap(),
            max_keys: 10,
            items_pointer: pointer.into(),
            key_field: key_field.map(Into::into),
        }
    }

    #[test]
    fn array_items_are_split_by_key_field() {
        let body = br#"{"quotes":[{"symbol":"A","p":1},{"symbol":"B","p":2}]}"#;
        let out = split_batch(&batch("/quotes", Some("symbol")), body).unwrap();
        assert_eq!(out.len(), 2);
        let a: serde_json::Value = serde_json::from_slice(&out["A"]).unwrap();
        assert_eq!(a["p"], 1);
    }

    #[test]
    fn object_items_are_split_by_name() {
        let out = split_batch(&batch("", None), br#"{"A":{"p":1},"B":{"p":2}}"#).unwrap();
        assert_eq!(out.keys().count(), 2);
    }

    #[test]
    fn wrong_shape_is_an_error_not_a_panic() {
        assert!(split_batch(&batch("/nope", None), b"{}").is_err());
        assert!(split_batch(&batch("", Some("symbol")), b"{}").is_err());
        assert!(split_batch(&batch("", None), b"not json").is_err());
    }
}
