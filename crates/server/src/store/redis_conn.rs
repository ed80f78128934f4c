//! How the daemon reaches a Redis server: its URL (`redis://` or, over
//! TLS, `rediss://`, credentials in the URL allowed) plus the optional
//! `[store]` credentials (`redis_username`, `redis_password` or
//! `redis_password_file`) and CA file (`redis_ca_file`, for a server whose
//! certificate is not signed by a CA of the system's trust store).
//!
//! Secrets never reach a log, an error or a `Debug` output: [`Secret`]
//! prints `***`, and [`RedisTarget::redact`] takes URL passwords and the
//! configured password out of any text before it is shown.

use redis::{ConnectionAddr, IntoConnectionInfo, TlsCertificates};
use serde::Deserialize;

use crate::upstream::redact::Redactor;

/// A secret string (a password). `Debug` and `Display` print `***`.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself: pass it on, never print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Credentials and trust for a Redis store, from `[store]` (validated:
/// files already read). Empty by default: the URL alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisAuth {
    /// ACL user (`store.redis_username`); `None`: the URL's, or `default`.
    pub username: Option<String>,
    /// Password (`store.redis_password` or the first line of
    /// `store.redis_password_file`); `None`: the URL's, if any.
    pub password: Option<Secret>,
    /// PEM CA certificate(s) trusted for a `rediss://` server
    /// (`store.redis_ca_file`); `None`: the system's trust store.
    pub ca_pem: Option<Vec<u8>>,
}

/// A Redis server to connect to: URL and [`RedisAuth`]. `Debug` shows the
/// URL with its password redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisTarget {
    url: String,
    auth: RedisAuth,
}

impl std::fmt::Debug for RedisTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisTarget")
            .field("url", &self.shown())
            .field("auth", &self.auth)
            .finish()
    }
}

impl RedisTarget {
    /// `url` with `auth` (whose username and password win over the URL's).
    pub fn new(url: impl Into<String>, auth: RedisAuth) -> Self {
        RedisTarget {
            url: url.into(),
            auth,
        }
    }

    /// `url` alone.
    pub fn from_url(url: impl Into<String>) -> Self {
        Self::new(url, RedisAuth::default())
    }

    /// The URL as it may be shown: its password redacted.
    pub fn shown(&self) -> String {
        Redactor::new().redact(&self.url)
    }

    /// `text` with URL passwords and the configured password taken out.
    pub fn redact(&self, text: &str) -> String {
        let mut out = Redactor::new().redact(text);
        if let Some(p) = self.auth.password.as_ref().map(Secret::expose)
            && !p.is_empty()
        {
            out = out.replace(p, "***");
        }
        out
    }

    /// A client for this target (no network is used). Errors, redacted:
    /// a malformed URL, a CA file that is not PEM, a CA file with a
    /// `redis://` URL.
    pub fn client(&self) -> Result<redis::Client, String> {
        let info = self
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| self.redact(&e.to_string()))?;
        let mut settings = info.redis_settings().clone();
        if let Some(user) = &self.auth.username {
            settings = settings.set_username(user);
        }
        if let Some(password) = &self.auth.password {
            settings = settings.set_password(password.expose());
        }
        let tls = matches!(info.addr(), ConnectionAddr::TcpTls { .. });
        let info = info.set_redis_settings(settings);
        let client = match (&self.auth.ca_pem, tls) {
            (Some(ca), true) => redis::Client::build_with_tls(
                info,
                TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                },
            ),
            (Some(_), false) => {
                return Err("store.redis_ca_file is set but the URL is not rediss://".into());
            }
            (None, _) => redis::Client::open(info),
        };
        client.map_err(|e| self.redact(&e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_errors_never_show_the_password() {
        let auth = RedisAuth {
            username: Some("app".into()),
            password: Some(Secret::new("s3cr3t-pw")),
            ca_pem: None,
        };
        let t = RedisTarget::new("redis://:urlpass@127.0.0.1:1", auth);
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("s3cr3t-pw") && !shown.contains("urlpass"),
            "{shown}"
        );
        assert_eq!(t.redact("auth s3cr3t-pw failed"), "auth *** failed");
        assert!(t.client().is_ok());
    }

    #[test]
    fn a_ca_file_needs_a_tls_url() {
        let auth = RedisAuth {
            ca_pem: Some(b"not used".to_vec()),
            ..RedisAuth::default()
        };
        let err = RedisTarget::new("redis://127.0.0.1:1", auth)
            .client()
            .unwrap_err();
        assert!(err.contains("rediss://"), "{err}");
    }

    #[test]
    fn a_tls_url_makes_a_client() {
        assert!(
            RedisTarget::from_url("rediss://127.0.0.1:1")
                .client()
                .is_ok()
        );
    }
}
