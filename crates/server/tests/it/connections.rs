//! Connections on both listeners, over real sockets: slow-header clients
//! are closed at the header-read timeout, idle kept-alive connections at
//! the keep-alive timeout, and past `max_connections` a new connection
//! waits until one closes; a trickled request body gets 408 at the
//! body-read timeout, and a client that never reads its answers is closed
//! at the write timeout.

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

#[tokio::test]
async fn a_trickled_request_body_is_cut_off_at_the_body_read_timeout_with_408() {
    let upstream = sim(|_| {}).await;
    let mut cfg = TestCfg::new(upstream.addr());
    cfg.server_extra = "body_read_timeout_s = 1\nheader_read_timeout_s = 300\n".into();
    let d = cfg.start().await;
    let s = TcpStream::connect(d.proxy_addr).await.unwrap();
    let (mut rd, mut wr) = s.into_split();
    let head = format!(
        "POST /v1/access HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: 4096\r\n\r\n",
        crate::support::ACCESS_TOKEN
    );
    wr.write_all(head.as_bytes()).await.unwrap();
    // A byte every 100 ms: each read makes progress, the whole body never
    // comes. The writer stops when the server closes.
    let trickle = tokio::spawn(async move {
        for _ in 0..4096 {
            if wr.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut got = Vec::new();
    let read_all = tokio::time::timeout(GENEROUS, rd.read_to_end(&mut got)).await;
    trickle.abort();
    assert!(read_all.is_ok(), "the connection was not closed");
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("request_timeout"), "{text}");
    assert!(
        text.to_ascii_lowercase().contains("connection: close"),
        "{text}"
    );
    // A complete body in time is served as before.
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/access", d.proxy_addr))
        .bearer_auth(crate::support::ACCESS_TOKEN)
        .json(&serde_json::json!([{"dataset": "quote", "key": "AAPL"}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    d.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_that_never_reads_its_responses_is_closed_at_the_write_timeout() {
    let upstream = sim(|_| {}).await;
    let mut cfg = TestCfg::new(upstream.addr());
    // One connection per listener, and read deadlines far past the test:
    // only the write timeout can free the permit.
    cfg.server_extra = "write_timeout_s = 1\nmax_connections = 1\n\
                        header_read_timeout_s = 300\nkeep_alive_idle_s = 300\n"
        .into();
    let d = cfg.start().await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut greedy = socket.connect(d.admin_addr).await.unwrap();
    // 400 requests for the 30 kB API document, pipelined: 12 MB of
    // answers, far more than the socket buffers hold; never read.
    let burst = request("/openapi.json").repeat(400);
    greedy.write_all(burst.as_bytes()).await.unwrap();
    // The next client waits for the one permit until the write stalls out.
    let mut next = TcpStream::connect(d.admin_addr).await.unwrap();
    next.write_all(request("/healthz").as_bytes())
        .await
        .unwrap();
    let line = tokio::time::timeout(GENEROUS, status_line(&mut next))
        .await
        .expect("served once the stalled writer was closed");
    assert!(line.contains("200"), "{line}");
    assert!(
        closed_by_server(&mut greedy).await,
        "the stalled connection is closed"
    );
    d.shutdown().await.unwrap();
}
