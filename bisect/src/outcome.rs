//! How a dispute ended.

use serde::{Deserialize, Serialize};

use crate::party::Role;

/// What decided a won dispute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub enum Reason {
    /// The challenger's one-step proof: its post root differed from the worker's (challenger wins) or matched it
    /// (worker wins).
    StepProof,
    /// The loser's clock ran out and someone called `timeout`.
    Timeout,
}

/// The end of one dispute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub enum Outcome {
    /// The claim survived this dispute; the challenger's bond is forfeited.
    WorkerWon(Reason),
    /// The claim is invalid; the worker's stake is forfeited.
    ChallengerWon(Reason),
    /// Another challenger invalidated the claim first; this bond was refunded.
    Cancelled,
}

impl Outcome {
    /// The winner, if any.
    pub fn winner(&self) -> Option<Role> {
        match self {
            Outcome::WorkerWon(_) => Some(Role::Worker),
            Outcome::ChallengerWon(_) => Some(Role::Challenger),
            Outcome::Cancelled => None,
        }
    }

    /// The outcome in which `winner` wins for `reason`.
    pub fn won_by(winner: Role, reason: Reason) -> Outcome {
        match winner {
            Role::Worker => Outcome::WorkerWon(reason),
            Role::Challenger => Outcome::ChallengerWon(reason),
        }
    }
}

/// An outcome and when it was reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub struct Resolution {
    /// How the dispute ended.
    pub outcome: Outcome,
    /// The time of the call that ended it.
    pub at_ns: u64,
}
