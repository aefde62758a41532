//! Whole dispute games over real guest programs with the real VM: claims are checked and moves verified by
//! [`VmVerifier`] (`opml_vm::verify`), and players take their roots and proofs from real executions
//! ([`VmTraceAdapter`] over `opml_vm::trace::GuestTrace`, and a stepper run that corrupts one memory byte).
//!
//! Guests: the three-segment wat guest of `vm/tests/guest.rs` (copied) on a 2000-byte blob, and the `digits` model
//! guest (`opml_guests::DIGITS`, one segment) on a held-out image. For every arity in [`ARITIES`]: the honest worker
//! is not challenged; every lying worker loses to the honest challenger (stake to the challenger less the burn);
//! the honest worker beats every lying challenger (bond to the worker less the burn, then the claim finalizes).
//!
//! Each game's moves are counted, their serde (CBOR, `ciborium`) encodings summed, and the time each side spends
//! choosing its moves measured; the table printed by [`every_lie_loses_over_real_guests`] is the one in
//! docs/benchmarks.md ("Dispute game over a real guest").

mod common;

use opml_guests::fixtures::THREE_SEGMENTS_ABI;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{BOND, BURN_BPS, Player, Rng, STAKE, T0, TICK, flows, longest_subinterval, paid_to, party, worker_party};
use opml_bisect::agent::{self, Trace};
use opml_bisect::bisection::split_count;
use opml_bisect::vm::{VmTraceAdapter, VmVerifier};
use opml_bisect::{
    ClaimState, ClaimStatus, DisputeId, Effect, Error, FinalStatus, GameConfig, Hash, MerkleTree, Move, Outcome, Phase,
    Reason, Role, StepVerifier, burn_share,
};
use opml_vm::guest::GuestProgram;
use opml_vm::io::Inputs;
use opml_vm::trace::GuestTrace;
use opml_vm::{Limits, Machine, NoHost, StateHasher, StateHeader, Status};

/// The arities the brief asks for.
const ARITIES: [u8; 4] = [2, 4, 8, 16];

/// Blobs of the wat guest: `len` pseudo-random bytes (varying with `seed`), then mode 0.
fn wat_inputs(seed: u32, len: usize) -> Arc<Inputs> {
    let data: Vec<u8> =
        (0..len as u32).map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    Arc::new(Inputs::new(vec![data, vec![0]]))
}

/// Blobs of the digits guest: the weights and held-out image `i`.
fn digits_inputs(i: usize) -> Arc<Inputs> {
    let (image, _) = opml_guests::digits::heldout().nth(i).expect("held-out image");
    Arc::new(Inputs::new(vec![opml_guests::digits::WEIGHTS.to_vec(), image.to_vec()]))
}

/// The address whose byte the faulty worker machine flips: below 1024, which neither guest touches (the wat guest
/// uses 0..28 and 1024..; a Rust guest's data starts at 1024 or its stack ends far above).
const FAULT_ADDR: u64 = 512;

/// Steps between the snapshots a [`FaultyRun`] keeps.
const SNAPSHOT_EVERY: u64 = 2048;

/// A worker machine that goes wrong at one instruction: the stepper runs the program, and right after step
/// `fault.1` of segment `fault.0` the byte at [`FAULT_ADDR`] is flipped, so the root after that step is wrong and
/// everything after it is a consistent execution from the wrong state. The flipped byte is never read, so the
/// output is the true one while every later root (the final root included) is wrong.
///
/// Like `GuestTrace`, it keeps machine snapshots and computes roots and proofs on demand (hashing every step of
/// a segment costs far more than the few roots a game asks for).
struct FaultyRun {
    /// `R_0..=R_N`.
    boundaries: Vec<[u8; 32]>,
    /// Per segment: its length and (step, machine after that many steps) snapshots, ascending from step 0.
    segments: Vec<(u64, Vec<(u64, Machine)>)>,
    /// The machine at the last boundary.
    last: Machine,
    index: opml_vm::program::ProgramIndex,
    /// The claim's final opening (the true output, this run's final header).
    final_opening: Vec<u8>,
    /// (segment, step) of the fault.
    fault: (u64, u64),
}

fn flip(m: &mut Machine) {
    let mem = m.memory_mut(0).expect("memory 0");
    let [b] = mem.read::<1>(FAULT_ADDR).expect("in memory");
    mem.write(FAULT_ADDR, &[!b]).expect("in memory");
}

impl FaultyRun {
    fn new(program: &GuestProgram, inputs: Arc<Inputs>, fault: (u64, u64), honest_opening: &[u8]) -> FaultyRun {
        let mut m = program.machine(inputs, Limits::default()).expect("guest machine");
        let index = m.program_index();
        let mut boundaries = vec![StateHasher::new().root(&m)];
        let mut segments = Vec::new();
        for s in 0u64.. {
            let start = m.steps();
            let mut snapshots = vec![(0, m.clone())];
            loop {
                let j = m.steps() - start;
                let mut to = j + SNAPSHOT_EVERY;
                if s == fault.0 && j < fault.1 && fault.1 < to {
                    to = fault.1;
                }
                m.run(&mut NoHost, to - j).expect("runs");
                let j = m.steps() - start;
                if (s, j) == fault {
                    flip(&mut m);
                }
                if m.status() != Status::Running {
                    break;
                }
                snapshots.push((j, m.clone()));
            }
            segments.push((m.steps() - start, snapshots));
            boundaries.push(StateHasher::new().root(&m));
            match m.status() {
                Status::Idle => {}
                Status::Halted => break,
                other => panic!("the faulty run ended {other:?}"),
            }
        }
        // The final opening: the honest one's I/O part (same input root, output and segment counter) after this
        // run's final header.
        let mut final_opening = StateHasher::new().header(&m).encode().to_vec();
        final_opening.extend_from_slice(&honest_opening[StateHeader::BYTES..]);
        FaultyRun { boundaries, segments, last: m, index, final_opening, fault }
    }

