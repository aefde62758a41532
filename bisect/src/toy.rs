//! A toy deterministic "VM" implementing [`StepVerifier`] and [`Trace`], so the game can be played end to end
//! without the real machine (tests, examples, and the canister core's tests until the real verifier lands).
//!
//! A toy program is a list of segment lengths. Its state is `(tag, status, segment, pc)`; the root is a hash of
//! it. Segment `s` of length `L` runs `Idle(s) -> Running(s,1) -> ... -> Running(s,L-1) -> Idle(s+1)` (or
//! `Halted` after the last segment): exactly `L` steps. The transition for segment `s` is total as the real
//! VM's: `Idle(s)` starts, `Running` executes, anything else steps to itself. A one-step proof is the encoded
//! pre-state. Nothing here is a real machine or secure; it only has the same shape.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use crate::agent::Trace;
use crate::claim::FinalStatus;
use crate::hash::Hash;
use crate::verifier::{StepVerifier, VerifierError};

/// Status of a toy state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToyStatus {
    /// Between segments, waiting for segment `segment` to start.
    Idle = 0,
    /// Inside segment `segment` at instruction `pc`.
    Running = 1,
    /// Finished; `tag` determines the output.
    Halted = 2,
}

/// A toy machine state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ToyState {
    /// Stands for memory contents: fixed by program and input; a faulty run changes it.
    pub tag: Hash,
    /// Status.
    pub status: ToyStatus,
    /// Segment counter.
    pub segment: u64,
    /// Instruction counter within the segment.
    pub pc: u64,
}

/// Encoded length of a toy state (the one-step proof and the final opening).
pub const TOY_STATE_LEN: usize = 32 + 1 + 8 + 8;

impl ToyState {
    /// The state root.
    pub fn root(&self) -> Hash {
        Hash::tagged(b"toy/state", &[&self.encode()])
    }

    /// The output hash a halted state reveals.
    pub fn output(&self) -> Hash {
        Hash::tagged(b"toy/output", &[&self.tag.0])
    }

    /// Fixed-width encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(TOY_STATE_LEN);
        v.extend_from_slice(&self.tag.0);
        v.push(self.status as u8);
        v.extend_from_slice(&self.segment.to_le_bytes());
        v.extend_from_slice(&self.pc.to_le_bytes());
        v
    }

    /// Decodes [`ToyState::encode`]'s output.
    pub fn decode(bytes: &[u8]) -> Option<ToyState> {
        if bytes.len() != TOY_STATE_LEN {
            return None;
        }
        let status = match bytes[32] {
            0 => ToyStatus::Idle,
            1 => ToyStatus::Running,
            2 => ToyStatus::Halted,
            _ => return None,
        };
        Some(ToyState {
            tag: Hash(bytes[..32].try_into().ok()?),
            status,
            segment: u64::from_le_bytes(bytes[33..41].try_into().ok()?),
            pc: u64::from_le_bytes(bytes[41..49].try_into().ok()?),
        })
    }
}

/// The state right after segment `s` of a program with `lengths` ends.
fn boundary_after(lengths: &[u64], s: u64, tag: Hash) -> ToyState {
    if s + 1 >= lengths.len() as u64 {
        ToyState { tag, status: ToyStatus::Halted, segment: lengths.len() as u64, pc: 0 }
    } else {
        ToyState { tag, status: ToyStatus::Idle, segment: s + 1, pc: 0 }
    }
}

/// The transition function of segment `s` (total).
pub fn toy_step(lengths: &[u64], s: u64, st: &ToyState) -> ToyState {
    let len_of = |seg: u64| lengths.get(seg as usize).copied();
    match st.status {
        ToyStatus::Idle if st.segment == s => match len_of(s) {
            Some(1) => boundary_after(lengths, s, st.tag),
            Some(_) => ToyState { status: ToyStatus::Running, pc: 1, ..*st },
            None => *st,
        },
        ToyStatus::Running => match len_of(st.segment) {
            Some(len) if st.pc + 1 < len => ToyState { pc: st.pc + 1, ..*st },
            Some(_) => boundary_after(lengths, st.segment, st.tag),
            None => *st,
        },
        _ => *st,
    }
}

