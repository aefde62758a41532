//! The game over the real VM (feature `vm`): [`VmVerifier`] is the [`StepVerifier`] of `opml-vm` guest programs,
//! and [`VmTraceAdapter`] lets an off-chain agent play the honest strategies of [`crate::agent`] from an
//! [`opml_vm::trace::GuestTrace`].
//!
//! This module links `opml-vm` with its default features (std and the wasmi fast engine): it is for agents,
//! tools and tests. The verifier canister keeps its own registry and links only the VM's `no_std` verifier half;
//! what [`VmVerifier`] computes is exactly what that half computes (`opml_vm::verify`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use opml_bisect::vm::{VmTraceAdapter, VmVerifier};
//! use opml_bisect::{agent, Hash};
//! use opml_vm::{guest::GuestProgram, io::Inputs, trace::GuestTrace, Limits};
//!
//! # fn demo(wasm: &[u8], blobs: Vec<Vec<u8>>) {
//! let program = GuestProgram::new(wasm).unwrap();
//! let mut verifier = VmVerifier::new();
//! let program_hash = verifier.register_guest(&program, Limits::default()).unwrap();
//! let inputs = Arc::new(Inputs::new(blobs));
//! let trace = GuestTrace::new(program, inputs.clone(), Limits::default()).unwrap();
//! let run = VmTraceAdapter::new(&trace);
//! // The run may end halted or trapped: the claim states which.
//! let status = opml_bisect::vm::status_of(trace.run().status).unwrap();
//! let (claim, evidence, tree) = agent::make_claim(
//!     &run, program_hash, Hash(inputs.root()), Hash(trace.run().output_hash), status, trace.segments(),
//!     trace.final_opening().unwrap());
//! # }
//! ```

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;
use core::ops::Deref;

use opml_vm::guest::{GuestError, GuestProgram};
use opml_vm::limits::Limits;
use opml_vm::program::ProgramCommitment;
use opml_vm::root::StateHeader;
use opml_vm::trace::GuestTrace;
use opml_vm::verify::FinalOutcome;

use crate::agent::Trace;
use crate::claim::FinalStatus;
use crate::hash::Hash;
use crate::verifier::{StepVerifier, VerifierError};

/// What the verifier keeps of one registered guest program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegisteredProgram {
    /// The program commitment (code, functions, segments, limits); its hash is the program hash of claims.
    pub commitment: ProgramCommitment,
    /// The header of the program's initial state with the I/O component left out
    /// ([`GuestProgram::initial_header`]); [`opml_vm::verify::initial_root`] fills it in per input.
    pub initial_header: StateHeader,
}

/// The real VM as the game's [`StepVerifier`], over a registry of guest programs keyed by program hash
/// (`ProgramCommitment::hash()`).
///
/// - `initial_root(program, input_root)` = [`opml_vm::verify::initial_root`] of the program's initial header;
/// - `check_final` = [`opml_vm::verify::check_final`], its outcome as a [`FinalStatus`] ([`final_status`]). The VM
///   also returns the input root the final state carries;
///   the trait does not pass the claim's input root (nor its program), so it is not compared here. It need not be:
///   the claim's `R_0` is `initial_root(program, input_root)` (checked at submission), every state reachable from
///   it carries that same input root, so a final root carrying another input root is not the true `R_N`, and an
///   honest watcher disputes and wins (tests/real_guest.rs plays exactly this claim);
/// - `verify_step(program, s, pre, proof)` = [`opml_vm::verify::verify_segment_step`], the game's total `f_s`.
///
/// Unknown programs and every VM rejection become a [`VerifierError`] carrying the VM's message.
#[derive(Clone, Debug, Default)]
pub struct VmVerifier {
    programs: BTreeMap<Hash, RegisteredProgram>,
}

impl VmVerifier {
    /// A verifier with no programs.
    pub fn new() -> VmVerifier {
        VmVerifier::default()
    }

    /// Registers a program by its commitment and initial header; returns its program hash. Both must come from the
    /// same program and limits (as [`VmVerifier::register_guest`] derives them): a header from elsewhere gives
    /// initial roots no execution of the program has.
    pub fn register(&mut self, commitment: ProgramCommitment, initial_header: StateHeader) -> Hash {
        let hash = Hash(opml_vm::program::program_id(&commitment, &initial_header));
        self.programs.insert(hash, RegisteredProgram { commitment, initial_header });
        hash
    }

    /// Registers a guest program run under `limits` (part of the commitment); returns its program hash.
    pub fn register_guest(&mut self, program: &GuestProgram, limits: Limits) -> Result<Hash, GuestError> {
        Ok(self.register(program.commitment(limits)?, program.initial_header(limits)?))
    }

    /// The registered program with hash `program`.
    pub fn program(&self, program: &Hash) -> Result<&RegisteredProgram, VerifierError> {
        self.programs.get(program).ok_or_else(|| VerifierError::new(format!("unknown program {program}")))
    }
}

