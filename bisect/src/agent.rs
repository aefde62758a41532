//! Honest strategies: what an honest worker and an honest challenger play, given their own execution trace.
//!
//! These are the reference players (the off-chain agents drive them with the real VM's trace); tests pit them
//! against adversarial ones.

use alloc::vec::Vec;

use crate::bisection::{split_count, split_point};
use crate::claim::{Claim, ClaimEvidence, FinalStatus};
use crate::config::GameConfig;
use crate::dispute::{Dispute, Phase};
use crate::hash::Hash;
use crate::merkle::MerkleTree;
use crate::moves::{Move, MoveKind};
use crate::party::Role;

/// A party's view of one execution: the roots and proofs it believes in.
pub trait Trace {
    /// The boundary root `R_i` (for `i` past the last segment: the terminal state, which every segment fixes).
    fn boundary_root(&self, index: u64) -> Hash;
    /// The number of steps segment `s` takes from `R_s` to `R_{s+1}` (at least 1).
    fn step_count(&self, segment: u64) -> u64;
    /// The root after `step` steps of segment `s` from `R_s` (past the end: `R_{s+1}`).
    fn step_root(&self, segment: u64, step: u64) -> Hash;
    /// A one-step proof of segment `s` from the state after `step` steps.
    fn step_proof(&self, segment: u64, step: u64) -> Vec<u8>;
}

/// The worker's Merkle tree over `R_0..=R_segments` of its trace.
pub fn commit<T: Trace>(trace: &T, segments: u64) -> MerkleTree {
    let roots: Vec<Hash> = (0..=segments).map(|i| trace.boundary_root(i)).collect();
    MerkleTree::new(&roots)
}

/// A claim over `segments` segments of `trace` ending as `final_status` says, with its submission evidence and
/// the tree to open it later.
#[allow(clippy::too_many_arguments)]
pub fn make_claim<T: Trace>(
    trace: &T,
    program: Hash,
    input_root: Hash,
    output_hash: Hash,
    final_status: FinalStatus,
    segments: u64,
    final_opening: Vec<u8>,
) -> (Claim, ClaimEvidence, MerkleTree) {
    let tree = commit(trace, segments);
    let claim = Claim {
        program,
        input_root,
        output_hash,
        final_status,
        final_root: trace.boundary_root(segments),
        segments,
        segments_root: tree.root(),
    };
    let evidence = ClaimEvidence {
        initial_proof: tree.proof(0).unwrap_or_default(),
        final_proof: tree.proof(segments).unwrap_or_default(),
        final_opening,
    };
    (claim, evidence, tree)
}

/// Whether an honest watcher with `trace` should dispute `claim`: its final root differs from the trace's.
///
/// (The final root binds the output through its opening, and `R_0` is checked at submission, so a differing
/// final root is exactly a wrong result. A claim with a right result but wrong interior roots is left alone.)
pub fn should_challenge<T: Trace>(claim: &Claim, trace: &T) -> bool {
    claim.final_root != trace.boundary_root(claim.segments)
}

/// The honest worker's next move in `dispute`, or `None` if it is not the worker's turn.
pub fn worker_move<T: Trace>(dispute: &Dispute, config: &GameConfig, trace: &T, tree: &MerkleTree) -> Option<Move> {
    let (role, kind) = dispute.expected()?;
    if role != Role::Worker {
        return None;
    }
    let points = dispute.points_to_post(config.arity);
    Some(match (&dispute.phase, kind) {
        (Phase::Segments(_), MoveKind::PostRoots) => Move::PostRoots {
            roots: points.iter().map(|&p| trace.boundary_root(p)).collect(),
            proofs: points.iter().map(|&p| tree.proof(p).unwrap_or_default()).collect(),
        },
        (Phase::Steps { segment, .. }, MoveKind::PostRoots) => Move::PostRoots {
            roots: points.iter().map(|&p| trace.step_root(*segment, p)).collect(),
            proofs: Vec::new(),
        },
        (Phase::CommitSteps { segment, .. }, _) => {
            let steps = trace.step_count(*segment);
            Move::CommitSteps { steps, fixpoint_proof: trace.step_proof(*segment, steps) }
        }
        _ => return None,
    })
}

/// The honest challenger's next move in `dispute`, or `None` if it is not the challenger's turn.
///
/// It picks the first sub-interval whose upper root differs from its own; since it agrees with the lower end
/// of the whole interval and disagrees with the upper end, that sub-interval's lower root is one it agrees with.
pub fn challenger_move<T: Trace>(dispute: &Dispute, config: &GameConfig, trace: &T) -> Option<Move> {
    let (role, _) = dispute.expected()?;
    if role != Role::Challenger {
        return None;
    }
    let k = config.arity;
    Some(match &dispute.phase {
        Phase::Segments(b) => Move::Choose { index: first_disagreement(b, k, |i| trace.boundary_root(i)) },
        Phase::Steps { segment, bisection, .. } => {
            Move::Choose { index: first_disagreement(bisection, k, |i| trace.step_root(*segment, i)) }
        }
        Phase::ProveStep { segment, step, .. } => Move::ProveStep { proof: trace.step_proof(*segment, *step) },
        Phase::CommitSteps { .. } => return None,
    })
}

/// Index of the first sub-interval whose upper root (posted, or the interval's upper root) differs from `own`;
/// the last one if none does.
fn first_disagreement(b: &crate::bisection::Bisection, arity: u8, own: impl Fn(u64) -> Hash) -> u32 {
    let posted = b.posted.as_deref().unwrap_or(&[]);
    let m = split_count(b.len(), arity);
    for i in 0..m {
        let upper = if i + 1 == m { b.hi_root } else { posted.get(i as usize).copied().unwrap_or(b.hi_root) };
        if upper != own(split_point(b.lo, b.hi, arity, i + 1)) {
            return i as u32;
        }
    }
    (m - 1) as u32
}
