//! Every contract function against a fresh file store each.

use std::sync::Arc;

use evstore::Store;
use evstore_contract as c;

fn fresh() -> (tempfile::TempDir, Arc<Store>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path().join("contract.evs")).expect("open");
    (dir, Arc::new(store))
}

#[test]
fn expected_versions() {
    let (_d, s) = fresh();
    c::contract_expected_versions(&*s);
}

#[test]
fn idempotent_retry() {
    let (_d, s) = fresh();
    c::contract_idempotent_retry(&*s);
}

#[test]
fn identical_appends_racing_write_once() {
    let (_d, s) = fresh();
    c::contract_identical_appends_racing_write_once(&s);
}

#[test]
fn batches_are_atomic_and_limits_enforced() {
    let (_d, s) = fresh();
    c::contract_batches_are_atomic_and_limits_enforced(&*s);
}

#[test]
fn positions_and_reads() {
    let (_d, s) = fresh();
    c::contract_positions_and_reads(&*s);
}

#[test]
fn subscription_sees_every_position_once_with_16_writers() {
    let (_d, s) = fresh();
    c::contract_subscription_sees_every_position_once(&s, 16);
}

#[test]
fn snapshots() {
    let (_d, s) = fresh();
    c::contract_snapshots(&*s);
}

#[test]
fn checkpoints() {
    let (_d, s) = fresh();
    c::contract_checkpoints(&s);
}

#[test]
fn order_service_runs_unchanged() {
    let (_d, s) = fresh();
    c::contract_order_service_runs_unchanged(&s);
}

#[test]
fn tags_round_trip() {
    let (_d, s) = fresh();
    c::contract_tags_round_trip(&*s);
}

#[test]
fn query_semantics() {
    let (_d, s) = fresh();
    c::contract_query_semantics(&*s);
}

#[test]
fn read_query_pages() {
    let (_d, s) = fresh();
    c::contract_read_query_pages(&*s);
}

#[test]
fn append_if() {
    let (_d, s) = fresh();
    c::contract_append_if(&*s);
}

#[test]
fn append_if_idempotent_retry() {
    let (_d, s) = fresh();
    c::contract_append_if_idempotent_retry(&*s);
}

#[test]
fn racing_tag_claims_have_one_winner_with_8_threads() {
    let (_d, s) = fresh();
    c::contract_racing_tag_claims_have_one_winner(&s, 8);
}

#[test]
fn append_multi_is_atomic() {
    let (_d, s) = fresh();
    c::contract_append_multi_is_atomic(&*s);
}

#[test]
fn append_multi_idempotent_retry() {
    let (_d, s) = fresh();
    c::contract_append_multi_idempotent_retry(&*s);
}

#[test]
fn mixed_appends_keep_positions_dense_with_8_threads() {
    let (_d, s) = fresh();
    c::contract_mixed_appends_keep_positions_dense(&s, 8);
}
