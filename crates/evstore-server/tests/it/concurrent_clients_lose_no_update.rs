//! 60 clients, each on its own connection, add items to ONE order at the same time: every
//! acknowledged add is in the order (optimistic concurrency with retries in `OrderService`),
//! the total is exact, and the versions are dense.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde_json::Value;
use tokio::sync::Barrier;

use crate::support::TestServer;

const CLIENTS: usize = 60;
const ADDS_PER_CLIENT: usize = 3;

crate::on_both_backends!(
    sixty_clients_on_one_order_lose_nothing,
    |mut t: TestServer| async move {
        let id = t.create_order("busy").await;
        let barrier = Arc::new(Barrier::new(CLIENTS));
        let mut tasks = Vec::new();
        for client_no in 0..CLIENTS {
            let url = t.url(&format!("/orders/{id}/items"));
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                // Its own client: its own connection.
                let client = reqwest::Client::new();
                barrier.wait().await;
                let mut acked = Vec::new();
                for add in 0..ADDS_PER_CLIENT {
                    let product = format!("p{client_no}-{add}");
                    let price_cents = (client_no * 10 + add + 1) as i64;
                    let r = client
                        .post(&url)
                        .query(&[
                            ("product_id", product.as_str()),
                            ("quantity", "1"),
                            ("price_cents", &price_cents.to_string()),
                        ])
                        .send()
                        .await
                        .unwrap();
                    let status = r.status().as_u16();
                    let body: Value = r.json().await.unwrap();
                    assert_eq!(status, 200, "{body}");
                    acked.push((product, price_cents));
                }
                acked
            }));
        }
        let mut expected = BTreeSet::new();
        let mut expected_total = 0i64;
        for task in tasks {
            for (product, price) in task.await.unwrap() {
                expected_total += price;
                expected.insert(product);
            }
        }
        assert_eq!(expected.len(), CLIENTS * ADDS_PER_CLIENT);

        let (s, order) = t.get(&format!("/orders/{id}")).await;
        assert_eq!(s, 200);
        assert_eq!(order["total_cents"], expected_total, "{order}");
        assert_eq!(order["line_count"], CLIENTS * ADDS_PER_CLIENT);
        assert_eq!(
            order["version"],
            CLIENTS * ADDS_PER_CLIENT,
            "dense versions: one per add"
        );

        let (s, history) = t.get(&format!("/orders/{id}/history")).await;
        assert_eq!(s, 200);
        let steps = history["steps"].as_array().unwrap();
        assert_eq!(steps.len(), 1 + CLIENTS * ADDS_PER_CLIENT);
        let seen: BTreeSet<String> = steps[1..]
            .iter()
            .map(|s| {
                s["event"]["data"]["product_id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(seen, expected, "every acknowledged add, exactly once");
        for (v, step) in steps.iter().enumerate() {
            assert_eq!(step["event"]["version"], v);
        }
        t.stop().await;
    }
);
