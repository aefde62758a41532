//! The chess clock of one dispute: each party has a budget; only the party to move has its clock running.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::party::Role;

/// Both parties' remaining time and when the current turn started, in nanoseconds.
///
/// The mover's deadline is `since_ns + remaining(mover)`: a move at `now <= deadline` is on time and is charged
/// `now - since_ns`; `timeout` succeeds only at `now > deadline`. The two conditions never overlap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub struct Clock {
    /// The worker's remaining budget.
    pub worker_ns: u64,
    /// The challenger's remaining budget.
    pub challenger_ns: u64,
    /// When the current turn started (the last accepted move, or the dispute's opening).
    pub since_ns: u64,
}

impl Clock {
    /// Both parties with `budget_ns`, the first turn starting at `now_ns`.
    pub fn new(budget_ns: u64, now_ns: u64) -> Clock {
        Clock { worker_ns: budget_ns, challenger_ns: budget_ns, since_ns: now_ns }
    }

    /// The remaining budget of `role` as of the start of the current turn.
    pub fn remaining(&self, role: Role) -> u64 {
        match role {
            Role::Worker => self.worker_ns,
            Role::Challenger => self.challenger_ns,
        }
    }

    /// When `mover`'s clock runs out if it does not move.
    pub fn deadline(&self, mover: Role) -> u64 {
        self.since_ns.saturating_add(self.remaining(mover))
    }

    /// The clock after `mover` moves at `now_ns`: its budget is charged the elapsed time and the other's turn
    /// starts. Errors if time went backwards or the mover's clock already ran out.
    pub fn charge(&self, mover: Role, now_ns: u64) -> Result<Clock, Error> {
        if now_ns < self.since_ns {
            return Err(Error::TimeWentBackwards { now_ns, last_ns: self.since_ns });
        }
        let deadline = self.deadline(mover);
        if now_ns > deadline {
            return Err(Error::MoveTooLate { deadline_ns: deadline });
        }
        let used = now_ns - self.since_ns;
        let mut next = self.clone();
        match mover {
            Role::Worker => next.worker_ns -= used,
            Role::Challenger => next.challenger_ns -= used,
        }
        next.since_ns = now_ns;
        Ok(next)
    }

    /// Ok if `mover`'s clock has run out at `now_ns` (so it loses), else the error naming its deadline.
    pub fn check_expired(&self, mover: Role, now_ns: u64) -> Result<(), Error> {
        let deadline = self.deadline(mover);
        if now_ns > deadline { Ok(()) } else { Err(Error::NotTimedOut { deadline_ns: deadline }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charge_and_expire_partition_time() {
        let c = Clock::new(100, 1_000);
        assert_eq!(c.deadline(Role::Worker), 1_100);
        let c2 = c.charge(Role::Worker, 1_100).unwrap();
        assert_eq!((c2.worker_ns, c2.challenger_ns, c2.since_ns), (0, 100, 1_100));
        assert_eq!(c.charge(Role::Worker, 1_101), Err(Error::MoveTooLate { deadline_ns: 1_100 }));
        assert_eq!(c.check_expired(Role::Worker, 1_100), Err(Error::NotTimedOut { deadline_ns: 1_100 }));
        assert_eq!(c.check_expired(Role::Worker, 1_101), Ok(()));
        assert!(matches!(c.charge(Role::Worker, 999), Err(Error::TimeWentBackwards { .. })));
        // The other party's clock did not run while the worker was thinking.
        assert_eq!(c2.deadline(Role::Challenger), 1_200);
        let sat = Clock::new(u64::MAX, u64::MAX - 1);
        assert_eq!(sat.deadline(Role::Challenger), u64::MAX);
    }
}
