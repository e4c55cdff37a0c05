//! The bank example (crates/evstore/examples/bank.rs), written the way the guide teaches: 1,000
//! commands from 8 threads on 12 accounts at default settings (`Repository::handle`) end with
//! no command failing for conflicts, the accounts' balances adding up to the projection's, and
//! every snapshot taken being usable.

#[expect(
    dead_code,
    reason = "the example's main is not called here; its run() is"
)]
#[path = "../../examples/bank.rs"]
mod bank;

use std::sync::Arc;

use bank::{Account, AccountCommand, AccountError};
use evstore::repository::{Repository, RepositoryError};
use evstore::Store;

#[test]
fn bank_app_holds_under_contention() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.evs");
    let report = bank::run(&path, 8, 1_000, 12).unwrap();
    assert_eq!(report.conflict_failures, 0, "{report:?}");
    assert_eq!(report.accepted + report.refused, 1_000);
    assert!(report.accepted > 500, "{report:?}");
    let projected: i64 = report.by_owner.values().sum();
    assert_eq!(
        projected, report.total_cents,
        "projection and aggregates agree"
    );

    // Snapshots: every one the loads met was usable (the state uses skip_serializing_if).
    let store = Arc::new(Store::open(&path).unwrap());
    let bank = Repository::<Account, _>::new(store.clone()).with_snapshot_every(5);
    for a in 0..12 {
        let loaded = bank.load(&format!("acct-{a}")).unwrap().unwrap();
        let replayed = bank.history(&format!("acct-{a}")).unwrap();
        assert_eq!(Some(loaded.state()), replayed.last().map(|s| &s.state));
    }
    let stats = store.snapshot_stats().unwrap();
    assert!(stats.live > 0, "{stats:?}");
    assert_eq!(
        stats.used, stats.live,
        "every live snapshot served a load: {stats:?}"
    );
    assert_eq!(stats.ignored_undecodable, 0, "{stats:?}");

    // The overdraft rule holds and is reported as a domain refusal.
    let err = bank
        .handle("acct-0", &AccountCommand::Withdraw { cents: i64::MAX })
        .unwrap_err();
    assert!(
        matches!(
            err,
            RepositoryError::Domain(AccountError::InsufficientFunds { .. })
        ),
        "{err}"
    );
}
