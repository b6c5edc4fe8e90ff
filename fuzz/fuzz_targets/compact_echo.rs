//! Any bytes into the time-echo decoder: never a panic; the hand decoder agrees exactly
//! (value or error) with the canonical postcard path; every accepted echo re-encodes to
//! its input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slope_proto::DecodeError;
use slope_proto::codec;
use slope_proto::compact::echo::MAX_ECHO;
use slope_proto::compact::{self, Echo, Message};

/// The postcard path: header, bound, decode-and-re-encode, then the field rules.
fn reference(bytes: &[u8]) -> Result<Echo, DecodeError> {
    compact::frame::parse_header(bytes).and_then(|k| {
        if k == compact::Kind::Echo {
            Ok(())
        } else {
            Err(DecodeError::UnexpectedKind {
                expected: 5,
                found: k as u8,
            })
        }
    })?;
    if bytes.len() > MAX_ECHO {
        return Err(DecodeError::Oversize {
            len: bytes.len(),
            max: MAX_ECHO,
        });
    }
    let e: Echo = codec::decode_exact(&bytes[3..])?;
    if e.seq == 0 {
        return Err(DecodeError::InvalidField("echo seq 0"));
    }
    if e.rx_ms == 0 {
        return Err(DecodeError::InvalidField("echo rx_ms 0"));
    }
    Ok(e)
}

fuzz_target!(|data: &[u8]| {
    let mut framed = vec![1u8, 2, 5];
    framed.extend_from_slice(data);
    for f in [data, &framed[..]] {
        let got = Echo::decode(f);
        assert_eq!(got, reference(f), "hand decoder and postcard disagree");
        if let Ok(e) = got {
            assert_eq!(&e.encode().expect("re-encode")[..], f, "non-canonical accepted");
            assert_eq!(compact::decode(f), Ok(Message::Echo(e)));
        }
    }
});
