//! One 1-vs-1 dispute: the two-phase bisection state machine, its turns and its clock.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::bisection::Bisection;
use crate::claim::Claim;
use crate::clock::Clock;
use crate::config::GameConfig;
use crate::error::Error;
use crate::hash::Hash;
use crate::moves::{Move, MoveKind};
use crate::outcome::{Outcome, Reason, Resolution};
use crate::party::{Party, Role};
use crate::verifier::StepVerifier;

/// What a dispute's moves are checked against: the claim, its configuration and the VM's verifier.
pub struct Context<'a, V> {
    /// The disputed claim.
    pub claim: &'a Claim,
    /// The configuration the claim was submitted under.
    pub config: &'a GameConfig,
    /// The VM's one-step verifier.
    pub verifier: &'a V,
}

/// Where a dispute stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub enum Phase {
    /// Bisection over segment boundaries `0..=N` (roots opened against `segments_root`).
    Segments(Bisection),
    /// The disputed segment is found; the worker must commit its step count and prove `post` is a boundary state.
    CommitSteps {
        /// The disputed segment `s`.
        segment: u64,
        /// Agreed `R_s`.
        pre: Hash,
        /// Disputed `R_{s+1}`.
        post: Hash,
    },
    /// Bisection over the steps `0..=n` of segment `s`; root(0) = `R_s`, root(n) = `R_{s+1}`.
    Steps {
        /// The disputed segment `s`.
        segment: u64,
        /// The worker's committed step count `n`.
        steps: u64,
        /// The instruction-level bisection.
        bisection: Bisection,
    },
    /// One step `[j, j+1]` is left; the challenger must prove it from the agreed root(j).
    ProveStep {
        /// The disputed segment `s`.
        segment: u64,
        /// The step index `j`.
        step: u64,
        /// Agreed root(j).
        pre: Hash,
        /// The worker's root(j+1).
        post: Hash,
    },
}

/// One challenger's dispute against a claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub struct Dispute {
    /// Who opened it.
    pub challenger: Party,
    /// The bond the challenger locked.
    pub bond: u64,
    /// When it was opened.
    pub opened_at_ns: u64,
    /// Sequence number the next move must carry (= moves accepted so far).
    pub seq: u64,
    /// The chess clock.
    pub clock: Clock,
    /// The current phase (the last one, once resolved).
    pub phase: Phase,
    /// Completed rounds (challenger choices) in the segment phase.
    pub segment_rounds: u32,
    /// Completed rounds (challenger choices) in the step phase.
    pub step_rounds: u32,
    /// Set once the dispute is over.
    pub resolution: Option<Resolution>,
}

impl Dispute {
    /// A new dispute on `claim` (whose `R_0` is `initial_root`), the worker to move first at `now_ns`.
    pub fn open(
        claim: &Claim,
        config: &GameConfig,
        initial_root: Hash,
        challenger: Party,
        bond: u64,
        now_ns: u64,
    ) -> Dispute {
        let whole = Bisection::new(0, claim.segments, initial_root, claim.final_root);
        Dispute {
            challenger,
            bond,
            opened_at_ns: now_ns,
            seq: 0,
            clock: Clock::new(config.clock_ns, now_ns),
            phase: after_segment_round(whole),
            segment_rounds: 0,
            step_rounds: 0,
            resolution: None,
        }
    }

    /// Whether the dispute is still being played.
    pub fn is_active(&self) -> bool {
        self.resolution.is_none()
    }

    /// The kind of move the game expects next and who must make it (`None` once resolved).
    pub fn expected(&self) -> Option<(Role, MoveKind)> {
        if !self.is_active() {
            return None;
        }
        Some(match &self.phase {
            Phase::Segments(b) | Phase::Steps { bisection: b, .. } => match b.posted {
                None => (Role::Worker, MoveKind::PostRoots),
                Some(_) => (Role::Challenger, MoveKind::Choose),
            },
            Phase::CommitSteps { .. } => (Role::Worker, MoveKind::CommitSteps),
            Phase::ProveStep { .. } => (Role::Challenger, MoveKind::ProveStep),
        })
    }

    /// Who is to move (`None` once resolved).
    pub fn mover(&self) -> Option<Role> {
        self.expected().map(|(r, _)| r)
    }

    /// When the mover's clock runs out (`None` once resolved).
    pub fn deadline(&self) -> Option<u64> {
        self.mover().map(|m| self.clock.deadline(m))
    }

    /// The indices whose roots the worker must post now (empty unless a `PostRoots` is expected).
    pub fn points_to_post(&self, arity: u8) -> Vec<u64> {
        match (&self.phase, self.expected()) {
            (Phase::Segments(b) | Phase::Steps { bisection: b, .. }, Some((_, MoveKind::PostRoots))) => b.points(arity),
            _ => Vec::new(),
        }
    }

