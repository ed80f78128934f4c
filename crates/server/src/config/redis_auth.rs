//! The Redis credentials and CA of `[store]`, validated: password files
//! and CA files are read here, at start, and errors name the field and
//! the file (never the password).

use std::path::Path;

use super::check::invalid;
use super::error::ConfigError;
use super::raw::RawStore;
use crate::store::{RedisAuth, Secret};

/// Validates `store.redis_username`, `store.redis_password` /
/// `store.redis_password_file` (exclusive; the file's first line, without
/// its line end, is the password) and `store.redis_ca_file` (PEM).
pub(super) fn validate_redis_auth(s: &RawStore) -> Result<RedisAuth, ConfigError> {
    let username = match s.redis_username.as_deref() {
        Some("") => return Err(invalid("store.redis_username", "must not be empty")),
        other => other.map(str::to_string),
    };
    let password = match (&s.redis_password, &s.redis_password_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "store.redis_password_file",
                "give store.redis_password or store.redis_password_file, not both",
            ));
        }
        (Some(p), None) => Some(p.clone()),
        (None, Some(path)) => Some(read_password("store.redis_password_file", path)?),
        (None, None) => None,
    };
    let ca_pem = match &s.redis_ca_file {
        None => None,
        Some(path) => Some(read_ca("store.redis_ca_file", path)?),
    };
    Ok(RedisAuth {
        username,
        password,
        ca_pem,
    })
}

fn read_password(field: &str, path: &Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| invalid(field, format!("{}: {e}", path.display())))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(invalid(
            field,
            format!("{}: the first line is empty", path.display()),
        ));
    }
    Ok(Secret::new(line))
}

fn read_ca(field: &str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    let pem =
        std::fs::read(path).map_err(|e| invalid(field, format!("{}: {e}", path.display())))?;
    if !pem
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        return Err(invalid(
            field,
            format!("{}: no PEM certificate in it", path.display()),
        ));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawStore {
        toml::from_str(text).expect("valid TOML")
    }

    #[test]
    fn a_password_file_gives_its_first_line_and_errors_name_the_field() {
        let dir = std::env::temp_dir().join(format!("prewarm-redis-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pw");
        std::fs::write(&file, "from-file\n").unwrap();
        let text = format!("redis_password_file = {:?}", file.display().to_string());
        let auth = validate_redis_auth(&raw(&text)).unwrap();
        assert_eq!(
            auth.password.as_ref().map(Secret::expose),
            Some("from-file")
        );
        let both = format!("{text}\nredis_password = \"x\"");
        let err = validate_redis_auth(&raw(&both)).unwrap_err().to_string();
        assert!(err.contains("store.redis_password_file"), "{err}");
        let missing = validate_redis_auth(&raw("redis_ca_file = \"/nonexistent/ca.pem\""))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("store.redis_ca_file") && missing.contains("/nonexistent/ca.pem"));
        std::fs::write(&file, "not a cert").unwrap();
        let ca = format!("redis_ca_file = {:?}", file.display().to_string());
        let err = validate_redis_auth(&raw(&ca)).unwrap_err().to_string();
        assert!(err.contains("no PEM certificate"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn debug_of_the_raw_store_hides_the_password() {
        let r = raw("redis_password = \"hunter2\"");
        assert!(!format!("{r:?}").contains("hunter2"));
        let auth = validate_redis_auth(&r).unwrap();
        assert!(!format!("{auth:?}").contains("hunter2"));
    }
}
