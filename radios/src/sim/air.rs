//! [`Air`]: a [`Channel`] shared by per-node [`SimRadio`]s that implement
//! [`Radio`], so device and gateway code runs unchanged on simulated air.
//!
//! A harness owns the clock: it calls [`Air::advance`], which decides every frame that
//! ended, queues receptions in the inboxes of nodes that have a `SimRadio`, and wakes their
//! pending `receive` and `transmit` futures. Futures never block a thread and are `Send`.
//! Each inbox is bounded ([`Air::new`]); when full the oldest frame is dropped and counted.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

use super::{Channel, Delivery, NodeId, Refused};
use crate::meta::RxMeta;
use crate::radio::{Radio, TxParams, TxReport};

#[derive(Debug, Default)]
struct Inbox {
    frames: VecDeque<Delivery>,
    rx_waker: Option<Waker>,
    tx_wait: Option<(u64, Waker)>,
    dropped: u64,
}

#[derive(Debug)]
struct Inner {
    channel: Channel,
    now_us: u64,
    capacity: usize,
    inboxes: Vec<Option<Inbox>>,
}

/// A channel plus the inboxes of the nodes attached as radios. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct Air {
    inner: Arc<Mutex<Inner>>,
}

impl Air {
    /// Wrap `channel`; each attached radio buffers at most `inbox_capacity` frames.
    pub fn new(channel: Channel, inbox_capacity: usize) -> Self {
        let inner = Inner {
            channel,
            now_us: 0,
            capacity: inbox_capacity.max(1),
            inboxes: Vec::new(),
        };
        Self {
            inner: Arc::new(Mutex::new(inner)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves consistent data: keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A [`Radio`] for `node`; its receptions go to its inbox from now on.
    pub fn radio(&self, node: NodeId) -> Result<SimRadio, Refused> {
        let mut g = self.lock();
        if node.index() >= g.channel.len() {
            return Err(Refused::UnknownNode(node));
        }
        if g.inboxes.len() <= node.index() {
            g.inboxes.resize_with(node.index() + 1, || None);
        }
        if let Some(slot) = g.inboxes.get_mut(node.index()) {
            slot.get_or_insert_with(Inbox::default);
        }
        Ok(SimRadio {
            air: self.clone(),
            node,
        })
    }

    /// Run `f` on the channel (to add nodes, read stats, transmit for nodes without radio).
    pub fn with_channel<T>(&self, f: impl FnOnce(&mut Channel) -> T) -> T {
        f(&mut self.lock().channel)
    }

    /// Current simulated time.
    pub fn now_us(&self) -> u64 {
        self.lock().now_us
    }

    /// Frames dropped from `node`'s full inbox.
    pub fn inbox_dropped(&self, node: NodeId) -> u64 {
        self.lock()
            .inboxes
            .get(node.index())
            .and_then(Option::as_ref)
            .map_or(0, |i| i.dropped)
    }

    /// Move time to `until_us` (never backwards): decide ended frames, fill inboxes, wake
    /// futures. Returns the receptions of nodes that have no `SimRadio`.
    pub fn advance(&self, until_us: u64) -> Vec<Delivery> {
        let mut wake = Vec::new();
        let mut rest = Vec::new();
        {
            let mut g = self.lock();
            let until_us = until_us.max(g.now_us);
            g.now_us = until_us;
            let capacity = g.capacity;
            for d in g.channel.deliveries(until_us) {
                match g.inboxes.get_mut(d.to.index()).and_then(Option::as_mut) {
                    Some(inbox) => {
                        if inbox.frames.len() >= capacity {
                            inbox.frames.pop_front();
                            inbox.dropped += 1;
                        }
                        inbox.frames.push_back(d);
                        wake.extend(inbox.rx_waker.take());
                    }
                    None => rest.push(d),
                }
            }
            for inbox in g.inboxes.iter_mut().flatten() {
                if inbox
                    .tx_wait
                    .as_ref()
                    .is_some_and(|(end, _)| *end <= until_us)
                {
                    wake.extend(inbox.tx_wait.take().map(|(_, w)| w));
                }
            }
        }
        wake.into_iter().for_each(Waker::wake);
        rest
    }
}

/// Error of a [`SimRadio`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The channel refused the transmission.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The receive buffer is shorter than the frame (the frame is consumed).
    #[error("receive buffer of {have} bytes, frame of {need}")]
    BufferTooSmall {
        /// Frame length.
        need: usize,
        /// Buffer length.
        have: usize,
    },
}

/// One node's radio on an [`Air`].
#[derive(Debug, Clone)]
pub struct SimRadio {
    air: Air,
    node: NodeId,
}

impl SimRadio {
    /// The node this radio belongs to.
    pub fn node(&self) -> NodeId {
        self.node
    }
}

impl Radio for SimRadio {
    type Error = SimError;

    async fn transmit(&mut self, frame: &[u8], params: TxParams) -> Result<TxReport, SimError> {
        let tx = {
            let mut g = self.air.lock();
            let now = g.now_us;
            g.channel.transmit(now, self.node, &params, frame)?
        };
        poll_fn(|cx| {
            let mut g = self.air.lock();
            if g.now_us >= tx.end_us {
                return Poll::Ready(());
            }
            if let Some(inbox) = g
                .inboxes
                .get_mut(self.node.index())
                .and_then(Option::as_mut)
            {
                inbox.tx_wait = Some((tx.end_us, cx.waker().clone()));
            }
            Poll::Pending
        })
        .await;
        Ok(TxReport {
            airtime_us: tx.airtime_us,
        })
    }

    async fn receive(&mut self, buf: &mut [u8]) -> Result<(usize, RxMeta), SimError> {
        let d = poll_fn(|cx| {
            let mut g = self.air.lock();
            let Some(inbox) = g
                .inboxes
                .get_mut(self.node.index())
                .and_then(Option::as_mut)
            else {
                return Poll::Pending;
            };
            match inbox.frames.pop_front() {
                Some(d) => Poll::Ready(d),
                None => {
                    inbox.rx_waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await;
        let have = buf.len();
        let out = buf
            .get_mut(..d.bytes.len())
            .ok_or(SimError::BufferTooSmall {
                need: d.bytes.len(),
                have,
            })?;
        out.copy_from_slice(&d.bytes);
        Ok((d.bytes.len(), d.meta))
    }
}
