//! The learned-warming snapshot section (`model`, version
//! [`SECTION_VERSION`]): the demand model's FTRL state, its calibration
//! table and the cost cap's price state, all learned online from the same
//! traffic.
//!
//! Layout, little-endian: `u32` feature count `F`; `F` × `f64` FTRL `z`;
//! `F` × `f64` FTRL `n`; `u64` examples trained on; per tenth of the
//! prediction, lowest first, `u64` examples, `f64` sum of their scores,
//! `u64` of them requested; then the price ([`PriceState::write`]).
//!
//! Not saved: the examples still waiting for their label. They name key
//! ids of this run and windows that may close while the daemon is down; a
//! restored engine starts with none and labels what it proposes from then
//! on, so a restart costs at most one window of training.
//!
//! A section of another feature count (a build with another feature
//! layout) restores a fresh model and calibration and keeps the price. Any
//! inconsistent value is a [`SnapshotError::Malformed`]; reading never
//! panics.

use super::learner::Learner;
use super::reliability::Reliability;
use super::{DemandModel, FEATURES};
use crate::cost::{CostCap, PriceState};
use crate::snapshot::{Envelope, Reader, Section, SnapshotError, Writer};

/// Name of the learned-warming section.
pub const SECTION_NAME: &str = "model";
/// Version of its format.
pub const SECTION_VERSION: u32 = 1;

/// The `model` section of `learner` and `cost`.
pub fn section(learner: &Learner, cost: &CostCap) -> Section {
    let mut w = Writer::default();
    let (z, n, trained) = learner.model.to_parts();
    w.u32(z.len() as u32);
    z.iter().chain(&n).for_each(|&x| w.f64(x));
    w.u64(trained);
    for (examples, sum, requested) in learner.reliability.to_parts() {
        w.u64(examples);
        w.f64(sum);
        w.u64(requested);
    }
    cost.price_state().write(&mut w);
    Section {
        name: SECTION_NAME.to_string(),
        version: SECTION_VERSION,
        bytes: w.into_bytes(),
    }
}

/// What a `model` section holds, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LearnedState {
    /// The model and its calibration; `None` when the section has another
    /// feature layout (the restored engine keeps a fresh model).
    pub model: Option<(DemandModel, Reliability)>,
    /// The cost cap's price.
    pub price: PriceState,
}

impl LearnedState {
    /// The `model` section of `e`, if it has one (older snapshots do not).
    pub fn from_envelope(e: &Envelope) -> Result<Option<Self>, SnapshotError> {
        match e.section(SECTION_NAME) {
            None => Ok(None),
            Some(_) => Self::from_section(e.require(SECTION_NAME, SECTION_VERSION)?).map(Some),
        }
    }

    /// Reads a `model` section.
    pub fn from_section(section: &Section) -> Result<Self, SnapshotError> {
        if section.version > SECTION_VERSION {
            return Err(SnapshotError::NewerVersion {
                what: section.name.clone(),
                found: section.version,
                supported: SECTION_VERSION,
            });
        }
        let mut r = Reader::new(&section.bytes, "model section");
        let features = r.u32()? as usize;
        let Some(bytes) = features.checked_mul(2 * 8) else {
            return Err(r.error(format_args!("{features} features")));
        };
        let weights = r.take(bytes)?;
        let trained = r.u64()?;
        let mut tenths = [(0u64, 0f64, 0u64); 10];
        for t in &mut tenths {
            *t = (r.u64()?, r.f64()?, r.u64()?);
        }
        let Some(reliability) = Reliability::from_parts(&tenths) else {
            return Err(r.error("calibration counts are inconsistent"));
        };
        let model = if features == FEATURES {
            let x: Vec<f64> = weights
                .chunks_exact(8)
                .map(|c| f64::from_le_bytes(c.try_into().unwrap_or_default()))
                .collect();
            let (z, n) = x.split_at(FEATURES);
            let Some(m) = DemandModel::from_parts(z, n, trained) else {
                return Err(
                    r.error("model weights are not finite, or a squared-gradient sum is negative")
                );
            };
            Some((m, reliability))
        } else {
            None
        };
        let price = PriceState::read(&mut r)?;
        r.finish()?;
        Ok(LearnedState { model, price })
    }

    /// Puts the state into `learner` and `cost`, which have not run yet.
    /// Pending examples are left as they are (see the module docs).
    pub fn apply(self, learner: &mut Learner, cost: &mut CostCap) {
        if let Some((model, reliability)) = self.model {
            learner.model = model;
            learner.reliability = reliability;
        }
        cost.resume(self.price);
    }
}

#[cfg(test)]
mod tests;
