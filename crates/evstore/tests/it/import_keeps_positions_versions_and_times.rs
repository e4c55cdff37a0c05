//! `Store::import` (what `evstore copy` uses into a log file) writes events with the ids,
//! versions, positions and times another store recorded, and refuses anything that does not
//! continue the store exactly, writing nothing of that batch.

use crate::common::*;
use evstore::{Durability, Error, ExpectedVersion, NewEvent, Store};

#[test]
fn import_reproduces_a_log_and_refuses_what_does_not_continue_it() {
    let dir = tempfile::tempdir().unwrap();
    let src =
        Store::open_with(dir.path().join("src.evs"), small_options(Durability::Sync)).unwrap();
    for i in 0..40u32 {
        let batch: Vec<NewEvent> = (0..1 + i % 3)
            .map(|j| {
                NewEvent::new(format!("T{j}"), i.to_le_bytes().to_vec())
                    .with_metadata(vec![7; j as usize])
            })
            .collect();
        src.append(&format!("s-{}", i % 5), ExpectedVersion::Any, &batch)
            .unwrap();
    }
    let all = all_events(&src);
    let dst = Store::open_with(
        dir.path().join("dst.evs"),
        small_options(Durability::Buffered),
    )
    .unwrap();
    dst.import(&all[..10]).unwrap();
    // A gap, a repeat, and a version that does not continue its stream are refused.
    assert!(dst.import(&all[11..12]).is_err(), "a gap");
    assert!(dst.import(&all[9..10]).is_err(), "a repeat");
    let mut wrong = all[10].clone();
    wrong.version += 1;
    assert!(dst.import(&[wrong]).is_err());
    // An earlier time than the store's last is refused.
    let mut early = all[10].clone();
    early.recorded_at = all[0].recorded_at - chrono::Duration::seconds(1);
    assert!(matches!(dst.import(&[early]), Err(Error::InvalidInput(_))));
    assert_eq!(
        dst.head_position(),
        Some(9),
        "nothing of the refused batches was written"
    );
    dst.import(&all[10..]).unwrap();
    dst.flush().unwrap();
    assert_eq!(all_events(&dst), all);
    drop(dst);
    let reopened = Store::open(dir.path().join("dst.evs")).unwrap();
    assert_eq!(all_events(&reopened), all, "identical after reopen");
    let r = reopened
        .append(
            "s-0",
            ExpectedVersion::Any,
            &[NewEvent::new("After", vec![])],
        )
        .unwrap();
    assert_eq!(r.first_position, all.len() as u64);
}
