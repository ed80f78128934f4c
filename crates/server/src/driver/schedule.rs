//! The driver's market-aware jobs on the real clock, in exchange time.
//!
//! - `pre_market`: a warming cycle at `warming.pre_market_at` (08:30 New
//!   York by default) on trading days only;
//! - `snapshot`: learned state saved every `warming.snapshot_interval_s`;
//! - `cleanup`: at local midnight every day (daily counters roll over).
//!
//! Next runs come from [`ExchangeCalendar::next_local_time`], so they stay
//! at the same wall-clock time across DST changes. A job that is overdue
//! (the process slept, the clock jumped) runs once, then is rescheduled
//! from the moment it ran.

use chrono::NaiveTime;
use prewarm_core::calendar::ExchangeCalendar;
use serde::Serialize;

/// Which job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// The pre-market warming cycle.
    PreMarket,
    /// Saving snapshots of learned state.
    Snapshot,
    /// The midnight rollover.
    Cleanup,
}

#[derive(Debug, Clone, Copy)]
enum When {
    /// At a local time, on trading days only or every day.
    Daily {
        at: NaiveTime,
        trading_days_only: bool,
    },
    /// Every so many seconds.
    Every { interval_s: f64 },
}

/// One scheduled job with its last and next run.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Job {
    /// Which job.
    pub kind: JobKind,
    /// When it last ran (Unix seconds).
    pub last_run_s: Option<f64>,
    /// When it runs next (Unix seconds).
    pub next_run_s: f64,
    /// What its last run did (or why it did nothing).
    pub last_outcome: Option<String>,
    #[serde(skip)]
    when: When,
}

/// The driver's jobs.
#[derive(Debug, Clone)]
pub struct Schedule {
    calendar: ExchangeCalendar,
    jobs: Vec<Job>,
}

impl Schedule {
    /// The three jobs, first runs computed from `now_s`.
    pub fn new(
        calendar: ExchangeCalendar,
        pre_market_at: NaiveTime,
        snapshot_interval_s: f64,
        now_s: f64,
    ) -> Self {
        let whens = [
            (
                JobKind::PreMarket,
                When::Daily {
                    at: pre_market_at,
                    trading_days_only: true,
                },
            ),
            (
                JobKind::Snapshot,
                When::Every {
                    interval_s: snapshot_interval_s,
                },
            ),
            (
                JobKind::Cleanup,
                When::Daily {
                    at: NaiveTime::MIN,
                    trading_days_only: false,
                },
            ),
        ];
        let mut s = Schedule {
            calendar,
            jobs: Vec::new(),
        };
        for (kind, when) in whens {
            let next_run_s = s.next_after(when, now_s);
            s.jobs.push(Job {
                kind,
                last_run_s: None,
                next_run_s,
                last_outcome: None,
                when,
            });
        }
        s
    }

    /// The calendar the jobs follow.
    pub fn calendar(&self) -> &ExchangeCalendar {
        &self.calendar
    }

    fn next_after(&self, when: When, after_s: f64) -> f64 {
        match when {
            When::Daily {
                at,
                trading_days_only,
            } => self
                .calendar
                .next_local_time(after_s, at, trading_days_only),
            When::Every { interval_s } => after_s + interval_s,
        }
    }

    /// The earliest next run of any job.
    pub fn next_due_s(&self) -> f64 {
        self.jobs
            .iter()
            .map(|j| j.next_run_s)
            .fold(f64::INFINITY, f64::min)
    }

    /// The jobs due at `now_s`, each marked as run at `now_s` and
    /// rescheduled; the caller runs them and reports with
    /// [`Schedule::record`].
    pub fn take_due(&mut self, now_s: f64) -> Vec<JobKind> {
        let mut due = Vec::new();
        for i in 0..self.jobs.len() {
            if self.jobs[i].next_run_s <= now_s {
                let next = self.next_after(self.jobs[i].when, now_s);
                let job = &mut self.jobs[i];
                job.last_run_s = Some(now_s);
                job.next_run_s = next;
                due.push(job.kind);
            }
        }
        due
    }

    /// Records what the last run of `kind`, ending at `at_s`, did; a run
    /// asked for outside the schedule (`POST /warming/save`) is a run too.
    pub fn record(&mut self, kind: JobKind, outcome: String, at_s: f64) {
        if let Some(j) = self.jobs.iter_mut().find(|j| j.kind == kind) {
            j.last_outcome = Some(outcome);
            j.last_run_s = Some(j.last_run_s.map_or(at_s, |t| t.max(at_s)));
        }
    }

    /// Every job, for `/warming/status`.
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Friday 2024-06-14 08:00 New York (EDT).
    const FRIDAY_8_S: f64 = 1_718_366_400.0;

    fn schedule(now_s: f64) -> Schedule {
        let at = NaiveTime::from_hms_opt(8, 30, 0).unwrap();
        Schedule::new(ExchangeCalendar::nyse(), at, 900.0, now_s)
    }

    fn next_of(s: &Schedule, kind: JobKind) -> f64 {
        s.jobs().iter().find(|j| j.kind == kind).unwrap().next_run_s
    }

    #[test]
    fn pre_market_runs_at_half_past_eight_on_trading_days_only() {
        let mut s = schedule(FRIDAY_8_S);
        assert_eq!(next_of(&s, JobKind::PreMarket), FRIDAY_8_S + 1800.0);
        assert_eq!(next_of(&s, JobKind::Snapshot), FRIDAY_8_S + 900.0);
        // midnight Saturday, 16 h after Friday 08:00
        assert_eq!(next_of(&s, JobKind::Cleanup), FRIDAY_8_S + 16.0 * 3600.0);
        let due = s.take_due(FRIDAY_8_S + 1800.0);
        assert_eq!(due, vec![JobKind::PreMarket, JobKind::Snapshot]);
        // after Friday's run, the next is Monday 08:30 (weekend skipped)
        assert_eq!(
            next_of(&s, JobKind::PreMarket),
            FRIDAY_8_S + 1800.0 + 3.0 * 86_400.0
        );
        let job = &s.jobs()[0];
        assert_eq!(job.last_run_s, Some(FRIDAY_8_S + 1800.0));
    }

    #[test]
    fn overdue_job_runs_once_and_is_rescheduled_from_now() {
        let mut s = schedule(FRIDAY_8_S);
        let late = FRIDAY_8_S + 10_000.0;
        let due = s.take_due(late);
        assert!(due.contains(&JobKind::Snapshot));
        assert_eq!(next_of(&s, JobKind::Snapshot), late + 900.0);
        assert!(s.take_due(late).is_empty());
        s.record(JobKind::Snapshot, "saved 1 dataset".into(), late + 1.0);
        assert_eq!(s.jobs()[1].last_outcome.as_deref(), Some("saved 1 dataset"));
    }

    #[test]
    fn a_run_outside_the_schedule_sets_its_last_run() {
        let mut s = schedule(FRIDAY_8_S);
        s.record(
            JobKind::Snapshot,
            "saved 1 dataset".into(),
            FRIDAY_8_S + 5.0,
        );
        let job = s
            .jobs()
            .iter()
            .find(|j| j.kind == JobKind::Snapshot)
            .unwrap();
        assert_eq!(job.last_run_s, Some(FRIDAY_8_S + 5.0));
        assert_eq!(job.last_outcome.as_deref(), Some("saved 1 dataset"));
    }
}
