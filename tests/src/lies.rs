//! Dishonest executions and players for the adversarial scenarios (4, 5, 6, 8, 9, 10, 13, 14).
//!
//! - [`WrongStore`]: a real execution that goes wrong at one instruction: right after the first memory-writing
//!   step at or after a chosen step of a segment, one byte that step wrote is changed, and the run continues
//!   consistently from that wrong state (so the bisection must come down to exactly that step).
//! - [`WrongBoundary`]: the truth everywhere except one committed segment-boundary root, which is the root of
//!   a real state with one memory byte changed; the output and the final root are the true ones (an
//!   inconsistent trace).
//! - [`TwoFaced`]: commits one trace's boundaries but posts another trace's step roots (equivocation).
//! - [`LiesFrom`]: a challenger's belief that is the truth up to one step of every segment, made up after it.
//! - [`Forgery`]: one-step proofs tampered in one field each.
//! - [`LyingWorker`]: submits a claim built from any trace and plays `opml_bisect::agent::worker_move` over it,
//!   through the same typed [`Chain`] as the real agents.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use opml_bisect::agent::{self, Trace};
use opml_bisect::{ClaimEvidence, FinalStatus, Hash, MerkleTree, Move};
use opml_prover::agent::{ModelProgram, Run, TaskInput};
use opml_prover::chain::{Chain, ChainError, IcChain, sha3};
use opml_verifier_canister::error::CanisterError;
use opml_verifier_canister::types::{Id, PlayArgs, SubmitClaim};
use opml_vm::guest::GuestProgram;
use opml_vm::io::Inputs;
use opml_vm::trace::GuestTrace;
use opml_vm::{Limits, Machine, NoHost, OneStepProof, StateHasher, Status};

/// Steps between the machine snapshots a lying run keeps after it departs from the truth.
const SNAPSHOT_EVERY: u64 = 4096;

fn root(m: &Machine) -> Hash {
    Hash(StateHasher::new().root(m))
}

fn proof(m: &Machine, truth: &GuestTrace) -> Vec<u8> {
    opml_vm::prove::prove_step(m, truth.index(), &mut StateHasher::new())
        .unwrap_or_else(|e| panic!("a lying run cannot prove its own state: {e}"))
        .encode()
}

/// The true execution of `program` on `input`: what the lies start from.
pub fn truth(program: &ModelProgram, input: &TaskInput) -> Arc<GuestTrace> {
    Arc::new(GuestTrace::new(program.program.clone(), input.inputs.clone(), Limits::default()).expect("runs"))
}

/// Advances a guest machine `n` steps within its segment (an idle machine's first step starts the segment).
fn advance(m: &mut Machine, n: u64) {
    let mut left = n;
    if left > 0 && m.status() == Status::Idle {
        m.step(&mut NoHost).expect("an idle guest starts its segment");
        left -= 1;
    }
    if left > 0 && m.status() == Status::Running {
        m.run(&mut NoHost, left).expect("the stepper runs");
    }
}

/// The machine at boundary `segment` of `program` on `inputs` (the fast engine's state, rebuilt in the stepper).
fn machine_at_boundary(program: &GuestProgram, inputs: &Arc<Inputs>, segment: u64) -> Machine {
    let state = opml_vm::fast::capture(program, inputs.clone(), Limits::default(), segment).expect("capture");
    program.machine_at(inputs.clone(), Limits::default(), &state).expect("machine at a boundary")
}

/// The opening of a final (halted or trapped) machine's root that a claim carries (`opml_vm::verify::check_final`'s
/// layout).
fn final_opening(m: &Machine, inputs: &Inputs) -> Vec<u8> {
    let output = m.guest_output().unwrap_or_default();
    let mut out = StateHasher::new().header(m).encode().to_vec();
    out.extend_from_slice(&inputs.root());
    out.extend_from_slice(&(output.len() as u64).to_le_bytes());
    out.extend_from_slice(&opml_vm::io::output_tree(output));
    out.extend_from_slice(&m.guest_segment().unwrap_or_default().to_le_bytes());
    out
}

/// One segment of a lying run from where it was first observed: its length and snapshots.
struct Segment {
    /// Steps from the segment's start to its end.
    len: u64,
    /// (step, machine after that many steps), ascending; the first is where the lying run's record starts.
    snapshots: Vec<(u64, Machine)>,
    end: Hash,
}

