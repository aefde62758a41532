//! The money invariant over random operation sequences: after every call, the sum of free balances, locked
//! stakes/bonds/rewards, pending withdrawals and burnt amounts equals deposits minus completed withdrawals (and
//! the running totals equal the maps); every rejected call leaves the state byte-for-byte unchanged.

mod common;

use common::*;
use opml_bisect::MerkleTree;
use opml_bisect::toy::ToyRun;
use opml_verifier_canister::types::*;
use proptest::prelude::*;

const LENGTHS: [u64; 4] = [2, 5, 1, 3];

#[derive(Clone, Debug)]
enum Op {
    Deposit { who: u8, amount: u64 },
    PostTask { who: u8, reward: u64, window: u64 },
    CancelTask { who: u8, task: u8 },
    Submit { who: u8, task: u8, honest: bool },
    Open { who: u8, claim: u8 },
    Agent { claim: u8, dispute: u8 },
    BadMove { who: u8, claim: u8, dispute: u8, index: u32 },
    Timeout { claim: u8, dispute: u8 },
    Finalize { claim: u8 },
    Sweep { max: u32 },
    Advance { dt: u64 },
    Withdraw { who: u8, amount: u64 },
    Answer { w: u8, kind: u8 },
    Retry { who: u8, w: u8 },
    Resolve { w: u8, executed: bool },
}

fn op() -> impl Strategy<Value = Op> {
    let who = 1u8..=4;
    prop_oneof![
        (who.clone(), 0u64..3_000).prop_map(|(who, amount)| Op::Deposit { who, amount }),
        (who.clone(), 0u64..800, 100u64..3_000).prop_map(|(who, reward, window)| Op::PostTask { who, reward, window }),
        (who.clone(), any::<u8>()).prop_map(|(who, task)| Op::CancelTask { who, task }),
        (who.clone(), any::<u8>(), any::<bool>()).prop_map(|(who, task, honest)| Op::Submit { who, task, honest }),
        (who.clone(), any::<u8>()).prop_map(|(who, claim)| Op::Open { who, claim }),
        (any::<u8>(), any::<u8>()).prop_map(|(claim, dispute)| Op::Agent { claim, dispute }),
        (any::<u8>(), any::<u8>()).prop_map(|(claim, dispute)| Op::Agent { claim, dispute }),
        (any::<u8>(), any::<u8>()).prop_map(|(claim, dispute)| Op::Agent { claim, dispute }),
        (who.clone(), any::<u8>(), any::<u8>(), 0u32..6).prop_map(|(who, claim, dispute, index)| Op::BadMove {
            who,
            claim,
            dispute,
            index
        }),
        (any::<u8>(), any::<u8>()).prop_map(|(claim, dispute)| Op::Timeout { claim, dispute }),
        any::<u8>().prop_map(|claim| Op::Finalize { claim }),
        (1u32..5).prop_map(|max| Op::Sweep { max }),
        (0u64..700).prop_map(|dt| Op::Advance { dt }),
        (who.clone(), 0u64..1_500).prop_map(|(who, amount)| Op::Withdraw { who, amount }),
        (any::<u8>(), 0u8..3).prop_map(|(w, kind)| Op::Answer { w, kind }),
        (who, any::<u8>()).prop_map(|(who, w)| Op::Retry { who, w }),
        (any::<u8>(), any::<bool>()).prop_map(|(w, executed)| Op::Resolve { w, executed }),
    ]
}

struct World {
    c: C,
    program: opml_bisect::Hash,
    now: u64,
    tasks: u64,
    /// Per claim: its worker's trace and commitment, and what its challengers believe.
    claims: Vec<(u64, ToyRun, MerkleTree, ToyRun)>,
    withdrawals: u64,
}

fn pick(n: u8, len: usize) -> Option<usize> {
    if len == 0 { None } else { Some(n as usize % len) }
}

impl World {
    fn new() -> World {
        let mut c = core();
        let program = register(&mut c, &LENGTHS, 13);
        World { c, program, now: 1, tasks: 0, claims: Vec::new(), withdrawals: 0 }
    }

    fn disputes(&self, claim: u64) -> usize {
        self.c.claim_state(claim).map(|s| s.disputes.len()).unwrap_or(0)
    }

