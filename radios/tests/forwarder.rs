//! The GWMP server over real loopback UDP: the packet forwarder's published examples (v1
//! and v2), interop with the `semtech-udp` crate, and bad input.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use semtech_udp::SerializablePacket as _;
use slope_radios::forwarder::{Config, Eui, Forwarder, Stats, Txpk, Uplink};
use slope_radios::frame::encode_frame;
use slope_radios::meta::Snr;
use slope_radios::radio::{Radio, TxParams};
use slope_radios::{Bandwidth, CodingRate, SpreadingFactor};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::timeout;

const EUI: [u8; 8] = [0xAA, 0x55, 0x5A, 0x00, 0x00, 0x00, 0x01, 0x01];

/// PROTOCOL.TXT (Lora-net/packet_forwarder, protocol versions 1 and 2), section 4, first
/// example, verbatim.
const PROTOCOL_RXPK: &str = "{\"rxpk\":[
\t{
\t\t\"time\":\"2013-03-31T16:21:17.528002Z\",
\t\t\"tmst\":3512348611,
\t\t\"chan\":2,
\t\t\"rfch\":0,
\t\t\"freq\":866.349812,
\t\t\"stat\":1,
\t\t\"modu\":\"LORA\",
\t\t\"datr\":\"SF7BW125\",
\t\t\"codr\":\"4/6\",
\t\t\"rssi\":-35,
\t\t\"lsnr\":5.1,
\t\t\"size\":32,
\t\t\"data\":\"-DS4CGaDCdG+48eJNM3Vai-zDpsR71Pn9CPA9uCON84\"
\t},{
\t\t\"time\":\"2013-03-31T16:21:17.530974Z\",
\t\t\"tmst\":3512348514,
\t\t\"chan\":9,
\t\t\"rfch\":1,
\t\t\"freq\":869.1,
\t\t\"stat\":1,
\t\t\"modu\":\"FSK\",
\t\t\"datr\":50000,
\t\t\"rssi\":-75,
\t\t\"size\":16,
\t\t\"data\":\"VEVTVF9QQUNLRVRfMTIzNA==\"
\t},{
\t\t\"time\":\"2013-03-31T16:21:17.532038Z\",
\t\t\"tmst\":3316387610,
\t\t\"chan\":0,
\t\t\"rfch\":0,
\t\t\"freq\":863.00981,
\t\t\"stat\":1,
\t\t\"modu\":\"LORA\",
\t\t\"datr\":\"SF10BW125\",
\t\t\"codr\":\"4/7\",
\t\t\"rssi\":-38,
\t\t\"lsnr\":5.5,
\t\t\"size\":32,
\t\t\"data\":\"ysgRl452xNLep9S1NTIg2lomKDxUgn3DJ7DE+b00Ass\"
\t}
]}";

/// PROTOCOL.TXT section 4, `stat` example, verbatim.
const PROTOCOL_STAT: &str = "{\"stat\":{
\t\"time\":\"2014-01-12 08:59:28 GMT\",
\t\"lati\":46.24000,
\t\"long\":3.25230,
\t\"alti\":145,
\t\"rxnb\":2,
\t\"rxok\":2,
\t\"rxfw\":2,
\t\"ackr\":100.0,
\t\"dwnb\":2,
\t\"txnb\":2
}}";

/// Semtech's version-2 gateway PROTOCOL.TXT (SX1302 packet forwarder, 2022): `jver` 2
/// `rxpk` with per-antenna `rsig`, verbatim.
const PROTOCOL_V2_RSIG: &str = r#"{"rxpk":[
    {
        "jver":2,
        "time":"2013-03-31T16:21:17.530974Z",
        "tmst":3512348514,
        "freq":869.1,
        "stat":1,
        "modu":"LORA",
        "datr":"SF7BW125",
        "codr":"4/5",
        "size":16,
        "data":"VEVTVF9QQUNLRVRfMTIzNA==",
        "rsig":[
            {
                "ant":0,
                "chan":9,
                "rssic":-90,
                "lsnr":-3,
                "ftime":123456,
                "rssis":-90,
                "rssisd":0,
                "foff":-7089,
                "ftstat":0
            },{
                "ant":1,
                "chan":9,
                "rssic":-89,
                "lsnr":-2.8,
                "ftime":123489,
                "rssis":-90,
                "rssisd":0,
                "foff":-7089,
                "ftstat":0
            }]
    }
]}"#;