impl Segment {
    /// Runs `m`, which is `first` steps into a segment, to the segment's end.
    fn record(m: &mut Machine, first: u64) -> Segment {
        let mut snapshots = vec![(first, m.clone())];
        let mut j = first;
        if m.status() == Status::Idle && first == 0 {
            advance(m, 1);
            j += 1;
        }
        while m.status() == Status::Running {
            let before = m.steps();
            m.run(&mut NoHost, SNAPSHOT_EVERY).expect("the stepper runs");
            j += m.steps() - before;
            if m.status() == Status::Running {
                snapshots.push((j, m.clone()));
            }
        }
        Segment { len: j, snapshots, end: root(m) }
    }

    fn machine_after(&self, j: u64) -> Machine {
        let j = j.min(self.len);
        let (at, snap) = self.snapshots.iter().rev().find(|(at, _)| *at <= j).expect("asked after the first snapshot");
        let mut m = snap.clone();
        advance(&mut m, j - at);
        m
    }
}

/// A run that writes one wrong value to memory: the true execution up to step `step` of segment `segment`
/// (`step + 1` steps in), where the instruction writes memory; one byte it wrote is XORed with a mask; from
/// there the run continues consistently from the wrong state.
pub struct WrongStore {
    truth: Arc<GuestTrace>,
    /// The segment of the wrong write.
    pub segment: u64,
    /// The step index `j` of the wrong write: the transition `j -> j + 1` of `segment` is the lie.
    pub step: u64,
    /// The address of the byte written wrong.
    pub address: u64,
    /// The liar's segments `segment, segment + 1, ...` (the first recorded from `step + 1` on).
    tail: Vec<Segment>,
    /// The liar's `R_0..=R_N`.
    roots: Vec<Hash>,
    last: Machine,
    /// The liar's output (the true one if the wrong byte is never read).
    pub output: Vec<u8>,
    /// The liar's final opening (of its halted or trapped final state).
    pub final_opening: Vec<u8>,
    /// How the liar's run ended.
    pub status: Status,
}

impl WrongStore {
    /// What a claim of this run states: (segments, output, final opening).
    pub fn claimed(&self) -> (u64, Vec<u8>, Vec<u8>) {
        (self.segments(), self.output.clone(), self.final_opening.clone())
    }

    /// Lies at the first memory-writing step at or after step `from` of `segment` of the run of `truth`,
    /// XORing the first byte it changed with `mask` (non-zero). Panics if the segment writes no memory from there.
    pub fn new(
        truth: Arc<GuestTrace>,
        program: &GuestProgram,
        inputs: &Arc<Inputs>,
        segment: u64,
        from: u64,
        mask: u8,
    ) -> Self {
        assert!(mask != 0, "a zero mask writes the true value");
        let mut m = machine_at_boundary(program, inputs, segment);
        advance(&mut m, from);
        let mut j = from;
        let address = loop {
            assert!(
                j == 0 || m.status() == Status::Running,
                "segment {segment} writes no memory at or after step {from}"
            );
            let before = m.clone();
            advance(&mut m, 1);
            j += 1;
            if let Some(a) = first_change(&before, &m) {
                break a;
            }
        };
        let mem = m.memory_mut(0).expect("memory 0");
        let [b] = mem.read::<1>(address).expect("in memory");
        mem.write(address, &[b ^ mask]).expect("in memory");
        let mut roots: Vec<Hash> = (0..=segment).map(|i| Hash(truth.boundary_root(i))).collect();
        let mut tail = vec![Segment::record(&mut m, j)];
        roots.push(tail[0].end);
        while m.status() == Status::Idle {
            let seg = Segment::record(&mut m, 0);
            roots.push(seg.end);
            tail.push(seg);
        }
        let output = m.guest_output().unwrap_or_default().to_vec();
        let final_opening = final_opening(&m, inputs);
        let status = m.status();
        WrongStore { truth, segment, step: j - 1, address, tail, roots, last: m, output, final_opening, status }
    }

    /// Segments of the lying run.
    pub fn segments(&self) -> u64 {
        self.roots.len() as u64 - 1
    }

