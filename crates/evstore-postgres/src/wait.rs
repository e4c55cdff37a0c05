//! Waiting for new events: LISTEN/NOTIFY with a polling fallback.
//!
//! Every append's transaction queues `pg_notify(channel, last_position)`, delivered when it
//! commits. The first wait of a [`PgStore`](crate::PgStore) opens a dedicated connection, runs
//! `LISTEN`, and hands it to a thread that records each notified position and wakes waiters.
//! Waiters also re-read the head every [`PgOptions::poll_interval`](crate::PgOptions): a
//! notification lost to a broken listener connection (it reconnects) or sent before `LISTEN`
//! delays a waiter by at most that long, never forever. Appends made through the same
//! `PgStore` wake its waiters directly.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evstore::Result;
use parking_lot::{Condvar, Mutex};
use postgres::fallible_iterator::FallibleIterator;
use postgres::NoTls;

/// The shared state of waits on one store.
pub(crate) struct Waiter {
    config: postgres::Config,
    channel: String,
    poll: Duration,
    /// The highest position known committed (`None`: none known yet).
    known: Mutex<Option<u64>>,
    changed: Condvar,
    /// Whether a listener thread runs.
    listening: Mutex<bool>,
    stop: Arc<AtomicBool>,
}

impl Waiter {
    pub(crate) fn new(config: postgres::Config, channel: String, poll: Duration) -> Waiter {
        Waiter {
            config,
            channel,
            poll,
            known: Mutex::new(None),
            changed: Condvar::new(),
            listening: Mutex::new(false),
            stop: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Record that `position` is committed and wake waiters.
    pub(crate) fn advance(&self, position: u64) {
        let mut known = self.known.lock();
        if known.is_none_or(|k| k < position) {
            *known = Some(position);
            self.changed.notify_all();
        }
    }

    /// The highest position known committed, without a query.
    pub(crate) fn known(&self) -> Option<u64> {
        *self.known.lock()
    }

    /// Stop the listener thread (within one poll interval).
    pub(crate) fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// Block until `position` is known committed or `timeout` passes; `read_head` queries the
    /// head (the polling fallback). Returns whether it is.
    pub(crate) fn wait_for(
        self: &Arc<Self>,
        position: u64,
        timeout: Duration,
        read_head: &dyn Fn() -> Result<Option<u64>>,
    ) -> bool {
        if self.known().is_some_and(|k| k >= position) {
            return true;
        }
        self.ensure_listener();
        let deadline = Instant::now() + timeout;
        // Bounded by the deadline.
        loop {
            match read_head() {
                Ok(Some(h)) => self.advance(h),
                Ok(None) => {}
                Err(e) => tracing::warn!("evstore-postgres: reading the head failed: {e}"),
            }
            let mut known = self.known.lock();
            if known.is_some_and(|k| k >= position) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            let slice = (deadline - now).min(self.poll);
            let _ = self.changed.wait_for(&mut known, slice);
            if known.is_some_and(|k| k >= position) {
                return true;
            }
        }
    }

    /// Start the listener thread if none runs: connect and `LISTEN` here (so notifications
    /// from now on are caught), then hand the connection to the thread. On failure, waits rely
    /// on polling and the next wait tries again.
    fn ensure_listener(self: &Arc<Self>) {
        let mut listening = self.listening.lock();
        if *listening || self.stop.load(Ordering::SeqCst) {
            return;
        }
        let client = match self.listen() {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("evstore-postgres: LISTEN failed, polling instead: {e}");
                return;
            }
        };
        *listening = true;
        let me = Arc::downgrade(self);
        let spawned = std::thread::Builder::new()
            .name("evstore-pg-listen".into())
            .spawn(move || listen_loop(&me, client));
        if let Err(e) = spawned {
            tracing::warn!("evstore-postgres: cannot start the listener thread: {e}");
            *listening = false;
        }
    }

    fn listen(&self) -> std::result::Result<postgres::Client, postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        client.batch_execute(&format!("LISTEN \"{}\"", self.channel))?;
        Ok(client)
    }
}

/// The listener thread: record notified positions until the store is dropped or shut down;
/// reconnect after an error.
fn listen_loop(me: &std::sync::Weak<Waiter>, mut client: postgres::Client) {
    // Bounded by the stop flag and the store's lifetime, checked every poll interval.
    loop {
        let Some(w) = me.upgrade() else { return };
        if w.stop.load(Ordering::SeqCst) {
            return;
        }
        let poll = w.poll;
        let mut best = None;
        let mut failed = false;
        {
            let mut notes = client.notifications();
            let mut it = notes.timeout_iter(poll);
            // Bounded: drains what arrived, then one timeout.
            loop {
                match it.next() {
                    Ok(Some(n)) => {
                        if let Ok(p) = n.payload().parse::<u64>() {
                            best = best.max(Some(p));
                        }
                    }
                    Err(_) => {
                        failed = true;
                        break;
                    }
                    Ok(None) => break,
                }
                if best.is_some() {
                    break;
                }
            }
        }
        if let Some(p) = best {
            w.advance(p);
        }
        if failed {
            std::thread::sleep(poll);
            match w.listen() {
                Ok(c) => client = c,
                Err(e) => {
                    tracing::warn!("evstore-postgres: LISTEN reconnect failed: {e}");
                    *w.listening.lock() = false;
                    return;
                }
            }
        }
    }
}
