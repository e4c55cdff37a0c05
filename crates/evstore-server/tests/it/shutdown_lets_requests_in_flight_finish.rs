//! A graceful shutdown lets requests already in flight finish (here: bodies still arriving
//! when the shutdown starts), answers them, and then closes the store with their writes in it.

use std::sync::Arc;
use std::time::Duration;

use evstore::Store;
use evstore_orders::OrderService;

use crate::support::TestServer;

const IN_FLIGHT: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_at_shutdown_are_answered_and_kept() {
    let mut t = TestServer::start().await;
    let id = t.create_order("late").await;
    let mut requests = Vec::new();
    for i in 0..IN_FLIGHT {
        let url = t.url(&format!("/orders/{id}/items"));
        requests.push(tokio::spawn(async move {
            // The body arrives in two parts, 600 ms apart: the request is in flight when the
            // shutdown begins.
            let first = format!("{{\"product_id\": \"slow-{i}\", ");
            let parts = futures_util::stream::unfold(0, move |step| {
                let first = first.clone();
                async move {
                    match step {
                        0 => Some((Ok::<_, std::io::Error>(first), 1)),
                        1 => {
                            tokio::time::sleep(Duration::from_millis(600)).await;
                            Some((Ok("\"quantity\": 1, \"price\": \"1.00\"}".to_string()), 2))
                        }
                        _ => None,
                    }
                }
            });
            let r = reqwest::Client::new()
                .post(url)
                .header("content-type", "application/json")
                .body(reqwest::Body::wrap_stream(parts))
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }));
    }
    tokio::time::sleep(Duration::from_millis(250)).await;
    let server = t.server.take().unwrap();
    let shutdown = tokio::spawn(server.shutdown());
    for r in requests {
        assert_eq!(r.await.unwrap(), 200, "an in-flight request was answered");
    }
    shutdown.await.unwrap().unwrap();
    // The store was closed (the lock is free) with every answered write in it.
    let store = Arc::new(Store::open(t.file()).unwrap());
    let order = OrderService::new(store).get_order(&id).unwrap().unwrap();
    assert_eq!(order.items().len(), IN_FLIGHT);
    assert_eq!(order.total_cents(), 100 * IN_FLIGHT as i64);
}
