//! A submitted claim with its disputes: the public transitions (`submit`, `open_dispute`, `play`, `timeout`,
//! `finalize`) and the effects each one has on balances.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::claim::{Claim, ClaimEvidence};
use crate::config::GameConfig;
use crate::dispute::{Context, Dispute};
use crate::error::Error;
use crate::hash::Hash;
use crate::moves::Move;
use crate::outcome::Outcome;
use crate::party::{Party, Role};
use crate::payout::{Effect, burn, burn_share, lock, pay};
use crate::verifier::StepVerifier;

/// Index of a dispute within its claim (`disputes[id]`).
pub type DisputeId = u32;

/// Lifecycle of a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub enum ClaimStatus {
    /// Within its window, or with disputes still open.
    Pending,
    /// Window passed and every dispute went the worker's way; the stake was returned.
    Final {
        /// When `finalize` was called.
        at_ns: u64,
    },
    /// A challenger won; the stake was forfeited.
    Invalidated {
        /// The dispute that won.
        by: DisputeId,
        /// When.
        at_ns: u64,
    },
}

/// A claim under the game: the claim, its worker, its configuration snapshot and its disputes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub struct ClaimState {
    /// The claim.
    pub claim: Claim,
    /// Who submitted it and defends it.
    pub worker: Party,
    /// Rules it is played under (copied at submission).
    pub config: GameConfig,
    /// `R_0`, checked at submission.
    pub initial_root: Hash,
    /// When it was submitted.
    pub submitted_at_ns: u64,
    /// The worker's locked stake.
    pub stake: u64,
    /// Lifecycle status.
    pub status: ClaimStatus,
    /// All disputes ever opened, by id.
    pub disputes: Vec<Dispute>,
}

/// The result of a successful transition: the new state and the balance effects to apply with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub struct Transition {
    /// The new claim state.
    pub state: ClaimState,
    /// Balance movements, in order.
    pub effects: Vec<Effect>,
}

impl ClaimState {
    /// Submits `claim` by `worker` at `now_ns` after validating it (see [`Claim::validate`]); locks the stake.
    pub fn submit<V: StepVerifier>(
        config: &GameConfig,
        worker: Party,
        claim: Claim,
        evidence: &ClaimEvidence,
        verifier: &V,
        now_ns: u64,
    ) -> Result<Transition, Error> {
        let initial_root = claim.validate(config, evidence, verifier)?;
        let mut effects = Vec::new();
        lock(&mut effects, &worker, config.worker_stake);
        let state = ClaimState {
            claim,
            worker,
            config: config.clone(),
            initial_root,
            submitted_at_ns: now_ns,
            stake: config.worker_stake,
            status: ClaimStatus::Pending,
            disputes: Vec::new(),
        };
        Ok(Transition { state, effects })
    }

    /// The last instant at which a dispute can be opened.
    pub fn window_end_ns(&self) -> u64 {
        self.submitted_at_ns.saturating_add(self.config.challenge_window_ns)
    }

    /// The dispute with id `id`.
    pub fn dispute(&self, id: DisputeId) -> Result<&Dispute, Error> {
        self.disputes.get(id as usize).ok_or(Error::UnknownDispute { dispute: id })
    }

    /// Number of disputes still being played.
    pub fn open_disputes(&self) -> u32 {
        self.disputes.iter().filter(|d| d.is_active()).count() as u32
    }

    /// Everything ever locked for this claim: the stake plus every bond (for conservation checks).
    pub fn total_locked(&self) -> u128 {
        u128::from(self.stake) + self.disputes.iter().map(|d| u128::from(d.bond)).sum::<u128>()
    }

