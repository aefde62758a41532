//! Shared test harness: configurations, honest and adversarial players over the toy VM, and a game driver that
//! checks the rules' invariants on every call.
#![allow(dead_code)]

use std::collections::BTreeMap;

use opml_bisect::agent::{self, Trace};
use opml_bisect::bisection::{split_count, split_point};
use opml_bisect::toy::{ToyRun, ToyState, ToyVm};
use opml_bisect::{
    ClaimState, DisputeId, Effect, Error, FinalStatus, GameConfig, Hash, MerkleTree, Move, Outcome, Party, Phase, Role,
};

/// Start time of every test game.
pub const T0: u64 = 1_000_000_000_000;
/// Time each move takes.
pub const TICK: u64 = 1_000_000_000;
/// Worker stake in tests.
pub const STAKE: u64 = 1_000_000;
/// Challenger bond in tests.
pub const BOND: u64 = 300_000;
/// Burn share in tests.
pub const BURN_BPS: u16 = 2_000;

/// The arities the brief asks for.
pub const ARITIES: [u8; 6] = [2, 3, 4, 8, 16, 64];

/// A test configuration with arity `k`.
pub fn config(k: u8) -> GameConfig {
    GameConfig {
        arity: k,
        max_segments: 1 << 20,
        max_segment_steps: 1 << 20,
        clock_ns: 3_600 * TICK,
        challenge_window_ns: 86_400 * TICK,
        worker_stake: STAKE,
        challenger_bond: BOND,
        burn_bps: BURN_BPS,
    }
}

/// Party number `n`.
pub fn party(n: u8) -> Party {
    Party::new(&[n; 10]).unwrap()
}

/// The worker's principal.
pub fn worker_party() -> Party {
    party(1)
}

/// A tiny deterministic RNG (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// Next value.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A random hash.
    pub fn hash(&mut self) -> Hash {
        Hash::tagged(b"test/random", &[&self.next().to_le_bytes()])
    }
}

/// A toy program, its registry and its honest run.
pub struct Setup {
    /// The toy verifier.
    pub vm: ToyVm,
    /// The honest execution.
    pub honest: ToyRun,
}

/// Registers a toy program with these segment lengths.
pub fn setup(lengths: &[u64]) -> Setup {
    let mut vm = ToyVm::new();
    let program = vm.register(lengths);
    let input = Hash::tagged(b"test/input", &[]);
    let honest = ToyRun::new(&vm, program, input);
    Setup { vm, honest }
}

/// A worker's view: a (possibly faulty) run with some boundary roots replaced and optionally random step roots.
#[derive(Clone, Debug)]
pub struct Lies {
    /// The run the roots come from.
    pub run: ToyRun,
    /// Replaced boundary roots (committed and posted consistently).
    pub boundary: BTreeMap<u64, Hash>,
    /// Replaced boundary states, when the replacement is a real state (its encoding is the "fixpoint proof").
    pub boundary_states: BTreeMap<u64, ToyState>,
    /// If set, every intermediate step root is random (seeded).
    pub random_steps: Option<u64>,
}

impl Lies {
    /// Roots of `run`, unchanged.
    pub fn of(run: ToyRun) -> Lies {
        Lies { run, boundary: BTreeMap::new(), boundary_states: BTreeMap::new(), random_steps: None }
    }
}

impl Trace for Lies {
    fn boundary_root(&self, index: u64) -> Hash {
        self.boundary.get(&index).copied().unwrap_or_else(|| self.run.boundary_root(index))
    }
    fn step_count(&self, segment: u64) -> u64 {
        self.run.step_count(segment)
    }
    fn step_root(&self, segment: u64, step: u64) -> Hash {
        match self.random_steps {
            Some(seed) => {
                Hash::tagged(b"test/lie", &[&seed.to_le_bytes(), &segment.to_le_bytes(), &step.to_le_bytes()])
            }
            None => self.run.step_root(segment, step),
        }
    }
    fn step_proof(&self, segment: u64, step: u64) -> Vec<u8> {
        self.run.step_proof(segment, step)
    }
}

/// A player: the move it makes when it is its turn (`None`: it stays silent).
pub trait Player {
    /// The move for dispute `id` of `state`.
    fn next(&mut self, state: &ClaimState, id: DisputeId) -> Option<Move>;
}

/// The honest worker.
pub struct HonestWorker {
    /// Its run.
    pub run: ToyRun,
    /// Its commitment.
    pub tree: MerkleTree,
}

impl Player for HonestWorker {
    fn next(&mut self, state: &ClaimState, id: DisputeId) -> Option<Move> {
        agent::worker_move(state.dispute(id).ok()?, &state.config, &self.run, &self.tree)
    }
}

/// The honest challenger.
pub struct HonestChallenger {
    /// Its (true) run.
    pub run: ToyRun,
}

impl Player for HonestChallenger {
    fn next(&mut self, state: &ClaimState, id: DisputeId) -> Option<Move> {
        agent::challenger_move(state.dispute(id).ok()?, &state.config, &self.run)
    }
}

