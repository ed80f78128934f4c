//! The API-cost cap: a hard account and a learned price.
//!
//! The cap (`max_cost_ratio`, `c`) bounds *all* warming: the API calls of
//! the engine (demand and warming) stay at most `c` times those of the same
//! traffic without warming, plus one bucket burst `b`. "Without warming"
//! is measured, not guessed: a shadow of the cache without warming (each
//! key's last demand fetch, unlimited capacity, the replay baseline's rule)
//! counts the calls it would make on the same accesses (`S`).
//!
//! **The hard account.** Warming can also cost calls later: a warmed entry
//! that served a hit the shadow missed expires before the shadow's entry
//! does, and an access in between costs the engine a demand call the
//! shadow does not make. Such keys are *at risk*; there are `R` of them.
//! A warming fetch is allowed only while `c·S − C − R + b ≥ 1`. Every event
//! keeps `C + R ≤ c·S + b` true (a warm needs one unit of slack; a shadow
//! miss adds `c ≥ 1` to the right and at most 1 to the left; a lost hit
//! moves one unit from `R` to `C`), so at the end `C ≤ c·S + b`.
//!
//! **Twin fetches.** The shadow's fetch lands `L` after the access, `L`
//! the latency the engine plans with (the 90th percentile measured, in
//! the daemon); a real fetch lands after its own latency. When the engine
//! and the shadow miss at the same access, the engine's demand fetch *is*
//! the shadow's: a cache without warming would have made that same call
//! and stored its answer at the same instant. So when that demand fetch
//! lands, the shadow's entry takes its landing and expiry
//! ([`CostCap::on_demand_landed`]). Otherwise every demand fetch faster
//! than `L` would leave its key at risk for a TTL (the real entry expiring
//! before the shadow's by the difference), and those phantom risks alone
//! would hold the account at the cap and starve warming.
//!
//! **Refused fetches.** A driver with an upstream quota may refuse a twin
//! demand fetch before it calls, or answer a read without any call: then
//! the shadow's call is taken back, and while a fetch's outcome is open its
//! slack is held (module `held`), so the account reads
//! `c·S − C − R − c·H + b ≥ 1` and the cap holds against the calls a cache
//! without warming would have made.
//!
//! **Failed fetches.** A key at risk reserves one call: the demand call
//! its lost hit costs. If that call fails, its retry is a further call no
//! reserve covered (demand is never refused for the cap), so the bound is
//! `C ≤ c·S + b + F`, `F` the failed calls of lost hits; the account then
//! holds warming back until the traffic has earned them.
//!
//! **The price.** The account alone would spend greedily until the cap and
//! then starve. The price `λ` is the Lagrange multiplier of the cap,
//! learned online by dual descent from the calls actually made: every
//! [`PRICE_STEP_S`] its threshold moves by the excess of calls over `c`
//! times the shadow's, relative to the shadow's, over the cap's own window
//! (the whole run in replay, the decayed day in the daemon). The cap holds
//! over that window, not hour by hour: a quiet night may spend what a busy
//! session left, so the price falls while the window has room and rises as
//! the ratio reaches the cap. Beside it, the account's backlog has a price
//! of its own ([`CostCap::backlog_threshold`]): the share of the burst of
//! slack already spent. Near the cap, warming spends slack as fast as the
//! traffic earns it, and that price settles where only the candidates
//! worth the earning rate pass (a virtual queue's price, as in Lyapunov
//! drift-plus-penalty control). The higher of the two is the price. A fetch worth `w` expected
//! demand calls saved costs `1 − w` net calls, so it pays iff
//! `w − λ(1 − w) > 0`, i.e. `w > λ / (1 + λ)`: that is the price threshold.
//!
//! **A start-up cycle's loan.** After a restart the cache is empty and so
//! is the shadow: the first access of every key will be a call for both.
//! The start-up cycle (`crate::engine::Engine::plan_startup`) warms ahead
//! of those accesses on a loan of `g` calls, its start-up burst
//! (`warming.startup_burst`): its orders need `c·S − C − R + b + g ≥ 1`
//! ([`CostCap::may_warm_with`]) and pay the backlog price of that larger
//! reserve ([`CostCap::threshold_with`]). Ordinary warming still needs
//! `c·S − C − R + b ≥ 1`, so it waits until the traffic has earned the loan
//! back. The burst allowance is therefore `b` at all times and `b + g`
//! while a loan is open: `C + R ≤ c·S + b + g` always (property test in
//! `crate::engine::startup`), and `C + R ≤ c·S + b` again once the loan is
//! repaid.
//!
//! Invariants: O(1) per access and call, O(log n) per at-risk key; nothing
//! reads a clock; counts either cover the whole run (replay) or decay with
//! a half-life (daemon), and the account holds in both.

