//! Signatures made ahead (`Slope::sign_ahead`, `SignJob::sign`, `Slope::attest_ahead`):
//! a device that adopts a signature made ahead releases the same frames and commits the
//! same flash bytes as one that signs at the wake-up, and it adopts only the signature
//! of exactly the attestation it makes.

mod common;

use common::{Rng, feed, incepted};
use proptest::prelude::*;
use slope_node::device::Ahead;
use slope_node::device::storage::{MAX_SLOT, MemSlots, Slots};

/// Both slots of a device's flash.
fn flash(d: &common::Device) -> Vec<u8> {
    let mut m: MemSlots = d.storage().medium().clone();
    let mut out = vec![0u8; 2 * MAX_SLOT];
    let (a, b) = out.split_at_mut(MAX_SLOT);
    m.read(0, a).unwrap();
    m.read(1, b).unwrap();
    out
}

/// What the device is given ahead of one wake-up.
#[derive(Debug, Clone, Copy)]
enum Given {
    /// Nothing: it signs itself.
    Nothing,
    /// The job for exactly this wake-up, signed.
    Right,
    /// A job for another payload (a wake-up moved), signed.
    OtherPayload,
    /// A job made before the previous wake-up (stale position).
    Stale,
    /// A job made before the entropy of this wake-up (entropy does not enter an
    /// interaction: adopted).
    BeforeEntropy,
}

fn given() -> impl Strategy<Value = Given> {
    prop_oneof![
        Just(Given::Nothing),
        Just(Given::Right),
        Just(Given::OtherPayload),
        Just(Given::Stale),
        Just(Given::BeforeEntropy),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Two copies of one device, fed the same entropy: one attests, the other attests
    /// with whatever was signed ahead; the frames and the flash stay equal, and the
    /// copy adopts exactly the signatures made for its attestation.
    #[test]
    fn adopting_a_signature_made_ahead_changes_no_byte(
        seed in any::<u64>(),
        rotate_every in 2u32..6,
        steps in proptest::collection::vec(given(), 1..24),
    ) {
        let (mut plain, _) = incepted(seed, rotate_every);
        let (mut ahead, _) = incepted(seed, rotate_every);
        let (mut ra, mut rb) = (Rng(seed ^ 1), Rng(seed ^ 1));
        let mut stale: Option<Ahead> = None;
        for (i, g) in steps.iter().enumerate() {
            let t = (i as u64 + 1) * 900_000;
            let payload = t.to_le_bytes();
            let early = ahead.sign_ahead(t, &payload, &[]).map(|j| j.sign());
            feed(&mut plain, &mut ra, 32);
            feed(&mut ahead, &mut rb, 32);
            let right = ahead.sign_ahead(t, &payload, &[]).map(|j| j.sign());
            prop_assert_eq!(&early, &right);
            let other = ahead.sign_ahead(t, &[1, 2, 3], &[]).map(|j| j.sign());
            let offered = match g {
                Given::Nothing => None,
                Given::Right => right.clone(),
                Given::OtherPayload => other,
                Given::Stale => stale.clone(),
                Given::BeforeEntropy => early,
            };
            let want = plain.attest(t, &payload, &[]).unwrap();
            let (got, adopted) = ahead.attest_ahead(t, &payload, &[], offered.as_ref()).unwrap();
            prop_assert_eq!(&got, &want);
            prop_assert_eq!(flash(&ahead), flash(&plain));
            // Adopted exactly when the offer was made for this attestation (no job is
            // made when a rotation is due).
            let fits = matches!(g, Given::Right | Given::BeforeEntropy) && right.is_some();
            prop_assert_eq!(adopted, fits, "{:?} at {}", g, i);
            // A wake-up that rotates has no job (one where a rotation is due but waits
            // for entropy has none either: it cannot be known ahead).
            prop_assert!(want.frames.len() == 1 || right.is_none());
            stale = right;
        }
    }
}

/// A wrong signature offered for the right message and key would be adopted: this is
/// what makes the test above able to fail (the frames would differ).
#[test]
fn a_job_is_for_the_device_that_made_it() {
    let (mut a, _) = incepted(1, 96);
    let (mut b, _) = incepted(2, 96);
    let job = a.sign_ahead(900_000, &[7], &[]).unwrap().sign();
    let (_, adopted) = b.attest_ahead(900_000, &[7], &[], Some(&job)).unwrap();
    assert!(!adopted, "another device's signature was adopted");
    let (_, adopted) = a.attest_ahead(900_000, &[7], &[], Some(&job)).unwrap();
    assert!(adopted);
}