/// A lying worker: plays from `lies`, commits `step_delta` more (or fewer) steps than its run takes, may post
/// roots that differ from its own commitment, and may fall silent after some moves.
pub struct LyingWorker {
    /// Where its roots come from.
    pub lies: Lies,
    /// Its commitment (built from `lies` unless the test says otherwise).
    pub tree: MerkleTree,
    /// Added to the true step count (result clamped to at least 1).
    pub step_delta: i64,
    /// Roots it posts in the segment phase instead of its committed ones.
    pub post_overrides: BTreeMap<u64, Hash>,
    /// Goes silent after this many moves.
    pub silent_after: Option<usize>,
    /// Moves made so far.
    pub made: usize,
}

impl LyingWorker {
    /// A lying worker playing `lies` with its commitment `tree`.
    pub fn new(lies: Lies, tree: MerkleTree) -> LyingWorker {
        LyingWorker { lies, tree, step_delta: 0, post_overrides: BTreeMap::new(), silent_after: None, made: 0 }
    }
}

impl Player for LyingWorker {
    fn next(&mut self, state: &ClaimState, id: DisputeId) -> Option<Move> {
        if self.silent_after.is_some_and(|n| self.made >= n) {
            return None;
        }
        self.made += 1;
        let d = state.dispute(id).ok()?;
        let points = d.points_to_post(state.config.arity);
        Some(match &d.phase {
            Phase::Segments(_) => Move::PostRoots {
                roots: points
                    .iter()
                    .map(|p| self.post_overrides.get(p).copied().unwrap_or_else(|| self.lies.boundary_root(*p)))
                    .collect(),
                proofs: points.iter().map(|&p| self.tree.proof(p).unwrap()).collect(),
            },
            Phase::CommitSteps { segment, .. } => {
                let s = *segment;
                let steps = (self.lies.step_count(s) as i64 + self.step_delta).max(1) as u64;
                // Best effort at the fixpoint proof: the state it claims as R_{s+1}, or garbage.
                let fixpoint_proof = match self.lies.boundary_states.get(&(s + 1)) {
                    Some(st) => st.encode(),
                    None if self.lies.boundary.contains_key(&(s + 1)) => vec![0xAB; 7],
                    None => self.lies.run.step_proof(s, u64::MAX),
                };
                Move::CommitSteps { steps, fixpoint_proof }
            }
            Phase::Steps { segment, .. } => Move::PostRoots {
                roots: points.iter().map(|&p| self.lies.step_root(*segment, p)).collect(),
                proofs: vec![],
            },
            Phase::ProveStep { .. } => return None,
        })
    }
}

/// How a lying challenger chooses and proves.
#[derive(Clone, Debug)]
pub enum ChallengerLie {
    /// Random sub-intervals; proofs alternate between garbage and the true proof.
    Random(Rng),
    /// Always the first sub-interval.
    First,
    /// Always the last sub-interval.
    Last,
    /// Always a longest sub-interval (the last of the longest): the worst-case path for round counts.
    Longest,
    /// Plays honestly from a faulty run of its own.
    Faulty(ToyRun),
    /// Chooses first, then submits garbage as the step proof.
    GarbageProof,
    /// Never moves.
    Silent,
}

/// A challenger disputing a claim it has no grounds against.
pub struct LyingChallenger {
    /// Its behaviour.
    pub lie: ChallengerLie,
    /// The true run (to produce step proofs that verify).
    pub truth: ToyRun,
}

impl Player for LyingChallenger {
    fn next(&mut self, state: &ClaimState, id: DisputeId) -> Option<Move> {
        let d = state.dispute(id).ok()?;
        let k = state.config.arity;
        if let ChallengerLie::Faulty(run) = &self.lie {
            return agent::challenger_move(d, &state.config, run);
        }
        match &d.phase {
            Phase::Segments(b) | Phase::Steps { bisection: b, .. } => {
                let m = split_count(b.len(), k);
                let index = match &mut self.lie {
                    ChallengerLie::Random(rng) => rng.below(m),
                    ChallengerLie::First | ChallengerLie::GarbageProof => 0,
                    ChallengerLie::Last => m - 1,
                    ChallengerLie::Longest => longest_subinterval(b.lo, b.hi, k),
                    ChallengerLie::Silent => return None,
                    ChallengerLie::Faulty(_) => unreachable!(),
                };
                Some(Move::Choose { index: index as u32 })
            }
            Phase::ProveStep { segment, step, .. } => {
                let garbage = Move::ProveStep { proof: vec![1, 2, 3] };
                let honest = Move::ProveStep { proof: self.truth.step_proof(*segment, *step) };
                match &mut self.lie {
                    ChallengerLie::Random(rng) => Some(if rng.below(2) == 0 { garbage } else { honest }),
                    ChallengerLie::GarbageProof => Some(garbage),
                    ChallengerLie::Silent => None,
                    _ => Some(honest),
                }
            }
            Phase::CommitSteps { .. } => None,
        }
    }
}

