//! A body over the limit is refused with 413 before it is parsed; with `--token`, every write
//! needs `Authorization: Bearer <token>` (401 otherwise) while reads stay open.

use serde_json::json;

use crate::support::{assert_problem, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_over_the_limit_are_413() {
    let mut t = TestServer::start_with(|c| c.max_body_bytes = 4096).await;
    let big = json!({"expected_version": "any", "events": [{"event_type": "E", "data": "x".repeat(10_000)}]});
    let r = t
        .client
        .post(t.url("/streams/big"))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_problem(r, 413).await;
    let small = json!({"expected_version": "any", "events": [{"event_type": "E", "data": "x".repeat(100)}]});
    let r = t
        .client
        .post(t.url("/streams/big"))
        .json(&small)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_need_the_bearer_token_reads_do_not() {
    let mut t = TestServer::start_with(|c| c.token = Some("s3cret".into())).await;
    let c = &t.client;
    let r = c.post(t.url("/orders?user_id=u")).send().await.unwrap();
    let p = assert_problem(r, 401).await;
    assert_eq!(p["type"], "urn:evstore:problem:unauthorized");
    let r = c
        .post(t.url("/orders?user_id=u"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_problem(r, 401).await;
    let r = c
        .post(t.url("/orders?user_id=u"))
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let id = r.json::<serde_json::Value>().await.unwrap()["order_id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = c
        .post(t.url("/streams/s"))
        .json(&json!({"expected_version": "any", "events": [{"event_type": "E"}]}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401).await;
    // Setting a product's stock is a write too.
    let r = c
        .put(t.url("/products/p/stock"))
        .json(&json!({"units": 1}))
        .send()
        .await
        .unwrap();
    assert_problem(r, 401).await;
    let r = c
        .put(t.url("/products/p/stock"))
        .bearer_auth("s3cret")
        .json(&json!({"units": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Reads are open.
    assert_eq!(t.get("/products/p/stock").await.1["stock"], 1);
    assert_eq!(t.get(&format!("/orders/{id}")).await.0, 200);
    assert_eq!(t.get("/streams").await.0, 200);
    assert_eq!(t.get("/metrics").await.0, 200);
    t.stop().await;
}