    fn segments(&self) -> u64 {
        self.segments.len() as u64
    }

    /// The machine after `step` steps of `segment` (past its end: the next boundary's).
    fn machine_after(&self, segment: u64, step: u64) -> Machine {
        let Some((len, snapshots)) = self.segments.get(segment as usize) else { return self.last.clone() };
        if step >= *len {
            return match self.segments.get(segment as usize + 1) {
                Some((_, next)) => next[0].1.clone(),
                None => self.last.clone(),
            };
        }
        let (at, snapshot) = snapshots.iter().rev().find(|(at, _)| *at <= step).expect("snapshot 0");
        let (mut j, mut m) = (*at, snapshot.clone());
        while j < step {
            let to =
                if segment == self.fault.0 && j < self.fault.1 && self.fault.1 <= step { self.fault.1 } else { step };
            m.run(&mut NoHost, to - j).expect("runs");
            j = to;
            if (segment, j) == self.fault {
                flip(&mut m);
            }
        }
        m
    }
}

impl Trace for &FaultyRun {
    fn boundary_root(&self, index: u64) -> Hash {
        Hash(self.boundaries[(index as usize).min(self.boundaries.len() - 1)])
    }
    fn step_count(&self, segment: u64) -> u64 {
        self.segments.get(segment as usize).map_or(1, |(len, _)| *len)
    }
    fn step_root(&self, segment: u64, step: u64) -> Hash {
        if step >= self.step_count(segment) || segment >= self.segments() {
            return self.boundary_root(segment + 1);
        }
        Hash(StateHasher::new().root(&self.machine_after(segment, step)))
    }
    fn step_proof(&self, segment: u64, step: u64) -> Vec<u8> {
        let m = self.machine_after(segment, step);
        opml_vm::prove_step(&m, &self.index, &mut StateHasher::new()).expect("proof").encode()
    }
}

/// A guest, its inputs and every execution the players use.
struct Guest {
    name: &'static str,
    program_hash: Hash,
    inputs: Arc<Inputs>,
    /// The worker's own execution of `inputs`.
    worker: GuestTrace,
    /// The watcher's own execution of `inputs` (a separate instance: nothing is shared between the sides).
    watcher: GuestTrace,
    /// An execution of the same program on other inputs (the source of wrong results).
    other: GuestTrace,
    /// The worker machine that corrupts one byte in the middle of its longest segment.
    faulty: FaultyRun,
    /// Time to build all of the above (fast runs, stepper passes over every segment, the faulty run).
    setup: Duration,
}

impl Guest {
    fn new(name: &'static str, wasm: &[u8], inputs: Arc<Inputs>, other: Arc<Inputs>, v: &mut VmVerifier) -> Guest {
        let start = Instant::now();
        let program = GuestProgram::new(wasm).expect("valid guest");
        let program_hash = v.register_guest(&program, Limits::default()).expect("registered");
        let trace = |inputs: &Arc<Inputs>| {
            let t = GuestTrace::new(program.clone(), inputs.clone(), Limits::default()).expect("runs");
            assert_eq!(t.run().status, Status::Halted, "{name} halts");
            let header = program.initial_header(Limits::default()).unwrap();
            assert_eq!(Hash(opml_vm::program::program_id(&t.index().commitment, &header)), program_hash);
            // Build every segment's stepper trace now, so the games' timings are per-move work only.
            for s in 0..t.segments() {
                t.step_count(s).expect("segment trace");
            }
            t
        };
        let (worker, watcher, other_trace) = (trace(&inputs), trace(&inputs), trace(&other));
        assert_eq!(worker.segments(), other_trace.segments());
        assert_ne!(
            worker.run().output_hash,
            other_trace.run().output_hash,
            "{name}: the other input changes the output"
        );
        let longest = (0..worker.segments()).max_by_key(|&s| worker.step_count(s).unwrap()).unwrap();
        let fault = (longest, worker.step_count(longest).unwrap() / 2);
        let faulty = FaultyRun::new(&program, inputs.clone(), fault, &worker.final_opening().unwrap());
        assert_eq!(faulty.segments(), worker.segments());
        for i in 0..=longest {
            assert_eq!(faulty.boundaries[i as usize], worker.boundary_root(i), "{name}: before the fault");
        }
        assert_ne!(faulty.boundaries[longest as usize + 1], worker.boundary_root(longest + 1), "{name}: after it");
        let f = &faulty;
        assert_eq!(f.step_count(longest), worker.step_count(longest).unwrap(), "{name}: the fault changes no branch");
        for j in [0, 1, fault.1 - 1, fault.1, fault.1 + 1] {
            let true_root = worker.step_root(fault.0, j).unwrap();
            assert_eq!(f.step_root(fault.0, j).0 == true_root, j < fault.1, "{name}: step {j}");
        }
        Guest { name, program_hash, inputs, worker, watcher, other: other_trace, faulty, setup: start.elapsed() }
    }

