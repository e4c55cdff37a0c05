//! The Order summaries kept in PostgreSQL: model and checkpoint commit in one transaction, so a
//! failure in the middle of a batch loses nothing and applies nothing twice; queries by order
//! and by user agree with the in-memory projection.

use std::sync::Arc;

use evstore::subscription::SubscriptionFilter;
use evstore::{Error, RecordedEvent, Result};
use evstore_orders::OrderService;
use evstore_postgres::testing::TestStore;
use evstore_postgres::{OrderSummariesTable, PgCheckpoint, PgProjector, TableProjection};

/// The Order table projection, failing once at its `fail_at`-th event (a crash mid-batch).
#[derive(Default)]
struct Flaky {
    inner: OrderSummariesTable,
    seen: u64,
    fail_at: Option<u64>,
}

impl TableProjection for Flaky {
    const NAME: &'static str = OrderSummariesTable::NAME;
    const VERSION: u32 = OrderSummariesTable::VERSION;
    fn filter(&self) -> SubscriptionFilter {
        self.inner.filter()
    }
    fn reset(&mut self, tx: &mut postgres::Transaction<'_>) -> Result<()> {
        self.inner.reset(tx)
    }
    fn apply(&mut self, tx: &mut postgres::Transaction<'_>, e: &RecordedEvent) -> Result<()> {
        self.seen += 1;
        if self.fail_at == Some(self.seen) {
            self.fail_at = None;
            return Err(Error::Internal("injected failure".into()));
        }
        self.inner.apply(tx, e)
    }
}

#[test]
fn a_failed_batch_is_rolled_back_and_replayed_exactly_once() {
    let Some(t) = TestStore::fresh("a_failed_batch_is_rolled_back_and_replayed_exactly_once")
    else {
        return;
    };
    let svc = OrderService::new(t.store.clone());
    let mut ids = Vec::new();
    for u in 0..3 {
        for _ in 0..4 {
            let id = svc.create_order(&format!("user-{u}")).unwrap();
            svc.add_item(&id, "sku", 2, 250).unwrap();
            svc.add_item(&id, "sku2", 1, 1999).unwrap();
            ids.push(id);
        }
    }
    svc.confirm(&ids[0]).unwrap();
    let flaky = Flaky {
        fail_at: Some(20),
        ..Flaky::default()
    };
    let mut p = PgProjector::open(Arc::clone(&t.store), flaky).unwrap();
    assert_eq!(p.rebuilt(), Some("no checkpoint"));
    assert!(p.catch_up().is_err(), "the injected failure surfaces");
    // Nothing of the failed batch was kept: the checkpoint did not move.
    let cp = PgCheckpoint::load(
        &mut *t.store.connection().unwrap(),
        OrderSummariesTable::NAME,
    )
    .unwrap()
    .unwrap();
    assert_eq!(cp.next_position, 0);
    assert!(OrderSummariesTable::order(&t.store, &ids[0])
        .unwrap()
        .is_none());
    // The same projector resumes from the committed checkpoint; every total is exact.
    p.catch_up().unwrap();
    check_totals(&t, &ids);
    // A new projector resumes from the checkpoint (applies nothing more).
    let mut again =
        PgProjector::open(Arc::clone(&t.store), OrderSummariesTable::default()).unwrap();
    assert_eq!(again.rebuilt(), None);
    assert_eq!(again.catch_up().unwrap(), 0);
    svc.cancel(&ids[1], "changed mind").unwrap();
    assert_eq!(again.catch_up().unwrap(), 1);
    check_totals(&t, &ids);
    let cancelled = OrderSummariesTable::order(&t.store, &ids[1])
        .unwrap()
        .unwrap();
    assert_eq!(cancelled.status, "cancelled");
    let confirmed = OrderSummariesTable::order(&t.store, &ids[0])
        .unwrap()
        .unwrap();
    assert_eq!(confirmed.status, "confirmed");
}

fn check_totals(t: &TestStore, ids: &[String]) {
    for id in ids {
        let row = OrderSummariesTable::order(&t.store, id).unwrap().unwrap();
        assert_eq!(
            (row.total_cents, row.item_count),
            (2 * 250 + 1999, 3),
            "{id}"
        );
    }
    for u in 0..3 {
        let orders = OrderSummariesTable::user_orders(&t.store, &format!("user-{u}")).unwrap();
        assert_eq!(orders.len(), 4);
        assert!(orders
            .windows(2)
            .all(|w| w[0].created_at >= w[1].created_at));
    }
}

#[test]
fn two_projectors_of_one_name_never_apply_an_event_twice() {
    let Some(t) = TestStore::fresh("two_projectors_of_one_name_never_apply_an_event_twice") else {
        return;
    };
    let svc = OrderService::new(t.store.clone());
    let ids: Vec<String> = (0..20)
        .map(|i| {
            let id = svc.create_order(&format!("u{}", i % 2)).unwrap();
            svc.add_item(&id, "a", 1, 100).unwrap();
            id
        })
        .collect();
    let other = Arc::new(t.connect_again());
    let mut a = PgProjector::open(Arc::clone(&t.store), OrderSummariesTable::default()).unwrap();
    let mut b = PgProjector::open(other, OrderSummariesTable::default()).unwrap();
    // Interleave small steps of both.
    for _ in 0..60 {
        a.step(3, std::time::Duration::ZERO).unwrap();
        b.step(5, std::time::Duration::ZERO).unwrap();
    }
    a.catch_up().unwrap();
    b.catch_up().unwrap();
    for id in &ids {
        let row = OrderSummariesTable::order(&t.store, id).unwrap().unwrap();
        assert_eq!((row.total_cents, row.item_count), (100, 1));
    }
}
