//! Keeps API keys out of logs and error strings.
//!
//! Invariant: every string that may contain an upstream URL or a value
//! substituted from `${ENV_VAR}` passes through [`Redactor::redact`] before
//! it is logged or returned: query values become `REDACTED`, URL userinfo
//! becomes `REDACTED@`, and every substituted value (raw and
//! percent-encoded) becomes `${NAME}`.

use std::sync::LazyLock;

use percent_encoding::utf8_percent_encode;
use regex::Regex;

use super::template::KEY_ENCODE_SET;

/// The placeholder written instead of a secret.
pub const REDACTED: &str = "REDACTED";

static QUERY_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"([?&][^=&\s#"'<>]+=)[^&\s#"'<>]+"#).expect("constant regex"));
static USERINFO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(://)[^/@\s]+@").expect("constant regex"));

/// Replaces secrets in strings. Its `Debug` shows no secret.
#[derive(Clone, Default)]
pub struct Redactor {
    /// (secret, its variable name), longest secret first.
    secrets: Vec<(String, String)>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self
            .secrets
            .iter()
            .map(|(_, label)| label.as_str())
            .collect();
        f.debug_struct("Redactor").field("secrets", &names).finish()
    }
}

impl Redactor {
    /// A redactor that knows no secrets yet (it still hides query values).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a value substituted for `${name}`.
    pub fn add_secret(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            return;
        }
        let label = format!("${{{name}}}");
        let encoded = utf8_percent_encode(value, KEY_ENCODE_SET).to_string();
        for v in [value.to_string(), encoded] {
            if !self.secrets.iter().any(|(s, _)| *s == v) {
                self.secrets.push((v, label.clone()));
            }
        }
        self.secrets
            .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    }

    /// Adds every secret of `other`.
    pub fn merge(&mut self, other: &Redactor) {
        for (value, label) in &other.secrets {
            if !self.secrets.iter().any(|(s, _)| s == value) {
                self.secrets.push((value.clone(), label.clone()));
            }
        }
        self.secrets
            .sort_by_key(|(s, _)| std::cmp::Reverse(s.len()));
    }

    /// `text` with secrets, query values and URL userinfo replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (secret, label) in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), label);
            }
        }
        let out = QUERY_VALUE.replace_all(&out, format!("${{1}}{REDACTED}"));
        USERINFO
            .replace_all(&out, format!("${{1}}{REDACTED}@"))
            .into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_hidden_but_names_kept() {
        let r = Redactor::new();
        let s = r.redact("GET https://api.x.com/v2/AAPL?apiKey=abc123&limit=5 failed");
        assert_eq!(
            s,
            "GET https://api.x.com/v2/AAPL?apiKey=REDACTED&limit=REDACTED failed"
        );
    }

    #[test]
    fn substituted_secret_is_hidden_anywhere() {
        let mut r = Redactor::new();
        r.add_secret("API_KEY", "s3cr3t/+key");
        let s = r.redact("path /v/s3cr3t/+key and /v/s3cr3t%2F%2Bkey");
        assert!(!s.contains("s3cr3t"), "{s}");
        assert!(s.contains("${API_KEY}"), "{s}");
    }

    #[test]
    fn userinfo_is_hidden() {
        let r = Redactor::new();
        assert_eq!(
            r.redact("redis://:pw@127.0.0.1:6379"),
            "redis://REDACTED@127.0.0.1:6379"
        );
    }
}
