//! Shared fixtures of the trust and lineage tests: a deterministic RNG, simulated
//! devices that sign real attestations, gateways that sign real receipts, and an engine
//! set up with them. (Compiled into each test crate with `#[path]`.)
#![allow(dead_code)]

use ed25519_dalek::SigningKey;
use slope_node::Millis;
use slope_node::lineage::{self, Checkpoint, Genesis, Local, Memory, Record, export::Export};
use slope_node::proto::batch::Entry;
use slope_node::proto::limits::MAX_RECEIPT_BATCH;
use slope_node::proto::{
    DeviceId, Digest, Event, Heard, Inception, Interaction, LinkDigest, Observation, Receipt,
    ReceiptBatch, Signed, crypto, sample,
};
use slope_node::trust::operator::{self, Action};
use slope_node::trust::{Engine, Policy, Position, VerifiedReceipt, Zone};
use slope_node::verifier::VerifiedAttestation;

/// SplitMix64: small, fast, deterministic.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next_u64() % ((hi - lo + 1) as u64)) as i64
    }
    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.next_u64() % 100 < pct
    }
    /// Roughly normal (sum of 4 uniforms), standard deviation about `sd`.
    pub fn normalish(&mut self, sd: i64) -> i64 {
        let s: i64 = (0..4).map(|_| self.range(-1000, 1000)).sum();
        s * sd * 866 / 1_000_000
    }
}

/// A simulated device that signs real events with `sample::key(seed)`.
pub struct Device {
    pub seed: u8,
    pub id: DeviceId,
    pub inception: Signed<Inception>,
    pub seq: u32,
    pub prev: Digest,
    pub boot: u16,
}

impl Device {
    pub fn new(seed: u8) -> Self {
        let inception = sample::inception(seed);
        let id = inception.device_id();
        let prev = inception.digest(&id);
        Self {
            seed,
            id,
            inception,
            seq: 0,
            prev,
            boot: 1,
        }
    }

    /// The inception as an event.
    pub fn incept(&self) -> Event {
        Event::Inception(self.inception.clone())
    }

    /// Signs the next interaction.
    pub fn next(&mut self, heard: &[Heard]) -> Event {
        self.seq += 1;
        let body = Interaction {
            device: self.id.short(),
            seq: self.seq,
            prev: self.prev.link(),
            epoch: 0,
            boot: self.boot,
            behaviour: [7, 7, 7, 7],
            heard: heapless::Vec::from_slice(heard).unwrap_or_default(),
            payload: heapless::Vec::from_slice(&[1, 2, 3]).unwrap_or_default(),
        };
        let signed = Signed::sign(body, &self.id, &sample::key(self.seed)).expect("sign");
        self.prev = signed.digest(&self.id);
        Event::Interaction(signed)
    }

    /// A second, conflicting interaction at the current position (a clone).
    pub fn fork(&self, prev: LinkDigest, seq: u32) -> Event {
        let body = Interaction {
            device: self.id.short(),
            seq,
            prev,
            epoch: 0,
            boot: self.boot,
            behaviour: [9, 9, 9, 9],
            heard: heapless::Vec::new(),
            payload: heapless::Vec::new(),
        };
        Event::Interaction(Signed::sign(body, &self.id, &sample::key(self.seed)).expect("sign"))
    }
}

/// What the verifier would output for `event` (bypassing it: `bench-internals`).
pub fn verified(
    dev: &Device,
    event: Event,
    rx: Observation,
    now: Millis,
    gap: u32,
) -> VerifiedAttestation {
    let digest = event.digest(&dev.id);
    VerifiedAttestation::assume_verified(dev.id, event, digest, rx, now, gap, true)
}

pub fn obs(rssi: i16, snr_qdb: i16, foff: i32, time_ms: u64) -> Observation {
    Observation {
        rssi_dbm: rssi,
        snr_qdb,
        freq_hz: 868_100_000,
        foff_hz: Some(foff),
        sf: 9,
        time_ms,
    }
}

/// A gateway: a witness key and a position.
pub struct Gateway {
    pub key: SigningKey,
    pub zone: Zone,
    pub position: Position,
}

impl Gateway {
    pub fn new(seed: u8, zone: u16, east_m: i32) -> Self {
        Self {
            key: sample::key(seed),
            zone: Zone(zone),
            position: Position {
                east_m,
                north_m: 0,
                up_m: 20,
            },
        }
    }
    /// A signed receipt for `att`.
    pub fn receipt(&self, att: &VerifiedAttestation, observed: Observation) -> Signed<Receipt> {
        let body = Receipt {
            witness: crypto::witness_id(self.key.verifying_key().as_bytes()),
            device: att.device().short(),
            seq: att.seq(),
            event: att.digest().link(),
            observed,
        };
        Signed::witness(body, &self.key).expect("receipt")
    }

    /// A batched receipt (frame) for every attestation of `heard`, with what the
    /// gateway observed of each; entries put in batch order.
    pub fn batch(&self, heard: &[(&VerifiedAttestation, Observation)], time_ms: u64) -> Vec<u8> {
        let mut entries: Vec<Entry> = heard
            .iter()
            .map(|(att, observed)| Entry {
                device: att.device().short(),
                seq: att.seq(),
                event: att.digest().link(),
                observed: *observed,
            })
            .collect();
        entries.sort_by_key(Entry::order_key);
        let mut out = vec![0u8; MAX_RECEIPT_BATCH];
        let n = ReceiptBatch::sign_into(&self.key, time_ms, entries, &mut out).expect("batch");
        out.truncate(n);
        out
    }
}

