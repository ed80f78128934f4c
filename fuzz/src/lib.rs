//! What the fuzz targets share: the daemon configuration they check keys
//! and access bodies against, validated by the daemon's own config code.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use prewarm_server::config::{DatasetConfig, RawConfig};

/// The value of `${API_KEY}` in [`CONFIG_TOML`].
pub const API_KEY: &str = "s3cr3t";

/// Two datasets: `quote` with the default key pattern, a query secret and
/// a batch endpoint; `any`, whose pattern accepts every string (so only
/// the dot-segment rule refuses keys).
pub const CONFIG_TOML: &str = r#"
[datasets.quote]
url = "https://up.invalid/v2/{key}/last?k=${API_KEY}"
batch_url = "https://up.invalid/v2/quotes?symbols={keys}&k=${API_KEY}"

[datasets.any]
url = "https://up.invalid/any/{key}"
batch_url = "https://up.invalid/any?symbols={keys}"
key_pattern = "(?s).*"
"#;

static DATASETS: LazyLock<BTreeMap<String, DatasetConfig>> = LazyLock::new(|| {
    let env = |name: &str| (name == "API_KEY").then(|| API_KEY.to_string());
    RawConfig::from_toml(CONFIG_TOML, "fuzz.toml")
        .and_then(|raw| raw.validate(&env))
        .expect("the fuzz config is valid")
        .datasets
});

/// The datasets of [`CONFIG_TOML`], by name.
pub fn datasets() -> &'static BTreeMap<String, DatasetConfig> {
    &DATASETS
}

/// The dataset called `name` (`quote` or `any`).
pub fn dataset(name: &str) -> Option<&'static DatasetConfig> {
    DATASETS.get(name)
}
