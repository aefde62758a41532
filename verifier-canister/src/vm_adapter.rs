//! The one place the canister calls `opml-vm`: [`OpmlVm`] implements [`ProgramVm`] (and so, bound to a
//! registered program, [`opml_bisect::StepVerifier`]) with the VM's guest loader, program commitment, initial
//! state, output commitment, final-state opening and segment-aware one-step verifier.
//!
//! What registration keeps of a guest ([`DerivedProgram::data`]) is the encoded `ProgramCommitment` (what every
//! one-step proof is checked against) followed by the encoded initial `StateHeader` with its I/O left empty
//! (what `R_0 = initial_root(header, input_root)` is computed from). The program hash is
//! `ProgramCommitment::hash()`, as in the VM and in `opml_bisect::vm` (what off-chain agents use). The commitment
//! does not cover global initial values or data-segment offsets, so two modules differing only there share a
//! program hash: the canister keeps the first one registered (the second gets `ProgramExists`), and a claim run on
//! the other one fails at submission because its `R_0` differs.
#![forbid(unsafe_code)]

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use opml_bisect::{FinalStatus, Hash, VerifierError};
use opml_vm::limits::Limits;
use opml_vm::program::ProgramCommitment;
use opml_vm::root::StateHeader;
use opml_vm::verify::FinalOutcome;

use crate::vm::{DerivedProgram, ProgramVm};

/// The real VM, with the committed default limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpmlVm;

/// The program hash a claim names: the hash of the program commitment.
pub fn program_hash(commitment: &ProgramCommitment) -> Hash {
    Hash(commitment.hash())
}

/// The verifier data of a program: commitment then initial header.
pub fn program_data(commitment: &ProgramCommitment, initial_header: &StateHeader) -> Vec<u8> {
    let mut data = commitment.encode().to_vec();
    data.extend_from_slice(&initial_header.encode());
    data
}

fn split(data: &[u8]) -> Result<(ProgramCommitment, StateHeader), VerifierError> {
    let bad = || VerifierError::new("stored program data has the wrong size");
    if data.len() != ProgramCommitment::BYTES + StateHeader::BYTES {
        return Err(bad());
    }
    let (c, h) = data.split_at(ProgramCommitment::BYTES);
    let c = ProgramCommitment::decode(c.try_into().map_err(|_| bad())?);
    let h = opml_vm::proof::decode_state_header(h).map_err(|e| VerifierError::new(e.to_string()))?;
    Ok((c, h))
}

fn rejected(e: impl core::fmt::Display) -> VerifierError {
    VerifierError::new(e.to_string())
}

impl ProgramVm for OpmlVm {
    fn derive(&self, wasm: &[u8]) -> Result<DerivedProgram, String> {
        // One load, one machine: the commitment and the initial header are read from the machine the loader
        // instantiates to check the guest (with the default limits, it is the machine they would each build).
        let (_, c, h) = opml_vm::guest::GuestProgram::new_committed(wasm, Limits::default())
            .map_err(|e| format!("invalid guest: {e}"))?;
        Ok(DerivedProgram { program: program_hash(&c), data: program_data(&c, &h) })
    }

    fn output_hash(&self, output: &[u8]) -> Hash {
        Hash(opml_vm::io::output_commitment(output))
    }

    fn initial_root(&self, data: &[u8], input_root: &Hash) -> Result<Hash, VerifierError> {
        let (_, header) = split(data)?;
        Ok(Hash(opml_vm::verify::initial_root(&header, &input_root.0)))
    }

    fn check_final(
        &self,
        data: &[u8],
        final_root: &Hash,
        output_hash: &Hash,
        opening: &[u8],
    ) -> Result<FinalStatus, VerifierError> {
        split(data)?;
        // The input root the final state carries is linked to the claim's by the chain of roots from R_0.
        let f = opml_vm::verify::check_final(&final_root.0, &output_hash.0, opening).map_err(rejected)?;
        Ok(match f.outcome {
            FinalOutcome::Halted => FinalStatus::Halted,
            // The code is the VM's `TrapCode` discriminant, as `opml_bisect::vm::final_status` gives agents.
            FinalOutcome::Trapped(t) => FinalStatus::Trapped { code: u32::from(t as u8) },
        })
    }

    fn verify_step(&self, data: &[u8], segment: u64, pre_root: &Hash, proof: &[u8]) -> Result<Hash, VerifierError> {
        let (c, _) = split(data)?;
        opml_vm::verify::verify_segment_step(&c, segment, &pre_root.0, proof).map(Hash).map_err(rejected)
    }
}
