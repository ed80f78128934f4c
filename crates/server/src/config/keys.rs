//! How a dataset reads its keys: case, aliases, pattern (validated from
//! `uppercase_keys`, `aliases` and `key_pattern`).
//!
//! A key as a client spells it becomes its canonical key in two steps:
//! upper-cased when `uppercase_keys` is set, then replaced by its alias
//! target if it is an alias. Only the canonical key is validated, cached,
//! fetched and tracked.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use regex::Regex;

use super::check::invalid;
use super::error::ConfigError;

/// Default key pattern (anchored).
pub const DEFAULT_KEY_PATTERN: &str = "^[A-Z][A-Z0-9.-]{0,14}$";

/// Why a key is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyProblem {
    /// `.` or `..`: a dot segment, which URL normalization would take out
    /// of the upstream path (`/v1/quote/..` is `/v1/`). Refused whatever
    /// the key pattern says.
    DotSegment,
    /// The key does not match the dataset's key pattern (as configured).
    Pattern(Arc<str>),
}

impl std::fmt::Display for KeyProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyProblem::DotSegment => {
                f.write_str("`.` and `..` are never keys (dot segments of a URL path)")
            }
            KeyProblem::Pattern(p) => write!(f, "does not match the key pattern `{p}`"),
        }
    }
}

/// A dataset's key rules, validated.
#[derive(Debug, Clone)]
pub struct KeyRules {
    /// Anchored key pattern.
    pattern: Regex,
    /// The pattern as configured, for error messages.
    pattern_text: Arc<str>,
    /// Upper-case keys before aliases and validation.
    uppercase: bool,
    /// Alias (upper-cased when `uppercase`) to canonical key.
    aliases: HashMap<String, Arc<str>>,
}

impl KeyRules {
    /// The canonical key of `key` as a client spelled it.
    pub fn canonical<'a>(&self, key: &'a str) -> Cow<'a, str> {
        let key: Cow<'a, str> = if self.uppercase && key.chars().any(char::is_lowercase) {
            Cow::Owned(key.to_uppercase())
        } else {
            Cow::Borrowed(key)
        };
        match self.aliases.get(key.as_ref()) {
            Some(target) => Cow::Owned(target.to_string()),
            None => key,
        }
    }

    /// What is wrong with the (canonical) `key`, if anything.
    pub fn problem(&self, key: &str) -> Option<KeyProblem> {
        if key == "." || key == ".." {
            Some(KeyProblem::DotSegment)
        } else if !self.pattern.is_match(key) {
            Some(KeyProblem::Pattern(self.pattern_text.clone()))
        } else {
            None
        }
    }
}

/// Validates `key_pattern`, `uppercase_keys` and `aliases` of dataset
/// `name`: every alias target must be a valid key, and no target may be an
/// alias itself (one step always reaches the canonical key).
pub(super) fn validate_keys(
    name: &str,
    pattern: Option<&str>,
    uppercase: Option<bool>,
    aliases: Option<&BTreeMap<String, String>>,
) -> Result<KeyRules, ConfigError> {
    let field = |f: &str| format!("datasets.{name}.{f}");
    let text = pattern.unwrap_or(DEFAULT_KEY_PATTERN);
    let pattern = Regex::new(&format!("^(?:{text})$"))
        .map_err(|e| invalid(field("key_pattern"), e.to_string()))?;
    let mut rules = KeyRules {
        pattern,
        pattern_text: text.into(),
        uppercase: uppercase.unwrap_or(false),
        aliases: HashMap::new(),
    };
    let upper = |k: &str| {
        if rules.uppercase {
            k.to_uppercase()
        } else {
            k.to_string()
        }
    };
    let mut map = HashMap::new();
    for (alias, target) in aliases.into_iter().flatten() {
        let at = field(&format!("aliases.{alias}"));
        let target = upper(target);
        if let Some(problem) = rules.problem(&target) {
            return Err(invalid(at, format!("target {target:?} {problem}")));
        }
        map.insert(upper(alias), Arc::<str>::from(target));
    }
    if let Some((alias, target)) = map.iter().find(|(_, t)| map.contains_key(t.as_ref())) {
        return Err(invalid(
            field(&format!("aliases.{alias}")),
            format!("target {target:?} is itself an alias; name the canonical key"),
        ));
    }
    rules.aliases = map;
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(uppercase: bool) -> KeyRules {
        let aliases = BTreeMap::from([("BRK-B".to_string(), "BRK.B".to_string())]);
        validate_keys("quote", None, Some(uppercase), Some(&aliases)).unwrap()
    }

    #[test]
    fn keys_are_upper_cased_then_aliased() {
        let r = rules(true);
        assert_eq!(r.canonical("brk-b"), "BRK.B");
        assert_eq!(r.canonical("BRK-B"), "BRK.B");
        assert_eq!(r.canonical("aapl"), "AAPL");
        let r = rules(false);
        assert_eq!(r.canonical("brk-b"), "brk-b");
        assert_eq!(r.canonical("BRK-B"), "BRK.B");
        assert!(matches!(r.problem("brk-b"), Some(KeyProblem::Pattern(_))));
    }

    #[test]
    fn the_pattern_error_names_the_pattern() {
        let r = rules(false);
        let p = r.problem("aapl").unwrap();
        assert_eq!(
            p.to_string(),
            format!("does not match the key pattern `{DEFAULT_KEY_PATTERN}`")
        );
    }

    #[test]
    fn bad_aliases_name_their_field() {
        let bad = BTreeMap::from([("X".to_string(), "not valid".to_string())]);
        let e = validate_keys("quote", None, None, Some(&bad)).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("datasets.quote.aliases.X: target"),
            "{e}"
        );
        let chain = BTreeMap::from([
            ("A1".to_string(), "B1".to_string()),
            ("B1".to_string(), "C1".to_string()),
        ]);
        let e = validate_keys("quote", None, None, Some(&chain)).unwrap_err();
        assert!(e.to_string().contains("is itself an alias"), "{e}");
    }
}
