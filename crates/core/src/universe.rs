//! Universe files: CSV `key,group[,weight]`, one membership per line.
//!
//! A key may appear on several lines to belong to several groups (a sector
//! and an index, say). Blank lines and lines starting with `#` are skipped.
//! A first line whose first field is `key`, or whose third field is not a
//! number, is a header. Every bad line is an error naming its line and
//! field; the callers read the file and add its name.

use std::fmt;

use thiserror::Error;

use crate::engine::Engine;

/// One membership.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    /// The key.
    pub key: String,
    /// The group (sector, index, watchlist).
    pub group: String,
    /// Optional weight of the key in the group (1 when absent).
    pub weight: f64,
}

/// The field of a universe line at fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UniverseField {
    /// The first field.
    Key,
    /// The second field.
    Group,
    /// The optional third field.
    Weight,
}

impl fmt::Display for UniverseField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UniverseField::Key => "key",
            UniverseField::Group => "group",
            UniverseField::Weight => "weight",
        })
    }
}

/// A malformed line.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("line {line}, field {field}: {problem}")]
pub struct UniverseError {
    /// 1-based line number.
    pub line: u64,
    /// The field at fault.
    pub field: UniverseField,
    /// What is wrong.
    pub problem: String,
}

/// Parses the text of a universe file.
pub fn parse_universe(text: &str) -> Result<Vec<Membership>, UniverseError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i as u64 + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |field, problem: String| UniverseError {
            line: line_no,
            field,
            problem,
        };
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if line_no == 1 && is_header(&fields) {
            continue;
        }
        let key = fields[0];
        if key.is_empty() {
            return Err(bad(UniverseField::Key, "empty".into()));
        }
        let group = match fields.get(1) {
            Some(g) if !g.is_empty() => *g,
            _ => {
                return Err(bad(
                    UniverseField::Group,
                    format!("missing (expected `key,group[,weight]`, found `{line}`)"),
                ));
            }
        };
        let weight = match fields.get(2) {
            None | Some(&"") => 1.0,
            Some(w) => match w.parse::<f64>() {
                Ok(w) if w.is_finite() && w >= 0.0 => w,
                _ => {
                    return Err(bad(
                        UniverseField::Weight,
                        format!("`{w}` is not a non-negative number"),
                    ));
                }
            },
        };
        if fields.len() > 3 {
            return Err(bad(
                UniverseField::Weight,
                format!("extra fields after the weight in `{line}`"),
            ));
        }
        out.push(Membership {
            key: key.to_string(),
            group: group.to_string(),
            weight,
        });
    }
    Ok(out)
}

fn is_header(fields: &[&str]) -> bool {
    let named = fields
        .first()
        .is_some_and(|k| k.eq_ignore_ascii_case("key"));
    let weight_word = fields.get(2).is_some_and(|w| w.parse::<f64>().is_err());
    named || weight_word
}

/// The groups of each key, keys in order of first appearance (groups of a
/// key in file order, repeats dropped).
pub fn groups_by_key(universe: &[Membership]) -> Vec<(&str, Vec<&str>)> {
    let mut index: rustc_hash::FxHashMap<&str, usize> = Default::default();
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for m in universe {
        let i = *index.entry(m.key.as_str()).or_insert_with(|| {
            out.push((m.key.as_str(), Vec::new()));
            out.len() - 1
        });
        let groups = &mut out[i].1;
        if !groups.contains(&m.group.as_str()) {
            groups.push(m.group.as_str());
        }
    }
    out
}

/// Gives every key of `universe` all its groups ([`Engine::set_groups`]
/// replaces a key's groups, so one call per key). Returns the number of
/// keys.
pub fn apply_universe(engine: &mut Engine, universe: &[Membership]) -> usize {
    let keys = groups_by_key(universe);
    for (key, groups) in &keys {
        engine.set_groups(key, groups);
    }
    keys.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::EngineConfig;

    #[test]
    fn reads_memberships_with_header_comments_and_weights() {
        let src = "key,sector\n# comment\n\nAAPL,Tech\nXOM,Energy,2.5\nAAPL,SP500\n";
        let u = parse_universe(src).unwrap();
        assert_eq!(u.len(), 3);
        assert_eq!(u[0].weight, 1.0);
        assert_eq!(u[1].weight, 2.5);
        assert_eq!((u[2].key.as_str(), u[2].group.as_str()), ("AAPL", "SP500"));
        // A third field that is a word marks a header too.
        assert_eq!(parse_universe("k,g,w\nA,B,1\n").unwrap().len(), 1);
    }

    #[test]
    fn bad_lines_name_line_and_field() {
        let cases = [
            (
                "key,sector\nAAPL\n",
                "line 2, field group: missing (expected `key,group[,weight]`, found `AAPL`)",
            ),
            (
                "A,B,-1\n",
                "line 1, field weight: `-1` is not a non-negative number",
            ),
            ("A,B\n,C\n", "line 2, field key: empty"),
            ("A,B\nC,,1\n", "line 2, field group: missing"),
            ("A,B\nC,D,x\n", "line 2, field weight: `x` is not"),
            ("A,B\nC,D,1,2\n", "line 2, field weight: extra fields"),
        ];
        for (src, want) in cases {
            let got = parse_universe(src).unwrap_err().to_string();
            assert!(got.starts_with(want), "{src:?}: got {got:?}, want {want:?}");
        }
    }

    #[test]
    fn keys_get_all_their_groups() {
        let u = parse_universe("AAPL,Tech\nXOM,Energy\nAAPL,SP500\nAAPL,Tech\n").unwrap();
        let g = groups_by_key(&u);
        assert_eq!(
            g,
            vec![("AAPL", vec!["Tech", "SP500"]), ("XOM", vec!["Energy"])]
        );
        let mut engine = Engine::new(EngineConfig::default()).unwrap();
        assert_eq!(apply_universe(&mut engine, &u), 2);
        for group in ["Tech", "SP500"] {
            let members = engine.tracker().group_members(group, 10);
            assert_eq!(members.len(), 1, "{group}");
            assert_eq!(engine.keys().name(members[0].key), "AAPL");
        }
    }
}
