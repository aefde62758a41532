//! What the core needs from a VM: derive a program's commitment from its module at registration, hash outputs,
//! and (through [`Bound`], an [`opml_bisect::StepVerifier`]) answer the game's questions about one registered
//! program. The real implementation is [`crate::vm_adapter::OpmlVm`]; [`ToyProgramVm`] wraps the game crate's
//! toy machine so the whole canister can be tested without real guests.
#![forbid(unsafe_code)]

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use opml_bisect::{FinalStatus, Hash, StepVerifier, VerifierError};

use crate::types::RegistrationStep;

/// What registration keeps of a module: the program hash claims refer to and the bytes the verifier needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DerivedProgram {
    /// The program hash (`Claim::program`).
    pub program: Hash,
    /// Opaque verifier data (for the real VM: the encoded `ProgramCommitment`).
    pub data: Vec<u8>,
}

/// A program's derivation in progress: registration spreads validation and the commitment's hashing over several
/// messages (see [`crate::core::Core::finish_upload`]). Work is measured in units of about the cost of hashing
/// one op of the code tree.
pub trait Derivation {
    /// Does the next pieces of work, within `budget` units where it can: every stage is charged what it is
    /// expected to cost, the first one always runs (so each call makes progress). `Err`: the module is not a
    /// valid program.
    fn advance(&mut self, budget: u64) -> Result<(), String>;
    /// Where it stands, as `finish_upload` answers until the program is registered (`Rewritten` or
    /// `Committing`).
    fn progress(&self) -> RegistrationStep;
    /// The derived program, once complete; `None` before.
    fn finish(&self) -> Option<DerivedProgram>;
}

/// A VM as the canister core uses it. Implementations are deterministic and pure.
pub trait ProgramVm {
    /// Starts deriving a program from `wasm` (nothing is checked until the first [`Derivation::advance`]).
    fn start_derive(&self, wasm: Vec<u8>) -> Box<dyn Derivation>;
    /// Validates `wasm` and derives its commitment in one go.
    fn derive(&self, wasm: &[u8]) -> Result<DerivedProgram, String> {
        let mut d = self.start_derive(wasm.to_vec());
        d.advance(u64::MAX)?;
        Ok(d.finish().expect("a derivation is complete after an unbounded advance"))
    }
    /// The output hash a claim about a run with these output bytes carries.
    fn output_hash(&self, output: &[u8]) -> Hash;
    /// `R_0` of the program with verifier data `data` on the input committed by `input_root`.
    fn initial_root(&self, data: &[u8], input_root: &Hash) -> Result<Hash, VerifierError>;
    /// Checks that `final_root` is final (halted or trapped) with output `output_hash`; returns how it ended (see
    /// [`StepVerifier::check_final`]).
    fn check_final(
        &self,
        data: &[u8],
        final_root: &Hash,
        output_hash: &Hash,
        opening: &[u8],
    ) -> Result<FinalStatus, VerifierError>;
    /// Verifies a one-step proof of segment `segment` from `pre_root`; returns the post root.
    fn verify_step(&self, data: &[u8], segment: u64, pre_root: &Hash, proof: &[u8]) -> Result<Hash, VerifierError>;
}

/// One registered program bound to a VM: the [`StepVerifier`] the game rules are called with.
pub struct Bound<'a, V: ?Sized> {
    /// The VM.
    pub vm: &'a V,
    /// The registered program hash.
    pub program: Hash,
    /// Its verifier data.
    pub data: &'a [u8],
}

impl<V: ProgramVm + ?Sized> Bound<'_, V> {
    fn check(&self, program: &Hash) -> Result<(), VerifierError> {
        if *program == self.program { Ok(()) } else { Err(VerifierError::new("program is not the task's program")) }
    }
}

impl<V: ProgramVm + ?Sized> StepVerifier for Bound<'_, V> {
    fn initial_root(&self, program: &Hash, input_root: &Hash) -> Result<Hash, VerifierError> {
        self.check(program)?;
        self.vm.initial_root(self.data, input_root)
    }

    fn check_final(&self, final_root: &Hash, output_hash: &Hash, opening: &[u8]) -> Result<FinalStatus, VerifierError> {
        self.vm.check_final(self.data, final_root, output_hash, opening)
    }

    fn verify_step(&self, program: &Hash, segment: u64, pre_root: &Hash, proof: &[u8]) -> Result<Hash, VerifierError> {
        self.check(program)?;
        self.vm.verify_step(self.data, segment, pre_root, proof)
    }
}

