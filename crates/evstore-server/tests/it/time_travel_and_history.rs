//! The whole life cycle over HTTP (ship, deliver, cancel), an order's history, and time
//! travel by version (`?at_version=`) and by time (`?as_of=`).

use serde_json::json;

use crate::support::TestServer;

crate::on_both_backends!(
    an_order_can_be_seen_as_it_was_at_every_version_and_time,
    |mut t: TestServer| async move {
        let id = t.create_order("dana").await;
        t.post(&format!(
            "/orders/{id}/items?product_id=tea&quantity=1&price=4.20"
        ))
        .await;
        // `as_of` compares with the time the store recorded each event.
        let (_, h) = t.get(&format!("/orders/{id}/history")).await;
        let first_time = h["steps"][1]["event"]["recorded_at"]
            .as_str()
            .unwrap()
            .to_string();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        t.post(&format!(
            "/orders/{id}/items?product_id=cup&quantity=2&price=3"
        ))
        .await;
        for step in ["confirm", "ship", "deliver"] {
            let (s, b) = t.post(&format!("/orders/{id}/{step}")).await;
            assert_eq!(s, 200, "{step}: {b}");
        }
        let (s, now) = t.get(&format!("/orders/{id}")).await;
        assert_eq!(
            (s, &now["status"], &now["version"]),
            (200, &json!("delivered"), &json!(5))
        );

        let expect = [
            (0, "pending", "0.00", 0),
            (1, "pending", "4.20", 1),
            (2, "pending", "10.20", 2),
            (3, "confirmed", "10.20", 2),
            (4, "shipped", "10.20", 2),
            (5, "delivered", "10.20", 2),
        ];
        for (v, status, total, lines) in expect {
            let (s, o) = t.get(&format!("/orders/{id}?at_version={v}")).await;
            assert_eq!(s, 200, "{o}");
            assert_eq!(o["version"], v);
            assert_eq!(o["current_version"], 5);
            assert_eq!(o["status"], status, "v{v}");
            assert_eq!(o["total_amount"], total, "v{v}");
            assert_eq!(o["items"].as_array().unwrap().len(), lines);
        }
        let (s, o) = t
            .get(&format!("/orders/{id}?as_of={}", urlencode(&first_time)))
            .await;
        assert_eq!(
            (s, &o["version"], &o["total_amount"]),
            (200, &json!(1), &json!("4.20")),
            "{o}"
        );
        let (s, _) = t
            .get(&format!("/orders/{id}?as_of=2000-01-01T00:00:00Z"))
            .await;
        assert_eq!(s, 404, "it did not exist yet");

        let (s, h) = t.get(&format!("/orders/{id}/history")).await;
        assert_eq!(s, 200);
        let types: Vec<_> = h["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["event"]["event_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "OrderCreated",
                "ItemAddedToOrder",
                "ItemAddedToOrder",
                "OrderConfirmed",
                "OrderShipped",
                "OrderDelivered"
            ]
        );
        assert_eq!(h["steps"][1]["event"]["data"]["price"], "4.20");
        assert_eq!(h["steps"][1]["event"]["data_encoding"], "order");
        assert_eq!(h["steps"][2]["order"]["total_cents"], 1020);

        // Cancel: from pending, with a reason (JSON body).
        let other = t.create_order("dana").await;
        let (s, b) = t
            .post_json(
                &format!("/orders/{other}/cancel"),
                &json!({"reason": "too slow"}),
            )
            .await;
        assert_eq!(
            (s, &b["order"]["status"], &b["order"]["cancel_reason"]),
            (200, &json!("cancelled"), &json!("too slow")),
            "{b}"
        );
        let (s, o) = t.get(&format!("/orders/{other}")).await;
        assert_eq!((s, &o["status"]), (200, &json!("cancelled")));
        t.stop().await;
    }
);

fn urlencode(s: &str) -> String {
    s.replace(':', "%3A").replace('+', "%2B")
}
