//! Candid round trips of the public types (only with `--features candid`).
#![cfg(feature = "candid")]

mod common;

use candid::{CandidType, Decode, Encode};
use common::*;
use opml_bisect::{ClaimState, Effect, Error, FinalStatus, Hash, MerkleProof, Move, Party};
use serde::de::DeserializeOwned;

fn round_trip<T: CandidType + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = Encode!(value).unwrap();
    let back = Decode!(&bytes, T).unwrap();
    assert_eq!(&back, value);
}

#[test]
fn public_types_round_trip_through_candid() {
    let s = setup(&[3, 2]);
    let lies = Lies::of(s.honest.with_fault(1, 0));
    let (state, tree, effects) = submit(&s.vm, &config(4), &lies, 2);
    let (state, id, _) = open(&state, 2);
    let mut w = LyingWorker::new(lies, tree.clone());
    let mut c = HonestChallenger { run: s.honest.clone() };
    let p = drive(state.clone(), id, &mut w, &mut c, &s.vm, T0 + TICK);
    round_trip::<ClaimState>(&state);
    round_trip::<ClaimState>(&p.state);
    round_trip::<Vec<Effect>>(&effects);
    round_trip::<Vec<Effect>>(&p.effects);
    round_trip(&Move::PostRoots { roots: vec![Hash([7; 32])], proofs: vec![tree.proof(1).unwrap()] });
    round_trip(&Move::CommitSteps { steps: 9, fixpoint_proof: vec![1, 2, 3] });
    round_trip(&Error::StaleMove { expected: 3, got: 1 });
    round_trip(&Error::StepProofRejected(opml_bisect::VerifierError::new("bad")));
    round_trip(&MerkleProof::default());
    round_trip(&p.state.claim);
    for status in [FinalStatus::Halted, FinalStatus::Trapped { code: 7 }] {
        round_trip(&status);
        let mut claim = p.state.claim.clone();
        claim.final_status = status;
        round_trip(&claim);
    }
    round_trip(&Error::FinalStatusMismatch { claimed: FinalStatus::Halted, opened: FinalStatus::Trapped { code: 3 } });
}

#[test]
fn hashes_and_parties_are_blobs_and_validated() {
    // A hash is a 32-byte blob; anything else is rejected.
    let blob = Encode!(&vec![5u8; 32]).unwrap();
    assert_eq!(Decode!(&blob, Hash).unwrap(), Hash([5; 32]));
    let short = Encode!(&vec![5u8; 31]).unwrap();
    assert!(Decode!(&short, Hash).is_err());
    // A party is at most 29 bytes.
    let p29 = Encode!(&vec![1u8; 29]).unwrap();
    assert_eq!(Decode!(&p29, Party).unwrap(), Party::new(&[1; 29]).unwrap());
    let p30 = Encode!(&vec![1u8; 30]).unwrap();
    assert!(Decode!(&p30, Party).is_err());
    assert_eq!(Party::new(&[0; 30]).unwrap_err(), Error::PartyTooLong { len: 30 });
}
