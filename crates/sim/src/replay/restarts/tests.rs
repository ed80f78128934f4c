//! Tests of replay restarts: the schedule, the restart itself, and what
//! start-up warming recovers.

use super::*;
use crate::replay::{ReplayConfig, replay};
use crate::trace::read_trace_from;

/// Monday 2023-11-20 09:30 New York, Unix seconds.
const OPEN_S: f64 = 1_700_490_600.0;
const DAY_S: f64 = 86_400.0;

/// 150 keys, each polled every 20 s by its own client from 09:30 to 11:00
/// on two trading days (Monday and Tuesday).
fn pollers() -> Trace {
    let mut csv = String::from("timestamp,key,client\n");
    let mut lines = Vec::new();
    for day in 0..2 {
        let start = OPEN_S + f64::from(day) * DAY_S;
        for k in 0..150 {
            let mut t = start + f64::from(k) * 0.1;
            while t < start + 5400.0 {
                lines.push((t, k));
                t += 20.0;
            }
        }
    }
    lines.sort_by(|a, b| a.0.total_cmp(&b.0));
    for (t, k) in lines {
        csv.push_str(&format!("{t:.3},K{k},c{k}\n"));
    }
    read_trace_from(csv.as_bytes(), "pollers.csv").unwrap()
}

#[test]
fn schedules_parse_and_bad_ones_name_the_value() {
    assert_eq!(
        "20,10".parse::<RestartSchedule>().unwrap(),
        RestartSchedule::At(vec![10.0, 20.0])
    );
    assert_eq!(
        "daily@10:00".parse::<RestartSchedule>().unwrap(),
        RestartSchedule::Daily(NaiveTime::from_hms_opt(10, 0, 0).unwrap())
    );
    assert_eq!(
        "20,10,20".parse::<RestartSchedule>().unwrap(),
        RestartSchedule::At(vec![10.0, 20.0]),
        "a repeated instant is one restart"
    );
    for bad in ["daily@25:00", "10,x", "", "inf"] {
        let e = bad.parse::<RestartSchedule>().unwrap_err().to_string();
        assert!(e.contains(&format!("{bad:?}")), "{e}");
    }
}

#[test]
fn daily_restarts_fall_at_that_exchange_time_on_each_trading_day() {
    let cal = ExchangeCalendar::nyse();
    let s: RestartSchedule = "daily@10:00".parse().unwrap();
    // Friday open to Monday noon: Friday and Monday, not the weekend.
    let friday_s = OPEN_S - 3.0 * DAY_S;
    let got = s.instants(friday_s, OPEN_S + 9000.0, &cal);
    assert_eq!(got, vec![friday_s + 1800.0, OPEN_S + 1800.0]);
}

#[test]
fn a_run_without_restarts_is_the_plain_replay() {
    let tr = pollers();
    let cfg = ReplayConfig::default();
    let plain = replay(&tr, &cfg, &mut |_, _| {}).unwrap().report;
    let r = replay_restarts(&tr, &cfg, &RestartSchedule::At(vec![]), StartupRuns::Both).unwrap();
    assert_eq!(r.reference.hits, plain.warmed.hits);
    assert_eq!(r.reference.api_calls, plain.warmed.api_calls);
    for run in &r.runs {
        assert_eq!((run.hits, run.hits_lost), (plain.warmed.hits, 0));
    }
}

#[test]
fn restart_instants_outside_the_trace_report_nothing_to_measure_not_unrecovered() {
    let tr = pollers();
    let cfg = ReplayConfig::default();
    let far = RestartSchedule::At(vec![1e12]);
    let r = replay_restarts(&tr, &cfg, &far, StartupRuns::Both).unwrap();
    let text = render(&r);
    assert!(text.contains("nothing to measure"), "{text}");
    assert!(!text.contains("not recovered"), "{text}");
}

#[test]
fn start_up_warming_recovers_sooner_and_loses_fewer_hits_within_the_cap() {
    let tr = pollers();
    // A budget that keeps the 150 keys fresh; after a restart, warming
    // resumes at the first request with the popular list (100 keys) and
    // the rest miss, unless the start-up cycle warmed them before.
    let mut cfg = ReplayConfig::default();
    cfg.engine.warming.rate_limit_per_min = 200.0;
    let daily: RestartSchedule = "daily@10:00".parse().unwrap();
    let r = replay_restarts(&tr, &cfg, &daily, StartupRuns::Both).unwrap();
    assert_eq!(r.instants.len(), 2);
    let (on, off) = (&r.runs[0], &r.runs[1]);
    assert_eq!((on.startup, off.startup), (Startup::On, Startup::Off));
    assert!(on.restarts.iter().all(|o| o.startup_fetches > 0), "{on:?}");
    assert!(off.restarts.iter().all(|o| o.startup_fetches == 0));
    // Without start-up warming the keys the bucket cannot cover miss.
    assert!(off.hits_lost >= 10, "{off:?}");
    assert!(on.hits_lost < off.hits_lost / 2, "on {on:?}\noff {off:?}");
    let (t_on, t_off) = (
        on.median_time_to_recover_s.unwrap(),
        off.median_time_to_recover_s.unwrap(),
    );
    assert!(t_on < t_off, "on {t_on} s, off {t_off} s");
    for run in &r.runs {
        assert!(
            run.cost_ratio <= cfg.engine.warming.max_cost_ratio + 0.01,
            "{run:?}"
        );
    }
    let text = render(&r);
    assert!(text.contains("start-up warming on") && text.contains("start-up warming off"));
}
