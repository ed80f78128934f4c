//! `[warming]`: one table, two owners. The engine's settings (budget,
//! strategies, thresholds, and the `[warming.strategy]` table) deserialize
//! straight into core's [`WarmingConfig`]; the driver's (schedules,
//! concurrency, outside sessions) into [`DriverSettings`].
//!
//! Each key is handed to its owner as it is read, so both keep their own
//! serde checks, a bad value is reported at its line, and a key neither
//! owns is named with every key the table accepts. Validation is the
//! owners' own ([`WarmingConfig::validate`], [`DriverSettings::validate`]).

use std::fmt;

use prewarm_core::strategies::WarmingConfig;
use serde::Deserialize;
use serde::de::value::{MapAccessDeserializer, StringDeserializer};
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, Visitor};

use super::check::invalid;
use super::error::ConfigError;
use crate::driver::settings::DriverSettings;

/// The `[warming]` table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WarmingSection {
    /// What the engine of every dataset is configured with (also what
    /// `prewarm replay --config` replays).
    pub engine: WarmingConfig,
    /// What only the driver reads.
    pub driver: DriverSettings,
}

impl WarmingSection {
    /// Checks both parts, naming the first bad field
    /// (`warming.max_cost_ratio: must be at least 1`).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.engine
            .validate()
            .map_err(|e| invalid(e.field, e.problem))?;
        self.driver.validate()
    }
}

impl<'de> Deserialize<'de> for WarmingSection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(SectionVisitor)
    }
}

struct SectionVisitor;

impl<'de> Visitor<'de> for SectionVisitor {
    type Value = WarmingSection;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the [warming] table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<WarmingSection, A::Error> {
        let mut driver = DriverSettings::default();
        let entries = EngineEntries {
            map: &mut map,
            driver: &mut driver,
        };
        let engine = WarmingConfig::deserialize(MapAccessDeserializer::new(entries))?;
        Ok(WarmingSection { engine, driver })
    }
}

/// The table's entries as the engine's settings see them: the driver's
/// keys are read into `driver` on the way and never shown.
struct EngineEntries<'a, A> {
    map: &'a mut A,
    driver: &'a mut DriverSettings,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for EngineEntries<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let mut seed = Some(seed);
        loop {
            match self.map.next_key_seed(RouteKey { seed: &mut seed })? {
                None => return Ok(None),
                Some(Routed::Engine(key)) => return Ok(Some(key)),
                Some(Routed::Driver(name)) => self.driver.read_value(&name, self.map)?,
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// A key of the table, by owner.
enum Routed<K> {
    /// One of [`DriverSettings::KEYS`].
    Driver(String),
    /// A key the engine's settings accept, as their own seed read it.
    Engine(K),
}

/// Reads one key (inside the map's own key reading, so an unknown one is
/// reported at its line) and routes it; the engine's seed is taken only
/// for a key that is not the driver's.
struct RouteKey<'s, K> {
    seed: &'s mut Option<K>,
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for RouteKey<'_, K> {
    type Value = Routed<K::Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let name = String::deserialize(d)?;
        if DriverSettings::KEYS.contains(&name.as_str()) {
            return Ok(Routed::Driver(name));
        }
        let Some(seed) = self.seed.take() else {
            return Err(D::Error::custom("[warming]: a key was read twice"));
        };
        match seed.deserialize(StringDeserializer::<KeyError>::new(name.clone())) {
            Ok(key) => Ok(Routed::Engine(key)),
            Err(KeyError::Unknown(engine_keys)) => Err(D::Error::custom(unknown_key(
                &name,
                engine_keys.iter().chain(DriverSettings::KEYS),
            ))),
            Err(KeyError::Other(message)) => Err(D::Error::custom(message)),
        }
    }
}

/// What the engine's settings say of a key they read: unknown (with the
/// keys they accept), or another complaint.
#[derive(Debug)]
enum KeyError {
    Unknown(&'static [&'static str]),
    Other(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Unknown(_) => f.write_str("unknown field"),
            KeyError::Other(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for KeyError {}

impl serde::de::Error for KeyError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        KeyError::Other(message.to_string())
    }

    fn unknown_field(_field: &str, expected: &'static [&'static str]) -> Self {
        KeyError::Unknown(expected)
    }
}