    fn segments(&self) -> u64 {
        self.worker.segments()
    }

    /// The true claim's output hash and final opening.
    fn true_output(&self) -> (Hash, Vec<u8>) {
        (Hash(self.worker.run().output_hash), self.worker.final_opening().unwrap())
    }

    /// The other input's output hash and final opening.
    fn other_output(&self) -> (Hash, Vec<u8>) {
        (Hash(self.other.run().output_hash), self.other.final_opening().unwrap())
    }
}

/// The game's configuration: arity `k`, segments of up to 2^30 instructions.
fn config(k: u8) -> GameConfig {
    GameConfig { max_segment_steps: 1 << 30, ..common::config(k) }
}

/// Where a lying worker's step roots come from.
#[derive(Clone, Copy, Debug)]
enum Steps {
    /// Its copy of the true execution (right step roots, wrong endpoint).
    True,
    /// The execution on the other input.
    Other,
    /// Random roots (seeded).
    Random(u64),
}

/// A lying worker's view: boundaries `0..splice` are true, `splice..` are the other execution's (`R_0` is always
/// true: the claim is checked against it), some boundaries and step roots may be replaced by garbage, and the
/// step count may be replaced.
struct Liar<'a> {
    truth: &'a dyn Trace,
    other: &'a dyn Trace,
    splice: u64,
    boundary_garbage: BTreeMap<u64, Hash>,
    steps: Steps,
    step_garbage: BTreeMap<(u64, u64), Hash>,
    count: Option<u64>,
}

impl<'a> Liar<'a> {
    fn new(truth: &'a dyn Trace, other: &'a dyn Trace, splice: u64, steps: Steps) -> Liar<'a> {
        Liar {
            truth,
            other,
            splice: splice.max(1),
            boundary_garbage: BTreeMap::new(),
            steps,
            step_garbage: BTreeMap::new(),
            count: None,
        }
    }

    fn boundary_source(&self, index: u64) -> &'a dyn Trace {
        if index >= self.splice { self.other } else { self.truth }
    }

    fn step_source(&self) -> &'a dyn Trace {
        match self.steps {
            Steps::Other => self.other,
            Steps::True | Steps::Random(_) => self.truth,
        }
    }
}

impl Trace for Liar<'_> {
    fn boundary_root(&self, index: u64) -> Hash {
        match self.boundary_garbage.get(&index) {
            Some(h) => *h,
            None => self.boundary_source(index).boundary_root(index),
        }
    }
    fn step_count(&self, segment: u64) -> u64 {
        self.count.unwrap_or_else(|| self.step_source().step_count(segment))
    }
    fn step_root(&self, segment: u64, step: u64) -> Hash {
        if let Some(h) = self.step_garbage.get(&(segment, step)) {
            return *h;
        }
        match self.steps {
            Steps::Random(seed) => {
                Hash::tagged(b"test/lie", &[&seed.to_le_bytes(), &segment.to_le_bytes(), &step.to_le_bytes()])
            }
            _ => self.step_source().step_root(segment, step),
        }
    }
    /// From the end of the segment: the proof of its own `R_{s+1}`, from wherever that root came from.
    fn step_proof(&self, segment: u64, step: u64) -> Vec<u8> {
        if step >= self.step_count(segment) {
            self.boundary_source(segment + 1).step_proof(segment, u64::MAX)
        } else {
            self.step_source().step_proof(segment, step)
        }
    }
}

/// How a worker departs from playing its trace.
#[derive(Clone, Debug, Default)]
struct Quirks {
    /// In the segment phase, posts these roots (by index) instead of its committed ones.
    post_instead: BTreeMap<u64, Hash>,
    /// Replaces the fixpoint proof of `CommitSteps`.
    fixpoint_proof: Option<Vec<u8>>,
    /// Falls silent after this many moves.
    silent_after: Option<usize>,
}

/// A worker playing `agent::worker_move` over its trace (true or not), with its commitment to that trace.
struct Worker<T> {
    trace: T,
    tree: MerkleTree,
    quirks: Quirks,
    made: usize,
}

impl<T: Trace> Player for Worker<T> {
    fn next(&mut self, state: &ClaimState, id: DisputeId) -> Option<Move> {
        if self.quirks.silent_after.is_some_and(|n| self.made >= n) {
            return None;
        }
        let d = state.dispute(id).ok()?;
        let mut mv = agent::worker_move(d, &state.config, &self.trace, &self.tree)?;
        match (&d.phase, &mut mv) {
            (Phase::Segments(_), Move::PostRoots { roots, .. }) => {
                for (p, root) in d.points_to_post(state.config.arity).iter().zip(roots.iter_mut()) {
                    if let Some(h) = self.quirks.post_instead.get(p) {
                        *root = *h;
                    }
                }
            }
            (_, Move::CommitSteps { fixpoint_proof, .. }) => {
                if let Some(p) = &self.quirks.fixpoint_proof {
                    fixpoint_proof.clone_from(p);
                }
            }
            _ => {}
        }
        self.made += 1;
        Some(mv)
    }
}

