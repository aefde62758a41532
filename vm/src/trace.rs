//! One task execution as the dispute agents see it: boundary roots from the fast engine, and for
//! any segment the stepper's roots after `j` steps and one-step proofs, computed on demand.
//!
//! The stepper for segment `s` starts from a machine rebuilt from the fast engine's state at
//! boundary `s`, after checking that its root is the fast engine's `R_s` — the linking property of
//! the root definition, checked on every use. Roots after `j` steps follow the game's `f_s`: past
//! the segment's end the state stays at `R_{s+1}`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::commit::StateHasher;
use crate::fast::{self, FastError, RunResult};
use crate::guest::GuestProgram;
use crate::hash::Hash;
use crate::host::NoHost;
use crate::io::Inputs;
use crate::limits::Limits;
use crate::machine::{Machine, Status};
use crate::program::ProgramIndex;
use crate::proof::OneStepProof;
use crate::prove::{ProveError, prove_step};

/// Why a trace query failed.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The fast engine failed.
    #[error(transparent)]
    Fast(#[from] FastError),
    /// The program could not be instantiated.
    #[error(transparent)]
    Guest(#[from] crate::guest::GuestError),
    /// A proof could not be built.
    #[error(transparent)]
    Prove(#[from] ProveError),
    /// The stepper rebuilt at a boundary does not hash to the fast engine's root: the two engines
    /// disagree, which must never happen (a VM bug; stop and report).
    #[error("engines disagree at boundary {segment}: fast {fast:02x?}, stepper {stepper:02x?}")]
    EngineMismatch {
        /// The boundary.
        segment: u64,
        /// The fast engine's root.
        fast: Hash,
        /// The stepper's root.
        stepper: Hash,
    },
}

/// Snapshots kept per segment (spread evenly over its steps).
const SNAPSHOTS: u64 = 32;

struct SegmentTrace {
    len: u64,
    /// (step, machine after that many steps), ascending; the first is step 0.
    snapshots: Vec<(u64, Machine)>,
    end_root: Hash,
}

/// A task execution: the fast run and the per-segment stepper traces built on demand.
pub struct GuestTrace {
    program: GuestProgram,
    inputs: Arc<Inputs>,
    limits: Limits,
    run: RunResult,
    index: ProgramIndex,
    segments: Mutex<BTreeMap<u64, Arc<SegmentTrace>>>,
}

impl GuestTrace {
    /// Runs the task in the fast engine and prepares the trace.
    pub fn new(program: GuestProgram, inputs: Arc<Inputs>, limits: Limits) -> Result<Self, TraceError> {
        Self::new_observed(program, inputs, limits, &mut |_| {})
    }

    /// [`GuestTrace::new`], calling `on_segment(n)` after the fast engine completes its `n`-th segment
    /// (for progress display).
    pub fn new_observed(
        program: GuestProgram,
        inputs: Arc<Inputs>,
        limits: Limits,
        on_segment: &mut dyn FnMut(u64),
    ) -> Result<Self, TraceError> {
        let run = fast::run_observed(&program, inputs.clone(), limits, true, on_segment)?;
        let index = program.machine(inputs.clone(), limits)?.program_index();
        Ok(Self { program, inputs, limits, run, index, segments: Mutex::new(BTreeMap::new()) })
    }

    /// The fast run (output, boundary roots, status).
    pub fn run(&self) -> &RunResult {
        &self.run
    }

    /// The program index (commitment and paths).
    pub fn index(&self) -> &ProgramIndex {
        &self.index
    }

    /// Number of segments of the run.
    pub fn segments(&self) -> u64 {
        self.run.segments()
    }

    /// Boundary root `R_i`; past the last boundary, the final root (every segment fixes it).
    pub fn boundary_root(&self, i: u64) -> Hash {
        let roots = &self.run.segment_roots;
        roots[(i as usize).min(roots.len() - 1)]
    }

    fn segment(&self, s: u64) -> Result<Arc<SegmentTrace>, TraceError> {
        if let Some(t) = self.segments.lock().expect("trace lock").get(&s) {
            return Ok(t.clone());
        }
        let boundary = s.min(self.segments());
        let state = fast::capture(&self.program, self.inputs.clone(), self.limits, boundary)?;
        let start = self.program.machine_at(self.inputs.clone(), self.limits, &state)?;
        let stepper = StateHasher::new().root(&start);
        let fast = self.boundary_root(boundary);
        if stepper != fast {
            return Err(TraceError::EngineMismatch { segment: boundary, fast, stepper });
        }
        // Past the last boundary (or at a final one) the state never moves.
        if s >= self.segments() || start.status() != Status::Idle {
            let t = Arc::new(SegmentTrace { len: 1, snapshots: vec![(0, start)], end_root: fast });
            self.segments.lock().expect("trace lock").insert(s, t.clone());
            return Ok(t);
        }
        // One pass over the segment to learn its length, then a second keeping snapshots.
        let mut m = start.clone();
        let mut len = 0u64;
        m.step(&mut NoHost).expect("an idle guest machine starts its segment");
        len += 1;
        while m.status() == Status::Running {
            let before = m.steps();
            m.run(&mut NoHost, 1 << 24).expect("running");
            len += m.steps() - before;
        }
        let end_root = StateHasher::new().root(&m);
        let expected = self.boundary_root(s + 1);
        if end_root != expected {
            return Err(TraceError::EngineMismatch { segment: s + 1, fast: expected, stepper: end_root });
        }
        let every = len.div_ceil(SNAPSHOTS).max(1);
        let mut snapshots = vec![(0, start.clone())];
        let mut m = start;
        let mut at = 0u64;
        while at + every < len {
            advance(&mut m, every);
            at += every;
            snapshots.push((at, m.clone()));
        }
        let t = Arc::new(SegmentTrace { len, snapshots, end_root });
        self.segments.lock().expect("trace lock").insert(s, t.clone());
        Ok(t)
    }

    /// Steps segment `s` takes from `R_s` to `R_{s+1}` (at least 1).
    pub fn step_count(&self, s: u64) -> Result<u64, TraceError> {
        Ok(self.segment(s)?.len)
    }

    /// The machine after `j` steps of segment `s` (at most the segment's length).
    fn machine_after(&self, s: u64, j: u64) -> Result<Machine, TraceError> {
        let t = self.segment(s)?;
        let j = j.min(t.len);
        let (at, snap) = t.snapshots.iter().rev().find(|(at, _)| *at <= j).expect("snapshot 0 exists");
        let mut m = snap.clone();
        advance(&mut m, j - at);
        Ok(m)
    }

    /// The root after `j` steps of segment `s` from `R_s` (past the end: `R_{s+1}`).
    pub fn step_root(&self, s: u64, j: u64) -> Result<Hash, TraceError> {
        let t = self.segment(s)?;
        if j >= t.len {
            return Ok(t.end_root);
        }
        Ok(StateHasher::new().root(&self.machine_after(s, j)?))
    }

    /// The one-step proof of segment `s` from the state after `j` steps.
    pub fn step_proof(&self, s: u64, j: u64) -> Result<OneStepProof, TraceError> {
        let m = self.machine_after(s, j)?;
        Ok(prove_step(&m, &self.index, &mut StateHasher::new())?)
    }

    /// The opening of the final root that a claim carries (see [`crate::verify::check_final`]).
    pub fn final_opening(&self) -> Result<Vec<u8>, TraceError> {
        let last = self.segments();
        let state = fast::capture(&self.program, self.inputs.clone(), self.limits, last)?;
        let m = self.program.machine_at(self.inputs.clone(), self.limits, &state)?;
        Ok(crate::verify::final_opening(&StateHasher::new().header(&m), m.io.as_ref().expect("guest")))
    }
}

/// Advances a guest machine `n` steps within its segment (stopping where the segment ends).
fn advance(m: &mut Machine, n: u64) {
    let mut left = n;
    if left > 0 && m.status() == Status::Idle {
        m.step(&mut NoHost).expect("starts the segment");
        left -= 1;
    }
    if left > 0 && m.status() == Status::Running {
        m.run(&mut NoHost, left).expect("running");
    }
}
