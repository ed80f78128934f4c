//! Configuration: TOML file, environment, command-line flags.
//!
//! Two stages: [`raw`] mirrors the file (serde, unknown fields rejected),
//! [`validated`] checks it into typed values. `[warming]` is read straight
//! into its owners' types (the engine's settings and the driver's,
//! [`WarmingSection`]), which check themselves. [`env`] holds the one
//! table of environment variables. Every error names the file or the
//! field (`datasets.quote.ttl_s: must be > 0`).
//!
//! Files, none importing a sibling that imports it back: `error` (the
//! error type), `check` (checks naming the field), `raw`, `warming`,
//! `keys`, `dataset`, `quota`, `env`, `validated`.
//!
//! [`EXAMPLE_TOML`] is a full file with every default.
//!
//! Without any `url` for `quote` (and no `--upstream`), `serve` starts the
//! built-in upstream-sim in-process.

pub(crate) mod check;
mod dataset;
pub mod env;
pub(crate) mod error;
pub(crate) mod keys;
mod quota;
pub mod raw;
mod redis_auth;
mod session_ttl;
pub mod validated;
mod warming;

use std::path::{Path, PathBuf};

pub use crate::driver::settings::{DriverSettings, OutsideSessions};
pub use dataset::{BatchConfig, DatasetConfig, KeyProblem, KeyRules, SidecarConfig, UniverseFile};
pub use env::{ENV_VARS, EnvVar};
pub use error::ConfigError;
pub use raw::RawConfig;
pub use validated::{
    AdminConfig, AdminToken, LogFormat, ServeConfig, ServerConfig, StoreBackend, StoreConfig,
    UpstreamConfig,
};
pub use warming::WarmingSection;

/// A full config file: every value set is the default, and it starts the
/// daemon as it is (built-in upstream-sim, no environment variable needed);
/// settings without a fixed default and examples are commented out.
/// `prewarm serve --print-config` prints it for users to start from.
pub const EXAMPLE_TOML: &str = include_str!("example.toml");

/// Values given as `prewarm serve` flags; they override file and env.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--listen ADDR`.
    pub listen: Option<String>,
    /// `--admin-listen ADDR`.
    pub admin_listen: Option<String>,
    /// `--store memory|redis://HOST:PORT`.
    pub store: Option<String>,
    /// `--state-dir DIR`.
    pub state_dir: Option<PathBuf>,
    /// `--upstream URL_TEMPLATE` (the `quote` dataset's URL).
    pub upstream: Option<String>,
    /// `--universe FILE` (the `quote` dataset's universe file).
    pub universe: Option<PathBuf>,
    /// `--log-format text|json`.
    pub log_format: Option<String>,
}

impl CliOverrides {
    /// The dotted config fields these flags set.
    fn fields(&self) -> Vec<&'static str> {
        [
            (self.listen.is_some(), "server.listen"),
            (self.admin_listen.is_some(), "server.admin_listen"),
            (self.store.is_some(), "store.backend"),
            (self.state_dir.is_some(), "server.state_dir"),
            (self.upstream.is_some(), "datasets.quote.url"),
            (self.log_format.is_some(), "server.log_format"),
            (self.universe.is_some(), "datasets.quote.universe"),
        ]
        .into_iter()
        .filter_map(|(set, field)| set.then_some(field))
        .collect()
    }

    fn apply(&self, raw: &mut RawConfig) {
        if let Some(v) = &self.listen {
            raw.server.listen = Some(v.clone());
        }
        if let Some(v) = &self.admin_listen {
            raw.server.admin_listen = Some(v.clone());
        }
        if let Some(v) = &self.store {
            raw.store.backend = Some(v.clone());
        }
        if let Some(v) = &self.state_dir {
            raw.server.state_dir = Some(v.clone());
        }
        if let Some(v) = &self.upstream {
            raw.dataset_mut(validated::DEFAULT_DATASET).url = Some(v.clone());
        }
        if let Some(v) = &self.log_format {
            raw.server.log_format = Some(v.clone());
        }
        if let Some(v) = &self.universe {
            raw.dataset_mut(validated::DEFAULT_DATASET).universe = Some(v.clone());
        }
    }
}

