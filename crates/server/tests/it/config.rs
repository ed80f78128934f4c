//! Config errors name the file, line or field at fault.

use std::io::Write;

use prewarm_server::config::{self, CliOverrides, ConfigError, ENV_VARS, RawConfig, StoreBackend};

fn validate(toml: &str) -> Result<prewarm_server::config::ServeConfig, ConfigError> {
    RawConfig::from_toml(toml, "prewarm.toml")?.validate(&|_| None)
}

fn err(toml: &str) -> String {
    validate(toml).unwrap_err().to_string()
}

#[test]
fn bad_values_name_their_field() {
    let cases = [
        (
            "[datasets.quote]\nttl_s = 0\n",
            "datasets.quote.ttl_s: must be a number of seconds from 0.001",
        ),
        (
            "[datasets.quote]\nttl_s = -5\n",
            "datasets.quote.ttl_s: must be a number of seconds from 0.001",
        ),
        (
            "[datasets.quote]\nkey_pattern = \"[A-\"\n",
            "datasets.quote.key_pattern:",
        ),
        ("[datasets.bars]\nttl_s = 5\n", "datasets.bars.url: missing"),
        (
            "[datasets.quote]\nurl = \"ftp://x/{key}\"\n",
            "datasets.quote.url: must start with http",
        ),
        (
            "[datasets.quote]\nurl = \"http://x/\"\n",
            "datasets.quote.url: must contain {key}",
        ),
        (
            "[datasets.quote]\nurl = \"http://x/{key}\"\nbatch_url = \"http://x/q\"\n",
            "datasets.quote.batch_url: must contain {keys}",
        ),
        (
            "[datasets.Quote]\nurl = \"http://x/{key}\"\n",
            "datasets.Quote:",
        ),
        ("[server]\nlisten = \"localhost\"\n", "server.listen:"),
        (
            "[server]\nrequest_timeout_s = 0\n",
            "server.request_timeout_s: must be a number of seconds from 0.001",
        ),
        ("[store]\nbackend = \"mongo\"\n", "store.backend:"),
        (
            "[store]\nmemory_limit_mb = 0\n",
            "store.memory_limit_mb: must be >= 1",
        ),
        (
            "[upstream]\nmax_concurrent = 0\n",
            "upstream.max_concurrent: must be >= 1",
        ),
        (
            "[upstream]\nbackoff_base_ms = 500\nbackoff_max_ms = 100\n",
            "upstream.backoff_max_ms:",
        ),
        (
            "[upstream]\nbreaker_failures = 0\n",
            "upstream.breaker_failures: must be >= 1",
        ),
        (
            "[upstream]\nbreaker_open_s = 0\n",
            "upstream.breaker_open_s: must be a number of seconds from 0.001",
        ),
        (
            "[upstream]\nretry_after_max_s = -1\n",
            "upstream.retry_after_max_s: must be a number of seconds from 0.001",
        ),
        (
            "[upstream]\nfailure_backoff_s = 5\nfailure_backoff_max_s = 1\n",
            "upstream.failure_backoff_max_s: must be >= upstream.failure_backoff_s",
        ),
        (
            "[upstream]\nwarm_backoff_base_s = 0\n",
            "upstream.warm_backoff_base_s: must be a number of seconds from 0.001",
        ),
        (
            "[store]\nstale_grace_s = 10\n[datasets.quote]\nstale_while_revalidate_s = 20\n",
            "datasets.quote.stale_while_revalidate_s: must be <= store.stale_grace_s",
        ),
        (
            "[warming]\nrate_limit_per_min = -1\n",
            "warming.rate_limit_per_min: must be >= 0",
        ),
        (
            "[datasets.quote]\nurl = \"http://x/{key}\"\n[datasets.quote.sidecar]\nredis = \"redis://h:1\"\nkey_template = \"q\"\n",
            "datasets.quote.sidecar.key_template: must contain {key}",
        ),
    ];
    for (toml, expected) in cases {
        let e = err(toml);
        assert!(
            e.starts_with(expected),
            "for {toml:?}: got {e:?}, expected {expected:?}"
        );
    }
}

#[test]
fn unknown_and_mistyped_fields_name_file_line_and_field() {
    let e = err("[server]\nlisten = \"127.0.0.1:1\"\n\n[datasets.quote]\nttl = 5\n");
    assert!(e.starts_with("prewarm.toml:"), "{e}");
    assert!(e.contains("line 5") && e.contains("ttl"), "{e}");
    let e = err("[datasets.quote]\nttl_s = \"five\"\n");
    assert!(e.contains("line 2") && e.contains("ttl_s"), "{e}");
}