/// How a challenger plays.
#[derive(Clone, Debug)]
enum Strategy {
    /// `agent::challenger_move` over its own trace.
    Honest,
    /// Random sub-intervals; at the end the true proof of the agreed step, or garbage.
    Random { rng: Rng, garbage_proof: bool },
    /// Always a longest sub-interval, then the true proof.
    Longest,
    /// Never moves.
    Silent,
}

/// A challenger with its own trace and a strategy.
struct Challenger<T> {
    trace: T,
    strategy: Strategy,
}

impl<T: Trace> Player for Challenger<T> {
    fn next(&mut self, state: &ClaimState, id: DisputeId) -> Option<Move> {
        let d = state.dispute(id).ok()?;
        let k = state.config.arity;
        if d.mover() != Some(Role::Challenger) {
            return None;
        }
        match (&mut self.strategy, &d.phase) {
            (Strategy::Honest, _) => agent::challenger_move(d, &state.config, &self.trace),
            (Strategy::Silent, _) => None,
            (Strategy::Random { rng, .. }, Phase::Segments(b) | Phase::Steps { bisection: b, .. }) => {
                Some(Move::Choose { index: rng.below(split_count(b.len(), k)) as u32 })
            }
            (Strategy::Longest, Phase::Segments(b) | Phase::Steps { bisection: b, .. }) => {
                Some(Move::Choose { index: longest_subinterval(b.lo, b.hi, k) as u32 })
            }
            (Strategy::Random { garbage_proof: true, .. }, Phase::ProveStep { .. }) => {
                Some(Move::ProveStep { proof: vec![0xde, 0xad, 0xbe, 0xef] })
            }
            (_, Phase::ProveStep { segment, step, .. }) => {
                Some(Move::ProveStep { proof: self.trace.step_proof(*segment, *step) })
            }
            (_, Phase::CommitSteps { .. }) => None,
        }
    }
}

/// What a driven game did.
struct Game {
    state: ClaimState,
    id: DisputeId,
    /// Every effect, from the submission on.
    effects: Vec<Effect>,
    /// Moves accepted.
    moves: usize,
    /// Bytes of every submitted move, CBOR-encoded.
    bytes: usize,
    /// Of which the VM's one-step proofs (the fixpoint proof and the final step proof), raw.
    proof_bytes: usize,
    /// Moves the rules rejected (each followed by the mover's timeout).
    rejected: Vec<Error>,
    worker_time: Duration,
    challenger_time: Duration,
}

impl Game {
    fn outcome(&self) -> Outcome {
        self.state.dispute(self.id).unwrap().resolution.expect("resolved").outcome
    }

    fn rounds(&self) -> u32 {
        let d = self.state.dispute(self.id).unwrap();
        d.segment_rounds + d.step_rounds
    }
}

fn cbor_len(mv: &Move) -> usize {
    let mut out = Vec::new();
    ciborium::into_writer(mv, &mut out).expect("CBOR");
    out.len()
}

/// Submits the claim of `worker`'s trace (with `output`), has an honest watcher check it, opens a dispute by
/// party 2 (whether or not the watcher would) and plays it to the end. A rejected move (which changes nothing: the
/// rules return a new state only on success) is followed by the mover's timeout, as is silence.
fn play<T: Trace>(
    g: &Guest,
    v: &VmVerifier,
    cfg: &GameConfig,
    output: (Hash, Vec<u8>),
    worker: &mut Worker<T>,
    challenger: &mut dyn Player,
    should_challenge: bool,
) -> Game {
    // Every guest here halts (a claim about a trap is played in `trapped_run_is_claimed_and_defended`).
    let (claim, evidence, tree) = agent::make_claim(
        &worker.trace,
        g.program_hash,
        Hash(g.inputs.root()),
        output.0,
        FinalStatus::Halted,
        g.segments(),
        output.1,
    );
    worker.tree = tree;
    let submitted = ClaimState::submit(cfg, worker_party(), claim, &evidence, v, T0).expect("claim accepted");
    let watcher = VmTraceAdapter::new(&g.watcher);
    assert_eq!(agent::should_challenge(&submitted.state.claim, &watcher), should_challenge, "{}", g.name);
    let mut effects = submitted.effects;
    let (opened, id) = submitted.state.open_dispute(party(2), T0 + TICK).expect("dispute opened");
    effects.extend(opened.effects);
    let mut state = opened.state;
    let mut now = T0 + TICK;
    let (mut moves, mut bytes, mut proof_bytes, mut rejected) = (0, 0, 0, Vec::new());
    let (mut worker_time, mut challenger_time) = (Duration::ZERO, Duration::ZERO);
    for _ in 0..1_000 {
        let d = state.dispute(id).unwrap().clone();
        let Some(mover) = d.mover() else {
            return Game { state, id, effects, moves, bytes, proof_bytes, rejected, worker_time, challenger_time };
        };
        now += TICK;
        let started = Instant::now();
        let (mv, caller) = match mover {
            Role::Worker => {
                let mv = worker.next(&state, id);
                worker_time += started.elapsed();
                (mv, state.worker.clone())
            }
            Role::Challenger => {
                let mv = challenger.next(&state, id);
                challenger_time += started.elapsed();
                (mv, d.challenger.clone())
            }
        };
        let accepted = match mv {
            Some(mv) => {
                bytes += cbor_len(&mv);
                proof_bytes += match &mv {
                    Move::CommitSteps { fixpoint_proof: p, .. } | Move::ProveStep { proof: p } => p.len(),
                    _ => 0,
                };
                match state.play(id, &caller, d.seq, &mv, v, now) {
                    Ok(t) => {
                        assert!(t.state.play(id, &caller, d.seq, &mv, v, now).is_err(), "a replay is rejected");
                        effects.extend(t.effects);
                        state = t.state;
                        moves += 1;
                        true
                    }
                    Err(e) => {
                        rejected.push(e);
                        false
                    }
                }
            }
            None => false,
        };
        if !accepted {
            let deadline = d.deadline().unwrap();
            assert!(state.timeout(id, deadline).is_err(), "no timeout at the deadline itself");
            now = deadline + 1;
            let t = state.timeout(id, now).expect("the mover timed out");
            effects.extend(t.effects);
            state = t.state;
        }
    }
    panic!("{}: the game did not end", g.name);
}