/// The index of the last longest sub-interval of `[lo, hi]`.
pub fn longest_subinterval(lo: u64, hi: u64, k: u8) -> u64 {
    let m = split_count(hi - lo, k);
    let mut best = 0;
    let mut best_len = 0;
    for i in 0..m {
        let len = split_point(lo, hi, k, i + 1) - split_point(lo, hi, k, i);
        if len >= best_len {
            best = i;
            best_len = len;
        }
    }
    best
}

/// What happened in a driven game.
#[derive(Debug)]
pub struct Played {
    /// The final claim state.
    pub state: ClaimState,
    /// Every effect emitted during the game.
    pub effects: Vec<Effect>,
    /// Moves accepted.
    pub moves: usize,
    /// Moves rejected (each followed by the mover's timeout).
    pub rejected: Vec<Error>,
    /// The time after the game.
    pub now: u64,
}

impl Played {
    /// The outcome of dispute `id`.
    pub fn outcome(&self, id: DisputeId) -> Outcome {
        self.state.dispute(id).unwrap().resolution.expect("resolved").outcome
    }
}

/// Plays dispute `id` to the end. A silent player, or one whose move is rejected, is timed out after its deadline
/// (and `timeout` is checked to fail at the deadline itself). Every rejected call is checked to leave the state
/// unchanged.
pub fn drive(
    mut state: ClaimState,
    id: DisputeId,
    worker: &mut dyn Player,
    challenger: &mut dyn Player,
    vm: &ToyVm,
    mut now: u64,
) -> Played {
    let mut effects = Vec::new();
    let mut moves = 0;
    let mut rejected = Vec::new();
    for _ in 0..10_000 {
        let d = state.dispute(id).unwrap().clone();
        let Some(mover) = d.mover() else {
            return Played { state, effects, moves, rejected, now };
        };
        now += TICK;
        let (player, caller): (&mut dyn Player, Party) = match mover {
            Role::Worker => (&mut *worker, state.worker.clone()),
            Role::Challenger => (&mut *challenger, d.challenger.clone()),
        };
        let accepted = match player.next(&state, id) {
            Some(mv) => {
                let before = state.clone();
                match state.play(id, &caller, d.seq, &mv, vm, now) {
                    Ok(t) => {
                        assert_eq!(t.state.dispute(id).unwrap().seq, d.seq + 1);
                        // A replay of the same move is rejected.
                        assert!(t.state.play(id, &caller, d.seq, &mv, vm, now).is_err());
                        effects.extend(t.effects);
                        state = t.state;
                        moves += 1;
                        true
                    }
                    Err(e) => {
                        assert_eq!(state, before);
                        rejected.push(e);
                        false
                    }
                }
            }
            None => false,
        };
        if !accepted {
            let deadline = d.deadline().unwrap();
            assert_eq!(state.timeout(id, deadline), Err(Error::NotTimedOut { deadline_ns: deadline }));
            now = deadline + 1;
            let t = state.timeout(id, now).expect("mover timed out");
            effects.extend(t.effects);
            state = t.state;
        }
    }
    panic!("game did not end");
}

/// Submits a claim built from `lies` by the worker at `T0`.
pub fn submit(vm: &ToyVm, cfg: &GameConfig, lies: &Lies, segments: u64) -> (ClaimState, MerkleTree, Vec<Effect>) {
    let run = &lies.run;
    let final_state = run.state(segments, 0);
    let (claim, evidence, tree) = agent::make_claim(
        lies,
        run.program,
        run.input_root,
        final_state.output(),
        FinalStatus::Halted,
        segments,
        final_state.encode(),
    );
    let t = ClaimState::submit(cfg, worker_party(), claim, &evidence, vm, T0).expect("claim accepted");
    (t.state, tree, t.effects)
}

/// Opens a dispute by party `n` one tick after `T0`.
pub fn open(state: &ClaimState, n: u8) -> (ClaimState, DisputeId, Vec<Effect>) {
    let (t, id) = state.open_dispute(party(n), T0 + TICK).expect("dispute opened");
    (t.state, id, t.effects)
}

/// Net flow of `effects`: (locked, paid out, burnt), in u128.
pub fn flows(effects: &[Effect]) -> (u128, u128, u128) {
    let (mut l, mut p, mut b) = (0u128, 0u128, 0u128);
    for e in effects {
        match e {
            Effect::Lock { amount, .. } => l += u128::from(*amount),
            Effect::Payout { amount, .. } => p += u128::from(*amount),
            Effect::Burn { amount } => b += u128::from(*amount),
        }
    }
    (l, p, b)
}

/// Total paid out to `who`.
pub fn paid_to(effects: &[Effect], who: &Party) -> u128 {
    effects
        .iter()
        .map(|e| match e {
            Effect::Payout { to, amount } if to == who => u128::from(*amount),
            _ => 0,
        })
        .sum()
}
