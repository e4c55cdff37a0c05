//! A restarted server (same file, or same PostgreSQL schema) serves the orders, the stream
//! catalog as before, and writes carry on: the read models wrote their checkpoints at shutdown
//! (files beside the log, or rows of `evstore_checkpoints`) and carry on from there.

use serde_json::json;

use crate::support::{Backend, TestServer};

crate::on_both_backends!(
    orders_and_streams_survive_a_restart,
    |mut t: TestServer| async move {
        let id = t.create_order("restart").await;
        let (s, b) = t
            .post(&format!(
                "/orders/{id}/items?product_id=a&quantity=2&price=1.25"
            ))
            .await;
        assert_eq!(s, 200, "{b}");
        let (s, _) = t.get(&format!("/orders/{id}")).await;
        assert_eq!(s, 200);

        t.restart().await;

        // The checkpoints are where the backend keeps them.
        match t.backend {
            Backend::File => {
                let log = t.config.clone();
                let evstore_server::StoreLocation::File(path) = log.store else {
                    panic!("a file store");
                };
                for name in ["order-summaries", "server-streams"] {
                    let cp = format!("{}.proj-{name}", path.display());
                    assert!(std::path::Path::new(&cp).exists(), "{cp}");
                }
            }
            Backend::Postgres => {
                let store = t.pg.as_ref().unwrap().store.clone();
                let names = tokio::task::spawn_blocking(move || {
                    let mut c = store.connection().unwrap();
                    c.query("SELECT name FROM evstore_checkpoints ORDER BY name", &[])
                        .unwrap()
                        .iter()
                        .map(|r| r.get::<_, String>(0))
                        .collect::<Vec<_>>()
                })
                .await
                .unwrap();
                assert_eq!(names, ["proj-order-summaries", "proj-server-streams"]);
            }
        }

        let (s, order) = t.get(&format!("/orders/{id}")).await;
        assert_eq!(
            (s, &order["total_amount"]),
            (200, &json!("2.50")),
            "{order}"
        );
        let (s, b) = t.get("/users/restart/orders").await;
        assert_eq!((s, b["orders"].as_array().unwrap().len()), (200, 1), "{b}");
        // A write after the restart extends the same stream.
        let (s, b) = t.post(&format!("/orders/{id}/confirm")).await;
        assert_eq!((s, &b["order"]["version"]), (200, &json!(2)), "{b}");
        let (s, streams) = t.get("/streams").await;
        assert_eq!(s, 200);
        let listed = streams["streams"].as_array().unwrap();
        assert_eq!(listed.len(), 1, "{streams}");
        assert_eq!(listed[0]["stream_id"], format!("Order-{id}"));
        let (s, order) = t.get(&format!("/orders/{id}")).await;
        assert_eq!((s, &order["status"]), (200, &json!("confirmed")), "{order}");
        t.stop().await;
    }
);