use crate::UnixSeconds;
use crate::cache::KeyId;
use crate::ttl::TtlRule;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};

mod figures;
mod held;
mod price;
mod state;
pub use figures::PriceFigures;
pub use state::PriceState;

/// Engine time between two price updates, seconds.
pub const PRICE_STEP_S: f64 = 60.0;
/// Time constant of the recent call rates the price follows, seconds.
const RATE_TAU_S: f64 = 1800.0;
/// Step of the price threshold per unit of relative excess (calls over
/// `c` times the shadow's, relative to the shadow's), per price step. The
/// update runs on the threshold `λ / (1 + λ)`, which lives in `[0, 1)`,
/// so one gain serves every traffic level.
const PRICE_GAIN: f64 = 0.5;
/// Highest threshold: a candidate sure to be requested is always worth it.
const MAX_THRESHOLD: f64 = 0.99;
/// Price history kept (a day of steps).
const HISTORY_LEN: usize = 1440;

/// One point of the price's history.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PricePoint {
    /// When it was set.
    #[cfg_attr(feature = "openapi", schema(value_type = f64))]
    pub at_s: UnixSeconds,
    /// The multiplier `λ`.
    pub lambda: f64,
    /// The threshold `λ / (1 + λ)` a candidate's worth must exceed.
    pub threshold: f64,
    /// Calls over the shadow's over the account's window, then.
    pub cost_ratio: f64,
}

#[derive(Debug, Clone, Copy)]
struct RiskExit(UnixSeconds, KeyId);
impl PartialEq for RiskExit {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for RiskExit {}
impl PartialOrd for RiskExit {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for RiskExit {
    fn cmp(&self, o: &Self) -> Ordering {
        self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
    }
}

/// The account and the price of one engine.
#[derive(Debug, Clone)]
pub struct CostCap {
    cap: f64,
    burst: f64,
    half_life_s: Option<f64>,
    /// The upstream latency the shadow's fetches take, seconds.
    latency_s: f64,
    /// Per key: the shadow entry's fetch time (NaN: none).
    shadow_fetched_s: Vec<f64>,
    /// Per key: when the shadow entry stops covering accesses (NaN: none).
    shadow_expiry_s: Vec<f64>,
    /// Per key: when its risk ends (NaN: not at risk).
    risk_until_s: Vec<f64>,
    /// Per key: whether the shadow's entry was fetched at an access the
    /// engine missed too, so that the engine's demand fetch is the same
    /// upstream call ("Twin fetches" in the module docs).
    shadow_twin: Vec<bool>,
    /// Per key: a forced (`no-cache`) read waits for the engine's demand
    /// fetch, which the shadow counts when it lands.
    shadow_forced: Vec<bool>,
    risk_exits: BinaryHeap<Reverse<RiskExit>>,
    at_risk: u64,
    /// Shadow calls held while their twin demand fetch is awaited.
    holds: held::Holds,
    calls: f64,
    shadow_calls: f64,
    decayed_at_s: UnixSeconds,
    /// Undecayed totals, for reports.
    calls_total: u64,
    shadow_total: u64,
    lambda: f64,
    next_step_s: UnixSeconds,
    last_totals: (u64, u64),
    recent: (f64, f64),
    history: VecDeque<PricePoint>,
}

impl CostCap {
    /// An account for `cap` (≥ 1) and a bucket of `burst` tokens; counts
    /// decay with `half_life_s`, or cover the whole run when `None`.
    pub fn new(cap: f64, burst: f64, half_life_s: Option<f64>) -> Self {
        CostCap {
            cap,
            burst: burst.max(1.0),
            half_life_s,
            latency_s: 0.0,
            shadow_fetched_s: Vec::new(),
            shadow_expiry_s: Vec::new(),
            risk_until_s: Vec::new(),
            shadow_twin: Vec::new(),
            shadow_forced: Vec::new(),
            risk_exits: BinaryHeap::new(),
            at_risk: 0,
            holds: held::Holds::default(),
            calls: 0.0,
            shadow_calls: 0.0,
            decayed_at_s: f64::NEG_INFINITY,
            calls_total: 0,
            shadow_total: 0,
            lambda: 0.0,
            next_step_s: f64::NEG_INFINITY,
            last_totals: (0, 0),
            recent: (0.0, 0.0),
            history: VecDeque::new(),
        }
    }

