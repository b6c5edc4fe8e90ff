//! Semtech UDP packet-forwarder protocol (GWMP v2), the two datagrams the relay needs:
//! `PUSH_DATA` carrying one received frame as an `rxpk` object, and `PUSH_ACK`.
//!
//! Encoding only, into a caller's buffer, with no allocation; decoding is limited to
//! recognising a `PUSH_ACK` and its token, and never panics on any datagram.

use core::fmt::Write;

use slope_radios::meta::RxMeta;
use slope_radios::{Bandwidth, CodingRate};

/// Protocol version byte.
pub const VERSION: u8 = 2;
/// `PUSH_DATA` identifier.
pub const PUSH_DATA: u8 = 0x00;
/// `PUSH_ACK` identifier.
pub const PUSH_ACK: u8 = 0x01;
/// Bytes before the JSON of a `PUSH_DATA`: version, token, identifier, gateway EUI.
pub const HEADER: usize = 12;
/// A buffer this large holds any `PUSH_DATA` this module writes (a 255-byte frame is
/// 340 characters of base64, the rest of the object is under 250).
pub const MAX_DATAGRAM: usize = 640;

/// The datagram does not fit the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TooSmall;

struct Cursor<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Write for Cursor<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.at.checked_add(s.len()).ok_or(core::fmt::Error)?;
        let dst = self.buf.get_mut(self.at..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.at = end;
        Ok(())
    }
}

impl Cursor<'_> {
    fn base64(&mut self, data: &[u8]) -> core::fmt::Result {
        const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        for chunk in data.chunks(3) {
            let b = [
                chunk.first().copied().unwrap_or(0),
                chunk.get(1).copied().unwrap_or(0),
                chunk.get(2).copied().unwrap_or(0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            let mut out = [b'='; 4];
            for (i, o) in out.iter_mut().enumerate().take(chunk.len() + 1) {
                *o = ABC[((n >> (18 - 6 * i)) & 63) as usize];
            }
            // ABC and '=' are ASCII: always valid UTF-8.
            self.write_str(core::str::from_utf8(&out).map_err(|_| core::fmt::Error)?)?;
        }
        Ok(())
    }
}

fn bandwidth_khz(bw: Bandwidth) -> u32 {
    bw.hz() / 1000
}

fn coding_rate(cr: CodingRate) -> &'static str {
    match cr {
        CodingRate::_4_5 => "4/5",
        CodingRate::_4_6 => "4/6",
        CodingRate::_4_7 => "4/7",
        CodingRate::_4_8 => "4/8",
    }
}

/// Writes a `PUSH_DATA` datagram for one received `frame` into `out`; returns its length.
///
/// `tmst` is the receive time on the relay's microsecond counter (it wraps, as the
/// protocol's 32-bit counter does).
pub fn push_data(
    out: &mut [u8],
    token: u16,
    gateway_eui: [u8; 8],
    frame: &[u8],
    meta: &RxMeta,
    cr: CodingRate,
) -> Result<usize, TooSmall> {
    let head = out.get_mut(..HEADER).ok_or(TooSmall)?;
    head[0] = VERSION;
    head[1..3].copy_from_slice(&token.to_be_bytes());
    head[3] = PUSH_DATA;
    head[4..12].copy_from_slice(&gateway_eui);
    let mut c = Cursor {
        buf: out,
        at: HEADER,
    };
    let snr = i32::from(meta.snr.quarter_db());
    let (sign, snr_abs) = if snr < 0 { ("-", -snr) } else { ("", snr) };
    let written = (|| -> core::fmt::Result {
        write!(
            c,
            "{{\"rxpk\":[{{\"tmst\":{},\"chan\":0,\"rfch\":0,\"freq\":{}.{:06},\"stat\":1,\
             \"modu\":\"LORA\",\"datr\":\"SF{}BW{}\",\"codr\":\"{}\",\"rssi\":{},\
             \"lsnr\":{}{}.{:02},\"size\":{},\"data\":\"",
            meta.timestamp_us as u32,
            meta.freq_hz / 1_000_000,
            meta.freq_hz % 1_000_000,
            meta.sf.factor(),
            bandwidth_khz(meta.bw),
            coding_rate(cr),
            meta.rssi_dbm,
            sign,
            snr_abs / 4,
            (snr_abs % 4) * 25,
            frame.len(),
        )?;
        c.base64(frame)?;
        c.write_str("\"}]}")
    })();
    written.map_err(|_| TooSmall)?;
    Ok(c.at)
}

