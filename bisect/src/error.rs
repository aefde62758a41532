//! Typed errors. Every rule violation returns one of these and leaves the state unchanged.

use serde::{Deserialize, Serialize};

use crate::claim::FinalStatus;
use crate::moves::MoveKind;
use crate::party::Role;
use crate::verifier::VerifierError;

/// A configuration field with an out-of-range value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub enum ConfigField {
    /// `max_segments` must be in `1..=2^32`.
    MaxSegments,
    /// `max_segment_steps` must be in `1..=2^48`.
    MaxSegmentSteps,
    /// `clock_ns` must be positive.
    ClockNs,
    /// `challenge_window_ns` must be positive.
    ChallengeWindowNs,
}

/// Everything that can be wrong with a call into the rules.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub enum Error {
    /// The arity `k` is outside `2..=64`.
    #[error("arity {arity} is outside 2..=64")]
    ArityOutOfRange {
        /// The rejected arity.
        arity: u8,
    },
    /// The burn share exceeds 10 000 basis points.
    #[error("burn share {bps} bps exceeds 10000")]
    BurnShareOutOfRange {
        /// The rejected share.
        bps: u16,
    },
    /// A configuration field is out of range.
    #[error("configuration field {field:?} is out of range")]
    InvalidConfig {
        /// The offending field.
        field: ConfigField,
    },
    /// A principal is longer than 29 bytes.
    #[error("principal of {len} bytes is longer than 29")]
    PartyTooLong {
        /// Its length.
        len: u32,
    },
    /// A claim must have at least one segment.
    #[error("a claim needs at least one segment")]
    ZeroSegments,
    /// A claim has more segments than the configuration allows.
    #[error("{segments} segments exceed the maximum {max}")]
    TooManySegments {
        /// Claimed segment count.
        segments: u64,
        /// Configured maximum.
        max: u64,
    },
    /// The VM could not compute the initial root (unknown program, bad input root...).
    #[error("initial root unavailable: {0}")]
    InitialRootUnavailable(VerifierError),
    /// Leaf 0 of the segment commitment is not the program's initial root.
    #[error("committed R_0 is not the initial root of program and input")]
    InitialRootMismatch,
    /// The final root does not open to a final (halted or trapped) state with the claimed output.
    #[error("final root opening rejected: {0}")]
    FinalOpeningRejected(VerifierError),
    /// The final root opens to another final status than the claim states.
    #[error("the claim says the run {claimed}, but its final state is {opened}")]
    FinalStatusMismatch {
        /// What the claim states.
        claimed: FinalStatus,
        /// What the final root's opening shows.
        opened: FinalStatus,
    },
    /// A Merkle proof of a boundary root against `segments_root` failed.
    #[error("Merkle proof of boundary root {index} failed")]
    BoundaryProofInvalid {
        /// The boundary index.
        index: u64,
    },
    /// `now` is earlier than a time the state already recorded.
    #[error("time went backwards: now {now_ns} < {last_ns}")]
    TimeWentBackwards {
        /// The time passed in.
        now_ns: u64,
        /// The latest time already recorded.
        last_ns: u64,
    },
    /// The claim is final or invalidated.
    #[error("the claim is no longer pending")]
    ClaimNotPending,
    /// The challenge window has closed.
    #[error("challenge window closed at {ends_at_ns}")]
    ChallengeWindowClosed {
        /// Last instant at which a dispute could be opened.
        ends_at_ns: u64,
    },
    /// The challenge window is still open.
    #[error("challenge window open until {ends_at_ns}")]
    ChallengeWindowOpen {
        /// Last instant of the window.
        ends_at_ns: u64,
    },
    /// Disputes on the claim are still being played.
    #[error("{count} disputes still open")]
    DisputesOpen {
        /// How many.
        count: u32,
    },
    /// The worker cannot challenge its own claim under the same principal.
    #[error("the worker cannot challenge its own claim")]
    SelfChallenge,
    /// This challenger already has an open dispute on the claim.
    #[error("challenger already plays dispute {dispute}")]
    AlreadyDisputing {
        /// The open dispute.
        dispute: u32,
    },
    /// The claim already has `u32::MAX` disputes.
    #[error("too many disputes on one claim")]
    TooManyDisputes,
    /// No dispute with this id on the claim.
    #[error("unknown dispute {dispute}")]
    UnknownDispute {
        /// The requested id.
        dispute: u32,
    },
    /// The dispute is already resolved.
    #[error("the dispute is over")]
    DisputeOver,
    /// The caller is neither the worker nor this dispute's challenger.
    #[error("caller is not a party to this dispute")]
    NotAParty,
    /// It is the other party's turn.
    #[error("not your turn: {mover:?} to move")]
    NotYourTurn {
        /// Who is to move.
        mover: Role,
    },
    /// The move's sequence number is not the dispute's next one (a replayed or out-of-order move).
    #[error("stale move: expected sequence {expected}, got {got}")]
    StaleMove {
        /// The dispute's next sequence number.
        expected: u64,
        /// The move's.
        got: u64,
    },
    /// The mover's clock ran out before this move; anyone may now call `timeout`.
    #[error("move too late: the mover's clock ran out at {deadline_ns}")]
    MoveTooLate {
        /// When the mover's clock ran out.
        deadline_ns: u64,
    },
    /// `timeout` was called before the mover's clock ran out.
    #[error("the mover still has time until {deadline_ns}")]
    NotTimedOut {
        /// When the mover's clock runs out.
        deadline_ns: u64,
    },
    /// This kind of move is not the one the game expects now (e.g. a proof outside the proof phase).
    #[error("expected a {expected:?} move, got {got:?}")]
    WrongMove {
        /// The kind the game expects.
        expected: MoveKind,
        /// The kind submitted.
        got: MoveKind,
    },
    /// The number of posted roots differs from the number of split points.
    #[error("expected {expected} roots, got {got}")]
    WrongRootCount {
        /// Split points this round.
        expected: u32,
        /// Roots posted.
        got: u32,
    },
    /// The number of Merkle proofs differs from what the phase requires.
    #[error("expected {expected} Merkle proofs, got {got}")]
    WrongProofCount {
        /// Proofs required (one per root in the segment phase, none in the step phase).
        expected: u32,
        /// Proofs given.
        got: u32,
    },
    /// The challenger chose before the worker posted (cannot happen through the turn rules; kept total).
    #[error("nothing posted to choose from")]
    NothingPosted,
    /// The chosen sub-interval does not exist.
    #[error("sub-interval {index} out of range 0..{count}")]
    ChoiceOutOfRange {
        /// The chosen index.
        index: u32,
        /// Sub-intervals this round.
        count: u32,
    },
    /// The committed step count is zero or above the configured bound.
    #[error("step count {steps} outside 1..={max}")]
    StepCountOutOfRange {
        /// Committed count.
        steps: u64,
        /// Configured bound.
        max: u64,
    },
    /// The VM rejected a one-step proof.
    #[error("step proof rejected: {0}")]
    StepProofRejected(VerifierError),
    /// The disputed boundary root is not a fixed point of its segment's transition (not a boundary state).
    #[error("disputed boundary root is not a fixed point of its segment")]
    BoundaryNotFixedPoint,
}