/// Verifies a batch frame through the engine (one signature) and keeps the receipts
/// naming `att`.
pub fn batch_receipts<S: slope_node::lineage::Storage>(
    e: &Engine<S>,
    frame: &[u8],
    att: &VerifiedAttestation,
) -> Vec<VerifiedReceipt> {
    let batch = ReceiptBatch::decode(frame).expect("batch decodes");
    e.verify_receipt_batch(&batch)
        .expect("batch verifies")
        .into_iter()
        .filter(|r| r.names(att))
        .collect()
}

pub const AUTHOR: u8 = 200;
pub const OPERATOR: u8 = 201;

/// An engine whose gateway is `sample::key(AUTHOR)` (zone 1, at the origin), with
/// operator `sample::key(OPERATOR)`, and `others` registered as witnesses by signed
/// operator actions.
pub fn engine(policy: Policy, others: &[&Gateway], now: Millis) -> Engine<Memory> {
    let genesis = Genesis {
        author: sample::key(AUTHOR).verifying_key().to_bytes(),
        operators: vec![sample::key(OPERATOR).verifying_key().to_bytes()],
        local: Some(Local {
            zone: Zone(1),
            position: Some(Position {
                east_m: 0,
                north_m: 0,
                up_m: 20,
            }),
        }),
        policy,
    };
    let mut e = Engine::new(genesis, Memory::new(256 << 20), now).expect("engine");
    for g in others {
        let a = act(
            Action::RegisterWitness {
                key: g.key.verifying_key().to_bytes(),
                zone: g.zone,
                position: Some(g.position),
            },
            "site survey 2025-11",
            now,
        );
        e.handle_operator(now, &a).expect("register");
    }
    e
}

/// An operator action signed by the test operator.
pub fn act(action: Action, why: &str, at: Millis) -> operator::Signed {
    let why = heapless::String::try_from(why).expect("short reason");
    operator::Signed::sign(action, why, at, &sample::key(OPERATOR)).expect("sign action")
}

/// Verifies receipts through the engine.
pub fn receipts(e: &Engine<Memory>, rs: &[Signed<Receipt>]) -> Vec<VerifiedReceipt> {
    rs.iter()
        .map(|r| e.verify_receipt(r).expect("receipt verifies"))
        .collect()
}

/// The RF a gateway sees from a device in the tests: stable, small jitter.
pub fn link_rf(rng: &mut Rng, gateway: usize, now: Millis) -> Observation {
    let (r, s, f) = [
        (-96i16, -20i16, -1_250i32),
        (-108, -44, -1_310),
        (-113, -60, -1_190),
    ][gateway % 3];
    obs(
        r + rng.normalish(2) as i16,
        s + rng.normalish(4) as i16,
        f + rng.normalish(25) as i32,
        now + rng.range(0, 300) as u64,
    )
}

/// Feeds `n` attestations of `dev` heard by the local gateway and every gateway in
/// `others`, 15 minutes apart; returns the last decision and the next `now`.
pub fn run_honest(
    e: &mut Engine<Memory>,
    rng: &mut Rng,
    dev: &mut Device,
    others: &[&Gateway],
    n: u32,
    mut now: Millis,
) -> (Option<slope_node::trust::Decision>, Millis) {
    let mut last = None;
    for _ in 0..n {
        let event = if dev.seq == 0 && last.is_none() && e.hot(&dev.id).is_none() {
            dev.incept()
        } else {
            dev.next(&[])
        };
        let att = verified(dev, event, link_rf(rng, 0, now), now, 0);
        let rs: Vec<_> = others
            .iter()
            .enumerate()
            .map(|(i, g)| g.receipt(&att, link_rf(rng, i + 1, now)))
            .collect();
        let rs = receipts(e, &rs);
        last = Some(e.handle_attestation(now, &att, &rs).expect("decision"));
        now = now.saturating_add_signed(900_000 + rng.range(-20_000, 20_000));
    }
    (last, now)
}

/// Rewrites `records[at]` of an export with `edit`, re-chains every later record and
/// re-signs the checkpoint with the author's key: what a gateway lying about its own
/// past could do (the chain and checkpoint then hold; only content checks remain).
pub fn rewrite(log: &[u8], at: usize, edit: impl Fn(&mut Record<'_>)) -> Vec<u8> {
    let ex: Export<'_> = postcard::from_bytes(log).expect("export decodes");
    let mut out: Vec<Vec<u8>> = Vec::new();
    let mut head = Digest([0; 32]);
    for (i, raw) in ex.records.iter().enumerate() {
        let mut rec: Record<'_> = postcard::from_bytes(raw).expect("record decodes");
        if i == at {
            edit(&mut rec);
        }
        if i > 0 {
            rec.prev = head;
        }
        let bytes = postcard::to_extend(&rec, Vec::new()).expect("encode");
        head = lineage::record::digest(&bytes);
        out.push(bytes);
    }
    let cp = Checkpoint::sign(out.len() as u64, head, &sample::key(AUTHOR));
    lineage::export::encode(&out, &cp).expect("encode export")
}

/// The decoded records of an export.
pub fn records(log: &[u8]) -> Vec<Record<'_>> {
    let ex: Export<'_> = postcard::from_bytes(log).expect("export decodes");
    ex.records
        .iter()
        .map(|raw| postcard::from_bytes(raw).expect("record decodes"))
        .collect()
}
