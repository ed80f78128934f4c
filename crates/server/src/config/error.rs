//! [`ConfigError`]: every way a configuration can be wrong, each naming
//! where.

/// A configuration error, naming where it is.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has an unknown or mistyped field.
    #[error("{origin}: {message}")]
    Parse {
        /// File path.
        origin: String,
        /// Parser message (with line and column).
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted field, e.g. `datasets.quote.ttl_s`.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// An environment variable has a bad value.
    #[error("environment variable {var} ({field}): {message}")]
    Env {
        /// Variable name.
        var: String,
        /// The field it sets.
        field: String,
        /// What is wrong.
        message: String,
    },
}
