//! The saver: snapshot writes off the runtime (blocking I/O in
//! `spawn_blocking`), and what they did recorded in each dataset's
//! [`super::dataset::SnapshotInfo`].

use tokio::sync::oneshot;
use tokio::task::{JoinError, JoinSet};

use super::dataset::DatasetState;
use super::persist::{self, SaveJob, SaveReport};

/// Who asked for a save, answered once it is written.
pub(super) type SaveReply = oneshot::Sender<Vec<SaveReport>>;

/// A finished write: its reports, and who asked.
pub(super) type Saved = (Vec<SaveReport>, Option<SaveReply>);

/// The snapshot writes of one driver.
#[derive(Default)]
pub(super) struct Saver {
    writes: JoinSet<Saved>,
}

impl Saver {
    /// Whether no write is running.
    pub(super) fn is_idle(&self) -> bool {
        self.writes.is_empty()
    }

    /// Starts writing every dataset's snapshot taken at `now_s`; `reply`
    /// gets the reports once written.
    pub(super) fn start(
        &mut self,
        now_s: f64,
        datasets: &[DatasetState],
        reply: Option<SaveReply>,
    ) {
        let jobs = save_jobs(now_s, datasets);
        self.writes
            .spawn_blocking(move || (persist::write_all(jobs), reply));
    }

    /// The next write to finish; `None` when idle.
    pub(super) async fn next_done(&mut self) -> Option<Result<Saved, JoinError>> {
        self.writes.join_next().await
    }

    /// Records a finished write in `datasets` at `now_s`, answers whoever
    /// asked, and returns what the snapshot job did for the schedule
    /// (`None`: the writer itself failed, logged here).
    pub(super) fn finished(
        done: Result<Saved, JoinError>,
        datasets: &mut [DatasetState],
        now_s: f64,
    ) -> Option<String> {
        let (reports, reply) = match done {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "snapshot writer failed");
                return None;
            }
        };
        record(&reports, datasets, now_s);
        let failed = reports.iter().filter(|r| r.error.is_some()).count();
        let bytes: u64 = reports.iter().map(|r| r.bytes).sum();
        let outcome = format!(
            "saved {} datasets ({bytes} bytes), {failed} failed",
            reports.len() - failed
        );
        if let Some(reply) = reply {
            let _ = reply.send(reports);
        }
        Some(outcome)
    }

    /// Writes every dataset's snapshot taken at `now_s` and waits for it
    /// (shutdown); records and logs what was saved.
    pub(super) async fn save_now(now_s: f64, datasets: &mut [DatasetState]) -> Vec<SaveReport> {
        let jobs = save_jobs(now_s, datasets);
        let saved = match tokio::task::spawn_blocking(move || persist::write_all(jobs)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "snapshot writer failed at shutdown");
                Vec::new()
            }
        };
        record(&saved, datasets, now_s);
        for r in &saved {
            if r.error.is_none() {
                tracing::info!(dataset = %r.dataset, file = %r.path, bytes = r.bytes, "snapshot saved");
            }
        }
        saved
    }
}

/// One write job per dataset: its snapshot at `now_s`.
fn save_jobs(now_s: f64, datasets: &[DatasetState]) -> Vec<SaveJob> {
    datasets
        .iter()
        .enumerate()
        .map(|(index, ds)| SaveJob {
            index,
            dataset: ds.name.clone(),
            path: ds.path.clone(),
            bytes: ds.engine.snapshot(now_s),
        })
        .collect()
}

/// Records each report in its dataset's snapshot state, saved at `now_s`.
fn record(reports: &[SaveReport], datasets: &mut [DatasetState], now_s: f64) {
    for r in reports {
        if let Some(ds) = datasets.get_mut(r.index) {
            match &r.error {
                None => {
                    ds.snapshot.last_saved_s = Some(now_s);
                    ds.snapshot.last_saved_bytes = Some(r.bytes);
                }
                Some(e) => ds.snapshot.last_error = Some(e.clone()),
            }
        }
    }
}
