//! A saga's reactions copy from the trigger's metadata `extra` only the keys the saga lists in
//! `Saga::PROPAGATED_EXTRA` (a tenant id), never the others (a secret); with the default list,
//! none. Saga events and command contexts alike.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use evstore::aggregate::{CommandContext, DomainEvent, EventMetadata};
use evstore::codec::CodecError;
use evstore::saga::{
    saga_checkpoint_path, CommandOutcome, Reaction, Saga, SagaHandler, SagaResult, SagaRunner,
    TRIGGER_POSITION_KEY,
};
use evstore::subscription::SubscriptionFilter;
use evstore::{ExpectedVersion, NewEvent, RecordedEvent, Store};

#[derive(Debug, Clone)]
struct Noted;

impl DomainEvent for Noted {
    fn event_type(&self) -> &'static str {
        "Noted"
    }
    fn schema_version(ty: &str) -> Option<u16> {
        (ty == "Noted").then_some(1)
    }
    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        Ok(Vec::new())
    }
    fn decode(_: &str, _: &[u8]) -> Result<Self, CodecError> {
        Ok(Noted)
    }
}

macro_rules! saga {
    ($name:ident, $label:literal, $keys:expr) => {
        #[derive(Debug, Clone, Default)]
        struct $name;
        impl Saga for $name {
            const NAME: &'static str = $label;
            const PROPAGATED_EXTRA: &'static [&'static str] = $keys;
            type Event = Noted;
            type Command = ();
            fn filter() -> SubscriptionFilter {
                SubscriptionFilter::all().with_event_types(["Placed"])
            }
            fn saga_id(trigger: &RecordedEvent) -> Option<String> {
                Some(trigger.stream_id.clone())
            }
            fn apply(&mut self, _: &Noted) {}
        }
    };
}

saga!(TenantAware, "tenant_aware", &["tenant"]);
saga!(Plain, "plain", &[]);

/// Reacts to every trigger with one event and one command; records the command contexts.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<CommandContext>>>);

impl<G: Saga<Event = Noted, Command = ()>> SagaHandler<G> for Recorder {
    fn react(&self, _: &G, _: &str, _: &RecordedEvent) -> SagaResult<Reaction<Noted, ()>> {
        Ok(Reaction {
            events: vec![Noted],
            commands: vec![()],
        })
    }
    fn dispatch(&self, _: &(), ctx: &CommandContext) -> SagaResult<CommandOutcome> {
        self.0.lock().unwrap().push(ctx.clone());
        Ok(CommandOutcome::Executed)
    }
}

fn trigger_metadata() -> Vec<u8> {
    let mut extra = BTreeMap::new();
    extra.insert("tenant".to_string(), "t1".to_string());
    extra.insert("secret".to_string(), "s".to_string());
    extra.insert(TRIGGER_POSITION_KEY.to_string(), "forged".to_string());
    EventMetadata {
        extra,
        ..EventMetadata::default()
    }
    .encode()
    .unwrap()
}

/// Run saga `G` over one trigger; the extras of its event and of its command's context.
fn reaction_extras<G: Saga<Event = Noted, Command = ()>>(
    store: &Arc<Store>,
) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let recorder = Recorder::default();
    let path = saga_checkpoint_path(store.path(), G::NAME);
    SagaRunner::<G, _, _>::open(store.clone(), recorder.clone(), &path)
        .unwrap()
        .catch_up()
        .unwrap();
    let events = store.read_stream(&G::stream_id("order-1"), 0).unwrap();
    assert_eq!(events.len(), 1);
    let meta = EventMetadata::decode(&events[0].metadata).unwrap();
    let ctx = recorder.0.lock().unwrap()[0].clone();
    (meta.extra, ctx.extra)
}

#[test]
fn reactions_carry_the_listed_extra_keys_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("s.evs")).unwrap());
    let mut placed = NewEvent::new("Placed", vec![]);
    placed.metadata = trigger_metadata();
    store
        .append("order-1", ExpectedVersion::NoStream, &[placed])
        .unwrap();

    let (event_extra, command_extra) = reaction_extras::<TenantAware>(&store);
    assert_eq!(event_extra.get("tenant").map(String::as_str), Some("t1"));
    assert!(!event_extra.contains_key("secret"), "{event_extra:?}");
    assert_eq!(
        event_extra.get(TRIGGER_POSITION_KEY).map(String::as_str),
        Some("0"),
        "the runner's trigger position wins over the trigger's own"
    );
    let expected: BTreeMap<String, String> = [("tenant".to_string(), "t1".to_string())].into();
    assert_eq!(command_extra, expected);

    let (event_extra, command_extra) = reaction_extras::<Plain>(&store);
    assert_eq!(
        event_extra.keys().collect::<Vec<_>>(),
        [TRIGGER_POSITION_KEY]
    );
    assert!(command_extra.is_empty());
}