#[test]
fn missing_env_var_in_a_template_is_named() {
    let e = err("[datasets.quote]\nurl = \"https://api.example.com/v2/{key}?apiKey=${API_KEY}\"\n");
    assert_eq!(
        e,
        "datasets.quote.url: environment variable API_KEY is not set"
    );
}

#[test]
fn file_env_and_flags_layer_in_order() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(
        file,
        "[server]\nlisten = \"127.0.0.1:7001\"\nadmin_listen = \"127.0.0.1:7002\"\n[store]\nmemory_limit_mb = 50\n[warming]\npopular_limit = 10\n[datasets.quote]\nurl = \"https://api.example.com/{{key}}?k=${{API_KEY}}\"\nttl_s = 15"
    )
    .unwrap();
    let env = |name: &str| match name {
        "WARMING_POPULAR_LIMIT" => Some("25".to_string()),
        "WARMING_MEMORY_LIMIT_MB" => Some("64".to_string()),
        "WARMING_ENABLED" => Some("false".to_string()),
        "WARMING_RATE_LIMIT" => Some("30".to_string()),
        "PREWARM_ADMIN_LISTEN" => Some("127.0.0.1:7003".to_string()),
        "API_KEY" => Some("k-123".to_string()),
        _ => None,
    };
    let flags = CliOverrides {
        config: Some(file.path().to_path_buf()),
        store: Some("redis://127.0.0.1:6390".into()),
        ..CliOverrides::default()
    };
    let cfg = config::load(&flags, &env).unwrap();
    assert_eq!(cfg.server.listen.port(), 7001, "file");
    assert_eq!(cfg.server.admin_listen.port(), 7003, "env beats file");
    assert_eq!(cfg.store.memory_limit_mb, 64);
    assert_eq!(cfg.warming.engine.popular_limit, 25);
    assert!(!cfg.warming.driver.enabled);
    assert_eq!(cfg.warming.engine.rate_limit_per_min, 30.0);
    assert_eq!(
        cfg.store.backend,
        StoreBackend::Redis {
            url: "redis://127.0.0.1:6390".into()
        }
    );
    assert_eq!(cfg.datasets["quote"].ttl_s, 15.0);
    assert_eq!(
        cfg.datasets["quote"].url.render_key("BRK.B"),
        "https://api.example.com/BRK.B?k=k-123"
    );
    assert!(!cfg.builtin_upstream);
}

#[test]
fn missing_config_file_is_named() {
    let flags = CliOverrides {
        config: Some("/nonexistent/prewarm.toml".into()),
        ..CliOverrides::default()
    };
    let e = config::load(&flags, &|_| None).unwrap_err().to_string();
    assert!(e.starts_with("/nonexistent/prewarm.toml:"), "{e}");
}

#[test]
fn bad_env_value_names_variable_and_field() {
    let e = config::load(&CliOverrides::default(), &|n| {
        (n == "WARMING_ENABLED").then(|| "maybe".into())
    })
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("WARMING_ENABLED") && e.contains("warming.enabled"),
        "{e}"
    );
}

#[test]
fn env_table_is_documented_and_unique() {
    let mut names: Vec<&str> = ENV_VARS.iter().map(|v| v.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), ENV_VARS.len());
    for v in ENV_VARS {
        assert!(!v.doc.is_empty() && v.field.contains('.'), "{v:?}");
    }
    for seed in [
        "WARMING_ENABLED",
        "WARMING_POPULAR_LIMIT",
        "WARMING_RATE_LIMIT",
        "WARMING_MEMORY_LIMIT_MB",
    ] {
        assert!(names.contains(&seed), "{seed}");
    }
}

/// `deploy/prewarm.example.toml`, the commented file operators start from.
const DEPLOY_EXAMPLE: &str = include_str!("../../../../deploy/prewarm.example.toml");

/// `table.field` names set (uncommented) in a TOML text.
fn field_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut table = String::new();
    let mut names = std::collections::BTreeSet::new();
    for line in text.lines().map(str::trim) {
        if let Some(t) = line.strip_prefix('[') {
            table = t.split(']').next().unwrap_or("").to_string();
        } else if !line.starts_with('#')
            && let Some((name, _)) = line.split_once('=')
        {
            names.insert(format!("{table}.{}", name.trim()));
        }
    }
    names
}

