//! Property tests: random call sequences never panic, errors never change state, money is conserved, and the
//! honest side wins every randomly drawn game.

mod common;

use common::*;
use opml_bisect::agent::{self, Trace};
use opml_bisect::{ClaimState, ClaimStatus, Effect, Hash, MerkleProof, Move, Outcome};
use proptest::prelude::*;

/// How a random move is made.
#[derive(Clone, Debug)]
enum Gen {
    /// The worker's own-view move if the worker is to move, else the honest challenger's.
    Auto,
    /// What the claim's worker would honestly play from its own view.
    WorkerView,
    /// What an honest challenger (true run) would play.
    HonestChallenger,
    /// What a challenger with a faulty view would play.
    FaultyChallenger,
    /// Choose an arbitrary index.
    Choose(u32),
    /// Post `n` random roots with `p` random proofs.
    Roots(u8, u8, u64),
    /// Commit an arbitrary step count with the worker's best fixpoint proof or garbage.
    Commit(u64, bool),
    /// Prove with the true proof at the current step, or garbage.
    Prove(bool),
}

/// One public call.
#[derive(Clone, Debug)]
enum Op {
    Open {
        who: u8,
        dt: u64,
    },
    /// `who: None` is the party to move; `dispute` is taken modulo the number of disputes (plus one unknown id).
    Play {
        dispute: u32,
        who: Option<u8>,
        seq_off: i64,
        how: Gen,
        dt: u64,
    },
    Timeout {
        dispute: u32,
        dt: u64,
    },
    Finalize {
        dt: u64,
    },
}

fn dt() -> impl Strategy<Value = u64> {
    prop_oneof![
        300 => 0..3 * TICK,
        3 => Just(3_600 * TICK + 1),
        1 => Just(86_400 * TICK + 1),
        10 => Just(0u64),
    ]
}

fn how_strategy() -> impl Strategy<Value = Gen> {
    prop_oneof![
        12 => Just(Gen::Auto),
        2 => Just(Gen::WorkerView),
        2 => Just(Gen::HonestChallenger),
        2 => Just(Gen::FaultyChallenger),
        1 => (0u32..70).prop_map(Gen::Choose),
        1 => (0u8..70, 0u8..70, any::<u64>()).prop_map(|(n, p, s)| Gen::Roots(n, p, s)),
        1 => (0u64..40, any::<bool>()).prop_map(|(n, g)| Gen::Commit(n, g)),
        1 => any::<bool>().prop_map(Gen::Prove),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (1u8..6, dt()).prop_map(|(who, dt)| Op::Open { who, dt }),
        24 => (0u32..8, prop_oneof![6 => Just(None), 1 => (1u8..6).prop_map(Some)],
               prop_oneof![12 => Just(0i64), 1 => Just(-1i64), 1 => Just(1i64)], how_strategy(), dt())
            .prop_map(|(dispute, who, seq_off, how, dt)| Op::Play { dispute, who, seq_off, how, dt }),
        2 => (0u32..4, dt()).prop_map(|(dispute, dt)| Op::Timeout { dispute, dt }),
        1 => dt().prop_map(|dt| Op::Finalize { dt }),
    ]
}

/// A random program (1..=6 segments of 1..=20 steps), an arity, and a fault for the worker (or none).
fn game() -> impl Strategy<Value = (Vec<u64>, u8, Option<(u64, u64)>)> {
    (prop::collection::vec(1u64..=20, 1..=6), prop::sample::select(ARITIES.to_vec()), any::<Option<(u64, u64)>>())
        .prop_map(|(lengths, k, f)| {
            let fault = f.map(|(s, j)| {
                let s = s % lengths.len() as u64;
                (s, j % lengths[s as usize])
            });
            (lengths, k, fault)
        })
}

