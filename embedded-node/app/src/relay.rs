//! The relay role (feature `relay`): a board with a network interface becomes a
//! single-channel gateway for the mesh node, forwarding every Slope frame it hears as a
//! Semtech UDP `PUSH_DATA` (what `slope gateway`'s packet-forwarder ingest accepts).
//!
//! Two tasks share a bounded queue:
//!
//! - [`listen`] keeps the radio in receive on one channel and queues every well-formed
//!   Slope frame (other LoRaWAN traffic is counted and dropped; when the queue is full
//!   the new frame is dropped and counted: the radio never waits for the network);
//! - [`forward`] waits for the network, then sends each queued frame to the mesh node over
//!   UDP with embassy-net, matching `PUSH_ACK`s by token. As with any packet forwarder
//!   there is no retransmission: a lost datagram is a frame the mesh hears from another
//!   gateway or not at all.
//!
//! Generic over the embassy-net `Stack` (Ethernet, Wi-Fi or anything else with a driver);
//! none of the boards in this workspace has a network interface, so the role is built as
//! a library for `thumbv7em-none-eabi` by CI and not flashed.

use core::sync::atomic::{AtomicU32, Ordering};

use embassy_futures::select::{Either, select};
use embassy_net::udp::{PacketMetadata, UdpSocket};
use embassy_net::{IpEndpoint, Stack};
use embassy_sync::blocking_mutex::raw::RawMutex;
use embassy_sync::channel::Channel;
use embassy_time::{Duration, Timer};
use heapless::Vec;
use slope_radios::CodingRate;
use slope_radios::airtime::Modulation;
use slope_radios::frame::parse_frame;
use slope_radios::meta::RxMeta;
use slope_radios::radio::{Radio, Tune};

use crate::gwmp::{self, MAX_DATAGRAM};
use crate::log::dbg;

/// Frames waiting for the network.
pub const DEPTH: usize = 8;

/// How long a `PUSH_ACK` is waited for.
const ACK_TIMEOUT: Duration = Duration::from_secs(1);

/// One heard frame on its way to the mesh node.
#[derive(Debug, Clone)]
pub struct Forward {
    /// The LoRa PHY payload.
    pub frame: Vec<u8, 255>,
    /// What the radio measured.
    pub meta: RxMeta,
}

/// The queue between [`listen`] and [`forward`].
pub type Queue<M> = Channel<M, Forward, DEPTH>;

/// Counters of the relay (shared by both tasks).
#[derive(Debug, Default)]
pub struct Counters {
    /// Slope frames queued.
    pub queued: AtomicU32,
    /// Slope frames dropped because the queue was full.
    pub dropped: AtomicU32,
    /// Frames heard that were not Slope frames.
    pub ignored: AtomicU32,
    /// Datagrams sent.
    pub sent: AtomicU32,
    /// `PUSH_ACK`s received for them.
    pub acked: AtomicU32,
    /// Radio or network errors.
    pub errors: AtomicU32,
}

fn bump(c: &AtomicU32) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// Receives forever on `freq_hz` with `modulation`, queueing Slope frames.
pub async fn listen<R: Radio + Tune, M: RawMutex>(
    radio: &mut R,
    freq_hz: u32,
    modulation: Modulation,
    queue: &Queue<M>,
    counters: &Counters,
) -> ! {
    while let Err(e) = radio.listen_on(freq_hz, modulation) {
        bump(&counters.errors);
        warn!("relay cannot tune the receiver: {}", dbg(&e));
        Timer::after_secs(1).await;
    }
    let mut buf = [0u8; 255];
    loop {
        match radio.receive(&mut buf).await {
            Ok((n, meta)) => {
                let frame = &buf[..n.min(buf.len())];
                if parse_frame(frame).is_err() {
                    bump(&counters.ignored);
                    continue;
                }
                let Ok(frame) = Vec::from_slice(frame) else {
                    continue;
                };
                match queue.try_send(Forward { frame, meta }) {
                    Ok(()) => bump(&counters.queued),
                    Err(_) => bump(&counters.dropped),
                }
            }
            Err(e) => {
                bump(&counters.errors);
                warn!("relay receive failed: {}", dbg(&e));
                Timer::after_millis(100).await;
            }
        }
    }
}

/// Sends queued frames to the mesh node at `server` as gateway `gateway_eui`, forever.
pub async fn forward<M: RawMutex>(
    stack: Stack<'_>,
    server: IpEndpoint,
    gateway_eui: [u8; 8],
    queue: &Queue<M>,
    counters: &Counters,
) -> ! {
    stack.wait_config_up().await;
    info!("relay: network up, forwarding to the mesh node");
    let mut rx_meta = [PacketMetadata::EMPTY; 2];
    let mut rx_buf = [0u8; 64];
    let mut tx_meta = [PacketMetadata::EMPTY; 2];
    let mut tx_buf = [0u8; MAX_DATAGRAM];
    let mut socket = UdpSocket::new(stack, &mut rx_meta, &mut rx_buf, &mut tx_meta, &mut tx_buf);
    while let Err(e) = socket.bind(0) {
        warn!("relay: cannot bind a UDP port: {}", dbg(&e));
        Timer::after_secs(1).await;
    }
    let mut token: u16 = 0;
    let mut datagram = [0u8; MAX_DATAGRAM];
    loop {
        let item = queue.receive().await;
        token = token.wrapping_add(1);
        let Ok(n) = gwmp::push_data(
            &mut datagram,
            token,
            gateway_eui,
            &item.frame,
            &item.meta,
            CodingRate::_4_5,
        ) else {
            continue;
        };
        if let Err(e) = socket.send_to(&datagram[..n], server).await {
            bump(&counters.errors);
            warn!("relay: send failed: {}", dbg(&e));
            continue;
        }
        bump(&counters.sent);
        // Wait briefly for the matching PUSH_ACK; anything else is ignored.
        let mut ack = [0u8; 16];
        let deadline = Timer::after(ACK_TIMEOUT);
        let mut deadline = core::pin::pin!(deadline);
        loop {
            match select(socket.recv_from(&mut ack), &mut deadline).await {
                Either::First(Ok((len, _))) => {
                    if gwmp::push_ack_token(&ack[..len.min(ack.len())]) == Some(token) {
                        bump(&counters.acked);
                        break;
                    }
                }
                Either::First(Err(_)) => {}
                Either::Second(()) => break,
            }
        }
    }
}