    /// Applies `mv` by `role` with sequence number `seq` at `now_ns`; returns the new dispute (resolved if the
    /// move was the final proof). On any error the dispute is unchanged (this takes `&self`).
    pub fn apply<V: StepVerifier>(
        &self,
        ctx: &Context<'_, V>,
        role: Role,
        seq: u64,
        mv: &Move,
        now_ns: u64,
    ) -> Result<Dispute, Error> {
        let Context { claim, config, verifier } = *ctx;
        let (mover, expected) = self.expected().ok_or(Error::DisputeOver)?;
        if role != mover {
            return Err(Error::NotYourTurn { mover });
        }
        if seq != self.seq {
            return Err(Error::StaleMove { expected: self.seq, got: seq });
        }
        let clock = self.clock.charge(mover, now_ns)?;
        if mv.kind() != expected {
            return Err(Error::WrongMove { expected, got: mv.kind() });
        }
        let k = config.arity;
        let mut next = self.clone();
        match (&self.phase, mv) {
            (Phase::Segments(b), Move::PostRoots { roots, proofs }) => {
                let posted = b.with_posted(k, roots)?;
                if proofs.len() != roots.len() {
                    return Err(Error::WrongProofCount { expected: roots.len() as u32, got: proofs.len() as u32 });
                }
                for ((index, root), proof) in b.points(k).into_iter().zip(roots).zip(proofs) {
                    claim.check_boundary(index, root, proof)?;
                }
                next.phase = Phase::Segments(posted);
            }
            (Phase::Steps { segment, steps, bisection }, Move::PostRoots { roots, proofs }) => {
                let posted = bisection.with_posted(k, roots)?;
                if !proofs.is_empty() {
                    return Err(Error::WrongProofCount { expected: 0, got: proofs.len() as u32 });
                }
                next.phase = Phase::Steps { segment: *segment, steps: *steps, bisection: posted };
            }
            (Phase::Segments(b), Move::Choose { index }) => {
                next.phase = after_segment_round(b.choose(k, *index)?);
                next.segment_rounds += 1;
            }
            (Phase::Steps { segment, steps, bisection }, Move::Choose { index }) => {
                next.phase = after_step_round(*segment, *steps, bisection.choose(k, *index)?);
                next.step_rounds += 1;
            }
            (Phase::CommitSteps { segment, pre, post }, Move::CommitSteps { steps, fixpoint_proof }) => {
                if *steps == 0 || *steps > config.max_segment_steps {
                    return Err(Error::StepCountOutOfRange { steps: *steps, max: config.max_segment_steps });
                }
                let stepped = verifier
                    .verify_step(&claim.program, *segment, post, fixpoint_proof)
                    .map_err(Error::StepProofRejected)?;
                if stepped != *post {
                    return Err(Error::BoundaryNotFixedPoint);
                }
                next.phase = after_step_round(*segment, *steps, Bisection::new(0, *steps, *pre, *post));
            }
            (Phase::ProveStep { segment, pre, post, .. }, Move::ProveStep { proof }) => {
                let stepped =
                    verifier.verify_step(&claim.program, *segment, pre, proof).map_err(Error::StepProofRejected)?;
                let outcome = if stepped != *post {
                    Outcome::ChallengerWon(Reason::StepProof)
                } else {
                    Outcome::WorkerWon(Reason::StepProof)
                };
                next.resolution = Some(Resolution { outcome, at_ns: now_ns });
            }
            // `expected()` pairs every phase with exactly one move kind, checked above.
            _ => return Err(Error::WrongMove { expected, got: mv.kind() }),
        }
        next.clock = clock;
        next.seq += 1;
        Ok(next)
    }

    /// Ends the dispute at `now_ns` against the mover, if the mover's clock has run out.
    pub fn timeout(&self, now_ns: u64) -> Result<Dispute, Error> {
        let mover = self.mover().ok_or(Error::DisputeOver)?;
        self.clock.check_expired(mover, now_ns)?;
        let mut next = self.clone();
        next.resolution = Some(Resolution { outcome: Outcome::won_by(mover.other(), Reason::Timeout), at_ns: now_ns });
        Ok(next)
    }

    /// The dispute closed without a winner at `now_ns` (another dispute invalidated the claim).
    pub fn cancelled(&self, now_ns: u64) -> Dispute {
        let mut next = self.clone();
        next.resolution = Some(Resolution { outcome: Outcome::Cancelled, at_ns: now_ns });
        next
    }
}

/// The phase after a segment-phase round produced `b`: keep bisecting, or move to the step count once one
/// segment `[s, s+1]` is left.
fn after_segment_round(b: Bisection) -> Phase {
    if b.len() == 1 {
        Phase::CommitSteps { segment: b.lo, pre: b.lo_root, post: b.hi_root }
    } else {
        Phase::Segments(b)
    }
}

/// The phase after a step-phase round (or the step count) produced `b`: keep bisecting, or ask for the proof.
fn after_step_round(segment: u64, steps: u64, b: Bisection) -> Phase {
    if b.len() == 1 {
        Phase::ProveStep { segment, step: b.lo, pre: b.lo_root, post: b.hi_root }
    } else {
        Phase::Steps { segment, steps, bisection: b }
    }
}