/// The challenger won for `reason`: the claim is invalidated; the challenger gets its bond and the stake less the
/// burn; the worker gets nothing; everything locked is paid out or burnt.
fn assert_challenger_won(game: &Game, reason: Reason, what: &str) {
    assert_eq!(game.outcome(), Outcome::ChallengerWon(reason), "{what}: rejected {:?}", game.rejected);
    assert!(matches!(game.state.status, ClaimStatus::Invalidated { .. }), "{what}");
    let burnt = burn_share(STAKE, BURN_BPS);
    assert_eq!(paid_to(&game.effects, &party(2)), u128::from(BOND + STAKE - burnt), "{what}");
    assert_eq!(paid_to(&game.effects, &worker_party()), 0, "{what}");
    assert_eq!(flows(&game.effects), (u128::from(STAKE + BOND), u128::from(BOND + STAKE - burnt), u128::from(burnt)));
    assert_eq!(game.state.total_locked(), u128::from(STAKE + BOND));
    assert_eq!(game.state.finalize(u64::MAX), Err(Error::ClaimNotPending), "{what}");
}

/// The worker won for `reason`: it gets the bond less the burn, and after the window `finalize` returns its stake.
fn assert_worker_won(game: &Game, reason: Reason, what: &str) {
    assert_eq!(game.outcome(), Outcome::WorkerWon(reason), "{what}: rejected {:?}", game.rejected);
    let burnt = burn_share(BOND, BURN_BPS);
    assert_eq!(paid_to(&game.effects, &worker_party()), u128::from(BOND - burnt), "{what}");
    assert_eq!(paid_to(&game.effects, &party(2)), 0, "{what}");
    let fin = game.state.finalize(game.state.window_end_ns() + 1).expect("final after the window");
    assert!(matches!(fin.state.status, ClaimStatus::Final { .. }), "{what}");
    let mut effects = game.effects.clone();
    effects.extend(fin.effects);
    assert_eq!(paid_to(&effects, &worker_party()), u128::from(STAKE + BOND - burnt), "{what}");
    assert_eq!(flows(&effects), (u128::from(STAKE + BOND), u128::from(STAKE + BOND - burnt), u128::from(burnt)));
}

/// Which rejected moves a game must have had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rejects {
    /// None.
    Nothing,
    /// Only rejected one-step proofs (fixpoint or final).
    StepProof,
    /// Only out-of-range step counts.
    StepCount,
    /// Only failing Merkle proofs of posted boundary roots.
    BoundaryProof,
}

impl Rejects {
    fn check(self, rejected: &[Error], what: &str) {
        let ok = match self {
            Rejects::Nothing => rejected.is_empty(),
            Rejects::StepProof => {
                !rejected.is_empty() && rejected.iter().all(|e| matches!(e, Error::StepProofRejected(_)))
            }
            Rejects::StepCount => {
                !rejected.is_empty() && rejected.iter().all(|e| matches!(e, Error::StepCountOutOfRange { .. }))
            }
            Rejects::BoundaryProof => {
                !rejected.is_empty() && rejected.iter().all(|e| matches!(e, Error::BoundaryProofInvalid { .. }))
            }
        };
        assert!(ok, "{what}: expected {self:?}, rejected {rejected:?}");
    }
}

/// A worker playing `trace` (its tree is set when the claim is made).
fn worker<T: Trace>(trace: T, quirks: Quirks) -> Worker<T> {
    Worker { trace, tree: MerkleTree::new(&[Hash::ZERO]), quirks, made: 0 }
}

/// One row of the cost table.
struct Row {
    guest: &'static str,
    k: u8,
    segments: u64,
    steps: u64,
    rounds: u32,
    moves: usize,
    bytes: usize,
    proof_bytes: usize,
    worker: Duration,
    challenger: Duration,
}