/// The toy verifier: a registry of toy programs (by hash) and their semantics.
#[derive(Clone, Debug, Default)]
pub struct ToyVm {
    programs: BTreeMap<Hash, Vec<u64>>,
}

impl ToyVm {
    /// An empty registry.
    pub fn new() -> ToyVm {
        ToyVm::default()
    }

    /// Registers a program with the given segment lengths (each at least 1) and returns its hash.
    pub fn register(&mut self, lengths: &[u64]) -> Hash {
        assert!(!lengths.is_empty() && lengths.iter().all(|&l| l >= 1), "toy segments need >= 1 step");
        let bytes: Vec<u8> = lengths.iter().flat_map(|l| l.to_le_bytes()).collect();
        let program = Hash::tagged(b"toy/program", &[&bytes]);
        self.programs.insert(program, lengths.to_vec());
        program
    }

    /// The segment lengths of a registered program.
    pub fn lengths(&self, program: &Hash) -> Option<&[u64]> {
        self.programs.get(program).map(Vec::as_slice)
    }

    /// The initial state of `program` on `input`.
    pub fn initial_state(program: &Hash, input_root: &Hash) -> ToyState {
        ToyState {
            tag: Hash::tagged(b"toy/init", &[&program.0, &input_root.0]),
            status: ToyStatus::Idle,
            segment: 0,
            pc: 0,
        }
    }
}

impl StepVerifier for ToyVm {
    fn initial_root(&self, program: &Hash, input_root: &Hash) -> Result<Hash, VerifierError> {
        self.lengths(program).ok_or_else(|| VerifierError::new("unknown toy program"))?;
        Ok(ToyVm::initial_state(program, input_root).root())
    }

    fn check_final(&self, final_root: &Hash, output_hash: &Hash, opening: &[u8]) -> Result<FinalStatus, VerifierError> {
        let st = ToyState::decode(opening).ok_or_else(|| VerifierError::new("malformed opening"))?;
        if st.root() != *final_root {
            return Err(VerifierError::new("opening does not match the final root"));
        }
        if st.status != ToyStatus::Halted {
            return Err(VerifierError::new("final state is not halted"));
        }
        if st.output() != *output_hash {
            return Err(VerifierError::new("output hash mismatch"));
        }
        // The toy machine has no traps: its only final state is halted.
        Ok(FinalStatus::Halted)
    }

    fn verify_step(&self, program: &Hash, segment: u64, pre_root: &Hash, proof: &[u8]) -> Result<Hash, VerifierError> {
        let lengths = self.lengths(program).ok_or_else(|| VerifierError::new("unknown toy program"))?;
        let st = ToyState::decode(proof).ok_or_else(|| VerifierError::new("malformed proof"))?;
        if st.root() != *pre_root {
            return Err(VerifierError::new("proof does not match the pre root"));
        }
        Ok(toy_step(lengths, segment, &st).root())
    }
}

/// A toy execution of `program` on `input`, optionally with a fault: a faulty machine whose transition from step
/// `j` of segment `s` corrupts the state (and everything after it stays consistently corrupted).
#[derive(Clone, Debug)]
pub struct ToyRun {
    /// The program's segment lengths.
    pub lengths: Vec<u64>,
    /// The program hash.
    pub program: Hash,
    /// The input root.
    pub input_root: Hash,
    /// `(segment, step)` of the one wrong transition, if any (`step < length of segment`).
    pub fault: Option<(u64, u64)>,
}

impl ToyRun {
    /// An honest run of a registered program.
    pub fn new(vm: &ToyVm, program: Hash, input_root: Hash) -> ToyRun {
        let lengths = vm.lengths(&program).expect("registered toy program").to_vec();
        ToyRun { lengths, program, input_root, fault: None }
    }

    /// The same run on a faulty machine whose transition out of `step` in `segment` is wrong.
    pub fn with_fault(&self, segment: u64, step: u64) -> ToyRun {
        assert!(step < self.lengths[segment as usize], "fault must be inside the segment");
        ToyRun { fault: Some((segment, step)), ..self.clone() }
    }

    /// Number of segments the program really has.
    pub fn segments(&self) -> u64 {
        self.lengths.len() as u64
    }

