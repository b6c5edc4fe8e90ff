//! What a received frame is to the device: a neighbour's event, a gateway's beacon (a
//! witness receipt), a gateway's time echo, or something to count and ignore.
//!
//! Only the form is checked (`slope_radios::frame::parse_frame`, then the header and the
//! decoder of the frame's kind, for the four kinds the device acts on; none of them
//! panics on any input); signatures are the verifiers' business.

#[cfg(not(feature = "compact"))]
use slope_proto::Receipt;
use slope_proto::compact::{self, Echo};
use slope_proto::{
    Inception, Interaction, Kind, LinkDigest, NeighbourId, Rotation, ShortId, Signed, WitnessId,
};
use slope_radios::frame::parse_frame;

/// A received frame, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heard {
    /// Another device's event at position `seq`.
    Neighbour {
        /// The neighbour's id (its device id's first 4 bytes).
        id: NeighbourId,
        /// The position heard.
        seq: u32,
    },
    /// (Not in a `compact` image, which takes its time from echoes.) A gateway's
    /// witness receipt for `device` at `seq`: its beacon, and for this
    /// device's own events, the sign it was heard.
    Beacon {
        /// The gateway.
        witness: WitnessId,
        /// The device whose event it witnessed.
        device: ShortId,
        /// The witnessed position (or compact interval).
        seq: u32,
        /// The witnessed event's digest.
        event: LinkDigest,
        /// The gateway's receive time of that event, ms since the Unix epoch (unsigned
        /// here: a clock sample, [`crate::timesync`]).
        time_ms: u64,
    },
    /// A gateway's time echo (suite 2, kind 5): unsigned, a clock sample for the frame
    /// it names when that is one of this device's ([`crate::timesync`]).
    Echo(Echo),
    /// Not a Slope frame, or not a well-formed one.
    Other,
}

/// Classifies the bytes of one LoRa frame.
pub fn classify(frame: &[u8]) -> Heard {
    let Ok(envelope) = parse_frame(frame) else {
        return Heard::Other;
    };
    // The one suite-2 message a device acts on (its other kinds are gateways' business
    // or other devices' compact frames, which the device does not report).
    if envelope.get(1) == Some(&compact::SUITE) {
        return Echo::decode(envelope).map_or(Heard::Other, Heard::Echo);
    }
    // Only the kinds the device acts on are decoded (not divergence proofs or receipt
    // batches, whose decoders the firmware then does not carry).
    let Ok(header) = slope_proto::Header::parse(envelope) else {
        return Heard::Other;
    };
    match header.kind {
        Kind::Inception => match Signed::<Inception>::decode(envelope) {
            Ok(e) => Heard::Neighbour {
                id: e.device_id().neighbour(),
                seq: 0,
            },
            Err(_) => Heard::Other,
        },
        Kind::Rotation => match Signed::<Rotation>::decode(envelope) {
            Ok(e) => Heard::Neighbour {
                id: neighbour_of(e.body().device),
                seq: e.body().seq,
            },
            Err(_) => Heard::Other,
        },
        Kind::Interaction => match Signed::<Interaction>::decode(envelope) {
            Ok(e) => Heard::Neighbour {
                id: neighbour_of(e.body().device),
                seq: e.body().seq,
            },
            Err(_) => Heard::Other,
        },
        // Receipts (119 B) are no way to give a device its time on the slow rates
        // (no gateway sends them on air; echoes do that): a compact image leaves their
        // decoder out (≈ 1 KiB of flash it needs for the echo).
        #[cfg(not(feature = "compact"))]
        Kind::Receipt => match Signed::<Receipt>::decode(envelope) {
            Ok(r) => Heard::Beacon {
                witness: r.body().witness,
                device: r.body().device,
                seq: r.body().seq,
                event: r.body().event,
                time_ms: r.body().observed.time_ms,
            },
            Err(_) => Heard::Other,
        },
        // Proofs and batched receipts travel between gateways (libp2p), never to a
        // device: heard on air they tell the device nothing it acts on.
        _ => Heard::Other,
    }
}

/// The heard-neighbour form of a short id (both are prefixes of the device id).
pub fn neighbour_of(short: ShortId) -> NeighbourId {
    let mut id = [0u8; 4];
    id.copy_from_slice(&short.0[..4]);
    NeighbourId(id)
}