/// Plays every scenario for one guest and arity; returns the cost of the faulty-machine game (the realistic lie:
/// the worker's roots agree with the truth up to one wrong instruction in the middle of its longest segment).
fn scenarios(g: &Guest, v: &VmVerifier, k: u8) -> Row {
    let cfg = config(k);
    let n_seg = g.segments();
    let name = |what: &str| format!("{} k={k}: {what}", g.name);
    let truth = VmTraceAdapter::new(&g.worker);
    let watcher = VmTraceAdapter::new(&g.watcher);
    let other = VmTraceAdapter::new(&g.other);
    let honest_challenger = || Challenger { trace: watcher, strategy: Strategy::Honest };
    // The lies falsify the end of the segment the fault is in (the longest one), `fs`, of `len` steps.
    let (fs, fj) = g.faulty.fault;
    let len = g.worker.step_count(fs).unwrap();

    // Honest worker, honest watcher: nothing to dispute; the claim finalizes after the window.
    {
        let (output, opening) = g.true_output();
        let (claim, evidence, _) = agent::make_claim(
            &truth,
            g.program_hash,
            Hash(g.inputs.root()),
            output,
            FinalStatus::Halted,
            n_seg,
            opening,
        );
        let t = ClaimState::submit(&cfg, worker_party(), claim, &evidence, v, T0).expect("true claim accepted");
        assert!(!agent::should_challenge(&t.state.claim, &watcher), "{}", name("honest claim"));
        let fin = t.state.finalize(t.state.window_end_ns() + 1).unwrap();
        assert_eq!(paid_to(&fin.effects, &worker_party()), u128::from(STAKE));
    }

    // Lying workers against the honest challenger: the challenger wins every time.
    let liar = |splice, steps| Liar::new(&truth, &other, splice, steps);
    let none = Quirks::default;
    let mut cases: Vec<(String, Liar<'_>, Quirks, Reason, Rejects)> = vec![
        (
            "wrong output (another input's run)".into(),
            liar(1, Steps::Other),
            none(),
            Reason::StepProof,
            Rejects::Nothing,
        ),
        (
            "wrong boundary R_s+1 (a real state of another run), true steps".into(),
            liar(fs + 1, Steps::True),
            none(),
            Reason::StepProof,
            Rejects::Nothing,
        ),
        ("random step roots".into(), liar(fs + 1, Steps::Random(7)), none(), Reason::StepProof, Rejects::Nothing),
        (
            "silent from the start".into(),
            liar(1, Steps::Other),
            Quirks { silent_after: Some(0), ..none() },
            Reason::Timeout,
            Rejects::Nothing,
        ),
        (
            "silent after two moves".into(),
            liar(1, Steps::Other),
            Quirks { silent_after: Some(2), ..none() },
            Reason::Timeout,
            Rejects::Nothing,
        ),
        (
            "fixpoint proof of another state".into(),
            liar(fs + 1, Steps::True),
            Quirks { fixpoint_proof: Some(truth.step_proof(fs, u64::MAX)), ..none() },
            Reason::Timeout,
            Rejects::StepProof,
        ),
    ];
    let mut l = liar(fs + 1, Steps::True);
    l.step_garbage.insert((fs, len / 2), Hash::tagged(b"test/garbage", &[]));
    cases.push((
        "one wrong step root inside the disputed segment".into(),
        l,
        none(),
        Reason::StepProof,
        Rejects::Nothing,
    ));
    for (what, count) in [
        ("too small: 1", 1),
        ("too small: half", (len / 2).max(1)),
        ("too large: 2n+3", 2 * len + 3),
        ("too large: the maximum", cfg.max_segment_steps),
    ] {
        let mut l = liar(fs + 1, Steps::True);
        l.count = Some(count);
        cases.push((format!("step count {what}"), l, none(), Reason::StepProof, Rejects::Nothing));
    }
    for count in [0, cfg.max_segment_steps + 1] {
        let mut l = liar(fs + 1, Steps::True);
        l.count = Some(count);
        cases.push((format!("step count {count} (out of range)"), l, none(), Reason::Timeout, Rejects::StepCount));
    }
    if n_seg >= 2 {
        // A garbage interior boundary (no state has that root, so no fixpoint proof exists), wrong result after it.
        let mut l = liar(2, Steps::Other);
        l.boundary_garbage.insert(1, Hash::tagged(b"test/garbage-boundary", &[]));
        cases.push(("garbage boundary root R_1".into(), l, none(), Reason::Timeout, Rejects::StepProof));
        // Posts the true roots (which the challenger would accept) instead of the ones it committed.
        let post_instead = (1..n_seg).map(|i| (i, truth.boundary_root(i))).collect();
        cases.push((
            "posts roots that are not its commitment's".into(),
            liar(1, Steps::Other),
            Quirks { post_instead, ..none() },
            Reason::Timeout,
            Rejects::BoundaryProof,
        ));
    }
    for (what, l, quirks, reason, rejects) in cases {
        let output = if l.splice <= n_seg { g.other_output() } else { g.true_output() };
        let mut w = worker(l, quirks);
        let game = play(g, v, &cfg, output, &mut w, &mut honest_challenger(), true);
        assert_challenger_won(&game, reason, &name(&what));
        rejects.check(&game.rejected, &name(&what));
    }

    // The faulty machine: the realistic full-depth game.
    let mut w = worker(&g.faulty, Quirks::default());
    let output = (g.true_output().0, g.faulty.final_opening.clone());
    let faulty = play(g, v, &cfg, output, &mut w, &mut honest_challenger(), true);
    assert_challenger_won(&faulty, Reason::StepProof, &name("faulty machine"));
    assert!(faulty.rejected.is_empty());
    match &faulty.state.dispute(faulty.id).unwrap().phase {
        Phase::ProveStep { segment, step, .. } => {
            assert_eq!((*segment, *step + 1), (fs, fj), "{}", name("fault found"))
        }
        other => panic!("{}: ended in {other:?}", name("faulty machine")),
    }

    // A right output over a wrong interior root is not disputed by an honest watcher.
    if n_seg >= 2 {
        let mut l = liar(n_seg + 1, Steps::True);
        l.boundary_garbage.insert(1, Hash::tagged(b"test/garbage-boundary", &[]));
        let (claim, evidence, _) = agent::make_claim(
            &l,
            g.program_hash,
            Hash(g.inputs.root()),
            g.true_output().0,
            FinalStatus::Halted,
            n_seg,
            g.true_output().1,
        );
        let t = ClaimState::submit(&cfg, worker_party(), claim, &evidence, v, T0).expect("accepted");
        assert!(!agent::should_challenge(&t.state.claim, &watcher), "{}", name("right output, wrong interior"));
    }

    // The honest worker against lying challengers: the worker wins every time.
    let believer = Challenger { trace: VmTraceAdapter::new(&g.other), strategy: Strategy::Honest };
    let mut lying: Vec<(&str, Box<dyn Player + '_>, Reason, Rejects)> = vec![
        ("believes another input's run", Box::new(believer), Reason::Timeout, Rejects::StepProof),
        (
            "silent",
            Box::new(Challenger { trace: watcher, strategy: Strategy::Silent }),
            Reason::Timeout,
            Rejects::Nothing,
        ),
        (
            "longest sub-intervals",
            Box::new(Challenger { trace: watcher, strategy: Strategy::Longest }),
            Reason::StepProof,
            Rejects::Nothing,
        ),
    ];
    for seed in 0..3 {
        let rng = Rng(seed * 1000 + u64::from(k));
        lying.push((
            "random choices, true proof",
            Box::new(Challenger {
                trace: watcher,
                strategy: Strategy::Random { rng: rng.clone(), garbage_proof: false },
            }),
            Reason::StepProof,
            Rejects::Nothing,
        ));
        lying.push((
            "random choices, garbage proof",
            Box::new(Challenger { trace: watcher, strategy: Strategy::Random { rng, garbage_proof: true } }),
            Reason::Timeout,
            Rejects::StepProof,
        ));
    }
    for (what, mut c, reason, rejects) in lying {
        let mut w = worker(truth, Quirks::default());
        let game = play(g, v, &cfg, g.true_output(), &mut w, &mut *c, false);
        assert_worker_won(&game, reason, &name(what));
        rejects.check(&game.rejected, &name(what));
    }

    Row {
        guest: g.name,
        k,
        segments: n_seg,
        steps: len,
        rounds: faulty.rounds(),
        moves: faulty.moves,
        bytes: faulty.bytes,
        proof_bytes: faulty.proof_bytes,
        worker: faulty.worker_time,
        challenger: faulty.challenger_time,
    }
}

