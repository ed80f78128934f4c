//! The table of environment variables: one per config field a deployment
//! may need to set without a file (`prewarm serve --help` prints it).
//!
//! Names: `WARMING_*` for `[warming]` and the memory cap, `PREWARM_*` for
//! the rest; a `[datasets.quote]` field sets the default dataset only.

use super::EnvVar;

const fn var(name: &'static str, field: &'static str, doc: &'static str) -> EnvVar {
    EnvVar { name, field, doc }
}

/// Every variable that overrides a config field.
#[rustfmt::skip]
pub const ENV_VARS: &[EnvVar] = &[
    // [warming]: the driver's and the engine's settings.
    var("WARMING_ENABLED", "warming.enabled", "turn warming on or off (true/false)"),
    var("WARMING_POPULAR_LIMIT", "warming.popular_limit", "popular keys kept warm"),
    var("WARMING_RATE_LIMIT", "warming.rate_limit_per_min", "warming fetches per minute"),
    var("WARMING_BURST", "warming.burst", "warming token-bucket capacity, fetches"),
    var("WARMING_STRATEGIES", "warming.strategies", "strategies allowed to warm (all, none, or a comma list)"),
    var("WARMING_MAX_COST_RATIO", "warming.max_cost_ratio", "API calls at most this multiple of no warming's"),
    var("WARMING_REFRESH_FRACTION", "warming.refresh_fraction", "refresh-ahead from this share of the TTL"),
    var("WARMING_POPULAR_INTERVAL_S", "warming.popular_interval_s", "popular list recomputed every, seconds"),
    var("WARMING_MAX_CONCURRENT", "warming.max_concurrent", "warming fetches in flight"),
    var("WARMING_OUTSIDE_SESSIONS", "warming.outside_sessions", "warming while the market is closed: run, reduce or pause"),
    var("WARMING_OUTSIDE_RATE_FACTOR", "warming.outside_rate_factor", "share of the rate kept under reduce"),
    var("WARMING_PRE_MARKET_AT", "warming.pre_market_at", "pre-market cycle, HH:MM America/New_York"),
    var("WARMING_PRE_MARKET_LIMIT", "warming.pre_market_limit", "keys per dataset per pre-market cycle"),
    var("WARMING_PRE_MARKET_LOOK_AHEAD_S", "warming.pre_market_look_ahead_s", "pre-market look-ahead, seconds"),
    var("WARMING_SNAPSHOT_INTERVAL_S", "warming.snapshot_interval_s", "seconds between snapshots of learned state"),
    var("WARMING_PREDICTIVE_CONFIDENCE_THRESHOLD", "warming.strategy.predictive_confidence_threshold", "lowest P(next | current) followed"),
    var("WARMING_PREDICTIVE_LIMIT", "warming.strategy.predictive_limit", "predictions followed per access"),
    var("WARMING_TRENDING_INTERVAL_S", "warming.strategy.trending_interval_s", "seconds between trending scans"),
    var("WARMING_TRENDING_LIMIT", "warming.strategy.trending_limit", "trending keys per scan"),
    var("WARMING_SECTOR_INTERVAL_S", "warming.strategy.sector_interval_s", "seconds between sector scans"),
    var("WARMING_SECTOR_MIN_LIFT", "warming.strategy.sector_min_lift", "lift that marks a group rotating in"),
    var("WARMING_SECTOR_MEMBERS", "warming.strategy.sector_members", "members of a rotating group per scan"),
    var("WARMING_STARTUP", "warming.startup", "start-up warming after a restore: before_ready, after_ready or off"),
    var("WARMING_STARTUP_DEADLINE_S", "warming.startup_deadline_s", "longest start-up cycle, seconds"),
    var("WARMING_STARTUP_BURST", "warming.startup_burst", "fetches the start-up cycle may spend beside the bucket"),
    var("WARMING_MEMORY_LIMIT_MB", "store.memory_limit_mb", "memory store cap, MiB"),
    // [server]
    var("PREWARM_LISTEN", "server.listen", "proxy listen address"),
    var("PREWARM_ADMIN_LISTEN", "server.admin_listen", "admin listen address"),
    var("PREWARM_STATE_DIR", "server.state_dir", "directory for learned state"),
    var("PREWARM_REQUEST_TIMEOUT_S", "server.request_timeout_s", "client wait, seconds"),
    var("PREWARM_ACCESS_QUEUE_CAPACITY", "server.access_queue_capacity", "access events queued for the engine"),
    var("PREWARM_FETCH_QUEUE_CAPACITY", "server.fetch_queue_capacity", "fetch events queued for the engine"),
    var("PREWARM_MAX_BATCH_KEYS", "server.max_batch_keys", "most keys in one batch read"),
    var("PREWARM_METRICS_UPKEEP_INTERVAL_S", "server.metrics_upkeep_interval_s", "metrics upkeep every, seconds"),
    var("PREWARM_LOG_FORMAT", "server.log_format", "log lines on stderr: text or json"),
    var("PREWARM_ACCESS_TOKEN", "server.access_token", "bearer token of POST /v1/access (the route is disabled without it)"),
    var("PREWARM_ACCESS_RATE_LIMIT_PER_MIN", "server.access_rate_limit_per_min", "POST /v1/access items per minute"),
    var("PREWARM_HEADER_READ_TIMEOUT_S", "server.header_read_timeout_s", "a request head must arrive within, seconds"),
    var("PREWARM_BODY_READ_TIMEOUT_S", "server.body_read_timeout_s", "a request body must arrive within, seconds"),
    var("PREWARM_WRITE_TIMEOUT_S", "server.write_timeout_s", "longest a response write may stall, seconds"),
    var("PREWARM_KEEP_ALIVE_IDLE_S", "server.keep_alive_idle_s", "idle kept-alive connections closed after, seconds"),
    var("PREWARM_MAX_CONNECTIONS", "server.max_connections", "connections open at once per listener"),
    // [store]
    var("PREWARM_STORE", "store.backend", "memory or redis://HOST:PORT"),
    var("PREWARM_STALE_GRACE_S", "store.stale_grace_s", "stale retention, seconds"),
    var("PREWARM_STORE_TIMEOUT_MS", "store.timeout_ms", "Redis connect and command timeout, ms"),
    var("PREWARM_STORE_BACKOFF_BASE_MS", "store.backoff_base_ms", "Redis skipped after a failure, ms"),
    var("PREWARM_STORE_BACKOFF_MAX_MS", "store.backoff_max_ms", "longest such skip, ms"),
    var("PREWARM_REDIS_USERNAME", "store.redis_username", "Redis ACL user"),
    var("PREWARM_REDIS_PASSWORD", "store.redis_password", "Redis password (never shown)"),
    var("PREWARM_REDIS_PASSWORD_FILE", "store.redis_password_file", "file whose first line is the Redis password"),
    var("PREWARM_REDIS_CA_FILE", "store.redis_ca_file", "PEM CA file for a rediss:// server"),
    // [upstream]
    var("PREWARM_UPSTREAM_TIMEOUT_S", "upstream.timeout_s", "one attempt, seconds"),
    var("PREWARM_MAX_CONCURRENT", "upstream.max_concurrent", "upstream calls in flight"),
    var("PREWARM_MAX_RETRIES", "upstream.max_retries", "retries after 5xx/timeout"),
    var("PREWARM_UPSTREAM_RATE_LIMIT", "upstream.rate_limit_per_min", "the upstream plan's calls per minute, demand and warming together (unset: no quota)"),
    var("PREWARM_UPSTREAM_DEMAND_RESERVE", "upstream.demand_reserve_per_min", "calls per minute of the upstream quota warming leaves to demand"),
    var("PREWARM_UPSTREAM_QUOTA_QUEUE_S", "upstream.quota_queue_s", "longest a demand fetch queues for the upstream quota before 503, seconds"),
    var("PREWARM_UPSTREAM_BACKOFF_BASE_MS", "upstream.backoff_base_ms", "first retry back-off, ms"),
    var("PREWARM_UPSTREAM_BACKOFF_MAX_MS", "upstream.backoff_max_ms", "largest retry back-off, ms"),
    var("PREWARM_RETRY_AFTER_MAX_S", "upstream.retry_after_max_s", "longest Retry-After honoured, seconds"),
    var("PREWARM_BREAKER_FAILURES", "upstream.breaker_failures", "failures in a row that open a host's breaker"),
    var("PREWARM_BREAKER_OPEN_S", "upstream.breaker_open_s", "open time before one probe, seconds"),
    var("PREWARM_BREAKER_WINDOW_CALLS", "upstream.breaker_window_calls", "attempts the failure rate is measured over"),
    var("PREWARM_BREAKER_MIN_CALLS", "upstream.breaker_min_calls", "fewest attempts before the rate counts"),
    var("PREWARM_BREAKER_FAILURE_RATIO", "upstream.breaker_failure_ratio", "failed share that opens the breaker"),
    var("PREWARM_FAILURE_BACKOFF_S", "upstream.failure_backoff_s", "a failed key left alone, seconds"),
    var("PREWARM_FAILURE_BACKOFF_MAX_S", "upstream.failure_backoff_max_s", "cap of that back-off, seconds"),
    var("PREWARM_WARM_BACKOFF_BASE_S", "upstream.warm_backoff_base_s", "first warming back-off, seconds"),
    var("PREWARM_WARM_BACKOFF_MAX_S", "upstream.warm_backoff_max_s", "longest warming back-off, seconds"),
    // [admin]
    var("PREWARM_ADMIN_TOKEN", "admin.token", "bearer token of the admin listener (POST routes disabled without it)"),
    var("PREWARM_ADMIN_PROTECT_READS", "admin.protect_reads", "admin GET routes need the token too (true/false)"),
    // [datasets.quote]
    var("PREWARM_UPSTREAM", "datasets.quote.url", "upstream URL template of quote"),
    var("PREWARM_UNIVERSE", "datasets.quote.universe", "universe file of quote (CSV key,group[,weight])"),
    var("PREWARM_TTL_S", "datasets.quote.ttl_s", "freshness of a quote entry, seconds"),
    var("PREWARM_KEY_PATTERN", "datasets.quote.key_pattern", "regex every quote key must match"),
    var("PREWARM_SERVE_STALE", "datasets.quote.serve_stale", "serve stale quotes when upstream fails (true/false)"),
    var("PREWARM_STALE_WHILE_REVALIDATE_S", "datasets.quote.stale_while_revalidate_s", "stale answered at once while refreshed, seconds"),
    var("PREWARM_NEGATIVE_TTL_S", "datasets.quote.negative_ttl_s", "how long an upstream 404 is cached, seconds (0: off)"),
    var("PREWARM_UPPERCASE_KEYS", "datasets.quote.uppercase_keys", "upper-case quote keys before validation (true/false)"),
    var("PREWARM_BATCH_URL", "datasets.quote.batch_url", "batch URL template of quote, with {keys}"),
    var("PREWARM_BATCH_MAX_KEYS", "datasets.quote.batch_max_keys", "most keys per upstream batch call"),
    var("PREWARM_BATCH_ITEMS_POINTER", "datasets.quote.batch_items_pointer", "JSON pointer to a batch answer's items"),
    var("PREWARM_BATCH_KEY_FIELD", "datasets.quote.batch_key_field", "field naming the key in batch items"),
    var("PREWARM_SIDECAR_REDIS", "datasets.quote.sidecar.redis", "write-through Redis of quote"),
    var("PREWARM_SIDECAR_KEY_TEMPLATE", "datasets.quote.sidecar.key_template", "its key template, with {key}"),
    var("PREWARM_SIDECAR_TTL_S", "datasets.quote.sidecar.ttl_s", "TTL of its keys, seconds"),
];
