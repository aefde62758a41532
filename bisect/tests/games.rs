//! Full games on the toy VM: the honest side always wins, whatever the other side does, for every arity.

mod common;

use common::*;
use opml_bisect::agent::{self, Trace};
use opml_bisect::toy::ToyRun;
use opml_bisect::{
    ClaimState, ClaimStatus, Effect, Error, FinalStatus, Hash, MerkleTree, Outcome, Reason, burn_share, rounds_needed,
};

/// Programs (segment lengths) every scenario runs on.
fn programs() -> Vec<Vec<u64>> {
    let mut rng = Rng(7);
    vec![
        vec![1],
        vec![7],
        vec![2, 1],
        vec![3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5],
        (0..40).map(|_| 1 + rng.below(70)).collect(),
    ]
}

/// Fault positions to try in a program: first and last step of the first, a middle and the last segment.
fn faults(lengths: &[u64]) -> Vec<(u64, u64)> {
    let n = lengths.len() as u64;
    let mut out = Vec::new();
    for s in [0, n / 2, n - 1] {
        let len = lengths[s as usize];
        for j in [0, len / 2, len - 1] {
            if !out.contains(&(s, j)) {
                out.push((s, j));
            }
        }
    }
    out
}

/// Checks the payouts of a dispute the challenger won, alone on its claim.
fn assert_challenger_paid(p: &Played, challenger: &opml_bisect::Party) {
    let burnt = burn_share(STAKE, BURN_BPS);
    assert_eq!(paid_to(&p.effects, challenger), u128::from(BOND + STAKE - burnt));
    assert_eq!(paid_to(&p.effects, &worker_party()), 0);
    assert!(matches!(p.state.status, ClaimStatus::Invalidated { by: 0, .. }));
    let (_, paid, burn) = flows(&p.effects);
    assert_eq!(paid + burn, u128::from(STAKE + BOND));
    assert!(p.state.finalize(u64::MAX).is_err());
}

/// Checks the payouts of a dispute the worker won, then finalizes the claim.
fn assert_worker_paid_and_final(p: &Played) {
    let burnt = burn_share(BOND, BURN_BPS);
    assert_eq!(paid_to(&p.effects, &worker_party()), u128::from(BOND - burnt));
    assert_eq!(p.state.status, ClaimStatus::Pending);
    let end = p.state.window_end_ns();
    assert_eq!(p.state.finalize(end), Err(Error::ChallengeWindowOpen { ends_at_ns: end }));
    let t = p.state.finalize(end + 1).unwrap();
    assert_eq!(t.effects, vec![Effect::Payout { to: worker_party(), amount: STAKE }]);
    assert!(matches!(t.state.status, ClaimStatus::Final { .. }));
}

/// Lying worker (built by `make`) against the honest challenger, on every program, fault and arity; returns the
/// played games for scenario-specific checks.
fn lying_worker_loses(
    name: &str,
    make: impl Fn(&[u64], &ToyRun, (u64, u64)) -> Option<(Lies, i64, bool)>,
) -> Vec<Played> {
    let mut games = Vec::new();
    for lengths in programs() {
        let s = setup(&lengths);
        for fault in faults(&lengths) {
            let Some((lies, step_delta, inconsistent)) = make(&lengths, &s.honest, fault) else { continue };
            for k in ARITIES {
                let cfg = config(k);
                let n = lies.run.segments();
                let (state, tree, _) = submit(&s.vm, &cfg, &lies, n);
                assert!(agent::should_challenge(&state.claim, &s.honest), "{name}: honest watcher must dispute");
                let (state, id, _) = open(&state, 2);
                let mut w = LyingWorker::new(lies.clone(), tree);
                w.step_delta = step_delta;
                if inconsistent {
                    let mut rng = Rng(fault.0 * 31 + fault.1);
                    w.post_overrides = (1..n).map(|i| (i, rng.hash())).collect();
                }
                let mut c = HonestChallenger { run: s.honest.clone() };
                let p = drive(state, id, &mut w, &mut c, &s.vm, T0 + TICK);
                assert!(
                    matches!(p.outcome(id), Outcome::ChallengerWon(_)),
                    "{name}: k={k} lengths={lengths:?} fault={fault:?}: {:?} rejected={:?}",
                    p.outcome(id),
                    p.rejected
                );
                assert_challenger_paid(&p, &party(2));
                let d = p.state.dispute(id).unwrap();
                assert!(d.segment_rounds <= rounds_needed(n, k));
                assert!(d.step_rounds <= rounds_needed(cfg.max_segment_steps, k));
                games.push(p);
            }
        }
    }
    assert!(!games.is_empty(), "{name}: no game played");
    games
}

