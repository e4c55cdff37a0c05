//! A tiny aggregate for repository tests.
#![allow(
    dead_code,
    reason = "shared by the test modules, each of which uses a subset"
)]

use evstore::aggregate::{Aggregate, DomainEvent};
use evstore::codec::{self, CodecError};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq)]
pub enum CounterEvent {
    Added(u32),
    Reset,
}

impl DomainEvent for CounterEvent {
    fn event_type(&self) -> &'static str {
        match self {
            CounterEvent::Added(_) => "Added",
            CounterEvent::Reset => "Reset",
        }
    }
    fn schema_version(event_type: &str) -> Option<u16> {
        match event_type {
            "Added" | "Reset" => Some(1),
            _ => None,
        }
    }
    fn encode(&self) -> Result<Vec<u8>, CodecError> {
        match self {
            CounterEvent::Added(n) => codec::encode(n),
            CounterEvent::Reset => Ok(Vec::new()),
        }
    }
    fn decode(event_type: &str, payload: &[u8]) -> Result<Self, CodecError> {
        match event_type {
            "Added" => Ok(CounterEvent::Added(codec::decode(payload)?)),
            "Reset" if payload.is_empty() => Ok(CounterEvent::Reset),
            other => Err(CodecError::Decode(format!("bad {other} event"))),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counter {
    pub total: u64,
    pub adds: u64,
    pub history_hash: u64,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CounterError {
    #[error("cannot add zero")]
    Zero,
}

#[derive(Debug, Clone)]
pub enum CounterCommand {
    Add(u32),
    Reset,
}

impl Aggregate for Counter {
    const TYPE_NAME: &'static str = "Counter";
    type Event = CounterEvent;
    type Command = CounterCommand;
    type Error = CounterError;

    fn apply(&mut self, event: &CounterEvent) {
        match event {
            CounterEvent::Added(n) => {
                self.total += u64::from(*n);
                self.adds += 1;
            }
            CounterEvent::Reset => self.total = 0,
        }
        // Order-sensitive, so a wrong fold order shows up.
        self.history_hash = self
            .history_hash
            .wrapping_mul(31)
            .wrapping_add(self.total + 1);
    }

    fn handle(&self, command: &CounterCommand) -> Result<Vec<CounterEvent>, CounterError> {
        match command {
            CounterCommand::Add(0) => Err(CounterError::Zero),
            CounterCommand::Add(n) => Ok(vec![CounterEvent::Added(*n)]),
            CounterCommand::Reset => Ok(vec![CounterEvent::Reset]),
        }
    }
}
