//! Every refusal is an RFC 9457 problem document with the right status: 404 for a missing
//! order or stream, 409 for a version conflict or a transition the order's state forbids, 422
//! for bad input, 415 for a body that is not JSON, 405 for a wrong method.

use serde_json::json;

use crate::support::{assert_problem, TestServer};

crate::on_both_backends!(
    missing_orders_and_streams_are_404,
    |mut t: TestServer| async move {
        let c = &t.client;
        for path in [
            "/orders/nope",
            "/orders/nope/history",
            "/orders/nope?at_version=0",
            "/streams/nope",
            "/no/such/route",
        ] {
            assert_problem(c.get(t.url(path)).send().await.unwrap(), 404).await;
        }
        for path in [
            "/orders/nope/items?product_id=p&quantity=1&price=1",
            "/orders/nope/confirm",
            "/orders/nope/ship",
            "/orders/nope/deliver",
            "/orders/nope/cancel",
        ] {
            let p = assert_problem(c.post(t.url(path)).send().await.unwrap(), 404).await;
            assert_eq!(
                p["type"], "urn:evstore:problem:order-not-found",
                "{path}: {p}"
            );
        }
        t.stop().await;
    }
);

crate::on_both_backends!(
    forbidden_transitions_and_version_conflicts_are_409,
    |mut t: TestServer| async move {
        let c = &t.client;
        let id = t.create_order("u").await;
        // Empty orders cannot be confirmed; pending ones cannot ship or be delivered.
        for path in ["confirm", "ship", "deliver"] {
            let p = assert_problem(
                c.post(t.url(&format!("/orders/{id}/{path}")))
                    .send()
                    .await
                    .unwrap(),
                409,
            )
            .await;
            assert_eq!(p["type"], "urn:evstore:problem:invalid-transition", "{p}");
        }
        t.post(&format!(
            "/orders/{id}/items?product_id=a&quantity=1&price=1"
        ))
        .await;
        t.post(&format!("/orders/{id}/cancel?reason=changed%20my%20mind"))
            .await;
        let p = assert_problem(
            c.post(t.url(&format!(
                "/orders/{id}/items?product_id=a&quantity=1&price=1"
            )))
            .send()
            .await
            .unwrap(),
            409,
        )
        .await;
        assert!(p["detail"].as_str().unwrap().contains("cancelled"), "{p}");
        // A taken id.
        let r = c
            .post(t.url(&format!("/orders?user_id=u&order_id={id}")))
            .send()
            .await
            .unwrap();
        assert_problem(r, 409).await;
        // The store API's expected version.
        let append = |expected: serde_json::Value| {
            c.post(t.url("/streams/cart-1"))
            .json(&json!({"expected_version": expected, "events": [{"event_type": "Added", "data": {"n": 1}}]}))
            .send()
        };
        assert_eq!(append(json!("no_stream")).await.unwrap().status(), 200);
        let p = assert_problem(append(json!("no_stream")).await.unwrap(), 409).await;
        assert_eq!(p["actual_version"], 0, "{p}");
        let p = assert_problem(append(json!(5)).await.unwrap(), 409).await;
        assert_eq!(
            (&p["expected_version"], &p["actual_version"]),
            (&json!("5"), &json!(0)),
            "{p}"
        );
        assert_eq!(append(json!(0)).await.unwrap().status(), 200);
        t.stop().await;
    }
);

