//! Property tests of the on-air framing.

use proptest::prelude::*;
use slope_radios::frame::{FrameError, MAX_ENVELOPE, OVERHEAD, encode_frame, parse_frame};

proptest! {
    #[test]
    fn encode_parse_round_trip(envelope in proptest::collection::vec(any::<u8>(), 0..=MAX_ENVELOPE)) {
        let mut buf = [0u8; 255];
        let n = encode_frame(&envelope, &mut buf).unwrap();
        prop_assert_eq!(n, envelope.len() + OVERHEAD);
        prop_assert_eq!(parse_frame(&buf[..n]), Ok(&envelope[..]));
    }

    #[test]
    fn parse_never_panics_and_only_accepts_slope(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        match parse_frame(&bytes) {
            Ok(env) => {
                prop_assert_eq!(&bytes[..3], &[0xE0, b'S', b'L']);
                prop_assert_eq!(env, &bytes[3..]);
            }
            Err(FrameError::TooLong { len }) => prop_assert!(len > 255),
            Err(_) => prop_assert!(bytes.len() < 3 || bytes[..3] != [0xE0, b'S', b'L'] || bytes.len() > 255),
        }
    }
}