#[test]
fn every_field_of_the_builtin_example_has_an_environment_variable() {
    let fields: std::collections::BTreeSet<&str> = ENV_VARS.iter().map(|v| v.field).collect();
    let missing: Vec<_> = field_names(prewarm_server::config::EXAMPLE_TOML)
        .into_iter()
        .filter(|f| !fields.contains(f.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "no environment variable for {missing:?}"
    );
    // Settings the example leaves commented out (they have no fixed
    // default) have one too.
    for field in [
        "server.access_token",
        "server.max_connections",
        "warming.burst",
        "warming.max_cost_ratio",
        "warming.refresh_fraction",
        "warming.popular_interval_s",
        "warming.strategy.sector_members",
        "admin.token",
        "admin.protect_reads",
    ] {
        assert!(
            fields.contains(field),
            "no environment variable for {field}"
        );
    }
}

#[test]
fn deploy_example_parses_and_sets_every_field_of_the_builtin_example() {
    let no_env = |_: &str| None;
    let cfg = prewarm_server::config::RawConfig::from_toml(DEPLOY_EXAMPLE, "prewarm.example.toml")
        .expect("deploy example parses")
        .validate(&no_env)
        .expect("deploy example validates without any environment variable");
    // The values it sets are the defaults.
    let defaults = prewarm_server::config::load(&Default::default(), &no_env).unwrap();
    assert_eq!(format!("{cfg:?}"), format!("{defaults:?}"));
    let deploy = field_names(DEPLOY_EXAMPLE);
    let builtin = field_names(prewarm_server::config::EXAMPLE_TOML);
    let missing: Vec<_> = builtin.difference(&deploy).collect();
    assert!(missing.is_empty(), "deploy example lacks {missing:?}");
    // Every set field is explained by a comment line just above it.
    let lines: Vec<&str> = DEPLOY_EXAMPLE.lines().map(str::trim).collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with('#') && !line.starts_with('[') && line.contains('=') {
            assert!(
                i > 0 && lines[i - 1].starts_with('#'),
                "field without a comment: {line}"
            );
        }
    }
}

/// Regression: a commented example line of the deploy file had a
/// doubled quote, so uncommenting it stopped the daemon at start.
#[test]
fn every_commented_example_setting_of_the_deploy_file_parses_once_uncommented() {
    let mut checked = 0;
    for (n, line) in DEPLOY_EXAMPLE.lines().enumerate() {
        let Some(setting) = line.strip_prefix("# ").filter(|l| is_setting(l)) else {
            continue;
        };
        let parsed: Result<toml::Table, _> = toml::from_str(setting);
        assert!(
            parsed.is_ok(),
            "prewarm.example.toml line {}: {setting}: {:?}",
            n + 1,
            parsed.err()
        );
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} commented settings found");
}

/// Whether a commented line is a setting (`name = value`), not prose.
fn is_setting(l: &str) -> bool {
    l.split_once(" = ").is_some_and(|(name, _)| {
        !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    })
}

#[test]
fn universe_file_is_read_at_validation_and_bad_lines_name_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    std::fs::write(&good, "key,sector\nAAPL,Tech\nMSFT,Tech\nAAPL,SP500\n").unwrap();
    let toml = |p: &std::path::Path| {
        format!(
            "[datasets.quote]\nuniverse = {:?}\n",
            p.display().to_string()
        )
    };
    let cfg = validate(&toml(&good)).unwrap();
    let u = cfg.datasets["quote"]
        .universe
        .as_ref()
        .expect("universe read");
    assert_eq!(u.path, good);
    assert_eq!(u.memberships.len(), 3);
    assert_eq!(u.memberships[2].group, "SP500");

    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "key,sector\nAAPL,Tech\nXOM,Energy,lots\n").unwrap();
    assert_eq!(
        err(&toml(&bad)),
        format!(
            "datasets.quote.universe: universe {}, line 3, field weight: `lots` is not a non-negative number",
            bad.display()
        )
    );
    let missing = dir.path().join("missing.csv");
    let e = err(&toml(&missing));
    assert!(
        e.starts_with(&format!(
            "datasets.quote.universe: universe {}:",
            missing.display()
        )),
        "{e}"
    );
    assert_eq!(
        err("[datasets.quote]\nuniverse = \"\"\n"),
        "datasets.quote.universe: must name a file"
    );

    // The flag and the variable set the `quote` dataset's file.
    let flags = CliOverrides {
        universe: Some(good.clone()),
        ..CliOverrides::default()
    };
    let cfg = config::load(&flags, &|_| None).unwrap();
    assert_eq!(cfg.datasets["quote"].universe.as_ref().unwrap().path, good);
    let shown = bad.display().to_string();
    let e = config::load(&CliOverrides::default(), &|n| {
        (n == "PREWARM_UNIVERSE").then(|| shown.clone())
    })
    .unwrap_err()
    .to_string();
    assert!(e.contains("line 3, field weight"), "{e}");
}

