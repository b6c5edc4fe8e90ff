//! A gateway tick on several cores: the gateways' own work due at one tick of the grid
//! (`super::FLUSH_MS`) — each one's flush, decisions and the receipt batches that
//! arrived since the last tick — runs in parallel, and what it
//! asks the world to do is applied afterwards, in the order the events were queued,
//! exactly as the one-thread loop would (`World::run_tick`).
//!
//! Why the order of results is the order of the one-thread loop:
//!
//! - A job touches one gateway's state (verifier, trust engine, receipts, history), the
//!   shared signature memo (a pure function: only who computes an entry moves) and its
//!   own trace records; a tick holds at most one job per gateway, so no two jobs share
//!   state. A job may hold several events of its gateway (its decisions and receipt
//!   batches, then its flush) when the actions of the earlier ones never touch the gateway
//!   ([`may_join`]): computing them back to back is what the loop would compute.
//! - What the world does with a job's actions (`World::act`) reads and writes the
//!   world's own state and the event queue, never another gateway's state: a sync
//!   request picks its responder from the world's tracking list, a fork fetch is an
//!   event of the peer (`Ev::Fetch`). So a job computed before an earlier job's actions
//!   were applied computes what it would have computed after them.
//! - The actions and the trace records are applied in queue order; events the actions
//!   schedule at the same instant come after every event already queued for it, as in
//!   the one-thread loop.
//!
//! The workers are persistent threads (a tick is ~1 ms of work: a thread per tick would
//! cost as much), fed through one mutex-guarded list that this thread also takes jobs
//! from: if a worker is not scheduled (the second core is busy), the loop does the tick
//! alone. Heaviest jobs first. A worker that panics makes the loop panic, never hang.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use slope_node::trust::PreparedBatch;

use super::gateway::{Action, Gateway};
use super::trace::Records;

/// A gateway's own work at a tick.
#[derive(Debug, Clone)]
pub enum Work {
    /// Verify the inbox (`Ev::Flush`).
    Flush,
    /// Decide on the attestations whose wait is over (`Ev::Decide`).
    Decide,
    /// Take a receipt batch that arrived since the last tick (`Ev::Receipts`).
    Receipts(Arc<Option<PreparedBatch>>),
}

/// Runs `work` of gateway `g` at `now_us`: its trace records go to `rec`, its actions
/// are returned. The one code path of the one-thread loop and of the workers.
pub fn work(gw: &mut Gateway, g: u16, work: &Work, now_us: u64, rec: &mut Records) -> Vec<Action> {
    let now_ms = now_us / 1000;
    match work {
        Work::Flush => {
            rec.record(now_us, 8, &[u64::from(g), gw.inbox_len() as u64]);
            gw.flush(now_ms, rec)
        }
        Work::Decide => {
            rec.record(now_us, 15, &[u64::from(g)]);
            gw.decide(now_ms)
        }
        Work::Receipts(batch) => {
            rec.record(now_us, 14, &[u64::from(g)]);
            gw.handle_receipts(batch.as_ref().as_ref());
            Vec::new()
        }
    }
}

/// A rough cost of `work` for `gw`, to start the heaviest jobs first.
pub fn weight(gw: &Gateway, work: &Work) -> usize {
    match work {
        Work::Flush => gw.inbox_len(),
        Work::Decide => gw.corroboration.pending(),
        Work::Receipts(b) => b.as_ref().as_ref().map_or(1, |b| b.entries().len() / 8),
    }
}

/// Whether another event of a gateway may join its job at a tick after `works`: no
/// event already in it has actions that touch the gateway's state when the world
/// applies them. A flush's may (a sync request nobody can answer is marked done at
/// once, `Gateway::synced`); a decision's never do (oracle bookkeeping, the next
/// decision's event); a receipt batch has none.
pub fn may_join(works: &[(usize, Work)]) -> bool {
    works.iter().all(|(_, w)| !matches!(w, Work::Flush))
}

/// Trace bytes a job's event starts with room for (a flush records ~25 bytes per frame).
const RECORDS_BYTES: usize = 512;

