//! `slope-bench`: end-to-end ingest on this machine (decode, batch verify, trust
//! decision, durable redb commit, receipt signing) next to raw ed25519 batch
//! verification of the same frames, on the same cores, in the same run; and memory per
//! tracked device.
//!
//! `cargo run --release -p slope-mesh --bin slope-bench -- [--devices N] [--frames K]
//! [--mem-devices M] [--batch B] [--engine 0|1] [--overlap 0|1] [--commit-max C]
//! [--mem-engine 0|1] [--receipt-wait-ms W]`
//!
//! `--receipt-wait-ms W` (default 0) runs with the node's receipt window: each
//! attestation is committed and receipted at once and decided W ms (of wall-clock time)
//! later, in a later group's transaction; the ones still waiting at the end are decided
//! inside the measured time.
//!
//! `--mem-engine 1` also feeds the memory measurement's attestations to a trust engine
//! (its lineage records discarded, as a gateway's are written to redb), so the figure
//! is the verifier's and the engine's RAM per device together.
//!
//! `--overlap 1` (default) runs the pipeline as the node does: the commit of batch n
//! (decide, redb commit with fsync, receipt signing) on one core while batch n+1 is
//! verified by the sharded verifier — with group commit: the batches verified while a
//! commit runs are committed together next, up to `--commit-max` attestations (default
//! 4096; `--commit-max` equal to `--batch` commits every batch alone); `--overlap 0`
//! runs the stages one after the other.

#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use slope_mesh::identity::Identity;
use slope_mesh::lineage::Source;
use slope_mesh::metrics::Metrics;
use slope_mesh::pipeline::{Input, Output, Overlapped, Pipeline};
use slope_mesh::store::{DB_FILE, Store};
use slope_mesh::trust::Policy;
use slope_node::verifier::{Config as VerifierConfig, Verifier};
use slope_proto::{Event, Inception, Interaction, Observation, Signed, crypto};

const USAGE: &str = "\
usage: slope-bench [--devices N] [--frames K] [--mem-devices M] [--batch B] [--engine 0|1]
                   [--overlap 0|1] [--commit-max C] [--mem-engine 0|1] [--receipt-wait-ms W]

End-to-end ingest (decode, batch verify, trust decision, redb commit with fsync, receipt
signing) next to raw ed25519 batch verification of the same frames, in the same run;
then memory per tracked device. Defaults: 400 devices x 50 frames, batch 256, engine on,
overlap on, group commit up to 4096, 100000 devices for the memory figure, no receipt
window. See docs/benchmarks.md, Mesh.";

struct Args {
    devices: u32,
    frames: u32,
    mem_devices: u32,
    batch: usize,
    engine: bool,
    overlap: bool,
    commit_max: usize,
    mem_engine: bool,
    receipt_wait_ms: u64,
}

fn args() -> Result<Args> {
    let mut a = Args {
        devices: 400,
        frames: 50,
        mem_devices: 100_000,
        batch: 256,
        engine: true,
        overlap: true,
        commit_max: slope_mesh::pipeline::DEFAULT_COMMIT_MAX,
        mem_engine: false,
        receipt_wait_ms: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        if k == "--help" || k == "-h" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let v: u64 = it
            .next()
            .with_context(|| format!("{k} needs a value"))?
            .parse()
            .with_context(|| format!("{k}: not a number"))?;
        match k.as_str() {
            "--devices" => a.devices = v as u32,
            "--frames" => a.frames = v as u32,
            "--mem-devices" => a.mem_devices = v as u32,
            "--batch" => a.batch = v as usize,
            "--engine" => a.engine = v != 0,
            "--overlap" => a.overlap = v != 0,
            "--commit-max" => a.commit_max = v as usize,
            "--mem-engine" => a.mem_engine = v != 0,
            "--receipt-wait-ms" => a.receipt_wait_ms = v,
            other => anyhow::bail!("unknown option {other}\n{USAGE}"),
        }
    }
    Ok(a)
}

