//! The sharded verifier changes no outcome: for any arrival order and any cut into
//! batches, several shards give, frame by frame, the outcomes of one verifier — also
//! with several batches in flight at once (each shard going on with its part of the
//! next batch while the others finish theirs).

mod common;

use common::{attest, clone_of, incepted};
use proptest::prelude::*;
use slope_mesh::pipeline::shards::{Check, Shards};
use slope_node::verifier::{Config, Outcome};
use slope_proto::Observation;

fn rx(t: u64) -> Observation {
    Observation {
        rssi_dbm: -90,
        snr_qdb: 8,
        freq_hz: 868_100_000,
        foff_hz: None,
        sf: 9,
        time_ms: t,
    }
}

/// Eight devices with rotations, one of them cloned (a fork), and a garbage frame.
fn frames() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for seed in 0..8u64 {
        let (mut d, mut rng, inception) = incepted(1000 + seed);
        out.push(inception);
        if seed == 3 {
            let mut c = clone_of(&d);
            let mut crng = common::Rng(99);
            out.extend(attest(&mut c, &mut crng, 3, 1000, 7));
        }
        out.extend(attest(&mut d, &mut rng, 6, 1000, 0));
    }
    out.push(vec![0xff; 40]);
    out
}

/// Outcomes per frame, and the released ones (order across shards is not defined).
fn run(shards: usize, frames: &[Vec<u8>], cuts: &[usize]) -> (Vec<Outcome>, Vec<String>) {
    let mut v = Shards::new(Config::default(), shards);
    let mut outcomes = Vec::new();
    let mut released = Vec::new();
    let mut start = 0;
    let mut cuts = cuts.iter();
    while start < frames.len() {
        let len = cuts.next().copied().unwrap_or(frames.len()).max(1);
        let end = (start + len).min(frames.len());
        let batch: Vec<(&[u8], Observation)> = frames[start..end]
            .iter()
            .map(|f| (f.as_slice(), rx(start as u64)))
            .collect();
        outcomes.extend(v.handle_batch(start as u64, &batch));
        while let Some(o) = v.poll_outcome() {
            released.push(format!("{o:?}"));
        }
        start = end;
    }
    released.sort();
    (outcomes, released)
}

/// The same as [`run`], with up to `ahead` batches submitted before the oldest is
/// waited for.
fn run_pipelined(
    shards: usize,
    frames: &[Vec<u8>],
    cuts: &[usize],
    ahead: usize,
) -> (Vec<Outcome>, Vec<String>) {
    let mut v = Shards::new(Config::default(), shards);
    let mut outcomes = Vec::new();
    let mut released = Vec::new();
    let mut take = |v: &mut Shards| {
        let done = v.wait().expect("a batch in flight");
        outcomes.extend(done.outcomes);
        released.extend(done.released.iter().map(|o| format!("{o:?}")));
    };
    let mut start = 0;
    let mut cuts = cuts.iter();
    while start < frames.len() {
        let len = cuts.next().copied().unwrap_or(frames.len()).max(1);
        let end = (start + len).min(frames.len());
        let batch = frames[start..end]
            .iter()
            .map(|f| (f.clone(), rx(start as u64), Check::Suite1))
            .collect();
        v.submit(start as u64, batch);
        if v.in_flight() > ahead {
            take(&mut v);
        }
        start = end;
    }
    while v.in_flight() > 0 {
        take(&mut v);
    }
    released.sort();
    (outcomes, released)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn shards_change_no_outcome(
        seed in any::<u64>(),
        cuts in proptest::collection::vec(1usize..48, 0..6),
        n in 2usize..5,
        ahead in 1usize..5,
    ) {
        // Fisher-Yates with the tests' deterministic generator.
        let mut shuffled = frames();
        let mut rng = common::Rng(seed);
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
        let one = run(1, &shuffled, &cuts);
        let many = run(n, &shuffled, &cuts);
        prop_assert_eq!(&one, &many);
        let pipelined = run_pipelined(n, &shuffled, &cuts, ahead);
        prop_assert_eq!(one, pipelined);
    }
}
