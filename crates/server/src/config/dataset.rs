//! One `[datasets.NAME]` table: its validated form and its validation
//! (stage two).

use std::borrow::Cow;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prewarm_core::universe::{Membership, parse_universe};
use regex::Regex;

use prewarm_core::check::MIN_SECONDS;

use super::check::{at_least, invalid, seconds};
use super::error::ConfigError;
use super::keys::validate_keys;
pub use super::keys::{DEFAULT_KEY_PATTERN, KeyProblem, KeyRules};
use super::raw::{RawDataset, RawSidecar};
use crate::upstream::headers::RequestHeaders;
use crate::upstream::redact::Redactor;
use crate::upstream::template::{Placeholder, UrlTemplate};

const DEFAULT_TTL_S: f64 = 60.0;
/// Default `negative_ttl_s`, seconds.
pub const DEFAULT_NEGATIVE_TTL_S: f64 = 30.0;

/// One dataset, validated.
#[derive(Debug, Clone)]
pub struct DatasetConfig {
    /// Name, e.g. `quote`.
    pub name: Arc<str>,
    /// Upstream URL for one key.
    pub url: UrlTemplate,
    /// Headers sent with every upstream call (single and batch); `Debug`
    /// hides their values.
    pub headers: RequestHeaders,
    /// Freshness lifetime, seconds.
    pub ttl_s: f64,
    /// How long an upstream 404 is kept as a negative entry (answered 404
    /// without a call, never warmed), seconds; 0: not kept.
    pub negative_ttl_s: f64,
    /// Case, aliases and pattern of keys.
    pub keys: KeyRules,
    /// Serve stale entries when upstream cannot answer.
    pub serve_stale: bool,
    /// How long past the TTL a stale entry may still be answered (the
    /// store's `stale_grace_s`), seconds; checked when the answer is sent.
    pub stale_grace_s: f64,
    /// How long past the TTL a stale entry is answered at once while a
    /// background refresh runs (RFC 5861 stale-while-revalidate), seconds,
    /// at most `stale_grace_s`. Past it, within the grace, a read waits for
    /// the refresh (up to the request timeout and the grace left).
    pub stale_while_revalidate_s: f64,
    /// Batch endpoint, if any.
    pub batch: Option<BatchConfig>,
    /// Write-through into the application's Redis, if any.
    pub sidecar: Option<SidecarConfig>,
    /// Groups of keys read from the `universe` file, if any.
    pub universe: Option<UniverseFile>,
    /// TTL per market session, replacing `ttl_s` when set
    /// (`[datasets.NAME.ttl_by_session]`, `config/session_ttl.rs`).
    pub ttl_by_session: Option<prewarm_core::ttl::SessionTtls>,
    /// The expiry rule built from `ttl_s` and `ttl_by_session`
    /// ([`DatasetConfig::expires_at`]).
    pub ttl_rule: prewarm_core::ttl::TtlRule,
}

/// A dataset's universe file, read and parsed when the config is
/// validated. `Debug` shows the path and the size, not every line.
#[derive(Clone)]
pub struct UniverseFile {
    /// The file as configured.
    pub path: PathBuf,
    /// Its memberships, in file order.
    pub memberships: Arc<[Membership]>,
}

impl std::fmt::Debug for UniverseFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UniverseFile")
            .field("path", &self.path)
            .field("memberships", &self.memberships.len())
            .finish()
    }
}

/// A dataset's batch endpoint.
#[derive(Debug, Clone)]
pub struct BatchConfig {
    /// URL with `{keys}`.
    pub url: UrlTemplate,
    /// Most keys per call.
    pub max_keys: usize,
    /// JSON pointer to the items ("" is the root).
    pub items_pointer: String,
    /// Key field of array items; `None`: items are an object keyed by key.
    pub key_field: Option<String>,
}

/// Write-through into the application's own Redis. `Debug` hides URL
/// passwords.
#[derive(Clone)]
pub struct SidecarConfig {
    /// `redis://HOST:PORT`.
    pub redis_url: String,
    /// Key template with `{key}`.
    pub key_template: String,
    /// TTL of written keys, seconds.
    pub ttl_s: f64,
}

impl std::fmt::Debug for SidecarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SidecarConfig")
            .field("redis_url", &Redactor::new().redact(&self.redis_url))
            .field("key_template", &self.key_template)
            .field("ttl_s", &self.ttl_s)
            .finish()
    }
}

