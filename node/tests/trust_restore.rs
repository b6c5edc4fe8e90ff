//! Restart from the log: an engine restored from its lineage (`Engine::restore`) has the
//! same per-device state as one that never stopped, and decides the same from then on
//! (property test over random sequences of attestations, single and batched receipts,
//! operator actions, divergence proofs, evictions and store failures). Also: `lineage::verify_replay`
//! catches a decision whose mode was edited in a re-chained, re-signed log.

#[path = "trust_support.rs"]
mod support;

use std::collections::BTreeSet;

use proptest::prelude::*;
use slope_node::Millis;
use slope_node::lineage::{self, Memory, Storage, StorageError};
use slope_node::proto::{Digest, DivergenceProof, ReceiptBatch, sample};
use slope_node::trust::operator::Action;
use slope_node::trust::{Engine, Policy, Position, Scope, Zone};
use slope_node::verifier::DivergenceEvidence;
use support::*;

const T0: u64 = 1_795_000_000_000;

/// A bounded in-memory store that refuses chosen append attempts (a durable store that
/// fails now and then).
#[derive(Debug, Clone)]
struct Flaky {
    inner: Memory,
    attempts: u64,
    fail: BTreeSet<u64>,
}

impl Storage for Flaky {
    fn append(&mut self, index: u64, digest: &Digest, record: &[u8]) -> Result<(), StorageError> {
        self.attempts += 1;
        if self.fail.contains(&self.attempts) {
            return Err(StorageError::Failed);
        }
        self.inner.append(index, digest, record)
    }
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn head(&self) -> Option<Digest> {
        self.inner.head()
    }
    fn read(&self, index: u64, out: &mut Vec<u8>) -> Result<bool, StorageError> {
        self.inner.read(index, out)
    }
}

/// One input of a random run.
#[derive(Debug, Clone)]
enum Op {
    /// Device `dev` sends its next attestation; `heard` says which of the local radio
    /// and the two other gateways hear it (bit 0 lost: only the receipts count).
    Attest {
        dev: usize,
        heard: u8,
    },
    /// Devices `a` and `b` attest; each gateway that hears (bits as in `Attest`) signs
    /// one batched receipt for both, which both decisions take their entry from. When
    /// `again`, the batch of the previous `Pair` is offered too (a repeat: recorded
    /// once, or again if the engine forgot it).
    Pair {
        a: usize,
        b: usize,
        heard: u8,
        again: bool,
    },
    Pin {
        dev: usize,
        full: bool,
    },
    Unpin {
        dev: usize,
    },
    Enroll {
        dev: usize,
    },
    Release {
        dev: usize,
    },
    /// A divergence proof for `dev` (found locally when `local`, else from gossip).
    Diverge {
        dev: usize,
        local: bool,
    },
    Evict,
    /// Silence of this many minutes.
    Wait(u32),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (0usize..5, 0u8..8).prop_map(|(dev, heard)| Op::Attest { dev, heard }),
        4 => (0usize..5, 0usize..5, 0u8..8, any::<bool>())
            .prop_map(|(a, b, heard, again)| Op::Pair { a, b, heard, again }),
        1 => (0usize..5, any::<bool>()).prop_map(|(dev, full)| Op::Pin { dev, full }),
        1 => (0usize..5).prop_map(|dev| Op::Unpin { dev }),
        1 => (0usize..5).prop_map(|dev| Op::Enroll { dev }),
        1 => (0usize..5).prop_map(|dev| Op::Release { dev }),
        1 => (0usize..5, any::<bool>()).prop_map(|(dev, local)| Op::Diverge { dev, local }),
        1 => Just(Op::Evict),
        2 => (1u32..3_000).prop_map(Op::Wait),
    ]
}

/// The world around the engine: devices, gateways, the clock, the RNG.
struct World {
    devices: Vec<Device>,
    gateways: [Gateway; 2],
    /// The batches signed by the last `Pair`.
    last_batches: Vec<Vec<u8>>,
    rng: support::Rng,
    now: Millis,
}

impl World {
    fn new(seed: u64) -> Self {
        Self {
            devices: (0..5).map(|i| Device::new(40 + i)).collect(),
            gateways: [Gateway::new(102, 2, 1_800), Gateway::new(103, 3, -2_500)],
            last_batches: Vec::new(),
            rng: support::Rng(seed),
            now: T0,
        }
    }