#[test]
fn verifier_checks_real_claims_and_steps() {
    let mut v = VmVerifier::new();
    let g = Guest::new(
        "wat",
        &wat::parse_str(THREE_SEGMENTS_ABI).unwrap(),
        wat_inputs(0, 2000),
        wat_inputs(1, 2000),
        &mut v,
    );
    let run = g.worker.run();
    let (output, opening) = g.true_output();
    // initial_root and check_final are the VM's.
    assert_eq!(v.initial_root(&g.program_hash, &Hash(g.inputs.root())), Ok(Hash(g.worker.boundary_root(0))));
    assert_eq!(v.check_final(&Hash(run.final_root()), &output, &opening), Ok(FinalStatus::Halted));
    let err = v.check_final(&Hash(g.worker.boundary_root(1)), &output, &opening).unwrap_err();
    assert!(err.reason.contains("pre-state root"), "{err}");
    // The final root of another input's run opens fine: the input root is left to the game (see VmVerifier).
    let (other_output, other_opening) = g.other_output();
    assert_eq!(
        v.check_final(&Hash(g.other.run().final_root()), &other_output, &other_opening),
        Ok(FinalStatus::Halted)
    );
    // Unknown programs are errors, not panics.
    assert!(v.initial_root(&Hash::ZERO, &Hash::ZERO).unwrap_err().reason.contains("unknown program"));
    assert!(v.verify_step(&Hash::ZERO, 0, &Hash::ZERO, &[]).unwrap_err().reason.contains("unknown program"));
    // verify_step is f_s: from R_1, segment 1 starts; segment 0 keeps it fixed; garbage is rejected with the VM's
    // message.
    let t = VmTraceAdapter::new(&g.worker);
    let p = t.step_proof(1, 0);
    assert_eq!(v.verify_step(&g.program_hash, 1, &t.boundary_root(1), &p), Ok(t.step_root(1, 1)));
    assert_eq!(v.verify_step(&g.program_hash, 0, &t.boundary_root(1), &p), Ok(t.boundary_root(1)));
    assert!(
        v.verify_step(&g.program_hash, 1, &t.boundary_root(1), &[1, 2, 3]).unwrap_err().reason.contains("malformed")
    );
    assert_eq!(t.step_root(1, t.step_count(1)), t.boundary_root(2));
}