/// Whether every game ended by the challenger's step proof with no rejected move.
fn all_by_step_proof(games: &[Played]) -> bool {
    games.iter().all(|p| p.outcome(0) == Outcome::ChallengerWon(Reason::StepProof) && p.rejected.is_empty())
}

#[test]
fn honest_vs_honest_never_disputes_and_finalizes() {
    for lengths in programs() {
        let s = setup(&lengths);
        for k in ARITIES {
            let cfg = config(k);
            let (state, _, effects) = submit(&s.vm, &cfg, &Lies::of(s.honest.clone()), s.honest.segments());
            assert_eq!(effects, vec![Effect::Lock { from: worker_party(), amount: STAKE }]);
            assert!(!agent::should_challenge(&state.claim, &s.honest));
            let t = state.finalize(state.window_end_ns() + 1).unwrap();
            assert_eq!(t.effects, vec![Effect::Payout { to: worker_party(), amount: STAKE }]);
        }
    }
}

#[test]
fn faulty_worker_loses_by_step_proof() {
    let games = lying_worker_loses("fault", |_, honest, (s, j)| Some((Lies::of(honest.with_fault(s, j)), 0, false)));
    assert!(all_by_step_proof(&games));
}

#[test]
fn wrong_middle_segment_root_loses() {
    lying_worker_loses("garbage boundary", |lengths, honest, (s, j)| {
        let n = lengths.len() as u64;
        if n < 2 {
            return None;
        }
        let mut lies = Lies::of(honest.with_fault(s, j));
        let m = 1 + (s + j) % (n - 1);
        lies.boundary.insert(m, Hash::tagged(b"garbage", &[&m.to_le_bytes()]));
        Some((lies, 0, false))
    });
}

#[test]
fn mid_segment_state_as_boundary_loses() {
    // The worker claims a reachable mid-segment state of segment m-1 as boundary R_m, and its run goes wrong in
    // segment m. Without the fixpoint check at `CommitSteps` it could defend segment m-1 with true roots only.
    let games = lying_worker_loses("mid-segment boundary", |lengths, honest, (s, j)| {
        let n = lengths.len() as u64;
        let m = (1..n).find(|&m| m > s.min(n - 1) / 2 && lengths[m as usize - 1] >= 2)?;
        let mut lies = Lies::of(honest.with_fault(m, j % lengths[m as usize]));
        let mid = honest.state(m - 1, 1 + j % (lengths[m as usize - 1] - 1));
        lies.boundary.insert(m, mid.root());
        lies.boundary_states.insert(m, mid);
        // It commits exactly the steps that reach the mid-segment state, so all its step roots would be true.
        Some((lies, mid.pc as i64 - lengths[m as usize - 1] as i64, false))
    });
    // Every root from R_m on differs from the truth and all before agree, so every game narrows to segment m-1
    // and ends there: the worker cannot show its R_m is a boundary state, and times out.
    for p in &games {
        assert_eq!(p.rejected, vec![Error::BoundaryNotFixedPoint]);
        assert_eq!(p.outcome(0), Outcome::ChallengerWon(Reason::Timeout));
    }
}

#[test]
fn random_step_roots_lose() {
    lying_worker_loses("random step roots", |_, honest, (s, j)| {
        let mut lies = Lies::of(honest.with_fault(s, j));
        lies.random_steps = Some(s * 1000 + j);
        Some((lies, 0, false))
    });
}

#[test]
fn random_everything_loses() {
    lying_worker_loses("random roots", |lengths, honest, (s, j)| {
        let mut lies = Lies::of(honest.with_fault(s, j));
        let mut rng = Rng(s ^ (j << 8));
        for i in 1..lengths.len() as u64 {
            lies.boundary.insert(i, rng.hash());
        }
        lies.random_steps = Some(j);
        Some((lies, 0, false))
    });
}

#[test]
fn step_count_too_small_loses() {
    let games = lying_worker_loses("steps too small", |lengths, honest, (s, j)| {
        let delta = -((lengths[s as usize] as i64 - 1).max(1));
        Some((Lies::of(honest.with_fault(s, j)), delta, false))
    });
    assert!(all_by_step_proof(&games));
    let games = lying_worker_loses("steps one too few", |_, honest, (s, j)| {
        Some((Lies::of(honest.with_fault(s, j)), -1, false))
    });
    assert!(all_by_step_proof(&games));
}