    /// Sets the upstream latency (seconds, ≥ 0): the shadow's fetch lands
    /// that much later, and an access while it is in flight coalesces
    /// (no call), as in the replay baseline under latency.
    pub fn set_latency_s(&mut self, latency_s: f64) {
        self.latency_s = latency_s.max(0.0);
    }

    /// When the shadow's entry fetched at `f` stops covering accesses (in
    /// flight, then fresh): the expiry of an entry landed at `f + L`,
    /// `(f + L) + TTL` under a flat TTL, as the replay writes it.
    fn shadow_expiry(&self, f: f64, ttl: &TtlRule) -> f64 {
        ttl.expires_at(f + self.latency_s)
    }

    fn slot(&mut self, key: KeyId) -> usize {
        let ix = key.0 as usize;
        if self.shadow_fetched_s.len() <= ix {
            self.shadow_fetched_s.resize(ix + 1, f64::NAN);
            self.shadow_expiry_s.resize(ix + 1, f64::NAN);
            self.risk_until_s.resize(ix + 1, f64::NAN);
            self.shadow_twin.resize(ix + 1, false);
            self.shadow_forced.resize(ix + 1, false);
        }
        ix
    }

    /// A client access of `key` at `now_s`: the shadow fetches if its entry
    /// is not fresh; its entry expires by `ttl`. `real_expires_s` is the
    /// expiry of the engine's entry as the access found it.
    pub fn on_access(
        &mut self,
        now_s: UnixSeconds,
        key: KeyId,
        ttl: &TtlRule,
        real_expires_s: Option<f64>,
    ) {
        self.advance(now_s);
        let ix = self.slot(key);
        let f = self.shadow_fetched_s[ix];
        // In flight or fresh: the shadow makes no call. While a read's
        // fetch is awaited (held) or a forced read's is pending, later
        // reads join it, however long it waits in the quota's queue; only
        // that fetch is counted for them.
        let covered = (f <= now_s && now_s < self.shadow_expiry_s[ix])
            || self.is_held(key)
            || self.shadow_forced[ix];
        self.holds.last_twin = None;
        self.holds.last_forced = None;
        if !covered {
            // The engine misses too: its demand fetch is the shadow's.
            let twin = !real_expires_s.is_some_and(|e| now_s < e);
            self.shadow_fetch(now_s, ix, ttl, twin);
        }
        self.rejudge(now_s, key, real_expires_s);
    }

    /// A client access of `key` at `now_s` that asked past the cache
    /// (`no-cache`), finding the engine's entry expiring at
    /// `real_expires_s`: a cache without warming would have honoured it
    /// alike, so the engine's demand fetch for it is the shadow's too. The
    /// shadow counts that call when it lands ([`CostCap::on_demand_landed`]):
    /// forced reads that join one fetch make one call in both.
    pub fn on_forced_access(
        &mut self,
        now_s: UnixSeconds,
        key: KeyId,
        real_expires_s: Option<f64>,
    ) {
        self.advance(now_s);
        let ix = self.slot(key);
        self.holds.last_twin = None;
        self.holds.last_forced = None;
        // A read's fetch is held: the forced read joins it, no call of its
        // own. A forced fetch pending already: joins that one.
        if !self.is_held(key) && !self.shadow_forced[ix] {
            self.shadow_forced[ix] = true;
            self.holds.last_forced = Some(key);
        }
        self.rejudge(now_s, key, real_expires_s);
    }

