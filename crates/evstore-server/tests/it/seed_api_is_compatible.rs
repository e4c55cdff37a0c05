//! The seed service's clients work unchanged: query-string parameters, the same paths and
//! response shapes (`{"order_id"}`, `{"message"}`, `{"orders": [...]}`); JSON bodies work too,
//! and money is exact.

use serde_json::json;

use crate::support::TestServer;

crate::on_both_backends!(
    a_seed_client_creates_adds_confirms_and_reads,
    |mut t: TestServer| async move {
        let id = t.create_order("alice").await;
        assert_eq!(id.len(), 36, "a UUID: {id}");

        let (s, b) = t
            .post(&format!(
                "/orders/{id}/items?product_id=book&quantity=2&price=12.50"
            ))
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["message"], "Item added successfully");
        // Three items at 0.10 sum to exactly 0.30 (no float drift), here as a JSON number.
        let (s, b) = t
            .post_json(
                &format!("/orders/{id}/items"),
                &json!({"product_id": "pen", "quantity": 3, "price": 0.1}),
            )
            .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(b["order"]["total_amount"], "25.30");
        let (s, b) = t
            .post_json(
                &format!("/orders/{id}/items"),
                &json!({"product_id": "gum", "quantity": 1, "price_cents": 5}),
            )
            .await;
        assert_eq!((s, &b["order"]["total_cents"]), (200, &json!(2535)), "{b}");

        let (s, b) = t.post(&format!("/orders/{id}/confirm")).await;
        assert_eq!((s, &b["message"]), (200, &json!("Order confirmed")), "{b}");

        let (s, order) = t.get(&format!("/orders/{id}")).await;
        assert_eq!(s, 200, "{order}");
        assert_eq!(order["order_id"], json!(id));
        assert_eq!(order["user_id"], "alice");
        assert_eq!(order["status"], "confirmed");
        assert_eq!(order["total_amount"], "25.35");
        assert_eq!(order["total_cents"], 2535);
        assert_eq!(order["item_count"], 6);
        assert_eq!(order["version"], 4);
        assert!(order["created_at"].is_string() && order["updated_at"].is_string());

        let other = t.create_order("alice").await;
        let _ = t.create_order("bob").await;
        let (s, b) = t.get("/users/alice/orders").await;
        assert_eq!(s, 200);
        let ids: Vec<_> = b["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["order_id"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(ids, [other, id], "newest first");
        let (s, b) = t.get("/users/nobody/orders").await;
        assert_eq!((s, b), (200, json!({"orders": []})));
        t.stop().await;
    }
);

crate::on_both_backends!(
    json_bodies_and_chosen_ids_work_like_query_parameters,
    |mut t: TestServer| async move {
        let (s, b) = t
            .post_json(
                "/orders",
                &json!({"user_id": "carol", "order_id": "order-42"}),
            )
            .await;
        assert_eq!((s, &b["order_id"]), (200, &json!("order-42")), "{b}");
        let (s, b) = t
            .post_json(
                "/orders/order-42/items",
                &json!({"product_id": "lamp", "quantity": "two", "price": "19.99"}),
            )
            .await;
        assert_eq!(s, 422, "{b}");
        let (s, b) = t
            .post_json(
                "/orders/order-42/items",
                &json!({"product_id": "lamp", "quantity": 2, "price": "19.99"}),
            )
            .await;
        assert_eq!(
            (s, &b["order"]["total_amount"]),
            (200, &json!("39.98")),
            "{b}"
        );
        // A `null` body (some clients' "no body") with query parameters, as the seed takes them.
        let (s, b) = t
            .post_json("/orders?user_id=dave", &serde_json::Value::Null)
            .await;
        assert_eq!(s, 200, "{b}");
        let (s, b) = t.get("/orders/order-42").await;
        assert_eq!((s, &b["total_cents"]), (200, &json!(3998)), "{b}");
        t.stop().await;
    }
);
