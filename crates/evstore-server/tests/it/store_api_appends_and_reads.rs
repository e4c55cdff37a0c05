//! The store's own API: append with expected versions (idempotent retries by event id), read a
//! stream in pages, the global log from a position, events by type, the stream and type
//! catalogs; payloads as JSON or base64 as the client asks, Order payloads decoded.

use base64::Engine as _;
use serde_json::json;

use crate::support::TestServer;

crate::on_both_backends!(
    appends_and_reads_round_trip_payloads,
    |mut t: TestServer| async move {
        let id = t.create_order("erin").await; // position 0
        let event_id = uuid::Uuid::new_v4();
        let body = json!({"expected_version": "no_stream", "events": [
            {"event_type": "Added", "data": {"sku": "a", "n": 1}, "event_id": event_id, "metadata": {"by": "test"}},
            {"event_type": "Raw", "event_id": uuid::Uuid::new_v4(), "data_base64": base64::engine::general_purpose::STANDARD.encode([0u8, 159, 146, 150])},
        ]});
        let (s, r) = t.post_json("/streams/cart-1", &body).await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(
            r,
            json!({"first_version": 0, "last_version": 1, "first_position": 1, "last_position": 2})
        );
        // The same append again (the client never saw the answer): same result, nothing written.
        let (s, again) = t.post_json("/streams/cart-1", &body).await;
        assert_eq!((s, &again), (200, &r), "an idempotent retry");
        let (s, r2) = t.post_json("/streams/cart-1", &json!({"expected_version": 1, "events": [{"event_type": "Added", "data": {"sku": "b"}}]})).await;
        assert_eq!((s, &r2["last_version"]), (200, &json!(2)));
        let (s, r3) = t.post_json("/streams/cart-1", &json!({"expected_version": "stream_exists", "events": [{"event_type": "Added", "data": [1, 2]}]})).await;
        assert_eq!((s, &r3["last_position"]), (200, &json!(4)));

        // Read the stream, paged; payloads auto (JSON as JSON, the rest base64).
        let (s, page) = t.get("/streams/cart-1?limit=2").await;
        assert_eq!(s, 200, "{page}");
        assert_eq!((&page["next"], &page["head"]), (&json!(2), &json!(3)));
        let e0 = &page["events"][0];
        assert_eq!(e0["event_id"], json!(event_id));
        assert_eq!(
            (&e0["data_encoding"], &e0["data"]),
            (&json!("json"), &json!({"sku": "a", "n": 1}))
        );
        assert_eq!(e0["metadata"], json!({"by": "test"}));
        let e1 = &page["events"][1];
        assert_eq!(
            (&e1["data_encoding"], &e1["data"]),
            (&json!("base64"), &json!("AJ+Slg=="))
        );
        let (_, page2) = t.get("/streams/cart-1?from=2").await;
        assert_eq!(page2["events"].as_array().unwrap().len(), 2);
        assert_eq!(page2["next"], json!(null));
        // Base64 on request.
        let (_, b64) = t.get("/streams/cart-1?limit=1&payload=base64").await;
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64["events"][0]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&raw).unwrap(),
            json!({"sku": "a", "n": 1})
        );

        // The global log: the order's event decoded, then the cart's.
        let (s, log) = t.get("/log?from=0&limit=3").await;
        assert_eq!(s, 200);
        let events = log["events"].as_array().unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(
            (&events[0]["event_type"], &events[0]["data_encoding"]),
            (&json!("OrderCreated"), &json!("order"))
        );
        assert_eq!(events[0]["data"]["user_id"], "erin");
        assert_eq!(events[0]["data"]["order_id"], json!(id));
        assert_eq!((&log["next"], &log["head"]), (&json!(3), &json!(4)));
        // payload=json leaves Order payloads undecoded (MessagePack is not JSON: base64).
        let (_, log) = t.get("/log?limit=1&payload=json").await;
        assert_eq!(log["events"][0]["data_encoding"], "base64");

        // By type, from a position.
        let (s, added) = t.get("/types/Added").await;
        assert_eq!(s, 200);
        let positions: Vec<_> = added["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["position"].as_u64().unwrap())
            .collect();
        assert_eq!(positions, [1, 3, 4]);
        let (_, added) = t.get("/types/Added?from=2&limit=1").await;
        assert_eq!(
            (added["events"].as_array().unwrap().len(), &added["next"]),
            (1, &json!(4))
        );
        let (_, all) = t.get("/types/Added?since=2000-01-01T00:00:00Z").await;
        assert_eq!(all["events"].as_array().unwrap().len(), 3);
        let (_, none) = t.get("/types/Added?since=2999-01-01T00:00:00Z").await;
        assert_eq!(none["events"], json!([]));
        assert_eq!(t.get("/types/Added?since=soon").await.0, 422);
        let (_, types) = t.get("/types").await;
        assert!(
            types["types"]
                .as_array()
                .unwrap()
                .contains(&json!(["Added", 3])),
            "{types}"
        );

        // The stream catalog (a read model: it may lag a moment behind an append).
        let mut listed = json!(null);
        for _ in 0..100 {
            listed = t.get("/streams").await.1;
            if listed["total"] == 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(listed["total"], 2, "{listed}");
        let cart = listed["streams"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["stream_id"] == "cart-1")
            .unwrap()
            .clone();
        assert_eq!(
            (&cart["events"], &cart["last_version"], &cart["last_type"]),
            (&json!(4), &json!(3), &json!("Added"))
        );
        let (_, only_orders) = t.get("/streams?prefix=Order-").await;
        assert_eq!(only_orders["streams"].as_array().unwrap().len(), 1);
        let (_, carts) = t.get("/streams?prefix=cart-&after=A").await;
        assert_eq!(
            carts["streams"][0]["stream_id"], "cart-1",
            "an `after` before the prefix"
        );
        let (_, first) = t.get("/streams?limit=1").await;
        assert_eq!(first["next_after"], json!("Order-".to_string() + &id));
        let (_, rest) = t.get(&format!("/streams?limit=1&after=Order-{id}")).await;
        assert_eq!(rest["streams"][0]["stream_id"], "cart-1");
        t.stop().await;
    }
);
