//! The `slope` binary end to end: init, gateway fed by a packet forwarder over UDP,
//! the HTTP API, `kill -9`, `slope db check`, `slope lineage verify`, restart.

mod common;

use std::io::{Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const BIN: &str = env!("CARGO_BIN_EXE_slope");

fn free_tcp() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, body.to_owned()))
}

fn post(port: u16, path: &str, token: Option<&str>, body: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.split_whitespace().nth(1)?.parse().ok()
}

fn wait(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn slope(config: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap()
}

fn start(config: &Path) -> Child {
    Command::new(BIN)
        .arg("--config")
        .arg(config)
        .arg("gateway")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn daemon_survives_kill_9_and_checks_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("init")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let key = dir.path().join("data/gateway.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let (api, udp) = (free_tcp(), free_udp());
    let config = dir.path().join("slope.toml");
    std::fs::write(
        &config,
        format!(
            "[network]\nlisten = [\"/ip4/127.0.0.1/tcp/0\"]\n[api]\nlisten = \"127.0.0.1:{api}\"\ntoken = \"secret\"\n[radio]\nforwarder = \"127.0.0.1:{udp}\"\n"
        ),
    )
    .unwrap();

    let mut child = start(&config);
    wait(30, "API up", || {
        get(api, "/v1/status").is_some_and(|(c, _)| c == 200)
    });

    let (mut dev, mut rng, inception) = incepted(42);
    let id = hex::encode(device_id(&dev).0);
    let mut frames = vec![inception];
    frames.extend(attest(&mut dev, &mut rng, 5, 1000, 0));
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    wait(30, "device committed via the packet forwarder", || {
        sock.send_to(&push_data(&frames, 3_512_348_611), ("127.0.0.1", udp))
            .unwrap();
        get(api, &format!("/v1/devices/{id}"))
            .is_some_and(|(c, b)| c == 200 && b.contains(&format!("\"depth\":{}", frames.len())))
    });
    // Operator action: needs the token, lands in the lineage.
    assert_eq!(
        post(
            api,
            &format!("/v1/devices/{id}/pin"),
            None,
            r#"{"scope":"restricted"}"#
        ),
        Some(401)
    );
    assert_eq!(
        post(
            api,
            &format!("/v1/devices/{id}/pin"),
            Some("secret"),
            r#"{"scope":"restricted","note":"test"}"#
        ),
        Some(200)
    );
    let (_, lineage) = get(api, &format!("/v1/devices/{id}/lineage")).unwrap();
    assert!(lineage.contains("pinned"), "{lineage}");
    let (_, metrics) = get(api, "/metrics").unwrap();
    assert!(
        metrics.contains("slope_ingest_frames_total{kind=\"radio\"}"),
        "{metrics}"
    );
    let (code, doc) = get(api, "/openapi.json").unwrap();
    assert_eq!(code, 200);
    assert!(doc.contains("\"openapi\""));

    // Every frame decided (the receipt window is over) before the kill.
    wait(30, "every decision taken", || {
        get(api, "/metrics")
            .is_some_and(|(_, m)| m.contains("slope_queue_depth{kind=\"undecided\"} 0"))
    });
    // kill -9, then the offline tools and a restart.
    child.kill().unwrap();
    child.wait().unwrap();
    let check = slope(&config, &["db", "check"]);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let verify = slope(&config, &["lineage", "verify"]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let said = String::from_utf8_lossy(&verify.stdout);
    assert!(said.contains("trust engine lineage OK"), "{said}");
    let replayed = slope(&config, &["lineage", "verify", "--replay"]);
    let said = String::from_utf8_lossy(&replayed.stdout);
    assert!(replayed.status.success(), "{said}");
    assert!(said.contains("re-derived by replay"), "{said}");
    let engine_export = dir.path().join("engine.lineage");
    let export = slope(
        &config,
        &[
            "lineage",
            "export",
            "--engine",
            "-o",
            engine_export.to_str().unwrap(),
        ],
    );
    assert!(export.status.success());
    let bytes = std::fs::read(&engine_export).unwrap();
    let author = slope_mesh::identity::Identity::load(&key)
        .unwrap()
        .signing_key()
        .verifying_key()
        .to_bytes();
    let report = slope_node::lineage::verify(&bytes, &author).expect("engine lineage verifies");
    assert!(report.decisions >= frames.len() as u64, "{report:?}");
    let export = slope(&config, &["lineage", "export"]);
    assert!(export.status.success());
    assert!(String::from_utf8_lossy(&export.stdout).contains("\"head\""));

    let mut child = start(&config);
    wait(30, "API up again", || {
        get(api, "/v1/status").is_some_and(|(c, _)| c == 200)
    });
    let (_, body) = get(api, &format!("/v1/devices/{id}")).unwrap();
    assert!(
        body.contains(&format!("\"depth\":{}", frames.len())),
        "{body}"
    );
    assert!(body.contains("\"pinned\":\"restricted\""), "{body}");
    let status = slope(&config, &["status"]);
    assert!(status.status.success());
    child.kill().unwrap();
    child.wait().unwrap();
}