/// The token of a `PUSH_ACK`, or `None` for any other datagram.
pub fn push_ack_token(datagram: &[u8]) -> Option<u16> {
    match datagram {
        [VERSION, hi, lo, PUSH_ACK, ..] => Some(u16::from_be_bytes([*hi, *lo])),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slope_radios::SpreadingFactor;
    use slope_radios::meta::Snr;

    fn meta() -> RxMeta {
        RxMeta {
            rssi_dbm: -97,
            signal_rssi_dbm: None,
            snr: Snr(-30),
            freq_hz: 868_100_000,
            sf: SpreadingFactor::_9,
            bw: Bandwidth::_125KHz,
            timestamp_us: (1 << 32) + 1234,
            freq_offset_hz: None,
        }
    }

    #[test]
    fn push_data_is_what_a_packet_forwarder_sends() {
        let mut buf = [0u8; MAX_DATAGRAM];
        let n = push_data(
            &mut buf,
            0xabcd,
            [1, 2, 3, 4, 5, 6, 7, 8],
            b"\xe0SLhello",
            &meta(),
            CodingRate::_4_5,
        )
        .unwrap();
        assert_eq!(&buf[..4], &[2, 0xab, 0xcd, 0]);
        assert_eq!(&buf[4..12], &[1, 2, 3, 4, 5, 6, 7, 8]);
        let json = core::str::from_utf8(&buf[12..n]).unwrap();
        assert_eq!(
            json,
            "{\"rxpk\":[{\"tmst\":1234,\"chan\":0,\"rfch\":0,\"freq\":868.100000,\"stat\":1,\
             \"modu\":\"LORA\",\"datr\":\"SF9BW125\",\"codr\":\"4/5\",\"rssi\":-97,\
             \"lsnr\":-7.50,\"size\":8,\"data\":\"4FNMaGVsbG8=\"}]}"
        );
    }

    #[test]
    fn the_largest_frame_fits_and_a_small_buffer_is_refused() {
        let mut buf = [0u8; MAX_DATAGRAM];
        assert!(push_data(&mut buf, 1, [0; 8], &[0xff; 255], &meta(), CodingRate::_4_8).is_ok());
        let mut small = [0u8; 100];
        assert_eq!(
            push_data(&mut small, 1, [0; 8], &[0; 255], &meta(), CodingRate::_4_5),
            Err(TooSmall)
        );
        assert_eq!(
            push_data(&mut small[..5], 1, [0; 8], &[], &meta(), CodingRate::_4_5),
            Err(TooSmall)
        );
    }

    #[test]
    fn base64_padding() {
        for (input, expected) in [
            (&b""[..], ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
        ] {
            let mut buf = [0u8; 16];
            let mut c = Cursor {
                buf: &mut buf,
                at: 0,
            };
            c.base64(input).unwrap();
            let at = c.at;
            assert_eq!(&buf[..at], expected.as_bytes());
        }
    }

    #[test]
    fn acks_are_recognised_and_nothing_else() {
        assert_eq!(push_ack_token(&[2, 0x12, 0x34, 1]), Some(0x1234));
        assert_eq!(push_ack_token(&[2, 0x12, 0x34, 4]), None);
        assert_eq!(push_ack_token(&[1, 0x12, 0x34, 1]), None);
        assert_eq!(push_ack_token(&[2, 0x12]), None);
        assert_eq!(push_ack_token(&[]), None);
    }
}