/// The game's view of a VM final outcome: the trap code is the VM's `TrapCode` discriminant.
pub fn final_status(outcome: FinalOutcome) -> FinalStatus {
    match outcome {
        FinalOutcome::Halted => FinalStatus::Halted,
        FinalOutcome::Trapped(t) => FinalStatus::Trapped { code: u32::from(t as u8) },
    }
}

/// The final status of a machine whose status is `status` (a run's end: halted or trapped), or `None` if that
/// status is not final (idle, running, returned).
pub fn status_of(status: opml_vm::Status) -> Option<FinalStatus> {
    match status {
        opml_vm::Status::Halted => Some(FinalStatus::Halted),
        opml_vm::Status::Trapped(t) => Some(final_status(FinalOutcome::Trapped(t))),
        opml_vm::Status::Idle | opml_vm::Status::Running | opml_vm::Status::Returned => None,
    }
}

/// The VM's trap a claim's final status names, if it is a trap code the VM has (`None` for halted, or for a
/// code no VM state carries).
pub fn trap_of(status: &FinalStatus) -> Option<opml_vm::TrapCode> {
    match status {
        FinalStatus::Halted => None,
        FinalStatus::Trapped { code } => u8::try_from(*code).ok().and_then(opml_vm::TrapCode::from_code),
    }
}

fn vm_error(e: opml_vm::ProofError) -> VerifierError {
    VerifierError::new(e.to_string())
}

impl StepVerifier for VmVerifier {
    fn initial_root(&self, program: &Hash, input_root: &Hash) -> Result<Hash, VerifierError> {
        let p = self.program(program)?;
        Ok(Hash(opml_vm::verify::initial_root(&p.initial_header, &input_root.0)))
    }

    fn check_final(&self, final_root: &Hash, output_hash: &Hash, opening: &[u8]) -> Result<FinalStatus, VerifierError> {
        // The returned input root is not checked: see the type's documentation.
        opml_vm::verify::check_final(&final_root.0, &output_hash.0, opening)
            .map(|f| final_status(f.outcome))
            .map_err(vm_error)
    }

    fn verify_step(&self, program: &Hash, segment: u64, pre_root: &Hash, proof: &[u8]) -> Result<Hash, VerifierError> {
        let p = self.program(program)?;
        opml_vm::verify::verify_segment_step(&p.commitment, segment, &pre_root.0, proof).map(Hash).map_err(vm_error)
    }
}

/// An [`agent::Trace`](Trace) over a [`GuestTrace`] (held by reference, `Arc`, `Box`...: anything that derefs to
/// it), so the honest strategies of [`crate::agent`] can play from a real execution.
///
/// Boundary roots come from the fast engine's run; step counts, step roots and one-step proofs from the stepper,
/// computed on demand and cached per segment by the `GuestTrace`. Proofs are `OneStepProof::encode`d.
///
/// # Panics
///
/// [`Trace`] is infallible while the `GuestTrace` queries return `Result`s. They fail only if the fast engine or
/// the stepper fails on a program that already ran, a proof cannot be built, or the two engines disagree at a
/// boundary (a VM bug). An agent cannot play on from any of these, so the adapter panics with the query and the
/// VM's error. An agent that must not panic can call the `GuestTrace` methods itself first (they cache, so the
/// adapter's calls then repeat no work).
#[derive(Clone, Copy, Debug)]
pub struct VmTraceAdapter<T> {
    trace: T,
}

impl<T: Deref<Target = GuestTrace>> VmTraceAdapter<T> {
    /// An adapter over `trace`.
    pub fn new(trace: T) -> VmTraceAdapter<T> {
        VmTraceAdapter { trace }
    }

    /// The underlying trace.
    pub fn trace(&self) -> &GuestTrace {
        &self.trace
    }
}

impl<T: Deref<Target = GuestTrace>> Trace for VmTraceAdapter<T> {
    fn boundary_root(&self, index: u64) -> Hash {
        Hash(self.trace.boundary_root(index))
    }

    fn step_count(&self, segment: u64) -> u64 {
        self.trace.step_count(segment).unwrap_or_else(|e| panic!("GuestTrace::step_count({segment}) failed: {e}"))
    }

    fn step_root(&self, segment: u64, step: u64) -> Hash {
        Hash(
            self.trace
                .step_root(segment, step)
                .unwrap_or_else(|e| panic!("GuestTrace::step_root({segment}, {step}) failed: {e}")),
        )
    }

    fn step_proof(&self, segment: u64, step: u64) -> Vec<u8> {
        self.trace
            .step_proof(segment, step)
            .unwrap_or_else(|e| panic!("GuestTrace::step_proof({segment}, {step}) failed: {e}"))
            .encode()
    }
}
