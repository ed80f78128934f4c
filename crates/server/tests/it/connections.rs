//! Connections on both listeners, over real sockets: slow-header clients
//! are closed at the header-read timeout, idle kept-alive connections at
//! the keep-alive timeout, and past `max_connections` a new connection
//! waits until one closes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{TestCfg, sim};

/// Far more than any timeout set here: a bound, not a measurement.
const GENEROUS: Duration = Duration::from_secs(15);

/// Reads until the peer closes; true when it closed (EOF or reset) within
/// [`GENEROUS`], discarding what it sent.
async fn closed_by_server(s: &mut TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    let ended = tokio::time::timeout(GENEROUS, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    });
    ended.await.is_ok()
}

/// Reads one response head; its status line.
async fn status_line(s: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await.expect("read");
        assert!(n > 0, "closed before a response: {got:?}");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    text.lines().next().unwrap_or_default().to_string()
}

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nhost: test\r\n\r\n")
}

#[tokio::test]
async fn slow_headers_and_idle_keep_alive_connections_are_closed_on_both_listeners() {
    let upstream = sim(|_| {}).await;
    let mut cfg = TestCfg::new(upstream.addr());
    cfg.server_extra = "header_read_timeout_s = 1\nkeep_alive_idle_s = 1\n".into();
    let d = cfg.start().await;
    for addr in [d.proxy_addr, d.admin_addr] {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HT").await.unwrap();
        assert!(closed_by_server(&mut s).await, "slow header on {addr}");
        // A silent client too.
        let mut s = TcpStream::connect(addr).await.unwrap();
        assert!(closed_by_server(&mut s).await, "silent client on {addr}");
    }
    d.shutdown().await.unwrap();

    // Idle after a response: closed at the keep-alive timeout, which is
    // not the (long) header timeout.
    cfg.server_extra = "header_read_timeout_s = 300\nkeep_alive_idle_s = 1\n".into();
    let d = cfg.start().await;
    let mut s = TcpStream::connect(d.admin_addr).await.unwrap();
    s.write_all(request("/healthz").as_bytes()).await.unwrap();
    assert!(status_line(&mut s).await.contains("200"));
    assert!(closed_by_server(&mut s).await, "idle keep-alive closed");
    // A kept-alive connection serves several requests while it is used.
    let mut s = TcpStream::connect(d.proxy_addr).await.unwrap();
    for _ in 0..3 {
        s.write_all(request("/v1/quote/AAPL").as_bytes())
            .await
            .unwrap();
        assert!(status_line(&mut s).await.contains("200"));
    }
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn past_max_connections_a_connection_waits_until_stalled_ones_time_out() {
    let upstream = sim(|_| {}).await;
    let mut cfg = TestCfg::new(upstream.addr());
    cfg.server_extra = "header_read_timeout_s = 3\nmax_connections = 2\n".into();
    let d = cfg.start().await;
    let mut stalled = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(d.proxy_addr).await.unwrap();
        s.write_all(b"GET /v1/quo").await.unwrap();
        stalled.push(s);
    }
    // The third connects (the kernel queues it) but is not served while
    // both permits are held.
    let mut third = TcpStream::connect(d.proxy_addr).await.unwrap();
    third
        .write_all(request("/v1/quote/AAPL").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let early = tokio::time::timeout(Duration::from_millis(500), third.read(&mut buf)).await;
    assert!(early.is_err(), "served past the cap: {early:?}");
    // The admin listener has its own cap: it answers meanwhile.
    let r = reqwest::get(format!("http://{}/healthz", d.admin_addr))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for s in &mut stalled {
        assert!(closed_by_server(s).await, "stalled connection closed");
    }
    let line = tokio::time::timeout(GENEROUS, status_line(&mut third))
        .await
        .expect("served once a permit freed");
    assert!(line.contains("200"), "{line}");
    d.shutdown().await.unwrap();
}
