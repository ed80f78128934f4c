//! URL templates: `{key}` / `{keys}` placeholders and `${ENV_VAR}`
//! substitution at load time.
//!
//! Invariants: keys are always percent-encoded (everything but unreserved
//! characters); substituted values are registered with the template's
//! [`Redactor`] so they can be hidden from every log line.

use std::sync::LazyLock;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use regex::Regex;

use super::redact::Redactor;

/// Characters percent-encoded in keys: all but RFC 3986 unreserved ones.
pub const KEY_ENCODE_SET: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

static ENV_REF: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}").expect("constant regex"));

/// Which placeholder a template must contain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// `{key}`: one key.
    Key,
    /// `{keys}`: comma-joined keys.
    Keys,
}

impl Placeholder {
    fn text(self) -> &'static str {
        match self {
            Placeholder::Key => "{key}",
            Placeholder::Keys => "{keys}",
        }
    }
}

/// What is wrong with a template (the caller names the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `${NAME}` names an unset variable.
    #[error("environment variable {0} is not set")]
    MissingVar(String),
    /// A `${` without a matching `}` or with an invalid name.
    #[error("malformed ${{...}} reference")]
    MalformedVar,
    /// The placeholder is absent.
    #[error("must contain {0}")]
    MissingPlaceholder(&'static str),
    /// Not an http(s) URL.
    #[error("must start with http:// or https://")]
    BadScheme,
    /// With a sample key in place, the template is no valid URL (the
    /// reason is the URL parser's; the template is not repeated, so no
    /// secret is shown).
    #[error("is not a valid URL with a key in place: {0}")]
    BadUrl(String),
    /// The placeholder sits in the scheme, host or port: keys may only
    /// fill the path or the query.
    #[error("{0} may only appear in the path or the query, not the host or port")]
    PlaceholderInAuthority(&'static str),
}

/// The key put in place of the placeholder to check a template parses.
const SAMPLE_KEY: &str = "SAMPLE";

/// Checks that `resolved` (env values substituted) with a sample key in
/// place of `placeholder` is an http(s) URL with a host, and that the
/// placeholder lies after the authority (in the path or the query).
fn check_url(resolved: &str, placeholder: Placeholder) -> Result<(), TemplateError> {
    let after_scheme = resolved.find("://").map_or(0, |i| i + 3);
    let authority_end = resolved[after_scheme..]
        .find(['/', '?', '#'])
        .map_or(resolved.len(), |i| after_scheme + i);
    if resolved[..authority_end].contains(placeholder.text()) {
        return Err(TemplateError::PlaceholderInAuthority(placeholder.text()));
    }
    let sample = resolved.replace(placeholder.text(), SAMPLE_KEY);
    let url = url::Url::parse(&sample).map_err(|e| TemplateError::BadUrl(e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(TemplateError::BadScheme);
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(TemplateError::BadUrl("no host".into()));
    }
    Ok(())
}

/// A validated URL template with its env references resolved. Its `Debug`
/// shows the template as written (secrets unresolved, query values hidden).
#[derive(Clone)]
pub struct UrlTemplate {
    resolved: String,
    shown: String,
    placeholder: Placeholder,
    redactor: Redactor,
}

impl std::fmt::Debug for UrlTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("UrlTemplate")
            .field(&self.redactor.redact(&self.shown))
            .finish()
    }
}