    /// How the lying run ended, as its claim states it (halted, or trapped with its code).
    pub fn final_status(&self) -> FinalStatus {
        opml_bisect::vm::status_of(self.status).expect("a lying run is recorded to its final state")
    }

    /// The lie's machine after `j` steps of segment `s >= self.segment` (past the end: the final state).
    fn machine_after(&self, s: u64, j: u64) -> Machine {
        match self.tail.get((s - self.segment) as usize) {
            Some(seg) => seg.machine_after(j),
            None => self.last.clone(),
        }
    }

    /// Whether `(s, j)` is still on the true execution.
    fn is_true(&self, s: u64, j: u64) -> bool {
        s < self.segment || (s == self.segment && j <= self.step)
    }
}

/// The lowest address whose byte differs in memory 0 between `a` and `b` (chunks still shared are skipped).
fn first_change(a: &Machine, b: &Machine) -> Option<u64> {
    let (ma, mb) = (a.memory(0)?, b.memory(0)?);
    for i in 0..mb.chunk_count() {
        if mb.chunk_shared_with(ma, i) {
            continue;
        }
        let cb = mb.chunk(i)?;
        // A chunk `a` lacks is one `memory.grow` added: zeros before the step.
        let zeros = [0u8; opml_vm::memory::CHUNK];
        let ca = ma.chunk(i).unwrap_or(&zeros);
        if let Some(k) = ca.iter().zip(cb.iter()).position(|(x, y)| x != y) {
            return Some((i * cb.len() + k) as u64);
        }
    }
    None
}

impl Trace for WrongStore {
    fn boundary_root(&self, i: u64) -> Hash {
        self.roots[(i as usize).min(self.roots.len() - 1)]
    }
    fn step_count(&self, s: u64) -> u64 {
        if s < self.segment {
            self.truth.step_count(s).expect("true step count")
        } else {
            self.tail.get((s - self.segment) as usize).map_or(1, |seg| seg.len)
        }
    }
    fn step_root(&self, s: u64, j: u64) -> Hash {
        if self.is_true(s, j) {
            return Hash(self.truth.step_root(s, j).expect("true step root"));
        }
        match self.tail.get((s - self.segment) as usize) {
            Some(seg) if j >= seg.len => seg.end,
            Some(_) => root(&self.machine_after(s, j)),
            None => self.boundary_root(s),
        }
    }
    fn step_proof(&self, s: u64, j: u64) -> Vec<u8> {
        if self.is_true(s, j) {
            return self.truth.step_proof(s, j).expect("true step proof").encode();
        }
        proof(&self.machine_after(s, j), &self.truth)
    }
}

/// The truth, except that boundary `boundary` is committed as the root of the true boundary state with the byte
/// at `address` XORed with `mask`: a real, idle state, so the liar can even prove it is a segment boundary; the
/// output and every other root are the true ones.
pub struct WrongBoundary {
    truth: Arc<GuestTrace>,
    /// The boundary whose root is wrong (`1..N`).
    pub boundary: u64,
    fake: Machine,
    fake_root: Hash,
}

impl WrongBoundary {
    /// The lie about boundary `boundary` (interior: `1..N`) of the run of `truth`.
    pub fn new(
        truth: Arc<GuestTrace>,
        program: &GuestProgram,
        inputs: &Arc<Inputs>,
        boundary: u64,
        address: u64,
        mask: u8,
    ) -> Self {
        assert!(boundary >= 1 && boundary < truth.segments(), "an interior boundary");
        let mut fake = machine_at_boundary(program, inputs, boundary);
        let mem = fake.memory_mut(0).expect("memory 0");
        let [b] = mem.read::<1>(address).expect("in memory");
        mem.write(address, &[b ^ mask]).expect("in memory");
        let fake_root = root(&fake);
        assert_ne!(fake_root.0, truth.boundary_root(boundary), "the mask changes the state");
        WrongBoundary { truth, boundary, fake, fake_root }
    }

    /// The wrong root it commits at [`WrongBoundary::boundary`].
    pub fn fake_root(&self) -> Hash {
        self.fake_root
    }