    /// Opens a dispute by `challenger` at `now_ns` (within the window, claim pending); locks the bond.
    pub fn open_dispute(&self, challenger: Party, now_ns: u64) -> Result<(Transition, DisputeId), Error> {
        if self.status != ClaimStatus::Pending {
            return Err(Error::ClaimNotPending);
        }
        if now_ns < self.submitted_at_ns {
            return Err(Error::TimeWentBackwards { now_ns, last_ns: self.submitted_at_ns });
        }
        if now_ns > self.window_end_ns() {
            return Err(Error::ChallengeWindowClosed { ends_at_ns: self.window_end_ns() });
        }
        if challenger == self.worker {
            return Err(Error::SelfChallenge);
        }
        if let Some(id) = self.disputes.iter().position(|d| d.is_active() && d.challenger == challenger) {
            return Err(Error::AlreadyDisputing { dispute: id as u32 });
        }
        let id = DisputeId::try_from(self.disputes.len()).map_err(|_| Error::TooManyDisputes)?;
        let bond = self.config.challenger_bond;
        let dispute = Dispute::open(&self.claim, &self.config, self.initial_root, challenger.clone(), bond, now_ns);
        let mut state = self.clone();
        state.disputes.push(dispute);
        let mut effects = Vec::new();
        lock(&mut effects, &challenger, bond);
        Ok((Transition { state, effects }, id))
    }

    /// `caller` plays `mv` (with sequence number `seq`) in dispute `id` at `now_ns`.
    pub fn play<V: StepVerifier>(
        &self,
        id: DisputeId,
        caller: &Party,
        seq: u64,
        mv: &Move,
        verifier: &V,
        now_ns: u64,
    ) -> Result<Transition, Error> {
        let dispute = self.dispute(id)?;
        if !dispute.is_active() {
            return Err(Error::DisputeOver);
        }
        let role = if *caller == self.worker {
            Role::Worker
        } else if *caller == dispute.challenger {
            Role::Challenger
        } else {
            return Err(Error::NotAParty);
        };
        let ctx = Context { claim: &self.claim, config: &self.config, verifier };
        let next = dispute.apply(&ctx, role, seq, mv, now_ns)?;
        Ok(self.with_dispute(id, next, now_ns))
    }

    /// Anyone: ends dispute `id` against its mover if the mover's clock has run out at `now_ns`.
    pub fn timeout(&self, id: DisputeId, now_ns: u64) -> Result<Transition, Error> {
        let next = self.dispute(id)?.timeout(now_ns)?;
        Ok(self.with_dispute(id, next, now_ns))
    }

    /// Anyone: makes the claim final once its window has passed and no dispute is open; returns the stake.
    pub fn finalize(&self, now_ns: u64) -> Result<Transition, Error> {
        if self.status != ClaimStatus::Pending {
            return Err(Error::ClaimNotPending);
        }
        if now_ns <= self.window_end_ns() {
            return Err(Error::ChallengeWindowOpen { ends_at_ns: self.window_end_ns() });
        }
        let open = self.open_disputes();
        if open > 0 {
            return Err(Error::DisputesOpen { count: open });
        }
        let mut state = self.clone();
        state.status = ClaimStatus::Final { at_ns: now_ns };
        let mut effects = Vec::new();
        pay(&mut effects, &self.worker, self.stake);
        Ok(Transition { state, effects })
    }

    /// Stores the updated dispute `id` and, if it just ended, settles it.
    ///
    /// Worker won: the challenger's bond goes to the worker less the burn share. Challenger won: the challenger
    /// gets its bond back plus the stake less the burn share, the claim is invalidated, and every other open
    /// dispute is cancelled with its bond refunded.
    fn with_dispute(&self, id: DisputeId, next: Dispute, now_ns: u64) -> Transition {
        let mut state = self.clone();
        let mut effects = Vec::new();
        let bps = self.config.burn_bps;
        match next.resolution.map(|r| r.outcome) {
            None | Some(Outcome::Cancelled) => {}
            Some(Outcome::WorkerWon(_)) => {
                let burnt = burn_share(next.bond, bps);
                pay(&mut effects, &self.worker, next.bond - burnt);
                burn(&mut effects, burnt);
            }
            Some(Outcome::ChallengerWon(_)) => {
                let burnt = burn_share(self.stake, bps);
                pay(&mut effects, &next.challenger, next.bond);
                pay(&mut effects, &next.challenger, self.stake - burnt);
                burn(&mut effects, burnt);
                state.status = ClaimStatus::Invalidated { by: id, at_ns: now_ns };
                for (other_id, other) in state.disputes.iter_mut().enumerate() {
                    if other_id != id as usize && other.is_active() {
                        pay(&mut effects, &other.challenger, other.bond);
                        *other = other.cancelled(now_ns);
                    }
                }
            }
        }
        state.disputes[id as usize] = next;
        Transition { state, effects }
    }
}