impl UrlTemplate {
    /// Resolves `${NAME}` through `env` and checks scheme and placeholder,
    /// and that with a key in place it parses as an http(s) URL whose
    /// scheme, host and port hold no placeholder.
    pub fn parse(
        template: &str,
        placeholder: Placeholder,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, TemplateError> {
        if !(template.starts_with("http://") || template.starts_with("https://")) {
            return Err(TemplateError::BadScheme);
        }
        if !template.contains(placeholder.text()) {
            return Err(TemplateError::MissingPlaceholder(placeholder.text()));
        }
        let (resolved, redactor) = substitute_env(template, env)?;
        check_url(&resolved, placeholder)?;
        Ok(Self {
            resolved,
            shown: template.to_string(),
            placeholder,
            redactor,
        })
    }

    /// The URL for one key (`{key}` template). Every byte but RFC 3986's
    /// unreserved ones is percent-encoded (`/`, `?`, `#`, `%` included),
    /// so a key fills exactly one path segment, except `.` and `..`, which
    /// URL normalization removes: callers refuse those first
    /// ([`crate::config::DatasetConfig::key_problem`]).
    pub fn render_key(&self, key: &str) -> String {
        let encoded = utf8_percent_encode(key, KEY_ENCODE_SET).to_string();
        self.resolved.replace(self.placeholder.text(), &encoded)
    }

    /// The URL for several keys (`{keys}` template), comma-joined.
    pub fn render_keys<S: AsRef<str>>(&self, keys: &[S]) -> String {
        let joined = keys
            .iter()
            .map(|k| utf8_percent_encode(k.as_ref(), KEY_ENCODE_SET).to_string())
            .collect::<Vec<_>>()
            .join(",");
        self.resolved.replace(self.placeholder.text(), &joined)
    }

    /// The template as written, with `${NAME}` unresolved: safe to log.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Knows the values substituted into this template.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

/// Replaces every `${NAME}` with its value; registers values as secrets.
pub fn substitute_env(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(String, Redactor), TemplateError> {
    if has_unresolved(text) {
        return Err(TemplateError::MalformedVar);
    }
    let mut redactor = Redactor::new();
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for caps in ENV_REF.captures_iter(text) {
        let whole = caps.get(0).ok_or(TemplateError::MalformedVar)?;
        let name = &caps[1];
        let value = env(name).ok_or_else(|| TemplateError::MissingVar(name.to_string()))?;
        redactor.add_secret(name, &value);
        out.push_str(&text[last..whole.start()]);
        out.push_str(&value);
        last = whole.end();
    }
    out.push_str(&text[last..]);
    Ok((out, redactor))
}

fn has_unresolved(text: &str) -> bool {
    ENV_REF.replace_all(text, "").contains("${")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "API_KEY").then(|| "k3y".to_string())
    }

    #[test]
    fn key_is_percent_encoded_and_env_resolved() {
        let t = UrlTemplate::parse(
            "https://a.com/v2/{key}?apiKey=${API_KEY}",
            Placeholder::Key,
            &env,
        )
        .unwrap();
        assert_eq!(t.render_key("BRK.B"), "https://a.com/v2/BRK.B?apiKey=k3y");
        assert_eq!(
            t.render_key("A/B C&"),
            "https://a.com/v2/A%2FB%20C%26?apiKey=k3y"
        );
        assert_eq!(t.shown(), "https://a.com/v2/{key}?apiKey=${API_KEY}");
        assert!(!t.redactor().redact("x k3y").contains("k3y"));
    }

    #[test]
    fn a_key_fills_exactly_one_path_segment() {
        let t =
            UrlTemplate::parse("https://a.com/v2/{key}/last?k=1", Placeholder::Key, &env).unwrap();
        let keys = [
            "BRK.B", "A/B", "../x", "...", ". .", "%2E%2E", "%2F", "?q=1", "#frag", "a\\b", "é",
            "-_~", "a;b", "x@y:z",
        ];
        for key in keys {
            let url = reqwest::Url::parse(&t.render_key(key)).unwrap();
            let segments: Vec<&str> = url.path_segments().unwrap().collect();
            assert_eq!(segments.len(), 3, "{key:?}: {url}");
            assert_eq!((segments[0], segments[2]), ("v2", "last"), "{key:?}: {url}");
            let decoded = percent_encoding::percent_decode_str(segments[1]).decode_utf8_lossy();
            assert_eq!(decoded, key, "{url}");
            assert_eq!(url.query(), Some("k=1"), "{key:?}: {url}");
        }
        // Why `.` and `..` are refused before rendering: normalization
        // takes them out of the path.
        for key in [".", ".."] {
            let url = reqwest::Url::parse(&t.render_key(key)).unwrap();
            assert_ne!(url.path_segments().unwrap().count(), 3, "{key:?}: {url}");
        }
    }

    #[test]
    fn keys_are_comma_joined() {
        let t = UrlTemplate::parse("http://h/q?symbols={keys}", Placeholder::Keys, &env).unwrap();
        assert_eq!(t.render_keys(&["A", "B&C"]), "http://h/q?symbols=A,B%26C");
    }

    #[test]
    fn errors_say_what_is_wrong() {
        let no_env = |_: &str| None;
        assert_eq!(
            UrlTemplate::parse("http://h/{key}?k=${NOPE}", Placeholder::Key, &no_env).unwrap_err(),
            TemplateError::MissingVar("NOPE".into())
        );
        assert_eq!(
            UrlTemplate::parse("http://h/{key}?k=${1X}", Placeholder::Key, &no_env).unwrap_err(),
            TemplateError::MalformedVar
        );
        assert_eq!(
            UrlTemplate::parse("http://h/x", Placeholder::Key, &no_env).unwrap_err(),
            TemplateError::MissingPlaceholder("{key}")
        );
        assert_eq!(
            UrlTemplate::parse("ftp://h/{key}", Placeholder::Key, &no_env).unwrap_err(),
            TemplateError::BadScheme
        );
    }

    #[test]
    fn malformed_urls_and_placeholders_in_the_host_are_refused() {
        let bad_url = [
            "http://[::1/{key}",
            "http://host name/{key}",
            "http://127.0.0.1:99999/{key}",
        ];
        for t in bad_url {
            let e = UrlTemplate::parse(t, Placeholder::Key, &env).unwrap_err();
            assert!(matches!(e, TemplateError::BadUrl(_)), "{t}: {e}");
        }
        for t in [
            "http://{key}/x",
            "http://a.com:{key}/x",
            "https://{key}.a.com/x",
        ] {
            let e = UrlTemplate::parse(t, Placeholder::Key, &env).unwrap_err();
            assert_eq!(e, TemplateError::PlaceholderInAuthority("{key}"), "{t}");
        }
        let e = UrlTemplate::parse("http://{keys}/q", Placeholder::Keys, &env).unwrap_err();
        assert_eq!(e, TemplateError::PlaceholderInAuthority("{keys}"));
        for t in [
            "http://127.0.0.1:8080/v1/{key}",
            "https://a.com/q?s={key}&apiKey=${API_KEY}",
            "http://[::1]:9/{key}",
        ] {
            assert!(UrlTemplate::parse(t, Placeholder::Key, &env).is_ok(), "{t}");
        }
    }
}