#[test]
fn step_count_too_large_loses() {
    let games = lying_worker_loses("steps +1", |_, honest, (s, j)| Some((Lies::of(honest.with_fault(s, j)), 1, false)));
    assert!(all_by_step_proof(&games));
    let games =
        lying_worker_loses("steps +1000", |_, honest, (s, j)| Some((Lies::of(honest.with_fault(s, j)), 1000, false)));
    assert!(all_by_step_proof(&games));
}

#[test]
fn roots_inconsistent_with_commitment_are_rejected_and_lose() {
    let games = lying_worker_loses("inconsistent", |lengths, honest, (s, j)| {
        (lengths.len() >= 2).then(|| (Lies::of(honest.with_fault(s, j)), 0, true))
    });
    for p in &games {
        assert_eq!(p.outcome(0), Outcome::ChallengerWon(Reason::Timeout));
        assert!(matches!(p.rejected[..], [Error::BoundaryProofInvalid { .. }]));
    }
}

#[test]
fn silent_worker_loses() {
    for lengths in programs() {
        let s = setup(&lengths);
        for k in ARITIES {
            for after in [0, 1, 2, 5] {
                let lies = Lies::of(s.honest.with_fault(0, 0));
                let (state, tree, _) = submit(&s.vm, &config(k), &lies, lies.run.segments());
                let (state, id, _) = open(&state, 2);
                let mut w = LyingWorker::new(lies, tree);
                w.silent_after = Some(after);
                let mut c = HonestChallenger { run: s.honest.clone() };
                let p = drive(state, id, &mut w, &mut c, &s.vm, T0 + TICK);
                assert!(matches!(p.outcome(id), Outcome::ChallengerWon(_)));
                assert_challenger_paid(&p, &party(2));
            }
        }
    }
}

#[test]
fn bad_claims_are_rejected_at_submission() {
    let s = setup(&[3, 2, 4]);
    let cfg = config(4);
    let honest = Lies::of(s.honest.clone());
    let run = &s.honest;
    let n = run.segments();
    let (claim, evidence, tree) = agent::make_claim(
        &honest,
        run.program,
        run.input_root,
        run.output(),
        FinalStatus::Halted,
        n,
        run.final_opening(),
    );
    ClaimState::submit(&cfg, worker_party(), claim.clone(), &evidence, &s.vm, T0).unwrap();

    // Wrong output with the true final root: the opening does not match.
    let mut bad = claim.clone();
    bad.output_hash = Hash::tagged(b"other output", &[]);
    assert!(matches!(
        ClaimState::submit(&cfg, worker_party(), bad, &evidence, &s.vm, T0),
        Err(Error::FinalOpeningRejected(_))
    ));
    // The right final state, claimed as a trap: its opening shows it halted.
    let mut trapped = claim.clone();
    trapped.final_status = FinalStatus::Trapped { code: 7 };
    assert_eq!(
        ClaimState::submit(&cfg, worker_party(), trapped, &evidence, &s.vm, T0).unwrap_err(),
        Error::FinalStatusMismatch { claimed: FinalStatus::Trapped { code: 7 }, opened: FinalStatus::Halted }
    );
    // Too few segments: R_N is not halted.
    let (short, short_ev, _) = agent::make_claim(
        &honest,
        run.program,
        run.input_root,
        run.output(),
        FinalStatus::Halted,
        n - 1,
        run.state(n - 1, 0).encode(),
    );
    assert!(matches!(
        ClaimState::submit(&cfg, worker_party(), short, &short_ev, &s.vm, T0),
        Err(Error::FinalOpeningRejected(_))
    ));
    // A commitment whose leaf 0 is not the initial root.
    let mut lies = honest.clone();
    lies.boundary.insert(0, Hash::tagged(b"not R0", &[]));
    let (c0, e0, _) = agent::make_claim(
        &lies,
        run.program,
        run.input_root,
        run.output(),
        FinalStatus::Halted,
        n,
        run.final_opening(),
    );
    assert_eq!(ClaimState::submit(&cfg, worker_party(), c0, &e0, &s.vm, T0).unwrap_err(), Error::InitialRootMismatch);
    // A final proof for the wrong leaf.
    let mut e1 = evidence.clone();
    e1.final_proof = tree.proof(1).unwrap();
    assert_eq!(
        ClaimState::submit(&cfg, worker_party(), claim.clone(), &e1, &s.vm, T0).unwrap_err(),
        Error::BoundaryProofInvalid { index: n }
    );
    // Zero segments, too many segments, unknown program, bad arity.
    let mut z = claim.clone();
    z.segments = 0;
    assert_eq!(ClaimState::submit(&cfg, worker_party(), z, &evidence, &s.vm, T0).unwrap_err(), Error::ZeroSegments);
    let mut small = cfg.clone();
    small.max_segments = 2;
    assert_eq!(
        ClaimState::submit(&small, worker_party(), claim.clone(), &evidence, &s.vm, T0).unwrap_err(),
        Error::TooManySegments { segments: 3, max: 2 }
    );
    let mut unknown = claim.clone();
    unknown.program = Hash::ZERO;
    assert!(matches!(
        ClaimState::submit(&cfg, worker_party(), unknown, &evidence, &s.vm, T0),
        Err(Error::InitialRootUnavailable(_))
    ));
    for arity in [0, 1, 65, 255] {
        let mut bad_k = cfg.clone();
        bad_k.arity = arity;
        assert_eq!(
            ClaimState::submit(&bad_k, worker_party(), claim.clone(), &evidence, &s.vm, T0).unwrap_err(),
            Error::ArityOutOfRange { arity }
        );
    }
    let mut bad_bps = cfg.clone();
    bad_bps.burn_bps = 10_001;
    assert_eq!(
        ClaimState::submit(&bad_bps, worker_party(), claim, &evidence, &s.vm, T0).unwrap_err(),
        Error::BurnShareOutOfRange { bps: 10_001 }
    );
}