/// Reads and parses a TOML file (stage one).
pub fn read_file(path: &Path) -> Result<RawConfig, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    RawConfig::from_toml(&text, &shown)
}

/// Loads the full configuration: defaults < file < env < flags.
/// `env` looks up environment variables (pass [`process_env`] outside tests).
pub fn load(
    overrides: &CliOverrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ServeConfig, ConfigError> {
    let path = overrides
        .config
        .clone()
        .or_else(|| env(env::CONFIG_PATH_VAR).map(PathBuf::from));
    let mut raw = match path {
        Some(p) => read_file(&p)?,
        None => RawConfig::default(),
    };
    env::apply_env(&mut raw, env)?;
    overrides.apply(&mut raw);
    raw.validate(env)
        .map_err(|e| env::name_env_source(e, env, &overrides.fields()))
}

/// Looks up a variable in the process environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn printed_config_validates_without_any_environment_variable() {
        let cfg = RawConfig::from_toml(EXAMPLE_TOML, "example.toml")
            .unwrap()
            .validate(&no_env)
            .unwrap();
        let quote = &cfg.datasets["quote"];
        assert!(
            cfg.builtin_upstream,
            "the printed file uses the upstream-sim"
        );
        assert!(quote.batch.is_some() && quote.sidecar.is_none());
        assert_eq!(cfg.store.backend, StoreBackend::Memory);
    }

    #[test]
    fn printed_config_holds_the_defaults() {
        let printed = RawConfig::from_toml(EXAMPLE_TOML, "example.toml")
            .unwrap()
            .validate(&no_env)
            .unwrap();
        let defaults = load(&CliOverrides::default(), &no_env).unwrap();
        assert_eq!(format!("{printed:?}"), format!("{defaults:?}"));
    }

    #[test]
    fn defaults_follow_the_issue() {
        let cfg = load(&CliOverrides::default(), &no_env).unwrap();
        assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(cfg.server.admin_listen.to_string(), "127.0.0.1:8003");
        assert_eq!(cfg.store.backend, StoreBackend::Memory);
        assert_eq!(cfg.server.state_dir, PathBuf::from("./prewarm-state"));
        assert!(cfg.builtin_upstream);
        assert!(cfg.datasets.contains_key("quote"));
    }

    #[test]
    fn range_errors_of_a_value_from_the_environment_name_the_variable() {
        let env = |n: &str| (n == "PREWARM_TTL_S").then(|| "-1".to_string());
        let err = load(&CliOverrides::default(), &env)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("environment variable PREWARM_TTL_S (datasets.quote.ttl_s): "),
            "{err}"
        );
        // A value a flag set is not blamed on the variable it replaced.
        let env = |n: &str| (n == "PREWARM_UPSTREAM").then(|| "http://u/{key}".to_string());
        let flags = CliOverrides {
            upstream: Some("not a url".into()),
            ..CliOverrides::default()
        };
        let err = load(&flags, &env).unwrap_err().to_string();
        assert!(err.starts_with("datasets.quote.url: "), "{err}");
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let env = |n: &str| match n {
            "PREWARM_LISTEN" => Some("127.0.0.1:9001".to_string()),
            "PREWARM_ADMIN_LISTEN" => Some("127.0.0.1:9002".to_string()),
            _ => None,
        };
        let flags = CliOverrides {
            listen: Some("127.0.0.1:9100".into()),
            upstream: Some("http://u/{key}".into()),
            ..CliOverrides::default()
        };
        let cfg = load(&flags, &env).unwrap();
        assert_eq!(cfg.server.listen.port(), 9100);
        assert_eq!(cfg.server.admin_listen.port(), 9002);
        assert!(!cfg.builtin_upstream);
    }
}