impl DatasetConfig {
    /// The canonical key of `key` as a client spelled it (upper-cased
    /// when `uppercase_keys`, then resolved through `aliases`).
    pub fn canonical_key<'a>(&self, key: &'a str) -> Cow<'a, str> {
        self.keys.canonical(key)
    }

    /// What is wrong with the canonical `key`, if anything: a dot segment
    /// (always refused), or no match of the key pattern (the problem names
    /// it). Any other key fills exactly one URL path segment (it is
    /// percent-encoded, `/` included).
    pub fn key_problem(&self, key: &str) -> Option<KeyProblem> {
        self.keys.problem(key)
    }

    /// Whether `key` is accepted ([`DatasetConfig::key_problem`] is `None`).
    pub fn key_is_valid(&self, key: &str) -> bool {
        self.key_problem(key).is_none()
    }
}

/// The URL the built-in upstream-sim answers one quote on.
pub(super) fn builtin_quote_urls(addr: SocketAddr) -> (String, String) {
    (
        format!("http://{addr}/v1/quote/{{key}}"),
        format!("http://{addr}/v1/quotes?symbols={{keys}}"),
    )
}

pub(super) fn validate_dataset(
    name: &str,
    raw: &RawDataset,
    builtin: bool,
    stale_grace_s: f64,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<DatasetConfig, ConfigError> {
    let field = |f: &str| format!("datasets.{name}.{f}");
    let name_ok = Regex::new("^[a-z][a-z0-9_]{0,31}$").is_ok_and(|r| r.is_match(name));
    if !name_ok || name == "access" {
        return Err(invalid(
            format!("datasets.{name}"),
            "dataset names are lowercase letters, digits and _ (not `access`)",
        ));
    }
    let placeholder_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    let (builtin_url, builtin_batch) = builtin_quote_urls(placeholder_addr);
    let url_text = match (&raw.url, builtin) {
        (Some(u), _) => u.clone(),
        (None, true) => builtin_url,
        (None, false) => return Err(invalid(field("url"), "missing (only quote may omit it)")),
    };
    let url = UrlTemplate::parse(&url_text, Placeholder::Key, env)
        .map_err(|e| invalid(field("url"), e.to_string()))?;
    let ttl_s = seconds(&field("ttl_s"), raw.ttl_s, DEFAULT_TTL_S, MIN_SECONDS)?;
    let keys = validate_keys(
        name,
        raw.key_pattern.as_deref(),
        raw.uppercase_keys,
        raw.aliases.as_ref(),
    )?;
    let headers = RequestHeaders::parse(
        raw.headers
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str())),
        env,
    )
    .map_err(|(header, e)| invalid(field(&format!("headers.{header}")), e.to_string()))?;
    let batch_text = raw.batch_url.clone().or(builtin.then_some(builtin_batch));
    let batch = match batch_text {
        None => None,
        Some(text) => Some(validate_batch(name, raw, &text, builtin, env)?),
    };
    let sidecar = match &raw.sidecar {
        None => None,
        Some(s) => Some(validate_sidecar(name, s, ttl_s)?),
    };
    let universe = match &raw.universe {
        None => None,
        Some(path) => Some(read_universe(&field("universe"), path)?),
    };
    let swr_field = field("stale_while_revalidate_s");
    let stale_while_revalidate_s =
        seconds(&swr_field, raw.stale_while_revalidate_s, stale_grace_s, 0.0)?;
    if stale_while_revalidate_s > stale_grace_s {
        return Err(invalid(swr_field, "must be <= store.stale_grace_s"));
    }
    let ttl_by_session = raw
        .ttl_by_session
        .as_ref()
        .map(|t| super::session_ttl::validate_session_ttl(name, t, ttl_s))
        .transpose()?;
    Ok(DatasetConfig {
        ttl_rule: super::session_ttl::ttl_rule(ttl_s, ttl_by_session),
        ttl_by_session,
        name: name.into(),
        url,
        headers,
        ttl_s,
        negative_ttl_s: seconds(
            &field("negative_ttl_s"),
            raw.negative_ttl_s,
            DEFAULT_NEGATIVE_TTL_S,
            0.0,
        )?,
        keys,
        serve_stale: raw.serve_stale.unwrap_or(true),
        stale_grace_s,
        stale_while_revalidate_s,
        batch,
        sidecar,
        universe,
    })
}

/// Reads and parses a universe file (relative paths from the working
/// directory); errors name the field, the file and the line.
fn read_universe(field: &str, path: &Path) -> Result<UniverseFile, ConfigError> {
    if path.as_os_str().is_empty() {
        return Err(invalid(field, "must name a file"));
    }
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(field, format!("universe {shown}: {e}")))?;
    let memberships =
        parse_universe(&text).map_err(|e| invalid(field, format!("universe {shown}, {e}")))?;
    Ok(UniverseFile {
        path: path.to_path_buf(),
        memberships: memberships.into(),
    })
}