fn push_data(version: u8, token: u16, eui: [u8; 8], json: &str) -> Vec<u8> {
    let mut d = vec![version];
    d.extend_from_slice(&token.to_be_bytes());
    d.push(0x00);
    d.extend_from_slice(&eui);
    d.extend_from_slice(json.as_bytes());
    d
}

fn pull_data(version: u8, token: u16, eui: [u8; 8]) -> Vec<u8> {
    let mut d = vec![version];
    d.extend_from_slice(&token.to_be_bytes());
    d.push(0x02);
    d.extend_from_slice(&eui);
    d
}

fn loopback(config: Config) -> Config {
    Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        ..config
    }
}

async fn start(config: Config) -> (Forwarder, mpsc::Receiver<Uplink>, UdpSocket) {
    let (fwd, rx) = Forwarder::bind(loopback(config)).await.unwrap();
    let gw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    gw.connect(fwd.local_addr()).await.unwrap();
    (fwd, rx, gw)
}

/// Send and return the reply, if one comes within 300 ms.
async fn exchange(gw: &UdpSocket, datagram: &[u8]) -> Option<Vec<u8>> {
    gw.send(datagram).await.unwrap();
    let mut buf = [0u8; 2048];
    let n = timeout(Duration::from_millis(300), gw.recv(&mut buf))
        .await
        .ok()?
        .ok()?;
    Some(buf[..n].to_vec())
}

