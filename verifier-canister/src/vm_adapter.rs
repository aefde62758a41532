//! The one place the canister calls `opml-vm`: [`OpmlVm`] implements [`ProgramVm`] (and so, bound to a
//! registered program, [`opml_bisect::StepVerifier`]) with the VM's guest loader, program commitment, initial
//! state, output commitment, final-state opening and segment-aware one-step verifier.
//!
//! What registration keeps of a guest ([`DerivedProgram::data`]) is the encoded `ProgramCommitment` (what every
//! one-step proof is checked against) followed by the encoded initial `StateHeader` with its I/O left empty
//! (what `R_0 = initial_root(header, input_root)` is computed from). The program hash is
//! `opml_vm::program::program_id` of the two, as in `opml_bisect::vm` (what off-chain agents use): modules that
//! differ anywhere a run can see (code, segments, global initial values, limits) have different program hashes.
#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use opml_bisect::{FinalStatus, Hash, VerifierError};
use opml_vm::guest::{GuestProgram, RewrittenGuest};
use opml_vm::limits::Limits;
use opml_vm::program::ProgramCommitment;
use opml_vm::root::StateHeader;
use opml_vm::staged_commitment::StagedCommitment;
use opml_vm::verify::FinalOutcome;

use crate::types::RegistrationStep;
use crate::vm::{Derivation, DerivedProgram, ProgramVm};

/// The real VM, with the committed default limits.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpmlVm;

/// The program hash a claim names: the commitment bound to the initial header (`opml_vm::program::program_id`).
pub fn program_hash(commitment: &ProgramCommitment, initial_header: &StateHeader) -> Hash {
    Hash(opml_vm::program::program_id(commitment, initial_header))
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

/// Units (about the instructions of hashing one op into the code tree, ~24.3k) charged per KiB of module for the
/// first stage of loading (validating the user's module, adding stack metering: ~510 instructions per byte of
/// `nop` runs, the costliest code per byte) and the second (compiling and checking the rewritten module,
/// instantiating it: ~660 per byte). Measured on the devnet with the IC's cost table (docs/benchmarks.md,
/// "Registration"), with a margin of about 1.5x.
pub const REWRITE_UNITS_PER_KIB: u64 = 32;
/// See [`REWRITE_UNITS_PER_KIB`].
pub const COMPILE_UNITS_PER_KIB: u64 = 40;

fn units(bytes: usize, per_kib: u64) -> u64 {
    (bytes as u64).saturating_mul(per_kib).div_ceil(1024)
}

/// A guest's registration in progress, stage by stage.
enum GuestDerivation {
    /// Nothing done yet.
    Module(Vec<u8>),
    /// Validated and rewritten.
    Rewritten(RewrittenGuest),
    /// Compiled; the code tree being hashed (boxed: the machine is large, the other stages are not).
    Committing(Box<StagedCommitment>),
}

impl Derivation for GuestDerivation {
    fn advance(&mut self, budget: u64) -> Result<(), String> {
        let invalid = |e: opml_vm::guest::GuestError| format!("invalid guest: {e}");
        let mut left = budget;
        let mut first = true;
        loop {
            let cost = match self {
                GuestDerivation::Module(wasm) => units(wasm.len(), REWRITE_UNITS_PER_KIB),
                GuestDerivation::Rewritten(guest) => units(guest.len(), COMPILE_UNITS_PER_KIB),
                GuestDerivation::Committing(staged) => {
                    if first || left > 0 {
                        staged.advance(left.max(1));
                    }
                    return Ok(());
                }
            };
            if !first && cost > left {
                return Ok(());
            }
            left = left.saturating_sub(cost);
            first = false;
            // Taken by value (the module is moved on, not copied); an error drops the whole derivation.
            *self = match core::mem::replace(self, GuestDerivation::Module(Vec::new())) {
                GuestDerivation::Module(wasm) => {
                    GuestDerivation::Rewritten(GuestProgram::rewrite(&wasm).map_err(invalid)?)
                }
                GuestDerivation::Rewritten(guest) => {
                    // One load, one machine: the commitment and the initial header are read from the machine
                    // the loader instantiates to check the guest (with the default limits, the one they would
                    // each build).
                    let (_, staged) = GuestProgram::new_staged_from(guest, Limits::default()).map_err(invalid)?;
                    GuestDerivation::Committing(Box::new(staged))
                }
                committing => committing,
            };
        }
    }

    fn progress(&self) -> RegistrationStep {
        match self {
            GuestDerivation::Module(_) | GuestDerivation::Rewritten(_) => RegistrationStep::Rewritten,
            GuestDerivation::Committing(s) => RegistrationStep::Committing { done: s.ops_done(), total: s.ops_total() },
        }
    }

    fn finish(&self) -> Option<DerivedProgram> {
        let GuestDerivation::Committing(staged) = self else { return None };
        let (c, h) = staged.finish()?;
        Some(DerivedProgram { program: program_hash(&c, &h), data: program_data(&c, &h) })
    }
}

impl ProgramVm for OpmlVm {
    fn start_derive(&self, wasm: Vec<u8>) -> Box<dyn Derivation> {
        Box::new(GuestDerivation::Module(wasm))
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
