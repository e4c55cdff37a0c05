//! A bank on evstore, as a new user writes it: accounts (open, deposit, withdraw without
//! overdraft, close) as a serde event enum, snapshots every 5 events, a checkpointed "balances by
//! owner" projection, 1,000 random commands from 8 threads on 12 accounts, then history and time
//! travel. Run: `cargo run --release -p evstore --example bank`. The integration test
//! `bank_app_holds_under_contention` runs the same code.
#![allow(
    missing_docs,
    reason = "an example: the fields of event and command variants explain themselves"
)]

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use evstore::aggregate::{Aggregate, SerdeEvent};
use evstore::aggregate_projection::AggregateProjection;
use evstore::projection::ProjectionRunner;
use evstore::repository::{Repository, RepositoryError};
use evstore::{RecordedEvent, Store};
use serde::{Deserialize, Serialize};

/// What happened to an account. The variant names are the stored event types.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AccountEvent {
    /// The account was opened for `owner`.
    Opened { owner: String },
    /// Money came in, in cents.
    Deposited { cents: i64 },
    /// Money went out, in cents.
    Withdrawn { cents: i64 },
    /// The (empty) account was closed.
    Closed,
}

impl SerdeEvent for AccountEvent {}

/// What can be asked of an account.
#[derive(Debug, Clone)]
pub enum AccountCommand {
    /// Open the account for `owner`.
    Open { owner: String },
    /// Deposit `cents` (> 0).
    Deposit { cents: i64 },
    /// Withdraw `cents` (> 0, at most the balance: no overdraft).
    Withdraw { cents: i64 },
    /// Close the account (its balance must be 0).
    Close,
}

/// Why a command was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    /// The account was never opened, or is closed.
    #[error("the account is not open")]
    NotOpen,
    /// `Open` on an account that exists.
    #[error("the account is already open")]
    AlreadyOpen,
    /// A zero or negative amount.
    #[error("amounts are positive")]
    NotPositive,
    /// A withdrawal above the balance (cents).
    #[error("insufficient funds: balance {balance}, asked {asked}")]
    InsufficientFunds { balance: i64, asked: i64 },
    /// `Close` with money left on the account.
    #[error("only an empty account can be closed")]
    NotEmpty,
}

/// The account's state: the fold of its events. `skip_serializing_if` is fine in snapshots.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    /// Whose account it is (`None` until opened).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub owner: Option<String>,
    /// Balance in cents.
    pub balance: i64,
    /// Whether it was closed.
    pub closed: bool,
}

impl Aggregate for Account {
    const TYPE_NAME: &'static str = "Account";
    type Event = AccountEvent;
    type Command = AccountCommand;
    type Error = AccountError;

    fn apply(&mut self, event: &AccountEvent) {
        match event {
            AccountEvent::Opened { owner } => self.owner = Some(owner.clone()),
            AccountEvent::Deposited { cents } => self.balance += cents,
            AccountEvent::Withdrawn { cents } => self.balance -= cents,
            AccountEvent::Closed => self.closed = true,
        }
    }

    fn handle(&self, command: &AccountCommand) -> Result<Vec<AccountEvent>, AccountError> {
        let open = self.owner.is_some() && !self.closed;
        match command {
            AccountCommand::Open { .. } if self.owner.is_some() => Err(AccountError::AlreadyOpen),
            AccountCommand::Open { owner } => Ok(vec![AccountEvent::Opened {
                owner: owner.clone(),
            }]),
            _ if !open => Err(AccountError::NotOpen),
            AccountCommand::Deposit { cents } | AccountCommand::Withdraw { cents }
                if *cents <= 0 =>
            {
                Err(AccountError::NotPositive)
            }
            AccountCommand::Deposit { cents } => {
                Ok(vec![AccountEvent::Deposited { cents: *cents }])
            }
            AccountCommand::Withdraw { cents } if *cents > self.balance => {
                Err(AccountError::InsufficientFunds {
                    balance: self.balance,
                    asked: *cents,
                })
            }
            AccountCommand::Withdraw { cents } => {
                Ok(vec![AccountEvent::Withdrawn { cents: *cents }])
            }
            AccountCommand::Close if self.balance != 0 => Err(AccountError::NotEmpty),
            AccountCommand::Close => Ok(vec![AccountEvent::Closed]),
        }
    }
}

/// Read model: total balance per owner, kept by a checkpointed projection.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct BalancesByOwner {
    owner_of: BTreeMap<String, String>,
    /// Total balance in cents per owner.
    pub balances: BTreeMap<String, i64>,
}

