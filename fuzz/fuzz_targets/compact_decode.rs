//! Any bytes into the suite-2 decoder and proof checker: never a panic; the hand-written
//! fixed-layout attestation decoder agrees exactly (value or error) with the canonical
//! postcard path it replaces; every accepted attestation re-encodes to its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slope_proto::codec;
use slope_proto::compact::attestation::View;
use slope_proto::compact::frame::MacedBody;
use slope_proto::compact::{self, Attestation, Maced, Message};

/// The postcard path: decode, re-encode and compare, then the field rules.
fn reference(body: &[u8]) -> Result<Attestation, slope_proto::DecodeError> {
    let value: Attestation = codec::decode_exact(body)?;
    value
        .check()
        .map_err(slope_proto::DecodeError::InvalidField)?;
    Ok(value)
}

fuzz_target!(|data: &[u8]| {
    // Differential: the body decoders, on any body bytes.
    let fixed = Attestation::decode_body(data);
    assert_eq!(fixed, reference(data), "fixed layout and postcard disagree");
    if let Ok(a) = &fixed {
        let mut again = [0u8; 64];
        let n = codec::encode_into(a, &mut again).expect("re-encode");
        assert_eq!(&again[..n], data, "accepted a non-canonical body");
    }

    // Whole frames: the borrowed view and the owned decoder agree.
    let mut framed = vec![1u8, 2, 1];
    framed.extend_from_slice(data);
    for f in [data, &framed[..]] {
        let view = View::parse(f);
        let owned = Maced::<Attestation>::decode(f);
        assert_eq!(view.as_ref().err(), owned.as_ref().err());
        if let (Ok(v), Ok(o)) = (view, owned) {
            assert_eq!(v.frame(), o.frame());
            assert_eq!(v.interval(), o.body().interval);
            assert_eq!(v.disclosed(), o.body().disclosed);
            assert_eq!(v.payload(), &o.body().payload[..]);
            assert_eq!(&v.mac(), o.mac());
        }
    }

    if let Ok(msg) = compact::decode(data) {
        let again: &[u8] = match &msg {
            Message::Anchor(a) => a.frame(),
            Message::Attestation(a) => a.frame(),
            Message::Renewal(r) => r.frame(),
            Message::Receipt(r) => r.frame(),
            _ => data,
        };
        assert_eq!(again, data);
        if let Message::Divergence(p) = msg {
            let _ = p.verify(10_000);
        }
    }
});
