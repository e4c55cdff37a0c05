//! A wait for new events is woken by LISTEN/NOTIFY when another store (as another process
//! would) appends, not by the polling fallback.

use std::time::{Duration, Instant};

use evstore::subscription::{Subscription, SubscriptionFilter};
use evstore::{ExpectedVersion, NewEvent};
use evstore_postgres::testing::TestStore;
use evstore_postgres::{PgOptions, PgStore};

#[test]
fn a_wait_is_woken_by_another_stores_append() {
    let Some(t) = TestStore::fresh("a_wait_is_woken_by_another_stores_append") else {
        return;
    };
    // The waiting store polls only every 60 s: a wake sooner can only come from NOTIFY.
    let waiting = PgStore::connect_with(
        &t.url,
        PgOptions {
            poll_interval: Duration::from_secs(60),
            ..TestStore::options(t.store.schema())
        },
    )
    .unwrap();
    // Start the listener (a first wait that times out), then append from the other store.
    assert!(!waiting.wait_for_position(0, Duration::from_millis(10)));
    let writer = t.store.clone();
    let h = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        writer
            .append("s", ExpectedVersion::Any, &[NewEvent::new("E", vec![])])
            .unwrap();
    });
    let started = Instant::now();
    let mut sub = Subscription::new(&waiting, 0, SubscriptionFilter::all());
    let e = sub.next_timeout(Duration::from_secs(30)).unwrap();
    assert_eq!(e.map(|e| e.position), Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "woken by the 60 s poll, not by NOTIFY: {:?}",
        started.elapsed()
    );
    h.join().unwrap();
}

#[test]
fn without_notifications_polling_still_delivers() {
    let Some(t) = TestStore::fresh("without_notifications_polling_still_delivers") else {
        return;
    };
    let waiting = PgStore::connect_with(
        &t.url,
        PgOptions {
            poll_interval: Duration::from_millis(50),
            ..TestStore::options(t.store.schema())
        },
    )
    .unwrap();
    // An insert that sends no NOTIFY (as a writer without it would): only polling sees it.
    t.store
        .append("s", ExpectedVersion::Any, &[NewEvent::new("E", vec![])])
        .unwrap();
    let mut c = t.store.connection().unwrap();
    c.execute(
        "INSERT INTO evstore_events SELECT 1, 's', 1, gen_random_uuid(), 'E', now(), '', ''",
        &[],
    )
    .unwrap();
    assert!(waiting.wait_for_position(1, Duration::from_secs(10)));
}
