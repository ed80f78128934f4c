//! `prewarm load`'s view of the daemon through its admin API: the
//! dataset's figures from `/warming/stats` and `/warming/status` before
//! and after a run, what the daemon is set to, and, when warming made no
//! call while on, what held it.

use prewarm_core::ttl::{SessionTtl, SessionTtls};
use serde_json::Value;

/// The daemon's admin API, when one is given.
pub(crate) struct Daemon {
    pub(crate) client: reqwest::Client,
    pub(crate) admin: Option<reqwest::Url>,
    pub(crate) dataset: String,
}

/// One dataset's cumulative figures from `/warming/stats` (and the
/// settings from `/warming/status`).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct DaemonFigures {
    requests: u64,
    hits: u64,
    demand_calls: u64,
    pub(crate) warming_calls: u64,
    /// Keys warming fetched (more than its calls with batch calls).
    warmed_keys: u64,
    warm_used: u64,
    /// Hits on entries a warming fetch stored.
    warmed_hits: u64,
    ttl_s: f64,
    /// The TTL per market session, when the dataset sets one.
    ttl_by_session: Option<SessionTtls>,
    warm_rate_per_min: f64,
    pub(crate) warming_enabled: bool,
}

impl DaemonFigures {
    /// Reads `dataset` from the `/warming/stats` and `/warming/status`
    /// bodies.
    fn from_json(stats: &Value, status: &Value, dataset: &str) -> Option<Self> {
        let d = &stats["datasets"][dataset];
        let p = &d["since_start"];
        let n = |v: &Value| v.as_u64();
        let warmed_hits = p["strategies"]
            .as_object()?
            .values()
            .filter_map(|s| s["hits"].as_u64())
            .sum();
        Some(Self {
            requests: n(&p["requests"])?,
            hits: n(&p["hits"])?,
            demand_calls: n(&p["api_calls"]["demand"])?,
            warming_calls: n(&p["api_calls"]["warming"])?,
            warmed_keys: n(&p["warmed"])?,
            warm_used: n(&p["used"])?,
            warmed_hits,
            ttl_s: status["datasets"][dataset]["ttl_s"].as_f64()?,
            ttl_by_session: session_ttls(&status["datasets"][dataset]["ttl_by_session"]),
            warm_rate_per_min: d["warm_rate_per_min"].as_f64()?,
            warming_enabled: status["warming_enabled"].as_bool()?,
        })
    }

    /// The counts since `before` (settings as now).
    pub(crate) fn since(&self, before: &Self) -> Self {
        Self {
            requests: self.requests.saturating_sub(before.requests),
            hits: self.hits.saturating_sub(before.hits),
            demand_calls: self.demand_calls.saturating_sub(before.demand_calls),
            warming_calls: self.warming_calls.saturating_sub(before.warming_calls),
            warmed_keys: self.warmed_keys.saturating_sub(before.warmed_keys),
            warm_used: self.warm_used.saturating_sub(before.warm_used),
            warmed_hits: self.warmed_hits.saturating_sub(before.warmed_hits),
            ..*self
        }
    }
}

