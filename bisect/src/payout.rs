//! The ledger effects of the game: what the canister must move between balances after a transition.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::config::BPS;
use crate::party::Party;

/// One balance movement. Applying all effects of a transition in order, atomically with the new state, is the
/// canister's job; the rules guarantee that payouts plus burns never exceed what was locked for the claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub enum Effect {
    /// Move `amount` from `from`'s free balance into this claim's escrow (the call fails if it cannot).
    Lock {
        /// Whose balance is debited.
        from: Party,
        /// How much.
        amount: u64,
    },
    /// Pay `amount` out of this claim's escrow to `to`'s free balance.
    Payout {
        /// Who is credited.
        to: Party,
        /// How much.
        amount: u64,
    },
    /// Destroy `amount` of this claim's escrow (burn it or send it to the treasury, never to a party).
    Burn {
        /// How much.
        amount: u64,
    },
}

/// The burnt part of a forfeited `amount`: `floor(amount * bps / 10_000)`.
pub fn burn_share(amount: u64, bps: u16) -> u64 {
    // bps <= 10_000, so the quotient is at most `amount`.
    ((u128::from(amount) * u128::from(bps.min(BPS))) / u128::from(BPS)) as u64
}

/// Appends a payout, skipping zero amounts.
pub(crate) fn pay(effects: &mut Vec<Effect>, to: &Party, amount: u64) {
    if amount > 0 {
        effects.push(Effect::Payout { to: to.clone(), amount });
    }
}

/// Appends a burn, skipping zero amounts.
pub(crate) fn burn(effects: &mut Vec<Effect>, amount: u64) {
    if amount > 0 {
        effects.push(Effect::Burn { amount });
    }
}

/// Appends a lock, skipping zero amounts.
pub(crate) fn lock(effects: &mut Vec<Effect>, from: &Party, amount: u64) {
    if amount > 0 {
        effects.push(Effect::Lock { from: from.clone(), amount });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burn_share_rounds_down_and_never_exceeds() {
        assert_eq!(burn_share(1_000, 2_500), 250);
        assert_eq!(burn_share(3, 5_000), 1);
        assert_eq!(burn_share(u64::MAX, 10_000), u64::MAX);
        assert_eq!(burn_share(u64::MAX, 0), 0);
        assert_eq!(burn_share(7, 60_000), 7);
    }
}