/// Magic prefix of a toy "module": `TOY_MAGIC ‖ n × u64 LE segment lengths`.
pub const TOY_MAGIC: &[u8; 8] = b"\0opmltoy";

/// The game crate's toy machine ([`opml_bisect::toy::ToyVm`]) behind [`ProgramVm`], for tests and local demos.
///
/// A toy module is [`TOY_MAGIC`] followed by the segment lengths (each `>= 1`); its program hash is the one
/// `ToyVm::register` gives. A toy output is its 32-byte output hash itself. Not a real machine, not secure.
#[derive(Clone, Copy, Debug, Default)]
pub struct ToyProgramVm;

impl ToyProgramVm {
    /// The toy module for a program with these segment lengths.
    pub fn module(lengths: &[u64]) -> Vec<u8> {
        let mut v = TOY_MAGIC.to_vec();
        for l in lengths {
            v.extend_from_slice(&l.to_le_bytes());
        }
        v
    }

    fn lengths(data: &[u8]) -> Result<Vec<u64>, VerifierError> {
        if data.is_empty() || !data.len().is_multiple_of(8) {
            return Err(VerifierError::new("malformed toy program"));
        }
        Ok(data.chunks(8).map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes"))).collect())
    }

    fn toy(data: &[u8]) -> Result<(opml_bisect::toy::ToyVm, Hash), VerifierError> {
        let lengths = Self::lengths(data)?;
        let mut vm = opml_bisect::toy::ToyVm::new();
        let program = vm.register(&lengths);
        Ok((vm, program))
    }
}

/// A toy derivation: one unit per segment length, checked at the first advance, so the core's staging is
/// exercised without real guests.
struct ToyDerivation {
    wasm: Vec<u8>,
    derived: Option<DerivedProgram>,
    total: u64,
    done: u64,
}

impl ToyDerivation {
    fn check(wasm: &[u8]) -> Result<(DerivedProgram, u64), String> {
        let body = wasm.strip_prefix(TOY_MAGIC.as_slice()).ok_or_else(|| String::from("not a toy module"))?;
        let lengths = ToyProgramVm::lengths(body).map_err(|e| e.reason)?;
        if lengths.contains(&0) {
            return Err(String::from("toy segments need at least one step"));
        }
        let mut vm = opml_bisect::toy::ToyVm::new();
        Ok((DerivedProgram { program: vm.register(&lengths), data: body.to_vec() }, lengths.len() as u64))
    }
}

impl Derivation for ToyDerivation {
    fn advance(&mut self, budget: u64) -> Result<(), String> {
        let mut budget = budget;
        if self.derived.is_none() {
            // Checking costs as much as the whole commitment, so a first call with a budget of `total` only checks.
            let (derived, total) = Self::check(&self.wasm)?;
            self.derived = Some(derived);
            self.total = total;
            budget = budget.saturating_sub(total);
            if budget == 0 {
                return Ok(());
            }
        }
        self.done += budget.max(1).min(self.total - self.done);
        Ok(())
    }

    fn progress(&self) -> RegistrationStep {
        match self.derived {
            None => RegistrationStep::Rewritten,
            Some(_) => RegistrationStep::Committing { done: self.done, total: self.total },
        }
    }

    fn finish(&self) -> Option<DerivedProgram> {
        self.derived.clone().filter(|_| self.done == self.total)
    }
}

impl ProgramVm for ToyProgramVm {
    fn start_derive(&self, wasm: Vec<u8>) -> Box<dyn Derivation> {
        Box::new(ToyDerivation { wasm, derived: None, total: 0, done: 0 })
    }

    fn output_hash(&self, output: &[u8]) -> Hash {
        match <[u8; 32]>::try_from(output) {
            Ok(h) => Hash(h),
            Err(_) => Hash::tagged(b"toy/raw-output", &[output]),
        }
    }

    fn initial_root(&self, data: &[u8], input_root: &Hash) -> Result<Hash, VerifierError> {
        let (vm, program) = Self::toy(data)?;
        vm.initial_root(&program, input_root)
    }

    fn check_final(
        &self,
        data: &[u8],
        final_root: &Hash,
        output_hash: &Hash,
        opening: &[u8],
    ) -> Result<FinalStatus, VerifierError> {
        let (vm, _) = Self::toy(data)?;
        vm.check_final(final_root, output_hash, opening)
    }

    fn verify_step(&self, data: &[u8], segment: u64, pre_root: &Hash, proof: &[u8]) -> Result<Hash, VerifierError> {
        let (vm, program) = Self::toy(data)?;
        vm.verify_step(&program, segment, pre_root, proof)
    }
}
