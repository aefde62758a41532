//! A worker's claim about one execution, and the evidence checked when it is submitted.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::config::GameConfig;
use crate::error::Error;
use crate::hash::Hash;
use crate::merkle::{self, MerkleProof};
use crate::verifier::StepVerifier;

/// What a worker asserts: running `program` on `input_root` halts after `segments` segments with `output_hash`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub struct Claim {
    /// Hash of the (instrumented) program.
    pub program: Hash,
    /// Commitment to the inputs.
    pub input_root: Hash,
    /// Hash of the output bytes.
    pub output_hash: Hash,
    /// The halted state root `R_N`.
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
    /// The VM's opening of `final_root` showing status halted and `output_hash`.
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
    /// Checks: `1 <= N <= max_segments`; the final root opens to halted with `output_hash`; leaf 0 of the
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
        verifier
            .check_final(&self.final_root, &self.output_hash, &evidence.final_opening)
            .map_err(Error::FinalOpeningRejected)?;
        let initial = verifier.initial_root(&self.program, &self.input_root).map_err(Error::InitialRootUnavailable)?;
        if !merkle::verify(&self.segments_root, self.leaf_count(), 0, &initial, &evidence.initial_proof) {
            return Err(Error::InitialRootMismatch);
        }
        self.check_boundary(self.segments, &self.final_root, &evidence.final_proof)?;
        Ok(initial)
    }
}