    /// Builds the inputs of `op` (signing, verifying receipts against `e`) and feeds
    /// them to every engine in `engines`; returns what the first one answered, after
    /// checking the others answered the same.
    fn apply(&mut self, op: &Op, engines: &mut [&mut Engine<Flaky>]) -> String {
        self.now += 60_000 + self.rng.range(0, 900_000) as u64;
        let now = self.now;
        let answers: Vec<String> = match op {
            Op::Wait(min) => {
                self.now += u64::from(*min) * 60_000;
                vec![String::new(); engines.len()]
            }
            Op::Attest { dev, heard } => {
                let d = &mut self.devices[*dev];
                let event = if d.seq == 0 && engines[0].hot(&d.id).is_none() {
                    d.incept()
                } else {
                    d.next(&[])
                };
                let rx = link_rf(&mut self.rng, 0, now);
                let att = verified(d, event, rx, now, 0);
                let signed: Vec<_> = (0..2)
                    .filter(|g| heard & (2 << g) != 0)
                    .map(|g| {
                        let rf = link_rf(&mut self.rng, g + 1, now);
                        self.gateways[g].receipt(&att, rf)
                    })
                    .collect();
                engines
                    .iter_mut()
                    .map(|e| {
                        let rs: Vec<_> = signed
                            .iter()
                            .filter_map(|r| e.verify_receipt(r).ok())
                            .collect();
                        format!("{:?}", e.handle_attestation(now, &att, &rs))
                    })
                    .collect()
            }
            Op::Pair { a, b, heard, again } => {
                if a == b {
                    return String::new();
                }
                let mut atts = Vec::new();
                for dev in [*a, *b] {
                    let d = &mut self.devices[dev];
                    let event = if d.seq == 0 && engines[0].hot(&d.id).is_none() {
                        d.incept()
                    } else {
                        d.next(&[])
                    };
                    let rx = link_rf(&mut self.rng, 0, now);
                    atts.push(verified(d, event, rx, now, 0));
                }
                let mut batches: Vec<Vec<u8>> = (0..2)
                    .filter(|g| heard & (2 << g) != 0)
                    .map(|g| {
                        let heard: Vec<_> = atts
                            .iter()
                            .map(|att| (att, link_rf(&mut self.rng, g + 1, now)))
                            .collect();
                        self.gateways[g].batch(&heard, now)
                    })
                    .collect();
                if *again {
                    batches.extend(self.last_batches.iter().cloned());
                }
                self.last_batches = batches.clone();
                engines
                    .iter_mut()
                    .map(|e| {
                        atts.iter()
                            .map(|att| {
                                let rs: Vec<_> = batches
                                    .iter()
                                    .flat_map(|f| {
                                        let b = ReceiptBatch::decode(f).expect("decodes");
                                        e.verify_receipt_batch(&b).unwrap_or_default()
                                    })
                                    .filter(|r| r.names(att))
                                    .collect();
                                format!("{:?}", e.handle_attestation(now, att, &rs))
                            })
                            .collect::<String>()
                    })
                    .collect()
            }
            Op::Diverge { dev, local } => {
                let d = &mut self.devices[*dev];
                if d.seq == 0 {
                    return String::new();
                }
                let prev = d.prev.link();
                let a = d.next(&[]);
                let b = d.fork(prev, d.seq);
                let mut proof = vec![0u8; 4096];
                let n = DivergenceProof::encode(
                    d.inception.frame(),
                    &[],
                    a.frame(),
                    b.frame(),
                    &mut proof,
                )
                .expect("proof");
                proof.truncate(n);
                let rx = link_rf(&mut self.rng, 0, now);
                let evidence = DivergenceEvidence {
                    device: d.id,
                    seq: d.seq,
                    proof: proof.clone(),
                    attestation: verified(d, b, rx, now, 0),
                };
                engines
                    .iter_mut()
                    .map(|e| {
                        if *local {
                            format!("{:?}", e.handle_divergence(now, &evidence))
                        } else {
                            format!("{:?}", e.handle_proof(now, &proof))
                        }
                    })
                    .collect()
            }
            Op::Evict => engines
                .iter_mut()
                .map(|e| format!("{:?}", e.try_evict_idle(now)))
                .collect(),
            Op::Pin { dev, .. } | Op::Unpin { dev } | Op::Enroll { dev } | Op::Release { dev } => {
                let device = self.devices[*dev].id;
                let action = match op {
                    Op::Pin { full, .. } => Action::Pin {
                        device,
                        scope: if *full {
                            Scope::Full
                        } else {
                            Scope::Restricted
                        },
                    },
                    Op::Unpin { .. } => Action::Unpin { device },
                    Op::Release { .. } => Action::Release { device },
                    _ => Action::Enroll {
                        device,
                        zone: Zone(2),
                        position: Some(Position {
                            east_m: 300,
                            north_m: 40,
                            up_m: 2,
                        }),
                    },
                };
                let a = act(action, "restore test", now);
                engines
                    .iter_mut()
                    .map(|e| format!("{:?}", e.handle_operator(now, &a)))
                    .collect()
            }
        };
        for a in &answers[1..] {
            assert_eq!(a, &answers[0], "engines answered differently to {op:?}");
        }
        answers.into_iter().next().unwrap_or_default()
    }
}