#[test]
fn honest_worker_beats_every_lying_challenger() {
    for lengths in programs() {
        let s = setup(&lengths);
        let n = s.honest.segments();
        let fault = *faults(&lengths).last().unwrap();
        let lies = [
            ChallengerLie::Random(Rng(1)),
            ChallengerLie::Random(Rng(2)),
            ChallengerLie::Random(Rng(3)),
            ChallengerLie::First,
            ChallengerLie::Last,
            ChallengerLie::Longest,
            ChallengerLie::Faulty(s.honest.with_fault(fault.0, fault.1)),
            ChallengerLie::GarbageProof,
            ChallengerLie::Silent,
        ];
        for k in ARITIES {
            // Also with extra (halted) padding segments: still a true claim.
            for claimed in [n, n + 3] {
                let cfg = config(k);
                let (state, tree, _) = submit(&s.vm, &cfg, &Lies::of(s.honest.clone()), claimed);
                assert!(!agent::should_challenge(&state.claim, &s.honest));
                for lie in &lies {
                    let (st, id, _) = open(&state, 3);
                    let mut w = HonestWorker { run: s.honest.clone(), tree: tree.clone() };
                    let mut c = LyingChallenger { lie: lie.clone(), truth: s.honest.clone() };
                    let p = drive(st, id, &mut w, &mut c, &s.vm, T0 + TICK);
                    assert!(
                        matches!(p.outcome(id), Outcome::WorkerWon(_)),
                        "k={k} lengths={lengths:?} lie={lie:?}: {:?}",
                        p.outcome(id)
                    );
                    assert!(p.rejected.iter().all(|e| matches!(e, Error::StepProofRejected(_))), "{:?}", p.rejected);
                    assert_worker_paid_and_final(&p);
                }
            }
        }
    }
}

#[test]
fn honest_challenger_forced_into_a_true_claim_loses() {
    // Even the honest strategy, made to dispute a true claim, cannot win it.
    let s = setup(&[3, 1, 4, 1, 5]);
    for k in ARITIES {
        let (state, tree, _) = submit(&s.vm, &config(k), &Lies::of(s.honest.clone()), 5);
        let (state, id, _) = open(&state, 2);
        let mut w = HonestWorker { run: s.honest.clone(), tree };
        let mut c = HonestChallenger { run: s.honest.clone() };
        let p = drive(state, id, &mut w, &mut c, &s.vm, T0 + TICK);
        assert_eq!(p.outcome(id), Outcome::WorkerWon(Reason::StepProof));
    }
}

