//! The warming strategies by name.
//!
//! Every warming fetch is charged to exactly one strategy, so the set is a
//! small closed enum with a dense index for per-strategy counters.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Declares [`StrategyId`] from one list of `Variant => "name"` entries,
/// with the docs of each variant: the enum, its serde names,
/// [`StrategyId::ALL`], [`StrategyId::COUNT`] and [`StrategyId::name`] all
/// come from the list, so they cannot disagree. The index of a variant is
/// its place in the list.
macro_rules! strategy_ids {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)+) => {
        /// A source of warming candidates.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum StrategyId {
            $($(#[doc = $doc])* #[serde(rename = $name)] $variant,)+
        }

        impl StrategyId {
            /// Every strategy, in index order.
            pub const ALL: [StrategyId; Self::COUNT] = [$(StrategyId::$variant,)+];
            /// Number of strategies.
            pub const COUNT: usize = [$($name,)+].len();

            /// The name used on the command line, in JSON and in metrics
            /// labels.
            pub fn name(self) -> &'static str {
                match self {
                    $(StrategyId::$variant => $name,)+
                }
            }
        }
    };
}

strategy_ids! {
    /// The decayed top-N, kept fresh.
    Popular => "popular",
    /// Learned time-of-day habits, warmed just ahead of the expected moment.
    Time => "time",
    /// Keys whose short-window rate rises against their own baseline.
    Trending => "trending",
    /// Keys predicted to follow the one just requested.
    Predictive => "predictive",
    /// Refresh-ahead of cached entries about to go stale.
    Refresh => "refresh",
    /// Members of a group whose share of accesses rises.
    Sector => "sector",
}

impl StrategyId {
    /// Dense index in `0..COUNT`, for per-strategy arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Every name, in index order, joined by `", "` (for help texts and
    /// error messages).
    pub fn names() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|id| id.name()).collect();
        names.join(", ")
    }
}

impl fmt::Display for StrategyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A strategy name that is not one of [`StrategyId::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown strategy `{given}`; expected one of {expected}", expected = StrategyId::names())]
pub struct UnknownStrategy {
    /// What was given.
    pub given: String,
}

impl FromStr for StrategyId {
    type Err = UnknownStrategy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        StrategyId::ALL
            .into_iter()
            .find(|id| id.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| UnknownStrategy {
                given: t.to_string(),
            })
    }
}

impl TryFrom<&str> for StrategyId {
    type Error = UnknownStrategy;
    /// Parses a name, as [`StrategyId::from_str`] (the edges that take a
    /// name: the CLI, the API, configuration).
    fn try_from(s: &str) -> Result<Self, Self::Error> {
        s.parse()
    }
}

/// A set of enabled strategies, as a bit set over [`StrategyId::index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StrategySet(u8);

impl StrategySet {
    /// No strategy: warming off.
    pub const NONE: StrategySet = StrategySet(0);
    /// Every strategy.
    pub fn all() -> Self {
        StrategyId::ALL.into_iter().collect()
    }
    /// Whether `id` is in the set.
    pub fn contains(self, id: StrategyId) -> bool {
        self.0 & (1 << id.index()) != 0
    }
    /// Adds `id`.
    pub fn insert(&mut self, id: StrategyId) {
        self.0 |= 1 << id.index();
    }
    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The members, in index order.
    pub fn iter(self) -> impl Iterator<Item = StrategyId> {
        StrategyId::ALL
            .into_iter()
            .filter(move |id| self.contains(*id))
    }
    /// Parses a comma-separated list such as `popular,refresh`.
    /// `all` selects every strategy and `none` (or an empty string) none.
    pub fn parse_list(list: &str) -> Result<Self, UnknownStrategy> {
        let t = list.trim();
        if t.eq_ignore_ascii_case("all") {
            return Ok(Self::all());
        }
        if t.is_empty() || t.eq_ignore_ascii_case("none") {
            return Ok(Self::NONE);
        }
        t.split(',').map(StrategyId::from_str).collect()
    }
}

impl FromIterator<StrategyId> for StrategySet {
    fn from_iter<I: IntoIterator<Item = StrategyId>>(iter: I) -> Self {
        let mut s = StrategySet::NONE;
        for id in iter {
            s.insert(id);
        }
        s
    }
}

impl FromStr for StrategySet {
    type Err = UnknownStrategy;
    /// [`StrategySet::parse_list`].
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_list(s)
    }
}