impl Daemon {
    async fn get(&self, path: &str) -> Option<Value> {
        let url = self.admin.as_ref()?.join(path).ok()?;
        let mut req = self.client.get(url);
        if let Ok(token) = std::env::var("PREWARM_ADMIN_TOKEN") {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.ok()?.error_for_status().ok()?;
        resp.json().await.ok()
    }

    /// The line saying why warming made no call ([`why_no_warming`]).
    pub(crate) async fn why_no_warming(&self) -> String {
        let stats = self.get("/warming/stats").await;
        let status = self.get("/warming/status").await;
        match (stats, status) {
            (Some(a), Some(b)) => why_no_warming(&a, &b, &self.dataset),
            _ => "warming made no call (/warming/stats did not answer to say why)".into(),
        }
    }

    /// The dataset's figures now, if the admin API answers.
    pub(crate) async fn figures(&self) -> Option<DaemonFigures> {
        let admin = self.admin.as_ref()?;
        let stats = self.get("/warming/stats").await;
        let status = self.get("/warming/status").await;
        let f = match (stats, status) {
            (Some(a), Some(b)) => DaemonFigures::from_json(&a, &b, &self.dataset),
            _ => None,
        };
        if f.is_none() {
            println!(
                "daemon figures: no /warming/stats for {:?} at {admin} (--admin none to skip)",
                self.dataset
            );
        }
        f
    }
}

/// `ttl_by_session` of a dataset in `/warming/status`: each session's
/// seconds or `"until_open"`; `None` when null (a flat TTL) or malformed.
fn session_ttls(v: &Value) -> Option<SessionTtls> {
    let one = |session: &str| match &v[session] {
        Value::String(w) if w == "until_open" => Some(SessionTtl::UntilOpen),
        n => n.as_f64().map(SessionTtl::Seconds),
    };
    Some(SessionTtls {
        pre_market: one("pre_market")?,
        regular: one("regular")?,
        after_hours: one("after_hours")?,
        closed: one("closed")?,
    })
}

/// Why warming made no call while on, from the `/warming/stats` and
/// `/warming/status` bodies: one line naming what holds it (the upstream
/// pause, the session gate, the budget, the cost cap), else the figures.
fn why_no_warming(stats: &Value, status: &Value, dataset: &str) -> String {
    let d = &stats["datasets"][dataset];
    let price = &d["price"];
    let f = |v: &Value| v.as_f64().unwrap_or(f64::NAN);
    let (ratio, cap, lambda) = (
        f(&price["cost_ratio_recent"]),
        f(&price["max_cost_ratio"]),
        f(&price["lambda"]),
    );
    let tokens = f(&d["budget_tokens"]);
    if let Some(until_s) = status["upstream_paused_until_s"].as_f64() {
        return format!(
            "warming held by the upstream pause (circuit breaker, 429 or upstream quota) until {until_s:.0} (Unix s)"
        );
    }
    if status["datasets"][dataset]["gate"].as_str() == Some("paused") {
        return "warming held by the session gate: market closed and warming.outside_sessions = \"pause\" \
                (serve with WARMING_OUTSIDE_SESSIONS=run)"
            .into();
    }
    if tokens < 1.0 {
        return format!(
            "warming held by its budget: {tokens:.1} tokens left of {}/min",
            f(&d["warm_rate_per_min"])
        );
    }
    if lambda > 0.0 {
        return format!(
            "warming held by the cost cap: cost ratio {ratio:.2} of cap {cap:.2}, price {lambda:.2} \
             (a warm must save {:.2} demand calls)",
            f(&price["threshold"])
        );
    }
    format!(
        "warming made no call: no key was worth it yet (budget {tokens:.1} tokens, {} queued candidates, \
         cost ratio {ratio:.2} of cap {cap:.2}, price {lambda:.2})",
        d["queued_candidates"]
    )
}

/// What the daemon is set to, and what `speed` does to it.
pub(crate) fn describe_daemon(f: &DaemonFigures, speed: f64) {
    println!("{}", settings_line(f));
    if (speed - 1.0).abs() > 1e-9 {
        println!(
            "note: at {speed}x the daemon's TTL covers {:.0} trace seconds and its budget is {:.1} fetches \
             per trace minute: these hit rates are those of that TTL and budget (to replay a TTL T and a \
             budget B at speed N, serve with ttl_s T/N and a warming rate of B*N)",
            f.ttl_s * speed,
            f.warm_rate_per_min / speed,
        );
    }
}

/// `daemon: TTL 30 s (by session pre=30,regular=15,after=30,closed=until_open),
/// warming on (budget 100/min)`: the session TTLs in the spec form
/// `prewarm replay --ttl-by-session` takes, when the dataset sets them.
fn settings_line(f: &DaemonFigures) -> String {
    let by_session = f
        .ttl_by_session
        .map_or(String::new(), |t| format!(" (by session {t})"));
    format!(
        "daemon: TTL {} s{by_session}, warming {} (budget {}/min)",
        f.ttl_s,
        if f.warming_enabled { "on" } else { "off" },
        f.warm_rate_per_min
    )
}

/// The daemon's figures over the run.
pub(crate) fn print_daemon_run(f: &DaemonFigures) {
    let pct = |a: u64, b: u64| {
        if b == 0 {
            0.0
        } else {
            100.0 * a as f64 / b as f64
        }
    };
    println!(
        "daemon during the run: {} requests, hit rate {:.1}%; upstream calls {} = {} demand + {} warming (fetching {} keys, {} used); \
         {} hits on warmed entries ({:.1}% of hits)",
        f.requests,
        pct(f.hits, f.requests),
        f.demand_calls + f.warming_calls,
        f.demand_calls,
        f.warming_calls,
        f.warmed_keys,
        f.warm_used,
        f.warmed_hits,
        pct(f.warmed_hits, f.hits),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_figures_come_from_stats_and_status() {
        let stats = serde_json::json!({"datasets": {"quote": {
            "warm_rate_per_min": 100.0,
            "since_start": {
                "requests": 50, "hits": 40, "used": 7, "warmed": 25,
                "api_calls": {"demand": 10, "warming": 9, "total": 19},
                "strategies": {"time": {"hits": 12}, "refresh": {"hits": 3}},
            },
        }}});
        let status =
            serde_json::json!({"warming_enabled": true, "datasets": {"quote": {"ttl_s": 60.0}}});
        let f = DaemonFigures::from_json(&stats, &status, "quote").unwrap();
        assert_eq!(
            (f.requests, f.hits, f.demand_calls, f.warming_calls),
            (50, 40, 10, 9)
        );
        assert_eq!((f.warm_used, f.warmed_hits, f.ttl_s), (7, 15, 60.0));
        assert_eq!(f.warmed_keys, 25, "keys, beside the 9 warming calls");
        assert!(f.ttl_by_session.is_none(), "no ttl_by_session: a flat TTL");
        assert!(DaemonFigures::from_json(&stats, &status, "bars").is_none());
        let before = DaemonFigures {
            requests: 20,
            hits: 10,
            warmed_hits: 5,
            ..f
        };
        let d = f.since(&before);
        assert_eq!(
            (d.requests, d.hits, d.warmed_hits, d.demand_calls),
            (30, 30, 10, 0)
        );
    }

    #[test]
    fn the_settings_line_shows_the_session_ttls() {
        let stats = serde_json::json!({"datasets": {"quote": {
            "warm_rate_per_min": 100.0,
            "since_start": {"requests": 0, "hits": 0, "used": 0, "warmed": 0, "strategies": {},
                            "api_calls": {"demand": 0, "warming": 0, "total": 0}},
        }}});
        let by_session = serde_json::json!({"pre_market": 30.0, "regular": 15.0,
                                            "after_hours": 30.0, "closed": "until_open"});
        let status = serde_json::json!({"warming_enabled": true, "datasets": {"quote": {
            "ttl_s": 30.0, "ttl_by_session": by_session}}});
        let f = DaemonFigures::from_json(&stats, &status, "quote").unwrap();
        assert_eq!(
            settings_line(&f),
            "daemon: TTL 30 s (by session pre=30,regular=15,after=30,closed=until_open), \
             warming on (budget 100/min)"
        );
        let flat = DaemonFigures {
            ttl_by_session: None,
            ..f
        };
        assert_eq!(
            settings_line(&flat),
            "daemon: TTL 30 s, warming on (budget 100/min)"
        );
    }

    #[test]
    fn no_warming_names_what_held_it() {
        let stats = |tokens: f64, lambda: f64| {
            serde_json::json!({"datasets": {"quote": {
                "budget_tokens": tokens, "warm_rate_per_min": 100.0, "queued_candidates": 3,
                "price": {"lambda": lambda, "threshold": lambda / (1.0 + lambda),
                          "max_cost_ratio": 1.25, "cost_ratio_recent": 1.21},
            }}})
        };
        let status = |gate: &str, paused: Value| {
            serde_json::json!({"upstream_paused_until_s": paused,
                               "datasets": {"quote": {"gate": gate}}})
        };
        let open = status("open", Value::Null);
        let line = why_no_warming(&stats(50.0, 0.97), &open, "quote");
        assert!(
            line.starts_with(
                "warming held by the cost cap: cost ratio 1.21 of cap 1.25, price 0.97"
            ),
            "{line}"
        );
        let line = why_no_warming(&stats(0.0, 0.0), &open, "quote");
        assert!(line.contains("budget: 0.0 tokens"), "{line}");
        let line = why_no_warming(&stats(50.0, 0.0), &status("paused", Value::Null), "quote");
        assert!(line.contains("session gate"), "{line}");
        let paused = status("open", serde_json::json!(1.8e9));
        assert!(why_no_warming(&stats(50.0, 0.0), &paused, "quote").contains("upstream pause"));
        let line = why_no_warming(&stats(50.0, 0.0), &open, "quote");
        assert!(line.contains("3 queued candidates"), "{line}");
    }
}