    /// Runs one op; returns whether it was accepted.
    fn run(&mut self, op: &Op) -> bool {
        let now = self.now;
        let c = &mut self.c;
        match *op {
            Op::Deposit { who, amount } => {
                let args = DepositArgs { amount, from_subaccount: None };
                c.check_deposit(&user(who), &args).is_ok() && c.credit_deposit(&principal(who), amount).is_ok()
            }
            Op::PostTask { who, reward, window } => {
                let spec = PostTask { challenge_window_ns: window, ..task_spec(self.program, reward) };
                let ok = c.post_task(&user(who), spec, now).is_ok();
                self.tasks += u64::from(ok);
                ok
            }
            Op::CancelTask { who, task } => {
                pick(task, self.tasks as usize).is_some_and(|t| c.cancel_task(&user(who), t as u64).is_ok())
            }
            Op::Submit { who, task, honest } => {
                let Some(t) = pick(task, self.tasks as usize) else { return false };
                let trace = run(&LENGTHS, honest);
                let belief = run(&LENGTHS, !honest);
                let (args, tree) = claim_args(t as u64, &trace);
                match c.submit_claim(&user(who), args, now) {
                    Ok(id) => {
                        self.claims.push((id, trace, tree, belief));
                        true
                    }
                    Err(_) => false,
                }
            }
            Op::Open { who, claim } => pick(claim, self.claims.len())
                .is_some_and(|i| c.open_dispute(&user(who), self.claims[i].0, now).is_ok()),
            Op::Agent { claim, dispute } => {
                let Some(i) = pick(claim, self.claims.len()) else { return false };
                let id = self.claims[i].0;
                let Some(d) = pick(dispute, self.disputes(id)) else { return false };
                let (_, trace, tree, belief) = &self.claims[i];
                let Some((role, args)) = agent_move(&self.c, id, d as u32, (trace, tree), belief) else {
                    return false;
                };
                let view = self.c.dispute(id, d as u32).unwrap();
                let who = match role {
                    opml_bisect::Role::Worker => view.worker,
                    opml_bisect::Role::Challenger => view.challenger,
                };
                self.c.play(&Caller { id: who, is_controller: false }, args, now).is_ok()
            }
            Op::BadMove { who, claim, dispute, index } => {
                let Some(i) = pick(claim, self.claims.len()) else { return false };
                let id = self.claims[i].0;
                let args = PlayArgs {
                    claim: id,
                    dispute: u32::from(dispute) % 3,
                    seq: u64::from(index),
                    mv: opml_bisect::Move::Choose { index },
                };
                c.play(&user(who), args, now).is_ok()
            }
            Op::Timeout { claim, dispute } => {
                let Some(i) = pick(claim, self.claims.len()) else { return false };
                c.timeout(self.claims[i].0, u32::from(dispute) % 3, now).is_ok()
            }
            Op::Finalize { claim } => {
                pick(claim, self.claims.len()).is_some_and(|i| c.finalize(self.claims[i].0, now).is_ok())
            }
            Op::Sweep { max } => {
                c.sweep(now, max);
                true
            }
            Op::Advance { dt } => {
                self.now += dt;
                true
            }
            Op::Withdraw { who, amount } => {
                let ok = c.begin_withdrawal(&user(who), WithdrawArgs { amount, to: None }, now).is_ok();
                self.withdrawals += u64::from(ok);
                ok
            }
            Op::Answer { w, kind } => {
                let Some(id) = pick(w, self.withdrawals as usize) else { return false };
                let Ok(wd) = c.withdrawal(id as u64) else { return false };
                let outcome = match kind {
                    0 => executed(id as u64),
                    1 => LedgerOutcome::NotExecuted("no".into()),
                    _ => LedgerOutcome::Unknown("?".into()),
                };
                c.withdrawal_outcome(wd.id, wd.attempts, outcome).is_ok()
            }
            Op::Retry { who, w } => pick(w, self.withdrawals as usize)
                .is_some_and(|id| c.retry_withdrawal(&user(who), id as u64, now).is_ok()),
            Op::Resolve { w, executed: ex } => pick(w, self.withdrawals as usize).is_some_and(|id| {
                c.resolve_withdrawal(&controller(), id as u64, ex.then(|| candid::Nat::from(1u8))).is_ok()
            }),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn money_is_conserved_and_errors_change_nothing(ops in prop::collection::vec(op(), 1..80)) {
        let mut w = World::new();
        for op in &ops {
            let before = w.c.digest();
            if !w.run(op) {
                prop_assert_eq!(w.c.digest(), before, "rejected {:?} changed the state", op);
            }
            check_conservation(&w.c);
        }
    }
}

/// A long fixed scenario through the same world (so the invariant test also covers whole games for sure).
#[test]
fn scripted_world_plays_whole_games() {
    let mut w = World::new();
    let script = [
        Op::Deposit { who: 1, amount: 2_000 },
        Op::Deposit { who: 2, amount: 3_000 },
        Op::Deposit { who: 3, amount: 500 },
        Op::PostTask { who: 1, reward: 500, window: 2_000 },
        Op::PostTask { who: 1, reward: 500, window: 2_000 },
        Op::Submit { who: 2, task: 0, honest: false },
        Op::Submit { who: 2, task: 1, honest: true },
        Op::Open { who: 3, claim: 0 },
        Op::Open { who: 3, claim: 1 },
    ];
    for op in &script {
        assert!(w.run(op), "{op:?}");
    }
    for _ in 0..40 {
        w.run(&Op::Advance { dt: 5 });
        w.run(&Op::Agent { claim: 0, dispute: 0 });
        w.run(&Op::Agent { claim: 1, dispute: 0 });
        check_conservation(&w.c);
    }
    for (claim, d) in [(0, 0), (1, 0)] {
        let v = w.c.dispute(w.claims[claim].0, d).unwrap();
        assert!(v.resolution.is_some(), "dispute on claim {claim} did not end");
    }
    assert!(w.run(&Op::Advance { dt: 3_000 }));
    assert!(w.run(&Op::Finalize { claim: 1 }));
    assert!(!w.run(&Op::Finalize { claim: 0 }));
    check_conservation(&w.c);
}