/// One gateway's work at a tick (its events there, in queue order), carrying the
/// gateway there and the results back.
pub struct Job {
    pub g: u16,
    /// The events: position in the tick's queue order, and the work.
    pub works: Vec<(usize, Work)>,
    pub now_us: u64,
    pub weight: usize,
    pub gw: Box<Gateway>,
    /// Per event: position, trace records, actions.
    pub out: Vec<(usize, Records, Vec<Action>)>,
}

impl Job {
    fn run(&mut self) {
        for (order, w) in &self.works {
            let (order, mut rec) = (*order, Records::with_capacity(RECORDS_BYTES));
            let actions = work(&mut self.gw, self.g, w, self.now_us, &mut rec);
            self.out.push((order, rec, actions));
        }
    }
}

#[derive(Default)]
struct State {
    todo: Vec<Job>,
    done: Vec<Job>,
    stop: bool,
    panicked: bool,
    /// CPU seconds of the workers that stopped.
    cpu_s: f64,
    /// Gateway events the workers ran (the rest ran on the loop's thread).
    worker_events: u64,
    /// Workers blocked on `Shared::work`, and whether the loop is blocked on
    /// `Shared::done`: a condition variable's notification is a system call even when
    /// nobody waits, so each side notifies only a waiter it knows of (both read and
    /// written under the lock the waits release, so no wake-up is lost).
    idle: usize,
    loop_waiting: bool,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Jobs to take (or stop).
    work: Condvar,
    /// A job finished.
    done: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Persistent worker threads for gateway ticks.
pub struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// `workers` threads beside the event loop's (none: [`Pool::run`] runs every job
    /// on the calling thread).
    pub fn new(workers: usize) -> Self {
        let shared = Arc::new(Shared::default());
        let workers = (0..workers)
            .filter_map(|i| {
                let s = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("slope-testnet-tick-{i}"))
                    .spawn(move || worker(&s))
                    .ok()
            })
            .collect();
        Self { shared, workers }
    }

    /// Worker threads running.
    pub fn workers(&self) -> usize {
        self.workers.len()
    }

    /// Runs every job, on the workers and on this thread, and returns them (in any
    /// order: their results carry their positions).
    pub fn run(&self, mut jobs: Vec<Job>) -> Vec<Job> {
        let n = jobs.len();
        // The heaviest at the end: taken first.
        jobs.sort_by_key(|j| j.weight);
        let idle = {
            let mut s = self.shared.lock();
            s.todo = jobs;
            s.done.reserve(n);
            s.idle
        };
        // A worker not counted idle is awake and takes the list before it waits again.
        if idle > 0 {
            self.shared.work.notify_all();
        }
        loop {
            let job = self.shared.lock().todo.pop();
            let Some(mut job) = job else { break };
            job.run();
            self.shared.lock().done.push(job);
        }
        let mut s = self.shared.lock();
        while s.done.len() < n && !s.panicked {
            s.loop_waiting = true;
            s = self
                .shared
                .done
                .wait(s)
                .unwrap_or_else(PoisonError::into_inner);
            s.loop_waiting = false;
        }
        assert!(!s.panicked, "a gateway tick worker panicked");
        std::mem::take(&mut s.done)
    }
}

impl Pool {
    /// Stops the workers; returns the CPU seconds they used and the gateway events
    /// they ran.
    pub fn finish(&mut self) -> (f64, u64) {
        self.shared.lock().stop = true;
        self.shared.work.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        let s = self.shared.lock();
        (s.cpu_s, s.worker_events)
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.finish();
    }
}

fn worker(shared: &Shared) {
    let mut s = shared.lock();
    loop {
        if s.stop {
            s.cpu_s += crate::metrics::thread_cpu_s().unwrap_or(0.0);
            return;
        }
        let Some(mut job) = s.todo.pop() else {
            s.idle += 1;
            s = shared.work.wait(s).unwrap_or_else(PoisonError::into_inner);
            s.idle -= 1;
            continue;
        };
        drop(s);
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run()));
        s = shared.lock();
        match ran {
            Ok(()) => {
                s.worker_events += job.works.len() as u64;
                s.done.push(job);
            }
            Err(_) => s.panicked = true,
        }
        if s.loop_waiting && (s.todo.is_empty() || s.panicked) {
            shared.done.notify_one();
        }
    }
}