/// Every piece of per-device state the engine exposes, for every device of the world.
fn state(e: &Engine<Flaky>, w: &World) -> String {
    let mut s = format!("devices {}; head {:?}\n", e.devices(), e.lineage().head());
    for d in &w.devices {
        s += &format!("{:?}\n{:?}\n", e.hot(&d.id), e.grant(&d.id, w.now));
    }
    s
}

fn policy() -> Policy {
    let mut p = Policy::default();
    // Small bounds, so that capacity refusals and evictions happen.
    p.bounds.max_devices = 4;
    p.bounds.max_newcomers = 4;
    p.bounds.newcomer_idle_ms = 6 * 3_600_000;
    p
}

fn flaky(max_bytes: usize, fail: BTreeSet<u64>) -> Flaky {
    Flaky {
        inner: Memory::new(max_bytes),
        attempts: 0,
        fail,
    }
}

/// An engine on `store`, set up as `support::engine` does (the local gateway in zone 1,
/// the two world gateways registered by signed operator actions).
fn engine_on(store: Flaky) -> Engine<Flaky> {
    let genesis = lineage::Genesis {
        author: sample::key(AUTHOR).verifying_key().to_bytes(),
        operators: vec![sample::key(OPERATOR).verifying_key().to_bytes()],
        local: Some(lineage::Local {
            zone: Zone(1),
            position: Some(Position {
                east_m: 0,
                north_m: 0,
                up_m: 20,
            }),
        }),
        policy: policy(),
    };
    let mut e = Engine::new(genesis, store, T0).expect("engine");
    for g in &World::new(0).gateways {
        let a = act(
            Action::RegisterWitness {
                key: g.key.verifying_key().to_bytes(),
                zone: g.zone,
                position: Some(g.position),
            },
            "site survey",
            T0,
        );
        // A failing store may refuse it: then the witness is simply not registered.
        let _ = e.handle_operator(T0, &a);
    }
    e
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn restored_engine_is_the_engine_that_never_stopped(
        ops in proptest::collection::vec(op(), 1..90),
        split in 0usize..90,
        seed in any::<u64>(),
        max_bytes in prop_oneof![3 => Just(usize::MAX), 1 => 4_000usize..60_000],
        fail in proptest::collection::btree_set(3u64..300, 0..4),
    ) {
        let split = split.min(ops.len());
        let mut world = World::new(seed);
        let mut a = engine_on(flaky(max_bytes, fail));
        for op in &ops[..split] {
            world.apply(op, &mut [&mut a]);
        }
        // Restart: a new engine from (a copy of) the same store, which goes on failing
        // at the same append attempts; the old engine keeps running beside it.
        let stored = a.lineage().storage().clone();
        let mut b = Engine::restore(stored).expect("restore");
        prop_assert_eq!(state(&b, &world), state(&a, &world));
        for op in &ops[split..] {
            world.apply(op, &mut [&mut a, &mut b]);
            prop_assert_eq!(state(&b, &world), state(&a, &world));
        }
        prop_assert_eq!(
            a.lineage().storage().inner.bytes(),
            b.lineage().storage().inner.bytes()
        );
    }
}
