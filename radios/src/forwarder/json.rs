//! The JSON bodies of GWMP: upstream `rxpk` and `stat`, downstream `txpk`, and their
//! conversion to typed values ([`Rxpk`], [`GatewayStat`]).
//!
//! Parsed with `serde_json` into permissive structs (every field optional, unknown fields
//! ignored), then checked field by field: a bad `rxpk` is dropped with a [`RxpkError`]
//! without affecting its neighbours in the same datagram.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};

use crate::meta::{RxMeta, Snr};
use crate::{Bandwidth, CodingRate, SpreadingFactor};

/// Most antennas kept per `rxpk` (v2 `rsig`).
pub const MAX_ANTENNAS: usize = 8;
/// Longest `time` string kept.
const MAX_TIME_LEN: usize = 64;

/// The JSON body of a PUSH_DATA, checked: each `rxpk` converted or rejected on its own.
#[derive(Debug, Clone, PartialEq)]
pub struct PushData {
    /// Every `rxpk`, in order.
    pub rxpk: Vec<Result<Rxpk, RxpkError>>,
    /// The status report, if any.
    pub stat: Option<GatewayStat>,
}

/// The body is not JSON of the PUSH_DATA shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed PUSH_DATA JSON")]
pub struct MalformedJson;

/// Parse and check a PUSH_DATA body (after the 12-byte header).
pub fn parse_push_data(body: &[u8]) -> Result<PushData, MalformedJson> {
    let raw: PushBody = serde_json::from_slice(body).map_err(|_| MalformedJson)?;
    Ok(PushData {
        rxpk: raw
            .rxpk
            .unwrap_or_default()
            .into_iter()
            .map(RawRxpk::into_rxpk)
            .collect(),
        stat: raw.stat,
    })
}

#[derive(Debug, Default, Deserialize)]
struct PushBody {
    #[serde(default)]
    rxpk: Option<Vec<RawRxpk>>,
    #[serde(default)]
    stat: Option<GatewayStat>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRxpk {
    jver: Option<u32>,
    time: Option<String>,
    tmst: Option<u32>,
    freq: Option<f64>,
    chan: Option<u32>,
    rfch: Option<u32>,
    stat: Option<i32>,
    modu: Option<String>,
    datr: Option<serde_json::Value>,
    codr: Option<String>,
    rssi: Option<i32>,
    rssis: Option<i32>,
    lsnr: Option<f64>,
    foff: Option<i32>,
    size: Option<u32>,
    data: Option<String>,
    rsig: Option<Vec<RawRsig>>,
}

#[derive(Debug, Default, Deserialize)]
struct RawRsig {
    ant: Option<u32>,
    chan: Option<u32>,
    rssic: Option<i32>,
    rssis: Option<i32>,
    lsnr: Option<f64>,
    foff: Option<i32>,
}

/// A gateway's `stat` report (every field as sent; absent fields are `None`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct GatewayStat {
    /// Gateway system time, as sent (not parsed).
    pub time: Option<String>,
    /// Latitude, degrees.
    pub lati: Option<f64>,
    /// Longitude, degrees.
    pub long: Option<f64>,
    /// Altitude, metres.
    pub alti: Option<f64>,
    /// Radio packets received.
    pub rxnb: Option<u64>,
    /// Radio packets received with a valid CRC.
    pub rxok: Option<u64>,
    /// Radio packets forwarded.
    pub rxfw: Option<u64>,
    /// Percentage of upstream datagrams acknowledged.
    pub ackr: Option<f64>,
    /// Downlink datagrams received.
    pub dwnb: Option<u64>,
    /// Packets emitted.
    pub txnb: Option<u64>,
}

/// Signal of one antenna (`rsig[]` of a v2 `rxpk`, or the top-level fields of v1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Antenna {
    /// Antenna number (0 for v1).
    pub ant: u32,
    /// Concentrator IF channel.
    pub chan: Option<u32>,
    /// Channel RSSI, dBm.
    pub rssic: i32,
    /// Signal RSSI, dBm.
    pub rssis: Option<i32>,
    /// SNR, dB (0.1 dB precision as sent).
    pub lsnr: Option<f64>,
    /// Frequency offset, Hz.
    pub foff: Option<i32>,
}