async fn settle(fwd: &Forwarder, until: impl Fn(&Stats) -> bool) -> Stats {
    for _ in 0..100 {
        let s = fwd.stats();
        if until(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    fwd.stats()
}

#[tokio::test]
async fn protocol_txt_examples_v1_and_v2() {
    for version in [1u8, 2] {
        let (fwd, mut rx, gw) = start(Config {
            deliver_non_slope: true,
            ..Config::default()
        })
        .await;
        let ack = exchange(&gw, &push_data(version, 0x1234, EUI, PROTOCOL_RXPK)).await;
        assert_eq!(
            ack,
            Some(vec![version, 0x12, 0x34, 0x01]),
            "PUSH_ACK v{version}"
        );

        let a = rx.recv().await.unwrap();
        assert_eq!(a.gateway, Eui(EUI));
        let p = &a.rxpk;
        assert_eq!(p.jver, None);
        assert_eq!(p.time.as_deref(), Some("2013-03-31T16:21:17.528002Z"));
        assert_eq!(p.time_unix_us, Some(1_364_746_877_528_002));
        assert_eq!(p.tmst, 3_512_348_611);
        assert_eq!(p.chan, Some(2));
        assert_eq!(p.rfch, Some(0));
        assert_eq!(p.freq_hz, 866_349_812);
        assert_eq!((p.sf, p.bw), (SpreadingFactor::_7, Bandwidth::_125KHz));
        assert_eq!(p.codr, Some(CodingRate::_4_6));
        assert_eq!(p.antennas.len(), 1);
        assert_eq!(p.antennas[0].rssic, -35);
        assert_eq!(p.antennas[0].rssis, None);
        assert_eq!(p.antennas[0].lsnr, Some(5.1));
        assert_eq!(p.antennas[0].foff, None);
        assert_eq!(p.data.len(), 32);
        assert_eq!(&p.data[..4], &[0xF8, 0x34, 0xB8, 0x08]);
        assert_eq!(a.meta.rssi_dbm, -35);
        assert_eq!(a.meta.snr, Snr(20)); // 5.1 dB to the nearest 0.25 dB
        assert_eq!(a.meta.freq_hz, 866_349_812);
        assert_eq!(a.meta.timestamp_us, 3_512_348_611);
        assert_eq!(a.meta.freq_offset_hz, None);
        assert!(
            a.envelope().is_err(),
            "0xF8 is another vendor's proprietary frame"
        );

        // The FSK packet is skipped and counted; the third is LoRa.
        let c = rx.recv().await.unwrap();
        let p = &c.rxpk;
        assert_eq!(p.time.as_deref(), Some("2013-03-31T16:21:17.532038Z"));
        assert_eq!(p.time_unix_us, Some(1_364_746_877_532_038));
        assert_eq!(p.tmst, 3_316_387_610);
        assert_eq!((p.chan, p.rfch), (Some(0), Some(0)));
        assert_eq!(p.freq_hz, 863_009_810);
        assert_eq!((p.sf, p.bw), (SpreadingFactor::_10, Bandwidth::_125KHz));
        assert_eq!(p.codr, Some(CodingRate::_4_7));
        assert_eq!(p.antennas[0].rssic, -38);
        assert_eq!(p.antennas[0].lsnr, Some(5.5));
        assert_eq!(p.data.len(), 32);
        assert_eq!(&p.data[..4], &[0xCA, 0xC8, 0x11, 0x97]);
        assert_eq!(c.meta.snr, Snr(22));

        let s = settle(&fwd, |s| s.uplinks == 2).await;
        assert_eq!(s.push_data, 1);
        assert_eq!(s.not_lora, 1);
        assert_eq!(s.uplinks, 2);
        assert_eq!(s.not_slope_other, 2); // 0xF8 other proprietary, 0xCA rejoin request
        assert_eq!(fwd.gateway(Eui(EUI)).unwrap().version, version);

        // Status report.
        let ack = exchange(&gw, &push_data(version, 0x0001, EUI, PROTOCOL_STAT)).await;
        assert_eq!(ack, Some(vec![version, 0x00, 0x01, 0x01]));
        let st = fwd.gateway(Eui(EUI)).unwrap().last_stat.unwrap();
        assert_eq!(st.time.as_deref(), Some("2014-01-12 08:59:28 GMT"));
        assert_eq!(
            (st.lati, st.long, st.alti),
            (Some(46.24), Some(3.2523), Some(145.0))
        );
        assert_eq!((st.rxnb, st.rxok, st.rxfw), (Some(2), Some(2), Some(2)));
        assert_eq!(st.ackr, Some(100.0));
        assert_eq!((st.dwnb, st.txnb), (Some(2), Some(2)));
    }
}

#[tokio::test]
async fn protocol_v2_rsig_example() {
    let (fwd, mut rx, gw) = start(Config {
        deliver_non_slope: true,
        ..Config::default()
    })
    .await;
    let ack = exchange(&gw, &push_data(2, 0xBEEF, EUI, PROTOCOL_V2_RSIG)).await;
    assert_eq!(ack, Some(vec![2, 0xBE, 0xEF, 0x01]));
    let u = rx.recv().await.unwrap();
    let p = &u.rxpk;
    assert_eq!(p.jver, Some(2));
    assert_eq!(p.time.as_deref(), Some("2013-03-31T16:21:17.530974Z"));
    assert_eq!(p.tmst, 3_512_348_514);
    assert_eq!(p.freq_hz, 869_100_000);
    assert_eq!(
        (p.sf, p.bw, p.codr),
        (
            SpreadingFactor::_7,
            Bandwidth::_125KHz,
            Some(CodingRate::_4_5)
        )
    );
    assert_eq!(p.data, b"TEST_PACKET_1234");
    // Best antenna first.
    assert_eq!(p.antennas.len(), 2);
    let (a1, a0) = (p.antennas[0], p.antennas[1]);
    assert_eq!(
        (a1.ant, a1.chan, a1.rssic, a1.rssis, a1.lsnr, a1.foff),
        (1, Some(9), -89, Some(-90), Some(-2.8), Some(-7089))
    );
    assert_eq!(
        (a0.ant, a0.chan, a0.rssic, a0.rssis, a0.lsnr, a0.foff),
        (0, Some(9), -90, Some(-90), Some(-3.0), Some(-7089))
    );
    assert_eq!(u.meta.rssi_dbm, -89);
    assert_eq!(u.meta.signal_rssi_dbm, Some(-90));
    assert_eq!(u.meta.snr, Snr(-11));
    assert_eq!(u.meta.freq_offset_hz, Some(-7089));
    let s = settle(&fwd, |s| s.uplinks == 1).await;
    assert_eq!(s.not_slope_data_up, 1); // 'T' = 0x54: MType 010
}

#[tokio::test]
async fn slope_uplink_from_semtech_udp_encoder_and_beacon_back() {
    use semtech_udp::push_data::{CRC, RxPk, RxPkV1};
    let (fwd, mut rx, gw) = start(Config::default()).await;
    let mut phy = [0u8; 255];
    let n = encode_frame(b"envelope", &mut phy).unwrap();
    let pkt = semtech_udp::push_data::Packet {
        random_token: 0x0A0B,
        gateway_mac: semtech_udp::MacAddress::from(EUI),
        data: semtech_udp::push_data::Data {
            rxpk: Some(vec![RxPk::V1(RxPkV1 {
                chan: 1,
                codr: Some(CodingRate::_4_5),
                data: phy[..n].to_vec(),
                datr: semtech_udp::DataRate::new(SpreadingFactor::_9, Bandwidth::_125KHz),
                freq: 868.3,
                lsnr: -7.25,
                modu: semtech_udp::Modulation::LORA,
                rfch: 0,
                rssi: -117,
                rssis: Some(-120),
                size: n as u64,
                stat: CRC::OK,
                tmst: 42,
                time: None,
            })]),
            stat: None,
        },
    };
    let mut buf = [0u8; 1024];
    let len = pkt.serialize(&mut buf).unwrap() as usize;
    assert_eq!(
        exchange(&gw, &buf[..len]).await,
        Some(vec![2, 0x0A, 0x0B, 0x01])
    );
    let u = rx.recv().await.unwrap();
    assert_eq!(u.envelope(), Ok(&b"envelope"[..]));
    assert_eq!(u.meta.snr, Snr(-29));
    assert_eq!(u.meta.signal_rssi_dbm, Some(-120));

    // No PULL_DATA yet: no route for a beacon.
    let txpk = Txpk {
        tmst: None,
        freq_hz: 869_525_000,
        rfch: 0,
        power_dbm: 14,
        sf: SpreadingFactor::_9,
        bw: Bandwidth::_125KHz,
        cr: CodingRate::_4_5,
        ipol: false,
        data: phy[..n].to_vec(),
    };
    assert!(fwd.send_txpk(Eui(EUI), &txpk).await.is_err());
    // PULL_DATA opens it; PULL_ACK echoes the token.
    assert_eq!(
        exchange(&gw, &pull_data(2, 0x7777, EUI)).await,
        Some(vec![2, 0x77, 0x77, 0x04])
    );
    fwd.send_txpk(Eui(EUI), &txpk).await.unwrap();
    let mut b = [0u8; 1024];
    let n2 = timeout(Duration::from_secs(1), gw.recv(&mut b))
        .await
        .unwrap()
        .unwrap();
    // The semtech-udp parser understands it.
    match semtech_udp::Packet::parse_downlink(&b[..n2]).unwrap() {
        semtech_udp::Down::PullResp(p) => {
            assert_eq!(p.data.txpk.freq, 869.525);
            assert_eq!(p.data.txpk.powe, 14);
            assert!(!p.data.txpk.ipol);
            assert_eq!(p.data.txpk.datr.to_string(), "SF9BW125");
            assert_eq!(p.data.txpk.data.data(), &phy[..n]);
        }
        other => panic!("not a PULL_RESP: {other:?}"),
    }
    assert_eq!(fwd.stats().pull_resp, 1);
}

#[tokio::test]
async fn pull_resp_uses_the_gateway_version_v1() {
    let (fwd, _rx, gw) = start(Config::default()).await;
    assert_eq!(
        exchange(&gw, &pull_data(1, 0x0102, EUI)).await,
        Some(vec![1, 0x01, 0x02, 0x04])
    );
    let txpk = Txpk {
        tmst: Some(1000),
        freq_hz: 868_100_000,
        rfch: 0,
        power_dbm: 14,
        sf: SpreadingFactor::_7,
        bw: Bandwidth::_125KHz,
        cr: CodingRate::_4_5,
        ipol: false,
        data: vec![0xE0, b'S', b'L', 1],
    };
    fwd.send_txpk(Eui(EUI), &txpk).await.unwrap();
    let mut b = [0u8; 1024];
    let n = timeout(Duration::from_secs(1), gw.recv(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b[0], b[3]), (1, 0x03));
    let v: serde_json::Value = serde_json::from_slice(&b[4..n]).unwrap();
    let t = &v["txpk"];
    assert_eq!(t["imme"], false);
    assert_eq!(t["tmst"], 1000);
    assert_eq!(t["freq"], 868.1);
    assert_eq!(t["modu"], "LORA");
    assert_eq!(t["datr"], "SF7BW125");
    assert_eq!(t["codr"], "4/5");
    assert_eq!(t["size"], 4);
    assert_eq!(t["data"], "4FNMAQ==");
}

#[tokio::test]
async fn bad_input_is_counted_and_dropped() {
    let config = Config {
        max_datagram: 512,
        ..Config::default()
    };
    let (fwd, _rx, gw) = start(config).await;
    // Malformed JSON: acknowledged (header valid), counted.
    assert!(
        exchange(&gw, &push_data(2, 1, EUI, "{\"rxpk\":["))
            .await
            .is_some()
    );
    // Unknown version, unknown identifier, truncated, oversize: no reply.
    assert_eq!(exchange(&gw, &push_data(3, 1, EUI, "{}")).await, None);
    assert_eq!(
        exchange(&gw, &[2, 0, 0, 0x09, 1, 2, 3, 4, 5, 6, 7, 8]).await,
        None
    );
    assert_eq!(exchange(&gw, &[2, 0, 0]).await, None);
    assert_eq!(exchange(&gw, &[2, 0, 0, 0x00, 1, 2, 3]).await, None);
    assert_eq!(
        exchange(&gw, &push_data(2, 1, EUI, &" ".repeat(600))).await,
        None
    );
    // Bad rxpk fields, each alone in a valid datagram.
    for rxpk in [
        r#"{"stat":-1,"modu":"LORA","datr":"SF7BW125","freq":868.1,"tmst":1,"rssi":-1,"data":"AA=="}"#,
        r#"{"stat":0,"modu":"LORA","datr":"SF7BW125","freq":868.1,"tmst":1,"rssi":-1,"data":"AA=="}"#,
        r#"{"stat":1,"modu":"LORA","datr":"SF7BW125","freq":868.1,"tmst":1,"rssi":-1,"data":"AA==","size":2}"#,
        r#"{"stat":1,"modu":"LORA","datr":"SF1é7BW125","freq":868.1,"tmst":1,"rssi":-1,"data":"AA=="}"#,
        r#"{"stat":1,"modu":"LORA","datr":"SF7BW125","freq":-1,"tmst":1,"rssi":-1,"data":"AA=="}"#,
        r#"{"stat":1,"modu":"LORA","datr":"SF7BW125","freq":868.1,"tmst":1,"rssi":-1,"data":"%%"}"#,
        r#"{"stat":1,"modu":"LORA","datr":"SF7BW125","freq":868.1,"tmst":1,"data":"AA=="}"#,
    ] {
        assert!(
            exchange(
                &gw,
                &push_data(2, 2, EUI, &format!("{{\"rxpk\":[{rxpk}]}}"))
            )
            .await
            .is_some()
        );
    }
    // Garbage of every length never stops the server.
    for i in 0..64u8 {
        let junk: Vec<u8> = (0..i).map(|j| j.wrapping_mul(37).wrapping_add(i)).collect();
        gw.send(&junk).await.unwrap();
    }
    assert_eq!(
        exchange(&gw, &pull_data(2, 9, EUI)).await,
        Some(vec![2, 0, 9, 4])
    );
    let s = fwd.stats();
    assert_eq!(s.malformed_json, 1);
    assert!(s.unknown_version >= 1);
    assert!(s.unknown_identifier >= 1);
    assert!(s.truncated >= 2);
    assert_eq!(s.oversize, 1);
    assert_eq!(s.crc_bad, 1);
    assert_eq!(s.crc_absent, 1);
    assert_eq!(s.size_mismatch, 1);
    assert_eq!(s.bad_rxpk, 4);
    assert_eq!(s.uplinks, 0);
}

#[tokio::test]
async fn allow_lists_rate_limit_and_bounded_queue() {
    // EUI allow-list.
    let allowed: HashSet<Eui> = [Eui([9; 8])].into();
    let (fwd, _rx, gw) = start(Config {
        allowed_gateways: Some(allowed),
        ..Config::default()
    })
    .await;
    assert_eq!(exchange(&gw, &pull_data(2, 1, EUI)).await, None);
    assert_eq!(
        exchange(&gw, &pull_data(2, 1, [9; 8])).await,
        Some(vec![2, 0, 1, 4])
    );
    assert_eq!(fwd.stats().gateway_not_allowed, 1);

    // Source allow-list.
    let sources: HashSet<IpAddr> = [IpAddr::from([10, 0, 0, 1])].into();
    let (fwd, _rx, gw) = start(Config {
        allowed_sources: Some(sources),
        ..Config::default()
    })
    .await;
    assert_eq!(exchange(&gw, &pull_data(2, 1, EUI)).await, None);
    assert_eq!(fwd.stats().source_not_allowed, 1);

    // Flood from one address: burst 5, then about one per second.
    let (fwd, _rx, gw) = start(Config {
        rate_per_sec: 1,
        burst: 5,
        ..Config::default()
    })
    .await;
    for t in 0..20u16 {
        gw.send(&pull_data(2, t, EUI)).await.unwrap();
    }
    let s = settle(&fwd, |s| s.datagrams == 20).await;
    assert!(s.pull_data <= 6 && s.pull_data >= 5, "{s:?}");
    assert_eq!(s.rate_limited, 20 - s.pull_data);

    // Queue of one, never read: the rest are dropped and counted.
    let (fwd, _rx, gw) = start(Config {
        queue_capacity: 1,
        ..Config::default()
    })
    .await;
    let rxpk = r#"{"rxpk":[{"stat":1,"modu":"LORA","datr":"SF7BW125","freq":868.1,"tmst":1,"rssi":-60,"lsnr":9,"data":"4FNMAQ=="}]}"#;
    for t in 0..3 {
        assert!(exchange(&gw, &push_data(2, t, EUI, rxpk)).await.is_some());
    }
    let s = settle(&fwd, |s| s.uplinks + s.queue_full == 3).await;
    assert_eq!((s.uplinks, s.queue_full), (1, 2));
}

/// Made-up EUIs cannot hold the gateway table: at its bound a new gateway replaces
/// those silent for `gateway_idle` (swept at most once a second), and is refused and
/// counted while every tracked gateway is still speaking.
#[tokio::test]
async fn the_gateway_table_forgets_silent_gateways_at_its_bound() {
    let (fwd, _rx, gw) = start(Config {
        max_gateways: 2,
        gateway_idle: Duration::from_millis(200),
        ..Config::default()
    })
    .await;
    for eui in [[1; 8], [2; 8]] {
        assert!(exchange(&gw, &pull_data(2, 1, eui)).await.is_some());
    }
    // Both just spoke: a third is refused.
    assert_eq!(exchange(&gw, &pull_data(2, 2, [3; 8])).await, None);
    assert_eq!(fwd.stats().too_many_gateways, 1);
    // Gateway 2 keeps speaking; gateway 1 falls silent past `gateway_idle`.
    for t in 0..6u16 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(exchange(&gw, &pull_data(2, t, [2; 8])).await.is_some());
    }
    assert!(exchange(&gw, &pull_data(2, 3, [3; 8])).await.is_some());
    assert_eq!(fwd.stats().too_many_gateways, 1);
    let euis: Vec<Eui> = fwd.gateways().iter().map(|g| g.eui).collect();
    assert_eq!(euis, vec![Eui([2; 8]), Eui([3; 8])]);
}

#[tokio::test]
async fn radio_view() {
    let (fwd, rx, gw) = start(Config::default()).await;
    let mut radio = fwd.radio(rx, None);
    let rxpk = r#"{"rxpk":[{"stat":1,"modu":"LORA","datr":"SF12BW125","freq":868.5,"tmst":77,"rssi":-120,"lsnr":-15.5,"data":"4FNMAQ=="}]}"#;
    assert!(exchange(&gw, &push_data(1, 5, EUI, rxpk)).await.is_some());
    let mut buf = [0u8; 255];
    let (n, meta) = radio.receive(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], &[0xE0, b'S', b'L', 1]);
    assert_eq!(
        (meta.sf, meta.rssi_dbm, meta.snr, meta.timestamp_us),
        (SpreadingFactor::_12, -120, Snr(-62), 77)
    );
    // Transmit goes to the last gateway that sent PULL_DATA.
    let params = TxParams {
        freq_hz: 869_525_000,
        modulation: slope_radios::airtime::Modulation::new(SpreadingFactor::_9, Bandwidth::_125KHz),
        power_dbm: 14,
    };
    assert!(radio.transmit(&buf[..n], params).await.is_err());
    assert!(exchange(&gw, &pull_data(1, 6, EUI)).await.is_some());
    let report = radio.transmit(&buf[..n], params).await.unwrap();
    assert_eq!(report.airtime_us, 123_904);
    let mut b = [0u8; 512];
    let got = timeout(Duration::from_secs(1), gw.recv(&mut b))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((b[0], b[3]), (1, 0x03));
    assert!(got > 4);
}