#[test]
fn parallel_disputes_one_winner_refunds_the_rest() {
    let s = setup(&[4, 2, 6, 3]);
    let cfg = config(3);
    let lies = Lies::of(s.honest.with_fault(2, 3));
    let (state, tree, mut effects) = submit(&s.vm, &cfg, &lies, 4);
    // A sybil of the worker opens first and stalls; a faulty-view challenger plays; the honest one wins.
    let (t, sybil) = state.open_dispute(party(7), T0 + TICK).unwrap();
    effects.extend(t.effects);
    let (t, confused) = t.state.open_dispute(party(8), T0 + TICK).unwrap();
    effects.extend(t.effects);
    let (t, honest) = t.state.open_dispute(party(9), T0 + 2 * TICK).unwrap();
    effects.extend(t.effects);
    let state = t.state;
    assert_eq!((sybil, confused, honest), (0, 1, 2));
    assert_eq!(state.open_disputes(), 3);
    assert_eq!(state.open_dispute(party(9), T0 + 3 * TICK).unwrap_err(), Error::AlreadyDisputing { dispute: 2 });
    assert_eq!(state.open_dispute(worker_party(), T0 + 3 * TICK).unwrap_err(), Error::SelfChallenge);
    assert_eq!(state.finalize(u64::MAX).unwrap_err(), Error::DisputesOpen { count: 3 });

    let mut w = LyingWorker::new(lies.clone(), tree.clone());
    let mut c = HonestChallenger { run: s.honest.clone() };
    let p = drive(state, honest, &mut w, &mut c, &s.vm, T0 + 2 * TICK);
    effects.extend(p.effects.clone());
    assert!(matches!(p.outcome(honest), Outcome::ChallengerWon(_)));
    assert_eq!(p.outcome(sybil), Outcome::Cancelled);
    assert_eq!(p.outcome(confused), Outcome::Cancelled);
    let burnt = burn_share(STAKE, BURN_BPS);
    assert_eq!(paid_to(&p.effects, &party(9)), u128::from(BOND + STAKE - burnt));
    assert_eq!(paid_to(&p.effects, &party(7)), u128::from(BOND));
    assert_eq!(paid_to(&p.effects, &party(8)), u128::from(BOND));
    assert!(p.effects.contains(&Effect::Burn { amount: burnt }));
    let (locked, paid, burn) = flows(&effects);
    assert_eq!(locked, u128::from(STAKE + 3 * BOND));
    assert_eq!(paid + burn, locked);
    // Nothing more can happen on the claim.
    assert_eq!(p.state.open_dispute(party(10), p.now).unwrap_err(), Error::ClaimNotPending);
    assert_eq!(p.state.timeout(sybil, u64::MAX).unwrap_err(), Error::DisputeOver);
    assert_eq!(p.state.finalize(u64::MAX).unwrap_err(), Error::ClaimNotPending);
}

#[test]
fn several_losing_challengers_then_final() {
    let s = setup(&[5, 5, 5]);
    let cfg = config(2);
    let (mut state, tree, mut effects) = submit(&s.vm, &cfg, &Lies::of(s.honest.clone()), 3);
    let mut now = T0;
    for n in 2..6u8 {
        now += TICK;
        let (t, id) = state.open_dispute(party(n), now).unwrap();
        effects.extend(t.effects);
        let mut w = HonestWorker { run: s.honest.clone(), tree: tree.clone() };
        let mut c = LyingChallenger { lie: ChallengerLie::Random(Rng(u64::from(n))), truth: s.honest.clone() };
        let p = drive(t.state, id, &mut w, &mut c, &s.vm, now);
        assert!(matches!(p.outcome(id), Outcome::WorkerWon(_)));
        effects.extend(p.effects);
        state = p.state;
        now = p.now;
    }
    let end = state.window_end_ns();
    assert_eq!(state.open_dispute(party(20), end + 1).unwrap_err(), Error::ChallengeWindowClosed { ends_at_ns: end });
    let t = state.finalize(end + 1).unwrap();
    effects.extend(t.effects);
    let burnt = burn_share(BOND, BURN_BPS);
    assert_eq!(paid_to(&effects, &worker_party()), u128::from(STAKE + 4 * (BOND - burnt)));
    let (locked, paid, burn) = flows(&effects);
    assert_eq!(paid + burn, locked);
    assert_eq!(burn, u128::from(4 * burnt));
}