    /// The shadow fetches slot `ix` at `now_s` (one call); `twin`: the
    /// engine's demand fetch for the same access is the same call.
    fn shadow_fetch(&mut self, now_s: UnixSeconds, ix: usize, ttl: &TtlRule, twin: bool) {
        self.shadow_fetched_s[ix] = now_s;
        self.shadow_expiry_s[ix] = self.shadow_expiry(now_s, ttl);
        self.count_shadow_call();
        self.shadow_twin[ix] = twin;
        if twin {
            self.holds.last_twin = Some(KeyId(ix as u32));
        }
    }

    /// Whether the shadow holds an entry of `key` not yet expired at
    /// `now_s` (its id must not be released then: the shadow would lose a
    /// hit, and the key may still be at risk).
    pub fn holds_unexpired(&self, key: KeyId, now_s: UnixSeconds) -> bool {
        self.shadow_expiry_s
            .get(key.ix())
            .is_some_and(|&e| now_s < e)
    }

    /// Forgets all the account knows of `key` (its id is being released).
    pub fn forget(&mut self, key: KeyId) {
        self.drop_entry(key);
        self.holds.forget(key.ix());
    }

    /// `key` was purged: the shadow's entry goes too, as a cache without
    /// warming would have been purged alike, but a call held for a fetch
    /// under way stays held (that fetch may still be refused).
    pub fn on_purged(&mut self, key: KeyId) {
        let held = self.is_held(key);
        self.drop_entry(key);
        if held {
            self.shadow_twin[key.ix()] = true;
        }
    }

    /// Drops the shadow's entry of `key`; a risk not yet retired by
    /// [`CostCap::advance`] ends with it.
    fn drop_entry(&mut self, key: KeyId) {
        let ix = key.ix();
        if let Some(f) = self.shadow_fetched_s.get_mut(ix) {
            *f = f64::NAN;
        }
        if let Some(e) = self.shadow_expiry_s.get_mut(ix) {
            *e = f64::NAN;
        }
        if let Some(t) = self.shadow_twin.get_mut(ix) {
            *t = false;
        }
        if let Some(t) = self.shadow_forced.get_mut(ix) {
            *t = false;
        }
        if let Some(r) = self.risk_until_s.get_mut(ix)
            && !r.is_nan()
        {
            *r = f64::NAN;
            self.at_risk -= 1;
        }
    }

    /// The engine's demand fetch of `key` landed at `now_s`, its entry
    /// expiring at `real_expires_s`. When the shadow fetched at the same
    /// miss, this is the shadow's fetch too: its entry lands now, with the
    /// same expiry ("Twin fetches" in the module docs). Then the key is
    /// judged again ([`CostCap::rejudge`]).
    pub fn on_demand_landed(
        &mut self,
        now_s: UnixSeconds,
        key: KeyId,
        real_expires_s: Option<f64>,
    ) {
        self.landed(now_s, key, real_expires_s, true);
    }

    /// An API call of the engine (demand, or a warming order issued).
    pub fn on_call(&mut self, now_s: UnixSeconds) {
        self.advance(now_s);
        self.calls += 1.0;
        self.calls_total += 1;
    }

    /// Takes back the call of a warming order issued at `issued_at_s` that
    /// made none (it joined a fetch already in flight, was refused before
    /// calling, or was never performed): the account forgets it, decayed
    /// as it would be by now.
    pub fn take_back_call(&mut self, issued_at_s: UnixSeconds) {
        let weight = self.weight_now(issued_at_s);
        self.calls = (self.calls - weight).max(0.0);
        self.calls_total = self.calls_total.saturating_sub(1);
    }

