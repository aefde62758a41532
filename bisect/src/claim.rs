//! A worker's claim about one execution, and the evidence checked when it is submitted.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::config::GameConfig;
use crate::error::Error;
use crate::hash::Hash;
use crate::merkle::{self, MerkleProof};
use crate::verifier::StepVerifier;

/// How the claimed run ended. A trap is an ordinary final state: a claim can state either, and a claim is
/// disputed the same way whichever it states (the final root binds the status, its opening shows it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub enum FinalStatus {
    /// The program finished its last segment.
    Halted,
    /// The program trapped; its output is what it wrote before the trap.
    Trapped {
        /// The VM's trap code (for `opml-vm`, `TrapCode as u8`).
        code: u32,
    },
}

impl core::fmt::Display for FinalStatus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FinalStatus::Halted => f.write_str("halted"),
            FinalStatus::Trapped { code } => write!(f, "trapped (code {code})"),
        }
    }
}

/// What a worker asserts: running `program` on `input_root` ends after `segments` segments, as `final_status`
/// says (halted, or trapped with a code), having output `output_hash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub struct Claim {
    /// Hash of the (instrumented) program.
    pub program: Hash,
    /// Commitment to the inputs.
    pub input_root: Hash,
    /// Hash of the output bytes (for a trapped run: the bytes written before the trap).
    pub output_hash: Hash,
    /// How the run ended: the status `final_root` opens to.
    pub final_status: FinalStatus,
    /// The final (halted or trapped) state root `R_N`.
    pub final_root: Hash,
    /// Number of segments `N` (>= 1); boundaries are `0..=N`.
    pub segments: u64,
    /// Merkle root (see [`crate::merkle`]) over the boundary roots `R_0..=R_N`.
    pub segments_root: Hash,
}

/// Evidence that the claim's commitment is anchored at both ends, checked once at submission.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub struct ClaimEvidence {
    /// Merkle proof that leaf 0 is the initial root of program and input.
    pub initial_proof: MerkleProof,
    /// Merkle proof that leaf `N` is `final_root`.
    pub final_proof: MerkleProof,
    /// The VM's opening of `final_root` showing its final status and `output_hash`.
    pub final_opening: Vec<u8>,
}

impl Claim {
    /// Leaves in the segment commitment: `N + 1`.
    pub fn leaf_count(&self) -> u64 {
        self.segments.saturating_add(1)
    }

    /// Checks that `root` is boundary `index` of the commitment.
    pub fn check_boundary(&self, index: u64, root: &Hash, proof: &MerkleProof) -> Result<(), Error> {
        if merkle::verify(&self.segments_root, self.leaf_count(), index, root, proof) {
            Ok(())
        } else {
            Err(Error::BoundaryProofInvalid { index })
        }
    }

    /// Validates the claim against `config` and `evidence`; returns the initial root `R_0`.
    ///
    /// Checks: `1 <= N <= max_segments`; the final root opens to `final_status` with `output_hash`; leaf 0 of the
    /// commitment is `initial_root(program, input_root)`; leaf `N` is `final_root`. After this, both ends of every
    /// dispute are fixed: only the interior of the commitment can be contested.
    pub fn validate<V: StepVerifier>(
        &self,
        config: &GameConfig,
        evidence: &ClaimEvidence,
        verifier: &V,
    ) -> Result<Hash, Error> {
        config.validate()?;
        if self.segments == 0 {
            return Err(Error::ZeroSegments);
        }
        if self.segments > config.max_segments {
            return Err(Error::TooManySegments { segments: self.segments, max: config.max_segments });
        }
        let opened = verifier
            .check_final(&self.final_root, &self.output_hash, &evidence.final_opening)
            .map_err(Error::FinalOpeningRejected)?;
        if opened != self.final_status {
            return Err(Error::FinalStatusMismatch { claimed: self.final_status, opened });
        }
        let initial = verifier.initial_root(&self.program, &self.input_root).map_err(Error::InitialRootUnavailable)?;
        if !merkle::verify(&self.segments_root, self.leaf_count(), 0, &initial, &evidence.initial_proof) {
            return Err(Error::InitialRootMismatch);
        }
        self.check_boundary(self.segments, &self.final_root, &evidence.final_proof)?;
        Ok(initial)
    }
}