#[test]
fn turn_and_phase_errors_leave_state_unchanged() {
    let s = setup(&[3, 4, 2, 2, 1]);
    let cfg = config(2);
    let lies = Lies::of(s.honest.with_fault(1, 2));
    let (state, tree, _) = submit(&s.vm, &cfg, &lies, 5);
    let (state, id, _) = open(&state, 2);
    let t = T0 + 2 * TICK;
    let wp = worker_party();
    let cp = party(2);
    let honest_w = agent::worker_move(state.dispute(id).unwrap(), &cfg, &lies, &tree).unwrap();
    let check = |r: Result<opml_bisect::Transition, Error>, e: Error| assert_eq!(r.unwrap_err(), e);

    check(state.play(id, &cp, 0, &honest_w, &s.vm, t), Error::NotYourTurn { mover: opml_bisect::Role::Worker });
    check(state.play(id, &party(9), 0, &honest_w, &s.vm, t), Error::NotAParty);
    check(state.play(5, &wp, 0, &honest_w, &s.vm, t), Error::UnknownDispute { dispute: 5 });
    check(state.play(id, &wp, 1, &honest_w, &s.vm, t), Error::StaleMove { expected: 0, got: 1 });
    let deadline = state.dispute(id).unwrap().deadline().unwrap();
    check(state.play(id, &wp, 0, &honest_w, &s.vm, deadline + 1), Error::MoveTooLate { deadline_ns: deadline });
    check(state.play(id, &wp, 0, &honest_w, &s.vm, T0), Error::TimeWentBackwards { now_ns: T0, last_ns: T0 + TICK });
    let prove = opml_bisect::Move::ProveStep { proof: vec![] };
    check(
        state.play(id, &wp, 0, &prove, &s.vm, t),
        Error::WrongMove { expected: opml_bisect::MoveKind::PostRoots, got: opml_bisect::MoveKind::ProveStep },
    );
    let opml_bisect::Move::PostRoots { roots, proofs } = honest_w.clone() else { panic!() };
    let mut more = roots.clone();
    more.push(Hash::ZERO);
    check(
        state.play(id, &wp, 0, &opml_bisect::Move::PostRoots { roots: more, proofs: proofs.clone() }, &s.vm, t),
        Error::WrongRootCount { expected: 1, got: 2 },
    );
    check(
        state.play(id, &wp, 0, &opml_bisect::Move::PostRoots { roots: roots.clone(), proofs: vec![] }, &s.vm, t),
        Error::WrongProofCount { expected: 1, got: 0 },
    );
    let point = state.dispute(id).unwrap().points_to_post(2)[0];
    check(
        state.play(id, &wp, 0, &opml_bisect::Move::PostRoots { roots: vec![Hash::ZERO], proofs }, &s.vm, t),
        Error::BoundaryProofInvalid { index: point },
    );
    // After a valid post, the challenger's choice is range-checked.
    let st = state.play(id, &wp, 0, &honest_w, &s.vm, t).unwrap().state;
    check(
        st.play(id, &cp, 1, &opml_bisect::Move::Choose { index: 2 }, &s.vm, t),
        Error::ChoiceOutOfRange { index: 2, count: 2 },
    );
    check(st.play(id, &wp, 1, &honest_w, &s.vm, t), Error::NotYourTurn { mover: opml_bisect::Role::Challenger });
    let _ = MerkleTree::new(&[]);
}

#[test]
fn step_count_bounds_and_fixpoint_errors() {
    let s = setup(&[6]);
    let mut cfg = config(2);
    cfg.max_segment_steps = 6;
    let lies = Lies::of(s.honest.with_fault(0, 3));
    let (state, _, _) = submit(&s.vm, &cfg, &lies, 1);
    let (state, id, _) = open(&state, 2);
    let wp = worker_party();
    let t = T0 + 2 * TICK;
    let proof = lies.run.step_proof(0, 6);
    let commit = |steps, fixpoint_proof: Vec<u8>| opml_bisect::Move::CommitSteps { steps, fixpoint_proof };
    assert_eq!(
        state.play(id, &wp, 0, &commit(0, proof.clone()), &s.vm, t).unwrap_err(),
        Error::StepCountOutOfRange { steps: 0, max: 6 }
    );
    assert_eq!(
        state.play(id, &wp, 0, &commit(7, proof.clone()), &s.vm, t).unwrap_err(),
        Error::StepCountOutOfRange { steps: 7, max: 6 }
    );
    assert!(matches!(state.play(id, &wp, 0, &commit(6, vec![9; 3]), &s.vm, t), Err(Error::StepProofRejected(_))));
    // A proof that opens a different state than R_1 is rejected too.
    assert!(matches!(
        state.play(id, &wp, 0, &commit(6, lies.run.step_proof(0, 2)), &s.vm, t),
        Err(Error::StepProofRejected(_))
    ));
    let st = state.play(id, &wp, 0, &commit(6, proof), &s.vm, t).unwrap().state;
    assert_eq!(st.dispute(id).unwrap().points_to_post(2), vec![3]);
}