/// Builds the move `how` describes for the current position of dispute `id`.
fn make_move(
    how: &Gen,
    state: &ClaimState,
    id: u32,
    worker: &Lies,
    tree: &opml_bisect::MerkleTree,
    truth: &Lies,
) -> Option<Move> {
    let d = state.dispute(id).ok()?;
    let cfg = &state.config;
    Some(match how {
        Gen::Auto => match d.mover()? {
            opml_bisect::Role::Worker => agent::worker_move(d, cfg, worker, tree)?,
            opml_bisect::Role::Challenger => agent::challenger_move(d, cfg, truth)?,
        },
        Gen::WorkerView => agent::worker_move(d, cfg, worker, tree)?,
        Gen::HonestChallenger => agent::challenger_move(d, cfg, truth)?,
        Gen::FaultyChallenger => {
            let faulty = truth.run.with_fault(0, 0);
            agent::challenger_move(d, cfg, &faulty)?
        }
        Gen::Choose(i) => Move::Choose { index: *i },
        Gen::Roots(n, p, seed) => {
            let mut rng = Rng(*seed);
            Move::PostRoots {
                roots: (0..*n).map(|_| rng.hash()).collect(),
                proofs: (0..*p).map(|_| MerkleProof { siblings: vec![rng.hash(); (*seed % 5) as usize] }).collect(),
            }
        }
        Gen::Commit(n, good) => {
            let proof = match &d.phase {
                opml_bisect::Phase::CommitSteps { segment, .. } if *good => worker.run.step_proof(*segment, u64::MAX),
                _ => vec![7; 5],
            };
            Move::CommitSteps { steps: *n, fixpoint_proof: proof }
        }
        Gen::Prove(good) => Move::ProveStep {
            proof: match &d.phase {
                opml_bisect::Phase::ProveStep { segment, step, .. } if *good => truth.run.step_proof(*segment, *step),
                _ => vec![],
            },
        },
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_calls_never_panic_never_mutate_on_error_and_conserve_money(
        (lengths, k, fault) in game(),
        ops in prop::collection::vec(op(), 1..200),
    ) {
        let s = setup(&lengths);
        let cfg = config(k);
        let worker = Lies::of(match fault { Some((a, b)) => s.honest.with_fault(a, b), None => s.honest.clone() });
        let truth = Lies::of(s.honest.clone());
        let (mut state, tree, mut effects) = submit(&s.vm, &cfg, &worker, lengths.len() as u64);
        let mut now = T0;
        let mut accepted_moves = vec![0u64; 0];

        for op in &ops {
            let before = state.clone();
            let result = match op {
                Op::Open { who, dt } => {
                    now += dt;
                    state.open_dispute(party(*who), now).map(|(t, id)| {
                        assert_eq!(id as usize, accepted_moves.len());
                        accepted_moves.push(0);
                        t
                    })
                }
                Op::Play { dispute, who, seq_off, how, dt } => {
                    now += dt;
                    let id = dispute % (state.disputes.len() as u32 + 1);
                    let Some(mv) = make_move(how, &state, id, &worker, &tree, &truth) else { continue };
                    let seq = state.dispute(id).map(|d| d.seq).unwrap_or(0).saturating_add_signed(*seq_off);
                    let caller = match (who, state.dispute(id).ok().and_then(|d| d.mover())) {
                        (Some(n), _) => party(*n),
                        (None, Some(opml_bisect::Role::Worker)) => state.worker.clone(),
                        (None, _) => state.dispute(id).map(|d| d.challenger.clone()).unwrap_or_else(|_| party(2)),
                    };
                    let r = state.play(id, &caller, seq, &mv, &s.vm, now);
                    if r.is_ok() {
                        accepted_moves[id as usize] += 1;
                    }
                    r
                }
                Op::Timeout { dispute, dt } => {
                    now += dt;
                    state.timeout(*dispute, now)
                }
                Op::Finalize { dt } => {
                    now += dt;
                    state.finalize(now)
                }
            };
            match result {
                Ok(t) => {
                    // A resolved dispute never changes again; a settled claim never changes status.
                    for (a, b) in before.disputes.iter().zip(&t.state.disputes) {
                        if a.resolution.is_some() {
                            prop_assert_eq!(a, b);
                        }
                    }
                    if before.status != ClaimStatus::Pending {
                        prop_assert_eq!(before.status, t.state.status);
                    }
                    effects.extend(t.effects);
                    state = t.state;
                }
                Err(_) => prop_assert_eq!(&state, &before),
            }
            for (d, n) in state.disputes.iter().zip(&accepted_moves) {
                prop_assert_eq!(d.seq, *n);
            }
            let (locked, paid, burnt) = flows(&effects);
            prop_assert_eq!(locked, state.total_locked());
            prop_assert!(paid + burnt <= locked);
        }

        // Close everything through public calls only: time out every open dispute, then finalize.
        let far = now + 10 * 86_400 * TICK;
        for id in 0..state.disputes.len() as u32 {
            if state.dispute(id).unwrap().is_active() {
                let t = state.timeout(id, far).unwrap();
                effects.extend(t.effects);
                state = t.state;
            }
        }
        if state.status == ClaimStatus::Pending {
            let t = state.finalize(far).unwrap();
            effects.extend(t.effects);
            state = t.state;
        }
        prop_assert_eq!(state.open_disputes(), 0);
        let (locked, paid, burnt) = flows(&effects);
        prop_assert_eq!(locked, state.total_locked());
        prop_assert_eq!(paid + burnt, locked);
        let zero = |e: &Effect| matches!(e, Effect::Lock { amount: 0, .. } | Effect::Payout { amount: 0, .. } | Effect::Burn { amount: 0 });
        prop_assert!(!effects.iter().any(zero), "zero-amount effect");
    }

    #[test]
    fn honest_side_wins_random_games(
        (lengths, k, fault) in game(),
        seed in any::<u64>(),
        worker_lie in 0u8..6,
        challenger_lie in 0u8..7,
    ) {
        let s = setup(&lengths);
        let cfg = config(k);
        let n = lengths.len() as u64;
        match fault {
            // A lying worker against the honest challenger.
            Some((fs, fj)) => {
                let mut lies = Lies::of(s.honest.with_fault(fs, fj));
                let mut rng = Rng(seed);
                let mut step_delta = 0;
                match worker_lie {
                    0 => {}
                    1 => lies.random_steps = Some(seed),
                    2 => step_delta = -(rng.below(20) as i64) - 1,
                    3 => step_delta = rng.below(20) as i64 + 1,
                    4 => for i in 1..n { if rng.below(2) == 0 { lies.boundary.insert(i, rng.hash()); } },
                    _ => {}
                }
                let (state, tree, _) = submit(&s.vm, &cfg, &lies, n);
                prop_assert!(agent::should_challenge(&state.claim, &s.honest));
                let (state, id, _) = open(&state, 2);
                let mut w = LyingWorker::new(lies, tree);
                w.step_delta = step_delta;
                if worker_lie == 5 {
                    w.silent_after = Some(rng.below(6) as usize);
                }
                let mut c = HonestChallenger { run: s.honest.clone() };
                let p = drive(state, id, &mut w, &mut c, &s.vm, T0 + TICK);
                prop_assert!(matches!(p.outcome(id), Outcome::ChallengerWon(_)), "{:?}", p.outcome(id));
            }
            // The honest worker against a lying challenger.
            None => {
                let (state, tree, _) = submit(&s.vm, &cfg, &Lies::of(s.honest.clone()), n);
                let (state, id, _) = open(&state, 2);
                let lie = match challenger_lie {
                    0 => ChallengerLie::Random(Rng(seed)),
                    1 => ChallengerLie::First,
                    2 => ChallengerLie::Last,
                    3 => ChallengerLie::Longest,
                    4 => ChallengerLie::GarbageProof,
                    5 => ChallengerLie::Silent,
                    _ => {
                        let fs = seed % n;
                        ChallengerLie::Faulty(s.honest.with_fault(fs, (seed >> 8) % lengths[fs as usize]))
                    }
                };
                let mut w = HonestWorker { run: s.honest.clone(), tree };
                let mut c = LyingChallenger { lie, truth: s.honest.clone() };
                let p = drive(state, id, &mut w, &mut c, &s.vm, T0 + TICK);
                prop_assert!(matches!(p.outcome(id), Outcome::WorkerWon(_)), "{:?}", p.outcome(id));
            }
        }
    }

    #[test]
    fn merkle_proofs_only_open_committed_leaves(values in prop::collection::vec(any::<[u8; 32]>(), 1..40), idx in any::<u64>(), other in any::<[u8; 32]>()) {
        let leaves: Vec<Hash> = values.into_iter().map(Hash).collect();
        let tree = opml_bisect::MerkleTree::new(&leaves);
        let n = leaves.len() as u64;
        let i = idx % n;
        let proof = tree.proof(i).unwrap();
        prop_assert!(opml_bisect::merkle::verify(&tree.root(), n, i, &leaves[i as usize], &proof));
        if Hash(other) != leaves[i as usize] {
            prop_assert!(!opml_bisect::merkle::verify(&tree.root(), n, i, &Hash(other), &proof));
        }
        for j in 0..n {
            if leaves[j as usize] != leaves[i as usize] {
                prop_assert!(!opml_bisect::merkle::verify(&tree.root(), n, j, &leaves[i as usize], &proof));
            }
        }
    }
}
