//! `/events` streams the log live as Server-Sent Events: ids are positions, a client that
//! disconnects and comes back with `Last-Event-ID` gets exactly the events it missed, and
//! filters by stream prefix and type apply.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{json, Value};

use crate::support::TestServer;

/// Reads SSE messages (`id`, JSON `data`) off a streaming response.
pub struct SseReader {
    body: std::pin::Pin<
        Box<dyn futures_util::Stream<Item = reqwest::Result<axum::body::Bytes>> + Send>,
    >,
    buf: String,
}

impl SseReader {
    pub fn new(r: reqwest::Response) -> SseReader {
        SseReader {
            body: Box::pin(r.bytes_stream()),
            buf: String::new(),
        }
    }

    /// The next message's (id, data), within 10 s.
    pub async fn next(&mut self) -> (u64, Value) {
        tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if let Some(end) = self.buf.find("\n\n") {
                    let block: String = self.buf.drain(..end + 2).collect();
                    let mut id = None;
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(v) = line.strip_prefix("id:") {
                            id = Some(v.trim().parse::<u64>().unwrap());
                        } else if let Some(v) = line.strip_prefix("data:") {
                            data.push_str(v.trim_start());
                        }
                    }
                    if let Some(id) = id {
                        return (id, serde_json::from_str(&data).unwrap());
                    }
                    continue; // a keep-alive comment
                }
                let chunk = self.body.next().await.expect("stream open").unwrap();
                self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("an event within 10 s")
    }
}

async fn append(t: &TestServer, stream: &str, n: usize) {
    let events: Vec<Value> = (0..n)
        .map(|i| json!({"event_type": "Tick", "data": {"i": i}}))
        .collect();
    let (s, b) = t
        .post_json(
            &format!("/streams/{stream}"),
            &json!({"expected_version": "any", "events": events}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

crate::on_both_backends!(
    a_client_resumes_with_last_event_id_and_misses_nothing,
    |mut t: TestServer| async move {
        append(&t, "clock-1", 3).await; // positions 0..=2
        let r = t.client.get(t.url("/events?from=0")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        let mut feed = SseReader::new(r);
        for p in 0..3 {
            let (id, e) = feed.next().await;
            assert_eq!(
                (id, &e["position"], &e["data"]["i"]),
                (p, &json!(p), &json!(p))
            );
        }
        // Live: appended after the client connected.
        append(&t, "clock-1", 1).await;
        let (id, _) = feed.next().await;
        assert_eq!(id, 3);
        drop(feed); // disconnect

        append(&t, "clock-1", 2).await; // 4, 5: missed while away
        let r = t
            .client
            .get(t.url("/events"))
            .header("Last-Event-ID", "3")
            .send()
            .await
            .unwrap();
        let mut feed = SseReader::new(r);
        assert_eq!(feed.next().await.0, 4);
        assert_eq!(feed.next().await.0, 5);
        append(&t, "clock-1", 1).await;
        assert_eq!(feed.next().await.0, 6, "then live again, nothing twice");
        drop(feed);
        t.stop().await;
    }
);

crate::on_both_backends!(
    filters_by_stream_prefix_and_type_and_payload_encoding,
    |mut t: TestServer| async move {
        let r = t
            .client
            .get(t.url("/events?stream_prefix=Order-&type=ItemAddedToOrder,OrderConfirmed"))
            .send()
            .await
            .unwrap();
        let mut orders = SseReader::new(r);
        let r = t
            .client
            .get(t.url("/events?stream_prefix=clock-&payload=base64"))
            .send()
            .await
            .unwrap();
        let mut clocks = SseReader::new(r);
        let id = t.create_order("f").await;
        append(&t, "clock-9", 1).await;
        t.post(&format!(
            "/orders/{id}/items?product_id=a&quantity=1&price=2.50"
        ))
        .await;
        t.post(&format!("/orders/{id}/confirm")).await;

        let (_, e) = orders.next().await;
        assert_eq!(
            (&e["event_type"], &e["data"]["price"]),
            (&json!("ItemAddedToOrder"), &json!("2.50"))
        );
        let (_, e) = orders.next().await;
        assert_eq!(e["event_type"], "OrderConfirmed");
        let (p, e) = clocks.next().await;
        assert_eq!(
            (p, &e["data_encoding"], &e["data"]),
            (1, &json!("base64"), &json!("eyJpIjowfQ=="))
        );
        t.stop().await;
    }
);

crate::on_both_backends!(a_bad_last_event_id_is_422, |mut t: TestServer| async move {
    let r = t
        .client
        .get(t.url("/events"))
        .header("Last-Event-ID", "abc")
        .send()
        .await
        .unwrap();
    crate::support::assert_problem(r, 422).await;
    t.stop().await;
});