/// `all`, `none`, or the members' names joined by commas, in index order
/// (what [`StrategySet::parse_list`] reads back).
impl fmt::Display for StrategySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == Self::all() {
            return f.write_str("all");
        }
        if self.is_empty() {
            return f.write_str("none");
        }
        let names: Vec<&str> = self.iter().map(StrategyId::name).collect();
        f.write_str(&names.join(","))
    }
}

/// Written as its [`Display`](fmt::Display) text.
impl Serialize for StrategySet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Read from a list in [`StrategySet::parse_list`]'s form (`"popular,time"`,
/// `"all"`, `"none"`); an unknown name is an error naming it.
impl<'de> Deserialize<'de> for StrategySet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let list = String::deserialize(d)?;
        Self::parse_list(&list).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_list_accepts_names_and_rejects_unknown() {
        let s = StrategySet::parse_list("popular, Refresh").unwrap();
        assert!(s.contains(StrategyId::Popular));
        assert!(s.contains(StrategyId::Refresh));
        assert!(!s.contains(StrategyId::Time));
        let err = StrategySet::parse_list("popular,bogus").unwrap_err();
        assert_eq!(err.given, "bogus");
        assert_eq!(StrategySet::parse_list("all").unwrap(), StrategySet::all());
        assert!(StrategySet::parse_list("none").unwrap().is_empty());
    }

    #[test]
    fn a_set_reads_back_what_it_writes() {
        for list in ["all", "none", "popular,refresh", "time"] {
            let s: StrategySet = list.parse().unwrap();
            assert_eq!(s.to_string(), list);
            let json = serde_json::to_string(&s).unwrap();
            assert_eq!(serde_json::from_str::<StrategySet>(&json).unwrap(), s);
        }
        let err = serde_json::from_str::<StrategySet>("\"popular,bogus\"").unwrap_err();
        assert!(err.to_string().contains("`bogus`"), "{err}");
    }

    #[test]
    fn index_is_dense() {
        for (i, id) in StrategyId::ALL.into_iter().enumerate() {
            assert_eq!(id.index(), i);
            assert_eq!(id.name().parse::<StrategyId>().unwrap(), id);
        }
    }

    /// The place of `id` in [`StrategyId::ALL`], found by an exhaustive
    /// match: a new variant fails to compile here until it is listed.
    fn listed(id: StrategyId) -> Option<usize> {
        let in_all = |want: StrategyId| StrategyId::ALL.iter().position(|&s| s == want);
        match id {
            StrategyId::Popular
            | StrategyId::Time
            | StrategyId::Trending
            | StrategyId::Predictive
            | StrategyId::Refresh
            | StrategyId::Sector => in_all(id),
        }
    }

    #[test]
    fn all_lists_every_variant_once_with_its_own_name() {
        let every = [
            StrategyId::Popular,
            StrategyId::Time,
            StrategyId::Trending,
            StrategyId::Predictive,
            StrategyId::Refresh,
            StrategyId::Sector,
        ];
        assert_eq!(every.len(), StrategyId::COUNT);
        let mut names = std::collections::BTreeSet::new();
        for id in every {
            assert_eq!(listed(id), Some(id.index()), "{id:?}");
            assert!(names.insert(id.name()), "{} named twice", id.name());
            let json = serde_json::to_string(&id).unwrap();
            assert_eq!(json, format!("\"{}\"", id.name()));
            assert_eq!(serde_json::from_str::<StrategyId>(&json).unwrap(), id);
        }
    }

    #[test]
    fn an_unknown_name_lists_every_known_one() {
        let err = "bogus".parse::<StrategyId>().unwrap_err().to_string();
        for id in StrategyId::ALL {
            assert!(err.contains(id.name()), "{err}");
        }
        assert_eq!(
            err,
            format!(
                "unknown strategy `bogus`; expected one of {}",
                StrategyId::names()
            )
        );
    }
}
