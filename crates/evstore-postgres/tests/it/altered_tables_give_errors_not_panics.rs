//! Values the code does not expect (a table altered by hand) are errors, never panics.

use evstore::{ExpectedVersion, NewEvent};
use evstore_postgres::testing::TestStore;
use evstore_postgres::PgCheckpoint;

#[test]
fn a_column_of_another_type_is_an_error() {
    let Some(t) = TestStore::fresh("a_column_of_another_type_is_an_error") else {
        return;
    };
    t.store
        .append("s", ExpectedVersion::Any, &[NewEvent::new("E", vec![1])])
        .unwrap();
    let mut c = t.store.connection().unwrap();
    c.batch_execute(
        "INSERT INTO evstore_checkpoints (name, next_position) VALUES ('x', 1); \
         ALTER TABLE evstore_checkpoints ALTER COLUMN last_event_id TYPE text; \
         ALTER TABLE evstore_events ALTER COLUMN data TYPE text USING encode(data, 'hex')",
    )
    .unwrap();
    assert!(PgCheckpoint::load(&mut *c, "x").is_err());
    drop(c);
    assert!(t.store.read_stream("s", 0).is_err());
    assert!(t.store.read_all(0).next().is_some_and(|r| r.is_err()));
}
