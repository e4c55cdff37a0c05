//! Group commit inside one process: appends that arrive while another append of the same
//! [`PgStore`] is committing wait, and the next leader writes all of them in **one**
//! transaction under the append lock — each with its own checks, in arrival order — so they
//! share one commit (and its WAL flush) instead of queueing for the lock one by one.
//!
//! The gap-free argument is unchanged: a group is one transaction that holds the lock from its
//! first position to its commit. Each request still gets exactly the outcome it would get alone:
//! its checks run after the earlier requests of the group were inserted (the transaction sees
//! its own rows), a refused request (`WrongExpectedVersion`, `IdempotencyConflict`) inserts
//! nothing and does not disturb the others, and if a statement fails (which aborts the
//! transaction) the group is rolled back and every request is retried alone.
//!
//! Requests are plain appends, conditional appends (`append_if`: the condition is checked in
//! the group's transaction after the earlier requests' inserts, so it sees their events) and
//! multi-stream appends (every part checked before any is inserted, so a refused one inserts
//! nothing), mixed freely.

use std::collections::HashMap;

use evstore::{
    AppendCondition, AppendResult, Error, ExpectedVersion, NewEvent, Result, StreamAppend,
};
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::append::{Op, Outcome};
use crate::store::{pg, PgStore};

/// Most events one group transaction takes (the first request is always taken whole).
const MAX_GROUP_EVENTS: usize = 10_000;

/// One queued request (owned: the leader runs it on another thread).
struct Request {
    id: u64,
    op: OwnedOp,
}

/// An owned [`Op`].
enum OwnedOp {
    One {
        stream: String,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        condition: Option<AppendCondition>,
    },
    Multi(Vec<StreamAppend>),
}

impl OwnedOp {
    fn of(op: Op<'_>) -> OwnedOp {
        match op {
            Op::One {
                stream,
                expected,
                events,
                condition,
            } => OwnedOp::One {
                stream: stream.to_string(),
                expected,
                events: events.to_vec(),
                condition: condition.cloned(),
            },
            Op::Multi(parts) => OwnedOp::Multi(parts.to_vec()),
        }
    }

    fn op(&self) -> Op<'_> {
        match self {
            OwnedOp::One {
                stream,
                expected,
                events,
                condition,
            } => Op::One {
                stream,
                expected: *expected,
                events,
                condition: condition.as_ref(),
            },
            OwnedOp::Multi(parts) => Op::Multi(parts),
        }
    }
}

#[derive(Default)]
struct State {
    next_id: u64,
    queue: Vec<Request>,
    done: HashMap<u64, Result<Vec<AppendResult>>>,
    leading: bool,
}

/// The group-commit queue of one [`PgStore`].
#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    changed: Condvar,
    /// Append transactions committed (groups and single appends).
    pub(crate) commits: AtomicU64,
    /// Appends written by them.
    pub(crate) appends: AtomicU64,
}

/// Clears `leading` and wakes everyone, even if the leader panics: the group's requests then
/// get an error instead of waiting forever.
struct LeaderGuard<'a> {
    commit: &'a GroupCommit,
    ids: Vec<u64>,
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.commit.state.lock();
        for id in &self.ids {
            st.done.entry(*id).or_insert_with(|| {
                Err(Error::Internal(
                    "the group commit's leader panicked; the append's outcome is unknown".into(),
                ))
            });
        }
        st.leading = false;
        drop(st);
        self.commit.changed.notify_all();
    }
}

impl GroupCommit {
    /// Queue the request and wait for its outcome, leading a group when nobody does.
    pub(crate) fn submit(&self, store: &PgStore, op: Op<'_>) -> Result<Vec<AppendResult>> {
        let id = {
            let mut st = self.state.lock();
            let id = st.next_id;
            st.next_id += 1;
            st.queue.push(Request {
                id,
                op: OwnedOp::of(op),
            });
            id
        };
        // Bounded: every round either returns, leads a group (which takes this request or one
        // queued before it), or waits for a leader that does.
        loop {
            let mut st = self.state.lock();
            if let Some(r) = st.done.remove(&id) {
                return r;
            }
            if st.leading {
                self.changed.wait(&mut st);
                continue;
            }
            st.leading = true;
            let group = take_group(&mut st.queue);
            drop(st);
            let guard = LeaderGuard {
                commit: self,
                ids: group.iter().map(|r| r.id).collect(),
            };
            let results = commit_group(store, &group);
            self.state.lock().done.extend(results);
            drop(guard);
        }
    }
}

/// The oldest queued requests, up to [`MAX_GROUP_EVENTS`] events (at least one request).
fn take_group(queue: &mut Vec<Request>) -> Vec<Request> {
    let mut events = 0;
    let mut n = 0;
    for r in queue.iter() {
        let len = r.op.op().events();
        if n > 0 && events + len > MAX_GROUP_EVENTS {
            break;
        }
        events += len;
        n += 1;
    }
    queue.drain(..n).collect()
}

/// Run `group` in one transaction; each request's outcome by id.
fn commit_group(store: &PgStore, group: &[Request]) -> Vec<(u64, Result<Vec<AppendResult>>)> {
    if let [only] = group {
        return vec![(only.id, store.run_single(only.op.op()))];
    }
    match try_group(store, group) {
        Ok(results) => results,
        // The transaction failed as a whole: each request alone, for its own outcome.
        Err(_) => group
            .iter()
            .map(|r| (r.id, store.run_single(r.op.op())))
            .collect(),
    }
}

/// The group's transaction. `Err` when a statement or the commit failed: nothing of the group
/// is written (or, for a failed commit, the outcome is unknown and each request is retried
/// alone, where the retry rules recognise what did commit).
fn try_group(store: &PgStore, group: &[Request]) -> Result<Vec<(u64, Result<Vec<AppendResult>>)>> {
    let mut conn = store.conn()?;
    store.begin_locked(&mut conn)?;
    let mut results = Vec::with_capacity(group.len());
    let mut last = None;
    for r in group {
        match store.run_locked(&mut conn, r.op.op()) {
            Ok(Outcome::Written(res)) => {
                if let Some(l) = res.last() {
                    last = Some(l.last_position);
                }
                results.push((r.id, Ok(res)));
            }
            Ok(Outcome::Repeat(res)) => results.push((r.id, Ok(res))),
            // Refusals decided in Rust: the transaction is intact.
            Err(
                e @ (Error::WrongExpectedVersion { .. }
                | Error::IdempotencyConflict { .. }
                | Error::AppendConditionFailed { .. }
                | Error::InvalidInput(_)),
            ) => results.push((r.id, Err(e))),
            Err(e) => {
                let _ = conn.batch_execute("ROLLBACK");
                return Err(e);
            }
        }
    }
    conn.batch_execute("COMMIT").map_err(pg)?;
    if let Some(p) = last {
        store.waiter.advance(p);
    }
    let written = results.iter().filter(|(_, r)| r.is_ok()).count() as u64;
    store.group.commits.fetch_add(1, Ordering::Relaxed);
    store.group.appends.fetch_add(written, Ordering::Relaxed);
    Ok(results)
}
