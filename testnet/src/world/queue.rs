//! The event queue: a min-heap on (virtual time, insertion number), so events at one
//! instant run in the order they were scheduled and a run is a pure function of its seed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Events by due time, ties in scheduling order.
///
/// The heap orders small keys (due time, insertion number, slot: 24 bytes) and the
/// events wait in a slab beside it: a sift moves keys, not the events (up to ~100
/// bytes each), and the order is the one a heap of whole events had.
#[derive(Debug)]
pub struct Queue<E> {
    heap: BinaryHeap<Reverse<(u64, u64, u32)>>,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
    next: u64,
    peak: usize,
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            next: 0,
            peak: 0,
        }
    }
}

impl<E> Queue<E> {
    /// Schedules `event` at `at`.
    pub fn push(&mut self, at: u64, event: E) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(event);
                s
            }
            None => {
                self.slots.push(Some(event));
                // Bounded by the events pending at once, far below u32::MAX.
                u32::try_from(self.slots.len() - 1).unwrap_or(u32::MAX)
            }
        };
        self.heap.push(Reverse((at, self.next, slot)));
        self.next += 1;
        self.peak = self.peak.max(self.heap.len());
    }

    /// Due time of the next event.
    pub fn peek_time(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse((at, _, _))| *at)
    }

    /// The next event and its due time, without taking it.
    pub fn peek(&self) -> Option<(u64, &E)> {
        let Reverse((at, _, slot)) = self.heap.peek()?;
        Some((*at, self.slots.get(*slot as usize)?.as_ref()?))
    }

    /// The next event, if it is due at or before `until`.
    pub fn pop_until(&mut self, until: u64) -> Option<(u64, E)> {
        if self.heap.peek()?.0.0 > until {
            return None;
        }
        let Reverse((at, _, slot)) = self.heap.pop()?;
        let event = self.slots.get_mut(slot as usize)?.take()?;
        self.free.push(slot);
        Some((at, event))
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

    /// Random interleavings of pushes and pops (seeded, 200 of them) yield the order
    /// of a sort by (time, scheduling order), with slots reused.
    #[test]
    fn pops_in_time_then_scheduling_order() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha12Rng::seed_from_u64(6);
        for _ in 0..200 {
            let mut q = Queue::default();
            let mut model: Vec<(u64, usize)> = Vec::new();
            let mut now = 0u64;
            for n in 0..rng.gen_range(1..400) {
                let dt = rng.gen_range(0..50u64);
                if rng.r#gen::<bool>() {
                    model.sort_unstable();
                    let expect = model.first().copied().filter(|(t, _)| *t <= now + dt);
                    assert_eq!(q.pop_until(now + dt), expect);
                    if let Some((t, _)) = expect {
                        model.remove(0);
                        now = t;
                    }
                } else {
                    q.push(now + dt, n);
                    model.push((now + dt, n));
                }
                assert_eq!(q.heap.len(), model.len());
            }
            assert!(q.slots.len() <= q.peak());
        }
    }
}
