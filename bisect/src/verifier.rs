//! The interface the rules need from the VM: the initial root, the final-root opening, and the one-step verifier.

use alloc::string::String;

use serde::{Deserialize, Serialize};

use crate::claim::FinalStatus;
use crate::hash::Hash;

/// Why the VM rejected an opening or a proof (its own wording; the rules only pass it on).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub struct VerifierError {
    /// Human-readable reason.
    pub reason: String,
}

impl VerifierError {
    /// An error with the given reason.
    pub fn new(reason: impl Into<String>) -> VerifierError {
        VerifierError { reason: reason.into() }
    }
}

impl core::fmt::Display for VerifierError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.reason)
    }
}

/// The VM's verifier side, as the game uses it. Implementations must be deterministic and pure.
///
/// Semantics the rules rely on: for segment `s`, the transition function is total. From an idle boundary state
/// whose segment counter is `s` it starts the segment; a running state executes one instruction; every other
/// state (idle with another counter, halted, trapped) steps to itself, and proofs exist for those steps too. A
/// running state is never a fixed point (every instruction changes the state, e.g. through an instruction counter).
/// So the boundary root `R_{s+1}` is the only fixed point reachable from `R_s`, and stepping any number `n >=`
/// (true length) of times from `R_s` gives it.
pub trait StepVerifier {
    /// The boundary root `R_0` of `program` run on the input committed by `input_root`.
    fn initial_root(&self, program: &Hash, input_root: &Hash) -> Result<Hash, VerifierError>;

    /// Checks that `final_root` is a final state (halted, or trapped) whose output hashes to `output_hash`, using
    /// a small opening; returns how it ended. Any other state (idle, running...) is refused.
    fn check_final(&self, final_root: &Hash, output_hash: &Hash, opening: &[u8]) -> Result<FinalStatus, VerifierError>;

    /// Verifies a one-step proof of segment `segment`'s transition from `pre_root` and returns the post root.
    fn verify_step(&self, program: &Hash, segment: u64, pre_root: &Hash, proof: &[u8]) -> Result<Hash, VerifierError>;
}
