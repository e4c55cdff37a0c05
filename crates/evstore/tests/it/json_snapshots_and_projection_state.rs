//! The codec is chosen per aggregate and per projection: an aggregate with
//! `SNAPSHOT_FORMAT = Json` writes JSON snapshots that loads use, and a projection with
//! `STATE_FORMAT = Json` keeps a JSON state in its checkpoint and resumes from it.

use std::sync::Arc;

use evstore::aggregate::{Aggregate, PayloadFormat, SerdeEvent};
use evstore::checkpoint::{checkpoint_path, Checkpoint};
use evstore::codec::Codec;
use evstore::projection::{Projection, ProjectionRunner};
use evstore::repository::Repository;
use evstore::{RecordedEvent, Store};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
enum LampEvent {
    Switched { on: bool },
}
impl SerdeEvent for LampEvent {
    const FORMAT: PayloadFormat = PayloadFormat::Json;
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Lamp {
    on: bool,
    switches: u32,
}

impl Aggregate for Lamp {
    const TYPE_NAME: &'static str = "Lamp";
    const SNAPSHOT_FORMAT: PayloadFormat = PayloadFormat::Json;
    type Event = LampEvent;
    type Command = LampEvent;
    type Error = std::convert::Infallible;
    fn apply(&mut self, LampEvent::Switched { on }: &LampEvent) {
        self.on = *on;
        self.switches += 1;
    }
    fn handle(&self, c: &LampEvent) -> Result<Vec<LampEvent>, Self::Error> {
        Ok(vec![c.clone()])
    }
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Switches {
    total: u64,
}

impl Projection for Switches {
    const NAME: &'static str = "switches";
    const VERSION: u32 = 1;
    const STATE_FORMAT: PayloadFormat = PayloadFormat::Json;
    fn apply(&mut self, _event: &RecordedEvent) {
        self.total += 1;
    }
}

#[test]
fn json_snapshots_and_projection_state_are_written_and_used() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lamp.evs");
    let store = Arc::new(Store::open(&path).unwrap());
    let lamps = Repository::<Lamp, _>::new(store.clone()).with_snapshot_every(3);
    for i in 0..7 {
        lamps
            .handle("l1", &LampEvent::Switched { on: i % 2 == 0 })
            .unwrap();
    }
    // The event payloads and the snapshot are JSON.
    let first = &store.read_stream("Lamp-l1", 0).unwrap()[0];
    assert_eq!(first.data, br#"{"on":true}"#);
    let snap = store.load_snapshot("Lamp-l1").unwrap().unwrap();
    // FF FF, the codec tag with the fingerprint bit, SNAPSHOT_VERSION, fingerprint 0 (no
    // upcasters), the state.
    assert_eq!(&snap.payload[..3], &[0xFF, 0xFF, Codec::Json.tag() | 0x80]);
    assert_eq!(&snap.payload[5..9], &[0, 0, 0, 0]);
    assert_eq!(&snap.payload[9..], br#"{"on":false,"switches":6}"#);

    let fresh = Repository::<Lamp, _>::new(store.clone()).with_snapshot_every(3);
    let before = store.snapshot_stats().unwrap().used;
    let lamp = fresh.load("l1").unwrap().unwrap();
    assert_eq!(
        lamp.state(),
        &Lamp {
            on: true,
            switches: 7
        }
    );
    assert_eq!(
        store.snapshot_stats().unwrap().used,
        before + 1,
        "the JSON snapshot was used"
    );

    let mut runner = ProjectionRunner::<Switches, _>::open_beside(store.clone()).unwrap();
    runner.catch_up().unwrap();
    runner.checkpoint().unwrap();
    let cp = Checkpoint::read(&checkpoint_path(&path, "switches")).unwrap();
    assert_eq!(cp.state_codec, Codec::Json);
    assert_eq!(cp.state, br#"{"total":7}"#);
    drop(runner);
    let resumed = ProjectionRunner::<Switches, _>::open_beside(store).unwrap();
    assert_eq!(resumed.stats().rebuilds, 0);
    assert_eq!(resumed.handle().read(|s| s.total), 7);
}