impl AggregateProjection for BalancesByOwner {
    type Aggregate = Account;
    const NAME: &'static str = "balances-by-owner";
    const VERSION: u32 = 1;

    fn apply(&mut self, id: &str, event: &AccountEvent, _recorded: &RecordedEvent) {
        let delta = match event {
            AccountEvent::Opened { owner } => {
                self.owner_of.insert(id.to_string(), owner.clone());
                0
            }
            AccountEvent::Deposited { cents } => *cents,
            AccountEvent::Withdrawn { cents } => -cents,
            AccountEvent::Closed => 0,
        };
        let owner = self.owner_of.get(id).cloned().unwrap_or_default();
        *self.balances.entry(owner).or_default() += delta;
    }
}

/// What a run did.
#[derive(Debug, Default)]
pub struct Report {
    /// Commands that recorded events.
    pub accepted: u64,
    /// Commands the domain refused (e.g. an overdraft).
    pub refused: u64,
    /// Commands that gave up on conflicts (`TooManyConflicts`): 0 is the point.
    pub conflict_failures: u64,
    /// Sum of the accounts' balances, cents.
    pub total_cents: i64,
    /// The projection's balances per owner, cents.
    pub by_owner: BTreeMap<String, i64>,
}

/// Run `commands` random commands from `threads` threads on `accounts` accounts in the store at
/// `path`, then fold the projection; the sum over accounts must equal the projection's.
///
/// # Errors
/// The store cannot be opened, or a load, append or checkpoint fails.
///
/// # Panics
/// If a command fails with anything but a domain refusal or `TooManyConflicts`.
pub fn run(
    path: &Path,
    threads: u64,
    commands: u64,
    accounts: u64,
) -> Result<Report, Box<dyn std::error::Error>> {
    let store = Arc::new(Store::open(path)?);
    let bank = Repository::<Account, _>::new(store.clone()).with_snapshot_every(5);
    for a in 0..accounts {
        bank.handle(
            &format!("acct-{a}"),
            &AccountCommand::Open {
                owner: format!("owner-{}", a % 4),
            },
        )?;
    }
    let results = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let bank = bank.clone();
                s.spawn(move || {
                    let mut r = Report::default();
                    let mut seed = 0x9E37_79B9_7F4A_7C15u64.wrapping_mul(t + 1);
                    for _ in 0..commands / threads {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        let id = format!("acct-{}", seed % accounts);
                        let cents = i64::try_from((seed >> 32) % 5_000 + 1).unwrap_or(1);
                        let cmd = if (seed >> 20).is_multiple_of(3) {
                            AccountCommand::Withdraw { cents }
                        } else {
                            AccountCommand::Deposit { cents }
                        };
                        match bank.handle(&id, &cmd) {
                            Ok(_) => r.accepted += 1,
                            Err(RepositoryError::Domain(_)) => r.refused += 1,
                            Err(RepositoryError::TooManyConflicts { .. }) => {
                                r.conflict_failures += 1;
                            }
                            Err(e) => panic!("{id}: {e}"),
                        }
                    }
                    r
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect::<Vec<_>>()
    });
    let mut report = Report::default();
    for r in results {
        report.accepted += r.accepted;
        report.refused += r.refused;
        report.conflict_failures += r.conflict_failures;
    }
    for a in 0..accounts {
        let account = bank.load(&format!("acct-{a}"))?.map(|r| r.state().balance);
        report.total_cents += account.unwrap_or(0);
    }
    let mut balances = ProjectionRunner::<BalancesByOwner, _>::open_beside(store)?;
    balances.catch_up()?;
    balances.checkpoint()?;
    report.by_owner = balances.handle().read(|p| p.balances.clone());
    Ok(report)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("bank.evs");
    let report = run(&path, 8, 1_000, 12)?;
    println!("{report:#?}");
    let store = Arc::new(Store::open(&path)?);
    let bank = Repository::<Account, _>::new(store.clone()).with_snapshot_every(5);
    println!(
        "acct-0 has {} events",
        store.read_stream("Account-acct-0", 0)?.len()
    );
    for step in bank.history("acct-0")?.iter().take(6) {
        println!(
            "v{} {:?} -> balance {}",
            step.recorded.version, step.event, step.state.balance
        );
    }
    let then = bank
        .load_at_version("acct-0", 3)?
        .map(|r| r.state().balance);
    println!(
        "acct-0 at version 3: {then:?}; snapshots: {:?}",
        store.snapshot_stats()?
    );
    Ok(())
}
