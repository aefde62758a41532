//! Game parameters, fixed per claim when the claim is submitted.

use serde::{Deserialize, Serialize};

use crate::bisection::rounds_needed;
use crate::error::{ConfigField, Error};

/// Smallest allowed arity `k` (binary bisection).
pub const MIN_ARITY: u8 = 2;
/// Largest allowed arity `k` (63 roots per move).
pub const MAX_ARITY: u8 = 64;
/// Hard cap on `max_segments` (the segment Merkle tree has at most `2^32 + 1` leaves, depth 33).
pub const SEGMENTS_LIMIT: u64 = 1 << 32;
/// Hard cap on `max_segment_steps` (segments are meant to be at most ~10^9 instructions).
pub const SEGMENT_STEPS_LIMIT: u64 = 1 << 48;
/// Basis-point denominator: `burn_bps = 10_000` burns the whole forfeited amount.
pub const BPS: u16 = 10_000;

/// Parameters of the game; a claim keeps the copy it was submitted under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub struct GameConfig {
    /// Bisection arity `k` (2..=64): each round the worker posts up to `k - 1` roots.
    pub arity: u8,
    /// Largest segment count `N` a claim may have (1..=2^32).
    pub max_segments: u64,
    /// Largest step count `n` the worker may commit for one segment (1..=2^48).
    pub max_segment_steps: u64,
    /// Chess-clock budget of each party in each dispute, in nanoseconds.
    pub clock_ns: u64,
    /// How long after submission disputes may be opened, in nanoseconds.
    pub challenge_window_ns: u64,
    /// Stake the worker locks with each claim.
    pub worker_stake: u64,
    /// Bond each challenger locks with each dispute.
    pub challenger_bond: u64,
    /// Share of a loser's forfeited stake or bond that is burnt, in basis points (0..=10_000).
    pub burn_bps: u16,
}

impl GameConfig {
    /// Checks every parameter's range.
    pub fn validate(&self) -> Result<(), Error> {
        if !(MIN_ARITY..=MAX_ARITY).contains(&self.arity) {
            return Err(Error::ArityOutOfRange { arity: self.arity });
        }
        if !(1..=SEGMENTS_LIMIT).contains(&self.max_segments) {
            return Err(Error::InvalidConfig { field: ConfigField::MaxSegments });
        }
        if !(1..=SEGMENT_STEPS_LIMIT).contains(&self.max_segment_steps) {
            return Err(Error::InvalidConfig { field: ConfigField::MaxSegmentSteps });
        }
        if self.clock_ns == 0 {
            return Err(Error::InvalidConfig { field: ConfigField::ClockNs });
        }
        if self.challenge_window_ns == 0 {
            return Err(Error::InvalidConfig { field: ConfigField::ChallengeWindowNs });
        }
        if self.burn_bps > BPS {
            return Err(Error::BurnShareOutOfRange { bps: self.burn_bps });
        }
        Ok(())
    }

    /// Most moves one party can have to make in a dispute over a claim of `segments` segments.
    ///
    /// Worker: one post per segment round, the step-count commitment, one post per step round. Challenger: one
    /// choice per round of either phase plus the one-step proof. Both come to the same number.
    pub fn max_moves(&self, segments: u64) -> u32 {
        rounds_needed(segments, self.arity) + rounds_needed(self.max_segment_steps, self.arity) + 1
    }
}