/// One received LoRa packet as the gateway reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct Rxpk {
    /// JSON format version (`jver`), `None` for the v1 format.
    pub jver: Option<u32>,
    /// UTC receive time as sent.
    pub time: Option<String>,
    /// `time` as microseconds since the Unix epoch, when it parses.
    pub time_unix_us: Option<i64>,
    /// Concentrator counter at end of reception, µs (wraps every ~71 min).
    pub tmst: u32,
    /// Centre frequency, Hz.
    pub freq_hz: u32,
    /// IF channel (v1).
    pub chan: Option<u32>,
    /// RF chain (v1).
    pub rfch: Option<u32>,
    /// Spreading factor.
    pub sf: SpreadingFactor,
    /// Bandwidth.
    pub bw: Bandwidth,
    /// Coding rate, when sent.
    pub codr: Option<CodingRate>,
    /// Antennas that heard it, best RSSI first (at most [`MAX_ANTENNAS`]).
    pub antennas: Vec<Antenna>,
    /// PHY payload.
    pub data: Vec<u8>,
}

impl Rxpk {
    /// Receiver metadata, taken from the antenna with the best channel RSSI.
    pub fn meta(&self) -> RxMeta {
        let best = self.antennas.first();
        let clamp = |x: i32| x.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        RxMeta {
            rssi_dbm: best.map_or(i16::MIN, |a| clamp(a.rssic)),
            signal_rssi_dbm: best.and_then(|a| a.rssis).map(clamp),
            snr: best.and_then(|a| a.lsnr).map_or(Snr(0), |s| {
                Snr::from_decidb((s * 10.0).round().clamp(-1e9, 1e9) as i32)
            }),
            freq_hz: self.freq_hz,
            sf: self.sf,
            bw: self.bw,
            timestamp_us: u64::from(self.tmst),
            freq_offset_hz: best.and_then(|a| a.foff),
        }
    }
}

/// Why one `rxpk` was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[non_exhaustive]
pub enum RxpkError {
    /// `stat` is −1 (CRC failed).
    #[error("CRC failed")]
    CrcBad,
    /// `stat` is 0 (no CRC) or missing.
    #[error("no CRC")]
    CrcAbsent,
    /// Not LoRa (FSK, LR-FHSS).
    #[error("not LoRa")]
    NotLora,
    /// A mandatory field is missing or malformed.
    #[error("missing or bad field `{0}`")]
    BadField(&'static str),
    /// `size` does not match the decoded `data`.
    #[error("size does not match data")]
    SizeMismatch,
}

/// Base64 as gateways send it: standard or URL-safe alphabet (the protocol description's own
/// first example mixes both), padding optional, stray trailing bits tolerated.
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    );
    let normalised: String = s
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    LENIENT.decode(normalised).ok()
}

/// Base64 of a downlink payload (standard, padded).
pub(crate) fn encode_base64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// `"SF7BW125"` → (SF7, 125 kHz).
pub fn parse_datr(s: &str) -> Option<(SpreadingFactor, Bandwidth)> {
    let (sf, bw) = s.strip_prefix("SF")?.split_once("BW")?;
    let sf = match sf {
        "5" => SpreadingFactor::_5,
        "6" => SpreadingFactor::_6,
        "7" => SpreadingFactor::_7,
        "8" => SpreadingFactor::_8,
        "9" => SpreadingFactor::_9,
        "10" => SpreadingFactor::_10,
        "11" => SpreadingFactor::_11,
        "12" => SpreadingFactor::_12,
        _ => return None,
    };
    let bw = match bw {
        "125" => Bandwidth::_125KHz,
        "250" => Bandwidth::_250KHz,
        "500" => Bandwidth::_500KHz,
        _ => return None,
    };
    Some((sf, bw))
}

