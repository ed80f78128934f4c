//! A dataset's universe file reaches its engine: after client accesses,
//! `GET /warming/patterns` ranks the file's groups.

use serde_json::Value;

use crate::support::{TestCfg, get, http, sim};

/// The group names `/warming/patterns` lists for `quote`.
async fn pattern_groups(admin: std::net::SocketAddr) -> Vec<String> {
    let r = get(
        &http(),
        format!("http://{admin}/warming/patterns?dataset=quote"),
    )
    .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("patterns JSON");
    let groups = body["datasets"][0]["groups"]
        .as_array()
        .expect("groups array");
    let mut names: Vec<String> = groups
        .iter()
        .map(|g| g["group"].as_str().expect("group name").to_string())
        .collect();
    names.sort();
    names
}

async fn run(universe: Option<&std::path::Path>) -> Vec<String> {
    let upstream = sim(|_| {}).await;
    let state = tempfile::tempdir().unwrap();
    let mut c = TestCfg::new(upstream.addr());
    c.state_dir = state.path().to_path_buf();
    if let Some(p) = universe {
        c.extra = format!("universe = {:?}\n", p.display().to_string());
    }
    let mut d = c.start().await;
    d.start_driver().expect("driver starts");
    let client = http();
    for _ in 0..3 {
        for key in ["AAPL", "MSFT", "XOM", "IBM"] {
            let r = get(&client, format!("http://{}/v1/quote/{key}", d.proxy_addr)).await;
            assert_eq!(r.status(), 200);
        }
    }
    d.driver().unwrap().sync().await.unwrap();
    let groups = pattern_groups(d.admin_addr).await;
    d.shutdown().await.unwrap();
    groups
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn universe_groups_show_in_patterns_after_accesses() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("universe.csv");
    std::fs::write(
        &file,
        "key,sector\nAAPL,Tech\nMSFT,Tech\nAAPL,SP500\nXOM,Energy\nCVX,Energy\n",
    )
    .unwrap();
    assert_eq!(run(Some(&file)).await, ["Energy", "SP500", "Tech"]);
    // Without the file the daemon knows no group.
    assert!(run(None).await.is_empty());
}
