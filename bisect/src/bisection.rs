//! One round of n-ary bisection over an index interval: the spacing formula both sides compute, and the round
//! count.
//!
//! For an interval `[lo, hi]` of length `L = hi - lo >= 2` and arity `k`, the round splits it into
//! `m = min(k, L)` sub-intervals at the points `p_i = lo + floor(i * L / m)` for `i = 0..=m`; the worker posts
//! the roots at the `m - 1` interior points `p_1..p_{m-1}` and the challenger picks one sub-interval
//! `[p_i, p_{i+1}]`. Sub-interval lengths are `floor(L / m)` or `ceil(L / m)`, never zero.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::hash::Hash;

/// Number of sub-intervals a round over an interval of length `len` (>= 2) makes: `min(k, len)`.
pub fn split_count(len: u64, arity: u8) -> u64 {
    len.min(u64::from(arity))
}

/// The `i`-th split point (`0 <= i <= m`) of `[lo, hi]`: `lo + floor(i * (hi - lo) / m)`.
pub fn split_point(lo: u64, hi: u64, arity: u8, i: u64) -> u64 {
    let len = hi.saturating_sub(lo);
    let m = split_count(len, arity);
    if m == 0 {
        return lo;
    }
    // i <= m <= 64 and len < 2^64, so the product fits in u128 and the quotient is at most len.
    lo + ((u128::from(i.min(m)) * u128::from(len)) / u128::from(m)) as u64
}

/// The interior split points `p_1..p_{m-1}` of `[lo, hi]` where the worker must post roots (empty if `hi - lo < 2`).
pub fn split_points(lo: u64, hi: u64, arity: u8) -> Vec<u64> {
    if hi.saturating_sub(lo) < 2 {
        return Vec::new();
    }
    let m = split_count(hi - lo, arity);
    (1..m).map(|i| split_point(lo, hi, arity, i)).collect()
}

/// Rounds needed, in the worst case, to bisect an interval of length `n` down to length 1 with arity `k`:
/// the least `d` with `k^d >= n` (0 for `n <= 1`).
///
/// The longest sub-interval of a round has length `ceil(L / min(k, L))`, and the round count is monotone in
/// the length, so the challenger that always picks a longest sub-interval needs exactly this many rounds; any
/// other sequence of choices needs at most this many (and exactly this many whenever `n` is a power of `k`).
pub fn rounds_needed(n: u64, arity: u8) -> u32 {
    let k = u64::from(arity.max(2));
    let mut len = n;
    let mut rounds = 0;
    while len > 1 {
        let m = len.min(k);
        len = len.div_ceil(m);
        rounds += 1;
    }
    rounds
}

/// The state of a bisection over one index space: the agreed lower end, the disputed upper end, and the
/// worker's roots for the current round once posted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "candid", derive(candid::CandidType))]
pub struct Bisection {
    /// Lower index; the challenger has agreed with its root.
    pub lo: u64,
    /// Upper index; the challenger disputes its root.
    pub hi: u64,
    /// The root at `lo`.
    pub lo_root: Hash,
    /// The worker's root at `hi`.
    pub hi_root: Hash,
    /// The worker's roots at [`split_points`]`(lo, hi, k)`, once posted this round (`None`: worker to move).
    pub posted: Option<Vec<Hash>>,
}

impl Bisection {
    /// A fresh round over `[lo, hi]` with the given end roots.
    pub fn new(lo: u64, hi: u64, lo_root: Hash, hi_root: Hash) -> Bisection {
        Bisection { lo, hi, lo_root, hi_root, posted: None }
    }

    /// Length of the interval.
    pub fn len(&self) -> u64 {
        self.hi.saturating_sub(self.lo)
    }

    /// Whether the interval is empty (never, for a bisection built by the game).
    pub fn is_empty(&self) -> bool {
        self.hi == self.lo
    }

    /// The indices whose roots the worker must post this round.
    pub fn points(&self, arity: u8) -> Vec<u64> {
        split_points(self.lo, self.hi, arity)
    }

    /// The worker's post: exactly one root per split point (checked here), nothing posted yet (checked by caller).
    pub fn with_posted(&self, arity: u8, roots: &[Hash]) -> Result<Bisection, Error> {
        let expected = self.points(arity).len();
        if roots.len() != expected {
            return Err(Error::WrongRootCount { expected: expected as u32, got: roots.len() as u32 });
        }
        Ok(Bisection { posted: Some(roots.to_vec()), ..self.clone() })
    }

    /// The challenger's choice of sub-interval `index` (`0..m`), as the next round's interval.
    pub fn choose(&self, arity: u8, index: u32) -> Result<Bisection, Error> {
        let posted = self.posted.as_ref().ok_or(Error::NothingPosted)?;
        let m = split_count(self.len(), arity);
        if u64::from(index) >= m {
            return Err(Error::ChoiceOutOfRange { index, count: m as u32 });
        }
        let i = u64::from(index);
        // Root at split point j: the ends are the interval's, the interior ones the worker's posts.
        let root_at = |j: u64| -> Result<Hash, Error> {
            if j == 0 {
                Ok(self.lo_root)
            } else if j == m {
                Ok(self.hi_root)
            } else {
                posted.get(j as usize - 1).copied().ok_or(Error::NothingPosted)
            }
        };
        Ok(Bisection::new(
            split_point(self.lo, self.hi, arity, i),
            split_point(self.lo, self.hi, arity, i + 1),
            root_at(i)?,
            root_at(i + 1)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points_are_strictly_increasing_and_balanced() {
        for k in [2u8, 3, 4, 7, 8, 16, 64] {
            for len in 2..300u64 {
                let lo = 1000;
                let m = split_count(len, k);
                let pts: Vec<u64> = (0..=m).map(|i| split_point(lo, lo + len, k, i)).collect();
                assert_eq!(pts[0], lo);
                assert_eq!(*pts.last().unwrap(), lo + len);
                for w in pts.windows(2) {
                    let d = w[1] - w[0];
                    assert!(d == len / m || d == len.div_ceil(m), "k={k} len={len} {pts:?}");
                }
                assert_eq!(split_points(lo, lo + len, k), pts[1..pts.len() - 1]);
            }
        }
    }

    #[test]
    fn split_point_does_not_overflow() {
        let p = split_points(0, u64::MAX, 64);
        assert_eq!(p.len(), 63);
        assert!(p.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(split_points(u64::MAX - 1, u64::MAX, 2), Vec::<u64>::new());
    }

    #[test]
    fn rounds_needed_matches_powers() {
        assert_eq!(rounds_needed(1, 2), 0);
        assert_eq!(rounds_needed(2, 2), 1);
        assert_eq!(rounds_needed(5, 2), 3);
        assert_eq!(rounds_needed(8, 2), 3);
        assert_eq!(rounds_needed(9, 2), 4);
        assert_eq!(rounds_needed(64, 64), 1);
        assert_eq!(rounds_needed(65, 64), 2);
        assert_eq!(rounds_needed(u64::MAX, 2), 64);
        assert_eq!(rounds_needed(1 << 32, 16), 8);
    }
}
