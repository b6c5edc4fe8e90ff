//! Decision replay (`lineage::verify_replay`): an honest log replays; a decision whose
//! mode was edited, in a log re-chained and re-signed by its author (so that
//! `lineage::verify` accepts it), is caught at that record. And the literal restart:
//! an engine stopped and restored from its store decides as one that never stopped.

#[path = "trust_support.rs"]
mod support;

use slope_node::lineage::{self, Entry, Record, export::Export};
use slope_node::proto::sample;
use slope_node::trust::{Admission, Engine, Policy};
use support::*;

const T0: u64 = 1_795_000_000_000;

fn author() -> [u8; 32] {
    sample::key(AUTHOR).verifying_key().to_bytes()
}

/// An honest log: one device climbing with two witnesses.
fn honest() -> Vec<u8> {
    let g2 = Gateway::new(102, 2, 1_800);
    let mut e = engine(Policy::default(), &[&g2], T0);
    let mut rng = Rng(7);
    let mut dev = Device::new(31);
    run_honest(&mut e, &mut rng, &mut dev, &[&g2], 12, T0);
    e.lineage().export(&sample::key(AUTHOR)).expect("export")
}

#[test]
fn an_honest_log_replays() {
    let log = honest();
    let plain = lineage::verify(&log, &author()).expect("verifies");
    assert_eq!(lineage::verify_replay(&log, &author()), Ok(plain));
}

#[test]
fn an_edited_decision_mode_is_caught_by_replay_only() {
    let log = honest();
    let ex: Export<'_> = postcard::from_bytes(&log).expect("export decodes");
    let target = ex
        .records
        .iter()
        .position(|raw| {
            matches!(
                postcard::from_bytes::<Record<'_>>(raw).map(|r| r.entry),
                Ok(Entry::Decision {
                    admission: Admission::Restricted,
                    ..
                })
            )
        })
        .expect("a restricted decision");
    let forged = rewrite(&log, target, |rec| {
        if let Entry::Decision { admission, .. } = &mut rec.entry {
            *admission = Admission::Full;
        }
    });
    // Signatures, chain and references all hold: plain verification accepts it.
    assert!(lineage::verify(&forged, &author()).is_ok());
    // Replay re-derives the decision and names the edited record.
    assert_eq!(
        lineage::verify_replay(&forged, &author()),
        Err(lineage::VerifyError::Replay {
            record: target as u64
        })
    );
}

#[test]
fn a_stopped_engine_restored_from_its_store_decides_as_one_that_never_stopped() {
    let g2 = Gateway::new(102, 2, 1_800);
    let g3 = Gateway::new(103, 3, -2_500);
    let (mut rng_a, mut rng_b) = (Rng(11), Rng(11));
    let (mut dev_a, mut dev_b) = (Device::new(33), Device::new(33));
    // Never stops.
    let mut a = engine(Policy::default(), &[&g2, &g3], T0);
    let (_, now_a) = run_honest(&mut a, &mut rng_a, &mut dev_a, &[&g2, &g3], 30, T0);
    // Stops after 30 attestations (dropped: only its store survives), then restores.
    let mut b = engine(Policy::default(), &[&g2, &g3], T0);
    let (_, now_b) = run_honest(&mut b, &mut rng_b, &mut dev_b, &[&g2, &g3], 30, T0);
    let store = b.into_storage();
    let mut b = Engine::restore(store).expect("restore");
    assert_eq!(b.hot(&dev_b.id), a.hot(&dev_a.id));
    assert_eq!(now_a, now_b);
    // The same next 20 inputs give the same decisions.
    let mut now = now_a;
    for _ in 0..20 {
        let (da, na) = run_honest(&mut a, &mut rng_a, &mut dev_a, &[&g2, &g3], 1, now);
        let (db, nb) = run_honest(&mut b, &mut rng_b, &mut dev_b, &[&g2, &g3], 1, now);
        assert_eq!(da, db);
        assert_eq!(na, nb);
        now = na;
    }
    assert_eq!(b.hot(&dev_b.id), a.hot(&dev_a.id));
    assert_eq!(b.lineage().head(), a.lineage().head());
    assert!(
        a.hot(&dev_a.id).is_some_and(|h| h.grant_scope == 2),
        "reached full scope"
    );
}