#[test]
fn connection_settings_default_and_bad_values_name_their_field() {
    let cfg = validate("").unwrap();
    let c = cfg.server.connections;
    assert_eq!(c.header_read_timeout, std::time::Duration::from_secs(10));
    assert_eq!(c.keep_alive_idle, std::time::Duration::from_secs(60));
    assert_eq!(
        c.max_connections,
        prewarm_server::listener::default_max_connections()
    );
    assert_eq!(cfg.server.access_rate_limit_per_min, 60_000.0);
    let cfg = validate("[server]\nmax_connections = 7\nheader_read_timeout_s = 0.5\n").unwrap();
    assert_eq!(cfg.server.connections.max_connections, 7);
    assert_eq!(
        cfg.server.connections.header_read_timeout,
        std::time::Duration::from_millis(500)
    );
    for (toml, want) in [
        (
            "[server]\nmax_connections = 0\n",
            "server.max_connections: must be >= 1",
        ),
        (
            "[server]\nheader_read_timeout_s = 0\n",
            "server.header_read_timeout_s: must be a number of seconds from 0.001 to 31536000 (a year)",
        ),
        (
            "[server]\nkeep_alive_idle_s = -1\n",
            "server.keep_alive_idle_s: must be a number of seconds from 0.001 to 31536000 (a year)",
        ),
        (
            "[server]\nkeep_alive_idle_s = 1e300\n",
            "server.keep_alive_idle_s: must be a number of seconds from 0.001 to 31536000 (a year)",
        ),
        (
            "[server]\naccess_rate_limit_per_min = 0\n",
            "server.access_rate_limit_per_min: must be > 0",
        ),
    ] {
        assert_eq!(err(toml), want, "{toml}");
    }
}

/// Every duration setting, as `(table, key, field, may_be_zero)`; the
/// table's other lines make the rest of the config valid.
const DURATION_FIELDS: &[(&str, &str, &str, bool)] = &[
    (
        "[server]",
        "request_timeout_s",
        "server.request_timeout_s",
        false,
    ),
    (
        "[server]",
        "metrics_upkeep_interval_s",
        "server.metrics_upkeep_interval_s",
        false,
    ),
    (
        "[server]",
        "header_read_timeout_s",
        "server.header_read_timeout_s",
        false,
    ),
    (
        "[server]",
        "body_read_timeout_s",
        "server.body_read_timeout_s",
        false,
    ),
    (
        "[server]",
        "write_timeout_s",
        "server.write_timeout_s",
        false,
    ),
    (
        "[server]",
        "keep_alive_idle_s",
        "server.keep_alive_idle_s",
        false,
    ),
    ("[store]", "stale_grace_s", "store.stale_grace_s", true),
    ("[upstream]", "timeout_s", "upstream.timeout_s", false),
    (
        "[upstream]",
        "retry_after_max_s",
        "upstream.retry_after_max_s",
        false,
    ),
    (
        "[upstream]",
        "breaker_open_s",
        "upstream.breaker_open_s",
        false,
    ),
    (
        "[upstream]",
        "failure_backoff_s",
        "upstream.failure_backoff_s",
        true,
    ),
    (
        "[upstream]",
        "failure_backoff_max_s",
        "upstream.failure_backoff_max_s",
        true,
    ),
    (
        "[upstream]",
        "warm_backoff_base_s",
        "upstream.warm_backoff_base_s",
        false,
    ),
    (
        "[upstream]",
        "warm_backoff_max_s",
        "upstream.warm_backoff_max_s",
        true,
    ),
    (
        "[upstream]\nrate_limit_per_min = 60",
        "quota_queue_s",
        "upstream.quota_queue_s",
        false,
    ),
    ("[datasets.quote]", "ttl_s", "datasets.quote.ttl_s", false),
    (
        "[datasets.quote]",
        "negative_ttl_s",
        "datasets.quote.negative_ttl_s",
        true,
    ),
    (
        "[datasets.quote]",
        "stale_while_revalidate_s",
        "datasets.quote.stale_while_revalidate_s",
        true,
    ),
    (
        "[datasets.quote.ttl_by_session]",
        "regular_s",
        "datasets.quote.ttl_by_session.regular_s",
        false,
    ),
    (
        "[datasets.quote.sidecar]\nredis = \"redis://127.0.0.1:6379\"\nkey_template = \"q:{key}\"",
        "ttl_s",
        "datasets.quote.sidecar.ttl_s",
        false,
    ),
    (
        "[warming]",
        "snapshot_interval_s",
        "warming.snapshot_interval_s",
        false,
    ),
    (
        "[warming]",
        "pre_market_look_ahead_s",
        "warming.pre_market_look_ahead_s",
        false,
    ),
    (
        "[warming]",
        "startup_deadline_s",
        "warming.startup_deadline_s",
        false,
    ),
    (
        "[warming]",
        "popular_interval_s",
        "warming.popular_interval_s",
        false,
    ),
    (
        "[warming.strategy]",
        "trending_interval_s",
        "warming.strategy.trending_interval_s",
        false,
    ),
    (
        "[warming.strategy]",
        "sector_interval_s",
        "warming.strategy.sector_interval_s",
        false,
    ),
];