fn validate_batch(
    name: &str,
    raw: &RawDataset,
    text: &str,
    builtin: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BatchConfig, ConfigError> {
    let field = |f: &str| format!("datasets.{name}.{f}");
    let url = UrlTemplate::parse(text, Placeholder::Keys, env)
        .map_err(|e| invalid(field("batch_url"), e.to_string()))?;
    let default_pointer = if builtin { "/quotes" } else { "" };
    let items_pointer = raw
        .batch_items_pointer
        .clone()
        .unwrap_or_else(|| default_pointer.into());
    if !(items_pointer.is_empty() || items_pointer.starts_with('/')) {
        return Err(invalid(
            field("batch_items_pointer"),
            "must be empty or start with /",
        ));
    }
    let key_field = raw
        .batch_key_field
        .clone()
        .or(builtin.then(|| "symbol".to_string()));
    Ok(BatchConfig {
        url,
        max_keys: at_least(&field("batch_max_keys"), raw.batch_max_keys, 100, 1)?,
        items_pointer,
        key_field,
    })
}

fn validate_sidecar(
    name: &str,
    raw: &RawSidecar,
    ttl_s: f64,
) -> Result<SidecarConfig, ConfigError> {
    let field = |f: &str| format!("datasets.{name}.sidecar.{f}");
    let redis_url = raw
        .redis
        .clone()
        .ok_or_else(|| invalid(field("redis"), "missing"))?;
    if !redis_url.starts_with("redis://") {
        return Err(invalid(field("redis"), "must start with redis://"));
    }
    let key_template = raw
        .key_template
        .clone()
        .ok_or_else(|| invalid(field("key_template"), "missing"))?;
    if !key_template.contains("{key}") {
        return Err(invalid(field("key_template"), "must contain {key}"));
    }
    Ok(SidecarConfig {
        redis_url,
        key_template,
        ttl_s: seconds(&field("ttl_s"), raw.ttl_s, ttl_s, MIN_SECONDS)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(pattern: &str) -> DatasetConfig {
        let raw = RawDataset {
            url: Some("http://h/{key}".into()),
            key_pattern: Some(pattern.into()),
            ..RawDataset::default()
        };
        validate_dataset("quote", &raw, false, 300.0, &|_| None).unwrap()
    }

    #[test]
    fn a_missing_header_variable_names_dataset_header_and_variable() {
        let raw = RawDataset {
            url: Some("http://h/{key}".into()),
            headers: Some([("Authorization".into(), "Bearer ${VENDOR_KEY}".into())].into()),
            ..RawDataset::default()
        };
        let e = validate_dataset("quote", &raw, false, 300.0, &|_| None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "datasets.quote.headers.Authorization: environment variable VENDOR_KEY is not set"
        );
        let env = |n: &str| (n == "VENDOR_KEY").then(|| "tok-123456".to_string());
        let ds = validate_dataset("quote", &raw, false, 300.0, &env).unwrap();
        assert_eq!(ds.headers.map()["authorization"], "Bearer tok-123456");
        assert!(!format!("{ds:?}").contains("tok-123456"));
        assert_eq!(ds.negative_ttl_s, DEFAULT_NEGATIVE_TTL_S);
    }

    #[test]
    fn dot_segments_are_refused_whatever_the_key_pattern() {
        let ds = dataset(".+");
        assert_eq!(ds.key_problem("."), Some(KeyProblem::DotSegment));
        assert_eq!(ds.key_problem(".."), Some(KeyProblem::DotSegment));
        assert_eq!(ds.key_problem("..."), None);
        assert_eq!(ds.key_problem("A/B"), None);
        assert_eq!(
            dataset("[A-Z]+").key_problem("a"),
            Some(KeyProblem::Pattern("[A-Z]+".into()))
        );
    }

    #[test]
    fn stale_while_revalidate_defaults_to_the_grace_and_stays_within_it() {
        assert_eq!(dataset(".+").stale_while_revalidate_s, 300.0);
        let raw = RawDataset {
            url: Some("http://h/{key}".into()),
            stale_while_revalidate_s: Some(301.0),
            ..RawDataset::default()
        };
        let e = validate_dataset("quote", &raw, false, 300.0, &|_| None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "datasets.quote.stale_while_revalidate_s: must be <= store.stale_grace_s"
        );
    }
}
