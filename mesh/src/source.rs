//! Radio sources. Whatever hears frames — the Semtech packet forwarder, a local
//! lora-phy radio, the simulator, a test — implements [`Source`] (or pushes into a
//! [`RadioSink`] directly); the node drains the sink into the ingest pipeline.
//!
//! The sink is a bounded queue that drops the *oldest* frame when full: for radio
//! frames freshness matters more than completeness (an old frame is also the one most
//! likely to have reached us through another gateway meanwhile), and the producer never
//! waits. Every drop is counted.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};

use slope_proto::Observation;
use tokio::sync::Notify;

use crate::metrics::{Metrics, kind};

/// One frame heard on the air, with what the radio observed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uplink {
    pub frame: Vec<u8>,
    pub rx: Observation,
}

/// Anything that yields uplinks until it ends.
pub trait Source: Send + 'static {
    /// The next uplink, or `None` when the source has ended.
    fn next(&mut self) -> impl Future<Output = Option<Uplink>> + Send;
}

/// A channel as a source (the simulator, tests, custom radios).
impl Source for tokio::sync::mpsc::Receiver<Uplink> {
    async fn next(&mut self) -> Option<Uplink> {
        self.recv().await
    }
}

struct Queue {
    items: VecDeque<Uplink>,
    capacity: usize,
}

/// The bounded newest-first queue between radio sources and the pipeline.
#[derive(Clone)]
pub struct RadioSink {
    queue: Arc<Mutex<Queue>>,
    notify: Arc<Notify>,
    metrics: Metrics,
}

impl std::fmt::Debug for RadioSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RadioSink")
            .field("len", &self.len())
            .finish()
    }
}

impl RadioSink {
    pub fn new(capacity: usize, metrics: Metrics) -> Self {
        Self {
            queue: Arc::new(Mutex::new(Queue {
                items: VecDeque::new(),
                capacity: capacity.max(1),
            })),
            notify: Arc::new(Notify::new()),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues an uplink; returns false when an older one had to be dropped for it.
    pub fn push(&self, uplink: Uplink) -> bool {
        let (dropped, len) = {
            let mut q = self.lock();
            let dropped = if q.items.len() >= q.capacity {
                q.items.pop_front();
                true
            } else {
                false
            };
            q.items.push_back(uplink);
            (dropped, q.items.len())
        };
        if dropped {
            self.metrics
                .dropped
                .get_or_create(&kind("radio_queue"))
                .inc();
        }
        self.metrics
            .queue_depth
            .get_or_create(&kind("radio"))
            .set(len as i64);
        self.notify.notify_one();
        !dropped
    }

    /// Frames waiting.
    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes up to `max` frames, oldest first.
    pub fn drain(&self, max: usize) -> Vec<Uplink> {
        let (out, len) = {
            let mut q = self.lock();
            let n = max.min(q.items.len());
            let out: Vec<Uplink> = q.items.drain(..n).collect();
            (out, q.items.len())
        };
        self.metrics
            .queue_depth
            .get_or_create(&kind("radio"))
            .set(len as i64);
        out
    }

    /// Resolves when something was pushed since the last call.
    pub async fn notified(&self) {
        self.notify.notified().await
    }

    /// Runs `source` into this sink until it ends.
    pub fn spawn<S: Source>(&self, mut source: S) -> tokio::task::JoinHandle<()> {
        let sink = self.clone();
        tokio::spawn(async move {
            while let Some(up) = source.next().await {
                sink.push(up);
            }
        })
    }
}

/// Wall-clock milliseconds since the Unix epoch (the gateway's `now`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The Semtech UDP packet forwarder as a source.
#[cfg(feature = "forwarder")]
pub mod forwarder {
    use slope_radios::CodingRate;
    use slope_radios::forwarder::{self, Eui, Forwarder, Txpk};
    use tokio::sync::mpsc;

    use super::{Source, Uplink, now_ms};
    use crate::downlink::Echoer;

    /// Uplinks from a packet-forwarder server; non-Slope frames are skipped. With an
    /// [`Echoer`], attestations of known devices are answered with a time echo
    /// ([`crate::downlink`]) through the gateway that heard them.
    pub struct ForwarderSource {
        pub server: Forwarder,
        uplinks: mpsc::Receiver<forwarder::Uplink>,
        echo: Option<(Echoer<Eui>, tokio::time::Instant)>,
    }

    impl ForwarderSource {
        /// Binds the GWMP server on `bind` (e.g. `0.0.0.0:1700`) with the default
        /// bounds and no allow-lists.
        pub async fn bind(bind: std::net::SocketAddr) -> Result<Self, forwarder::Error> {
            Self::bind_with(forwarder::Config {
                bind,
                ..forwarder::Config::default()
            })
            .await
        }

        /// Binds the GWMP server as `config` says (address, allow-lists, bounds).
        pub async fn bind_with(config: forwarder::Config) -> Result<Self, forwarder::Error> {
            let (server, uplinks) = Forwarder::bind(config).await?;
            Ok(Self {
                server,
                uplinks,
                echo: None,
            })
        }

        /// Answers attestations with time echoes decided by `echoer`.
        pub fn with_echo(mut self, echoer: Echoer<Eui>) -> Self {
            self.echo = Some((echoer, tokio::time::Instant::now()));
            self
        }

        /// The echo for `uplink` (converted as `up`), as a timestamped PULL_RESP
        /// `txpk`: the uplink's `tmst` plus the window's delay, its frequency and data
        /// rate, not inverted.
        async fn answer(&mut self, gw: &forwarder::Uplink, up: &Uplink) {
            let Some((echoer, start)) = self.echo.as_mut() else {
                return;
            };
            let now_us = u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX);
            let Ok(a) = echoer.decide(
                gw.gateway,
                &up.frame,
                gw.meta.freq_hz,
                up.rx.time_ms,
                now_us,
            ) else {
                return;
            };
            let txpk = Txpk {
                tmst: Some(gw.rxpk.tmst.wrapping_add(a.window.delay_us)),
                freq_hz: a.window.freq_hz,
                rfch: 0,
                power_dbm: a.window.power_dbm,
                sf: a.window.modulation.sf,
                bw: a.window.modulation.bw,
                cr: CodingRate::_4_5,
                ipol: false,
                data: a.phy,
            };
            let sent = self.server.send_txpk(gw.gateway, &txpk).await;
            echoer.count(if sent.is_ok() { "sent" } else { "send_failed" });
        }
    }

    /// Converts a forwarder uplink; `None` when it is not a Slope frame.
    pub fn convert(up: &forwarder::Uplink) -> Option<Uplink> {
        let frame = up.envelope().ok()?.to_vec();
        let m = up.meta;
        Some(Uplink {
            frame,
            rx: slope_proto::Observation {
                rssi_dbm: m.rssi_dbm,
                snr_qdb: m.snr.0,
                freq_hz: m.freq_hz,
                foff_hz: m.freq_offset_hz,
                sf: u32::from(m.sf) as u8,
                time_ms: now_ms(),
            },
        })
    }

    impl Source for ForwarderSource {
        async fn next(&mut self) -> Option<Uplink> {
            loop {
                let up = self.uplinks.recv().await?;
                if let Some(u) = convert(&up) {
                    self.answer(&up, &u).await;
                    return Some(u);
                }
            }
        }
    }
}
