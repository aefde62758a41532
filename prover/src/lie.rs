//! A dishonest worker's execution for [`crate::agent::Lie::CorruptState`]: the true run up to the boundary before
//! the last segment, one activation corrupted there, and the rest run by the stepper from the corrupted state.

use opml_bisect::Hash;
use opml_bisect::agent::Trace;
use opml_vm::trace::GuestTrace;
use opml_vm::{Limits, Machine, NoHost, StateHasher, Status};

use crate::agent::{AgentError, ModelProgram, TaskInput};

/// Corruption candidates tried before giving up.
const TRIES: usize = 64;

/// The corrupted execution.
pub struct CorruptRun {
    honest: GuestTrace,
    /// The corrupted boundary `b`: roots below it are the true ones.
    pub boundary: u64,
    /// `R_0..=R_N` as this run has them.
    roots: Vec<Hash>,
    /// The machine at the corrupted boundary.
    at_boundary: Machine,
    /// The (wrong) output.
    pub output: Vec<u8>,
    /// The final opening of the corrupted final state.
    pub final_opening: Vec<u8>,
    /// The address of the corrupted f32.
    pub address: u64,
}

fn fail(e: impl std::fmt::Display) -> AgentError {
    AgentError::Run(e.to_string())
}

/// Runs `m` from a boundary to the end; returns the boundary roots after each segment.
fn finish(m: &mut Machine) -> Result<Vec<Hash>, AgentError> {
    let mut roots = Vec::new();
    while matches!(m.status(), Status::Idle | Status::Running) {
        m.run(&mut NoHost, u64::MAX).map_err(fail)?;
        if m.status() != Status::Running {
            roots.push(Hash(StateHasher::new().root(m)));
        }
    }
    Ok(roots)
}

impl CorruptRun {
    pub fn new(program: &ModelProgram, input: &TaskInput) -> Result<CorruptRun, AgentError> {
        let limits = Limits::default();
        let p = &program.program;
        let honest = GuestTrace::new(p.clone(), input.inputs.clone(), limits).map_err(fail)?;
        let n = honest.segments();
        if n < 2 {
            return Err(AgentError::Run(format!(
                "the corrupt-state lie needs at least 2 segments; the {} task has {n}",
                program.model.name
            )));
        }
        let b = n - 1;
        let before = opml_vm::fast::capture(p, input.inputs.clone(), limits, b - 1).map_err(fail)?;
        let at = opml_vm::fast::capture(p, input.inputs.clone(), limits, b).map_err(fail)?;
        // Candidates: f32 words written by segment b-1 that look like activations.
        let words = at.memory.len().min(before.memory.len()) / 4;
        let candidates: Vec<usize> = (0..words)
            .filter(|&w| at.memory[4 * w..4 * w + 4] != before.memory[4 * w..4 * w + 4])
            .filter(|&w| {
                let v = f32::from_le_bytes(at.memory[4 * w..4 * w + 4].try_into().expect("4 bytes"));
                v.is_finite() && (1e-2..1e2).contains(&v.abs())
            })
            .collect();
        let truth = honest.run().output.clone();
        let stride = (candidates.len() / TRIES).max(1);
        for &w in candidates.iter().step_by(stride).take(TRIES) {
            let mut state = at.clone();
            let v = f32::from_le_bytes(state.memory[4 * w..4 * w + 4].try_into().expect("4 bytes"));
            state.memory[4 * w..4 * w + 4].copy_from_slice(&(v * -8.0 + 3.0).to_le_bytes());
            let m0 = p.machine_at(input.inputs.clone(), limits, &state).map_err(fail)?;
            let mut m = m0.clone();
            let Ok(tail) = finish(&mut m) else { continue };
            let output = m.guest_output().unwrap_or_default().to_vec();
            if m.status() != Status::Halted || output == truth {
                continue;
            }
            let mut roots: Vec<Hash> = (0..b).map(|i| Hash(honest.boundary_root(i))).collect();
            roots.push(Hash(StateHasher::new().root(&m0)));
            roots.extend(tail);
            let mut opening = StateHasher::new().header(&m).encode().to_vec();
            opening.extend_from_slice(&input.inputs.root());
            opening.extend_from_slice(&(output.len() as u64).to_le_bytes());
            opening.extend_from_slice(&opml_vm::io::output_tree(&output));
            opening.extend_from_slice(&m.guest_segment().unwrap_or_default().to_le_bytes());
            return Ok(CorruptRun {
                honest,
                boundary: b,
                roots,
                at_boundary: m0,
                output,
                final_opening: opening,
                address: (4 * w) as u64,
            });
        }
        Err(AgentError::Run("found no activation whose corruption changes the output".into()))
    }

    /// Segments of the claim.
    pub fn segments(&self) -> u64 {
        self.roots.len() as u64 - 1
    }

    fn last(&self) -> Hash {
        *self.roots.last().expect("roots")
    }
}

impl Trace for CorruptRun {
    fn boundary_root(&self, i: u64) -> Hash {
        self.roots.get(i as usize).copied().unwrap_or_else(|| self.last())
    }

    fn step_count(&self, s: u64) -> u64 {
        if s < self.boundary {
            self.honest.step_count(s).unwrap_or_else(|e| panic!("step_count({s}): {e}"))
        } else {
            // Past the corruption an honest challenger never asks; a consistent answer is enough.
            1
        }
    }

    fn step_root(&self, s: u64, j: u64) -> Hash {
        if s + 1 < self.boundary || (s + 1 == self.boundary && j < self.step_count(s)) {
            Hash(self.honest.step_root(s, j).unwrap_or_else(|e| panic!("step_root({s}, {j}): {e}")))
        } else {
            self.boundary_root(s + 1)
        }
    }

    fn step_proof(&self, s: u64, j: u64) -> Vec<u8> {
        if s + 1 < self.boundary || (s + 1 == self.boundary && j < self.step_count(s)) {
            self.honest.step_proof(s, j).unwrap_or_else(|e| panic!("step_proof({s}, {j}): {e}")).encode()
        } else {
            opml_vm::prove::prove_step(&self.at_boundary, self.honest.index(), &mut StateHasher::new())
                .unwrap_or_else(|e| panic!("step_proof({s}, {j}): {e}"))
                .encode()
        }
    }
}
