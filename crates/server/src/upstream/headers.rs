//! Request headers a dataset sends upstream (`headers = { Authorization =
//! "Bearer ${VENDOR_KEY}" }`), with `${NAME}` resolved from the
//! environment when the config is validated.
//!
//! Invariants: values are never shown: `Debug` prints each header's name
//! with `REDACTED`, and every substituted value is registered with the
//! headers' [`Redactor`] (merged into the daemon's), so it is hidden from
//! every log line and error text.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::redact::{REDACTED, Redactor};
use super::template::{TemplateError, substitute_env};

/// What is wrong with one configured header (the caller names the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The name is not an HTTP header name.
    #[error("not a valid HTTP header name")]
    BadName,
    /// The value (after substitution) is not a valid header value; the
    /// value itself is not shown.
    #[error("the value is not a valid HTTP header value (control characters?)")]
    BadValue,
    /// `${NAME}` is malformed or names an unset variable.
    #[error(transparent)]
    Env(#[from] TemplateError),
}

/// A dataset's upstream request headers, resolved. `Debug` hides values.
#[derive(Clone, Default)]
pub struct RequestHeaders {
    map: HeaderMap,
    redactor: Redactor,
}

impl std::fmt::Debug for RequestHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map()
            .entries(self.map.keys().map(|k| (k.as_str(), REDACTED)))
            .finish()
    }
}

impl RequestHeaders {
    /// Resolves `(name, value template)` pairs through `env`. An error
    /// comes with the header's name as written.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, (String, HeaderError)> {
        let mut out = Self::default();
        for (name, template) in pairs {
            let fail = |e: HeaderError| (name.to_string(), e);
            let header =
                HeaderName::from_bytes(name.as_bytes()).map_err(|_| fail(HeaderError::BadName))?;
            let (value, redactor) =
                substitute_env(template, env).map_err(|e| fail(HeaderError::Env(e)))?;
            let mut value =
                HeaderValue::from_str(&value).map_err(|_| fail(HeaderError::BadValue))?;
            value.set_sensitive(true);
            out.redactor.merge(&redactor);
            out.map.insert(header, value);
        }
        Ok(out)
    }

    /// The headers, to send with every call of the dataset.
    pub fn map(&self) -> &HeaderMap {
        &self.map
    }

    /// Whether no header is configured.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Knows the values substituted into these headers.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "VENDOR_KEY").then(|| "s3cr3t-token".to_string())
    }

    #[test]
    fn values_are_resolved_and_never_shown() {
        let h = RequestHeaders::parse(
            [
                ("Authorization", "Bearer ${VENDOR_KEY}"),
                ("Accept", "application/json"),
            ],
            &env,
        )
        .unwrap();
        assert_eq!(h.map()["authorization"], "Bearer s3cr3t-token");
        assert_eq!(h.map()["accept"], "application/json");
        let shown = format!("{h:?}");
        assert!(
            !shown.contains("s3cr3t") && !shown.contains("application/json"),
            "{shown}"
        );
        assert!(
            shown.contains("authorization") && shown.contains(REDACTED),
            "{shown}"
        );
        let logged = h.redactor().redact("sent Bearer s3cr3t-token");
        assert_eq!(logged, "sent Bearer ${VENDOR_KEY}");
    }

    #[test]
    fn errors_name_the_header_and_the_variable() {
        let e = RequestHeaders::parse([("X-API-KEY", "${KEY2}")], &env).unwrap_err();
        assert_eq!(e.0, "X-API-KEY");
        assert_eq!(e.1.to_string(), "environment variable KEY2 is not set");
        let e = RequestHeaders::parse([("bad name", "v")], &env).unwrap_err();
        assert_eq!(e.1, HeaderError::BadName);
        let e = RequestHeaders::parse([("X-A", "a\nb")], &env).unwrap_err();
        assert_eq!(e.1, HeaderError::BadValue);
    }
}