/// Serde's words for an unknown field, listing every key of the table.
fn unknown_key<'k>(name: &str, keys: impl Iterator<Item = &'k &'static str>) -> String {
    let keys: Vec<String> = keys.map(|k| format!("`{k}`")).collect();
    format!(
        "unknown field `{name}`, expected one of {}",
        keys.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<WarmingSection, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn each_key_reaches_its_owner() {
        let w = parse(
            "enabled = false\nrate_limit_per_min = 40\nmax_concurrent = 3\n\
             strategies = \"popular,time\"\npre_market_at = \"07:45\"\n\
             outside_sessions = \"Pause\"\nmax_cost_ratio = 1.1\n\
             [strategy]\ntrending_limit = 5\nsector_min_lift = 2.0\n",
        )
        .unwrap();
        assert!(!w.driver.enabled);
        assert_eq!(w.driver.max_concurrent, Some(3));
        assert_eq!(
            w.driver.pre_market_at,
            chrono::NaiveTime::from_hms_opt(7, 45, 0).unwrap()
        );
        assert_eq!(
            w.driver.outside_sessions,
            crate::driver::settings::OutsideSessions::Pause
        );
        assert_eq!(w.engine.rate_limit_per_min, 40.0);
        assert_eq!(w.engine.strategies, "popular,time".parse().unwrap());
        assert_eq!(w.engine.max_cost_ratio, 1.1);
        assert_eq!(w.engine.strategy.trending_limit, 5);
        assert_eq!(w.engine.strategy.sector_min_lift, 2.0);
        let d = WarmingConfig::default();
        assert_eq!(
            w.engine.strategy.predictive_limit,
            d.strategy.predictive_limit
        );
        assert_eq!(w.engine.popular_limit, d.popular_limit);
    }

    #[test]
    fn every_driver_key_is_read() {
        let values = [
            "false",
            "3",
            "\"run\"",
            "0.5",
            "\"09:00\"",
            "7",
            "60",
            "30",
            "\"off\"",
            "5",
        ];
        assert_eq!(values.len(), DriverSettings::KEYS.len());
        for (key, value) in DriverSettings::KEYS.iter().zip(values) {
            let w = parse(&format!("{key} = {value}\n")).unwrap();
            assert_ne!(w.driver, DriverSettings::default(), "{key}");
            assert_eq!(w.engine, WarmingConfig::default(), "{key}");
        }
    }

    #[test]
    fn unknown_keys_are_named_with_every_key_of_the_table() {
        let err = parse("enabled = true\nsnapshot_intervl_s = 5\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 2"), "{err}");
        assert!(err.contains("unknown field `snapshot_intervl_s`"), "{err}");
        assert!(
            err.contains("`snapshot_interval_s`") && err.contains("`max_cost_ratio`"),
            "{err}"
        );
        let err = parse("[strategy]\ntrending_limt = 5\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trending_limt") && err.contains("line 2"),
            "{err}"
        );
    }

    #[test]
    fn mistyped_values_are_reported_at_their_line() {
        for (text, line) in [
            ("enabled = true\nmax_cost_ratio = \"x\"\n", "line 2"),
            (
                "max_cost_ratio = 1.5\nsnapshot_interval_s = \"x\"\n",
                "line 2",
            ),
            ("enabled = true\n\npre_market_at = \"8h30\"\n", "line 3"),
            ("outside_sessions = \"sleep\"\n", "line 1"),
            ("strategies = \"popular,bogus\"\n", "line 1"),
        ] {
            let err = parse(text).unwrap_err().to_string();
            assert!(err.contains(line), "{text}: {err}");
        }
    }

    #[test]
    fn bad_values_name_their_field() {
        for (text, field) in [
            ("max_cost_ratio = 0.9", "warming.max_cost_ratio"),
            ("refresh_fraction = 1.0", "warming.refresh_fraction"),
            ("rate_limit_per_min = -1", "warming.rate_limit_per_min"),
            ("burst = -1", "warming.burst"),
            ("popular_interval_s = 0", "warming.popular_interval_s"),
            ("max_concurrent = 0", "warming.max_concurrent"),
            ("outside_rate_factor = 2.0", "warming.outside_rate_factor"),
            ("snapshot_interval_s = 0", "warming.snapshot_interval_s"),
            (
                "[strategy]\ntrending_interval_s = 0",
                "warming.strategy.trending_interval_s",
            ),
            (
                "[strategy]\npredictive_confidence_threshold = 1.2",
                "warming.strategy.predictive_confidence_threshold",
            ),
        ] {
            let err = parse(text).unwrap().validate().unwrap_err().to_string();
            assert!(err.starts_with(field), "{field}: {err}");
        }
    }
}
