//! Round counts: `rounds_needed(n, k)` is the exact worst case, and real games take exactly that many rounds on
//! the worst path and never more.

mod common;

use common::*;
use opml_bisect::bisection::{split_count, split_point};
use opml_bisect::{Outcome, rounds_needed};

/// Fewest and most rounds over every sequence of choices, by brute force over the split formula.
fn min_max_rounds(len: u64, k: u8, memo: &mut Vec<Option<(u32, u32)>>) -> (u32, u32) {
    if len <= 1 {
        return (0, 0);
    }
    if let Some(r) = memo[len as usize] {
        return r;
    }
    let m = split_count(len, k);
    let (mut lo, mut hi) = (u32::MAX, 0);
    for i in 0..m {
        let sub = split_point(0, len, k, i + 1) - split_point(0, len, k, i);
        let (a, b) = min_max_rounds(sub, k, memo);
        lo = lo.min(a + 1);
        hi = hi.max(b + 1);
    }
    memo[len as usize] = Some((lo, hi));
    (lo, hi)
}

#[test]
fn rounds_needed_is_the_exact_worst_case() {
    for k in ARITIES {
        let mut memo = vec![None; 5_000];
        for len in 1..5_000u64 {
            let (lo, hi) = min_max_rounds(len, k, &mut memo);
            assert_eq!(hi, rounds_needed(len, k), "k={k} len={len}");
            // The least d with k^d >= len.
            let d = (0..=64u32).find(|&d| u128::from(k).pow(d) >= u128::from(len)).unwrap();
            assert_eq!(hi, d);
            // Every path is within one round of the worst, and exact when len is a power of k.
            assert!(lo + 1 >= hi);
            if u128::from(k).pow(d) == u128::from(len) {
                assert_eq!(lo, hi, "k={k} len={len}");
            }
        }
    }
}

#[test]
fn step_phase_takes_exactly_rounds_needed_on_the_worst_path() {
    for k in ARITIES {
        for n in 1..=300u64 {
            let s = setup(&[n]);
            let cfg = config(k);
            let (state, tree, _) = submit(&s.vm, &cfg, &Lies::of(s.honest.clone()), 1);
            let (state, id, _) = open(&state, 2);
            let mut w = HonestWorker { run: s.honest.clone(), tree };
            let mut c = LyingChallenger { lie: ChallengerLie::Longest, truth: s.honest.clone() };
            let p = drive(state, id, &mut w, &mut c, &s.vm, T0 + TICK);
            let d = p.state.dispute(id).unwrap();
            assert!(matches!(p.outcome(id), Outcome::WorkerWon(_)));
            assert_eq!(d.segment_rounds, 0);
            assert_eq!(d.step_rounds, rounds_needed(n, k), "k={k} n={n}");
            // Moves: a post and a choice per round, the step count, the proof.
            assert_eq!(d.seq, 2 * u64::from(d.step_rounds) + 2);
        }
    }
}

#[test]
fn segment_phase_takes_exactly_rounds_needed_on_the_worst_path() {
    for k in ARITIES {
        for n in 1..=200u64 {
            let s = setup(&vec![1; n as usize]);
            let cfg = config(k);
            let (state, tree, _) = submit(&s.vm, &cfg, &Lies::of(s.honest.clone()), n);
            let (state, id, _) = open(&state, 2);
            let mut w = HonestWorker { run: s.honest.clone(), tree };
            let mut c = LyingChallenger { lie: ChallengerLie::Longest, truth: s.honest.clone() };
            let p = drive(state, id, &mut w, &mut c, &s.vm, T0 + TICK);
            let d = p.state.dispute(id).unwrap();
            assert_eq!(d.segment_rounds, rounds_needed(n, k), "k={k} n={n}");
            assert_eq!(d.step_rounds, 0);
            assert_eq!(d.seq, 2 * u64::from(d.segment_rounds) + 2);
        }
    }
}

#[test]
fn honest_challenger_games_stay_within_rounds_needed_and_reach_it() {
    for k in [2u8, 3, 4, 8] {
        for n in [1u64, 2, 5, 9, 17, 31, 64, 65, 100] {
            let s = setup(&[n]);
            let cfg = config(k);
            let mut worst = 0;
            for j in 0..n {
                let lies = Lies::of(s.honest.with_fault(0, j));
                let (state, tree, _) = submit(&s.vm, &cfg, &lies, 1);
                let (state, id, _) = open(&state, 2);
                let mut w = LyingWorker::new(lies, tree);
                let mut c = HonestChallenger { run: s.honest.clone() };
                let p = drive(state, id, &mut w, &mut c, &s.vm, T0 + TICK);
                let d = p.state.dispute(id).unwrap();
                assert!(matches!(p.outcome(id), Outcome::ChallengerWon(_)));
                // The game ends exactly at the faulty step.
                assert!(matches!(d.phase, opml_bisect::Phase::ProveStep { step, .. } if step == j));
                assert!(d.step_rounds <= rounds_needed(n, k));
                worst = worst.max(d.step_rounds);
            }
            assert_eq!(worst, rounds_needed(n, k), "k={k} n={n}");
        }
    }
}