crate::on_both_backends!(
    bad_input_is_422_and_writes_nothing,
    |mut t: TestServer| async move {
        let c = &t.client;
        let id = t.create_order("u").await;
        let long = "x".repeat(300);
        let bad_items = [
            "product_id=p&quantity=1&price=12.345".to_string(), // sub-cent
            "product_id=p&quantity=1&price=abc".to_string(),
            "product_id=p&quantity=1&price=1e30".to_string(), // too large for i64 cents
            "product_id=p&quantity=0&price=1".to_string(),
            "product_id=p&quantity=-1&price=1".to_string(),
            "product_id=p&quantity=99999999999&price=1".to_string(),
            "product_id=p&quantity=1&price=-1".to_string(),
            "product_id=p&quantity=1".to_string(),
            "quantity=1&price=1".to_string(),
            "product_id=&quantity=1&price=1".to_string(),
            format!("product_id={long}&quantity=1&price=1"),
            "product_id=p&quantity=1&price=1&price_cents=100".to_string(),
            "product_id=p&quantity=4294967295&price=92233720368547758".to_string(), // total overflows
        ];
        for q in &bad_items {
            let r = c
                .post(t.url(&format!("/orders/{id}/items?{q}")))
                .send()
                .await
                .unwrap();
            assert_problem(r, 422).await;
        }
        for body in ["not json", "[1,2]", "{\"product_id\": 5}"] {
            let r = c
                .post(t.url(&format!("/orders/{id}/items")))
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            assert_problem(r, 422).await;
        }
        // Bytes that are not UTF-8, or a broken escape, are refused, never turned into U+FFFD.
        for q in [
            "",
            "?user_id=",
            "?user_id=%01",
            "?user_id=%FF%FE",
            "?user_id=a%2",
            "?user_id=%ZZ",
        ] {
            assert_problem(
                c.post(t.url(&format!("/orders{q}"))).send().await.unwrap(),
                422,
            )
            .await;
        }
        assert_problem(
            c.get(t.url(&format!("/orders/{}", "y".repeat(200))))
                .send()
                .await
                .unwrap(),
            422,
        )
        .await;
        for q in [
            "at_version=x",
            "as_of=yesterday",
            "at_version=1&as_of=2026-01-01T00:00:00Z",
        ] {
            assert_problem(
                c.get(t.url(&format!("/orders/{id}?{q}")))
                    .send()
                    .await
                    .unwrap(),
                422,
            )
            .await;
        }
        for q in [
            "limit=0",
            "limit=5000",
            "from=-1",
            "payload=xml",
            "from=%FF",
        ] {
            assert_problem(
                c.get(t.url(&format!("/log?{q}"))).send().await.unwrap(),
                422,
            )
            .await;
        }
        let bad_appends = [
            json!({"events": [{"event_type": "E"}]}),
            json!({"expected_version": "sometimes", "events": [{"event_type": "E"}]}),
            json!({"expected_version": "any", "events": []}),
            json!({"expected_version": "any", "events": [{"data": 1}]}),
            json!({"expected_version": "any", "events": [{"event_type": ""}]}),
            json!({"expected_version": "any", "events": [{"event_type": "E", "data_base64": "%%%"}]}),
            json!({"expected_version": "any", "events": [{"event_type": "E", "event_id": "not-a-uuid"}]}),
            json!({"expected_version": "any", "events": [{"event_type": "E", "data": 1, "data_base64": "AA=="}]}),
        ];
        for body in &bad_appends {
            let r = c.post(t.url("/streams/s")).json(body).send().await.unwrap();
            assert_problem(r, 422).await;
        }
        // Order streams are written only through /orders.
        let r = c
        .post(t.url(&format!("/streams/Order-{id}")))
        .json(&json!({"expected_version": "any", "events": [{"event_type": "OrderShipped", "data": {}}]}))
        .send()
        .await
        .unwrap();
        assert_problem(r, 422).await;
        // A form body is not JSON.
        let r = c
            .post(t.url("/orders"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("user_id=u")
            .send()
            .await
            .unwrap();
        assert_problem(r, 415).await;
        // Wrong method.
        assert_problem(c.delete(t.url("/orders")).send().await.unwrap(), 405).await;

        // Nothing was written by any of it: the order is as created, the stream `s` does not exist.
        let (s, order) = t.get(&format!("/orders/{id}")).await;
        assert_eq!(
            (s, &order["version"], &order["total_cents"]),
            (200, &json!(0), &json!(0))
        );
        assert_eq!(t.get("/streams/s").await.0, 404);
        t.stop().await;
    }
);