#[test]
fn out_of_range_durations_are_config_errors_naming_the_field_not_panics() {
    for &(table, key, field, may_be_zero) in DURATION_FIELDS {
        let fine = validate(&format!("{table}\n{key} = 5\n"));
        assert!(fine.is_ok(), "{field} = 5: {:?}", fine.err());
        for value in ["1e20", "1e-300", "nan", "inf", "-inf", "-1"] {
            if may_be_zero && value == "1e-300" {
                continue; // as good as 0, which such a field allows
            }
            let toml = format!("{table}\n{key} = {value}\n");
            let got = std::panic::catch_unwind(|| validate(&toml))
                .unwrap_or_else(|_| panic!("{field} = {value} panicked"));
            let e = got
                .err()
                .unwrap_or_else(|| panic!("{field} = {value} accepted"));
            assert!(e.to_string().contains(field), "{field} = {value}: {e}");
        }
    }
}

#[test]
fn intervals_below_their_floor_are_refused() {
    for (toml, field) in [
        (
            "[server]\nmetrics_upkeep_interval_s = 0.05\n",
            "server.metrics_upkeep_interval_s",
        ),
        (
            "[warming]\nsnapshot_interval_s = 0.5\n",
            "warming.snapshot_interval_s",
        ),
    ] {
        assert!(err(toml).contains(field), "{toml}");
    }
    for (toml, field) in [
        (
            "[store]\ntimeout_ms = 9223372036854775807\n",
            "store.timeout_ms",
        ),
        (
            "[store]\nbackoff_max_ms = 9223372036854775807\n",
            "store.backoff_max_ms",
        ),
        (
            "[upstream]\nbackoff_max_ms = 9223372036854775807\n",
            "upstream.backoff_max_ms",
        ),
    ] {
        assert!(err(toml).contains(field), "{toml}");
    }
}

#[test]
fn malformed_upstream_url_templates_are_refused_naming_the_field() {
    for url in [
        "http://[::1/{key}",
        "http://host name/{key}",
        "http://127.0.0.1:99999/{key}",
        "http://{key}/x",
    ] {
        let e = err(&format!("[datasets.quote]\nurl = \"{url}\"\n"));
        assert!(e.starts_with("datasets.quote.url: "), "{url}: {e}");
    }
    let e = err("[datasets.quote]\nurl = \"http://x/{key}\"\nbatch_url = \"http://{keys}/q\"\n");
    assert!(e.starts_with("datasets.quote.batch_url: "), "{e}");
}

#[test]
fn an_infinite_or_nan_setting_is_told_to_be_finite_not_out_of_range() {
    for v in ["inf", "-inf", "nan"] {
        for (toml, want) in [
            (
                format!("[server]\naccess_rate_limit_per_min = {v}\n"),
                "server.access_rate_limit_per_min: must be a finite number > 0",
            ),
            (
                format!("[warming]\nrate_limit_per_min = {v}\n"),
                "warming.rate_limit_per_min: must be a finite number >= 0",
            ),
            (
                format!("[upstream]\nbreaker_failure_ratio = {v}\n"),
                "upstream.breaker_failure_ratio: must be a finite number between 0 and 1",
            ),
            (
                format!("[server]\nrequest_timeout_s = {v}\n"),
                "server.request_timeout_s: must be a finite number of seconds from 0.001",
            ),
        ] {
            let e = err(&toml);
            assert!(e.contains(want), "{toml}: {e}");
        }
    }
}
