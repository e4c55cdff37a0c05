//! A product's limited stock over HTTP: `PUT /products/{id}/stock` sets it, `GET` reads stock,
//! reserved and available units; adding items beyond what is available is a 409
//! `out-of-stock` problem naming the product that leaves the order unchanged; setting the
//! stock below what orders reserve is refused the same way; cancelling an order releases its
//! units.

use serde_json::json;

use crate::support::{assert_problem, TestServer};

impl TestServer {
    /// PUT `path` with a JSON body.
    pub async fn put_json(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let r = self
            .client
            .put(self.url(path))
            .json(body)
            .send()
            .await
            .unwrap();
        crate::support::status_json(r).await
    }
}

crate::on_both_backends!(
    set_and_get_stock_round_trip,
    |mut t: TestServer| async move {
        // Never set: unlimited.
        let (s, stock) = t.get("/products/widget/stock").await;
        assert_eq!(s, 200, "{stock}");
        assert_eq!(
            stock,
            json!({"product_id": "widget", "stock": null, "reserved": 0, "available": null})
        );
        let (s, set) = t
            .put_json("/products/widget/stock", &json!({"units": 5}))
            .await;
        assert_eq!(s, 200, "{set}");
        assert_eq!(
            set,
            json!({"product_id": "widget", "stock": 5, "reserved": 0, "available": 5})
        );
        let (_, got) = t.get("/products/widget/stock").await;
        assert_eq!(got, set);
        // A restock replaces the number; other products are untouched.
        let (s, _) = t
            .put_json("/products/widget/stock", &json!({"units": 7}))
            .await;
        assert_eq!(s, 200);
        assert_eq!(t.get("/products/widget/stock").await.1["stock"], 7);
        assert_eq!(
            t.get("/products/gadget/stock").await.1["stock"],
            json!(null)
        );

        // Bad input is 422 and writes nothing.
        for body in [
            json!({}),
            json!({"units": -1}),
            json!({"units": "many"}),
            json!({"units": 1.5}),
        ] {
            let r = t
                .client
                .put(t.url("/products/widget/stock"))
                .json(&body)
                .send()
                .await
                .unwrap();
            let p = assert_problem(r, 422).await;
            assert_eq!(
                p["type"], "urn:evstore:problem:invalid-input",
                "{body}: {p}"
            );
        }
        let r = t
            .client
            .put(t.url("/products/%20widget/stock"))
            .json(&json!({"units": 1}))
            .send()
            .await
            .unwrap();
        assert_problem(r, 422).await;
        assert_eq!(t.get("/products/widget/stock").await.1["stock"], 7);
        // The stock's stream belongs to /products.
        let (s, _) = t
            .post_json(
                "/streams/Product-widget",
                &json!({"expected_version": "any", "events": [{"event_type": "ProductStockSet", "data": {}}]}),
            )
            .await;
        assert_eq!(s, 422);
        t.stop().await;
    }
);

crate::on_both_backends!(
    an_oversell_is_a_409_and_leaves_the_order_unchanged,
    |mut t: TestServer| async move {
        let (s, _) = t
            .put_json("/products/lamp/stock", &json!({"units": 3}))
            .await;
        assert_eq!(s, 200);
        let a = t.create_order("ann").await;
        let b = t.create_order("bob").await;
        let (s, r) = t
            .post(&format!(
                "/orders/{a}/items?product_id=lamp&quantity=2&price=10.00"
            ))
            .await;
        assert_eq!(s, 200, "{r}");
        let (_, before) = t.get(&format!("/orders/{b}")).await;

        // 2 of 3 reserved: 2 more would oversell.
        let r = t
            .client
            .post(t.url(&format!(
                "/orders/{b}/items?product_id=lamp&quantity=2&price=10.00"
            )))
            .send()
            .await
            .unwrap();
        let p = assert_problem(r, 409).await;
        assert_eq!(p["type"], "urn:evstore:problem:out-of-stock", "{p}");
        assert_eq!(p["product_id"], "lamp", "{p}");
        assert!(p["detail"].as_str().unwrap().contains("lamp"), "{p}");
        let (_, after) = t.get(&format!("/orders/{b}")).await;
        assert_eq!(after, before, "the refused order is unchanged");
        assert_eq!(
            (&after["line_count"], &after["version"]),
            (&json!(0), &json!(0))
        );
        let (_, history) = t.get(&format!("/orders/{b}/history")).await;
        assert_eq!(history["steps"].as_array().unwrap().len(), 1);
        let (_, stock) = t.get("/products/lamp/stock").await;
        assert_eq!(
            stock,
            json!({"product_id": "lamp", "stock": 3, "reserved": 2, "available": 1})
        );

        // The last unit still sells; then the stock cannot drop below what is reserved.
        let (s, r) = t
            .post(&format!(
                "/orders/{b}/items?product_id=lamp&quantity=1&price=10.00"
            ))
            .await;
        assert_eq!(s, 200, "{r}");
        let r = t
            .client
            .put(t.url("/products/lamp/stock"))
            .json(&json!({"units": 2}))
            .send()
            .await
            .unwrap();
        let p = assert_problem(r, 409).await;
        assert_eq!(
            (&p["type"], &p["product_id"]),
            (&json!("urn:evstore:problem:out-of-stock"), &json!("lamp"))
        );
        assert_eq!(
            t.get("/products/lamp/stock").await.1,
            json!({"product_id": "lamp", "stock": 3, "reserved": 3, "available": 0})
        );
        t.stop().await;
    }
);

crate::on_both_backends!(
    cancelling_an_order_releases_its_stock,
    |mut t: TestServer| async move {
        let (s, _) = t
            .put_json("/products/chair/stock", &json!({"units": 4}))
            .await;
        assert_eq!(s, 200);
        let a = t.create_order("cy").await;
        let (s, r) = t
            .post(&format!(
                "/orders/{a}/items?product_id=chair&quantity=4&price=25"
            ))
            .await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(t.get("/products/chair/stock").await.1["available"], 0);
        let b = t.create_order("di").await;
        let (s, _) = t
            .post(&format!(
                "/orders/{b}/items?product_id=chair&quantity=1&price=25"
            ))
            .await;
        assert_eq!(s, 409, "sold out");

        let (s, r) = t.post(&format!("/orders/{a}/cancel")).await;
        assert_eq!(s, 200, "{r}");
        assert_eq!(
            t.get("/products/chair/stock").await.1,
            json!({"product_id": "chair", "stock": 4, "reserved": 0, "available": 4})
        );
        let (s, r) = t
            .post(&format!(
                "/orders/{b}/items?product_id=chair&quantity=4&price=25"
            ))
            .await;
        assert_eq!(s, 200, "the released units sell again: {r}");
        assert_eq!(t.get("/products/chair/stock").await.1["reserved"], 4);
        t.stop().await;
    }
);