fn key(seed: u64, salt: u8) -> SigningKey {
    let mut input = seed.to_le_bytes().to_vec();
    input.push(salt);
    SigningKey::from_bytes(blake3::hash(&input).as_bytes())
}

/// A device's inception and `n` linked interactions (epoch 0).
fn chain(seed: u64, n: u32) -> Vec<Vec<u8>> {
    let k = key(seed, 0);
    let next = key(seed, 1);
    let inc = Signed::incept(
        Inception {
            key: k.verifying_key().to_bytes(),
            next_key: crypto::next_key_digest(next.verifying_key().as_bytes()),
            interval_s: 900,
        },
        &k,
    )
    .expect("inception encodes");
    let device = inc.device_id();
    let mut prev = inc.digest(&device);
    let mut out = vec![inc.frame().to_vec()];
    for seq in 1..=n {
        let body = Interaction {
            device: device.short(),
            seq,
            prev: prev.link(),
            epoch: 0,
            boot: 1,
            behaviour: [0; 4],
            heard: heapless::Vec::new(),
            payload: heapless::Vec::from_slice(&seq.to_le_bytes()).unwrap_or_default(),
        };
        let s = Signed::sign(body, &device, &k).expect("interaction encodes");
        prev = s.digest(&device);
        out.push(s.frame().to_vec());
    }
    out
}

fn rx(t: u64) -> Observation {
    Observation {
        rssi_dbm: -100,
        snr_qdb: 20,
        freq_hz: 868_100_000,
        foff_hz: None,
        sf: 9,
        time_ms: t,
    }
}

/// Lineage storage that keeps nothing (the memory measurement counts the engine's
/// in-memory state, not its log, which a gateway writes to redb).
#[derive(Default)]
struct Discard {
    len: u64,
    head: Option<slope_proto::Digest>,
}

impl slope_node::lineage::Storage for Discard {
    fn append(
        &mut self,
        index: u64,
        digest: &slope_proto::Digest,
        _record: &[u8],
    ) -> Result<(), slope_node::lineage::StorageError> {
        if index != self.len {
            return Err(slope_node::lineage::StorageError::OutOfOrder);
        }
        self.len += 1;
        self.head = Some(*digest);
        Ok(())
    }
    fn len(&self) -> u64 {
        self.len
    }
    fn head(&self) -> Option<slope_proto::Digest> {
        self.head
    }
    fn read(&self, _: u64, _: &mut Vec<u8>) -> Result<bool, slope_node::lineage::StorageError> {
        Ok(false)
    }
}

fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// Raw ed25519 batch verification of `items` in chunks of `batch`, on `threads` threads.
fn raw_batch(items: &[([u8; 32], Signature, VerifyingKey)], batch: usize, threads: usize) -> f64 {
    let t = Instant::now();
    let per = items.len().div_ceil(threads);
    std::thread::scope(|s| {
        for part in items.chunks(per) {
            s.spawn(move || {
                for chunk in part.chunks(batch) {
                    let msgs: Vec<&[u8]> = chunk.iter().map(|(m, _, _)| &m[..]).collect();
                    let sigs: Vec<Signature> = chunk.iter().map(|(_, s, _)| *s).collect();
                    let keys: Vec<VerifyingKey> = chunk.iter().map(|(_, _, k)| *k).collect();
                    assert!(ed25519_dalek::verify_batch(&msgs, &sigs, &keys).is_ok());
                }
            });
        }
    });
    items.len() as f64 / t.elapsed().as_secs_f64()
}

