//! The event queue: a min-heap on (virtual time, insertion number), so events at one
//! instant run in the order they were scheduled and a run is a pure function of its seed.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// An event due at `at` (virtual microseconds).
#[derive(Debug)]
struct Scheduled<E> {
    at: u64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Scheduled<E> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl<E> Eq for Scheduled<E> {}
impl<E> PartialOrd for Scheduled<E> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<E> Ord for Scheduled<E> {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: BinaryHeap is a max-heap.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// Events by due time, ties in scheduling order.
#[derive(Debug)]
pub struct Queue<E> {
    heap: BinaryHeap<Scheduled<E>>,
    next: u64,
    peak: usize,
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next: 0,
            peak: 0,
        }
    }
}

impl<E> Queue<E> {
    /// Schedules `event` at `at`.
    pub fn push(&mut self, at: u64, event: E) {
        self.heap.push(Scheduled {
            at,
            seq: self.next,
            event,
        });
        self.next += 1;
        self.peak = self.peak.max(self.heap.len());
    }

    /// Due time of the next event.
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|s| s.at)
    }

    /// The next event, if it is due at or before `until`.
    pub fn pop_until(&mut self, until: u64) -> Option<(u64, E)> {
        if self.heap.peek()?.at > until {
            return None;
        }
        self.heap.pop().map(|s| (s.at, s.event))
    }

    /// Largest number of events ever pending.
    pub fn peak(&self) -> usize {
        self.peak
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_run_in_scheduling_order() {
        let mut q = Queue::default();
        q.push(5, 'b');
        q.push(1, 'a');
        q.push(5, 'c');
        q.push(9, 'd');
        let mut out = Vec::new();
        while let Some((t, e)) = q.pop_until(5) {
            out.push((t, e));
        }
        assert_eq!(out, vec![(1, 'a'), (5, 'b'), (5, 'c')]);
        assert_eq!(q.peek_time(), Some(9));
    }
}