/// Inverse of [`parse_datr`].
pub fn format_datr(sf: SpreadingFactor, bw: Bandwidth) -> String {
    format!("SF{}BW{}", sf.factor(), bw.hz() / 1000)
}

fn parse_codr(s: &str) -> Option<CodingRate> {
    match s {
        "4/5" => Some(CodingRate::_4_5),
        "4/6" | "2/3" => Some(CodingRate::_4_6),
        "4/7" => Some(CodingRate::_4_7),
        "4/8" | "1/2" => Some(CodingRate::_4_8),
        _ => None,
    }
}

fn format_codr(cr: CodingRate) -> &'static str {
    match cr {
        CodingRate::_4_5 => "4/5",
        CodingRate::_4_6 => "4/6",
        CodingRate::_4_7 => "4/7",
        CodingRate::_4_8 => "4/8",
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` → µs since the Unix epoch.
pub fn parse_utc_us(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) || !(0..=9999).contains(&y) {
        return None;
    }
    let micros = format!("{frac:0<6}").get(..6)?.parse::<i64>().ok()?;
    // Days from civil (H. Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + micros)
}

impl RawRxpk {
    /// Check and convert one `rxpk`.
    fn into_rxpk(self) -> Result<Rxpk, RxpkError> {
        match self.stat {
            Some(1) => {}
            Some(-1) => return Err(RxpkError::CrcBad),
            _ => return Err(RxpkError::CrcAbsent),
        }
        if self.modu.as_deref() != Some("LORA") {
            return Err(RxpkError::NotLora);
        }
        let datr = self
            .datr
            .as_ref()
            .and_then(|v| v.as_str())
            .ok_or(RxpkError::BadField("datr"))?;
        let (sf, bw) = parse_datr(datr).ok_or(RxpkError::BadField("datr"))?;
        let freq = self
            .freq
            .filter(|f| f.is_finite() && *f > 0.0 && *f < 4_000.0);
        let freq_hz = freq
            .map(|f| (f * 1e6).round() as u32)
            .ok_or(RxpkError::BadField("freq"))?;
        let tmst = self.tmst.ok_or(RxpkError::BadField("tmst"))?;
        let data = self
            .data
            .as_deref()
            .and_then(decode_base64)
            .ok_or(RxpkError::BadField("data"))?;
        if self.size.is_some_and(|s| s as usize != data.len()) {
            return Err(RxpkError::SizeMismatch);
        }
        let lsnr = |x: Option<f64>| x.filter(|v| v.is_finite());
        let mut antennas: Vec<Antenna> = match self.rsig {
            Some(rsig) => rsig
                .into_iter()
                .take(MAX_ANTENNAS)
                .filter_map(|r| {
                    Some(Antenna {
                        ant: r.ant.unwrap_or(0),
                        chan: r.chan,
                        rssic: r.rssic?,
                        rssis: r.rssis,
                        lsnr: lsnr(r.lsnr),
                        foff: r.foff,
                    })
                })
                .collect(),
            None => Vec::new(),
        };
        if antennas.is_empty() {
            let rssic = self.rssi.ok_or(RxpkError::BadField("rssi"))?;
            antennas.push(Antenna {
                ant: 0,
                chan: self.chan,
                rssic,
                rssis: self.rssis,
                lsnr: lsnr(self.lsnr),
                foff: self.foff,
            });
        }
        // Best first; stable, so equal RSSI keeps the gateway's antenna order.
        antennas.sort_by_key(|a| std::cmp::Reverse(a.rssic));
        let time = self.time.filter(|t| t.len() <= MAX_TIME_LEN);
        Ok(Rxpk {
            jver: self.jver,
            time_unix_us: time.as_deref().and_then(parse_utc_us),
            time,
            tmst,
            freq_hz,
            chan: self.chan,
            rfch: self.rfch,
            sf,
            bw,
            codr: self.codr.as_deref().and_then(parse_codr),
            antennas,
            data,
        })
    }
}

/// A frame for a gateway to send (`txpk` of a PULL_RESP).
#[derive(Debug, Clone, PartialEq)]
pub struct Txpk {
    /// Send immediately (`imme`), else at `tmst`.
    pub tmst: Option<u32>,
    /// Centre frequency, Hz.
    pub freq_hz: u32,
    /// RF chain.
    pub rfch: u32,
    /// Output power, dBm.
    pub power_dbm: i8,
    /// Spreading factor.
    pub sf: SpreadingFactor,
    /// Bandwidth.
    pub bw: Bandwidth,
    /// Coding rate.
    pub cr: CodingRate,
    /// Invert I/Q (`true` for LoRaWAN downlinks; Slope beacons are sent uninverted so that
    /// devices and gateways hear them like any uplink).
    pub ipol: bool,
    /// PHY payload.
    pub data: Vec<u8>,
}

impl Txpk {
    /// The `{"txpk":{...}}` JSON body.
    pub(crate) fn to_json(&self) -> String {
        let mut o = serde_json::Map::new();
        o.insert("imme".into(), self.tmst.is_none().into());
        if let Some(t) = self.tmst {
            o.insert("tmst".into(), t.into());
        }
        o.insert("freq".into(), (f64::from(self.freq_hz) / 1e6).into());
        o.insert("rfch".into(), self.rfch.into());
        o.insert("powe".into(), self.power_dbm.into());
        o.insert("modu".into(), "LORA".into());
        o.insert("datr".into(), format_datr(self.sf, self.bw).into());
        o.insert("codr".into(), format_codr(self.cr).into());
        o.insert("ipol".into(), self.ipol.into());
        o.insert("size".into(), self.data.len().into());
        o.insert("data".into(), encode_base64(&self.data).into());
        serde_json::json!({ "txpk": o }).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datr_codr_time() {
        assert_eq!(
            parse_datr("SF7BW125"),
            Some((SpreadingFactor::_7, Bandwidth::_125KHz))
        );
        assert_eq!(
            parse_datr("SF12BW500"),
            Some((SpreadingFactor::_12, Bandwidth::_500KHz))
        );
        for bad in [
            "",
            "SF",
            "SF7",
            "SF13BW125",
            "SF7BW126",
            "SF1é4BW125",
            "M0CW137",
        ] {
            assert_eq!(parse_datr(bad), None, "{bad}");
        }
        assert_eq!(
            format_datr(SpreadingFactor::_9, Bandwidth::_125KHz),
            "SF9BW125"
        );
        assert_eq!(parse_codr("4/6"), Some(CodingRate::_4_6));
        assert_eq!(
            parse_utc_us("2013-03-31T16:21:17.528002Z"),
            Some(1_364_746_877_528_002)
        );
        assert_eq!(parse_utc_us("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_utc_us("2013-03-31T16:21:17.5Z"),
            Some(1_364_746_877_500_000)
        );
        for bad in [
            "",
            "2013-03-31",
            "2013-13-01T00:00:00Z",
            "2013-03-31T16:21:17.52é8Z",
            "2014-01-12 08:59:28 GMT",
        ] {
            assert_eq!(parse_utc_us(bad), None, "{bad}");
        }
    }

    #[test]
    fn lenient_base64() {
        let d = decode_base64("-DS4CGaDCdG+48eJNM3Vai-zDpsR71Pn9CPA9uCON84").unwrap();
        assert_eq!(d.len(), 32);
        assert_eq!(&d[..4], &[0xf8, 0x34, 0xb8, 0x08]);
        assert_eq!(
            decode_base64("VEVTVF9QQUNLRVRfMTIzNA==").unwrap(),
            b"TEST_PACKET_1234"
        );
        assert_eq!(
            decode_base64("VEVTVF9QQUNLRVRfMTIzNA").unwrap(),
            b"TEST_PACKET_1234"
        );
        assert_eq!(decode_base64("!!"), None);
    }
}
