//! The moves a party can make in a dispute.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::hash::Hash;
use crate::merkle::MerkleProof;

/// One move. Each is submitted with the dispute's next sequence number, so a replayed move is rejected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub enum Move {
    /// Worker: the roots at this round's split points, in index order. In the segment phase each root comes with
    /// its Merkle proof against the claim's `segments_root` (same order); in the step phase `proofs` is empty.
    PostRoots {
        /// One root per split point.
        roots: Vec<Hash>,
        /// One proof per root (segment phase) or none (step phase).
        proofs: Vec<MerkleProof>,
    },
    /// Challenger: the sub-interval `[p_index, p_index+1]` it disputes (the first whose upper root it disagrees with).
    Choose {
        /// Sub-interval index, `0..m`.
        index: u32,
    },
    /// Worker: the step count `n` of the disputed segment, and a one-step proof that the disputed boundary root
    /// `R_{s+1}` is a fixed point of segment `s`'s transition (i.e. a true boundary state, not a mid-segment one).
    CommitSteps {
        /// Steps from `R_s` to `R_{s+1}`, `1..=max_segment_steps`.
        steps: u64,
        /// One-step proof of segment `s` from `R_{s+1}`.
        fixpoint_proof: Vec<u8>,
    },
    /// Challenger: a one-step proof of segment `s` from the agreed root at step `j`.
    ProveStep {
        /// The VM's one-step proof.
        proof: Vec<u8>,
    },
}

/// The kind of a [`Move`], for turn errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub enum MoveKind {
    /// [`Move::PostRoots`].
    PostRoots,
    /// [`Move::Choose`].
    Choose,
    /// [`Move::CommitSteps`].
    CommitSteps,
    /// [`Move::ProveStep`].
    ProveStep,
}

impl Move {
    /// This move's kind.
    pub fn kind(&self) -> MoveKind {
        match self {
            Move::PostRoots { .. } => MoveKind::PostRoots,
            Move::Choose { .. } => MoveKind::Choose,
            Move::CommitSteps { .. } => MoveKind::CommitSteps,
            Move::ProveStep { .. } => MoveKind::ProveStep,
        }
    }
}
