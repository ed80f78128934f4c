//! A Redis that wants a password (`--requirepass`) or an ACL user: wrong
//! credentials fail with an error naming the redacted address, right ones
//! work, from the config, a password file or the environment.

use std::sync::Arc;

use prewarm_server::clock::{Clock, SystemClock};
use prewarm_server::config::RawConfig;
use prewarm_server::store::{Entry, RedisAuth, RedisStore, RedisTarget, Secret, Store};

use crate::support;

const PASSWORD: &str = "correct-horse-battery";

fn auth(user: Option<&str>, password: &str) -> RedisAuth {
    RedisAuth {
        username: user.map(str::to_string),
        password: Some(Secret::new(password)),
        ca_pem: None,
    }
}

async fn round_trip(store: &RedisStore, clock: &dyn Clock) {
    let e = Entry {
        body: bytes::Bytes::from_static(b"{}"),
        fetched_at_s: clock.now_s(),
        content_type: None,
        etag: None,
        negative: false,
    };
    store.put("quote", "AAPL", e.clone(), 10.0).await.unwrap();
    assert_eq!(store.get("quote", "AAPL").await.unwrap(), Some(e));
}

/// The `[store]` credentials of a config text, validated (files read).
fn store_auth(store_lines: &str, env: &dyn Fn(&str) -> Option<String>) -> RedisAuth {
    let text = format!("[store]\nbackend = \"redis://127.0.0.1:1\"\n{store_lines}\n");
    let mut raw = RawConfig::from_toml(&text, "test.toml").unwrap();
    prewarm_server::config::env::apply_env(&mut raw, env).expect("env applies");
    raw.validate(env).expect("validates").store.redis_auth
}

#[tokio::test]
async fn a_password_protected_redis_needs_the_right_password() {
    let Some(redis) = support::redis_with(&["--requirepass".into(), PASSWORD.into()], false) else {
        return;
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let url = redis.url();

    let wrong = RedisTarget::new(url.clone(), auth(None, "wrong-guess-123"));
    let err = RedisStore::connect_to(wrong, 60.0, clock.clone())
        .await
        .expect_err("a wrong password is refused")
        .to_string();
    assert!(err.contains(&format!("Redis at {url}")), "{err}");
    assert!(!err.contains("wrong-guess-123"), "{err}");
    assert!(
        err.to_uppercase().contains("WRONGPASS") || err.contains("auth"),
        "{err}"
    );

    // Without a password: refused at connect or at the first command.
    if let Ok(store) = RedisStore::connect(&url, 60.0, clock.clone()).await {
        assert!(store.get("quote", "AAPL").await.is_err(), "NOAUTH");
    }

    let right = RedisTarget::new(url.clone(), auth(None, PASSWORD));
    let store = RedisStore::connect_to(right, 60.0, clock.clone())
        .await
        .expect("the right password");
    round_trip(&store, clock.as_ref()).await;

    // In the URL, redacted in errors the same way.
    let in_url = format!("redis://:{PASSWORD}@127.0.0.1:{}", redis.port);
    let store = RedisStore::connect(&in_url, 60.0, clock.clone())
        .await
        .unwrap();
    round_trip(&store, clock.as_ref()).await;

    // From a file, and from the environment.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("redis-password");
    std::fs::write(&file, format!("{PASSWORD}\n")).unwrap();
    let line = format!("redis_password_file = {:?}", file.display().to_string());
    let from_file = store_auth(&line, &|_| None);
    let from_env = store_auth("", &|n| {
        (n == "PREWARM_REDIS_PASSWORD").then(|| PASSWORD.into())
    });
    for a in [from_file, from_env] {
        assert!(!format!("{a:?}").contains(PASSWORD));
        let store = RedisStore::connect_to(RedisTarget::new(url.clone(), a), 60.0, clock.clone())
            .await
            .expect("password from the config");
        round_trip(&store, clock.as_ref()).await;
    }
}

#[tokio::test]
async fn an_acl_user_logs_in_with_its_own_password() {
    let Some(redis) = support::redis() else {
        return;
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("ACL")
        .arg(
            &[
                "SETUSER",
                "prewarm",
                "on",
                ">user-pass-42",
                "~prewarm:*",
                "+@all",
            ][..],
        )
        .query_async(&mut conn)
        .await
        .unwrap();
    let wrong = RedisTarget::new(redis.url(), auth(Some("prewarm"), "nope-nope"));
    let err = RedisStore::connect_to(wrong, 60.0, clock.clone())
        .await
        .expect_err("wrong password of the user")
        .to_string();
    assert!(
        !err.contains("nope-nope") && err.contains("Redis at"),
        "{err}"
    );
    let right = RedisTarget::new(redis.url(), auth(Some("prewarm"), "user-pass-42"));
    let store = RedisStore::connect_to(right, 60.0, clock.clone())
        .await
        .unwrap();
    round_trip(&store, clock.as_ref()).await;
}