    /// Whether the liar's `(s, j)` is the fake state: the end of segment `boundary - 1` or the start of
    /// segment `boundary`.
    fn is_fake(&self, s: u64, j: u64) -> bool {
        (s + 1 == self.boundary && j >= self.step_count(s)) || (s == self.boundary && j == 0)
    }
}

impl Trace for WrongBoundary {
    fn boundary_root(&self, i: u64) -> Hash {
        if i == self.boundary { self.fake_root } else { Hash(self.truth.boundary_root(i)) }
    }
    fn step_count(&self, s: u64) -> u64 {
        self.truth.step_count(s).expect("true step count")
    }
    fn step_root(&self, s: u64, j: u64) -> Hash {
        if self.is_fake(s, j) { self.fake_root } else { Hash(self.truth.step_root(s, j).expect("true step root")) }
    }
    fn step_proof(&self, s: u64, j: u64) -> Vec<u8> {
        if self.is_fake(s, j) {
            proof(&self.fake, &self.truth)
        } else {
            self.truth.step_proof(s, j).expect("true step proof").encode()
        }
    }
}

/// Equivocation: commits `committed`'s boundaries (and step counts and proofs), but in the step phase posts
/// `posted`'s step roots, which contradict the boundary it committed.
pub struct TwoFaced<A, B> {
    /// What it committed at claim time.
    pub committed: A,
    /// What it posts in the step rounds.
    pub posted: B,
}

impl<A: Trace, B: Trace> Trace for TwoFaced<A, B> {
    fn boundary_root(&self, i: u64) -> Hash {
        self.committed.boundary_root(i)
    }
    fn step_count(&self, s: u64) -> u64 {
        self.committed.step_count(s)
    }
    fn step_root(&self, s: u64, j: u64) -> Hash {
        self.posted.step_root(s, j)
    }
    fn step_proof(&self, s: u64, j: u64) -> Vec<u8> {
        self.committed.step_proof(s, j)
    }
}

/// A challenger's lie: the true execution up to step `from` of every segment, made-up roots after it (and
/// made-up boundary roots after the first), true one-step proofs. Bisection leads it to step `from - 1`, where
/// the only proof it can give is the true one, which confirms the worker's root.
pub struct LiesFrom {
    /// The true run.
    pub truth: Run,
    /// The first step of every segment whose root is made up.
    pub from: u64,
}

/// A made-up root, distinct for every `(tag, a, b)`.
fn made_up(tag: &str, a: u64, b: u64) -> Hash {
    sha3(format!("{tag}/{a}/{b}").as_bytes())
}

impl Trace for LiesFrom {
    fn boundary_root(&self, i: u64) -> Hash {
        if i == 0 { self.truth.boundary_root(0) } else { made_up("boundary", i, 0) }
    }
    fn step_count(&self, s: u64) -> u64 {
        self.truth.step_count(s)
    }
    fn step_root(&self, s: u64, j: u64) -> Hash {
        if j < self.from { self.truth.step_root(s, j) } else { made_up("step", s, j) }
    }
    fn step_proof(&self, s: u64, j: u64) -> Vec<u8> {
        self.truth.step_proof(s, j)
    }
}

/// A one-step proof forged in one way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgery {
    /// One byte of the first opened memory page changed.
    MemoryLeaf,
    /// One byte of the first sibling on the first memory page's Merkle path changed.
    MerkleSibling,
    /// The top revealed operand changed.
    StackValue,
    /// The instruction's opcode byte changed.
    Instruction,
    /// The true proof of the next step, submitted for this one.
    OtherStep,
}

impl Forgery {
    /// Every forgery.
    pub const ALL: [Forgery; 5] =
        [Forgery::MemoryLeaf, Forgery::MerkleSibling, Forgery::StackValue, Forgery::Instruction, Forgery::OtherStep];

    /// Forges `honest` (the true proof of a memory-writing step); `next` is the true proof of the step after it.
    pub fn forge(self, honest: &[u8], next: &[u8]) -> Vec<u8> {
        let mut p = OneStepProof::decode(honest).expect("an honest proof decodes");
        match self {
            Forgery::MemoryLeaf => {
                let page = p.pages.first_mut().expect("the step opens a memory page");
                page.bytes[0] ^= 0x5a;
            }
            Forgery::MerkleSibling => {
                let page = p.pages.first_mut().expect("the step opens a memory page");
                page.path.first_mut().expect("a page path")[7] ^= 0x01;
            }
            Forgery::StackValue => *p.operands.last_mut().expect("the step reads an operand") ^= 1,
            Forgery::Instruction => p.op[0] ^= 0x01,
            Forgery::OtherStep => return next.to_vec(),
        }
        let forged = p.encode();
        assert_ne!(forged, honest, "{self:?} changes the proof");
        forged
    }
}

