//! Event tags through the store's own API: an append's `tags` come back on every event the
//! server answers (stream reads, `/log`, `/types/{type}`, the `/events` feed, `[]` for none);
//! bad tags are 422 and write nothing; the Order domain's `product:` tags are its own.

use serde_json::json;

use crate::sse_feed_resumes_after_disconnect::SseReader;
use crate::support::{assert_problem, TestServer};

crate::on_both_backends!(
    tags_show_in_reads_the_log_and_the_feed,
    |mut t: TestServer| async move {
        let r = t.client.get(t.url("/events?from=0")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let mut feed = SseReader::new(r);
        let body = json!({"expected_version": "no_stream", "events": [
            {"event_type": "SeatBooked", "data": {"seat": "12A"}, "tags": ["seat:12A", "show:7"]},
            {"event_type": "SeatBooked", "data": {"seat": "12B"}, "tags": []},
            {"event_type": "Note", "data": {}},
        ]});
        let (s, r) = t.post_json("/streams/show-7", &body).await;
        assert_eq!(s, 200, "{r}");
        let expected = [json!(["seat:12A", "show:7"]), json!([]), json!([])];

        let (s, page) = t.get("/streams/show-7").await;
        assert_eq!(s, 200, "{page}");
        let tags: Vec<_> = page["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["tags"].clone())
            .collect();
        assert_eq!(tags, expected, "stream read");
        let (_, log) = t.get("/log?from=0").await;
        let tags: Vec<_> = log["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["tags"].clone())
            .collect();
        assert_eq!(tags, expected, "/log");
        let (_, by_type) = t.get("/types/SeatBooked").await;
        assert_eq!(by_type["events"][0]["tags"], expected[0], "/types/{{type}}");
        for (p, want) in expected.iter().enumerate() {
            let (id, e) = feed.next().await;
            assert_eq!((id, &e["tags"]), (p as u64, want), "/events");
        }

        // Events of the Order domain carry its tags, shown the same way.
        let id = t.create_order("tag-fan").await;
        let (s, _) = t
            .post(&format!(
                "/orders/{id}/items?product_id=lamp&quantity=1&price=1"
            ))
            .await;
        assert_eq!(s, 200);
        let (_, e) = feed.next().await;
        assert_eq!(e["event_type"], "OrderCreated");
        let (_, e) = feed.next().await;
        assert_eq!(e["event_type"], "ItemAddedToOrder");
        assert!(
            e["tags"]
                .as_array()
                .unwrap()
                .contains(&json!("product:lamp")),
            "{e}"
        );
        drop(feed);

        // Bad tags: 422, nothing written.
        for tags in [
            json!("seat:1"),
            json!([1]),
            json!([""]),
            json!(["x".repeat(256)]),
            json!(["a", "a"]),
            json!(["product:lamp"]),
            json!((0..256).map(|i| format!("t{i}")).collect::<Vec<_>>()),
        ] {
            let r = t
                .client
                .post(t.url("/streams/show-7"))
                .json(&json!({"expected_version": "any", "events": [{"event_type": "E", "tags": tags}]}))
                .send()
                .await
                .unwrap();
            let p = assert_problem(r, 422).await;
            assert_eq!(
                p["type"], "urn:evstore:problem:invalid-input",
                "{tags}: {p}"
            );
        }
        assert_eq!(
            t.get("/streams/show-7").await.1["head"],
            2,
            "nothing written"
        );
        t.stop().await;
    }
);
