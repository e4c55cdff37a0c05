//! The real `evstore serve` binary under load gets SIGTERM: it finishes what is in flight,
//! ends open `/events` streams, flushes and closes the store, and exits 0; reopening the store
//! finds every write it acknowledged. On a file (`--file`) and on PostgreSQL
//! (`--database-url`).

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use evstore::Store;
use evstore_orders::{Order, OrderService};
use evstore_postgres::testing::TestStore;

const WRITERS: usize = 8;

/// `target/<profile>/evstore`, built with the workspace (`cargo test --workspace`, or
/// `cargo test -p evstore-server -p evstore-cli`).
pub fn evstore_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = profile_dir.join("evstore");
    assert!(
        bin.exists(),
        "{} is missing: build it first (cargo build --release -p evstore-cli), or run the \
         tests with the workspace (cargo test --release --workspace)",
        bin.display()
    );
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_keeps_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.evs");
    let (order_id, acked) =
        serve_write_and_sigterm(vec!["--file".into(), file.clone().into()]).await;

    // Reopen the file (the server released its lock) and find every acknowledged add.
    let store = Arc::new(Store::open(&file).unwrap());
    let order = OrderService::new(store)
        .get_order(&order_id)
        .unwrap()
        .unwrap();
    assert_every_add_kept(&order, &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_under_load_keeps_every_acknowledged_write_on_postgres() {
    let test = "sigterm_under_load_keeps_every_acknowledged_write_on_postgres";
    let Some(pg) = tokio::task::spawn_blocking(move || TestStore::fresh(test))
        .await
        .unwrap()
    else {
        return;
    };
    let url = pg.schema_url();
    let (order_id, acked) =
        serve_write_and_sigterm(vec!["--database-url".into(), url.into()]).await;

    // Another connection to the schema finds every acknowledged add.
    let order = tokio::task::spawn_blocking(move || {
        let order = OrderService::new(pg.store.clone())
            .get_order(&order_id)
            .unwrap()
            .unwrap();
        drop(pg);
        order
    })
    .await
    .unwrap();
    assert_every_add_kept(&order, &acked);
}

fn assert_every_add_kept(order: &Order, acked: &[String]) {
    assert!(
        acked.len() >= WRITERS,
        "the load ran: {} acknowledged adds",
        acked.len()
    );
    let stored: std::collections::HashSet<&str> = order
        .items()
        .iter()
        .map(|i| i.product_id.as_str())
        .collect();
    for p in acked {
        assert!(stored.contains(p.as_str()), "acknowledged add {p} was lost");
    }
    assert!(stored.len() >= acked.len());
}

/// Start `evstore serve <store_args>`, create an order, add items to it from 8 writers, send
/// SIGTERM after 0.7 s, and wait for a clean exit; the order id and the acknowledged adds.
async fn serve_write_and_sigterm(store_args: Vec<OsString>) -> (String, Vec<String>) {
    let mut child = Command::new(evstore_binary())
        .arg("serve")
        .args(&store_args)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the ready line")
        .to_string();

    let client = reqwest::Client::new();
    let created: serde_json::Value = client
        .post(format!("{base}/orders?user_id=sig"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let order_id = created["order_id"].as_str().unwrap().to_string();
    // An open live feed must not hold the shutdown up.
    let feed = client.get(format!("{base}/events")).send().await.unwrap();
    assert_eq!(feed.status(), 200);

    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let url = format!("{base}/orders/{order_id}/items");
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acked = Vec::new();
            for i in 0.. {
                if stop.load(Ordering::Relaxed) || i > 5000 {
                    break;
                }
                let product = format!("w{w}-{i}");
                let sent = client
                    .post(&url)
                    .query(&[
                        ("product_id", product.as_str()),
                        ("quantity", "1"),
                        ("price", "0.01"),
                    ])
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 200 => acked.push(product),
                    // Refused or cut off by the shutdown: not acknowledged.
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let pid = child.id().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::task::spawn_blocking(move || {
        for _ in 0..300 {
            if let Some(s) = child.try_wait().unwrap() {
                return s;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        panic!("evstore serve did not exit within 30 s of SIGTERM");
    })
    .await
    .unwrap();
    stop.store(true, Ordering::Relaxed);
    assert!(status.success(), "exit status {status:?}");
    drop(feed);

    let mut acked = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    (order_id, acked)
}
