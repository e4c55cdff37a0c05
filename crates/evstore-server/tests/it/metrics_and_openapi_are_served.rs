//! `/metrics` is in the Prometheus text format with the store's and the server's figures;
//! `/openapi.json` describes every route; `/` serves the self-contained page.

use crate::support::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_appends_fsyncs_requests_and_lag() {
    let mut t = TestServer::start().await;
    let id = t.create_order("m").await;
    t.post(&format!(
        "/orders/{id}/items?product_id=a&quantity=1&price=1"
    ))
    .await;
    t.get("/orders/missing").await;
    let r = t.client.get(t.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = r.text().await.unwrap();
    for line in [
        "evstore_appends_total 2",
        "evstore_events 2",
        "evstore_streams 1",
        "evstore_backend_info{backend=\"file\"} 1",
        "# TYPE evstore_fsyncs_total counter",
        "# TYPE evstore_appends_per_fsync gauge",
        "# TYPE evstore_append_latency_seconds histogram",
        "evstore_append_latency_seconds_count{source=\"orders\"} 2",
        "evstore_http_requests_total{method=\"POST\",route=\"/orders/{order_id}/items\",status=\"200\"} 1",
        "evstore_http_requests_total{method=\"GET\",route=\"/orders/{order_id}\",status=\"404\"} 1",
        "# TYPE evstore_projection_lag_events gauge",
        "evstore_projection_lag_events{projection=\"order-summaries\"}",
        "# TYPE evstore_http_request_duration_seconds histogram",
        "evstore_sse_clients 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    let fsyncs: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("evstore_fsyncs_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(fsyncs >= 1);
    t.stop().await;
}

/// On PostgreSQL: appends and commits come from the store's group commit, events from the
/// head, streams from the catalog; the file-only metrics (fsyncs, bytes, segments) are absent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_postgres_count_appends_and_commits_without_file_metrics() {
    let Some(mut t) = TestServer::start_on(Backend::Postgres, "metrics_on_postgres").await else {
        return;
    };
    let id = t.create_order("m").await;
    t.post(&format!(
        "/orders/{id}/items?product_id=a&quantity=1&price=1"
    ))
    .await;
    // The catalog (which counts streams here) has caught up once the order reads back.
    let (s, _) = t.get(&format!("/orders/{id}")).await;
    assert_eq!(s, 200);
    let (s, _) = t.get("/streams").await;
    assert_eq!(s, 200);
    let text = t
        .client
        .get(t.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "evstore_backend_info{backend=\"postgres\"} 1",
        "evstore_appends_total 2",
        "evstore_group_commits_total 2",
        "evstore_appends_per_commit 1",
        "evstore_events 2",
        "evstore_append_latency_seconds_count{source=\"orders\"} 2",
        "evstore_projection_lag_events{projection=\"order-summaries\"} 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    for absent in [
        "evstore_fsyncs_total",
        "evstore_appends_per_fsync",
        "evstore_bytes_written_total",
        "evstore_segments",
    ] {
        assert!(!text.contains(absent), "{absent} on PostgreSQL:\n{text}");
    }
    t.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route_and_the_page_is_self_contained() {
    let mut t = TestServer::start().await;
    let (s, doc) = t.get("/openapi.json").await;
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/orders",
        "/orders/{order_id}",
        "/orders/{order_id}/items",
        "/orders/{order_id}/confirm",
        "/orders/{order_id}/ship",
        "/orders/{order_id}/deliver",
        "/orders/{order_id}/cancel",
        "/orders/{order_id}/history",
        "/users/{user_id}/orders",
        "/streams",
        "/streams/{stream_id}",
        "/log",
        "/types",
        "/types/{event_type}",
        "/events",
        "/products/{product_id}/stock",
    ] {
        assert!(paths.contains_key(p), "{p} missing from /openapi.json");
    }
    assert!(doc["paths"]["/streams/{stream_id}"]["post"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    let stock = &doc["paths"]["/products/{product_id}/stock"];
    assert!(
        stock["put"].is_object() && stock["get"].is_object(),
        "{stock}"
    );
    let schemas = &doc["components"]["schemas"];
    for field in ["product_id", "stock", "reserved", "available"] {
        assert!(
            schemas["StockView"]["properties"][field].is_object(),
            "StockView.{field}"
        );
    }
    assert!(schemas["SetStockRequest"]["properties"]["units"].is_object());
    assert!(
        schemas["NewEventRequest"]["properties"]["tags"].is_object(),
        "the append request's tags"
    );
    assert!(
        schemas["EventJson"]["properties"]["tags"].is_object(),
        "the answered event's tags"
    );

    let page = t.client.get(t.url("/")).send().await.unwrap();
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(html.contains("/assets/app.js") && html.contains("/assets/app.css"));
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no CDN"
    );
    for asset in ["/assets/app.js", "/assets/app.css"] {
        let r = t.client.get(t.url(asset)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("https://"),
            "{asset} loads nothing from outside"
        );
    }
    assert_eq!(
        t.client
            .get(t.url("/assets/x.js"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let r = t.client.get(t.url("/assets/%FF")).send().await.unwrap();
    crate::support::assert_problem(r, 404).await;
    let health = t.client.get(t.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    t.stop().await;
}
