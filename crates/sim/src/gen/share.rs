//! Resolving [`LookupParams::anonymous_share`]: the lookup volume that makes
//! anonymous requests a given share of a run.
//!
//! Every component draws from its own random stream, so the users', the
//! scanners' and the news lookers' requests do not depend on the lookup
//! volume. A dry run without lookups counts them; the lookups then make up
//! the rest: with `other` requests by users and scanners and `news` by news
//! lookers, `share = (news + L) / (other + news + L)` gives
//! `L = (share·(other + news) − news) / (1 − share)` lookups over the run,
//! spread as `per_trading_day` over the trading days and `lull_fraction` of
//! it over the others. The share is met in expectation (lookup counts are
//! Poisson).
//!
//! [`LookupParams::anonymous_share`]: super::LookupParams::anonymous_share

use super::GenConfig;
use super::error::GenError;

const FIELD: &str = "lookups.anonymous_share";

/// `cfg` with `lookups.per_trading_day` set for `share` and
/// `anonymous_share` cleared. Errors name `lookups.anonymous_share` when
/// the share cannot be reached.
pub(crate) fn resolve(cfg: &GenConfig, share: f64) -> Result<GenConfig, GenError> {
    let mut dry = cfg.clone();
    dry.lookups.anonymous_share = None;
    dry.lookups.per_trading_day = 0.0;
    let counts = super::run(&dry, &mut |_| Ok(()))?;
    let other = (counts.user_requests + counts.scanner_requests) as f64;
    let news = counts.anonymous_requests as f64;
    let fail = |reason: String| GenError::Config {
        field: FIELD.into(),
        reason,
    };
    if other == 0.0 {
        return Err(fail(format!(
            "cannot be {share}: users and scanners make no request, so every request is anonymous"
        )));
    }
    let lookups = (share * (other + news) - news) / (1.0 - share);
    if lookups < 0.0 {
        return Err(fail(format!(
            "cannot be {share}: news lookers alone make {:.3} of the requests \
             (lower news.events_per_trading_day)",
            news / (other + news)
        )));
    }
    let non_trading = f64::from(counts.days - counts.trading_days);
    let trading_day_equivalents = f64::from(counts.trading_days) + non_trading * cfg.lull_fraction;
    if trading_day_equivalents <= 0.0 {
        return Err(fail(format!(
            "cannot be {share}: the run has no trading day and lull_fraction is 0, so it has no lookups"
        )));
    }
    let mut resolved = dry;
    resolved.lookups.per_trading_day = lookups / trading_day_equivalents;
    resolved.validate()?;
    Ok(resolved)
}