fn main() -> Result<()> {
    let a = args()?;
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!(
        "slope-bench: {} devices x {} frames (+ inception), batch {}, stages {}, trust engine {}, {cores} cores",
        a.devices,
        a.frames,
        a.batch,
        if a.overlap {
            "overlapped, group commit"
        } else {
            "serial"
        },
        if a.engine {
            "on"
        } else {
            "off (built-in policy)"
        }
    );

    // Frames, interleaved across devices as a gateway hears them.
    let t = Instant::now();
    let chains: Vec<Vec<Vec<u8>>> = (0..a.devices)
        .map(|d| chain(u64::from(d), a.frames))
        .collect();
    let mut frames = Vec::new();
    for i in 0..=a.frames as usize {
        for c in &chains {
            frames.push(c[i].clone());
        }
    }
    println!(
        "generated {} frames in {:.1} s",
        frames.len(),
        t.elapsed().as_secs_f64()
    );

    // The (message, signature, key) of every frame, for raw verification.
    let mut keys = std::collections::HashMap::new();
    let mut items = Vec::with_capacity(frames.len());
    for f in &frames {
        let e = Event::decode(f).expect("decodes");
        let (device, vk) = match &e {
            Event::Inception(i) => {
                let d = i.device_id();
                let vk = VerifyingKey::from_bytes(&i.body().key).expect("key");
                keys.insert(d.short(), (d, vk));
                (d, vk)
            }
            other => *keys.get(&other.short_id()).expect("known device"),
        };
        items.push((e.message(&device), Signature::from_bytes(e.signature()), vk));
    }
    let raw1 = raw_batch(&items, a.batch, 1);
    let raw_n = raw_batch(&items, a.batch, cores);

    // End to end through the real pipeline and a real redb file (fsync per batch).
    let dir = tempfile::tempdir()?;
    let store = Arc::new(Store::open(&dir.path().join(DB_FILE))?);
    let metrics = Metrics::new();
    let mut pipeline = Pipeline::new(
        store.clone(),
        VerifierConfig::default(),
        Box::new(Policy {
            config: slope_mesh::config::Trust::default(),
        }),
        Identity::from_seed([7; 32]),
        metrics.clone(),
        256,
        a.engine.then(slope_node::trust::Policy::default),
    )?;
    if a.receipt_wait_ms > 0 {
        pipeline.set_receipts(slope_mesh::pipeline::Receipts {
            wait_ms: a.receipt_wait_ms,
            ..Default::default()
        })?;
    }
    let cpu0 = process_cpu_seconds();
    let t = Instant::now();
    // Batch times: synthetic (1 ms apart) without the window; wall-clock with it, so
    // that decisions fall due as they would in the node.
    let wall = a.receipt_wait_ms > 0;
    let mut accepted = 0usize;
    let mut receipts = 0usize;
    let mut receipt_batches = 0usize;
    let mut count = |out: Output<()>| {
        accepted += out
            .verdicts
            .iter()
            .filter(|(_, v)| *v == slope_mesh::pipeline::Verdict::Accept)
            .count();
        // Receipts: the entries of the signed receipt batches.
        for e in &out.effects {
            if let slope_mesh::pipeline::Effect::PublishReceipt(m) = e {
                receipt_batches += 1;
                receipts += slope_mesh::pipeline::parse_receipt_message(m)
                    .and_then(|(_, f)| slope_proto::ReceiptBatch::decode(f).ok())
                    .map_or(0, |b| b.len());
            }
        }
    };
    let (mut verify_s, mut commit_s) = (0.0f64, 0.0f64);
    let mut overlap = Overlapped::new(a.commit_max);
    let mut batches = frames.chunks(a.batch).enumerate().map(|(n, chunk)| {
        let inputs: Vec<Input<()>> = chunk
            .iter()
            .map(|f| Input {
                frame: f.clone(),
                rx: rx(n as u64),
                source: Source::Radio,
                tag: (),
            })
            .collect();
        let ms = if wall {
            t.elapsed().as_millis() as u64
        } else {
            n as u64
        };
        (1_700_000_000_000 + ms, inputs)
    });
    let mut commits = 0usize;
    while let Some((now, inputs)) = batches.next() {
        if a.overlap {
            // As the node does: more batches are verified while a group commits.
            let out = overlap.push(&mut pipeline, now, inputs, || batches.next());
            commits += usize::from(!out.is_empty());
            for out in out {
                count(out.map_err(|f| f.error)?);
            }
        } else {
            let t = Instant::now();
            let v = pipeline.verify(now, inputs);
            verify_s += t.elapsed().as_secs_f64();
            let t = Instant::now();
            count(pipeline.commit(v).map_err(|f| f.error)?);
            commits += 1;
            commit_s += t.elapsed().as_secs_f64();
        }
    }
    while overlap.is_pending() {
        let out = overlap.flush(&mut pipeline);
        commits += usize::from(!out.is_empty());
        for out in out {
            count(out.map_err(|f| f.error)?);
        }
    }
    // The decisions still in their window are taken now (inside the measured time).
    let late_decisions = pipeline.undecided();
    pipeline.decide_due(u64::MAX / 2)?;
    anyhow::ensure!(pipeline.undecided() == 0, "undecided attestations left");
    let e2e_wall = t.elapsed().as_secs_f64();
    let e2e_cpu = process_cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    let e2e = frames.len() as f64 / e2e_wall;
    anyhow::ensure!(
        accepted == frames.len(),
        "only {accepted} of {} accepted",
        frames.len()
    );
    anyhow::ensure!(receipts == frames.len(), "only {receipts} receipts");
    let lineage = store.lineage_head()?.0;
    if wall {
        println!(
            "receipt window {} ms: {late_decisions} decisions were still waiting at the end",
            a.receipt_wait_ms
        );
    }
    let db_bytes = std::fs::metadata(dir.path().join(DB_FILE))?.len();
    drop(pipeline);
    drop(store);

    println!();
    println!("| measurement | attestations/s |");
    println!("|---|---|");
    println!("| raw ed25519 batch verify, 1 core | {raw1:.0} |");
    println!("| raw ed25519 batch verify, {cores} cores | {raw_n:.0} |");
    println!(
        "| end-to-end ingest (decode, verify, decide, commit+fsync, sign receipt batch) | {e2e:.0} |"
    );
    println!(
        "| end-to-end / raw on {cores} cores | {:.0} % |",
        100.0 * e2e / raw_n
    );
    println!(
        "| end-to-end / raw on 1 core | {:.0} % |",
        100.0 * e2e / raw1
    );
    let commit_fsync_s = metrics.encode().lines().find_map(|l| {
        l.strip_prefix("slope_commit_seconds_sum ")?
            .trim()
            .parse::<f64>()
            .ok()
    });
    if let Some(c) = commit_fsync_s {
        println!("of which redb commit (write-out + fsync): {c:.2} s");
    }
    if let Some(c) = e2e_cpu {
        println!(
            "end-to-end CPU: {c:.2} s of CPU in {e2e_wall:.2} s = {:.2} of {cores} cores busy, {:.1} us of CPU per attestation",
            c / e2e_wall,
            1e6 * c / frames.len() as f64
        );
    }
    let commit_cpu_s = metrics.encode().lines().find_map(|l| {
        l.strip_prefix("slope_commit_cpu_seconds_total ")?
            .trim()
            .parse::<f64>()
            .ok()
    });
    if let Some(c) = commit_cpu_s.filter(|c| *c > 0.0) {
        println!(
            "commit stage CPU (its thread's own clock): {c:.2} s = {:.1} us/attestation",
            1e6 * c / frames.len() as f64
        );
    }
    let encoded = metrics.encode();
    let waited = |what: &str| {
        let prefix = format!("slope_verify_wait_seconds_total{{kind=\"{what}\"}} ");
        encoded
            .lines()
            .find_map(|l| l.strip_prefix(prefix.as_str())?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    println!(
        "verify stage waited (wall): {:.3} s for the commit at the group bound, {:.3} s for the commit otherwise, {:.3} s for the verifier shards",
        waited("commit_bound"),
        waited("commit"),
        waited("verify")
    );
    println!(
        "ingest commits: {commits} ({:.0} attestations per commit; group commit up to {} attestations)",
        frames.len() as f64 / commits.max(1) as f64,
        a.commit_max
    );
    if !a.overlap {
        println!(
            "stages (serial): verify {:.2} s ({:.1} us/attestation), decide+commit+sign {:.2} s ({:.1} us/attestation)",
            verify_s,
            1e6 * verify_s / frames.len() as f64,
            commit_s,
            1e6 * commit_s / frames.len() as f64
        );
    }
    println!(
        "every accepted attestation committed: {accepted} accepted, {receipts} receipts in {receipt_batches} signed batches, {lineage} lineage records, {:.1} MB on disk",
        db_bytes as f64 / 1e6
    );

    // Memory per tracked device: the verifier's in-memory state (what a gateway holds per
    // device in RAM), measured as resident-set growth while it tracks mem_devices devices
    // with an inception and one interaction each.
    let chunk = 10_000u32;
    let mut verifier = Verifier::new(VerifierConfig {
        max_devices: a.mem_devices as usize + 1,
        ..VerifierConfig::default()
    });
    let warm: Vec<Vec<Vec<u8>>> = (0..chunk.min(a.mem_devices))
        .map(|d| chain(u64::from(d) + 1_000_000_000, 1))
        .collect();
    drop(warm);
    let mut engine = a.mem_engine.then(|| {
        let key = key(7, 7);
        let mut policy = slope_node::trust::Policy::default();
        policy.bounds.max_devices = a.mem_devices.max(1);
        policy.bounds.max_newcomers = a.mem_devices.max(1);
        let genesis = slope_node::lineage::Genesis {
            author: key.verifying_key().to_bytes(),
            operators: Vec::new(),
            local: Some(slope_node::lineage::Local {
                zone: slope_node::trust::Zone::NONE,
                position: None,
            }),
            policy,
        };
        slope_node::trust::Engine::new(genesis, Discard::default(), 0).expect("engine starts")
    });
    let base = rss_bytes();
    let t = Instant::now();
    let mut done = 0u32;
    while done < a.mem_devices {
        let n = chunk.min(a.mem_devices - done);
        let cs: Vec<Vec<Vec<u8>>> = (done..done + n)
            .map(|d| chain(u64::from(d) + 2_000_000_000, 1))
            .collect();
        for step in 0..2 {
            let batch: Vec<(&[u8], Observation)> =
                cs.iter().map(|c| (c[step].as_slice(), rx(0))).collect();
            for b in batch.chunks(256) {
                let outcomes = verifier.handle_batch(0, b);
                if let Some(e) = engine.as_mut() {
                    for o in outcomes {
                        if let slope_node::verifier::Outcome::Extended(att) = o {
                            let _ = e.handle_attestation(0, &att, &[]);
                        }
                    }
                }
            }
        }
        done += n;
    }
    let grown = rss_bytes().saturating_sub(base);
    println!();
    println!(
        "memory: {} devices tracked by the verifier{} in {:.1} s; resident set grew {:.1} MB = {:.0} bytes/device",
        verifier.device_count(),
        engine.as_ref().map_or(String::new(), |e| format!(
            " and {} by the trust engine",
            e.devices()
        )),
        t.elapsed().as_secs_f64(),
        grown as f64 / 1e6,
        grown as f64 / f64::from(a.mem_devices.max(1))
    );
    println!(
        "disk: {:.0} bytes/device in redb for {} devices x {} frames (frames, lineage, records)",
        db_bytes as f64 / f64::from(a.devices),
        a.devices,
        a.frames + 1
    );
    Ok(())
}

/// CPU time of this process (all its threads, live and exited), seconds, from
/// `/proc/self/stat` (Linux; clock ticks of 10 ms).
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 after the name.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}
