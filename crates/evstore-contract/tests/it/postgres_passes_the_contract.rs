//! Every contract function against PostgreSQL, each in a fresh schema (skipped with a message
//! without `EVSTORE_PG_URL`; failing with `EVSTORE_REQUIRE_PG=1`).

use evstore_contract as c;
use evstore_postgres::testing::TestStore;

macro_rules! pg_contract {
    ($($name:ident => $body:expr;)*) => {$(
        #[test]
        fn $name() {
            let Some(t) = TestStore::fresh(concat!("postgres_passes_the_contract::", stringify!($name))) else {
                return;
            };
            let f: &dyn Fn(&TestStore) = &$body;
            f(&t);
        }
    )*};
}

pg_contract! {
    expected_versions => |t| c::contract_expected_versions(&*t.store);
    idempotent_retry => |t| c::contract_idempotent_retry(&*t.store);
    identical_appends_racing_write_once => |t| c::contract_identical_appends_racing_write_once(&t.store);
    batches_are_atomic_and_limits_enforced => |t| c::contract_batches_are_atomic_and_limits_enforced(&*t.store);
    positions_and_reads => |t| c::contract_positions_and_reads(&*t.store);
    subscription_sees_every_position_once_with_16_writers => |t| c::contract_subscription_sees_every_position_once(&t.store, 16);
    snapshots => |t| c::contract_snapshots(&*t.store);
    checkpoints => |t| c::contract_checkpoints(&t.store);
    order_service_runs_unchanged => |t| c::contract_order_service_runs_unchanged(&t.store);
    tags_round_trip => |t| c::contract_tags_round_trip(&*t.store);
    query_semantics => |t| c::contract_query_semantics(&*t.store);
    read_query_pages => |t| c::contract_read_query_pages(&*t.store);
    append_if => |t| c::contract_append_if(&*t.store);
    append_if_idempotent_retry => |t| c::contract_append_if_idempotent_retry(&*t.store);
    racing_tag_claims_have_one_winner_with_8_threads => |t| c::contract_racing_tag_claims_have_one_winner(&t.store, 8);
    append_multi_is_atomic => |t| c::contract_append_multi_is_atomic(&*t.store);
    append_multi_idempotent_retry => |t| c::contract_append_multi_idempotent_retry(&*t.store);
    mixed_appends_keep_positions_dense_with_8_threads => |t| c::contract_mixed_appends_keep_positions_dense(&t.store, 8);
}