/// A trap is an ordinary final state: a claim stating the trap (and the output written before it) is accepted,
/// an honest watcher agrees with it, and the claim finalizes; stating another outcome for the same final root is
/// refused at submission.
#[test]
fn trapped_run_is_claimed_and_defended() {
    let mut v = VmVerifier::new();
    let program = GuestProgram::new(&wat::parse_str(THREE_SEGMENTS_ABI).unwrap()).unwrap();
    let program_hash = v.register_guest(&program, Limits::default()).unwrap();
    // Mode 3: the fixture divides by zero in its last segment, after writing part of its output.
    let data: Vec<u8> = (0..2000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    let inputs = Arc::new(Inputs::new(vec![data, vec![3]]));
    let trace = GuestTrace::new(program.clone(), inputs.clone(), Limits::default()).unwrap();
    let run = trace.run();
    assert_eq!(run.status, Status::Trapped(opml_vm::TrapCode::IntegerDivideByZero));
    let status = opml_bisect::vm::status_of(run.status).unwrap();
    assert_eq!(status, FinalStatus::Trapped { code: 7 });
    assert_eq!(opml_bisect::vm::trap_of(&status), Some(opml_vm::TrapCode::IntegerDivideByZero));
    let opening = trace.final_opening().unwrap();
    let (output, final_root) = (Hash(run.output_hash), Hash(run.final_root()));
    assert_eq!(v.check_final(&final_root, &output, &opening), Ok(status));
    // What the guest wrote before the trap (here nothing) is bound: another output is refused.
    let other = Hash(opml_vm::io::output_commitment(b"made up"));
    assert_ne!(run.output_hash, other.0);
    assert!(v.check_final(&final_root, &other, &opening).is_err());

    let truth = VmTraceAdapter::new(&trace);
    let cfg = config(4);
    let (claim, evidence, _) =
        agent::make_claim(&truth, program_hash, Hash(inputs.root()), output, status, trace.segments(), opening);
    for other in [FinalStatus::Halted, FinalStatus::Trapped { code: 1 }, FinalStatus::Trapped { code: 999 }] {
        let mut wrong = claim.clone();
        wrong.final_status = other;
        assert_eq!(
            ClaimState::submit(&cfg, worker_party(), wrong, &evidence, &v, T0).unwrap_err(),
            Error::FinalStatusMismatch { claimed: other, opened: status }
        );
    }
    let t = ClaimState::submit(&cfg, worker_party(), claim, &evidence, &v, T0).expect("a trapped run is claimable");
    assert_eq!(t.state.claim.final_status.to_string(), "trapped (code 7)");
    // An honest watcher's re-execution reaches the same trapped root: nothing to dispute.
    let watcher = GuestTrace::new(program.clone(), inputs.clone(), Limits::default()).unwrap();
    assert!(!agent::should_challenge(&t.state.claim, &VmTraceAdapter::new(&watcher)));
    // A run that halts (another input) ends elsewhere: a watcher believing it would dispute.
    let halts = GuestTrace::new(program, wat_inputs(0, 2000), Limits::default()).unwrap();
    assert_eq!(halts.run().status, Status::Halted);
    assert!(agent::should_challenge(&t.state.claim, &VmTraceAdapter::new(&halts)));
    let fin = t.state.finalize(t.state.window_end_ns() + 1).unwrap();
    assert_eq!(paid_to(&fin.effects, &worker_party()), u128::from(STAKE));
}

#[test]
fn every_lie_loses_over_real_guests() {
    let mut v = VmVerifier::new();
    let started = Instant::now();
    let guests = [
        Guest::new(
            "wat",
            &wat::parse_str(THREE_SEGMENTS_ABI).unwrap(),
            wat_inputs(0, 2000),
            wat_inputs(1, 2000),
            &mut v,
        ),
        Guest::new("digits", opml_guests::DIGITS, digits_inputs(0), digits_inputs(1), &mut v),
    ];
    let mut rows = Vec::new();
    for g in &guests {
        for k in ARITIES {
            rows.push(scenarios(g, &v, k));
        }
    }
    let mut table = String::from(
        "| guest | k | N | n | rounds | moves | bytes posted (CBOR) | of which proofs | worker time | challenger time |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in &rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.1} ms | {:.1} ms |\n",
            r.guest,
            r.k,
            r.segments,
            r.steps,
            r.rounds,
            r.moves,
            r.bytes,
            r.proof_bytes,
            r.worker.as_secs_f64() * 1e3,
            r.challenger.as_secs_f64() * 1e3
        ));
    }
    let setup: Vec<String> = guests.iter().map(|g| format!("{} {:.2} s", g.name, g.setup.as_secs_f64())).collect();
    eprintln!(
        "\nDispute game over a real guest: the faulty worker machine against the honest challenger (N segments, n \
         steps in the disputed one)\n{table}setup (fast runs, stepper passes, faulty run): {}; whole test {:.1} s",
        setup.join(", "),
        started.elapsed().as_secs_f64()
    );
}