/// A dishonest worker over the real chain: submits the claim of any trace and plays the game's worker strategy
/// over it; a move the canister refuses is recorded and the worker falls silent (so it loses on its clock).
pub struct LyingWorker<T> {
    /// Its client.
    pub chain: IcChain,
    /// The trace it plays.
    pub trace: T,
    tree: MerkleTree,
    claim: Option<Id>,
    refused: Option<CanisterError>,
    /// Moves the canister accepted.
    pub moves: u32,
}

impl<T: Trace> LyingWorker<T> {
    /// Submits the claim of `trace` (`segments` segments ending as `status` says, claiming `output` with
    /// `final_opening`) on `task` for `program`; returns the worker and the canister's answer.
    #[allow(clippy::too_many_arguments)]
    pub async fn submit(
        chain: IcChain,
        trace: T,
        task: Id,
        program: Hash,
        input_root: Hash,
        segments: u64,
        status: FinalStatus,
        output: Vec<u8>,
        final_opening: Vec<u8>,
    ) -> (LyingWorker<T>, Result<Id, ChainError>) {
        let output_hash = Hash(opml_vm::io::output_commitment(&output));
        let (claim, evidence, tree): (_, ClaimEvidence, _) =
            agent::make_claim(&trace, program, input_root, output_hash, status, segments, final_opening);
        let r = chain.submit_claim(SubmitClaim { task, claim, evidence, output }).await;
        let w = LyingWorker { chain, trace, tree, claim: r.as_ref().ok().copied(), refused: None, moves: 0 };
        (w, r)
    }

    /// The claim it submitted.
    pub fn claim(&self) -> Id {
        self.claim.expect("the claim was accepted")
    }

    /// Its Merkle tree over the boundary roots it committed.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// The canister's answer to the move it refused, if one was.
    pub fn refused(&self) -> Option<&CanisterError> {
        self.refused.as_ref()
    }

    /// Its next move in dispute `d`, if it is its turn.
    pub async fn next_move(&self, d: u32) -> Result<Option<(u64, Move)>, ChainError> {
        let state = self.chain.get_claim_state(self.claim()).await?;
        let dispute = state.dispute(d).expect("a known dispute");
        Ok(agent::worker_move(dispute, &state.config, &self.trace, &self.tree).map(|mv| (dispute.seq, mv)))
    }

    /// Plays its move in every open dispute where it is its turn; returns the moves made.
    pub async fn poll(&mut self) -> Result<u32, ChainError> {
        let Some(claim) = self.claim else { return Ok(0) };
        if self.refused.is_some() {
            return Ok(0);
        }
        let state = self.chain.get_claim_state(claim).await?;
        let mut made = 0;
        for (id, d) in state.disputes.iter().enumerate() {
            let Some(mv) = agent::worker_move(d, &state.config, &self.trace, &self.tree) else { continue };
            match self.chain.play(PlayArgs { claim, dispute: id as u32, seq: d.seq, mv }).await {
                Ok(()) => made += 1,
                Err(ChainError::Canister { error, .. }) => {
                    println!("[liar-worker ] claim {claim} dispute {id}: the canister refused the move: {error:?}");
                    self.refused = Some(error);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        self.moves += made;
        Ok(made)
    }
}

/// A dishonest player [`crate::settle`] can poll whatever trace it plays ([`crate::Actor::Liar`]).
pub trait Dishonest {
    /// Plays its moves where it is its turn; returns the moves made.
    fn poll_moves(&mut self) -> Pin<Box<dyn Future<Output = Result<u32, ChainError>> + '_>>;
}

impl<T: Trace> Dishonest for LyingWorker<T> {
    fn poll_moves(&mut self) -> Pin<Box<dyn Future<Output = Result<u32, ChainError>> + '_>> {
        Box::pin(self.poll())
    }
}