    /// The state after `step` steps of segment `s` (clamped: past the end it is the next boundary, and past the
    /// last segment it is the halted state).
    pub fn state(&self, segment: u64, step: u64) -> ToyState {
        let init = ToyVm::initial_state(&self.program, &self.input_root);
        let n = self.segments();
        // Position as (segment, step), normalised to the boundary form when past a segment's end.
        let (seg, st) = if segment >= n {
            (n, 0)
        } else if step >= self.lengths[segment as usize] {
            (segment + 1, 0)
        } else {
            (segment, step)
        };
        let corrupted = match self.fault {
            Some((fs, fj)) => seg > fs || (seg == fs && st > fj),
            None => false,
        };
        let tag = if corrupted { Hash::tagged(b"toy/fault", &[&init.tag.0]) } else { init.tag };
        match (seg, st) {
            (s, 0) if s >= n => ToyState { tag, status: ToyStatus::Halted, segment: n, pc: 0 },
            (s, 0) => ToyState { tag, status: ToyStatus::Idle, segment: s, pc: 0 },
            (s, j) => ToyState { tag, status: ToyStatus::Running, segment: s, pc: j },
        }
    }

    /// The output hash of this run.
    pub fn output(&self) -> Hash {
        self.state(self.segments(), 0).output()
    }

    /// The opening of the final state (for [`StepVerifier::check_final`]).
    pub fn final_opening(&self) -> Vec<u8> {
        self.state(self.segments(), 0).encode()
    }
}

impl Trace for ToyRun {
    fn boundary_root(&self, index: u64) -> Hash {
        self.state(index, 0).root()
    }

    fn step_count(&self, segment: u64) -> u64 {
        self.lengths.get(segment as usize).copied().unwrap_or(1)
    }

    fn step_root(&self, segment: u64, step: u64) -> Hash {
        self.state(segment, step).root()
    }

    fn step_proof(&self, segment: u64, step: u64) -> Vec<u8> {
        self.state(segment, step).encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn honest_run_agrees_with_step_function() {
        let mut vm = ToyVm::new();
        let program = vm.register(&[1, 3, 2]);
        let run = ToyRun::new(&vm, program, Hash::ZERO);
        assert_eq!(vm.initial_root(&program, &Hash::ZERO).unwrap(), run.boundary_root(0));
        for s in 0..4u64 {
            for j in 0..6u64 {
                let pre = run.step_root(s, j);
                let post = vm.verify_step(&program, s, &pre, &run.step_proof(s, j)).unwrap();
                assert_eq!(post, run.step_root(s, j + 1), "segment {s} step {j}");
            }
            // Boundaries are fixed points of their segment's transition; mid-segment states are not.
            let b = run.boundary_root(s + 1);
            assert_eq!(vm.verify_step(&program, s, &b, &run.step_proof(s, 99)).unwrap(), b);
        }
        assert_ne!(
            vm.verify_step(&program, 1, &run.step_root(1, 1), &run.step_proof(1, 1)).unwrap(),
            run.step_root(1, 1)
        );
        assert_eq!(vm.check_final(&run.boundary_root(3), &run.output(), &run.final_opening()), Ok(FinalStatus::Halted));
    }

    #[test]
    fn faulty_run_has_exactly_one_bad_transition() {
        let mut vm = ToyVm::new();
        let program = vm.register(&[2, 3, 2]);
        let good = ToyRun::new(&vm, program, Hash::ZERO);
        let bad = good.with_fault(1, 1);
        let mut wrong = 0;
        for s in 0..3u64 {
            for j in 0..good.lengths[s as usize] {
                let post = vm.verify_step(&program, s, &bad.step_root(s, j), &bad.step_proof(s, j)).unwrap();
                if post != bad.step_root(s, j + 1) {
                    wrong += 1;
                    assert_eq!((s, j), (1, 1));
                }
            }
        }
        assert_eq!(wrong, 1);
        assert_ne!(good.output(), bad.output());
        assert_eq!(good.boundary_root(1), bad.boundary_root(1));
        assert_ne!(good.boundary_root(2), bad.boundary_root(2));
    }
}