    /// What one call counted at `at_s` weighs in the account now, after
    /// the decay applied since (1 when counts do not decay).
    fn weight_now(&self, at_s: UnixSeconds) -> f64 {
        match self.half_life_s {
            Some(h) if self.decayed_at_s > at_s => (-(self.decayed_at_s - at_s) / h).exp2(),
            _ => 1.0,
        }
    }

    /// The engine's entry of `key` changed (fetched, evicted): whether the
    /// key is at risk is judged again. `real_expires_s` is the new entry's
    /// expiry (`None`: no entry).
    pub fn rejudge(&mut self, now_s: UnixSeconds, key: KeyId, real_expires_s: Option<f64>) {
        let ix = self.slot(key);
        let shadow_expiry = self.shadow_expiry_s[ix]; // NaN: none
        let real_expiry = real_expires_s.unwrap_or(f64::NEG_INFINITY);
        let risky = real_expiry < shadow_expiry && now_s < shadow_expiry;
        let was = !self.risk_until_s[ix].is_nan();
        match (was, risky) {
            (false, true) => {
                self.at_risk += 1;
                self.risk_until_s[ix] = shadow_expiry;
                self.risk_exits.push(Reverse(RiskExit(shadow_expiry, key)));
            }
            (true, false) => {
                self.at_risk -= 1;
                self.risk_until_s[ix] = f64::NAN;
            }
            (true, true) if self.risk_until_s[ix] != shadow_expiry => {
                self.risk_until_s[ix] = shadow_expiry;
                self.risk_exits.push(Reverse(RiskExit(shadow_expiry, key)));
            }
            _ => {}
        }
    }

    /// Moves time to `now_s`: risks that ended, decay, price steps.
    pub fn advance(&mut self, now_s: UnixSeconds) {
        while let Some(Reverse(RiskExit(at_s, key))) = self.risk_exits.peek().copied() {
            if at_s > now_s {
                break;
            }
            self.risk_exits.pop();
            let ix = key.0 as usize;
            if self.risk_until_s[ix] == at_s {
                self.risk_until_s[ix] = f64::NAN;
                self.at_risk -= 1;
            }
        }
        self.holds.expire(now_s);
        self.decay(now_s);
        if now_s >= self.next_step_s {
            self.step_price(now_s);
        }
    }

    fn decay(&mut self, now_s: UnixSeconds) {
        let Some(h) = self.half_life_s else { return };
        if !self.decayed_at_s.is_finite() {
            self.decayed_at_s = now_s;
            return;
        }
        let dt_s = now_s - self.decayed_at_s;
        if dt_s < PRICE_STEP_S {
            return;
        }
        let f = (-dt_s / h).exp2();
        self.calls *= f;
        self.shadow_calls *= f;
        self.decayed_at_s = now_s;
    }

    /// `c·S − C − R − c·H + b`: calls warming may still make (`H` the
    /// shadow calls held while their twin fetch is awaited, module `held`).
    pub fn slack(&self) -> f64 {
        self.cap * (self.shadow_calls - self.holds.count as f64) - self.calls - self.at_risk as f64
            + self.burst
    }

    /// Whether one more warming fetch keeps the account (hard limit).
    pub fn may_warm(&self) -> bool {
        self.slack() >= 1.0
    }

    /// Whether one more fetch of a start-up cycle lent `loan` calls keeps
    /// `C + R ≤ c·S + b + loan` (hard limit; see the module docs).
    pub fn may_warm_with(&self, loan: f64) -> bool {
        self.slack() + loan.max(0.0) >= 1.0
    }

    /// Calls over the shadow's, over the account's window (1 before the
    /// shadow made any: always finite).
    pub fn ratio(&self) -> f64 {
        if self.shadow_calls <= 0.0 {
            1.0
        } else {
            self.calls / self.shadow_calls
        }
    }

    /// Keys at risk of a lost hit now.
    pub fn at_risk(&self) -> u64 {
        self.at_risk
    }

    /// `(calls, shadow calls)` since the start, undecayed.
    pub fn totals(&self) -> (u64, u64) {
        (self.calls_total, self.shadow_total)
    }
}

#[cfg(test)]
mod tests;
